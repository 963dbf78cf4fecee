//! The commands an operator would run by hand for each step: the runbook's content. Pure.
//! No command carries a secret: passwords stay in Secrets and pod environments.

use super::facts::WorkloadFacts;
use super::manifests::{self, Direction};
use super::scripts;
use super::{Action, Plan};
use crate::redact;
use crate::verify::HashMethod;

/// The helm `--set` values the install adds: the app stays off while the database is empty.
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

/// The helm `--set` values the upgrade adds: migration on, replicas and odata as recorded.
pub fn upgrade_sets(replicas: &[WorkloadFacts], odata_enabled: bool) -> Vec<String> {
    let mut sets = vec!["migration.enabled=true".to_string()];
    for w in replicas {
        sets.push(format!("{}={}", replica_key(w.role), w.replicas));
    }
    sets.push(format!("odata.enabled={odata_enabled}"));
    sets
}

/// The operator's extra values as helm arguments for the runbook: `-f FILE` for each values
/// file, `--set KEY=VALUE` with each secret value redacted (`redact::set_arg`).
pub fn override_args(files: &[String], sets: &[String]) -> Vec<String> {
    override_args_shown(files, sets, redact::Show::Public)
}

fn override_args_shown(files: &[String], sets: &[String], show: redact::Show) -> Vec<String> {
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
        .map(|f| format!("-f {}", scripts::shell_quote_if_needed(f)))
        .chain(
            sets.iter()
                .map(|s| format!("--set {}", quote(&redact::set_arg(s, show)))),
        )
        .collect()
}

/// Replaces the plan's overrides, and the install and upgrade commands that show them.
pub fn set_overrides(plan: &mut Plan, overrides: Vec<String>) {
    plan.overrides = overrides;
    let refreshed = plan.clone();
    for step in &mut plan.steps {
        if matches!(step.action, Action::HelmInstall | Action::HelmUpgrade) {
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
        .map(|arg| match arg.strip_prefix("--set ") {
            Some(set) => {
                override_args_shown(&[], &[set.to_string()], redact::Show::KeysOnly).concat()
            }
            None => arg.clone(),
        })
        .collect();
    set_overrides(&mut stored, overrides);
    stored
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
        Action::BackupVolume => {
            let Some(b) = &plan.backup else { return vec![] };
            let claim = manifests::backup_claim(b, ns, release);
            let pod = manifests::tools_pod(b, Direction::Dump, ns, release);
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
                "# per-table row counts and content hashes of the source, kept for the restore check"
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
        Action::Confirm { .. } => vec!["# point of no return: check the backup before going on".to_string()],
        Action::RetainVolumes { volumes } => volumes
            .iter()
            .map(|v| {
                format!(
                    "kubectl patch pv {} -p '{{\"spec\":{{\"persistentVolumeReclaimPolicy\":\"Retain\"}}}}'",
                    v.volume
                )
            })
            .collect(),
        Action::HelmUninstall => vec![format!(
            "helm uninstall {release} -n {ns} --wait --timeout {}s",
            plan.helm_timeout_seconds
        )],
        Action::RebindAttachments { volume, claim } => vec![format!(
            "kubectl patch pv {volume} --type merge -p '{{\"spec\":{{\"claimRef\":{{\"namespace\":\"{ns}\",\"name\":\"{claim}\",\"uid\":null,\"resourceVersion\":null}}}}}}'"
        )],
        Action::DeleteClaims { claims } => vec![kubectl(
            plan,
            &format!("delete pvc {} --ignore-not-found --wait", claims.join(" ")),
        )],
        Action::ReplaceSecrets {
            secrets,
            keep_passwords,
        } => {
            if *keep_passwords {
                vec![format!(
                    "# recreate {} with the 4.44 keys (postgres-password, password) and the old passwords",
                    secrets.join(", ")
                )]
            } else {
                vec![kubectl(
                    plan,
                    &format!("delete secret {} --ignore-not-found", secrets.join(" ")),
                )]
            }
        }
        Action::HelmInstall => {
            // The user's --set first: the install's own settings win.
            let args: Vec<String> = plan
                .overrides
                .iter()
                .cloned()
                .chain(install_sets().iter().map(|s| format!("--set {s}")))
                .collect();
            vec![format!(
                "helm install {release} {} -n {ns} -f values-{}.yaml {} --timeout {}s",
                helm_chart_args(plan),
                plan.to_version,
                args.join(" "),
                plan.helm_timeout_seconds
            )]
        }
        Action::WaitDatabases { pods } => pods
            .iter()
            .map(|p| kubectl(plan, &format!("wait --for=condition=Ready pod/{p} --timeout=15m")))
            .collect(),
        Action::Restore => {
            let Some(b) = &plan.backup else { return vec![] };
            let pod = manifests::tools_pod(b, Direction::Restore, ns, release);
            vec![
                kubectl(plan, &format!("delete pod {} --ignore-not-found --wait", b.dump_pod)),
                format!("kubectl apply -f - <<'EOF'\n{}EOF", manifests::to_yaml(&pod)),
                kubectl(plan, &format!("wait --for=condition=Ready pod/{} --timeout=10m", b.restore_pod)),
                exec(plan, &b.restore_pod, &scripts::check_archive()),
                exec(
                    plan,
                    &b.restore_pod,
                    &scripts::start_restore(b.jobs, &b.target.database, &b.source.user),
                ),
                "# repeat until it prints state=finished:0".to_string(),
                exec(plan, &b.restore_pod, &scripts::poll_restore()),
            ]
        }
        Action::VerifyRestore => {
            let Some(b) = &plan.backup else { return vec![] };
            vec![format!(
                "{} > target-fingerprint.txt && diff source-fingerprint.txt target-fingerprint.txt",
                exec_argv(plan, &b.restore_pod, &scripts::fingerprint(HashMethod::CURRENT))
            )]
        }
        Action::HelmUpgrade => {
            // The user's --set last: they choose the final replicas.
            let (files, sets): (Vec<String>, Vec<String>) =
                plan.overrides.iter().cloned().partition(|a| a.starts_with("-f "));
            let args: Vec<String> = files
                .into_iter()
                .chain(
                    upgrade_sets(&plan.replicas, plan.odata_enabled)
                        .iter()
                        .map(|s| format!("--set {s}")),
                )
                .chain(sets)
                .collect();
            vec![format!(
                "helm upgrade {release} {} -n {ns} -f values-{}.yaml {} --timeout {}s",
                helm_chart_args(plan),
                plan.to_version,
                args.join(" "),
                plan.helm_timeout_seconds
            )]
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
    }
}

/// The Redis key behind the first-run onboarding screen (Redis::Namespace `alfred`).
pub const ONBOARDING_KEY: &str = "alfred:CHATWOOT_INSTALLATION_ONBOARDING";
