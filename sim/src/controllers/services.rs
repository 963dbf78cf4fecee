//! Endpoints for Services with selectors: ready pods as addresses, the rest as not ready
//! (or all as addresses with `publishNotReadyAddresses`), target ports resolved by name.

use serde_json::{json, Value};

use super::snapshot::{rt, Snapshot};
use super::workloads::{pod_ready, selected};
use super::Action;
use crate::store::meta;
use crate::store::selectors::LabelSelector;

fn resolve_port(svc_port: &Value, pod: &Value) -> Value {
    match &svc_port["targetPort"] {
        Value::String(name) => pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .find(|p| p["name"].as_str() == Some(name))
            .map(|p| p["containerPort"].clone())
            .unwrap_or(Value::Null),
        Value::Null => svc_port["port"].clone(),
        n => n.clone(),
    }
}

/// The Endpoints subsets for a Service.
pub fn subsets(s: &Snapshot, svc: &Value) -> Vec<Value> {
    let ns = meta::namespace(svc);
    let sel = LabelSelector::from_map(&svc["spec"]["selector"]);
    let publish_all = svc
        .pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        == Some(true);
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    let mut ports = Vec::new();
    for p in selected(s, ns, sel) {
        let Some(ip) = p.pointer("/status/podIP").and_then(Value::as_str) else {
            continue;
        };
        if meta::is_deleting(p) {
            continue;
        }
        let mut addr = json!({
            "ip": ip,
            "targetRef": {"kind": "Pod", "namespace": ns, "name": meta::name(p), "uid": meta::uid(p)},
        });
        if let Some(h) = p.pointer("/spec/hostname") {
            if p.pointer("/spec/subdomain").and_then(Value::as_str) == Some(meta::name(svc)) {
                addr["hostname"] = h.clone();
            }
        }
        if ports.is_empty() {
            for sp in svc["spec"]["ports"].as_array().cloned().unwrap_or_default() {
                let mut ep = json!({"port": resolve_port(&sp, p), "protocol": sp["protocol"]});
                if let Some(n) = sp.get("name") {
                    ep["name"] = n.clone();
                }
                ports.push(ep);
            }
        }
        if pod_ready(p) || publish_all {
            ready.push(addr);
        } else {
            not_ready.push(addr);
        }
    }
    if ready.is_empty() && not_ready.is_empty() {
        return Vec::new();
    }
    let mut subset = json!({"ports": ports});
    if !ready.is_empty() {
        subset["addresses"] = json!(ready);
    }
    if !not_ready.is_empty() {
        subset["notReadyAddresses"] = json!(not_ready);
    }
    vec![subset]
}

pub fn reconcile(s: &Snapshot) -> Vec<Action> {
    let mut out = Vec::new();
    let ep_rt = rt("", "endpoints");
    for svc in s.all("", "services") {
        if svc
            .pointer("/spec/selector")
            .is_none_or(|v| v.as_object().is_none_or(|m| m.is_empty()))
            || meta::is_deleting(svc)
        {
            continue;
        }
        let ns = meta::namespace(svc);
        let subsets = subsets(s, svc);
        match s.get("", "endpoints", ns, meta::name(svc)) {
            None => out.push(Action::Create(
                ep_rt,
                json!({
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    "metadata": {"name": meta::name(svc), "namespace": ns, "labels": svc["metadata"]["labels"].clone()},
                    "subsets": subsets,
                }),
            )),
            Some(ep) if ep.get("subsets").cloned().unwrap_or(json!([])) != json!(subsets) => {
                out.push(Action::Merge(ep_rt, ns.into(), meta::name(svc).into(), json!({"subsets": subsets})));
            }
            _ => {}
        }
    }
    // Endpoints of Services that are gone.
    for ep in s.all("", "endpoints") {
        if s.get("", "services", meta::namespace(ep), meta::name(ep))
            .is_none()
            && ep.pointer("/metadata/ownerReferences").is_none()
        {
            out.push(Action::Remove(
                ep_rt,
                meta::namespace(ep).into(),
                meta::name(ep).into(),
            ));
        }
    }
    out
}
