//! Preflight: read-only questions to the cluster and helm, answered as [`Facts`]. Changes
//! nothing; every refusal is decided afterwards by `plan::build`.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, ResourceQuota};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_norway::Value;

use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::helm::{argv, ChartMetadata, Helm};
use crate::kube::ops::Kube;
use crate::naming::{Generation, NameInputs, ObjectNames};
use crate::plan::facts::*;
use crate::plan::permissions::{self, kinds_in};
use crate::plan::quantity::parse_bytes;
use crate::plan::{commands, Options};
use crate::settings::{Settings, TargetSettings};

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
    let names = names(&old, &new);
    let v = &values.parsed;

    let mut online = None;
    let postgres = match charts_database(v) {
        Some(database) => {
            let measured = database_size(kube, &old.postgresql_pod, &database).await?;
            if options.online {
                online = Some(online_facts(kube, &old.postgresql_pod, &database).await?);
            }
            internal_postgres(v, &old, database, measured)
        }
        None => external_postgres(v),
    };
    // Every claim of the namespace, read once: the Redis claims are found by name, however
    // many replicas ran.
    let all_claims = kube.claims().await?;
    let redis = redis_facts(v, &old, &all_claims);
    let workloads = workloads(kube, &old).await?;
    let volumes = volumes(kube, &all_claims, volume_claims(&old, &postgres, &redis)).await?;
    let secrets = secrets(kube, &old).await?;
    let storage = storage_facts(&kube.storage_classes().await?, kube.quotas().await?);

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
    let old_manifest = tokio::task::block_in_place(|| helm.get_manifest(release))?;
    let permissions = permissions(kube, &old_manifest, &rendered).await?;
    let mut notes = values.notes;
    notes.extend(missing_workloads_note(release, &old, &workloads));
    Ok(Facts {
        namespace: ns.clone(),
        release: ReleaseFacts {
            name: release.clone(),
            status: status.status,
            chart_version: status.chart_version,
            revision: status.revision,
        },
        target: target_facts(target, chart, &rendered, &names.postgres_service),
        names,
        postgres,
        redis,
        workloads,
        volumes,
        secrets,
        storage,
        permissions,
        odata_enabled: get_bool(v, &["odata", "enabled"], true),
        values_notes: notes,
        online,
    })
}

/// The names of the objects the plan works on, old and new.
fn names(old: &ObjectNames, new: &ObjectNames) -> Names {
    Names {
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
    }
}

/// The database the app uses on the chart's PostgreSQL; `None` when PostgreSQL is external.
fn charts_database(v: &Value) -> Option<String> {
    get_bool(v, &["postgresql", "enabled"], true).then(|| {
        get_str(v, &["postgresql", "postgresqlDatabase"])
            .unwrap_or_else(|| "live_agent_production".into())
    })
}

/// The chart's PostgreSQL as the values describe it, with the database's size and server
/// version as measured in its pod.
fn internal_postgres(
    v: &Value,
    old: &ObjectNames,
    database: String,
    (size_bytes, server_version): (u64, String),
) -> PostgresFacts {
    let existing = get_str(v, &["postgresql", "existingSecret"]);
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
}

/// An external PostgreSQL as the values describe it.
fn external_postgres(v: &Value) -> PostgresFacts {
    PostgresFacts::External {
        host: get_str(v, &["postgresql", "postgresqlHost"]).unwrap_or_default(),
        port: get_str(v, &["postgresql", "postgresqlPort"])
            .and_then(|p| p.parse().ok())
            .unwrap_or(5432),
    }
}

/// Redis as the values describe it; the chart's Redis with its claims among `all_claims`.
fn redis_facts(v: &Value, old: &ObjectNames, all_claims: &[PersistentVolumeClaim]) -> RedisFacts {
    if !get_bool(v, &["redis", "enabled"], true) {
        return RedisFacts::External {
            host: get_str(v, &["redis", "host"]).unwrap_or_default(),
        };
    }
    let existing = get_str(v, &["redis", "existingSecret"]);
    RedisFacts::Internal {
        secret: existing.clone().unwrap_or_else(|| old.redis_secret.clone()),
        password_key: get_str(v, &["redis", "existingSecretPasswordKey"])
            .unwrap_or_else(|| old.redis_password_key.to_string()),
        existing_secret: existing.is_some(),
        claims: all_claims
            .iter()
            .filter_map(|c| c.metadata.name.as_deref())
            .filter(|c| old.is_redis_claim(c))
            .map(str::to_string)
            .collect(),
    }
}

