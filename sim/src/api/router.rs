//! Request routing: fault injection, authentication, non-resource paths, then resource paths
//! parsed into a [`ResourceRequest`] and authorized before a handler runs.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{json, Value};

use super::auth::Identity;
use super::request::{Query, ResourceRequest};
use super::resources::{self, ResourceType};
use super::{discovery, error_response, handlers, json_response, ApiState, Body};
use crate::store::error::qualified;
use crate::store::ApiError;

pub async fn handle(state: Arc<ApiState>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
        return Response::builder()
            .header("Content-Type", "text/plain")
            .body(super::full("ok"))
            .expect("response builds");
    }
    if let Some(code) = state.faults.check(req.method().as_str(), &path) {
        let reason = match code {
            503 => "ServiceUnavailable",
            429 => "TooManyRequests",
            504 => "Timeout",
            _ => "InternalError",
        };
        let mut e = ApiError::new(
            code,
            reason,
            format!("injected fault: the server is unavailable ({code})"),
        );
        // Like the real server, only "try again" statuses carry Retry-After, which client-go
        // honours by retrying (up to 10 times); a 500 fails the request at once.
        let retry = matches!(code, 429 | 503 | 504);
        if retry {
            e.details = Some(json!({ "retryAfterSeconds": 1 }));
        }
        let mut r = error_response(&e);
        if retry {
            r.headers_mut()
                .insert("Retry-After", "1".parse().expect("header"));
        }
        return r;
    }
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    let Some(identity) = (!token.is_empty())
        .then(|| state.auth.authenticate(&token))
        .flatten()
    else {
        return error_response(&ApiError::new(401, "Unauthorized", "Unauthorized"));
    };
    let accept = header(&req, "accept");
    let response = match non_resource(&state, &path, &accept) {
        Some(r) => r,
        None => match resource(state.clone(), req, identity).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        },
    };
    response
}

fn header(req: &Request<Incoming>, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn non_resource(state: &ApiState, path: &str, accept: &str) -> Option<Response<Body>> {
    let aggregated = accept.contains("as=APIGroupDiscoveryList") && accept.contains("v=v2");
    let with_type = |v: Value| {
        let mut r = json_response(200, &v);
        r.headers_mut().insert(
            "Content-Type",
            discovery::AGGREGATED_MEDIA_TYPE.parse().expect("header"),
        );
        r
    };
    let p = path.trim_end_matches('/');
    let segs: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    Some(match segs.as_slice() {
        ["version"] => json_response(200, &discovery::version()),
        ["api"] if aggregated => with_type(discovery::aggregated(true)),
        ["api"] => json_response(200, &discovery::api_versions(&state.address)),
        ["apis"] if aggregated => with_type(discovery::aggregated(false)),
        ["apis"] => json_response(200, &discovery::api_group_list()),
        ["api", v] => json_response_or_404(discovery::resource_list("", v)),
        ["apis", g] => json_response_or_404(discovery::api_group(g)),
        ["apis", g, v] => json_response_or_404(discovery::resource_list(g, v)),
        ["openapi", "v3"] => json_response(200, &discovery::openapi_v3_index()),
        ["openapi", "v3", "api", v] => json_response_or_404(discovery::openapi_v3_doc("", v)),
        ["openapi", "v3", "apis", g, v] => json_response_or_404(discovery::openapi_v3_doc(g, v)),
        ["openapi", ..] => error_response(&ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
        _ => return None,
    })
}

fn json_response_or_404(v: Option<Value>) -> Response<Body> {
    match v {
        Some(v) => json_response(200, &v),
        None => error_response(&ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
    }
}

/// Parses `/api/v1/...` and `/apis/<g>/<v>/...` resource paths.
pub fn parse_path(
    path: &str,
) -> Option<(
    &'static ResourceType,
    String,
    Option<String>,
    Option<String>,
)> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if resources::find(group, version, plural).is_some_and(|r| r.namespaced) =>
        {
            (ns.to_string(), {
                let mut v = vec![*plural];
                v.extend_from_slice(tail);
                v
            })
        }
        other => (String::new(), other.to_vec()),
    };
    let rt = resources::find(group, version, rest.first()?)?;
    let name = rest.get(1).map(|s| s.to_string());
    let sub = rest.get(2).map(|s| s.to_string());
    if rest.len() > 3 {
        return None;
    }
    Some((rt, ns, name, sub))
}

async fn resource(
    state: Arc<ApiState>,
    req: Request<Incoming>,
    identity: Identity,
) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let Some((rt, namespace, name, subresource)) = parse_path(&path) else {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    };
    if let Some(sub) = &subresource {
        if !rt.subresources.contains(&sub.as_str()) {
            return Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
    }
    let query = Query::parse(req.uri().query().unwrap_or_default());
    let is_upgrade = req.headers().contains_key("upgrade");
    let method = req.method().clone();
    let verb: &'static str = match (&method, name.is_some()) {
        _ if subresource.as_deref() == Some("exec") => "create",
        (&Method::GET, true) => "get",
        (&Method::GET, false) if query.flag("watch") => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ))
        }
    };
    let rr = ResourceRequest {
        rt,
        namespace,
        name,
        subresource,
        accept: header(&req, "accept"),
        content_type: header(&req, "content-type"),
        query,
        verb,
        identity,
    };
    if !rt.create_only && !rr.identity.allows(&rr.attributes()) {
        let msg = rr
            .identity
            .forbidden_message(&rr.attributes(), &qualified(rt));
        let mut e = ApiError::new(403, "Forbidden", msg);
        let mut d = json!({ "kind": rt.plural });
        if let Some(n) = &rr.name {
            d["name"] = json!(n);
        }
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        e.details = Some(d);
        return Err(e);
    }
    if rr.subresource.as_deref() == Some("exec") {
        if !is_upgrade {
            return Err(ApiError::bad_request(
                "exec needs a websocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io); SPDY is not supported",
            ));
        }
        return super::exec::handle(state, req, rr).await;
    }
    if rr.subresource.as_deref() == Some("log") {
        return super::logs::handle(state, rr).await;
    }
    if rr.verb == "watch" {
        return super::watch::handle(state, rr).await;
    }
    let body = read_body(req).await?;
    handlers::dispatch(&state, &rr, &body)
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    req.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths_parse_into_type_namespace_name_and_subresource() {
        let (rt, ns, name, sub) = parse_path("/api/v1/namespaces/la/pods/p-0/exec").unwrap();
        assert_eq!(
            (rt.plural, ns.as_str(), name.as_deref(), sub.as_deref()),
            ("pods", "la", Some("p-0"), Some("exec"))
        );
        let (rt, ns, name, _) = parse_path("/api/v1/namespaces/la").unwrap();
        assert_eq!(
            (rt.plural, ns.as_str(), name.as_deref()),
            ("namespaces", "", Some("la"))
        );
        let (rt, ns, name, sub) = parse_path("/api/v1/namespaces/la/status").unwrap();
        assert_eq!(
            (rt.plural, ns.as_str(), name.as_deref(), sub.as_deref()),
            ("namespaces", "", Some("la"), Some("status"))
        );
        let (rt, _, name, _) = parse_path("/apis/apps/v1/statefulsets").unwrap();
        assert_eq!((rt.plural, name), ("statefulsets", None));
        assert!(parse_path("/apis/apps/v2/deployments").is_none());
    }
}
