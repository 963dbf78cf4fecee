//! `helm la-migrate 4.44 [phase]`: resolves options, reads or starts the in-cluster state,
//! and hands the plan to the executor. The work is in `plan` and `phases`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::cli::{MigrationCommand, RunArgs};
use crate::error::{Context, Error, Result};
use crate::exit::ExitCode;
use crate::helm::Helm;
use crate::kube::ops::Kube;
use crate::output::Printer;
use crate::phases::{overrides, preflight, Confirmation, Runner};
use crate::plan::cleanup::{self, CleanupOptions};
use crate::plan::rollback as plan_rollback;
use crate::plan::{runbook, Action, Options, Phase, Plan};
use crate::resume;
use crate::settings::Settings;
use crate::state::{Lock, State, Store};

pub fn options(args: &RunArgs) -> Options {
    Options {
        backup_storage_class: args.backup_storage_class.clone(),
        backup_size_factor: args.backup_size_factor,
        backup_image: args.backup_image.clone(),
        jobs: args.jobs.max(1),
        // Absolute: a resumed run from another directory writes the same file.
        local_copy: args
            .local_copy
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        keep_passwords: args.keep_passwords,
        keep_dump: args.keep_dump,
        online: args.online,
        storage_class: args.storage_class.clone(),
        values_overrides: args.values_overrides.clone(),
        set: args.set.clone(),
        helm_timeout_seconds: args.helm_timeout,
        tools_resources: crate::plan::options::PodResources {
            cpu: args.tools_cpu.clone(),
            memory: args.tools_memory.clone(),
        },
    }
}

fn phase_of(command: Option<&MigrationCommand>) -> Option<Phase> {
    match command? {
        MigrationCommand::Prepare => Some(Phase::Prepare),
        MigrationCommand::Replicate => Some(Phase::Replicate),
        MigrationCommand::Copy => Some(Phase::Copy),
        MigrationCommand::Cutover => Some(Phase::Cutover),
        MigrationCommand::Finalize => Some(Phase::Finalize),
        MigrationCommand::Verify => Some(Phase::Verify),
        MigrationCommand::Cleanup => Some(Phase::Cleanup),
        MigrationCommand::Rollback => Some(Phase::Rollback),
        _ => None,
    }
}

pub fn run(
    settings: &Settings,
    printer: &Printer,
    args: &RunArgs,
    command: Option<&MigrationCommand>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context(ExitCode::Failure, || {
            "cannot start the async runtime".into()
        })?;
    let result = runtime.block_on(run_async(settings, printer, args, command));
    // A prompt left unanswered by an interruption must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    result
}

fn print_plan(printer: &Printer, plan: &Plan) -> Result<()> {
    printer
        .output(
            || json!({ "plan": plan }),
            |p| p.result(&runbook::render(plan)),
        )
        .context(ExitCode::Failure, || "cannot write to stdout".into())
}

