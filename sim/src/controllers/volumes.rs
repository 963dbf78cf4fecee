//! Claims and volumes: binding to matching Available PVs (or the one named by `volumeName` /
//! pre-bound by `claimRef`), dynamic provisioning from StorageClasses as directories on disk,
//! phases, reclaim policies, and the pvc/pv-protection finalizers.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::snapshot::{rt, Snapshot};
use super::Action;
use crate::store::{meta, Propagation};

/// Directory holding a PV's data.
pub fn pv_host_path(pv: &Value, state_dir: &Path) -> PathBuf {
    for p in ["/spec/hostPath/path", "/spec/local/path"] {
        if let Some(path) = pv.pointer(p).and_then(Value::as_str) {
            return PathBuf::from(path);
        }
    }
    volumes_dir(state_dir).join(meta::name(pv))
}

/// Where the sim provisions volumes: one directory per PV.
fn volumes_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("volumes")
}

/// Whether the sim may delete `dir`: only a volume directory of its own, a direct child of
/// `<state>/volumes` named without `.` or `..`. Anything else is the host's (a real hostPath
/// deleter likewise refuses every path outside `/tmp`).
fn may_delete(dir: &Path, state_dir: &Path) -> bool {
    use std::path::Component;
    let plain = dir
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    plain && dir.parent() == Some(volumes_dir(state_dir).as_path())
}

/// Why a Released volume with reclaim policy Delete cannot be deleted (phase Failed), worded
/// like the real controller's messages; `None` when its directory is the sim's to remove.
fn undeletable(pv: &Value, state_dir: &Path) -> Option<String> {
    let dir = pv_host_path(pv, state_dir);
    if may_delete(&dir, state_dir) {
        return None;
    }
    Some(if pv.pointer("/spec/hostPath").is_some() {
        format!(
            "host_path deleter only supports {}/.+ but received provided {}",
            volumes_dir(state_dir).display(),
            dir.display()
        )
    } else {
        format!(
            "error getting deleter volume plugin for volume \"{}\": no deletable volume plugin matched",
            meta::name(pv)
        )
    })
}

/// `10Gi` -> bytes; unparsable quantities are 0.
pub fn quantity(q: &str) -> u128 {
    let q = q.trim();
    let (num, mult): (&str, u128) = [
        ("Ki", 1u128 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ]
    .iter()
    .find_map(|(s, m)| q.strip_suffix(s).map(|n| (n, *m)))
    .unwrap_or((q, 1));
    num.parse::<f64>()
        .map(|n| (n * mult as f64) as u128)
        .unwrap_or(0)
}

fn s<'a>(o: &'a Value, p: &str) -> &'a str {
    o.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

fn claim_used_by_pod(snap: &Snapshot, ns: &str, claim: &str) -> bool {
    snap.in_ns("", "pods", ns).any(|p| {
        !matches!(s(p, "/status/phase"), "Succeeded" | "Failed")
            && p.pointer("/spec/volumes")
                .and_then(Value::as_array)
                .is_some_and(|vs| {
                    vs.iter().any(|v| {
                        v.pointer("/persistentVolumeClaim/claimName")
                            .and_then(Value::as_str)
                            == Some(claim)
                    })
                })
    })
}

fn pv_matches(pv: &Value, pvc: &Value) -> bool {
    let class_ok = s(pv, "/spec/storageClassName") == s(pvc, "/spec/storageClassName");
    let want = quantity(s(pvc, "/spec/resources/requests/storage"));
    let have = quantity(s(pv, "/spec/capacity/storage"));
    let modes_ok = pvc
        .pointer("/spec/accessModes")
        .and_then(Value::as_array)
        .is_none_or(|m| {
            m.iter().all(|x| {
                pv.pointer("/spec/accessModes")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.contains(x))
            })
        });
    let ref_ok = match pv.pointer("/spec/claimRef") {
        None | Some(Value::Null) => true,
        Some(r) => {
            r["name"].as_str() == Some(meta::name(pvc))
                && r["namespace"].as_str() == Some(meta::namespace(pvc))
                && r.get("uid")
                    .and_then(Value::as_str)
                    .is_none_or(|u| u.is_empty() || u == meta::uid(pvc))
        }
    };
    // A volume reserved for this claim by `claimRef` is taken whatever its class: the real
    // binder's FindMatchingVolume returns a pre-bound volume before it compares classes
    // (kubernetes/kubernetes#76768 left it so); size and access modes still count.
    let reserved = pv.pointer("/spec/claimRef").is_some_and(|r| !r.is_null());
    (class_ok || reserved)
        && have >= want
        && modes_ok
        && ref_ok
        && s(pv, "/status/phase") == "Available"
        && !meta::is_deleting(pv)
}

