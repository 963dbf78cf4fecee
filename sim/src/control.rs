//! Requests to a running sim from the command line (`la-sim fault`, `la-sim seed`): JSON files
//! dropped into `<state>/control/`, carried out by the sim process, answered with a result file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::faults::ApiFault;
use crate::api::ApiState;
use crate::controllers::snapshot::rt;
use crate::controllers::volumes::pv_host_path;
use crate::store::meta;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Every API request fails with `code` for `seconds`
    FaultApi(ApiFault),
    /// Kills a pod's container processes (all containers when `container` is empty)
    Kill {
        namespace: String,
        pod: String,
        #[serde(default)]
        container: String,
    },
    /// Loads a generated Live Agent database into a release's PostgreSQL and writes the
    /// attachment files into its attachments volume
    Seed {
        namespace: String,
        release: String,
        size_bytes: u64,
        seed: u64,
        database: String,
        user: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    pub message: String,
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("control")
}

/// Sends a request to the sim running on `state_dir` and waits for its reply.
pub fn send(state_dir: &Path, req: &Request, timeout: Duration) -> Result<Reply, String> {
    let d = dir(state_dir);
    std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    let id = uuid::Uuid::new_v4().to_string();
    let tmp = d.join(format!("{id}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(req).expect("serialises"))
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, d.join(format!("req-{id}.json"))).map_err(|e| e.to_string())?;
    let reply = d.join(format!("res-{id}.json"));
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if let Ok(b) = std::fs::read(&reply) {
            let _ = std::fs::remove_file(&reply);
            return serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", reply.display()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "no answer from the sim in {}s; is it running? (la-sim status --state-dir {})",
        timeout.as_secs(),
        state_dir.display()
    ))
}

/// Serves control requests until shutdown.
pub async fn serve(state: Arc<ApiState>) {
    let d = dir(&state.state_dir);
    let _ = std::fs::create_dir_all(&d);
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(id) = name
                .strip_prefix("req-")
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let path = e.path();
            let req: Result<Request, String> = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
            let _ = std::fs::remove_file(&path);
            let st = state.clone();
            let reply_path = d.join(format!("res-{id}.json"));
            tokio::task::spawn_blocking(move || {
                let reply = match req.and_then(|r| handle(&st, r)) {
                    Ok(message) => Reply { ok: true, message },
                    Err(message) => Reply { ok: false, message },
                };
                let tmp = reply_path.with_extension("tmp");
                let _ = std::fs::write(&tmp, serde_json::to_vec(&reply).expect("serialises"));
                let _ = std::fs::rename(tmp, reply_path);
            });
        }
    }
}

fn secret_value(state: &ApiState, ns: &str, name: &str, keys: &[&str]) -> Option<String> {
    let s = state.store.try_get(rt("", "secrets"), ns, name)?;
    keys.iter().find_map(|k| {
        let v = s.pointer(&format!("/data/{k}"))?.as_str()?;
        base64::engine::general_purpose::STANDARD
            .decode(v)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    })
}

fn handle(state: &ApiState, req: Request) -> Result<String, String> {
    match req {
        Request::FaultApi(f) => {
            let msg = format!("the API answers {} for {}s", f.code, f.seconds);
            state.faults.set(f);
            Ok(msg)
        }
        Request::Kill {
            namespace,
            pod,
            container,
        } => {
            let p = state
                .store
                .try_get(rt("", "pods"), &namespace, &pod)
                .ok_or_else(|| format!("pod {namespace}/{pod} not found"))?;
            let names: Vec<String> = if container.is_empty() {
                p["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            } else {
                vec![container]
            };
            for c in &names {
                state.runtime.kill_container(&namespace, &pod, c);
            }
            Ok(format!(
                "killed {} in pod {namespace}/{pod}",
                names.join(", ")
            ))
        }
        Request::Seed {
            namespace,
            release,
            size_bytes,
            seed,
            database,
            user,
        } => {
            let pod_name = format!("{release}-postgresql-0");
            let pod = state.store.try_get(rt("", "pods"), &namespace, &pod_name)
                .ok_or_else(|| format!("pod {namespace}/{pod_name} not found; install the release first (la-sim install)"))?;
            let ip = pod
                .pointer("/status/podIP")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("pod {namespace}/{pod_name} has no IP yet"))?;
            let password = secret_value(
                state,
                &namespace,
                &format!("{release}-postgresql"),
                &["postgresql-password", "postgres-password", "password"],
            )
            .ok_or_else(|| {
                format!("secret {namespace}/{release}-postgresql has no password key")
            })?;
            let psql = std::env::var_os("LA_SIM_PG15_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
                .join("psql");
            let target = crate::seed::PgTarget::new(ip, 5432, &user, &database)
                .with_password(password)
                .with_psql(psql);
            let opts = crate::seed::SeedOptions::new(size_bytes, seed);
            let report = crate::seed::load_into(&target, &opts).map_err(|e| e.to_string())?;
            let pvc = state
                .store
                .try_get(rt("", "persistentvolumeclaims"), &namespace, "live-agent")
                .ok_or_else(|| format!("claim {namespace}/live-agent (attachments) not found"))?;
            let pv_name = pvc
                .pointer("/spec/volumeName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let pv = state
                .store
                .try_get(rt("", "persistentvolumes"), "", pv_name)
                .ok_or_else(|| format!("claim {namespace}/live-agent is not bound"))?;
            let root = pv_host_path(&pv, &state.state_dir);
            let manifest =
                crate::seed::write_attachments(&root, &opts).map_err(|e| e.to_string())?;
            Ok(format!(
                "seeded {namespace}/{database}: {report}; {} attachment files in {} ({})",
                manifest_len(&manifest),
                meta::name(&pv),
                root.display()
            ))
        }
    }
}

fn manifest_len(m: &crate::seed::Manifest) -> usize {
    m.files.len()
}
