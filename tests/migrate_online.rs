//! `--online`: PostgreSQL 15 filled by logical replication while 4.43.1 runs, then a cut-over.
//! A writer changes PostgreSQL 11 all along until the app is scaled down, and every change it
//! saw committed is on PostgreSQL 15 afterwards; the migration killed (SIGKILL) during the
//! initial copy, the catch-up and the cut-over completes on rerun with nothing lost. Preflight
//! refuses what replication cannot carry, changing nothing; a rollback leaves PostgreSQL 11
//! as it was (no slot, no publication, its replica identities and wal_level).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::sim::{assert_migrated, assert_rolled_back, text, Before, Sim};

/// What the writer saw committed on PostgreSQL 11.
#[derive(Debug, Default)]
struct WriterLog {
    /// `writer_no_pk` (a table without a primary key or any index): id -> note.
    no_pk: BTreeMap<i64, String>,
    /// `contacts`: id -> name.
    contacts: BTreeMap<i64, String>,
    /// The account it created.
    account: Option<i64>,
    /// Transactions committed, and failed (PostgreSQL 11 restarting).
    committed: u64,
    failed: u64,
}

/// Inserts, updates and deletes in `writer_no_pk` and updates `contacts`, one transaction per
/// round, and creates an account on the fifth; until `stop`.
fn write_until(sim: &Sim, stop: &AtomicBool, first_contact: i64) -> WriterLog {
    let mut log = WriterLog::default();
    let mut db = sim.database();
    let mut i: i64 = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let contact = first_contact + i % 20;
        let mut sql = format!(
            "BEGIN; INSERT INTO writer_no_pk (id, note) VALUES ({i}, 'new {i}'); \
UPDATE writer_no_pk SET note = 'updated {i}' WHERE id = {prev}; \
DELETE FROM writer_no_pk WHERE id = {gone}; \
UPDATE contacts SET name = 'writer {i}' WHERE id = {contact};",
            prev = i - 1,
            gone = if i % 3 == 0 { i - 2 } else { -1 },
        );
        let creates_account = i == 5;
        if creates_account {
            sql.push_str(
                " INSERT INTO accounts (name, created_at, updated_at) VALUES ('writer account', now(), now()) RETURNING id;",
            );
        }
        sql.push_str(" COMMIT;");
        match db.query("writer", &sql) {
            Ok(rows) => {
                log.committed += 1;
                log.no_pk.insert(i, format!("new {i}"));
                if let Some(n) = log.no_pk.get_mut(&(i - 1)) {
                    *n = format!("updated {i}");
                }
                if i % 3 == 0 {
                    log.no_pk.remove(&(i - 2));
                }
                log.contacts.insert(contact, format!("writer {i}"));
                if creates_account {
                    log.account = rows.first().and_then(|r| r[0].parse().ok());
                }
            }
            Err(_) => {
                // PostgreSQL 11 restarting: the round is not committed; its numbers are
                // not used again, its rows never existed.
                log.failed += 1;
                std::thread::sleep(Duration::from_millis(200));
                db = sim.database();
                if creates_account {
                    i -= 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    log
}

fn rows(sim: &Sim, sql: &str) -> Vec<Vec<String>> {
    sim.database().query("check", sql).expect(sql)
}

#[test]
fn every_change_a_writer_committed_until_the_scale_down_is_on_postgresql_15() {
    let (sim, _before) = Sim::with_seeded_release("8MB");
    rows(
        &sim,
        "CREATE TABLE writer_no_pk (id bigint NOT NULL, note text); SELECT 1",
    );
    let first_contact: i64 = rows(&sim, "SELECT min(id) FROM contacts")[0][0]
        .parse()
        .unwrap();
    let stop = AtomicBool::new(false);
    let (log, status, said) = std::thread::scope(|s| {
        let writer = s.spawn(|| write_until(&sim, &stop, first_contact));
        // The writer runs until the app is being scaled down, as the app itself would.
        let running = sim.plugin_with_until(&["--online"], "→ [copy.scale-down]");
        stop.store(true, Ordering::SeqCst);
        let log = writer.join().unwrap();
        let (status, said) = running.finish();
        (log, status, said)
    });
    assert!(status.success(), "{said}");
    eprintln!(
        "writer: {} transactions committed, {} failed",
        log.committed, log.failed
    );
    assert!(log.committed > 20, "the writer hardly ran: {log:?}");
    assert!(
        said.contains("writer_no_pk"),
        "the table without a primary key was not named:\n{said}"
    );

    // PostgreSQL 15 now serves the release.
    let version = rows(&sim, "show server_version_num");
    assert!(version[0][0].starts_with("15"), "{version:?}");
    let no_pk: BTreeMap<i64, String> = rows(&sim, "SELECT id, note FROM writer_no_pk")
        .into_iter()
        .map(|r| (r[0].parse().unwrap(), r[1].clone()))
        .collect();
    assert_eq!(
        no_pk, log.no_pk,
        "writer_no_pk differs from the writer's log"
    );
    for (id, name) in &log.contacts {
        let got = rows(&sim, &format!("SELECT name FROM contacts WHERE id = {id}"));
        assert_eq!(&got[0][0], name, "contact {id}");
    }
    // The account created during the replication: its display id sequence exists on 15, so
    // its conversations get display ids.
    let account = log.account.expect("the writer created an account");
    let inbox = &rows(&sim, "SELECT min(id) FROM inboxes")[0][0];
    let display = rows(
        &sim,
        &format!(
            "INSERT INTO conversations (account_id, inbox_id, created_at, updated_at) \
VALUES ({account}, {inbox}, now(), now()) RETURNING display_id"
        ),
    );
    assert_eq!(display[0][0], "1", "the new account's first conversation");
    // Nothing of the replication is left on PostgreSQL 15.
    assert_eq!(
        rows(&sim, "SELECT count(*) FROM pg_subscription")[0][0],
        "0"
    );
}

#[test]
fn killed_during_the_initial_copy_the_catch_up_and_the_cut_over_a_rerun_completes() {
    let (sim, before) = Sim::with_seeded_release("8MB");
    // Killed as each step starts: the cut-over's steps take a tenth of a second here, so a
    // later kill would find them done.
    for step in [
        "replicate.initial-copy",
        "copy.catch-up",
        "copy.sequences",
        "copy.unsubscribe",
    ] {
        let said =
            sim.kill_migration_after(&["--online"], &format!("→ [{step}]"), Duration::ZERO, None);
        assert!(
            !said.contains(&format!("✓ [{step}]")),
            "{step} was done before the kill:\n{said}"
        );
    }
    let out = sim.run_migrate(&["--online", "--yes"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    assert_migrated(&sim, &before);
}

#[test]
fn online_is_refused_where_replication_cannot_carry_the_data_and_nothing_changes() {
    let (sim, _before) = Sim::with_seeded_release("3MB");
    rows(&sim, "SELECT lo_create(0)");
    let out = sim.run_migrate(&["--online", "--yes"]);
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{said}");
    assert!(said.contains("large object"), "{said}");
    assert!(said.contains("without --online"), "{said}");
    let objects = sim.kubectl(&["get", "configmaps,secrets,pods,pvc", "-o", "name"]);
    assert!(
        !objects.contains("/la-migrate-"),
        "a refused run created objects: {objects}"
    );
    assert_eq!(rows(&sim, "show wal_level")[0][0], "replica");

    rows(&sim, "SELECT lo_unlink(oid) FROM pg_largeobject_metadata");
    let steps = sim.plan_steps(&["--online"]);
    let at = |id: &str| {
        steps
            .iter()
            .position(|s| s == id)
            .unwrap_or_else(|| panic!("{id} is not in {steps:?}"))
    };
    assert!(at("prepare.copy-pod") < at("replicate.wal-level"));
    assert!(at("replicate.wal-level") < at("replicate.subscribe"));
    assert!(at("replicate.initial-copy") < at("replicate.prove-live"));
    assert!(at("replicate.prove-live") < at("copy.scale-down"));
    assert!(at("copy.scale-down") < at("copy.catch-up"));
    assert!(at("copy.sequences") < at("copy.prove"));
    assert!(at("copy.unsubscribe") < at("cutover.confirm"));
    assert!(!steps.iter().any(|s| s == "copy.copy"), "{steps:?}");
}

/// PostgreSQL 11 as before the online migration: wal_level, no slot or publication, the table
/// without a primary key back to the default replica identity; then that table dropped and
/// the release checked as before.
fn assert_online_rolled_back(sim: &Sim, before: &Before) {
    assert_eq!(rows(sim, "show wal_level")[0][0], "replica");
    assert_eq!(
        rows(sim, "SELECT count(*) FROM pg_replication_slots")[0][0],
        "0"
    );
    assert_eq!(rows(sim, "SELECT count(*) FROM pg_publication")[0][0], "0");
    assert_eq!(
        rows(
            sim,
            "SELECT relreplident FROM pg_class WHERE relname = 'writer_no_pk'"
        )[0][0],
        "d"
    );
    rows(sim, "DROP TABLE writer_no_pk; SELECT 1");
    assert_rolled_back(sim, before);
    rows(
        sim,
        "CREATE TABLE writer_no_pk (id bigint NOT NULL, note text); SELECT 1",
    );
}

#[test]
fn an_online_migration_rolls_back_while_replicating_and_after_it_completed() {
    let (sim, before) = Sim::with_seeded_release("3MB");
    rows(
        &sim,
        "CREATE TABLE writer_no_pk (id bigint NOT NULL, note text); SELECT 1",
    );
    sim.kill_migration_after(
        &["--online"],
        "✓ [replicate.prove-live]",
        Duration::ZERO,
        None,
    );
    let out = sim.run_plugin(&["4.44", "rollback", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_online_rolled_back(&sim, &before);

    let out = sim.run_migrate(&["--online", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = sim.run_plugin(&["4.44", "rollback", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_online_rolled_back(&sim, &before);
}

#[test]
fn a_schema_change_during_replication_is_refused_and_the_app_comes_back() {
    let (sim, before) = Sim::with_seeded_release("3MB");
    for phase in ["prepare", "replicate"] {
        let out = sim.run_migrate(&["--online", "--yes", phase]);
        assert!(out.status.success(), "{phase}: {}", text(&out.stderr));
    }
    rows(
        &sim,
        "ALTER TABLE contacts ADD COLUMN nickname text; SELECT 1",
    );
    let out = sim.run_migrate(&["--online", "--yes"]);
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{said}");
    assert!(said.contains("schema changed"), "{said}");
    assert!(said.contains("public.contacts"), "{said}");
    assert!(said.contains("rollback"), "{said}");
    assert_eq!(sim.replicas(), before.replicas, "the app is not back");
    let list = sim.helm(&["list", "-o", "json"]);
    assert!(
        list.contains("live-agent-4.43.1") && list.contains("deployed"),
        "{list}"
    );
}
