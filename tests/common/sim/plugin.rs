//! The plugin binary run as helm runs it: to the end, until a line of its progress, killed
//! after one, or on a terminal.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::super::tools::workspace;
use super::{chart, helm, text, Sim, NAMESPACE, PLUGIN};

/// The target chart archive, 4.44.0, as an argument.
pub fn target_chart() -> &'static str {
    static CHART: OnceLock<String> = OnceLock::new();
    CHART.get_or_init(|| chart("4.44.0").to_str().unwrap().to_string())
}

/// The migration's arguments: `4.44 --chart <4.44.0>` and then `extra`.
pub fn migrate_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["4.44", "--chart", target_chart()];
    args.extend_from_slice(extra);
    args
}

impl Sim {
    /// The plugin binary, run as helm runs it (`HELM_BIN`, `HELM_NAMESPACE`, `KUBECONFIG`).
    pub fn plugin(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(PLUGIN);
        cmd.args(args)
            .envs(self.helm_home_env())
            .env("HELM_BIN", helm(self.spec.helm_version))
            .env("HELM_NAMESPACE", NAMESPACE)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("NO_COLOR", "1")
            .env_remove("HELM_DEBUG")
            .current_dir(self.state_dir())
            .stdin(Stdio::null());
        cmd
    }

    /// `la-migrate 4.44 --chart <4.44.0> <extra>`, as helm runs it (not started yet).
    pub fn migrate_command(&self, extra: &[&str]) -> Command {
        self.plugin(&migrate_args(extra))
    }

    /// Runs `la-migrate 4.44 --chart <4.44.0> <extra>` to the end.
    pub fn run_migrate(&self, extra: &[&str]) -> Output {
        self.run_plugin(&migrate_args(extra))
    }

    /// [`Sim::run_migrate`] as the identity of `kubeconfig` (see [`Sim::identity`]).
    pub fn run_migrate_as(&self, kubeconfig: &Path, extra: &[&str]) -> Output {
        self.migrate_command(extra)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("running la-migrate")
    }

    /// The ids of the plan's steps in order, as `--dry-run -o json` prints them for
    /// `la-migrate 4.44 --chart <4.44.0> <extra>`.
    pub fn plan_steps(&self, extra: &[&str]) -> Vec<String> {
        let out = self.run_migrate(&[extra, &["--dry-run", "-o", "json"]].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        let plan: Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
        plan["plan"]["steps"]
            .as_array()
            .expect("the plan's steps")
            .iter()
            .map(|step| step["id"].as_str().expect("a step id").to_string())
            .collect()
    }

    /// `text` with what differs from run to run replaced, for a snapshot: this sim's state
    /// directory, the workspace's path.
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.state_dir().display().to_string(), "[state-dir]")
            .replace(&workspace().display().to_string(), "[workspace]")
    }

    /// `la-migrate 4.44 --chart <4.44.0> --yes`, which must succeed (its output shown if not).
    pub fn migrate(&self) {
        let out = self.run_migrate(&["--yes"]);
        assert!(
            out.status.success(),
            "la-migrate 4.44 failed ({}):\n{}\n{}",
            out.status,
            text(&out.stderr),
            text(&out.stdout)
        );
    }

    /// Runs `la-migrate <args>` to the end.
    pub fn run_plugin(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let out = self.plugin(args).output().expect("running la-migrate");
        eprintln!(
            "la-migrate {} -> {} in {:.1}s",
            args.join(" "),
            out.status,
            started.elapsed().as_secs_f64()
        );
        out
    }

    /// Starts the migration to 4.44.0 (`--yes`) with its stderr piped, and returns once a
    /// stderr line containing `marker` appeared.
    pub fn plugin_until(&self, marker: &str) -> RunningPlugin {
        self.plugin_with_until(&[], marker)
    }

    /// [`Sim::plugin_until`] with more arguments for the migration.
    pub fn plugin_with_until(&self, extra: &[&str], marker: &str) -> RunningPlugin {
        let mut child = self
            .migrate_command(&[&["--yes"], extra].concat())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting la-migrate");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap_or_default();
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(marker) {
                // The rest of stderr is read in the background, so the plugin never blocks
                // on a full pipe.
                let rest = std::thread::spawn(move || {
                    lines
                        .map_while(Result::ok)
                        .map(|l| l + "\n")
                        .collect::<String>()
                });
                return RunningPlugin { child, seen, rest };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("la-migrate never printed {marker:?}:\n{seen}");
    }

    /// Starts the migration and kills it (SIGKILL, as a closed laptop or a lost node would)
    /// `delay` after a stderr line containing `marker` appears. Returns what it printed.
    /// With `job` (pod, job name), the kill waits until that detached job runs in the pod.
    pub fn kill_plugin_after(
        &self,
        marker: &str,
        delay: Duration,
        job: Option<(&str, &str)>,
    ) -> String {
        self.kill_migration_after(&[], marker, delay, job)
    }

    /// [`Sim::kill_plugin_after`] with more arguments for the migration.
    pub fn kill_migration_after(
        &self,
        extra: &[&str],
        marker: &str,
        delay: Duration,
        job: Option<(&str, &str)>,
    ) -> String {
        let mut running = self.plugin_with_until(extra, marker);
        std::thread::sleep(delay);
        if let Some((pod, job)) = job {
            self.wait_until(
                &format!("the {job} to start in {pod}"),
                Duration::from_secs(120),
                || self.job_running(pod, job).is_ok(),
            );
        }
        let _ = running.child.kill();
        let (status, said) = running.finish();
        assert!(
            !status.success(),
            "la-migrate finished before it was killed"
        );
        eprintln!("killed after {marker:?} (+{delay:?})");
        said
    }

    /// Runs `la-migrate <args>` on a terminal (a pty from `script`) with `input` typed on it;
    /// the exit code and everything the terminal showed.
    pub fn plugin_on_terminal(&self, args: &[&str], input: &str) -> (Option<i32>, String) {
        let line = std::iter::once(PLUGIN)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let typescript = tempfile::NamedTempFile::new_in(self.state_dir()).unwrap();
        let mut child = Command::new("script")
            .args(["-qefc", &line])
            .arg(typescript.path())
            .envs(
                self.plugin(&[])
                    .get_envs()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
            )
            .current_dir(self.state_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running la-migrate under script");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(input.as_bytes());
            // Kept open until the plugin ends: a closed terminal input ends `script`.
            let status = child.wait().unwrap();
            drop(stdin);
            let shown = text(&std::fs::read(typescript.path()).unwrap_or_default());
            (status.code(), shown)
        }
    }
}

/// A migration started by [`Sim::plugin_until`].
pub struct RunningPlugin {
    pub child: std::process::Child,
    /// Stderr up to the marker line.
    pub seen: String,
    rest: std::thread::JoinHandle<String>,
}

impl RunningPlugin {
    /// Waits for the plugin to end; its exit status and everything it printed on stderr.
    pub fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("waiting for la-migrate");
        let rest = self.rest.join().unwrap_or_default();
        (status, self.seen + &rest)
    }
}
