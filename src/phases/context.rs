//! What every step gets: the cluster, helm, the options, the state and its store, and how
//! to talk to the operator (events, notes, hints, the typed confirmation).

use std::io::IsTerminal;

use serde_json::json;

use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::helm::Helm;
use crate::kube::ops::Kube;
use crate::output::Printer;
use crate::plan::Options;
use crate::settings::Settings;
use crate::state::{State, Store};

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
        let mark = match status {
            "done" => "✓",
            "skipped" => "·",
            "started" => "→",
            _ => " ",
        };
        self.printer.event(
            json!({ "event": "step", "id": id, "status": status, "message": message }),
            |p| p.note(&format!("{mark} [{id}] {message}")),
        );
    }

    /// The plan's warnings (images that moved, values the target chart ignores, ...): a JSON
    /// event each, or warning lines on stderr.
    pub fn warnings(&self) {
        for warning in &self.state.plan.warnings {
            self.printer
                .event(json!({ "event": "warning", "message": warning }), |p| {
                    p.warn(warning)
                });
        }
    }

    /// Progress that is not a step boundary (stderr only).
    pub fn note(&self, text: &str) {
        self.printer.progress(&format!("    {text}"));
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
                self.printer
                    .prompt(&format!("Type the release name ({release}) to go on: "));
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
