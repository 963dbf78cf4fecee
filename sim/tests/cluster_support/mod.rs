//! Shared by the cluster acceptance tests: the real `la-sim` binary started on a temporary
//! state directory and stopped on drop (also on panic), and the real helm and kubectl.
#![allow(dead_code, unused_imports)]

pub mod api;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "../../../tests/common/tools.rs"]
pub mod tools;

pub use tools::{chart, helm, kubectl, HELM_VERSIONS};
use tools::{state_dir, BackgroundSim};

pub struct SimProcess {
    /// The sim in the foreground, or in the background (`la-sim stop` on drop).
    run: Run,
    pub kubeconfig: PathBuf,
}

enum Run {
    Foreground {
        child: Child,
        dir: tempfile::TempDir,
    },
    Background(BackgroundSim),
}

impl SimProcess {
    /// Starts `la-sim start` (no runtime: every pod is Ready at once, nothing runs).
    pub fn start_without_runtime() -> SimProcess {
        Self::start_with(&["--no-runtime"])
    }

    /// Starts `la-sim start` with pods as real processes.
    pub fn start_with_runtime() -> SimProcess {
        Self::start_with(&[])
    }

    /// Starts `la-sim start --background` with pods as real processes, as the README shows;
    /// [`SimProcess::stop`] (or drop) runs `la-sim stop`.
    pub fn start_in_background() -> SimProcess {
        let sim = BackgroundSim::start(Path::new(env!("CARGO_BIN_EXE_la-sim")), "la-sim-test-");
        SimProcess {
            kubeconfig: sim.kubeconfig.clone(),
            run: Run::Background(sim),
        }
    }

    /// `la-sim stop` (a sim started in the background), which returns once the sim is gone.
    pub fn stop(&self) -> Output {
        match &self.run {
            Run::Background(sim) => sim.la_sim("stop", &[]),
            Run::Foreground { .. } => panic!("la-sim stop is for a sim in the background"),
        }
    }

    /// Starts `la-sim start` in the foreground with extra options.
    pub fn start_with(extra: &[&str]) -> SimProcess {
        let dir = state_dir("la-sim-test-");
        let mut child = Command::new(env!("CARGO_BIN_EXE_la-sim"))
            .arg("start")
            .arg("--state-dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("test-sim.log")).expect("log"))
            .spawn()
            .expect("start la-sim");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !dir.path().join("ready").exists() {
            let log = || log_in(dir.path());
            if let Ok(Some(status)) = child.try_wait() {
                panic!("la-sim exited at start ({status}): {}", log());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("la-sim did not become ready in 30s: {}", log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        SimProcess {
            kubeconfig: dir.path().join("kubeconfig"),
            run: Run::Foreground { child, dir },
        }
    }

    /// The sim's log (its stderr in the foreground, `sim.log` in the background).
    pub fn log(&self) -> String {
        log_in(self.state_dir())
    }

    pub fn state_dir(&self) -> &Path {
        match &self.run {
            Run::Foreground { dir, .. } => dir.path(),
            Run::Background(sim) => sim.state_dir(),
        }
    }

    /// Runs a command with KUBECONFIG pointing at this sim.
    pub fn run(&self, program: &Path, args: &[&str]) -> Output {
        self.run_as(&self.kubeconfig, program, args, None)
    }

    pub fn run_as(
        &self,
        kubeconfig: &Path,
        program: &Path,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Output {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("HELM_CACHE_HOME", self.state_dir().join("helm-cache"))
            .env("HELM_CONFIG_HOME", self.state_dir().join("helm-config"))
            .env("HELM_DATA_HOME", self.state_dir().join("helm-data"))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
        // Fed from a thread while the output is read, so neither side's pipe buffer can fill up
        // and stall the other.
        let writer = stdin.map(|input| {
            let mut pipe = child.stdin.take().expect("stdin");
            let input = input.to_owned();
            std::thread::spawn(move || {
                use std::io::Write;
                pipe.write_all(input.as_bytes())
            })
        });
        let out = child.wait_with_output().expect("wait");
        if let Some(w) = writer {
            w.join()
                .expect("stdin writer")
                .unwrap_or_else(|e| panic!("{} stopped reading its stdin: {e}", program.display()));
        }
        out
    }

    /// `helm install` of the real 4.43.1 chart with `helm_version`, waiting for every pod.
    pub fn install_4_43_1(&self, helm_version: &str, release: &str, namespace: &str) {
        self.install_4_43_1_with(helm_version, release, namespace, &[]);
    }

    /// [`SimProcess::install_4_43_1`] with extra helm arguments (`--set ...`).
    pub fn install_4_43_1_with(
        &self,
        helm_version: &str,
        release: &str,
        namespace: &str,
        extra: &[&str],
    ) {
        let chart = chart("4.43.1");
        let mut args = vec![
            "install",
            release,
            chart.to_str().unwrap(),
            "-n",
            namespace,
            "--create-namespace",
            "--wait",
            "--timeout",
            "120s",
        ];
        args.extend_from_slice(extra);
        self.ok(&helm(helm_version), &args);
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, program: &Path, args: &[&str]) -> String {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{} {} failed: {}\n{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        self.ok(&kubectl(), args)
    }

    /// Sets the PersistentVolume's reclaim policy to Retain.
    pub fn retain_volume(&self, pv: &str) {
        self.kubectl(&[
            "patch",
            "pv",
            pv,
            "-p",
            r#"{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}"#,
        ]);
    }

    /// Polls until the PersistentVolume is in `phase` (`what` names it in a timeout).
    pub fn wait_volume_phase(&self, pv: &str, phase: &str, what: &str, timeout: Duration) {
        self.wait_for(
            &["get", "pv", pv, "-o", "jsonpath={.status.phase}"],
            what,
            timeout,
            |o| o == phase,
        );
    }

    /// Polls a kubectl query until `pred` holds on its output.
    pub fn wait_for(
        &self,
        args: &[&str],
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.run(&kubectl(), args);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && pred(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last output:\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn log_in(state_dir: &Path) -> String {
    ["test-sim.log", "sim.log"]
        .iter()
        .find_map(|f| std::fs::read_to_string(state_dir.join(f)).ok())
        .unwrap_or_default()
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let Run::Foreground { child, .. } = &mut self.run else {
            return;
        };
        // SAFETY: signal to our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
