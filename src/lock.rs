//! The migration lock's decisions, pure: who holds it, whether a run may take it, and when a
//! lock left by a run on another machine counts as expired.
//!
//! Expiry never compares two machines' clocks. As Kubernetes leader election does, the
//! holder records a lease duration and renews the lock while it runs (every renewal is a
//! write, so the state's resourceVersion changes); a run that finds the lock of a run on
//! another machine watches it and measures, on its own monotonic clock, how long it has seen
//! no write since it first looked. A run on the same machine (same user, host, boot and pid
//! namespace) is checked directly: its process gone, or a zombie, means it is dead.

use std::time::Duration;

/// How long a lock lasts without a renewal, unless the holder recorded another lease.
pub const LEASE_SECONDS: i64 = 15 * 60;

/// A lock as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub holder: String,
    /// Unix seconds on the holder's clock at its last renewal plus the lease: shown, never
    /// compared with this machine's clock.
    pub expires: i64,
    /// The lease the holder renews within.
    pub lease_seconds: i64,
}

/// What a run does about the lock it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Free, this run's own, or left by a dead run on this machine.
    Take,
    /// Held by a live run on this machine.
    Refuse,
    /// Held by a run elsewhere: watch it for a write or for the lease to pass.
    Watch,
}

/// What `me` does about `existing`; `alive` tells whether a pid on this machine runs.
pub fn decide(existing: Option<&Lock>, me: &str, alive: impl Fn(u32) -> bool) -> Decision {
    let Some(lock) = existing else {
        return Decision::Take;
    };
    if lock.holder == me {
        return Decision::Take;
    }
    match same_machine_pid(&lock.holder, me) {
        Some(pid) if alive(pid) => Decision::Refuse,
        Some(_) => Decision::Take,
        None => Decision::Watch,
    }
}

/// What watching a lock found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// The holder wrote (renewed, or saved a step): it runs.
    Alive,
    /// No write for the whole lease since this run first looked: the holder is gone.
    Expired,
    /// The lock was released (or the state is gone): decide again.
    Released,
    /// Keep watching.
    Waiting,
}

/// One look at a watched lock: `first` and `now` are the state's resourceVersion and lock
/// when first seen and now, `elapsed` this machine's monotonic time since the first look.
pub fn watched(first: (&str, &Lock), now: (&str, Option<&Lock>), elapsed: Duration) -> Watched {
    let (first_version, lock) = first;
    match now {
        (_, None) => Watched::Released,
        (version, Some(_)) if version != first_version => Watched::Alive,
        _ if elapsed.as_secs() as i64 >= lock.lease_seconds.max(1) => Watched::Expired,
        _ => Watched::Waiting,
    }
}

/// The pid of `holder` when it ran on the same machine as `me` (`who:pid`, `who` naming user,
/// host, boot and pid namespace): only then can this machine tell whether that run is alive.
pub fn same_machine_pid(holder: &str, me: &str) -> Option<u32> {
    let (their_who, their_pid) = holder.rsplit_once(':')?;
    let (my_who, _) = me.rsplit_once(':')?;
    (their_who == my_who).then(|| their_pid.parse().ok())?
}

/// Whether `/proc/<pid>/stat` (`None`: no such process) shows a running process: a zombie
/// (`Z`, killed but not yet reaped) or a dead one (`X`) is not.
pub fn alive_by_stat(stat: Option<&str>) -> bool {
    let Some(stat) = stat else { return false };
    // The command name is in parentheses and may hold anything: the state follows the last.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X' | 'x'))
}

