//! Validation the clients run into: names, and the immutable fields of StatefulSets,
//! Deployments, Jobs and claims, with the real messages.

use serde_json::Value;

use super::resources::ResourceType;
use crate::store::ApiError;

const STS_MUTABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

pub fn on_create(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !name.is_empty() && !is_dns_subdomain(name) {
        return Err(ApiError::invalid(
            rt,
            name,
            &[(
                "metadata.name".into(),
                format!("Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
            )],
        ));
    }
    if matches!(
        (rt.group, rt.kind),
        ("apps", "Deployment") | ("apps", "StatefulSet")
    ) {
        let sel = crate::store::selectors::LabelSelector::from_object(&obj["spec"]["selector"]);
        let labels = obj.pointer("/spec/template/metadata/labels");
        if sel.is_empty() || !sel.matches(labels) {
            return Err(ApiError::invalid(
                rt,
                name,
                &[(
                    "spec.template.metadata.labels".into(),
                    "Invalid value: `selector` does not match template `labels`".into(),
                )],
            ));
        }
    }
    Ok(())
}

fn without(spec: &Value, keys: &[&str]) -> Value {
    let mut s = spec.clone();
    if let Some(o) = s.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    s
}

pub fn on_update(rt: &ResourceType, old: &Value, new: &Value) -> Result<(), ApiError> {
    let name = old
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let immutable = |field: &str, value: &Value| {
        ApiError::invalid(
            rt,
            name,
            &[(
                field.to_string(),
                format!("Invalid value: {}: field is immutable", value),
            )],
        )
    };
    match (rt.group, rt.kind) {
        ("apps", "StatefulSet")
            if without(&old["spec"], STS_MUTABLE) != without(&new["spec"], STS_MUTABLE) =>
        {
            return Err(ApiError::invalid(
                    rt,
                    name,
                    &[(
                        "spec".into(),
                        "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".into(),
                    )],
                ));
        }
        ("apps", "Deployment") if old["spec"]["selector"] != new["spec"]["selector"] => {
            return Err(immutable("spec.selector", &new["spec"]["selector"]));
        }
        ("batch", "Job") if old["spec"]["template"] != new["spec"]["template"] => {
            return Err(immutable("spec.template", &new["spec"]["template"]));
        }
        ("", "PersistentVolumeClaim") => {
            let strip = |s: &Value| {
                let mut s = without(s, &["resources", "volumeName", "volumeAttributesClassName"]);
                if s.get("storageClassName").is_none() {
                    if let Some(o) = s.as_object_mut() {
                        o.remove("storageClassName");
                    }
                }
                s
            };
            let (mut a, b) = (strip(&old["spec"]), strip(&new["spec"]));
            if b.get("storageClassName").is_none() {
                if let Some(o) = a.as_object_mut() {
                    o.remove("storageClassName");
                }
            }
            if a != b {
                return Err(ApiError::invalid(
                    rt,
                    name,
                    &[(
                        "spec".into(),
                        "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims".into(),
                    )],
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::resources;
    use serde_json::json;

    #[test]
    fn statefulset_selector_changes_are_forbidden_but_replicas_are_not() {
        let rt = resources::find("apps", "v1", "statefulsets").unwrap();
        let old = json!({"metadata": {"name": "pg"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "1"}}, "serviceName": "pg-headless"}});
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(0);
        assert!(on_update(rt, &old, &scaled).is_ok());
        let mut moved = old.clone();
        moved["spec"]["serviceName"] = json!("pg-hl");
        let e = on_update(rt, &old, &moved).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(e.message.starts_with("StatefulSet.apps \"pg\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas'"), "{}", e.message);
    }
}
