//! Garbage collection by ownerReferences: dependents of vanished owners are deleted in the
//! background; owners being deleted in the foreground wait for their dependents to go; owners
//! deleted with propagationPolicy Orphan first free their dependents (their ownerReferences
//! to the owner removed). Either way the owner's finalizer goes last.

use serde_json::{json, Value};

use super::snapshot::Snapshot;
use super::Action;
use crate::api::resources;
use crate::store::{meta, Propagation};

fn rt_of(o: &Value) -> Option<&'static resources::ResourceType> {
    resources::by_kind(o["apiVersion"].as_str()?, o["kind"].as_str()?)
}

fn has_finalizer(o: &Value, f: &str) -> bool {
    meta::finalizers(o).iter().any(|x| x == f)
}

/// A merge patch on an object's metadata.
fn merge_metadata(o: &Value, metadata: Value) -> Option<Action> {
    Some(Action::Merge(
        rt_of(o)?,
        meta::namespace(o).into(),
        meta::name(o).into(),
        json!({ "metadata": metadata }),
    ))
}

pub fn reconcile(s: &Snapshot) -> Vec<Action> {
    let mut out = Vec::new();
    let uids = s.uids();
    for o in s.everything() {
        let Some(refs) = o
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
        else {
            continue;
        };
        if refs.is_empty() || meta::is_deleting(o) {
            continue;
        }
        let owners_gone = refs
            .iter()
            .all(|r| !uids.contains(r["uid"].as_str().unwrap_or_default()));
        let owner_foreground = refs.iter().any(|r| {
            s.everything().any(|x| {
                meta::uid(x) == r["uid"].as_str().unwrap_or_default()
                    && meta::is_deleting(x)
                    && has_finalizer(x, meta::FOREGROUND_DELETION)
            })
        });
        if owners_gone || owner_foreground {
            if let Some(rt) = rt_of(o) {
                let p = if owner_foreground {
                    Propagation::Foreground
                } else {
                    Propagation::Background
                };
                out.push(Action::Delete(
                    rt,
                    meta::namespace(o).into(),
                    meta::name(o).into(),
                    p,
                ));
            }
        }
    }
    for o in s.everything() {
        if !meta::is_deleting(o) {
            continue;
        }
        let uid = meta::uid(o);
        let dependents: Vec<&Value> = s.everything().filter(|x| meta::owned_by(x, uid)).collect();
        for finalizer in [meta::FOREGROUND_DELETION, meta::ORPHAN] {
            if !has_finalizer(o, finalizer) {
                continue;
            }
            if dependents.is_empty() {
                let rest: Vec<String> = meta::finalizers(o)
                    .into_iter()
                    .filter(|f| f != finalizer)
                    .collect();
                out.extend(merge_metadata(o, json!({ "finalizers": rest })));
            } else if finalizer == meta::ORPHAN {
                for d in &dependents {
                    let refs: Vec<&Value> = d["metadata"]["ownerReferences"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|r| r["uid"].as_str() != Some(uid))
                        .collect();
                    let refs = if refs.is_empty() {
                        Value::Null
                    } else {
                        json!(refs)
                    };
                    out.extend(merge_metadata(d, json!({ "ownerReferences": refs })));
                }
            }
        }
    }
    out
}
