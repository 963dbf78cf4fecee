//! Throw-away PostgreSQL 11 and 15 servers for the seed tests: initdb into a private temp dir,
//! md5 authentication with a password (as Bitnami configures it), TCP on 127.0.0.1. The server
//! is stopped and its directory removed when the guard drops, also when a test panics.
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use la_sim::seed::PgTarget;

#[path = "../../../tests/common/tools.rs"]
mod tools;

pub use tools::PG15_BIN;

pub const PASSWORD: &str = "seed-test-password";
pub const DATABASE: &str = "live_agent_production";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Major {
    Pg11,
    Pg15,
}

impl Major {
    pub fn bin_dir(self) -> PathBuf {
        match self {
            Major::Pg11 => tools::pg11_bin(),
            Major::Pg15 => PathBuf::from(PG15_BIN),
        }
    }
}

/// The PostgreSQL 15 client tool `name`, or a failure that says how to get it.
pub fn pg15_tool(name: &str) -> PathBuf {
    let path = Path::new(PG15_BIN).join(name);
    tools::require(&path);
    path
}

/// uid and gid of OS user `postgres`: the server refuses to run as root.
fn postgres_ids() -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"postgres"))
            .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

pub struct PgServer {
    pub major: Major,
    pub port: u16,
    data: PathBuf,
    ids: Option<(u32, u32)>,
    // Last, so the directory goes after the server has stopped.
    dir: tempfile::TempDir,
}

impl PgServer {
    pub fn start(major: Major) -> PgServer {
        let bin = major.bin_dir();
        assert!(
            bin.join("postgres").is_file() && bin.join("initdb").is_file() && bin.join("pg_ctl").is_file(),
            "PostgreSQL {major:?} server binaries are missing in {}: run scripts/install-test-deps.sh",
            bin.display()
        );
        let ids = if is_root() {
            Some(postgres_ids().expect(
                "running as root needs OS user `postgres`: run scripts/install-test-deps.sh",
            ))
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("seed-pg-")
            .tempdir()
            .expect("temp dir");
        let pwfile = dir.path().join("pwfile");
        fs::write(&pwfile, PASSWORD).unwrap();
        fs::set_permissions(&pwfile, fs::Permissions::from_mode(0o600)).unwrap();
        if let Some((uid, gid)) = ids {
            chown(dir.path(), Some(uid), Some(gid)).unwrap();
            chown(&pwfile, Some(uid), Some(gid)).unwrap();
        }
        let data = dir.path().join("data");
        let mut server = PgServer {
            major,
            port: 0,
            data,
            ids,
            dir,
        };
        server.run(
            "initdb",
            &[
                "-D",
                server.data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "md5",
                &format!("--pwfile={}", pwfile.display()),
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        fs::remove_file(&pwfile).unwrap();
        // A free port can be taken by someone else between probing and binding: retry.
        for attempt in 0.. {
            server.port = free_port();
            let opts = format!(
                "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                server.port,
                server.dir.path().display()
            );
            let log = server.dir.path().join("server.log");
            let out = server.try_run(
                "pg_ctl",
                &[
                    "-D",
                    server.data.to_str().unwrap(),
                    "-l",
                    log.to_str().unwrap(),
                    "-o",
                    &opts,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            );
            if out.status.success() {
                break;
            }
            assert!(
                attempt < 3,
                "PostgreSQL {major:?} did not start: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        server
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.major.bin_dir().join(tool));
        cmd.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.ids {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn try_run(&self, tool: &str, args: &[&str]) -> Output {
        self.command(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"))
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.try_run(tool, args);
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A connection as the superuser `postgres` to `database`.
    pub fn target(&self, database: &str) -> PgTarget {
        PgTarget::new("127.0.0.1", self.port, "postgres", database)
            .with_password(PASSWORD)
            .with_psql(pg15_tool("psql"))
    }

    /// Creates an empty database and returns a connection to it.
    pub fn create_database(&self, name: &str) -> PgTarget {
        self.target("postgres")
            .query("create database", &format!("CREATE DATABASE {name};"))
            .unwrap();
        self.target(name)
    }

    /// Runs a PostgreSQL 15 client tool against this server (password via environment).
    pub fn client(&self, tool: &str, args: &[&str]) -> Output {
        Command::new(pg15_tool(tool))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(args)
            .env("PGPASSWORD", PASSWORD)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.try_run(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
