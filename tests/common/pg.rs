//! A throwaway PostgreSQL server (11 or 15) run as the OS user `postgres`, stopped and removed
//! on drop (also on panic).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};

pub const PG11_BIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.tools/pg11/bin");
pub const PG15_BIN: &str = "/usr/lib/postgresql/15/bin";

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

pub struct PgServer {
    pub bin: String,
    pub dir: PathBuf,
    pub port: u16,
    _tmp: tempfile::TempDir,
}

fn require(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: run scripts/install-test-deps.sh (as root) to install the test dependencies"
    );
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
        require(&format!("{bin}/postgres"));
        require(&format!("{PG15_BIN}/psql"));
        let tmp = tempfile::Builder::new()
            .prefix(&format!("la-migrate-{name}-"))
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        std::os::unix::fs::chown(&dir, Some(postgres_uid()), None).unwrap();
        let port = next_port();
        let server = PgServer {
            bin: bin.to_string(),
            dir: dir.clone(),
            port,
            _tmp: tmp,
        };
        as_postgres(&format!(
            "{bin}/initdb -D {d}/data -U postgres -A trust >/dev/null && \
             {bin}/pg_ctl -D {d}/data -w -l {d}/log -o '-p {port} -k {d} -c listen_addresses=127.0.0.1' start >/dev/null",
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
        let tmp = tempfile::Builder::new()
            .prefix(&format!("la-migrate-{name}-"))
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
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
        let port = next_port();
        let server = PgServer {
            bin: bin.to_string(),
            dir: dir.clone(),
            port,
            _tmp: tmp,
        };
        as_postgres(&format!(
            "{bin}/pg_ctl -D {d}/data -w -t 120 -l {d}/log -o '-p {port} -k {d} -c listen_addresses=127.0.0.1' start >/dev/null || {{ cat {d}/log; exit 1; }}",
            d = dir.display()
        ));
        server
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
