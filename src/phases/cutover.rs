//! Cut-over: the point of no return and what follows it. The copy is checked to be still
//! current (the app still off, nothing written to PostgreSQL 11 since the proof), the volumes
//! are retained, the release uninstalled, the old database and Redis claims deleted (their
//! volumes stay, Released: PostgreSQL 11's is the backup until cleanup), PostgreSQL 15's volume
//! pre-bound to the new release's claim, the secrets written; `install` follows.

use std::collections::BTreeMap;
use std::time::Duration;

use super::prepare::new_database_plan;
use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::helm::argv;
use crate::plan::manifests;
use crate::plan::{ObjectRef, RetainVolume};

/// The point of no return: refuses without a proven copy (or a verified dump), checks the
/// copy is still current, shows what the next steps delete and the Sidekiq jobs Redis 7 will
/// not have (a JSON event in json mode), and asks for the typed release name (or `--yes`).
/// Asked once per run that reaches a destructive step, also when an earlier run confirmed.
pub async fn confirm(r: &mut Runner<'_>, deletes: &[ObjectRef]) -> Result<String> {
    if r.state.plan.backup.is_some() && r.state.record.backup.is_none() {
        return Err(Error::new(
            ExitCode::Precondition,
            "the dump is not verified: refusing to uninstall",
        )
        .hint(format!("run `{}` first", r.command("copy"))));
    }
    if r.state.plan.new_database.is_some() && !r.state.record.copy_verified {
        return Err(Error::new(
            ExitCode::Precondition,
            "PostgreSQL 15 is not proven equal to PostgreSQL 11: refusing to uninstall",
        )
        .hint(format!("run `{}` first", r.command("copy"))));
    }
    if !r.state.is_done("cutover.helm-uninstall") {
        still_current(r).await?;
    }
    // What the next steps delete, as it is now: a delete spares an object created again
    // under the same name meanwhile.
    let mut objects: Vec<(String, String)> = deletes
        .iter()
        .map(|d| (d.kind.clone(), d.name.clone()))
        .collect();
    if let Some(db) = &r.state.plan.new_database {
        objects.push(("Pod".into(), db.pod_name()));
        objects.push(("Service".into(), db.service.clone()));
        objects.push(("PersistentVolumeClaim".into(), db.claim.clone()));
    }
    let objects: Vec<(&str, &str)> = objects
        .iter()
        .map(|(k, n)| (k.as_str(), n.as_str()))
        .collect();
    r.record_uids(&objects).await?;
    let jobs = super::finalize::sidekiq_jobs(r).await.unwrap_or_default();
    let confirm = serde_json::json!({
        "event": "confirm",
        "deletes": deletes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "keeps": r.state.plan.keeps.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "sidekiq_jobs": jobs.iter().map(|(k, n)| serde_json::json!({"set": k, "jobs": n})).collect::<Vec<_>>(),
    });
    r.printer.event(confirm, |p| {
        p.note("The next steps delete:");
        for d in deletes {
            p.note(&format!("  - {d}"));
        }
        p.note(
            "Volumes are set to Retain first: PostgreSQL 11's stays as the backup, the attachments volume is kept and rebound.",
        );
        let waiting: Vec<String> = jobs
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        if !waiting.is_empty() {
            p.warn(&format!(
                "Sidekiq jobs waiting in Redis 6 are not carried to Redis 7 ({}); they stay on the retained Redis volume",
                waiting.join(", ")
            ));
        }
    });
    r.confirm("uninstalling the release and deleting its database claims")
        .await?;
    r.deletes_confirmed = true;
    Ok(format!("confirmed deletion of {} objects", deletes.len()))
}

/// The copy is what PostgreSQL 11 holds now: the app's Deployments still at 0 with no pod,
/// and PostgreSQL 11's write marks as the proof found them. Otherwise the copy is undone
/// and the run stops (exit 9); the next run scales down and copies anew.
async fn still_current(r: &mut Runner<'_>) -> Result<()> {
    let Some(db) = r.state.plan.new_database.clone() else {
        return Ok(());
    };
    let (deployments, selectors) = r.state.plan.scaled_down();
    let mut running = Vec::new();
    for d in &deployments {
        if let Some(dep) = r.kube.deployment(d).await? {
            let replicas = dep.spec.and_then(|s| s.replicas).unwrap_or(1);
            if replicas > 0 {
                running.push(format!("Deployment {d} has {replicas} replicas"));
            }
        }
    }
    for s in selectors.iter().filter(|s| !s.is_empty()) {
        let pods = r.kube.pods(s).await?;
        if !pods.is_empty() {
            running.push(format!("{} pods match {s}", pods.len()));
        }
    }
    let why = if !running.is_empty() {
        r.state.undo("copy.scale-down");
        Some(format!(
            "the app runs again since the copy ({})",
            running.join("; ")
        ))
    } else {
        let marks = super::copy::source_marks(r, &db).await?;
        (Some(&marks) != r.state.record.source_marks.as_ref())
            .then(|| "PostgreSQL 11 was written to since the copy was proven".to_string())
    };
    let Some(why) = why else { return Ok(()) };
    super::copy::forget_copy(r, &db).await?;
    Err(Error::new(
        ExitCode::VerificationFailed,
        format!("the copy is stale: {why}; nothing was deleted"),
    )
    .hint(format!(
        "find what scaled the app up or wrote to the database, then {}",
        r.rerun_hint_to("it scales the app down again and copies anew")
    )))
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
        r.record_uids(&[("PersistentVolume", v.volume.as_str())])
            .await?;
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
    let mut seen = Vec::new();
    for c in claims {
        seen.push((c.clone(), r.seen("PersistentVolumeClaim", c).await?));
    }
    r.kube.delete_claims(&seen).await?;
    Ok(format!("deleted claims {}", claims.join(", ")))
}

