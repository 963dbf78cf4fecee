//! `la-migrate env`: the resolved settings, for checking what the plugin will act on.
//!
//! The command's help lists the rows printed here (a test keeps them equal). The target chart
//! is not among them: `env` takes no `--chart`/`--version`; `4.44 --dry-run` shows the target.

use serde_json::Value;

use crate::error::{Context, Result};
use crate::exit::ExitCode;
use crate::output::Printer;
use crate::settings::Settings;

pub fn run(settings: &Settings, printer: &Printer) -> Result<()> {
    let json = json(settings)?;
    printer
        .output(|| json, |p| p.result(&text(settings)))
        .context(ExitCode::Failure, || "cannot write to stdout".to_string())
}

/// The settings as JSON, without the target `env` does not resolve.
fn json(settings: &Settings) -> Result<Value> {
    let mut value = serde_json::to_value(settings).context(ExitCode::Failure, || {
        "cannot serialise the settings".to_string()
    })?;
    if let Some(map) = value.as_object_mut() {
        map.remove("target");
    }
    Ok(value)
}

/// The rows of the text output: label and value.
fn rows(settings: &Settings) -> Vec<(&'static str, String)> {
    let k = &settings.kube;
    vec![
        ("namespace", settings.namespace.clone()),
        ("release", settings.release.clone()),
        (
            "kubeconfig",
            k.kubeconfig
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| "(default)".into()),
        ),
        (
            "kube-context",
            k.context.clone().unwrap_or_else(|| "(current)".into()),
        ),
        (
            "apiserver",
            k.apiserver
                .clone()
                .unwrap_or_else(|| "(from kubeconfig)".into()),
        ),
        (
            "token",
            if k.token.is_some() {
                "<redacted>"
            } else {
                "(from kubeconfig)"
            }
            .into(),
        ),
        ("helm", settings.helm_bin.display().to_string()),
        ("under-helm", settings.under_helm.to_string()),
        ("verbosity", settings.verbosity.to_string()),
    ]
}

fn text(settings: &Settings) -> String {
    rows(settings)
        .into_iter()
        .map(|(label, value)| format!("{label}: {value}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, GlobalArgs};
    use crate::settings::ProcessEnv;
    use clap::CommandFactory;

    fn settings() -> Settings {
        Settings::resolve(&GlobalArgs::default(), None, &ProcessEnv).unwrap()
    }

    #[test]
    fn the_help_lists_exactly_the_rows_printed() {
        let cmd = Cli::command();
        let about = cmd
            .find_subcommand("env")
            .and_then(|c| c.get_about())
            .expect("env has an about")
            .to_string();
        let listed: Vec<&str> = about
            .split_once(": ")
            .expect("about lists the rows after ': '")
            .1
            .split(',')
            .map(str::trim)
            .collect();
        let printed: Vec<&str> = rows(&settings()).iter().map(|(l, _)| *l).collect();
        assert_eq!(listed, printed);
    }

    #[test]
    fn json_has_no_target_since_env_resolves_none() {
        let v = json(&settings()).unwrap();
        assert!(v.get("target").is_none(), "{v}");
        assert!(v.get("namespace").is_some(), "{v}");
    }
}
