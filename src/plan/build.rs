//! Facts + options -> plan. Every refusal preflight can give is decided here, before anything
//! changes, so a failed preflight leaves the cluster as it was.

use crate::error::{Error, Result};
use crate::exit::ExitCode;

use super::commands;
use super::facts::{Facts, PostgresFacts, RedisFacts, SecretRole, VolumeRole, WorkloadFacts};
use super::manifests;
use super::options::{Options, MIN_BACKUP_BYTES};
use super::own_names;
use super::quantity::human;
use super::replication::OnlinePlan;
use super::target_postgres::TargetPostgres;
use super::{
    Action, BackupPlan, DbEndpoint, NewDatabasePlan, ObjectRef, Phase, Plan, RetainVolume, Step,
};
use crate::settings::is_target_version;

/// Builds the migration plan, or says why the migration cannot start.
pub fn build(facts: &Facts, options: &Options) -> Result<Plan> {
    check_release(facts)?;
    let to_version = check_target(facts)?;
    check_permissions(facts)?;
    let new_database = new_database_plan(facts, options)?;
    let online = online_plan(facts, options)?;
    let backup = if options.keep_dump || options.local_copy.is_some() {
        backup_plan(facts, options)?
    } else {
        None
    };
    if let (Some(db), Some(backup)) = (&new_database, &backup) {
        check_quota_together(facts, db, backup)?;
    }
    let release = facts.release.name.clone();
    let mut warnings = facts.values_notes.clone();
    if let Some(f) = facts.online.as_ref().filter(|_| options.online) {
        warnings.extend(super::online::readiness(f).notes);
    }
    warnings.extend(image_warnings(&facts.target.images));
    let attachments = attachments_volume(facts, &mut warnings);
    let mut workloads = facts.workloads.clone();
    workloads.sort_by_key(|w| w.role);
    let removal = removal(facts, attachments.as_ref());
    if !matches!(facts.redis, RedisFacts::Internal { .. }) {
        warnings.push(format!(
            "Redis is external: remove the onboarding flag by hand if the onboarding screen shows (redis-cli DEL {})",
            commands::ONBOARDING_KEY
        ));
    }
    let selected = steps(
        facts,
        options,
        &Selection {
            workloads: &workloads,
            removal: &removal,
            attachments: attachments.as_ref(),
            new_database: new_database.is_some(),
            backup: backup.is_some(),
            online: online.as_ref(),
        },
    );

    let mut plan = Plan {
        release: release.clone(),
        namespace: facts.namespace.clone(),
        from_version: facts.release.chart_version.clone(),
        to_version,
        chart: facts.target.chart.clone(),
        chart_remote: facts.target.remote,
        new_database,
        backup,
        online,
        replicas: workloads,
        odata_enabled: facts.odata_enabled,
        attachments,
        deletes: removal.deletes,
        keeps: removal.keeps,
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
    plan.steps = selected
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

/// The attachments volume the migration keeps and rebinds, with a warning when there is none.
fn attachments_volume(facts: &Facts, warnings: &mut Vec<String>) -> Option<RetainVolume> {
    let names = &facts.names;
    let attachments = facts
        .volumes
        .iter()
        .find(|v| v.role == VolumeRole::Attachments);
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
    attachments.and_then(|v| {
        v.volume.as_ref().map(|pv| RetainVolume {
            volume: pv.clone(),
            claim: v.claim.clone(),
            policy: v.reclaim_policy.clone().unwrap_or_else(|| "Delete".into()),
        })
    })
}

/// What the cut-over deletes, retains and never touches.
struct Removal {
    /// Shown at the point of no return.
    deletes: Vec<ObjectRef>,
    keeps: Vec<ObjectRef>,
    /// The old PostgreSQL and Redis claims.
    claims: Vec<String>,
    /// The old database Secrets the cut-over deletes or recreates.
    secrets: Vec<String>,
    /// Every volume of the release, set to Retain before anything is deleted.
    retain: Vec<RetainVolume>,
}

fn removal(facts: &Facts, attachments: Option<&RetainVolume>) -> Removal {
    let ns = &facts.namespace;
    let names = &facts.names;
    let mut deletes = vec![ObjectRef::namespaced(
        "HelmRelease",
        ns,
        &facts.release.name,
    )];
    let mut claims = Vec::new();
    if matches!(facts.postgres, PostgresFacts::Internal { .. }) {
        claims.push(names.postgres_claim.clone());
    }
    if let RedisFacts::Internal { claims: c, .. } = &facts.redis {
        claims.extend(c.iter().cloned());
    }
    deletes.extend(
        claims
            .iter()
            .filter(|c| facts.volumes.iter().any(|v| &v.claim == *c))
            .map(|c| ObjectRef::namespaced("PersistentVolumeClaim", ns, c)),
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
            .map(|s| ObjectRef::namespaced("Secret", ns, s)),
    );
    let keeps = facts
        .secrets
        .iter()
        .filter(|s| s.role == SecretRole::Kept)
        .map(|s| ObjectRef::namespaced("Secret", ns, &s.name))
        .chain(attachments.map(|a| ObjectRef::cluster("PersistentVolume", &a.volume)))
        .collect();
    let retain = facts
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
    Removal {
        deletes,
        keeps,
        claims,
        secrets,
        retain,
    }
}

/// What decides which steps a plan has.
struct Selection<'a> {
    workloads: &'a [WorkloadFacts],
    removal: &'a Removal,
    attachments: Option<&'a RetainVolume>,
    /// The chart's PostgreSQL moves to PostgreSQL 15 beside it.
    new_database: bool,
    /// A dump archive is kept (`--keep-dump`, `--local-copy`).
    backup: bool,
    /// `--online`: filled by logical replication while the app runs.
    online: Option<&'a OnlinePlan>,
}

type StepSpec = (Phase, &'static str, &'static str, bool, Action);

/// Adds a step: phase, name, title, whether it is destructive, action.
type Push<'a> = dyn FnMut(Phase, &'static str, &'static str, bool, Action) + 'a;

/// The steps, in order: which exist depends on the facts and options only.
fn steps(facts: &Facts, options: &Options, s: &Selection<'_>) -> Vec<StepSpec> {
    let mut out: Vec<StepSpec> = Vec::new();
    let mut push = |phase, name, title, destructive, action| {
        out.push((phase, name, title, destructive, action))
    };
    prepare_steps(facts, s, &mut push);
    if let Some(online) = s.online {
        replicate_steps(online, &mut push);
    }
    copy_steps(options, s, &mut push);
    cutover_steps(facts, options, s, &mut push);
    finalize_steps(facts, &mut push);
    out
}

/// The names of the Deployments the release runs (app, worker, odata).
fn deployments(s: &Selection<'_>) -> Vec<String> {
    s.workloads.iter().map(|w| w.name.clone()).collect()
}

/// Prepare: the values saved, the replicas recorded, and what the copy needs made ready
/// while the app is still up.
fn prepare_steps(facts: &Facts, s: &Selection<'_>, push: &mut Push<'_>) {
    let release = &facts.release.name;
    let staged = matches!(
        facts.postgres,
        PostgresFacts::Internal {
            existing_secret: false,
            ..
        }
    );
    push(
        Phase::Prepare,
        "save-values",
        "Save the release's values and their 4.44 translation in the cluster",
        false,
        Action::SaveValues {
            secret: own_names::values_secret(release),
        },
    );
    push(
        Phase::Prepare,
        "record-replicas",
        "Record the replica counts of app, worker and odata",
        false,
        Action::RecordReplicas {
            deployments: deployments(s),
        },
    );
    // PostgreSQL 15, the copy pod and the backup volume are ready before the app goes
    // offline: a class that cannot provision or an image that cannot be pulled stops the run
    // with the app still up.
    if s.new_database {
        if staged {
            push(
                Phase::Prepare,
                "passwords",
                "Write the new release's database passwords into the plugin's Secret",
                false,
                Action::StagePasswords,
            );
        }
        push(
            Phase::Prepare,
            "new-database",
            "Start PostgreSQL 15 beside PostgreSQL 11 on a claim of its own (the target chart's own container)",
            false,
            Action::NewDatabase,
        );
        push(
            Phase::Prepare,
            "copy-pod",
            "Start the copy pod (PostgreSQL 15 client tools)",
            false,
            Action::CopyPod,
        );
    }
    if s.backup {
        push(
            Phase::Prepare,
            "backup-volume",
            "Create the backup volume and the dump pod",
            false,
            Action::BackupVolume,
        );
    }
}

/// Copy: the app scaled down, then the dump (`--keep-dump`) and the copy into PostgreSQL 15.
fn copy_steps(options: &Options, s: &Selection<'_>, push: &mut Push<'_>) {
    push(
        Phase::Copy,
        "scale-down",
        "Scale app, worker and odata to 0 and wait until their pods are gone",
        false,
        Action::ScaleDown {
            deployments: deployments(s),
            selectors: s.workloads.iter().map(|w| w.selector.clone()).collect(),
        },
    );
    if s.backup {
        push(
            Phase::Copy,
            "dump",
            "Dump the database to the backup volume, detached from this session",
            false,
            Action::Dump,
        );
        push(
            Phase::Copy,
            "verify-dump",
            "Verify the archive (readable, every table's data, SHA-256)",
            false,
            Action::VerifyBackup,
        );
        if let Some(path) = &options.local_copy {
            push(
                Phase::Copy,
                "local-copy",
                "Copy the archive to this machine",
                false,
                Action::LocalCopy {
                    path: path.display().to_string(),
                },
            );
        }
    }
    if s.online.is_some() {
        online_copy_steps(push);
        return;
    }
    if s.new_database {
        push(
            Phase::Copy,
            "copy",
            "Copy PostgreSQL 11 into PostgreSQL 15, streamed inside the cluster, detached from this session",
            false,
            Action::Copy,
        );
        push(
            Phase::Copy,
            "prove",
            "Compare both databases: every table's rows and content hash, sequences, schema objects",
            false,
            Action::Prove,
        );
    }
}

/// Online, while the app runs: PostgreSQL 11 made ready to publish, the schema and the
/// subscription on PostgreSQL 15, its initial copy, and a first proof.
fn replicate_steps(online: &OnlinePlan, push: &mut Push<'_>) {
    if online.restart_for_wal_level {
        push(
            Phase::Replicate,
            "wal-level",
            "Restart PostgreSQL 11 with wal_level=logical (confirmed on its own; the app stays up, its connections drop for seconds)",
            false,
            Action::WalLevel,
        );
    }
    if !online.identity_fixes.is_empty() {
        push(
            Phase::Replicate,
            "replica-identity",
            "Give each table without a primary key a replica identity on PostgreSQL 11 (UPDATE and DELETE need one once published)",
            false,
            Action::ReplicaIdentity,
        );
    }
    push(
        Phase::Replicate,
        "subscribe",
        "Publish every table on PostgreSQL 11; load the schema on PostgreSQL 15 and subscribe, detached from this session",
        false,
        Action::Subscribe,
    );
    push(
        Phase::Replicate,
        "initial-copy",
        "Wait until PostgreSQL 15 has copied every table and follows the stream",
        false,
        Action::InitialCopy,
    );
    push(
        Phase::Replicate,
        "prove-live",
        "Compare both databases while the app runs: tables equal now are hashed again at the cut-over only if written to",
        false,
        Action::ProveLive,
    );
}

/// Online, with the app off: the last changes applied, sequences synced, proven, replication
/// dropped. A failure brings the app back on the old release.
fn online_copy_steps(push: &mut Push<'_>) {
    push(
        Phase::Copy,
        "catch-up",
        "Check PostgreSQL 11's schema is unchanged and wait until PostgreSQL 15 has applied its current WAL position",
        false,
        Action::CatchUp,
    );
    push(
        Phase::Copy,
        "sequences",
        "Set every sequence on PostgreSQL 15 to PostgreSQL 11's value, creating missing ones (per-account display id sequences)",
        false,
        Action::SyncSequences,
    );
    push(
        Phase::Copy,
        "prove",
        "Compare both databases: rows and content of the tables written since the live proof, every sequence and schema object",
        false,
        Action::Prove,
    );
    push(
        Phase::Copy,
        "unsubscribe",
        "Drop the subscription on PostgreSQL 15 and the slot and publication on PostgreSQL 11",
        false,
        Action::Unsubscribe,
    );
}

/// `--online`: refused, with every reason, where logical replication cannot do the job.
fn online_plan(facts: &Facts, options: &Options) -> Result<Option<OnlinePlan>> {
    if !options.online {
        return Ok(None);
    }
    if !matches!(facts.postgres, PostgresFacts::Internal { .. }) {
        return Err(Error::new(
            ExitCode::InvalidInput,
            "--online moves the chart's own PostgreSQL; this release's database is external and stays where it is",
        )
        .hint("run without --online: the app is down only for the uninstall and install"));
    }
    if options.keep_dump || options.local_copy.is_some() {
        return Err(Error::new(
            ExitCode::InvalidInput,
            "--online and --keep-dump/--local-copy do not go together: the dump is taken with the app off, for as long as the database takes",
        )
        .hint("drop --keep-dump (PostgreSQL 11's volume stays as the backup until cleanup), or run without --online"));
    }
    let f = facts.online.as_ref().ok_or_else(|| {
        Error::new(
            ExitCode::Failure,
            "preflight did not read what --online needs from PostgreSQL 11",
        )
    })?;
    let ready = super::online::readiness(f);
    if !ready.blockers.is_empty() {
        let lines: Vec<String> = ready.blockers.iter().map(|b| format!("  - {b}")).collect();
        return Err(Error::new(
            ExitCode::Precondition,
            format!(
                "an online migration is not possible for this release:\n{}",
                lines.join("\n")
            ),
        )
        .hint(
            "fix the above, or run without --online (the app is down while the data is copied)",
        ));
    }
    Ok(Some(OnlinePlan {
        name: super::replication::NAME.to_string(),
        wal_level_before: f.wal_level.clone(),
        restart_for_wal_level: ready.restart_for_wal_level,
        source_pod: facts.names.postgres_pod.clone(),
        identity_fixes: ready.identity_fixes,
        extensions: f.extensions.clone(),
    }))
}

/// Cut-over: from the point of no return to the target chart installed and ready.
fn cutover_steps(facts: &Facts, options: &Options, s: &Selection<'_>, push: &mut Push<'_>) {
    let names = &facts.names;
    push(
        Phase::Cutover,
        "confirm",
        "Point of no return: check the copy is still current, confirm what will be deleted",
        false,
        Action::Confirm {
            deletes: s.removal.deletes.clone(),
        },
    );
    if !s.removal.retain.is_empty() {
        push(
            Phase::Cutover,
            "retain-volumes",
            "Set the release's volumes to Retain (the old policies are recorded)",
            false,
            Action::RetainVolumes {
                volumes: s.removal.retain.clone(),
            },
        );
    }
    push(
        Phase::Cutover,
        "helm-uninstall",
        "Uninstall the release",
        true,
        Action::HelmUninstall,
    );
    if let Some(a) = s.attachments {
        push(
            Phase::Cutover,
            "rebind-attachments",
            "Reserve the attachments volume for the claim the new chart creates",
            false,
            Action::RebindAttachments {
                volume: a.volume.clone(),
                claim: a.claim.clone(),
            },
        );
    }
    if !s.removal.claims.is_empty() {
        push(
            Phase::Cutover,
            "delete-claims",
            "Delete the PostgreSQL 11 and Redis 6 claims (their volumes are retained)",
            true,
            Action::DeleteClaims {
                claims: s.removal.claims.clone(),
            },
        );
    }
    if s.new_database {
        push(
            Phase::Cutover,
            "bind-database",
            "Stop PostgreSQL 15 beside the old one and reserve its volume (Retained) for the new release's claim",
            false,
            Action::BindDatabase,
        );
    }
    if !s.removal.secrets.is_empty() {
        push(
            Phase::Cutover,
            "secrets",
            if options.keep_passwords {
                "Recreate the database secrets with the 4.44 keys and the old passwords"
            } else {
                "Replace the database secrets: the new release's passwords (PostgreSQL 15 has them already); Redis generates its own"
            },
            true,
            Action::ReplaceSecrets {
                secrets: s.removal.secrets.clone(),
                keep_passwords: options.keep_passwords,
            },
        );
    }
    push(
        Phase::Cutover,
        "helm-install",
        "Install the target chart once: migration on, replicas and odata as recorded",
        false,
        Action::HelmInstall,
    );
    let mut new_deployments = vec![
        names.new_app_deployment.clone(),
        names.worker_deployment.clone(),
    ];
    if facts.odata_enabled {
        new_deployments.push(names.odata_deployment.clone());
    }
    push(
        Phase::Cutover,
        "wait-app",
        "Wait until the app, worker and odata are ready",
        false,
        Action::WaitApp {
            deployments: new_deployments,
        },
    );
}

/// Finalize and verify.
fn finalize_steps(facts: &Facts, push: &mut Push<'_>) {
    let names = &facts.names;
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
    }
    push(
        Phase::Verify,
        "report",
        "Check deployments, the attachments volume and the row counts",
        false,
        Action::Verify,
    );
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

/// The storage class of a claim the plugin creates: the flag's (which must exist), else
/// `fallback`, else the cluster's default class.
fn storage_class(
    facts: &Facts,
    flag: (&str, Option<&String>),
    fallback: Option<&String>,
) -> Result<String> {
    match flag.1 {
        Some(c) if facts.storage.classes.iter().any(|k| k == c) => Ok(c.clone()),
        Some(c) => Err(Error::new(
            ExitCode::NotFound,
            format!("storage class {c:?} (from {}) does not exist", flag.0),
        )
        .hint(format!(
            "pick one of: {} (`kubectl get storageclass`)",
            facts.storage.classes.join(", ")
        ))),
        None => fallback
            .or(facts.storage.default_class.as_ref())
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    ExitCode::Precondition,
                    "the cluster has no default storage class for the plugin's volumes",
                )
                .hint(format!(
                    "pass {} <class> (`kubectl get storageclass` lists them)",
                    flag.0
                ))
            }),
    }
}

