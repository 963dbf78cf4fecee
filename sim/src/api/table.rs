//! Server-side printing: the `Table` kubectl asks for, with the columns the real server prints
//! for the kinds an operator looks at.

use hyper::Response;
use serde_json::{json, Value};

use super::resources::ResourceType;
use super::{json_response, Body};

pub fn wanted(accept: &str) -> bool {
    accept.contains("as=Table")
}

/// `5s`, `3m`, `2h`, `4d`, as kubectl shows ages.
pub fn age(ts: &str) -> String {
    let Ok(t) = ts.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn s<'a>(o: &'a Value, p: &str) -> &'a str {
    o.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

fn i(o: &Value, p: &str) -> i64 {
    o.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(v: &str) -> String {
    if v.is_empty() {
        "<none>".into()
    } else {
        v.into()
    }
}

fn columns(rt: &ResourceType) -> Vec<&'static str> {
    match (rt.group, rt.kind) {
        ("", "Pod") => vec!["Name", "Ready", "Status", "Restarts", "Age"],
        ("", "PersistentVolume") => vec![
            "Name",
            "Capacity",
            "Access Modes",
            "Reclaim Policy",
            "Status",
            "Claim",
            "StorageClass",
            "Reason",
            "Age",
        ],
        ("", "PersistentVolumeClaim") => vec![
            "Name",
            "Status",
            "Volume",
            "Capacity",
            "Access Modes",
            "StorageClass",
            "Age",
        ],
        ("", "Service") => vec![
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
        ],
        ("", "Secret") => vec!["Name", "Type", "Data", "Age"],
        ("", "ConfigMap") => vec!["Name", "Data", "Age"],
        ("", "Namespace") => vec!["Name", "Status", "Age"],
        ("apps", "Deployment") => vec!["Name", "Ready", "Up-to-date", "Available", "Age"],
        ("apps", "StatefulSet") => vec!["Name", "Ready", "Age"],
        ("batch", "Job") => vec!["Name", "Status", "Completions", "Duration", "Age"],
        ("storage.k8s.io", "StorageClass") => vec![
            "Name",
            "Provisioner",
            "ReclaimPolicy",
            "VolumeBindingMode",
            "AllowVolumeExpansion",
            "Age",
        ],
        _ => vec!["Name", "Created At"],
    }
}

