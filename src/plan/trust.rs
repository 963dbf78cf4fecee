//! The state is not trusted blindly: whoever may edit the state ConfigMap could point a step
//! at an object the migration has no business with. Before a run acts, every name the stored
//! plan acts on is checked against the names the release's own derive, every
//! PersistentVolume the state names against the claim it serves, and the plugin's pods'
//! image against the one the operator chose (kept in the values Secret). Pure: the reads are
//! in `phases::trust`.

use k8s_openapi::api::core::v1::PersistentVolume;

use super::{own_names, Action, Plan};
use crate::naming::ObjectNames;

/// Whether `claim` is a claim of the release a volume of the migration may serve: the old
/// database's (the new release's has the same name), a Redis one, the attachments', or one
/// of the plugin's own.
pub fn release_claim(names: &ObjectNames, claim: &str) -> bool {
    let release = &names.release;
    claim == names.postgresql_pvc
        || names.is_redis_claim(claim)
        || claim == names.attachments_pvc
        || claim == own_names::new_database(release)
        || claim == own_names::backup_claim(release)
}

/// Why `pv` is not a volume of a claim of the release in `namespace`, if it is not.
pub fn volume_problem(
    pv: &PersistentVolume,
    namespace: &str,
    names: &ObjectNames,
) -> Option<String> {
    let name = pv.metadata.name.as_deref().unwrap_or("");
    let Some(claim) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return Some(format!("PersistentVolume {name} serves no claim"));
    };
    let (ns, claim) = (
        claim.namespace.as_deref().unwrap_or(""),
        claim.name.as_deref().unwrap_or(""),
    );
    if ns != namespace {
        Some(format!(
            "PersistentVolume {name} serves claim {ns}/{claim}, in another namespace than {namespace}"
        ))
    } else if !release_claim(names, claim) {
        Some(format!(
            "PersistentVolume {name} serves claim {ns}/{claim}, not a claim of release {}",
            names.release
        ))
    } else {
        None
    }
}