/// Refuses a claim of `size` bytes in `class` that a storage ResourceQuota has no room for.
fn check_quota(facts: &Facts, class: &str, size: u64, what: &str, hint: &str) -> Result<()> {
    for quota in &facts.storage.quotas {
        if quota.storage_class.as_ref().is_some_and(|c| c != class) {
            continue;
        }
        let room = quota.hard_bytes.saturating_sub(quota.used_bytes);
        if room < size {
            return Err(Error::new(
                ExitCode::Precondition,
                format!(
                    "too little space: {what} needs {}, but ResourceQuota {:?} in namespace {:?} leaves {}",
                    human(size),
                    quota.name,
                    facts.namespace,
                    human(room)
                ),
            )
            .hint(format!("raise the quota or free storage in the namespace{hint}; then run again")));
        }
    }
    Ok(())
}

/// Refuses the dump volume of `--keep-dump` beside PostgreSQL 15's volume when a storage
/// ResourceQuota has room for each alone but not for both: the run would stop in prepare
/// with one claim made.
fn check_quota_together(facts: &Facts, db: &NewDatabasePlan, backup: &BackupPlan) -> Result<()> {
    for quota in &facts.storage.quotas {
        let applies =
            |class: &Option<String>| quota.storage_class.is_none() || quota.storage_class == *class;
        if !applies(&db.storage_class) || !applies(&backup.storage_class) {
            // One claim alone counts here: `check_quota` judged it.
            continue;
        }
        let size = db.size_bytes.saturating_add(backup.size_bytes);
        let room = quota.hard_bytes.saturating_sub(quota.used_bytes);
        if room < size {
            return Err(Error::new(
                ExitCode::Precondition,
                format!(
                    "too little space: PostgreSQL 15's volume ({}) and the dump volume of --keep-dump ({}) need {} together, but ResourceQuota {:?} in namespace {:?} leaves {}",
                    human(db.size_bytes),
                    human(backup.size_bytes),
                    human(size),
                    quota.name,
                    facts.namespace,
                    human(room)
                ),
            )
            .hint("raise the quota or free storage in the namespace, put the dump on a class with room (--backup-storage-class) or pass a smaller --backup-size-factor, or migrate without --keep-dump and --local-copy (PostgreSQL 11's retained volume is the backup); then run again"));
        }
    }
    Ok(())
}

