//! Pods a controller may not create because admission refused them (Pod Security, quota):
//! the refusal becomes a `FailedCreate` Warning event on the owner (repeats counted on one
//! event, as the event recorder aggregates them), and the owner waits before its next
//! attempt, as controllers back off, instead of retrying on every pass.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::snapshot::rt;
use crate::store::{meta, ApiError, Store};

const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(10);

/// Owners whose last pod creation was refused, and when they may try again.
#[derive(Default)]
pub struct Backoff {
    paused: HashMap<String, (Instant, Duration)>,
}

impl Backoff {
    /// Whether the owner (uid) of a pod must wait before creating it.
    pub fn holds(&self, owner_uid: &str, now: Instant) -> bool {
        self.paused
            .get(owner_uid)
            .is_some_and(|(until, _)| now < *until)
    }

    /// A refusal: the pause doubles, from one second up to ten.
    pub fn refused(&mut self, owner_uid: &str, now: Instant) {
        let pause = self
            .paused
            .get(owner_uid)
            .map_or(FIRST_PAUSE, |(_, p)| (*p * 2).min(LONGEST_PAUSE));
        self.paused
            .insert(owner_uid.to_string(), (now + pause, pause));
    }

    pub fn admitted(&mut self, owner_uid: &str) {
        self.paused.remove(owner_uid);
    }
}

/// The controller reference of an object, if it has one.
pub fn owner(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
}

/// The event's component and message, worded as each controller words it.
pub fn failure_text(owner: &Value, pod: &Value, e: &ApiError) -> (&'static str, String) {
    let kind = owner["kind"].as_str().unwrap_or_default();
    match kind {
        "StatefulSet" => (
            "statefulset-controller",
            format!(
                "create Pod {} in StatefulSet {} failed error: {}",
                meta::name(pod),
                owner["name"].as_str().unwrap_or_default(),
                e.message
            ),
        ),
        "Job" => ("job-controller", format!("Error creating: {}", e.message)),
        _ => (
            "replicaset-controller",
            format!("Error creating: {}", e.message),
        ),
    }
}

/// Records (or counts again) the `FailedCreate` event on the pod's owner.
pub fn record(store: &Store, pod: &Value, e: &ApiError) {
    let Some(owner) = owner(pod) else { return };
    let ns = meta::namespace(pod);
    let (component, message) = failure_text(owner, pod, e);
    let uid = owner["uid"].as_str().unwrap_or_default();
    let events = rt("", "events");
    let (existing, _) = store.list(events, Some(ns));
    let now = meta::now();
    if let Some(ev) = existing.iter().find(|ev| {
        ev.pointer("/involvedObject/uid").and_then(Value::as_str) == Some(uid)
            && ev["reason"] == "FailedCreate"
            && ev["message"] == message.as_str()
    }) {
        let count = ev["count"].as_i64().unwrap_or(1) + 1;
        let _ = store.update(events, ns, meta::name(ev), false, move |old| {
            let mut new = old.clone();
            new["count"] = json!(count);
            new["lastTimestamp"] = json!(now);
            if let Some(m) = new["metadata"].as_object_mut() {
                m.remove("resourceVersion");
            }
            Ok(new)
        });
        return;
    }
    let name = format!(
        "{}.{}",
        owner["name"].as_str().unwrap_or_default(),
        meta::random_suffix(16)
    );
    let _ = store.create(
        events,
        ns,
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": { "name": name, "namespace": ns },
            "involvedObject": {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": owner["name"],
                "namespace": ns,
                "uid": uid,
            },
            "reason": "FailedCreate",
            "message": message,
            "type": "Warning",
            "source": { "component": component },
            "reportingComponent": component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_after_a_refusal_doubles_up_to_ten_seconds_and_ends_on_admission() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert!(!b.holds("u", t0));
        b.refused("u", t0);
        assert!(b.holds("u", t0 + Duration::from_millis(900)));
        assert!(!b.holds("u", t0 + Duration::from_millis(1100)));
        for _ in 0..6 {
            b.refused("u", t0);
        }
        assert!(b.holds("u", t0 + Duration::from_millis(9900)));
        assert!(!b.holds("u", t0 + Duration::from_millis(10100)));
        b.admitted("u");
        assert!(!b.holds("u", t0));
    }

    #[test]
    fn each_controller_words_its_failure_as_the_real_one_does() {
        let e = ApiError::new(403, "Forbidden", "pods \"pg-0\" is forbidden: x");
        let pod = json!({"metadata": {"name": "pg-0"}});
        let sts = json!({"kind": "StatefulSet", "name": "pg"});
        assert_eq!(
            failure_text(&sts, &pod, &e),
            (
                "statefulset-controller",
                "create Pod pg-0 in StatefulSet pg failed error: pods \"pg-0\" is forbidden: x"
                    .to_string()
            )
        );
        let rs = json!({"kind": "ReplicaSet", "name": "app-1"});
        assert_eq!(
            failure_text(&rs, &pod, &e).1,
            "Error creating: pods \"pg-0\" is forbidden: x"
        );
    }
}
