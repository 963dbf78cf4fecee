//! What an online migration asks of the cluster, on the real 4.43.1 chart with pods as real
//! processes: PostgreSQL 11 keeps `ALTER SYSTEM SET wal_level = logical` when its StatefulSet
//! recreates the pod, runs the chart's extended configuration (`conf.d`) and
//! `POSTGRESQL_EXTRA_FLAGS` as the Bitnami image does, and publishes to a PostgreSQL 15 pod
//! that subscribes through the release's Service name over the pod network.

mod cluster_support;

use std::time::{Duration, Instant};

use cluster_support::SimProcess;

const HELM: &str = "3.19.0";
const RELEASE: &str = "cognigy-live-agent";
const NS: &str = "live-agent";
const PG11_POD: &str = "cognigy-live-agent-postgresql-0";
/// The release's PostgreSQL Service, which the subscription connects to.
const PG11_SERVICE: &str = "cognigy-live-agent-postgresql";
const DATABASE: &str = "live_agent_production";
const PG15_POD: &str = "pg15-0";

/// A PostgreSQL 15 pod with the layout of chart 4.44.0's (Bitnami 12.1.6) PostgreSQL container.
const PG15_MANIFEST: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: pg15-0
  namespace: live-agent
spec:
  securityContext: {fsGroup: 1001}
  containers:
    - name: postgresql
      image: docker.io/bitnami/postgresql:15.1.0-debian-11-r12
      securityContext: {runAsUser: 1001}
      env:
        - {name: POSTGRESQL_PORT_NUMBER, value: "5432"}
        - {name: POSTGRESQL_VOLUME_DIR, value: /bitnami/postgresql}
        - {name: PGDATA, value: /bitnami/postgresql/data}
        - {name: POSTGRES_PASSWORD, value: "pg15 secret"}
        - {name: POSTGRES_DB, value: live_agent_production}
      volumeMounts: [{name: data, mountPath: /bitnami/postgresql}]
  volumes: [{name: data, emptyDir: {}}]
"#;

/// Runs `sql` with psql as `postgres` on the pod's own server (its password from the pod's
/// env), stops at the first error, returns the unaligned tuples.
fn psql(sim: &SimProcess, pod: &str, sql: &str) -> String {
    let out = sim.kubectl(&[
        "exec",
        "-n",
        NS,
        pod,
        "--",
        "sh",
        "-c",
        &format!(
            "PGPASSWORD=\"$POSTGRES_PASSWORD\" psql -h 127.0.0.1 -U postgres -d {DATABASE} \
             -v ON_ERROR_STOP=1 -tA -c \"$1\""
        ),
        "sh",
        sql,
    ]);
    out.trim_end().to_string()
}

/// `kubectl get pod <pod> -o jsonpath=<jsonpath>` in the test's namespace.
fn pod_query<'a>(pod: &'a str, jsonpath: &'a str) -> [&'a str; 7] {
    ["get", "pod", pod, "-n", NS, "-o", jsonpath]
}

fn pod_field(sim: &SimProcess, pod: &str, jsonpath: &str) -> String {
    sim.kubectl(&pod_query(pod, &format!("jsonpath={jsonpath}")))
}

/// Waits until `pod` is Ready (and, with `not_uid`, is a pod other than that one).
fn wait_ready(sim: &SimProcess, pod: &str, not_uid: Option<&str>) {
    sim.wait_for(
        &pod_query(
            pod,
            "jsonpath={.metadata.uid} {.status.conditions[?(@.type==\"Ready\")].status}",
        ),
        &format!("{pod} to be Ready"),
        Duration::from_secs(90),
        |o| o.ends_with(" True") && not_uid.is_none_or(|uid| !o.starts_with(uid)),
    );
}

