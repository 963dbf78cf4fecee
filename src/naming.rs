//! Object names the live-agent chart derives from the release name and values, for both chart
//! generations (<= 4.43 with PostgreSQL 11 / Redis 6, >= 4.44 with PostgreSQL 15 / Redis 7).
//!
//! The rules follow the charts' `templates/_helpers.tpl` and the Bitnami subcharts'
//! `common.names.fullname`: nothing here is hard-coded to one release name. Pure: no I/O.

use serde::Serialize;

/// The chart's name (`Chart.yaml` `name`), the default of `nameOverride`.
pub const CHART_NAME: &str = "live-agent";

/// The attachments PVC: a fixed name in every chart version.
pub const ATTACHMENTS_PVC: &str = "live-agent";

/// The StorageClass the chart creates with `storage.cloudProvider: aws` (reclaim policy Delete).
pub const AWS_EFS_STORAGE_CLASS: &str = "live-agent-aws-efs-storage";

/// Which chart generation a name is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generation {
    /// chart <= 4.43.x: Bitnami postgresql 10.16.2 (PostgreSQL 11), redis 15.7.6 (Redis 6.2)
    Pg11,
    /// chart >= 4.44.0: Bitnami postgresql 12.1.6 (PostgreSQL 15), redis 17.4.0 (Redis 7.0)
    Pg15,
}

/// What the naming rules read from the values: the overrides that change names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameInputs {
    /// `fullnameOverride`
    pub fullname_override: Option<String>,
    /// `nameOverride`
    pub name_override: Option<String>,
    /// `postgresql.fullnameOverride`
    pub postgresql_fullname_override: Option<String>,
    /// `postgresql.nameOverride` (the chart's default values set it to `postgresql`)
    pub postgresql_name_override: Option<String>,
    /// `redis.fullnameOverride`
    pub redis_fullname_override: Option<String>,
    /// `redis.nameOverride` (the chart's default values set it to `redis`)
    pub redis_name_override: Option<String>,
}

impl NameInputs {
    /// Reads the overrides from a values tree (user values; absent keys mean chart defaults).
    pub fn from_values(values: &serde_norway::Value) -> NameInputs {
        let get = |path: &[&str]| -> Option<String> {
            let mut v = values;
            for p in path {
                v = v.get(*p)?;
            }
            match v {
                serde_norway::Value::String(s) if !s.is_empty() => Some(s.clone()),
                _ => None,
            }
        };
        NameInputs {
            fullname_override: get(&["fullnameOverride"]),
            name_override: get(&["nameOverride"]),
            postgresql_fullname_override: get(&["postgresql", "fullnameOverride"]),
            postgresql_name_override: get(&["postgresql", "nameOverride"]),
            redis_fullname_override: get(&["redis", "fullnameOverride"]),
            redis_name_override: get(&["redis", "nameOverride"]),
        }
    }
}

/// Helm's `trunc 63 | trimSuffix "-"` (trimSuffix removes one dash).
fn trunc63(name: &str) -> String {
    let cut: String = name.chars().take(63).collect();
    cut.strip_suffix('-').map(str::to_string).unwrap_or(cut)
}

/// The `<chart>.fullname` rule shared by the live-agent chart and the Bitnami subcharts:
/// `fullnameOverride`, else the release name when it contains the (overridden) chart name,
/// else `<release>-<name>`.
pub fn fullname_rule(
    release: &str,
    chart_name: &str,
    name_override: Option<&str>,
    fullname_override: Option<&str>,
) -> String {
    if let Some(f) = fullname_override.filter(|f| !f.is_empty()) {
        return trunc63(f);
    }
    let name = name_override
        .filter(|n| !n.is_empty())
        .unwrap_or(chart_name);
    if release.contains(name) {
        trunc63(release)
    } else {
        trunc63(&format!("{release}-{name}"))
    }
}

