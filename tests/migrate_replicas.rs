//! An app the operator scaled to 0 before the migration is not left off by a "complete" run:
//! the upgrade takes the replicas from the release's values, and `verify` flags a Deployment
//! at 0.

mod common;

use common::sim::{text, Sim, RELEASE};

#[test]
fn an_app_scaled_to_0_before_the_migration_comes_back_with_the_values_replicas() {
    let (sim, _before) = Sim::with_seeded_release("1MB");
    let worker = format!("{RELEASE}-worker");
    sim.kubectl(&["scale", "deployment", RELEASE, &worker, "--replicas=0"]);
    assert_eq!(sim.replicas()["app"], 0);
    let out = sim.run_migrate(&["--yes"]);
    let said = text(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("was at 0 replicas when the migration started: the upgrade uses app.replica=2 from the release's values"),
        "{said}"
    );
    // The custom values: app.replica 2, worker.replica 1.
    let replicas = sim.replicas();
    assert_eq!(
        (replicas["app"], replicas["worker"]),
        (2, 1),
        "{replicas:?}"
    );

    // Scaled to 0 afterwards: verify says so, naming the Deployment and the way back.
    sim.kubectl(&[
        "scale",
        "deployment",
        &format!("{RELEASE}-app"),
        "--replicas=0",
    ]);
    let out = sim.run_migrate(&["verify"]);
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{said}");
    assert!(
        said.contains(&format!("Deployment {RELEASE}-app has 0 replicas"))
            && said.contains("--set app.replica=1"),
        "{said}"
    );
}
