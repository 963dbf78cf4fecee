//! The plan as a runbook a person reads (`--dry-run`): what will happen, what will be
//! deleted, and each step with the commands that would do it by hand.

use std::fmt::Write;

use super::quantity::human;
use super::{Phase, Plan};

pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "Migration plan for release {} in namespace {}",
        plan.release, plan.namespace
    );
    let _ = writeln!(
        w,
        "  chart:    {} -> {} ({})",
        plan.from_version, plan.to_version, plan.chart
    );
    match &plan.new_database {
        Some(db) => {
            let _ = writeln!(
                w,
                "  database: internal PostgreSQL 11 -> 15 beside it, copied and proven ({})",
                db.source.database
            );
            let _ = writeln!(
                w,
                "  new:      claim {} of {} in storage class {}, pod {}; PostgreSQL 11's volume stays as the backup",
                db.claim,
                human(db.size_bytes),
                db.storage_class.as_deref().unwrap_or("(default)"),
                db.pod_name()
            );
        }
        None => {
            let _ = writeln!(
                w,
                "  database: external; its data stays where it is (no copy)"
            );
        }
    }
    if let Some(b) = &plan.backup {
        let _ = writeln!(
            w,
            "  dump:     volume {} of {} in storage class {}, image {}, {} parallel jobs",
            b.claim,
            human(b.size_bytes),
            b.storage_class.as_deref().unwrap_or("(default)"),
            b.image,
            b.jobs
        );
    }
    if !plan.replicas.is_empty() {
        let counts: Vec<String> = plan
            .replicas
            .iter()
            .map(|r| format!("{} {}", r.name, r.replicas))
            .collect();
        let _ = writeln!(w, "  replicas: {}", counts.join(", "));
    }
    if let Some(a) = &plan.attachments {
        let _ = writeln!(
            w,
            "  attachments: volume {} (claim {}, reclaim policy {}) is kept and rebound",
            a.volume, a.claim, a.policy
        );
    }
    let _ = writeln!(w, "  state:    ConfigMap {}", plan.state_config_map);
    if !plan.warnings.is_empty() {
        let _ = writeln!(w, "\nWarnings:");
        for warning in &plan.warnings {
            let _ = writeln!(w, "  - {warning}");
        }
    }
    let _ = writeln!(w, "\nDeleted after the point of no return:");
    for d in &plan.deletes {
        let _ = writeln!(w, "  - {d}");
    }
    if !plan.keeps.is_empty() {
        let _ = writeln!(w, "Never touched:");
        for k in &plan.keeps {
            let _ = writeln!(w, "  - {k}");
        }
    }
    for phase in Phase::MIGRATION {
        render_steps(w, plan, phase);
    }
    let _ = writeln!(
        w,
        "\nRun it: {}",
        crate::hint::command(&plan.release, &plan.namespace, "")
    );
    out
}

/// The rollback's steps (`rollback --dry-run`): back to chart `from_version` from where the
/// recorded migration stopped.
pub fn render_rollback(plan: &Plan) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "Rollback plan for release {} in namespace {}: back to chart {}",
        plan.release, plan.namespace, plan.from_version
    );
    render_steps(w, plan, Phase::Rollback);
    let _ = writeln!(
        w,
        "\nRun it: {}",
        crate::hint::command(&plan.release, &plan.namespace, "rollback")
    );
    out
}

/// The steps of `phase` with their commands, under the phase's name.
fn render_steps(w: &mut String, plan: &Plan, phase: Phase) {
    let mut steps = plan.steps_of(phase).peekable();
    if steps.peek().is_none() {
        return;
    }
    let _ = writeln!(w, "\n== {} ==", phase.name());
    for step in steps {
        let mark = if step.destructive {
            " (destructive)"
        } else {
            ""
        };
        let _ = writeln!(w, "[{}] {}{mark}", step.id, step.title);
        for cmd in &step.commands {
            // Continuation lines (heredocs) stay unindented so they paste as they are.
            for (i, line) in cmd.lines().enumerate() {
                let prefix = match (i, line.starts_with('#')) {
                    (0, true) => "  ",
                    (0, false) => "  $ ",
                    _ => "",
                };
                let _ = writeln!(w, "{prefix}{line}");
            }
        }
    }
}
