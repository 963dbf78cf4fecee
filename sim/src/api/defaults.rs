//! Defaulting as the API server and its admission plugins do it, limited to the fields clients
//! and the sim's controllers read: idempotent fill-ins on every write, plus allocation and
//! protection finalizers on create.

use base64::Engine;
use serde_json::{json, Value};

use super::resources::{self, ResourceType};
use crate::store::Store;

fn set_default(obj: &mut Value, pointer: &str, value: Value) {
    if obj.pointer(pointer).is_none_or(Value::is_null) {
        let mut cur = obj;
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        for (i, p) in parts.iter().enumerate() {
            if !cur.is_object() {
                *cur = json!({});
            }
            if i == parts.len() - 1 {
                cur[*p] = value;
                return;
            }
            if cur.get(*p).is_none_or(Value::is_null) {
                cur[*p] = json!({});
            }
            cur = &mut cur[*p];
        }
    }
}

fn pod_spec_defaults(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_default(spec, "/restartPolicy", json!("Always"));
    set_default(spec, "/dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "/schedulerName", json!("default-scheduler"));
    set_default(spec, "/terminationGracePeriodSeconds", json!(30));
    set_default(spec, "/securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                set_default(c, "/terminationMessagePath", json!("/dev/termination-log"));
                set_default(c, "/terminationMessagePolicy", json!("File"));
                let image = c["image"].as_str().unwrap_or_default().to_string();
                let latest = !image.contains(':') || image.ends_with(":latest");
                set_default(
                    c,
                    "/imagePullPolicy",
                    json!(if latest { "Always" } else { "IfNotPresent" }),
                );
                set_default(c, "/resources", json!({}));
                requests_from_limits(&mut c["resources"]);
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        set_default(p, "/protocol", json!("TCP"));
                    }
                }
            }
        }
    }
}

/// A limit without a request makes the request equal to it (the API server's defaulting).
fn requests_from_limits(resources: &mut Value) {
    let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    for (k, v) in limits {
        set_default(resources, &format!("/requests/{k}"), v);
    }
}

