//! The operator's choices that shape the plan (flags of `4.44`), resolved and validated.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The PostgreSQL 15 client image that copies, proves and dumps inside the cluster.
pub const DEFAULT_BACKUP_IMAGE: &str = "docker.io/bitnamilegacy/postgresql:15.1.0-debian-11-r12";
/// Cpu of each container the plugin runs in the cluster: its request and its limit.
pub const DEFAULT_TOOLS_CPU: &str = "1";
/// Memory of each container the plugin runs in the cluster: its request and its limit.
pub const DEFAULT_TOOLS_MEMORY: &str = "512Mi";
/// Backup volume size relative to the database size (the guide's rule of thumb).
pub const DEFAULT_BACKUP_SIZE_FACTOR: f64 = 3.0;
/// The smallest backup volume requested, whatever the database size.
pub const MIN_BACKUP_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Options {
    /// `--backup-storage-class`; the cluster default when absent.
    pub backup_storage_class: Option<String>,
    /// `--backup-size-factor`: backup volume = factor x database size.
    pub backup_size_factor: f64,
    /// `--backup-image`
    pub backup_image: String,
    /// `--jobs`: parallel copy and index-build workers.
    pub jobs: u32,
    /// `--local-copy`: also stream the dump to this path on the operator's machine.
    pub local_copy: Option<PathBuf>,
    /// `--keep-passwords`: recreate the database secrets with the new keys and old passwords.
    pub keep_passwords: bool,
    /// `-f/--values FILE` (repeatable): extra values for install and upgrade.
    pub values_overrides: Vec<PathBuf>,
    /// `--set KEY=VALUE` (repeatable): extra values for install and upgrade.
    pub set: Vec<String>,
    /// `--keep-dump`: also keep a dump archive of the source on a volume of its own.
    #[serde(default)]
    pub keep_dump: bool,
    /// `--online`: PostgreSQL 15 filled by logical replication while the app runs.
    #[serde(default)]
    pub online: bool,
    /// `--storage-class`: class of PostgreSQL 15's volume (default: the old one's class).
    #[serde(default)]
    pub storage_class: Option<String>,
    /// `--helm-timeout`: helm's `--timeout` for install, upgrade and uninstall, in seconds.
    pub helm_timeout_seconds: u64,
    /// `--tools-cpu`, `--tools-memory`: the compute resources of the plugin's pods.
    #[serde(default)]
    pub tools_resources: PodResources,
}

/// Cpu and memory of a container the plugin runs: each is both the request and the limit
/// (the pod's QoS is Guaranteed, and a ResourceQuota on requests or limits admits it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodResources {
    pub cpu: String,
    pub memory: String,
}

impl Default for PodResources {
    fn default() -> Self {
        PodResources {
            cpu: DEFAULT_TOOLS_CPU.to_string(),
            memory: DEFAULT_TOOLS_MEMORY.to_string(),
        }
    }
}

/// helm's `--timeout` unless `--helm-timeout` says otherwise: the migration Job of a large
/// database may run for minutes.
pub const DEFAULT_HELM_TIMEOUT_SECONDS: u64 = 600;

impl Default for Options {
    fn default() -> Self {
        Options {
            backup_storage_class: None,
            backup_size_factor: DEFAULT_BACKUP_SIZE_FACTOR,
            backup_image: DEFAULT_BACKUP_IMAGE.to_string(),
            jobs: 2,
            local_copy: None,
            keep_passwords: false,
            values_overrides: Vec::new(),
            set: Vec::new(),
            helm_timeout_seconds: DEFAULT_HELM_TIMEOUT_SECONDS,
            tools_resources: PodResources::default(),
            keep_dump: false,
            online: false,
            storage_class: None,
        }
    }
}