/// Every object name of one release that the migration touches or must keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectNames {
    pub generation: Generation,
    pub release: String,
    /// `live-agent.fullname`
    pub fullname: String,
    /// The app Deployment (and its Service): `<fullname>` before 4.44, `<fullname>-app` after
    pub app_deployment: String,
    pub app_service: String,
    pub worker_deployment: String,
    pub odata_deployment: String,
    pub ingress: String,
    pub configmap: String,
    /// The migration Job (hook): `<release>-migrate`
    pub migration_job: String,
    /// The PostgreSQL StatefulSet, its Service and its Secret
    pub postgresql: String,
    pub postgresql_pod: String,
    pub postgresql_headless_service: String,
    pub postgresql_secret: String,
    /// The PostgreSQL data PVC (same name in both generations: the old one must go)
    pub postgresql_pvc: String,
    /// Secret keys of the chart-created PostgreSQL Secret holding the admin password
    pub postgresql_admin_password_key: &'static str,
    pub redis: String,
    pub redis_master: String,
    pub redis_replicas: String,
    pub redis_master_pod: String,
    pub redis_secret: String,
    pub redis_password_key: &'static str,
    /// Secrets with `helm.sh/resource-policy: keep`: never delete them
    pub kept_secrets: Vec<String>,
    pub attachments_pvc: &'static str,
}

