//! Running the sim as a process: foreground with signal handling, background with a pid file
//! and readiness marker, and stopping it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, Options};

pub fn pid_file(state_dir: &Path) -> PathBuf {
    state_dir.join("sim.pid")
}

fn ready_file(state_dir: &Path) -> PathBuf {
    state_dir.join("ready")
}

pub fn log_path(state_dir: &Path) -> PathBuf {
    state_dir.join("sim.log")
}

/// The pid of the sim running on `state_dir`, if one is alive.
pub fn running_pid(state_dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(state_dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: kill with signal 0 only checks that the process exists.
    (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
}

/// Runs the sim in this process until SIGINT or SIGTERM.
pub async fn run_foreground(opts: Options) -> Result<(), String> {
    if let Some(pid) = running_pid(&opts.state_dir) {
        if pid != std::process::id() as i32 {
            return Err(format!(
                "a sim already runs on {} (pid {pid}); stop it first: la-sim stop --state-dir {}",
                opts.state_dir.display(),
                opts.state_dir.display()
            ));
        }
    }
    let cluster = Cluster::start(opts).await?;
    let state_dir = cluster.state_dir.clone();
    std::fs::write(pid_file(&state_dir), std::process::id().to_string())
        .map_err(|e| format!("writing pid file: {e}"))?;
    let control = tokio::spawn(crate::control::serve(cluster.state.clone()));
    std::fs::write(ready_file(&state_dir), &cluster.address)
        .map_err(|e| format!("writing ready marker: {e}"))?;
    println!("{}", cluster.kubeconfig.display());
    eprintln!(
        "la-sim: API server on https://{}; stop with Ctrl-C or la-sim stop --state-dir {}",
        cluster.address,
        state_dir.display()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let _ = std::fs::remove_file(ready_file(&state_dir));
    cluster.stop().await;
    control.abort();
    let _ = std::fs::remove_file(pid_file(&state_dir));
    Ok(())
}

/// Starts the sim detached and returns once its API answers; returns the kubeconfig path.
pub fn start_background(
    state_dir: &Path,
    port: u16,
    no_runtime: bool,
    watch_cache_size: usize,
) -> Result<PathBuf, String> {
    if let Some(pid) = running_pid(state_dir) {
        return Err(format!(
            "a sim already runs on {} (pid {pid})",
            state_dir.display()
        ));
    }
    std::fs::create_dir_all(state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
    let _ = std::fs::remove_file(ready_file(state_dir));
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let log = std::fs::File::create(log_path(state_dir))
        .map_err(|e| format!("{}: {e}", log_path(state_dir).display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("start")
        .arg("--state-dir")
        .arg(state_dir)
        .arg("--port")
        .arg(port.to_string())
        .arg("--watch-cache-size")
        .arg(watch_cache_size.to_string());
    if no_runtime {
        cmd.arg("--no-runtime");
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid only detaches the child from our session; it is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("starting the sim: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ready_file(state_dir).exists() {
            return Ok(crate::api::kubeconfig::path(
                &std::fs::canonicalize(state_dir).unwrap_or(state_dir.to_path_buf()),
                "admin",
            ));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the sim exited during start ({status}); see {}",
                log_path(state_dir).display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "the sim did not answer within 60s; see {}",
        log_path(state_dir).display()
    ))
}

/// Stops the sim on `state_dir` and waits until it (and so every process it started) is gone.
pub fn stop(state_dir: &Path) -> Result<bool, String> {
    let Some(pid) = running_pid(state_dir) else {
        return Ok(false);
    };
    // SAFETY: plain signal delivery to a pid we read from our own pid file.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if unsafe { libc::kill(pid, 0) } != 0 {
            let _ = std::fs::remove_file(pid_file(state_dir));
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(pid, libc::SIGKILL) };
    Err(format!(
        "the sim (pid {pid}) did not stop within 60s and was killed"
    ))
}
