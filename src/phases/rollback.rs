//! Rollback: back to the original release from any step (`helm la-migrate 4.44 rollback`).
//! The steps are `plan::rollback`'s; this file does them. After the point of no return the
//! original chart is installed again from the archive saved when the migration started, on
//! PostgreSQL 11's and Redis 6's retained volumes, with the database Secrets as they were.

use std::collections::BTreeMap;
use std::time::Duration;

use super::verify::{in_pod_fingerprint, Counted};
use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::helm::argv;
use crate::kube::ops::Seen;
use crate::plan::helm_release::{self, Install};
use crate::plan::rollback::{self as plan_rollback, ChangedTable, CHART_KEY};
use crate::plan::{Action, RetainVolume};
use crate::verify::compare;

/// Asked once per run that reaches a destructive rollback step: what the rollback deletes
/// and, once the 4.44 app has run on PostgreSQL 15, the rows it wrote there since the point
/// of no return (per table), which do not go back. Typed release name or `--yes`.
pub async fn confirm(r: &mut Runner<'_>) -> Result<()> {
    let plan = r.state.plan.clone();
    let written = match written_since_cutover(r).await {
        Ok(changed) => changed,
        Err(e) => {
            r.note(&format!(
                "PostgreSQL 15's rows were not counted ({}): the app may have written to it since the point of no return",
                e.message
            ));
            Vec::new()
        }
    };
    let past = plan
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::ReinstallOriginal));
    let pending: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.phase == crate::plan::Phase::Rollback && !r.state.is_done(&s.id))
        .map(|s| s.title.clone())
        .collect();
    r.printer.event(
        serde_json::json!({
            "event": "confirm-rollback",
            "to_version": plan.from_version,
            "reinstall": past,
            "written_since_cutover": written.iter().map(|c| serde_json::json!({
                "table": c.table, "rows_at_cutover": c.at_cutover, "rows_now": c.now,
            })).collect::<Vec<_>>(),
        }),
        |p| {
            p.note(&format!(
                "Rolling release {} back to chart {}:",
                plan.release, plan.from_version
            ));
            for title in &pending {
                p.note(&format!("  - {title}"));
            }
            if !written.is_empty() {
                p.warn(
                    "The 4.44 app wrote to PostgreSQL 15 since the point of no return; these changes do not go back to PostgreSQL 11 (its volume is kept, Released):",
                );
                for t in &written {
                    p.note(&format!("  - {t}"));
                }
            }
        },
    );
    r.confirm(&format!(
        "rolling release {} back to chart {}",
        plan.release, plan.from_version
    ))
    .await?;
    r.deletes_confirmed = true;
    Ok(())
}

/// The tables whose rows on PostgreSQL 15 differ from what the copy put there; empty when
/// the 4.44 release never ran or is gone already.
async fn written_since_cutover(r: &Runner<'_>) -> Result<Vec<ChangedTable>> {
    let (Some(db), Some(source)) = (&r.state.plan.new_database, &r.state.record.source) else {
        return Ok(Vec::new());
    };
    if r.state.is_done("rollback.uninstall") {
        return Ok(Vec::new());
    }
    let release = r.settings.release.clone();
    let status = tokio::task::block_in_place(|| r.helm.status(&release))?;
    if status.is_none_or(|s| s.chart_version != r.state.plan.to_version) {
        return Ok(Vec::new());
    }
    let now = in_pod_fingerprint(r, &db.release_pod, Counted::Rows, source.method).await?;
    Ok(plan_rollback::changed_since_cutover(source, &now))
}

pub async fn restore_replicas(
    r: &mut Runner<'_>,
    replicas: &BTreeMap<String, i32>,
) -> Result<String> {
    let mut done = Vec::new();
    for (d, n) in replicas {
        let Some(dep) = r.kube.deployment(d).await? else {
            return Err(Error::new(
                ExitCode::Precondition,
                format!(
                    "Deployment {}/{d} does not exist: the release is not installed",
                    r.settings.namespace
                ),
            )
            .hint(format!(
                "see `helm status {} -n {}`, then {}",
                r.settings.release,
                r.settings.namespace,
                rollback_rerun(r)
            )));
        };
        if dep.spec.and_then(|s| s.replicas) != Some(*n) {
            r.kube.scale(d, *n).await?;
        }
        done.push(format!("{d} {n}"));
    }
    for (d, n) in replicas {
        if *n > 0 {
            r.kube
                .wait_deployment_ready(d, Duration::from_secs(900))
                .await?;
        }
    }
    Ok(format!("replicas as recorded: {}", done.join(", ")))
}

