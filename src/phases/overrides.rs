//! The operator's extra values for the install (`-f/--values FILE`, `--set`),
//! kept with the saved values in the values Secret: they may hold passwords, so never in the
//! state. A resumed run uses them whatever flags it was given, from any machine; a run that
//! is given overrides again replaces them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::plan::{commands, Options};

/// Key of the overrides in the values Secret.
pub const KEY: &str = "overrides.json";

/// One `-f/--values` file: where it was read, and its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValuesFile {
    pub path: String,
    pub content: String,
}

/// Extra values, in the order helm takes them (files, then `--set`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    pub files: Vec<ValuesFile>,
    pub set: Vec<String>,
}

impl Overrides {
    /// The overrides given on this run's command line (the files are read now).
    pub fn from_options(options: &Options) -> Result<Overrides> {
        let files = options
            .values_overrides
            .iter()
            .map(|p| {
                let content = std::fs::read_to_string(p).map_err(|e| {
                    Error::new(
                        ExitCode::NotFound,
                        format!("cannot read values file {}", p.display()),
                    )
                    .source(e)
                    .hint("check the path given to -f/--values")
                })?;
                Ok(ValuesFile {
                    path: p.display().to_string(),
                    content,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Overrides {
            files,
            set: options.set.clone(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.set.is_empty()
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Overrides, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The values documents for helm.
    pub fn documents(&self) -> Vec<&str> {
        self.files.iter().map(|f| f.content.as_str()).collect()
    }

    /// The paths of the files, for the plan's commands.
    pub fn paths(&self) -> Vec<String> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }
}

/// The overrides in the values Secret's data (none when it has no such key: values saved
/// without overrides).
pub fn decode_saved(r: &Runner<'_>, saved: &BTreeMap<String, Vec<u8>>) -> Result<Overrides> {
    match saved.get(KEY) {
        None => Ok(Overrides::default()),
        Some(bytes) => Overrides::decode(bytes).map_err(|e| {
            Error::new(
                ExitCode::InvalidInput,
                format!(
                    "the saved overrides in Secret {} ({KEY}) are unreadable",
                    r.state.plan.values_secret
                ),
            )
            .source(e)
            .hint(
                "give the overrides again with -f/--values and --set: they replace the saved ones",
            )
        }),
    }
}

/// The data of the values Secret written by `prepare.save-values`.
pub async fn saved_values_data(r: &Runner<'_>) -> Result<BTreeMap<String, Vec<u8>>> {
    let name = &r.state.plan.values_secret;
    let secret = r.kube.secret(name).await?.ok_or_else(|| {
        Error::new(
            ExitCode::Precondition,
            format!(
                "the saved values (Secret {}/{name}) are missing",
                r.settings.namespace
            ),
        )
        .hint("they are written by the prepare phase (prepare.save-values); restore the Secret")
    })?;
    Ok(secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect())
}

/// A run given overrides after the values were saved: they replace the saved ones, and the
/// plan's install command shows them.
pub async fn replace_saved(r: &mut Runner<'_>) -> Result<()> {
    let given = Overrides::from_options(&r.options)?;
    if given.is_empty() || !r.state.is_done("prepare.save-values") {
        return Ok(());
    }
    let mut data = saved_values_data(r).await?;
    if data.get(KEY).map(Vec::as_slice) == Some(given.encode().as_slice()) {
        return Ok(());
    }
    data.insert(KEY.to_string(), given.encode());
    let name = r.state.plan.values_secret.clone();
    r.kube
        .put_secret(
            &name,
            crate::plan::manifests::labels(&r.settings.release),
            data,
        )
        .await?;
    r.note(&format!(
        "the install uses the overrides given now ({} values files, {} --set), saved in Secret {name}",
        given.files.len(),
        given.set.len()
    ));
    commands::set_overrides(
        &mut r.state.plan,
        commands::override_args(&given.paths(), &given.set),
    );
    r.save().await
}
