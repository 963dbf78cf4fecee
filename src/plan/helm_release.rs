//! What the install and upgrade steps do about the release as helm reports it, decided here
//! (pure) so a resumed run handles every state helm can leave behind: a release installed
//! already, one whose install failed, and one left `pending-*` by a helm process that died
//! (killed with the plugin, a lost machine): helm refuses every later operation on it until
//! that record is gone.

/// A release as `helm list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub status: String,
    pub chart_version: String,
    pub revision: u32,
    /// Unix seconds of the last change, when helm printed one that could be read.
    pub updated: Option<i64>,
}

/// A pending operation, and whether its helm may still be running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// Nothing pending.
    No,
    /// Younger than the helm timeout plus a margin: its helm may be at work; wait this long.
    Running { wait_seconds: i64 },
    /// Older: no helm runs it any more. Its record (this revision) must go.
    Abandoned { revision: u32 },
}

/// The margin beyond helm's own `--timeout` before a pending operation counts as abandoned:
/// helm works before and after its waits.
pub fn margin(timeout_seconds: u64) -> i64 {
    (timeout_seconds as i64 / 10).max(10)
}

/// Whether the release waits on an operation, and what to do about it at `now`.
pub fn pending(release: Option<&Release>, now: i64, timeout_seconds: u64) -> Pending {
    let Some(r) = release else {
        return Pending::No;
    };
    if !(r.status.starts_with("pending-") || r.status == "uninstalling") {
        return Pending::No;
    }
    let deadline = timeout_seconds as i64 + margin(timeout_seconds);
    match r.updated {
        Some(at) if now - at < deadline => Pending::Running {
            wait_seconds: deadline - (now - at),
        },
        // A time that cannot be read: wait one whole deadline from now, never guess.
        None => Pending::Running {
            wait_seconds: deadline,
        },
        Some(_) => Pending::Abandoned {
            revision: r.revision,
        },
    }
}

/// [`pending`] for a run that has watched the same pending revision for `waited_seconds`
/// (on its own monotonic clock): never longer than one whole deadline from the first look,
/// whatever time helm printed (one that cannot be read, or one ahead of this machine's
/// clock), then the operation counts as abandoned. Never endless.
pub fn pending_after(
    release: Option<&Release>,
    now: i64,
    timeout_seconds: u64,
    waited_seconds: i64,
) -> Pending {
    let deadline = timeout_seconds as i64 + margin(timeout_seconds);
    match (pending(release, now, timeout_seconds), release) {
        (Pending::Running { wait_seconds }, Some(r)) => {
            match wait_seconds.min(deadline - waited_seconds) {
                left if left > 0 => Pending::Running { wait_seconds: left },
                _ => Pending::Abandoned {
                    revision: r.revision,
                },
            }
        }
        (decided, _) => decided,
    }
}

/// Whether a run has waited long enough for the release to settle: two deadlines, one for
/// the operation seen first and one for an operation another helm started meanwhile. A
/// release still pending after that is left to the operator.
pub fn waited_too_long(waited_seconds: u64, timeout_seconds: u64) -> bool {
    waited_seconds >= 2 * (timeout_seconds + margin(timeout_seconds) as u64)
}

/// What the install step does, once nothing is pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    Install,
    /// Installed and deployed already (a rerun after the install).
    Done,
    /// The install failed (e.g. interrupted): an upgrade with the same values completes it.
    CompleteFailed,
    /// Something else holds the release name.
    Refuse(String),
}

