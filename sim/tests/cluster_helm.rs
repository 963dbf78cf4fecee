//! Acceptance: real helm 3.17.3, 3.19.0 and 4.3.1 against the sim (pods run nothing here; the
//! API, controllers, hooks and helm's waits are what is exercised).

mod cluster_support;

use std::time::Duration;

use cluster_support::{chart, helm, SimProcess, HELM_VERSIONS};

fn install(sim: &SimProcess, version: &str, release: &str, ns: &str) {
    sim.ok(
        &helm(version),
        &[
            "install",
            release,
            chart("4.43.1").to_str().unwrap(),
            "-n",
            ns,
            "--create-namespace",
            "--wait",
            "--timeout",
            "120s",
        ],
    );
}

#[test]
fn every_helm_version_installs_the_4_43_1_chart_and_reads_the_release_back() {
    let sim = SimProcess::start_without_runtime();
    for v in HELM_VERSIONS {
        let ns = format!("la-{}", v.replace('.', ""));
        let release = "cognigy-live-agent";
        install(&sim, v, release, &ns);
        let list = sim.ok(&helm(v), &["list", "-n", &ns]);
        assert!(
            list.contains(release)
                && list.contains("deployed")
                && list.contains("live-agent-4.43.1"),
            "{v}: {list}"
        );
        let status = sim.ok(&helm(v), &["status", release, "-n", &ns]);
        assert!(status.contains("STATUS: deployed"), "{v}: {status}");
        let history = sim.ok(&helm(v), &["history", release, "-n", &ns]);
        assert!(history.contains("Install complete"), "{v}: {history}");
        let values = sim.ok(
            &helm(v),
            &["get", "values", release, "-n", &ns, "--all", "-o", "json"],
        );
        assert!(
            values.contains("\"postgresqlDatabase\":\"live_agent_production\""),
            "{v}: {values}"
        );
        let pods = sim.kubectl(&["get", "pods", "-n", &ns, "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"]);
        let lines: Vec<&str> = pods.lines().collect();
        assert_eq!(lines.len(), 8, "{v}: {pods}");
        assert!(
            lines.iter().all(|l| l.ends_with("=True")),
            "{v}: not all pods Ready:\n{pods}"
        );
        // The post-install migration Job ran and was deleted by its hook-delete-policy.
        let jobs = sim.kubectl(&["get", "jobs", "-n", &ns, "-o", "name"]);
        assert_eq!(jobs.trim(), "", "{v}: {jobs}");
    }
}

#[test]
fn uninstall_leaves_the_statefulset_claims_and_the_kept_secrets() {
    let sim = SimProcess::start_without_runtime();
    for v in ["3.19.0", "4.3.1"] {
        let ns = format!("un-{}", v.replace('.', ""));
        install(&sim, v, "cognigy-live-agent", &ns);
        sim.ok(
            &helm(v),
            &[
                "uninstall",
                "cognigy-live-agent",
                "-n",
                &ns,
                "--wait",
                "--timeout",
                "60s",
            ],
        );
        let pvcs = sim.wait_for(
            &["get", "pvc", "-n", &ns, "-o", "name"],
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
            ],
            "{v}"
        );
        let secrets = sim.kubectl(&["get", "secrets", "-n", &ns, "-o", "name"]);
        let mut secrets: Vec<&str> = secrets.lines().collect();
        secrets.sort();
        assert_eq!(
            secrets,
            [
                "secret/cognigy-live-agent-cognigy-platform-app-token",
                "secret/cognigy-live-agent-cookies-integrity"
            ],
            "{v}"
        );
        let pods = sim.wait_for(
            &["get", "pods", "-n", &ns, "-o", "name"],
            "pods to go",
            Duration::from_secs(30),
            |o| o.trim().is_empty(),
        );
        assert_eq!(pods.trim(), "");
    }
}

#[test]
fn plain_helm_upgrade_to_4_44_0_fails_as_on_a_real_cluster() {
    let sim = SimProcess::start_without_runtime();
    for v in HELM_VERSIONS {
        let ns = format!("up-{}", v.replace('.', ""));
        install(&sim, v, "cognigy-live-agent", &ns);
        let out = sim.run(
            &helm(v),
            &[
                "upgrade",
                "cognigy-live-agent",
                chart("4.44.0").to_str().unwrap(),
                "-n",
                &ns,
                "--timeout",
                "60s",
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{v}: upgrade succeeded");
        // Bitnami's PostgreSQL 12.x subchart looks up the old Secret and finds no `postgres-password`.
        assert!(
            err.contains("PASSWORDS ERROR") && err.contains("postgres-password"),
            "{v}: {err}"
        );
        let history = sim.ok(&helm(v), &["history", "cognigy-live-agent", "-n", &ns]);
        assert_eq!(
            history.lines().count(),
            2,
            "{v}: the failed upgrade left no revision:\n{history}"
        );
    }
}

#[test]
fn changing_a_statefulset_selector_or_service_name_is_refused_with_the_real_message() {
    let sim = SimProcess::start_without_runtime();
    install(&sim, "3.19.0", "cognigy-live-agent", "live-agent");
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
