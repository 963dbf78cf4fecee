//! Reclaim policies on disk, through the API as kubectl drives it (no pods run): Delete
//! removes a provisioned volume's directory, Retain keeps it even when the PV object is
//! deleted, and a hostPath outside the sim's own storage is never removed; a volume reserved
//! by `claimRef` goes to a claim of that name when the request fits it, whatever the class.

mod cluster_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cluster_support::SimProcess;

const WAIT: Duration = Duration::from_secs(30);

/// Creates claim `name` in `default` (the default class unless `class` is given) and returns
/// the name of the volume it binds to.
fn bound_claim(sim: &SimProcess, name: &str, class: Option<&str>) -> String {
    claim(sim, name, class, "1Gi");
    volume_of(sim, name)
}

/// Creates claim `name` in `default` asking `storage` (the default class unless `class` is
/// given).
fn claim(sim: &SimProcess, name: &str, class: Option<&str>, storage: &str) {
    let class = class
        .map(|c| format!("  storageClassName: {c}\n"))
        .unwrap_or_default();
    apply(
        sim,
        name,
        &format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n{class}  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: {storage}\n"
        ),
    );
}

/// Waits for claim `name` in `default` to bind and returns the name of its volume.
fn volume_of(sim: &SimProcess, name: &str) -> String {
    sim.wait_for(
        &[
            "get",
            "pvc",
            name,
            "-o",
            "jsonpath={.status.phase} {.spec.volumeName}",
        ],
        "the claim to bind",
        WAIT,
        |o| o.starts_with("Bound "),
    )
    .trim_start_matches("Bound ")
    .to_string()
}

fn apply(sim: &SimProcess, name: &str, yaml: &str) {
    let file = sim.state_dir().join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    sim.kubectl(&["apply", "-f", file.to_str().unwrap()]);
}

/// The volume's directory, with a file in it as a pod would have left.
fn data_dir(sim: &SimProcess, pv: &str) -> PathBuf {
    let dir =
        PathBuf::from(sim.kubectl(&["get", "pv", pv, "-o", "jsonpath={.spec.hostPath.path}"]));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("PG_VERSION"), "11\n").unwrap();
    dir
}

fn pv_gone(sim: &SimProcess, pv: &str) {
    sim.wait_for(
        &["get", "pv", "-o", "name"],
        "the volume to go",
        WAIT,
        |o| !o.contains(&format!("persistentvolume/{pv}\n")),
    );
}

/// A Retain volume of `capacity` in the default class, its directory under the sim's own
/// storage, reserved by `claimRef` (name and namespace, no uid) for claim `claim` in
/// `default` as the migration reserves one; returns once the binder has seen it Available.
fn reserved_volume(sim: &SimProcess, name: &str, claim: &str, capacity: &str) {
    let dir = sim.state_dir().join("volumes").join(name);
    apply(
        sim,
        name,
        &format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {name}\nspec:\n  storageClassName: standard\n  persistentVolumeReclaimPolicy: Retain\n  capacity:\n    storage: {capacity}\n  accessModes: [ReadWriteOnce]\n  hostPath:\n    path: {}\n    type: DirectoryOrCreate\n  claimRef:\n    namespace: default\n    name: {claim}\n",
            dir.display()
        ),
    );
    sim.wait_volume_phase(
        name,
        "Available",
        "the reserved volume to be Available",
        WAIT,
    );
}

/// Shows a volume's `phase claimRef.name claimRef.uid`.
const RESERVATION: &str = "jsonpath={.status.phase} {.spec.claimRef.name} {.spec.claimRef.uid}";

/// Waits for the volume to be Bound to claim `claim` in `default` (its uid in the claimRef).
fn bound_to(sim: &SimProcess, pv: &str, claim: &str) {
    let uid = claim_uid(sim, claim);
    sim.wait_for(
        &["get", "pv", pv, "-o", RESERVATION],
        "the reserved volume to be Bound",
        WAIT,
        |o| o == format!("Bound {claim} {uid}"),
    );
}

fn claim_uid(sim: &SimProcess, claim: &str) -> String {
    sim.kubectl(&["get", "pvc", claim, "-o", "jsonpath={.metadata.uid}"])
}

fn holds_data(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("PG_VERSION")).is_ok_and(|v| v == "11\n")
}

#[test]
fn a_delete_policy_volume_takes_its_directory_along_when_its_claim_goes() {
    let sim = SimProcess::start_without_runtime();
    let pv = bound_claim(&sim, "scratch", None);
    let dir = data_dir(&sim, &pv);
    assert!(dir.starts_with(sim.state_dir()), "{}", dir.display());
    sim.kubectl(&["delete", "pvc", "scratch"]);
    pv_gone(&sim, &pv);
    assert!(!dir.exists(), "{} survived", dir.display());
}

