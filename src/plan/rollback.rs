//! The rollback plan: back to the original release from wherever the migration stopped.
//! Built from the recorded migration (its plan, the steps done and what they recorded), pure;
//! the executor (`crate::phases::rollback`) runs it like any other plan's steps.
//!
//! Before the point of no return (the release never uninstalled) undoing is small: the app
//! back to its replicas, the volumes back to their reclaim policies, the plugin's objects
//! (PostgreSQL 15 beside the old one, the copy) removed. After it, the release is installed
//! again from the original chart's archive and values, both saved when the migration started,
//! onto the retained PostgreSQL 11 and Redis volumes, with the old database Secrets as they
//! were; then PostgreSQL 11 is checked to hold what the proof found in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Action, Phase, Plan, RetainVolume, Step};
use crate::verify::DatabaseStats;

/// Key of the original chart's archive in the values Secret.
pub const CHART_KEY: &str = "original-chart.tgz";

/// Where the chart the release runs before the migration comes from, to be saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginalChart {
    /// `helm pull <chart> --version <version>`: the repository the target chart comes from.
    Pull { chart: String, version: String },
    /// A local archive beside the target chart's (`live-agent-<version>.tgz`).
    File(PathBuf),
    /// Not to be found (a chart directory, or no archive beside it).
    Unknown,
}

/// The original chart for `plan`: the same repository at the release's version, or for a
/// local archive `<name>-<version>.tgz` in the same directory.
pub fn original_chart(plan: &Plan) -> OriginalChart {
    if plan.chart_remote {
        return OriginalChart::Pull {
            chart: plan.chart.clone(),
            version: plan.from_version.clone(),
        };
    }
    let path = Path::new(&plan.chart);
    let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
        return OriginalChart::Unknown;
    };
    let Some(stem) = file.strip_suffix(".tgz") else {
        return OriginalChart::Unknown;
    };
    let name = stem
        .strip_suffix(&format!("-{}", plan.to_version))
        .unwrap_or("live-agent");
    OriginalChart::File(
        path.parent()
            .unwrap_or(Path::new("."))
            .join(format!("{name}-{}.tgz", plan.from_version)),
    )
}

/// Whether the migration went past its point of no return: its uninstall is recorded done,
/// or the release is no longer deployed on the original chart (`release`: its status and
/// chart version now, `None` when it is not installed).
pub fn past_point_of_no_return(
    plan: &Plan,
    uninstall_done: bool,
    release: Option<(&str, &str)>,
) -> bool {
    uninstall_done || !matches!(release, Some(("deployed", v)) if v == plan.from_version)
}

/// What the rollback is built from.
#[derive(Debug, Clone, Default)]
pub struct RollbackFacts {
    /// See [`past_point_of_no_return`].
    pub past_point_of_no_return: bool,
    /// Deployment -> replicas recorded before the scale-down (empty: never recorded).
    pub replicas: BTreeMap<String, i32>,
    /// Volume -> reclaim policy recorded before the migration set it to Retain.
    pub reclaim_policies: BTreeMap<String, String>,
    /// Whether the proof recorded PostgreSQL 11's fingerprint.
    pub proven: bool,
}

