//! The one door to `psql`: connection argv built by a pure function, the password only in the
//! child's environment (`PGPASSWORD`), never in argv or output.

use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use super::error::SeedError;

/// Where the PostgreSQL 15 client tools live on Debian (they dump and read 11 and 15 alike).
pub const DEFAULT_PSQL: &str = "/usr/lib/postgresql/15/bin/psql";

/// A database to seed or inspect.
#[derive(Clone)]
pub struct PgTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    pub password: Option<String>,
    /// The `psql` binary (default [`DEFAULT_PSQL`]).
    pub psql: PathBuf,
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("database", &self.database)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("psql", &self.psql)
            .finish()
    }
}

impl fmt::Display for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }
}

impl PgTarget {
    pub fn new(
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        database: impl Into<String>,
    ) -> Self {
        Self {
            host: host.into(),
            port,
            user: user.into(),
            database: database.into(),
            password: None,
            psql: PathBuf::from(DEFAULT_PSQL),
        }
    }

    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    pub fn with_psql(mut self, psql: impl Into<PathBuf>) -> Self {
        self.psql = psql.into();
        self
    }

    /// `psql` arguments for reading a script from stdin: no psqlrc, stop at the first error.
    pub fn script_args(&self, single_transaction: bool) -> Vec<String> {
        let mut args = vec![
            "-X".to_string(),
            "-q".to_string(),
            "-v".to_string(),
            "ON_ERROR_STOP=1".to_string(),
            "-h".to_string(),
            self.host.clone(),
            "-p".to_string(),
            self.port.to_string(),
            "-U".to_string(),
            self.user.clone(),
            "-d".to_string(),
            self.database.clone(),
        ];
        if single_transaction {
            args.push("--single-transaction".to_string());
        }
        args.extend(["-f".to_string(), "-".to_string()]);
        args
    }

    fn command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(&self.psql);
        cmd.args(args)
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGAPPNAME", "la-sim-seed")
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE");
        if let Some(pw) = &self.password {
            cmd.env("PGPASSWORD", pw);
        }
        cmd
    }

    /// Starts `psql` with `args`; stdin and stderr are piped.
    fn spawn(&self, args: &[String], stdout: Stdio) -> Result<Child, SeedError> {
        self.command(args)
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| self.spawn_error(source))
    }

    fn spawn_error(&self, source: std::io::Error) -> SeedError {
        SeedError::Spawn {
            program: self.psql.clone(),
            source,
        }
    }

    fn psql_failed(&self, what: &str, status: ExitStatus, stderr: &str) -> SeedError {
        SeedError::Psql {
            what: what.to_string(),
            target: self.to_string(),
            status: status.to_string(),
            stderr: stderr.trim().to_string(),
        }
    }

    /// Starts `psql` reading a script from its stdin; stdout is discarded, stderr collected.
    pub(crate) fn spawn_script(&self, single_transaction: bool) -> Result<RunningPsql, SeedError> {
        let mut child = self.spawn(&self.script_args(single_transaction), Stdio::null())?;
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Ok(RunningPsql { child, stderr })
    }

    /// Runs `sql` and returns the result rows, columns split on tabs (`psql -At`).
    pub fn query(&self, what: &str, sql: &str) -> Result<Vec<Vec<String>>, SeedError> {
        let mut args = self.script_args(false);
        args.splice(
            0..0,
            [
                "-A".to_string(),
                "-t".to_string(),
                "-F".to_string(),
                "\t".to_string(),
            ],
        );
        let mut child = self.spawn(&args, Stdio::piped())?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let sql = sql.to_string();
        let writer = std::thread::spawn(move || stdin.write_all(sql.as_bytes()));
        let output = child
            .wait_with_output()
            .map_err(|source| self.spawn_error(source))?;
        let _ = writer.join();
        if !output.status.success() {
            return Err(self.psql_failed(
                what,
                output.status,
                &String::from_utf8_lossy(&output.stderr),
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect())
    }
}

pub(crate) struct RunningPsql {
    pub child: Child,
    stderr: JoinHandle<String>,
}

impl RunningPsql {
    /// Waits for psql to exit; `Err` carries its stderr.
    pub fn finish(mut self, target: &PgTarget, what: &str) -> Result<(), SeedError> {
        drop(self.child.stdin.take());
        let status = self
            .child
            .wait()
            .map_err(|source| target.spawn_error(source))?;
        let stderr = self.stderr.join().unwrap_or_default();
        if status.success() {
            Ok(())
        } else {
            Err(target.psql_failed(what, status, &stderr))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_in_argv_or_debug_output() {
        let t = PgTarget::new("127.0.0.1", 5432, "postgres", "live_agent_production")
            .with_password("s3cret");
        assert!(!t.script_args(true).iter().any(|a| a.contains("s3cret")));
        assert!(!format!("{t:?} {t}").contains("s3cret"));
        assert_eq!(
            t.to_string(),
            "postgres@127.0.0.1:5432/live_agent_production"
        );
    }
}