pub async fn restore_policies(
    r: &mut Runner<'_>,
    policies: &BTreeMap<String, String>,
) -> Result<String> {
    let mut set = Vec::new();
    for (volume, policy) in policies {
        if r.kube.volume(volume).await?.is_some() {
            r.kube.set_reclaim_policy(volume, policy).await?;
            set.push(format!("{volume} {policy}"));
        }
    }
    Ok(format!("reclaim policies set back: {}", set.join(", ")))
}

/// The release uninstalled, unless it runs the original chart (a rerun after the reinstall).
pub async fn uninstall(r: &mut Runner<'_>) -> Result<String> {
    let release = r.settings.release.clone();
    let from = r.state.plan.from_version.clone();
    let status = super::install::settled_release(r).await?;
    match status {
        None => Ok(format!("release {release} is not installed")),
        Some(s) if s.chart_version == from && s.status == "deployed" => {
            Ok(format!("release {release} runs chart {from} already"))
        }
        Some(s) => {
            tokio::task::block_in_place(|| {
                r.helm.run(&argv::uninstall(
                    &release,
                    r.state.plan.helm_timeout_seconds,
                ))
            })?;
            Ok(format!(
                "release {release} ({} on chart {}) uninstalled",
                s.status, s.chart_version
            ))
        }
    }
}

/// The claims the uninstall left that hold another volume than the original one: that
/// volume set to Retain (kept, Released: the new release's data), the claim deleted.
pub async fn release_claims(r: &mut Runner<'_>, claims: &[RetainVolume]) -> Result<String> {
    let mut deleted = Vec::new();
    for c in claims {
        let Some(claim) = r.kube.claim(&c.claim).await? else {
            continue;
        };
        let volume = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|v| !v.is_empty());
        if volume.as_deref() == Some(c.volume.as_str()) {
            continue;
        }
        if let Some(v) = &volume {
            r.kube.set_reclaim_policy(v, "Retain").await?;
            keep_volume(r, v).await?;
        }
        // This claim as seen now: one created again meanwhile is not deleted.
        let seen = Seen::uid_of(&claim.metadata);
        r.kube.delete_claims(&[(c.claim.clone(), seen)]).await?;
        deleted.push(c.claim.clone());
    }
    for c in claims {
        wait_claim_gone_or_on(r, c).await?;
    }
    Ok(if deleted.is_empty() {
        "no claim of the new release left".to_string()
    } else {
        format!(
            "deleted claims {}; their volumes are kept: {}",
            deleted.join(", "),
            r.state.record.rollback_kept_volumes.join(", ")
        )
    })
}

/// Until claim `c.claim` is gone or bound to `c.volume`.
async fn wait_claim_gone_or_on(r: &Runner<'_>, c: &RetainVolume) -> Result<()> {
    let kube = r.kube.clone();
    crate::kube::wait::until(
        &format!(
            "claim {}/{} to be deleted or bound to {}",
            r.settings.namespace, c.claim, c.volume
        ),
        Duration::from_secs(300),
        || async {
            let claim = kube.claim(&c.claim).await?;
            let on = |claim: &k8s_openapi::api::core::v1::PersistentVolumeClaim| {
                claim.spec.as_ref().and_then(|s| s.volume_name.as_deref())
                    == Some(c.volume.as_str())
            };
            Ok((claim.is_none() || claim.as_ref().is_some_and(on)).then_some(()))
        },
    )
    .await
}

