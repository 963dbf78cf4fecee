//! A running simulated cluster: API server, controllers and kubelet over one store, with its
//! state directory (kubeconfig, CA, identities, volumes, pod logs).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::auth::{self, Identity, Rule};
use crate::api::{self, faults::Faults, kubeconfig, ApiState};
use crate::controllers::{self, kubelet::PodRuntime, snapshot::rt};
use crate::store::Store;

pub struct Options {
    pub state_dir: PathBuf,
    /// 0 picks a free port
    pub port: u16,
    /// Run pods as real processes (false: every pod is Ready at once and runs nothing)
    pub real_runtime: bool,
    /// How many past changes a watch can resume from
    pub watch_cache_size: usize,
}

pub struct Cluster {
    pub state_dir: PathBuf,
    pub address: String,
    pub kubeconfig: PathBuf,
    pub store: Arc<Store>,
    pub state: Arc<ApiState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    ca_pem: String,
}

fn bootstrap(store: &Store) {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let mut obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        api::defaults::on_create(rt("", "namespaces"), &mut obj, store);
        let _ = store.create(rt("", "namespaces"), "", obj);
    }
    let _ = store.create(
        rt("storage.k8s.io", "storageclasses"),
        "",
        json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "la-sim.local/hostpath", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
            "allowVolumeExpansion": true,
        }),
    );
    let _ = store.create(
        rt("", "nodes"),
        "",
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "la-sim", "labels": {"kubernetes.io/hostname": "la-sim", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                       "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                       "nodeInfo": {"kubeletVersion": "v1.31.0", "architecture": "amd64", "operatingSystem": "linux"}},
        }),
    );
    let _ = store.create(
        rt("", "services"),
        "default",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"},
               "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}], "type": "ClusterIP"}}),
    );
}

impl Cluster {
    pub async fn start(opts: Options) -> Result<Cluster, String> {
        let state_dir = std::fs::canonicalize(&opts.state_dir)
            .or_else(|_| {
                std::fs::create_dir_all(&opts.state_dir)?;
                std::fs::canonicalize(&opts.state_dir)
            })
            .map_err(|e| format!("state directory {}: {e}", opts.state_dir.display()))?;
        for d in ["net", "pods", "volumes"] {
            std::fs::create_dir_all(state_dir.join(d))
                .map_err(|e| format!("{}: {e}", state_dir.join(d).display()))?;
        }
        let runtime: Arc<dyn PodRuntime> = if opts.real_runtime {
            let tools = crate::runtime::Tools::discover().map_err(|e| e.to_string())?;
            Arc::new(crate::runtime::Runtime::new(&state_dir, tools).map_err(|e| e.to_string())?)
        } else {
            Arc::new(controllers::kubelet::NoopRuntime::default())
        };
        let tls = api::tls::generate()?;
        std::fs::write(state_dir.join("ca.crt"), &tls.ca_pem)
            .map_err(|e| format!("writing ca.crt: {e}"))?;
        let mut ids = auth::load(&state_dir)?;
        if !ids.iter().any(|i| i.name == "admin") {
            ids.push(Identity {
                name: "admin".into(),
                token: auth::new_token(),
                rules: vec![Rule::admin()],
            });
            auth::save(&state_dir, &ids)?;
        }
        let (listener, addr) = api::bind(opts.port)
            .await
            .map_err(|e| format!("binding 127.0.0.1:{}: {e}", opts.port))?;
        let address = addr.to_string();
        for id in &ids {
            let content = kubeconfig::render(&address, &tls.ca_pem, &id.name, &id.token, "default");
            kubeconfig::write(&kubeconfig::path(&state_dir, &id.name), &content)
                .map_err(|e| format!("writing kubeconfig: {e}"))?;
        }
        let store = Arc::new(Store::with_watch_cache_size(opts.watch_cache_size));
        bootstrap(&store);
        let (shutdown, rx) = watch::channel(false);
        let state = Arc::new(ApiState {
            store: store.clone(),
            auth: auth::Auth::new(&state_dir),
            faults: Faults::default(),
            runtime: runtime.clone(),
            state_dir: state_dir.clone(),
            address: address.clone(),
            shutdown: rx.clone(),
        });
        let tasks = vec![
            tokio::spawn(api::serve(listener, tls.config.clone(), state.clone())),
            tokio::spawn(controllers::run(
                store.clone(),
                state_dir.clone(),
                rx.clone(),
            )),
            tokio::spawn(controllers::kubelet::run(
                store.clone(),
                runtime,
                state_dir.clone(),
                rx,
            )),
        ];
        Ok(Cluster {
            kubeconfig: kubeconfig::path(&state_dir, "admin"),
            state_dir,
            address,
            store,
            state,
            shutdown,
            tasks,
            ca_pem: tls.ca_pem,
        })
    }

    /// Adds (or replaces) an identity with the given rules; returns its kubeconfig path.
    pub fn add_identity(&self, name: &str, rules: Vec<Rule>) -> Result<PathBuf, String> {
        add_identity(&self.state_dir, &self.address, &self.ca_pem, name, rules)
    }

    /// Stops the API server, controllers and every pod process; waits until all are gone.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Adds an identity to a state directory (also while the server runs: it re-reads the file).
pub fn add_identity(
    state_dir: &Path,
    address: &str,
    ca_pem: &str,
    name: &str,
    rules: Vec<Rule>,
) -> Result<PathBuf, String> {
    let mut ids = auth::load(state_dir)?;
    ids.retain(|i| i.name != name);
    let token = auth::new_token();
    ids.push(Identity {
        name: name.into(),
        token: token.clone(),
        rules,
    });
    auth::save(state_dir, &ids)?;
    let path = kubeconfig::path(state_dir, name);
    kubeconfig::write(
        &path,
        &kubeconfig::render(address, ca_pem, name, &token, "default"),
    )
    .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}
