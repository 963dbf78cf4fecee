//! Finalize: the onboarding flag the migration job sets on an empty database is removed, so
//! users do not see the first-run screen. No Rails console: `redis-cli` in the Redis pod, the
//! password from the pod's own environment (`REDISCLI_AUTH`), never on a command line.

use super::Runner;
use crate::error::Result;
use crate::kube::exec;
use crate::plan::commands::ONBOARDING_KEY;

/// `redis-cli <command>` against the master Service `host` (the server listens on the pod's
/// address, which is not `127.0.0.1` on every network setup), answered as one line.
async fn redis_cli(r: &Runner<'_>, pod: &str, host: &str, command: &str) -> Result<String> {
    let host = if host.is_empty() {
        String::new()
    } else {
        format!("-h {} ", crate::plan::scripts::shell_quote(host))
    };
    let script = format!(
        "REDISCLI_AUTH=\"${{REDIS_PASSWORD:-$(cat \"${{REDIS_PASSWORD_FILE:-/dev/null}}\" 2>/dev/null)}}\" redis-cli --no-auth-warning {host}{command}"
    );
    let out = exec::checked(
        &r.kube.client,
        &r.settings.namespace,
        pod,
        &format!("redis-cli {command}"),
        &["sh".into(), "-c".into(), script],
    )
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
