//! Discovery documents: `/version`, `/api`, `/apis`, group-version resource lists, the
//! aggregated discovery format (apidiscovery.k8s.io/v2) and the OpenAPI v3 index that tells
//! kubectl and helm the server validates fields itself.

use serde_json::{json, Value};

use super::resources::{self, ResourceType, RESOURCES};

/// The Kubernetes version the sim claims to be.
pub const KUBE_VERSION: (&str, &str) = ("1", "31");

pub fn version() -> Value {
    json!({
        "major": KUBE_VERSION.0,
        "minor": KUBE_VERSION.1,
        "gitVersion": format!("v{}.{}.0", KUBE_VERSION.0, KUBE_VERSION.1),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.22.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn categories(r: &ResourceType) -> Vec<&'static str> {
    match r.plural {
        "pods"
        | "services"
        | "deployments"
        | "statefulsets"
        | "replicasets"
        | "daemonsets"
        | "jobs"
        | "cronjobs"
        | "replicationcontrollers" => vec!["all"],
        _ => vec![],
    }
}

/// Both discovery formats list these two only when a resource has them.
fn add_short_names_and_categories(entry: &mut Value, r: &ResourceType) {
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    let cats = categories(r);
    if !cats.is_empty() {
        entry["categories"] = json!(cats);
    }
}

fn subresource_kind(r: &ResourceType, sub: &str) -> (&'static str, &'static str, &'static str) {
    match sub {
        "scale" => ("autoscaling", "v1", "Scale"),
        "exec" => ("", "v1", "PodExecOptions"),
        "eviction" => ("policy", "v1", "Eviction"),
        _ => (r.group, r.version, r.kind),
    }
}

fn subresource_verbs(sub: &str) -> Vec<&'static str> {
    match sub {
        "log" => vec!["get"],
        "exec" => vec!["create", "get"],
        "eviction" => vec!["create"],
        "finalize" => vec!["update"],
        _ => vec!["get", "patch", "update"],
    }
}

pub fn api_versions(server: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server }],
    })
}

fn group_entry(group: &str, version: &str) -> Value {
    let gv = json!({ "groupVersion": format!("{group}/{version}"), "version": version });
    json!({ "name": group, "versions": [gv.clone()], "preferredVersion": gv })
}

pub fn api_group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": resources::groups().into_iter().map(|(g, v)| group_entry(g, v)).collect::<Vec<_>>(),
    })
}

pub fn api_group(group: &str) -> Option<Value> {
    let (_, v) = resources::groups().into_iter().find(|(g, _)| *g == group)?;
    let mut e = group_entry(group, v);
    e["kind"] = json!("APIGroup");
    e["apiVersion"] = json!("v1");
    Some(e)
}

/// `APIResourceList` of one group version, or `None` when it is not served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceType> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for r in served {
        let mut e = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
        });
        add_short_names_and_categories(&mut e, r);
        out.push(e);
        for sub in r.subresources {
            let (g, v, k) = subresource_kind(r, sub);
            let mut s = json!({
                "name": format!("{}/{sub}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": k,
                "verbs": subresource_verbs(sub),
            });
            if g != r.group || v != r.version {
                s["group"] = json!(g);
                s["version"] = json!(v);
            }
            out.push(s);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": out,
    }))
}

/// The media type clients ask for to get aggregated discovery.
pub const AGGREGATED_MEDIA_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Aggregated discovery (`/api` with `core == true`, `/apis` otherwise).
pub fn aggregated(core: bool) -> Value {
    let groups: Vec<(&str, &str)> = if core {
        vec![("", "v1")]
    } else {
        resources::groups()
    };
    let items: Vec<Value> = groups
        .into_iter()
        .map(|(g, v)| {
            let res: Vec<Value> = RESOURCES
                .iter()
                .filter(|r| r.group == g && r.version == v)
                .map(|r| {
                    let mut e = json!({
                        "resource": r.plural,
                        "responseKind": { "group": r.group, "version": r.version, "kind": r.kind },
                        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": r.singular,
                        "verbs": r.verbs(),
                    });
                    add_short_names_and_categories(&mut e, r);
                    let subs: Vec<Value> = r
                        .subresources
                        .iter()
                        .map(|s| {
                            let (sg, sv, sk) = subresource_kind(r, s);
                            json!({
                                "subresource": s,
                                "responseKind": { "group": sg, "version": sv, "kind": sk },
                                "verbs": subresource_verbs(s),
                            })
                        })
                        .collect();
                    if !subs.is_empty() {
                        e["subresources"] = json!(subs);
                    }
                    e
                })
                .collect();
            json!({
                "metadata": { "name": g },
                "versions": [{ "version": v, "resources": res, "freshness": "Current" }],
            })
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The OpenAPI v3 index: one document per served group version.
pub fn openapi_v3_index() -> Value {
    let mut paths = serde_json::Map::new();
    let mut gvs = vec![("", "v1")];
    gvs.extend(resources::groups());
    for (g, v) in gvs {
        let p = gv_path(g, v);
        paths.insert(
            p.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{p}?hash=la-sim-{g}-{v}") }),
        );
    }
    json!({ "paths": paths })
}

/// A minimal OpenAPI v3 document for one group version: enough for clients to see that PATCH
/// accepts `fieldValidation` (so they leave validation to the server) and which kinds exist.
pub fn openapi_v3_doc(group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceType> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version && !r.create_only)
        .collect();
    if served.is_empty()
        && !RESOURCES
            .iter()
            .any(|r| r.group == group && r.version == version)
    {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let prefix = format!("/{}", gv_path(group, version));
    for r in served {
        let gvk = json!({ "group": r.group, "version": r.version, "kind": r.kind });
        let path = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let param = |n: &str| json!({ "name": n, "in": "query", "schema": { "type": "string", "uniqueItems": true } });
        paths.insert(
            path,
            json!({
                "patch": {
                    "operationId": format!("patch{}", r.kind),
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")],
                    "responses": { "200": { "description": "OK" } },
                },
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": format!("v{}.{}.0", KUBE_VERSION.0, KUBE_VERSION.1) },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}
