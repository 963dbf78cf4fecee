//! The kubelet: resolves pods (env from Secrets and ConfigMaps, volumes to host directories,
//! an address of the runtime's pod subnet each), hands them to the runtime, reports container states into pod status,
//! and stops and removes pods being deleted.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::snapshot::{rt, Snapshot};
use super::volumes::pv_host_path;
use crate::runtime::{identity, ContainerSpec, ContainerState, ExecChild, Mount, PodSpec, Subnet};
use crate::store::{meta, Store};

/// What the kubelet and the exec endpoint need from a container runtime.
pub trait PodRuntime: Send + Sync {
    /// Where pod addresses come from.
    fn subnet(&self) -> Subnet;
    fn start_pod(&self, pod: &PodSpec) -> Result<(), String>;
    fn pod_state(&self, namespace: &str, name: &str) -> Vec<(String, ContainerState)>;
    /// `restartCount` per container; runtimes that never restart report none.
    fn restart_counts(&self, _namespace: &str, _name: &str) -> Vec<(String, u32)> {
        Vec::new()
    }
    fn stop_pod(&self, namespace: &str, name: &str);
    fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[String],
        tty: bool,
    ) -> Result<ExecChild, String>;
    fn kill_container(&self, namespace: &str, pod: &str, container: &str);
    fn shutdown(&self);
}

impl PodRuntime for crate::runtime::Runtime {
    fn subnet(&self) -> Subnet {
        crate::runtime::Runtime::subnet(self)
    }
    fn start_pod(&self, pod: &PodSpec) -> Result<(), String> {
        crate::runtime::Runtime::start_pod(self, pod).map_err(|e| e.to_string())
    }
    fn pod_state(&self, namespace: &str, name: &str) -> Vec<(String, ContainerState)> {
        crate::runtime::Runtime::pod_state(self, namespace, name)
    }
    fn restart_counts(&self, namespace: &str, name: &str) -> Vec<(String, u32)> {
        crate::runtime::Runtime::restart_counts(self, namespace, name)
    }
    fn stop_pod(&self, namespace: &str, name: &str) {
        crate::runtime::Runtime::stop_pod(self, namespace, name)
    }
    fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[String],
        tty: bool,
    ) -> Result<ExecChild, String> {
        crate::runtime::Runtime::exec(self, namespace, pod, container, argv, tty)
            .map_err(|e| e.to_string())
    }
    fn kill_container(&self, namespace: &str, pod: &str, container: &str) {
        crate::runtime::Runtime::kill_container(self, namespace, pod, container)
    }
    fn shutdown(&self) {
        crate::runtime::Runtime::shutdown(self)
    }
}

/// A runtime that runs nothing: containers are Running and Ready at once, run-to-completion
/// pods succeed. For API-level tests that need no processes.
#[derive(Default)]
pub struct NoopRuntime {
    pods: std::sync::Mutex<HashMap<(String, String), PodSpec>>,
}

impl PodRuntime for NoopRuntime {
    /// Addresses nothing listens on, shared by every such sim.
    fn subnet(&self) -> Subnet {
        Subnet::UNBRIDGED
    }
    fn start_pod(&self, pod: &PodSpec) -> Result<(), String> {
        self.pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((pod.namespace.clone(), pod.name.clone()), pod.clone());
        Ok(())
    }
    fn pod_state(&self, namespace: &str, name: &str) -> Vec<(String, ContainerState)> {
        let pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        let Some(p) = pods.get(&(namespace.to_string(), name.to_string())) else {
            return Vec::new();
        };
        let done = || ContainerState::Terminated {
            exit_code: 0,
            reason: "Completed".into(),
            message: String::new(),
        };
        let main = if p.restart_policy == "Always" {
            ContainerState::Running { ready: true }
        } else {
            done()
        };
        p.init_containers
            .iter()
            .map(|c| (c.name.clone(), done()))
            .chain(p.containers.iter().map(|c| (c.name.clone(), main.clone())))
            .collect()
    }
    fn stop_pod(&self, namespace: &str, name: &str) {
        self.pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(namespace.to_string(), name.to_string()));
    }
    fn exec(&self, _: &str, _: &str, _: &str, _: &[String], _: bool) -> Result<ExecChild, String> {
        Err("this sim runs without a container runtime (started with --no-runtime)".into())
    }
    fn kill_container(&self, _: &str, _: &str, _: &str) {}
    fn shutdown(&self) {}
}

