//! A resumed run follows the first run's plan: a flag it gives is applied, or refused by
//! name when the plan cannot change (exit 2), never silently ignored. The first run records
//! the flags that fix the plan (their values as resolved) and, for a local chart, the chart's
//! SHA-256; a resumed run compares the flags it was given with them, and checks the chart.
//! `--local-copy` given on a resume adds (or re-targets) the copy step before the point of no
//! return.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::plan::{commands, options, Action, Options, Phase, Plan, Step};
use crate::settings::{ChartRef, TargetSettings};

/// Key of the local chart's SHA-256 among the recorded flags.
pub const CHART_SHA256: &str = "chart-sha256";

/// The flags that fix the plan, as resolved for this run: `(name, value, given)`, `given`
/// false when the value is the default (a resumed run without the flag changes nothing).
pub fn fixed_flags(target: &TargetSettings, o: &Options) -> Vec<(&'static str, String, bool)> {
    let chart = target.chart.as_helm_arg().to_string_lossy().into_owned();
    let default_chart = matches!(&target.chart, ChartRef::Oci(c) if c == crate::cli::DEFAULT_CHART);
    vec![
        ("--chart", chart, !default_chart),
        ("--version", target.version.clone(), target.version_given),
        (
            "--keep-passwords",
            o.keep_passwords.to_string(),
            o.keep_passwords,
        ),
        (
            "--storage-class",
            o.storage_class.clone().unwrap_or_default(),
            o.storage_class.is_some(),
        ),
        ("--keep-dump", o.keep_dump.to_string(), o.keep_dump),
        ("--online", o.online.to_string(), o.online),
        (
            "--backup-storage-class",
            o.backup_storage_class.clone().unwrap_or_default(),
            o.backup_storage_class.is_some(),
        ),
        (
            "--backup-size-factor",
            o.backup_size_factor.to_string(),
            o.backup_size_factor != options::DEFAULT_BACKUP_SIZE_FACTOR,
        ),
        (
            "--backup-image",
            o.backup_image.clone(),
            o.backup_image != options::DEFAULT_BACKUP_IMAGE,
        ),
        ("--jobs", o.jobs.to_string(), o.jobs != 2),
        (
            "--helm-timeout",
            format!("{}s", o.helm_timeout_seconds),
            o.helm_timeout_seconds != options::DEFAULT_HELM_TIMEOUT_SECONDS,
        ),
    ]
}

