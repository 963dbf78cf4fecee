//! What the plugin deletes and acts on is what it recorded: a claim deleted and created again
//! by someone else between the point of no return and its delete is not deleted (the delete
//! carries the recorded uid as a precondition), and a state ConfigMap edited to point a
//! volume delete at another namespace's volume, or to run the plugin's pods from another
//! image, is refused before anything is changed.

mod common;

use common::sim::{migrate_args, text, Sim, RELEASE};
use serde_json::{json, Value};

fn state_name() -> String {
    format!("la-migrate-{RELEASE}")
}

/// One key of the state ConfigMap's data, as stored.
fn state_data(sim: &Sim, key: &str) -> String {
    let cm: Value =
        serde_json::from_str(&sim.kubectl(&["get", "configmap", &state_name(), "-o", "json"]))
            .unwrap();
    cm["data"][key].as_str().unwrap().to_string()
}

/// Writes one key of the state ConfigMap's data, as someone with `kubectl edit` would.
fn edit_state(sim: &Sim, key: &str, value: &str) {
    let patch = json!({ "data": { key: value } }).to_string();
    sim.kubectl(&[
        "patch",
        "configmap",
        &state_name(),
        "--type",
        "merge",
        "-p",
        &patch,
    ]);
}

fn claim_uid(sim: &Sim, claim: &str) -> String {
    sim.kubectl(&["get", "pvc", claim, "-o", "jsonpath={.metadata.uid}"])
}

#[test]
fn a_claim_created_again_under_a_recorded_name_is_not_deleted_and_the_run_stops_naming_it() {
    let (sim, _before) = Sim::with_seeded_release("3MB");
    let migrate = migrate_args(&["--yes"]);
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
    sim.apply(
        "new-claim.yaml",
        &format!("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {redis_claim}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n"),
    );
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

#[test]
fn a_state_edited_to_act_on_another_namespaces_volume_or_another_image_is_refused_unchanged() {
    let (sim, _before) = Sim::with_seeded_release("3MB");
    let prepare = sim.run_migrate(&["prepare", "--yes"]);
    assert!(prepare.status.success(), "{}", text(&prepare.stderr));
    let replicas = sim.replicas();
    let copy_pod = format!("la-migrate-{RELEASE}-copy");
    let copy_image = sim.kubectl(&[
        "get",
        "pod",
        &copy_pod,
        "-o",
        "jsonpath={.spec.containers[0].image}",
    ]);

    // A Released volume of another namespace's claim.
    let other = [
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: billing\n---\n",
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: invoices\n  namespace: billing\n",
        "spec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n",
    ]
    .concat();
    let manifest = sim.state_dir().join("billing.yaml");
    std::fs::write(&manifest, other).unwrap();
    let manifest = manifest.to_str().unwrap();
    sim.kubectl(&["apply", "--namespace", "billing", "-f", manifest]);
    let volume_of = || {
        sim.kubectl(&[
            "get",
            "pvc",
            "invoices",
            "--namespace",
            "billing",
            "-o",
            "jsonpath={.spec.volumeName}",
        ])
    };
    sim.wait_until(
        "the invoices claim to bind",
        std::time::Duration::from_secs(60),
        || !volume_of().is_empty(),
    );
    let victim = volume_of();
    sim.kubectl(&[
        "patch",
        "pv",
        &victim,
        "-p",
        r#"{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}"#,
    ]);
    sim.kubectl(&["delete", "pvc", "invoices", "--namespace", "billing"]);
    let phase = || sim.kubectl(&["get", "pv", &victim, "-o", "jsonpath={.status.phase}"]);
    sim.wait_until(
        "the volume to be Released",
        std::time::Duration::from_secs(60),
        || phase() == "Released",
    );

    // The record edited: that volume among those the migration retained.
    let record = state_data(&sim, "record.json");
    let mut edited: Value = serde_json::from_str(&record).unwrap();
    edited["reclaim_policies"][&victim] = json!("Delete");
    edit_state(&sim, "record.json", &edited.to_string());
    let cleanup = sim.run_plugin(&["4.44", "cleanup", "--delete-old-volumes", "--yes"]);
    let said = text(&cleanup.stderr);
    assert_eq!(cleanup.status.code(), Some(8), "{said}");
    assert!(
        said.contains(&format!(
            "PersistentVolume {victim} serves claim billing/invoices, in another namespace than live-agent"
        )),
        "{said}"
    );
    assert!(said.contains("nothing was changed"), "{said}");
    assert_eq!(
        phase(),
        "Released",
        "the other namespace's volume was touched"
    );
    assert_eq!(
        sim.kubectl(&["get", "pod", &copy_pod, "-o", "jsonpath={.metadata.name}"]),
        copy_pod,
        "cleanup removed the plugin's pods"
    );
    edit_state(&sim, "record.json", &record);

    // The plan edited: the plugin's pods from another image.
    let plan = state_data(&sim, "plan.json");
    let mut edited: Value = serde_json::from_str(&plan).unwrap();
    edited["new_database"]["image"] = json!("evil.example/tools:1");
    edit_state(&sim, "plan.json", &edited.to_string());
    let copy = sim.run_migrate(&["copy", "--yes"]);
    let said = text(&copy.stderr);
    assert_eq!(copy.status.code(), Some(8), "{said}");
    assert!(
        said.contains(&format!(
            "the image of the copy pod is \"evil.example/tools:1\", not \"{copy_image}\""
        )),
        "{said}"
    );
    assert_eq!(sim.replicas(), replicas, "the app was scaled down");
    assert!(!said.contains("[copy.scale-down]"), "{said}");
}