#[test]
fn a_retained_volume_keeps_its_data_after_its_claim_and_the_pv_object_are_deleted() {
    let sim = SimProcess::start_without_runtime();
    let pv = bound_claim(&sim, "attachments", None);
    let dir = data_dir(&sim, &pv);
    sim.retain_volume(&pv);
    sim.kubectl(&["delete", "pvc", "attachments"]);
    sim.wait_volume_phase(&pv, "Released", "the volume to be Released", WAIT);
    assert!(holds_data(&dir));
    sim.kubectl(&["delete", "pv", &pv]);
    pv_gone(&sim, &pv);
    // The storage asset outlives the PV object, as on a real cluster.
    assert!(holds_data(&dir), "{} lost its data", dir.display());
}

#[test]
fn a_host_path_outside_the_sims_storage_is_never_deleted_and_the_volume_fails_instead() {
    let sim = SimProcess::start_without_runtime();
    let outside = tempfile::Builder::new()
        .prefix("la-sim-host-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let dir = outside.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("PG_VERSION"), "11\n").unwrap();
    apply(
        &sim,
        "host",
        &format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: host\nspec:\n  storageClassName: manual\n  persistentVolumeReclaimPolicy: Delete\n  capacity:\n    storage: 1Gi\n  accessModes: [ReadWriteOnce]\n  hostPath:\n    path: {}\n",
            dir.display()
        ),
    );
    assert_eq!(bound_claim(&sim, "host-claim", Some("manual")), "host");
    sim.kubectl(&["delete", "pvc", "host-claim"]);
    let status = sim.wait_for(
        &[
            "get",
            "pv",
            "host",
            "-o",
            "jsonpath={.status.phase}: {.status.message}",
        ],
        "the volume to fail its deletion",
        WAIT,
        |o| o.starts_with("Failed"),
    );
    assert_eq!(
        status,
        format!(
            "Failed: host_path deleter only supports {}/volumes/.+ but received provided {}",
            sim.state_dir().display(),
            dir.display()
        )
    );
    assert!(holds_data(&dir));
    // Deleting the PV object by hand leaves the host's directory alone too.
    sim.kubectl(&["delete", "pv", "host"]);
    pv_gone(&sim, "host");
    assert!(holds_data(&dir), "{} lost its data", dir.display());
}

#[test]
fn a_volume_reserved_by_claim_ref_binds_its_claim_when_the_request_fits_whatever_the_class() {
    let sim = SimProcess::start_without_runtime();
    // A second class that provisions too, so a claim in it has somewhere else to go.
    apply(
        &sim,
        "fast",
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: fast\nprovisioner: la-sim.local/hostpath\nreclaimPolicy: Delete\nvolumeBindingMode: Immediate\n",
    );
    reserved_volume(&sim, "reserved-larger", "data-larger", "1Gi");
    reserved_volume(&sim, "reserved-other-class", "data-other-class", "1Gi");
    reserved_volume(&sim, "reserved-data", "data", "2Gi");

    // (a) The claim asks more than the reserved volume holds: FindMatchingVolume skips it, and
    // the default class provisions a volume of the requested size instead. The reservation
    // stays, the reserved volume Available.
    claim(&sim, "data-larger", None, "2Gi");
    let provisioned = volume_of(&sim, "data-larger");
    assert_eq!(
        provisioned,
        format!("pvc-{}", claim_uid(&sim, "data-larger"))
    );
    assert_eq!(
        sim.kubectl(&[
            "get",
            "pv",
            &provisioned,
            "-o",
            "jsonpath={.spec.storageClassName} {.spec.capacity.storage} {.status.phase}",
        ]),
        "standard 2Gi Bound"
    );
    assert_eq!(
        sim.kubectl(&["get", "pv", "reserved-larger", "-o", RESERVATION]),
        "Available data-larger "
    );

    // (b) A claim of the reserved name in another class still gets the reserved volume: the
    // real binder returns a pre-bound volume before it compares classes, so nothing is
    // provisioned in `fast`.
    claim(&sim, "data-other-class", Some("fast"), "1Gi");
    assert_eq!(volume_of(&sim, "data-other-class"), "reserved-other-class");
    bound_to(&sim, "reserved-other-class", "data-other-class");
    let volumes = sim.kubectl(&["get", "pv", "-o", "name"]);
    let uid = claim_uid(&sim, "data-other-class");
    assert!(!volumes.contains(&format!("pvc-{uid}")), "{volumes}");

    // (c) The claim it was reserved for, in its class and asking less than it holds: bound to
    // it, with the volume's capacity.
    claim(&sim, "data", None, "1Gi");
    assert_eq!(volume_of(&sim, "data"), "reserved-data");
    bound_to(&sim, "reserved-data", "data");
    assert_eq!(
        sim.kubectl(&[
            "get",
            "pvc",
            "data",
            "-o",
            "jsonpath={.spec.storageClassName} {.status.capacity.storage}",
        ]),
        "standard 2Gi"
    );
    assert_eq!(
        sim.kubectl(&["get", "pv", "reserved-larger", "-o", RESERVATION]),
        "Available data-larger "
    );
}
