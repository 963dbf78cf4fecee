//! Verify: the migrated release as a whole. Deployments ready, the attachments claim bound to
//! the original volume, PostgreSQL 15 on the copied volume with no table holding fewer rows
//! than PostgreSQL 11 had.

use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::kube::wait;
use crate::plan::{scripts, NewDatabasePlan};
use crate::verify::{compare, sql};

/// The problem of a Deployment at 0 replicas, with the command that starts it.
fn scaled_to_zero(r: &Runner<'_>, deployment: &str) -> String {
    let plan = &r.state.plan;
    let key = plan
        .replicas
        .iter()
        .find(|w| w.name == deployment)
        .map_or("app.replica", |w| {
            crate::plan::commands::replica_key(w.role)
        });
    let version = if plan.chart_remote {
        format!(" --version {}", plan.to_version)
    } else {
        String::new()
    };
    format!(
        "Deployment {deployment} has 0 replicas: that part of the app is off; start it with `helm upgrade {} {}{version} -n {} --reuse-values --set {key}=1`, then run `{}`",
        plan.release,
        plan.chart,
        plan.namespace,
        r.command("verify")
    )
}

pub async fn report(r: &mut Runner<'_>) -> Result<String> {
    let mut problems = Vec::new();
    let mut lines = Vec::new();
    let deployments = r.state.plan.app_deployments();
    for d in &deployments {
        match r.kube.deployment(d).await? {
            Some(dep) if wait::scaled_to_zero(&dep) => problems.push(scaled_to_zero(r, d)),
            Some(dep) if wait::deployment_ready(&dep) => {
                lines.push(format!("Deployment {d} ready"))
            }
            Some(_) => problems.push(format!("Deployment {d} is not ready")),
            None => problems.push(format!("Deployment {d} does not exist")),
        }
    }
    let release = r.settings.release.clone();
    match tokio::task::block_in_place(|| r.helm.status(&release))? {
        Some(s) if s.status == "deployed" && s.chart_version == r.state.plan.to_version => lines
            .push(format!(
                "release {release} deployed on chart {}",
                s.chart_version
            )),
        Some(s) => problems.push(format!(
            "release {release} is {} on chart {}, expected deployed on {}",
            s.status, s.chart_version, r.state.plan.to_version
        )),
        None => problems.push(format!("release {release} is not installed")),
    }
    let onboarding = r.state.plan.steps.iter().find_map(|s| match &s.action {
        crate::plan::Action::ClearOnboarding { pod, host } => {
            Some((pod.clone(), host.clone(), s.commands.join("; ")))
        }
        _ => None,
    });
    if let Some((pod, host, remove)) = onboarding {
        if super::finalize::onboarding_key_set(r, &pod, &host).await? {
            problems.push(format!(
                "the onboarding key {} is set: users would see the first-run screen; remove it with: {remove}",
                crate::plan::commands::ONBOARDING_KEY
            ));
        } else {
            lines.push("no onboarding key in Redis".to_string());
        }
    }
    if let Some(a) = r.state.plan.attachments.clone() {
        match r.kube.claim(&a.claim).await? {
            Some(c)
                if wait::claim_bound(&c)
                    && c.spec.as_ref().and_then(|s| s.volume_name.as_deref())
                        == Some(a.volume.as_str()) =>
            {
                lines.push(format!(
                    "claim {} bound to the original volume {}",
                    a.claim, a.volume
                ))
            }
            Some(c) => problems.push(format!(
                "claim {} is bound to {:?}, not the original volume {}",
                a.claim,
                c.spec.and_then(|s| s.volume_name),
                a.volume
            )),
            None => problems.push(format!("claim {} does not exist", a.claim)),
        }
    }
    if let Some(db) = r.state.plan.new_database.clone() {
        database(r, &db, &mut lines, &mut problems).await?;
    }
    if !problems.is_empty() {
        return Err(Error::new(
            ExitCode::VerificationFailed,
            format!(
                "verification found problems:\n  - {}",
                problems.join("\n  - ")
            ),
        )
        .hint(format!(
            "inspect with `kubectl -n {} get deploy,pvc,pods`, then run `{}` again",
            r.settings.namespace,
            r.command("verify")
        )));
    }
    for l in &lines {
        r.note(l);
    }
    Ok(lines.join("; "))
}

/// PostgreSQL 15 on the copied volume, no table with fewer rows than PostgreSQL 11 had at the
/// proof (the app may have written since).
async fn database(
    r: &Runner<'_>,
    db: &NewDatabasePlan,
    lines: &mut Vec<String>,
    problems: &mut Vec<String>,
) -> Result<()> {
    if let Some(volume) = &r.state.record.new_database_volume {
        match r.kube.claim(&db.release_claim).await? {
            Some(c)
                if c.spec.as_ref().and_then(|s| s.volume_name.as_deref())
                    == Some(volume.as_str()) =>
            {
                lines.push(format!(
                    "claim {} bound to the copied volume {volume}",
                    db.release_claim
                ))
            }
            Some(c) => problems.push(format!(
                "claim {} is bound to {:?}, not the copied volume {volume}",
                db.release_claim,
                c.spec.and_then(|s| s.volume_name)
            )),
            None => problems.push(format!("claim {} does not exist", db.release_claim)),
        }
    }
    let Some(source) = r.state.record.source.clone() else {
        return Ok(());
    };
    // The install may have rolled the pod: count only once it serves.
    r.kube
        .wait_pod_ready(&db.release_pod, std::time::Duration::from_secs(300))
        .await?;
    let live = in_pod_fingerprint(r, &db.release_pod, Counted::Rows, source.method).await?;
    let report = compare(&source, &live, false);
    let lost: Vec<String> = report
        .differences
        .iter()
        .filter(|d| {
            matches!(d, crate::verify::Difference::MissingTable { .. })
                || matches!(d, crate::verify::Difference::RowCount { source, target, .. } if target < source)
        })
        .map(|d| d.to_string())
        .collect();
    if lost.is_empty() {
        lines.push(format!(
            "{} tables, none with fewer rows than PostgreSQL 11 had ({} rows)",
            report.tables, report.rows
        ));
    } else {
        problems.extend(lost);
    }
    Ok(())
}

/// What [`in_pod_fingerprint`] takes of each table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Exact row counts only (hashes `0`).
    Rows,
    /// Rows and content hashes, sequences, schema objects.
    Everything,
}

/// The fingerprint of the database a release's PostgreSQL pod serves, taken inside that pod
/// with its own credentials.
pub async fn in_pod_fingerprint(
    r: &Runner<'_>,
    pod: &str,
    counted: Counted,
    method: crate::verify::HashMethod,
) -> Result<crate::verify::DatabaseStats> {
    let (what, argv) = match counted {
        Counted::Rows => (format!("counting rows in {pod}"), scripts::row_counts()),
        Counted::Everything => (
            format!("fingerprinting the database in {pod}"),
            scripts::fingerprint(method),
        ),
    };
    let out = r
        .kube
        .exec_checked(pod, &what, &scripts::in_postgres_pod(&argv))
        .await?;
    sql::parse_fingerprint(&out, method)
        .map_err(|e| Error::new(ExitCode::External, format!("{what}: {e}")))
}
