//! The commands an operator would run by hand for each step: the runbook's content. Pure.
//! No command carries a secret: passwords stay in Secrets and pod environments.

use super::copy_script;
use super::facts::WorkloadFacts;
use super::manifests;
use super::scripts;
use super::{Action, NewDatabasePlan, Override, Plan};
use crate::helm::argv;
use crate::redact;
use crate::verify::HashMethod;
use std::ffi::OsString;

/// The settings preflight renders the target chart with (the app off, no migration Job):
/// enough to read its images, objects and PostgreSQL StatefulSet.
pub fn install_sets() -> Vec<String> {
    vec![
        "app.replica=0".to_string(),
        "worker.replica=0".to_string(),
        "odata.enabled=false".to_string(),
        "migration.enabled=false".to_string(),
    ]
}

/// The chart's value holding a workload's replica count.
pub fn replica_key(role: super::facts::WorkloadRole) -> &'static str {
    use super::facts::WorkloadRole;
    match role {
        WorkloadRole::App => "app.replica",
        WorkloadRole::Worker => "worker.replica",
        WorkloadRole::Odata => "odata.replica",
    }
}

/// The helm `--set` values of the install: migration on, replicas and odata as recorded.
pub fn final_sets(replicas: &[WorkloadFacts], odata_enabled: bool) -> Vec<String> {
    let mut sets = vec!["migration.enabled=true".to_string()];
    for w in replicas {
        sets.push(format!("{}={}", replica_key(w.role), w.replicas));
    }
    sets.push(format!("odata.enabled={odata_enabled}"));
    sets
}

/// The operator's extra values as the runbook shows them: each values file's path, each
/// `--set KEY=VALUE` with its secret values redacted (`redact::set_arg`).
pub fn override_args(files: &[String], sets: &[String]) -> Vec<Override> {
    override_args_shown(files, sets, redact::Show::Public)
}

fn override_args_shown(files: &[String], sets: &[String], show: redact::Show) -> Vec<Override> {
    // The placeholders read as what they are, unquoted unless the rest needs quotes.
    let placeholders = [
        (redact::REDACTED, "_la-migrate-redacted_"),
        (redact::SAVED, "_la-migrate-saved_"),
    ];
    let quote = |set: &str| {
        let plain = placeholders
            .iter()
            .fold(set.to_string(), |t, (p, w)| t.replace(p, w));
        let quoted = scripts::shell_quote_if_needed(&plain);
        placeholders
            .iter()
            .fold(quoted, |t, (p, w)| t.replace(w, p))
    };
    files
        .iter()
        .map(|f| Override::File(scripts::shell_quote_if_needed(f)))
        .chain(
            sets.iter()
                .map(|s| Override::Set(quote(&redact::set_arg(s, show)))),
        )
        .collect()
}

/// Replaces the plan's overrides, and the install and upgrade commands that show them.
pub fn set_overrides(plan: &mut Plan, overrides: Vec<Override>) {
    plan.overrides = overrides;
    let refreshed = plan.clone();
    for step in &mut plan.steps {
        if matches!(step.action, Action::HelmInstall) {
            step.commands = for_action(&refreshed, &step.action);
        }
    }
}

/// The plan as the state keeps it: no `--set` value at all (any of them may be a password
/// under a key that does not say so; they are kept in the values Secret).
pub fn for_state(plan: &Plan) -> Plan {
    let mut stored = plan.clone();
    let overrides = plan
        .overrides
        .iter()
        .flat_map(|o| match o {
            Override::Set(set) => {
                override_args_shown(&[], std::slice::from_ref(set), redact::Show::KeysOnly)
            }
            Override::File(_) => vec![o.clone()],
        })
        .collect();
    set_overrides(&mut stored, overrides);
    stored
}