fn whole_gibibytes(bytes: u64) -> u64 {
    bytes.max(MIN_BACKUP_BYTES).div_ceil(1 << 30) * (1 << 30)
}

/// The source: the chart's PostgreSQL 11 as the app's user.
fn source_endpoint(facts: &Facts) -> Option<DbEndpoint> {
    let PostgresFacts::Internal {
        secret,
        password_key,
        username,
        database,
        ..
    } = &facts.postgres
    else {
        return None;
    };
    Some(DbEndpoint {
        host: facts.names.postgres_service.clone(),
        port: 5432,
        user: username.clone(),
        database: database.clone(),
        secret: secret.clone(),
        key: password_key.clone(),
    })
}

/// PostgreSQL 15 beside PostgreSQL 11: a claim of the old claim's class (or
/// `--storage-class`) as large as the database needs or the target chart asks, whichever is
/// larger, and the target chart's own PostgreSQL container on it.
fn new_database_plan(facts: &Facts, options: &Options) -> Result<Option<NewDatabasePlan>> {
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
    let names = &facts.names;
    let release = &facts.release.name;
    let target = facts.target.postgres.as_ref().ok_or_else(|| {
        Error::new(
            ExitCode::InvalidInput,
            format!(
                "the target chart {} renders no PostgreSQL StatefulSet {:?} with these values",
                facts.target.chart, names.postgres_service
            ),
        )
        .hint("check that the values keep postgresql.enabled, and pass the 4.44 chart with --chart")
    })?;
    let NewDatabaseClaim {
        class,
        size,
        install_sets,
    } = new_database_claim(facts, options, target, *size_bytes)?;
    let name = own_names::new_database(release);
    let staged = !existing_secret;
    let pod_secret = if staged { name.clone() } else { secret.clone() };
    let source = source_endpoint(facts).expect("internal database");
    Ok(Some(NewDatabasePlan {
        claim: name.clone(),
        storage_class: Some(class),
        size_bytes: size,
        pod: manifests::new_database_pod(
            target,
            &manifests::NewDatabaseNames {
                pod: &name,
                namespace: &facts.namespace,
                release,
                chart_secret: &names.postgres_secret,
                secret: &pod_secret,
                claim: &name,
                resources: &options.tools_resources,
            },
        ),
        service: name.clone(),
        secret: pod_secret.clone(),
        staged,
        release_secret: names.postgres_secret.clone(),
        release_claim: names.postgres_claim.clone(),
        release_pod: names.postgres_pod.clone(),
        copy_pod: own_names::copy_pod(release),
        image: options.backup_image.clone(),
        jobs: options.jobs.max(1),
        target: DbEndpoint {
            host: name.clone(),
            port: 5432,
            // The chart's Secret holds the `postgres` superuser's password under this key; a
            // user's own Secret keeps its key (translated to `adminPasswordKey`).
            user: "postgres".into(),
            database: database.clone(),
            secret: pod_secret,
            key: if staged {
                "postgres-password".into()
            } else {
                password_key.clone()
            },
        },
        owner: username.clone(),
        resources: options.tools_resources.clone(),
        source,
        source_bytes: *size_bytes,
        install_sets,
    }))
}

