//! The migration as data. Preflight gathers [`Facts`] (read-only I/O); [`build`] turns them
//! and the operator's [`Options`] into a [`Plan`] (pure); `--dry-run` prints the plan as a
//! runbook or JSON, the executor (`crate::phases`) runs the same steps and the state records
//! each one done. Nothing decides twice.

mod build;
pub mod cleanup;
pub mod commands;
pub mod copy_script;
pub mod facts;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod helm_release;
pub mod manifests;
pub mod online;
pub mod options;
pub mod permissions;
pub mod quantity;
pub mod replication;
pub mod rollback;
pub mod runbook;
pub mod scripts;
pub mod select;
pub mod target_postgres;
pub mod trust;

use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

pub use build::build;
pub use facts::Facts;
pub use options::Options;

/// Mount point of the backup volume in the dump pod (`--keep-dump`).
pub const BACKUP_MOUNT: &str = "/backup";
/// The directory-format archive on the backup volume.
pub const DUMP_DIR: &str = "/backup/dump";
/// The copy pod's scratch directory (an emptyDir): the copy's schema archive, logs and markers.
pub const COPY_DIR: &str = "/work";

/// A phase of the migration; each can be run alone (`helm la-migrate 4.44 <phase>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The app runs: values saved, PostgreSQL 15 started beside PostgreSQL 11.
    Prepare,
    /// The app runs (`--online`): PostgreSQL 15 filled by logical replication and proven.
    Replicate,
    /// The app is off: the data copied and proven (online: caught up, sequences synced,
    /// proven, replication dropped).
    Copy,
    /// The point of no return: uninstall, the new volume rebound, one install.
    Cutover,
    Finalize,
    Verify,
    Cleanup,
    /// Back to the original release (`helm la-migrate 4.44 rollback`), from any step.
    Rollback,
}

impl Phase {
    pub const MIGRATION: [Phase; 6] = [
        Phase::Prepare,
        Phase::Replicate,
        Phase::Copy,
        Phase::Cutover,
        Phase::Finalize,
        Phase::Verify,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Prepare => "prepare",
            Phase::Replicate => "replicate",
            Phase::Copy => "copy",
            Phase::Cutover => "cutover",
            Phase::Finalize => "finalize",
            Phase::Verify => "verify",
            Phase::Cleanup => "cleanup",
            Phase::Rollback => "rollback",
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

/// A dump archive of the source on a volume of its own (`--keep-dump`), taken while the app
/// is off, before the copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupPlan {
    pub claim: String,
    pub dump_pod: String,
    /// `None` = the cluster's default class.
    pub storage_class: Option<String>,
    pub size_bytes: u64,
    pub image: String,
    pub jobs: u32,
    pub source: DbEndpoint,
    /// Cpu and memory of the dump pod (`--tools-cpu`, `--tools-memory`).
    #[serde(default)]
    pub resources: options::PodResources,
}

/// PostgreSQL 15 beside PostgreSQL 11: its claim, the pod running the target chart's own
/// PostgreSQL container on it, and the copy pod that fills it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDatabasePlan {
    /// The claim the new database starts on; its volume is pre-bound to `release_claim` at
    /// the cut-over.
    pub claim: String,
    pub storage_class: Option<String>,
    pub size_bytes: u64,
    /// The pod: the target chart's PostgreSQL StatefulSet template on `claim`.
    pub pod: Pod,
    /// A Service selecting `pod` only.
    pub service: String,
    /// The Secret `pod` reads its passwords from.
    pub secret: String,
    /// Whether the plugin writes `secret` (the passwords of the new release, created as
    /// `release_secret` at the cut-over); `false` when it is the operator's `existingSecret`.
    pub staged: bool,
    /// `<release>-postgresql`: the new release's database Secret.
    pub release_secret: String,
    /// `data-<release>-postgresql-0`: the claim of the new release's StatefulSet.
    pub release_claim: String,
    /// `<release>-postgresql-0`: the new release's PostgreSQL pod.
    #[serde(default)]
    pub release_pod: String,
    /// The pod with the PostgreSQL 15 client tools that copies and proves.
    pub copy_pod: String,
    pub image: String,
    pub jobs: u32,
    pub source: DbEndpoint,
    /// The superuser of the new database (`postgres`), through `service`.
    pub target: DbEndpoint,
    /// Cpu and memory of the copy pod (`--tools-cpu`, `--tools-memory`).
    #[serde(default)]
    pub resources: options::PodResources,
    /// The owner of the new database: the app's user.
    pub owner: String,
    /// The source's size, for the copy's progress.
    pub source_bytes: u64,
    /// `--set` values the install needs for the chart's claim to bind the new volume (its
    /// storage class, when the chart would ask for another).
    pub install_sets: Vec<String>,
}

