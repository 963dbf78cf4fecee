//! Image -> behaviour: what a container becomes on this machine. Pure; the only input is the
//! container's image and command line.
//!
//! | image | behaviour |
//! |---|---|
//! | `*/postgresql:11.*` (Bitnami, `bitnamilegacy`), `postgres:11*` | PostgreSQL 11 server, unless a command is given |
//! | `*/postgresql:15.*`, `cognigy.azurecr.io/postgres:15.*`, `postgres:15*` | PostgreSQL 15 server, unless a command is given |
//! | `*/redis:*` | `redis-server` (the chart's start scripts are not run) |
//! | Live Agent app with `db:chatwoot_prepare` in its command line | the migration stand-in |
//! | Live Agent app or busybox running a shell or a command | that command, with the host's tools |
//! | anything else | stays alive doing nothing, Ready at once |
//!
//! Only the PostgreSQL 11 *server* exists on these machines, so a PostgreSQL 11 image (e.g. the
//! guide's `postgres:11-alpine` backup pod) runs exec'd commands with the PostgreSQL 15 client
//! tools, which read and dump a PostgreSQL 11 server as the 11 tools would.

/// PostgreSQL major version of a server image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgMajor {
    V11,
    V15,
}

/// Whose entrypoint conventions the image follows (env names, data directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgFlavour {
    /// `bitnami/postgresql`: data under `/bitnami/postgresql`, `POSTGRESQL_*`/`POSTGRES_*` env
    Bitnami,
    /// Docker's official `postgres`: data under `/var/lib/postgresql/data`, `POSTGRES_*` env
    Official,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    PostgresServer {
        major: PgMajor,
        flavour: PgFlavour,
    },
    RedisServer,
    /// The stand-in for `rails db:chatwoot_prepare` (see `standin.rs`)
    ChatwootPrepare,
    /// Run the container's own command line, with the image's client tools on `PATH`
    Command {
        tools: ClientTools,
    },
    /// Stay alive and do nothing
    Idle,
}

/// Which client tools a command finds on `PATH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTools {
    Postgres,
    Redis,
    /// Live Agent app image: PostgreSQL client tools (it carries `pg_isready`, `psql`)
    App,
    Plain,
}

/// What an image with this command line becomes.
pub fn behaviour(image: &str, command: &[String], args: &[String]) -> Behaviour {
    let (repo, tag) = split_image(image);
    let name = repo.rsplit('/').next().unwrap_or(repo);
    let has_command = !command.is_empty() || !args.is_empty();
    if name == "postgresql" || name == "postgres" {
        let flavour = if repo.contains("bitnami") {
            PgFlavour::Bitnami
        } else {
            PgFlavour::Official
        };
        let major = if tag.starts_with("11") {
            Some(PgMajor::V11)
        } else if tag.starts_with("15") {
            Some(PgMajor::V15)
        } else {
            None
        };
        return match (major, has_command) {
            (Some(major), false) => Behaviour::PostgresServer { major, flavour },
            _ => Behaviour::Command {
                tools: ClientTools::Postgres,
            },
        };
    }
    if name == "redis" {
        return Behaviour::RedisServer;
    }
    if name == "live-agent" {
        if command
            .iter()
            .chain(args)
            .any(|a| a.contains("db:chatwoot_prepare"))
        {
            return Behaviour::ChatwootPrepare;
        }
        if command.first().is_some_and(|c| is_shell(c)) {
            return Behaviour::Command {
                tools: ClientTools::App,
            };
        }
        return Behaviour::Idle;
    }
    if name == "busybox" && has_command {
        return Behaviour::Command {
            tools: ClientTools::Plain,
        };
    }
    Behaviour::Idle
}

fn is_shell(program: &str) -> bool {
    matches!(
        program.rsplit('/').next(),
        Some("sh") | Some("bash") | Some("ash")
    )
}

