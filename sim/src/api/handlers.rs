//! REST verbs on resources: get, list, create, update, patch (all four types), delete,
//! deletecollection, and the scale and status subresources.

use bytes::Bytes;
use hyper::Response;
use serde_json::{json, Value};

use super::request::{parse_body, ResourceRequest};
use super::{
    admission, defaults, error_response, json_response, patch, review, table, validate, ApiState,
    Body,
};
use crate::store::selectors::{FieldSelector, LabelSelector};
use crate::store::{meta, ApiError, Preconditions, Propagation};

pub fn dispatch(
    state: &ApiState,
    rr: &ResourceRequest,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    if rr.rt.create_only {
        return review::handle(rr, body);
    }
    let sub = rr.subresource.as_deref();
    match (rr.verb, sub) {
        ("get", Some("scale")) => Ok(json_response(
            200,
            &scale_view(&state.store.get(rr.rt, &rr.namespace, rr.name())?),
        )),
        ("get", _) => {
            let obj = state.store.get(rr.rt, &rr.namespace, rr.name())?;
            if table::wanted(&rr.accept) {
                return Ok(table::response(
                    rr.rt,
                    &[obj],
                    state.store.resource_version(),
                    &rr.accept,
                ));
            }
            Ok(json_response(200, &obj))
        }
        ("list", _) => list(state, rr),
        ("create", Some("eviction")) => {
            state.store.delete(
                rr.rt,
                &rr.namespace,
                rr.name(),
                Propagation::Background,
                &Preconditions::default(),
            )?;
            Ok(json_response(
                201,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            ))
        }
        ("create", _) => create(state, rr, body),
        ("update", Some("scale")) | ("patch", Some("scale")) => scale(state, rr, body),
        ("update", _) => update(state, rr, body),
        ("patch", _) => patch_object(state, rr, body),
        ("delete", _) => delete(state, rr, body),
        ("deletecollection", _) => delete_collection(state, rr, body),
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            rr.verb
        ))),
    }
}

fn dry_run(rr: &ResourceRequest) -> bool {
    rr.query.get("dryRun").is_some_and(|v| v == "All")
}

fn selectors(rr: &ResourceRequest) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let ls = LabelSelector::parse(rr.query.get("labelSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let fs = FieldSelector::parse(rr.query.get("fieldSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    Ok((ls, fs))
}

fn list(state: &ApiState, rr: &ResourceRequest) -> Result<Response<Body>, ApiError> {
    let (ls, fs) = selectors(rr)?;
    let ns = (!rr.namespace.is_empty()).then_some(rr.namespace.as_str());
    let (items, rv) = state.store.list(rr.rt, ns);
    let items: Vec<Value> = items
        .into_iter()
        .filter(|o| ls.matches_object(o) && fs.matches(o))
        .collect();
    if table::wanted(&rr.accept) {
        return Ok(table::response(rr.rt, &items, rv, &rr.accept));
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", rr.rt.kind),
            "apiVersion": rr.rt.api_version(),
            "metadata": { "resourceVersion": rv.to_string() },
            "items": items,
        }),
    ))
}

fn check_identity(rr: &ResourceRequest, obj: &Value) -> Result<(), ApiError> {
    if let Some(k) = obj.get("kind").and_then(Value::as_str) {
        if k != rr.rt.kind {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({})",
                obj["apiVersion"].as_str().unwrap_or_default(),
                rr.rt.api_version()
            )));
        }
    }
    if rr.rt.namespaced {
        if let Some(ns) = obj.pointer("/metadata/namespace").and_then(Value::as_str) {
            if !ns.is_empty() && ns != rr.namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
    }
    Ok(())
}

fn create(
    state: &ApiState,
    rr: &ResourceRequest,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    let mut obj = parse_body(rr, body)?;
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    check_identity(rr, &obj)?;
    create_object(state, rr, &mut obj)?;
    let mut response = json_response(201, &obj);
    for w in admission::warnings(&state.store, rr.rt, &rr.namespace, &obj) {
        // RFC 7234 warn-code 299 with a quoted text, as the API server writes it.
        let quoted = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = hyper::header::HeaderValue::from_str(&quoted) {
            response.headers_mut().append(hyper::header::WARNING, v);
        }
    }
    Ok(response)
}

fn create_object(state: &ApiState, rr: &ResourceRequest, obj: &mut Value) -> Result<(), ApiError> {
    defaults::on_create(rr.rt, obj, &state.store);
    validate::on_create(rr.rt, obj)?;
    admission::on_create(&state.store, rr.rt, &rr.namespace, obj)?;
    if dry_run(rr) {
        return Ok(());
    }
    *obj = state.store.create(rr.rt, &rr.namespace, obj.clone())?;
    Ok(())
}

