//! Database and user names from the values reach every in-pod command intact and run nothing
//! else: a 4.43.1 release whose database and user are named with quotes, a space, semicolons
//! and dollars migrates with every row, sequence and attachment file the test recorded, and
//! a command a name tries to slip in leaves no trace; a release whose database is `postgres`
//! (the server's own) migrates too.
//!
//! The space is in the user's name only: Bitnami's PostgreSQL charts (10 and 12) probe
//! readiness with `pg_isready -d "dbname=<database>"`, a connection string in which a space
//! ends the name, so on a real cluster a database named with a space is never Ready (the sim
//! does not run the charts' probes, so it would not notice).

mod common;

use std::path::PathBuf;

use common::sim::{
    assert_migrated, assert_old_database_untouched, Before, ReleaseSpec, Sim, ONBOARDING_KEY,
};

/// A file on the host, seen at the same path in every pod (`/var/tmp` is the host's there,
/// unlike `/tmp`): what a name's `;touch` would create, were it ever run by a shell.
fn marker() -> PathBuf {
    PathBuf::from(format!("/var/tmp/la-names-{}", std::process::id()))
}

fn release_named(database: &str, user: &str, superuser_password: Option<&str>) -> ReleaseSpec {
    // The names in single quotes, as YAML writes them (a quote doubled).
    let yaml = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut values = format!(
        "postgresql:\n  postgresqlDatabase: {}\n  postgresqlUsername: {}\n  postgresqlPassword: pg-Names-42\n",
        yaml(database),
        yaml(user)
    );
    if let Some(password) = superuser_password {
        values.push_str(&format!("  postgresqlPostgresPassword: {password}\n"));
    }
    values.push_str("redis:\n  auth:\n    password: redis-Names-42\n");
    ReleaseSpec {
        values,
        database: database.into(),
        db_user: user.into(),
        db_password: "pg-Names-42".into(),
        superuser_password: superuser_password.map(str::to_string),
        redis_password: "redis-Names-42".into(),
        seed_size: "3MB",
        ..ReleaseSpec::custom("3.19.0")
    }
}

/// Migrates a seeded release and checks that nothing was lost.
fn migrate_seeded(sim: &Sim, before: &Before) {
    assert!(
        before.db.as_ref().is_some_and(|db| db.total_rows() > 0),
        "nothing was seeded"
    );
    sim.migrate();
    assert_migrated(sim, before);
    assert!(!sim.redis_exists(ONBOARDING_KEY, &sim.spec.redis_password));
}

#[test]
fn a_database_and_user_named_with_quotes_spaces_semicolons_and_dollars_migrate_intact() {
    let marker = marker();
    let _ = std::fs::remove_file(&marker);
    let database = "it's;x$y";
    // Closes a single-quoted word, runs a command, opens another: harmless only when quoted
    // as a whole.
    let user = format!("a b';touch {};'", marker.display());
    assert!(user.len() < 64, "PostgreSQL names hold 63 bytes: {user}");
    let (sim, before) = Sim::with_release(release_named(database, &user, Some("pg-Super-42")));
    migrate_seeded(&sim, &before);
    // PostgreSQL 15 holds the database under its exact name, owned by the exact user.
    let owner = sim
        .database()
        .query(
            "the database's name and owner",
            "select datname, pg_get_userbyid(datdba) from pg_database where datname = current_database()",
        )
        .expect("the database's name and owner");
    assert_eq!(owner, [[database.to_string(), user.clone()]]);
    // The release's values carry both names unchanged under their 4.44 keys.
    let values: serde_json::Value =
        serde_json::from_str(&sim.helm(&["get", "values", "cognigy-live-agent", "-o", "json"]))
            .unwrap();
    assert_eq!(values["postgresql"]["auth"]["database"], database);
    assert_eq!(values["postgresql"]["auth"]["username"], user.as_str());
    assert_old_database_untouched(&sim, &before);
    assert!(
        !marker.exists(),
        "a command slipped in through a name ran: {} exists",
        marker.display()
    );
}

#[test]
fn a_release_whose_database_is_named_postgres_migrates() {
    let (sim, before) = Sim::with_release(release_named("postgres", "postgres", None));
    migrate_seeded(&sim, &before);
    assert_old_database_untouched(&sim, &before);
}
