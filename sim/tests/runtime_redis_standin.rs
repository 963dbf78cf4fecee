//! Redis pods with the chart's password, the `db:chatwoot_prepare` stand-in on an empty and a
//! populated database, restarts after a killed container, and a tty exec.

mod runtime_support;

use std::net::Ipv4Addr;

use la_sim::runtime::{ContainerSpec, ContainerState, PodSpec};
use runtime_support::*;

const REDIS: &str = "docker.io/bitnami/redis:6.2.6-debian-10-r97";
const PG15: &str = "docker.io/bitnami/postgresql:15.1.0-debian-11-r12";
const APP: &str =
    "cognigy.azurecr.io/live-agent:4799741fef5323538b6ea087194706864ee014e6-1674154743";

fn migration_job(sim: &Sim, name: &str, ip: Ipv4Addr, db_host: &str) -> PodSpec {
    let mut job = container(
        "db-migrate-job",
        APP,
        &[
            ("POSTGRES_HOST", db_host),
            ("POSTGRES_PORT", "5432"),
            ("POSTGRES_USERNAME", "postgres"),
            ("POSTGRES_DB", "live_agent_production"),
            ("POSTGRES_SSL_MODE", "disable"),
            (
                "REDIS_URL",
                "redis://:redis@cognigy-live-agent-redis-master:6379",
            ),
            ("POSTGRES_PASSWORD", "pg-pass"),
            ("REDIS_PASSWORD", "redis-pass"),
        ],
        &[],
    );
    job.args = ["bundle", "exec", "rails", "db:chatwoot_prepare"]
        .map(String::from)
        .to_vec();
    let mut pod = sim.pod(name, ip, vec![job]);
    pod.restart_policy = "Never".into();
    pod
}

fn wait_exit(sim: &Sim, pod: &PodSpec) -> i32 {
    sim.wait_for(pod, "db-migrate-job", "terminated", |s| {
        matches!(s, ContainerState::Terminated { .. })
    });
    match &sim.runtime.pod_state(&pod.namespace, &pod.name)[0].1 {
        ContainerState::Terminated { exit_code, .. } => *exit_code,
        other => unreachable!("{other:?}"),
    }
}

