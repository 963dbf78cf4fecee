//! The objects the plugin creates in the cluster: PostgreSQL 15 beside the old database (claim,
//! pod, Service), the copy pod, and the backup claim and dump pod of `--keep-dump`. Built here
//! (pure) so the executor creates exactly what the runbook shows.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, EnvVarSource, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Pod, PodSecurityContext, PodSpec,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext, Service, ServicePort,
    ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::options::PodResources;
use super::own_names::{MANAGED_BY, RELEASE_LABEL};
use super::quantity::to_gibibytes;
use super::target_postgres::TargetPostgres;
use super::{BackupPlan, DbEndpoint, NewDatabasePlan, BACKUP_MOUNT, COPY_DIR};

/// Labels on every object the plugin creates.
pub fn labels(release: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (RELEASE_LABEL.to_string(), release.to_string()),
    ])
}

pub fn backup_claim(backup: &BackupPlan, namespace: &str, release: &str) -> PersistentVolumeClaim {
    claim(
        &backup.claim,
        backup.storage_class.as_ref(),
        backup.size_bytes,
        namespace,
        release,
    )
}

/// A role label value on each of the plugin's pods.
const ROLE_LABEL: &str = "la-migrate.cognigy.com/role";

fn role_labels(release: &str, role: &str) -> BTreeMap<String, String> {
    let mut l = labels(release);
    l.insert(ROLE_LABEL.to_string(), role.to_string());
    l
}

/// Idle until deleted; TERM ends it at once.
fn idle_command() -> Vec<String> {
    vec![
        "sh".to_string(),
        "-c".to_string(),
        "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done".to_string(),
    ]
}

/// A pod that idles with the PostgreSQL 15 client tools, the backup volume mounted, and the
/// connection to the source in libpq's environment (`PGPASSWORD` from the Secret, never a
/// literal): it dumps the source to the volume (`--keep-dump`).
pub fn tools_pod(backup: &BackupPlan, namespace: &str, release: &str) -> Pod {
    idle_tools_pod(
        IdleToolsPod {
            name: &backup.dump_pod,
            role: "dump",
            image: &backup.image,
            env: connection_env(&backup.source),
            volume: Volume {
                name: "backup".to_string(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: backup.claim.clone(),
                    read_only: Some(false),
                }),
                ..Volume::default()
            },
            mount_path: BACKUP_MOUNT,
            resources: &backup.resources,
        },
        namespace,
        release,
    )
}

/// What sets the dump pod and the copy pod apart: both idle with the PostgreSQL 15 client
/// tools, one volume mounted.
struct IdleToolsPod<'a> {
    name: &'a str,
    role: &'a str,
    image: &'a str,
    env: Vec<EnvVar>,
    volume: Volume,
    mount_path: &'a str,
    resources: &'a PodResources,
}

fn idle_tools_pod(p: IdleToolsPod<'_>, namespace: &str, release: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(p.name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(role_labels(release, p.role)),
            ..ObjectMeta::default()
        },
        spec: Some(restricted_pod_spec(
            PodSpec {
                restart_policy: Some("Never".to_string()),
                termination_grace_period_seconds: Some(5),
                containers: vec![Container {
                    name: "pg-tools".to_string(),
                    image: Some(p.image.to_string()),
                    command: Some(idle_command()),
                    env: Some(p.env),
                    volume_mounts: Some(vec![VolumeMount {
                        name: p.volume.name.clone(),
                        mount_path: p.mount_path.to_string(),
                        ..VolumeMount::default()
                    }]),
                    ..Container::default()
                }],
                volumes: Some(vec![p.volume]),
                ..PodSpec::default()
            },
            PLUGIN_UID,
            p.resources,
        )),
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

/// A claim for a volume of the plugin's.
pub fn claim(
    name: &str,
    class: Option<&String>,
    bytes: u64,
    namespace: &str,
    release: &str,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels(release)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_string()]),
            storage_class_name: class.cloned(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(to_gibibytes(bytes)),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// Names the new database's pod is built with.
pub struct NewDatabaseNames<'a> {
    pub pod: &'a str,
    pub namespace: &'a str,
    pub release: &'a str,
    /// The chart's own database Secret (`<release>-postgresql`), which the old release still
    /// owns while this pod runs.
    pub chart_secret: &'a str,
    /// The Secret this pod reads instead.
    pub secret: &'a str,
    pub claim: &'a str,
    /// Cpu and memory where the chart sets none.
    pub resources: &'a PodResources,
}

