//! Container -> program: the argv, environment, user, extra mounts, first-start setup and
//! readiness check of one container, from its [`Behaviour`]. Pure apart from reading secret
//! `*_FILE`s through the container's mounts.

use std::path::{Path, PathBuf};

use super::images::{self, Behaviour, ClientTools, PgFlavour, PgMajor};
use super::rootfs::Request;
use super::sandbox::User;
use super::tools::Tools;
use super::{ContainerSpec, PodSpec};

/// Where the runtime's own helpers (the migration stand-in, `nslookup`) appear in a container.
pub const HELPERS_DIR: &str = "/.la-sim/bin";

const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How a container's program is run.
#[derive(Debug, Clone)]
pub struct Program {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub user: User,
    /// User of `kubectl exec` sessions: the image's user (root for Docker's `postgres`, whose
    /// entrypoint only drops to `postgres` for the server)
    pub exec_user: User,
    /// Mounts besides the pod's volumes (image volumes, helpers, socket directory)
    pub extra_mounts: Vec<Request>,
    pub setup: Setup,
    pub readiness: Readiness,
    /// Signal that asks the program to stop (SIGINT: PostgreSQL's fast shutdown)
    pub stop_signal: i32,
}

/// What runs (as root, before each start of the container) to prepare its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setup {
    None,
    /// Initialise the data directory if empty, then write `pg_hba.conf`
    Postgres(PostgresInit),
    /// Write the private config file holding the password
    Redis {
        config: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresInit {
    pub major: PgMajor,
    /// `PGDATA` inside the container
    pub pgdata: String,
    pub superuser_password: Option<String>,
    /// Extra login role (Bitnami `POSTGRES_USER` other than `postgres`) and its password
    pub user: Option<(String, String)>,
    pub database: Option<String>,
    /// md5 for local (socket) connections too, as Bitnami does once a password is set
    pub local_md5: bool,
    /// Bitnami: the configuration its setup writes under [`BITNAMI_CONF_DIR`]
    pub bitnami: Option<BitnamiConf>,
}

/// What the Bitnami image's setup does with configuration at each start: it copies what is
/// mounted under `$POSTGRESQL_VOLUME_DIR/conf` (a chart's `postgresql.conf`, `pg_hba.conf`,
/// `conf.d/*.conf`) into [`BITNAMI_CONF_DIR`], writes the files it does not find there
/// ([`bitnami_postgresql_conf`], which includes `conf.d`, and [`pg_hba`]), and starts the
/// server on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitnamiConf {
    /// `$POSTGRESQL_VOLUME_DIR/conf` inside the container
    pub mounted_dir: String,
    /// `POSTGRESQL_WAL_LEVEL` (the image's own setting: `replica`)
    pub wal_level: String,
}

/// The Bitnami image's configuration directory: `postgresql.conf`, `pg_hba.conf`, `conf.d/`.
pub const BITNAMI_CONF_DIR: &str = "/opt/bitnami/postgresql/conf";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Ready while running
    Running,
    /// A PostgreSQL startup handshake on the pod IP answers
    Postgres { port: u16 },
    /// `AUTH` + `PING` answers `PONG`
    Redis { port: u16, password: Option<String> },
}

