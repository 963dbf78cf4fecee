//! Pods as real processes. The API side (controllers, the kubelet loop, exec/log endpoints)
//! decides *what* runs; this module decides *how*: which program an image becomes, the pod's
//! network identity and private filesystem view, process lifetime, logs and exec.
//!
//! Contract with the API side:
//! - Every value a container needs is resolved before [`Runtime::start_pod`]: env (incl.
//!   `valueFrom` secrets), volume mounts as host directories, the pod's IP (an address of
//!   [`Runtime::subnet`]).
//! - Name resolution: the API side keeps one hosts file per namespace at
//!   [`hosts_file`]`(state_dir, namespace)` up to date (Service names -> endpoint pod IPs,
//!   in the short, `svc.ns` and `svc.ns.svc.cluster.local` forms), rewriting it in place (same
//!   inode). The runtime makes it the pod's `/etc/hosts`.
//! - Container logs are appended to [`log_file`]`(state_dir, namespace, pod, container)`.
//!
//! Layout: `images.rs` (image -> behaviour, pure), `programs.rs` (behaviour -> argv, env, user,
//! setup, readiness), `rootfs.rs` (the container's filesystem view as data, pure),
//! `sandbox.rs` (namespaces, mounts, `pivot_root`, user, between fork and exec),
//! `container.rs` (scratch space, PostgreSQL initialisation, spawning), `pods.rs`
//! ([`Runtime`]: supervisors, restart policy, stop), `exec.rs`, `readiness.rs`, `standin.rs`
//! (the `db:chatwoot_prepare` stand-in), `spawner.rs` and `podns.rs` (every process forked
//! from one thread, into its pod's PID and network namespaces), `subnet.rs` (the sim's pod
//! subnet, claimed), `network.rs` (bridge and veth pairs), `tools.rs`.
//!
//! Network: each pod has a network namespace of its own, shared by its containers and execs:
//! `lo` (so `127.0.0.1` and `localhost` are the pod itself) and `eth0` with the pod's address,
//! one end of a veth pair whose other end is on the sim's bridge. The bridge holds the
//! gateway address of a `/24` of `10.240.0.0/12` that the running sim claimed, so pods reach
//! each other, and the host (readiness checks, tests) reaches every pod, by address. Servers
//! listen on every address, as in their images, so two pods may use one port; PostgreSQL also
//! listens on its Unix socket, as the images do (`/tmp`, and `/run/postgresql` where the
//! Debian-built client tools look).

mod container;
mod error;
mod exec;
pub mod identity;
mod images;
mod network;
mod podns;
mod pods;
mod programs;
mod readiness;
mod rootfs;
mod sandbox;
mod spawner;
mod standin;
mod subnet;
mod tools;

pub use error::{Context, Error, Result};
pub use exec::ExecChild;
pub use images::{behaviour, Behaviour, ClientTools, PgFlavour, PgMajor};
pub use pods::Runtime;
pub use subnet::Subnet;
pub use tools::Tools;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// One container of a pod, fully resolved.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    /// Resolved environment (literal values and `valueFrom` already looked up)
    pub env: Vec<(String, String)>,
    /// (host directory or file, path inside the container, read-only)
    pub mounts: Vec<Mount>,
    /// `runAsUser`, `runAsGroup`, `runAsNonRoot` (the container's over the pod's)
    pub run_as: identity::RunAs,
}

#[derive(Debug, Clone)]
pub struct Mount {
    pub host_path: PathBuf,
    pub container_path: String,
    pub read_only: bool,
}

/// A pod, fully resolved.
#[derive(Debug, Clone)]
pub struct PodSpec {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The pod's address, from the runtime's [`Subnet`]
    pub ip: Ipv4Addr,
    /// `hostname` / `subdomain` as Kubernetes sets them (StatefulSet pods)
    pub hostname: String,
    pub init_containers: Vec<ContainerSpec>,
    pub containers: Vec<ContainerSpec>,
    /// `Always`, `OnFailure`, `Never`
    pub restart_policy: String,
    /// Extra groups of every process: `fsGroup`, then `supplementalGroups`
    pub groups: Vec<u32>,
}

/// What the kubelet loop reports into pod status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Waiting {
        reason: String,
        message: String,
    },
    Running {
        ready: bool,
    },
    Terminated {
        exit_code: i32,
        reason: String,
        message: String,
    },
}

/// A pod's `/etc/resolv.conf` (beside the helpers): no name server but the pod's own
/// loopback, so a name missing from the hosts file fails at once, as a cluster DNS answers
/// NXDOMAIN, instead of waiting on the host's resolver, which pods cannot reach.
const RESOLV_CONF: &str = "resolv.conf";

pub fn hosts_file(state_dir: &Path, namespace: &str) -> PathBuf {
    state_dir.join("net").join(format!("hosts-{namespace}"))
}

pub fn log_file(state_dir: &Path, namespace: &str, pod: &str, container: &str) -> PathBuf {
    state_dir
        .join("pods")
        .join(namespace)
        .join(pod)
        .join(format!("{container}.log"))
}