fn update(
    state: &ApiState,
    rr: &ResourceRequest,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    let obj = parse_body(rr, body)?;
    check_identity(rr, &obj)?;
    let status_only = rr.subresource.as_deref() == Some("status");
    let rt = rr.rt;
    let out = write(state, rr, status_only, move |old| {
        let mut new = obj;
        defaults::on_update(rt, old, &mut new);
        validate::on_update(rt, old, &new)?;
        Ok(new)
    })?;
    Ok(json_response(200, &out))
}

/// Runs an update through the store, or only computes it for a dry run.
fn write<F>(
    state: &ApiState,
    rr: &ResourceRequest,
    status_only: bool,
    f: F,
) -> Result<Value, ApiError>
where
    F: FnOnce(&Value) -> Result<Value, ApiError>,
{
    if dry_run(rr) {
        let old = state.store.get(rr.rt, &rr.namespace, rr.name())?;
        return f(&old);
    }
    state
        .store
        .update(rr.rt, &rr.namespace, rr.name(), status_only, f)
}

/// The request's Content-Type without parameters (`; charset=utf-8`).
fn media_type(rr: &ResourceRequest) -> String {
    rr.content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn patch_object(
    state: &ApiState,
    rr: &ResourceRequest,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    let p = parse_body(rr, body)?;
    let status_only = rr.subresource.as_deref() == Some("status");
    let ct = media_type(rr);
    let rt = rr.rt;
    if ct == "application/apply-patch+yaml" {
        return apply(state, rr, p, status_only);
    }
    let out = write(state, rr, status_only, move |old| {
        let mut new = old.clone();
        match ct.as_str() {
            "application/json-patch+json" => patch::json_patch(&mut new, &p).map_err(|e| {
                ApiError::new(422, "Invalid", format!("the server rejected our request due to an error in our request: {e}"))
            })?,
            "application/merge-patch+json" => patch::merge_patch(&mut new, &p),
            "application/strategic-merge-patch+json" => new = patch::strategic_merge(old, &p),
            other => {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"),
                ))
            }
        }
        defaults::on_update(rt, old, &mut new);
        validate::on_update(rt, old, &new)?;
        Ok(new)
    })?;
    Ok(json_response(200, &out))
}

fn apply(
    state: &ApiState,
    rr: &ResourceRequest,
    applied: Value,
    status_only: bool,
) -> Result<Response<Body>, ApiError> {
    let Some(manager) = rr.query.get("fieldManager").filter(|m| !m.is_empty()) else {
        return Err(ApiError::bad_request(
            "PATCH, application/apply-patch+yaml requests require fieldManager to be set",
        ));
    };
    check_identity(rr, &applied)?;
    let manager = manager.to_string();
    let mut applied = applied;
    if let Some(m) = applied["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    match state.store.try_get(rr.rt, &rr.namespace, rr.name()) {
        None => {
            let mut obj = applied.clone();
            obj["metadata"]["name"] = json!(rr.name());
            create_object(state, rr, &mut obj)?;
            if !dry_run(rr) {
                state
                    .store
                    .set_last_applied(meta::uid(&obj), &manager, applied);
            }
            Ok(json_response(201, &obj))
        }
        Some(live) => {
            let prev = state.store.last_applied(meta::uid(&live), &manager);
            let rt = rr.rt;
            let cfg = applied.clone();
            let out = write(state, rr, status_only, move |old| {
                let mut new = patch::apply(old, prev.as_ref(), &cfg);
                defaults::on_update(rt, old, &mut new);
                validate::on_update(rt, old, &new)?;
                Ok(new)
            })?;
            if !dry_run(rr) {
                state
                    .store
                    .set_last_applied(meta::uid(&out), &manager, applied);
            }
            Ok(json_response(200, &out))
        }
    }
}