/// The rollback's steps for `plan`.
pub fn steps(plan: &Plan, facts: &RollbackFacts) -> Vec<Step> {
    let retained: Vec<RetainVolume> = plan
        .find_action(|a| match a {
            Action::RetainVolumes { volumes } => Some(volumes.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let deleted_claims: Vec<String> = plan
        .find_action(|a| match a {
            Action::DeleteClaims { claims } => Some(claims.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let secrets: Vec<String> = plan
        .find_action(|a| match a {
            Action::ReplaceSecrets { secrets, .. } => Some(secrets.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let mut actions: Vec<(&str, String, bool, Action)> = Vec::new();
    let replicas = (!facts.replicas.is_empty()).then(|| {
        (
            "replicas",
            "Scale the app back to its recorded replicas and wait until it is ready".to_string(),
            false,
            Action::RestoreReplicas {
                replicas: facts.replicas.clone(),
            },
        )
    });
    if facts.past_point_of_no_return {
        actions.push((
            "uninstall",
            format!(
                "Uninstall the release unless it runs chart {} already",
                plan.from_version
            ),
            true,
            Action::UninstallTarget,
        ));
        // The claims the uninstall leaves (the StatefulSets'), by the original volumes.
        let claims: Vec<RetainVolume> = retained
            .iter()
            .filter(|v| deleted_claims.contains(&v.claim))
            .cloned()
            .collect();
        if !claims.is_empty() {
            actions.push((
                "release-claims",
                "Delete the new release's database and Redis claims (their volumes are retained)"
                    .to_string(),
                true,
                Action::ReleaseClaims { claims },
            ));
        }
        if !retained.is_empty() {
            actions.push((
                "rebind-volumes",
                "Reserve PostgreSQL 11's, Redis 6's and the attachments volumes for their claims"
                    .to_string(),
                false,
                Action::RebindVolumes {
                    volumes: retained.clone(),
                },
            ));
        }
        if !secrets.is_empty() {
            actions.push((
                "secrets",
                "Write the database Secrets back as they were before the migration".to_string(),
                true,
                Action::RestoreSecrets { secrets },
            ));
        }
        actions.push((
            "install",
            format!(
                "Install chart {} again from its saved archive with the original values",
                plan.from_version
            ),
            false,
            Action::ReinstallOriginal,
        ));
        // Checked with the app still at 0: nothing writes meanwhile.
        if facts.proven && plan.new_database.is_some() {
            actions.push((
                "check-database",
                "Check, with the app at 0, that PostgreSQL 11 holds what it held at the point of no return"
                    .to_string(),
                false,
                Action::CheckOriginalDatabase,
            ));
        }
        actions.extend(undo_replication(plan));
        actions.extend(replicas);
    } else {
        actions.extend(undo_replication(plan));
        actions.extend(replicas);
    }
    let policies: BTreeMap<String, String> = facts
        .reclaim_policies
        .iter()
        .filter(|(_, p)| p.as_str() != "Retain")
        .map(|(v, p)| (v.clone(), p.clone()))
        .collect();
    if !policies.is_empty() {
        actions.push((
            "reclaim-policies",
            "Set the volumes back to their recorded reclaim policies".to_string(),
            false,
            Action::RestoreReclaimPolicies { policies },
        ));
    }
    actions.push((
        "remove",
        "Remove PostgreSQL 15 beside the old one, the copy, the staged passwords and the saved values"
            .to_string(),
        true,
        Action::RemoveBackup {
            objects: super::cleanup::plugin_objects(plan, true),
        },
    ));
    actions
        .into_iter()
        .map(|(name, title, destructive, action)| Step {
            id: format!("rollback.{name}"),
            phase: Phase::Rollback,
            destructive,
            commands: super::commands::for_action(plan, &action),
            title,
            action,
        })
        .collect()
}

/// Online: PostgreSQL 11 as it was before the replication (no slot, no publication, default
/// replica identities, its `wal_level`).
fn undo_replication(plan: &Plan) -> Option<(&'static str, String, bool, Action)> {
    let online = plan.online.as_ref()?;
    let mut title =
        "Drop the replication slot and publication on PostgreSQL 11, replica identities back"
            .to_string();
    if online.restart_for_wal_level {
        title.push_str(&format!(
            ", wal_level back to {} (PostgreSQL 11 restarted)",
            online.wal_level_before
        ));
    }
    Some(("replication", title, false, Action::UndoReplication))
}

/// A table whose row count on PostgreSQL 15 differs from what the copy put there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedTable {
    pub table: String,
    pub at_cutover: u64,
    pub now: u64,
}

impl std::fmt::Display for ChangedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let delta = self.now as i128 - self.at_cutover as i128;
        write!(
            f,
            "{}: {delta:+} rows ({} at the point of no return, {} now)",
            self.table, self.at_cutover, self.now
        )
    }
}

/// What the 4.44 app wrote to PostgreSQL 15 since the point of no return, by table (rows
/// counted): what a rollback to PostgreSQL 11 does not take back. Tables created since count
/// from 0.
pub fn changed_since_cutover(at_cutover: &DatabaseStats, now: &DatabaseStats) -> Vec<ChangedTable> {
    now.tables
        .iter()
        .filter_map(|(table, stats)| {
            let before = at_cutover.tables.get(table).map_or(0, |t| t.rows);
            (before != stats.rows).then(|| ChangedTable {
                table: table.clone(),
                at_cutover: before,
                now: stats.rows,
            })
        })
        .collect()
}

/// Commands an operator would run for a rollback step.
pub fn commands(plan: &Plan, action: &Action) -> Vec<String> {
    let release = &plan.release;
    let ns = &plan.namespace;
    let kubectl = |rest: &str| format!("kubectl -n {ns} {rest}");
    let policy = |volume: &str, policy: &str| {
        format!(
            "kubectl patch pv {volume} -p '{{\"spec\":{{\"persistentVolumeReclaimPolicy\":\"{policy}\"}}}}'"
        )
    };
    match action {
        Action::RestoreReplicas { replicas } => replicas
            .iter()
            .map(|(d, n)| kubectl(&format!("scale deployment {d} --replicas {n}")))
            .chain(
                replicas
                    .keys()
                    .map(|d| kubectl(&format!("rollout status deployment {d}"))),
            )
            .collect(),
        Action::RestoreReclaimPolicies { policies } => {
            policies.iter().map(|(v, p)| policy(v, p)).collect()
        }
        Action::UninstallTarget => vec![format!(
            "helm uninstall {release} -n {ns} --wait --timeout {}s  # unless it runs chart {}",
            plan.helm_timeout_seconds, plan.from_version
        )],
        Action::ReleaseClaims { claims } => claims
            .iter()
            .flat_map(|c| {
                [
                    format!(
                        "PV=$({})  # unless it is {}",
                        kubectl(&format!(
                            "get pvc {} -o jsonpath='{{.spec.volumeName}}'",
                            c.claim
                        )),
                        c.volume
                    ),
                    policy("$PV", "Retain"),
                    kubectl(&format!("delete pvc {} --wait", c.claim)),
                ]
            })
            .collect(),
        Action::RebindVolumes { volumes } => volumes
            .iter()
            .map(|v| {
                format!(
                    "kubectl patch pv {} --type merge -p '{{\"spec\":{{\"claimRef\":{{\"namespace\":\"{ns}\",\"name\":\"{}\",\"uid\":null,\"resourceVersion\":null}}}}}}'",
                    v.volume, v.claim
                )
            })
            .collect(),
        Action::RestoreSecrets { secrets } => secrets
            .iter()
            .map(|s| {
                format!(
                    "{}  # the data saved in Secret {}, with helm's ownership labels",
                    kubectl(&format!("apply -f {s}.yaml")),
                    plan.values_secret
                )
            })
            .collect(),
        Action::ReinstallOriginal => vec![
            format!(
                "{} | base64 -d > live-agent-{}.tgz",
                kubectl(&format!(
                    "get secret {} -o jsonpath='{{.data.original-chart\\.tgz}}'",
                    plan.values_secret
                )),
                plan.from_version
            ),
            format!(
                "{} | base64 -d > original-values.yaml",
                kubectl(&format!(
                    "get secret {} -o jsonpath='{{.data.original\\.yaml}}'",
                    plan.values_secret
                ))
            ),
            format!(
                "helm install {release} live-agent-{}.tgz -n {ns} -f original-values.yaml --timeout {}s",
                plan.from_version, plan.helm_timeout_seconds
            ),
        ],
        Action::CheckOriginalDatabase => vec![format!(
            "{}  # every table's rows and content as the proof found them",
            kubectl(&format!(
                "exec {release}-postgresql-0 -- {}",
                super::scripts::argv_line(&super::scripts::in_postgres_pod(
                    &super::scripts::fingerprint(crate::verify::HashMethod::CURRENT)
                ))
            ))
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::own_names;
    use crate::plan::{build, fixtures::release_4_43, Options};
    use crate::verify::TableStats;

    fn plan() -> Plan {
        build(&release_4_43(), &Options::default()).unwrap()
    }

    fn ids(steps: &[Step]) -> Vec<&str> {
        steps.iter().map(|s| s.id.as_str()).collect()
    }

    fn facts(past: bool) -> RollbackFacts {
        RollbackFacts {
            past_point_of_no_return: past,
            replicas: BTreeMap::from([("cognigy-live-agent-app".to_string(), 2)]),
            reclaim_policies: BTreeMap::from([
                ("pv-db".to_string(), "Delete".to_string()),
                ("pv-files".to_string(), "Retain".to_string()),
            ]),
            proven: true,
        }
    }

    #[test]
    fn before_the_point_of_no_return_the_app_comes_back_and_the_plugins_objects_go() {
        let plan = plan();
        let steps = steps(&plan, &facts(false));
        assert_eq!(
            ids(&steps),
            [
                "rollback.replicas",
                "rollback.reclaim-policies",
                "rollback.remove"
            ]
        );
        assert!(steps.iter().all(|s| s.phase == Phase::Rollback));
        // Only policies that were changed are set back.
        assert_eq!(
            steps[1].action,
            Action::RestoreReclaimPolicies {
                policies: BTreeMap::from([("pv-db".to_string(), "Delete".to_string())])
            }
        );
        let Action::RemoveBackup { objects } = &steps[2].action else {
            panic!("remove removes objects")
        };
        let names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
        let db = plan.new_database.as_ref().unwrap();
        assert!(names.contains(&db.claim.as_str()), "{names:?}");
        assert_eq!(
            names.last(),
            Some(&own_names::values_secret(&plan.release).as_str()),
            "the values Secret goes last: the rollback reads it until then"
        );
        // Nothing of the release itself is removed.
        assert!(objects.iter().all(|o| o.name.starts_with("la-migrate-")));
    }

    #[test]
    fn after_it_the_original_chart_is_installed_on_the_original_volumes_and_checked() {
        let plan = plan();
        let steps = steps(&plan, &facts(true));
        assert_eq!(
            ids(&steps),
            [
                "rollback.uninstall",
                "rollback.release-claims",
                "rollback.rebind-volumes",
                "rollback.secrets",
                "rollback.install",
                "rollback.check-database",
                "rollback.replicas",
                "rollback.reclaim-policies",
                "rollback.remove"
            ]
        );
        let destructive: Vec<&str> = steps
            .iter()
            .filter(|s| s.destructive)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(
            destructive,
            [
                "rollback.uninstall",
                "rollback.release-claims",
                "rollback.secrets",
                "rollback.remove"
            ]
        );
        assert!(
            steps.iter().all(|s| !s.commands.is_empty()),
            "every step says how"
        );
        // No proof recorded (the dump path): nothing to check against.
        let unproven = RollbackFacts {
            proven: false,
            ..facts(true)
        };
        assert!(!ids(&super::steps(&plan, &unproven)).contains(&"rollback.check-database"));
    }

    #[test]
    fn the_point_of_no_return_is_the_uninstall_or_a_release_not_on_the_original_chart() {
        let plan = plan();
        let from = plan.from_version.clone();
        assert!(!past_point_of_no_return(
            &plan,
            false,
            Some(("deployed", &from))
        ));
        assert!(past_point_of_no_return(
            &plan,
            true,
            Some(("deployed", &from))
        ));
        assert!(past_point_of_no_return(&plan, false, None));
        assert!(past_point_of_no_return(
            &plan,
            false,
            Some(("uninstalling", &from))
        ));
        assert!(past_point_of_no_return(
            &plan,
            false,
            Some(("deployed", &plan.to_version))
        ));
    }

    #[test]
    fn the_original_chart_comes_from_the_same_repository_or_beside_the_local_archive() {
        let mut plan = plan();
        plan.chart_remote = true;
        plan.chart = "oci://registry.example/helm/live-agent".into();
        assert_eq!(
            original_chart(&plan),
            OriginalChart::Pull {
                chart: plan.chart.clone(),
                version: plan.from_version.clone()
            }
        );
        plan.chart_remote = false;
        plan.chart = format!("/charts/live-agent-{}.tgz", plan.to_version);
        assert_eq!(
            original_chart(&plan),
            OriginalChart::File(PathBuf::from(format!(
                "/charts/live-agent-{}.tgz",
                plan.from_version
            )))
        );
        plan.chart = "/charts/live-agent".into();
        assert_eq!(original_chart(&plan), OriginalChart::Unknown);
    }

    #[test]
    fn rows_written_since_the_cutover_are_counted_per_table() {
        let stats = |pairs: &[(&str, u64)]| DatabaseStats {
            tables: pairs
                .iter()
                .map(|(t, rows)| {
                    (
                        t.to_string(),
                        TableStats {
                            rows: *rows,
                            hash: "0".into(),
                        },
                    )
                })
                .collect(),
            ..DatabaseStats::default()
        };
        let at = stats(&[("public.messages", 10), ("public.users", 3)]);
        let now = stats(&[
            ("public.messages", 14),
            ("public.users", 3),
            ("public.new", 1),
        ]);
        let changed = changed_since_cutover(&at, &now);
        assert_eq!(
            changed.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "public.messages: +4 rows (10 at the point of no return, 14 now)",
                "public.new: +1 rows (0 at the point of no return, 1 now)"
            ]
        );
        assert!(changed_since_cutover(&at, &at).is_empty());
    }
}
