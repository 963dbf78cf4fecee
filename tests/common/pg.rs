//! A throwaway PostgreSQL server (11 or 15) run as the OS user `postgres`, stopped and removed
//! on drop (also on panic).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};

/// [`super::tools::pg11_bin`], as a constant for format strings.
pub const PG11_BIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.tools/pg11/bin");
pub use super::tools::PG15_BIN;

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

pub struct PgServer {
    pub bin: String,
    pub dir: PathBuf,
    pub port: u16,
    _tmp: tempfile::TempDir,
}

fn require(path: &str) {
    super::tools::require(Path::new(path));
}

/// Runs a shell command as `postgres`, panicking with its output on failure.
pub fn as_postgres(script: &str) -> String {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--", "sh", "-c", script])
        .output()
        .expect("runuser (util-linux) is needed: run scripts/install-test-deps.sh");
    assert!(
        out.status.success(),
        "`{script}` failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl PgServer {
    pub fn start(bin: &str, name: &str) -> PgServer {
        Self::start_listening(bin, name, None)
    }

    /// A server pods reach, as a database outside the cluster: it also listens on `host` (an
    /// address of this machine other than loopback, see [`host_address`]) and trusts the sims'
    /// pod subnets (`10.240.0.0/12`).
    pub fn start_for_pods(bin: &str, name: &str, host: &str) -> PgServer {
        Self::start_listening(bin, name, Some(host))
    }

    fn start_listening(bin: &str, name: &str, pods_host: Option<&str>) -> PgServer {
        require(&format!("{bin}/postgres"));
        require(&format!("{PG15_BIN}/psql"));
        let server = PgServer::unstarted(bin, name);
        let (dir, port) = (server.dir.clone(), server.port);
        std::os::unix::fs::chown(&dir, Some(postgres_uid()), None).unwrap();
        let (listen, hba) = match pods_host {
            Some(host) => (
                format!("127.0.0.1,{host}"),
                format!(
                    " && echo 'host all all 10.240.0.0/12 trust' >> {}/data/pg_hba.conf",
                    dir.display()
                ),
            ),
            None => ("127.0.0.1".to_string(), String::new()),
        };
        as_postgres(&format!(
            "{bin}/initdb -D {d}/data -U postgres -A trust >/dev/null{hba} && \
             {bin}/pg_ctl -D {d}/data -w -l {d}/log -o '-p {port} -k {d} -c listen_addresses={listen}' start >/dev/null",
            d = dir.display()
        ));
        server
    }

    /// A server started on a copy of an existing data directory `data` (e.g. a volume's, which
    /// stays untouched: the copy is what the server opens and writes). Its `pg_hba.conf` and
    /// passwords are the original's.
    pub fn on_copy_of(bin: &str, name: &str, data: &Path) -> PgServer {
        require(&format!("{bin}/postgres"));
        assert!(
            data.join("PG_VERSION").is_file(),
            "{} is no PostgreSQL data directory",
            data.display()
        );
        let server = PgServer::unstarted(bin, name);
        let (dir, port) = (server.dir.clone(), server.port);
        let copy = dir.join("data");
        let out = Command::new("cp")
            .arg("-a")
            .arg(data)
            .arg(&copy)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "copying {}: {}",
            data.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        // No server runs on the copy, whatever lock the original's last one left.
        let _ = std::fs::remove_file(copy.join("postmaster.pid"));
        let out = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        as_postgres(&format!(
            "{bin}/pg_ctl -D {d}/data -w -t 120 -l {d}/log -o '-p {port} -k {d} -c listen_addresses=127.0.0.1' start >/dev/null || {{ cat {d}/log; exit 1; }}",
            d = dir.display()
        ));
        server
    }

    /// A server of `bin` on a new directory and port of its own, not started yet.
    fn unstarted(bin: &str, name: &str) -> PgServer {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("la-migrate-{name}-"))
            .tempdir()
            .unwrap();
        PgServer {
            bin: bin.to_string(),
            dir: tmp.path().to_path_buf(),
            port: next_port(),
            _tmp: tmp,
        }
    }

    /// Runs SQL (several statements allowed) and returns psql's unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let file = self.dir.join("query.sql");
        std::fs::write(&file, sql).unwrap();
        std::os::unix::fs::chown(&file, Some(postgres_uid()), None).unwrap();
        as_postgres(&format!(
            "{PG15_BIN}/psql -X -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p {} -U postgres -d {db} -f {}",
            self.port,
            file.display()
        ))
    }

    pub fn run(&self, script: &str) -> String {
        as_postgres(script)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &format!("{}/pg_ctl", self.bin),
                "-D",
                &format!("{}/data", self.dir.display()),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}

/// A port for the next server of this test process.
fn next_port() -> u16 {
    let base = 20000 + (std::process::id() % 2000) as u16 * 10;
    base + NEXT_PORT.fetch_add(1, Ordering::SeqCst) % 10
}

fn postgres_uid() -> u32 {
    let out = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// An IPv4 address of this machine other than loopback, which pods reach through their
/// sim's bridge (a pod's `127.0.0.1` is the pod itself).
pub fn host_address() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "address", "show", "scope", "global"])
        .output()
        .expect("ip (iproute2) is needed: run scripts/install-test-deps.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|line| {
            !line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .starts_with("lasim")
        })
        .find_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "inet")?;
            Some(words.get(at + 1)?.split('/').next()?.to_string())
        })
        .unwrap_or_else(|| panic!("this machine has no IPv4 address besides loopback:\n{text}"))
}