/// Who a run is: `user@host(boot B, pidns N):pid`. The boot id and the pid namespace tell
/// apart two containers (or two boots) with one host name, whose pids mean nothing to each
/// other.
pub fn holder_id(
    user: &str,
    host: &str,
    boot: Option<&str>,
    pid_ns: Option<&str>,
    pid: u32,
) -> String {
    let boot = boot.map(|b| b.trim().replace('-', "")).unwrap_or_default();
    let boot = boot.get(..12).unwrap_or(&boot);
    let pid_ns = pid_ns.unwrap_or("").trim();
    format!("{user}@{host}(boot {boot}, pidns {pid_ns}):{pid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(holder: &str) -> Lock {
        Lock {
            holder: holder.into(),
            expires: 0,
            lease_seconds: 900,
        }
    }

    const ME: &str = "ops@laptop(boot 1a2b, pidns 4026531836):17";
    const HERE: &str = "ops@laptop(boot 1a2b, pidns 4026531836):4242";

    #[test]
    fn a_lock_here_is_decided_by_its_process_one_elsewhere_is_watched() {
        assert_eq!(decide(None, ME, |_| true), Decision::Take);
        assert_eq!(decide(Some(&lock(ME)), ME, |_| true), Decision::Take);
        assert_eq!(decide(Some(&lock(HERE)), ME, |p| p != 4242), Decision::Take);
        assert_eq!(decide(Some(&lock(HERE)), ME, |_| true), Decision::Refuse);
        for elsewhere in [
            "ops@ci(boot 9f9f, pidns 4026531836):4242",
            // Same host name, another container: its pid means nothing here.
            "ops@laptop(boot 1a2b, pidns 4026532999):4242",
            // Same host name after a reboot.
            "ops@laptop(boot 7c7c, pidns 4026531836):4242",
            "root@laptop(boot 1a2b, pidns 4026531836):4242",
        ] {
            assert_eq!(
                decide(Some(&lock(elsewhere)), ME, |_| false),
                Decision::Watch,
                "{elsewhere}"
            );
        }
    }

    #[test]
    fn a_watched_lock_expires_only_after_a_whole_lease_without_a_write() {
        let l = lock("a@b(boot x, pidns y):1");
        let secs = Duration::from_secs;
        assert_eq!(
            watched(("7", &l), ("7", Some(&l)), secs(899)),
            Watched::Waiting
        );
        assert_eq!(
            watched(("7", &l), ("7", Some(&l)), secs(900)),
            Watched::Expired
        );
        assert_eq!(watched(("7", &l), ("8", Some(&l)), secs(5)), Watched::Alive);
        assert_eq!(
            watched(("7", &l), ("8", Some(&l)), secs(5000)),
            Watched::Alive
        );
        assert_eq!(watched(("7", &l), ("8", None), secs(5)), Watched::Released);
        // The holder's own clock (expires) plays no part.
        let skewed = Lock {
            expires: i64::MAX,
            ..l.clone()
        };
        assert_eq!(
            watched(("7", &skewed), ("7", Some(&skewed)), secs(900)),
            Watched::Expired
        );
    }

    #[test]
    fn a_zombie_counts_as_dead() {
        assert!(alive_by_stat(Some("4242 (la-migrate) S 1 4242 4242 0 -1")));
        assert!(alive_by_stat(Some("4242 (la migrate) x) R 1")));
        assert!(!alive_by_stat(Some("4242 (la-migrate) Z 1 4242 4242 0 -1")));
        assert!(!alive_by_stat(Some("4242 (a) b) X 1")));
        assert!(!alive_by_stat(None));
    }

    #[test]
    fn the_holder_names_boot_and_pid_namespace_before_the_pid() {
        let id = holder_id(
            "ops",
            "laptop",
            Some("1a2b3c4d-0000-1111-2222-333344445555\n"),
            Some("4026531836"),
            42,
        );
        assert_eq!(id, "ops@laptop(boot 1a2b3c4d0000, pidns 4026531836):42");
        assert_eq!(
            same_machine_pid(
                &id,
                &holder_id(
                    "ops",
                    "laptop",
                    Some("1a2b3c4d-0000"),
                    Some("4026531836"),
                    7
                )
            ),
            Some(42)
        );
        assert_eq!(same_machine_pid(&id, "garbage"), None);
    }
}