pub fn install(release: Option<&Release>, to_version: &str) -> Install {
    match release {
        None => Install::Install,
        Some(r) if r.chart_version != to_version => Install::Refuse(format!(
            "exists with chart {} ({}), expected none before the install",
            r.chart_version, r.status
        )),
        Some(r) if r.status == "deployed" => Install::Done,
        Some(r) if r.status == "failed" => Install::CompleteFailed,
        Some(r) => Install::Refuse(format!(
            "is {} on chart {}, which the install cannot continue from",
            r.status, r.chart_version
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(status: &str, version: &str, updated: Option<i64>) -> Release {
        Release {
            status: status.into(),
            chart_version: version.into(),
            revision: 2,
            updated,
        }
    }

    #[test]
    fn an_unreadable_time_is_waited_for_one_deadline_from_the_first_look_then_abandoned() {
        let unknown = release("pending-install", "4.44.0", None);
        assert_eq!(
            pending_after(Some(&unknown), 5000, 600, 0),
            Pending::Running { wait_seconds: 660 }
        );
        assert_eq!(
            pending_after(Some(&unknown), 5000, 600, 600),
            Pending::Running { wait_seconds: 60 }
        );
        assert_eq!(
            pending_after(Some(&unknown), 5000, 600, 660),
            Pending::Abandoned { revision: 2 }
        );
        // A readable time decides by itself within the first look's deadline.
        let r = release("pending-upgrade", "4.44.0", Some(1000));
        assert_eq!(
            pending_after(Some(&r), 1000 + 100, 600, 50),
            Pending::Running { wait_seconds: 560 }
        );
    }

    #[test]
    fn a_time_ahead_of_this_clock_is_waited_for_one_deadline_from_the_first_look() {
        // helm's machine an hour ahead: the time alone would mean waiting 71 minutes.
        let ahead = release("pending-upgrade", "4.44.0", Some(5000 + 3600));
        assert_eq!(
            pending(Some(&ahead), 5000, 600),
            Pending::Running { wait_seconds: 4260 }
        );
        assert_eq!(
            pending_after(Some(&ahead), 5000, 600, 0),
            Pending::Running { wait_seconds: 660 }
        );
        assert_eq!(
            pending_after(Some(&ahead), 5000 + 600, 600, 600),
            Pending::Running { wait_seconds: 60 }
        );
        assert_eq!(
            pending_after(Some(&ahead), 5000 + 660, 600, 660),
            Pending::Abandoned { revision: 2 }
        );
        assert!(!waited_too_long(1319, 600));
        assert!(waited_too_long(1320, 600));
    }

    #[test]
    fn a_pending_operation_is_waited_for_until_helms_timeout_has_surely_passed() {
        let r = release("pending-upgrade", "4.44.0", Some(1000));
        // 600 s timeout + 60 s margin.
        assert_eq!(
            pending(Some(&r), 1000 + 100, 600),
            Pending::Running { wait_seconds: 560 }
        );
        assert_eq!(
            pending(Some(&r), 1000 + 660, 600),
            Pending::Abandoned { revision: 2 }
        );
        assert_eq!(margin(5), 10);
        let unknown = release("pending-install", "4.44.0", None);
        assert_eq!(
            pending(Some(&unknown), 5000, 600),
            Pending::Running { wait_seconds: 660 }
        );
        assert_eq!(
            pending(
                Some(&release("uninstalling", "4.43.1", Some(0))),
                10_000,
                600
            ),
            Pending::Abandoned { revision: 2 }
        );
        assert_eq!(
            pending(Some(&release("deployed", "4.44.0", Some(0))), 10, 600),
            Pending::No
        );
        assert_eq!(pending(None, 10, 600), Pending::No);
    }

    #[test]
    fn the_install_step_continues_from_what_an_earlier_run_left() {
        assert_eq!(install(None, "4.44.0"), Install::Install);
        assert_eq!(
            install(Some(&release("deployed", "4.44.0", None)), "4.44.0"),
            Install::Done
        );
        assert_eq!(
            install(Some(&release("failed", "4.44.0", None)), "4.44.0"),
            Install::CompleteFailed
        );
        assert!(matches!(
            install(Some(&release("deployed", "4.43.1", None)), "4.44.0"),
            Install::Refuse(m) if m.contains("chart 4.43.1")
        ));
        assert!(matches!(
            install(Some(&release("superseded", "4.44.0", None)), "4.44.0"),
            Install::Refuse(_)
        ));
    }
}