/// The app, worker and odata Deployments the release runs.
async fn workloads(kube: &Kube, old: &ObjectNames) -> Result<Vec<WorkloadFacts>> {
    let mut workloads = Vec::new();
    for (role, name) in [
        (WorkloadRole::App, &old.app_deployment),
        (WorkloadRole::Worker, &old.worker_deployment),
        (WorkloadRole::Odata, &old.odata_deployment),
    ] {
        if let Some(d) = kube.deployment(name).await? {
            workloads.push(workload_facts(role, name, d));
        }
    }
    Ok(workloads)
}

/// A Deployment's replicas and pod selector (`k=v,...`).
fn workload_facts(role: WorkloadRole, name: &str, deployment: Deployment) -> WorkloadFacts {
    let spec = deployment.spec.unwrap_or_default();
    let selector = spec
        .selector
        .match_labels
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    WorkloadFacts {
        role,
        name: name.to_string(),
        replicas: spec.replicas.unwrap_or(1),
        selector,
    }
}

/// The claims whose volumes the migration keeps or replaces: attachments, and the chart's
/// PostgreSQL and Redis when they are internal.
fn volume_claims(
    old: &ObjectNames,
    postgres: &PostgresFacts,
    redis: &RedisFacts,
) -> Vec<(VolumeRole, String)> {
    let mut claims = vec![(VolumeRole::Attachments, old.attachments_pvc.to_string())];
    if matches!(postgres, PostgresFacts::Internal { .. }) {
        claims.push((VolumeRole::Postgres, old.postgresql_pvc.clone()));
    }
    if let RedisFacts::Internal { claims: redis, .. } = redis {
        claims.extend(redis.iter().map(|c| (VolumeRole::Redis, c.clone())));
    }
    claims
}

/// Each of `claims` found among `all_claims`, with its volume.
async fn volumes(
    kube: &Kube,
    all_claims: &[PersistentVolumeClaim],
    claims: Vec<(VolumeRole, String)>,
) -> Result<Vec<VolumeFacts>> {
    let mut volumes = Vec::new();
    for (role, claim) in claims {
        let Some(pvc) = all_claims
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(claim.as_str()))
        else {
            continue;
        };
        let volume_name = pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|v| !v.is_empty());
        let pv = match &volume_name {
            Some(n) => kube.volume(n).await?,
            None => None,
        };
        volumes.push(volume_facts(role, claim, pvc, pv));
    }
    Ok(volumes)
}

/// A claim and the volume bound to it (`None`: unbound, or the volume is gone).
fn volume_facts(
    role: VolumeRole,
    claim: String,
    pvc: &PersistentVolumeClaim,
    pv: Option<PersistentVolume>,
) -> VolumeFacts {
    let spec = pvc.spec.clone().unwrap_or_default();
    let volume_name = spec.volume_name.filter(|v| !v.is_empty());
    let pv_spec = pv.and_then(|p| p.spec).unwrap_or_default();
    VolumeFacts {
        role,
        claim,
        volume: volume_name,
        reclaim_policy: pv_spec.persistent_volume_reclaim_policy,
        storage_class: spec.storage_class_name.or(pv_spec.storage_class_name),
        capacity_bytes: pv_spec
            .capacity
            .and_then(|c| c.get("storage").and_then(|q| parse_bytes(&q.0)))
            .unwrap_or(0),
    }
}

/// The Secrets the migration replaces or keeps, by role.
fn wanted_secrets(old: &ObjectNames) -> Vec<(SecretRole, String)> {
    let mut wanted = vec![
        (SecretRole::Postgres, old.postgresql_secret.clone()),
        (SecretRole::Redis, old.redis_secret.clone()),
    ];
    wanted.extend(
        old.kept_secrets
            .iter()
            .map(|s| (SecretRole::Kept, s.clone())),
    );
    wanted
}

/// Each wanted Secret that exists, with its keys (never its values).
async fn secrets(kube: &Kube, old: &ObjectNames) -> Result<Vec<SecretFacts>> {
    let mut secrets = Vec::new();
    for (role, name) in wanted_secrets(old) {
        if let Some(s) = kube.secret(&name).await? {
            secrets.push(SecretFacts {
                role,
                name,
                keys: s.data.unwrap_or_default().into_keys().collect(),
            });
        }
    }
    Ok(secrets)
}

