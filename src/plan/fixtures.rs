//! Facts of a typical 4.43.1 release, for the plan's tests: plain functions over inline data.

use super::facts::*;

pub fn names(release: &str) -> Names {
    Names {
        old_app_deployment: release.to_string(),
        new_app_deployment: format!("{release}-app"),
        worker_deployment: format!("{release}-worker"),
        odata_deployment: format!("{release}-odata"),
        postgres_pod: format!("{release}-postgresql-0"),
        postgres_service: format!("{release}-postgresql"),
        postgres_claim: format!("data-{release}-postgresql-0"),
        postgres_secret: format!("{release}-postgresql"),
        redis_master_pod: format!("{release}-redis-master-0"),
        redis_master_service: format!("{release}-redis-master"),
        redis_secret: format!("{release}-redis"),
        attachments_claim: "live-agent".to_string(),
        migration_job: format!("{release}-migrate"),
        kept_secrets: vec![
            format!("{release}-cookies-integrity"),
            format!("{release}-cognigy-platform-app-token"),
        ],
    }
}

fn volume(role: VolumeRole, claim: &str, pv: &str, policy: &str) -> VolumeFacts {
    VolumeFacts {
        role,
        claim: claim.to_string(),
        volume: Some(pv.to_string()),
        reclaim_policy: Some(policy.to_string()),
        storage_class: Some("standard".to_string()),
        capacity_bytes: 8 << 30,
    }
}

/// `cognigy-live-agent` on chart 4.43.1 in `live-agent`, internal PostgreSQL and Redis.
pub fn release_4_43() -> Facts {
    let r = "cognigy-live-agent";
    let mut volumes = vec![
        volume(
            VolumeRole::Attachments,
            "live-agent",
            "pvc-attach",
            "Delete",
        ),
        volume(
            VolumeRole::Postgres,
            &format!("data-{r}-postgresql-0"),
            "pvc-pg",
            "Delete",
        ),
    ];
    let redis_claims: Vec<String> = std::iter::once(format!("redis-data-{r}-redis-master-0"))
        .chain((0..3).map(|i| format!("redis-data-{r}-redis-replicas-{i}")))
        .collect();
    for (i, c) in redis_claims.iter().enumerate() {
        volumes.push(volume(
            VolumeRole::Redis,
            c,
            &format!("pvc-redis-{i}"),
            "Retain",
        ));
    }
    let workload = |role, name: String, replicas| WorkloadFacts {
        role,
        selector: format!("app.kubernetes.io/instance={r},app.kubernetes.io/name={name}"),
        name,
        replicas,
    };
    Facts {
        namespace: "live-agent".to_string(),
        release: ReleaseFacts {
            name: r.to_string(),
            status: "deployed".to_string(),
            chart_version: "4.43.1".to_string(),
            revision: 3,
        },
        target: TargetFacts {
            chart: "oci://cognigy.azurecr.io/helm/live-agent".to_string(),
            remote: true,
            version: "4.44.0".to_string(),
            version_given: false,
            chart_version: "4.44.0".to_string(),
            postgresql_subchart: Some("12.1.6".to_string()),
            redis_subchart: Some("17.4.0".to_string()),
            images: vec![
                "cognigy.azurecr.io/live-agent:9484cb8dbbad10a2bfc01740ca1e18fbc6992199-1674817275"
                    .to_string(),
                "docker.io/bitnami/postgresql:15.1.0-debian-11-r12".to_string(),
                "docker.io/bitnamilegacy/redis:7.0.7-debian-11-r2".to_string(),
            ],
            postgres: target_postgres(r),
        },
        names: names(r),
        postgres: PostgresFacts::Internal {
            secret: format!("{r}-postgresql"),
            password_key: "postgresql-password".to_string(),
            existing_secret: false,
            username: "postgres".to_string(),
            database: "live_agent_production".to_string(),
            size_bytes: 700 << 20,
            server_version: "11.14".to_string(),
        },
        redis: RedisFacts::Internal {
            secret: format!("{r}-redis"),
            password_key: "redis-password".to_string(),
            existing_secret: false,
            claims: redis_claims,
        },
        workloads: vec![
            workload(WorkloadRole::Worker, format!("{r}-worker"), 3),
            workload(WorkloadRole::App, r.to_string(), 2),
            workload(WorkloadRole::Odata, format!("{r}-odata"), 1),
        ],
        volumes,
        secrets: vec![
            SecretFacts {
                role: SecretRole::Postgres,
                name: format!("{r}-postgresql"),
                keys: vec!["postgresql-password".to_string()],
            },
            SecretFacts {
                role: SecretRole::Redis,
                name: format!("{r}-redis"),
                keys: vec!["redis-password".to_string()],
            },
            SecretFacts {
                role: SecretRole::Kept,
                name: format!("{r}-cookies-integrity"),
                keys: vec!["cookies-integrity-key".to_string()],
            },
            SecretFacts {
                role: SecretRole::Kept,
                name: format!("{r}-cognigy-platform-app-token"),
                keys: vec!["cognigy-platform-app-token".to_string()],
            },
        ],
        storage: StorageFacts {
            default_class: Some("standard".to_string()),
            classes: vec!["standard".to_string(), "fast".to_string()],
            quotas: vec![],
        },
        permissions: vec![PermissionFacts {
            verb: "patch".to_string(),
            group: String::new(),
            resource: "persistentvolumes".to_string(),
            namespaced: false,
            allowed: true,
        }],
        odata_enabled: true,
        values_notes: vec![],
        online: None,
    }
}

/// The 4.44.0 chart's PostgreSQL StatefulSet as `helm template` renders it, for release `r`.
pub fn target_postgres(r: &str) -> Option<super::target_postgres::TargetPostgres> {
    let rendered = include_str!("../../tests/fixtures/rendered/postgresql-statefulset-4.44.0.yaml")
        .replace("cognigy-live-agent", r);
    super::target_postgres::find(&rendered, &format!("{r}-postgresql"))
}
