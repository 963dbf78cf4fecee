//! A migration killed at any step resumes when run again, from the state recorded in the
//! cluster, and ends with nothing lost: killed mid-dump, right after the release was
//! uninstalled, while PostgreSQL 15 starts, and mid-restore (the dump and restore are checked
//! to be still running in their pods at the kill).

mod common;

use std::time::{Duration, Instant};

use common::sim::{assert_migrated, chart, text, ReleaseSpec, Sim, ONBOARDING_KEY};

#[test]
fn a_migration_killed_at_four_steps_resumes_each_time_and_loses_nothing() {
    let mut spec = ReleaseSpec::custom("3.19.0");
    // Big enough that dump and restore outlast the kill by seconds.
    spec.seed_size = "40MB";
    let (sim, before) = Sim::with_release(spec);

    const DUMP_POD: &str = "la-migrate-cognigy-live-agent-dump";
    const RESTORE_POD: &str = "la-migrate-cognigy-live-agent-restore";
    sim.kill_plugin_after("→ [backup.dump]", Duration::ZERO, Some((DUMP_POD, "dump")));
    sim.assert_job_running(DUMP_POD, "dump");

    sim.kill_plugin_after("✓ [uninstall.helm-uninstall]", Duration::ZERO, None);
    sim.kill_plugin_after(
        "→ [install.wait-databases]",
        Duration::from_millis(300),
        None,
    );
    sim.kill_plugin_after(
        "→ [restore.restore]",
        Duration::ZERO,
        Some((RESTORE_POD, "restore")),
    );
    sim.assert_job_running(RESTORE_POD, "restore");

    let started = Instant::now();
    let target = chart("4.44.0");
    let out = sim.run_plugin(&["4.44", "--chart", target.to_str().unwrap(), "--yes"]);
    assert!(
        out.status.success(),
        "the resumed migration failed ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    let log = text(&out.stderr);
    assert!(log.contains("(done earlier)"), "{log}");
    eprintln!(
        "resumed to the end in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_migrated(&sim, &before);
    assert!(!sim.redis_exists(ONBOARDING_KEY, &sim.spec.redis_password));

    let status = sim.run_plugin(&["4.44", "status"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
}
