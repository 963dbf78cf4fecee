//! Which steps a run executes: a pure decision per step from the phase asked for, what the
//! state records as done and whether this run has confirmed the point of no return. The
//! executor (`crate::phases`) acts on it.

use super::{Phase, Step};

/// What a run does with one step of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not this run's: another phase, or a cleanup step during the migration.
    Pass,
    /// Done by an earlier run: reported as skipped.
    DoneEarlier,
    /// An earlier phase's step is not done: the phase asked for cannot start.
    EarlierPhaseUnfinished,
    /// Run it; first ask for the point of no return when `confirm` (a destructive migration
    /// or rollback step this run has not confirmed yet).
    Run { confirm: bool },
}

/// The decision for `step` in a run of `only` (the whole migration when `None`), given
/// whether the state records it `done` and whether this run has `confirmed` deletions.
pub fn decide(step: &Step, only: Option<Phase>, done: bool, confirmed: bool) -> Decision {
    match only {
        // The migration never runs cleanup or rollback steps an earlier run left in the plan.
        None if matches!(step.phase, Phase::Cleanup | Phase::Rollback) => return Decision::Pass,
        // A rollback runs from wherever the migration stopped.
        Some(Phase::Rollback) if step.phase != Phase::Rollback => return Decision::Pass,
        Some(p) if p != step.phase => {
            return if step.phase < p && !done {
                Decision::EarlierPhaseUnfinished
            } else {
                Decision::Pass
            };
        }
        _ => {}
    }
    // `verify` asked for by name checks the release as it is now, every time.
    if done && only != Some(Phase::Verify) {
        return Decision::DoneEarlier;
    }
    Decision::Run {
        confirm: step.destructive && step.phase != Phase::Cleanup && !confirmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;

    fn step(phase: Phase, destructive: bool) -> Step {
        Step {
            id: format!("{}.x", phase.name()),
            phase,
            title: String::new(),
            destructive,
            action: Action::Verify,
            commands: Vec::new(),
        }
    }

    #[test]
    fn the_migration_runs_what_is_not_done_and_never_cleanup() {
        let s = step(Phase::Copy, false);
        assert_eq!(
            decide(&s, None, false, false),
            Decision::Run { confirm: false }
        );
        assert_eq!(decide(&s, None, true, false), Decision::DoneEarlier);
        let c = step(Phase::Cleanup, true);
        assert_eq!(decide(&c, None, false, false), Decision::Pass);
    }

    #[test]
    fn a_destructive_step_asks_once_per_run_and_cleanup_asks_on_its_own() {
        let s = step(Phase::Cutover, true);
        assert_eq!(
            decide(&s, None, false, false),
            Decision::Run { confirm: true }
        );
        assert_eq!(
            decide(&s, None, false, true),
            Decision::Run { confirm: false }
        );
        let c = step(Phase::Cleanup, true);
        assert_eq!(
            decide(&c, Some(Phase::Cleanup), false, false),
            Decision::Run { confirm: false }
        );
    }

    #[test]
    fn a_phase_by_name_needs_the_earlier_ones_done_and_ignores_later_ones() {
        let earlier = step(Phase::Prepare, false);
        assert_eq!(
            decide(&earlier, Some(Phase::Copy), false, false),
            Decision::EarlierPhaseUnfinished
        );
        assert_eq!(
            decide(&earlier, Some(Phase::Copy), true, false),
            Decision::Pass
        );
        let later = step(Phase::Cutover, true);
        assert_eq!(
            decide(&later, Some(Phase::Copy), false, false),
            Decision::Pass
        );
    }

    #[test]
    fn verify_by_name_runs_again_every_time() {
        let v = step(Phase::Verify, false);
        assert_eq!(
            decide(&v, Some(Phase::Verify), true, false),
            Decision::Run { confirm: false }
        );
        assert_eq!(decide(&v, None, true, false), Decision::DoneEarlier);
    }

    #[test]
    fn a_rollback_runs_only_its_own_steps_from_wherever_the_migration_stopped() {
        let r = step(Phase::Rollback, true);
        assert_eq!(decide(&r, None, false, false), Decision::Pass);
        assert_eq!(
            decide(&r, Some(Phase::Rollback), false, false),
            Decision::Run { confirm: true }
        );
        assert_eq!(
            decide(&r, Some(Phase::Rollback), false, true),
            Decision::Run { confirm: false }
        );
        assert_eq!(
            decide(&r, Some(Phase::Rollback), true, false),
            Decision::DoneEarlier
        );
        let unfinished = step(Phase::Copy, false);
        assert_eq!(
            decide(&unfinished, Some(Phase::Rollback), false, false),
            Decision::Pass
        );
        assert_eq!(
            decide(&r, Some(Phase::Cleanup), false, false),
            Decision::Pass
        );
    }
}
