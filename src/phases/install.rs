//! Install (app off, empty PostgreSQL 15 and Redis 7) and upgrade (app back on): the target
//! chart through `$HELM_BIN`, with the saved translated values in a private temporary file.

use std::time::Duration;

use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::helm::argv;
use crate::plan::commands;
use crate::plan::facts::WorkloadFacts;

/// The translated values saved by `backup.save-values`.
async fn saved_values(r: &Runner<'_>) -> Result<String> {
    let name = &r.state.plan.values_secret;
    let bytes = super::overrides::saved_values_data(r)
        .await?
        .remove("translated.yaml")
        .unwrap_or_default();
    String::from_utf8(bytes).map_err(|e| {
        Error::new(
            ExitCode::InvalidInput,
            format!("Secret {name} holds no UTF-8 values"),
        )
        .source(e)
    })
}

async fn deploy(r: &Runner<'_>, verb: &str, phase_sets: Vec<String>) -> Result<()> {
    // The chart the plan was made for: a resumed run installs what preflight checked, whatever
    // `--chart`/`--version` the rerun was given.
    let plan = &r.state.plan;
    let chart = std::ffi::OsString::from(&plan.chart);
    let version = plan.chart_remote.then_some(plan.to_version.as_str());
    let values = saved_values(r).await?;
    let overrides = super::overrides::saved(r).await?;
    // Later `--set`s win: the phase's own settings go last during install, the user's last
    // during upgrade (so `--set app.replica=N` chooses the final count).
    let mut sets = Vec::new();
    if verb == "install" {
        sets.extend(overrides.set.iter().cloned());
        sets.extend(phase_sets);
    } else {
        sets.extend(phase_sets);
        sets.extend(overrides.set.iter().cloned());
    }
    let mut docs = vec![values.as_str()];
    docs.extend(overrides.documents());
    tokio::task::block_in_place(|| {
        r.helm.run_with_values(
            &argv::deploy(verb, &r.settings.release, &chart, version, &sets),
            &docs,
        )
    })?;
    Ok(())
}

pub async fn helm_install(r: &mut Runner<'_>) -> Result<String> {
    let release = r.settings.release.clone();
    if let Some(status) = tokio::task::block_in_place(|| r.helm.status(&release))? {
        if status.chart_version == r.state.plan.to_version {
            return Ok(format!(
                "release {release} is installed already ({})",
                status.status
            ));
        }
        return Err(Error::new(
            ExitCode::Precondition,
            format!(
                "release {release} exists with chart {}, expected none before the install",
                status.chart_version
            ),
        ));
    }
    deploy(r, "install", commands::install_sets()).await?;
    Ok(format!(
        "installed chart {} with app and worker at 0, odata and migration off",
        r.state.plan.to_version
    ))
}

pub async fn wait_databases(r: &mut Runner<'_>, pods: &[String]) -> Result<String> {
    for pod in pods {
        r.kube.wait_pod_ready(pod, Duration::from_secs(900)).await?;
    }
    Ok(format!("{} ready", pods.join(", ")))
}

/// Replica counts for the upgrade: as recorded before the scale-down.
fn recorded(r: &Runner<'_>) -> Vec<WorkloadFacts> {
    r.state
        .plan
        .replicas
        .iter()
        .map(|w| WorkloadFacts {
            replicas: *r.state.record.replicas.get(&w.name).unwrap_or(&w.replicas),
            ..w.clone()
        })
        .collect()
}

pub async fn helm_upgrade(r: &mut Runner<'_>) -> Result<String> {
    if r.state.plan.backup.is_some() && !r.state.record.restore_verified {
        return Err(Error::new(
            ExitCode::Precondition,
            "the restored database is not verified: refusing to start the app on it",
        )
        .hint(format!(
            "run `helm la-migrate 4.44 restore -n {}` first",
            r.settings.namespace
        )));
    }
    let replicas = recorded(r);
    deploy(
        r,
        "upgrade",
        commands::upgrade_sets(&replicas, r.state.plan.odata_enabled),
    )
    .await?;
    let counts: Vec<String> = replicas
        .iter()
        .map(|w| format!("{:?} {}", w.role, w.replicas).to_lowercase())
        .collect();
    Ok(format!(
        "upgraded with the migration on; {}",
        counts.join(", ")
    ))
}

pub async fn wait_app(r: &mut Runner<'_>, deployments: &[String]) -> Result<String> {
    for d in deployments {
        r.kube
            .wait_deployment_ready(d, Duration::from_secs(900))
            .await?;
    }
    Ok(format!("{} ready", deployments.join(", ")))
}
