//! Readiness as pure predicates on objects (tested on inline data); the only I/O is the poll.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};

use crate::error::{Error, Result};
use crate::exit::ExitCode;

pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A pod that ended (`Succeeded`/`Failed`) will never become ready.
pub fn pod_ended(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// All wanted replicas updated and available, for the current generation.
pub fn deployment_ready(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = &d.status else {
        return false;
    };
    let observed = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    observed
        && status.updated_replicas.unwrap_or(0) >= want
        && status.available_replicas.unwrap_or(0) >= want
        && status.replicas.unwrap_or(0) == want
}

/// Scaled to 0: ready by the numbers, but nothing runs.
pub fn scaled_to_zero(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.replicas) == Some(0)
}

pub fn claim_bound(c: &PersistentVolumeClaim) -> bool {
    c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
}

/// A long job followed by polling a measure of its output (bytes written): stalled once the
/// measure has not changed for `limit`, so following it is never an endless wait.
#[derive(Debug, Clone)]
pub struct Stall {
    last: Option<u64>,
    since: std::time::Instant,
    limit: Duration,
}

impl Stall {
    pub fn new(limit: Duration, now: std::time::Instant) -> Stall {
        Stall {
            last: None,
            since: now,
            limit,
        }
    }

    /// Records the measure seen at `now`; whether it has not changed for the whole limit.
    pub fn stalled(&mut self, measure: Option<u64>, now: std::time::Instant) -> bool {
        if measure != self.last {
            self.last = measure;
            self.since = now;
        }
        now.duration_since(self.since) >= self.limit
    }

    pub fn limit(&self) -> Duration {
        self.limit
    }
}

/// Polls `check` until it returns `Some`, or fails after `timeout` naming `what`. A check
/// that does not return (an API server that stopped answering) counts against the timeout
/// too: each gets the time left, at least a tenth of the timeout.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let start = tokio::time::Instant::now();
    let mut interval = Duration::from_millis(250);
    loop {
        let left = timeout.saturating_sub(start.elapsed()).max(timeout / 10);
        if let Ok(checked) = tokio::time::timeout(left, check()).await {
            if let Some(v) = checked? {
                return Ok(v);
            }
        }
        if start.elapsed() >= timeout {
            return Err(Error::new(
                ExitCode::Failure,
                format!("timed out after {}s waiting for {what}", timeout.as_secs()),
            )
            .hint("look at the objects with kubectl (events, pod logs), fix the cause, then run the same command again"));
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_secs(3));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_check_that_never_returns_times_out_with_the_wait() {
        let started = std::time::Instant::now();
        let err = until("pod ns/p to be ready", Duration::from_millis(300), || {
            std::future::pending::<Result<Option<()>>>()
        })
        .await
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(err.code, ExitCode::Failure);
        assert!(
            err.message.contains("waiting for pod ns/p to be ready"),
            "{}",
            err.message
        );
        let mut calls = 0;
        let found = until("x", Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move { Ok((n == 2).then_some(n)) }
        })
        .await
        .unwrap();
        assert_eq!(found, 2);
    }

    #[test]
    fn a_job_whose_output_stops_growing_for_the_whole_limit_is_stalled() {
        let t0 = std::time::Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut stall = Stall::new(Duration::from_secs(600), t0);
        assert!(!stall.stalled(Some(10), at(0)));
        assert!(!stall.stalled(Some(10), at(599)));
        assert!(
            !stall.stalled(Some(20), at(700)),
            "it grew: the clock restarts"
        );
        assert!(!stall.stalled(Some(20), at(1299)));
        assert!(stall.stalled(Some(20), at(1300)));
    }

    fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
        serde_norway::from_str(y).unwrap()
    }

    #[test]
    fn a_pod_is_ready_only_with_a_true_ready_condition() {
        let ready: Pod = from_yaml(
            "metadata: {name: p}\nstatus:\n  phase: Running\n  conditions:\n  - {type: Ready, status: 'True'}\n",
        );
        let starting: Pod = from_yaml(
            "metadata: {name: p}\nstatus:\n  phase: Running\n  conditions:\n  - {type: Ready, status: 'False'}\n",
        );
        let failed: Pod = from_yaml("metadata: {name: p}\nstatus: {phase: Failed}\n");
        assert!(pod_ready(&ready));
        assert!(!pod_ready(&starting));
        assert!(!pod_ready(&failed) && pod_ended(&failed));
    }

    #[test]
    fn a_deployment_is_ready_when_the_current_generation_is_fully_available() {
        let ready: Deployment = from_yaml(
            "metadata: {name: d, generation: 2}\nspec: {replicas: 2, selector: {}, template: {}}\nstatus: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2}\n",
        );
        let stale: Deployment = from_yaml(
            "metadata: {name: d, generation: 3}\nspec: {replicas: 2, selector: {}, template: {}}\nstatus: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2}\n",
        );
        let scaled_to_zero: Deployment = from_yaml(
            "metadata: {name: d, generation: 1}\nspec: {replicas: 0, selector: {}, template: {}}\nstatus: {observedGeneration: 1}\n",
        );
        assert!(deployment_ready(&ready));
        assert!(!deployment_ready(&stale));
        assert!(deployment_ready(&scaled_to_zero));
    }
}