/// Polls `sql` on `pod` until it answers `want`; returns the last answer.
fn wait_answer(sim: &SimProcess, pod: &str, sql: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = psql(sim, pod, sql);
        if got == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn alter_system_wal_level_logical_takes_effect_when_the_statefulset_recreates_the_pod_and_the_data_stays(
) {
    let sim = SimProcess::start_with_runtime();
    sim.install_4_43_1(HELM, RELEASE, NS);
    assert_eq!(psql(&sim, PG11_POD, "show wal_level"), "replica");

    psql(&sim, PG11_POD, "alter system set wal_level = logical");
    psql(
        &sim,
        PG11_POD,
        "create table notes (id int primary key, body text); insert into notes values (1, 'kept')",
    );
    // Read only at server start.
    assert_eq!(psql(&sim, PG11_POD, "show wal_level"), "replica");

    let uid = pod_field(&sim, PG11_POD, "{.metadata.uid}");
    sim.kubectl(&["delete", "pod", PG11_POD, "-n", NS, "--wait=true"]);
    wait_ready(&sim, PG11_POD, Some(&uid));

    assert_eq!(psql(&sim, PG11_POD, "show wal_level"), "logical");
    assert_eq!(psql(&sim, PG11_POD, "select body from notes"), "kept");
    let log = sim.kubectl(&["logs", PG11_POD, "-n", NS]);
    assert!(
        log.contains("data directory exists, skipping initialisation"),
        "{log}"
    );
}

#[test]
fn a_release_with_wal_level_logical_in_its_extended_configuration_publishes_to_a_postgresql_15_pod()
{
    let sim = SimProcess::start_with_runtime();
    sim.install_4_43_1_with(
        HELM,
        RELEASE,
        NS,
        &[
            "--set",
            "postgresql.postgresqlExtendedConf.walLevel=logical",
            "--set",
            "postgresql.extraEnv[0].name=POSTGRESQL_EXTRA_FLAGS",
            "--set",
            "postgresql.extraEnv[0].value=-c max_replication_slots=12",
        ],
    );
    // conf.d/override.conf from the chart's ConfigMap, the flags from the env, and the
    // image's own max_wal_senders.
    assert_eq!(
        psql(
            &sim,
            PG11_POD,
            "select string_agg(name || '=' || setting, ' ' order by name) from pg_settings \
             where name in ('wal_level', 'max_replication_slots', 'max_wal_senders')"
        ),
        "max_replication_slots=12 max_wal_senders=16 wal_level=logical"
    );

    psql(
        &sim,
        PG11_POD,
        "create table replication_check (id int primary key, name text); \
         insert into replication_check values (1, 'a'), (2, 'b')",
    );
    let out = sim.run_as(
        &sim.kubeconfig,
        &cluster_support::kubectl(),
        &["apply", "-f", "-"],
        Some(PG15_MANIFEST),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_ready(&sim, PG15_POD, None);
    assert!(psql(&sim, PG15_POD, "show server_version").starts_with("15."));

    // The schema first (logical replication carries no DDL), dumped through the Service name.
    let source_password = sim.kubectl(&[
        "exec",
        "-n",
        NS,
        PG11_POD,
        "--",
        "printenv",
        "POSTGRES_PASSWORD",
    ]);
    let source = format!(
        "host={PG11_SERVICE} port=5432 dbname={DATABASE} user=postgres password={}",
        source_password.trim()
    );
    sim.kubectl(&[
        "exec",
        "-n",
        NS,
        PG15_POD,
        "--",
        "sh",
        "-c",
        &format!(
            "pg_dump -s -d \"$1\" > /tmp/schema.sql && \
             PGPASSWORD=\"$POSTGRES_PASSWORD\" psql -h 127.0.0.1 -U postgres -d {DATABASE} \
             -v ON_ERROR_STOP=1 -q -f /tmp/schema.sql"
        ),
        "sh",
        &source,
    ]);
    psql(
        &sim,
        PG11_POD,
        "create publication la_online for all tables",
    );
    psql(
        &sim,
        PG15_POD,
        &format!("create subscription la_online connection '{source}' publication la_online"),
    );
    psql(
        &sim,
        PG11_POD,
        "insert into replication_check values (3, 'c')",
    );

    // Rows there before the subscription (the initial copy) and after it (streamed).
    let rows = "select string_agg(id || name, ',' order by id) from replication_check";
    assert_eq!(wait_answer(&sim, PG15_POD, rows, "1a,2b,3c"), "1a,2b,3c");
    let migrations = "select max(version) from schema_migrations";
    let want = psql(&sim, PG11_POD, migrations);
    assert_eq!(wait_answer(&sim, PG15_POD, migrations, &want), want);
    // The walsender serves the PostgreSQL 15 pod's address, over the pod network.
    let pg15_ip = pod_field(&sim, PG15_POD, "{.status.podIP}");
    assert_eq!(
        psql(
            &sim,
            PG11_POD,
            "select host(client_addr) || ' ' || state from pg_stat_replication \
             where application_name = 'la_online'"
        ),
        format!("{pg15_ip} streaming")
    );
}
