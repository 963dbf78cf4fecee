//! What must change nothing: `--dry-run`, and every refusal (wrong release, wrong namespace,
//! missing chart, a chart that is no 4.44 target, a storage quota without room for PostgreSQL
//! 15's volume or for the `--keep-dump` volume beside it, a missing permission). Each gives a
//! clear error and exit code, and the cluster is exactly as before (a dump of every object
//! compared).

mod common;

use std::time::Duration;

use common::sim::{chart, migrate_args, text, Sim};
use la_migrate::plan::quantity::parse_bytes;

fn small_release() -> Sim {
    Sim::with_seeded_release("3MB").0
}

/// Runs the plugin and asserts it failed with `code`, mentioning `needle`, changing nothing.
/// What it said is snapshotted as `name`.
fn assert_refused(sim: &Sim, name: &str, args: &[&str], code: i32, needle: &str) -> String {
    let before = sim.dump_objects();
    let out = sim.run_plugin(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    assert_eq!(before, sim.dump_objects(), "the cluster changed");
    insta::assert_snapshot!(name, without_database_size(&sim.redact(&stderr)));
    stderr
}

/// `text` with the size of the seeded database (`the database's 14 MiB`), which depends on
/// how PostgreSQL laid it out, replaced.
fn without_database_size(text: &str) -> String {
    const SIZE_OF: &str = "the database's ";
    match text.split_once(SIZE_OF) {
        Some((head, tail)) => {
            let end = tail.find([',', ')']).unwrap_or(tail.len());
            format!("{head}{SIZE_OF}[size]{}", &tail[end..])
        }
        None => text.to_string(),
    }
}

#[test]
fn dry_run_prints_the_runbook_and_leaves_the_cluster_exactly_as_it_was() {
    let sim = small_release();
    let before = sim.dump_objects();
    let out = sim.run_migrate(&["--dry-run"]);
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
    let json = sim.run_migrate(&["--dry-run", "-o", "json"]);
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
        "wrong_release",
        &migrate_args(&["--release", "no-such-release", "--yes"]),
        4,
        "release \"no-such-release\" was not found in namespace \"live-agent\"",
    );
}

#[test]
fn a_wrong_namespace_is_not_found_and_changes_nothing() {
    let sim = small_release();
    let before = sim.dump_objects();
    let out = sim
        .migrate_command(&["--yes"])
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
    insta::assert_snapshot!("wrong_namespace", sim.redact(&stderr));
}

#[test]
fn a_missing_chart_is_not_found_and_changes_nothing() {
    let sim = small_release();
    let missing = sim.state_dir().join("live-agent-4.44.0-missing.tgz");
    assert_refused(
        &sim,
        "missing_chart",
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
        "chart_before_4_44",
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
        "version_contradicts_chart",
        &migrate_args(&["--version", "4.45.0", "--yes"]),
        3,
        "--version 4.45.0 was given, but the chart",
    );
}

/// A ResourceQuota `storage` on `requests.storage` that leaves `room` bytes above what the
/// namespace's claims use, once the quota controller has counted them (preflight reads the
/// quota's status).
fn storage_quota(sim: &Sim, room: u64) {
    let apply = |hard: &str| {
        sim.apply(
            "quota.yaml",
            &format!("apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: storage\nspec:\n  hard:\n    requests.storage: '{hard}'\n"),
        );
        let mut used = None;
        sim.wait_until("the quota's status", Duration::from_secs(30), || {
            let status = sim.kubectl(&[
                "get",
                "quota",
                "storage",
                "-o",
                r"jsonpath={.status.hard.requests\.storage} {.status.used.requests\.storage}",
            ]);
            used = match status.split_once(' ') {
                Some((h, u)) if h == hard && !u.is_empty() => parse_bytes(u),
                _ => None,
            };
            used.is_some()
        });
        used.unwrap()
    };
    let used = apply("1Ti");
    assert!(used > 0, "the release's claims count");
    apply(&(used + room).to_string());
}

#[test]
fn too_little_space_for_postgresql_15_under_a_quota_is_refused_and_changes_nothing() {
    let sim = small_release();
    // PostgreSQL 15's claim is at least the target chart's 4Gi.
    storage_quota(&sim, 2 << 30);
    let stderr = assert_refused(
        &sim,
        "no_room_for_postgresql_15",
        &migrate_args(&["--yes"]),
        8,
        "too little space: PostgreSQL 15's volume (twice the database's",
    );
    assert!(
        stderr.contains("needs 4.0 GiB, but ResourceQuota \"storage\" in namespace \"live-agent\" leaves 2.0 GiB")
            && stderr.contains("hint: raise the quota or free storage in the namespace, or pass --storage-class"),
        "{stderr}"
    );
}

#[test]
fn too_little_backup_space_under_a_quota_is_refused_and_changes_nothing() {
    let sim = small_release();
    // Room for PostgreSQL 15's 4Gi claim and for the 1Gi dump claim, not for both.
    storage_quota(&sim, 9 << 29);
    let before = sim.dump_objects();
    let plain = sim.run_migrate(&["--dry-run"]);
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    assert_eq!(before, sim.dump_objects(), "--dry-run changed the cluster");
    let stderr = assert_refused(
        &sim,
        "no_room_for_the_dump",
        &migrate_args(&["--keep-dump", "--yes"]),
        8,
        "too little space: PostgreSQL 15's volume (4.0 GiB) and the dump volume of --keep-dump (1.0 GiB) need 5.0 GiB together, but ResourceQuota \"storage\" in namespace \"live-agent\" leaves 4.5 GiB",
    );
    assert!(
        stderr.contains("--backup-storage-class") && stderr.contains("without --keep-dump"),
        "{stderr}"
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
    let out = sim.run_migrate_as(&kubeconfig, &["--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("delete persistentvolumeclaims in namespace live-agent")
            && stderr.contains("delete statefulsets.apps in namespace live-agent"),
        "{stderr}"
    );
    assert_eq!(before, sim.dump_objects());
    insta::assert_snapshot!("missing_permission", sim.redact(&stderr));
}
