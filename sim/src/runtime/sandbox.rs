//! Carries out a container's filesystem view in a forked child, just before `exec`: a new
//! mount and UTS namespace, the [`rootfs`](super::rootfs) plan, `pivot_root`, the hostname,
//! the user, and `PR_SET_PDEATHSIG` so the process dies with the sim. An exec joins the
//! namespaces of the container's main process instead. The child is already in its pod's PID
//! and network namespaces (the spawner forked it there), so the `/proc` mounted here is the
//! pod's.
//!
//! Everything the child needs is prepared in the parent (C strings, file descriptors), so the
//! child only makes system calls between `fork` and `exec`.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::error::{Error, Result};
use super::rootfs::{self, HostEntry, HostFs, Op, Request};

/// An OS user a container process runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

impl User {
    pub const ROOT: User = User { uid: 0, gid: 0 };

    /// Looks a user up in the host's user database.
    pub fn named(name: &str) -> Result<User> {
        let c = CString::new(name).map_err(|_| Error::new(format!("bad user name {name:?}")))?;
        // SAFETY: getpwnam returns null or a pointer to a static record, read at once.
        let pw = unsafe { libc::getpwnam(c.as_ptr()) };
        if pw.is_null() {
            return Err(Error::new(format!(
                "the OS user {name:?} does not exist (PostgreSQL refuses to run as root); \
                 run scripts/install-test-deps.sh"
            )));
        }
        // SAFETY: pw is non-null and points to a valid passwd record.
        let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
        Ok(User { uid, gid })
    }
}

/// How a process enters its container.
pub enum Enter {
    /// Build the container's view from scratch (the container's main process, init steps)
    Create {
        /// Private root directory (host path); emptied by the caller beforehand
        root: PathBuf,
        mounts: Vec<Request>,
        hostname: String,
    },
    /// Join the namespaces of a running process of the container (exec)
    Join { pid: u32 },
}

/// Makes `cmd` enter its container as `user` with the extra `groups` (the pod's `fsGroup`
/// and `supplementalGroups`), with `/` as working directory, in a process group of its own,
/// or (`session`) in a session of its own with stdin as controlling terminal (for a pty).
pub fn configure(
    cmd: &mut Command,
    enter: Enter,
    user: User,
    groups: Vec<u32>,
    session: bool,
) -> Result<()> {
    let prepared = match enter {
        Enter::Create {
            root,
            mounts,
            hostname,
        } => {
            let ops = rootfs::plan(&root, &mounts, &RealHost)
                .map_err(|e| Error::new(format!("container filesystem: {e}")))?;
            Prepared::Create {
                root: cstr(root.as_os_str())?,
                old_root: cstr(root.join(".oldroot").as_os_str())?,
                ops: ops.iter().map(COp::from_op).collect::<Result<_>>()?,
                hostname: hostname.into_bytes(),
            }
        }
        Enter::Join { pid } => {
            let open = |ns: &str| {
                std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))
                    .map(OwnedFd::from)
                    .map_err(|e| {
                        Error::new(format!("cannot join the namespaces of process {pid}: {e}"))
                    })
            };
            Prepared::Join {
                mnt: open("mnt")?,
                uts: open("uts")?,
            }
        }
    };
    if !session {
        cmd.process_group(0);
    }
    // SAFETY: the closure only makes system calls on data prepared above (no allocation
    // beyond error formatting on failure paths, which glibc's fork handling permits).
    unsafe {
        cmd.pre_exec(move || {
            if session {
                check(libc::setsid(), "setsid")?;
                check(libc::ioctl(0, libc::TIOCSCTTY, 0), "controlling terminal")?;
            }
            prepared.enter()?;
            become_user(user, &groups)?;
            check(
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong),
                "prctl",
            )?;
            Ok(())
        });
    }
    Ok(())
}

enum Prepared {
    Create {
        root: CString,
        old_root: CString,
        ops: Vec<COp>,
        hostname: Vec<u8>,
    },
    Join {
        mnt: OwnedFd,
        uts: OwnedFd,
    },
}

impl Prepared {
    fn enter(&self) -> io::Result<()> {
        match self {
            Prepared::Create {
                root,
                old_root,
                ops,
                hostname,
            } => {
                // SAFETY (all calls below): arguments are valid NUL-terminated strings or null.
                unsafe {
                    check(
                        libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS),
                        "unshare",
                    )?;
                    check(
                        libc::mount(
                            std::ptr::null(),
                            c"/".as_ptr(),
                            std::ptr::null(),
                            libc::MS_REC | libc::MS_PRIVATE,
                            std::ptr::null(),
                        ),
                        "make / private",
                    )?;
                    check(
                        libc::sethostname(hostname.as_ptr().cast(), hostname.len()),
                        "sethostname",
                    )?;
                    bind(root, root, false, false)?;
                    for op in ops {
                        op.run()?;
                    }
                    mkdir(old_root, 0o700)?;
                    check(
                        libc::syscall(libc::SYS_pivot_root, root.as_ptr(), old_root.as_ptr())
                            as i32,
                        "pivot_root",
                    )?;
                    check(libc::chdir(c"/".as_ptr()), "chdir /")?;
                    check(
                        libc::umount2(c"/.oldroot".as_ptr(), libc::MNT_DETACH),
                        "umount old root",
                    )?;
                    check(libc::rmdir(c"/.oldroot".as_ptr()), "rmdir old root")?;
                }
            }
            Prepared::Join { mnt, uts } => {
                // SAFETY: valid namespace file descriptors.
                unsafe {
                    check(libc::setns(mnt.as_raw_fd(), libc::CLONE_NEWNS), "setns mnt")?;
                    check(
                        libc::setns(uts.as_raw_fd(), libc::CLONE_NEWUTS),
                        "setns uts",
                    )?;
                    check(libc::chdir(c"/".as_ptr()), "chdir /")?;
                }
            }
        }
        Ok(())
    }
}

