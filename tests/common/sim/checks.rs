//! The checks after a migration, made by the test itself against what it recorded before.

use std::time::Instant;

use la_sim::seed::{self, PgTarget};
use serde_json::Value;

use super::{Before, Sim, DATABASE_CLAIM, RELEASE};
use crate::common::pg::{PgServer, PG11_BIN};

/// The checks the issue asks for after a completed migration, made by the test itself.
pub fn assert_migrated(sim: &Sim, before: &Before) {
    assert_migrated_to(sim, before, "4.44.0");
}

/// [`assert_migrated`] for a target chart `version`.
pub fn assert_migrated_to(sim: &Sim, before: &Before, version: &str) {
    assert_release_as_before(sim, before, version, "15");
}

/// The release deployed on chart `version` with its PostgreSQL on major version `postgres`
/// (an internal database) holding every table and sequence as recorded before, every
/// attachment file on the original volume, the kept secrets and the replicas as before.
pub fn assert_release_as_before(sim: &Sim, before: &Before, version: &str, postgres: &str) {
    let list = sim.helm(&["list", "-o", "json"]);
    let rows: Value = serde_json::from_str(&list).unwrap();
    let row = &rows[0];
    assert_eq!(row["name"], RELEASE, "{list}");
    assert_eq!(row["status"], "deployed", "{list}");
    assert_eq!(row["chart"], format!("live-agent-{version}"), "{list}");

    if let Some(db_before) = &before.db {
        let image = sim.kubectl(&[
            "get",
            "pod",
            &format!("{RELEASE}-postgresql-0"),
            "-o",
            "jsonpath={.spec.containers[0].image}",
        ]);
        assert!(
            image.contains(&format!(":{postgres}.")),
            "PostgreSQL image is {image}"
        );
        let target = sim.database();
        let version = target
            .query("server version", "show server_version_num")
            .expect("server version");
        assert!(
            version[0][0].starts_with(postgres),
            "server version {:?}",
            version
        );
        let after = seed::snapshot(&target).expect("snapshot after");
        assert_eq!(
            db_before.diff(&after),
            Vec::<String>::new(),
            "the database differs from before the migration"
        );
        assert_eq!(db_before.tables, after.tables);
        assert_eq!(db_before.schema_version, after.schema_version);
    }

    assert_eq!(
        sim.claim_volume("live-agent"),
        before.attachments_volume,
        "the attachments claim is bound to another volume"
    );
    let root = sim.volume_dir(&before.attachments_volume);
    let after = seed::read_manifest(&root).expect("attachments after");
    assert_eq!(
        before.attachments.missing_or_changed(&after),
        Vec::<String>::new()
    );
    assert_eq!(before.attachments.bytes, after.bytes);

    assert_eq!(
        sim.kept_secrets(),
        before.kept_secrets,
        "kept secrets changed"
    );
    assert_eq!(sim.replicas(), before.replicas, "replicas differ");
}

/// After a migration: PostgreSQL 11's volume (the one [`DATABASE_CLAIM`] had before) still
/// exists, is Retained and bound to no claim, and PostgreSQL 11 started on its data directory
/// (a copy of it, so the check changes nothing on the volume) holds every table and sequence
/// the test recorded before the migration. A no-op for an external database.
pub fn assert_old_database_untouched(sim: &Sim, before: &Before) {
    let (Some(db_before), Some(volume)) = (&before.db, &before.database_volume) else {
        return;
    };
    let pv: Value = serde_json::from_str(&sim.kubectl(&["get", "pv", volume, "-o", "json"]))
        .unwrap_or_else(|e| panic!("PostgreSQL 11's volume {volume}: {e}"));
    assert_eq!(
        pv["spec"]["persistentVolumeReclaimPolicy"], "Retain",
        "PostgreSQL 11's volume {volume} is not retained: {}",
        pv["spec"]
    );
    assert_ne!(
        pv["status"]["phase"], "Bound",
        "PostgreSQL 11's volume {volume} is in use: {}",
        pv["spec"]["claimRef"]
    );
    let data = sim.volume_dir(volume).join("data");
    let major = std::fs::read_to_string(data.join("PG_VERSION"))
        .unwrap_or_else(|e| panic!("{}: {e}", data.join("PG_VERSION").display()));
    assert_eq!(major.trim(), "11", "the data directory on {volume}");
    let started = Instant::now();
    let server = PgServer::on_copy_of(PG11_BIN, "pg11-volume", &data);
    let target = PgTarget::new(
        "127.0.0.1",
        server.port,
        &sim.spec.db_user,
        &sim.spec.database,
    )
    .with_password(sim.spec.db_password.clone());
    let version = target
        .query("server version", "show server_version_num")
        .expect("server version");
    assert!(
        version[0][0].starts_with("11"),
        "server version {version:?}"
    );
    let after = seed::snapshot(&target).expect("snapshot of PostgreSQL 11's volume");
    assert_eq!(
        db_before.diff(&after),
        Vec::<String>::new(),
        "PostgreSQL 11's volume {volume} no longer holds the data it held before the migration"
    );
    assert_eq!(*db_before, after);
    eprintln!(
        "PostgreSQL 11 on volume {volume} holds the data of before ({} tables, {} rows; checked in {:.1}s)",
        after.tables.len(),
        after.total_rows(),
        started.elapsed().as_secs_f64()
    );
}

/// The release as before the migration, checked by the test itself: 4.43.1 on PostgreSQL 11
/// (its own volume, its old password), every table, sequence and attachment, the kept
/// secrets and the replicas as recorded, and nothing of the plugin left.
pub fn assert_rolled_back(sim: &Sim, before: &Before) {
    assert_eq!(
        sim.claim_volume(DATABASE_CLAIM),
        before
            .database_volume
            .clone()
            .expect("an internal database"),
        "PostgreSQL's claim holds another volume than PostgreSQL 11's"
    );
    assert_release_as_before(sim, before, "4.43.1", "11");
    // Nothing of the plugin is left: the next migration starts from scratch.
    let left = sim.kubectl(&["get", "configmaps,secrets,pods,pvc,services", "-o", "name"]);
    let plugin: Vec<&str> = left
        .lines()
        .filter(|l| l.contains("/la-migrate-"))
        .collect();
    assert!(
        plugin.is_empty(),
        "the plugin's objects are left: {plugin:?}"
    );
}
