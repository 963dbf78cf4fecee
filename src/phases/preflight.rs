//! Preflight: read-only questions to the cluster and helm, answered as [`Facts`]. Changes
//! nothing; every refusal is decided afterwards by `plan::build`.

use std::time::Duration;

use serde_norway::Value;

use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::helm::{argv, Helm};
use crate::kube::ops::Kube;
use crate::naming::{Generation, NameInputs, ObjectNames};
use crate::plan::facts::*;
use crate::plan::permissions::{self, kinds_in};
use crate::plan::quantity::parse_bytes;
use crate::plan::{commands, Options};
use crate::settings::Settings;

fn get<'a>(values: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut v = values;
    for p in path {
        v = v.get(*p)?;
    }
    Some(v)
}

fn get_str(values: &Value, path: &[&str]) -> Option<String> {
    match get(values, path)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn get_bool(values: &Value, path: &[&str], default: bool) -> bool {
    match get(values, path) {
        Some(Value::Bool(b)) => *b,
        _ => default,
    }
}

/// The release's user-supplied values and their translation.
pub struct ReleaseValues {
    pub original: String,
    pub translated: String,
    pub parsed: Value,
    pub notes: Vec<String>,
}

pub fn release_values(helm: &Helm, release: &str) -> Result<ReleaseValues> {
    let original = helm.get_values(release)?;
    // `helm get values` prints `null` for a release without user values.
    let original = if original.trim() == "null" {
        String::new()
    } else {
        original
    };
    let parsed: Value = serde_norway::from_str(&original).unwrap_or(Value::Null);
    let translation = crate::values::translate(
        &original,
        &crate::values::Options {
            release: release.to_string(),
        },
    )
    .map_err(|e| {
        Error::new(
            ExitCode::InvalidInput,
            format!("the values of release {release:?} cannot be translated to 4.44: {e}"),
        )
        .hint(format!(
            "translate them by hand with `{}`, fix what it reports, then run again",
            crate::hint::command(release, helm.namespace(), "values")
        ))
    })?;
    let notes = translation.warnings.iter().map(|w| w.to_string()).collect();
    Ok(ReleaseValues {
        original,
        translated: translation.yaml,
        parsed,
        notes,
    })
}

/// Gathers the facts for `settings.release`.
pub async fn gather(
    settings: &Settings,
    kube: &Kube,
    helm: &Helm,
    options: &Options,
) -> Result<Facts> {
    let release = &settings.release;
    let ns = &settings.namespace;
    if !kube.namespace_exists().await? {
        return Err(Error::new(
            ExitCode::NotFound,
            format!("namespace {ns:?} does not exist"),
        )
        .hint("pass the release's namespace with -n (`helm list -A` shows where it is)"));
    }
    let status = tokio::task::block_in_place(|| helm.status(release))?.ok_or_else(|| {
        Error::new(
            ExitCode::NotFound,
            format!("release {release:?} was not found in namespace {ns:?}"),
        )
        .hint(format!(
            "list the releases with `helm list -n {ns}`, then pass --release <name> or -n <namespace>"
        ))
    })?;
    let values = tokio::task::block_in_place(|| release_values(helm, release))?;
    let inputs = NameInputs::from_values(&values.parsed);
    let old = ObjectNames::new(release, &inputs, Generation::Pg11);
    let new = ObjectNames::new(release, &inputs, Generation::Pg15);
    let names = Names {
        old_app_deployment: old.app_deployment.clone(),
        new_app_deployment: new.app_deployment.clone(),
        worker_deployment: old.worker_deployment.clone(),
        odata_deployment: old.odata_deployment.clone(),
        postgres_pod: old.postgresql_pod.clone(),
        postgres_service: old.postgresql.clone(),
        postgres_claim: old.postgresql_pvc.clone(),
        postgres_secret: old.postgresql_secret.clone(),
        redis_master_pod: old.redis_master_pod.clone(),
        redis_master_service: old.redis_master.clone(),
        redis_secret: old.redis_secret.clone(),
        attachments_claim: old.attachments_pvc.to_string(),
        migration_job: new.migration_job.clone(),
        kept_secrets: old.kept_secrets.clone(),
    };
    let v = &values.parsed;

    let postgres = if get_bool(v, &["postgresql", "enabled"], true) {
        let existing = get_str(v, &["postgresql", "existingSecret"]);
        let database = get_str(v, &["postgresql", "postgresqlDatabase"])
            .unwrap_or_else(|| "live_agent_production".into());
        let (size_bytes, server_version) =
            database_size(kube, &old.postgresql_pod, &database).await?;
        PostgresFacts::Internal {
            secret: existing
                .clone()
                .unwrap_or_else(|| old.postgresql_secret.clone()),
            password_key: if existing.is_some() {
                get_str(v, &["postgresql", "existingSecretPasswordKey"])
                    .or_else(|| get_str(v, &["postgresql", "existingPasswordSecretKey"]))
                    .unwrap_or_else(|| "postgresql-password".into())
            } else {
                old.postgresql_admin_password_key.to_string()
            },
            existing_secret: existing.is_some(),
            username: get_str(v, &["postgresql", "postgresqlUsername"])
                .unwrap_or_else(|| "postgres".into()),
            database,
            size_bytes,
            server_version,
        }
    } else {
        PostgresFacts::External {
            host: get_str(v, &["postgresql", "postgresqlHost"]).unwrap_or_default(),
            port: get_str(v, &["postgresql", "postgresqlPort"])
                .and_then(|p| p.parse().ok())
                .unwrap_or(5432),
        }
    };
    // Every claim of the namespace, read once: the Redis claims are found by name, however
    // many replicas ran.
    let all_claims = kube.claims().await?;
    let claim_names: Vec<&str> = all_claims
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    let redis = if get_bool(v, &["redis", "enabled"], true) {
        let existing = get_str(v, &["redis", "existingSecret"]);
        RedisFacts::Internal {
            secret: existing.clone().unwrap_or_else(|| old.redis_secret.clone()),
            password_key: get_str(v, &["redis", "existingSecretPasswordKey"])
                .unwrap_or_else(|| old.redis_password_key.to_string()),
            existing_secret: existing.is_some(),
            claims: claim_names
                .iter()
                .filter(|c| old.is_redis_claim(c))
                .map(|c| c.to_string())
                .collect(),
        }
    } else {
        RedisFacts::External {
            host: get_str(v, &["redis", "host"]).unwrap_or_default(),
        }
    };

    let mut workloads = Vec::new();
    for (role, name) in [
        (WorkloadRole::App, &old.app_deployment),
        (WorkloadRole::Worker, &old.worker_deployment),
        (WorkloadRole::Odata, &old.odata_deployment),
    ] {
        if let Some(d) = kube.deployment(name).await? {
            let spec = d.spec.unwrap_or_default();
            let selector = spec
                .selector
                .match_labels
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            workloads.push(WorkloadFacts {
                role,
                name: name.clone(),
                replicas: spec.replicas.unwrap_or(1),
                selector,
            });
        }
    }

    let mut volumes = Vec::new();
    let mut claims = vec![(VolumeRole::Attachments, old.attachments_pvc.to_string())];
    if matches!(postgres, PostgresFacts::Internal { .. }) {
        claims.push((VolumeRole::Postgres, old.postgresql_pvc.clone()));
    }
    if let RedisFacts::Internal { claims: redis, .. } = &redis {
        claims.extend(redis.iter().map(|c| (VolumeRole::Redis, c.clone())));
    }
    for (role, claim) in claims {
        let Some(pvc) = all_claims
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(claim.as_str()))
        else {
            continue;
        };
        let spec = pvc.spec.clone().unwrap_or_default();
        let volume_name = spec.volume_name.filter(|v| !v.is_empty());
        let pv = match &volume_name {
            Some(n) => kube.volume(n).await?,
            None => None,
        };
        let pv_spec = pv.and_then(|p| p.spec).unwrap_or_default();
        volumes.push(VolumeFacts {
            role,
            claim,
            volume: volume_name,
            reclaim_policy: pv_spec.persistent_volume_reclaim_policy,
            storage_class: spec.storage_class_name.or(pv_spec.storage_class_name),
            capacity_bytes: pv_spec
                .capacity
                .and_then(|c| c.get("storage").and_then(|q| parse_bytes(&q.0)))
                .unwrap_or(0),
        });
    }

    let mut secrets = Vec::new();
    let mut wanted = vec![
        (SecretRole::Postgres, old.postgresql_secret.clone()),
        (SecretRole::Redis, old.redis_secret.clone()),
    ];
    wanted.extend(
        old.kept_secrets
            .iter()
            .map(|s| (SecretRole::Kept, s.clone())),
    );
    for (role, name) in wanted {
        if let Some(s) = kube.secret(&name).await? {
            secrets.push(SecretFacts {
                role,
                name,
                keys: s.data.unwrap_or_default().into_keys().collect(),
            });
        }
    }

    let mut storage = StorageFacts::default();
    for class in kube.storage_classes().await? {
        let name = class.metadata.name.clone().unwrap_or_default();
        let is_default = class.metadata.annotations.as_ref().is_some_and(|a| {
            a.get("storageclass.kubernetes.io/is-default-class")
                .map(String::as_str)
                == Some("true")
        });
        if is_default {
            storage.default_class = Some(name.clone());
        }
        storage.classes.push(name);
    }
    for quota in kube.quotas().await? {
        let name = quota.metadata.name.clone().unwrap_or_default();
        let status = quota.status.unwrap_or_default();
        // A quota the quota controller has not synced yet has no status: its spec holds.
        let hard = status
            .hard
            .filter(|h| !h.is_empty())
            .or_else(|| quota.spec.and_then(|s| s.hard))
            .unwrap_or_default();
        let used = status.used.unwrap_or_default();
        for (key, q) in &hard {
            let class = if key == "requests.storage" {
                None
            } else if let Some(c) =
                key.strip_suffix(".storageclass.storage.k8s.io/requests.storage")
            {
                Some(c.to_string())
            } else {
                continue;
            };
            storage.quotas.push(QuotaFacts {
                name: name.clone(),
                storage_class: class,
                hard_bytes: parse_bytes(&q.0).unwrap_or(u64::MAX),
                used_bytes: used.get(key).and_then(|u| parse_bytes(&u.0)).unwrap_or(0),
            });
        }
    }

    let target = settings.target();
    let chart_arg = target.chart.as_helm_arg();
    let remote_version = target.chart.is_remote().then_some(target.version.as_str());
    let chart = tokio::task::block_in_place(|| helm.chart_metadata(&chart_arg, remote_version))
        .map_err(|e| target_chart_error("read", e))?;
    let rendered = tokio::task::block_in_place(|| {
        render_target(
            helm,
            release,
            &chart_arg,
            remote_version,
            &values.translated,
            options,
        )
    })?;
    let images = images_in(&rendered);
    let old_manifest = tokio::task::block_in_place(|| helm.get_manifest(release))?;
    let mut permissions = Vec::new();
    for p in permissions::required(&kinds_in(&old_manifest), &kinds_in(&rendered)) {
        permissions.push(PermissionFacts {
            allowed: kube
                .can_i(p.verb, &p.group, &p.resource, p.namespaced)
                .await?,
            verb: p.verb.to_string(),
            group: p.group,
            resource: p.resource,
            namespaced: p.namespaced,
        });
    }
    let mut notes = values.notes;
    let odata_enabled = get_bool(v, &["odata", "enabled"], true);
    if workloads.is_empty() {
        notes.push(format!(
            "no app, worker or odata Deployment of release {release:?} was found (looked for {})",
            old.app_deployment
        ));
    }
    Ok(Facts {
        namespace: ns.clone(),
        release: ReleaseFacts {
            name: release.clone(),
            status: status.status,
            chart_version: status.chart_version,
            revision: status.revision,
        },
        target: TargetFacts {
            chart: target.chart.as_helm_arg().to_string_lossy().into_owned(),
            remote: target.chart.is_remote(),
            version: target.version.clone(),
            version_given: target.version_given,
            postgresql_subchart: chart.dependency("postgresql").map(str::to_string),
            redis_subchart: chart.dependency("redis").map(str::to_string),
            chart_version: chart.version,
            images,
            postgres: crate::plan::target_postgres::find(&rendered, &names.postgres_service),
        },
        names,
        postgres,
        redis,
        workloads,
        volumes,
        secrets,
        storage,
        permissions,
        odata_enabled,
        values_notes: notes,
    })
}