/// PostgreSQL 15 beside the old one stopped, its volume set to Retain (so deleting the
/// plugin's claim keeps it) and pre-bound to the new release's claim, which the install
/// creates: the StatefulSet starts on the copied data.
pub async fn bind_database(r: &mut Runner<'_>) -> Result<String> {
    let db = new_database_plan(r)?;
    let pod = r.seen("Pod", &db.pod_name()).await?;
    r.kube.delete_pod(&db.pod_name(), pod.as_ref()).await?;
    let service = r.seen("Service", &db.service).await?;
    r.kube.delete_service(&db.service, service.as_ref()).await?;
    let bound = r
        .kube
        .claim(&db.claim)
        .await?
        .and_then(|c| c.spec)
        .and_then(|s| s.volume_name)
        .filter(|v| !v.is_empty());
    let volume = match (bound, r.state.record.new_database_volume.clone()) {
        (Some(v), _) | (None, Some(v)) => v,
        (None, None) => {
            return Err(Error::new(
                ExitCode::Precondition,
                format!(
                    "claim {}/{} of PostgreSQL 15 is not bound to a volume",
                    r.settings.namespace, db.claim
                ),
            )
            .hint(format!(
                "see `kubectl -n {} describe pvc {}`; the old release is uninstalled but PostgreSQL 11's volume is retained",
                r.settings.namespace, db.claim
            )))
        }
    };
    r.state.record.new_database_volume = Some(volume.clone());
    r.save().await?;
    r.kube.set_reclaim_policy(&volume, "Retain").await?;
    let claim = r.seen("PersistentVolumeClaim", &db.claim).await?;
    r.kube.delete_claims(&[(db.claim.clone(), claim)]).await?;
    // The old release's claim of the same name is gone (delete-claims) before the volume is
    // reserved for it.
    let kube = r.kube.clone();
    let claim = db.release_claim.clone();
    crate::kube::wait::until(
        &format!("claim {}/{claim} to be deleted", r.settings.namespace),
        Duration::from_secs(300),
        || async { Ok(kube.claim(&claim).await?.is_none().then_some(())) },
    )
    .await?;
    r.kube.reserve_volume(&volume, &db.release_claim).await?;
    Ok(format!(
        "PostgreSQL 15 stopped; volume {volume} (Retain) reserved for claim {}/{}",
        r.settings.namespace, db.release_claim
    ))
}

/// The database Secret of the new release from the staged passwords (PostgreSQL 15 has them
/// already); the Redis Secret deleted (the chart generates a password) or, with
/// `--keep-passwords`, recreated with its old one. Each with helm's ownership metadata, so
/// the install adopts it and the charts' `lookup` keeps its data.
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
    let staged = r
        .state
        .plan
        .new_database
        .as_ref()
        .filter(|db| db.staged)
        .map(|db| (db.release_secret.clone(), db.secret.clone()));
    let saved = if keep_passwords {
        super::overrides::saved_values_data(r).await?
    } else {
        BTreeMap::new()
    };
    let mut written = Vec::new();
    let mut deleted = Vec::new();
    for s in secrets {
        let data: BTreeMap<String, Vec<u8>> = match &staged {
            Some((release_secret, staged)) if release_secret == s => r
                .kube
                .secret(staged)
                .await?
                .and_then(|v| v.data)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
            _ if keep_passwords => {
                // The uninstall deleted the chart's own Secrets: their data was saved before.
                secret_data_for_4_44(&super::values_secret::saved_passwords(&saved, s))
            }
            _ => BTreeMap::new(),
        };
        // The chart's Secret as recorded before the uninstall (or this plugin's, written by an
        // earlier attempt of this step), never one someone created since.
        let seen = r.seen("Secret", s).await?;
        r.kube.delete_secret(s, seen.as_ref()).await?;
        if data.is_empty() {
            if keep_passwords || staged.as_ref().is_some_and(|(name, _)| name == s) {
                r.note(&format!(
                    "Secret {s} was not saved before the uninstall: the new chart generates its password"
                ));
            }
            deleted.push(s.clone());
            continue;
        }
        put_adoptable_secret(r, s, data).await?;
        written.push(s.clone());
    }
    let mut parts = Vec::new();
    if !written.is_empty() {
        parts.push(format!(
            "wrote {} with the 4.44 keys and the passwords PostgreSQL 15 has{}",
            written.join(", "),
            if keep_passwords {
                " (the old ones)"
            } else {
                ""
            }
        ));
    }
    if !deleted.is_empty() {
        parts.push(format!("deleted {}", deleted.join(", ")));
    }
    Ok(parts.join("; "))
}

/// Writes Secret `name` with the release's helm ownership metadata (the install adopts it
/// and the charts' `lookup` keeps its data) and records its uid.
pub(super) async fn put_adoptable_secret(
    r: &mut Runner<'_>,
    name: &str,
    data: BTreeMap<String, Vec<u8>>,
) -> Result<()> {
    let secret = r
        .kube
        .put_secret_annotated(
            name,
            helm_adoptable_labels(&r.settings.release),
            helm_adoptable_annotations(&r.settings.release, &r.settings.namespace),
            data,
        )
        .await?;
    if let Some(uid) = secret.metadata.uid {
        r.state
            .record
            .uids
            .insert(super::uids::key("Secret", name), uid);
        r.save().await?;
    }
    Ok(())
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
