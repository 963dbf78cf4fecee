//! Finalize: the onboarding flag the migration job sets on an empty database is removed, so
//! users do not see the first-run screen. No Rails console: `redis-cli` in the Redis pod, the
//! password from the pod's own environment (`REDISCLI_AUTH`), never on a command line.

use super::Runner;
use crate::error::Result;
use crate::plan::commands::ONBOARDING_KEY;

/// `redis-cli` with the password from the pod's environment, against the master Service `host`.
fn redis_cli_prefix(host: &str) -> String {
    let host = if host.is_empty() {
        String::new()
    } else {
        format!(" -h {}", crate::plan::scripts::shell_quote(host))
    };
    format!(
        "REDISCLI_AUTH=\"${{REDIS_PASSWORD:-$(cat \"${{REDIS_PASSWORD_FILE:-/dev/null}}\" 2>/dev/null)}}\" redis-cli --no-auth-warning{host}"
    )
}

/// `redis-cli <command>` against the master Service `host` (the server listens on the pod's
/// address, which is not `127.0.0.1` on every network setup), answered as one line.
async fn redis_cli(r: &Runner<'_>, pod: &str, host: &str, command: &str) -> Result<String> {
    let script = format!("{} {command}", redis_cli_prefix(host));
    let out = r
        .kube
        .exec_script_checked(pod, &format!("redis-cli {command}"), &script)
        .await?;
    Ok(out.trim().trim_start_matches("(integer) ").to_string())
}

pub async fn clear_onboarding(r: &mut Runner<'_>, pod: &str, host: &str) -> Result<String> {
    Ok(
        match redis_cli(r, pod, host, &format!("DEL {ONBOARDING_KEY}"))
            .await?
            .as_str()
        {
            "1" => format!("removed {ONBOARDING_KEY}"),
            _ => format!("{ONBOARDING_KEY} was not set"),
        },
    )
}

/// Whether the onboarding key is set (verify: nothing set it again since finalize).
pub async fn onboarding_key_set(r: &Runner<'_>, pod: &str, host: &str) -> Result<bool> {
    Ok(redis_cli(r, pod, host, &format!("EXISTS {ONBOARDING_KEY}")).await? == "1")
}

/// The Sidekiq jobs waiting in the old Redis: each queue's length, and the `schedule` and
/// `retry` sets' sizes. Empty when the plan has no Redis of the chart's or it cannot be read.
pub async fn sidekiq_jobs(r: &Runner<'_>) -> Result<Vec<(String, u64)>> {
    let Some((pod, host)) = r.state.plan.find_action(|a| match a {
        crate::plan::Action::ClearOnboarding { pod, host } => Some((pod.clone(), host.clone())),
        _ => None,
    }) else {
        return Ok(Vec::new());
    };
    let cli = redis_cli_prefix(&host);
    let script = format!(
        "{cli} SMEMBERS queues | while read -r q; do [ -n \"$q\" ] && echo \"queue:$q $({cli} LLEN \"queue:$q\")\"; done; \
echo \"schedule $({cli} ZCARD schedule)\"; echo \"retry $({cli} ZCARD retry)\""
    );
    let out = r
        .kube
        .exec_script_checked(&pod, "counting Sidekiq jobs", &script)
        .await?;
    Ok(parse_job_counts(&out))
}

/// `<set> <count>` lines.
fn parse_job_counts(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter_map(|l| {
            let (k, n) = l.trim().rsplit_once(' ')?;
            Some((
                k.to_string(),
                n.trim_start_matches("(integer) ").parse().ok()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_counts_are_read_per_set() {
        assert_eq!(
            parse_job_counts("queue:default 3\nqueue:mailers 0\nschedule 2\nretry 1\n"),
            [
                ("queue:default".to_string(), 3),
                ("queue:mailers".to_string(), 0),
                ("schedule".to_string(), 2),
                ("retry".to_string(), 1)
            ]
        );
    }
}
