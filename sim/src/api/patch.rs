//! The patch formats: JSON patch, JSON merge patch, strategic merge patch (with the directives
//! kubectl and helm 3 send) and the three-way merge behind server-side apply.

use serde_json::{Map, Value};

/// The list fields that merge by a key instead of being replaced, as the Kubernetes types
/// declare with `patchMergeKey` (looked up by field name; the core types agree on these).
fn merge_key(field: &str, items: &[&Value]) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "hostAliases" => Some("ip"),
        "topologySpreadConstraints" => Some("topologyKey"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "readinessGates" => Some("conditionType"),
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                Some("containerPort")
            } else {
                Some("port")
            }
        }
        _ => None,
    }
}

/// Lists of scalars whose patch strategy is merge (set union).
fn merges_primitives(field: &str) -> bool {
    field == "finalizers"
}

/// RFC 7386 merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let p: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| format!("invalid JSON patch: {e}"))?;
    json_patch::patch(target, &p).map_err(|e| e.to_string())
}

/// Applies a strategic merge patch to `target`.
pub fn strategic_merge(target: &Value, patch: &Value) -> Value {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => Value::Object(merge_maps(t, p)),
        _ => strip_directives(patch),
    }
}

fn merge_maps(target: &Map<String, Value>, patch: &Map<String, Value>) -> Map<String, Value> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut p = patch.clone();
            p.remove("$patch");
            return strip_directives(&Value::Object(p))
                .as_object()
                .cloned()
                .unwrap_or_default();
        }
        Some("delete") => return Map::new(),
        _ => {}
    }
    let mut out = target.clone();
    for (k, pv) in patch {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(cur)), Some(del)) = (out.get_mut(field), pv.as_array()) {
                cur.retain(|v| !del.contains(v));
            }
            continue;
        }
        match pv {
            Value::Null => {
                out.remove(k);
            }
            Value::Object(pm) => {
                if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
                    out.remove(k);
                    continue;
                }
                let merged = match out.get(k) {
                    Some(Value::Object(tm)) => merge_maps(tm, pm),
                    _ => merge_maps(&Map::new(), pm),
                };
                out.insert(k.clone(), Value::Object(merged));
            }
            Value::Array(pa) => {
                let cur = out
                    .get(k)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let merged = merge_lists(k, &cur, pa);
                out.insert(k.clone(), Value::Array(merged));
            }
            other => {
                out.insert(k.clone(), other.clone());
            }
        }
    }
    for (k, order) in patch {
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            if let (Some(Value::Array(cur)), Some(order)) =
                (out.get(field).cloned(), order.as_array())
            {
                out.insert(field.to_string(), Value::Array(reorder(field, &cur, order)));
            }
        }
    }
    if let Some(keep) = patch.get("$retainKeys").and_then(Value::as_array) {
        out.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k)));
    }
    out
}

