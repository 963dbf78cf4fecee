//! `la-migrate`: the Cognigy Live Agent 4.44 Helm-dependency migration as a helm plugin.
//!
//! Layout: `cli` (flags) -> `settings` (one resolved value) -> `commands` (one file per
//! command, a call into the library). Pure logic (`values`, `plan`) never does I/O; side
//! effects go through one door each: `helm` for `$HELM_BIN`, `kube` for the Kubernetes API
//! (`state` for its own ConfigMap), `output` for what commands print.

pub mod cli;
pub mod commands;
pub mod error;
pub mod exit;
pub mod helm;
pub mod hint;
pub mod kube;
pub mod local_file;
pub mod lock;
pub mod logging;
pub mod naming;
pub mod output;
pub mod phases;
pub mod plan;
pub mod redact;
pub mod replicas;
pub mod resume;
pub mod settings;
pub mod state;
pub mod values;
pub mod verify;
