//! The plugin's detached jobs in their pods (the copy, the dump): whether they run, signals
//! to them.

use super::{text, Sim};

impl Sim {
    /// Whether the plugin's detached job runs in `pod`: no exit marker in its directory, its
    /// process alive. `Ok` holds the KiB on the backup volume (the dump) or the copy's step.
    pub fn job_running(&self, pod: &str, job: &str) -> Result<String, String> {
        let progress = match job {
            "copy" => "echo \"step $(cat /work/step 2>/dev/null || echo starting)\"".to_string(),
            _ => "echo \"$(du -sk /backup | cut -f1) KiB on the backup volume\"".to_string(),
        };
        let dir = job_dir(job);
        let out = self.kubectl_unchecked(&[
            "exec",
            pod,
            "--",
            "sh",
            "-c",
            &format!(
                "test ! -f {dir}/{job}.exit && kill -0 \"$(cat /tmp/{job}.pid)\" && {progress}"
            ),
        ]);
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        if out.status.success() {
            Ok(said.trim().to_string())
        } else {
            Err(said)
        }
    }

    /// Right after a kill: the job still runs, so the kill provably hit it mid-way.
    pub fn assert_job_running(&self, pod: &str, job: &str) {
        match self.job_running(pod, job) {
            Ok(progress) => eprintln!("{job} running ({progress})"),
            Err(e) => panic!("the {job} in {pod} was not running: {e}"),
        }
    }

    /// Sends `signal` to `program` (and its workers) started by the detached `job` in `pod`.
    /// Fails while the program has not started yet.
    pub fn signal_job(&self, pod: &str, job: &str, program: &str, signal: &str) -> bool {
        let script = format!(
            r#"set -eu
main=$(pgrep -P "$(cat /tmp/{job}.pid)" -x {program})
for p in $main $(pgrep -P "$main" || true); do kill -{signal} "$p"; done"#
        );
        self.kubectl_unchecked(&["exec", pod, "--", "sh", "-c", &script])
            .status
            .success()
    }
}

/// Where the plugin's detached `job` keeps its markers: the copy in the copy pod's scratch
/// directory, the dump on the backup volume.
pub fn job_dir(job: &str) -> &'static str {
    if job == "copy" {
        "/work"
    } else {
        "/backup"
    }
}
