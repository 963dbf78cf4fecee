//! The executor: runs the plan's steps in order, skipping those the state records as done,
//! recording each one as it completes. One file per phase holds what its steps do.

mod backup;
mod cleanup;
mod finalize;
mod install;
pub mod overrides;
pub mod preflight;
mod restore;
mod uninstall;
mod verify;

use std::io::IsTerminal;

use serde_json::json;

use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::helm::Helm;
use crate::kube::ops::Kube;
use crate::output::Printer;
use crate::plan::{Action, Options, Phase, Step};
use crate::settings::Settings;
use crate::state::{now, State, Store};

/// How destructive steps are confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// `--yes`
    Given,
    /// Ask on the terminal (typed release name).
    Ask,
    /// `--no-input`, or no terminal: refuse.
    Refuse,
}

impl Confirmation {
    pub fn from_flags(yes: bool, no_input: bool) -> Confirmation {
        if yes {
            Confirmation::Given
        } else if no_input || !std::io::stdin().is_terminal() {
            Confirmation::Refuse
        } else {
            Confirmation::Ask
        }
    }
}

/// Everything a step needs.
pub struct Runner<'a> {
    pub settings: &'a Settings,
    pub printer: &'a Printer,
    pub kube: Kube,
    pub helm: Helm,
    pub options: Options,
    pub confirmation: Confirmation,
    pub store: Store,
    pub state: State,
    /// Whether this run confirmed the point of no return (a rerun asks again before the
    /// destructive steps left).
    pub deletes_confirmed: bool,
}

