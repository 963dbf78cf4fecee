//! One PID namespace per pod, so that stopping a pod ends every process in it, including those
//! that left their process group (`setsid`, `nohup ... &` from an exec, daemons).
//!
//! The namespace's first process is a minimal init forked from the spawner thread (no `exec`):
//! it reaps the orphans reparented to it and does nothing else. Every container process, setup
//! step and exec of the pod is forked into the namespace (`setns` on the spawner thread before
//! the fork). When the init dies the kernel SIGKILLs everything left in the namespace: the
//! runtime kills it when the pod stops, and `PR_SET_PDEATHSIG` kills it when the spawner
//! thread (the sim) ends, even on SIGKILL. This needs only `CAP_SYS_ADMIN`, like the mount
//! namespaces; a cgroup with `cgroup.kill` would also need a writable cgroup v2 hierarchy and
//! would not survive the sim being killed.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The init of a pod's PID namespace, and the namespace itself (to fork into it).
pub struct PodInit {
    pid: libc::pid_t,
    ns: OwnedFd,
    killed: AtomicBool,
}

impl PodInit {
    /// Creates a new PID namespace with its init. Must run on the spawner thread: the init
    /// dies with the thread that forked it. `home` is the thread's own PID namespace, which
    /// later forks go back to.
    pub fn create(home: RawFd) -> io::Result<PodInit> {
        let devnull = File::options().read(true).write(true).open("/dev/null")?;
        // SAFETY: unshare(2) only changes where this thread's next children are created.
        check(unsafe { libc::unshare(libc::CLONE_NEWPID) })?;
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
        let restored = enter(home);
        let pid = forked?;
        match restored.and_then(|()| File::open(format!("/proc/{pid}/ns/pid"))) {
            Ok(f) => Ok(PodInit {
                pid,
                ns: f.into(),
                killed: AtomicBool::new(false),
            }),
            Err(e) => {
                kill_and_reap(pid);
                Err(e)
            }
        }
    }

    /// The namespace, for [`enter`]. Once the init is gone the namespace admits no new
    /// process (fork fails with ENOMEM).
    pub fn ns(&self) -> RawFd {
        self.ns.as_raw_fd()
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

/// Makes this thread's next children start in the PID namespace `ns`.
pub fn enter(ns: RawFd) -> io::Result<()> {
    // SAFETY: setns(2) on a namespace file descriptor we hold.
    check(unsafe { libc::setns(ns, libc::CLONE_NEWPID) })
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
