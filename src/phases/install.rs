//! Install: the target chart once, through `$HELM_BIN`, with the saved translated values in a
//! private temporary file and the final settings (migration on, replicas and odata as
//! recorded); PostgreSQL 15 starts on the copied data. Then the wait for the app.

use std::time::Duration;

use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::helm::{argv, ReleaseStatus};
use crate::kube::ops::Seen;
use crate::plan::commands;
use crate::plan::facts::WorkloadFacts;
use crate::plan::helm_release::{self, Install, Pending};
use crate::state::now;

/// `helm <verb>` of the target chart with the saved translated values and overrides, the
/// `--set`s in the order `commands::deploy_sets` gives.
async fn deploy(r: &Runner<'_>, verb: &str, replicas: &[WorkloadFacts]) -> Result<()> {
    // The chart the plan was made for: a resumed run installs what preflight checked, whatever
    // `--chart`/`--version` the rerun was given.
    let plan = &r.state.plan;
    let chart = std::ffi::OsString::from(&plan.chart);
    let mut saved = super::overrides::saved_values_data(r).await?;
    let overrides = super::overrides::decode_saved(r, &saved)?;
    let values = super::values_secret::translated_values(r, &mut saved)?;
    let sets = commands::deploy_sets(
        replicas,
        plan.odata_enabled,
        plan.new_database.as_ref(),
        verb == "upgrade",
        &overrides.set,
    );
    let mut docs = vec![values.as_str()];
    docs.extend(overrides.documents());
    tokio::task::block_in_place(|| {
        r.helm.run_with_value_files(&docs, |files| {
            argv::ReleaseOperation {
                verb,
                release: &r.settings.release,
                chart: &chart,
                version: plan.chart_remote.then_some(plan.to_version.as_str()),
                namespace: None,
                values: files,
                sets: &sets,
                timeout_seconds: plan.helm_timeout_seconds,
            }
            .argv()
        })
    })?;
    Ok(())
}

