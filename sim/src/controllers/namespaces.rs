//! Namespaces: the `default` ServiceAccount and `kube-root-ca.crt` ConfigMap in each, and
//! deletion that empties a namespace before removing it.

use serde_json::{json, Value};

use super::snapshot::{rt, Snapshot};
use super::Action;
use crate::api::resources;
use crate::store::{meta, Propagation};

pub fn reconcile(s: &Snapshot) -> Vec<Action> {
    let mut out = Vec::new();
    for n in s.all("", "namespaces") {
        let ns = meta::name(n);
        if meta::is_deleting(n) {
            if n.pointer("/status/phase").and_then(Value::as_str) != Some("Terminating") {
                out.push(Action::SetStatus(
                    rt("", "namespaces"),
                    String::new(),
                    ns.into(),
                    json!({"phase": "Terminating"}),
                ));
            }
            let content: Vec<&Value> = s
                .everything()
                .filter(|o| meta::namespace(o) == ns)
                .collect();
            if content.is_empty() {
                out.push(Action::Remove(
                    rt("", "namespaces"),
                    String::new(),
                    ns.into(),
                ));
            }
            for o in content {
                if meta::is_deleting(o) {
                    continue;
                }
                if let Some(r) = resources::by_kind(
                    o["apiVersion"].as_str().unwrap_or_default(),
                    o["kind"].as_str().unwrap_or_default(),
                ) {
                    out.push(Action::Delete(
                        r,
                        ns.into(),
                        meta::name(o).into(),
                        Propagation::Background,
                    ));
                }
            }
            continue;
        }
        if s.get("", "serviceaccounts", ns, "default").is_none() {
            out.push(Action::Create(rt("", "serviceaccounts"), json!({
                "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns},
            })));
        }
        if s.get("", "configmaps", ns, "kube-root-ca.crt").is_none() {
            out.push(Action::Create(rt("", "configmaps"), json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kube-root-ca.crt", "namespace": ns, "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc."}},
                "data": {"ca.crt": ""},
            })));
        }
    }
    out
}