async fn run_async(
    settings: &Settings,
    printer: &Printer,
    args: &RunArgs,
    command: Option<&MigrationCommand>,
) -> Result<()> {
    let options = options(args);
    let connection = crate::kube::connect(settings).await?;
    let kube = Kube::new(connection.client.clone(), &settings.namespace);
    let helm = Helm::from_settings(settings);
    let mut store = Store::new(&kube, &settings.release, connection.fence.clone());
    let existing = store.load().await?;

    if matches!(command, Some(MigrationCommand::Status)) {
        return match &existing {
            Some((state, lock)) => {
                let lag = crate::phases::replicate::replication_lag(&kube, state).await;
                status(printer, state, lock.as_ref(), lag)
            }
            None => not_started(printer, settings),
        };
    }
    let phase = phase_of(command);
    let started = std::time::Instant::now();
    let (mut state, lock) = if phase == Some(Phase::Rollback) {
        let (state, lock) = rollback_state(settings, &helm, existing)?;
        if args.dry_run {
            return print_rollback(printer, &state.plan);
        }
        (state, lock)
    } else {
        local_copy_free(existing.as_ref().map(|(s, _)| s), &options)?;
        let plan_only = args.dry_run || matches!(command, Some(MigrationCommand::Plan));
        let (mut state, lock) = match existing {
            Some((state, lock)) => (state, lock),
            None => {
                if phase.is_some_and(|p| p != Phase::Prepare) {
                    return Err(Error::new(
                        ExitCode::Precondition,
                        format!(
                            "no migration of release {:?} has started in namespace {:?}",
                            settings.release, settings.namespace
                        ),
                    )
                    .hint(format!(
                        "start with `{}` (or the whole migration: `{}`)",
                        hint_command(settings, "prepare"),
                        hint_command(settings, "")
                    )));
                }
                printer.note(
                    "Preflight: reading the release, its volumes, secrets and permissions...",
                );
                let facts = preflight::gather(settings, &kube, &helm, &options).await?;
                let mut plan = crate::plan::build(&facts, &options)?;
                record_flags(&mut plan, settings, &options)?;
                if plan_only {
                    return print_plan(printer, &plan);
                }
                let state = State::new(plan);
                store.create(&state).await?;
                (state, None)
            }
        };
        if state.rollback_started() {
            return Err(Error::new(
                ExitCode::Precondition,
                format!(
                    "a rollback of release {:?} has started: the migration cannot go on",
                    settings.release
                ),
            )
            .hint(format!(
                "finish it with `{}`; a migration can start anew after it",
                hint_command(settings, "rollback")
            )));
        }
        resumed_flags(&mut state, settings, &options, printer)?;
        if plan_only {
            return print_plan(printer, &state.plan);
        }
        (state, lock)
    };
    let mut kept_volumes = Vec::new();
    if phase == Some(Phase::Cleanup) {
        // The migration's steps stay in the record (status, and the check that they all
        // ran); this run's cleanup steps replace those of an earlier cleanup run.
        let (steps, released) = cleanup_steps(&kube, &state, args).await?;
        state.plan.steps.retain(|s| s.phase != Phase::Cleanup);
        state.plan.steps.extend(steps);
        if !args.delete_old_volumes {
            kept_volumes = released;
        }
    }
    store.lock(&state, lock.as_ref()).await?;
    store.keep_lock();
    let mut runner = Runner {
        settings,
        printer,
        kube,
        helm,
        options,
        confirmation: Confirmation::from_flags(args.yes, args.no_input),
        store,
        state,
        deletes_confirmed: false,
    };
    let result = run_interruptible(&mut runner, phase).await;
    let rollback = phase == Some(Phase::Rollback);
    // A rollback that ended leaves no record: a new migration starts from scratch.
    let unlock = if rollback && result.is_ok() {
        runner.store.delete().await
    } else {
        runner.store.unlock(&runner.state).await
    };
    let (done, total) = if rollback {
        let steps: Vec<_> = runner.state.plan.steps_of(Phase::Rollback).collect();
        let done = steps.iter().filter(|s| runner.state.is_done(&s.id)).count();
        (done, steps.len())
    } else {
        (runner.state.done.len(), runner.state.plan.steps.len())
    };
    if rollback {
        kept_volumes = runner.state.record.rollback_kept_volumes.clone();
    }
    // One shape whether the run succeeded or failed.
    let summary = json!({
        "event": "summary",
        "status": if result.is_ok() { "ok" } else { "failed" },
        "release": settings.release,
        "namespace": settings.namespace,
        "steps_done": done,
        "steps": total,
        "record": runner.state.record,
    });
    let end = End {
        phase,
        kept_volumes: &kept_volumes,
        done,
        total,
        from_version: &runner.state.plan.from_version,
        seconds: started.elapsed().as_secs(),
    };
    printer.event(summary, |p| {
        if result.is_ok() {
            p.note(&next_command(settings, &end));
        }
    });
    result.and(unlock)
}

/// How a run that succeeded ended, for its last line.
struct End<'a> {
    phase: Option<Phase>,
    /// Volumes left Released: the old ones at cleanup, the new release's at a rollback.
    kept_volumes: &'a [String],
    done: usize,
    total: usize,
    from_version: &'a str,
    seconds: u64,
}

/// What to run next after a run that succeeded (text mode's last line).
fn next_command(settings: &Settings, end: &End<'_>) -> String {
    let (kept_volumes, done, total) = (end.kept_volumes, end.done, end.total);
    match end.phase {
        None | Some(Phase::Verify) => format!(
            "Migration complete. When satisfied: {}",
            hint_command(settings, "cleanup")
        ),
        Some(Phase::Cleanup) if kept_volumes.is_empty() => "Cleanup complete.".to_string(),
        Some(Phase::Cleanup) => format!(
            "Cleanup complete. Released volumes of the old PostgreSQL and Redis are kept: {}\nDelete them: {}",
            kept_volumes.join(", "),
            hint_command(settings, "cleanup --delete-old-volumes")
        ),
        Some(Phase::Rollback) => {
            let mut text = format!(
                "Rollback complete in {} s: release {} runs chart {} again.",
                end.seconds, settings.release, end.from_version
            );
            if !kept_volumes.is_empty() {
                text.push_str(&format!(
                    "\nThe new release's volumes are kept (Released, Retain): {}\nDelete them when no longer needed: kubectl delete pv {}",
                    kept_volumes.join(", "),
                    kept_volumes.join(" ")
                ));
            }
            text.push_str(&format!(
                "\nA new migration starts from scratch: {}",
                hint_command(settings, "--dry-run")
            ));
            text
        }
        Some(p) => format!("Phase {} complete ({done}/{total} steps done).", p.name()),
    }
}

