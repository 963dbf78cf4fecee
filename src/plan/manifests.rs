//! The objects the plugin creates in the cluster: the backup claim and the pods that run the
//! PostgreSQL 15 client tools against it. Built here (pure) so the executor creates exactly
//! what the runbook shows.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, EnvVarSource, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Pod, PodSecurityContext, PodSpec,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::options::PodResources;
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
    let spec = PodSpec {
        restart_policy: Some("Never".to_string()),
        termination_grace_period_seconds: Some(5),
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
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(pod_labels),
            ..ObjectMeta::default()
        },
        spec: Some(restricted_pod_spec(spec, PLUGIN_UID, &backup.resources)),
        ..Pod::default()
    }
}

/// The user (and group, and fsGroup) the plugin's pods run as: Bitnami's non-root user, who
/// owns the data of the Bitnami PostgreSQL images.
pub const PLUGIN_UID: i64 = 1001;

/// Makes a pod the plugin creates acceptable wherever the cluster is strict: Pod Security
/// `restricted` (non-root `uid`, seccomp `RuntimeDefault`, no privilege escalation, every
/// capability dropped, no service account token) and a ResourceQuota on cpu and memory
/// (each container's `resources` as request and limit). Volumes become writable by `uid`
/// through `fsGroup`, with the kubelet's default policy of giving every file to the group at
/// each start (also files an earlier version of the plugin wrote as root). Every pod the
/// plugin creates goes through here.
pub fn restricted_pod_spec(mut spec: PodSpec, uid: i64, resources: &PodResources) -> PodSpec {
    spec.automount_service_account_token = Some(false);
    let pod = spec
        .security_context
        .get_or_insert_with(PodSecurityContext::default);
    pod.run_as_non_root = Some(true);
    pod.run_as_user = Some(uid);
    pod.run_as_group = Some(uid);
    pod.fs_group = Some(uid);
    pod.seccomp_profile = Some(SeccompProfile {
        type_: "RuntimeDefault".to_string(),
        localhost_profile: None,
    });
    let amounts = BTreeMap::from([
        ("cpu".to_string(), Quantity(resources.cpu.clone())),
        ("memory".to_string(), Quantity(resources.memory.clone())),
    ]);
    let containers = spec.containers.iter_mut().chain(
        spec.init_containers
            .iter_mut()
            .flat_map(|list| list.iter_mut()),
    );
    for c in containers {
        let sc = c
            .security_context
            .get_or_insert_with(SecurityContext::default);
        sc.allow_privilege_escalation = Some(false);
        sc.privileged = Some(false);
        sc.run_as_non_root = Some(true);
        sc.capabilities = Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            add: None,
        });
        c.resources = Some(ResourceRequirements {
            requests: Some(amounts.clone()),
            limits: Some(amounts.clone()),
            ..ResourceRequirements::default()
        });
    }
    spec
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::release_4_43;
    use crate::plan::{build, Options};
    use la_sim::api::admission::{pod_security, quota};
    use serde_json::{json, Value};

    fn tools(direction: Direction, options: &Options) -> Value {
        let plan = build(&release_4_43(), options).unwrap();
        let backup = plan.backup.expect("an internal database is backed up");
        serde_json::to_value(tools_pod(
            &backup,
            direction,
            "live-agent",
            "cognigy-live-agent",
        ))
        .unwrap()
    }

    #[test]
    fn the_tools_pods_pass_pod_security_restricted() {
        for direction in [Direction::Dump, Direction::Restore] {
            let pod = tools(direction, &Options::default());
            let refused = pod_security::evaluate(
                pod_security::Level::Restricted,
                &pod["metadata"],
                &pod["spec"],
            );
            assert_eq!(refused, vec![], "{direction:?}");
            assert_eq!(pod["spec"]["automountServiceAccountToken"], json!(false));
            assert_eq!(
                pod["spec"]["securityContext"],
                json!({"runAsNonRoot": true, "runAsUser": 1001, "runAsGroup": 1001, "fsGroup": 1001,
                       "seccompProfile": {"type": "RuntimeDefault"}})
            );
        }
    }

    #[test]
    fn the_tools_pods_declare_the_flags_resources_as_requests_and_limits() {
        let options = Options {
            tools_resources: PodResources {
                cpu: "250m".into(),
                memory: "256Mi".into(),
            },
            ..Options::default()
        };
        let pod = tools(Direction::Dump, &options);
        let amounts = json!({"cpu": "250m", "memory": "256Mi"});
        assert_eq!(
            pod["spec"]["containers"][0]["resources"],
            json!({"requests": amounts, "limits": amounts})
        );
        // A quota on every compute resource admits it, and counts what it declares.
        let q: Value = serde_norway::from_str(
            "metadata: {name: compute}\nspec: {hard: {requests.cpu: 250m, limits.cpu: 250m, requests.memory: 256Mi, limits.memory: 256Mi}}",
        )
        .unwrap();
        assert_eq!(quota::admit(&[&q], &[], &[], quota::New::Pod(&pod)), Ok(()));
        assert!(quota::admit(&[&q], &[&pod], &[], quota::New::Pod(&pod)).is_err());
    }

    #[test]
    fn every_container_of_a_pod_is_hardened_and_settings_of_the_caller_are_kept() {
        let spec = PodSpec {
            init_containers: Some(vec![Container {
                name: "init".into(),
                ..Container::default()
            }]),
            containers: vec![Container {
                name: "main".into(),
                security_context: Some(SecurityContext {
                    read_only_root_filesystem: Some(true),
                    allow_privilege_escalation: Some(true),
                    ..SecurityContext::default()
                }),
                ..Container::default()
            }],
            security_context: Some(PodSecurityContext {
                supplemental_groups: Some(vec![4000]),
                run_as_user: Some(0),
                ..PodSecurityContext::default()
            }),
            ..PodSpec::default()
        };
        let spec = restricted_pod_spec(spec, 1001, &PodResources::default());
        let v = json!({"metadata": {"name": "p"}, "spec": serde_json::to_value(&spec).unwrap()});
        assert_eq!(
            pod_security::evaluate(pod_security::Level::Restricted, &v["metadata"], &v["spec"]),
            vec![]
        );
        let main = spec.containers[0].security_context.as_ref().unwrap();
        assert_eq!(main.read_only_root_filesystem, Some(true));
        assert_eq!(main.allow_privilege_escalation, Some(false));
        let pod = spec.security_context.as_ref().unwrap();
        assert_eq!(pod.supplemental_groups, Some(vec![4000]));
        assert_eq!(pod.run_as_user, Some(1001));
        let init = &spec.init_containers.as_ref().unwrap()[0];
        assert!(init.resources.as_ref().unwrap().limits.is_some());
    }
}