/// The program a container becomes. `read_file` reads a file at a container path (for
/// `*_FILE` variables).
pub fn program(
    pod: &PodSpec,
    container: &ContainerSpec,
    tools: &Tools,
    helpers: &Path,
    read_file: &dyn Fn(&str) -> Option<String>,
) -> Program {
    let behaviour = images::behaviour(&container.image, &container.command, &container.args);
    let env_of = |name: &str| -> Option<String> {
        let direct = container
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        direct.filter(|v| !v.is_empty()).or_else(|| {
            let file = container
                .env
                .iter()
                .rev()
                .find(|(k, _)| *k == format!("{name}_FILE"))?;
            read_file(&file.1).map(|s| s.trim_end_matches('\n').to_string())
        })
    };
    let path_for = |tools_dir: Option<&Path>| {
        let mut parts = vec![HELPERS_DIR.to_string()];
        if let Some(dir) = tools_dir {
            parts.push(dir.display().to_string());
        }
        parts.push(SYSTEM_PATH.into());
        parts.join(":")
    };
    // Relative sources are directories in the container's own scratch space.
    let mut extra_mounts = vec![
        Request {
            source: helpers.to_path_buf(),
            target: HELPERS_DIR.into(),
            read_only: true,
            is_file: false,
        },
        Request {
            source: PathBuf::from("run"),
            target: RUN_DIR.into(),
            read_only: false,
            is_file: false,
        },
    ];
    let (argv, user, setup, readiness, tools_dir, stop_signal) = match behaviour {
        Behaviour::PostgresServer { major, flavour } => {
            let bin = match major {
                PgMajor::V11 => &tools.pg11_bin,
                PgMajor::V15 => &tools.pg15_bin,
            };
            let init = postgres_init(major, flavour, &env_of);
            let port = env_of("POSTGRESQL_PORT_NUMBER")
                .and_then(|p| p.parse().ok())
                .unwrap_or(5432u16);
            if flavour == PgFlavour::Official
                && !container
                    .mounts
                    .iter()
                    .any(|m| covers(&m.container_path, &init.pgdata))
            {
                // The image declares its data directory a volume: an anonymous one per pod.
                extra_mounts.push(Request {
                    source: PathBuf::from("anonymous"),
                    target: init.pgdata.clone(),
                    read_only: false,
                    is_file: false,
                });
            }
            // The Debian-built client tools look for the socket in /run/postgresql.
            extra_mounts.push(Request {
                source: PathBuf::from("socket"),
                target: "/run/postgresql".into(),
                read_only: false,
                is_file: false,
            });
            let mut argv = vec![
                bin.join("postgres").display().to_string(),
                "-D".into(),
                init.pgdata.clone(),
            ];
            if init.bitnami.is_some() {
                argv.push(format!("--config-file={BITNAMI_CONF_DIR}/postgresql.conf"));
                argv.push(format!("--hba_file={BITNAMI_CONF_DIR}/pg_hba.conf"));
                // Private to the container, as the image's own directory is.
                extra_mounts.push(Request {
                    source: PathBuf::from("conf"),
                    target: BITNAMI_CONF_DIR.into(),
                    read_only: false,
                    is_file: false,
                });
            }
            argv.extend(
                [
                    "-c",
                    "listen_addresses=*",
                    "-c",
                    &format!("port={port}"),
                    "-c",
                    "unix_socket_directories=/tmp,/run/postgresql",
                ]
                .map(String::from),
            );
            if init.bitnami.is_some() {
                argv.extend(bitnami_extra_flags(
                    &env_of("POSTGRESQL_EXTRA_FLAGS").unwrap_or_default(),
                ));
            }
            (
                argv,
                User::named("postgres").unwrap_or(User { uid: 101, gid: 104 }),
                Setup::Postgres(init),
                Readiness::Postgres { port },
                Some(tools.pg15_bin.as_path()),
                libc::SIGINT,
            )
        }
        Behaviour::RedisServer => {
            let password = env_of("REDIS_PASSWORD");
            let port = env_of("REDIS_PORT")
                .and_then(|p| p.parse().ok())
                .unwrap_or(6379u16);
            // Every IPv4 address of the pod (the pod network is IPv4), as Bitnami allows
            // remote connections.
            let mut config = format!(
                "bind 0.0.0.0\nport {port}\nprotected-mode no\ndir /data\nappendonly yes\n\
                 save \"\"\ndaemonize no\n"
            );
            if let Some(pw) = &password {
                config.push_str(&format!("requirepass {}\n", redis_quote(pw)));
            }
            let master_password = env_of("REDIS_MASTER_PASSWORD").or_else(|| password.clone());
            if let Some(pw) = &master_password {
                config.push_str(&format!("masterauth {}\n", redis_quote(pw)));
            }
            if env_of("REDIS_REPLICATION_MODE").as_deref() == Some("slave") {
                if let Some(master) = env_of("REDIS_MASTER_HOST") {
                    let master_port =
                        env_of("REDIS_MASTER_PORT_NUMBER").unwrap_or_else(|| "6379".into());
                    config.push_str(&format!("replicaof {master} {master_port}\n"));
                }
            }
            if !container
                .mounts
                .iter()
                .any(|m| covers(&m.container_path, "/data"))
            {
                extra_mounts.push(Request {
                    source: PathBuf::from("anonymous"),
                    target: "/data".into(),
                    read_only: false,
                    is_file: false,
                });
            }
            (
                vec![
                    tools.redis_server.display().to_string(),
                    REDIS_CONFIG.into(),
                ],
                User::ROOT,
                Setup::Redis { config },
                Readiness::Redis { port, password },
                Some(tools.redis_bin.as_path()),
                libc::SIGTERM,
            )
        }
        Behaviour::ChatwootPrepare => (
            vec!["/bin/sh".into(), format!("{HELPERS_DIR}/chatwoot-prepare")],
            User::ROOT,
            Setup::None,
            Readiness::Running,
            Some(tools.pg15_bin.as_path()),
            libc::SIGTERM,
        ),
        Behaviour::Command { tools: client } => {
            let argv: Vec<String> = container
                .command
                .iter()
                .chain(&container.args)
                .cloned()
                .collect();
            let dir = match client {
                ClientTools::Postgres | ClientTools::App => Some(tools.pg15_bin.as_path()),
                ClientTools::Redis => Some(tools.redis_bin.as_path()),
                ClientTools::Plain => None,
            };
            (
                argv,
                User::ROOT,
                Setup::None,
                Readiness::Running,
                dir,
                libc::SIGTERM,
            )
        }
        Behaviour::Idle => (
            vec!["sleep".into(), "infinity".into()],
            User::ROOT,
            Setup::None,
            Readiness::Running,
            None,
            libc::SIGTERM,
        ),
    };
    let home = if user == User::ROOT { "/root" } else { "/tmp" };
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), path_for(tools_dir)),
        ("HOME".into(), home.into()),
        ("HOSTNAME".into(), pod.name.clone()),
    ];
    for (k, v) in &container.env {
        env.retain(|(existing, _)| existing != k);
        env.push((k.clone(), v.clone()));
    }
    let exec_user = match behaviour {
        Behaviour::PostgresServer {
            flavour: PgFlavour::Official,
            ..
        } => User::ROOT,
        _ => user,
    };
    Program {
        exec_user,
        argv,
        env,
        user,
        extra_mounts,
        setup,
        readiness,
        stop_signal,
    }
}