impl NewDatabasePlan {
    pub fn pod_name(&self) -> String {
        self.pod.metadata.name.clone().unwrap_or_default()
    }
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
    /// Write the new release's database passwords into the plugin's Secret.
    StagePasswords,
    /// Claim, pod and Service of PostgreSQL 15 beside PostgreSQL 11; ready.
    NewDatabase,
    /// The copy pod, ready.
    CopyPod,
    /// Online: PostgreSQL 11 restarted with `wal_level = logical` (the app keeps running),
    /// confirmed on its own.
    WalLevel,
    /// Online: a replica identity for each table without a primary key on PostgreSQL 11.
    ReplicaIdentity,
    /// Online: publication on 11, schema and subscription on 15, detached in the copy pod.
    Subscribe,
    /// Online: wait until the subscription's initial copy is done (reattaches on rerun).
    InitialCopy,
    /// Online: compare both databases while the app runs; record what is proven.
    ProveLive,
    /// Online, app off: PostgreSQL 11's schema unchanged, and 15 has applied 11's current
    /// WAL position.
    CatchUp,
    /// Online, app off: every sequence on 15 as on 11 (missing ones created).
    SyncSequences,
    /// Online, app off: subscription, slot and publication dropped.
    Unsubscribe,
    /// Scale to 0 and wait until their pods are gone.
    ScaleDown {
        deployments: Vec<String>,
        selectors: Vec<String>,
    },
    /// Create the backup claim and the dump pod (`--keep-dump`).
    BackupVolume,
    /// Run `pg_dump` detached inside the dump pod; reattach on rerun.
    Dump,
    /// Archive readable and complete, SHA-256.
    VerifyBackup,
    /// Stream the archive to the operator's disk.
    LocalCopy {
        path: String,
    },
    /// Copy PostgreSQL 11 into PostgreSQL 15, streamed, detached in the copy pod.
    Copy,
    /// Compare both databases: rows and contents of every table, sequences, schema objects.
    Prove,
    /// The point of no return: the copy still current, what will be deleted shown, confirmed.
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
    /// The new database's volume, Retained, pre-bound to the new StatefulSet's claim.
    BindDatabase,
    /// Delete the chart's Redis secret or recreate it with the old password, and create the
    /// new release's database Secret from the staged passwords.
    ReplaceSecrets {
        secrets: Vec<String>,
        keep_passwords: bool,
    },
    /// Install the target chart once: migration on, replicas and odata as recorded.
    HelmInstall,
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
    /// Remove the plugin's pods, claims and Secrets.
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
    /// Rollback: scale the Deployments to the replica counts recorded before the migration
    /// and wait until they are ready.
    RestoreReplicas {
        replicas: std::collections::BTreeMap<String, i32>,
    },
    /// Rollback: set volumes back to the reclaim policies recorded before the migration.
    RestoreReclaimPolicies {
        policies: std::collections::BTreeMap<String, String>,
    },
    /// Rollback: uninstall the release unless it is deployed on the original chart.
    UninstallTarget,
    /// Rollback: delete the claims of the uninstalled release that hold a volume other than
    /// the original one (that volume set to Retain first: it is kept, Released).
    ReleaseClaims {
        claims: Vec<RetainVolume>,
    },
    /// Rollback: reserve each original volume for its original claim.
    RebindVolumes {
        volumes: Vec<RetainVolume>,
    },
    /// Rollback: the chart's Secrets as they were before the migration (saved in the values
    /// Secret), with helm's ownership metadata so the install adopts them.
    RestoreSecrets {
        secrets: Vec<String>,
    },
    /// Rollback: install the original chart (its archive saved in the values Secret) with
    /// the original values.
    ReinstallOriginal,
    /// Rollback: PostgreSQL 11 holds what the proof found in it before the point of no
    /// return (every table's rows and content, sequences, schema objects).
    CheckOriginalDatabase,
    /// Rollback (online): replication slot and publication dropped on PostgreSQL 11, the
    /// replica identities and `wal_level` as they were (PostgreSQL 11 restarted if needed).
    UndoReplication,
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
    /// PostgreSQL 15 beside PostgreSQL 11 (`None`: the database is external and stays).
    pub new_database: Option<NewDatabasePlan>,
    /// A dump archive kept on a volume (`--keep-dump`).
    pub backup: Option<BackupPlan>,
    /// `--online`: PostgreSQL 15 filled by logical replication while the app runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<replication::OnlinePlan>,
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
    /// The operator's extra values for install and upgrade as the runbook shows them (secret
    /// values redacted; stored as `KEY=<saved>`); their content is kept in the values Secret.
    #[serde(default)]
    pub overrides: Vec<Override>,
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

/// One of the operator's extra values as the plan shows it, each word quoted for the shell
/// where needed. Stored as the helm arguments it stands for (`-f FILE`, `--set KEY=VALUE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Override {
    /// A values file (`-f/--values`): its path.
    File(String),
    /// A `--set`: `KEY=VALUE`, secret values redacted.
    Set(String),
}