fn claim_ref(pvc: &Value) -> Value {
    json!({
        "kind": "PersistentVolumeClaim",
        "namespace": meta::namespace(pvc),
        "name": meta::name(pvc),
        "uid": meta::uid(pvc),
        "apiVersion": "v1",
        "resourceVersion": pvc["metadata"]["resourceVersion"],
    })
}

pub fn reconcile(snap: &Snapshot, state_dir: &Path) -> Vec<Action> {
    let mut out = Vec::new();
    let pvs = snap.all("", "persistentvolumes");
    let pv_rt = rt("", "persistentvolumes");
    let pvc_rt = rt("", "persistentvolumeclaims");
    let mut claimed: Vec<String> = Vec::new();

    for pvc in snap.all("", "persistentvolumeclaims") {
        let ns = meta::namespace(pvc);
        let name = meta::name(pvc);
        if meta::is_deleting(pvc) {
            if meta::finalizers(pvc)
                .iter()
                .any(|f| f == "kubernetes.io/pvc-protection")
                && !claim_used_by_pod(snap, ns, name)
            {
                let rest: Vec<String> = meta::finalizers(pvc)
                    .into_iter()
                    .filter(|f| f != "kubernetes.io/pvc-protection")
                    .collect();
                out.push(Action::Merge(
                    pvc_rt,
                    ns.into(),
                    name.into(),
                    json!({"metadata": {"finalizers": rest}}),
                ));
            }
            continue;
        }
        let volume_name = s(pvc, "/spec/volumeName");
        let bound_pv = if !volume_name.is_empty() {
            pvs.iter().find(|pv| meta::name(pv) == volume_name)
        } else {
            pvs.iter()
                .find(|pv| {
                    pv.pointer("/spec/claimRef/uid").and_then(Value::as_str) == Some(meta::uid(pvc))
                        && !meta::is_deleting(pv)
                })
                .or_else(|| {
                    pvs.iter().find(|pv| {
                        pv_matches(pv, pvc)
                            && pv.pointer("/spec/claimRef").is_some_and(|r| !r.is_null())
                    })
                })
                .or_else(|| {
                    let mut cands: Vec<&Value> = pvs
                        .iter()
                        .filter(|pv| {
                            pv_matches(pv, pvc) && !claimed.contains(&meta::name(pv).to_string())
                        })
                        .collect();
                    cands.sort_by_key(|pv| quantity(s(pv, "/spec/capacity/storage")));
                    cands.first().copied()
                })
        };
        match bound_pv {
            Some(pv) => {
                let pv_name = meta::name(pv).to_string();
                claimed.push(pv_name.clone());
                let ref_uid = pv
                    .pointer("/spec/claimRef/uid")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let ref_ok = ref_uid == meta::uid(pvc);
                let other_claim = !ref_uid.is_empty() && !ref_ok;
                if other_claim {
                    set_pvc_status(pvc, json!({"phase": "Lost"}), &mut out);
                    continue;
                }
                if !ref_ok {
                    out.push(Action::Merge(
                        pv_rt,
                        String::new(),
                        pv_name.clone(),
                        json!({"spec": {"claimRef": claim_ref(pvc)}}),
                    ));
                }
                if volume_name.is_empty() {
                    out.push(Action::Merge(pvc_rt, ns.into(), name.into(), json!({
                        "spec": {"volumeName": pv_name},
                        "metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes"}},
                    })));
                }
                set_pvc_status(
                    pvc,
                    json!({
                        "phase": "Bound",
                        "accessModes": pv["spec"]["accessModes"],
                        "capacity": pv["spec"]["capacity"],
                    }),
                    &mut out,
                );
            }
            None if volume_name.is_empty() => {
                let class_name = s(pvc, "/spec/storageClassName");
                let class = snap
                    .all("storage.k8s.io", "storageclasses")
                    .iter()
                    .find(|c| meta::name(c) == class_name);
                if let Some(class) = class {
                    let wait = s(class, "/volumeBindingMode") == "WaitForFirstConsumer";
                    if !wait || claim_used_by_pod(snap, ns, name) {
                        let pv_name = format!("pvc-{}", meta::uid(pvc));
                        if !pvs.iter().any(|pv| meta::name(pv) == pv_name) {
                            let dir = state_dir.join("volumes").join(&pv_name);
                            out.push(Action::Create(pv_rt, json!({
                                "apiVersion": "v1",
                                "kind": "PersistentVolume",
                                "metadata": {
                                    "name": pv_name,
                                    "annotations": {"pv.kubernetes.io/provisioned-by": class["provisioner"]},
                                },
                                "spec": {
                                    "capacity": {"storage": pvc.pointer("/spec/resources/requests/storage").cloned().unwrap_or(json!("1Gi"))},
                                    "accessModes": pvc["spec"]["accessModes"],
                                    "persistentVolumeReclaimPolicy": class.get("reclaimPolicy").cloned().unwrap_or(json!("Delete")),
                                    "storageClassName": class_name,
                                    "volumeMode": "Filesystem",
                                    "hostPath": {"path": dir.to_string_lossy(), "type": "DirectoryOrCreate"},
                                    "claimRef": claim_ref(pvc),
                                },
                            })));
                        }
                    }
                }
                set_pvc_status(pvc, json!({"phase": "Pending"}), &mut out);
            }
            None => set_pvc_status(pvc, json!({"phase": "Pending"}), &mut out),
        }
    }

    for pv in pvs {
        let name = meta::name(pv);
        let claim = pv.pointer("/spec/claimRef").filter(|r| !r.is_null());
        let pvc = claim.and_then(|r| {
            snap.get(
                "",
                "persistentvolumeclaims",
                r["namespace"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default(),
            )
        });
        let ref_uid = claim
            .and_then(|r| r.get("uid"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let phase = match (claim, pvc) {
            (None, _) => "Available",
            (Some(_), Some(c)) if ref_uid.is_empty() || ref_uid == meta::uid(c) => {
                if ref_uid.is_empty() {
                    "Available"
                } else {
                    "Bound"
                }
            }
            (Some(_), _) if ref_uid.is_empty() => "Available",
            _ => "Released",
        };
        let reclaim_delete = s(pv, "/spec/persistentVolumeReclaimPolicy") == "Delete";
        if meta::is_deleting(pv) {
            if phase != "Bound"
                && meta::finalizers(pv)
                    .iter()
                    .any(|f| f == "kubernetes.io/pv-protection")
            {
                let rest: Vec<String> = meta::finalizers(pv)
                    .into_iter()
                    .filter(|f| f != "kubernetes.io/pv-protection")
                    .collect();
                out.push(Action::Merge(
                    pv_rt,
                    String::new(),
                    name.into(),
                    json!({"metadata": {"finalizers": rest}}),
                ));
                // A provisioned volume with reclaim policy Delete takes its storage along (as
                // with HonorPVReclaimPolicy); Retain keeps the data whatever happens to the PV.
                let dir = pv_host_path(pv, state_dir);
                if reclaim_delete
                    && pv
                        .pointer("/metadata/annotations/pv.kubernetes.io~1provisioned-by")
                        .is_some()
                    && may_delete(&dir, state_dir)
                {
                    out.push(Action::RemoveDir(dir));
                }
            }
            continue;
        }
        if phase == "Released" && reclaim_delete {
            match undeletable(pv, state_dir) {
                None => {
                    out.push(Action::RemoveDir(pv_host_path(pv, state_dir)));
                    out.push(Action::Delete(
                        pv_rt,
                        String::new(),
                        name.into(),
                        Propagation::Background,
                    ));
                }
                Some(message) => {
                    let status = json!({
                        "phase": "Failed",
                        "message": message,
                        "lastPhaseTransitionTime": if s(pv, "/status/phase") == "Failed" {
                            pv.pointer("/status/lastPhaseTransitionTime").cloned().unwrap_or(json!(meta::now()))
                        } else {
                            json!(meta::now())
                        },
                    });
                    if pv.get("status") != Some(&status) {
                        out.push(Action::SetStatus(pv_rt, String::new(), name.into(), status));
                    }
                }
            }
            continue;
        }
        let mut status = json!({"phase": phase, "lastPhaseTransitionTime": pv.pointer("/status/lastPhaseTransitionTime").cloned().unwrap_or(json!(meta::now()))});
        if s(pv, "/status/phase") != phase {
            status["lastPhaseTransitionTime"] = json!(meta::now());
        }
        if pv.get("status") != Some(&status) {
            out.push(Action::SetStatus(pv_rt, String::new(), name.into(), status));
        }
    }
    out
}

fn set_pvc_status(pvc: &Value, status: Value, out: &mut Vec<Action>) {
    if pvc.get("status") != Some(&status) {
        out.push(Action::SetStatus(
            rt("", "persistentvolumeclaims"),
            meta::namespace(pvc).into(),
            meta::name(pvc).into(),
            status,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sims_own_volume_directories_may_be_deleted() {
        let state = Path::new("/var/tmp/sim");
        assert!(may_delete(Path::new("/var/tmp/sim/volumes/pvc-1"), state));
        for outside in [
            "/var/tmp/sim/volumes",
            "/var/tmp/sim/volumes/pvc-1/data",
            "/var/tmp/sim/volumes/../pods",
            "/var/tmp/sim",
            "/srv/data",
            "/tmp/x",
            "volumes/pvc-1",
        ] {
            assert!(!may_delete(Path::new(outside), state), "{outside}");
        }
    }

    #[test]
    fn quantities_parse_binary_and_decimal_suffixes() {
        assert_eq!(quantity("10Gi"), 10 << 30);
        assert_eq!(quantity("500M"), 500_000_000);
        assert_eq!(quantity("1"), 1);
    }
}
