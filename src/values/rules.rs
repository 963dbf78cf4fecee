//! The translation rules as data: one table feeds the translation, the report, the JSON and
//! the README. Paths are dotted key paths from the root of a live-agent values file.

use serde::Serialize;

/// What a rule does with the old key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The value moves to the new key; the old key goes.
    Move,
    /// The value is set at the new key and the old key stays, because the target chart
    /// still reads it.
    Copy,
    /// The value is set at the new key as well; the old key's own rule moves it.
    Also,
}

/// Where a rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Cognigy's migration guide for 4.44 (and the chart templates that confirm it)
    Guide,
    /// The live-agent chart templates (not in the guide)
    Chart,
    /// Bitnami postgresql 11.0.0 upgrade notes (10.16.2 -> 12.1.6)
    BitnamiPostgresql,
    /// Bitnami redis 16.0.0 upgrade notes (15.7.6 -> 17.4.0)
    BitnamiRedis,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rule {
    pub from: &'static str,
    pub to: &'static str,
    pub action: Action,
    pub origin: Origin,
    pub note: &'static str,
}

const fn mv(from: &'static str, to: &'static str, origin: Origin, note: &'static str) -> Rule {
    Rule {
        from,
        to,
        action: Action::Move,
        origin,
        note,
    }
}

use Origin::{BitnamiPostgresql as Pg, BitnamiRedis as Rd, Chart, Guide};

