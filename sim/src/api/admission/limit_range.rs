//! LimitRanger: a namespace's LimitRanges give containers that declare no cpu or memory the
//! range's defaults (`default` limits, `defaultRequest` requests), and say so in the pod's
//! `kubernetes.io/limit-ranger` annotation, as the real admission plugin does. Only the
//! defaults are modelled, not the min/max checks. Pure.

use serde_json::{json, Map, Value};

pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// The defaults of a `Container` limit item, completed as the API server completes them: a
/// missing `default` from `max`, a missing `defaultRequest` from `default`, then from `min`.
fn defaults(item: &Value) -> (Map<String, Value>, Map<String, Value>) {
    let list = |k: &str| item[k].as_object().cloned().unwrap_or_default();
    let mut limits = list("default");
    for (k, v) in list("max") {
        limits.entry(k).or_insert(v);
    }
    let mut requests = list("defaultRequest");
    for (k, v) in limits.iter().chain(list("min").iter()) {
        requests.entry(k.clone()).or_insert(v.clone());
    }
    (limits, requests)
}

/// Sets the defaults of the namespace's LimitRanges on every container that lacks them.
pub fn apply(limit_ranges: &[&Value], pod: &mut Value) {
    let mut limits = Map::new();
    let mut requests = Map::new();
    for lr in limit_ranges {
        for item in lr
            .pointer("/spec/limits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if item["type"] != "Container" {
                continue;
            }
            let (l, r) = defaults(item);
            limits.extend(l);
            requests.extend(r);
        }
    }
    if limits.is_empty() && requests.is_empty() {
        return;
    }
    let mut notes = Vec::new();
    for (list, prefix) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        for c in pod["spec"][list].as_array_mut().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or_default().to_string();
            let mut set = |which: &str, defaults: &Map<String, Value>| {
                let mut names = Vec::new();
                if !c["resources"][which].is_object() {
                    c["resources"][which] = json!({});
                }
                for (k, v) in defaults {
                    if c["resources"][which].get(k).is_none() {
                        c["resources"][which][k] = v.clone();
                        names.push(k.clone());
                    }
                }
                if c["resources"][which].as_object().is_some_and(Map::is_empty) {
                    if let Some(r) = c["resources"].as_object_mut() {
                        r.remove(which);
                    }
                }
                names.sort();
                names
            };
            let set_requests = set("requests", &requests);
            let set_limits = set("limits", &limits);
            if !set_requests.is_empty() {
                notes.push(format!(
                    "{} request for {prefix} {name}",
                    set_requests.join(", ")
                ));
            }
            if !set_limits.is_empty() {
                notes.push(format!(
                    "{} limit for {prefix} {name}",
                    set_limits.join(", ")
                ));
            }
        }
    }
    if !notes.is_empty() {
        if !pod["metadata"]["annotations"].is_object() {
            pod["metadata"]["annotations"] = json!({});
        }
        pod["metadata"]["annotations"][ANNOTATION] =
            json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn containers_without_resources_get_the_ranges_defaults_and_the_annotation_says_so() {
        let lr = yaml(
            "
metadata: {name: defaults}
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 256Mi}
    defaultRequest: {cpu: 100m}
",
        );
        let mut pod = yaml(
            "
metadata: {name: p}
spec:
  initContainers: [{name: init}]
  containers:
  - {name: a, resources: {requests: {cpu: 200m, memory: 64Mi}, limits: {cpu: '1', memory: 64Mi}}}
  - {name: b, resources: {limits: {memory: 1Gi}, requests: {memory: 1Gi}}}
",
        );
        apply(&[&lr], &mut pod);
        assert_eq!(
            pod["spec"]["containers"][0]["resources"],
            yaml("{requests: {cpu: 200m, memory: 64Mi}, limits: {cpu: '1', memory: 64Mi}}")
        );
        assert_eq!(
            pod["spec"]["containers"][1]["resources"],
            yaml("{requests: {cpu: 100m, memory: 1Gi}, limits: {cpu: 500m, memory: 1Gi}}")
        );
        assert_eq!(
            pod["spec"]["initContainers"][0]["resources"],
            yaml("{requests: {cpu: 100m, memory: 256Mi}, limits: {cpu: 500m, memory: 256Mi}}")
        );
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu request for container b; cpu limit for container b; \
             cpu, memory request for init container init; cpu, memory limit for init container init"
        );
    }

    #[test]
    fn a_range_without_container_defaults_changes_nothing() {
        let lr = yaml("metadata: {name: pvc}\nspec: {limits: [{type: PersistentVolumeClaim, max: {storage: 1Gi}}]}");
        let mut pod = yaml("metadata: {name: p}\nspec: {containers: [{name: a}]}");
        let before = pod.clone();
        apply(&[&lr], &mut pod);
        assert_eq!(pod, before);
    }
}
