//! One PID namespace and one network namespace per pod. The PID namespace makes stopping a
//! pod end every process in it, including those that left their process group (`setsid`,
//! `nohup ... &` from an exec, daemons); the network namespace gives the pod its own `lo` and
//! address, so `127.0.0.1` inside a pod is the pod and two pods may listen on one port.
//!
//! The PID namespace's first process is a minimal init forked from the spawner thread (no
//! `exec`): it reaps the orphans reparented to it and does nothing else. It is forked in the
//! new network namespace, which lives as long as a process of the pod does (and while the
//! runtime holds its descriptor). Every container process, setup step and exec of the pod is
//! forked into both namespaces (`setns` on the spawner thread before the fork). When the init
//! dies the kernel SIGKILLs everything left in the PID namespace: the runtime kills it when
//! the pod stops, and `PR_SET_PDEATHSIG` kills it when the spawner thread (the sim) ends, even
//! on SIGKILL. This needs only `CAP_SYS_ADMIN`, like the mount namespaces; a cgroup with
//! `cgroup.kill` would also need a writable cgroup v2 hierarchy and would not survive the sim
//! being killed.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The init of a pod's PID namespace, and the pod's PID and network namespaces (to fork
/// into them).
pub struct PodInit {
    pid: libc::pid_t,
    ns: OwnedFd,
    net: OwnedFd,
    killed: AtomicBool,
}

/// A PID and a network namespace, borrowed: a pod's, or the sim's own (where the spawner
/// thread returns after forking into a pod's).
#[derive(Clone, Copy)]
pub struct Namespaces {
    pub pid: RawFd,
    pub net: RawFd,
}

impl PodInit {
    /// Creates a new PID namespace with its init, in a new network namespace. Must run on
    /// the spawner thread: the init dies with the thread that forked it. `home` holds the
    /// thread's own namespaces, which it returns to.
    pub fn create(home: Namespaces) -> io::Result<PodInit> {
        let devnull = File::options().read(true).write(true).open("/dev/null")?;
        // SAFETY: unshare(2) only changes where this thread's next children are created
        // (PID) and which network this thread sees until it returns home below (network).
        check(unsafe { libc::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNET) })?;
        // SAFETY: the child only makes async-signal-safe system calls (see `init`).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: in the forked child, which never returns from here.
            unsafe { init(devnull.as_raw_fd()) }
        }
        let forked = if pid < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(pid)
        };
        let restored = go_home(home);
        let pid = forked?;
        let opened = restored.and_then(|()| {
            Ok((
                File::open(format!("/proc/{pid}/ns/pid"))?,
                File::open(format!("/proc/{pid}/ns/net"))?,
            ))
        });
        match opened {
            Ok((ns, net)) => Ok(PodInit {
                pid,
                ns: ns.into(),
                net: net.into(),
                killed: AtomicBool::new(false),
            }),
            Err(e) => {
                kill_and_reap(pid);
                Err(e)
            }
        }
    }

    /// The init's process id (in the sim's PID namespace).
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// The namespaces, for [`enter`]. Once the init is gone the PID namespace admits no new
    /// process (fork fails with ENOMEM).
    pub fn namespaces(&self) -> Namespaces {
        Namespaces {
            pid: self.ns.as_raw_fd(),
            net: self.net.as_raw_fd(),
        }
    }

    /// Ends every process left in the namespace (once; later calls do nothing). The init is
    /// reaped only here, so its pid cannot have been reused before.
    pub fn kill(&self) {
        if !self.killed.swap(true, Ordering::SeqCst) {
            kill_and_reap(self.pid);
        }
    }
}

impl Drop for PodInit {
    fn drop(&mut self) {
        self.kill();
    }
}

/// SIGKILLs the init (the kernel then SIGKILLs the rest of its namespace) and reaps it. The
/// init's exit waits until every process of the namespace is gone, including exec'd ones the
/// sim reaps itself, so the wait is bounded.
fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: kill(2) and waitpid(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // SAFETY: as above.
        let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        if r != 0 || Instant::now() >= deadline {
            if r == 0 {
                tracing::debug!("the init of a pod's PID namespace ({pid}) is still exiting");
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Makes this thread's next children start in the pod namespaces `ns` (on failure, the
/// caller goes [`go_home`]).
pub fn enter(ns: Namespaces) -> io::Result<()> {
    // SAFETY: setns(2) on namespace file descriptors we hold.
    check(unsafe { libc::setns(ns.pid, libc::CLONE_NEWPID) })?;
    // SAFETY: as above.
    check(unsafe { libc::setns(ns.net, libc::CLONE_NEWNET) })
}

/// Brings this thread back to its own namespaces (network first: the thread itself uses it).
pub fn go_home(home: Namespaces) -> io::Result<()> {
    // SAFETY: setns(2) on namespace file descriptors we hold.
    check(unsafe { libc::setns(home.net, libc::CLONE_NEWNET) })?;
    // SAFETY: as above.
    check(unsafe { libc::setns(home.pid, libc::CLONE_NEWPID) })
}

fn check(rc: i32) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The init: stdio on /dev/null, every other inherited descriptor closed (the sim's sockets
/// and pipes must not live on here), all signals blocked, reaping orphans on each SIGCHLD.
/// Signals from inside the namespace cannot kill it; SIGKILL from the sim or the parent-death
/// signal can.
///
/// # Safety
/// Only in a child just forked from a multithreaded process: async-signal-safe calls only.
unsafe fn init(devnull: RawFd) -> ! {
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    for fd in 0..3 {
        libc::dup2(devnull, fd);
    }
    if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
        for fd in 3..65536 {
            libc::close(fd);
        }
    }
    libc::prctl(libc::PR_SET_NAME, c"la-sim-pod-init".as_ptr());
    let mut all: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
    let mut chld: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut chld);
    libc::sigaddset(&mut chld, libc::SIGCHLD);
    loop {
        while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
        libc::sigwaitinfo(&chld, std::ptr::null_mut());
    }
}
