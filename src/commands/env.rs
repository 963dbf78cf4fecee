//! `la-migrate env`: the resolved settings, for checking what the plugin will act on.

use crate::error::{Context, Result};
use crate::exit::ExitCode;
use crate::output::Printer;
use crate::settings::Settings;

pub fn run(settings: &Settings, printer: &Printer) -> Result<()> {
    let value = serde_json::to_value(settings).context(ExitCode::Failure, || {
        "cannot serialise the settings".to_string()
    })?;
    if printer.is_json() {
        printer.json(&value)
    } else {
        let k = &settings.kube;
        let text = format!(
            "namespace: {}\nrelease: {}\nkubeconfig: {}\nkube-context: {}\napiserver: {}\ntoken: {}\nhelm: {}\nunder-helm: {}\nverbosity: {}\n",
            settings.namespace,
            settings.release,
            k.kubeconfig.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|| "(default)".into()),
            k.context.as_deref().unwrap_or("(current)"),
            k.apiserver.as_deref().unwrap_or("(from kubeconfig)"),
            if k.token.is_some() { "<redacted>" } else { "(from kubeconfig)" },
            settings.helm_bin.display(),
            settings.under_helm,
            settings.verbosity,
        );
        printer.result(&text)
    }
    .context(ExitCode::Failure, || "cannot write to stdout".to_string())
}
