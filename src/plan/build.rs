//! Facts + options -> plan. Every refusal preflight can give is decided here, before anything
//! changes, so a failed preflight leaves the cluster as it was.

use crate::error::{Error, Result};
use crate::exit::ExitCode;

use super::commands;
use super::facts::{Facts, PostgresFacts, RedisFacts, SecretRole, VolumeRole};
use super::options::{Options, MIN_BACKUP_BYTES};
use super::own_names;
use super::quantity::human;
use super::{Action, BackupPlan, DbEndpoint, ObjectRef, Phase, Plan, RetainVolume, Step};
use crate::settings::is_target_version;

/// Builds the migration plan, or says why the migration cannot start.
pub fn build(facts: &Facts, options: &Options) -> Result<Plan> {
    check_release(facts)?;
    let to_version = check_target(facts)?;
    check_permissions(facts)?;
    let backup = backup_plan(facts, options)?;
    let ns = facts.namespace.clone();
    let release = facts.release.name.clone();
    let names = &facts.names;

    let mut warnings = facts.values_notes.clone();
    warnings.extend(image_warnings(&facts.target.images));
    let attachments = facts
        .volumes
        .iter()
        .find(|v| v.role == VolumeRole::Attachments);
    let attachments_retain = attachments.and_then(|v| {
        v.volume.as_ref().map(|pv| RetainVolume {
            volume: pv.clone(),
            claim: v.claim.clone(),
            policy: v.reclaim_policy.clone().unwrap_or_else(|| "Delete".into()),
        })
    });
    match attachments {
        None => warnings.push(format!(
            "no claim {:?} was found: attachments are not on a volume of this release (CDN storage?), nothing to keep",
            names.attachments_claim
        )),
        Some(v) if v.volume.is_none() => warnings.push(format!(
            "claim {:?} is not bound to a volume; there are no attachments to keep",
            v.claim
        )),
        Some(_) => {}
    }

    let mut workloads = facts.workloads.clone();
    workloads.sort_by_key(|w| w.role);
    let deployments: Vec<String> = workloads.iter().map(|w| w.name.clone()).collect();

    // What the point of no return deletes.
    let mut deletes = vec![ObjectRef::namespaced("HelmRelease", &ns, &release)];
    let mut claims = Vec::new();
    if matches!(facts.postgres, PostgresFacts::Internal { .. }) {
        claims.push(names.postgres_claim.clone());
    }
    if let RedisFacts::Internal { claims: c, .. } = &facts.redis {
        claims.extend(c.iter().cloned());
    }
    let existing_claims: Vec<String> = claims
        .iter()
        .filter(|c| facts.volumes.iter().any(|v| &v.claim == *c))
        .cloned()
        .collect();
    deletes.extend(
        existing_claims
            .iter()
            .map(|c| ObjectRef::namespaced("PersistentVolumeClaim", &ns, c)),
    );
    let mut secrets = Vec::new();
    if let PostgresFacts::Internal {
        existing_secret: false,
        ..
    } = &facts.postgres
    {
        secrets.push(names.postgres_secret.clone());
    }
    if let RedisFacts::Internal {
        existing_secret: false,
        ..
    } = &facts.redis
    {
        secrets.push(names.redis_secret.clone());
    }
    deletes.extend(
        secrets
            .iter()
            .filter(|s| facts.secrets.iter().any(|f| &f.name == *s))
            .map(|s| ObjectRef::namespaced("Secret", &ns, s)),
    );
    let keeps: Vec<ObjectRef> = facts
        .secrets
        .iter()
        .filter(|s| s.role == SecretRole::Kept)
        .map(|s| ObjectRef::namespaced("Secret", &ns, &s.name))
        .chain(
            attachments_retain
                .iter()
                .map(|a| ObjectRef::cluster("PersistentVolume", &a.volume)),
        )
        .collect();

    let retain: Vec<RetainVolume> = facts
        .volumes
        .iter()
        .filter_map(|v| {
            let pv = v.volume.as_ref()?;
            Some(RetainVolume {
                volume: pv.clone(),
                claim: v.claim.clone(),
                policy: v.reclaim_policy.clone().unwrap_or_else(|| "Delete".into()),
            })
        })
        .collect();

    let mut steps: Vec<(Phase, &str, &str, bool, Action)> = Vec::new();
    let mut push = |phase, name, title, destructive, action| {
        steps.push((phase, name, title, destructive, action))
    };
    push(
        Phase::Backup,
        "save-values",
        "Save the release's values and their 4.44 translation in the cluster",
        false,
        Action::SaveValues {
            secret: own_names::values_secret(&release),
        },
    );
    push(
        Phase::Backup,
        "record-replicas",
        "Record the replica counts of app, worker and odata",
        false,
        Action::RecordReplicas {
            deployments: deployments.clone(),
        },
    );
    // The backup volume and the dump pod are ready before the app goes offline: a class that
    // cannot provision or an image that cannot be pulled stops the run with the app still up.
    if backup.is_some() {
        push(
            Phase::Backup,
            "volume",
            "Create the backup volume and the dump pod (PostgreSQL 15 client tools)",
            false,
            Action::BackupVolume,
        );
    }
    push(
        Phase::Backup,
        "scale-down",
        "Scale app, worker and odata to 0 and wait until their pods are gone",
        false,
        Action::ScaleDown {
            deployments: deployments.clone(),
            selectors: workloads.iter().map(|w| w.selector.clone()).collect(),
        },
    );
    if backup.is_some() {
        push(
            Phase::Backup,
            "dump",
            "Dump the database to the backup volume, detached from this session",
            false,
            Action::Dump,
        );
        push(
            Phase::Backup,
            "verify",
            "Verify the archive and record row counts, content hashes and the schema version of the source",
            false,
            Action::VerifyBackup,
        );
        if let Some(path) = &options.local_copy {
            push(
                Phase::Backup,
                "local-copy",
                "Copy the archive to this machine",
                false,
                Action::LocalCopy {
                    path: path.display().to_string(),
                },
            );
        }
    }
    push(
        Phase::Uninstall,
        "confirm",
        "Point of no return: confirm what will be deleted",
        false,
        Action::Confirm {
            deletes: deletes.clone(),
        },
    );
    if !retain.is_empty() {
        push(
            Phase::Uninstall,
            "retain-volumes",
            "Set the release's volumes to Retain (the old policies are recorded)",
            false,
            Action::RetainVolumes {
                volumes: retain.clone(),
            },
        );
    }
    push(
        Phase::Uninstall,
        "helm-uninstall",
        "Uninstall the release",
        true,
        Action::HelmUninstall,
    );
    if let Some(a) = &attachments_retain {
        push(
            Phase::Uninstall,
            "rebind-attachments",
            "Reserve the attachments volume for the claim the new chart creates",
            false,
            Action::RebindAttachments {
                volume: a.volume.clone(),
                claim: a.claim.clone(),
            },
        );
    }
    if !claims.is_empty() {
        push(
            Phase::Uninstall,
            "delete-claims",
            "Delete the PostgreSQL 11 and Redis 6 claims (their volumes are retained)",
            true,
            Action::DeleteClaims {
                claims: claims.clone(),
            },
        );
    }
    if !secrets.is_empty() {
        push(
            Phase::Uninstall,
            "secrets",
            if options.keep_passwords {
                "Recreate the database secrets with the 4.44 keys and the old passwords"
            } else {
                "Delete the old database secrets (the new chart generates new ones)"
            },
            true,
            Action::ReplaceSecrets {
                secrets: secrets.clone(),
                keep_passwords: options.keep_passwords,
            },
        );
    }
    push(
        Phase::Install,
        "helm-install",
        "Install the target chart with app and worker at 0, odata and migration off",
        false,
        Action::HelmInstall,
    );
    let mut db_pods = Vec::new();
    if matches!(facts.postgres, PostgresFacts::Internal { .. }) {
        db_pods.push(names.postgres_pod.clone());
    }
    if matches!(facts.redis, RedisFacts::Internal { .. }) {
        db_pods.push(names.redis_master_pod.clone());
    }
    if !db_pods.is_empty() {
        push(
            Phase::Install,
            "wait-databases",
            "Wait until PostgreSQL 15 and Redis 7 are ready",
            false,
            Action::WaitDatabases { pods: db_pods },
        );
    }
    if backup.is_some() {
        push(
            Phase::Restore,
            "restore",
            "Restore the archive into a fresh database, stopping on the first error",
            false,
            Action::Restore,
        );
        push(
            Phase::Restore,
            "verify",
            "Compare every table's row count and content hash and the schema version with the backup's record",
            false,
            Action::VerifyRestore,
        );
    }
    push(
        Phase::Upgrade,
        "helm-upgrade",
        "Upgrade with the migration on, replicas and odata back as recorded",
        false,
        Action::HelmUpgrade,
    );
    let mut new_deployments = vec![
        names.new_app_deployment.clone(),
        names.worker_deployment.clone(),
    ];
    if facts.odata_enabled {
        new_deployments.push(names.odata_deployment.clone());
    }
    push(
        Phase::Upgrade,
        "wait-app",
        "Wait until the app, worker and odata are ready",
        false,
        Action::WaitApp {
            deployments: new_deployments,
        },
    );
    if matches!(facts.redis, RedisFacts::Internal { .. }) {
        push(
            Phase::Finalize,
            "clear-onboarding",
            "Remove the first-run onboarding flag from Redis",
            false,
            Action::ClearOnboarding {
                pod: names.redis_master_pod.clone(),
                host: names.redis_master_service.clone(),
            },
        );
    } else {
        warnings.push(format!(
            "Redis is external: remove the onboarding flag by hand if the onboarding screen shows (redis-cli DEL {})",
            commands::ONBOARDING_KEY
        ));
    }
    push(
        Phase::Verify,
        "report",
        "Check deployments, the attachments volume and the row counts",
        false,
        Action::Verify,
    );

    let mut plan = Plan {
        release: release.clone(),
        namespace: ns,
        from_version: facts.release.chart_version.clone(),
        to_version,
        chart: facts.target.chart.clone(),
        chart_remote: facts.target.remote,
        database: match facts.postgres {
            PostgresFacts::Internal { .. } => "internal".into(),
            PostgresFacts::External { .. } => "external".into(),
        },
        backup,
        replicas: workloads,
        odata_enabled: facts.odata_enabled,
        attachments: attachments_retain,
        deletes,
        keeps,
        values_secret: own_names::values_secret(&release),
        state_config_map: own_names::state(&release),
        images: facts.target.images.clone(),
        overrides: commands::override_args(
            &options
                .values_overrides
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>(),
            &options.set,
        ),
        helm_timeout_seconds: options.helm_timeout_seconds,
        recorded_flags: Default::default(),
        warnings,
        steps: Vec::new(),
    };
    plan.steps = steps
        .into_iter()
        .map(|(phase, name, title, destructive, action)| Step {
            id: format!("{}.{name}", phase.name()),
            phase,
            title: title.to_string(),
            destructive,
            commands: commands::for_action(&plan, &action),
            action,
        })
        .collect();
    Ok(plan)
}