/// The `--set` values of the install, in the order helm takes them (a later one wins): the
/// plugin's own (migration on, replicas and odata as recorded, the new database's), the
/// migration Job's hook for an upgrade that completes a failed install, then the operator's,
/// so they choose the final replicas.
pub fn deploy_sets(
    replicas: &[WorkloadFacts],
    odata_enabled: bool,
    new_database: Option<&NewDatabasePlan>,
    completing: bool,
    operator: &[String],
) -> Vec<String> {
    let mut sets = final_sets(replicas, odata_enabled);
    sets.extend(
        new_database
            .iter()
            .flat_map(|db| db.install_sets.iter().cloned()),
    );
    if completing {
        sets.push(COMPLETING_HOOK.to_string());
    }
    sets.extend(operator.iter().cloned());
    sets
}

/// The `--set` of an upgrade that completes a failed install: the migration Job after the
/// release's objects (chart 4.44's default is `post-install,pre-upgrade`). The failed install
/// never ran the chart's migration Job (post-install); as the upgrade's pre-upgrade hook it
/// would run before the objects the install could not create, the databases it waits for
/// among them, and time out: it runs after them, as the install would have run it.
const COMPLETING_HOOK: &str = "migration.hooks.migrate.hookAnnotation=post-install\\,post-upgrade";

/// A helm command line as the runbook shows it.
fn helm_line(argv: &[OsString]) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    format!("helm {}", words.join(" "))
}

fn kubectl(plan: &Plan, rest: &str) -> String {
    format!("kubectl -n {} {rest}", plan.namespace)
}

fn exec(plan: &Plan, pod: &str, script: &str) -> String {
    kubectl(
        plan,
        &format!("exec {pod} -- sh -c {}", scripts::shell_quote(script)),
    )
}

fn exec_argv(plan: &Plan, pod: &str, argv: &[String]) -> String {
    kubectl(plan, &format!("exec {pod} -- {}", scripts::argv_line(argv)))
}

fn helm_chart_args(plan: &Plan) -> String {
    if plan.chart_remote {
        format!("{} --version {}", plan.chart, plan.to_version)
    } else {
        plan.chart.clone()
    }
}

