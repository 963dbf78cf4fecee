//! `kubectl exec`: a command inside a running container's view.

use tokio::io::{AsyncRead, AsyncWrite};

/// A running exec'd command. With a tty, `stdout` carries both output streams (as on a real
/// cluster) and `stderr` is `None`.
pub struct ExecChild {
    pub child: tokio::process::Child,
    pub stdin: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pub stdout: Option<Box<dyn AsyncRead + Send + Unpin>>,
    pub stderr: Option<Box<dyn AsyncRead + Send + Unpin>>,
    /// The pty master, when a tty was requested (for [`ExecChild::resize`])
    pty: Option<std::os::fd::OwnedFd>,
}

impl ExecChild {
    /// Sets the tty's window size (the `resize` channel of the exec protocol); no-op without a tty.
    pub fn resize(&self, cols: u16, rows: u16) {
        if let Some(fd) = &self.pty {
            use std::os::fd::AsRawFd;
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
