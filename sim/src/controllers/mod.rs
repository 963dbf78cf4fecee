//! Controllers: each reads a snapshot of the store and returns the changes it wants as
//! [`Action`]s; one loop applies them. The kubelet (pods as processes) runs beside them.

pub mod dns;
pub mod gc;
pub mod jobs;
pub mod kubelet;
pub mod namespaces;
pub mod quotas;
pub mod refusals;
pub mod services;
pub mod snapshot;
pub mod volumes;
pub mod workloads;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::api::resources::ResourceType;
use crate::store::{meta, Propagation, Store};
pub use snapshot::Snapshot;

/// A change a controller wants made.
#[derive(Debug, Clone)]
pub enum Action {
    Create(&'static ResourceType, Value),
    Delete(&'static ResourceType, String, String, Propagation),
    /// Removes an object outright, without deletion semantics (terminated pods, drained namespaces)
    Remove(&'static ResourceType, String, String),
    /// Replaces the status (only written when it differs)
    SetStatus(&'static ResourceType, String, String, Value),
    /// A JSON merge patch on the object (not its status)
    Merge(&'static ResourceType, String, String, Value),
    /// Deletes a volume's data directory (reclaim policy Delete)
    RemoveDir(PathBuf),
}

/// Carries out the actions; a pod that admission refuses is reported on its owner, which
/// then waits (`backoff`) before creating it again.
pub fn apply(store: &Store, actions: Vec<Action>, backoff: &mut refusals::Backoff) {
    let now = std::time::Instant::now();
    for a in actions {
        let r = match &a {
            Action::Create(rt, obj) => {
                let owner_uid = refusals::owner(obj)
                    .and_then(|o| o["uid"].as_str())
                    .unwrap_or_default()
                    .to_string();
                if rt.kind == "Pod" && backoff.holds(&owner_uid, now) {
                    continue;
                }
                let mut obj = obj.clone();
                crate::api::defaults::on_create(rt, &mut obj, store);
                let ns = meta::namespace(&obj).to_string();
                match crate::api::admission::on_create(store, rt, &ns, &mut obj) {
                    Err(e) if rt.kind == "Pod" => {
                        refusals::record(store, &obj, &e);
                        backoff.refused(&owner_uid, now);
                        continue;
                    }
                    Err(e) => Err(e),
                    Ok(()) => {
                        backoff.admitted(&owner_uid);
                        store.create(rt, &ns, obj).map(|_| ())
                    }
                }
            }
            Action::Delete(rt, ns, name, p) => store
                .delete(rt, ns, name, *p, &Default::default())
                .map(|_| ()),
            Action::RemoveDir(dir) => {
                if let Err(e) = std::fs::remove_dir_all(dir) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!("removing volume data {}: {e}", dir.display());
                    }
                }
                Ok(())
            }
            Action::Remove(rt, ns, name) => {
                store.remove(rt, ns, name);
                Ok(())
            }
            Action::SetStatus(rt, ns, name, status) => {
                let status = status.clone();
                store
                    .update(rt, ns, name, true, move |old| {
                        let mut new = old.clone();
                        new["status"] = status;
                        Ok(new)
                    })
                    .map(|_| ())
            }
            Action::Merge(rt, ns, name, patch) => {
                let patch = patch.clone();
                let rt2: &ResourceType = rt;
                let has_status = rt2.subresources.contains(&"status");
                store
                    .update(rt, ns, name, false, move |old| {
                        let mut new = old.clone();
                        json_patch::merge(&mut new, &patch);
                        if has_status {
                            new["status"] = old["status"].clone();
                        }
                        if let Some(m) = new["metadata"].as_object_mut() {
                            m.remove("resourceVersion");
                        }
                        Ok(new)
                    })
                    .map(|_| ())
            }
        };
        if let Err(e) = r {
            if e.code != 404 && e.code != 409 {
                tracing::debug!("controller action {a:?} failed: {e}");
            }
        }
    }
}

/// Runs every controller until `shutdown` flips: reconcile on each store change (batched) and
/// at least every 500 ms.
pub async fn run(store: Arc<Store>, state_dir: PathBuf, mut shutdown: watch::Receiver<bool>) {
    let mut events = store.subscribe();
    let mut backoff = refusals::Backoff::default();
    loop {
        let snap = Snapshot::take(&store);
        let mut actions = Vec::new();
        actions.extend(namespaces::reconcile(&snap));
        actions.extend(workloads::reconcile(&snap));
        actions.extend(jobs::reconcile(&snap));
        actions.extend(volumes::reconcile(&snap, &state_dir));
        actions.extend(services::reconcile(&snap));
        actions.extend(gc::reconcile(&snap));
        actions.extend(quotas::reconcile(&snap));
        dns::write_hosts_files(&snap, &state_dir);
        let now = std::time::Instant::now();
        // Pods an owner may not create yet do not keep the loop busy.
        let busy = actions.iter().any(|a| match a {
            Action::Create(rt, obj) if rt.kind == "Pod" => !refusals::owner(obj)
                .and_then(|o| o["uid"].as_str())
                .is_some_and(|uid| backoff.holds(uid, now)),
            _ => true,
        });
        apply(&store, actions, &mut backoff);
        if busy {
            tokio::time::sleep(Duration::from_millis(20)).await;
            while events.try_recv().is_ok() {}
            continue;
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = events.recv() => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                while events.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
