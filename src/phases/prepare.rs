//! Prepare, with the app still up: the replica counts recorded, the new release's database
//! passwords staged, PostgreSQL 15 started beside PostgreSQL 11 on a claim of its own (the
//! target chart's own container) and the copy pod ready. A class that cannot provision or an
//! image that cannot be pulled stops the run here, before anything is off.

use std::collections::BTreeMap;
use std::time::Duration;

use super::jobs::ready_pod;
use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::helm::argv;
use crate::plan::quantity::human;
use crate::plan::{manifests, target_postgres, NewDatabasePlan};

/// The plan's new database; `None` only for an external database, whose plan has no such
/// steps.
pub fn new_database_plan(r: &Runner<'_>) -> Result<NewDatabasePlan> {
    r.state.plan.new_database.clone().ok_or_else(|| {
        Error::new(
            ExitCode::Precondition,
            "the plan has no new database (external PostgreSQL)",
        )
    })
}

pub async fn record_replicas(r: &mut Runner<'_>, deployments: &[String]) -> Result<String> {
    let mut found = Vec::new();
    for name in deployments {
        if let Some(d) = r.kube.deployment(name).await? {
            let replicas = d.spec.and_then(|s| s.replicas).unwrap_or(1);
            r.state.record.replicas.insert(name.clone(), replicas);
            found.push(format!("{name}={replicas}"));
        }
    }
    Ok(format!("recorded replicas: {}", found.join(", ")))
}

/// Writes the passwords the new release will use into the plugin's Secret, which the new
/// database initialises with and which becomes `<release>-postgresql` at the cut-over. Never
/// rewritten once there: PostgreSQL 15 may have initialised with it.
pub async fn stage_passwords(r: &mut Runner<'_>) -> Result<String> {
    let db = new_database_plan(r)?;
    if r.kube.secret(&db.secret).await?.is_some() {
        return Ok(format!("Secret {} holds the passwords already", db.secret));
    }
    let keep_passwords = r.state.plan.keeps_passwords();
    let data = if keep_passwords {
        let old = r
            .kube
            .secret(&db.release_secret)
            .await?
            .and_then(|s| s.data)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect::<BTreeMap<_, _>>();
        if old.is_empty() {
            return Err(Error::new(
                ExitCode::Precondition,
                format!(
                    "--keep-passwords: Secret {}/{} is missing or empty",
                    r.settings.namespace, db.release_secret
                ),
            )
            .hint("run without --keep-passwords to give the new release new passwords"));
        }
        super::cutover::secret_data_for_4_44(&old)
    } else {
        chart_passwords(r, &db).await?
    };
    r.kube
        .put_secret(&db.secret, manifests::labels(&r.settings.release), data)
        .await?;
    Ok(format!(
        "the new release's database passwords are in Secret {}/{}{}",
        r.settings.namespace,
        db.secret,
        if keep_passwords {
            " (the old ones, --keep-passwords)"
        } else {
            " (as the target chart generates them)"
        }
    ))
}

/// The data of `<release>-postgresql` as the target chart renders it with the saved values:
/// the operator's `auth.postgresPassword`/`auth.password`, else the chart's random ones.
async fn chart_passwords(
    r: &Runner<'_>,
    db: &NewDatabasePlan,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let plan = &r.state.plan;
    let chart = std::ffi::OsString::from(&plan.chart);
    let version = plan.chart_remote.then_some(plan.to_version.as_str());
    let mut saved = super::overrides::saved_values_data(r).await?;
    let overrides = super::overrides::decode_saved(r, &saved)?;
    let values = super::values_secret::translated_values(r, &mut saved)?;
    let mut docs = vec![values.as_str()];
    docs.extend(overrides.documents());
    let rendered = tokio::task::block_in_place(|| {
        r.helm.run_with_values(
            &argv::template(&r.settings.release, &chart, version, &overrides.set),
            &docs,
        )
    })?;
    match target_postgres::secret_data(&rendered.stdout, &db.release_secret) {
        Some(data) if data.contains_key("postgres-password") => Ok(data),
        _ => Err(Error::new(
            ExitCode::External,
            format!(
                "the target chart renders no Secret {} with the key postgres-password",
                db.release_secret
            ),
        )
        .hint("check --chart and the release's values (postgresql.auth), then run again")),
    }
}

/// PostgreSQL 15 beside PostgreSQL 11: its claim, its pod and a Service, ready to connect.
pub async fn new_database(r: &mut Runner<'_>) -> Result<String> {
    let db = new_database_plan(r)?;
    let ns = r.settings.namespace.clone();
    let release = r.settings.release.clone();
    r.kube
        .ensure_claim(&manifests::claim(
            &db.claim,
            db.storage_class.as_ref(),
            db.size_bytes,
            &ns,
            &release,
        ))
        .await?;
    r.kube
        .ensure_service(&manifests::new_database_service(&db.service, &ns, &release))
        .await?;
    r.kube.ensure_pod(&db.pod).await?;
    // The cut-over deletes the claim and the pod: only those the plugin created.
    r.record_created("PersistentVolumeClaim", &db.claim).await?;
    r.record_created("Pod", &db.pod_name()).await?;
    // A first start initialises the data directory.
    r.kube
        .wait_pod_ready(&db.pod_name(), Duration::from_secs(900))
        .await?;
    Ok(format!(
        "PostgreSQL 15 ready in pod {} on claim {} ({}, class {}), Service {}",
        db.pod_name(),
        db.claim,
        human(db.size_bytes),
        db.storage_class.as_deref().unwrap_or("(default)"),
        db.service
    ))
}

pub async fn copy_pod(r: &mut Runner<'_>) -> Result<String> {
    let db = new_database_plan(r)?;
    let pod = manifests::copy_pod(&db, &r.settings.namespace, &r.settings.release);
    let name = ready_pod(r, &pod).await?;
    Ok(format!("copy pod {name} ready"))
}