/// `pg_database_size` and the server version, asked inside the PostgreSQL pod with its own
/// credentials from the container environment, over the Unix socket (the pod's own server,
/// whatever its network looks like).
async fn database_size(kube: &Kube, pod: &str, database: &str) -> Result<(u64, String)> {
    kube.wait_pod_ready(pod, Duration::from_secs(60))
        .await
        .map_err(|e| {
            Error::new(
                ExitCode::Precondition,
                format!("the PostgreSQL pod {}/{pod} is not ready", kube.namespace),
            )
            .source(e)
            .hint("the database must be running to be dumped; fix it, then run again")
        })?;
    let script = format!(
        "PGPASSWORD=\"${{POSTGRES_PASSWORD:-$(cat \"${{POSTGRES_PASSWORD_FILE:-/dev/null}}\" 2>/dev/null)}}\" \
psql -X -A -t -U \"${{POSTGRES_USER:-postgres}}\" -d {} -c \"select pg_database_size(current_database()) || ' ' || current_setting('server_version')\"",
        crate::plan::scripts::shell_quote(database)
    );
    let out = kube
        .exec_script_checked(pod, "measuring the database size", &script)
        .await?;
    let mut parts = out.split_whitespace();
    let size = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| {
        Error::new(
            ExitCode::External,
            format!("the database size query in pod {pod} printed {out:?}"),
        )
    })?;
    Ok((size, parts.next().unwrap_or("").to_string()))
}