/// The container's private run directory (not `/tmp`, which charts share as an emptyDir):
/// holds the Redis config with its password and PostgreSQL's initial password file.
pub const RUN_DIR: &str = "/.la-sim-run";
pub const REDIS_CONFIG: &str = "/.la-sim-run/redis.conf";

fn postgres_init(
    major: PgMajor,
    flavour: PgFlavour,
    env_of: &dyn Fn(&str) -> Option<String>,
) -> PostgresInit {
    let pgdata = env_of("PGDATA").unwrap_or_else(|| match flavour {
        PgFlavour::Bitnami => "/bitnami/postgresql/data".into(),
        PgFlavour::Official => "/var/lib/postgresql/data".into(),
    });
    let user = env_of("POSTGRES_USER")
        .or_else(|| env_of("POSTGRESQL_USERNAME"))
        .unwrap_or_else(|| "postgres".into());
    let password = env_of("POSTGRES_PASSWORD").or_else(|| env_of("POSTGRESQL_PASSWORD"));
    let postgres_password =
        env_of("POSTGRES_POSTGRES_PASSWORD").or_else(|| env_of("POSTGRESQL_POSTGRES_PASSWORD"));
    let database = env_of("POSTGRES_DB")
        .or_else(|| env_of("POSTGRES_DATABASE"))
        .or_else(|| env_of("POSTGRESQL_DATABASE"))
        .or_else(|| (flavour == PgFlavour::Official && user != "postgres").then(|| user.clone()))
        .filter(|db| db != "postgres");
    let (superuser_password, extra_user) = if user == "postgres" {
        (password, None)
    } else {
        (
            postgres_password,
            Some((user, password.unwrap_or_default())),
        )
    };
    let has_password = superuser_password.is_some() || extra_user.is_some();
    let bitnami = (flavour == PgFlavour::Bitnami).then(|| BitnamiConf {
        mounted_dir: format!(
            "{}/conf",
            env_of("POSTGRESQL_VOLUME_DIR")
                .unwrap_or_else(|| "/bitnami/postgresql".into())
                .trim_end_matches('/')
        ),
        wal_level: env_of("POSTGRESQL_WAL_LEVEL").unwrap_or_else(|| "replica".into()),
    });
    PostgresInit {
        major,
        pgdata,
        superuser_password,
        user: extra_user,
        database,
        local_md5: flavour == PgFlavour::Bitnami && has_password,
        bitnami,
    }
}

