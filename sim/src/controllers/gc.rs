//! Garbage collection by ownerReferences: dependents of vanished owners are deleted in the
//! background; owners being deleted in the foreground wait for their dependents.

use serde_json::Value;

use super::snapshot::Snapshot;
use super::Action;
use crate::api::resources;
use crate::store::{meta, Propagation};

fn rt_of(o: &Value) -> Option<&'static resources::ResourceType> {
    resources::by_kind(o["apiVersion"].as_str()?, o["kind"].as_str()?)
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
                    && meta::finalizers(x)
                        .iter()
                        .any(|f| f == "foregroundDeletion")
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
        if !meta::is_deleting(o)
            || !meta::finalizers(o)
                .iter()
                .any(|f| f == "foregroundDeletion")
        {
            continue;
        }
        let uid = meta::uid(o);
        if !s.everything().any(|x| meta::owned_by(x, uid)) {
            if let Some(rt) = rt_of(o) {
                let rest: Vec<String> = meta::finalizers(o)
                    .into_iter()
                    .filter(|f| f != "foregroundDeletion")
                    .collect();
                out.push(Action::Merge(
                    rt,
                    meta::namespace(o).into(),
                    meta::name(o).into(),
                    serde_json::json!({"metadata": {"finalizers": rest}}),
                ));
            }
        }
    }
    out
}