fn become_user(user: User, groups: &[u32]) -> io::Result<()> {
    if user == User::ROOT {
        return Ok(());
    }
    // SAFETY: plain credential system calls; `groups` is a valid slice of gids.
    unsafe {
        check(libc::setgroups(groups.len(), groups.as_ptr()), "setgroups")?;
        check(libc::setgid(user.gid), "setgid")?;
        check(libc::setuid(user.uid), "setuid")?;
    }
    Ok(())
}

/// [`Op`] with C strings, ready for the child.
enum COp {
    Mkdir(CString, u32),
    Touch(CString),
    Bind {
        source: CString,
        target: CString,
        recursive: bool,
        read_only: bool,
    },
    Tmpfs(CString),
    Symlink(CString, CString),
    Proc(CString),
}

impl COp {
    fn from_op(op: &Op) -> Result<COp> {
        Ok(match op {
            Op::Mkdir { path, mode } => COp::Mkdir(cstr(path.as_os_str())?, *mode),
            Op::Touch { path } => COp::Touch(cstr(path.as_os_str())?),
            Op::Bind {
                source,
                target,
                recursive,
                read_only,
            } => COp::Bind {
                source: cstr(source.as_os_str())?,
                target: cstr(target.as_os_str())?,
                recursive: *recursive,
                read_only: *read_only,
            },
            Op::Tmpfs { target } => COp::Tmpfs(cstr(target.as_os_str())?),
            Op::Proc { target } => COp::Proc(cstr(target.as_os_str())?),
            Op::Symlink { link_target, path } => {
                COp::Symlink(cstr(link_target.as_os_str())?, cstr(path.as_os_str())?)
            }
        })
    }

    fn run(&self) -> io::Result<()> {
        // SAFETY (all calls): valid NUL-terminated strings.
        unsafe {
            match self {
                COp::Mkdir(path, mode) => mkdir(path, *mode),
                COp::Touch(path) => {
                    let fd = libc::open(
                        path.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o644,
                    );
                    check(fd, "create mount point")?;
                    libc::close(fd);
                    Ok(())
                }
                COp::Bind {
                    source,
                    target,
                    recursive,
                    read_only,
                } => bind(source, target, *recursive, *read_only),
                COp::Tmpfs(target) => check(
                    libc::mount(
                        c"tmpfs".as_ptr(),
                        target.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        c"mode=755".as_ptr().cast(),
                    ),
                    "mount tmpfs",
                ),
                COp::Proc(target) => {
                    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
                    let proc = c"proc".as_ptr();
                    if libc::mount(proc, target.as_ptr(), proc, flags, std::ptr::null()) == 0 {
                        return Ok(());
                    }
                    // Where a fresh procfs is refused, the host's (pids then read as the host's).
                    bind(c"/proc", target, true, false)
                }
                COp::Symlink(link_target, path) => {
                    if libc::symlink(link_target.as_ptr(), path.as_ptr()) != 0 {
                        let err = io::Error::last_os_error();
                        if err.raw_os_error() != Some(libc::EEXIST) {
                            return Err(annotate(err, "symlink"));
                        }
                    }
                    Ok(())
                }
            }
        }
    }
}

unsafe fn mkdir(path: &CString, mode: u32) -> io::Result<()> {
    if libc::mkdir(path.as_ptr(), mode) != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EEXIST) {
            return Err(annotate(err, "mkdir"));
        }
    }
    // mkdir applies the umask; mount points like /tmp need their exact mode.
    check(libc::chmod(path.as_ptr(), mode), "chmod")
}

unsafe fn bind(source: &CStr, target: &CStr, recursive: bool, read_only: bool) -> io::Result<()> {
    let mut flags = libc::MS_BIND;
    if recursive {
        flags |= libc::MS_REC;
    }
    check(
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        ),
        "bind mount",
    )?;
    if read_only {
        check(
            libc::mount(
                std::ptr::null(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                std::ptr::null(),
            ),
            "read-only remount",
        )?;
    }
    Ok(())
}

fn check(rc: i32, what: &str) -> io::Result<()> {
    if rc < 0 {
        Err(annotate(io::Error::last_os_error(), what))
    } else {
        Ok(())
    }
}

/// Writes which step failed to stderr (the container log; the parent only learns the
/// errno) and keeps the errno.
fn annotate(err: io::Error, what: &str) -> io::Error {
    let line = format!("la-sim: container setup failed at {what}: {err}\n");
    // SAFETY: writing a valid buffer to fd 2.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    err
}

fn cstr(s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| Error::new(format!("path {s:?} contains a NUL byte")))
}

/// The host filesystem, read with `lstat` (symlinks are not followed).
struct RealHost;

impl HostFs for RealHost {
    fn list(&self, dir: &Path) -> Vec<(String, HostEntry)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let meta = std::fs::symlink_metadata(entry.path()).ok()?;
                let kind = if meta.file_type().is_symlink() {
                    HostEntry::Symlink(std::fs::read_link(entry.path()).ok()?)
                } else if meta.is_dir() {
                    HostEntry::Dir
                } else {
                    HostEntry::File
                };
                Some((name, kind))
            })
            .collect()
    }
}
