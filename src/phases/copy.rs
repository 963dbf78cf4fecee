//! Copy, with the app off: PostgreSQL 11 streamed into PostgreSQL 15 inside the cluster
//! (detached in the copy pod), then the proof that both hold the same data: every table's
//! rows and content hash, every sequence, every schema object. A difference stops here, with
//! the old release untouched.

use std::time::{Duration, Instant};

use super::jobs::{follow_job, ready_pod};
use super::prepare::new_database_plan;
use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::plan::copy_script::{self, Side, COPY_JOB};
use crate::plan::quantity::human;
use crate::plan::{manifests, scripts, NewDatabasePlan};
use crate::verify::{compare, sql, DatabaseStats, HashMethod};

pub async fn scale_down(
    r: &mut Runner<'_>,
    deployments: &[String],
    selectors: &[String],
) -> Result<String> {
    for name in deployments {
        if r.kube.deployment(name).await?.is_some() {
            r.kube.scale(name, 0).await?;
        }
    }
    for selector in selectors.iter().filter(|s| !s.is_empty()) {
        r.kube
            .wait_pods_gone(selector, Duration::from_secs(600))
            .await?;
    }
    Ok(format!(
        "{} scaled to 0, their pods are gone",
        deployments.join(", ")
    ))
}

/// The copy pod and PostgreSQL 15, ready (either may have been replaced since prepare).
pub(super) async fn pods_ready(r: &mut Runner<'_>, db: &NewDatabasePlan) -> Result<()> {
    r.kube.ensure_pod(&db.pod).await?;
    r.kube
        .wait_pod_ready(&db.pod_name(), Duration::from_secs(600))
        .await?;
    // The cut-over deletes this pod: only the one the plugin created.
    r.record_created("Pod", &db.pod_name()).await?;
    ready_pod(
        r,
        &manifests::copy_pod(db, &r.settings.namespace, &r.settings.release),
    )
    .await?;
    Ok(())
}

pub async fn copy(r: &mut Runner<'_>) -> Result<String> {
    let db = new_database_plan(r)?;
    pods_ready(r, &db).await?;
    let started = Instant::now();
    let bytes = follow_job(
        r,
        &db.copy_pod,
        COPY_JOB,
        &copy_script::start_copy(),
        &copy_script::poll_copy(),
        Some(db.source_bytes),
    )
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(format!(
        "PostgreSQL 11 copied into PostgreSQL 15 ({} jobs): {} in {seconds:.1} s",
        db.jobs,
        human(bytes),
    ))
}

/// A psql argv run in the copy pod against one side, with its output.
async fn in_copy_pod(
    r: &Runner<'_>,
    db: &NewDatabasePlan,
    side: Side,
    what: &str,
    argv: &[String],
) -> Result<String> {
    r.kube
        .exec_checked(&db.copy_pod, what, &copy_script::on(side, argv))
        .await
}

async fn fingerprint(
    r: &Runner<'_>,
    db: &NewDatabasePlan,
    side: Side,
    what: &str,
) -> Result<DatabaseStats> {
    let out = in_copy_pod(
        r,
        db,
        side,
        &format!("fingerprinting {what}"),
        &scripts::fingerprint(HashMethod::CURRENT),
    )
    .await?;
    sql::parse_fingerprint(&out, HashMethod::CURRENT)
        .map_err(|e| Error::new(ExitCode::External, format!("{what} fingerprint: {e}")))
}

/// The source's write marks (rows written, sequence values), read in the copy pod.
pub async fn source_marks(r: &Runner<'_>, db: &NewDatabasePlan) -> Result<String> {
    Ok(in_copy_pod(
        r,
        db,
        Side::Source,
        "reading PostgreSQL 11's write counters",
        &scripts::write_marks(),
    )
    .await?
    .trim()
    .to_string())
}

/// Makes the next run copy anew: the copy's result discarded, its steps undone.
pub async fn forget_copy(r: &mut Runner<'_>, db: &NewDatabasePlan) -> Result<()> {
    r.kube
        .exec_script_checked(
            &db.copy_pod,
            "discarding the copy's result",
            &scripts::discard(COPY_JOB),
        )
        .await?;
    r.state.undo("copy.copy");
    r.state.undo("copy.prove");
    r.state.record.copy_verified = false;
    r.state.record.source_marks = None;
    r.save().await
}

pub async fn prove(r: &mut Runner<'_>) -> Result<String> {
    let db = new_database_plan(r)?;
    pods_ready(r, &db).await?;
    let marks = source_marks(r, &db).await?;
    let started = Instant::now();
    let (source, target) = tokio::try_join!(
        fingerprint(r, &db, Side::Source, "PostgreSQL 11"),
        fingerprint(r, &db, Side::Target, "PostgreSQL 15"),
    )?;
    let report = compare(&source, &target, true);
    if !report.is_equal() {
        let lines: Vec<String> = report
            .differences
            .iter()
            .map(|d| format!("  - {d}"))
            .collect();
        forget_copy(r, &db).await?;
        return Err(Error::new(
            ExitCode::VerificationFailed,
            format!(
                "PostgreSQL 15 differs from PostgreSQL 11 after the copy:\n{}",
                lines.join("\n")
            ),
        )
        .hint(format!(
            "the old release is untouched (its app stays at 0 until the migration goes on). \
Rows that differ mean something kept writing to PostgreSQL 11 during the copy, or the copy \
went wrong (its log: `kubectl -n {} exec {} -- cat {}/{COPY_JOB}.log`); {}",
            r.settings.namespace,
            db.copy_pod,
            crate::plan::COPY_DIR,
            r.rerun_hint_to("it copies anew")
        )));
    }
    let summary = format!(
        "equal in {:.1} s: {} tables, {} rows and their contents, {} sequences, {} schema objects, schema version {}",
        started.elapsed().as_secs_f64(),
        report.tables,
        report.rows,
        source.sequences.len(),
        source.objects.len(),
        source.schema_version.as_deref().unwrap_or("(none)")
    );
    r.state.record.source = Some(source);
    r.state.record.source_marks = Some(marks);
    r.state.record.copy_verified = true;
    Ok(summary)
}