/// Every PersistentVolume the plan patches or deletes.
pub fn volumes(plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = plan.attachments.iter().map(|a| a.volume.clone()).collect();
    for step in &plan.steps {
        match &step.action {
            Action::RetainVolumes { volumes } => {
                out.extend(volumes.iter().map(|v| v.volume.clone()))
            }
            Action::RebindAttachments { volume, .. }
            | Action::RestoreReclaimPolicy { volume, .. } => out.push(volume.clone()),
            Action::DeleteReleasedVolumes { volumes } => out.extend(volumes.iter().cloned()),
            Action::ReleaseClaims { claims: volumes } | Action::RebindVolumes { volumes } => {
                out.extend(volumes.iter().map(|v| v.volume.clone()))
            }
            Action::RestoreReclaimPolicies { policies } => out.extend(policies.keys().cloned()),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

fn expect(problems: &mut Vec<String>, what: &str, found: &str, wanted: &str) {
    if found != wanted {
        problems.push(format!("{what} is {found:?}, not {wanted:?}"));
    }
}

/// What in the plan is not named as the release's names (`names`, of the old chart) and the
/// plugin's own derive, for `namespace`: empty when everything is.
pub fn plan_problems(plan: &Plan, namespace: &str, names: &ObjectNames) -> Vec<String> {
    let release = names.release.as_str();
    let mut bad = Vec::new();
    let p = &mut bad;
    expect(p, "the release", &plan.release, release);
    expect(p, "the namespace", &plan.namespace, namespace);
    expect(
        p,
        "the state ConfigMap",
        &plan.state_config_map,
        &own_names::state(release),
    );
    expect(
        p,
        "the values Secret",
        &plan.values_secret,
        &own_names::values_secret(release),
    );
    if let Some(db) = &plan.new_database {
        let own = own_names::new_database(release);
        expect(p, "PostgreSQL 15's claim", &db.claim, &own);
        expect(p, "PostgreSQL 15's pod", &db.pod_name(), &own);
        expect(p, "PostgreSQL 15's Service", &db.service, &own);
        if db.staged {
            expect(p, "the staged passwords' Secret", &db.secret, &own);
        }
        let secret = &names.postgresql_secret;
        expect(p, "the new database Secret", &db.release_secret, secret);
        let claim = &names.postgresql_pvc;
        expect(p, "the new database claim", &db.release_claim, claim);
        expect(
            p,
            "the copy pod",
            &db.copy_pod,
            &own_names::copy_pod(release),
        );
    }
    if let Some(online) = &plan.online {
        expect(
            p,
            "the PostgreSQL pod restarted for wal_level",
            &online.source_pod,
            &names.postgresql_pod,
        );
        for fix in &online.identity_fixes {
            let names_ok = quoted_names(&fix.table) == Some(2)
                && fix
                    .index
                    .as_deref()
                    .is_none_or(|i| quoted_names(i) == Some(1));
            if !names_ok {
                p.push(format!(
                    "the replica identity of {:?} (index {:?}) is not a quoted table and index name",
                    fix.table, fix.index
                ));
            }
        }
    }
    if let Some(b) = &plan.backup {
        expect(
            p,
            "the dump claim",
            &b.claim,
            &own_names::backup_claim(release),
        );
        expect(
            p,
            "the dump pod",
            &b.dump_pod,
            &own_names::dump_pod(release),
        );
    }
    if let Some(a) = &plan.attachments {
        expect(p, "the attachments claim", &a.claim, names.attachments_pvc);
    }
    let own = [
        own_names::new_database(release),
        own_names::copy_pod(release),
        own_names::dump_pod(release),
        own_names::backup_claim(release),
        own_names::values_secret(release),
    ];
    let app = [
        &names.app_deployment,
        &names.worker_deployment,
        &names.odata_deployment,
    ];
    for step in &plan.steps {
        let id = &step.id;
        match &step.action {
            Action::DeleteClaims { claims } => p.extend(
                claims
                    .iter()
                    .filter(|c| **c != names.postgresql_pvc && !names.is_redis_claim(c))
                    .map(|c| format!("step {id} deletes claim {c:?}, not a database or Redis claim of release {release}")),
            ),
            Action::RetainVolumes { volumes }
            | Action::RebindVolumes { volumes }
            | Action::ReleaseClaims { claims: volumes } => p.extend(
                volumes
                    .iter()
                    .filter(|v| !release_claim(names, &v.claim))
                    .map(|v| format!("step {id} acts on the volume of claim {:?}, not a claim of release {release}", v.claim)),
            ),
            Action::RebindAttachments { claim, .. } => {
                expect(p, &format!("the claim of step {id}"), claim, names.attachments_pvc)
            }
            Action::ReplaceSecrets { secrets, .. } | Action::RestoreSecrets { secrets } => p.extend(
                secrets
                    .iter()
                    .filter(|s| **s != names.postgresql_secret && **s != names.redis_secret)
                    .map(|s| format!("step {id} replaces Secret {s:?}, not a database Secret of release {release}")),
            ),
            Action::RemoveBackup { objects } => p.extend(
                objects
                    .iter()
                    .filter(|o| o.namespace.as_deref() != Some(namespace) || !own.contains(&o.name))
                    .map(|o| format!("step {id} removes {o}, not an object of the plugin for release {release}")),
            ),
            Action::RestoreReplicas { replicas } => p.extend(
                replicas
                    .keys()
                    .filter(|d| !app.contains(d))
                    .map(|d| format!("step {id} scales Deployment {d:?}, not one of release {release}")),
            ),
            Action::ScaleDown { deployments, .. } => p.extend(
                deployments
                    .iter()
                    .filter(|d| !app.contains(d))
                    .map(|d| format!("step {id} scales Deployment {d:?}, not one of release {release}")),
            ),
            _ => {}
        }
    }
    bad
}

/// How many dot-separated names `text` is, each as PostgreSQL's `quote_ident` prints one (a
/// lower-case name, or a double-quoted one with inner quotes doubled); `None` when it is
/// anything else, e.g. SQL text written into the state.
fn quoted_names(text: &str) -> Option<usize> {
    let mut count = 0;
    let mut rest = text;
    loop {
        count += 1;
        rest = if let Some(quoted) = rest.strip_prefix('"') {
            let mut chars = quoted.char_indices().peekable();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if chars.peek().map(|(_, n)| *n) == Some('"') {
                        chars.next();
                    } else {
                        end = Some(i);
                        break;
                    }
                }
            }
            &quoted[end? + 1..]
        } else {
            let len = rest
                .find(|c: char| {
                    !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
                })
                .unwrap_or(rest.len());
            if len == 0 || rest.starts_with(|c: char| c.is_ascii_digit() || c == '$') {
                return None;
            }
            &rest[len..]
        };
        match rest.strip_prefix('.') {
            Some(next) => rest = next,
            None if rest.is_empty() => return Some(count),
            None => return None,
        }
    }
}

/// The image of the plugin's own pods, when it is not the one the operator chose.
pub fn image_problems(plan: &Plan, chosen: &str) -> Vec<String> {
    let images = [
        plan.new_database
            .as_ref()
            .map(|d| ("the copy pod", &d.image)),
        plan.backup.as_ref().map(|b| ("the dump pod", &b.image)),
    ];
    images
        .into_iter()
        .flatten()
        .filter(|(_, image)| image.as_str() != chosen)
        .map(|(pod, image)| {
            format!(
                "the image of {pod} is {image:?}, not {chosen:?}, the one chosen for the migration"
            )
        })
        .collect()
}

#[cfg(test)]
mod quoted_names_tests {
    use super::quoted_names;

    #[test]
    fn only_names_as_quote_ident_prints_them_pass() {
        assert_eq!(quoted_names("public.portals_members"), Some(2));
        assert_eq!(quoted_names(r#""My Schema"."t ""x"" y""#), Some(2));
        assert_eq!(quoted_names("index_portals_members"), Some(1));
        for bad in [
            "public.t; DROP TABLE accounts",
            "public.t REPLICA IDENTITY FULL; --",
            "",
            "public.",
            r#""unterminated"#,
            "Upper.t",
            "1abc",
        ] {
            assert_eq!(quoted_names(bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::{Generation, NameInputs};
    use crate::plan::{build, fixtures::release_4_43, Options};

    fn names(release: &str) -> ObjectNames {
        ObjectNames::new(release, &NameInputs::default(), Generation::Pg11)
    }

    fn pv(name: &str, claim: Option<(&str, &str)>) -> PersistentVolume {
        let claim_ref = claim
            .map(|(ns, c)| format!("  claimRef: {{namespace: {ns}, name: {c}}}\n"))
            .unwrap_or_default();
        serde_norway::from_str(&format!(
            "metadata: {{name: {name}}}\nspec:\n{claim_ref}  capacity: {{storage: 1Gi}}\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_volume_is_the_releases_only_when_it_serves_a_claim_the_releases_names_derive() {
        let n = names("cognigy-live-agent");
        let ns = "live-agent";
        for claim in [
            "data-cognigy-live-agent-postgresql-0",
            "redis-data-cognigy-live-agent-redis-replicas-2",
            "live-agent",
            "la-migrate-cognigy-live-agent-postgresql",
        ] {
            assert_eq!(
                volume_problem(&pv("v", Some((ns, claim))), ns, &n),
                None,
                "{claim}"
            );
        }
        assert_eq!(
            volume_problem(&pv("v", Some(("other", "live-agent"))), ns, &n).as_deref(),
            Some("PersistentVolume v serves claim other/live-agent, in another namespace than live-agent")
        );
        assert_eq!(
            volume_problem(&pv("v", Some((ns, "billing-data"))), ns, &n).as_deref(),
            Some("PersistentVolume v serves claim live-agent/billing-data, not a claim of release cognigy-live-agent")
        );
        assert_eq!(
            volume_problem(&pv("v", None), ns, &n).as_deref(),
            Some("PersistentVolume v serves no claim")
        );
    }

    #[test]
    fn a_plan_as_built_names_only_the_releases_objects() {
        let facts = release_4_43();
        let plan = build(&facts, &Options::default()).unwrap();
        let n = names(&facts.release.name);
        assert_eq!(
            plan_problems(&plan, &facts.namespace, &n),
            Vec::<String>::new()
        );
        assert_eq!(
            image_problems(&plan, crate::plan::options::DEFAULT_BACKUP_IMAGE),
            Vec::<String>::new()
        );
        assert!(!volumes(&plan).is_empty());
    }

    #[test]
    fn a_plan_edited_to_act_on_other_objects_is_told_apart() {
        let facts = release_4_43();
        let mut plan = build(&facts, &Options::default()).unwrap();
        let n = names(&facts.release.name);
        for step in &mut plan.steps {
            match &mut step.action {
                Action::DeleteClaims { claims } => claims.push("billing-data".into()),
                Action::ReplaceSecrets { secrets, .. } => secrets.push("tls-cert".into()),
                _ => {}
            }
        }
        plan.new_database.as_mut().unwrap().image = "evil.example/tools:latest".into();
        let problems = plan_problems(&plan, &facts.namespace, &n);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("deletes claim \"billing-data\""),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("replaces Secret \"tls-cert\""),
            "{problems:?}"
        );
        assert_eq!(
            plan_problems(&plan, "elsewhere", &n),
            [
                "the namespace is \"live-agent\", not \"elsewhere\"".to_string(),
                problems[0].clone(),
                problems[1].clone()
            ]
        );
        let images = image_problems(&plan, crate::plan::options::DEFAULT_BACKUP_IMAGE);
        assert_eq!(images.len(), 1);
        assert!(images[0].starts_with("the image of the copy pod is \"evil.example/tools:latest\""));
    }

    #[test]
    fn a_rollback_names_only_the_releases_objects_and_an_edited_one_is_told_apart() {
        let facts = release_4_43();
        let mut plan = build(&facts, &Options::default()).unwrap();
        let n = names(&facts.release.name);
        let rollback = crate::plan::rollback::RollbackFacts {
            past_point_of_no_return: true,
            replicas: [(n.app_deployment.clone(), 2)].into_iter().collect(),
            reclaim_policies: Default::default(),
            proven: true,
        };
        let steps = crate::plan::rollback::steps(&plan, &rollback);
        plan.steps.extend(steps);
        assert_eq!(
            plan_problems(&plan, &facts.namespace, &n),
            Vec::<String>::new()
        );
        for step in &mut plan.steps {
            match &mut step.action {
                Action::RestoreSecrets { secrets } => secrets.push("tls-cert".into()),
                Action::RestoreReplicas { replicas } => {
                    replicas.insert("billing".into(), 1);
                }
                _ => {}
            }
        }
        let problems = plan_problems(&plan, &facts.namespace, &n);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("Secret \"tls-cert\""), "{problems:?}");
        assert!(
            problems[1].contains("Deployment \"billing\""),
            "{problems:?}"
        );
    }
}