/// What the first run records: every fixed flag's value.
pub fn record(flags: &[(&'static str, String, bool)]) -> BTreeMap<String, String> {
    flags
        .iter()
        .map(|(name, value, _)| (name.to_string(), value.clone()))
        .collect()
}

/// The flags this run gave that differ from the plan's record: refused, each by name.
pub fn check_flags(
    recorded: &BTreeMap<String, String>,
    flags: &[(&'static str, String, bool)],
) -> Result<()> {
    let changed: Vec<String> = flags
        .iter()
        .filter(|(_, _, given)| *given)
        .filter_map(|(name, value, _)| {
            let was = recorded.get(*name)?;
            (was != value).then(|| format!("{name} {value} (the plan was made with {was:?})"))
        })
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ExitCode::Usage,
        format!(
            "a migration in progress cannot change {}",
            changed.join(", ")
        ),
    )
    .hint("run again without these flags (or with the values the plan was made with) to resume; `status` shows the plan. To start over with other values, finish or clean up this migration first"))
}

/// The recorded flags of a plan: those it recorded, and for a plan from before the record,
/// the chart and version it names.
pub fn recorded(plan: &Plan) -> BTreeMap<String, String> {
    let mut out = plan.recorded_flags.clone();
    out.entry("--chart".into())
        .or_insert_with(|| plan.chart.clone());
    out.entry("--version".into())
        .or_insert_with(|| plan.to_version.clone());
    out
}

/// SHA-256 of a local chart: the archive's bytes, or, for a directory, every file's relative
/// path and content in path order. `None` for a remote chart.
pub fn chart_sha256(chart: &ChartRef) -> std::io::Result<Option<String>> {
    let mut digest = Sha256::new();
    match chart {
        ChartRef::Oci(_) | ChartRef::Repo(_) => return Ok(None),
        ChartRef::Archive(path) => digest.update(std::fs::read(path)?),
        ChartRef::Directory(root) => {
            let mut files = Vec::new();
            collect_files(root, root, &mut files)?;
            files.sort();
            for rel in files {
                digest.update(rel.as_bytes());
                digest.update([0]);
                digest.update(std::fs::read(root.join(&rel))?);
                digest.update([0]);
            }
        }
    }
    Ok(Some(
        digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    ))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// The local chart the plan installs, checked against its recorded SHA-256 while an install
/// or upgrade is still to come.
pub fn check_chart(plan: &Plan, done: impl Fn(&str) -> bool) -> Result<()> {
    let Some(recorded) = plan.recorded_flags.get(CHART_SHA256) else {
        return Ok(());
    };
    let pending = plan
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::HelmInstall) && !done(&s.id));
    if !pending {
        return Ok(());
    }
    let path = Path::new(&plan.chart);
    let chart = if path.is_dir() {
        ChartRef::Directory(path.to_path_buf())
    } else {
        ChartRef::Archive(path.to_path_buf())
    };
    let now = chart_sha256(&chart).map_err(|e| {
        Error::new(
            ExitCode::NotFound,
            format!(
                "the chart the plan installs, {}, cannot be read",
                plan.chart
            ),
        )
        .source(e)
        .hint("put the chart the migration started with back at that path, then run again")
    })?;
    if now.as_deref() == Some(recorded.as_str()) {
        return Ok(());
    }
    Err(Error::new(
        ExitCode::Precondition,
        format!(
            "the chart {} changed since the migration started (sha256 {recorded} then, {} now)",
            plan.chart,
            now.unwrap_or_default()
        ),
    )
    .hint("put the chart the migration started with back at that path, then run again"))
}

/// `--local-copy` given on a resumed run: a copy step before the point of no return, or the
/// planned one pointed at this path. Refused (exit 2) when a copy was made already elsewhere.
pub fn apply_local_copy(plan: &mut Plan, path: &Path, copied_to: Option<&str>) -> Result<bool> {
    let path = path.display().to_string();
    if let Some(done) = copied_to {
        if done == path {
            return Ok(false);
        }
        return Err(Error::new(
            ExitCode::Usage,
            format!("--local-copy {path}: this migration copied the archive to {done} already"),
        )
        .hint(format!(
            "copy {done} to {path} yourself, or run again without --local-copy"
        )));
    }
    if plan.backup.is_none() {
        return Err(Error::new(
            ExitCode::Usage,
            "--local-copy: this migration keeps no dump (it was started without --keep-dump, or the database is external)",
        )
        .hint("run again without --local-copy; PostgreSQL 11's retained volume is the backup"));
    }
    let action = Action::LocalCopy { path: path.clone() };
    let step = Step {
        id: "copy.local-copy".into(),
        phase: Phase::Copy,
        title: "Copy the archive to this machine".into(),
        destructive: false,
        commands: commands::for_action(plan, &action),
        action,
    };
    match plan.steps.iter_mut().find(|s| s.id == step.id) {
        Some(planned) if planned.action == step.action => return Ok(false),
        Some(planned) => *planned = step,
        None => {
            let at = plan
                .steps
                .iter()
                .position(|s| s.id == "copy.verify-dump")
                .map_or(plan.steps.len(), |i| i + 1);
            plan.steps.insert(at, step);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{build, fixtures::release_4_43};

    fn target(chart: ChartRef, version: Option<&str>) -> TargetSettings {
        TargetSettings {
            chart,
            version: version.unwrap_or("4.44.0").into(),
            version_given: version.is_some(),
        }
    }

    fn oci() -> ChartRef {
        ChartRef::Oci(crate::cli::DEFAULT_CHART.into())
    }

    #[test]
    fn flags_that_fix_the_plan_are_refused_by_name_when_they_differ() {
        let first = Options {
            keep_passwords: false,
            backup_storage_class: Some("ssd".into()),
            ..Options::default()
        };
        let recorded = record(&fixed_flags(&target(oci(), None), &first));
        // The same command again, or none of the flags: fine.
        assert!(check_flags(&recorded, &fixed_flags(&target(oci(), None), &first)).is_ok());
        assert!(check_flags(
            &recorded,
            &fixed_flags(&target(oci(), None), &Options::default())
        )
        .is_ok());
        let rerun = Options {
            keep_passwords: true,
            backup_storage_class: Some("hdd".into()),
            helm_timeout_seconds: 60,
            ..Options::default()
        };
        let err = check_flags(
            &recorded,
            &fixed_flags(
                &target(
                    ChartRef::Archive("/c/live-agent-4.45.0.tgz".into()),
                    Some("4.45.0"),
                ),
                &rerun,
            ),
        )
        .unwrap_err();
        assert_eq!(err.code, ExitCode::Usage);
        for name in [
            "--chart /c/live-agent-4.45.0.tgz",
            "--version 4.45.0",
            "--keep-passwords true",
            "--backup-storage-class hdd",
            "--helm-timeout 60s",
        ] {
            assert!(err.message.contains(name), "{name}: {}", err.message);
        }
    }

    #[test]
    fn a_local_copy_given_on_a_resume_is_planned_before_the_point_of_no_return() {
        let options = Options {
            keep_dump: true,
            ..Options::default()
        };
        let mut plan = build(&release_4_43(), &options).unwrap();
        assert!(apply_local_copy(&mut plan, Path::new("/ops/dump.tar"), None).unwrap());
        let ids: Vec<String> = plan.steps.iter().map(|s| s.id.clone()).collect();
        let copy = ids.iter().position(|i| i == "copy.local-copy").unwrap();
        assert_eq!(ids[copy - 1], "copy.verify-dump", "{ids:?}");
        assert_eq!(ids[copy + 1], "copy.copy", "{ids:?}");
        assert!(!apply_local_copy(&mut plan, Path::new("/ops/dump.tar"), None).unwrap());
        assert!(apply_local_copy(&mut plan, Path::new("/ops/other.tar"), None).unwrap());
        assert_eq!(ids.len(), plan.steps.len());
        let err = apply_local_copy(
            &mut plan,
            Path::new("/ops/third.tar"),
            Some("/ops/other.tar"),
        )
        .unwrap_err();
        assert_eq!(err.code, ExitCode::Usage);
        assert!(err.message.contains("/ops/other.tar"));
    }

    #[test]
    fn a_changed_local_chart_is_refused_while_an_install_is_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let chart = dir.path().join("live-agent-4.44.0.tgz");
        std::fs::write(&chart, "chart v1").unwrap();
        let mut plan = build(&release_4_43(), &Options::default()).unwrap();
        plan.chart = chart.display().to_string();
        let sha = chart_sha256(&ChartRef::Archive(chart.clone()))
            .unwrap()
            .unwrap();
        plan.recorded_flags.insert(CHART_SHA256.into(), sha);
        assert!(check_chart(&plan, |_| false).is_ok());
        std::fs::write(&chart, "chart v2").unwrap();
        let err = check_chart(&plan, |_| false).unwrap_err();
        assert_eq!(err.code, ExitCode::Precondition);
        assert!(err.message.contains("changed since the migration started"));
        assert!(
            check_chart(&plan, |_| true).is_ok(),
            "nothing left to install"
        );
    }

    #[test]
    fn a_chart_directory_hash_covers_every_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("Chart.yaml"), "version: 4.44.0").unwrap();
        std::fs::write(dir.path().join("templates/a.yaml"), "a").unwrap();
        let chart = ChartRef::Directory(dir.path().into());
        let first = chart_sha256(&chart).unwrap();
        std::fs::write(dir.path().join("templates/a.yaml"), "b").unwrap();
        assert_ne!(first, chart_sha256(&chart).unwrap());
    }
}