fn modes(o: &Value, p: &str) -> String {
    o.pointer(p)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| match m.as_str()? {
                    "ReadWriteOnce" => Some("RWO"),
                    "ReadOnlyMany" => Some("ROX"),
                    "ReadWriteMany" => Some("RWX"),
                    "ReadWriteOncePod" => Some("RWOP"),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn cells(rt: &ResourceType, o: &Value) -> Vec<Value> {
    let name = json!(s(o, "/metadata/name"));
    let created = s(o, "/metadata/creationTimestamp");
    let a = json!(age(created));
    match (rt.group, rt.kind) {
        ("", "Pod") => {
            let statuses = o
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = o
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|c| c["ready"] == json!(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                .sum();
            let mut status = s(o, "/status/phase").to_string();
            for c in &statuses {
                if let Some(r) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
                    status = r.to_string();
                } else if let Some(r) = c
                    .pointer("/state/terminated/reason")
                    .and_then(Value::as_str)
                {
                    if status == "Running" {
                        status = r.to_string();
                    }
                }
            }
            if o.pointer("/metadata/deletionTimestamp").is_some() {
                status = "Terminating".into();
            }
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(status),
                json!(restarts),
                a,
            ]
        }
        ("", "PersistentVolume") => {
            let claim = if s(o, "/spec/claimRef/name").is_empty() {
                String::new()
            } else {
                format!(
                    "{}/{}",
                    s(o, "/spec/claimRef/namespace"),
                    s(o, "/spec/claimRef/name")
                )
            };
            vec![
                name,
                json!(s(o, "/spec/capacity/storage")),
                json!(modes(o, "/spec/accessModes")),
                json!(s(o, "/spec/persistentVolumeReclaimPolicy")),
                json!(s(o, "/status/phase")),
                json!(claim),
                json!(s(o, "/spec/storageClassName")),
                json!(s(o, "/status/reason")),
                a,
            ]
        }
        ("", "PersistentVolumeClaim") => vec![
            name,
            json!(s(o, "/status/phase")),
            json!(s(o, "/spec/volumeName")),
            json!(s(o, "/status/capacity/storage")),
            json!(modes(o, "/status/accessModes")),
            json!(s(o, "/spec/storageClassName")),
            a,
        ],
        ("", "Service") => {
            let ports = o
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP"))
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            vec![
                name,
                json!(s(o, "/spec/type")),
                json!(s(o, "/spec/clusterIP")),
                json!("<none>"),
                json!(or_none(&ports)),
                a,
            ]
        }
        ("", "Secret") => vec![
            name,
            json!(s(o, "/type")),
            json!(o["data"].as_object().map_or(0, |m| m.len())),
            a,
        ],
        ("", "ConfigMap") => vec![name, json!(o["data"].as_object().map_or(0, |m| m.len())), a],
        ("", "Namespace") => vec![name, json!(s(o, "/status/phase")), a],
        ("apps", "Deployment") => vec![
            name,
            json!(format!(
                "{}/{}",
                i(o, "/status/readyReplicas"),
                i(o, "/spec/replicas")
            )),
            json!(i(o, "/status/updatedReplicas")),
            json!(i(o, "/status/availableReplicas")),
            a,
        ],
        ("apps", "StatefulSet") => vec![
            name,
            json!(format!(
                "{}/{}",
                i(o, "/status/readyReplicas"),
                i(o, "/spec/replicas")
            )),
            a,
        ],
        ("batch", "Job") => {
            let status = if i(o, "/status/succeeded") > 0 {
                "Complete"
            } else if i(o, "/status/failed") > 0 && o.pointer("/status/active").is_none() {
                "Failed"
            } else {
                "Running"
            };
            vec![
                name,
                json!(status),
                json!(format!(
                    "{}/{}",
                    i(o, "/status/succeeded"),
                    i(o, "/spec/completions").max(1)
                )),
                json!(""),
                a,
            ]
        }
        ("storage.k8s.io", "StorageClass") => {
            let default = s(
                o,
                "/metadata/annotations/storageclass.kubernetes.io~1is-default-class",
            ) == "true";
            let n = if default {
                format!("{} (default)", s(o, "/metadata/name"))
            } else {
                s(o, "/metadata/name").to_string()
            };
            vec![
                json!(n),
                json!(s(o, "/provisioner")),
                json!(s(o, "/reclaimPolicy")),
                json!(s(o, "/volumeBindingMode")),
                json!(o
                    .get("allowVolumeExpansion")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)),
                a,
            ]
        }
        _ => vec![name, json!(created)],
    }
}

pub fn response(rt: &ResourceType, items: &[Value], rv: u64, accept: &str) -> Response<Body> {
    let version = if accept.contains("as=Table;v=v1;")
        || accept.contains("as=Table;v=v1,")
        || accept.ends_with("as=Table;v=v1")
    {
        "v1"
    } else if accept.contains("v=v1beta1") && !accept.contains("v=v1;") {
        "v1beta1"
    } else {
        "v1"
    };
    let defs: Vec<Value> = columns(rt)
        .iter()
        .map(|c| json!({ "name": c, "type": "string", "format": if *c == "Name" { "name" } else { "" }, "description": "", "priority": 0 }))
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            json!({
                "cells": cells(rt, o),
                "object": { "kind": "PartialObjectMetadata", "apiVersion": format!("meta.k8s.io/{version}"), "metadata": o["metadata"] },
            })
        })
        .collect();
    let table = json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": { "resourceVersion": rv.to_string() },
        "columnDefinitions": defs,
        "rows": rows,
    });
    let mut r = json_response(200, &table);
    r.headers_mut().insert(
        "Content-Type",
        format!("application/json;as=Table;v={version};g=meta.k8s.io")
            .parse()
            .expect("header"),
    );
    r
}
