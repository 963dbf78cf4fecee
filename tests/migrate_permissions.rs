//! An identity that loses a permission in the middle of a migration (here: after the
//! prepare and copy phases, it may no longer patch PersistentVolumes, which the cut-over
//! needs to retain them before the uninstall) gets a clear error naming the permission and
//! the fix, before anything is deleted; a rerun with a full identity resumes from there
//! (the copy is not made again) and completes with nothing lost.

mod common;

use common::sim::{assert_migrated, assert_old_database_untouched, text, Sim, DATABASE_CLAIM};

const NO_VOLUME_PATCH: &str = r#"[
  {"verbs": ["*"], "apiGroups": ["*"], "resources": ["pods", "pods/exec", "pods/log", "secrets",
    "configmaps", "services", "endpoints", "persistentvolumeclaims", "deployments", "deployments/scale",
    "statefulsets", "replicasets", "jobs", "storageclasses", "resourcequotas", "namespaces",
    "selfsubjectaccessreviews", "serviceaccounts", "events", "ingresses", "roles", "rolebindings"]},
  {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["persistentvolumes"]}
]"#;

#[test]
fn a_permission_lost_after_the_copy_stops_with_exit_7_naming_it_and_a_full_identity_resumes() {
    let (sim, before) = Sim::with_seeded_release("3MB");

    for phase in ["prepare", "copy"] {
        let out = sim.run_migrate(&[phase, "--yes"]);
        assert!(out.status.success(), "{phase}: {}", text(&out.stderr));
    }
    let proven = sim.steps_done();
    assert!(proven.contains("copy.prove"), "{proven}");

    let restricted = sim.identity("no-volume-patch", NO_VOLUME_PATCH);
    let out = sim.run_migrate_as(&restricted, &["--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    for needle in [
        "cutover.retain-volumes",
        "permission denied",
        "patch",
        "persistentvolumes",
        "run the same command again",
    ] {
        assert!(stderr.contains(needle), "{needle:?} missing in:\n{stderr}");
    }
    // Stopped before the point of no return's destructive steps: the release is still
    // there, PostgreSQL 11's claim too, and no cut-over step is recorded as done past the
    // confirmation.
    let list = sim.helm(&["list", "-o", "json"]);
    assert!(list.contains("live-agent-4.43.1"), "{list}");
    sim.kubectl(&["get", "pvc", DATABASE_CLAIM]);
    let done = sim.steps_done();
    for step in ["cutover.retain-volumes", "cutover.helm-uninstall"] {
        assert!(!done.contains(step), "{step} recorded as done: {done}");
    }

    let resumed = sim.run_migrate(&["--yes"]);
    let log = text(&resumed.stderr);
    assert!(resumed.status.success(), "{log}");
    for step in ["prepare.new-database", "copy.copy", "copy.prove"] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("[{step}] ")) && l.contains("(done earlier)")),
            "{step} not skipped as done earlier:\n{log}"
        );
    }
    assert_migrated(&sim, &before);
    assert_old_database_untouched(&sim, &before);
}