impl Runner<'_> {
    /// One JSON event per line on stdout (json mode), or a line on stderr.
    pub fn event(&self, id: &str, status: &str, message: &str) {
        if self.printer.is_json() {
            let _ = self.printer.json(&json!({
                "event": "step", "id": id, "status": status, "message": message,
            }));
        } else {
            let mark = match status {
                "done" => "✓",
                "skipped" => "·",
                "started" => "→",
                _ => " ",
            };
            self.printer.note(&format!("{mark} [{id}] {message}"));
        }
    }

    /// The plan's warnings (images that moved, values the target chart ignores, ...): a JSON
    /// event each, or warning lines on stderr.
    pub fn warnings(&self) {
        for warning in &self.state.plan.warnings {
            if self.printer.is_json() {
                let _ = self
                    .printer
                    .json(&json!({ "event": "warning", "message": warning }));
            } else {
                self.printer.warn(warning);
            }
        }
    }

    /// Progress that is not a step boundary (stderr only).
    pub fn note(&self, text: &str) {
        if !self.printer.is_json() {
            self.printer.note(&format!("    {text}"));
        }
    }

    /// Saves the state (renewing the lock).
    pub async fn save(&mut self) -> Result<()> {
        self.store.save(&self.state).await
    }

    /// The command that resumes the migration.
    pub fn rerun_hint(&self) -> String {
        self.rerun_hint_to("it resumes at this step")
    }

    /// The command that resumes the migration, and what it will do.
    pub fn rerun_hint_to(&self, then: &str) -> String {
        format!("run `{}` again: {then}", self.command(""))
    }

    /// The plugin's command `args` for this release and namespace (hints and notes).
    pub fn command(&self, args: &str) -> String {
        crate::hint::command(&self.settings.release, &self.settings.namespace, args)
    }

    /// Runs the steps of `phases` (all of the migration when `None`) that are not done yet.
    pub async fn run(&mut self, only: Option<Phase>) -> Result<()> {
        let steps: Vec<Step> = self.state.plan.steps.clone();
        for step in &steps {
            // The migration never runs cleanup steps an earlier `cleanup` left in the plan.
            if only.is_none() && step.phase == Phase::Cleanup {
                continue;
            }
            if only.is_some_and(|p| p != step.phase) {
                if only.is_some_and(|p| step.phase < p) && !self.state.is_done(&step.id) {
                    return Err(Error::new(
                        ExitCode::Precondition,
                        format!(
                            "step {} of phase {} has not run yet; phase {} starts after it",
                            step.id,
                            step.phase.name(),
                            only.map(Phase::name).unwrap_or_default()
                        ),
                    )
                    .hint(format!(
                        "run `{}` first (or the whole migration)",
                        self.command(step.phase.name())
                    )));
                }
                continue;
            }
            // `verify` asked for by name checks the release as it is now, every time.
            let again = only == Some(Phase::Verify);
            if self.state.is_done(&step.id) && !again {
                self.event(
                    &step.id,
                    "skipped",
                    &format!("{} (done earlier)", step.title),
                );
                continue;
            }
            if step.destructive && step.phase != Phase::Cleanup && !self.deletes_confirmed {
                let deletes = self.state.plan.deletes.clone();
                uninstall::confirm(self, &deletes).await?;
            }
            self.event(&step.id, "started", &step.title);
            let detail = self.execute(step).await.map_err(|mut e| {
                if e.hint.is_none() {
                    e.hint = Some(self.rerun_hint());
                }
                e.message = format!("step {} failed: {}", step.id, e.message);
                e
            })?;
            self.state.mark_done(&step.id, now(), &self.store.holder);
            self.save().await?;
            self.event(&step.id, "done", &detail);
        }
        Ok(())
    }

    async fn execute(&mut self, step: &Step) -> Result<String> {
        match &step.action {
            Action::SaveValues { secret } => backup::save_values(self, secret).await,
            Action::RecordReplicas { deployments } => {
                backup::record_replicas(self, deployments).await
            }
            Action::ScaleDown {
                deployments,
                selectors,
            } => backup::scale_down(self, deployments, selectors).await,
            Action::BackupVolume => backup::volume(self).await,
            Action::Dump => backup::dump(self).await,
            Action::VerifyBackup => backup::verify(self).await,
            Action::LocalCopy { path } => backup::local_copy(self, path).await,
            Action::Confirm { deletes } => uninstall::confirm(self, deletes).await,
            Action::RetainVolumes { volumes } => uninstall::retain(self, volumes).await,
            Action::HelmUninstall => uninstall::helm_uninstall(self).await,
            Action::RebindAttachments { volume, claim } => {
                uninstall::rebind(self, volume, claim).await
            }
            Action::DeleteClaims { claims } => uninstall::delete_claims(self, claims).await,
            Action::ReplaceSecrets {
                secrets,
                keep_passwords,
            } => uninstall::secrets(self, secrets, *keep_passwords).await,
            Action::HelmInstall => install::helm_install(self).await,
            Action::WaitDatabases { pods } => install::wait_databases(self, pods).await,
            Action::Restore => restore::restore(self).await,
            Action::VerifyRestore => restore::verify(self).await,
            Action::HelmUpgrade => install::helm_upgrade(self).await,
            Action::WaitApp { deployments } => install::wait_app(self, deployments).await,
            Action::ClearOnboarding { pod, host } => {
                finalize::clear_onboarding(self, pod, host).await
            }
            Action::Verify => verify::report(self).await,
            Action::RemoveBackup { objects } => cleanup::remove_backup(self, objects).await,
            Action::DeleteReleasedVolumes { volumes } => {
                cleanup::delete_released(self, volumes).await
            }
            Action::RestoreReclaimPolicy { volume, policy } => {
                cleanup::restore_policy(self, volume, policy).await
            }
        }
    }

    /// Asks for the typed release name (or takes `--yes`) before `what`. The answer is read
    /// off the runtime's threads, so Ctrl-C at the prompt interrupts the run.
    pub async fn confirm(&self, what: &str) -> Result<()> {
        let release = self.settings.release.clone();
        match self.confirmation {
            Confirmation::Given => Ok(()),
            Confirmation::Refuse => Err(Error::new(
                ExitCode::Refused,
                format!(
                    "{what} needs confirmation, and there is no terminal to ask (or --no-input)"
                ),
            )
            .hint(format!(
                "check the plan with `{}`, then run `{}`",
                self.command("--dry-run"),
                self.command("--yes")
            ))),
            Confirmation::Ask => {
                eprint!("Type the release name ({release}) to go on: ");
                let answer = tokio::task::spawn_blocking(|| {
                    let mut answer = String::new();
                    std::io::stdin().read_line(&mut answer).map(|_| answer)
                })
                .await
                .map_err(|e| {
                    Error::new(ExitCode::Refused, "cannot read the confirmation").source(e)
                })?
                .map_err(|e| {
                    Error::new(ExitCode::Refused, "cannot read the confirmation").source(e)
                })?;
                if answer.trim() == release {
                    Ok(())
                } else {
                    Err(Error::new(
                        ExitCode::Refused,
                        format!("{what} was not confirmed (typed {:?})", answer.trim()),
                    )
                    .hint(
                        "nothing was deleted; run again and type the release name, or pass --yes",
                    ))
                }
            }
        }
    }
}
