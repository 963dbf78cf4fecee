//! The cleanup plan: built from the recorded migration and what is left in the cluster.

use super::{own_names, Action, ObjectRef, Phase, Plan, Step};

/// What the operator asked cleanup to do beyond removing the backup.
#[derive(Debug, Clone, Copy, Default)]
pub struct CleanupOptions {
    pub delete_old_volumes: bool,
    pub restore_reclaim_policy: bool,
}

/// The plugin's objects for the release: the copy pod, PostgreSQL 15's pod and Service beside
/// the old one (gone since the cut-over; removed here when the migration stopped before it)
/// and, `with_claim`, its claim; the staged passwords, the dump pod and volume, and last the
/// values Secret (read until then).
pub fn plugin_objects(plan: &Plan, with_claim: bool) -> Vec<ObjectRef> {
    let ns = &plan.namespace;
    let mut objects = Vec::new();
    if let Some(db) = &plan.new_database {
        objects.push(ObjectRef::namespaced("Pod", ns, &db.copy_pod));
        objects.push(ObjectRef::namespaced("Pod", ns, &db.pod_name()));
        objects.push(ObjectRef::namespaced("Service", ns, &db.service));
        if with_claim {
            objects.push(ObjectRef::namespaced(
                "PersistentVolumeClaim",
                ns,
                &db.claim,
            ));
        }
        if db.staged {
            objects.push(ObjectRef::namespaced("Secret", ns, &db.secret));
        }
    }
    if let Some(b) = &plan.backup {
        objects.push(ObjectRef::namespaced("Pod", ns, &b.dump_pod));
        objects.push(ObjectRef::namespaced("PersistentVolumeClaim", ns, &b.claim));
    }
    objects.push(ObjectRef::namespaced(
        "Secret",
        ns,
        &own_names::values_secret(&plan.release),
    ));
    objects
}

/// Steps that remove the backup and, when asked, the old volumes. `released` are volumes the
/// migration retained that are now Released (the old PostgreSQL and Redis data).
pub fn steps(
    plan: &Plan,
    released: &[String],
    original_attachments_policy: Option<&str>,
    options: CleanupOptions,
) -> Vec<Step> {
    // PostgreSQL 15's claim beside the old one is gone since the cut-over.
    let objects = plugin_objects(plan, false);
    let mut actions = vec![(
        "remove-backup",
        "Remove the copy and dump pods, the dump volume, the staged passwords and the saved values"
            .to_string(),
        Action::RemoveBackup { objects },
    )];
    if options.delete_old_volumes {
        actions.push((
            "delete-old-volumes",
            "Delete the Released volumes of the old PostgreSQL and Redis".to_string(),
            Action::DeleteReleasedVolumes {
                volumes: released.to_vec(),
            },
        ));
    }
    if options.restore_reclaim_policy {
        if let (Some(a), Some(policy)) = (&plan.attachments, original_attachments_policy) {
            actions.push((
                "restore-reclaim-policy",
                format!("Set the attachments volume back to {policy}"),
                Action::RestoreReclaimPolicy {
                    volume: a.volume.clone(),
                    policy: policy.to_string(),
                },
            ));
        }
    }
    actions
        .into_iter()
        .map(|(name, title, action)| Step {
            id: format!("cleanup.{name}"),
            phase: Phase::Cleanup,
            destructive: true,
            commands: super::commands::for_action(plan, &action),
            title,
            action,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{build, fixtures::release_4_43, Options};

    #[test]
    fn old_volumes_are_only_deleted_when_asked() {
        let plan = build(&release_4_43(), &Options::default()).unwrap();
        let released = vec!["pvc-pg".to_string()];
        let ids = |s: Vec<Step>| s.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(
            ids(steps(
                &plan,
                &released,
                Some("Delete"),
                CleanupOptions::default()
            )),
            ["cleanup.remove-backup"]
        );
        let all = steps(
            &plan,
            &released,
            Some("Delete"),
            CleanupOptions {
                delete_old_volumes: true,
                restore_reclaim_policy: true,
            },
        );
        assert_eq!(
            ids(all.clone()),
            [
                "cleanup.remove-backup",
                "cleanup.delete-old-volumes",
                "cleanup.restore-reclaim-policy"
            ]
        );
        assert_eq!(all[1].commands, ["kubectl delete pv pvc-pg"]);
    }
}
