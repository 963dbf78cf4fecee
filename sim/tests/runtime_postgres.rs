//! PostgreSQL pods as real servers: Bitnami initialisation, md5 auth on the pod IP, name
//! resolution and volumes inside pods, PostgreSQL 15 refusing a PostgreSQL 11 volume, an
//! adopted PostgreSQL 15 volume started as is (its passwords kept), the configuration a chart
//! mounts under `/bitnami/postgresql/conf` in force, and nothing left running after stop.

mod runtime_support;

use la_sim::runtime::ContainerState;
use runtime_support::*;

const PG11: &str = "docker.io/bitnami/postgresql:11.14.0-debian-10-r28";
const PG15: &str = "docker.io/bitnami/postgresql:15.1.0-debian-11-r12";

#[test]
fn a_bitnami_postgresql_11_pod_serves_md5_on_its_ip_and_postgresql_15_refuses_its_volume() {
    let sim = Sim::new("pgrt");
    let db_ip = sim.ip(10);
    let backup_ip = sim.ip(11);
    let data = sim.volume("data-cognigy-live-agent-postgresql-0");
    let backup = sim.volume("postgres-backup");
    std::fs::write(backup.join("note.txt"), "kept on the volume\n").unwrap();
    sim.hosts("live-agent", &[(db_ip, "cognigy-live-agent-postgresql")]);

    let env = bitnami_10_env("s3cret pass");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let db = sim.pod(
        "cognigy-live-agent-postgresql-0",
        db_ip,
        vec![container(
            "cognigy-live-agent-postgresql",
            PG11,
            &env,
            &[(&data, "/bitnami/postgresql")],
        )],
    );
    sim.runtime.start_pod(&db).unwrap();
    sim.wait_ready(&db, "cognigy-live-agent-postgresql");

    let version = psql(
        db_ip,
        "s3cret pass",
        "live_agent_production",
        "show server_version",
    );
    assert!(
        version.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&version.stderr),
        sim.log(&db, "cognigy-live-agent-postgresql")
    );
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("11."));
    let wrong = psql(db_ip, "wrong", "live_agent_production", "select 1");
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let created = psql(
        db_ip,
        "s3cret pass",
        "live_agent_production",
        "create table accounts (id int); insert into accounts values (1), (2)",
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    // The guide's backup pod: dumps through the service name, writes to its volume.
    let backup_pod = sim.pod(
        "postgres-backup-0",
        backup_ip,
        vec![container(
            "postgres-backup",
            "postgres:11-alpine",
            &[
                ("POSTGRES_PASSWORD", "postgres"),
                ("PGPASSWORD", "s3cret pass"),
                ("POSTGRES_USER", "postgres"),
            ],
            &[(&backup, "/mnt/postgres-backup")],
        )],
    );
    sim.runtime.start_pod(&backup_pod).unwrap();
    sim.wait_ready(&backup_pod, "postgres-backup");
    let (code, out, err) = exec(
        &sim,
        &backup_pod,
        "postgres-backup",
        &[
            "sh",
            "-c",
            "cat /mnt/postgres-backup/note.txt && pg_dump --user $POSTGRES_USER --host cognigy-live-agent-postgresql \
             -d live_agent_production > /mnt/postgres-backup/dump.sql && hostname",
        ],
    );
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out, format!("kept on the volume\n{}\n", backup_pod.name));
    let dump = std::fs::read_to_string(backup.join("dump.sql")).unwrap();
    assert!(dump.contains("CREATE TABLE public.accounts"), "{dump}");
    assert!(!backup
        .join("dump.sql")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());

    // Inside the database pod, the socket works without -h, with the password (md5 locally).
    let (code, out, err) = exec(&sim, &db, "cognigy-live-agent-postgresql", &["sh", "-c", "PGPASSWORD=\"$POSTGRES_PASSWORD\" psql -U postgres -d live_agent_production -tAc 'select count(*) from accounts'"]);
    assert_eq!((code, out.as_str()), (0, "2\n"), "{err}");
    let (code, _, err) = exec(
        &sim,
        &db,
        "cognigy-live-agent-postgresql",
        &["psql", "-U", "postgres", "-w", "-c", "select 1"],
    );
    assert_ne!(code, 0, "local connections must need the password");
    assert!(err.contains("password"), "{err}");

    sim.runtime.stop_pod(&db.namespace, &db.name);
    assert!(sim.runtime.pod_state(&db.namespace, &db.name).is_empty());
    assert!(data.join("data/PG_VERSION").exists());

    let pg15 = sim.pod(
        "cognigy-live-agent-postgresql-0",
        db_ip,
        vec![container(
            "cognigy-live-agent-postgresql",
            PG15,
            &env,
            &[(&data, "/bitnami/postgresql")],
        )],
    );
    sim.runtime.start_pod(&pg15).unwrap();
    sim.wait_for(
        &pg15,
        "cognigy-live-agent-postgresql",
        "crash-looping",
        |s| matches!(s, ContainerState::Waiting { reason, .. } if reason == "CrashLoopBackOff"),
    );
    let log = sim.log(&pg15, "cognigy-live-agent-postgresql");
    assert!(
        log.contains("database files are incompatible with server")
            && log.contains("initialized by PostgreSQL version 11, which is not compatible with this version 15"),
        "{log}"
    );

    sim.runtime.shutdown();
    assert_eq!(sim.leftover_processes(), Vec::<String>::new());
}

