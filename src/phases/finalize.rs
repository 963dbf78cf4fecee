//! Finalize: the onboarding flag the migration job sets on an empty database is removed, so
//! users do not see the first-run screen. No Rails console: `redis-cli` in the Redis pod, the
//! password from the pod's own environment (`REDISCLI_AUTH`), never on a command line.

use super::Runner;
use crate::error::Result;
use crate::kube::exec;
use crate::plan::commands::ONBOARDING_KEY;

/// `host` is the master Service: the server listens on the pod's address, which is not
/// `127.0.0.1` on every network setup.
pub async fn clear_onboarding(r: &mut Runner<'_>, pod: &str, host: &str) -> Result<String> {
    let host = if host.is_empty() {
        String::new()
    } else {
        format!("-h {} ", crate::plan::scripts::shell_quote(host))
    };
    let script = format!(
        "REDISCLI_AUTH=\"${{REDIS_PASSWORD:-$(cat \"${{REDIS_PASSWORD_FILE:-/dev/null}}\" 2>/dev/null)}}\" redis-cli --no-auth-warning {host}DEL {ONBOARDING_KEY}"
    );
    let out = exec::checked(
        &r.kube.client,
        &r.settings.namespace,
        pod,
        "deleting the onboarding key",
        &["sh".into(), "-c".into(), script],
    )
    .await?;
    Ok(match out.trim() {
        "1" | "(integer) 1" => format!("removed {ONBOARDING_KEY}"),
        _ => format!("{ONBOARDING_KEY} was not set"),
    })
}
