//! Admission of new pods and claims, as the API server's plugins decide it: LimitRanger
//! (container defaults), Pod Security (the namespace's `pod-security.kubernetes.io/enforce`
//! level) and ResourceQuota, in that order. Runs for
//! clients' requests and for the pods controllers create alike; the workload objects
//! themselves are admitted (their pods are refused when a controller creates them).

pub mod limit_range;
pub mod pod_security;
pub mod quantity;
pub mod quota;

use serde_json::Value;

use super::resources::ResourceType;
use crate::controllers::snapshot::rt;
use crate::store::{ApiError, Store};

/// The name an admission error names: `metadata.name`, else the `generateName` prefix.
fn name_of(obj: &Value) -> &str {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.is_empty() {
        obj.pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .unwrap_or_default()
    } else {
        name
    }
}

/// Admits (`Ok`, with the LimitRanges' defaults set) or refuses (403) a new object of type
/// `rtype` in namespace `ns`.
pub fn on_create(
    store: &Store,
    rtype: &ResourceType,
    ns: &str,
    obj: &mut Value,
) -> Result<(), ApiError> {
    if (rtype.group, rtype.kind) == ("", "Pod") {
        let (ranges, _) = store.list(rt("", "limitranges"), Some(ns));
        limit_range::apply(&refs(&ranges), obj);
        if obj.pointer("/status/qosClass").is_some() {
            obj["status"]["qosClass"] = serde_json::json!(super::defaults::qos_class(&obj["spec"]));
        }
    }
    let obj = &*obj;
    let new = match (rtype.group, rtype.kind) {
        ("", "Pod") => quota::New::Pod(obj),
        ("", "PersistentVolumeClaim") => quota::New::Claim(obj),
        _ => return Ok(()),
    };
    let forbidden = |cause: String| ApiError::forbidden(rtype, name_of(obj), &cause);
    if let quota::New::Pod(pod) = new {
        if let Some(namespace) = store.try_get(rt("", "namespaces"), "", ns) {
            if let Some(cause) =
                pod_security::check_namespace(&namespace, &pod["metadata"], &pod["spec"])
            {
                return Err(forbidden(cause));
            }
        }
    }
    let (quotas, _) = store.list(rt("", "resourcequotas"), Some(ns));
    if quotas.is_empty() {
        return Ok(());
    }
    let (pods, _) = store.list(rt("", "pods"), Some(ns));
    let (claims, _) = store.list(rt("", "persistentvolumeclaims"), Some(ns));
    quota::admit(&refs(&quotas), &refs(&pods), &refs(&claims), new).map_err(forbidden)
}

fn refs(v: &[Value]) -> Vec<&Value> {
    v.iter().collect()
}

/// Warnings for a new object that is admitted: Pod Security's `would violate ...` for a pod
/// (the namespace's `warn` level) or a workload's pod template (`enforce` and `warn`).
pub fn warnings(store: &Store, rtype: &ResourceType, ns: &str, obj: &Value) -> Vec<String> {
    let template = match (rtype.group, rtype.kind) {
        ("", "Pod") => None,
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") | ("batch", "Job") => {
            Some(&obj["spec"]["template"])
        }
        ("batch", "CronJob") => Some(&obj["spec"]["jobTemplate"]["spec"]["template"]),
        _ => return Vec::new(),
    };
    let Some(namespace) = store.try_get(rt("", "namespaces"), "", ns) else {
        return Vec::new();
    };
    let pod = template.unwrap_or(obj);
    pod_security::warnings(
        &namespace,
        &pod["metadata"],
        &pod["spec"],
        template.is_some(),
    )
}