/// `POSTGRESQL_EXTRA_FLAGS` as the image's `run.sh` appends it to the server's argv:
/// `read -r -a` of the value, i.e. its first line split at blanks, no quoting.
pub fn bitnami_extra_flags(value: &str) -> Vec<String> {
    value
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// The `postgresql.conf` the Bitnami image starts with when none is mounted: PostgreSQL's
/// defaults, the replication settings its setup always writes (`max_wal_senders` 16, its
/// `wal_level`; `max_replication_slots` stays PostgreSQL's 10), and `include_dir = 'conf.d'`
/// after them, so a chart's `conf.d/*.conf` overrides them and `postgresql.auto.conf`
/// (`ALTER SYSTEM`, in the data directory) overrides both. Listen address, port and socket
/// directories are on the server's command line.
pub fn bitnami_postgresql_conf(major: PgMajor, conf: &BitnamiConf) -> String {
    let keep = match major {
        PgMajor::V11 => "wal_keep_segments = '12'",
        PgMajor::V15 => "wal_keep_size = '128MB'",
    };
    format!(
        "# written by la-sim, as the image's setup would\n\
         wal_level = '{}'\n\
         max_wal_size = '400MB'\n\
         max_wal_senders = '16'\n\
         {keep}\n\
         hot_standby = 'on'\n\
         fsync = 'on'\n\
         include_dir = 'conf.d'\n",
        conf.wal_level.replace('\'', "''")
    )
}

/// `pg_hba.conf` as the image writes it: md5 everywhere once a password is set (Bitnami),
/// or trust on the socket and md5 over TCP (official image).
pub fn pg_hba(init: &PostgresInit) -> String {
    let has_password = init.superuser_password.is_some() || init.user.is_some();
    let tcp = if has_password { "md5" } else { "trust" };
    let local = if init.local_md5 { "md5" } else { "trust" };
    format!(
        "# written by la-sim, as the image's entrypoint would\n\
         local all all {local}\n\
         host all all 0.0.0.0/0 {tcp}\n\
         host all all ::/0 {tcp}\n"
    )
}

/// SQL run in single-user mode on a fresh cluster: passwords, role, database.
pub fn init_sql(init: &PostgresInit) -> String {
    let mut sql = String::new();
    if let Some(pw) = &init.superuser_password {
        sql.push_str(&format!(
            "ALTER ROLE postgres WITH PASSWORD {};\n",
            sql_literal(pw)
        ));
    }
    if let Some((user, pw)) = &init.user {
        sql.push_str(&format!(
            "CREATE ROLE {} WITH LOGIN CREATEDB PASSWORD {};\n",
            sql_ident(user),
            sql_literal(pw)
        ));
    }
    if let Some(db) = &init.database {
        let owner = init
            .user
            .as_ref()
            .map(|(u, _)| u.as_str())
            .unwrap_or("postgres");
        sql.push_str(&format!(
            "CREATE DATABASE {} OWNER {};\n",
            sql_ident(db),
            sql_ident(owner)
        ));
    }
    sql
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn sql_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn redis_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn covers(mount: &str, path: &str) -> bool {
    let mount = mount.trim_end_matches('/');
    path == mount || path.starts_with(&format!("{mount}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn bitnami_10_env_with_the_postgres_user_sets_the_superuser_password_and_database() {
        let init = postgres_init(
            PgMajor::V11,
            PgFlavour::Bitnami,
            &env(&[
                ("PGDATA", "/bitnami/postgresql/data"),
                ("POSTGRES_USER", "postgres"),
                ("POSTGRES_PASSWORD", "s3cr'et"),
                ("POSTGRES_DB", "live_agent_production"),
            ]),
        );
        assert_eq!(init.superuser_password.as_deref(), Some("s3cr'et"));
        assert_eq!(init.user, None);
        assert!(init.local_md5);
        insta::assert_snapshot!(init_sql(&init));
        insta::assert_snapshot!(pg_hba(&init));
    }

    #[test]
    fn bitnami_env_with_a_custom_user_creates_the_role_owning_the_database() {
        let init = postgres_init(
            PgMajor::V15,
            PgFlavour::Bitnami,
            &env(&[
                ("POSTGRES_USER", "chatwoot"),
                ("POSTGRES_PASSWORD", "pw"),
                ("POSTGRES_POSTGRES_PASSWORD", "admin"),
                ("POSTGRES_DATABASE", "live_agent_production"),
            ]),
        );
        assert_eq!(init.pgdata, "/bitnami/postgresql/data");
        assert_eq!(init.superuser_password.as_deref(), Some("admin"));
        insta::assert_snapshot!(init_sql(&init));
    }

    #[test]
    fn the_official_image_trusts_the_socket_and_defaults_its_data_directory() {
        let init = postgres_init(
            PgMajor::V11,
            PgFlavour::Official,
            &env(&[("POSTGRES_PASSWORD", "postgres")]),
        );
        assert_eq!(init.pgdata, "/var/lib/postgresql/data");
        assert_eq!(init.database, None);
        assert!(pg_hba(&init).contains("local all all trust"));
        assert!(pg_hba(&init).contains("host all all 0.0.0.0/0 md5"));
    }

    fn postgres_container(image: &str, env: &[(&str, &str)]) -> Program {
        let pod = PodSpec {
            namespace: "live-agent".into(),
            name: "pg-0".into(),
            uid: "u".into(),
            ip: std::net::Ipv4Addr::new(10, 0, 0, 2),
            hostname: String::new(),
            init_containers: vec![],
            containers: vec![],
            restart_policy: "Always".into(),
            groups: vec![],
        };
        let container = ContainerSpec {
            name: "postgresql".into(),
            image: image.into(),
            command: vec![],
            args: vec![],
            env: env.iter().map(|&(k, v)| (k.into(), v.into())).collect(),
            mounts: vec![],
            run_as: Default::default(),
        };
        let tools = Tools {
            pg11_bin: "/pg11".into(),
            pg15_bin: "/pg15".into(),
            redis_server: "/redis/redis-server".into(),
            redis_cli: "/redis/redis-cli".into(),
            redis_bin: "/redis".into(),
        };
        program(&pod, &container, &tools, Path::new("/helpers"), &|_| None)
    }

    #[test]
    fn bitnami_starts_on_its_config_directory_with_the_extra_flags_last() {
        let p = postgres_container(
            "docker.io/bitnami/postgresql:11.14.0-debian-10-r28",
            &[(
                "POSTGRESQL_EXTRA_FLAGS",
                "-c  max_replication_slots=12\t-c wal_sender_timeout=0\n-c ignored=1",
            )],
        );
        assert_eq!(
            p.argv[1..],
            [
                "-D",
                "/bitnami/postgresql/data",
                "--config-file=/opt/bitnami/postgresql/conf/postgresql.conf",
                "--hba_file=/opt/bitnami/postgresql/conf/pg_hba.conf",
                "-c",
                "listen_addresses=*",
                "-c",
                "port=5432",
                "-c",
                "unix_socket_directories=/tmp,/run/postgresql",
                "-c",
                "max_replication_slots=12",
                "-c",
                "wal_sender_timeout=0",
            ]
        );
        assert!(p
            .extra_mounts
            .iter()
            .any(|m| m.target == BITNAMI_CONF_DIR && m.source == Path::new("conf")));
        let Setup::Postgres(init) = &p.setup else {
            panic!("{:?}", p.setup)
        };
        assert_eq!(
            init.bitnami.as_ref().map(|b| b.mounted_dir.as_str()),
            Some("/bitnami/postgresql/conf")
        );
    }

    #[test]
    fn the_official_image_ignores_bitnamis_flags_and_keeps_its_config_in_the_data_directory() {
        let p = postgres_container(
            "postgres:11-alpine",
            &[("POSTGRESQL_EXTRA_FLAGS", "-c wal_level=logical")],
        );
        assert!(!p
            .argv
            .iter()
            .any(|a| a.contains("wal_level") || a.starts_with("--config-file")));
        assert!(!p.extra_mounts.iter().any(|m| m.target == BITNAMI_CONF_DIR));
    }

    #[test]
    fn bitnamis_postgresql_conf_sets_its_replication_settings_before_including_conf_d() {
        let init = postgres_init(
            PgMajor::V11,
            PgFlavour::Bitnami,
            &env(&[("POSTGRESQL_VOLUME_DIR", "/bitnami/postgresql/")]),
        );
        let conf = init.bitnami.expect("bitnami");
        assert_eq!(conf.mounted_dir, "/bitnami/postgresql/conf");
        let text = bitnami_postgresql_conf(PgMajor::V11, &conf);
        assert!(
            text.trim_end().ends_with("include_dir = 'conf.d'"),
            "{text}"
        );
        insta::assert_snapshot!(text);
        let v15 = bitnami_postgresql_conf(PgMajor::V15, &conf);
        assert!(v15.contains("wal_keep_size = '128MB'") && !v15.contains("wal_keep_segments"));
    }

    #[test]
    fn without_any_password_everything_is_trusted() {
        let init = postgres_init(PgMajor::V11, PgFlavour::Bitnami, &env(&[]));
        assert!(!pg_hba(&init).contains("md5"));
    }
}
