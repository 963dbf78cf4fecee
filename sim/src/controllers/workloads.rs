//! Deployments (through ReplicaSets, as helm's readiness check expects), ReplicaSets and
//! StatefulSets (ordered pods, claims from templates that outlive the set).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::snapshot::{rt, Snapshot};
use super::Action;
use crate::store::selectors::LabelSelector;
use crate::store::{meta, Propagation};

pub fn pod_ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn active(p: &Value) -> bool {
    !meta::is_deleting(p)
        && !matches!(
            p.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        )
}

/// Short stable hash of a pod template (the `pod-template-hash` / revision suffix).
pub fn template_hash(template: &Value) -> String {
    let mut t = template.clone();
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove("pod-template-hash");
    }
    let digest = Sha256::digest(serde_json::to_vec(&t).expect("serialises"));
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    digest
        .iter()
        .take(10)
        .map(|b| ALPHA[*b as usize % ALPHA.len()] as char)
        .collect()
}

fn replicas(o: &Value) -> i64 {
    o.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn pod_from_template(owner: &Value, template: &Value, name: &str, extra_labels: &Value) -> Value {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta::namespace(owner),
            "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
            "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
            "ownerReferences": [meta::controller_ref(owner)],
        },
        "spec": template["spec"].clone(),
    });
    if let (Some(l), Some(extra)) = (
        pod["metadata"]["labels"].as_object_mut(),
        extra_labels.as_object(),
    ) {
        for (k, v) in extra {
            l.insert(k.clone(), v.clone());
        }
    }
    pod
}

pub fn reconcile(s: &Snapshot) -> Vec<Action> {
    let mut out = Vec::new();
    for d in s.all("apps", "deployments") {
        deployment(s, d, &mut out);
    }
    for r in s.all("apps", "replicasets") {
        replicaset(s, r, &mut out);
    }
    for st in s.all("apps", "statefulsets") {
        statefulset(s, st, &mut out);
    }
    out
}

