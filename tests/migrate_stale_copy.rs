//! A copy that is not what PostgreSQL 11 holds never reaches the point of no return.
//!
//! Two realistic ways: something the plugin did not scale down (here the test itself) keeps
//! writing to the old database while it is copied, and the proof finds PostgreSQL 15 short of
//! rows; or the copy is proven, and something writes to the old database afterwards (a cron
//! job, an operator's fix), and the point of no return finds PostgreSQL 11 moved on. Both stop
//! with exit 9, the old release untouched and the copy forgotten; the next run copies anew and
//! carries the late rows along.

mod common;

use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::sim::{assert_migrated, migrate_args, text, Sim};
use la_migrate::exit::ExitCode;

fn run_ok(sim: &Sim, args: &[&str]) {
    let out = sim.run_plugin(args);
    assert!(
        out.status.success(),
        "la-migrate {args:?} failed ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
}

fn count(sim: &Sim, sql: &str) -> u64 {
    let rows = sim.database().query("count", sql).expect("query");
    rows[0][0].parse().expect("a count")
}

/// The release as helm has it: still 4.43.1, deployed, its database claim in place.
fn untouched(sim: &Sim, revisions: &str) {
    assert_eq!(
        sim.helm(&["history", "cognigy-live-agent", "-o", "json"]),
        revisions,
        "a helm operation ran"
    );
    sim.kubectl(&["get", "pvc", "data-cognigy-live-agent-postgresql-0"]);
    let steps = sim.steps_done();
    assert!(!steps.contains("cutover.retain-volumes"), "{steps}");
    assert!(!steps.contains("copy.prove"), "{steps}");
    assert!(!sim.state_record()["copy_verified"]
        .as_bool()
        .unwrap_or(false));
}

/// The run stopped with exit 9 (verification failed) saying each of `needles`, and the old
/// release is untouched.
fn stopped_unverified(sim: &Sim, out: &Output, revisions: &str, needles: &[&str]) {
    let said = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(ExitCode::VerificationFailed as i32),
        "{said}"
    );
    assert!(needles.iter().all(|n| said.contains(n)), "{said}");
    untouched(sim, revisions);
}

#[test]
fn rows_written_during_the_copy_or_after_its_proof_stop_the_migration_before_anything_is_deleted() {
    let (sim, mut before) = Sim::with_seeded_release("3MB");
    let revisions = sim.helm(&["history", "cognigy-live-agent", "-o", "json"]);

    // A writer the plugin does not know about, inserting a row (tag names are unique) every
    // 20 ms while prepare and copy run.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written, db) = (stop.clone(), written.clone(), sim.database());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if db
                    .query(
                        "insert",
                        "insert into tags (name) values ('written during the copy ' || clock_timestamp())",
                    )
                    .is_ok()
                {
                    written.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    run_ok(&sim, &migrate_args(&["prepare"]));
    let out = sim.run_migrate(&["copy"]);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(written.load(Ordering::SeqCst) > 0, "the writer never wrote");
    stopped_unverified(
        &sim,
        &out,
        &revisions,
        &[
            "PostgreSQL 15 differs from PostgreSQL 11 after the copy",
            "tags",
            "the old release is untouched",
        ],
    );

    // The copy runs anew with nothing writing, and is proven.
    run_ok(&sim, &migrate_args(&["copy"]));
    assert!(sim.state_record()["copy_verified"].as_bool().unwrap());

    // Written to after the proof: the point of no return finds the copy stale, forgets it,
    // and deletes nothing.
    sim.database()
        .query(
            "insert",
            "insert into tags (name) values ('written after the proof')",
        )
        .expect("insert");
    let tags = count(&sim, "select count(*) from tags");
    let out = sim.run_migrate(&["--yes"]);
    stopped_unverified(
        &sim,
        &out,
        &revisions,
        &[
            "the copy is stale: PostgreSQL 11 was written to since the copy was proven",
            "nothing was deleted",
        ],
    );
    for (name, replicas) in sim.replicas() {
        assert_eq!(replicas, 0, "{name} was scaled up");
    }

    // The next run copies anew and completes, the late row carried along.
    before.db = Some(la_sim::seed::snapshot(&sim.database()).expect("snapshot"));
    run_ok(&sim, &migrate_args(&["--yes"]));
    assert_migrated(&sim, &before);
    assert_eq!(count(&sim, "select count(*) from tags"), tags);
}
