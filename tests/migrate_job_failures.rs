//! A copy that fails in the cluster (PostgreSQL 11 dying under it) stops the migration with
//! the job's log, and the next run starts it anew (the failed attempt's log kept) instead of
//! repeating the failure; a tools pod that is gone (evicted, deleted) is created again. The
//! old release is untouched throughout, and the migration then ends with nothing lost. A run
//! waiting on a long copy holds the lock, renews it, and lets go of it on SIGTERM.

mod common;

use std::time::Duration;

use common::sim::{assert_migrated, migrate_args, text, Sim, ONBOARDING_KEY, RELEASE};

const COPY_POD: &str = "la-migrate-cognigy-live-agent-copy";

/// Waits until the copy in its pod has reached `step` (its `step` file), held there by a
/// table lock on PostgreSQL 11.
fn copy_held_at(sim: &Sim, step: &str) {
    sim.wait_until(
        &format!("the copy to reach its {step} step"),
        Duration::from_secs(120),
        || {
            let out = sim.kubectl_unchecked(&["exec", COPY_POD, "--", "cat", "/work/step"]);
            text(&out.stdout).trim() == step
        },
    );
}

#[test]
fn a_copy_whose_source_dies_is_started_anew_by_the_next_run_and_nothing_is_lost() {
    let (sim, before) = Sim::with_seeded_release("8MB");
    let db_pod = format!("{RELEASE}-postgresql-0");
    let migrate = migrate_args(&["--yes"]);

    // The copy's schema dump waits behind a lock; PostgreSQL 11 dies under it: the run stops
    // with exit 11 (external).
    let running = sim.plugin_until("→ [copy.scale-down]");
    let lock = sim.hold_table_lock("accounts");
    copy_held_at(&sim, "schema");
    sim.kill_pod_processes(&db_pod);
    let (status, said) = running.finish();
    drop(lock);
    assert_eq!(
        status.code(),
        Some(11),
        "the failed copy must stop the run:\n{said}"
    );
    assert!(
        said.contains(&format!("the copy in pod live-agent/{COPY_POD} failed"))
            && said.contains("it starts the copy anew"),
        "{said}"
    );
    assert!(sim.steps_done().contains("copy.scale-down"));
    assert!(!sim.steps_done().contains("copy.copy"));
    assert!(
        sim.helm(&["list", "-o", "json"])
            .contains("live-agent-4.43.1"),
        "nothing may be uninstalled after a failed copy"
    );
    let status = sim.run_plugin(&["4.44", "status"]);
    assert!(text(&status.stdout).contains("Next: copy.copy"));
    let failed_log =
        sim.kubectl_unchecked(&["exec", COPY_POD, "--", "test", "-s", "/work/copy.log"]);
    assert!(
        failed_log.status.success(),
        "the failed copy's log is there"
    );

    // The copy pod is gone too (as after an eviction), and the old server is back. The next
    // run recreates the pod, copies anew into a recreated database and completes.
    sim.kubectl(&["delete", "pod", COPY_POD, "--wait=true"]);
    sim.wait_pod_ready(&db_pod);
    let out = sim.run_plugin(&migrate);
    let log = text(&out.stderr);
    assert!(out.status.success(), "the resumed migration failed:\n{log}");
    assert_migrated(&sim, &before);
    assert!(!sim.redis_exists(ONBOARDING_KEY, &sim.spec.redis_password));
}

/// The lock's expiry as the state ConfigMap holds it.
fn lock_expires(sim: &Sim) -> i64 {
    let out = sim.kubectl(&[
        "get",
        "configmap",
        &format!("la-migrate-{RELEASE}"),
        "-o",
        "jsonpath={.metadata.annotations.la-migrate\\.cognigy\\.com/lock-expires}",
    ]);
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("no lock expiry: {out:?}"))
}

#[test]
fn a_run_holds_the_lock_while_it_waits_is_refused_to_a_second_run_and_releases_it_on_sigterm() {
    let (sim, before) = Sim::with_seeded_release("3MB");
    let migrate = migrate_args(&["--yes"]);

    // The first run waits on a copy held behind a lock, writing no step meanwhile.
    let running = sim.plugin_until("→ [copy.scale-down]");
    let lock = sim.hold_table_lock("accounts");
    copy_held_at(&sim, "schema");
    let holder = format!(":{}", running.child.id());

    let second = sim.run_plugin(&migrate);
    let said = text(&second.stderr);
    assert_eq!(second.status.code(), Some(10), "{said}");
    assert!(
        said.contains("is locked by") && said.contains(&holder),
        "{said}"
    );
    let status = sim.run_plugin(&["4.44", "status"]);
    let shown = text(&status.stdout);
    assert!(
        shown.contains("holds the lock") && shown.contains(&holder),
        "{shown}"
    );
    let json = sim.run_plugin(&["4.44", "status", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(json["locked_by"].as_str().unwrap().ends_with(&holder));
    assert_eq!(json["next"], "copy.copy");

    // A minute later the lock was renewed by the waiting run.
    let first = lock_expires(&sim);
    std::thread::sleep(Duration::from_secs(65));
    let renewed = lock_expires(&sim);
    // Nothing else writes the state while the copy is held still: a later expiry is the
    // renewal's.
    assert!(
        renewed > first,
        "the lock was not renewed while the run waited: {first} -> {renewed}"
    );

    // SIGTERM (as from a closing terminal or a CI job's timeout): exit 130, the lock released,
    // the copy left to go on in its pod.
    let pid = running.child.id().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let (status, said) = running.finish();
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(
        said.contains("interrupted by SIGTERM") && said.contains("again: it resumes"),
        "{said}"
    );
    let json = sim.run_plugin(&["4.44", "status", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(json["locked_by"].is_null(), "the lock was kept: {json}");
    drop(lock);

    // The rerun picks up the copy that went on, and completes.
    let out = sim.run_plugin(&migrate);
    let log = text(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("reattached to the running copy")
            || log.contains("the copy had finished already"),
        "{log}"
    );
    assert_migrated(&sim, &before);
}