fn deployment(s: &Snapshot, d: &Value, out: &mut Vec<Action>) {
    if meta::is_deleting(d) {
        return;
    }
    let ns = meta::namespace(d);
    let hash = template_hash(&d["spec"]["template"]);
    let rs_name = format!("{}-{hash}", meta::name(d));
    let want = replicas(d);
    let owned: Vec<&Value> = s.owned("apps", "replicasets", meta::uid(d)).collect();
    let current = owned.iter().find(|r| meta::name(r) == rs_name);
    match current {
        None => {
            let mut template = d["spec"]["template"].clone();
            template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            let mut selector = d["spec"]["selector"].clone();
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            out.push(Action::Create(
                rt("apps", "replicasets"),
                json!({
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": rs_name,
                        "namespace": ns,
                        "labels": template["metadata"]["labels"],
                        "annotations": { "deployment.kubernetes.io/revision": (owned.len() + 1).to_string() },
                        "ownerReferences": [meta::controller_ref(d)],
                    },
                    "spec": { "replicas": want, "selector": selector, "template": template },
                }),
            ));
        }
        Some(rs) if replicas(rs) != want => out.push(Action::Merge(
            rt("apps", "replicasets"),
            ns.into(),
            rs_name.clone(),
            json!({"spec": {"replicas": want}}),
        )),
        _ => {}
    }
    for old in owned
        .iter()
        .filter(|r| meta::name(r) != rs_name && replicas(r) != 0)
    {
        out.push(Action::Merge(
            rt("apps", "replicasets"),
            ns.into(),
            meta::name(old).into(),
            json!({"spec": {"replicas": 0}}),
        ));
    }
    let i = |r: Option<&&Value>, p: &str| {
        r.and_then(|r| r.pointer(p))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let total: i64 = owned
        .iter()
        .map(|r| {
            r.pointer("/status/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0)
        })
        .sum();
    let ready = i(current, "/status/readyReplicas");
    let available = i(current, "/status/availableReplicas");
    let updated = i(current, "/status/replicas");
    let now = meta::now();
    let cond = |t: &str, ok: bool, reason: &str, msg: String| {
        json!({"type": t, "status": if ok { "True" } else { "False" }, "reason": reason, "message": msg,
               "lastUpdateTime": now, "lastTransitionTime": now})
    };
    let available_ok = available >= want;
    let mut status = json!({
        "observedGeneration": d["metadata"]["generation"],
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "conditions": [
            cond("Available", available_ok, if available_ok { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                 if available_ok { "Deployment has minimum availability.".into() } else { "Deployment does not have minimum availability.".into() }),
            cond("Progressing", true, if updated >= want && available_ok { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
                 format!("ReplicaSet \"{rs_name}\" has successfully progressed.")),
        ],
    });
    if want - available > 0 {
        status["unavailableReplicas"] = json!(want - available);
    }
    for k in [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
    ] {
        if status[k] == json!(0) {
            status.as_object_mut().expect("object").remove(k);
        }
    }
    set_status_keeping_times(d, status, out, rt("apps", "deployments"));
}

/// Writes a status unless only condition timestamps would change.
fn set_status_keeping_times(
    obj: &Value,
    mut status: Value,
    out: &mut Vec<Action>,
    r: &'static crate::api::resources::ResourceType,
) {
    if let (Some(new), Some(old)) = (
        status.get_mut("conditions").and_then(Value::as_array_mut),
        obj.pointer("/status/conditions").and_then(Value::as_array),
    ) {
        for c in new.iter_mut() {
            if let Some(o) = old.iter().find(|o| o["type"] == c["type"]) {
                if o["status"] == c["status"] && o["reason"] == c["reason"] {
                    for t in ["lastUpdateTime", "lastTransitionTime", "lastProbeTime"] {
                        if let Some(v) = o.get(t) {
                            c[t] = v.clone();
                        }
                    }
                }
            }
        }
    }
    if obj.get("status") != Some(&status) {
        out.push(Action::SetStatus(
            r,
            meta::namespace(obj).into(),
            meta::name(obj).into(),
            status,
        ));
    }
}

fn replicaset(s: &Snapshot, r: &Value, out: &mut Vec<Action>) {
    if meta::is_deleting(r) {
        return;
    }
    let ns = meta::namespace(r);
    let pods: Vec<&Value> = s
        .owned("", "pods", meta::uid(r))
        .filter(|p| active(p))
        .collect();
    let want = replicas(r);
    let have = pods.len() as i64;
    for _ in have..want {
        // Named by the API server from the prefix, as the real controller asks.
        let mut pod = pod_from_template(r, &r["spec"]["template"], "", &json!({}));
        pod["metadata"]["generateName"] = json!(format!("{}-", meta::name(r)));
        out.push(Action::Create(rt("", "pods"), pod));
    }
    if have > want {
        let mut victims = pods.clone();
        victims.sort_by_key(|p| pod_ready(p));
        for p in victims.iter().take((have - want) as usize) {
            out.push(Action::Delete(
                rt("", "pods"),
                ns.into(),
                meta::name(p).into(),
                Propagation::Background,
            ));
        }
    }
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let status = json!({
        "observedGeneration": r["metadata"]["generation"],
        "replicas": have,
        "fullyLabeledReplicas": have,
        "readyReplicas": ready,
        "availableReplicas": ready,
    });
    set_status_keeping_times(r, status, out, rt("apps", "replicasets"));
}

fn statefulset(s: &Snapshot, st: &Value, out: &mut Vec<Action>) {
    if meta::is_deleting(st) {
        return;
    }
    let ns = meta::namespace(st);
    let name = meta::name(st);
    let want = replicas(st);
    let revision = format!("{name}-{}", template_hash(&st["spec"]["template"]));
    let parallel = st
        .pointer("/spec/podManagementPolicy")
        .and_then(Value::as_str)
        == Some("Parallel");
    let templates = st
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let selector_labels = st
        .pointer("/spec/selector/matchLabels")
        .cloned()
        .unwrap_or(json!({}));
    let pods: Vec<&Value> = s.owned("", "pods", meta::uid(st)).collect();
    let ordinal = |p: &Value| -> i64 {
        meta::name(p)
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(-1)
    };
    // Claims first: they outlive the set and are never deleted here.
    for i in 0..want {
        for t in &templates {
            let claim = format!("{}-{name}-{i}", meta::name(t));
            if s.get("", "persistentvolumeclaims", ns, &claim).is_none() {
                let mut labels = t.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
                if let (Some(l), Some(sl)) = (labels.as_object_mut(), selector_labels.as_object()) {
                    for (k, v) in sl {
                        l.insert(k.clone(), v.clone());
                    }
                }
                let mut spec = t["spec"].clone();
                if let Some(o) = spec.as_object_mut() {
                    o.remove("volumeName");
                }
                out.push(Action::Create(
                    rt("", "persistentvolumeclaims"),
                    json!({
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "metadata": {
                            "name": claim, "namespace": ns, "labels": labels,
                            "annotations": t.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
                        },
                        "spec": spec,
                    }),
                ));
            }
        }
    }
    let mut ready_so_far = true;
    for i in 0..want {
        let pod_name = format!("{name}-{i}");
        match pods.iter().find(|p| meta::name(p) == pod_name) {
            Some(p) => {
                let rev = p
                    .pointer("/metadata/labels/controller-revision-hash")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let all_ready = pods.iter().all(|q| pod_ready(q));
                if rev != revision && !meta::is_deleting(p) && (all_ready || !pod_ready(p)) {
                    out.push(Action::Delete(
                        rt("", "pods"),
                        ns.into(),
                        pod_name.clone(),
                        Propagation::Background,
                    ));
                    break;
                }
                let failed = matches!(
                    p.pointer("/status/phase").and_then(Value::as_str),
                    Some("Succeeded" | "Failed")
                );
                if failed && !meta::is_deleting(p) {
                    out.push(Action::Delete(
                        rt("", "pods"),
                        ns.into(),
                        pod_name.clone(),
                        Propagation::Background,
                    ));
                }
                ready_so_far &= pod_ready(p);
            }
            None if ready_so_far || parallel => {
                let mut template = st["spec"]["template"].clone();
                let vols = template["spec"]["volumes"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let mut vols: Vec<Value> = vols
                    .into_iter()
                    .filter(|v| !templates.iter().any(|t| t["metadata"]["name"] == v["name"]))
                    .collect();
                for t in &templates {
                    vols.push(json!({"name": t["metadata"]["name"], "persistentVolumeClaim": {"claimName": format!("{}-{name}-{i}", meta::name(t))}}));
                }
                template["spec"]["volumes"] = json!(vols);
                template["spec"]["hostname"] = json!(pod_name);
                if let Some(svc) = st.pointer("/spec/serviceName").and_then(Value::as_str) {
                    template["spec"]["subdomain"] = json!(svc);
                }
                let extra = json!({
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": i.to_string(),
                });
                out.push(Action::Create(
                    rt("", "pods"),
                    pod_from_template(st, &template, &pod_name, &extra),
                ));
                if !parallel {
                    ready_so_far = false;
                }
            }
            None => {}
        }
    }
    // Scale down from the highest ordinal, one at a time (all at once when Parallel).
    let mut extra: Vec<&&Value> = pods
        .iter()
        .filter(|p| ordinal(p) >= want && !meta::is_deleting(p))
        .collect();
    extra.sort_by_key(|p| -ordinal(p));
    for p in extra.iter().take(if parallel { usize::MAX } else { 1 }) {
        out.push(Action::Delete(
            rt("", "pods"),
            ns.into(),
            meta::name(p).into(),
            Propagation::Background,
        ));
    }
    let live: Vec<&&Value> = pods.iter().filter(|p| !meta::is_deleting(p)).collect();
    let ready = live.iter().filter(|p| pod_ready(p)).count() as i64;
    let updated = live
        .iter()
        .filter(|p| {
            p.pointer("/metadata/labels/controller-revision-hash")
                .and_then(Value::as_str)
                == Some(&revision)
        })
        .count() as i64;
    let current_rev = if updated == live.len() as i64 {
        revision.clone()
    } else {
        st.pointer("/status/currentRevision")
            .and_then(Value::as_str)
            .unwrap_or(&revision)
            .to_string()
    };
    let mut status = json!({
        "observedGeneration": st["metadata"]["generation"],
        "replicas": live.len(),
        "readyReplicas": ready,
        "currentReplicas": updated,
        "updatedReplicas": updated,
        "availableReplicas": ready,
        "currentRevision": current_rev,
        "updateRevision": revision,
        "collisionCount": 0,
    });
    for k in ["readyReplicas", "currentReplicas", "updatedReplicas"] {
        if status[k] == json!(0) {
            status.as_object_mut().expect("object").remove(k);
        }
    }
    set_status_keeping_times(st, status, out, rt("apps", "statefulsets"));
}

/// Pods a selector picks in a namespace (Services, PodDisruptionBudgets).
pub fn selected<'a>(
    s: &'a Snapshot,
    ns: &'a str,
    sel: LabelSelector,
) -> impl Iterator<Item = &'a Value> {
    s.in_ns("", "pods", ns)
        .filter(move |p| !sel.is_empty() && sel.matches_object(p))
}