/// The commands for one action of `plan`.
pub fn for_action(plan: &Plan, action: &Action) -> Vec<String> {
    let ns = &plan.namespace;
    let release = &plan.release;
    match action {
        Action::SaveValues { secret } => vec![
            format!("helm get values {release} -n {ns} -o yaml > values-4.43.yaml"),
            format!(
                "{} > values-{}.yaml",
                crate::hint::command(release, ns, "values"),
                plan.to_version
            ),
            kubectl(
                plan,
                &format!(
                    "create secret generic {secret} --from-file=original.yaml=values-4.43.yaml --from-file=translated.yaml=values-{}.yaml",
                    plan.to_version
                ),
            ),
        ],
        Action::RecordReplicas { deployments } => vec![kubectl(
            plan,
            &format!(
                "get deployment {} -o custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas",
                deployments.join(" ")
            ),
        )],
        Action::ScaleDown {
            deployments,
            selectors,
        } => {
            let mut out = vec![kubectl(
                plan,
                &format!("scale deployment {} --replicas=0", deployments.join(" ")),
            )];
            out.extend(selectors.iter().map(|s| {
                kubectl(plan, &format!("wait --for=delete pod -l {s} --timeout=10m"))
            }));
            out
        }
        Action::StagePasswords => {
            let Some(db) = &plan.new_database else { return vec![] };
            vec![
                format!(
                    "helm template {release} {} -f values-{}.yaml --show-only charts/postgresql/templates/secrets.yaml > new-passwords.yaml  # keep it private",
                    helm_chart_args(plan),
                    plan.to_version
                ),
                format!(
                    "# rename the Secret in new-passwords.yaml to {}, then: kubectl apply -n {ns} -f new-passwords.yaml && rm new-passwords.yaml",
                    db.secret
                ),
            ]
        }
        Action::NewDatabase => {
            let Some(db) = &plan.new_database else { return vec![] };
            let claim = manifests::claim(&db.claim, db.storage_class.as_ref(), db.size_bytes, ns, release);
            let service = manifests::new_database_service(&db.service, ns, release);
            vec![
                format!(
                    "kubectl apply -f - <<'EOF'\n{}---\n{}---\n{}EOF",
                    manifests::to_yaml(&claim),
                    manifests::to_yaml(&service),
                    manifests::to_yaml(&db.pod)
                ),
                kubectl(plan, &format!("wait --for=condition=Ready pod/{} --timeout=15m", db.pod_name())),
            ]
        }
        Action::CopyPod => {
            let Some(db) = &plan.new_database else { return vec![] };
            let pod = manifests::copy_pod(db, ns, release);
            vec![
                format!("kubectl apply -f - <<'EOF'\n{}EOF", manifests::to_yaml(&pod)),
                kubectl(plan, &format!("wait --for=condition=Ready pod/{} --timeout=10m", db.copy_pod)),
            ]
        }
        Action::BackupVolume => {
            let Some(b) = &plan.backup else { return vec![] };
            let claim = manifests::backup_claim(b, ns, release);
            let pod = manifests::tools_pod(b, ns, release);
            vec![
                format!(
                    "kubectl apply -f - <<'EOF'\n{}---\n{}EOF",
                    manifests::to_yaml(&claim),
                    manifests::to_yaml(&pod)
                ),
                kubectl(plan, &format!("wait --for=condition=Ready pod/{} --timeout=10m", b.dump_pod)),
            ]
        }
        Action::Dump => {
            let Some(b) = &plan.backup else { return vec![] };
            vec![
                exec(plan, &b.dump_pod, &scripts::start_dump(b.jobs)),
                "# repeat until it prints state=finished:0".to_string(),
                exec(plan, &b.dump_pod, &scripts::poll_dump()),
            ]
        }
        Action::VerifyBackup => {
            let Some(b) = &plan.backup else { return vec![] };
            vec![
                exec(plan, &b.dump_pod, &scripts::verify_archive()),
                "# per-table row counts and content hashes of the source, kept with the archive"
                    .to_string(),
                format!(
                    "{} > source-fingerprint.txt",
                    exec_argv(plan, &b.dump_pod, &scripts::fingerprint(HashMethod::CURRENT))
                ),
            ]
        }
        Action::LocalCopy { path } => {
            let Some(b) = &plan.backup else { return vec![] };
            vec![format!(
                "{} > {}",
                exec(plan, &b.dump_pod, &scripts::archive_tar()),
                path
            )]
        }
        Action::Copy => {
            let Some(db) = &plan.new_database else { return vec![] };
            vec![
                exec(plan, &db.copy_pod, &copy_script::start_copy()),
                "# repeat until it prints state=finished:0".to_string(),
                exec(plan, &db.copy_pod, &copy_script::poll_copy()),
            ]
        }
        Action::Prove => {
            let Some(db) = &plan.new_database else { return vec![] };
            let on = |side| exec_argv(plan, &db.copy_pod, &copy_script::on(side, &scripts::fingerprint(HashMethod::CURRENT)));
            vec![
                "# every table's rows and content hash, every sequence and schema object, on both sides".to_string(),
                format!("{} > source-fingerprint.txt", on(copy_script::Side::Source)),
                format!("{} > target-fingerprint.txt", on(copy_script::Side::Target)),
                "diff source-fingerprint.txt target-fingerprint.txt".to_string(),
                format!(
                    "{} > source-marks.txt  # rows written and sequence values, checked again at the point of no return",
                    exec_argv(plan, &db.copy_pod, &copy_script::on(copy_script::Side::Source, &scripts::write_marks()))
                ),
            ]
        }
        Action::Confirm { .. } => {
            let mut out = vec!["# point of no return: the app still at 0, and nothing written since the proof".to_string()];
            if let Some(db) = &plan.new_database {
                out.push(format!(
                    "{} | diff source-marks.txt -",
                    exec_argv(plan, &db.copy_pod, &copy_script::on(copy_script::Side::Source, &scripts::write_marks()))
                ));
            }
            out
        }
        Action::RetainVolumes { volumes } => volumes
            .iter()
            .map(|v| {
                format!(
                    "kubectl patch pv {} -p '{{\"spec\":{{\"persistentVolumeReclaimPolicy\":\"Retain\"}}}}'",
                    v.volume
                )
            })
            .collect(),
        Action::HelmUninstall => vec![helm_line(&argv::uninstall_in(
            release,
            Some(ns),
            plan.helm_timeout_seconds,
        ))],
        Action::RebindAttachments { volume, claim } => vec![format!(
            "kubectl patch pv {volume} --type merge -p '{{\"spec\":{{\"claimRef\":{{\"namespace\":\"{ns}\",\"name\":\"{claim}\",\"uid\":null,\"resourceVersion\":null}}}}}}'"
        )],
        Action::DeleteClaims { claims } => vec![kubectl(
            plan,
            &format!("delete pvc {} --ignore-not-found --wait", claims.join(" ")),
        )],
        Action::BindDatabase => {
            let Some(db) = &plan.new_database else { return vec![] };
            vec![
                kubectl(plan, &format!("delete pod {} --wait", db.pod_name())),
                kubectl(plan, &format!("delete service {}", db.service)),
                format!("PV=$({})", kubectl(plan, &format!("get pvc {} -o jsonpath='{{.spec.volumeName}}'", db.claim))),
                "kubectl patch pv \"$PV\" -p '{\"spec\":{\"persistentVolumeReclaimPolicy\":\"Retain\"}}'".to_string(),
                kubectl(plan, &format!("delete pvc {} --wait", db.claim)),
                format!(
                    "kubectl patch pv \"$PV\" --type merge -p '{{\"spec\":{{\"claimRef\":{{\"namespace\":\"{ns}\",\"name\":\"{}\",\"uid\":null,\"resourceVersion\":null}}}}}}'",
                    db.release_claim
                ),
            ]
        }
        Action::ReplaceSecrets {
            secrets,
            keep_passwords,
        } => {
            let mut out = Vec::new();
            let staged = plan.new_database.as_ref().filter(|db| db.staged);
            if let Some(db) = staged {
                out.push(format!(
                    "# write {} from {} (keys postgres-password, password), labelled app.kubernetes.io/managed-by=Helm and annotated meta.helm.sh/release-name={release}, meta.helm.sh/release-namespace={ns}",
                    db.release_secret, db.secret
                ));
            }
            let rest: Vec<&String> = secrets
                .iter()
                .filter(|s| staged.is_none_or(|db| &db.release_secret != *s))
                .collect();
            if !rest.is_empty() {
                let names: Vec<&str> = rest.iter().map(|s| s.as_str()).collect();
                if *keep_passwords {
                    out.push(format!(
                        "# recreate {} with the old passwords, adoptable by helm as above",
                        names.join(", ")
                    ));
                } else {
                    out.push(kubectl(
                        plan,
                        &format!("delete secret {} --ignore-not-found", names.join(" ")),
                    ));
                }
            }
            out
        }
        Action::HelmInstall => {
            let values: Vec<OsString> = std::iter::once(format!("values-{}.yaml", plan.to_version))
                .chain(plan.overrides.iter().filter_map(|o| o.file().map(str::to_string)))
                .map(OsString::from)
                .collect();
            let operator: Vec<String> = plan
                .overrides
                .iter()
                .filter_map(|o| o.set().map(str::to_string))
                .collect();
            let sets = deploy_sets(
                &plan.replicas,
                plan.odata_enabled,
                plan.new_database.as_ref(),
                false,
                &operator,
            );
            let chart = OsString::from(&plan.chart);
            let install = argv::ReleaseOperation {
                verb: "install",
                release,
                chart: &chart,
                version: plan.chart_remote.then_some(plan.to_version.as_str()),
                namespace: Some(ns),
                values: &values,
                sets: &sets,
                timeout_seconds: plan.helm_timeout_seconds,
            };
            vec![helm_line(&install.argv())]
        }
        Action::WaitApp { deployments } => deployments
            .iter()
            .map(|d| kubectl(plan, &format!("rollout status deployment/{d} --timeout=15m")))
            .collect(),
        Action::ClearOnboarding { pod, host } => vec![exec(
            plan,
            pod,
            &format!(
                "REDISCLI_AUTH=\"$REDIS_PASSWORD\" redis-cli -h {host} DEL {}",
                ONBOARDING_KEY
            ),
        )],
        Action::Verify => {
            let mut out = vec![kubectl(plan, "get deployment,statefulset,pvc")];
            if let Some(a) = &plan.attachments {
                out.push(kubectl(
                    plan,
                    &format!("get pvc {} -o jsonpath='{{.spec.volumeName}}'  # expect {}", a.claim, a.volume),
                ));
            }
            out
        }
        Action::RemoveBackup { objects } => objects
            .iter()
            .map(|o| match &o.namespace {
                Some(_) => kubectl(plan, &format!("delete {} {} --ignore-not-found", o.kind.to_lowercase(), o.name)),
                None => format!("kubectl delete {} {} --ignore-not-found", o.kind.to_lowercase(), o.name),
            })
            .collect(),
        Action::DeleteReleasedVolumes { volumes } => {
            if volumes.is_empty() {
                vec!["kubectl get pv  # Released volumes of the old PostgreSQL and Redis".to_string()]
            } else {
                vec![format!("kubectl delete pv {}", volumes.join(" "))]
            }
        }
        Action::RestoreReclaimPolicy { volume, policy } => vec![format!(
            "kubectl patch pv {volume} -p '{{\"spec\":{{\"persistentVolumeReclaimPolicy\":\"{policy}\"}}}}'"
        )],
        Action::RestoreReplicas { .. }
        | Action::RestoreReclaimPolicies { .. }
        | Action::UninstallTarget
        | Action::ReleaseClaims { .. }
        | Action::RebindVolumes { .. }
        | Action::RestoreSecrets { .. }
        | Action::ReinstallOriginal
        | Action::CheckOriginalDatabase => super::rollback::commands(plan, action),
        Action::WalLevel
        | Action::ReplicaIdentity
        | Action::Subscribe
        | Action::InitialCopy
        | Action::ProveLive
        | Action::CatchUp
        | Action::SyncSequences
        | Action::Unsubscribe
        | Action::UndoReplication => online_commands(plan, action),
    }
}