impl Override {
    pub fn file(&self) -> Option<&str> {
        match self {
            Override::File(f) => Some(f),
            Override::Set(_) => None,
        }
    }

    pub fn set(&self) -> Option<&str> {
        match self {
            Override::Set(s) => Some(s),
            Override::File(_) => None,
        }
    }
}

impl From<Override> for String {
    fn from(o: Override) -> String {
        match o {
            Override::File(f) => format!("-f {f}"),
            Override::Set(s) => format!("--set {s}"),
        }
    }
}

impl TryFrom<String> for Override {
    type Error = String;

    fn try_from(arg: String) -> Result<Override, String> {
        if let Some(f) = arg.strip_prefix("-f ") {
            Ok(Override::File(f.to_string()))
        } else if let Some(s) = arg.strip_prefix("--set ") {
            Ok(Override::Set(s.to_string()))
        } else {
            Err(format!(
                "an override is `-f FILE` or `--set KEY=VALUE`, not {arg:?}"
            ))
        }
    }
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

    /// What the first step whose action `pick` accepts says, e.g. the Deployments `WaitApp`
    /// waits for.
    pub fn find_action<T>(&self, pick: impl Fn(&Action) -> Option<T>) -> Option<T> {
        self.steps.iter().find_map(|s| pick(&s.action))
    }

    /// The Deployments the scale-down stops (the original release's) and the selectors of
    /// their pods.
    pub fn scaled_down(&self) -> (Vec<String>, Vec<String>) {
        self.find_action(|a| match a {
            Action::ScaleDown {
                deployments,
                selectors,
            } => Some((deployments.clone(), selectors.clone())),
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

    /// Whether the new release keeps the old database passwords (`--keep-passwords`), as the
    /// plan's `secrets` step says.
    pub fn keeps_passwords(&self) -> bool {
        self.find_action(|a| match a {
            Action::ReplaceSecrets { keep_passwords, .. } => Some(*keep_passwords),
            _ => None,
        })
        .unwrap_or(false)
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
    /// Claim, pod and Service of PostgreSQL 15 beside the old one, and the Secret with the
    /// new release's database passwords.
    pub fn new_database(release: &str) -> String {
        format!("la-migrate-{release}-postgresql")
    }
    pub fn copy_pod(release: &str) -> String {
        format!("la-migrate-{release}-copy")
    }
    /// Label on every object the plugin creates.
    pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "la-migrate");
    pub const RELEASE_LABEL: &str = "la-migrate.cognigy.com/release";
}
