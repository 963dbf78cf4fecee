//! Restore: the archive into a fresh PostgreSQL 15 database, then the proof that nothing was
//! lost (every table's rows and contents, and the schema version, as recorded at backup).

use super::backup::{follow_job, tools_pod};
use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::kube::exec;
use crate::plan::manifests::Direction;
use crate::plan::quantity::human;
use crate::plan::scripts;
use crate::plan::BackupPlan;
use crate::state::BackupRecord;
use crate::verify::{compare, sql};

/// The plan's backup and the record of its verified archive; both phases need the two.
fn planned_and_recorded_backup(r: &Runner<'_>) -> Result<(BackupPlan, BackupRecord)> {
    let plan = r
        .state
        .plan
        .backup
        .clone()
        .ok_or_else(|| Error::new(ExitCode::Precondition, "the plan has no backup"))?;
    let record = r.state.record.backup.clone().ok_or_else(|| {
        Error::new(ExitCode::Precondition, "no verified backup is recorded")
            .hint("run the backup phase first")
    })?;
    Ok((plan, record))
}

pub async fn restore(r: &mut Runner<'_>) -> Result<String> {
    let (b, record) = planned_and_recorded_backup(r)?;
    let ns = r.settings.namespace.clone();
    // The target may have restarted since the install (a rerun after a failed restore).
    for pod in r.state.plan.database_pods() {
        r.kube
            .wait_pod_ready(&pod, std::time::Duration::from_secs(300))
            .await?;
    }
    // One pod at a time on the ReadWriteOnce volume; the restore pod reads the new Secret.
    r.kube.delete_pod(&b.dump_pod).await?;
    tools_pod(r, Direction::Restore).await?;
    let check = exec::checked(
        &r.kube.client,
        &ns,
        &b.restore_pod,
        "checking the archive against its recorded checksums",
        &["sh".into(), "-c".into(), scripts::check_archive()],
    )
    .await?;
    if scripts::field(&check, "sha256") != Some(record.sha256.as_str()) {
        return Err(Error::new(
            ExitCode::VerificationFailed,
            format!("the archive on {} changed since it was verified", b.claim),
        )
        .hint("do not go on: inspect the backup volume; the old database volume is retained"));
    }
    let total = None;
    let started = std::time::Instant::now();
    let bytes = follow_job(
        r,
        &b.restore_pod,
        "restore",
        &scripts::start_restore(b.jobs, &b.target.database, &b.source.user),
        &scripts::poll_restore(),
        total,
    )
    .await?;
    Ok(format!(
        "pg_restore ({} jobs) into {} finished in {:.0?}; database is {}",
        b.jobs,
        b.target.database,
        started.elapsed(),
        human(bytes)
    ))
}

pub async fn verify(r: &mut Runner<'_>) -> Result<String> {
    let (b, record) = planned_and_recorded_backup(r)?;
    tools_pod(r, Direction::Restore).await?;
    let out = exec::checked(
        &r.kube.client,
        &r.settings.namespace,
        &b.restore_pod,
        "fingerprinting the restored database",
        // The backup's method, which a record from an earlier version may not share.
        &scripts::fingerprint(record.source.method),
    )
    .await?;
    let target = sql::parse_fingerprint(&out, record.source.method)
        .map_err(|e| Error::new(ExitCode::External, format!("target fingerprint: {e}")))?;
    let report = compare(&record.source, &target, true);
    if !report.is_equal() {
        let lines: Vec<String> = report
            .differences
            .iter()
            .map(|d| format!("  - {d}"))
            .collect();
        return Err(Error::new(
            ExitCode::VerificationFailed,
            format!(
                "the restored database differs from the backup's record:\n{}",
                lines.join("\n")
            ),
        )
        .hint(format!(
            "the migration stopped before the upgrade and the app stays off. Fewer rows than \
recorded mean rows written to the old database after the dump began (something not scaled \
down kept writing) or a restore gone wrong (/backup/restore.log in pod {}); more rows, writes \
to the new one. The dump, the backup's record and the old database's retained volume are \
kept: `{}` shows the record, with the source's row counts and the volumes",
            b.restore_pod,
            r.command("status -o json")
        )));
    }
    r.state.record.restore_verified = true;
    Ok(format!(
        "{} tables, {} rows, contents and schema version {} equal to the backup",
        report.tables,
        report.rows,
        target.schema_version.as_deref().unwrap_or("(none)")
    ))
}
