//! What preflight found in the cluster and the target chart: plain data, read-only, gathered
//! once. `plan::build` turns it into a plan without further I/O, so every decision can be
//! tested on an inline fixture.

use serde::{Deserialize, Serialize};

/// Everything the plan is built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub namespace: String,
    pub release: ReleaseFacts,
    pub target: TargetFacts,
    /// Names of the objects of the old and the new chart, derived by `crate::naming`.
    pub names: Names,
    pub postgres: PostgresFacts,
    pub redis: RedisFacts,
    /// The app, worker and odata Deployments of the old chart that exist.
    pub workloads: Vec<WorkloadFacts>,
    /// The release's claims and the volumes bound to them.
    pub volumes: Vec<VolumeFacts>,
    /// Secrets the migration deletes, recreates or must leave alone (those that exist).
    pub secrets: Vec<SecretFacts>,
    pub storage: StorageFacts,
    /// One entry per API action the plan performs.
    pub permissions: Vec<PermissionFacts>,
    /// Whether the old release runs odata (`odata.enabled`).
    pub odata_enabled: bool,
    /// What the values translation reported (left-over keys, renamed defaults).
    pub values_notes: Vec<String>,
    /// `--online`: what PostgreSQL 11 says about logical replication (read only then).
    #[serde(default)]
    pub online: Option<super::online::OnlineFacts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseFacts {
    pub name: String,
    /// helm's status: `deployed`, `failed`, `pending-upgrade`, ...
    pub status: String,
    pub chart_version: String,
    pub revision: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetFacts {
    /// The chart argument as helm takes it (reference or local path).
    pub chart: String,
    /// Whether helm needs `--version` (remote charts).
    pub remote: bool,
    /// The version asked for (`--version` or the default).
    pub version: String,
    /// Whether `--version` was given.
    #[serde(default)]
    pub version_given: bool,
    /// What the chart's `Chart.yaml` says: its version and its Bitnami subcharts' versions.
    #[serde(default)]
    pub chart_version: String,
    #[serde(default)]
    pub postgresql_subchart: Option<String>,
    #[serde(default)]
    pub redis_subchart: Option<String>,
    /// Every image the rendered target chart pulls, with the install overrides applied.
    pub images: Vec<String>,
    /// The target chart's PostgreSQL StatefulSet as rendered with the release's values
    /// (`None` with an external database).
    #[serde(default)]
    pub postgres: Option<super::target_postgres::TargetPostgres>,
}

/// Object names of both chart generations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    pub old_app_deployment: String,
    pub new_app_deployment: String,
    pub worker_deployment: String,
    pub odata_deployment: String,
    pub postgres_pod: String,
    pub postgres_service: String,
    pub postgres_claim: String,
    pub postgres_secret: String,
    pub redis_master_pod: String,
    /// The Redis master Service: in-pod commands reach the server by this name.
    pub redis_master_service: String,
    pub redis_secret: String,
    pub attachments_claim: String,
    pub migration_job: String,
    /// Secrets the chart keeps on uninstall; never touched.
    pub kept_secrets: Vec<String>,
}

/// The source database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum PostgresFacts {
    /// The chart's PostgreSQL 11: dumped, replaced and restored.
    Internal {
        /// The Secret and key holding the application user's password.
        secret: String,
        password_key: String,
        /// Whether the Secret is the user's (`existingSecret`) rather than the chart's.
        existing_secret: bool,
        username: String,
        database: String,
        /// `pg_database_size` of the database.
        size_bytes: u64,
        server_version: String,
    },
    /// A database outside the release: its data stays where it is.
    External { host: String, port: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum RedisFacts {
    Internal {
        secret: String,
        password_key: String,
        existing_secret: bool,
        /// Every claim of the master and the replicas.
        claims: Vec<String>,
    },
    External {
        host: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadRole {
    App,
    Worker,
    Odata,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadFacts {
    pub role: WorkloadRole,
    pub name: String,
    pub replicas: i32,
    /// The Deployment's pod selector, `k=v,k=v`.
    pub selector: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeRole {
    /// Uploaded files (claim `live-agent`): must survive.
    Attachments,
    /// The PostgreSQL 11 data directory: replaced.
    Postgres,
    /// Redis 6 data: replaced.
    Redis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeFacts {
    pub role: VolumeRole,
    pub claim: String,
    /// The bound PersistentVolume (none while the claim is pending).
    pub volume: Option<String>,
    pub reclaim_policy: Option<String>,
    pub storage_class: Option<String>,
    pub capacity_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretRole {
    /// The chart's PostgreSQL Secret with the old keys.
    Postgres,
    /// The chart's Redis Secret.
    Redis,
    /// Kept by the chart on uninstall (`helm.sh/resource-policy: keep`).
    Kept,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretFacts {
    pub role: SecretRole,
    pub name: String,
    /// The data keys (never the values).
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StorageFacts {
    /// The StorageClass marked `storageclass.kubernetes.io/is-default-class`.
    pub default_class: Option<String>,
    pub classes: Vec<String>,
    /// ResourceQuotas limiting storage requests in the namespace.
    pub quotas: Vec<QuotaFacts>,
}

/// Room left under a ResourceQuota's storage limit (`requests.storage`, or the per-class one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaFacts {
    pub name: String,
    /// `None` for `requests.storage`; the class for `<class>.storageclass.storage.k8s.io/...`.
    pub storage_class: Option<String>,
    pub hard_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionFacts {
    pub verb: String,
    /// API group; empty for the core group.
    pub group: String,
    pub resource: String,
    /// Cluster-scoped resources (PersistentVolumes, StorageClasses) carry no namespace.
    pub namespaced: bool,
    pub allowed: bool,
}
