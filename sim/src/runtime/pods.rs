//! [`Runtime`]: the runtime's entry point, called by the kubelet loop and the exec endpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{Error, Result};
use super::exec::ExecChild;
use super::tools::Tools;
use super::{ContainerState, PodSpec};

/// Runs pods as real processes. Cheap to clone (an `Arc` inside), `Send + Sync`.
///
/// Every process it starts is in its own process group with `PR_SET_PDEATHSIG(SIGKILL)`, so
/// nothing outlives the sim process; [`Runtime::shutdown`] stops everything and waits.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    state_dir: PathBuf,
    tools: Tools,
}

impl Runtime {
    /// A runtime keeping pod scratch space and logs under `state_dir`.
    pub fn new(state_dir: &Path, tools: Tools) -> Result<Self> {
        Ok(Runtime {
            inner: Arc::new(Inner {
                state_dir: state_dir.to_path_buf(),
                tools,
            }),
        })
    }

    /// Starts a pod: its init containers one after another (each must exit 0), then its
    /// containers. Returns at once; progress shows in [`Runtime::pod_state`]. Starting a pod
    /// that already runs (same namespace and name) is an error: stop it first.
    pub fn start_pod(&self, pod: &PodSpec) -> Result<()> {
        let _ = (&self.inner.state_dir, &self.inner.tools, pod);
        Err(Error::new("start_pod: not implemented yet"))
    }

    /// State of every init container and container of a pod, in spec order (init containers
    /// first); empty for an unknown pod.
    pub fn pod_state(&self, namespace: &str, name: &str) -> Vec<(String, ContainerState)> {
        let _ = (namespace, name);
        Vec::new()
    }

    /// Stops a pod: SIGTERM to every process group, SIGKILL after the grace period; waits
    /// until all its processes are gone. Unknown pods are ignored.
    pub fn stop_pod(&self, namespace: &str, name: &str) {
        let _ = (namespace, name);
    }

    /// Runs `argv` inside a running container's view (its `/etc/hosts`, volumes, `/tmp`, env,
    /// `PATH`), as `kubectl exec` does. Needs a Tokio runtime (the child is a Tokio child).
    pub fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[String],
        tty: bool,
    ) -> Result<ExecChild> {
        let _ = (namespace, pod, container, argv, tty);
        Err(Error::new("exec: not implemented yet"))
    }

    /// Fault injection: kills a container's processes with SIGKILL; the pod's restart policy
    /// then applies as for a crash.
    pub fn kill_container(&self, namespace: &str, pod: &str, container: &str) {
        let _ = (namespace, pod, container);
    }

    /// Stops every pod and waits for all processes to end.
    pub fn shutdown(&self) {}
}