/// Why a pod cannot start yet.
#[derive(Debug, Clone, PartialEq)]
pub struct NotReady {
    pub reason: String,
    pub message: String,
}

fn not_ready(reason: &str, message: String) -> NotReady {
    NotReady {
        reason: reason.into(),
        message,
    }
}

fn decode_secret(v: &Value) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_default())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn env_of(
    s: &Snapshot,
    pod: &Value,
    c: &Value,
    ip: Ipv4Addr,
) -> Result<Vec<(String, String)>, NotReady> {
    let ns = meta::namespace(pod);
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
        env.retain(|(x, _)| *x != k);
        env.push((k, v));
    };
    for ef in c["envFrom"].as_array().into_iter().flatten() {
        let prefix = ef["prefix"].as_str().unwrap_or_default();
        let optional = |r: &Value| r["optional"].as_bool() == Some(true);
        if let Some(r) = ef.get("configMapRef") {
            let name = r["name"].as_str().unwrap_or_default();
            match s.get("", "configmaps", ns, name) {
                Some(cm) => {
                    for (k, v) in cm["data"].as_object().into_iter().flatten() {
                        set(
                            &mut env,
                            format!("{prefix}{k}"),
                            v.as_str().unwrap_or_default().into(),
                        );
                    }
                }
                None if optional(r) => {}
                None => {
                    return Err(not_ready(
                        "CreateContainerConfigError",
                        format!("configmap \"{name}\" not found"),
                    ))
                }
            }
        }
        if let Some(r) = ef.get("secretRef") {
            let name = r["name"].as_str().unwrap_or_default();
            match s.get("", "secrets", ns, name) {
                Some(sec) => {
                    for (k, v) in sec["data"].as_object().into_iter().flatten() {
                        set(&mut env, format!("{prefix}{k}"), decode_secret(v));
                    }
                }
                None if optional(r) => {}
                None => {
                    return Err(not_ready(
                        "CreateContainerConfigError",
                        format!("secret \"{name}\" not found"),
                    ))
                }
            }
        }
    }
    for e in c["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default().to_string();
        if let Some(v) = e.get("value") {
            let v = v.as_str().unwrap_or_default().to_string();
            // $(VAR) references to earlier variables, as the kubelet expands them.
            let expanded = env
                .iter()
                .fold(v, |acc, (k, val)| acc.replace(&format!("$({k})"), val));
            set(&mut env, name, expanded);
            continue;
        }
        let Some(from) = e.get("valueFrom") else {
            set(&mut env, name, String::new());
            continue;
        };
        let value = if let Some(r) = from.get("secretKeyRef") {
            let (sn, key) = (
                r["name"].as_str().unwrap_or_default(),
                r["key"].as_str().unwrap_or_default(),
            );
            match s
                .get("", "secrets", ns, sn)
                .and_then(|sec| sec["data"].get(key).cloned())
            {
                Some(v) => Some(decode_secret(&v)),
                None if r["optional"].as_bool() == Some(true) => None,
                None if s.get("", "secrets", ns, sn).is_none() => {
                    return Err(not_ready(
                        "CreateContainerConfigError",
                        format!("secret \"{sn}\" not found"),
                    ))
                }
                None => {
                    return Err(not_ready(
                        "CreateContainerConfigError",
                        format!("couldn't find key {key} in Secret {ns}/{sn}"),
                    ))
                }
            }
        } else if let Some(r) = from.get("configMapKeyRef") {
            let (cn, key) = (
                r["name"].as_str().unwrap_or_default(),
                r["key"].as_str().unwrap_or_default(),
            );
            match s
                .get("", "configmaps", ns, cn)
                .and_then(|cm| cm["data"].get(key).cloned())
            {
                Some(v) => Some(v.as_str().unwrap_or_default().to_string()),
                None if r["optional"].as_bool() == Some(true) => None,
                None => {
                    return Err(not_ready(
                        "CreateContainerConfigError",
                        format!("configmap \"{cn}\" not found or has no key {key}"),
                    ))
                }
            }
        } else if let Some(r) = from.get("fieldRef") {
            Some(match r["fieldPath"].as_str().unwrap_or_default() {
                "metadata.name" => meta::name(pod).to_string(),
                "metadata.namespace" => ns.to_string(),
                "metadata.uid" => meta::uid(pod).to_string(),
                "status.podIP" | "status.hostIP" => ip.to_string(),
                "spec.nodeName" => "la-sim".into(),
                "spec.serviceAccountName" => pod["spec"]["serviceAccountName"]
                    .as_str()
                    .unwrap_or("default")
                    .into(),
                _ => String::new(),
            })
        } else {
            Some(String::new())
        };
        if let Some(v) = value {
            set(&mut env, name, v);
        }
    }
    Ok(env)
}

