//! A restore that does not match the backup's record stops the migration before the upgrade.
//!
//! The mismatch is a realistic one: something the backup did not scale down (here the test
//! itself) keeps writing to the old database while it is dumped. The dump holds the rows of its
//! snapshot, the source's fingerprint, taken after the dump, holds more; so the restored
//! database has fewer rows than recorded, and la-migrate must refuse to go on.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::sim::{chart, text, ReleaseSpec, Sim};
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

#[test]
fn rows_written_during_the_dump_stop_the_migration_before_the_upgrade() {
    let mut spec = ReleaseSpec::custom("3.19.0");
    spec.seed_size = "3MB";
    let (sim, _before) = Sim::with_release(spec);
    let target = chart("4.44.0");
    let target = target.to_str().unwrap();
    let tags_before = count(&sim, "select count(*) from tags");

    // A writer the backup does not know about, inserting a row (tag names are unique) every
    // 20 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written, db) = (stop.clone(), written.clone(), sim.database());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if db
                    .query(
                        "insert",
                        "insert into tags (name) values ('written during the backup ' || clock_timestamp())",
                    )
                    .is_ok()
                {
                    written.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    run_ok(&sim, &["4.44", "--chart", target, "backup", "--yes"]);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(written.load(Ordering::SeqCst) > 0, "the writer never wrote");
    let recorded = sim.state_record()["backup"]["source"]["tables"]["tags"]["rows"]
        .as_u64()
        .expect("the backup recorded the tags table");
    assert!(recorded > tags_before, "the fingerprint saw no written row");

    run_ok(&sim, &["4.44", "--chart", target, "uninstall", "--yes"]);
    run_ok(&sim, &["4.44", "--chart", target, "install", "--yes"]);
    let revisions = sim.helm(&["history", "cognigy-live-agent", "-o", "json"]);

    // The restore, and then the whole migration run again, both stop at the check.
    for args in [
        vec!["4.44", "--chart", target, "restore", "--yes"],
        vec!["4.44", "--chart", target, "--yes"],
    ] {
        let out = sim.run_plugin(&args);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(ExitCode::VerificationFailed as i32),
            "{args:?}:\n{stderr}"
        );
        assert!(
            stderr.contains("the restored database differs from the backup's record")
                && stderr.contains("table tags: ")
                && stderr.contains(&format!("rows, the source had {recorded}")),
            "{args:?}:\n{stderr}"
        );
        assert!(
            stderr.contains("stopped before the upgrade"),
            "{args:?}:\n{stderr}"
        );
    }

    // Nothing after the check ran: no upgrade, the app still off, the check not recorded.
    assert_eq!(
        sim.helm(&["history", "cognigy-live-agent", "-o", "json"]),
        revisions
    );
    let steps = sim.steps_done();
    assert!(steps.contains("restore.restore"), "{steps}");
    assert!(!steps.contains("restore.verify"), "{steps}");
    assert!(!steps.contains("upgrade."), "{steps}");
    for (name, replicas) in sim.replicas() {
        assert_eq!(replicas, 0, "{name} was scaled up");
    }
    // The new database holds what the dump held: fewer tags than the record says.
    let restored = count(&sim, "select count(*) from tags");
    assert!(
        restored >= tags_before && restored < recorded,
        "restored {restored}, before {tags_before}, recorded {recorded}"
    );
}