#[test]
fn a_bitnami_postgresql_15_volume_is_started_as_is_and_keeps_its_password_whatever_the_env_says() {
    let sim = Sim::new("pg15keep");
    let db_ip = sim.ip(20);
    let data = sim.volume("data-cognigy-live-agent-postgresql-0");
    let start = |password: &str| {
        let env = bitnami_12_env(password);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let pod = sim.pod(
            "cognigy-live-agent-postgresql-0",
            db_ip,
            vec![container(
                "postgresql",
                PG15,
                &env,
                &[(&data, "/bitnami/postgresql")],
            )],
        );
        sim.runtime.start_pod(&pod).unwrap();
        sim.wait_ready(&pod, "postgresql");
        pod
    };

    let first = start("password A");
    assert!(
        sim.log(&first, "postgresql")
            .contains("postgresql: initialising the data directory"),
        "{}",
        sim.log(&first, "postgresql")
    );
    let created = psql(
        db_ip,
        "password A",
        "live_agent_production",
        "create table accounts (id int); insert into accounts values (1), (2), (3)",
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    sim.runtime.stop_pod(&first.namespace, &first.name);
    assert!(sim
        .runtime
        .pod_state(&first.namespace, &first.name)
        .is_empty());
    assert_eq!(
        std::fs::read_to_string(data.join("data/PG_VERSION")).unwrap(),
        "15\n"
    );

    // The same pod again, its Secret now saying password B: the image finds a data
    // directory and starts it as it is, as Bitnami's entrypoint does ("Deploying PostgreSQL
    // with persisted data"), without touching the roles' passwords.
    let logged = sim.log(&first, "postgresql").len();
    let second = start("password B");
    let log = sim.log(&second, "postgresql");
    let this_start = &log[logged..];
    assert!(
        this_start.contains("postgresql: data directory exists, skipping initialisation")
            && !this_start.contains("initialising the data directory"),
        "{this_start}"
    );
    let rows = psql(
        db_ip,
        "password A",
        "live_agent_production",
        "select count(*) from accounts",
    );
    assert!(
        rows.status.success(),
        "{}\n{this_start}",
        String::from_utf8_lossy(&rows.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&rows.stdout), "3\n");
    let refused = psql(db_ip, "password B", "live_agent_production", "select 1");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    sim.runtime.shutdown();
    assert_eq!(sim.leftover_processes(), Vec::<String>::new());
}

/// Bitnami postgresql chart 10 mounts `pgHbaConfiguration` (a ConfigMap) at
/// `/bitnami/postgresql/conf` and `postgresqlExtendedConf` at `.../conf/conf.d/`, inside the
/// data volume: the image copies both into its configuration directory and runs them.
#[test]
fn a_bitnami_pod_runs_the_pg_hba_and_conf_d_its_chart_mounts_under_bitnami_postgresql_conf() {
    let sim = Sim::new("pgconf");
    let db_ip = sim.ip(30);
    let data = sim.volume("data-cognigy-live-agent-postgresql-0");
    let hba = sim.volume("postgresql-config");
    std::fs::write(
        hba.join("pg_hba.conf"),
        "local all all md5\nhost all all 127.0.0.1/32 md5\n",
    )
    .unwrap();
    let extended = sim.volume("postgresql-extended-config");
    std::fs::write(
        extended.join("override.conf"),
        "wal_level = 'logical'\nmax_wal_senders = 7\n",
    )
    .unwrap();
    let env = bitnami_10_env("pw");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // In the chart's order: conf.d first, the data volume, then the configuration.
    let db = sim.pod(
        "cognigy-live-agent-postgresql-0",
        db_ip,
        vec![container(
            "postgresql",
            PG11,
            &env,
            &[
                (&extended, "/bitnami/postgresql/conf/conf.d/"),
                (&data, "/bitnami/postgresql"),
                (&hba, "/bitnami/postgresql/conf"),
            ],
        )],
    );
    sim.runtime.start_pod(&db).unwrap();
    sim.wait_ready(&db, "postgresql");

    // The mounted pg_hba.conf admits only the pod's loopback: the pod IP is refused ...
    let remote = psql(db_ip, "pw", "postgres", "select 1");
    assert!(
        String::from_utf8_lossy(&remote.stderr).contains("no pg_hba.conf entry for host"),
        "{}\n{}",
        String::from_utf8_lossy(&remote.stderr),
        sim.log(&db, "postgresql")
    );
    // ... and inside the pod, conf.d's settings are in force.
    let (code, out, err) = exec(
        &sim,
        &db,
        "postgresql",
        &[
            "sh",
            "-c",
            "PGPASSWORD=pw psql -h 127.0.0.1 -U postgres -tA -c 'show wal_level' -c 'show max_wal_senders'",
        ],
    );
    assert_eq!((code, out.as_str()), (0, "logical\n7\n"), "{err}");
    assert!(sim
        .log(&db, "postgresql")
        .contains("custom configuration pg_hba.conf detected"));

    sim.runtime.shutdown();
    assert_eq!(sim.leftover_processes(), Vec::<String>::new());
}