/// What a DELETE asks for: the propagation, its preconditions, and whether it set the
/// deprecated `orphanDependents: false` (the one case the real server answers 202 Accepted
/// while the object waits for its finalizers).
fn delete_options(
    rr: &ResourceRequest,
    body: &Bytes,
) -> Result<(Propagation, Preconditions, bool), ApiError> {
    let opts = parse_body(rr, body)?;
    let policy = opts
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or(rr.query.get("propagationPolicy"))
        .map(str::to_string);
    let orphan_dependents = opts
        .get("orphanDependents")
        .and_then(Value::as_bool)
        .or_else(|| {
            rr.query
                .get("orphanDependents")
                .map(|v| matches!(v, "1" | "true" | "True"))
        });
    let orphan = orphan_dependents == Some(true);
    let propagation = match policy.as_deref() {
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        _ if orphan => Propagation::Orphan,
        _ => Propagation::Background,
    };
    let given = |field: &str| {
        opts.pointer(&format!("/preconditions/{field}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let preconditions = Preconditions {
        uid: given("uid"),
        resource_version: given("resourceVersion"),
    };
    Ok((propagation, preconditions, orphan_dependents == Some(false)))
}

fn delete(
    state: &ApiState,
    rr: &ResourceRequest,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    let (propagation, preconditions, accepted) = delete_options(rr, body)?;
    if dry_run(rr) {
        let obj = state.store.get(rr.rt, &rr.namespace, rr.name())?;
        return Ok(json_response(200, &obj));
    }
    let (obj, gone) =
        state
            .store
            .delete(rr.rt, &rr.namespace, rr.name(), propagation, &preconditions)?;
    if !gone {
        return Ok(json_response(if accepted { 202 } else { 200 }, &obj));
    }
    if rr.rt.kind == "Pod" {
        return Ok(json_response(200, &obj));
    }
    let mut details = json!({ "name": rr.name(), "kind": rr.rt.plural, "uid": meta::uid(&obj) });
    if !rr.rt.group.is_empty() {
        details["group"] = json!(rr.rt.group);
    }
    Ok(json_response(
        200,
        &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details }),
    ))
}

fn delete_collection(
    state: &ApiState,
    rr: &ResourceRequest,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    let (propagation, _, _) = delete_options(rr, body)?;
    let (ls, fs) = selectors(rr)?;
    let ns = (!rr.namespace.is_empty()).then_some(rr.namespace.as_str());
    let (items, _) = state.store.list(rr.rt, ns);
    let mut deleted = Vec::new();
    for o in items
        .into_iter()
        .filter(|o| ls.matches_object(o) && fs.matches(o))
    {
        if dry_run(rr) {
            deleted.push(o);
            continue;
        }
        match state.store.delete(
            rr.rt,
            meta::namespace(&o),
            meta::name(&o),
            propagation,
            &Preconditions::default(),
        ) {
            Ok((obj, _)) => deleted.push(obj),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", rr.rt.kind),
            "apiVersion": rr.rt.api_version(),
            "metadata": { "resourceVersion": state.store.resource_version().to_string() },
            "items": deleted,
        }),
    ))
}

/// The `autoscaling/v1` Scale view of a Deployment, StatefulSet or ReplicaSet.
pub fn scale_view(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": obj["metadata"]["name"],
            "namespace": obj["metadata"]["namespace"],
            "uid": obj["metadata"]["uid"],
            "resourceVersion": obj["metadata"]["resourceVersion"],
            "creationTimestamp": obj["metadata"]["creationTimestamp"],
        },
        "spec": { "replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1)) },
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

fn scale(state: &ApiState, rr: &ResourceRequest, body: &Bytes) -> Result<Response<Body>, ApiError> {
    let p = parse_body(rr, body)?;
    let ct = media_type(rr);
    let is_patch = rr.verb == "patch";
    let out = write(state, rr, false, move |old| {
        let mut view = scale_view(old);
        if is_patch {
            match ct.as_str() {
                "application/json-patch+json" => patch::json_patch(&mut view, &p)
                    .map_err(|e| ApiError::new(422, "Invalid", e))?,
                "application/strategic-merge-patch+json" => {
                    view = patch::strategic_merge(&view, &p)
                }
                _ => patch::merge_patch(&mut view, &p),
            }
        } else {
            if let Some(rv) = p
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
            {
                if !rv.is_empty() && Some(rv) != old["metadata"]["resourceVersion"].as_str() {
                    return Err(ApiError::conflict(rr.rt, rr.name()));
                }
            }
            view = p;
        }
        let replicas = view
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                rr.rt,
                rr.name(),
                &[(
                    "spec.replicas".into(),
                    format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                )],
            ));
        }
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(replicas);
        if let Some(m) = new["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        Ok(new)
    })?;
    Ok(json_response(200, &scale_view(&out)))
}

/// Answers an error for handlers that produce a response directly.
pub fn or_error(r: Result<Response<Body>, ApiError>) -> Response<Body> {
    r.unwrap_or_else(|e| error_response(&e))
}