/// Writes a configMap or secret volume: the object's keys (or the listed `items`) as files.
/// A missing object holds the pod in ContainerCreating unless the volume is optional.
fn write_object_files(
    s: &Snapshot,
    ns: &str,
    dir: &Path,
    source: &Value,
    kind: &str,
    name_field: &str,
) -> Result<(), NotReady> {
    let object_name = source[name_field].as_str().unwrap_or_default();
    match s.get("", &format!("{kind}s"), ns, object_name) {
        Some(obj) => write_files(
            dir,
            obj["data"].as_object().unwrap_or(&Default::default()),
            source["items"].as_array(),
            kind == "secret",
        ),
        None if source["optional"].as_bool() == Some(true) => {}
        None => {
            return Err(not_ready(
                "ContainerCreating",
                format!("{kind} \"{object_name}\" not found"),
            ))
        }
    }
    Ok(())
}

fn write_files(
    dir: &Path,
    data: &serde_json::Map<String, Value>,
    items: Option<&Vec<Value>>,
    decode: bool,
) {
    let _ = std::fs::create_dir_all(dir);
    for (k, v) in data {
        let target = items
            .and_then(|it| {
                it.iter()
                    .find(|i| i["key"].as_str() == Some(k))
                    .map(|i| i["path"].as_str().unwrap_or(k).to_string())
            })
            .or_else(|| items.is_none().then(|| k.clone()));
        let Some(target) = target else { continue };
        let content = if decode {
            decode_secret(v).into_bytes()
        } else {
            v.as_str().unwrap_or_default().as_bytes().to_vec()
        };
        let path = dir.join(target);
        if let Some(p) = path.parent() {
            let _ = std::fs::create_dir_all(p);
        }
        let _ = std::fs::write(path, content);
    }
}

/// A pod volume's host directory, and whether the kubelet manages its ownership (`fsGroup`;
/// not for hostPath volumes).
struct HostVolume {
    dir: PathBuf,
    owned: bool,
}