/// Waits until some file under `dir` (the AOF directory included) contains `needle`.
fn wait_until_on_disk(dir: &std::path::Path, needle: &[u8]) {
    fn holds(dir: &std::path::Path, needle: &[u8]) -> bool {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                let path = entry.path();
                if path.is_dir() {
                    holds(&path, needle)
                } else {
                    std::fs::read(&path)
                        .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                        .unwrap_or(false)
                }
            })
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !holds(dir, needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "Redis never wrote {:?} under {}",
            String::from_utf8_lossy(needle),
            dir.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn redis_cli(sim: &Sim, pod: &PodSpec, command: &str) -> String {
    let script = format!("REDISCLI_AUTH=\"$REDIS_PASSWORD\" redis-cli --no-auth-warning -h cognigy-live-agent-redis-master {command}");
    let (code, out, err) = exec(sim, pod, "redis", &["sh", "-c", &script]);
    assert_eq!(code, 0, "{err}");
    out
}

#[test]
fn redis_needs_the_chart_password_and_the_stand_in_seeds_only_an_empty_database() {
    let sim = Sim::new("rsrt");
    let redis_ip = sim.ip(10);
    let db_ip = sim.ip(11);
    sim.hosts(
        "live-agent",
        &[
            (redis_ip, "cognigy-live-agent-redis-master"),
            (db_ip, "cognigy-live-agent-postgresql"),
        ],
    );
    let redis_data = sim.volume("redis-data");
    let mut redis_container = container(
        "redis",
        REDIS,
        &[
            ("REDIS_PASSWORD", "redis-pass"),
            ("REDIS_REPLICATION_MODE", "master"),
        ],
        &[(&redis_data, "/data")],
    );
    redis_container.command = [
        "/bin/bash",
        "-c",
        "/opt/bitnami/scripts/start-scripts/start-master.sh",
    ]
    .map(String::from)
    .to_vec();
    let redis = sim.pod(
        "cognigy-live-agent-redis-master-0",
        redis_ip,
        vec![redis_container],
    );
    let db_data = sim.volume("pg15");
    let db = sim.pod(
        "cognigy-live-agent-postgresql-0",
        db_ip,
        vec![container(
            "postgresql",
            PG15,
            &[
                ("POSTGRES_PASSWORD", "pg-pass"),
                ("POSTGRES_DB", "live_agent_production"),
            ],
            &[(&db_data, "/bitnami/postgresql")],
        )],
    );
    sim.runtime.start_pod(&redis).unwrap();
    sim.runtime.start_pod(&db).unwrap();
    sim.wait_ready(&redis, "redis");
    sim.wait_ready(&db, "postgresql");

    assert_eq!(redis_cli(&sim, &redis, "PING"), "PONG\n");
    let (_, out, _) = exec(
        &sim,
        &redis,
        "redis",
        &[
            "redis-cli",
            "-h",
            "cognigy-live-agent-redis-master",
            "GET",
            "x",
        ],
    );
    assert!(out.contains("NOAUTH"), "{out}");
    assert!(
        redis_data.join("appendonly.aof").exists() || redis_data.join("appendonlydir").exists()
    );

    // Empty database: schema markers and the onboarding key.
    let first = migration_job(
        &sim,
        "cognigy-live-agent-migrate-a",
        sim.ip(12),
        "cognigy-live-agent-postgresql",
    );
    sim.runtime.start_pod(&first).unwrap();
    assert_eq!(
        wait_exit(&sim, &first),
        0,
        "{}",
        sim.log(&first, "db-migrate-job")
    );
    assert_eq!(
        redis_cli(&sim, &redis, "GET alfred:CHATWOOT_INSTALLATION_ONBOARDING"),
        "true\n"
    );
    let versions = psql(
        db_ip,
        "pg-pass",
        "live_agent_production",
        "select max(version) from schema_migrations",
    );
    assert_eq!(
        String::from_utf8_lossy(&versions.stdout),
        format!("{}\n", la_sim::seed::SCHEMA_VERSION),
        "{}",
        String::from_utf8_lossy(&versions.stderr)
    );
    sim.runtime.stop_pod(&first.namespace, &first.name);

    // Populated database: data and Redis left alone.
    assert_eq!(
        redis_cli(&sim, &redis, "DEL alfred:CHATWOOT_INSTALLATION_ONBOARDING"),
        "1\n"
    );
    let before = psql(
        db_ip,
        "pg-pass",
        "live_agent_production",
        "select count(*) from schema_migrations",
    );
    let second = migration_job(
        &sim,
        "cognigy-live-agent-migrate-b",
        sim.ip(13),
        "cognigy-live-agent-postgresql",
    );
    sim.runtime.start_pod(&second).unwrap();
    assert_eq!(
        wait_exit(&sim, &second),
        0,
        "{}",
        sim.log(&second, "db-migrate-job")
    );
    assert!(sim
        .log(&second, "db-migrate-job")
        .contains("leaving its data alone"));
    assert_eq!(
        redis_cli(
            &sim,
            &redis,
            "EXISTS alfred:CHATWOOT_INSTALLATION_ONBOARDING"
        ),
        "0\n"
    );
    let after = psql(
        db_ip,
        "pg-pass",
        "live_agent_production",
        "select count(*) from schema_migrations",
    );
    assert_eq!(before.stdout, after.stdout);

    // Unreachable database: the Job's pod fails with a log line.
    let broken = migration_job(
        &sim,
        "cognigy-live-agent-migrate-c",
        sim.ip(14),
        &sim.ip(99).to_string(),
    );
    sim.runtime.start_pod(&broken).unwrap();
    assert_ne!(wait_exit(&sim, &broken), 0);
    assert!(sim
        .log(&broken, "db-migrate-job")
        .contains("could not connect to PostgreSQL"));

    // A killed Redis comes back (restartPolicy Always) with its data.
    // Redis appends to its AOF before replying but may postpone the write while an fsync is
    // slow (appendfsync everysec), so the key is on disk only once a file in /data holds it.
    assert_eq!(redis_cli(&sim, &redis, "SET kept yes"), "OK\n");
    wait_until_on_disk(&redis_data, b"kept");
    sim.runtime
        .kill_container(&redis.namespace, &redis.name, "redis");
    sim.wait_for(&redis, "redis", "restarting", |s| {
        !matches!(s, ContainerState::Running { ready: true })
    });
    sim.wait_ready(&redis, "redis");
    assert_eq!(redis_cli(&sim, &redis, "GET kept"), "yes\n");

    sim.runtime.shutdown();
    assert_eq!(sim.leftover_processes(), Vec::<String>::new());
}

#[test]
fn an_idle_image_is_ready_at_once_and_a_tty_exec_sees_a_terminal() {
    let sim = Sim::new("ttyrt");
    let storage = sim.volume("live-agent");
    std::fs::write(storage.join("file"), "attachment\n").unwrap();
    let app: ContainerSpec = container("live-agent-app", APP, &[], &[(&storage, "/storage")]);
    let pod = sim.pod("cognigy-live-agent-app", sim.ip(10), vec![app]);
    sim.runtime.start_pod(&pod).unwrap();
    sim.wait_ready(&pod, "live-agent-app");
    let (code, out, _) = exec(&sim, &pod, "live-agent-app", &["cat", "/storage/file"]);
    assert_eq!((code, out.as_str()), (0, "attachment\n"));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let output = rt.block_on(async {
        use tokio::io::AsyncReadExt;
        // The resize reaches the terminal after the process starts, as with a kubelet, so
        // the script waits (up to 5 s) for a size other than the initial 0x0.
        let script = "test -t 0 && test -t 1 && i=0 && \
            while [ \"$(stty size)\" = '0 0' ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
            stty size";
        let argv = ["sh", "-c", script].map(String::from);
        let mut child = sim
            .runtime
            .exec(&pod.namespace, &pod.name, "live-agent-app", &argv, true)
            .unwrap();
        child.resize(100, 30);
        assert!(child.stderr.is_none());
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        let status = child.child.wait().await.unwrap();
        (status.code(), out)
    });
    assert_eq!(output, (Some(0), "30 100\r\n".to_string()));
    sim.runtime.stop_pod(&pod.namespace, &pod.name);
    assert_eq!(sim.leftover_processes(), Vec::<String>::new());
}