fn version_tuple(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim_start_matches('v').split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn check_release(facts: &Facts) -> Result<()> {
    let r = &facts.release;
    let ns = &facts.namespace;
    if r.status != "deployed" {
        return Err(Error::new(
            ExitCode::Precondition,
            format!(
                "release {:?} in namespace {ns:?} is {}, not deployed",
                r.name, r.status
            ),
        )
        .hint(format!(
            "bring it to a deployed state first (`helm history {} -n {ns}`, `helm rollback`), then run again",
            r.name
        )));
    }
    match version_tuple(&r.chart_version) {
        Some((4, minor)) if minor < 44 => Ok(()),
        _ => Err(Error::new(
            ExitCode::Precondition,
            format!(
                "release {:?} runs chart {}, not a chart before 4.44: there is nothing to migrate",
                r.name, r.chart_version
            ),
        )
        .hint(format!(
            "`{}` shows a migration in progress; a release already on 4.44 is upgraded with `helm upgrade`",
            crate::hint::command(&r.name, ns, "status")
        ))),
    }
}

/// The version the migration installs: the chart's own. A local chart's version decides
/// unless `--version` says otherwise; the chart must be a 4.44+ chart whose PostgreSQL
/// subchart runs PostgreSQL 15 (Bitnami postgresql 12 or later).
fn check_target(facts: &Facts) -> Result<String> {
    let t = &facts.target;
    let version = if t.chart_version.is_empty() {
        t.version.clone()
    } else {
        t.chart_version.clone()
    };
    if t.version_given && version != t.version {
        return Err(Error::new(
            ExitCode::InvalidInput,
            format!(
                "--version {} was given, but the chart {} is version {version}",
                t.version, t.chart
            ),
        )
        .hint(format!(
            "pass the chart of version {} with --chart, or drop --version (a local chart's own version is used)",
            t.version
        )));
    }
    if !is_target_version(&version) {
        return Err(Error::new(
            ExitCode::InvalidInput,
            format!(
                "the chart {} is version {version}, not a 4.44 or later 4.x chart: it does not bring PostgreSQL 15 and Redis 7",
                t.chart
            ),
        )
        .hint("pass the 4.44 chart with --chart (a local .tgz, a directory or the OCI reference with --version 4.44.0)"));
    }
    let postgres_major = t
        .postgresql_subchart
        .as_deref()
        .and_then(|v| v.trim_start_matches(['~', '^', '=', 'v']).split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    if matches!(facts.postgres, PostgresFacts::Internal { .. })
        && postgres_major.is_some_and(|m| m < 12)
    {
        return Err(Error::new(
            ExitCode::InvalidInput,
            format!(
                "the chart {} (version {version}) brings Bitnami postgresql {}, which runs PostgreSQL 11, not 15",
                t.chart,
                t.postgresql_subchart.as_deref().unwrap_or("?")
            ),
        )
        .hint("pass the 4.44 chart with --chart"));
    }
    Ok(version)
}

fn check_permissions(facts: &Facts) -> Result<()> {
    let missing: Vec<String> = facts
        .permissions
        .iter()
        .filter(|p| !p.allowed)
        .map(|p| {
            let resource = if p.group.is_empty() {
                p.resource.clone()
            } else {
                format!("{}.{}", p.resource, p.group)
            };
            if p.namespaced {
                format!("{} {resource} in namespace {}", p.verb, facts.namespace)
            } else {
                format!("{} {resource} (cluster-wide)", p.verb)
            }
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ExitCode::PermissionDenied,
        format!(
            "the current Kubernetes identity may not: {}",
            missing.join("; ")
        ),
    )
    .hint("ask a cluster admin for these permissions (check with `kubectl auth can-i <verb> <resource>`), then run again"))
}

fn backup_plan(facts: &Facts, options: &Options) -> Result<Option<BackupPlan>> {
    let PostgresFacts::Internal {
        secret,
        password_key,
        existing_secret,
        username,
        database,
        size_bytes,
        ..
    } = &facts.postgres
    else {
        return Ok(None);
    };
    if options.backup_size_factor.is_nan() || options.backup_size_factor < 1.0 {
        return Err(Error::new(
            ExitCode::Usage,
            format!(
                "--backup-size-factor {} is below 1: the dump would not fit",
                options.backup_size_factor
            ),
        )
        .hint("pass a factor of at least 1 (default 3)"));
    }
    let class = match &options.backup_storage_class {
        Some(c) if facts.storage.classes.iter().any(|k| k == c) => c.clone(),
        Some(c) => {
            return Err(Error::new(
                ExitCode::NotFound,
                format!("storage class {c:?} (from --backup-storage-class) does not exist"),
            )
            .hint(format!(
                "pick one of: {} (`kubectl get storageclass`)",
                facts.storage.classes.join(", ")
            )))
        }
        None => facts.storage.default_class.clone().ok_or_else(|| {
            Error::new(
                ExitCode::Precondition,
                "the cluster has no default storage class for the backup volume",
            )
            .hint("pass --backup-storage-class <class> (`kubectl get storageclass` lists them)")
        })?,
    };
    let wanted = ((*size_bytes as f64) * options.backup_size_factor).ceil() as u64;
    let size = wanted.max(MIN_BACKUP_BYTES).div_ceil(1 << 30) * (1 << 30);
    for quota in &facts.storage.quotas {
        if quota.storage_class.as_ref().is_some_and(|c| c != &class) {
            continue;
        }
        let room = quota.hard_bytes.saturating_sub(quota.used_bytes);
        if room < size {
            return Err(Error::new(
                ExitCode::Precondition,
                format!(
                    "too little backup space: the backup volume needs {} ({}x the database's {}), but ResourceQuota {:?} in namespace {:?} leaves {}",
                    human(size),
                    options.backup_size_factor,
                    human(*size_bytes),
                    quota.name,
                    facts.namespace,
                    human(room)
                ),
            )
            .hint("raise the quota, free storage in the namespace, or pass a smaller --backup-size-factor; then run again"));
        }
    }
    let names = &facts.names;
    let release = &facts.release.name;
    Ok(Some(BackupPlan {
        claim: own_names::backup_claim(release),
        dump_pod: own_names::dump_pod(release),
        restore_pod: own_names::restore_pod(release),
        storage_class: Some(class),
        size_bytes: size,
        image: options.backup_image.clone(),
        jobs: options.jobs.max(1),
        resources: options.tools_resources.clone(),
        source: DbEndpoint {
            host: names.postgres_service.clone(),
            port: 5432,
            user: username.clone(),
            database: database.clone(),
            secret: secret.clone(),
            key: password_key.clone(),
        },
        target: DbEndpoint {
            host: names.postgres_service.clone(),
            port: 5432,
            // The 4.44 chart's Secret holds the `postgres` superuser's password under this
            // key; restoring as superuser lets the restore recreate the database.
            user: "postgres".into(),
            database: database.clone(),
            // A user's own Secret stays; its key is translated to `adminPasswordKey`.
            secret: if *existing_secret {
                secret.clone()
            } else {
                names.postgres_secret.clone()
            },
            key: if *existing_secret {
                password_key.clone()
            } else {
                "postgres-password".into()
            },
        },
    }))
}

fn image_warnings(images: &[String]) -> Vec<String> {
    images
        .iter()
        .filter(|i| i.starts_with("docker.io/bitnami/") || i.starts_with("bitnami/"))
        .map(|i| {
            let name = i
                .rsplit('/')
                .next()
                .and_then(|n| n.split([':', '@']).next())
                .unwrap_or("");
            // The subchart whose `image.repository` pulls it; other Bitnami images (e.g. an
            // init container's) are set where the chart says.
            let example = match name {
                "postgresql" | "redis" => format!(
                    " (e.g. --set {name}.image.repository=bitnamilegacy/{name}, or in a -f file)"
                ),
                _ => String::new(),
            };
            format!(
                "image {i} is from docker.io/bitnami, which moved its versioned images to docker.io/bitnamilegacy in 2025: override it{example}"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::facts::{PermissionFacts, QuotaFacts};
    use crate::plan::fixtures::release_4_43;
    use crate::plan::runbook;

    fn ids(plan: &Plan) -> Vec<&str> {
        plan.steps.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn an_internal_database_gets_the_full_plan() {
        let plan = build(&release_4_43(), &Options::default()).unwrap();
        assert_eq!(
            ids(&plan),
            [
                "backup.save-values",
                "backup.record-replicas",
                "backup.volume",
                "backup.scale-down",
                "backup.dump",
                "backup.verify",
                "uninstall.confirm",
                "uninstall.retain-volumes",
                "uninstall.helm-uninstall",
                "uninstall.rebind-attachments",
                "uninstall.delete-claims",
                "uninstall.secrets",
                "install.helm-install",
                "install.wait-databases",
                "restore.restore",
                "restore.verify",
                "upgrade.helm-upgrade",
                "upgrade.wait-app",
                "finalize.clear-onboarding",
                "verify.report",
            ]
        );
        let backup = plan.backup.as_ref().unwrap();
        // 700 MiB x 3 rounds up to whole GiB.
        assert_eq!(backup.size_bytes, 3 << 30);
        assert_eq!(backup.storage_class.as_deref(), Some("standard"));
    }

    #[test]
    fn a_local_charts_own_version_is_the_target_unless_version_says_otherwise() {
        let mut facts = release_4_43();
        facts.target.remote = false;
        facts.target.chart = "/charts/live-agent-4.45.0.tgz".into();
        facts.target.chart_version = "4.45.0".into();
        let plan = build(&facts, &Options::default()).unwrap();
        assert_eq!(plan.to_version, "4.45.0");

        facts.target.version_given = true;
        let err = build(&facts, &Options::default()).unwrap_err();
        assert_eq!(err.code, ExitCode::InvalidInput);
        assert!(
            err.message
                .contains("--version 4.44.0 was given, but the chart /charts/live-agent-4.45.0.tgz is version 4.45.0"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_chart_before_4_44_or_with_postgresql_11_is_no_target() {
        let mut facts = release_4_43();
        facts.target.chart_version = "4.43.1".into();
        let err = build(&facts, &Options::default()).unwrap_err();
        assert!(
            err.message
                .contains("is version 4.43.1, not a 4.44 or later"),
            "{}",
            err.message
        );

        let mut facts = release_4_43();
        facts.target.postgresql_subchart = Some("10.16.2".into());
        let err = build(&facts, &Options::default()).unwrap_err();
        assert!(
            err.message.contains("brings Bitnami postgresql 10.16.2"),
            "{}",
            err.message
        );
        // An external database does not care which PostgreSQL the chart bundles.
        facts.postgres = PostgresFacts::External {
            host: "db".into(),
            port: 5432,
        };
        assert!(build(&facts, &Options::default()).is_ok());
    }

    #[test]
    fn the_runbook_shows_every_step_with_its_commands() {
        let plan = build(&release_4_43(), &Options::default()).unwrap();
        insta::assert_snapshot!(runbook::render(&plan));
    }

    #[test]
    fn the_plan_as_json_is_stable() {
        let plan = build(&release_4_43(), &Options::default()).unwrap();
        let mut json = serde_json::to_value(&plan).unwrap();
        // The commands are covered by the runbook snapshot.
        for step in json["steps"].as_array_mut().unwrap() {
            step.as_object_mut().unwrap().remove("commands");
        }
        insta::assert_yaml_snapshot!(json);
    }

    #[test]
    fn an_external_database_skips_the_data_phases() {
        let mut facts = release_4_43();
        facts.postgres = PostgresFacts::External {
            host: "pg.example.internal".into(),
            port: 5432,
        };
        facts.volumes.retain(|v| v.role != VolumeRole::Postgres);
        facts.secrets.retain(|s| s.role != SecretRole::Postgres);
        let plan = build(&facts, &Options::default()).unwrap();
        assert!(plan.backup.is_none());
        let ids = ids(&plan);
        for absent in [
            "backup.dump",
            "backup.verify",
            "restore.restore",
            "restore.verify",
        ] {
            assert!(!ids.contains(&absent), "{absent} in {ids:?}");
        }
        assert!(ids.contains(&"uninstall.helm-uninstall"));
        let deleted: Vec<String> = plan.deletes.iter().map(|d| d.name.clone()).collect();
        assert!(
            !deleted.iter().any(|d| d.contains("postgresql")),
            "{deleted:?}"
        );
    }

    #[test]
    fn kept_secrets_and_the_attachments_volume_are_never_deleted() {
        let plan = build(&release_4_43(), &Options::default()).unwrap();
        let deleted: Vec<String> = plan.deletes.iter().map(|d| d.name.clone()).collect();
        for kept in [
            "cognigy-live-agent-cookies-integrity",
            "cognigy-live-agent-cognigy-platform-app-token",
            "live-agent",
            "pvc-attach",
        ] {
            assert!(
                !deleted.iter().any(|d| d == kept),
                "{kept} would be deleted"
            );
            assert!(plan.keeps.iter().any(|k| k.name == kept) || kept == "live-agent");
        }
        let Action::ReplaceSecrets { secrets, .. } =
            &plan.step("uninstall.secrets").unwrap().action
        else {
            panic!("uninstall.secrets is not a ReplaceSecrets step")
        };
        assert_eq!(
            secrets,
            &["cognigy-live-agent-postgresql", "cognigy-live-agent-redis"]
        );
    }

    #[test]
    fn a_users_own_database_secret_is_left_alone() {
        let mut facts = release_4_43();
        facts.postgres = PostgresFacts::Internal {
            secret: "my-pg".into(),
            password_key: "pw".into(),
            existing_secret: true,
            username: "postgres".into(),
            database: "live_agent_production".into(),
            size_bytes: 1 << 20,
            server_version: "11.14".into(),
        };
        let plan = build(&facts, &Options::default()).unwrap();
        let b = plan.backup.unwrap();
        assert_eq!(
            (b.source.secret.as_str(), b.source.key.as_str()),
            ("my-pg", "pw")
        );
        assert_eq!(
            (b.target.secret.as_str(), b.target.key.as_str()),
            ("my-pg", "pw")
        );
        assert!(!plan.deletes.iter().any(|d| d.name == "my-pg"));
    }

    #[test]
    fn a_release_already_on_4_44_is_refused() {
        let mut facts = release_4_43();
        facts.release.chart_version = "4.44.0".into();
        let err = build(&facts, &Options::default()).unwrap_err();
        assert_eq!(err.code, ExitCode::Precondition);
        assert!(err.message.contains("4.44.0"), "{}", err.message);
    }

    #[test]
    fn a_failed_release_is_refused_with_a_hint() {
        let mut facts = release_4_43();
        facts.release.status = "failed".into();
        let err = build(&facts, &Options::default()).unwrap_err();
        assert_eq!(err.code, ExitCode::Precondition);
        assert!(err.hint.unwrap().contains("helm history"));
    }

    #[test]
    fn a_missing_permission_is_named() {
        let mut facts = release_4_43();
        facts.permissions.push(PermissionFacts {
            verb: "delete".into(),
            group: String::new(),
            resource: "persistentvolumeclaims".into(),
            namespaced: true,
            allowed: false,
        });
        let err = build(&facts, &Options::default()).unwrap_err();
        assert_eq!(err.code, ExitCode::PermissionDenied);
        insta::assert_snapshot!(err.message, @"the current Kubernetes identity may not: delete persistentvolumeclaims in namespace live-agent");
    }

    #[test]
    fn too_little_room_under_a_storage_quota_is_refused() {
        let mut facts = release_4_43();
        facts.storage.quotas.push(QuotaFacts {
            name: "storage".into(),
            storage_class: None,
            hard_bytes: 20 << 30,
            used_bytes: 18 << 30,
        });
        let err = build(&facts, &Options::default()).unwrap_err();
        assert_eq!(err.code, ExitCode::Precondition);
        insta::assert_snapshot!(err.message, @r#"too little backup space: the backup volume needs 3.0 GiB (3x the database's 700 MiB), but ResourceQuota "storage" in namespace "live-agent" leaves 2.0 GiB"#);
        // A quota on another class does not apply.
        facts.storage.quotas[0].storage_class = Some("fast".into());
        assert!(build(&facts, &Options::default()).is_ok());
    }

    #[test]
    fn without_a_default_storage_class_the_flag_is_required() {
        let mut facts = release_4_43();
        facts.storage.default_class = None;
        let err = build(&facts, &Options::default()).unwrap_err();
        assert!(err.hint.unwrap().contains("--backup-storage-class"));
        let options = Options {
            backup_storage_class: Some("fast".into()),
            ..Options::default()
        };
        let plan = build(&facts, &options).unwrap();
        assert_eq!(plan.backup.unwrap().storage_class.as_deref(), Some("fast"));
        let options = Options {
            backup_storage_class: Some("nope".into()),
            ..Options::default()
        };
        assert_eq!(
            build(&facts, &options).unwrap_err().code,
            ExitCode::NotFound
        );
    }

    #[test]
    fn images_still_on_docker_io_bitnami_are_warned_about() {
        let plan = build(&release_4_43(), &Options::default()).unwrap();
        let warnings: Vec<&String> = plan
            .warnings
            .iter()
            .filter(|w| w.contains("bitnamilegacy"))
            .collect();
        assert_eq!(warnings.len(), 1, "{:?}", plan.warnings);
        assert!(warnings[0].contains("docker.io/bitnami/postgresql:15.1.0"));
        assert!(warnings[0].contains("--set postgresql.image.repository=bitnamilegacy/postgresql"));

        let each = image_warnings(&[
            "docker.io/bitnami/redis:7.0.7-debian-11-r2".to_string(),
            "bitnami/os-shell:11".to_string(),
            "docker.io/bitnamilegacy/postgresql:15.1.0".to_string(),
        ]);
        assert_eq!(each.len(), 2, "{each:?}");
        assert!(each[0].contains("--set redis.image.repository=bitnamilegacy/redis"));
        assert!(each[1].ends_with("override it"), "{}", each[1]);
    }

    #[test]
    fn no_command_in_the_plan_carries_a_password() {
        // Passwords reach the plan's inputs only through the operator's overrides.
        let options = Options {
            set: vec![
                "postgresql.auth.postgresPassword=Set-Pw-4411".into(),
                "redis.auth.password=Redis-Pw-4411".into(),
                "postgresql.image.repository=bitnamilegacy/postgresql".into(),
            ],
            values_overrides: vec!["/ops/secret-values.yaml".into()],
            ..Options::default()
        };
        let plan = build(&release_4_43(), &options).unwrap();
        let text = serde_json::to_string(&plan).unwrap() + &runbook::render(&plan);
        assert!(text.contains("secretKeyRef"));
        assert!(!text.contains("Set-Pw-4411") && !text.contains("Redis-Pw-4411"));
        assert!(text.contains("--set postgresql.auth.postgresPassword=<redacted>"));
        assert!(text.contains("--set postgresql.image.repository=bitnamilegacy/postgresql"));
        assert!(text.contains("-f /ops/secret-values.yaml"));
        assert!(!text.to_lowercase().contains("pgpassword="));
        assert!(!text.contains("--password"));
    }
}