/// `registry/repo/name:tag@digest` -> (`registry/repo/name`, `tag`); no tag gives `latest`.
fn split_image(image: &str) -> (&str, &str) {
    let image = image.split('@').next().unwrap_or(image);
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(image: &str) -> Behaviour {
        behaviour(image, &[], &[])
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bitnami_postgresql_11_and_15_become_servers_of_their_major() {
        let pg = |major| Behaviour::PostgresServer {
            major,
            flavour: PgFlavour::Bitnami,
        };
        assert_eq!(
            of("docker.io/bitnami/postgresql:11.14.0-debian-10-r28"),
            pg(PgMajor::V11)
        );
        assert_eq!(
            of("docker.io/bitnami/postgresql:15.1.0-debian-11-r12"),
            pg(PgMajor::V15)
        );
        assert_eq!(
            of("docker.io/bitnamilegacy/postgresql:15.1.0-debian-11-r12"),
            pg(PgMajor::V15)
        );
    }

    #[test]
    fn official_and_cognigy_postgres_images_become_servers() {
        let pg = |major| Behaviour::PostgresServer {
            major,
            flavour: PgFlavour::Official,
        };
        assert_eq!(of("postgres:11-alpine"), pg(PgMajor::V11));
        assert_eq!(of("postgres:15"), pg(PgMajor::V15));
        assert_eq!(of("cognigy.azurecr.io/postgres:15.4"), pg(PgMajor::V15));
        assert_eq!(
            of("registry:5000/postgres:15.2@sha256:abc"),
            pg(PgMajor::V15)
        );
    }

    #[test]
    fn a_postgres_image_with_a_command_runs_the_command_with_client_tools() {
        let b = behaviour("bitnami/postgresql:15.1.0", &strings(&["psql"]), &[]);
        assert_eq!(
            b,
            Behaviour::Command {
                tools: ClientTools::Postgres
            }
        );
    }

    #[test]
    fn an_unknown_postgres_major_is_not_a_server() {
        assert_eq!(
            of("postgres:9.6"),
            Behaviour::Command {
                tools: ClientTools::Postgres
            }
        );
    }

    #[test]
    fn bitnami_redis_becomes_redis_server_whatever_its_command() {
        let start = strings(&[
            "/bin/bash",
            "-c",
            "/opt/bitnami/scripts/start-scripts/start-master.sh",
        ]);
        assert_eq!(
            behaviour("docker.io/bitnami/redis:6.2.6-debian-10-r97", &start, &[]),
            Behaviour::RedisServer
        );
        assert_eq!(
            of("docker.io/bitnamilegacy/redis:7.0.7-debian-11-r2"),
            Behaviour::RedisServer
        );
    }

    #[test]
    fn the_live_agent_migration_job_becomes_the_stand_in() {
        let args = strings(&["bundle", "exec", "rails", "db:chatwoot_prepare"]);
        let image =
            "cognigy.azurecr.io/live-agent:4799741fef5323538b6ea087194706864ee014e6-1674154743";
        assert_eq!(behaviour(image, &[], &args), Behaviour::ChatwootPrepare);
    }

    #[test]
    fn live_agent_servers_idle_but_their_shell_init_containers_run() {
        let image =
            "cognigy.azurecr.io/live-agent:4799741fef5323538b6ea087194706864ee014e6-1674154743";
        let rails = behaviour(
            image,
            &strings(&["docker/entrypoints/rails.sh"]),
            &strings(&["bundle", "exec", "rails", "s"]),
        );
        assert_eq!(rails, Behaviour::Idle);
        let wait = behaviour(
            image,
            &strings(&["/bin/sh"]),
            &strings(&["-c", "until pg_isready; do sleep 2; done"]),
        );
        assert_eq!(
            wait,
            Behaviour::Command {
                tools: ClientTools::App
            }
        );
    }

    #[test]
    fn other_images_idle_and_busybox_runs_its_command() {
        assert_eq!(
            of("cognigy.azurecr.io/live-agent-odata:65b8306-1668619476"),
            Behaviour::Idle
        );
        assert_eq!(of("busybox"), Behaviour::Idle);
        assert_eq!(
            of("quay.io/external_storage/efs-provisioner:latest"),
            Behaviour::Idle
        );
        let wait = behaviour(
            "busybox:1.28",
            &strings(&["sh", "-c", "until nslookup x; do sleep 2; done"]),
            &[],
        );
        assert_eq!(
            wait,
            Behaviour::Command {
                tools: ClientTools::Plain
            }
        );
    }
}
