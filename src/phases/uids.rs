//! The uids that deletes carry as preconditions: recorded in the state when an object is
//! first seen before a destructive step (or when the plugin creates it), so a delete never
//! removes an object of the same name that someone else created meanwhile.

use super::Runner;
use crate::error::Result;
use crate::kube::ops::Seen;

/// The state's key for an object: `Kind/name` (the release's namespace, or cluster-wide).
pub fn key(kind: &str, name: &str) -> String {
    format!("{kind}/{name}")
}

impl Runner<'_> {
    /// The object's current uid, if it exists.
    async fn live_uid(&self, kind: &str, name: &str) -> Result<Option<String>> {
        let meta = match kind {
            "Pod" => self.kube.pod(name).await?.map(|o| o.metadata),
            "PersistentVolumeClaim" => self.kube.claim(name).await?.map(|o| o.metadata),
            "Secret" => self.kube.secret(name).await?.map(|o| o.metadata),
            "Service" => self.kube.service(name).await?.map(|o| o.metadata),
            "PersistentVolume" => self.kube.volume(name).await?.map(|o| o.metadata),
            _ => None,
        };
        Ok(meta.and_then(|m| m.uid).filter(|u| !u.is_empty()))
    }

    /// Records the uid of each object that exists and has none recorded yet (first seen);
    /// saves the state when one was added.
    pub async fn record_uids(&mut self, objects: &[(&str, &str)]) -> Result<()> {
        let mut added = false;
        for (kind, name) in objects {
            let k = key(kind, name);
            if self.state.record.uids.contains_key(&k) {
                continue;
            }
            if let Some(uid) = self.live_uid(kind, name).await? {
                self.state.record.uids.insert(k, uid);
                added = true;
            }
        }
        if added {
            self.save().await?;
        }
        Ok(())
    }

    /// Records the uid of an object the plugin has just created (or found in place of one it
    /// creates), replacing an earlier one; saves the state when it changed.
    pub async fn record_created(&mut self, kind: &str, name: &str) -> Result<()> {
        let Some(uid) = self.live_uid(kind, name).await? else {
            return Ok(());
        };
        if self.state.record.uids.insert(key(kind, name), uid.clone()) != Some(uid) {
            self.save().await?;
        }
        Ok(())
    }

    /// The uid recorded for the object, as the precondition of its delete.
    pub fn recorded(&self, kind: &str, name: &str) -> Option<Seen> {
        self.state
            .record
            .uids
            .get(&key(kind, name))
            .map(|uid| Seen {
                uid: uid.clone(),
                resource_version: None,
            })
    }

    /// The uid recorded for the object, else the one it has now, recorded (first seen).
    pub async fn seen(&mut self, kind: &str, name: &str) -> Result<Option<Seen>> {
        self.record_uids(&[(kind, name)]).await?;
        Ok(self.recorded(kind, name))
    }
}
