//! What the tests read and change through kubectl and helm: claims, volumes, Secrets,
//! replicas, the plugin's state ConfigMap, identities with fewer permissions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{helm, kubectl_bin, text, Sim, NAMESPACE, RELEASE};

impl Sim {
    pub fn claim_volume(&self, claim: &str) -> String {
        self.kubectl(&["get", "pvc", claim, "-o", "jsonpath={.spec.volumeName}"])
            .trim()
            .to_string()
    }

    /// The directory on disk behind a PersistentVolume.
    pub fn volume_dir(&self, volume: &str) -> PathBuf {
        let pv: Value = serde_json::from_str(&self.kubectl(&["get", "pv", volume, "-o", "json"]))
            .expect("pv json");
        for p in ["/spec/hostPath/path", "/spec/local/path"] {
            if let Some(path) = pv.pointer(p).and_then(Value::as_str) {
                return PathBuf::from(path);
            }
        }
        self.state_dir().join("volumes").join(volume)
    }

    /// One decoded value of a Secret (empty when the key is missing).
    pub fn secret_value(&self, secret: &str, key: &str) -> String {
        self.kubectl(&[
            "get",
            "secret",
            secret,
            "-o",
            &format!("go-template={{{{index .data \"{key}\" | base64decode}}}}"),
        ])
    }

    /// The data of the Secrets the chart keeps on uninstall.
    pub fn kept_secrets(&self) -> BTreeMap<String, Value> {
        [
            format!("{RELEASE}-cookies-integrity"),
            format!("{RELEASE}-cognigy-platform-app-token"),
        ]
        .into_iter()
        .map(|name| {
            let s: Value =
                serde_json::from_str(&self.kubectl(&["get", "secret", &name, "-o", "json"]))
                    .expect("secret json");
            (name, s["data"].clone())
        })
        .collect()
    }

    /// Replicas of the app and worker Deployments (either chart's names).
    pub fn replicas(&self) -> BTreeMap<String, i64> {
        let list: Value =
            serde_json::from_str(&self.kubectl(&["get", "deployments", "-o", "json"])).unwrap();
        let mut out = BTreeMap::new();
        for d in list["items"].as_array().unwrap() {
            let name = d["metadata"]["name"].as_str().unwrap();
            let role = match name.strip_prefix(RELEASE) {
                Some("") | Some("-app") => "app",
                Some("-worker") => "worker",
                Some("-odata") => "odata",
                _ => continue,
            };
            out.insert(
                role.to_string(),
                d["spec"]["replicas"].as_i64().unwrap_or(1),
            );
        }
        out
    }

    pub fn kubectl_unchecked(&self, args: &[&str]) -> Output {
        // The namespace first: anything after `--` (exec) belongs to the command.
        Command::new(kubectl_bin())
            .args(["-n", NAMESPACE])
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null())
            .output()
            .expect("running kubectl")
    }

    /// Writes `manifest` (YAML or JSON) to `file` in the state directory and applies it
    /// with kubectl in the release's namespace.
    pub fn apply(&self, file: &str, manifest: &str) -> String {
        let path = self.state_dir().join(file);
        std::fs::write(&path, manifest).unwrap();
        self.kubectl(&["apply", "-f", path.to_str().unwrap()])
    }

    /// kubectl in the release's namespace; panics with its output on failure.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_unchecked(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// helm (the spec's version) against this sim, in a home inside the state directory.
    pub fn helm(&self, args: &[&str]) -> String {
        let out = Command::new(helm(self.spec.helm_version))
            .args(args)
            .args(["-n", NAMESPACE])
            .envs(self.helm_home_env())
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null())
            .output()
            .expect("running helm");
        assert!(
            out.status.success(),
            "helm {} failed: {}",
            args.join(" "),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    pub(super) fn helm_home_env(&self) -> Vec<(String, PathBuf)> {
        let h = self.state_dir().join("helm-home");
        vec![
            ("HOME".into(), h.clone()),
            ("HELM_CACHE_HOME".into(), h.join("cache")),
            ("HELM_CONFIG_HOME".into(), h.join("config")),
            ("HELM_DATA_HOME".into(), h.join("data")),
            ("HELM_PLUGINS".into(), h.join("data/plugins")),
        ]
    }

    /// Every object the migration could touch, as JSON, without fields that change on their
    /// own (status, timestamps of the pods' processes): two dumps are equal when nothing
    /// was changed through the API.
    pub fn dump_objects(&self) -> String {
        let kinds = "deployments,statefulsets,services,secrets,configmaps,persistentvolumeclaims,pods,jobs,serviceaccounts,ingresses";
        let ns = self.kubectl(&["get", kinds, "-o", "json"]);
        let pv = self.kubectl(&["get", "pv,storageclasses", "-o", "json"]);
        let mut out = String::new();
        for doc in [ns, pv] {
            let v: Value = serde_json::from_str(&doc).unwrap();
            for item in v["items"].as_array().unwrap() {
                out.push_str(&format!(
                    "{}/{} rv={} {}\n",
                    item["kind"].as_str().unwrap_or(""),
                    item["metadata"]["name"].as_str().unwrap_or(""),
                    item["metadata"]["resourceVersion"].as_str().unwrap_or(""),
                    serde_json::to_string(&item["spec"]).unwrap()
                ));
            }
        }
        out
    }

    /// Makes an identity limited to `rules` (JSON) and returns its kubeconfig.
    pub fn identity(&self, name: &str, rules: &str) -> PathBuf {
        let file = self.state_dir().join(format!("{name}-rules.json"));
        std::fs::write(&file, rules).unwrap();
        let out = self.cluster.la_sim(
            "identity",
            &["--name", name, "--rules", file.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "la-sim identity: {}",
            text(&out.stderr)
        );
        PathBuf::from(text(&out.stdout).trim())
    }

    /// The state ConfigMap's record (`record.json`) of facts for later steps.
    pub fn state_record(&self) -> Value {
        let out = self.kubectl(&[
            "get",
            "configmap",
            &format!("la-migrate-{RELEASE}"),
            "-o",
            "jsonpath={.data.record\\.json}",
        ]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("record.json: {e}: {out}"))
    }

    /// The state ConfigMap's record of completed steps, empty when none.
    pub fn steps_done(&self) -> String {
        let out = self.kubectl_unchecked(&[
            "get",
            "configmap",
            &format!("la-migrate-{RELEASE}"),
            "-o",
            "jsonpath={.data.steps\\.json}",
        ]);
        text(&out.stdout)
    }

    /// Waits until the pod is Ready.
    pub fn wait_pod_ready(&self, pod: &str) {
        self.wait_until(
            &format!("pod {pod} to be Ready"),
            Duration::from_secs(120),
            || {
                self.kubectl_unchecked(&[
                    "get",
                    "pod",
                    pod,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ])
                .stdout
                    == b"True"
            },
        );
    }
}