/// PostgreSQL 15's claim, as [`new_database_claim`] decides it.
struct NewDatabaseClaim {
    class: String,
    size: u64,
    /// `--set`s that make the chart's claim ask for `class`, where it would ask for another.
    install_sets: Vec<String>,
}

/// PostgreSQL 15's claim: the old claim's class (or `--storage-class`), as large as the
/// database of `size_bytes` needs or the target chart asks, whichever is larger; refused when
/// a storage quota has no room for it.
fn new_database_claim(
    facts: &Facts,
    options: &Options,
    target: &TargetPostgres,
    size_bytes: u64,
) -> Result<NewDatabaseClaim> {
    let old_class = facts
        .volumes
        .iter()
        .find(|v| v.role == VolumeRole::Postgres)
        .and_then(|v| v.storage_class.as_ref());
    let class = storage_class(
        facts,
        ("--storage-class", options.storage_class.as_ref()),
        old_class,
    )?;
    // Room for the data as PostgreSQL 15 lays it out, the indexes rebuilt and WAL.
    let size = whole_gibibytes((size_bytes.saturating_mul(2)).max(target.claim_bytes));
    check_quota(
        facts,
        &class,
        size,
        &format!(
            "PostgreSQL 15's volume (twice the database's {}, at least the chart's {})",
            human(size_bytes),
            human(target.claim_bytes)
        ),
        ", or pass --storage-class with a class that has room",
    )?;
    // The chart's claim binds the volume only if it asks for the same class.
    let chart_class = target
        .claim_class
        .as_ref()
        .or(facts.storage.default_class.as_ref());
    let install_sets = if chart_class != Some(&class) {
        vec![format!(
            "postgresql.primary.persistence.storageClass={class}"
        )]
    } else {
        Vec::new()
    };
    Ok(NewDatabaseClaim {
        class,
        size,
        install_sets,
    })
}