/// What a resumed run must follow: the flags that fixed the plan, and a local chart's hash.
fn record_flags(plan: &mut Plan, settings: &Settings, options: &Options) -> Result<()> {
    let chart = &settings.target().chart;
    plan.recorded_flags = resume::record(&resume::fixed_flags(settings.target(), options));
    let sha = resume::chart_sha256(chart).map_err(|e| {
        Error::new(
            ExitCode::NotFound,
            format!(
                "cannot read the chart {}",
                chart.as_helm_arg().to_string_lossy()
            ),
        )
        .source(e)
        .hint("check --chart, then run again")
    })?;
    if let Some(sha) = sha {
        plan.recorded_flags.insert(resume::CHART_SHA256.into(), sha);
    }
    Ok(())
}

/// A resumed run's flags: those that would change the plan refused by name (exit 2), a
/// changed local chart refused, `--local-copy` added to the plan.
fn resumed_flags(
    state: &mut State,
    settings: &Settings,
    options: &Options,
    printer: &Printer,
) -> Result<()> {
    let flags = resume::fixed_flags(settings.target(), options);
    resume::check_flags(&resume::recorded(&state.plan), &flags)?;
    resume::check_chart(&state.plan, |id| state.is_done(id))?;
    if let Some(path) = &options.local_copy {
        let copied = state.record.local_copy.as_ref().map(|c| c.path.clone());
        if resume::apply_local_copy(&mut state.plan, path, copied.as_deref())? {
            printer.note(&format!(
                "the archive is copied to {} before the point of no return (--local-copy)",
                path.display()
            ));
        }
    }
    Ok(())
}

/// `--local-copy` never writes over a file: the path given now, or the one the plan records,
/// is refused (exit 5) before the run changes anything, unless this migration wrote it.
fn local_copy_free(state: Option<&State>, options: &Options) -> Result<()> {
    let planned = state.and_then(|s| {
        s.plan.find_action(|a| match a {
            Action::LocalCopy { path } => Some(PathBuf::from(path)),
            _ => None,
        })
    });
    let written = state
        .and_then(|s| s.record.local_copy.as_ref())
        .map(|c| PathBuf::from(&c.path));
    for path in options.local_copy.iter().chain(planned.iter()) {
        if written.as_ref() != Some(path) {
            crate::local_file::check_free(path)?;
        }
    }
    Ok(())
}

/// The plan's warnings, the overrides given now, then the steps; until they end or Ctrl-C or
/// SIGTERM stops them at their next wait (exit 130). Completed steps are recorded; a detached
/// copy or dump goes on in its pod and a rerun reattaches. Ctrl-C on a terminal reaches
/// helm too, whose failure may end the step first: a step that fails while a signal is (or a
/// moment later gets) delivered counts as interrupted.
async fn run_interruptible(runner: &mut Runner<'_>, phase: Option<Phase>) -> Result<()> {
    crate::phases::check_state(runner).await?;
    if phase.is_none_or(|p| p < Phase::Cleanup) && runner.state.next_step().is_some() {
        runner.warnings();
        overrides::replace_saved(runner).await?;
    }
    let (signalled, mut signal) = tokio::sync::watch::channel(None);
    let listener = tokio::spawn(async move {
        let _ = signalled.send(Some(interrupted().await));
    });
    let fence = runner.store.fence.clone();
    let result = tokio::select! {
        biased;
        _ = signal.changed() => Err(Error::new(ExitCode::Interrupted, "interrupted")),
        why = fence.wait_closed() => Err(runner.store.lost_error(why)),
        result = runner.run(phase) => result,
    };
    // A request the closed fence refused may have failed the step first.
    let result = match (result, fence.closed()) {
        (Err(e), Some(why)) if e.code != ExitCode::Locked => {
            Err(runner.store.lost_error(why).source(e))
        }
        (result, _) => result,
    };
    if matches!(&result, Err(e) if e.code == ExitCode::External) && signal.borrow().is_none() {
        let _ = tokio::time::timeout(Duration::from_millis(200), signal.changed()).await;
    }
    listener.abort();
    let Some(name) = *signal.borrow() else {
        return result;
    };
    let Err(failed) = result else { return result };
    let interrupted = Error::new(ExitCode::Interrupted, format!("interrupted by {name}")).hint(
        runner.rerun_hint_to(
            "it resumes at the step that was running (a copy or dump left running in its pod is reattached)",
        ),
    );
    // A step that failed meanwhile (helm got the Ctrl-C too) is the cause shown.
    Err(if failed.code == ExitCode::Interrupted {
        interrupted
    } else {
        interrupted.source(failed)
    })
}