impl ObjectNames {
    /// Whether a claim belongs to the bundled Redis: the `redis-data` claim of the master or
    /// of any replica (`replica.replicaCount` replicas, or more left from an earlier count).
    pub fn is_redis_claim(&self, claim: &str) -> bool {
        [&self.redis_master, &self.redis_replicas]
            .iter()
            .any(|set| {
                claim
                    .strip_prefix(&format!("redis-data-{set}-"))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
    }

    pub fn new(release: &str, inputs: &NameInputs, generation: Generation) -> ObjectNames {
        let fullname = fullname_rule(
            release,
            CHART_NAME,
            inputs.name_override.as_deref(),
            inputs.fullname_override.as_deref(),
        );
        // The subcharts compute their own fullname with their own overrides; the chart's
        // default values set `nameOverride: postgresql` / `redis`.
        let postgresql = fullname_rule(
            release,
            "postgresql",
            Some(
                inputs
                    .postgresql_name_override
                    .as_deref()
                    .unwrap_or("postgresql"),
            ),
            inputs.postgresql_fullname_override.as_deref(),
        );
        let redis = fullname_rule(
            release,
            "redis",
            Some(inputs.redis_name_override.as_deref().unwrap_or("redis")),
            inputs.redis_fullname_override.as_deref(),
        );
        let app = match generation {
            Generation::Pg11 => fullname.clone(),
            Generation::Pg15 => format!("{fullname}-app"),
        };
        let headless = match generation {
            Generation::Pg11 => format!("{postgresql}-headless"),
            Generation::Pg15 => format!("{postgresql}-hl"),
        };
        let redis_master = format!("{redis}-master");
        let redis_replicas = format!("{redis}-replicas");
        ObjectNames {
            generation,
            release: release.to_string(),
            app_deployment: app.clone(),
            app_service: app,
            worker_deployment: format!("{fullname}-worker"),
            odata_deployment: format!("{fullname}-odata"),
            ingress: fullname.clone(),
            configmap: fullname.clone(),
            migration_job: trunc63(&format!("{release}-migrate")),
            postgresql_pod: format!("{postgresql}-0"),
            postgresql_headless_service: headless,
            postgresql_secret: postgresql.clone(),
            postgresql_pvc: format!("data-{postgresql}-0"),
            postgresql_admin_password_key: match generation {
                Generation::Pg11 => "postgresql-password",
                Generation::Pg15 => "postgres-password",
            },
            postgresql,
            redis_master_pod: format!("{redis_master}-0"),
            redis_master,
            redis_replicas,
            redis_secret: redis.clone(),
            redis_password_key: "redis-password",
            redis,
            kept_secrets: vec![
                trunc63(&format!("{release}-cookies-integrity")),
                trunc63(&format!("{release}-cognigy-platform-app-token")),
            ],
            attachments_pvc: ATTACHMENTS_PVC,
            fullname,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_release_keeps_its_name_as_fullname() {
        let n = ObjectNames::new(
            "cognigy-live-agent",
            &NameInputs::default(),
            Generation::Pg11,
        );
        assert_eq!(n.fullname, "cognigy-live-agent");
        assert_eq!(n.app_service, "cognigy-live-agent");
        assert_eq!(n.postgresql, "cognigy-live-agent-postgresql");
        assert_eq!(
            n.postgresql_headless_service,
            "cognigy-live-agent-postgresql-headless"
        );
        assert_eq!(n.postgresql_pvc, "data-cognigy-live-agent-postgresql-0");
        assert_eq!(n.postgresql_admin_password_key, "postgresql-password");
        for claim in [
            "redis-data-cognigy-live-agent-redis-master-0",
            "redis-data-cognigy-live-agent-redis-replicas-0",
            "redis-data-cognigy-live-agent-redis-replicas-2",
            "redis-data-cognigy-live-agent-redis-replicas-11",
        ] {
            assert!(n.is_redis_claim(claim), "{claim}");
        }
        for claim in [
            "data-cognigy-live-agent-postgresql-0",
            "redis-data-cognigy-live-agent-redis-replicas-",
            "redis-data-cognigy-live-agent-redis-replicas-x",
            "redis-data-other-redis-master-0",
            "live-agent",
        ] {
            assert!(!n.is_redis_claim(claim), "{claim}");
        }
        assert_eq!(
            n.kept_secrets,
            [
                "cognigy-live-agent-cookies-integrity",
                "cognigy-live-agent-cognigy-platform-app-token"
            ]
        );
    }

    #[test]
    fn the_4_44_chart_appends_app_and_renames_the_headless_service() {
        let n = ObjectNames::new(
            "cognigy-live-agent",
            &NameInputs::default(),
            Generation::Pg15,
        );
        assert_eq!(n.app_deployment, "cognigy-live-agent-app");
        assert_eq!(n.app_service, "cognigy-live-agent-app");
        assert_eq!(n.worker_deployment, "cognigy-live-agent-worker");
        assert_eq!(n.ingress, "cognigy-live-agent");
        assert_eq!(
            n.postgresql_headless_service,
            "cognigy-live-agent-postgresql-hl"
        );
        assert_eq!(n.postgresql_pvc, "data-cognigy-live-agent-postgresql-0");
        assert_eq!(n.postgresql_admin_password_key, "postgres-password");
    }

    #[test]
    fn a_release_without_the_chart_name_gets_it_appended() {
        let n = ObjectNames::new("prod", &NameInputs::default(), Generation::Pg15);
        assert_eq!(n.fullname, "prod-live-agent");
        assert_eq!(n.app_service, "prod-live-agent-app");
        assert_eq!(n.postgresql, "prod-postgresql");
        assert_eq!(n.redis_master, "prod-redis-master");
        assert_eq!(n.kept_secrets[0], "prod-cookies-integrity");
    }

    #[test]
    fn fullname_override_wins_and_is_truncated_like_helm() {
        let inputs = NameInputs {
            fullname_override: Some("chat".into()),
            ..NameInputs::default()
        };
        let n = ObjectNames::new("prod", &inputs, Generation::Pg15);
        assert_eq!(n.fullname, "chat");
        assert_eq!(n.app_service, "chat-app");
        // Subchart names do not follow the parent's fullnameOverride.
        assert_eq!(n.postgresql, "prod-postgresql");

        let long = format!("{}-x", "a".repeat(62));
        assert_eq!(fullname_rule(&long, CHART_NAME, None, None), "a".repeat(62));
    }

    #[test]
    fn name_override_changes_the_contains_test() {
        let inputs = NameInputs {
            name_override: Some("chat".into()),
            ..NameInputs::default()
        };
        assert_eq!(
            ObjectNames::new("chat-prod", &inputs, Generation::Pg11).fullname,
            "chat-prod"
        );
        assert_eq!(
            ObjectNames::new("cognigy-live-agent", &inputs, Generation::Pg11).fullname,
            "cognigy-live-agent-chat"
        );
    }

    #[test]
    fn overrides_are_read_from_values() {
        let v: serde_norway::Value = serde_norway::from_str(
            "fullnameOverride: la\npostgresql:\n  fullnameOverride: db\nredis:\n  nameOverride: cache\n",
        )
        .unwrap();
        let inputs = NameInputs::from_values(&v);
        let n = ObjectNames::new("prod", &inputs, Generation::Pg15);
        assert_eq!(n.fullname, "la");
        assert_eq!(n.postgresql, "db");
        assert_eq!(n.postgresql_pvc, "data-db-0");
        assert_eq!(n.redis, "prod-cache");
    }
}
