//! The migration as data. Preflight gathers [`Facts`] (read-only I/O); [`build`] turns them
//! and the operator's [`Options`] into a [`Plan`] (pure); `--dry-run` prints the plan as a
//! runbook or JSON, the executor (`crate::phases`) runs the same steps and the state records
//! each one done. Nothing decides twice.

mod build;
pub mod cleanup;
pub mod commands;
pub mod facts;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod helm_release;
pub mod manifests;
pub mod options;
pub mod permissions;
pub mod quantity;
pub mod runbook;
pub mod scripts;

use serde::{Deserialize, Serialize};

pub use build::build;
pub use facts::Facts;
pub use options::Options;

/// Mount point of the backup volume in the dump and restore pods.
pub const BACKUP_MOUNT: &str = "/backup";
/// The directory-format archive on the backup volume.
pub const DUMP_DIR: &str = "/backup/dump";

/// A phase of the migration; each can be run alone (`helm la-migrate 4.44 <phase>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Backup,
    Uninstall,
    Install,
    Restore,
    Upgrade,
    Finalize,
    Verify,
    Cleanup,
}

impl Phase {
    pub const MIGRATION: [Phase; 7] = [
        Phase::Backup,
        Phase::Uninstall,
        Phase::Install,
        Phase::Restore,
        Phase::Upgrade,
        Phase::Finalize,
        Phase::Verify,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Backup => "backup",
            Phase::Uninstall => "uninstall",
            Phase::Install => "install",
            Phase::Restore => "restore",
            Phase::Upgrade => "upgrade",
            Phase::Finalize => "finalize",
            Phase::Verify => "verify",
            Phase::Cleanup => "cleanup",
        }
    }
}

/// A database the plugin connects to from inside the cluster. Never holds a password: the
/// pods read it from `secret`/`key` through `secretKeyRef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbEndpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    pub secret: String,
    pub key: String,
}

/// The in-cluster backup: a volume, and one pod per direction mounting it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupPlan {
    pub claim: String,
    pub dump_pod: String,
    pub restore_pod: String,
    /// `None` = the cluster's default class.
    pub storage_class: Option<String>,
    pub size_bytes: u64,
    pub image: String,
    pub jobs: u32,
    pub source: DbEndpoint,
    pub target: DbEndpoint,
    /// Cpu and memory of the dump and restore pods (`--tools-cpu`, `--tools-memory`).
    #[serde(default)]
    pub resources: options::PodResources,
}

/// A Kubernetes object named in the plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: String,
    pub name: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
}

impl ObjectRef {
    pub fn namespaced(kind: &str, namespace: &str, name: &str) -> Self {
        ObjectRef {
            kind: kind.to_string(),
            name: name.to_string(),
            namespace: Some(namespace.to_string()),
        }
    }
    pub fn cluster(kind: &str, name: &str) -> Self {
        ObjectRef {
            kind: kind.to_string(),
            name: name.to_string(),
            namespace: None,
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// A volume whose reclaim policy the plan sets to Retain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetainVolume {
    pub volume: String,
    pub claim: String,
    pub policy: String,
}

/// What a step does. The executor matches on it; the runbook prints its commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Store the release's values (original and translated) in the values Secret.
    SaveValues {
        secret: String,
    },
    /// Record the app, worker and odata replica counts in the state.
    RecordReplicas {
        deployments: Vec<String>,
    },
    /// Scale to 0 and wait until their pods are gone.
    ScaleDown {
        deployments: Vec<String>,
        selectors: Vec<String>,
    },
    /// Create the backup claim and the dump pod.
    BackupVolume,
    /// Run `pg_dump` detached inside the dump pod; reattach on rerun.
    Dump,
    /// Archive readable and complete, SHA-256, row counts and hashes from the source.
    VerifyBackup,
    /// Stream the archive to the operator's disk.
    LocalCopy {
        path: String,
    },
    /// The point of no return: show what will be deleted, require confirmation.
    Confirm {
        deletes: Vec<ObjectRef>,
    },
    RetainVolumes {
        volumes: Vec<RetainVolume>,
    },
    HelmUninstall,
    /// Point the attachments volume's claimRef at the claim the new chart creates.
    RebindAttachments {
        volume: String,
        claim: String,
    },
    DeleteClaims {
        claims: Vec<String>,
    },
    /// Delete the chart's database secrets, or recreate them with the new keys.
    ReplaceSecrets {
        secrets: Vec<String>,
        keep_passwords: bool,
    },
    /// Install the target chart with app and worker at 0, odata and migration off.
    HelmInstall,
    /// Wait until PostgreSQL 15 and Redis are ready.
    WaitDatabases {
        pods: Vec<String>,
    },
    /// `pg_restore` into a recreated database, from the restore pod.
    Restore,
    /// Compare the restored database with the backup's record.
    VerifyRestore,
    /// Migration on, replicas and odata back as recorded.
    HelmUpgrade,
    /// Wait for the Deployments to be ready.
    WaitApp {
        deployments: Vec<String>,
    },
    /// Delete the onboarding key in Redis.
    ClearOnboarding {
        pod: String,
        /// The master Service: `127.0.0.1` is not the server on every network setup. Empty
        /// in a state written before this field existed: redis-cli's default then.
        #[serde(default)]
        host: String,
    },
    /// Deployments ready, attachments bound to the original volume, row counts equal.
    Verify,
    /// Remove the backup pods, claim and the values Secret.
    RemoveBackup {
        objects: Vec<ObjectRef>,
    },
    /// Delete the Released volumes of the old PostgreSQL and Redis.
    DeleteReleasedVolumes {
        volumes: Vec<String>,
    },
    /// Set the attachments volume's reclaim policy back to what it was.
    RestoreReclaimPolicy {
        volume: String,
        policy: String,
    },
}

/// One step: an id the state records, what it does, and how an operator would do it by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Stable id, `<phase>.<name>`, recorded in the state when done.
    pub id: String,
    pub phase: Phase,
    pub title: String,
    /// Deletes or replaces something that a rerun cannot bring back.
    pub destructive: bool,
    pub action: Action,
    /// The equivalent commands (helm/kubectl) an operator could paste; no secrets.
    pub commands: Vec<String>,
}

