//! Backup: values saved, app offline, the database dumped inside the cluster and verified.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::kube::exec;
use crate::plan::manifests::{self, Direction};
use crate::plan::quantity::human;
use crate::plan::scripts::{self, JobState};
use crate::state::{BackupRecord, LocalCopyRecord};
use crate::verify::{sql, HashMethod};

pub async fn save_values(r: &mut Runner<'_>, secret: &str) -> Result<String> {
    let values = tokio::task::block_in_place(|| {
        super::preflight::release_values(&r.helm, &r.settings.release)
    })?;
    let mut data = BTreeMap::from([
        ("original.yaml".to_string(), values.original.into_bytes()),
        (
            "translated.yaml".to_string(),
            values.translated.into_bytes(),
        ),
    ]);
    let overrides = super::overrides::Overrides::from_options(&r.options)?;
    if !overrides.is_empty() {
        data.insert(super::overrides::KEY.to_string(), overrides.encode());
    }
    // `helm uninstall` deletes the chart's database Secrets: with --keep-passwords their
    // data must be saved before, in this (private) Secret, never in the state.
    let kept = kept_password_secrets(r);
    for name in &kept {
        if let Some(old) = r.kube.secret(name).await? {
            for (key, value) in old.data.unwrap_or_default() {
                data.insert(saved_password_key(name, &key), value.0);
            }
        }
    }
    r.kube
        .put_secret(secret, manifests::labels(&r.settings.release), data)
        .await?;
    let passwords = if kept.is_empty() {
        String::new()
    } else {
        format!(" with the passwords of {}", kept.join(", "))
    };
    Ok(format!(
        "values stored in Secret {}/{secret}{passwords}",
        r.settings.namespace
    ))
}