/// Renders the target chart with the install values (app included, to see every image and
/// object an upgrade brings).
fn render_target(
    helm: &Helm,
    release: &str,
    chart: &std::ffi::OsString,
    version: Option<&str>,
    translated: &str,
    options: &Options,
) -> Result<String> {
    let mut sets = options.set.clone();
    sets.extend(commands::install_sets());
    // Render the whole chart, app included, to see every image an upgrade pulls.
    sets.push("odata.enabled=true".into());
    let overrides = super::overrides::Overrides::from_options(options)?;
    let mut docs: Vec<&str> = vec![translated];
    docs.extend(overrides.documents());
    let out = helm
        .run_with_values(&argv::template(release, chart, version, &sets), &docs)
        .map_err(|e| target_chart_error("rendered", e))?;
    Ok(out.stdout)
}

/// A helm failure on the target chart: a chart helm cannot find is "not found" (exit 4).
fn target_chart_error(done: &str, e: Error) -> Error {
    let code = if e.message.contains("not found") || e.message.contains("no such file") {
        ExitCode::NotFound
    } else {
        e.code
    };
    Error::new(
        code,
        format!("the target chart cannot be {done}: {}", e.message),
    )
    .hint("check --chart and --version (a local .tgz works too), then run again")
}

/// Every `image:` value in rendered manifests, deduplicated, in order.
pub fn images_in(manifests: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in manifests.lines() {
        let t = line.trim_start().trim_start_matches("- ");
        if let Some(rest) = t.strip_prefix("image:") {
            let image = rest.trim().trim_matches('"').trim_matches('\'').to_string();
            if !image.is_empty() && !out.contains(&image) {
                out.push(image);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_read_from_rendered_manifests() {
        let m = "spec:\n  containers:\n    - image: \"docker.io/bitnami/redis:7.0.7\"\n      name: r\n  initContainers:\n  - name: x\n    image: busybox:1.28\n---\n    image: docker.io/bitnami/redis:7.0.7\n";
        assert_eq!(
            images_in(m),
            ["docker.io/bitnami/redis:7.0.7", "busybox:1.28"]
        );
    }
}