/// A dump archive on a volume of its own (`--keep-dump`).
fn backup_plan(facts: &Facts, options: &Options) -> Result<Option<BackupPlan>> {
    let (PostgresFacts::Internal { size_bytes, .. }, Some(source)) =
        (&facts.postgres, source_endpoint(facts))
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
    let class = storage_class(
        facts,
        (
            "--backup-storage-class",
            options.backup_storage_class.as_ref(),
        ),
        None,
    )?;
    let size = whole_gibibytes(((*size_bytes as f64) * options.backup_size_factor).ceil() as u64);
    check_quota(
        facts,
        &class,
        size,
        &format!(
            "the backup volume ({}x the database's {})",
            options.backup_size_factor,
            human(*size_bytes)
        ),
        ", or pass a smaller --backup-size-factor",
    )?;
    let release = &facts.release.name;
    Ok(Some(BackupPlan {
        claim: own_names::backup_claim(release),
        dump_pod: own_names::dump_pod(release),
        storage_class: Some(class),
        size_bytes: size,
        image: options.backup_image.clone(),
        jobs: options.jobs.max(1),
        resources: options.tools_resources.clone(),
        source,
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
                "prepare.save-values",
                "prepare.record-replicas",
                "prepare.passwords",
                "prepare.new-database",
                "prepare.copy-pod",
                "copy.scale-down",
                "copy.copy",
                "copy.prove",
                "cutover.confirm",
                "cutover.retain-volumes",
                "cutover.helm-uninstall",
                "cutover.rebind-attachments",
                "cutover.delete-claims",
                "cutover.bind-database",
                "cutover.secrets",
                "cutover.helm-install",
                "cutover.wait-app",
                "finalize.clear-onboarding",
                "verify.report",
            ]
        );
        assert!(plan.backup.is_none());
        let db = plan.new_database.as_ref().unwrap();
        // The chart's 8 GiB beat twice the database's 700 MiB; the old claim's class.
        assert_eq!(db.size_bytes, 8 << 30);
        assert_eq!(db.storage_class.as_deref(), Some("standard"));
        assert_eq!(db.release_claim, "data-cognigy-live-agent-postgresql-0");
        assert!(db.staged);
    }

    /// The steps a stage adds, in order.
    fn stage(run: impl FnOnce(&mut Push<'_>)) -> Vec<StepSpec> {
        let mut out = Vec::new();
        run(&mut |phase, name, title, destructive, action| {
            out.push((phase, name, title, destructive, action))
        });
        out
    }

    fn prepare_steps(facts: &Facts, s: &Selection<'_>) -> Vec<StepSpec> {
        stage(|push| super::prepare_steps(facts, s, push))
    }

    fn copy_steps(options: &Options, s: &Selection<'_>) -> Vec<StepSpec> {
        stage(|push| super::copy_steps(options, s, push))
    }

    fn cutover_steps(facts: &Facts, options: &Options, s: &Selection<'_>) -> Vec<StepSpec> {
        stage(|push| super::cutover_steps(facts, options, s, push))
    }

    fn finalize_steps(facts: &Facts) -> Vec<StepSpec> {
        stage(|push| super::finalize_steps(facts, push))
    }

    /// The ids of the steps a stage gives.
    fn stage_ids(steps: &[StepSpec]) -> Vec<String> {
        steps
            .iter()
            .map(|(phase, name, ..)| format!("{}.{name}", phase.name()))
            .collect()
    }

    fn selection<'a>(
        facts: &'a Facts,
        removal: &'a Removal,
        attachments: Option<&'a RetainVolume>,
        data: bool,
    ) -> Selection<'a> {
        Selection {
            workloads: &facts.workloads,
            removal,
            attachments,
            new_database: data,
            backup: data,
            online: None,
        }
    }

    #[test]
    fn prepare_stages_passwords_only_for_the_charts_own_secret() {
        let mut facts = release_4_43();
        let removal = removal(&facts, None);
        assert_eq!(
            stage_ids(&prepare_steps(
                &facts,
                &selection(&facts, &removal, None, false)
            )),
            ["prepare.save-values", "prepare.record-replicas"]
        );
        let s = selection(&facts, &removal, None, true);
        assert_eq!(
            stage_ids(&prepare_steps(&facts, &s)),
            [
                "prepare.save-values",
                "prepare.record-replicas",
                "prepare.passwords",
                "prepare.new-database",
                "prepare.copy-pod",
                "prepare.backup-volume",
            ]
        );
        if let PostgresFacts::Internal {
            existing_secret, ..
        } = &mut facts.postgres
        {
            *existing_secret = true;
        }
        let s = selection(&facts, &removal, None, true);
        let ids = stage_ids(&prepare_steps(&facts, &s));
        assert!(!ids.iter().any(|id| id == "prepare.passwords"), "{ids:?}");
    }

    #[test]
    fn copy_scales_down_then_dumps_then_copies() {
        let facts = release_4_43();
        let removal = removal(&facts, None);
        let options = Options {
            local_copy: Some("/tmp/la.tar".into()),
            ..Options::default()
        };
        let steps = copy_steps(&options, &selection(&facts, &removal, None, true));
        assert_eq!(
            stage_ids(&steps),
            [
                "copy.scale-down",
                "copy.dump",
                "copy.verify-dump",
                "copy.local-copy",
                "copy.copy",
                "copy.prove",
            ]
        );
        let Action::ScaleDown { deployments, .. } = &steps[0].4 else {
            panic!("scale-down scales down");
        };
        assert_eq!(
            deployments,
            &[
                "cognigy-live-agent-worker",
                "cognigy-live-agent",
                "cognigy-live-agent-odata"
            ]
        );
        let steps = copy_steps(&options, &selection(&facts, &removal, None, false));
        assert_eq!(stage_ids(&steps), ["copy.scale-down"]);
    }

    #[test]
    fn the_cutover_replaces_secrets_as_keep_passwords_says() {
        let facts = release_4_43();
        let attachments = attachments_volume(&facts, &mut Vec::new());
        let removal = removal(&facts, attachments.as_ref());
        let s = selection(&facts, &removal, attachments.as_ref(), true);
        let steps = cutover_steps(&facts, &Options::default(), &s);
        // Every cut-over step of the full plan (listed above), from the confirmation on.
        let plan = build(&facts, &Options::default()).unwrap();
        let planned: Vec<&str> = plan
            .steps_of(Phase::Cutover)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(stage_ids(&steps), planned);
        assert_eq!((steps[0].1, planned.len()), ("confirm", 9));
        let destructive: Vec<&str> = steps.iter().filter(|s| s.3).map(|s| s.1).collect();
        assert_eq!(destructive, ["helm-uninstall", "delete-claims", "secrets"]);
        let keep = Options {
            keep_passwords: true,
            ..Options::default()
        };
        let secrets = |options| {
            cutover_steps(&facts, options, &s)
                .into_iter()
                .find(|s| s.1 == "secrets")
                .map(|s| s.2)
                .unwrap()
        };
        assert!(secrets(&keep).contains("the old passwords"));
        assert!(secrets(&Options::default()).contains("the new release's passwords"));
    }

    #[test]
    fn finalize_clears_the_onboarding_flag_only_in_the_charts_redis() {
        let mut facts = release_4_43();
        assert_eq!(
            stage_ids(&finalize_steps(&facts)),
            ["finalize.clear-onboarding", "verify.report"]
        );
        facts.redis = RedisFacts::External {
            host: "redis.example".into(),
        };
        assert_eq!(stage_ids(&finalize_steps(&facts)), ["verify.report"]);
    }

    #[test]
    fn the_new_databases_claim_asks_the_chart_for_another_class_only_when_it_must() {
        let facts = release_4_43();
        let target = facts.target.postgres.as_ref().unwrap();
        let claim = new_database_claim(&facts, &Options::default(), target, 700 << 20).unwrap();
        assert_eq!(
            (claim.class.as_str(), claim.size, claim.install_sets.len()),
            ("standard", 8 << 30, 0)
        );
        let fast = Options {
            storage_class: Some("fast".into()),
            ..Options::default()
        };
        let claim = new_database_claim(&facts, &fast, target, 5 << 30).unwrap();
        assert_eq!(
            claim.size,
            10 << 30,
            "twice the database beats the chart's 8 GiB"
        );
        assert_eq!(
            claim.install_sets,
            ["postgresql.primary.persistence.storageClass=fast"]
        );
    }

    #[test]
    fn keep_dump_adds_the_dump_before_the_copy() {
        let options = Options {
            keep_dump: true,
            local_copy: Some("/tmp/la.tar".into()),
            ..Options::default()
        };
        let plan = build(&release_4_43(), &options).unwrap();
        let ids = ids(&plan);
        let at = |id: &str| ids.iter().position(|i| *i == id).unwrap();
        assert!(at("prepare.backup-volume") < at("copy.scale-down"));
        assert!(at("copy.scale-down") < at("copy.dump"));
        assert!(at("copy.verify-dump") < at("copy.local-copy"));
        assert!(at("copy.local-copy") < at("copy.copy"));
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
        assert!(plan.backup.is_none() && plan.new_database.is_none());
        let ids = ids(&plan);
        for absent in [
            "prepare.passwords",
            "prepare.new-database",
            "copy.copy",
            "copy.prove",
            "cutover.bind-database",
        ] {
            assert!(!ids.contains(&absent), "{absent} in {ids:?}");
        }
        assert!(ids.contains(&"cutover.helm-uninstall"));
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
        let Action::ReplaceSecrets { secrets, .. } = &plan.step("cutover.secrets").unwrap().action
        else {
            panic!("cutover.secrets is not a ReplaceSecrets step")
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
        let db = plan.new_database.clone().unwrap();
        assert_eq!(
            (db.source.secret.as_str(), db.source.key.as_str()),
            ("my-pg", "pw")
        );
        assert_eq!(
            (db.target.secret.as_str(), db.target.key.as_str()),
            ("my-pg", "pw")
        );
        // PostgreSQL 15 reads the operator's Secret itself: nothing staged.
        assert!(!db.staged && db.secret == "my-pg");
        assert!(!ids(&plan).contains(&"prepare.passwords"));
        assert!(!plan.deletes.iter().any(|d| d.name == "my-pg"));
    }

    #[test]
    fn the_plan_says_whether_the_old_passwords_are_kept() {
        assert!(!build(&release_4_43(), &Options::default())
            .unwrap()
            .keeps_passwords());
        let keep = Options {
            keep_passwords: true,
            ..Options::default()
        };
        assert!(build(&release_4_43(), &keep).unwrap().keeps_passwords());
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
        insta::assert_snapshot!(err.message, @r#"too little space: PostgreSQL 15's volume (twice the database's 700 MiB, at least the chart's 8.0 GiB) needs 8.0 GiB, but ResourceQuota "storage" in namespace "live-agent" leaves 2.0 GiB"#);
        // A quota on another class does not apply.
        facts.storage.quotas[0].storage_class = Some("fast".into());
        assert!(build(&facts, &Options::default()).is_ok());
    }

    #[test]
    fn a_dump_volume_the_quota_has_no_room_for_beside_postgresql_15_is_refused() {
        let mut facts = release_4_43();
        // Room for PostgreSQL 15's 8 GiB and for the 3 GiB dump volume, not for both.
        facts.storage.quotas.push(QuotaFacts {
            name: "storage".into(),
            storage_class: None,
            hard_bytes: 30 << 30,
            used_bytes: 20 << 30,
        });
        assert!(build(&facts, &Options::default()).is_ok());
        let dump = Options {
            keep_dump: true,
            ..Options::default()
        };
        let err = build(&facts, &dump).unwrap_err();
        assert_eq!(err.code, ExitCode::Precondition);
        insta::assert_snapshot!(err.message, @r#"too little space: PostgreSQL 15's volume (8.0 GiB) and the dump volume of --keep-dump (3.0 GiB) need 11 GiB together, but ResourceQuota "storage" in namespace "live-agent" leaves 10 GiB"#);
        assert!(err.hint.unwrap().contains("--backup-storage-class"));
        // The dump on another class than the quota's: only PostgreSQL 15's volume counts.
        facts.storage.quotas[0].storage_class = Some("standard".into());
        let elsewhere = Options {
            backup_storage_class: Some("fast".into()),
            ..dump
        };
        assert!(build(&facts, &elsewhere).is_ok());
    }

    #[test]
    fn without_a_default_storage_class_the_flag_is_required() {
        let mut facts = release_4_43();
        facts.storage.default_class = None;
        // PostgreSQL 15 takes PostgreSQL 11's class; the dump volume needs one.
        assert!(build(&facts, &Options::default()).is_ok());
        let dump = Options {
            keep_dump: true,
            ..Options::default()
        };
        let err = build(&facts, &dump).unwrap_err();
        assert!(err.hint.unwrap().contains("--backup-storage-class"));
        let options = Options {
            backup_storage_class: Some("fast".into()),
            ..dump.clone()
        };
        let plan = build(&facts, &options).unwrap();
        assert_eq!(plan.backup.unwrap().storage_class.as_deref(), Some("fast"));
        let options = Options {
            backup_storage_class: Some("nope".into()),
            ..dump
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

    fn online_facts() -> crate::plan::online::OnlineFacts {
        crate::plan::online::OnlineFacts {
            wal_level: "replica".into(),
            max_replication_slots: 10,
            replication_slots_used: 0,
            max_wal_senders: 16,
            wal_senders_used: 0,
            user: "postgres".into(),
            superuser: true,
            tables_without_identity: vec![crate::plan::online::IdentityFix {
                table: "public.portals_members".into(),
                index: Some("index_portals_members_on_portal_id_and_user_id".into()),
            }],
            large_objects: 0,
            extensions: vec!["plpgsql".into(), "pgcrypto".into()],
            wal_bytes: 32 << 20,
            free_bytes: Some(50 << 30),
            database_bytes: 700 << 20,
        }
    }

    fn online() -> Options {
        Options {
            online: true,
            ..Options::default()
        }
    }

    #[test]
    fn online_replicates_while_the_app_runs_and_copies_nothing_with_it_off() {
        let mut facts = release_4_43();
        facts.online = Some(online_facts());
        let plan = build(&facts, &online()).unwrap();
        let steps = ids(&plan);
        let at = |id: &str| steps.iter().position(|i| *i == id).expect(id);
        assert!(at("prepare.copy-pod") < at("replicate.wal-level"));
        assert!(at("replicate.wal-level") < at("replicate.replica-identity"));
        assert!(at("replicate.replica-identity") < at("replicate.subscribe"));
        assert!(at("replicate.prove-live") < at("copy.scale-down"));
        assert_eq!(
            &steps[at("copy.scale-down")..at("cutover.confirm")],
            [
                "copy.scale-down",
                "copy.catch-up",
                "copy.sequences",
                "copy.prove",
                "copy.unsubscribe"
            ]
        );
        let recorded = plan.online.as_ref().unwrap();
        assert_eq!(recorded.wal_level_before, "replica");
        assert_eq!(recorded.source_pod, facts.names.postgres_pod);
        assert!(plan.warnings.iter().any(|w| w.contains("portals_members")));
        // Already logical, nothing to fix: neither step.
        let mut f = online_facts();
        f.wal_level = "logical".into();
        f.tables_without_identity.clear();
        facts.online = Some(f);
        let ids = ids(&build(&facts, &online()).unwrap())
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        assert!(!ids
            .iter()
            .any(|i| i == "replicate.wal-level" || i == "replicate.replica-identity"));
        // Rollback undoes the replication.
        let plan = build(&facts, &online()).unwrap();
        let rollback = crate::plan::rollback::steps(&plan, &Default::default());
        assert!(rollback.iter().any(|s| s.action == Action::UndoReplication));
    }

    #[test]
    fn online_is_refused_with_every_reason_where_replication_cannot_do_the_job() {
        let mut facts = release_4_43();
        let mut f = online_facts();
        f.large_objects = 3;
        f.superuser = false;
        facts.online = Some(f);
        let err = build(&facts, &online()).unwrap_err();
        assert_eq!(err.code, ExitCode::Precondition);
        assert!(err.message.contains("large objects"), "{}", err.message);
        assert!(err.message.contains("superuser"), "{}", err.message);
        assert!(err.hint.unwrap().contains("without --online"));

        facts.online = Some(online_facts());
        let with_dump = Options {
            keep_dump: true,
            ..online()
        };
        assert_eq!(
            build(&facts, &with_dump).unwrap_err().code,
            ExitCode::InvalidInput
        );
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
        // libpq's password only ever from the pod's environment, never a value.
        let lower = text.to_lowercase();
        for (at, _) in lower.match_indices("pgpassword=") {
            let value = &lower[at + "pgpassword=".len()..];
            assert!(
                value.starts_with("\"$") || value.starts_with("\\\"$"),
                "{}",
                &text[at..at + 40]
            );
        }
        assert!(!text.contains("--password"));
    }
}
