//! The test dependencies, for the tests of both crates: where helm, kubectl, PostgreSQL 11 and
//! 15 and the chart archives are (`scripts/install-test-deps.sh` puts them there; a missing one
//! fails with that fix), and the one way to start `la-sim` in the background on a private state
//! directory and stop it on drop (also on panic).
//!
//! `tests/common` has it as `common::tools`; `sim/tests`' support modules include this file
//! with `#[path]`, so both crates share one copy.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The helm versions the tests run with.
pub const HELM_VERSIONS: [&str; 3] = ["3.17.3", "3.19.0", "4.3.1"];
/// The PostgreSQL 15 server and client tools (Debian's `postgresql-15`).
pub const PG15_BIN: &str = "/usr/lib/postgresql/15/bin";

const FIX: &str = "run scripts/install-test-deps.sh (as root) to install the test dependencies";

/// The workspace's root (where `Cargo.lock` and `.tools` are), whichever crate's tests ask.
pub fn workspace() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .find(|dir| dir.join("Cargo.lock").is_file())
            .expect("a workspace with Cargo.lock above CARGO_MANIFEST_DIR")
            .to_path_buf()
    })
}

/// `path` exists, or the test fails naming it and the fix.
pub fn require(path: &Path) {
    assert!(path.exists(), "{} is missing: {FIX}", path.display());
}

/// A helm binary of `.tools/helm/<version>`.
pub fn helm(version: &str) -> PathBuf {
    let p = workspace().join(".tools/helm").join(version).join("helm");
    assert!(
        p.is_file(),
        "helm {version} is missing at {}: {FIX}",
        p.display()
    );
    p
}

/// The kubectl shipped beside helm 3.19.0 (kubectl 1.34).
pub fn kubectl() -> PathBuf {
    let p = workspace().join(".tools/helm/3.19.0/kubectl");
    require(&p);
    p
}

/// The PostgreSQL 11 server tools, built into `.tools/pg11`.
pub fn pg11_bin() -> PathBuf {
    workspace().join(".tools/pg11/bin")
}

/// A real chart archive of `tests/fixtures/charts`.
pub fn chart(version: &str) -> PathBuf {
    let p = workspace()
        .join("tests/fixtures/charts")
        .join(format!("live-agent-{version}.tgz"));
    assert!(p.is_file(), "chart archive {} is missing", p.display());
    p
}

/// A fresh state directory for a sim. Not under /tmp: every pod gets a private /tmp, and the
/// state directory must stay visible inside the pods.
pub fn state_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("state dir")
}

/// `la-sim start --background` on a state directory of its own; `la-sim stop` on drop.
pub struct BackgroundSim {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    bin: PathBuf,
    running: bool,
}

impl BackgroundSim {
    /// Starts the `la-sim` binary `bin` with pods as real processes; panics with its stderr.
    pub fn start(bin: &Path, prefix: &str) -> BackgroundSim {
        let dir = state_dir(prefix);
        let out = Command::new(bin)
            .args(["start", "--background", "--state-dir"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("running la-sim start");
        assert!(
            out.status.success(),
            "la-sim start --background failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kubeconfig = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(kubeconfig.is_file(), "{}", kubeconfig.display());
        BackgroundSim {
            dir,
            kubeconfig,
            bin: bin.to_path_buf(),
            running: true,
        }
    }

    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `la-sim <command> --state-dir <this sim's> <args>`.
    pub fn la_sim(&self, command: &str, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args([command, "--state-dir"])
            .arg(self.state_dir())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running la-sim {command}: {e}"))
    }

    /// `la-sim stop`, which returns once the sim is gone; `None` when it was stopped already.
    pub fn stop(&mut self) -> Option<Output> {
        if !self.running {
            return None;
        }
        self.running = false;
        Some(self.la_sim("stop", &[]))
    }
}

impl Drop for BackgroundSim {
    fn drop(&mut self) {
        self.stop();
    }
}
