//! The ResourceQuota controller: keeps each quota's `status.hard` (a copy of `spec.hard`) and
//! `status.used` (what the namespace's pods and claims use) current.

use serde_json::{json, Value};

use super::snapshot::{rt, Snapshot};
use super::Action;
use crate::api::admission::quota;
use crate::store::meta;

pub fn reconcile(s: &Snapshot) -> Vec<Action> {
    let mut out = Vec::new();
    for q in s.all("", "resourcequotas") {
        let ns = meta::namespace(q);
        let pods: Vec<&Value> = s.in_ns("", "pods", ns).collect();
        let claims: Vec<&Value> = s.in_ns("", "persistentvolumeclaims", ns).collect();
        let used: serde_json::Map<String, Value> = quota::used(&quota::hard(q), &pods, &claims)
            .into_iter()
            .map(|(k, v)| (k, json!(v.render())))
            .collect();
        let status = json!({
            "hard": q.pointer("/spec/hard").cloned().unwrap_or(json!({})),
            "used": used,
        });
        if q.get("status") != Some(&status) {
            out.push(Action::SetStatus(
                rt("", "resourcequotas"),
                ns.into(),
                meta::name(q).into(),
                status,
            ));
        }
    }
    out
}
