//! The objects the plugin creates in the cluster: the backup claim and the pods that run the
//! PostgreSQL 15 client tools against it. Built here (pure) so the executor creates exactly
//! what the runbook shows.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, Pod, PodSecurityContext, PodSpec, SecretKeySelector, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::own_names::{MANAGED_BY, RELEASE_LABEL};
use super::quantity::to_gibibytes;
use super::{BackupPlan, DbEndpoint, BACKUP_MOUNT};

/// Labels on every object the plugin creates.
pub fn labels(release: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (RELEASE_LABEL.to_string(), release.to_string()),
    ])
}

pub fn backup_claim(backup: &BackupPlan, namespace: &str, release: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(backup.claim.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels(release)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_string()]),
            storage_class_name: backup.storage_class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(to_gibibytes(backup.size_bytes)),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// Which database a tools pod connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Dump,
    Restore,
}

/// A pod that idles with the PostgreSQL 15 client tools, the backup volume mounted, and the
/// connection in libpq's environment (`PGPASSWORD` from the Secret, never a literal).
pub fn tools_pod(backup: &BackupPlan, direction: Direction, namespace: &str, release: &str) -> Pod {
    let (name, db) = match direction {
        Direction::Dump => (&backup.dump_pod, &backup.source),
        Direction::Restore => (&backup.restore_pod, &backup.target),
    };
    let mut pod_labels = labels(release);
    pod_labels.insert(
        "la-migrate.cognigy.com/role".to_string(),
        match direction {
            Direction::Dump => "dump",
            Direction::Restore => "restore",
        }
        .to_string(),
    );
    Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(pod_labels),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".to_string()),
            termination_grace_period_seconds: Some(5),
            security_context: Some(PodSecurityContext {
                // Bitnami images run as 1001; the volume must be writable by it.
                fs_group: Some(1001),
                ..PodSecurityContext::default()
            }),
            containers: vec![Container {
                name: "pg-tools".to_string(),
                image: Some(backup.image.clone()),
                command: Some(vec![
                    "sh".to_string(),
                    "-c".to_string(),
                    // Idle until deleted; TERM ends it at once.
                    "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done".to_string(),
                ]),
                env: Some(connection_env(db)),
                volume_mounts: Some(vec![VolumeMount {
                    name: "backup".to_string(),
                    mount_path: BACKUP_MOUNT.to_string(),
                    ..VolumeMount::default()
                }]),
                ..Container::default()
            }],
            volumes: Some(vec![Volume {
                name: "backup".to_string(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: backup.claim.clone(),
                    read_only: Some(false),
                }),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

fn connection_env(db: &DbEndpoint) -> Vec<EnvVar> {
    let plain = |name: &str, value: String| EnvVar {
        name: name.to_string(),
        value: Some(value),
        value_from: None,
    };
    vec![
        plain("PGHOST", db.host.clone()),
        plain("PGPORT", db.port.to_string()),
        plain("PGUSER", db.user.clone()),
        plain("PGDATABASE", db.database.clone()),
        plain("PGCONNECT_TIMEOUT", "10".to_string()),
        plain("HOME", "/tmp".to_string()),
        EnvVar {
            name: "PGPASSWORD".to_string(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: db.secret.clone(),
                    key: db.key.clone(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
        },
    ]
}

/// Serialises an object for a runbook (`kubectl apply -f - <<'EOF'`).
pub fn to_yaml<T: serde::Serialize>(object: &T) -> String {
    serde_norway::to_string(object).unwrap_or_default()
}