/// The target chart's PostgreSQL pod template as a pod of the plugin's: the same image,
/// user, environment and data layout, on the plugin's claim, reading its passwords from
/// `names.secret`, with the plugin's labels only (no Service of the release selects it).
pub fn new_database_pod(target: &TargetPostgres, names: &NewDatabaseNames<'_>) -> Pod {
    let mut spec = target.template.spec.clone().unwrap_or_default();
    let rename = |name: &mut String| {
        if name == names.chart_secret {
            *name = names.secret.to_string();
        }
    };
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        for e in c.env.iter_mut().flatten() {
            if let Some(r) = e
                .value_from
                .as_mut()
                .and_then(|v| v.secret_key_ref.as_mut())
            {
                rename(&mut r.name);
            }
        }
        for f in c.env_from.iter_mut().flatten() {
            if let Some(r) = f.secret_ref.as_mut() {
                rename(&mut r.name);
            }
        }
    }
    let mut volumes: Vec<Volume> = spec
        .volumes
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|v| v.name != target.volume)
        .collect();
    for v in &mut volumes {
        if let Some(s) = v.secret.as_mut().and_then(|s| s.secret_name.as_mut()) {
            rename(s);
        }
    }
    volumes.push(Volume {
        name: target.volume.clone(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: names.claim.to_string(),
            read_only: Some(false),
        }),
        ..Volume::default()
    });
    spec.volumes = Some(volumes);
    // Scheduling rules name the chart's labels; a StatefulSet's identity is not this pod's.
    spec.affinity = None;
    spec.hostname = None;
    spec.subdomain = None;
    spec.restart_policy = Some("Always".to_string());
    // The chart's own user (Bitnami's 1001) and, where the chart sets them, its resources.
    let uid = spec
        .security_context
        .as_ref()
        .and_then(|c| c.run_as_user)
        .unwrap_or(PLUGIN_UID);
    let chart_resources: Vec<_> = spec
        .containers
        .iter()
        .map(|c| c.resources.clone())
        .collect();
    let mut spec = restricted_pod_spec(spec, uid, names.resources);
    for (c, chart) in spec.containers.iter_mut().zip(chart_resources) {
        let (Some(chart), Some(ours)) = (chart, c.resources.as_mut()) else {
            continue;
        };
        for (theirs, ours) in [
            (chart.requests, &mut ours.requests),
            (chart.limits, &mut ours.limits),
        ] {
            if let Some(amounts) = theirs.filter(|a| !a.is_empty()) {
                *ours = Some(amounts);
            }
        }
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(names.pod.to_string()),
            namespace: Some(names.namespace.to_string()),
            labels: Some(role_labels(names.release, "postgresql")),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        ..Pod::default()
    }
}