/// Every key rename from chart <= 4.43 to 4.44. No `from` is a prefix of another `from`. Of
/// two spellings of one old key (rules with the same `to`), the one the old chart reads comes
/// first: a conflict between them names it as the one to keep.
pub const RULES: &[Rule] = &[
    mv(
        "postgresql.postgresqlDatabase",
        "postgresql.auth.database",
        Guide,
        "",
    ),
    mv(
        "postgresql.postgresqlUsername",
        "postgresql.auth.username",
        Guide,
        "",
    ),
    mv(
        "postgresql.postgresqlPassword",
        "postgresql.auth.postgresPassword",
        Guide,
        "",
    ),
    mv(
        "postgresql.postgresqlHost",
        "postgresql.host",
        Guide,
        "external database only",
    ),
    mv(
        "postgresql.postgresqlPort",
        "postgresql.port",
        Guide,
        "external database only",
    ),
    Rule {
        from: "postgresql.existingSecret",
        to: "postgresql.auth.existingSecret",
        action: Action::Copy,
        origin: Guide,
        note: "kept as well: charts 4.44.0 and 4.45.0 still read postgresql.existingSecret in \
               templates/secrets/postgres-secret.yaml and, without it, create a Secret of that \
               name for an external database",
    },
    mv(
        "postgresql.existingSecretPasswordKey",
        "postgresql.auth.secretKeys.adminPasswordKey",
        Chart,
        "the key the 4.43 chart reads",
    ),
    mv(
        "postgresql.existingPasswordSecretKey",
        "postgresql.auth.secretKeys.adminPasswordKey",
        Guide,
        "the guide's spelling",
    ),
    mv(
        "postgresql.postgresSSLMode",
        "postgresql.SSLMode",
        Chart,
        "missing from the guide",
    ),
    mv(
        "postgresql.persistence",
        "postgresql.primary.persistence",
        Pg,
        "",
    ),
    mv(
        "postgresql.resources",
        "postgresql.primary.resources",
        Pg,
        "",
    ),
    mv(
        "postgresql.securityContext",
        "postgresql.primary.podSecurityContext",
        Pg,
        "",
    ),
    mv(
        "postgresql.containerSecurityContext",
        "postgresql.primary.containerSecurityContext",
        Pg,
        "",
    ),
    mv(
        "postgresql.livenessProbe",
        "postgresql.primary.livenessProbe",
        Pg,
        "",
    ),
    mv(
        "postgresql.readinessProbe",
        "postgresql.primary.readinessProbe",
        Pg,
        "",
    ),
    mv(
        "postgresql.startupProbe",
        "postgresql.primary.startupProbe",
        Pg,
        "",
    ),
    mv(
        "postgresql.customLivenessProbe",
        "postgresql.primary.customLivenessProbe",
        Pg,
        "",
    ),
    mv(
        "postgresql.customReadinessProbe",
        "postgresql.primary.customReadinessProbe",
        Pg,
        "",
    ),
    mv(
        "postgresql.customStartupProbe",
        "postgresql.primary.customStartupProbe",
        Pg,
        "",
    ),
    mv(
        "postgresql.pgHbaConfiguration",
        "postgresql.primary.pgHbaConfiguration",
        Pg,
        "",
    ),
    mv(
        "postgresql.configurationConfigMap",
        "postgresql.primary.existingConfigmap",
        Pg,
        "",
    ),
    mv(
        "postgresql.extendedConfConfigMap",
        "postgresql.primary.existingExtendedConfigmap",
        Pg,
        "",
    ),
    mv(
        "postgresql.initdbScripts",
        "postgresql.primary.initdb.scripts",
        Pg,
        "",
    ),
    mv(
        "postgresql.initdbScriptsConfigMap",
        "postgresql.primary.initdb.scriptsConfigMap",
        Pg,
        "",
    ),
    mv(
        "postgresql.initdbScriptsSecret",
        "postgresql.primary.initdb.scriptsSecret",
        Pg,
        "",
    ),
    mv(
        "postgresql.initdbUser",
        "postgresql.primary.initdb.user",
        Pg,
        "",
    ),
    mv(
        "postgresql.initdbPassword",
        "postgresql.primary.initdb.password",
        Pg,
        "",
    ),
    mv(
        "postgresql.postgresqlInitdbArgs",
        "postgresql.primary.initdb.args",
        Pg,
        "",
    ),
    mv(
        "postgresql.postgresqlInitdbWalDir",
        "postgresql.primary.initdb.postgresqlWalDir",
        Pg,
        "",
    ),
    mv(
        "postgresql.extraEnv",
        "postgresql.primary.extraEnvVars",
        Pg,
        "",
    ),
    mv(
        "postgresql.extraEnvVarsCM",
        "postgresql.primary.extraEnvVarsCM",
        Pg,
        "",
    ),
    mv(
        "postgresql.service.type",
        "postgresql.primary.service.type",
        Pg,
        "",
    ),
    mv(
        "postgresql.service.clusterIP",
        "postgresql.primary.service.clusterIP",
        Pg,
        "",
    ),
    mv(
        "postgresql.service.port",
        "postgresql.primary.service.ports.postgresql",
        Pg,
        "",
    ),
    mv(
        "postgresql.service.nodePort",
        "postgresql.primary.service.nodePorts.postgresql",
        Pg,
        "",
    ),
    mv(
        "postgresql.service.annotations",
        "postgresql.primary.service.annotations",
        Pg,
        "",
    ),
    mv(
        "postgresql.service.loadBalancerIP",
        "postgresql.primary.service.loadBalancerIP",
        Pg,
        "",
    ),
    mv(
        "postgresql.service.externalTrafficPolicy",
        "postgresql.primary.service.externalTrafficPolicy",
        Pg,
        "",
    ),
    mv(
        "postgresql.service.loadBalancerSourceRanges",
        "postgresql.primary.service.loadBalancerSourceRanges",
        Pg,
        "",
    ),
    mv(
        "postgresql.updateStrategy",
        "postgresql.primary.updateStrategy",
        Pg,
        "",
    ),
    mv(
        "postgresql.terminationGracePeriodSeconds",
        "postgresql.primary.terminationGracePeriodSeconds",
        Pg,
        "",
    ),
    mv(
        "postgresql.schedulerName",
        "postgresql.primary.schedulerName",
        Pg,
        "",
    ),
    mv(
        "postgresql.lifecycleHooks",
        "postgresql.primary.lifecycleHooks",
        Pg,
        "",
    ),
    mv(
        "postgresql.primaryAsStandBy",
        "postgresql.primary.standby",
        Pg,
        "",
    ),
    mv(
        "postgresql.volumePermissions.securityContext",
        "postgresql.volumePermissions.containerSecurityContext",
        Pg,
        "",
    ),
    mv(
        "redis.master.service.port",
        "redis.master.service.ports.redis",
        Rd,
        "",
    ),
    mv(
        "redis.master.service.nodePort",
        "redis.master.service.nodePorts.redis",
        Rd,
        "",
    ),
    mv(
        "redis.replica.service.port",
        "redis.replica.service.ports.redis",
        Rd,
        "",
    ),
    mv(
        "redis.replica.service.nodePort",
        "redis.replica.service.nodePorts.redis",
        Rd,
        "",
    ),
    mv(
        "redis.master.containerPort",
        "redis.master.containerPorts.redis",
        Rd,
        "",
    ),
    mv(
        "redis.replica.containerPort",
        "redis.replica.containerPorts.redis",
        Rd,
        "",
    ),
    mv(
        "redis.sentinel.containerPort",
        "redis.sentinel.containerPorts.sentinel",
        Rd,
        "",
    ),
    mv(
        "redis.sentinel.service.port",
        "redis.sentinel.service.ports.redis",
        Rd,
        "",
    ),
    mv(
        "redis.sentinel.service.sentinelPort",
        "redis.sentinel.service.ports.sentinel",
        Rd,
        "",
    ),
];

