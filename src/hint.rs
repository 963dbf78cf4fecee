//! The plugin's own commands as hints and notes print them: the one place they are built, so
//! each names the release and the namespace it is about. Pure.

use crate::cli::DEFAULT_RELEASE;

/// `helm la-migrate 4.44 <args> -n <namespace> [--release <release>]`: the namespace always
/// (helm's own default namespace follows the kube context, which may differ on the machine
/// that runs the hint), the release when it is not the default one.
pub fn command(release: &str, namespace: &str, args: &str) -> String {
    let mut out = String::from("helm la-migrate 4.44");
    for part in [args.trim(), "-n", namespace] {
        if !part.is_empty() {
            out.push(' ');
            out.push_str(part);
        }
    }
    if release != DEFAULT_RELEASE {
        out.push_str(" --release ");
        out.push_str(release);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_names_the_namespace_and_a_release_that_is_not_the_default() {
        assert_eq!(
            command("la-prod", "prod", "cleanup --delete-old-volumes"),
            "helm la-migrate 4.44 cleanup --delete-old-volumes -n prod --release la-prod"
        );
        assert_eq!(
            command(DEFAULT_RELEASE, "live-agent", ""),
            "helm la-migrate 4.44 -n live-agent"
        );
    }
}