/// The whole migration for one release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub release: String,
    pub namespace: String,
    pub from_version: String,
    pub to_version: String,
    pub chart: String,
    pub chart_remote: bool,
    /// `internal` (dump, replace, restore) or `external` (the data stays put).
    pub database: String,
    pub backup: Option<BackupPlan>,
    /// Replica counts found by preflight; the executor records the live ones before scaling.
    pub replicas: Vec<facts::WorkloadFacts>,
    pub odata_enabled: bool,
    /// The attachments volume and its claim, kept across the migration.
    pub attachments: Option<RetainVolume>,
    pub deletes: Vec<ObjectRef>,
    /// Objects the plan never touches (the kept secrets).
    pub keeps: Vec<ObjectRef>,
    pub values_secret: String,
    pub state_config_map: String,
    pub images: Vec<String>,
    /// The operator's extra values for install and upgrade as helm arguments (`-f FILE`,
    /// `--set KEY=VALUE`, secret values redacted; stored as `--set KEY=<saved>`); their content is kept
    /// in the values Secret.
    #[serde(default)]
    pub overrides: Vec<String>,
    /// helm's `--timeout` for install, upgrade and uninstall (`--helm-timeout` of the first
    /// run): also how long a pending release operation is waited for.
    #[serde(default = "default_helm_timeout")]
    pub helm_timeout_seconds: u64,
    /// The flags that fix the plan, as the first run resolved them, and a local chart's
    /// SHA-256 (`resume.rs`): a resumed run is checked against them.
    #[serde(default)]
    pub recorded_flags: std::collections::BTreeMap<String, String>,
    pub warnings: Vec<String>,
    pub steps: Vec<Step>,
}

fn default_helm_timeout() -> u64 {
    options::DEFAULT_HELM_TIMEOUT_SECONDS
}

impl Plan {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub fn steps_of(&self, phase: Phase) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(move |s| s.phase == phase)
    }

    /// What the first step whose action `pick` accepts says, e.g. the pods `WaitDatabases`
    /// waits for.
    pub fn find_action<T>(&self, pick: impl Fn(&Action) -> Option<T>) -> Option<T> {
        self.steps.iter().find_map(|s| pick(&s.action))
    }

    /// The PostgreSQL and Redis pods the install waits for.
    pub fn database_pods(&self) -> Vec<String> {
        self.find_action(|a| match a {
            Action::WaitDatabases { pods } => Some(pods.clone()),
            _ => None,
        })
        .unwrap_or_default()
    }

    /// The Deployments the upgrade waits for.
    pub fn app_deployments(&self) -> Vec<String> {
        self.find_action(|a| match a {
            Action::WaitApp { deployments } => Some(deployments.clone()),
            _ => None,
        })
        .unwrap_or_default()
    }
}

/// Names of the plugin's own objects for a release (all start with `la-migrate-`).
pub mod own_names {
    pub fn state(release: &str) -> String {
        format!("la-migrate-{release}")
    }
    pub fn values_secret(release: &str) -> String {
        format!("la-migrate-{release}-values")
    }
    pub fn backup_claim(release: &str) -> String {
        format!("la-migrate-{release}-backup")
    }
    pub fn dump_pod(release: &str) -> String {
        format!("la-migrate-{release}-dump")
    }
    pub fn restore_pod(release: &str) -> String {
        format!("la-migrate-{release}-restore")
    }
    /// Label on every object the plugin creates.
    pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "la-migrate");
    pub const RELEASE_LABEL: &str = "la-migrate.cognigy.com/release";
}
