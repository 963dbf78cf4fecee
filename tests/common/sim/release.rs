//! How the release is installed before the migration ([`ReleaseSpec`]), and what the test
//! records of it before the migration ([`Before`]): the seeded database and attachment files.

use std::collections::BTreeMap;
use std::time::Instant;

use la_sim::seed::{self, DbSnapshot, Manifest, PgTarget, SeedOptions};
use serde_json::Value;

use super::{chart, helm, text, Sim, DATABASE, DATABASE_CLAIM, NAMESPACE, RELEASE};

/// How a release is installed before the migration.
#[derive(Debug, Clone)]
pub struct ReleaseSpec {
    pub helm_version: &'static str,
    /// The operator's values file for chart 4.43.1.
    pub values: String,
    /// Objects applied before `helm install` (e.g. an existing database Secret).
    pub pre_objects: Option<String>,
    /// The database the seed fills and the snapshots read (`postgresql.postgresqlDatabase`).
    pub database: String,
    /// The role the seed and the snapshots connect as (`postgresql.postgresqlUsername`).
    pub db_user: String,
    /// The database password the seed connects with (`db_user`'s).
    pub db_password: String,
    /// The `postgres` superuser's password when `db_user` is another role
    /// (`postgresqlPostgresPassword`): the seed's extensions are created with it, as
    /// PostgreSQL 11 lets only a superuser create them.
    pub superuser_password: Option<String>,
    pub redis_password: String,
    /// `false`: PostgreSQL is external (no seed, no database pod).
    pub internal_postgres: bool,
    pub seed_size: &'static str,
}

impl ReleaseSpec {
    /// A custom values file as an operator keeps it: passwords, a Redis password, a
    /// PostgreSQL volume size and comments.
    pub fn custom(helm_version: &'static str) -> ReleaseSpec {
        ReleaseSpec {
            helm_version,
            values: "\
# Live Agent production values
postgresql:
  postgresqlPassword: pg-Secret-42
  persistence:
    size: 4Gi
redis:
  auth:
    password: redis-Secret-42
app:
  replica: 2
worker:
  replica: 1
"
            .to_string(),
            pre_objects: None,
            database: DATABASE.into(),
            db_user: "postgres".into(),
            db_password: "pg-Secret-42".into(),
            superuser_password: None,
            redis_password: "redis-Secret-42".into(),
            internal_postgres: true,
            seed_size: "8MB",
        }
    }

    /// The database password lives in a Secret the operator created (`existingSecret`).
    pub fn existing_secret(helm_version: &'static str) -> ReleaseSpec {
        ReleaseSpec {
            helm_version,
            values: "\
postgresql:
  existingSecret: live-agent-db-credentials
  existingSecretPasswordKey: postgresql-password
redis:
  auth:
    password: redis-Secret-7
"
            .to_string(),
            pre_objects: Some(format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: live-agent-db-credentials\n  namespace: {NAMESPACE}\ntype: Opaque\nstringData:\n  postgresql-password: ex1sting-Pass\n"
            )),
            database: DATABASE.into(),
            db_user: "postgres".into(),
            db_password: "ex1sting-Pass".into(),
            superuser_password: None,
            redis_password: "redis-Secret-7".into(),
            internal_postgres: true,
            seed_size: "6MB",
        }
    }

    /// The chart generates the database password (an empty `postgresqlPassword`): random,
    /// so it appears nowhere else and can be searched for; read from the Secret after the
    /// install.
    pub fn generated_password(helm_version: &'static str) -> ReleaseSpec {
        ReleaseSpec {
            helm_version,
            values: "\
postgresql:
  postgresqlPassword: \"\"
redis:
  auth:
    password: rds-Q7vX-k2Lm-91
"
            .to_string(),
            pre_objects: None,
            database: DATABASE.into(),
            db_user: "postgres".into(),
            db_password: String::new(),
            superuser_password: None,
            redis_password: "rds-Q7vX-k2Lm-91".into(),
            internal_postgres: true,
            seed_size: "3MB",
        }
    }

    /// PostgreSQL outside the cluster (a server on the host at `host`, an address pods reach):
    /// the chart's database is off, the password in an existing Secret.
    pub fn external_postgres(helm_version: &'static str, host: &str, port: u16) -> ReleaseSpec {
        ReleaseSpec {
            helm_version,
            values: format!(
                "\
postgresql:
  enabled: false
  postgresqlHost: {host}
  postgresqlPort: {port}
  existingSecret: external-db
  existingSecretPasswordKey: password
redis:
  auth:
    password: redis-Secret-9
"
            ),
            pre_objects: Some(format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: external-db\n  namespace: {NAMESPACE}\ntype: Opaque\nstringData:\n  password: ext-Secret-1\n"
            )),
            database: DATABASE.into(),
            db_user: "postgres".into(),
            db_password: "ext-Secret-1".into(),
            superuser_password: None,
            redis_password: "redis-Secret-9".into(),
            internal_postgres: false,
            seed_size: "none",
        }
    }
}