/// Resolves when the process gets SIGINT (Ctrl-C) or SIGTERM; names the signal.
async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// The cleanup steps for what is left in the cluster, and the Released volumes of the old
/// PostgreSQL and Redis.
async fn cleanup_steps(
    kube: &Kube,
    state: &State,
    args: &RunArgs,
) -> Result<(Vec<crate::plan::Step>, Vec<String>)> {
    let attachments = state.plan.attachments.as_ref().map(|a| a.volume.clone());
    let mut released = Vec::new();
    for pv in kube.volumes().await? {
        let name = pv.metadata.name.clone().unwrap_or_default();
        let is_released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
        if is_released
            && state.record.reclaim_policies.contains_key(&name)
            && attachments.as_deref() != Some(name.as_str())
        {
            released.push(name);
        }
    }
    let original = attachments
        .as_ref()
        .and_then(|a| state.record.reclaim_policies.get(a))
        .map(String::as_str);
    let steps = cleanup::steps(
        &state.plan,
        &released,
        original,
        CleanupOptions {
            delete_old_volumes: args.delete_old_volumes,
            restore_reclaim_policy: args.restore_reclaim_policy,
        },
    );
    Ok((steps, released))
}

/// The plugin's command `args` for the settings' release and namespace (hints and notes).
fn hint_command(settings: &Settings, args: &str) -> String {
    crate::hint::command(&settings.release, &settings.namespace, args)
}

fn not_started(printer: &Printer, settings: &Settings) -> Result<()> {
    printer
        .output(
            || json!({ "status": "not-started" }),
            |p| {
                p.result(&format!(
                    "No migration of release {} recorded in namespace {}.\nStart one: {}\n",
                    settings.release,
                    settings.namespace,
                    hint_command(settings, "--dry-run")
                ))
            },
        )
        .context(ExitCode::Failure, || "cannot write to stdout".into())
}

fn status(
    printer: &Printer,
    state: &State,
    lock: Option<&Lock>,
    lag: Option<crate::plan::replication::Lag>,
) -> Result<()> {
    // Whether the holder still runs is not known here (its clock is not this one's): the
    // lock is shown as recorded.
    printer
        .output(
            || {
                let next = state.next_step();
                let rollback = next_rollback_step(state);
                json!({
                    "status": if rollback.is_some() { "rolling-back" } else if next.is_none() { "complete" } else { "in-progress" },
                    "done": state.done,
                    "next": next.map(|s| &s.id),
                    "cleanup_next": state.next_cleanup_step().map(|s| &s.id),
                    "rollback_next": rollback.map(|s| &s.id),
                    "locked_by": lock.map(|l| &l.holder),
                    "lock_expires": lock.map(|l| l.expires),
                    "record": state.record,
                    "replication": lag.map(|l| json!({
                        "lag_bytes": l.bytes,
                        "lag_seconds": l.seconds,
                        "connected": l.connected,
                    })),
                })
            },
            |p| p.result(&status_text(state, lock, lag)),
        )
        .context(ExitCode::Failure, || "cannot write to stdout".into())
}

/// The first step of an unfinished rollback.
fn next_rollback_step(state: &State) -> Option<&crate::plan::Step> {
    state
        .plan
        .steps_of(Phase::Rollback)
        .find(|s| !state.is_done(&s.id))
}

