//! Cleanup (separate, confirmed): the plugin's pods, the dump volume, the staged passwords
//! and saved values; the old database volumes left Released (PostgreSQL 11's is the backup
//! until then); optionally the attachments volume's original reclaim policy.

use super::Runner;
use crate::error::Result;
use crate::plan::ObjectRef;

pub async fn remove_backup(r: &mut Runner<'_>, objects: &[ObjectRef]) -> Result<String> {
    // A rollback confirmed this run already, before its first destructive step.
    if !r.deletes_confirmed {
        r.confirm("deleting the plugin's pods, the dump volume and the saved values")
            .await?;
    }
    for o in objects {
        // The plugin's own objects; one whose uid was recorded goes only as recorded.
        let seen = r.recorded(&o.kind, &o.name);
        match o.kind.as_str() {
            "Pod" => r.kube.delete_pod(&o.name, seen.as_ref()).await?,
            "PersistentVolumeClaim" => r.kube.delete_claims(&[(o.name.clone(), seen)]).await?,
            "Secret" => r.kube.delete_secret(&o.name, seen.as_ref()).await?,
            "Service" => r.kube.delete_service(&o.name, seen.as_ref()).await?,
            _ => {}
        }
    }
    // Gone, not terminating: a migration started next creates them anew under these names.
    for o in objects {
        let kube = r.kube.clone();
        crate::kube::wait::until(
            &format!("{} {} to be deleted", o.kind, o.name),
            std::time::Duration::from_secs(300),
            || async {
                let exists = match o.kind.as_str() {
                    "Pod" => kube.pod(&o.name).await?.is_some(),
                    "PersistentVolumeClaim" => kube.claim(&o.name).await?.is_some(),
                    "Secret" => kube.secret(&o.name).await?.is_some(),
                    "Service" => kube.service(&o.name).await?.is_some(),
                    _ => false,
                };
                Ok((!exists).then_some(()))
            },
        )
        .await?;
    }
    Ok(format!("removed {} objects", objects.len()))
}

pub async fn delete_released(r: &mut Runner<'_>, volumes: &[String]) -> Result<String> {
    if volumes.is_empty() {
        return Ok("no Released volumes of the old PostgreSQL or Redis".to_string());
    }
    r.confirm(&format!("deleting the volumes {}", volumes.join(", ")))
        .await?;
    for v in volumes {
        // The volume the cut-over retained, not one created under its name since.
        let seen = r.seen("PersistentVolume", v).await?;
        r.kube.delete_volume(v, seen.as_ref()).await?;
    }
    Ok(format!("deleted volumes {}", volumes.join(", ")))
}

pub async fn restore_policy(r: &mut Runner<'_>, volume: &str, policy: &str) -> Result<String> {
    r.kube.set_reclaim_policy(volume, policy).await?;
    Ok(format!("volume {volume} back to {policy}"))
}
