//! Uninstall: past the point of no return. The volumes are retained first, so even these
//! steps leave the old data on its volumes until cleanup.

use std::collections::BTreeMap;

use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::helm::argv;
use crate::plan::manifests;
use crate::plan::{ObjectRef, RetainVolume};

/// The point of no return: refuses without a verified backup, shows what the next steps
/// delete (a JSON event in json mode) and asks for the typed release name (or `--yes`).
/// Asked once per run that reaches a destructive step, also when an earlier run confirmed.
pub async fn confirm(r: &mut Runner<'_>, deletes: &[ObjectRef]) -> Result<String> {
    if r.state.plan.backup.is_some() && r.state.record.backup.is_none() {
        return Err(Error::new(
            ExitCode::Precondition,
            "the backup is not verified: refusing to uninstall",
        )
        .hint(format!("run `{}` first", r.command("backup"))));
    }
    if r.printer.is_json() {
        let _ = r.printer.json(&serde_json::json!({
            "event": "confirm",
            "deletes": deletes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "keeps": r.state.plan.keeps.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    } else {
        r.printer.note("The next steps delete:");
        for d in deletes {
            r.printer.note(&format!("  - {d}"));
        }
        r.printer
            .note("Volumes are set to Retain first; the attachments volume is kept and rebound.");
    }
    r.confirm("uninstalling the release and deleting its database volumes")
        .await?;
    r.deletes_confirmed = true;
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
        tokio::task::block_in_place(|| {
            r.helm.run(&argv::uninstall(
                &release,
                r.state.plan.helm_timeout_seconds,
            ))
        })?;
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
    let saved = r
        .kube
        .secret(&r.state.plan.values_secret)
        .await?
        .and_then(|v| v.data)
        .unwrap_or_default();
    let mut recreated = Vec::new();
    for s in secrets {
        // The uninstall deleted the chart's own Secrets: their data was saved at backup.
        let data: BTreeMap<String, Vec<u8>> = match r.kube.secret(s).await? {
            Some(old) => old
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
            None => {
                let prefix = super::backup::saved_password_key(s, "");
                saved
                    .iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v.0.clone())))
                    .collect()
            }
        };
        if data.is_empty() {
            r.note(&format!(
                "Secret {s} was not saved before the uninstall: the new chart generates its password"
            ));
            continue;
        }
        let new = secret_data_for_4_44(&data);
        r.kube.delete_secret(s).await?;
        r.kube
            .put_secret_annotated(
                s,
                helm_adoptable_labels(&r.settings.release),
                helm_adoptable_annotations(&r.settings.release, &r.settings.namespace),
                new,
            )
            .await?;
        recreated.push(s.clone());
    }
    Ok(format!(
        "recreated {} with the 4.44 keys and the old passwords",
        recreated.join(", ")
    ))
}

/// A chart 4.43 database Secret's data with the keys chart 4.44 reads, the passwords kept.
/// Chart 4.44 gives the app `postgres-password` as the password of its own user
/// (`auth.username`), and Bitnami 12 gives that user `password`: both must be the app's old
/// password. A separate old superuser password (`postgresql-postgres-password`) has no place
/// in 4.44, as the values translation warns. Redis keeps its key; data already in the new
/// shape stays as it is.
pub fn secret_data_for_4_44(old: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    match old.get("postgresql-password") {
        Some(pw) => BTreeMap::from([
            ("postgres-password".to_string(), pw.clone()),
            ("password".to_string(), pw.clone()),
        ]),
        None => old.clone(),
    }
}

/// Helm installs over an existing object only when it carries the release's ownership
/// metadata; the charts' `lookup` then reads the password from it.
fn helm_adoptable_labels(release: &str) -> BTreeMap<String, String> {
    let mut labels = manifests::labels(release);
    labels.insert("app.kubernetes.io/managed-by".into(), "Helm".into());
    labels
}

fn helm_adoptable_annotations(release: &str, namespace: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("meta.helm.sh/release-name".to_string(), release.to_string()),
        (
            "meta.helm.sh/release-namespace".to_string(),
            namespace.to_string(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn the_apps_old_password_goes_under_both_keys_chart_4_44_reads() {
        assert_eq!(
            secret_data_for_4_44(&data(&[("postgresql-password", "app-pw")])),
            data(&[("postgres-password", "app-pw"), ("password", "app-pw")])
        );
        // With an own user the old superuser password is not the app's: dropped.
        assert_eq!(
            secret_data_for_4_44(&data(&[
                ("postgresql-password", "app-pw"),
                ("postgresql-postgres-password", "super-pw"),
            ])),
            data(&[("postgres-password", "app-pw"), ("password", "app-pw")])
        );
        let redis = data(&[("redis-password", "r-pw")]);
        assert_eq!(secret_data_for_4_44(&redis), redis);
    }
}