/// The release once no helm operation is pending: a pending one is waited for while its helm
/// may still run (helm's timeout plus a margin), then its record is dropped, as a helm that
/// died leaves it and no later helm operation would start over it.
pub(super) async fn settled_release(r: &Runner<'_>) -> Result<Option<ReleaseStatus>> {
    let release = r.settings.release.clone();
    let timeout = r.state.plan.helm_timeout_seconds;
    let mut told = false;
    // The pending revision first seen, and when (this machine's monotonic clock).
    let mut watching: Option<(u32, std::time::Instant)> = None;
    let started = std::time::Instant::now();
    // The revision whose record this run dropped.
    let mut dropped: Option<u32> = None;
    loop {
        if helm_release::waited_too_long(started.elapsed().as_secs(), timeout) {
            return Err(Error::new(
                ExitCode::Precondition,
                format!(
                    "release {release} is still in a pending helm operation after {} s: another helm works on it",
                    started.elapsed().as_secs()
                ),
            )
            .hint(format!(
                "see `helm history {release} -n {}` and who runs helm on it; once no operation is pending, {}",
                r.settings.namespace,
                r.rerun_hint()
            )));
        }
        let status = tokio::task::block_in_place(|| r.helm.status(&release))?;
        let revision = status.as_ref().map(|s| s.revision).unwrap_or(0);
        if watching.is_none_or(|(seen, _)| seen != revision) {
            watching = Some((revision, std::time::Instant::now()));
        }
        let waited = watching.map_or(0, |(_, since)| since.elapsed().as_secs() as i64);
        match helm_release::pending_after(status.as_ref(), now(), timeout, waited) {
            Pending::No => return Ok(status),
            Pending::Running { wait_seconds } => {
                if !told {
                    r.note(&format!(
                        "release {release} is {} (revision {}): waiting up to {wait_seconds} s for that helm operation to end",
                        status.as_ref().map(|s| s.status.as_str()).unwrap_or(""),
                        status.as_ref().map(|s| s.revision).unwrap_or(0),
                    ));
                    told = true;
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Pending::Abandoned { revision } => {
                let record = format!("sh.helm.release.v1.{release}.v{revision}");
                if dropped == Some(revision) {
                    return Err(Error::new(
                        ExitCode::Precondition,
                        format!("release {release} is still pending at revision {revision} after its record (Secret {record}) was dropped"),
                    )
                    .hint(format!("see `helm history {release} -n {}` and where helm keeps its records (HELM_DRIVER); once no operation is pending, {}", r.settings.namespace, r.rerun_hint())));
                }
                if !r.settings.helm_records_in_secrets() {
                    let driver = r.settings.helm_driver.as_deref().unwrap_or_default();
                    return Err(Error::new(
                        ExitCode::Precondition,
                        format!("release {release} was left pending (revision {revision}) by a helm that no longer runs"),
                    )
                    .hint(format!("helm keeps its records with HELM_DRIVER={driver}: delete the record of revision {revision} there, then run again")));
                }
                r.note(&format!(
                    "release {release} was left {} at revision {revision} by a helm that no longer runs: dropping that record (Secret {record}); the objects stay and the next helm operation takes them over",
                    status.as_ref().map(|s| s.status.as_str()).unwrap_or("pending")
                ));
                // That record as judged abandoned, not one a helm wrote since.
                let seen = r
                    .kube
                    .secret(&record)
                    .await?
                    .and_then(|s| Seen::version_of(&s.metadata));
                r.kube.delete_secret(&record, seen.as_ref()).await?;
                dropped = Some(revision);
            }
        }
    }
}

pub async fn helm_install(r: &mut Runner<'_>) -> Result<String> {
    if r.state.plan.new_database.is_some() && !r.state.record.copy_verified {
        return Err(Error::new(
            ExitCode::Precondition,
            "PostgreSQL 15 is not proven equal to PostgreSQL 11: refusing to start the app on it",
        )
        .hint(format!("run `{}` first", r.command("copy"))));
    }
    let release = r.settings.release.clone();
    let to_version = r.state.plan.to_version.clone();
    let settled = settled_release(r).await?;
    let verb = match helm_release::install(settled.as_ref(), &to_version) {
        Install::Done => return Ok(format!("release {release} is installed already")),
        Install::Refuse(why) => {
            return Err(Error::new(
                ExitCode::Precondition,
                format!("release {release} {why}"),
            )
            .hint(format!(
                "see `helm history {release} -n {}`; the migration installs chart {to_version} once the name is free",
                r.settings.namespace
            )))
        }
        Install::CompleteFailed => "upgrade",
        Install::Install => "install",
    };
    let replicas = recorded(r).await?;
    deploy(r, verb, &replicas).await?;
    let counts: Vec<String> = replicas
        .iter()
        .map(|w| format!("{:?} {}", w.role, w.replicas).to_lowercase())
        .collect();
    Ok(format!(
        "{} chart {to_version} with the migration on; {}",
        if verb == "install" {
            "installed"
        } else {
            "completed the failed install of"
        },
        counts.join(", ")
    ))
}

/// Replica counts for the install: as recorded before the scale-down; one recorded at 0
/// (scaled down before the migration) from the release's saved values or the chart default.
async fn recorded(r: &Runner<'_>) -> Result<Vec<WorkloadFacts>> {
    let mut saved = super::overrides::saved_values_data(r).await?;
    let values = super::values_secret::translated_values(r, &mut saved)?;
    let values: serde_norway::Value =
        serde_norway::from_str(&values).unwrap_or(serde_norway::Value::Null);
    let (counts, notes) =
        crate::replicas::for_upgrade(&r.state.plan.replicas, &r.state.record.replicas, &values);
    for note in notes {
        r.note(&note);
    }
    Ok(counts)
}

pub async fn wait_app(r: &mut Runner<'_>, deployments: &[String]) -> Result<String> {
    for d in deployments {
        r.kube
            .wait_deployment_ready(d, Duration::from_secs(900))
            .await?;
    }
    Ok(format!("{} ready", deployments.join(", ")))
}
