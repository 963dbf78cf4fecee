//! The whole migration on the simulated cluster: a seeded 4.43.1 release, installed with real
//! helm from the real chart, goes through `la-migrate 4.44` to 4.44.0 on PostgreSQL 15. The
//! test checks the result itself (its own snapshots, not the plugin's report).

mod common;

use common::sim::{assert_migrated, chart, text, ReleaseSpec, Sim, ONBOARDING_KEY};

fn migrate(sim: &Sim) {
    let target = chart("4.44.0");
    let out = sim.run_plugin(&["4.44", "--chart", target.to_str().unwrap(), "--yes"]);
    assert!(
        out.status.success(),
        "la-migrate 4.44 failed ({}):\n{}\n{}",
        out.status,
        text(&out.stderr),
        text(&out.stdout)
    );
}

#[test]
fn a_release_with_custom_values_migrates_under_helm_3_17_with_every_row_and_file_intact() {
    let (sim, before) = Sim::with_release(ReleaseSpec::custom("3.17.3"));
    migrate(&sim);
    assert_migrated(&sim, &before);
    assert!(!sim.redis_exists(ONBOARDING_KEY, &sim.spec.redis_password));
}