/// Applied besides [`RULES`] when the app's database user is not `postgres` and the chart's
/// own PostgreSQL holds the database (no `existingSecret`): Bitnami postgresql 12 creates that
/// user with `auth.password`, while chart 4.44 gives the app `auth.postgresPassword` (the
/// superuser's password key), so both must hold the app's password for the app to log in.
/// Bitnami postgresql 10 gave that user `postgresqlPassword`, as the 4.43 app did.
pub const CUSTOM_USER_PASSWORD: Rule = Rule {
    from: "postgresql.postgresqlPassword",
    to: "postgresql.auth.password",
    action: Action::Also,
    origin: Origin::BitnamiPostgresql,
    note: "the password of the app's own database user: Bitnami postgresql 12 creates the user \
           with auth.password, and chart 4.44 gives the app auth.postgresPassword",
};

/// Old keys with no one-to-one new key: what to do instead, shown with the warning that
/// 4.44.0 ignores them.
pub const HINTS: &[(&str, &str)] = &[
    (
        "postgresql.postgresqlPostgresPassword",
        "the postgres superuser's password of Bitnami postgresql 10, used when postgresqlUsername is not postgres; chart 4.44 gives the app the superuser's password key (postgresql.auth.postgresPassword, which holds the app's password), so the superuser gets the app's password and this value has no place: delete it",
    ),
    (
        "postgresql.postgresqlConfiguration",
        "a map in Bitnami postgresql 10; write the settings as a postgresql.conf string in postgresql.primary.configuration (or primary.extendedConfiguration)",
    ),
    (
        "postgresql.postgresqlExtendedConf",
        "a map in Bitnami postgresql 10; write it as a string in postgresql.primary.extendedConfiguration",
    ),
    (
        "postgresql.postgresqlMaxConnections",
        "set max_connections in postgresql.primary.extendedConfiguration",
    ),
    (
        "postgresql.replication",
        "Bitnami postgresql 12 uses postgresql.architecture: replication and postgresql.readReplicas.*",
    ),
];

/// The live-agent app Service's values that name it (changed only when they held the old
/// default, the 4.43 app Service name).
pub const SERVICE_NAME_PATH: &str = "service.name";
pub const INGRESS_BACKEND_PATH: &str = "ingress.hosts[].paths[].backend.service.name";

pub fn split(path: &str) -> Vec<&str> {
    path.split('.').collect()
}

/// The hint for a key 4.44.0 ignores, when there is one.
pub fn hint_for(path: &str) -> Option<&'static str> {
    HINTS
        .iter()
        .find(|(p, _)| path == *p || path.starts_with(&format!("{p}.")))
        .map(|(_, h)| *h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_old_key_is_inside_another_old_key() {
        for a in RULES {
            for b in RULES {
                if a.from != b.from {
                    assert!(
                        !b.from.starts_with(&format!("{}.", a.from)),
                        "{} is inside {}",
                        b.from,
                        a.from
                    );
                }
            }
        }
    }

    #[test]
    fn the_guide_keys_and_both_secret_key_spellings_are_in_the_table() {
        for (from, to) in [
            ("postgresql.postgresqlDatabase", "postgresql.auth.database"),
            ("postgresql.postgresqlUsername", "postgresql.auth.username"),
            (
                "postgresql.postgresqlPassword",
                "postgresql.auth.postgresPassword",
            ),
            ("postgresql.postgresqlHost", "postgresql.host"),
            ("postgresql.postgresqlPort", "postgresql.port"),
            (
                "postgresql.existingSecret",
                "postgresql.auth.existingSecret",
            ),
            (
                "postgresql.existingPasswordSecretKey",
                "postgresql.auth.secretKeys.adminPasswordKey",
            ),
            (
                "postgresql.existingSecretPasswordKey",
                "postgresql.auth.secretKeys.adminPasswordKey",
            ),
            ("postgresql.postgresSSLMode", "postgresql.SSLMode"),
        ] {
            assert!(
                RULES.iter().any(|r| r.from == from && r.to == to),
                "{from} -> {to} missing"
            );
        }
    }

    #[test]
    fn the_superuser_password_of_bitnami_10_is_not_moved_onto_the_apps_password() {
        // Chart 4.44 gives the app auth.postgresPassword, which takes postgresqlPassword.
        assert!(RULES
            .iter()
            .all(|r| r.from != "postgresql.postgresqlPostgresPassword"));
        assert!(hint_for("postgresql.postgresqlPostgresPassword").is_some());
    }

    #[test]
    fn of_two_spellings_the_one_the_old_chart_reads_comes_first() {
        for (i, a) in RULES.iter().enumerate() {
            for b in &RULES[i + 1..] {
                if a.to == b.to {
                    assert_eq!(a.origin, Origin::Chart, "{} before {}", a.from, b.from);
                    assert_ne!(b.origin, Origin::Chart, "{} after {}", b.from, a.from);
                }
            }
        }
    }

    #[test]
    fn hints_match_whole_keys_only() {
        assert!(hint_for("postgresql.replication.enabled").is_some());
        assert!(hint_for("postgresql.replicationX").is_none());
    }
}