/// The storage classes (which is the default) and the storage limits of the quotas.
fn storage_facts(classes: &[StorageClass], quotas: Vec<ResourceQuota>) -> StorageFacts {
    let mut storage = StorageFacts::default();
    for class in classes {
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
    for quota in quotas {
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
    storage
}

/// The target chart: where it is, what it brings, and what it renders.
fn target_facts(
    target: &TargetSettings,
    chart: ChartMetadata,
    rendered: &str,
    postgres_service: &str,
) -> TargetFacts {
    TargetFacts {
        chart: target.chart.as_helm_arg().to_string_lossy().into_owned(),
        remote: target.chart.is_remote(),
        version: target.version.clone(),
        version_given: target.version_given,
        postgresql_subchart: chart.dependency("postgresql").map(str::to_string),
        redis_subchart: chart.dependency("redis").map(str::to_string),
        chart_version: chart.version,
        images: images_in(rendered),
        postgres: crate::plan::target_postgres::find(rendered, postgres_service),
    }
}

/// Whether the current identity may do each thing the migration does to the objects of the
/// old release and of the rendered target chart.
async fn permissions(
    kube: &Kube,
    old_manifest: &str,
    rendered: &str,
) -> Result<Vec<PermissionFacts>> {
    let mut permissions = Vec::new();
    for p in permissions::required(&kinds_in(old_manifest), &kinds_in(rendered)) {
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
    Ok(permissions)
}

/// A note when the release runs none of its Deployments.
fn missing_workloads_note(
    release: &str,
    old: &ObjectNames,
    workloads: &[WorkloadFacts],
) -> Option<String> {
    workloads.is_empty().then(|| {
        format!(
            "no app, worker or odata Deployment of release {release:?} was found (looked for {})",
            old.app_deployment
        )
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

/// What decides whether `--online` is possible, asked inside the PostgreSQL 11 pod with its
/// own credentials from the container environment, over the Unix socket (as
/// [`database_size`]), and the free space of the volume holding its data directory.
pub async fn online_facts(
    kube: &Kube,
    pod: &str,
    database: &str,
) -> Result<crate::plan::online::OnlineFacts> {
    use crate::plan::online;
    use crate::plan::scripts::shell_quote;
    let query = format!(
        "PGPASSWORD=\"${{POSTGRES_PASSWORD:-$(cat \"${{POSTGRES_PASSWORD_FILE:-/dev/null}}\" 2>/dev/null)}}\" \
psql -X -A -t -v ON_ERROR_STOP=1 -U \"${{POSTGRES_USER:-postgres}}\" -d {} -c {}",
        shell_quote(database),
        shell_quote(online::online_facts_query())
    );
    let out = kube
        .exec_script_checked(pod, "reading what online replication needs", &query)
        .await?;
    let free = kube
        .exec_script_checked(
            pod,
            "measuring the free space of the database volume",
            &online::free_space_script(),
        )
        .await?;
    online::parse_online_facts(&out, online::parse_free_bytes(&free)).map_err(|e| {
        Error::new(
            ExitCode::External,
            format!(
                "reading what online replication needs in pod {}/{pod}: {e}",
                kube.namespace
            ),
        )
        .hint(
            "run without --online (the offline copy), or check the pod's PostgreSQL and run again",
        )
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::settings::ChartRef;

    fn values(yaml: &str) -> Value {
        serde_norway::from_str(yaml).unwrap()
    }

    fn old_names(v: &Value) -> ObjectNames {
        ObjectNames::new("la", &NameInputs::from_values(v), Generation::Pg11)
    }

    fn from_json<T: serde::de::DeserializeOwned>(json: serde_json::Value) -> T {
        serde_json::from_value(json).unwrap()
    }

    fn claim(name: &str, volume: Option<&str>, class: Option<&str>) -> PersistentVolumeClaim {
        from_json(json!({
            "metadata": {"name": name},
            "spec": {"volumeName": volume, "storageClassName": class},
        }))
    }

    #[test]
    fn the_names_are_the_old_objects_but_the_new_app_and_the_migration_job() {
        let old = old_names(&Value::Null);
        let new = ObjectNames::new(
            "la",
            &NameInputs::from_values(&Value::Null),
            Generation::Pg15,
        );
        let n = names(&old, &new);
        assert_eq!(
            (n.old_app_deployment.as_str(), n.new_app_deployment.as_str()),
            (old.app_deployment.as_str(), new.app_deployment.as_str())
        );
        assert_eq!(n.postgres_service, old.postgresql);
        assert_eq!(n.postgres_claim, old.postgresql_pvc);
        assert_eq!(n.redis_master_pod, old.redis_master_pod);
        assert_eq!(n.migration_job, new.migration_job);
        assert_eq!(n.attachments_claim, "live-agent");
    }

    #[test]
    fn the_charts_postgresql_is_read_from_the_old_keys() {
        let v = values("postgresql:\n  postgresqlDatabase: la\n  postgresqlUsername: app\n  existingSecret: mine\n  existingPasswordSecretKey: pw\n");
        assert_eq!(charts_database(&v).as_deref(), Some("la"));
        assert_eq!(
            internal_postgres(&v, &old_names(&v), "la".into(), (7, "11.14".into())),
            PostgresFacts::Internal {
                secret: "mine".into(),
                password_key: "pw".into(),
                existing_secret: true,
                username: "app".into(),
                database: "la".into(),
                size_bytes: 7,
                server_version: "11.14".into(),
            }
        );

        let old = old_names(&Value::Null);
        assert_eq!(
            charts_database(&Value::Null).as_deref(),
            Some("live_agent_production")
        );
        let PostgresFacts::Internal {
            secret,
            password_key,
            existing_secret,
            username,
            ..
        } = internal_postgres(&Value::Null, &old, "db".into(), (0, String::new()))
        else {
            panic!("the chart's PostgreSQL is internal");
        };
        assert_eq!(secret, old.postgresql_secret);
        assert_eq!(password_key, old.postgresql_admin_password_key);
        assert!(!existing_secret);
        assert_eq!(username, "postgres");
    }

    #[test]
    fn an_external_postgresql_has_no_database_to_measure() {
        let v = values(
            "postgresql:\n  enabled: false\n  postgresqlHost: db.example\n  postgresqlPort: 5433\n",
        );
        assert_eq!(charts_database(&v), None);
        assert_eq!(
            external_postgres(&v),
            PostgresFacts::External {
                host: "db.example".into(),
                port: 5433,
            }
        );
        assert_eq!(
            external_postgres(&values("postgresql:\n  enabled: false\n")),
            PostgresFacts::External {
                host: String::new(),
                port: 5432,
            }
        );
    }

    #[test]
    fn the_redis_claims_are_found_by_name_however_many_replicas_ran() {
        let old = old_names(&Value::Null);
        let master = format!("redis-data-{}-0", old.redis_master);
        let replica = format!("redis-data-{}-2", old.redis_replicas);
        let all: Vec<PersistentVolumeClaim> = [
            master.as_str(),
            "live-agent",
            replica.as_str(),
            &format!("redis-data-{}-x", old.redis_master),
        ]
        .into_iter()
        .map(|n| claim(n, None, None))
        .collect();
        assert_eq!(
            redis_facts(&Value::Null, &old, &all),
            RedisFacts::Internal {
                secret: old.redis_secret.clone(),
                password_key: old.redis_password_key.to_string(),
                existing_secret: false,
                claims: vec![master, replica],
            }
        );
        let v = values("redis:\n  enabled: false\n  host: r.example\n");
        assert_eq!(
            redis_facts(&v, &old, &all),
            RedisFacts::External {
                host: "r.example".into()
            }
        );
    }

    #[test]
    fn a_deployment_runs_one_replica_unless_it_says_otherwise() {
        let d: Deployment = from_json(json!({
            "metadata": {"name": "la-worker"},
            "spec": {"selector": {"matchLabels": {"role": "worker", "app": "la"}}, "template": {}},
        }));
        assert_eq!(
            workload_facts(WorkloadRole::Worker, "la-worker", d),
            WorkloadFacts {
                role: WorkloadRole::Worker,
                name: "la-worker".into(),
                replicas: 1,
                selector: "app=la,role=worker".into(),
            }
        );
    }

    #[test]
    fn the_volumes_wanted_are_the_attachments_and_the_charts_own_databases() {
        let old = old_names(&Value::Null);
        let internal = internal_postgres(&Value::Null, &old, "db".into(), (0, String::new()));
        let external = external_postgres(&values("postgresql:\n  enabled: false\n"));
        let redis = redis_facts(&Value::Null, &old, &[]);
        let roles = |postgres| -> Vec<VolumeRole> {
            volume_claims(&old, postgres, &redis)
                .into_iter()
                .map(|(role, _)| role)
                .collect()
        };
        assert_eq!(
            roles(&internal),
            [VolumeRole::Attachments, VolumeRole::Postgres]
        );
        assert_eq!(roles(&external), [VolumeRole::Attachments]);
    }

    #[test]
    fn a_claims_class_wins_over_its_volumes_and_the_capacity_is_in_bytes() {
        let pv: PersistentVolume = from_json(json!({
            "metadata": {"name": "pv-1"},
            "spec": {
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": "slow",
                "capacity": {"storage": "8Gi"},
            },
        }));
        let bound = claim("data", Some("pv-1"), None);
        assert_eq!(
            volume_facts(VolumeRole::Postgres, "data".into(), &bound, Some(pv)),
            VolumeFacts {
                role: VolumeRole::Postgres,
                claim: "data".into(),
                volume: Some("pv-1".into()),
                reclaim_policy: Some("Delete".into()),
                storage_class: Some("slow".into()),
                capacity_bytes: 8 << 30,
            }
        );
        let unbound = claim("data", Some(""), Some("fast"));
        let f = volume_facts(VolumeRole::Postgres, "data".into(), &unbound, None);
        assert_eq!(
            (f.volume, f.storage_class.as_deref(), f.capacity_bytes),
            (None, Some("fast"), 0)
        );
    }

    #[test]
    fn the_secrets_wanted_are_the_database_secrets_and_the_kept_ones() {
        let old = old_names(&Value::Null);
        let wanted = wanted_secrets(&old);
        assert_eq!(
            wanted[0],
            (SecretRole::Postgres, old.postgresql_secret.clone())
        );
        assert_eq!(wanted[1], (SecretRole::Redis, old.redis_secret.clone()));
        assert_eq!(wanted.len(), 2 + old.kept_secrets.len());
        assert!(wanted[2..]
            .iter()
            .all(|(role, _)| *role == SecretRole::Kept));
    }

    #[test]
    fn storage_quotas_count_storage_requests_only_and_an_unsynced_quota_its_spec() {
        let classes: Vec<StorageClass> = vec![
            from_json(json!({
                "metadata": {
                    "name": "standard",
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": "p",
            })),
            from_json(json!({"metadata": {"name": "fast"}, "provisioner": "p"})),
        ];
        let quotas: Vec<ResourceQuota> = vec![
            from_json(json!({
                "metadata": {"name": "synced"},
                "spec": {"hard": {"requests.storage": "1Gi"}},
                "status": {
                    "hard": {
                        "requests.storage": "20Gi",
                        "fast.storageclass.storage.k8s.io/requests.storage": "5Gi",
                        "pods": "10",
                    },
                    "used": {"requests.storage": "2Gi"},
                },
            })),
            from_json(json!({
                "metadata": {"name": "new"},
                "spec": {"hard": {"requests.storage": "1Gi"}},
            })),
        ];
        let quota = |name: &str, class: Option<&str>, hard: u64, used: u64| QuotaFacts {
            name: name.into(),
            storage_class: class.map(str::to_string),
            hard_bytes: hard,
            used_bytes: used,
        };
        assert_eq!(
            storage_facts(&classes, quotas),
            StorageFacts {
                default_class: Some("standard".into()),
                classes: vec!["standard".into(), "fast".into()],
                quotas: vec![
                    quota("synced", Some("fast"), 5 << 30, 0),
                    quota("synced", None, 20 << 30, 2 << 30),
                    quota("new", None, 1 << 30, 0),
                ],
            }
        );
    }

    #[test]
    fn the_target_facts_say_what_the_chart_brings() {
        let target = TargetSettings {
            chart: ChartRef::Oci("oci://registry.example/live-agent".into()),
            version: "4.44.0".into(),
            version_given: false,
        };
        let chart = ChartMetadata {
            version: "4.44.0".into(),
            dependencies: vec![("postgresql".into(), "12.1.6".into())],
        };
        let t = target_facts(&target, chart, "    image: redis:7\n", "la-postgresql");
        assert_eq!(t.chart, "oci://registry.example/live-agent");
        assert!(t.remote && !t.version_given);
        assert_eq!(t.postgresql_subchart.as_deref(), Some("12.1.6"));
        assert_eq!(t.redis_subchart, None);
        assert_eq!(t.images, ["redis:7"]);
        assert_eq!(t.postgres, None, "no StatefulSet rendered");
    }

    #[test]
    fn a_release_without_deployments_gets_a_note() {
        let old = old_names(&Value::Null);
        let note = missing_workloads_note("la", &old, &[]).unwrap();
        assert!(note.contains(&old.app_deployment), "{note}");
        let app = WorkloadFacts {
            role: WorkloadRole::App,
            name: old.app_deployment.clone(),
            replicas: 1,
            selector: String::new(),
        };
        assert_eq!(missing_workloads_note("la", &old, &[app]), None);
    }

    #[test]
    fn images_are_read_from_rendered_manifests() {
        let m = "spec:\n  containers:\n    - image: \"docker.io/bitnami/redis:7.0.7\"\n      name: r\n  initContainers:\n  - name: x\n    image: busybox:1.28\n---\n    image: docker.io/bitnami/redis:7.0.7\n";
        assert_eq!(
            images_in(m),
            ["docker.io/bitnami/redis:7.0.7", "busybox:1.28"]
        );
    }
}
