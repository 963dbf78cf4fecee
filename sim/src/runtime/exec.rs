//! `kubectl exec`: a command inside a running container's view.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncWrite};

use super::container::Container;
use super::error::{Context, Error, Result};
use super::sandbox::Enter;
use super::spawner::PodSpawner;

type Writer = Box<dyn AsyncWrite + Send + Unpin>;
type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// A running exec'd command. With a tty, `stdout` carries both output streams (as on a real
/// cluster) and `stderr` is `None`. Dropping it kills the command.
pub struct ExecChild {
    pub child: tokio::process::Child,
    pub stdin: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pub stdout: Option<Box<dyn AsyncRead + Send + Unpin>>,
    pub stderr: Option<Box<dyn AsyncRead + Send + Unpin>>,
    /// The pty master, when a tty was requested (for [`ExecChild::resize`])
    pty: Option<OwnedFd>,
}

impl ExecChild {
    /// Sets the tty's window size (the `resize` channel of the exec protocol); no-op without a tty.
    pub fn resize(&self, cols: u16, rows: u16) {
        if let Some(fd) = &self.pty {
            let size = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer on an open pty fd.
            unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        }
    }
}

/// Starts `argv` in the mount and UTS namespaces of the container's main process `pid` (its
/// pod's PID and network namespaces through `spawner`).
pub fn spawn(
    container: &Container,
    pid: u32,
    argv: &[String],
    tty: bool,
    spawner: PodSpawner,
) -> Result<ExecChild> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| Error::new("exec must be called within a Tokio runtime"))?;
    if argv.is_empty() {
        return Err(Error::new("exec needs a command"));
    }
    let user = container.program.exec_user;
    let mut cmd = container.command(argv, user, Enter::Join { pid }, tty)?;
    let mut pty = None;
    if tty {
        let (master, slave) = open_pty().context(|| "cannot open a pty".into())?;
        let dup = |fd: &OwnedFd| fd.try_clone().context(|| "cannot duplicate the pty".into());
        cmd.stdin(Stdio::from(dup(&slave)?))
            .stdout(Stdio::from(dup(&slave)?))
            .stderr(Stdio::from(slave));
        pty = Some(master);
    } else {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    }
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let mut child = spawner
        .run(move || {
            let _guard = handle.enter();
            cmd.spawn()
        })
        .map_err(|e| {
            Error::new(format!(
                "cannot exec {:?} in container {}: {e}",
                argv[0], container.spec.name
            ))
        })?;
    let boxed_in =
        |w: tokio::process::ChildStdin| Box::new(w) as Box<dyn AsyncWrite + Send + Unpin>;
    let (stdin, stdout, stderr): (Option<Writer>, Option<Reader>, Option<Reader>) = match &pty {
        Some(master) => {
            let reader = std::fs::File::from(
                master
                    .try_clone()
                    .context(|| "cannot duplicate the pty".into())?,
            );
            let writer = std::fs::File::from(
                master
                    .try_clone()
                    .context(|| "cannot duplicate the pty".into())?,
            );
            (
                Some(Box::new(tokio::fs::File::from_std(writer))),
                Some(Box::new(PtyReader(tokio::fs::File::from_std(reader)))),
                None,
            )
        }
        None => (
            child.stdin.take().map(boxed_in),
            child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn AsyncRead + Send + Unpin>),
        ),
    };
    Ok(ExecChild {
        child,
        stdin,
        stdout,
        stderr,
        pty,
    })
}

fn open_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut master = -1;
    let mut slave = -1;
    // SAFETY: openpty writes two fds; null name/termios/winsize are allowed.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just opened and are owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for fd in [&master, &slave] {
        // SAFETY: setting FD_CLOEXEC on an owned fd.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok((master, slave))
}

/// Reading a pty master after the last writer closed gives EIO: that is end of output.
struct PtyReader(tokio::fs::File);

impl AsyncRead for PtyReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match std::pin::Pin::new(&mut self.0).poll_read(cx, buf) {
            std::task::Poll::Ready(Err(e)) if e.raw_os_error() == Some(libc::EIO) => {
                std::task::Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}