fn merge_lists(field: &str, cur: &[Value], patch: &[Value]) -> Vec<Value> {
    if patch.iter().any(|p| {
        p.get("$patch").and_then(Value::as_str) == Some("replace")
            && p.as_object().is_some_and(|o| o.len() == 1)
    }) {
        return patch
            .iter()
            .filter(|p| p.get("$patch").is_none())
            .map(strip_directives)
            .collect();
    }
    let all: Vec<&Value> = cur.iter().chain(patch.iter()).collect();
    let objects = !patch.is_empty() && patch.iter().all(Value::is_object);
    if let Some(mk) = merge_key(field, &all).filter(|_| objects) {
        let mut out: Vec<Value> = cur.to_vec();
        for p in patch {
            let id = p.get(mk);
            let pos = out.iter().position(|c| c.get(mk) == id && id.is_some());
            let delete = p.get("$patch").and_then(Value::as_str) == Some("delete");
            match (pos, delete) {
                (Some(i), true) => {
                    out.remove(i);
                }
                (None, true) => {}
                (Some(i), false) => {
                    out[i] = strategic_merge(&out[i], p);
                }
                (None, false) => out.push(strip_directives(p)),
            }
        }
        return out;
    }
    if merges_primitives(field) {
        let mut out = cur.to_vec();
        for p in patch {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        return out;
    }
    patch.iter().map(strip_directives).collect()
}

fn reorder(field: &str, cur: &[Value], order: &[Value]) -> Vec<Value> {
    let all: Vec<&Value> = cur.iter().collect();
    let mk = merge_key(field, &all);
    let ident = |v: &Value| -> Value {
        match mk {
            Some(k) if v.is_object() => v.get(k).cloned().unwrap_or(Value::Null),
            _ => v.clone(),
        }
    };
    let mut rest: Vec<Value> = cur.to_vec();
    let mut out = Vec::new();
    for o in order {
        let want = ident(o);
        if let Some(i) = rest.iter().position(|c| ident(c) == want) {
            out.push(rest.remove(i));
        }
    }
    out.extend(rest);
    out
}

/// Removes `$`-directives from a value that is inserted rather than merged.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// Server-side apply, reduced to what matters for clients that own whole manifests: the
/// applied configuration is merged into the live object, and whatever this manager applied
/// last time but no longer does is removed.
pub fn apply(live: &Value, previous: Option<&Value>, applied: &Value) -> Value {
    let mut patch = applied.clone();
    if let Some(prev) = previous {
        add_removals(prev, &mut patch, "");
    }
    strategic_merge(live, &patch)
}

fn add_removals(prev: &Value, patch: &mut Value, field: &str) {
    match (prev, patch) {
        (Value::Object(pm), Value::Object(am)) => {
            for (k, pv) in pm {
                match am.get_mut(k) {
                    None => {
                        if k != "status" {
                            am.insert(k.clone(), Value::Null);
                        }
                    }
                    Some(av) => add_removals(pv, av, k),
                }
            }
        }
        (Value::Array(pa), Value::Array(aa)) => {
            let all: Vec<&Value> = pa.iter().chain(aa.iter()).collect();
            if let Some(mk) = merge_key(field, &all) {
                for p in pa {
                    let id = p.get(mk);
                    match aa.iter_mut().find(|a| a.get(mk) == id) {
                        Some(a) => add_removals(p, a, field),
                        None => {
                            if let Some(id) = id {
                                aa.push(serde_json::json!({ mk: id, "$patch": "delete" }));
                            }
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_env_by_name() {
        let live = json!({"spec": {"containers": [
            {"name": "a", "image": "x:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "b", "image": "y:1"}]}});
        let patch = json!({"spec": {"containers": [
            {"name": "a", "image": "x:2", "env": [{"name": "B", "$patch": "delete"}, {"name": "C", "value": "3"}]}]}});
        let out = strategic_merge(&live, &patch);
        assert_eq!(out["spec"]["containers"][0]["image"], "x:2");
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "C", "value": "3"}])
        );
        assert_eq!(out["spec"]["containers"][1]["name"], "b");
    }

    #[test]
    fn strategic_merge_deletes_keys_set_to_null_and_replaces_plain_lists() {
        let live =
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"args": ["x", "y"]}});
        let patch = json!({"metadata": {"labels": {"b": null}}, "spec": {"args": ["z"]}});
        let out = strategic_merge(&live, &patch);
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"args": ["z"]}})
        );
    }

    #[test]
    fn strategic_merge_honours_element_order_and_retain_keys() {
        let live = json!({"ports": [{"port": 1}, {"port": 2}], "s": {"type": "A", "a": 1}});
        let patch = json!({"$setElementOrder/ports": [{"port": 2}, {"port": 1}],
            "s": {"$retainKeys": ["type", "b"], "type": "B", "b": 2}});
        let out = strategic_merge(&live, &patch);
        assert_eq!(
            out,
            json!({"ports": [{"port": 2}, {"port": 1}], "s": {"type": "B", "b": 2}})
        );
    }

    #[test]
    fn apply_removes_what_the_manager_no_longer_applies() {
        let live = json!({"metadata": {"labels": {"a": "1", "b": "2", "other": "x"}}, "spec": {"replicas": 3}});
        let prev = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let applied = json!({"metadata": {"labels": {"a": "1"}}});
        let out = apply(&live, Some(&prev), &applied);
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"a": "1", "other": "x"}}, "spec": {"replicas": 3}})
        );
    }
}
