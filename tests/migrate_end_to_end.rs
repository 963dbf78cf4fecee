//! The whole migration on the simulated cluster: a seeded 4.43.1 release, installed with real
//! helm from the real chart, goes through `la-migrate 4.44` to 4.44.0 on PostgreSQL 15. The
//! test checks the result itself (its own snapshots, not the plugin's report).

mod common;

use common::pg::{host_address, PgServer, PG15_BIN};
use common::sim::{assert_migrated, ReleaseSpec, Sim, DATABASE, ONBOARDING_KEY};
use la_sim::seed::{self, PgTarget, SeedOptions};

#[test]
fn a_release_with_custom_values_migrates_under_helm_3_17_with_every_row_and_file_intact() {
    let (sim, before) = Sim::with_release(ReleaseSpec::custom("3.17.3"));
    sim.migrate();
    assert_migrated(&sim, &before);
    assert!(!sim.redis_exists(ONBOARDING_KEY, &sim.spec.redis_password));
}

#[test]
fn a_release_with_custom_values_and_four_redis_replicas_migrates_under_helm_4_3() {
    let mut spec = ReleaseSpec::custom("4.3.1");
    let with_four = spec.values.replace(
        "redis:\n  auth:\n    password: redis-Secret-42\n",
        "redis:\n  replica:\n    replicaCount: 4\n  auth:\n    password: redis-Secret-42\n",
    );
    assert_ne!(with_four, spec.values);
    spec.values = with_four;
    let (sim, before) = Sim::with_release(spec);
    // Every Redis claim goes, the fourth replica's too (the chart default has three): the
    // new Redis 7 starts on fresh volumes, the old ones are retained.
    let fourth = "redis-data-cognigy-live-agent-redis-replicas-3";
    let old_volume = sim.claim_volume(fourth);
    assert!(!old_volume.is_empty(), "no fourth Redis replica before");
    sim.migrate();
    assert_migrated(&sim, &before);
    assert!(!sim.redis_exists(ONBOARDING_KEY, &sim.spec.redis_password));
    let new_volume = sim.claim_volume(fourth);
    assert!(
        !new_volume.is_empty() && new_volume != old_volume,
        "the fourth replica kept its Redis 6 volume {old_volume}"
    );
    let old_pv = sim.kubectl(&[
        "get",
        "pv",
        &old_volume,
        "-o",
        "jsonpath={.spec.persistentVolumeReclaimPolicy}/{.status.phase}",
    ]);
    assert_eq!(old_pv, "Retain/Released");
}

#[test]
fn a_release_whose_password_is_in_an_existing_secret_migrates_under_helm_3_19() {
    let (sim, before) = Sim::with_release(ReleaseSpec::existing_secret("3.19.0"));
    sim.migrate();
    assert_migrated(&sim, &before);
    // The operator's Secret is the database's credential before and after: never deleted.
    let secret = sim.kubectl(&[
        "get",
        "secret",
        "live-agent-db-credentials",
        "-o",
        "jsonpath={.data.postgresql-password}",
    ]);
    assert_eq!(secret.trim(), "ZXgxc3RpbmctUGFzcw==");
    assert!(!sim.redis_exists(ONBOARDING_KEY, &sim.spec.redis_password));
}

#[test]
fn a_release_on_external_postgresql_migrates_without_touching_the_database() {
    let host = host_address();
    let db = PgServer::start_for_pods(PG15_BIN, "external", &host);
    db.psql("postgres", "CREATE DATABASE live_agent_production");
    let target = PgTarget::new("127.0.0.1", db.port, "postgres", DATABASE);
    seed::load_into(
        &target,
        &SeedOptions::new(seed::parse_size("3MB").unwrap(), 3),
    )
    .expect("seeding the external database");
    let db_before = seed::snapshot(&target).unwrap();
    let (sim, before) = Sim::with_release(ReleaseSpec::external_postgres("3.19.0", &host, db.port));
    sim.migrate();
    assert_migrated(&sim, &before);
    assert_eq!(db_before, seed::snapshot(&target).unwrap());
    let pods = sim.kubectl(&["get", "pods", "-o", "name"]);
    assert!(
        !pods.contains("postgresql") && !pods.contains("la-migrate"),
        "no database or backup pod is expected: {pods}"
    );
    assert!(!sim.redis_exists(ONBOARDING_KEY, &sim.spec.redis_password));
}