/// The commands of the online path's steps: psql through the copy pod (PostgreSQL 11 as the
/// app's user, PostgreSQL 15 as `postgres`), or in PostgreSQL 11's own pod.
fn online_commands(plan: &Plan, action: &Action) -> Vec<String> {
    use super::replication as rep;
    let (Some(db), Some(online)) = (&plan.new_database, &plan.online) else {
        return vec![];
    };
    let psql = |side, sql: &str| {
        let argv: Vec<String> = ["psql", "-X", "-A", "-t", "-c", sql]
            .iter()
            .map(|s| s.to_string())
            .collect();
        exec_argv(plan, &db.copy_pod, &copy_script::on(side, &argv))
    };
    let bash = |script: &str| {
        kubectl(
            plan,
            &format!(
                "exec {} -- bash -c {}",
                db.copy_pod,
                scripts::shell_quote(script)
            ),
        )
    };
    let src = copy_script::Side::Source;
    let dst = copy_script::Side::Target;
    match action {
        Action::WalLevel => vec![
            psql(src, &rep::set_wal_level_logical()),
            kubectl(plan, &format!("delete pod {}", online.source_pod)),
            kubectl(
                plan,
                &format!("wait --for=condition=Ready pod/{} --timeout=10m", online.source_pod),
            ),
            psql(src, "show wal_level"),
        ],
        Action::ReplicaIdentity => online
            .identity_fixes
            .iter()
            .map(|f| psql(src, &super::online::replica_identity_sql(f)))
            .collect(),
        Action::Subscribe => vec![
            exec(plan, &db.copy_pod, &rep::start_subscribe()),
            "# repeat until it prints state=finished:0".to_string(),
            exec(plan, &db.copy_pod, &rep::poll_subscribe()),
        ],
        Action::InitialCopy => vec![
            "# repeat until every table is ready (ready, tables, bytes)".to_string(),
            psql(dst, &rep::initial_copy_query()),
        ],
        Action::ProveLive => vec![
            format!("{} > marks-live.txt", psql(src, rep::table_marks_query())),
            format!(
                "{} > source-live.txt",
                exec_argv(plan, &db.copy_pod, &copy_script::on(src, &scripts::fingerprint(HashMethod::CURRENT)))
            ),
            format!(
                "{} > target-live.txt",
                exec_argv(plan, &db.copy_pod, &copy_script::on(dst, &scripts::fingerprint(HashMethod::CURRENT)))
            ),
            "# tables listed differently in source-live.txt and target-live.txt are proven again at the cut-over".to_string(),
        ],
        Action::CatchUp => vec![
            format!("{} > source-schema.txt", psql(src, &crate::verify::sql::schema_objects_query())),
            format!("{} | diff source-schema.txt -", psql(dst, &crate::verify::sql::schema_objects_query())),
            format!("LSN=$({})", psql(src, rep::current_lsn_query())),
            "# repeat until it prints t".to_string(),
            psql(src, &rep::caught_up_query("$LSN")).replace("'$LSN'", "'\"$LSN\"'"),
        ],
        Action::SyncSequences => vec![bash(&rep::sync_sequences_script())],
        Action::Unsubscribe => vec![bash(&rep::unsubscribe_script())],
        Action::UndoReplication => {
            let mut sql = rep::drop_source_side();
            for f in &online.identity_fixes {
                sql.push_str(&format!(" ALTER TABLE {} REPLICA IDENTITY DEFAULT;", f.table));
            }
            let mut out = vec![exec_argv(
                plan,
                &online.source_pod,
                &scripts::in_postgres_pod(&["psql".into(), "-X".into(), "-c".into(), sql]),
            )];
            if online.restart_for_wal_level {
                out.push(exec_argv(
                    plan,
                    &online.source_pod,
                    &scripts::in_postgres_pod(&["psql".into(), "-X".into(), "-c".into(), rep::reset_wal_level()]),
                ));
                out.push(kubectl(plan, &format!("delete pod {}", online.source_pod)));
            }
            out
        }
        _ => vec![],
    }
}