/// The pod's QoS class: `Guaranteed` when every container's cpu and memory requests equal
/// its limits, `BestEffort` when no container asks for any, else `Burstable`.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .collect();
    let listed = |c: &Value, which: &str| {
        c["resources"][which]
            .as_object()
            .is_some_and(|m| m.contains_key("cpu") || m.contains_key("memory"))
    };
    if !containers
        .iter()
        .any(|c| listed(c, "requests") || listed(c, "limits"))
    {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = &c["resources"]["limits"][*r];
            !limit.is_null() && c["resources"]["requests"][*r] == *limit
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Fill-ins applied on create and update (never overwriting a set value).
pub fn fill(rt: &ResourceType, obj: &mut Value) {
    match (rt.group, rt.kind) {
        ("", "Pod") => {
            pod_spec_defaults(&mut obj["spec"]);
            let sa = obj
                .pointer("/spec/serviceAccountName")
                .cloned()
                .unwrap_or(json!("default"));
            set_default(obj, "/spec/serviceAccountName", sa.clone());
            set_default(obj, "/spec/serviceAccount", sa);
        }
        ("", "Service") => {
            set_default(obj, "/spec/type", json!("ClusterIP"));
            set_default(obj, "/spec/sessionAffinity", json!("None"));
            if let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for p in ports {
                    set_default(p, "/protocol", json!("TCP"));
                    let port = p["port"].clone();
                    set_default(p, "/targetPort", port);
                }
            }
        }
        ("", "Secret") => {
            set_default(obj, "/type", json!("Opaque"));
            if let Some(sd) = obj.get("stringData").and_then(Value::as_object).cloned() {
                for (k, v) in sd {
                    let enc = base64::engine::general_purpose::STANDARD
                        .encode(v.as_str().unwrap_or_default());
                    set_default(obj, "/data", json!({}));
                    obj["data"][k] = json!(enc);
                }
                if let Some(o) = obj.as_object_mut() {
                    o.remove("stringData");
                }
            }
        }
        ("", "PersistentVolumeClaim") => {
            set_default(obj, "/spec/volumeMode", json!("Filesystem"));
        }
        ("", "PersistentVolume") => {
            set_default(obj, "/spec/persistentVolumeReclaimPolicy", json!("Retain"));
            set_default(obj, "/spec/volumeMode", json!("Filesystem"));
        }
        ("", "Namespace") => {
            set_default(obj, "/spec/finalizers", json!(["kubernetes"]));
            let name = obj["metadata"]["name"].clone();
            set_default(obj, "/metadata/labels/kubernetes.io~1metadata.name", name);
        }
        ("apps", "Deployment") => {
            set_default(obj, "/spec/replicas", json!(1));
            set_default(obj, "/spec/revisionHistoryLimit", json!(10));
            set_default(obj, "/spec/progressDeadlineSeconds", json!(600));
            set_default(
                obj,
                "/spec/strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            );
            pod_spec_defaults(&mut obj["spec"]["template"]["spec"]);
        }
        ("apps", "StatefulSet") => {
            set_default(obj, "/spec/replicas", json!(1));
            set_default(obj, "/spec/revisionHistoryLimit", json!(10));
            set_default(obj, "/spec/podManagementPolicy", json!("OrderedReady"));
            set_default(
                obj,
                "/spec/updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            set_default(
                obj,
                "/spec/persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            if let Some(vcts) = obj
                .pointer_mut("/spec/volumeClaimTemplates")
                .and_then(Value::as_array_mut)
            {
                for t in vcts {
                    set_default(t, "/apiVersion", json!("v1"));
                    set_default(t, "/kind", json!("PersistentVolumeClaim"));
                    set_default(t, "/spec/volumeMode", json!("Filesystem"));
                    set_default(t, "/status/phase", json!("Pending"));
                }
            }
            pod_spec_defaults(&mut obj["spec"]["template"]["spec"]);
        }
        ("batch", "Job") => {
            set_default(obj, "/spec/completions", json!(1));
            set_default(obj, "/spec/parallelism", json!(1));
            set_default(obj, "/spec/backoffLimit", json!(6));
            set_default(obj, "/spec/completionMode", json!("NonIndexed"));
            set_default(obj, "/spec/suspend", json!(false));
            pod_spec_defaults(&mut obj["spec"]["template"]["spec"]);
        }
        ("storage.k8s.io", "StorageClass") => {
            set_default(obj, "/reclaimPolicy", json!("Delete"));
            set_default(obj, "/volumeBindingMode", json!("Immediate"));
        }
        _ => {}
    }
}

fn add_finalizer(obj: &mut Value, f: &str) {
    set_default(obj, "/metadata/finalizers", json!([]));
    if let Some(a) = obj["metadata"]["finalizers"].as_array_mut() {
        if !a.iter().any(|x| x == f) {
            a.push(json!(f));
        }
    }
}

pub fn on_create(rt: &ResourceType, obj: &mut Value, store: &Store) {
    fill(rt, obj);
    match (rt.group, rt.kind) {
        ("", "Service") => {
            let headless = obj.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
            if !headless
                && obj
                    .pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                let ip = allocate_cluster_ip(store);
                obj["spec"]["clusterIP"] = json!(ip);
            }
            let ip = obj["spec"]["clusterIP"].clone();
            set_default(obj, "/spec/clusterIPs", json!([ip]));
            set_default(obj, "/spec/ipFamilies", json!(["IPv4"]));
            set_default(obj, "/spec/ipFamilyPolicy", json!("SingleStack"));
            set_default(obj, "/spec/internalTrafficPolicy", json!("Cluster"));
            set_default(obj, "/status/loadBalancer", json!({}));
        }
        ("", "Pod") => {
            let qos = qos_class(&obj["spec"]);
            obj["status"] = json!({ "phase": "Pending", "qosClass": qos });
        }
        ("", "PersistentVolumeClaim") => {
            if obj.pointer("/spec/storageClassName").is_none() {
                if let Some(sc) = default_storage_class(store) {
                    obj["spec"]["storageClassName"] = json!(sc);
                }
            }
            add_finalizer(obj, "kubernetes.io/pvc-protection");
            obj["status"] = json!({ "phase": "Pending" });
        }
        ("", "PersistentVolume") => {
            add_finalizer(obj, "kubernetes.io/pv-protection");
            obj["status"] = json!({ "phase": "Pending" });
        }
        ("", "Namespace") => {
            obj["status"] = json!({ "phase": "Active" });
        }
        ("apps", "Deployment") | ("apps", "StatefulSet") | ("batch", "Job") => {
            obj["status"] = json!({});
        }
        _ => {}
    }
}

pub fn on_update(rt: &ResourceType, old: &Value, new: &mut Value) {
    if rt.kind == "Service" && rt.group.is_empty() {
        for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            if new.pointer(&format!("/spec/{f}")).is_none() {
                if let Some(v) = old.pointer(&format!("/spec/{f}")) {
                    new["spec"][f] = v.clone();
                }
            }
        }
    }
    fill(rt, new);
}

fn allocate_cluster_ip(store: &Store) -> String {
    let rt = resources::find("", "v1", "services").expect("services");
    let (svcs, _) = store.list(rt, None);
    let used: std::collections::HashSet<String> = svcs
        .iter()
        .filter_map(|s| {
            s.pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    (10u32..65000)
        .map(|n| format!("10.96.{}.{}", n / 250, n % 250 + 1))
        .find(|ip| !used.contains(ip))
        .unwrap_or_else(|| "10.96.255.254".into())
}

fn default_storage_class(store: &Store) -> Option<String> {
    let rt = resources::find("storage.k8s.io", "v1", "storageclasses").expect("storageclasses");
    let (scs, _) = store.list(rt, None);
    scs.iter()
        .find(|sc| {
            sc.pointer("/metadata/annotations/storageclass.kubernetes.io~1is-default-class")
                .and_then(Value::as_str)
                == Some("true")
        })
        .and_then(|sc| {
            sc.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
}
