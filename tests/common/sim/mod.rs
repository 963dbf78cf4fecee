//! A simulated cluster for the migration tests: the real `la-sim` binary on a private state
//! directory, a Live Agent release installed from the real chart archive with real helm, a
//! seeded database and attachment files, and the test's own record of what the release held
//! before the migration. Everything started here stops on drop (also on panic).
//!
//! By concern: [`release`] installs and seeds the release and records it, [`cluster`] reads
//! and changes it through kubectl and helm, [`redis`] reaches its Redis, [`plugin`] runs the
//! plugin, [`jobs`] watches the plugin's detached jobs, [`faults`] injects failures, and
//! [`checks`] compares the migrated release with its record.

mod checks;
mod cluster;
mod faults;
mod jobs;
mod plugin;
mod redis;
mod release;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use la_sim::seed;

pub use super::tools::{chart, helm, kubectl as kubectl_bin};
use super::tools::{pg11_bin, require, BackgroundSim};
pub use checks::{
    assert_migrated, assert_migrated_to, assert_old_database_untouched, assert_release_as_before,
    assert_rolled_back,
};
pub use faults::HeldLock;
pub use jobs::job_dir;
pub use plugin::{migrate_args, target_chart, RunningPlugin};
pub use release::{Before, ReleaseSpec};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const PLUGIN: &str = env!("CARGO_BIN_EXE_la-migrate");
pub const NAMESPACE: &str = "live-agent";
pub const RELEASE: &str = "cognigy-live-agent";
pub const DATABASE: &str = "live_agent_production";
pub const ONBOARDING_KEY: &str = "alfred:CHATWOOT_INSTALLATION_ONBOARDING";
/// The plugin's copy pod: PostgreSQL 15 client tools, running the detached `copy` job.
pub const COPY_POD: &str = "la-migrate-cognigy-live-agent-copy";
/// The release's PostgreSQL 11 claim (chart 4.43.1).
pub const DATABASE_CLAIM: &str = "data-cognigy-live-agent-postgresql-0";

/// The `la-sim` binary next to the plugin's, built once per test process (a no-op when
/// `cargo build`/`nextest` built the workspace already).
fn la_sim() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(PLUGIN).parent().expect("target dir");
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(other) => other.to_string(),
            None => "dev".to_string(),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "la-sim",
                "--bin",
                "la-sim",
                "--profile",
            ])
            .arg(&profile)
            .current_dir(ROOT)
            .status()
            .expect("running cargo build -p la-sim");
        assert!(status.success(), "cargo build -p la-sim failed");
        dir.join("la-sim")
    })
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub struct Sim {
    pub kubeconfig: PathBuf,
    pub spec: ReleaseSpec,
    cluster: BackgroundSim,
}

impl Sim {
    /// Starts a sim, installs chart 4.43.1 with the spec's values and seeds it.
    pub fn with_release(spec: ReleaseSpec) -> (Sim, Before) {
        require(Path::new(seed::DEFAULT_PSQL));
        require(&pg11_bin().join("postgres"));
        let mut sim = Sim::start(spec);
        sim.install();
        if sim.spec.db_password.is_empty() {
            sim.spec.db_password =
                sim.secret_value(&format!("{RELEASE}-postgresql"), "postgresql-password");
            assert!(
                !sim.spec.db_password.is_empty(),
                "the chart generated no database password"
            );
        }
        let before = sim.seed_and_record();
        (sim, before)
    }

    /// Starts a sim with nothing installed.
    pub fn start(spec: ReleaseSpec) -> Sim {
        let cluster = BackgroundSim::start(la_sim(), "migrate-sim-");
        Sim {
            kubeconfig: cluster.kubeconfig.clone(),
            spec,
            cluster,
        }
    }

    pub fn state_dir(&self) -> &Path {
        self.cluster.state_dir()
    }

    /// Polls until `pred` holds, or fails after `timeout` naming `what`.
    pub fn wait_until(&self, what: &str, timeout: Duration, mut pred: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !pred() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `la-sim stop` (also on drop).
    pub fn stop(&mut self) {
        self.cluster.stop();
    }
}
