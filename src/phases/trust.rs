//! Before a run acts on a stored state: the names its plan acts on, the volumes it names and
//! the plugin's pods' image checked (`plan::trust`) against the release's names, the
//! volumes' claims and the image chosen when the values were saved. A state edited to act on
//! anything else is refused before anything is changed.

use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::naming::{Generation, NameInputs, ObjectNames};
use crate::plan::trust;

/// The values Secret's key for the image of the plugin's pods chosen by the first run.
pub const TOOLS_IMAGE_KEY: &str = "tools-image";

/// The release's names: from the values saved at `prepare`, else the release's values as
/// helm has them, else the release name alone.
async fn names(r: &Runner<'_>, saved: Option<&[u8]>) -> ObjectNames {
    let values = match saved {
        Some(original) => String::from_utf8_lossy(original).into_owned(),
        None => tokio::task::block_in_place(|| r.helm.get_values(&r.settings.release))
            .unwrap_or_default(),
    };
    let parsed = serde_norway::from_str(&values).unwrap_or(serde_norway::Value::Null);
    ObjectNames::new(
        &r.settings.release,
        &NameInputs::from_values(&parsed),
        Generation::Pg11,
    )
}

/// Refuses (exit 8) a state whose plan or record names an object outside the release, or
/// whose pods' image is not the one chosen.
pub async fn check(r: &Runner<'_>) -> Result<()> {
    let saved = r
        .kube
        .secret(&r.state.plan.values_secret)
        .await?
        .and_then(|s| s.data)
        .unwrap_or_default();
    let names = names(r, saved.get("original.yaml").map(|v| v.0.as_slice())).await;
    let ns = &r.settings.namespace;
    let mut problems = trust::plan_problems(&r.state.plan, ns, &names);
    if let Some(chosen) = saved.get(TOOLS_IMAGE_KEY) {
        let chosen = String::from_utf8_lossy(&chosen.0);
        problems.extend(trust::image_problems(&r.state.plan, &chosen));
    }
    let record = &r.state.record;
    let mut volumes = trust::volumes(&r.state.plan);
    volumes.extend(record.reclaim_policies.keys().cloned());
    volumes.extend(record.new_database_volume.iter().cloned());
    volumes.sort();
    volumes.dedup();
    for v in &volumes {
        if let Some(pv) = r.kube.volume(v).await? {
            problems.extend(trust::volume_problem(&pv, ns, &names));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let state = &r.state.plan.state_config_map;
    Err(Error::new(
        ExitCode::Precondition,
        format!(
            "the state ConfigMap {ns}/{state} does not describe a migration of release {} in {ns}: {}; nothing was changed",
            r.settings.release,
            problems.join("; ")
        ),
    )
    .hint(format!(
        "it was edited since the migration wrote it: see `kubectl -n {ns} get configmap {state} -o yaml` and who changed it (managedFields); put back what the migration wrote, then run `{}` again",
        r.command("")
    )))
}
