//! Work that runs inside pods, detached from the operator's session: the plugin's pods made
//! ready, a detached job started or reattached and followed to its end with a progress bar.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::kube::exec;
use crate::plan::scripts::{self, JobState};

/// Starts (or reattaches to) a detached job in `pod` and follows it until it ends.
pub async fn follow_job(
    r: &mut Runner<'_>,
    pod: &str,
    name: &str,
    start: &str,
    poll: &str,
    total: Option<u64>,
) -> Result<u64> {
    let ns = r.settings.namespace.clone();
    let started = r
        .kube
        .exec_script_checked(pod, &format!("starting the {name}"), start)
        .await?;
    if let Some(code) = scripts::previous_failure(&started) {
        r.note(&format!(
            "the previous {name} failed (exit {code}; its log is {}/{name}.failed.log in pod {pod}): started anew",
            scripts::job_dir(name)
        ));
    }
    match scripts::parse_job_state(&started) {
        Some(JobState::Running) => r.note(&format!("reattached to the running {name}")),
        Some(JobState::Finished(_)) => r.note(&format!("the {name} had finished already")),
        _ => {}
    }
    let bar = r.printer.bytes_bar(total, name);
    let mut stall = crate::kube::wait::Stall::new(JOB_STALL, std::time::Instant::now());
    let result = loop {
        let out = r.kube.exec_script(pod, poll).await?;
        if let Some(bytes) = scripts::parse_bytes(&out.stdout) {
            bar.set_position(bytes);
        }
        if stall.stalled(scripts::parse_bytes(&out.stdout), std::time::Instant::now()) {
            break Err(job_stalled(r, &ns, pod, name, stall.limit()));
        }
        match scripts::parse_job_state(&out.stdout) {
            Some(JobState::Finished(0)) => break Ok(scripts::parse_bytes(&out.stdout).unwrap_or(0)),
            Some(JobState::Finished(code)) => {
                let log = r.kube.exec_script(pod, &scripts::log_tail(name)).await?;
                break Err(Error::new(
                    ExitCode::External,
                    format!(
                        "the {name} in pod {ns}/{pod} failed (exit {code}):\n{}",
                        exec::last_lines(&log.stdout, 12)
                    ),
                )
                .hint(format!(
                    "fix the cause, then {}",
                    r.rerun_hint_to(&format!(
                        "it starts the {name} anew (this attempt's log is kept as {}/{name}.failed.log)",
                        scripts::job_dir(name)
                    ))
                )));
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    bar.finish_and_clear();
    result
}

/// A pod of the plugin's, ready; created again when it is gone (evicted, deleted) or ended.
/// A replaced pod counts a detached job as not running (its pid file was in the old pod).
pub async fn ready_pod(r: &Runner<'_>, pod: &Pod) -> Result<String> {
    r.kube.ensure_pod(pod).await?;
    let name = pod.metadata.name.clone().unwrap_or_default();
    r.kube
        .wait_pod_ready(&name, Duration::from_secs(600))
        .await?;
    Ok(name)
}

/// How long a detached dump or copy may write nothing before following it stops.
const JOB_STALL: Duration = Duration::from_secs(3600);

/// A detached job whose output stopped growing: following it stops, the job is left alone.
fn job_stalled(r: &Runner<'_>, ns: &str, pod: &str, name: &str, limit: Duration) -> Error {
    Error::new(
        ExitCode::External,
        format!(
            "the {name} in pod {ns}/{pod} has written nothing for {} min: it may hang",
            limit.as_secs() / 60
        ),
    )
    .hint(format!(
        "see its log (`kubectl -n {ns} exec {pod} -- tail {}/{name}.log`); it is left running, and {}",
        scripts::job_dir(name),
        r.rerun_hint_to(&format!("it reattaches to the {name} if it still runs"))
    ))
}
