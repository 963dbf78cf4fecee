//! The migration lock: a run that lost it (another run wrote the state over it) stops with
//! exit 10 instead of going on, and a run killed with SIGKILL whose process is still a zombie
//! (not yet reaped by its parent) counts as dead: the rerun takes its lock over at once.

mod common;

use std::time::{Duration, Instant};

use common::sim::{text, Sim, RELEASE};

fn small_release() -> Sim {
    Sim::with_seeded_release("2MB").0
}

#[test]
fn a_run_whose_lock_was_taken_stops_with_exit_10_and_writes_nothing_more() {
    let sim = small_release();
    // The run waits on a copy held behind a lock on PostgreSQL 11.
    let running = sim.plugin_until("→ [copy.scale-down]");
    let lock = sim.hold_table_lock("accounts");
    sim.wait_until("the copy to start", Duration::from_secs(120), || {
        sim.job_running("la-migrate-cognigy-live-agent-copy", "copy")
            .is_ok()
    });
    // Another run takes the lock (as one that found it expired would).
    let state = format!("la-migrate-{RELEASE}");
    sim.kubectl(&[
        "annotate",
        "--overwrite",
        "configmap",
        &state,
        "la-migrate.cognigy.com/lock-holder=ops@elsewhere(boot b, pidns p):1",
    ]);
    let taken = Instant::now();
    // Bounded: a run that does not notice would wait on the copy forever.
    let mut running = running;
    while running.child.try_wait().unwrap().is_none() && taken.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = running.child.kill();
    let (status, said) = running.finish();
    assert_eq!(status.code(), Some(10), "{said}");
    assert!(said.contains("lost the migration lock"), "{said}");
    assert!(
        taken.elapsed() < Duration::from_secs(60),
        "it went on for {:?}",
        taken.elapsed()
    );
    // It did not write the state over the other run's lock.
    let holder = sim.kubectl(&[
        "get",
        "configmap",
        &state,
        "-o",
        "jsonpath={.metadata.annotations.la-migrate\\.cognigy\\.com/lock-holder}",
    ]);
    assert_eq!(holder, "ops@elsewhere(boot b, pidns p):1");
    drop(lock);
}

#[test]
fn a_killed_run_still_a_zombie_leaves_a_lock_the_rerun_takes_over_at_once() {
    let sim = small_release();
    let mut running = sim.plugin_until("✓ [prepare.record-replicas]");
    // SIGKILL, not reaped: /proc/<pid> of the zombie stays while the rerun starts.
    running.child.kill().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", running.child.id()));
    assert!(
        stat.as_deref().is_ok_and(|s| s.contains(") Z ")),
        "not a zombie: {stat:?}"
    );
    let out = sim.run_migrate(&["prepare"]);
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let _ = running.finish();
}
