//! What must change nothing: `--dry-run`, and every refusal (wrong release, wrong namespace,
//! missing chart, a chart that is no 4.44 target, too little backup space, a missing
//! permission). Each gives a clear error and exit code, and the cluster is exactly as before
//! (a dump of every object compared).

mod common;

use common::sim::{chart, text, ReleaseSpec, Sim};

fn small_release() -> Sim {
    let mut spec = ReleaseSpec::custom("3.19.0");
    spec.seed_size = "3MB";
    Sim::with_release(spec).0
}

/// Runs the plugin and asserts it failed with `code`, mentioning `needle`, changing nothing.
fn assert_refused(sim: &Sim, args: &[&str], code: i32, needle: &str) -> String {
    let before = sim.dump_objects();
    let out = sim.run_plugin(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    assert_eq!(before, sim.dump_objects(), "the cluster changed");
    stderr
}

fn target() -> String {
    chart("4.44.0").to_str().unwrap().to_string()
}

#[test]
fn dry_run_prints_the_runbook_and_leaves_the_cluster_exactly_as_it_was() {
    let sim = small_release();
    let before = sim.dump_objects();
    let out = sim.run_plugin(&["4.44", "--chart", &target(), "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runbook = text(&out.stdout);
    for expected in [
        "helm uninstall cognigy-live-agent",
        "pg_dump",
        "pg_restore",
        "kubectl -n live-agent delete pvc data-cognigy-live-agent-postgresql-0",
    ] {
        assert!(
            runbook.contains(expected),
            "{expected:?} missing in:\n{runbook}"
        );
    }
    assert!(!runbook.contains("pg-Secret-42") && !runbook.contains("redis-Secret-42"));
    let json = sim.run_plugin(&["4.44", "--chart", &target(), "--dry-run", "-o", "json"]);
    assert!(json.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan JSON");
    assert!(plan["plan"]["steps"]
        .as_array()
        .is_some_and(|s| s.len() > 10));
    assert_eq!(before, sim.dump_objects(), "--dry-run changed the cluster");
}

#[test]
fn a_wrong_release_name_is_not_found_and_changes_nothing() {
    let sim = small_release();
    assert_refused(
        &sim,
        &[
            "4.44",
            "--chart",
            &target(),
            "--release",
            "no-such-release",
            "--yes",
        ],
        4,
        "release \"no-such-release\" was not found in namespace \"live-agent\"",
    );
}

#[test]
fn a_wrong_namespace_is_not_found_and_changes_nothing() {
    let sim = small_release();
    let before = sim.dump_objects();
    let out = sim
        .plugin(&["4.44", "--chart", &target(), "--yes"])
        .env("HELM_NAMESPACE", "live-agnet")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("namespace \"live-agnet\" does not exist"),
        "{stderr}"
    );
    assert_eq!(before, sim.dump_objects());
}

#[test]
fn a_missing_chart_is_not_found_and_changes_nothing() {
    let sim = small_release();
    let missing = sim.state_dir().join("live-agent-4.44.0-missing.tgz");
    assert_refused(
        &sim,
        &["4.44", "--chart", missing.to_str().unwrap(), "--yes"],
        4,
        "the target chart cannot be read",
    );
}

#[test]
fn a_chart_before_4_44_as_target_is_refused_and_changes_nothing() {
    let sim = small_release();
    let old = chart("4.43.1");
    let stderr = assert_refused(
        &sim,
        &["4.44", "--chart", old.to_str().unwrap(), "--yes"],
        3,
        "is version 4.43.1, not a 4.44 or later 4.x chart",
    );
    assert!(
        stderr.contains("hint: pass the 4.44 chart with --chart"),
        "{stderr}"
    );
    // A version that contradicts the local chart's own is refused too.
    assert_refused(
        &sim,
        &["4.44", "--chart", &target(), "--version", "4.45.0", "--yes"],
        3,
        "--version 4.45.0 was given, but the chart",
    );
}

#[test]
fn too_little_backup_space_under_a_quota_is_refused_and_changes_nothing() {
    let sim = small_release();
    let quota = sim.state_dir().join("quota.yaml");
    std::fs::write(
        &quota,
        "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: storage\nspec:\n  hard:\n    requests.storage: 512Mi\n",
    )
    .unwrap();
    sim.kubectl(&["apply", "-f", quota.to_str().unwrap()]);
    assert_refused(
        &sim,
        &["4.44", "--chart", &target(), "--yes"],
        8,
        "too little backup space",
    );
}

#[test]
fn a_missing_permission_is_named_and_nothing_changes() {
    let sim = small_release();
    // Neither may claims be deleted (the plugin's own step) nor StatefulSets (what `helm
    // uninstall` does to the old PostgreSQL and Redis).
    let no_deletes = r#"[
      {"verbs": ["*"], "apiGroups": ["*"], "resources": ["pods", "pods/exec", "pods/log", "secrets",
        "configmaps", "services", "endpoints", "persistentvolumes", "deployments", "deployments/scale",
        "replicasets", "jobs", "storageclasses", "resourcequotas", "namespaces",
        "selfsubjectaccessreviews", "serviceaccounts", "events", "ingresses", "roles", "rolebindings"]},
      {"verbs": ["get", "list", "watch", "create", "patch"], "apiGroups": ["apps"], "resources": ["statefulsets"]},
      {"verbs": ["get", "list", "watch", "create"], "apiGroups": [""], "resources": ["persistentvolumeclaims"]}
    ]"#;
    let kubeconfig = sim.identity("no-deletes", no_deletes);
    let before = sim.dump_objects();
    let out = sim
        .plugin(&["4.44", "--chart", &target(), "--yes"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("delete persistentvolumeclaims in namespace live-agent")
            && stderr.contains("delete statefulsets.apps in namespace live-agent"),
        "{stderr}"
    );
    assert_eq!(before, sim.dump_objects());
}
