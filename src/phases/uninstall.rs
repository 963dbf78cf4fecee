//! Uninstall: past the point of no return. The volumes are retained first, so even these
//! steps leave the old data on its volumes until cleanup.

use std::collections::BTreeMap;

use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::helm::argv;
use crate::plan::manifests;
use crate::plan::{ObjectRef, RetainVolume};

pub async fn confirm(r: &mut Runner<'_>, deletes: &[ObjectRef]) -> Result<String> {
    if r.state.plan.backup.is_some() && r.state.record.backup.is_none() {
        return Err(Error::new(
            ExitCode::Precondition,
            "the backup is not verified: refusing to uninstall",
        )
        .hint(format!(
            "run `helm la-migrate 4.44 backup -n {}` first",
            r.settings.namespace
        )));
    }
    if !r.printer.is_json() {
        r.printer.note("The next steps delete:");
        for d in deletes {
            r.printer.note(&format!("  - {d}"));
        }
        r.printer
            .note("Volumes are set to Retain first; the attachments volume is kept and rebound.");
    }
    r.confirm("uninstalling the release and deleting its database volumes")?;
    Ok(format!("confirmed deletion of {} objects", deletes.len()))
}

pub async fn retain(r: &mut Runner<'_>, volumes: &[RetainVolume]) -> Result<String> {
    for v in volumes {
        let Some(pv) = r.kube.volume(&v.volume).await? else {
            continue;
        };
        let current = pv
            .spec
            .and_then(|s| s.persistent_volume_reclaim_policy)
            .unwrap_or_else(|| "Delete".into());
        // Keep the first policy seen: a rerun must not record "Retain" as the original.
        r.state
            .record
            .reclaim_policies
            .entry(v.volume.clone())
            .or_insert(current.clone());
        if current != "Retain" {
            r.kube.set_reclaim_policy(&v.volume, "Retain").await?;
        }
    }
    r.save().await?;
    Ok(format!("{} volumes set to Retain", volumes.len()))
}

pub async fn helm_uninstall(r: &mut Runner<'_>) -> Result<String> {
    let release = r.settings.release.clone();
    let exists = tokio::task::block_in_place(|| r.helm.status(&release))?.is_some();
    if exists {
        tokio::task::block_in_place(|| r.helm.run(&argv::uninstall(&release)))?;
    }
    Ok(if exists {
        format!("release {release} uninstalled")
    } else {
        format!("release {release} was already uninstalled")
    })
}

pub async fn rebind(r: &mut Runner<'_>, volume: &str, claim: &str) -> Result<String> {
    // The chart's claim goes with the release; reserve the volume only once it is gone.
    let kube = r.kube.clone();
    crate::kube::wait::until(
        &format!(
            "claim {}/{claim} to be deleted by the uninstall",
            r.settings.namespace
        ),
        std::time::Duration::from_secs(300),
        || async { Ok(kube.claim(claim).await?.is_none().then_some(())) },
    )
    .await?;
    r.kube.reserve_volume(volume, claim).await?;
    Ok(format!(
        "volume {volume} reserved for claim {}/{claim}",
        r.settings.namespace
    ))
}

pub async fn delete_claims(r: &mut Runner<'_>, claims: &[String]) -> Result<String> {
    r.kube.delete_claims(claims).await?;
    Ok(format!("deleted claims {}", claims.join(", ")))
}

pub async fn secrets(
    r: &mut Runner<'_>,
    secrets: &[String],
    keep_passwords: bool,
) -> Result<String> {
    let kept = &r.state.plan.keeps;
    for s in secrets {
        if kept.iter().any(|k| k.kind == "Secret" && &k.name == s) {
            return Err(Error::new(
                ExitCode::Failure,
                format!("refusing to touch kept Secret {s}"),
            ));
        }
    }
    if !keep_passwords {
        for s in secrets {
            r.kube.delete_secret(s).await?;
        }
        return Ok(format!("deleted {}", secrets.join(", ")));
    }
    for s in secrets {
        let Some(old) = r.kube.secret(s).await? else {
            continue;
        };
        let data = old.data.unwrap_or_default();
        let value = |k: &str| data.get(k).map(|b| b.0.clone());
        let new: BTreeMap<String, Vec<u8>> = if let Some(pw) = value("postgresql-password") {
            let admin = value("postgresql-postgres-password").unwrap_or_else(|| pw.clone());
            BTreeMap::from([
                ("postgres-password".to_string(), admin),
                ("password".to_string(), pw),
            ])
        } else {
            // Redis keeps its key; anything already in the new shape stays as it is.
            data.into_iter().map(|(k, v)| (k, v.0)).collect()
        };
        r.kube.delete_secret(s).await?;
        r.kube
            .put_secret(s, manifests::labels(&r.settings.release), new)
            .await?;
    }
    Ok(format!(
        "recreated {} with the 4.44 keys and the old passwords",
        secrets.join(", ")
    ))
}
