//! Faults the tests inject: the API answering errors, a pod's processes killed, a table of
//! PostgreSQL 11 locked by another session.

use std::process::{Command, Stdio};
use std::time::Duration;

use la_sim::seed::PgTarget;

use super::{text, Sim, NAMESPACE};

impl Sim {
    /// `la-sim fault <args>` on this sim.
    fn fault(&self, args: &[&str]) {
        let out = self.cluster.la_sim("fault", args);
        assert!(
            out.status.success(),
            "la-sim fault {}: {}",
            args.join(" "),
            text(&out.stderr)
        );
    }

    /// SIGKILLs the processes of a pod's containers; its restart policy applies.
    pub fn kill_pod_processes(&self, pod: &str) {
        self.fault(&["kill", "-n", NAMESPACE, pod]);
    }

    /// Makes the API answer `code` for `seconds` to requests whose path contains `path`.
    pub fn fail_api(&self, code: u16, seconds: u64, path: &str) {
        self.fail_api_method(code, seconds, path, "");
    }

    /// [`Sim::fail_api`] for requests of one HTTP method only (empty: all).
    pub fn fail_api_method(&self, code: u16, seconds: u64, path: &str, method: &str) {
        let (code, seconds) = (code.to_string(), seconds.to_string());
        self.fault(&[
            "api",
            "--code",
            &code,
            "--seconds",
            &seconds,
            "--path-contains",
            path,
            "--method",
            method,
        ]);
    }

    /// Holds an exclusive lock on `table` of the release's PostgreSQL 11 in a session of its
    /// own until the returned guard is dropped (or the server dies): whatever reads that
    /// table waits meanwhile, as behind a long transaction of the app.
    pub fn hold_table_lock(&self, table: &str) -> HeldLock {
        let db = self.database();
        let child = Command::new(&db.psql)
            .args(["-X", "-q", "-h", &db.host, "-p", &db.port.to_string()])
            .args(["-U", &db.user, "-d", &db.database, "-v", "ON_ERROR_STOP=1"])
            .arg("-c")
            .arg(format!(
                "begin; lock table {table} in access exclusive mode; select pg_sleep(3600);"
            ))
            .env("PGPASSWORD", db.password.clone().unwrap_or_default())
            .env("PGAPPNAME", HeldLock::APPLICATION)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("psql holding a lock");
        let probe = db.clone();
        self.wait_until(
            &format!("the lock on {table}"),
            Duration::from_secs(30),
            || {
                probe
                    .query(
                        "the locks",
                        &format!(
                            "select count(*) from pg_locks where relation = '{table}'::regclass \
                             and mode = 'AccessExclusiveLock' and granted"
                        ),
                    )
                    .is_ok_and(|rows| rows.first().is_some_and(|r| r[0] == "1"))
            },
        );
        HeldLock { child, db }
    }
}

/// The session holding a lock of [`Sim::hold_table_lock`]; dropped, its server backend is
/// terminated (a backend sleeping in a query does not notice its client go) and the lock
/// with it.
pub struct HeldLock {
    child: std::process::Child,
    db: PgTarget,
}

impl HeldLock {
    const APPLICATION: &str = "la-migrate-tests-lock";
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let _ = self.db.query(
            "the lock's session",
            &format!(
                "select pg_terminate_backend(pid) from pg_stat_activity where application_name = '{}'",
                Self::APPLICATION
            ),
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
