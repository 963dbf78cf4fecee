//! Acceptance: real helm 3.17.3, 3.19.0 and 4.3.1 install the real 4.43.1 chart into the sim
//! with pods as real processes (PostgreSQL 11, Redis), read the release back, fail the plain
//! upgrade to 4.44.0 as a real cluster does, and uninstall.

mod cluster_support;

use std::time::Duration;

use cluster_support::{chart, helm, SimProcess};

/// Processes on this machine whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(cmdline);
            }
        }
    }
    found
}

fn pod_ip(sim: &SimProcess, ns: &str, pod: &str) -> String {
    sim.kubectl(&[
        "get",
        "pod",
        pod,
        "-n",
        ns,
        "-o",
        "jsonpath={.status.podIP}",
    ])
}

/// Acceptance 1 and 2 with one helm version, pods as real processes: install 4.43.1, read the
/// release back, see PostgreSQL 11 and Redis serve, fail the plain upgrade to 4.44.0, uninstall.
fn the_4_43_1_chart_runs_on_real_servers_with_helm(v: &str) {
    let sim = SimProcess::start_with_runtime();
    let (release, ns) = ("cognigy-live-agent", "live-agent");
    sim.install_4_43_1(v, release, ns);

    let list = sim.ok(&helm(v), &["list", "-n", ns]);
    assert!(
        list.contains(release) && list.contains("deployed") && list.contains("live-agent-4.43.1"),
        "{list}"
    );
    let status = sim.ok(&helm(v), &["status", release, "-n", ns]);
    assert!(status.contains("STATUS: deployed"), "{status}");
    let history = sim.ok(&helm(v), &["history", release, "-n", ns]);
    assert!(history.contains("Install complete"), "{history}");
    let values = sim.ok(
        &helm(v),
        &["get", "values", release, "-n", ns, "--all", "-o", "json"],
    );
    assert!(
        values.contains("\"postgresqlDatabase\":\"live_agent_production\""),
        "{values}"
    );
    let pods = sim.kubectl(&["get", "pods", "-n", ns, "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"]);
    let mut lines: Vec<&str> = pods.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 8, "{pods}");
    assert!(
        lines.iter().all(|l| l.ends_with("=True")),
        "not all pods Ready:\n{pods}"
    );
    // The post-install migration Job ran and was deleted by its hook-delete-policy.
    let jobs = sim.kubectl(&["get", "jobs", "-n", ns, "-o", "name"]);
    assert_eq!(jobs.trim(), "", "{jobs}");

    // PostgreSQL 11 serves the chart's database, which the migration Job prepared.
    let pg = sim.kubectl(&[
        "exec",
        "-n",
        ns,
        "cognigy-live-agent-postgresql-0",
        "--",
        "sh",
        "-c",
        "PGPASSWORD=$POSTGRES_PASSWORD psql -U postgres -h cognigy-live-agent-postgresql -d live_agent_production -tAc 'show server_version_num' -c 'select max(version) from schema_migrations'",
    ]);
    let pg: Vec<&str> = pg.lines().collect();
    assert!(pg[0].starts_with("11"), "not PostgreSQL 11: {pg:?}");
    assert_eq!(pg[1], la_sim::seed::SCHEMA_VERSION, "{pg:?}");
    // Redis: the master with its three replicas, holding the key the migration Job set.
    let redis = |cmd: &str| {
        sim.kubectl(&[
            "exec",
            "-n",
            ns,
            "cognigy-live-agent-redis-master-0",
            "--",
            "sh",
            "-c",
            &format!(
                "REDISCLI_AUTH=$REDIS_PASSWORD redis-cli -h cognigy-live-agent-redis-master {cmd}"
            ),
        ])
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let info = redis("info replication");
        if info.contains("role:master") && info.contains("connected_slaves:3") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replicas did not attach: {info}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        redis("get alfred:CHATWOOT_INSTALLATION_ONBOARDING").trim(),
        "true"
    );

    // Acceptance 2: the plain upgrade fails and leaves no revision.
    let out = sim.run(
        &helm(v),
        &[
            "upgrade",
            release,
            chart("4.44.0").to_str().unwrap(),
            "-n",
            ns,
            "--timeout",
            "60s",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the upgrade succeeded");
    // Bitnami's PostgreSQL 12.x subchart looks up the old Secret and finds no `postgres-password`.
    assert!(
        err.contains("PASSWORDS ERROR") && err.contains("postgres-password"),
        "{err}"
    );
    let history = sim.ok(&helm(v), &["history", release, "-n", ns]);
    assert_eq!(history.lines().count(), 2, "{history}");

    // Uninstall: the servers stop, the StatefulSet claims and the kept secrets stay.
    let pg_ip = pod_ip(&sim, ns, "cognigy-live-agent-postgresql-0");
    let redis_ip = pod_ip(&sim, ns, "cognigy-live-agent-redis-master-0");
    assert!(!processes_with(&format!("listen_addresses={pg_ip} ")).is_empty());
    assert!(!processes_with(&format!("{redis_ip}:6379")).is_empty());
    sim.ok(
        &helm(v),
        &["uninstall", release, "-n", ns, "--wait", "--timeout", "60s"],
    );
    let pvcs = sim.wait_for(
        &["get", "pvc", "-n", ns, "-o", "name"],
        "the chart's own claim to go",
        Duration::from_secs(30),
        |o| !o.contains("/live-agent\n"),
    );
    let mut names: Vec<&str> = pvcs.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "persistentvolumeclaim/data-cognigy-live-agent-postgresql-0",
            "persistentvolumeclaim/redis-data-cognigy-live-agent-redis-master-0",
            "persistentvolumeclaim/redis-data-cognigy-live-agent-redis-replicas-0",
            "persistentvolumeclaim/redis-data-cognigy-live-agent-redis-replicas-1",
            "persistentvolumeclaim/redis-data-cognigy-live-agent-redis-replicas-2",
        ]
    );
    let secrets = sim.kubectl(&["get", "secrets", "-n", ns, "-o", "name"]);
    let mut secrets: Vec<&str> = secrets.lines().collect();
    secrets.sort();
    assert_eq!(
        secrets,
        [
            "secret/cognigy-live-agent-cognigy-platform-app-token",
            "secret/cognigy-live-agent-cookies-integrity"
        ]
    );
    sim.wait_for(
        &["get", "pods", "-n", ns, "-o", "name"],
        "pods to go",
        Duration::from_secs(60),
        |o| o.trim().is_empty(),
    );
    // A pod object is removed only once its processes are gone.
    assert_eq!(
        processes_with(&format!("listen_addresses={pg_ip} ")),
        Vec::<String>::new()
    );
    assert_eq!(
        processes_with(&format!("{redis_ip}:6379")),
        Vec::<String>::new()
    );
    // The database volume still holds the PostgreSQL 11 data directory.
    let pv = sim.kubectl(&[
        "get",
        "pvc",
        "data-cognigy-live-agent-postgresql-0",
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.volumeName}",
    ]);
    let dir = sim.kubectl(&["get", "pv", &pv, "-o", "jsonpath={.spec.hostPath.path}"]);
    let version = std::fs::read_to_string(std::path::Path::new(&dir).join("data/PG_VERSION"))
        .unwrap_or_else(|e| panic!("{dir}/data/PG_VERSION: {e}"));
    assert_eq!(version.trim(), "11");
}