/// Host directories for each of the pod's volumes.
fn volumes(
    s: &Snapshot,
    pod: &Value,
    state_dir: &Path,
) -> Result<HashMap<String, HostVolume>, NotReady> {
    let ns = meta::namespace(pod);
    // By the pod's uid, as the kubelet keeps them: a pod created again under the same name
    // starts with empty emptyDirs; those of earlier pods of that name (gone, since names are
    // unique) are removed.
    let by_name = state_dir.join("pods").join(ns).join(meta::name(pod));
    let own = format!("volumes-{}", meta::uid(pod));
    for old in std::fs::read_dir(&by_name).into_iter().flatten().flatten() {
        let file = old.file_name();
        let file = file.to_string_lossy();
        if (file == "volumes" || file.starts_with("volumes-")) && file != own {
            let _ = std::fs::remove_dir_all(old.path());
        }
    }
    let pod_dir = by_name.join(own);
    let mut out = HashMap::new();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default().to_string();
        let dir = if let Some(claim) = v
            .pointer("/persistentVolumeClaim/claimName")
            .and_then(Value::as_str)
        {
            let Some(pvc) = s.get("", "persistentvolumeclaims", ns, claim) else {
                return Err(not_ready(
                    "ContainerCreating",
                    format!("persistentvolumeclaim \"{claim}\" not found"),
                ));
            };
            let bound = pvc.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
            let pv = pvc
                .pointer("/spec/volumeName")
                .and_then(Value::as_str)
                .and_then(|n| s.get("", "persistentvolumes", "", n));
            match pv {
                Some(pv) if bound => pv_host_path(pv, state_dir),
                _ => {
                    return Err(not_ready(
                        "ContainerCreating",
                        format!("pod has unbound immediate PersistentVolumeClaims: {claim}"),
                    ))
                }
            }
        } else if let Some(p) = v.pointer("/hostPath/path").and_then(Value::as_str) {
            let dir = PathBuf::from(p);
            let _ = std::fs::create_dir_all(&dir);
            out.insert(name, HostVolume { dir, owned: false });
            continue;
        } else if let Some(cm) = v.get("configMap") {
            let dir = pod_dir.join(&name);
            write_object_files(s, ns, &dir, cm, "configmap", "name")?;
            dir
        } else if let Some(sec) = v.get("secret") {
            let dir = pod_dir.join(&name);
            write_object_files(s, ns, &dir, sec, "secret", "secretName")?;
            dir
        } else {
            // emptyDir: writable by every user, as the kubelet makes it.
            let dir = pod_dir.join(&name);
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
            dir
        };
        let _ = std::fs::create_dir_all(&dir);
        out.insert(name, HostVolume { dir, owned: true });
    }
    Ok(out)
}

/// Gives the pod's volumes to its `fsGroup` (once it can start: every check passed).
fn apply_fs_group(pod: &Value, vols: &HashMap<String, HostVolume>) -> Result<(), NotReady> {
    let Some(gid) = identity::fs_group(&pod["spec"]) else {
        return Ok(());
    };
    let on_mismatch = pod
        .pointer("/spec/securityContext/fsGroupChangePolicy")
        .and_then(Value::as_str)
        == Some("OnRootMismatch");
    for (name, v) in vols.iter().filter(|(_, v)| v.owned) {
        identity::set_volume_ownership(&v.dir, gid, false, on_mismatch).map_err(|e| {
            not_ready(
                "ContainerCreating",
                format!("MountVolume.SetUp failed for volume \"{name}\": setting the ownership of {} to group {gid}: {e}", v.dir.display()),
            )
        })?;
    }
    Ok(())
}

/// Resolves a pod object into what the runtime starts.
pub fn resolve(
    s: &Snapshot,
    pod: &Value,
    ip: Ipv4Addr,
    state_dir: &Path,
) -> Result<PodSpec, NotReady> {
    let vols = volumes(s, pod, state_dir)?;
    let container = |c: &Value| -> Result<ContainerSpec, NotReady> {
        let strings = |k: &str| -> Vec<String> {
            c[k].as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        };
        let mut mounts = Vec::new();
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            let vname = m["name"].as_str().unwrap_or_default();
            let Some(host) = vols.get(vname).map(|v| &v.dir) else {
                return Err(not_ready(
                    "CreateContainerConfigError",
                    format!("volume \"{vname}\" not found"),
                ));
            };
            let mut host = host.clone();
            if let Some(sub) = m["subPath"].as_str().filter(|x| !x.is_empty()) {
                host = host.join(sub);
                if !host.exists() {
                    let _ = std::fs::create_dir_all(&host);
                }
            }
            mounts.push(Mount {
                host_path: host,
                container_path: m["mountPath"].as_str().unwrap_or_default().to_string(),
                read_only: m["readOnly"].as_bool() == Some(true),
            });
        }
        let name = c["name"].as_str().unwrap_or_default().to_string();
        let image = c["image"].as_str().unwrap_or_default().to_string();
        let run_as = identity::RunAs::of(&pod["spec"], c);
        let pod_ref = format!(
            "{}_{}({})",
            meta::name(pod),
            meta::namespace(pod),
            meta::uid(pod)
        );
        identity::verify_non_root(&run_as, &image, &name, &pod_ref)
            .map_err(|e| not_ready("CreateContainerConfigError", e))?;
        Ok(ContainerSpec {
            name,
            image,
            command: strings("command"),
            args: strings("args"),
            env: env_of(s, pod, c, ip)?,
            mounts,
            run_as,
        })
    };
    let list = |k: &str| -> Result<Vec<ContainerSpec>, NotReady> {
        pod["spec"][k]
            .as_array()
            .into_iter()
            .flatten()
            .map(container)
            .collect()
    };
    let init_containers = list("initContainers")?;
    let containers = list("containers")?;
    apply_fs_group(pod, &vols)?;
    Ok(PodSpec {
        namespace: meta::namespace(pod).to_string(),
        name: meta::name(pod).to_string(),
        uid: meta::uid(pod).to_string(),
        ip,
        hostname: pod
            .pointer("/spec/hostname")
            .and_then(Value::as_str)
            .unwrap_or(meta::name(pod))
            .to_string(),
        init_containers,
        containers,
        groups: identity::pod_groups(&pod["spec"]),
        restart_policy: pod
            .pointer("/spec/restartPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Always")
            .to_string(),
    })
}