/// What the release held before the migration, recorded by the test itself.
#[derive(Debug, Clone)]
pub struct Before {
    pub db: Option<DbSnapshot>,
    pub attachments: Manifest,
    pub attachments_volume: String,
    /// The volume of PostgreSQL 11's claim ([`DATABASE_CLAIM`]), with an internal database.
    pub database_volume: Option<String>,
    pub kept_secrets: BTreeMap<String, Value>,
    pub replicas: BTreeMap<String, i64>,
}

impl Sim {
    /// The custom values of [`ReleaseSpec::custom`] installed with helm 3.19.0, seeded with
    /// `seed_size` of data: the release most tests migrate.
    pub fn with_seeded_release(seed_size: &'static str) -> (Sim, Before) {
        Sim::with_release(ReleaseSpec {
            seed_size,
            ..ReleaseSpec::custom("3.19.0")
        })
    }

    pub(super) fn install(&self) {
        self.install_as(RELEASE, NAMESPACE);
    }

    /// Installs chart 4.43.1 with the spec's values as `release` in `namespace` (not seeded).
    pub fn install_as(&self, release: &str, namespace: &str) {
        let values = self.state_dir().join("operator-values.yaml");
        std::fs::write(&values, &self.spec.values).unwrap();
        if let Some(objects) = &self.spec.pre_objects {
            self.kubectl(&["create", "namespace", NAMESPACE]);
            self.apply("pre-objects.yaml", objects);
        }
        let started = Instant::now();
        let (chart, helm) = (chart("4.43.1"), helm(self.spec.helm_version));
        let out = self.cluster.la_sim(
            "install",
            &[
                "--timeout-seconds",
                "120",
                "--release",
                release,
                "--namespace",
                namespace,
                "--chart",
                chart.to_str().unwrap(),
                "--values",
                values.to_str().unwrap(),
                "--helm",
                helm.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "la-sim install of chart 4.43.1 failed: {}{}\npods:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            text(&self.kubectl_unchecked(&["get", "pods"]).stdout)
        );
        eprintln!(
            "installed 4.43.1 with helm {} in {:.1}s",
            self.spec.helm_version,
            started.elapsed().as_secs_f64()
        );
    }

    /// Loads the generated database and attachment files, then records [`Before`].
    pub(super) fn seed_and_record(&self) -> Before {
        let attachments_volume = self.claim_volume("live-agent");
        let root = self.volume_dir(&attachments_volume);
        let db = if self.spec.internal_postgres {
            let opts = SeedOptions::new(seed::parse_size(self.spec.seed_size).unwrap(), 7);
            let target = self.database();
            let started = Instant::now();
            if let Some(password) = &self.spec.superuser_password {
                let superuser = PgTarget {
                    user: "postgres".into(),
                    ..target.clone()
                }
                .with_password(password.clone());
                superuser
                    .query(
                        "the seed's extensions",
                        "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public; \
                         CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;",
                    )
                    .expect("creating the seed's extensions as the superuser");
            }
            seed::load_into(&target, &opts).expect("seeding the database");
            seed::write_attachments(&root, &opts).expect("writing attachment files");
            eprintln!(
                "seeded {} in {:.1}s",
                self.spec.seed_size,
                started.elapsed().as_secs_f64()
            );
            Some(seed::snapshot(&target).expect("snapshot before"))
        } else {
            seed::write_attachments(&root, &SeedOptions::new(200_000, 7))
                .expect("writing attachment files");
            None
        };
        let attachments = seed::read_manifest(&root).expect("attachments manifest");
        assert!(
            !attachments.files.is_empty(),
            "no attachment file was written"
        );
        Before {
            database_volume: db.as_ref().map(|_| self.claim_volume(DATABASE_CLAIM)),
            db,
            attachments,
            attachments_volume,
            kept_secrets: self.kept_secrets(),
            replicas: self.replicas(),
        }
    }

    /// The release's database, reached at the PostgreSQL pod's address as the spec's user.
    pub fn database(&self) -> PgTarget {
        let ip = self.kubectl(&[
            "get",
            "pod",
            &format!("{RELEASE}-postgresql-0"),
            "-o",
            "jsonpath={.status.podIP}",
        ]);
        PgTarget::new(ip.trim(), 5432, &self.spec.db_user, &self.spec.database)
            .with_password(self.spec.db_password.clone())
    }
}