/// `status` as text: every step, the lock, and what comes next.
fn status_text(
    state: &State,
    lock: Option<&Lock>,
    lag: Option<crate::plan::replication::Lag>,
) -> String {
    let next = state.next_step();
    let cleanup = state.next_cleanup_step();
    let rollback = next_rollback_step(state);
    let mut out = format!(
        "Migration of release {} in namespace {}: {} -> {}\n",
        state.plan.release, state.plan.namespace, state.plan.from_version, state.plan.to_version
    );
    for step in &state.plan.steps {
        let mark = if state.is_done(&step.id) {
            "done"
        } else {
            "    "
        };
        out.push_str(&format!("  [{mark}] {} {}\n", step.id, step.title));
    }
    if let Some(l) = lag {
        out.push_str(&format!(
            "Replication: PostgreSQL 15 is {} behind PostgreSQL 11 (last applied change {:.1} s old){}\n",
            crate::plan::quantity::human(l.bytes),
            l.seconds,
            if l.connected { "" } else { "; not connected now" }
        ));
    }
    if let Some(l) = lock {
        out.push_str(&format!(
            "Running now: {} holds the lock (renewed every {} s while it runs; a run that finds it not renewed for {} s takes it over)\n",
            l.holder,
            crate::state::RENEW_EVERY.as_secs(),
            l.lease_seconds
        ));
    }
    match (next, cleanup) {
        _ if rollback.is_some() => out.push_str(&format!(
            "Rollback unfinished. Next: {} (run `{}` to resume it)\n",
            rollback.map(|s| s.id.as_str()).unwrap_or_default(),
            crate::hint::command(&state.plan.release, &state.plan.namespace, "rollback")
        )),
        (Some(s), _) => out.push_str(&format!(
            "Next: {} (run `{}` to resume)\n",
            s.id,
            crate::hint::command(&state.plan.release, &state.plan.namespace, "")
        )),
        (None, Some(s)) => out.push_str(&format!(
            "Migration complete; cleanup unfinished. Next: {} (run `{}`)\n",
            s.id,
            crate::hint::command(&state.plan.release, &state.plan.namespace, "cleanup")
        )),
        (None, None) => out.push_str("Complete.\n"),
    }
    out
}

/// The state a rollback runs: the recorded migration with the rollback's steps, built once
/// (`plan::rollback`) and kept in the state, so a rerun resumes them. At the end the state
/// itself goes, and a migration can start anew.
fn rollback_state(
    settings: &Settings,
    helm: &Helm,
    existing: Option<(State, Option<Lock>)>,
) -> Result<(State, Option<Lock>)> {
    let Some((mut state, lock)) = existing else {
        return Err(Error::new(
            ExitCode::NotFound,
            format!(
                "no migration of release {:?} is recorded in namespace {:?}: there is nothing to roll back",
                settings.release, settings.namespace
            ),
        )
        .hint(format!(
            "check --release and -n; `helm status {} -n {}` shows the release as it is",
            settings.release, settings.namespace
        )));
    };
    if state.is_done("cleanup.remove-backup") {
        return Err(Error::new(
            ExitCode::Precondition,
            "cleanup removed the saved values and the original chart: this migration can no longer be rolled back",
        )
        .hint(format!(
            "PostgreSQL 11's volume may still be kept (Released): see `kubectl get pv`; `{}` shows what was done",
            hint_command(settings, "status")
        )));
    }
    if !state.plan.steps.iter().any(|s| s.phase == Phase::Rollback) {
        let release = settings.release.clone();
        let status = tokio::task::block_in_place(|| helm.status(&release))?;
        let facts = plan_rollback::RollbackFacts {
            past_point_of_no_return: plan_rollback::past_point_of_no_return(
                &state.plan,
                state.is_done("cutover.helm-uninstall"),
                status
                    .as_ref()
                    .map(|s| (s.status.as_str(), s.chart_version.as_str())),
            ),
            replicas: state.record.replicas.clone(),
            reclaim_policies: state.record.reclaim_policies.clone(),
            proven: state.record.source.is_some(),
        };
        let steps = plan_rollback::steps(&state.plan, &facts);
        state.plan.steps.extend(steps);
    }
    Ok((state, lock))
}

/// `rollback --dry-run`: the rollback's steps as a runbook, or `{"rollback":...}`.
fn print_rollback(printer: &Printer, plan: &Plan) -> Result<()> {
    printer
        .output(
            || {
                let steps: Vec<&crate::plan::Step> = plan.steps_of(Phase::Rollback).collect();
                json!({ "rollback": { "to_version": plan.from_version, "steps": steps } })
            },
            |p| p.result(&runbook::render_rollback(plan)),
        )
        .context(ExitCode::Failure, || "cannot write to stdout".into())
}
