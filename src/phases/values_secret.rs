//! The values Secret: the release's values (original and 4.44 translation), the operator's
//! `-f`/`--set` overrides and, with `--keep-passwords`, the old database passwords, kept in
//! the cluster (never in the state) for the steps after the uninstall.

use std::collections::BTreeMap;

use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::plan::manifests;

/// Saves the release's values (original and translated), the operator's overrides and, with
/// `--keep-passwords`, the old database passwords in the plugin's private Secret.
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
    // `helm uninstall` deletes the chart's database Secrets: with --keep-passwords their
    // data must be saved before, in this (private) Secret, never in the state.
    let kept = kept_password_secrets(r);
    for name in &kept {
        if let Some(old) = r.kube.secret(name).await? {
            for (key, value) in old.data.unwrap_or_default() {
                data.insert(saved_password_key(name, &key), value.0);
            }
        }
    }
    r.kube
        .put_secret(secret, manifests::labels(&r.settings.release), data)
        .await?;
    let passwords = if kept.is_empty() {
        String::new()
    } else {
        format!(" with the passwords of {}", kept.join(", "))
    };
    Ok(format!(
        "values stored in Secret {}/{secret}{passwords}",
        r.settings.namespace
    ))
}

/// The database Secrets the plan recreates with their old passwords (`--keep-passwords`).
fn kept_password_secrets(r: &Runner<'_>) -> Vec<String> {
    r.state
        .plan
        .find_action(|a| match a {
            crate::plan::Action::ReplaceSecrets {
                secrets,
                keep_passwords: true,
            } => Some(secrets.clone()),
            _ => None,
        })
        .unwrap_or_default()
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

/// The password data of Secret `secret` as the values Secret keeps it (`--keep-passwords`).
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