#[test]
fn helm_3_17_3_installs_4_43_1_on_real_servers_fails_the_plain_upgrade_and_uninstall_keeps_the_claims(
) {
    the_4_43_1_chart_runs_on_real_servers_with_helm("3.17.3");
}

#[test]
fn helm_3_19_0_installs_4_43_1_on_real_servers_fails_the_plain_upgrade_and_uninstall_keeps_the_claims(
) {
    the_4_43_1_chart_runs_on_real_servers_with_helm("3.19.0");
}

#[test]
fn helm_4_3_1_installs_4_43_1_on_real_servers_fails_the_plain_upgrade_and_uninstall_keeps_the_claims(
) {
    the_4_43_1_chart_runs_on_real_servers_with_helm("4.3.1");
}

#[test]
fn changing_a_statefulset_selector_or_service_name_is_refused_with_the_real_message() {
    let sim = SimProcess::start_without_runtime();
    sim.install_4_43_1("3.19.0", "cognigy-live-agent", "live-agent");
    let out = sim.run(
        &cluster_support::kubectl(),
        &[
            "patch",
            "statefulset",
            "cognigy-live-agent-postgresql",
            "-n",
            "live-agent",
            "-p",
            r#"{"spec":{"serviceName":"cognigy-live-agent-postgresql-hl"}}"#,
        ],
    );
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "The StatefulSet \"cognigy-live-agent-postgresql\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    );
}
