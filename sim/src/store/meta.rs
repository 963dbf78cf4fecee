//! Small pure helpers on object metadata.

use serde_json::Value;

/// RFC 3339 in UTC with second precision, as `metav1.Time` serialises.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
pub fn random_suffix(n: usize) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..n)
        .map(|_| ALPHA[rand::random_range(0..ALPHA.len())] as char)
        .collect()
}

/// Whether anything but metadata and status differs (what bumps `metadata.generation`).
pub fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("metadata");
            o.remove("status");
        }
        v
    };
    strip(old) != strip(new)
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The finalizer of an object deleted with propagationPolicy Foreground (dependents first).
pub const FOREGROUND_DELETION: &str = "foregroundDeletion";
/// The finalizer of an object deleted with propagationPolicy Orphan (dependents kept).
pub const ORPHAN: &str = "orphan";

pub fn owned_by(obj: &Value, uid: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(uid)))
}

pub fn name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn namespace(obj: &Value) -> &str {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn uid(obj: &Value) -> &str {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// An ownerReference to `owner` as a controller would set it.
pub fn controller_ref(owner: &Value) -> Value {
    serde_json::json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Drops `null` members of every mapping, as decoding into the API's typed structs does: a real
/// API server never stores `"initContainers": null`, so a later apply that omits the field
/// leaves the object (and a pod template's hash) unchanged.
pub fn prune_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(prune_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod prune_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_members_are_dropped_at_every_depth_and_other_values_kept() {
        let mut v = json!({
            "spec": {"template": {"metadata": {"annotations": null, "labels": {"a": "b"}},
                     "spec": {"initContainers": null, "containers": [{"name": "c", "args": null}]}}},
            "data": {"k": ""}
        });
        prune_nulls(&mut v);
        assert_eq!(
            v,
            json!({
                "spec": {"template": {"metadata": {"labels": {"a": "b"}},
                         "spec": {"containers": [{"name": "c"}]}}},
                "data": {"k": ""}
            })
        );
    }
}
