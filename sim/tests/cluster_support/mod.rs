//! Shared by the cluster acceptance tests: the real `la-sim` binary started on a temporary
//! state directory and stopped on drop (also on panic), and the real helm and kubectl.
#![allow(dead_code)]

pub mod api;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const HELM_VERSIONS: &[&str] = &["3.17.3", "3.19.0", "4.3.1"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A helm binary from `.tools/helm/<version>` (scripts/fetch-helm.sh puts them there).
pub fn helm(version: &str) -> PathBuf {
    let p = workspace().join(".tools/helm").join(version).join("helm");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-deps.sh",
        p.display()
    );
    p
}

/// The kubectl shipped beside helm 3.19.0 (kubectl 1.34).
pub fn kubectl() -> PathBuf {
    let p = workspace().join(".tools/helm/3.19.0/kubectl");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-deps.sh",
        p.display()
    );
    p
}

pub fn chart(version: &str) -> PathBuf {
    let p = workspace()
        .join("tests/fixtures/charts")
        .join(format!("live-agent-{version}.tgz"));
    assert!(p.exists(), "chart {} is missing", p.display());
    p
}

pub struct SimProcess {
    /// The sim in the foreground; `None` when it was started with `--background`
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
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
        let dir = state_dir();
        let out = Command::new(env!("CARGO_BIN_EXE_la-sim"))
            .arg("start")
            .arg("--state-dir")
            .arg(dir.path())
            .arg("--background")
            .output()
            .expect("start la-sim");
        assert!(
            out.status.success(),
            "la-sim start --background failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kubeconfig = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(kubeconfig.exists(), "{}", kubeconfig.display());
        SimProcess {
            child: None,
            kubeconfig,
            dir,
        }
    }

    /// `la-sim stop` (a sim started in the background), which returns once the sim is gone.
    pub fn stop(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_la-sim"))
            .arg("stop")
            .arg("--state-dir")
            .arg(self.dir.path())
            .output()
            .expect("la-sim stop")
    }

    /// Starts `la-sim start` with extra options.
    pub fn start_with(extra: &[&str]) -> SimProcess {
        let dir = state_dir();
        let child = Command::new(env!("CARGO_BIN_EXE_la-sim"))
            .arg("start")
            .arg("--state-dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("test-sim.log")).expect("log"))
            .spawn()
            .expect("start la-sim");
        let mut sim = SimProcess {
            child: Some(child),
            kubeconfig: dir.path().join("kubeconfig"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !sim.dir.path().join("ready").exists() {
            if let Some(status) = sim.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("la-sim exited at start ({status}): {}", sim.log());
            }
            assert!(
                Instant::now() < deadline,
                "la-sim did not become ready in 30s: {}",
                sim.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sim
    }

    /// The sim's log (its stderr in the foreground, `sim.log` in the background).
    pub fn log(&self) -> String {
        ["test-sim.log", "sim.log"]
            .iter()
            .find_map(|f| std::fs::read_to_string(self.dir.path().join(f)).ok())
            .unwrap_or_default()
    }

    pub fn state_dir(&self) -> &Path {
        self.dir.path()
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
            .env("HELM_CACHE_HOME", self.dir.path().join("helm-cache"))
            .env("HELM_CONFIG_HOME", self.dir.path().join("helm-config"))
            .env("HELM_DATA_HOME", self.dir.path().join("helm-data"))
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

/// A fresh state directory. Not under /tmp: pods mount their own /tmp, and the state
/// directory must stay visible.
fn state_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("la-sim-test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        if self.child.is_none() {
            self.stop();
        }
        if let Some(mut child) = self.child.take() {
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
}