fn container_status(
    name: &str,
    image: &str,
    st: &ContainerState,
    prev: Option<&Value>,
    started: &str,
) -> Value {
    let restarts = prev.and_then(|p| p["restartCount"].as_i64()).unwrap_or(0);
    let (state, ready) = match st {
        ContainerState::Waiting { reason, message } => (
            json!({"waiting": {"reason": reason, "message": message}}),
            false,
        ),
        ContainerState::Running { ready } => (
            json!({"running": {"startedAt": prev.and_then(|p| p.pointer("/state/running/startedAt").cloned()).unwrap_or(json!(started))}}),
            *ready,
        ),
        ContainerState::Terminated {
            exit_code,
            reason,
            message,
        } => (
            json!({"terminated": {"exitCode": exit_code, "reason": reason, "message": message, "finishedAt": prev.and_then(|p| p.pointer("/state/terminated/finishedAt").cloned()).unwrap_or(json!(meta::now()))}}),
            false,
        ),
    };
    json!({
        "name": name, "image": image, "imageID": format!("docker-pullable://{image}"),
        "ready": ready, "started": matches!(st, ContainerState::Running { .. }),
        "restartCount": restarts, "state": state,
        "containerID": format!("sim://{name}"),
    })
}

/// Pod status from the runtime's container states (pure).
pub fn pod_status(pod: &Value, states: &[(String, ContainerState)], ip: Ipv4Addr) -> Value {
    let prev = pod.get("status").cloned().unwrap_or(json!({}));
    let now = meta::now();
    let start = prev.get("startTime").cloned().unwrap_or(json!(now));
    let image_of = |list: &str, n: &str| {
        pod["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == n)
            .and_then(|c| c["image"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let init_names: Vec<String> = pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let prev_of = |key: &str, n: &str| {
        prev[key]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == n).cloned())
    };
    let mut init = Vec::new();
    let mut main = Vec::new();
    for (n, st) in states {
        if init_names.contains(n) {
            init.push(container_status(
                n,
                &image_of("initContainers", n),
                st,
                prev_of("initContainerStatuses", n).as_ref(),
                start.as_str().unwrap_or_default(),
            ));
        } else {
            main.push(container_status(
                n,
                &image_of("containers", n),
                st,
                prev_of("containerStatuses", n).as_ref(),
                start.as_str().unwrap_or_default(),
            ));
        }
    }
    let init_done = states
        .iter()
        .filter(|(n, _)| init_names.contains(n))
        .all(|(_, s)| matches!(s, ContainerState::Terminated { exit_code: 0, .. }));
    let main_states: Vec<&ContainerState> = states
        .iter()
        .filter(|(n, _)| !init_names.contains(n))
        .map(|(_, s)| s)
        .collect();
    let restart = pod
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    let all_terminated = !main_states.is_empty()
        && main_states
            .iter()
            .all(|s| matches!(s, ContainerState::Terminated { .. }));
    let any_failed = main_states
        .iter()
        .any(|s| matches!(s, ContainerState::Terminated { exit_code, .. } if *exit_code != 0));
    let init_failed = restart == "Never"
        && states.iter().any(|(n, s)| {
            init_names.contains(n)
                && matches!(s, ContainerState::Terminated { exit_code, .. } if *exit_code != 0)
        });
    let phase = if init_failed {
        "Failed"
    } else if !init_done || main_states.is_empty() {
        "Pending"
    } else if all_terminated && restart != "Always" {
        if any_failed && restart == "Never" {
            "Failed"
        } else if any_failed {
            "Running"
        } else {
            "Succeeded"
        }
    } else if main_states.iter().any(|s| {
        matches!(
            s,
            ContainerState::Running { .. } | ContainerState::Terminated { .. }
        )
    }) {
        "Running"
    } else {
        "Pending"
    };
    let ready = phase == "Running"
        && main_states
            .iter()
            .all(|s| matches!(s, ContainerState::Running { ready: true }));
    let cond = |t: &str, ok: bool| {
        let old = prev["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t).cloned());
        let status = if ok { "True" } else { "False" };
        let since = old
            .filter(|o| o["status"] == status)
            .and_then(|o| o.get("lastTransitionTime").cloned())
            .unwrap_or(json!(now));
        json!({"type": t, "status": status, "lastProbeTime": null, "lastTransitionTime": since})
    };
    let mut status = json!({
        "phase": phase,
        "conditions": [
            cond("PodReadyToStartContainers", true),
            cond("Initialized", init_done),
            cond("Ready", ready),
            cond("ContainersReady", ready),
            cond("PodScheduled", true),
        ],
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": ip.to_string(),
        "podIPs": [{"ip": ip.to_string()}],
        "startTime": start,
        "qosClass": crate::api::defaults::qos_class(&pod["spec"]),
        "containerStatuses": main,
    });
    if !init.is_empty() {
        status["initContainerStatuses"] = json!(init);
    }
    status
}

/// Sets `restartCount` of each container status from the runtime's counts (pure).
fn set_restart_counts(status: &mut Value, counts: &[(String, u32)]) {
    for key in ["initContainerStatuses", "containerStatuses"] {
        for cs in status[key].as_array_mut().into_iter().flatten() {
            if let Some((_, n)) = counts.iter().find(|(name, _)| cs["name"] == name.as_str()) {
                cs["restartCount"] = json!(n);
            }
        }
    }
}

fn waiting_status(pod: &Value, why: &NotReady) -> Value {
    let mut status = pod.get("status").cloned().unwrap_or(json!({}));
    status["phase"] = json!("Pending");
    let cs: Vec<Value> = pod["spec"]["containers"].as_array().into_iter().flatten().map(|c| json!({
        "name": c["name"], "image": c["image"], "imageID": "", "ready": false, "started": false, "restartCount": 0,
        "state": {"waiting": {"reason": why.reason, "message": why.message}},
    })).collect();
    status["containerStatuses"] = json!(cs);
    status["conditions"] = json!([{"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": status.pointer("/startTime").cloned().unwrap_or(json!(meta::now()))}]);
    status
}

struct Kubelet {
    store: Arc<Store>,
    runtime: Arc<dyn PodRuntime>,
    state_dir: PathBuf,
    ips: HashMap<String, Ipv4Addr>,
    addresses: Subnet,
    next_ip: u32,
    /// Pods handed to the runtime (namespace, name, uid)
    started: HashSet<(String, String, String)>,
    stopping: Arc<std::sync::Mutex<HashSet<String>>>,
}

impl Kubelet {
    /// The pod's address: the next one of the subnet no live pod has (an address comes back
    /// round only after all others, so a stopped pod's is not reused at once); `None` when
    /// every one is taken.
    fn ip_for(&mut self, uid: &str) -> Option<Ipv4Addr> {
        if let Some(ip) = self.ips.get(uid) {
            return Some(*ip);
        }
        let used: HashSet<Ipv4Addr> = self.ips.values().copied().collect();
        for _ in 0..Subnet::ADDRESSES {
            self.next_ip = self.next_ip % Subnet::ADDRESSES + 1;
            let ip = self.addresses.address(self.next_ip);
            if !used.contains(&ip) {
                self.ips.insert(uid.to_string(), ip);
                return Some(ip);
            }
        }
        None
    }

    fn tick(&mut self) {
        let snap = Snapshot::take(&self.store);
        let pods_rt = rt("", "pods");
        let pods: Vec<Value> = snap.all("", "pods").to_vec();
        let live: HashSet<(String, String, String)> = pods
            .iter()
            .map(|p| {
                (
                    meta::namespace(p).into(),
                    meta::name(p).into(),
                    meta::uid(p).into(),
                )
            })
            .collect();
        // Pods removed from the store without going through deletion.
        let orphans: Vec<(String, String, String)> =
            self.started.difference(&live).cloned().collect();
        for k in orphans {
            self.stop(k.clone(), false);
        }
        for pod in &pods {
            let (ns, name, uid) = (
                meta::namespace(pod).to_string(),
                meta::name(pod).to_string(),
                meta::uid(pod).to_string(),
            );
            let key = (ns.clone(), name.clone(), uid.clone());
            if meta::is_deleting(pod) {
                self.stop(key, true);
                continue;
            }
            let Some(ip) = self.ip_for(&uid) else {
                let why = not_ready(
                    "FailedCreatePodSandBox",
                    format!(
                        "every address of the pod subnet {} is taken",
                        self.addresses
                    ),
                );
                self.set_status(pods_rt, pod, waiting_status(pod, &why));
                continue;
            };
            if !self.started.contains(&key) {
                let status = match resolve(&snap, pod, ip, &self.state_dir) {
                    Ok(spec) => match self.runtime.start_pod(&spec) {
                        Ok(()) => {
                            self.started.insert(key);
                            pod_status(pod, &[], ip)
                        }
                        Err(e) => waiting_status(pod, &not_ready("RunContainerError", e)),
                    },
                    Err(why) => waiting_status(pod, &why),
                };
                self.set_status(pods_rt, pod, status);
                continue;
            }
            let states = self.runtime.pod_state(&ns, &name);
            let mut status = pod_status(pod, &states, ip);
            set_restart_counts(&mut status, &self.runtime.restart_counts(&ns, &name));
            self.set_status(pods_rt, pod, status);
        }
    }

    fn set_status(
        &self,
        r: &'static crate::api::resources::ResourceType,
        pod: &Value,
        status: Value,
    ) {
        if pod.get("status") == Some(&status) {
            return;
        }
        let _ = self
            .store
            .update(r, meta::namespace(pod), meta::name(pod), true, move |old| {
                let mut new = old.clone();
                new["status"] = status;
                Ok(new)
            });
    }

    /// Stops a pod's processes in the background; removes the object afterwards if asked.
    fn stop(&mut self, key: (String, String, String), remove: bool) {
        let was_started = self.started.remove(&key);
        self.ips.remove(&key.2);
        {
            let mut stopping = self.stopping.lock().unwrap_or_else(|p| p.into_inner());
            if !stopping.insert(key.2.clone()) {
                return;
            }
        }
        let (runtime, store, stopping) = (
            self.runtime.clone(),
            self.store.clone(),
            self.stopping.clone(),
        );
        tokio::task::spawn_blocking(move || {
            if was_started {
                runtime.stop_pod(&key.0, &key.1);
            }
            if remove {
                if let Some(p) = store.try_get(rt("", "pods"), &key.0, &key.1) {
                    if meta::uid(&p) == key.2 {
                        store.remove(rt("", "pods"), &key.0, &key.1);
                    }
                }
            }
            stopping
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key.2);
        });
    }
}

/// Runs the kubelet until `shutdown` flips, then stops every pod.
pub async fn run(
    store: Arc<Store>,
    runtime: Arc<dyn PodRuntime>,
    state_dir: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    let addresses = runtime.subnet();
    let mut k = Kubelet {
        store: store.clone(),
        runtime: runtime.clone(),
        state_dir,
        ips: HashMap::new(),
        addresses,
        next_ip: 0,
        started: HashSet::new(),
        stopping: Arc::default(),
    };
    let mut events = store.subscribe();
    loop {
        k.tick();
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = events.recv() => {
                tokio::time::sleep(Duration::from_millis(30)).await;
                while events.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
    let rt2 = runtime.clone();
    let _ = tokio::task::spawn_blocking(move || rt2.shutdown()).await;
}