pub async fn rebind_volumes(r: &mut Runner<'_>, volumes: &[RetainVolume]) -> Result<String> {
    park_new_database_volume(r).await?;
    let mut reserved = Vec::new();
    for v in volumes {
        if r.kube.volume(&v.volume).await?.is_none() {
            return Err(Error::new(
                ExitCode::Precondition,
                format!(
                    "volume {} (claim {}) no longer exists: there is nothing to roll back onto",
                    v.volume, v.claim
                ),
            )
            .hint("it was deleted after the migration (cleanup --delete-old-volumes?); restore it from your backups"));
        }
        wait_claim_gone_or_on(r, v).await?;
        if r.kube.claim(&v.claim).await?.is_none() {
            r.kube.reserve_volume(&v.volume, &v.claim).await?;
            reserved.push(format!("{} -> {}", v.volume, v.claim));
        }
    }
    Ok(format!("volumes reserved: {}", reserved.join(", ")))
}

/// PostgreSQL 15's volume, reserved for the release's claim at the cut-over and not bound
/// (the install did not create the claim yet): handed back to the plugin's claim it was made
/// for, as recorded (a claim gone), so it stays Released and only PostgreSQL 11's volume can
/// take the release's claim. It is kept like the volumes the new release used.
async fn park_new_database_volume(r: &mut Runner<'_>) -> Result<()> {
    let (Some(db), Some(volume)) = (
        r.state.plan.new_database.clone(),
        r.state.record.new_database_volume.clone(),
    ) else {
        return Ok(());
    };
    let Some(pv) = r.kube.volume(&volume).await? else {
        return Ok(());
    };
    let reserved = pv.spec.and_then(|s| s.claim_ref).is_some_and(|c| {
        c.name.as_deref() == Some(db.release_claim.as_str())
            && c.uid.as_deref().unwrap_or_default().is_empty()
    });
    if !reserved {
        return Ok(());
    }
    let Some(uid) = r.recorded("PersistentVolumeClaim", &db.claim) else {
        return Err(Error::new(
            ExitCode::Precondition,
            format!(
                "volume {volume} of PostgreSQL 15 is reserved for claim {} and no uid of claim {} was recorded to hand it back to",
                db.release_claim, db.claim
            ),
        )
        .hint(format!(
            "set the volume's claimRef aside yourself (`kubectl patch pv {volume} ...`) or delete it, then {}",
            rollback_rerun(r)
        )));
    };
    r.kube.release_volume(&volume, &db.claim, &uid.uid).await?;
    keep_volume(r, &volume).await
}

/// Records a volume of the new release the rollback keeps (listed at the end).
async fn keep_volume(r: &mut Runner<'_>, volume: &str) -> Result<()> {
    if !r
        .state
        .record
        .rollback_kept_volumes
        .iter()
        .any(|v| v == volume)
    {
        r.state
            .record
            .rollback_kept_volumes
            .push(volume.to_string());
        r.save().await?;
    }
    Ok(())
}

pub async fn restore_secrets(r: &mut Runner<'_>, secrets: &[String]) -> Result<String> {
    let saved = super::overrides::saved_values_data(r).await?;
    let mut written = Vec::new();
    for s in secrets {
        let data = super::values_secret::saved_passwords(&saved, s);
        if let Some(now) = r.kube.secret(s).await? {
            r.kube
                .delete_secret(s, Seen::uid_of(&now.metadata).as_ref())
                .await?;
        }
        if data.is_empty() {
            r.note(&format!(
                "Secret {s} was not saved when the migration started: the chart generates it"
            ));
            continue;
        }
        super::cutover::put_adoptable_secret(r, s, data).await?;
        written.push(s.clone());
    }
    Ok(format!("wrote {} as they were", written.join(", ")))
}

