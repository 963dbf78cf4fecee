//! SelfSubjectAccessReview and SelfSubjectRulesReview, answered from the caller's rules.

use serde_json::{json, Value};

use super::auth::Attributes;
use super::request::{parse_body, ResourceRequest};
use super::{json_response, Body};
use crate::store::ApiError;

pub fn handle(rr: &ResourceRequest, body: &[u8]) -> Result<hyper::Response<Body>, ApiError> {
    let mut obj = parse_body(rr, body)?;
    match rr.rt.kind {
        "SelfSubjectAccessReview" => {
            let ra = obj
                .pointer("/spec/resourceAttributes")
                .cloned()
                .unwrap_or(Value::Null);
            let s = |k: &str| {
                ra.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let a = Attributes {
                verb: s("verb"),
                group: s("group"),
                resource: s("resource"),
                subresource: s("subresource"),
                namespace: s("namespace"),
                name: s("name"),
            };
            let allowed = if ra.is_null() {
                // Non-resource URLs (`/version`, `/healthz`): every identity may read them.
                true
            } else {
                rr.identity.allows(&a)
            };
            obj["status"] = if allowed {
                json!({ "allowed": true, "reason": format!("allowed by the la-sim rules of identity {:?}", rr.identity.name) })
            } else {
                json!({ "allowed": false })
            };
        }
        _ => {
            let ns = obj
                .pointer("/spec/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let rules: Vec<Value> = rr
                .identity
                .rules
                .iter()
                .filter(|r| r.namespaces.is_empty() || r.namespaces.iter().any(|n| n == "*" || *n == ns))
                .map(|r| {
                    let mut v = json!({ "verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources });
                    if !r.resource_names.is_empty() {
                        v["resourceNames"] = json!(r.resource_names);
                    }
                    v
                })
                .collect();
            obj["status"] = json!({
                "resourceRules": rules,
                "nonResourceRules": [{ "verbs": ["get"], "nonResourceURLs": ["/version", "/healthz", "/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*"] }],
                "incomplete": false,
            });
        }
    }
    obj["apiVersion"] = json!(rr.rt.api_version());
    obj["kind"] = json!(rr.rt.kind);
    if obj.get("metadata").is_none() {
        obj["metadata"] = json!({});
    }
    Ok(json_response(201, &obj))
}
