//! The host programs pods become: where they are, found once at start.

use std::path::{Path, PathBuf};

use super::error::{Error, Result};

/// Paths of the real servers and client tools the runtime runs.
#[derive(Debug, Clone)]
pub struct Tools {
    /// PostgreSQL 11 server binaries (`initdb`, `postgres`); no client tools exist for 11
    pub pg11_bin: PathBuf,
    /// PostgreSQL 15 server and client binaries (`postgres`, `psql`, `pg_dump`, ...)
    pub pg15_bin: PathBuf,
    pub redis_server: PathBuf,
    pub redis_cli: PathBuf,
    /// Directory holding `redis-cli`, put on a Redis pod's `PATH`
    pub redis_bin: PathBuf,
}

const INSTALL_HINT: &str = "run scripts/install-test-deps.sh (as root) to install it";

impl Tools {
    /// Finds the tools: PostgreSQL 11 in `<workspace>/.tools/pg11/bin` (or `$LA_SIM_PG11_BIN`),
    /// PostgreSQL 15 in `/usr/lib/postgresql/15/bin` (or `$LA_SIM_PG15_BIN`), Redis on `PATH`.
    pub fn discover() -> Result<Self> {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let pg11_bin = std::env::var_os("LA_SIM_PG11_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join(".tools/pg11/bin"));
        let pg15_bin = std::env::var_os("LA_SIM_PG15_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        for (dir, programs, what) in [
            (
                &pg11_bin,
                &["initdb", "postgres"][..],
                "PostgreSQL 11 server",
            ),
            (
                &pg15_bin,
                &[
                    "initdb",
                    "postgres",
                    "psql",
                    "pg_dump",
                    "pg_restore",
                    "pg_isready",
                ][..],
                "PostgreSQL 15 server and client tools",
            ),
        ] {
            for program in programs {
                let path = dir.join(program);
                if !is_executable(&path) {
                    return Err(Error::new(format!(
                        "{what}: {} is missing; {INSTALL_HINT}",
                        path.display()
                    )));
                }
            }
        }
        let redis_server = on_path("redis-server")?;
        let redis_cli = on_path("redis-cli")?;
        let redis_bin = redis_cli
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/usr/bin"));
        let pg11_bin = canonical(pg11_bin);
        for path in [&pg11_bin, &pg15_bin, &redis_server, &redis_cli] {
            if hidden_in_pods(path) {
                return Err(Error::new(format!(
                    "{} is under /tmp, which every pod sees as a private directory of its own, so \
                     no pod could run it; put the checkout (and its .tools) elsewhere, e.g. under \
                     /var/tmp or your home, or point LA_SIM_PG11_BIN / LA_SIM_PG15_BIN there",
                    path.display()
                )));
            }
        }
        Ok(Tools {
            pg11_bin,
            pg15_bin,
            redis_server,
            redis_cli,
            redis_bin,
        })
    }
}

/// Whether a host path lies under `/tmp`, which the rootfs replaces with the pod's own.
fn hidden_in_pods(path: &Path) -> bool {
    path.starts_with("/tmp")
}

fn canonical(path: PathBuf) -> PathBuf {
    std::fs::canonicalize(&path).unwrap_or(path)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn on_path(program: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
        .ok_or_else(|| Error::new(format!("{program} is not on PATH; {INSTALL_HINT}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_under_tmp_are_refused_because_pods_have_a_tmp_of_their_own() {
        assert!(hidden_in_pods(Path::new("/tmp/clone/.tools/pg11/bin")));
        assert!(hidden_in_pods(Path::new("/tmp")));
        assert!(!hidden_in_pods(Path::new("/var/tmp/clone/.tools/pg11/bin")));
        assert!(!hidden_in_pods(Path::new("/tmpfoo/bin")));
        assert!(!hidden_in_pods(Path::new("/usr/lib/postgresql/15/bin")));
    }
}
