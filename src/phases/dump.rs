//! The dump archive of `--keep-dump`: a volume of its own, `pg_dump` detached in the dump
//! pod while the app is off, the archive checked, and (`--local-copy`) a copy on this machine.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::jobs::{bytes_bar, follow_job, ready_pod};
use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::kube::exec;
use crate::plan::manifests;
use crate::plan::quantity::human;
use crate::plan::scripts;
use crate::state::{BackupRecord, LocalCopyRecord};
use crate::verify::{sql, HashMethod};

fn backup_plan(r: &Runner<'_>) -> Result<crate::plan::BackupPlan> {
    r.state.plan.backup.clone().ok_or_else(|| {
        Error::new(
            ExitCode::Precondition,
            "the plan has no backup (external database)",
        )
    })
}

pub async fn volume(r: &mut Runner<'_>) -> Result<String> {
    let b = backup_plan(r)?;
    let ns = r.settings.namespace.clone();
    let release = r.settings.release.clone();
    r.kube
        .ensure_claim(&manifests::backup_claim(&b, &ns, &release))
        .await?;
    dump_pod(r).await?;
    Ok(format!(
        "claim {} ({}) and pod {} ready",
        b.claim,
        human(b.size_bytes),
        b.dump_pod
    ))
}

/// The dump pod, ready.
async fn dump_pod(r: &Runner<'_>) -> Result<String> {
    let b = backup_plan(r)?;
    ready_pod(
        r,
        &manifests::tools_pod(&b, &r.settings.namespace, &r.settings.release),
    )
    .await
}

pub async fn dump(r: &mut Runner<'_>) -> Result<String> {
    let b = backup_plan(r)?;
    dump_pod(r).await?;
    let started = std::time::Instant::now();
    let bytes = follow_job(
        r,
        &b.dump_pod,
        "dump",
        &scripts::start_dump(b.jobs),
        &scripts::poll_dump(),
        None,
    )
    .await?;
    Ok(format!(
        "pg_dump (directory format, {} jobs) wrote {} in {:.0?}",
        b.jobs,
        human(bytes),
        started.elapsed()
    ))
}

pub async fn verify(r: &mut Runner<'_>) -> Result<String> {
    let b = backup_plan(r)?;
    let ns = r.settings.namespace.clone();
    dump_pod(r).await?;
    let out = exec::checked(
        &r.kube.client,
        &ns,
        &b.dump_pod,
        "checking the archive",
        &["sh".into(), "-c".into(), scripts::verify_archive()],
    )
    .await?;
    let number = |key: &str| -> u64 {
        scripts::field(&out, key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (entries, files) = (number("entries"), number("files"));
    let sha256 = scripts::field(&out, "sha256").unwrap_or("").to_string();
    if entries == 0 || files < entries || sha256.len() != 64 {
        // The next run dumps anew instead of checking the same archive again.
        exec::checked(
            &r.kube.client,
            &ns,
            &b.dump_pod,
            "discarding the incomplete dump",
            &["sh".into(), "-c".into(), scripts::discard("dump")],
        )
        .await?;
        r.state.undo("copy.dump");
        r.save().await?;
        return Err(Error::new(
            ExitCode::VerificationFailed,
            format!(
                "the archive in pod {ns}/{} is incomplete: {entries} table data entries, {files} data files",
                b.dump_pod
            ),
        )
        .hint(r.rerun_hint_to("it dumps the database anew")));
    }
    let fingerprint = exec::checked(
        &r.kube.client,
        &ns,
        &b.dump_pod,
        "fingerprinting the source database",
        &scripts::fingerprint(HashMethod::CURRENT),
    )
    .await?;
    let source = sql::parse_fingerprint(&fingerprint, HashMethod::CURRENT)
        .map_err(|e| Error::new(ExitCode::External, format!("source fingerprint: {e}")))?;
    let summary = format!(
        "archive readable, {entries} tables of data, sha256 {}…; source: {} tables, {} rows, schema {}",
        &sha256[..12],
        source.tables.len(),
        source.total_rows(),
        source.schema_version.as_deref().unwrap_or("(none)")
    );
    r.state.record.backup = Some(BackupRecord {
        sha256,
        bytes: number("bytes"),
        table_data_entries: entries,
        source,
    });
    Ok(summary)
}

pub async fn local_copy(r: &mut Runner<'_>, path: &str) -> Result<String> {
    use tokio::io::AsyncWriteExt;

    let b = backup_plan(r)?;
    let ns = r.settings.namespace.clone();
    dump_pod(r).await?;
    let argv = vec!["sh".to_string(), "-c".to_string(), scripts::archive_tar()];
    let mut process = exec::stream(&r.kube.client, &ns, &b.dump_pod, "the archive", argv).await?;
    // Private, never over an existing file, removed unless complete.
    let (partial, file) = crate::local_file::Partial::create(std::path::Path::new(path))?;
    let tmp = partial.partial().display().to_string();
    let mut file = tokio::fs::File::from_std(file);
    let total = r.state.record.backup.as_ref().map(|b| b.bytes);
    let bar = bytes_bar(r, total, "local copy");
    let mut stdout = process
        .stdout()
        .ok_or_else(|| Error::new(ExitCode::External, "no stdout from exec"))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut written = 0u64;
    let mut digest = Sha256::new();
    loop {
        use tokio::io::AsyncReadExt;
        let n = exec::bounded(
            &format!("a read of the archive stream from pod {ns}/{}", b.dump_pod),
            STREAM_STALL,
            &r.rerun_hint_to("the copy is made anew"),
            async {
                stdout.read(&mut buf).await.map_err(|e| {
                    Error::new(ExitCode::External, "the archive stream broke").source(e)
                })
            },
        )
        .await?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n])
            .await
            .map_err(|e| Error::new(ExitCode::Failure, format!("cannot write {tmp}")).source(e))?;
        digest.update(&buf[..n]);
        written += n as u64;
        bar.set_position(written);
    }
    bar.finish_and_clear();
    file.flush().await.ok();
    let status = match process.take_status() {
        Some(s) => s.await,
        None => None,
    };
    if status.as_ref().and_then(|s| s.status.as_deref()) != Some("Success") {
        return Err(Error::new(
            ExitCode::External,
            "streaming the archive failed",
        ));
    }
    let sha256 = hex(&digest.finalize());
    // The same tar, hashed where it lies: equal digests prove nothing was lost on the way.
    let remote = exec::checked(
        &r.kube.client,
        &ns,
        &b.dump_pod,
        "hashing the archive in the pod",
        &["sh".into(), "-c".into(), scripts::archive_tar_sha256()],
    )
    .await?;
    if scripts::field(&remote, "sha256") != Some(sha256.as_str()) {
        return Err(Error::new(
            ExitCode::VerificationFailed,
            format!(
                "the local copy {tmp} differs from the archive in pod {ns}/{} (sha256 {sha256} here, {} there)",
                b.dump_pod,
                scripts::field(&remote, "sha256").unwrap_or("unknown")
            ),
        )
        .hint(r.rerun_hint_to("the copy is made anew")));
    }
    partial.commit()?;
    r.state.record.local_copy = Some(LocalCopyRecord {
        path: path.to_string(),
        sha256: sha256.clone(),
        bytes: written,
    });
    Ok(format!(
        "archive copied to {path} ({}, tar, sha256 {sha256})",
        human(written)
    ))
}

/// How long the local copy's stream may send nothing before it counts as dead.
const STREAM_STALL: Duration = Duration::from_secs(300);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
