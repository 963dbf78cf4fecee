//! Acceptance: real helm 3.17.3, 3.19.0 and 4.3.1 install the real 4.43.1 chart into the sim
//! with pods as real processes (PostgreSQL 11, Redis), read the release back, fail the plain
//! upgrade to 4.44.0 as a real cluster does (helm's own password check, then, with the
//! passwords given, the API refusing the StatefulSet update), uninstall, and see PostgreSQL 15
//! refuse the PostgreSQL 11 volume left behind.

mod cluster_support;

use std::time::Duration;

use cluster_support::{chart, helm, SimProcess, HELM_VERSIONS};

/// What the API server answers to any change of a StatefulSet's immutable spec fields
/// (Kubernetes 1.31, the version the sim reports).
const STS_FORBIDDEN: &str = "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

/// Processes on this machine whose command line contains `needle`.
/// Processes whose command line contains `needle`, in the network namespace of the pod at `ip`
/// (`/proc/<pid>/net` shows a process's own network: there the pod's address is local).
fn processes_with(needle: &str, ip: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let fib =
                std::fs::read_to_string(entry.path().join("net/fib_trie")).unwrap_or_default();
            if cmdline.contains(needle) && fib.contains(&format!("|-- {ip}\n")) {
                found.push(cmdline);
            }
        }
    }
    found
}

/// `helm upgrade` of the release to the real 4.44.0 chart with nothing else changed but `extra`.
fn plain_upgrade(
    sim: &SimProcess,
    helm_version: &str,
    release: &str,
    ns: &str,
    extra: &[&str],
) -> std::process::Output {
    let chart = chart("4.44.0");
    let mut args = vec!["upgrade", release, chart.to_str().unwrap(), "-n", ns];
    args.extend_from_slice(extra);
    args.extend(["--timeout", "60s"]);
    sim.run(&helm(helm_version), &args)
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
    let out = plain_upgrade(&sim, v, release, ns, &[]);
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
    assert!(!processes_with("listen_addresses=", &pg_ip).is_empty());
    assert!(!processes_with("redis-server", &redis_ip).is_empty());
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
        processes_with("listen_addresses=", &pg_ip),
        Vec::<String>::new()
    );
    assert_eq!(
        processes_with("redis-server", &redis_ip),
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

    // 4.44.0 installed over the kept claim: its PostgreSQL 15 refuses the PostgreSQL 11 data
    // directory, says why in its log and never becomes Ready (the reason the guide deletes the
    // claim first). The migration Job is off, as in the guide's install.
    sim.ok(
        &helm(v),
        &[
            "install",
            release,
            chart("4.44.0").to_str().unwrap(),
            "-n",
            ns,
            "--set",
            "migration.enabled=false",
        ],
    );
    let pg_pod = "cognigy-live-agent-postgresql-0";
    let log = sim.wait_for(
        &["logs", pg_pod, "-n", ns],
        "PostgreSQL 15 to refuse the volume",
        Duration::from_secs(60),
        |o| o.contains("database files are incompatible with server"),
    );
    assert!(
        log.contains("The data directory was initialized by PostgreSQL version 11, which is not compatible with this version 15."),
        "{log}"
    );
    let ready = sim.kubectl(&[
        "get",
        "pod",
        pg_pod,
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.containers[0].image} {.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert!(
        ready.contains("postgresql:15.") && ready.ends_with(" False"),
        "{ready}"
    );
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
    let sts = "cognigy-live-agent-postgresql";
    let selector = || {
        sim.kubectl(&[
            "get",
            "statefulset",
            sts,
            "-n",
            "live-agent",
            "-o",
            "jsonpath={.spec.selector.matchLabels} {.spec.serviceName}",
        ])
    };
    let before = selector();
    assert!(before.contains(r#""role":"primary""#), "{before}");
    // 4.44.0's selector (Bitnami 12.x: `app.kubernetes.io/component` instead of `role`), with
    // the template's labels to match, so the immutability rule is the only objection.
    let new_selector = r#"{"spec":{"selector":{"matchLabels":{"role":null,"app.kubernetes.io/component":"primary"}},"template":{"metadata":{"labels":{"app.kubernetes.io/component":"primary"}}}}}"#;
    let new_service = r#"{"spec":{"serviceName":"cognigy-live-agent-postgresql-hl"}}"#;
    for patch in [new_selector, new_service] {
        let out = sim.run(
            &cluster_support::kubectl(),
            &[
                "patch",
                "statefulset",
                sts,
                "-n",
                "live-agent",
                "--type",
                "merge",
                "-p",
                patch,
            ],
        );
        assert!(!out.status.success(), "{patch} was accepted");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            format!("The StatefulSet \"{sts}\" is invalid: {STS_FORBIDDEN}"),
            "{patch}"
        );
    }
    assert_eq!(selector(), before);
}

/// Acceptance 2 past helm's own check: with the old Secret named as the existing one (its
/// `postgresql-password` key as the admin password) the 4.44.0 templates render, and the
/// upgrade reaches the API, which refuses the PostgreSQL StatefulSet's new selector and
/// service name; the release records the failed revision and the StatefulSet is unchanged.
#[test]
fn a_plain_upgrade_given_the_passwords_is_refused_by_the_api_for_the_statefulset() {
    let sim = SimProcess::start_without_runtime();
    let release = "cognigy-live-agent";
    let sts = "cognigy-live-agent-postgresql";
    for v in HELM_VERSIONS {
        let ns = format!("live-agent-{}", v.replace('.', "-"));
        sim.install_4_43_1(v, release, &ns);
        let out = plain_upgrade(
            &sim,
            v,
            release,
            &ns,
            &[
                "--set",
                &format!("postgresql.auth.existingSecret={sts}"),
                "--set",
                "postgresql.auth.secretKeys.adminPasswordKey=postgresql-password",
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "helm {v}: the upgrade succeeded");
        assert!(!err.contains("PASSWORDS ERROR"), "helm {v}: {err}");
        // helm 3 patches ("cannot patch ... with kind StatefulSet: "), helm 4 applies
        // server-side ("server-side apply failed for object ...: "); the API's words are the same.
        assert!(
            err.contains(&format!(
                "StatefulSet.apps \"{sts}\" is invalid: {STS_FORBIDDEN}"
            )),
            "helm {v}: {err}"
        );
        let history = sim.ok(&helm(v), &["history", release, "-n", &ns, "-o", "json"]);
        let history: serde_json::Value = serde_json::from_str(&history).unwrap();
        let last = &history[1];
        assert_eq!(
            (
                last["revision"].as_i64(),
                last["status"].as_str(),
                last["chart"].as_str()
            ),
            (Some(2), Some("failed"), Some("live-agent-4.44.0")),
            "helm {v}: {history}"
        );
        let kept = sim.kubectl(&[
            "get",
            "statefulset",
            sts,
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.selector.matchLabels.role} {.spec.serviceName} {.spec.template.spec.containers[0].image}",
        ]);
        assert_eq!(
            kept,
            format!("primary {sts}-headless docker.io/bitnami/postgresql:11.14.0-debian-10-r28"),
            "helm {v}"
        );
    }
}