/// The Service in front of the new database's pod (port 5432).
pub fn new_database_service(name: &str, namespace: &str, release: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels(release)),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(role_labels(release, "postgresql")),
            ports: Some(vec![ServicePort {
                name: Some("tcp-postgresql".to_string()),
                port: 5432,
                target_port: Some(IntOrString::Int(5432)),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The copy pod: PostgreSQL 15 client tools, idle, with both connections in its environment
/// (`SRC_*` for PostgreSQL 11, `DST_*` for PostgreSQL 15; passwords from Secrets) and a
/// scratch directory for the copy's markers and schema archive.
pub fn copy_pod(db: &NewDatabasePlan, namespace: &str, release: &str) -> Pod {
    let mut env = prefixed_env("SRC", &db.source);
    env.extend(prefixed_env("DST", &db.target));
    let plain = |name: &str, value: String| EnvVar {
        name: name.to_string(),
        value: Some(value),
        value_from: None,
    };
    env.push(plain("DST_OWNER", db.owner.clone()));
    env.push(plain("JOBS", db.jobs.to_string()));
    env.push(plain("HOME", "/tmp".to_string()));
    env.push(plain("PGCONNECT_TIMEOUT", "10".to_string()));
    idle_tools_pod(
        IdleToolsPod {
            name: &db.copy_pod,
            role: "copy",
            image: &db.image,
            env,
            volume: Volume {
                name: "work".to_string(),
                empty_dir: Some(Default::default()),
                ..Volume::default()
            },
            mount_path: COPY_DIR,
            resources: &db.resources,
        },
        namespace,
        release,
    )
}

/// `<prefix>_HOST`, `_PORT`, `_USER`, `_DATABASE` and `_PASSWORD` (from the Secret).
fn prefixed_env(prefix: &str, db: &DbEndpoint) -> Vec<EnvVar> {
    let plain = |name: &str, value: String| EnvVar {
        name: format!("{prefix}_{name}"),
        value: Some(value),
        value_from: None,
    };
    vec![
        plain("HOST", db.host.clone()),
        plain("PORT", db.port.to_string()),
        plain("USER", db.user.clone()),
        plain("DATABASE", db.database.clone()),
        secret_env(&format!("{prefix}_PASSWORD"), db),
    ]
}

fn secret_env(name: &str, db: &DbEndpoint) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: db.secret.clone(),
                key: db.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
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
        secret_env("PGPASSWORD", db),
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

    /// The plugin's pods: the dump pod (`--keep-dump`), PostgreSQL 15 and the copy pod.
    fn pods(options: &Options) -> Vec<(&'static str, Value)> {
        let options = Options {
            keep_dump: true,
            ..options.clone()
        };
        let plan = build(&release_4_43(), &options).unwrap();
        let backup = plan.backup.expect("--keep-dump plans a dump");
        let db = plan.new_database.expect("an internal database is copied");
        let (ns, release) = ("live-agent", "cognigy-live-agent");
        [
            ("dump", tools_pod(&backup, ns, release)),
            ("postgresql", db.pod.clone()),
            ("copy", copy_pod(&db, ns, release)),
        ]
        .into_iter()
        .map(|(n, p)| (n, serde_json::to_value(p).unwrap()))
        .collect()
    }

    #[test]
    fn the_plugins_pods_pass_pod_security_restricted() {
        for (name, pod) in pods(&Options::default()) {
            let refused = pod_security::evaluate(
                pod_security::Level::Restricted,
                &pod["metadata"],
                &pod["spec"],
            );
            assert_eq!(refused, vec![], "{name}");
            assert_eq!(pod["spec"]["automountServiceAccountToken"], json!(false));
            let sc = &pod["spec"]["securityContext"];
            assert_eq!(sc["runAsUser"], json!(1001), "{name}");
            assert_eq!(sc["fsGroup"], json!(1001), "{name}");
            assert_eq!(
                sc["seccompProfile"],
                json!({"type": "RuntimeDefault"}),
                "{name}"
            );
        }
    }

    #[test]
    fn the_new_database_runs_the_target_charts_container_on_the_plugins_claim() {
        let plan = build(&release_4_43(), &Options::default()).unwrap();
        let db = plan.new_database.unwrap();
        let spec = db.pod.spec.as_ref().unwrap();
        let c = &spec.containers[0];
        assert_eq!(
            c.image.as_deref(),
            Some("docker.io/bitnami/postgresql:15.1.0-debian-11-r12")
        );
        // Its passwords from the staged Secret, never the old release's.
        let secrets: Vec<&str> = c
            .env
            .iter()
            .flatten()
            .filter_map(|e| {
                Some(
                    e.value_from
                        .as_ref()?
                        .secret_key_ref
                        .as_ref()?
                        .name
                        .as_str(),
                )
            })
            .collect();
        assert!(!secrets.is_empty());
        assert!(secrets.iter().all(|s| *s == db.secret), "{secrets:?}");
        let data = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "data")
            .unwrap();
        assert_eq!(
            data.persistent_volume_claim.as_ref().unwrap().claim_name,
            db.claim
        );
        assert!(c
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.name == "data" && m.mount_path == "/bitnami/postgresql"));
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
        let pods = pods(&options);
        let amounts = json!({"cpu": "250m", "memory": "256Mi"});
        for (name, pod) in &pods {
            let resources = &pod["spec"]["containers"][0]["resources"];
            if *name == "postgresql" {
                // The chart's requests; the flags' limits, as the chart sets none.
                assert_eq!(resources["limits"], amounts);
                assert_eq!(
                    resources["requests"],
                    json!({"cpu": "250m", "memory": "256Mi"})
                );
            } else {
                assert_eq!(
                    resources,
                    &json!({"requests": amounts, "limits": amounts}),
                    "{name}"
                );
            }
        }
        let pod = &pods[0].1;
        // A quota on every compute resource admits it, and counts what it declares.
        let q: Value = serde_norway::from_str(
            "metadata: {name: compute}\nspec: {hard: {requests.cpu: 250m, limits.cpu: 250m, requests.memory: 256Mi, limits.memory: 256Mi}}",
        )
        .unwrap();
        assert_eq!(quota::admit(&[&q], &[], &[], quota::New::Pod(pod)), Ok(()));
        assert!(quota::admit(&[&q], &[pod], &[], quota::New::Pod(pod)).is_err());
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
