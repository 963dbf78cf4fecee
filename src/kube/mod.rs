//! The door to the Kubernetes API: the client (`client`, each request through the `fence`),
//! the reads and writes of the phases (`ops`), commands in pods (`exec`) and waits (`wait`).
//! The state's ConfigMap is the one object read and written elsewhere, by `state::Store` on the
//! same client, with the resourceVersion checks its lock needs.
//!
//! `client` turns the resolved [`crate::settings::KubeSettings`] into a `kube::Client` the
//! way helm and kubectl would: the kubeconfig files named by `KUBECONFIG` (merged), the
//! context chosen with `--kube-context`, then helm's `--kube-*` overrides.

pub mod client;
pub mod config_map;
pub mod exec;
pub mod fence;
pub mod ops;
pub mod wait;

pub use client::{connect, load_config, Connection};
