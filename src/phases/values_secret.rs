//! The values Secret: the release's values (original and 4.44 translation), the operator's
//! `-f`/`--set` overrides, the chart's database and Redis Secrets and the original chart's
//! archive, kept in the cluster (never in the state) for the steps after the uninstall and a
//! rollback.

use std::collections::BTreeMap;

use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::plan::{manifests, rollback};

/// Saves the release's values (original and translated), the operator's overrides, the
/// chart's Secrets and the original chart's archive in the plugin's private Secret.
pub async fn save(r: &mut Runner<'_>, secret: &str) -> Result<String> {
    let values = tokio::task::block_in_place(|| {
        super::preflight::release_values(&r.helm, &r.settings.release)
    })?;
    let mut data = BTreeMap::from([
        ("original.yaml".to_string(), values.original.into_bytes()),
        (
            "translated.yaml".to_string(),
            values.translated.into_bytes(),
        ),
    ]);
    // The image of the plugin's pods, as chosen now: a later run refuses a state that names
    // another one.
    let plan = &r.state.plan;
    let image = plan.new_database.as_ref().map(|d| &d.image);
    if let Some(image) = image.or_else(|| plan.backup.as_ref().map(|b| &b.image)) {
        data.insert(
            super::trust::TOOLS_IMAGE_KEY.to_string(),
            image.clone().into_bytes(),
        );
    }
    let overrides = super::overrides::Overrides::from_options(&r.options)?;
    if !overrides.is_empty() {
        data.insert(super::overrides::KEY.to_string(), overrides.encode());
    }
    // `helm uninstall` deletes the chart's database and Redis Secrets: their data is saved
    // before, in this (private) Secret, never in the state. With --keep-passwords the new
    // release gets these passwords; a rollback writes the Secrets back as they were.
    let replaced = replaced_secrets(r);
    for name in &replaced {
        if let Some(old) = r.kube.secret(name).await? {
            for (key, value) in old.data.unwrap_or_default() {
                data.insert(saved_password_key(name, &key), value.0);
            }
        }
    }
    let chart = match original_chart(r) {
        Ok(archive) => {
            data.insert(rollback::CHART_KEY.to_string(), archive);
            format!(", chart {} saved for a rollback", r.state.plan.from_version)
        }
        Err(why) => {
            r.printer.warn(&format!(
                "the archive of chart {} is not saved ({why}): a rollback after the point of no return will not be able to install it",
                r.state.plan.from_version
            ));
            String::new()
        }
    };
    r.kube
        .put_secret(secret, manifests::labels(&r.settings.release), data)
        .await?;
    let passwords = if r.state.plan.keeps_passwords() && !replaced.is_empty() {
        format!(" with the passwords of {}", replaced.join(", "))
    } else {
        String::new()
    };
    Ok(format!(
        "values stored in Secret {}/{secret}{passwords}{chart}",
        r.settings.namespace
    ))
}

/// The chart's Secrets the cut-over replaces (database and Redis passwords).
fn replaced_secrets(r: &Runner<'_>) -> Vec<String> {
    r.state
        .plan
        .find_action(|a| match a {
            crate::plan::Action::ReplaceSecrets { secrets, .. } => Some(secrets.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The biggest archive kept: the values Secret must stay under the API's 1 MiB.
const MAX_CHART_BYTES: usize = 700 * 1024;

/// The archive of the chart the release runs now ([`rollback::original_chart`]), checked to
/// be that version; why not otherwise.
fn original_chart(r: &Runner<'_>) -> std::result::Result<Vec<u8>, String> {
    let plan = &r.state.plan;
    let dir = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
    let path = match rollback::original_chart(plan) {
        rollback::OriginalChart::Pull { chart, version } => {
            let args: Vec<std::ffi::OsString> = vec![
                "pull".into(),
                chart.clone().into(),
                "--version".into(),
                version.clone().into(),
                "--destination".into(),
                dir.path().into(),
            ];
            tokio::task::block_in_place(|| r.helm.run(&args)).map_err(|e| {
                format!(
                    "`helm pull {chart} --version {version}` failed: {}",
                    e.message
                )
            })?;
            std::fs::read_dir(dir.path())
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| e.ok())
                .map(|e| e.path())
                .ok_or_else(|| format!("`helm pull {chart}` wrote no archive"))?
        }
        rollback::OriginalChart::File(path) => path,
        rollback::OriginalChart::Unknown => {
            return Err(format!(
                "no archive live-agent-{}.tgz beside chart {}",
                plan.from_version, plan.chart
            ))
        }
    };
    let archive = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if archive.len() > MAX_CHART_BYTES {
        return Err(format!("{} is {} bytes", path.display(), archive.len()));
    }
    let meta =
        tokio::task::block_in_place(|| r.helm.chart_metadata(&path.clone().into_os_string(), None))
            .map_err(|e| e.message)?;
    if meta.version != plan.from_version {
        return Err(format!(
            "{} is chart {}, the release runs {}",
            path.display(),
            meta.version,
            plan.from_version
        ));
    }
    Ok(archive)
}

/// Where the values Secret keeps key `key` of Secret `secret` (both are valid key names).
pub fn saved_password_key(secret: &str, key: &str) -> String {
    format!("keep.{secret}.{key}")
}

/// The translated values in the values Secret's data.
pub fn translated_values(r: &Runner<'_>, saved: &mut BTreeMap<String, Vec<u8>>) -> Result<String> {
    let bytes = saved.remove("translated.yaml").unwrap_or_default();
    String::from_utf8(bytes).map_err(|e| {
        Error::new(
            ExitCode::InvalidInput,
            format!(
                "Secret {} holds no UTF-8 values",
                r.state.plan.values_secret
            ),
        )
        .source(e)
    })
}

/// The data of the chart's Secret `secret` as the values Secret keeps it (saved at `prepare`).
pub fn saved_passwords(
    saved: &BTreeMap<String, Vec<u8>>,
    secret: &str,
) -> BTreeMap<String, Vec<u8>> {
    let prefix = saved_password_key(secret, "");
    saved
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v.clone())))
        .collect()
}