/// The database Secrets the plan recreates with their old passwords (`--keep-passwords`).
fn kept_password_secrets(r: &Runner<'_>) -> Vec<String> {
    r.state
        .plan
        .find_action(|a| match a {
            crate::plan::Action::ReplaceSecrets {
                secrets,
                keep_passwords: true,
            } => Some(secrets.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Where the values Secret keeps key `key` of Secret `secret` (both are valid key names).
pub fn saved_password_key(secret: &str, key: &str) -> String {
    format!("keep.{secret}.{key}")
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
    tools_pod(r, Direction::Dump).await?;
    Ok(format!(
        "claim {} ({}) and pod {} ready",
        b.claim,
        human(b.size_bytes),
        b.dump_pod
    ))
}

/// A bar with bytes and rate on stderr (hidden for JSON and -q).
pub fn bytes_bar(r: &Runner<'_>, total: Option<u64>, what: &str) -> ProgressBar {
    if r.printer.is_json() || r.printer.quiet {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::new_spinner(),
    };
    let template = if total.is_some() {
        "    {msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}"
    } else {
        "    {msg} {spinner} {bytes} {binary_bytes_per_sec} {elapsed}"
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Starts (or reattaches to) a detached job in `pod` and follows it until it ends.
pub async fn follow_job(
    r: &mut Runner<'_>,
    pod: &str,
    name: &str,
    start: &str,
    poll: &str,
    total: Option<u64>,
) -> Result<u64> {
    let ns = r.settings.namespace.clone();
    let started = exec::checked(
        &r.kube.client,
        &ns,
        pod,
        &format!("starting the {name}"),
        &["sh".into(), "-c".into(), start.to_string()],
    )
    .await?;
    if let Some(code) = scripts::previous_failure(&started) {
        r.note(&format!(
            "the previous {name} failed (exit {code}; its log is {}/{name}.failed.log in pod {pod}): started anew",
            crate::plan::BACKUP_MOUNT
        ));
    }
    match scripts::parse_job_state(&started) {
        Some(JobState::Running) => r.note(&format!("reattached to the running {name}")),
        Some(JobState::Finished(_)) => r.note(&format!("the {name} had finished already")),
        _ => {}
    }
    let bar = bytes_bar(r, total, name);
    let mut stall = crate::kube::wait::Stall::new(JOB_STALL, std::time::Instant::now());
    let result = loop {
        let out = exec::script(&r.kube.client, &ns, pod, poll).await?;
        if let Some(bytes) = scripts::parse_bytes(&out.stdout) {
            bar.set_position(bytes);
        }
        if stall.stalled(scripts::parse_bytes(&out.stdout), std::time::Instant::now()) {
            break Err(job_stalled(r, &ns, pod, name, stall.limit()));
        }
        match scripts::parse_job_state(&out.stdout) {
            Some(JobState::Finished(0)) => break Ok(scripts::parse_bytes(&out.stdout).unwrap_or(0)),
            Some(JobState::Finished(code)) => {
                let log = exec::script(&r.kube.client, &ns, pod, &scripts::log_tail(name)).await?;
                break Err(Error::new(
                    ExitCode::External,
                    format!(
                        "the {name} in pod {ns}/{pod} failed (exit {code}):\n{}",
                        exec::last_lines(&log.stdout, 12)
                    ),
                )
                .hint(format!(
                    "fix the cause, then {}",
                    r.rerun_hint_to(&format!(
                        "it starts the {name} anew (this attempt's log is kept as /backup/{name}.failed.log)"
                    ))
                )));
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    bar.finish_and_clear();
    result
}

/// The dump or restore pod, ready; created again when it is gone (evicted, deleted) or ended.
/// A replaced pod counts a detached job as not running (its pid file was in the old pod).
pub async fn tools_pod(r: &Runner<'_>, direction: Direction) -> Result<String> {
    let b = backup_plan(r)?;
    let pod = manifests::tools_pod(&b, direction, &r.settings.namespace, &r.settings.release);
    r.kube.ensure_pod(&pod).await?;
    let name = pod.metadata.name.unwrap_or_default();
    r.kube
        .wait_pod_ready(&name, Duration::from_secs(600))
        .await?;
    Ok(name)
}

pub async fn dump(r: &mut Runner<'_>) -> Result<String> {
    let b = backup_plan(r)?;
    tools_pod(r, Direction::Dump).await?;
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
    tools_pod(r, Direction::Dump).await?;
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
        r.state.undo("backup.dump");
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
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, AttachParams};
    use tokio::io::AsyncWriteExt;

    let b = backup_plan(r)?;
    let ns = r.settings.namespace.clone();
    tools_pod(r, Direction::Dump).await?;
    let api: Api<Pod> = Api::namespaced(r.kube.client.clone(), &ns);
    let argv = vec!["sh".to_string(), "-c".to_string(), scripts::archive_tar()];
    let mut process = api
        .exec(
            &b.dump_pod,
            argv,
            &AttachParams::default().stdout(true).stderr(true),
        )
        .await
        .map_err(|e| {
            Error::new(
                ExitCode::External,
                format!("cannot stream the archive from pod {ns}/{}", b.dump_pod),
            )
            .source(e)
        })?;
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

/// How long a detached dump or restore may write nothing before following it stops.
const JOB_STALL: Duration = Duration::from_secs(3600);

/// A detached job whose output stopped growing: following it stops, the job is left alone.
fn job_stalled(r: &Runner<'_>, ns: &str, pod: &str, name: &str, limit: Duration) -> Error {
    Error::new(
        ExitCode::External,
        format!(
            "the {name} in pod {ns}/{pod} has written nothing for {} min: it may hang",
            limit.as_secs() / 60
        ),
    )
    .hint(format!(
        "see its log (`kubectl -n {ns} exec {pod} -- tail {}/{name}.log`); it is left running, and {}",
        crate::plan::BACKUP_MOUNT,
        r.rerun_hint_to(&format!("it reattaches to the {name} if it still runs"))
    ))
}

/// How long the local copy's stream may send nothing before it counts as dead.
const STREAM_STALL: Duration = Duration::from_secs(300);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
