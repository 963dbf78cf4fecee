//! What the plugin deletes is what it recorded: a claim deleted and created again by someone
//! else between the point of no return and its delete is not deleted (the delete carries the
//! recorded uid as a precondition).

mod common;

use common::sim::{chart, text, ReleaseSpec, Sim, RELEASE};

fn claim_uid(sim: &Sim, claim: &str) -> String {
    sim.kubectl(&["get", "pvc", claim, "-o", "jsonpath={.metadata.uid}"])
}

#[test]
fn a_claim_created_again_under_a_recorded_name_is_not_deleted_and_the_run_stops_naming_it() {
    let mut spec = ReleaseSpec::custom("3.19.0");
    spec.seed_size = "3MB";
    let (sim, _before) = Sim::with_release(spec);
    let target = chart("4.44.0");
    let migrate = ["4.44", "--chart", target.to_str().unwrap(), "--yes"];
    // The cut-over stops at its claim deletes, after the uninstall.
    let database_claim = format!("data-{RELEASE}-postgresql-0");
    sim.fail_api_method(
        500,
        3600,
        &format!("persistentvolumeclaims/{database_claim}"),
        "DELETE",
    );
    let first = sim.run_plugin(&migrate);
    let said = text(&first.stderr);
    assert!(!first.status.success(), "{said}");
    assert!(said.contains("step cutover.delete-claims failed"), "{said}");
    sim.fail_api_method(500, 0, "", "");

    // Someone deletes a Redis claim the cut-over recorded and creates one of that name.
    let redis_claim = format!("redis-data-{RELEASE}-redis-replicas-0");
    let recorded = claim_uid(&sim, &redis_claim);
    sim.kubectl(&["delete", "pvc", &redis_claim]);
    let manifest = sim.state_dir().join("new-claim.yaml");
    std::fs::write(
        &manifest,
        format!("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {redis_claim}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n"),
    )
    .unwrap();
    sim.kubectl(&["apply", "-f", manifest.to_str().unwrap()]);
    let created = claim_uid(&sim, &redis_claim);
    assert_ne!(created, recorded);

    let again = sim.run_plugin(&migrate);
    let said = text(&again.stderr);
    assert_eq!(again.status.code(), Some(8), "{said}");
    assert!(
        said.contains(&format!(
            "PersistentVolumeClaim live-agent/{redis_claim} is not the object this migration recorded (uid {recorded})"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!("UID in object meta: {created}")),
        "{said}"
    );
    assert!(said.contains("run the same command again"), "{said}");
    assert_eq!(
        claim_uid(&sim, &redis_claim),
        created,
        "the new claim was deleted"
    );
}
