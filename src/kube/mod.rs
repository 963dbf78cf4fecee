//! The one door to the Kubernetes API.
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