/// The Redis key behind the first-run onboarding screen (Redis::Namespace `alfred`).
pub const ONBOARDING_KEY: &str = "alfred:CHATWOOT_INSTALLATION_ONBOARDING";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::facts::WorkloadRole;

    #[test]
    fn the_operators_sets_come_last_after_the_hook_that_completes_a_failed_install() {
        let app = WorkloadFacts {
            role: WorkloadRole::App,
            name: "app".into(),
            replicas: 2,
            selector: String::new(),
        };
        let sets = deploy_sets(&[app], false, None, true, &["app.replica=5".into()]);
        assert_eq!(
            sets,
            [
                "migration.enabled=true",
                "app.replica=2",
                "odata.enabled=false",
                COMPLETING_HOOK,
                "app.replica=5",
            ]
        );
        assert!(!deploy_sets(&[], true, None, false, &[]).contains(&COMPLETING_HOOK.to_string()));
    }

    #[test]
    fn overrides_are_stored_as_the_helm_words_they_stand_for() {
        let shown = override_args(&["/ops/my values.yaml".into()], &["a.password=x".into()]);
        let words: Vec<String> = shown.iter().cloned().map(String::from).collect();
        assert_eq!(
            words,
            ["-f '/ops/my values.yaml'", "--set a.password=<redacted>"]
        );
        let back: Vec<Override> = words
            .into_iter()
            .map(|w| Override::try_from(w).unwrap())
            .collect();
        assert_eq!(back, shown);
        assert!(Override::try_from("--values x".to_string()).is_err());
    }
}
