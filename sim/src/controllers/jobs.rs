//! Jobs: one pod at a time until one succeeds, or `backoffLimit` failures.

use serde_json::{json, Value};

use super::snapshot::{rt, Snapshot};
use super::Action;
use crate::store::meta;

fn phase(p: &Value) -> &str {
    p.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
}

pub fn reconcile(s: &Snapshot) -> Vec<Action> {
    let mut out = Vec::new();
    for job in s.all("batch", "jobs") {
        if meta::is_deleting(job) {
            continue;
        }
        let pods: Vec<&Value> = s.owned("", "pods", meta::uid(job)).collect();
        let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count() as i64;
        let failed = pods.iter().filter(|p| phase(p) == "Failed").count() as i64;
        let active: Vec<&&Value> = pods
            .iter()
            .filter(|p| !matches!(phase(p), "Succeeded" | "Failed") && !meta::is_deleting(p))
            .collect();
        let completions = job
            .pointer("/spec/completions")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let backoff = job
            .pointer("/spec/backoffLimit")
            .and_then(Value::as_i64)
            .unwrap_or(6);
        let suspended = job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
        let done = succeeded >= completions;
        let gave_up = failed > backoff;
        let prev = job.get("status").cloned().unwrap_or(json!({}));
        let now = meta::now();
        if !done && !gave_up && !suspended && active.is_empty() {
            let mut labels = job
                .pointer("/spec/template/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            for (k, v) in [
                ("batch.kubernetes.io/job-name", meta::name(job)),
                ("job-name", meta::name(job)),
                ("batch.kubernetes.io/controller-uid", meta::uid(job)),
                ("controller-uid", meta::uid(job)),
            ] {
                labels[k] = json!(v);
            }
            out.push(Action::Create(
                rt("", "pods"),
                json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "generateName": format!("{}-", meta::name(job)),
                        "namespace": meta::namespace(job),
                        "labels": labels,
                        "annotations": job.pointer("/spec/template/metadata/annotations").cloned().unwrap_or(json!({})),
                        "ownerReferences": [meta::controller_ref(job)],
                    },
                    "spec": job["spec"]["template"]["spec"],
                }),
            ));
        }
        let mut status = json!({
            "startTime": prev.get("startTime").cloned().unwrap_or(json!(now)),
        });
        if !active.is_empty() && !done && !gave_up {
            status["active"] = json!(active.len());
            status["ready"] = json!(active
                .iter()
                .filter(|p| super::workloads::pod_ready(p))
                .count());
        } else {
            status["ready"] = json!(0);
        }
        if succeeded > 0 {
            status["succeeded"] = json!(succeeded);
        }
        if failed > 0 {
            status["failed"] = json!(failed);
        }
        let keep = |t: &str| {
            prev.get("conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c["type"] == t).cloned())
        };
        if done {
            let c1 = keep("SuccessCriteriaMet").unwrap_or(json!({"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now}));
            let c2 = keep("Complete").unwrap_or(json!({"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now}));
            status["conditions"] = json!([c1, c2]);
            status["completionTime"] = prev.get("completionTime").cloned().unwrap_or(json!(now));
        } else if gave_up {
            let c1 = keep("FailureTarget").unwrap_or(json!({"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now}));
            let c2 = keep("Failed").unwrap_or(json!({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now}));
            status["conditions"] = json!([c1, c2]);
        }
        status["uncountedTerminatedPods"] = json!({});
        if job.get("status") != Some(&status) {
            out.push(Action::SetStatus(
                rt("batch", "jobs"),
                meta::namespace(job).into(),
                meta::name(job).into(),
                status,
            ));
        }
    }
    out
}