pub async fn reinstall(r: &mut Runner<'_>) -> Result<String> {
    let release = r.settings.release.clone();
    let from = r.state.plan.from_version.clone();
    let settled = super::install::settled_release(r).await?;
    let verb = match helm_release::install(settled.as_ref(), &from) {
        Install::Done => return Ok(format!("release {release} runs chart {from} already")),
        Install::Refuse(why) => {
            return Err(
                Error::new(ExitCode::Precondition, format!("release {release} {why}")).hint(
                    format!(
                        "see `helm history {release} -n {}`, then {}",
                        r.settings.namespace,
                        rollback_rerun(r)
                    ),
                ),
            )
        }
        Install::CompleteFailed => "upgrade",
        Install::Install => "install",
    };
    let mut saved = super::overrides::saved_values_data(r).await?;
    let Some(archive) = saved.remove(CHART_KEY) else {
        return Err(Error::new(
            ExitCode::Precondition,
            format!(
                "the archive of chart {from} was not saved when the migration started (Secret {} has no {CHART_KEY})",
                r.state.plan.values_secret
            ),
        )
        .hint(format!(
            "install it yourself: `helm install {release} <chart {from}> -n {} -f <values>` with the values in key original.yaml of Secret {}, then {}",
            r.settings.namespace,
            r.state.plan.values_secret,
            rollback_rerun(r)
        )));
    };
    let original =
        String::from_utf8(saved.remove("original.yaml").unwrap_or_default()).map_err(|e| {
            Error::new(
                ExitCode::InvalidInput,
                "the saved original values are not UTF-8",
            )
            .source(e)
        })?;
    let file = write_archive(&archive)?;
    let chart = std::ffi::OsString::from(file.path());
    tokio::task::block_in_place(|| {
        r.helm.run_with_values(
            &argv::release_operation(
                verb,
                &release,
                &chart,
                None,
                &[],
                r.state.plan.helm_timeout_seconds,
            ),
            &[original.as_str()],
        )
    })?;
    Ok(format!(
        "{} chart {from} from its saved archive with the original values",
        if verb == "install" {
            "installed"
        } else {
            "completed the failed install of"
        }
    ))
}

/// The chart archive in a private temporary file helm reads.
fn write_archive(bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    use std::io::Write;
    let mut file = tempfile::Builder::new()
        .prefix("la-migrate-chart-")
        .suffix(".tgz")
        .tempfile()
        .map_err(|e| Error::new(ExitCode::Failure, "cannot create a temporary file").source(e))?;
    file.write_all(bytes)
        .map_err(|e| Error::new(ExitCode::Failure, "cannot write the chart archive").source(e))?;
    Ok(file)
}

/// PostgreSQL 11, back in the release, holds what the proof found in it: every table's
/// rows and content, sequences and schema objects. The app is kept at 0 until then, so
/// nothing writes meanwhile; the next step scales it as recorded.
pub async fn check_database(r: &mut Runner<'_>) -> Result<String> {
    let Some(source) = r.state.record.source.clone() else {
        return Ok("no fingerprint of PostgreSQL 11 was recorded".to_string());
    };
    // The original release's Deployments, as the migration scaled them down.
    let (deployments, selectors) = r.state.plan.scaled_down();
    for d in &deployments {
        if r.kube.deployment(d).await?.is_some() {
            r.kube.scale(d, 0).await?;
        }
    }
    for s in selectors.iter().filter(|s| !s.is_empty()) {
        r.kube.wait_pods_gone(s, Duration::from_secs(300)).await?;
    }
    let pod = format!("{}-postgresql-0", r.settings.release);
    r.kube
        .wait_pod_ready(&pod, Duration::from_secs(600))
        .await?;
    let live = in_pod_fingerprint(r, &pod, Counted::Everything, source.method).await?;
    let report = compare(&source, &live, true);
    if !report.is_equal() {
        let shown: Vec<String> = report
            .differences
            .iter()
            .take(20)
            .map(ToString::to_string)
            .collect();
        return Err(Error::new(
            ExitCode::VerificationFailed,
            format!(
                "PostgreSQL 11 does not hold what it held at the point of no return ({} differences):\n  - {}",
                report.differences.len(),
                shown.join("\n  - ")
            ),
        )
        .hint(format!(
            "the release runs chart {} on PostgreSQL 11 with the app at 0; inspect the database, then scale the app up yourself or {}",
            r.state.plan.from_version,
            rollback_rerun(r)
        )));
    }
    Ok(format!(
        "PostgreSQL 11 holds what it held at the point of no return: {} tables, {} rows, {} sequences",
        report.tables,
        report.rows,
        source.sequences.len()
    ))
}

fn rollback_rerun(r: &Runner<'_>) -> String {
    format!("run `{}` again", r.command("rollback"))
}
