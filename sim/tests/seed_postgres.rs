//! The seeded database on real PostgreSQL 11 and 15 servers: it loads on both, reads the same
//! on both, survives `pg_dump -Fc` (PG 15 tools) from 11 and `pg_restore` into 15, and the
//! snapshot used by the migration tests notices every kind of change.

mod seed_support;

use std::thread;
use std::time::Instant;

use la_sim::seed::{self, DbSnapshot, SeedOptions};
use seed_support::{Major, PgServer, DATABASE};

const SIZE: u64 = 20_000_000;

fn seeded(major: Major, opts: SeedOptions) -> (PgServer, la_sim::seed::PgTarget, seed::LoadReport) {
    let server = PgServer::start(major);
    let db = server.create_database(DATABASE);
    let report =
        seed::load_into(&db, &opts).unwrap_or_else(|e| panic!("seeding PostgreSQL {major:?}: {e}"));
    eprintln!("PostgreSQL {major:?}: {report}");
    (server, db, report)
}

fn assert_same(before: &DbSnapshot, after: &DbSnapshot) {
    let diff = before.diff(after);
    assert!(diff.is_empty(), "snapshots differ:\n{}", diff.join("\n"));
    assert_eq!(before, after);
}

#[test]
fn a_seeded_database_reads_the_same_on_postgres_11_and_15() {
    let opts = SeedOptions::new(SIZE, 1);
    let pg11 = thread::spawn(move || seeded(Major::Pg11, opts));
    let (_pg15, db15, report15) = seeded(Major::Pg15, opts);
    let (_pg11, db11, report11) = pg11.join().unwrap();
    assert_eq!(report11.stats, report15.stats);

    let snap11 = seed::snapshot(&db11).unwrap();
    let snap15 = seed::snapshot(&db15).unwrap();
    assert_same(&snap11, &snap15);

    // Every table the generator wrote holds exactly the rows it reported, nothing else exists.
    let written = &report15.stats.rows;
    assert_eq!(
        snap15.tables.keys().collect::<Vec<_>>(),
        written.keys().collect::<Vec<_>>()
    );
    for (table, rows) in written {
        assert_eq!(snap15.tables[table].rows, *rows, "rows in {table}");
    }
    assert!(
        written["messages"] > 20 * 1_000,
        "a 20 MB seed has tens of thousands of messages"
    );
    assert_eq!(snap15.schema_version.as_deref(), Some(seed::SCHEMA_VERSION));
    // Sequences continue after the data, like an installation that has been in use.
    assert_eq!(
        snap15.sequences["messages_id_seq"],
        Some(written["messages"] as i64)
    );
    assert_eq!(
        snap15.sequences["conversations_id_seq"],
        Some(written["conversations"] as i64)
    );
    assert!(snap15.sequences.contains_key("conv_dpid_seq_1"));
    let sql_mb = report15.stats.bytes as f64 / 1e6;
    assert!(
        (15.0..25.0).contains(&sql_mb),
        "a 20 MB seed wrote {sql_mb:.1} MB of SQL"
    );
}

#[test]
fn a_postgres_11_dump_made_with_pg15_tools_restores_into_postgres_15_unchanged() {
    let opts = SeedOptions::new(SIZE, 7);
    let (pg11, db11, _) = seeded(Major::Pg11, opts);
    let pg15 = PgServer::start(Major::Pg15);
    let db15 = pg15.create_database(DATABASE);
    let dump = tempfile::NamedTempFile::new().unwrap();
    let dump_path = dump.path().to_str().unwrap();

    let started = Instant::now();
    let out = pg11.client("pg_dump", &["-Fc", "-d", DATABASE, "-f", dump_path]);
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dumped = started.elapsed();
    let out = pg15.client(
        "pg_restore",
        &["--exit-on-error", "--no-owner", "-d", DATABASE, dump_path],
    );
    assert!(
        out.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "pg_dump -Fc {:.1} s ({:.1} MB), pg_restore {:.1} s",
        dumped.as_secs_f64(),
        std::fs::metadata(dump.path()).unwrap().len() as f64 / 1e6,
        (started.elapsed() - dumped).as_secs_f64()
    );

    let before = seed::snapshot(&db11).unwrap();
    let after = seed::snapshot(&db15).unwrap();
    assert_same(&before, &after);
    assert!(after.total_rows() > 30_000);
    // The restored triggers still number new conversations per account.
    let next = db15
        .query(
            "insert",
            "INSERT INTO conversations (account_id, inbox_id, status, created_at, updated_at, display_id) \
             VALUES (1, 1, 0, now(), now(), 0) RETURNING display_id;",
        )
        .unwrap();
    let expected = before.sequences["conv_dpid_seq_1"].unwrap() + 1;
    assert_eq!(next[0][0], expected.to_string());
}

#[test]
fn the_snapshot_notices_a_changed_a_deleted_and_an_added_row() {
    let (_pg, db, _) = seeded(Major::Pg15, SeedOptions::new(2_000_000, 3));
    let before = seed::snapshot(&db).unwrap();

    db.query(
        "change",
        "UPDATE messages SET content = content || '.' WHERE id = 17;",
    )
    .unwrap();
    let changed = seed::snapshot(&db).unwrap();
    assert_eq!(
        before.diff(&changed),
        vec![format!(
            "table messages: same {} rows but different content",
            before.tables["messages"].rows
        )]
    );

    db.query(
        "delete",
        "DELETE FROM taggings WHERE id = (SELECT min(id) FROM taggings);",
    )
    .unwrap();
    let deleted = seed::snapshot(&db).unwrap();
    let rows = before.tables["taggings"].rows;
    assert!(before.diff(&deleted).contains(&format!(
        "table taggings: {rows} rows before, {} after",
        rows - 1
    )));

    db.query(
        "add",
        "INSERT INTO schema_migrations VALUES ('29990101000000');",
    )
    .unwrap();
    let added = seed::snapshot(&db).unwrap();
    assert!(before.diff(&added).contains(&format!(
        "schema version: Some(\"{}\") before, Some(\"29990101000000\") after",
        seed::SCHEMA_VERSION
    )));
}

#[test]
fn loading_into_a_database_that_already_holds_the_schema_fails_and_changes_nothing() {
    let opts = SeedOptions::new(1_000_000, 4);
    let (_pg, db, _) = seeded(Major::Pg15, opts);
    let before = seed::snapshot(&db).unwrap();
    let err = seed::load_into(&db, &opts).unwrap_err().to_string();
    assert!(
        err.contains(&db.to_string()),
        "error names the database: {err}"
    );
    assert!(
        err.contains("already exists"),
        "error carries psql's message: {err}"
    );
    assert!(!err.contains(seed_support::PASSWORD));
    assert_same(&before, &seed::snapshot(&db).unwrap());
}

#[test]
fn seeding_a_database_prepared_by_the_migration_job_replaces_its_schema_markers() {
    let pg = PgServer::start(Major::Pg15);
    let db = pg.create_database(DATABASE);
    // What the chart's migration Job leaves in an empty database.
    db.query(
        "prepare",
        "CREATE TABLE schema_migrations (version character varying PRIMARY KEY); \
         CREATE TABLE ar_internal_metadata (key character varying PRIMARY KEY, value character varying, \
           created_at timestamp(6) NOT NULL, updated_at timestamp(6) NOT NULL); \
         INSERT INTO schema_migrations VALUES ('20221208000000'), ('20230112103216'); \
         INSERT INTO ar_internal_metadata VALUES ('environment', 'production', now(), now());",
    )
    .unwrap();
    let report = seed::load_into(&db, &SeedOptions::new(1_000_000, 8)).unwrap();
    let snap = seed::snapshot(&db).unwrap();
    assert_eq!(snap.schema_version.as_deref(), Some(seed::SCHEMA_VERSION));
    assert_eq!(
        snap.tables["schema_migrations"].rows,
        seed::SCHEMA_MIGRATIONS.len() as u64
    );
    assert_eq!(snap.tables["ar_internal_metadata"].rows, 1);
    assert_eq!(snap.tables["messages"].rows, report.stats.rows["messages"]);
}

/// Generation and load throughput. Run with
/// `SEED_BENCH_SIZE=500MB cargo test -p la-sim --release --test seed_postgres -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark: prints figures, takes minutes"]
fn benchmark_generate_and_load() {
    let size =
        seed::parse_size(&std::env::var("SEED_BENCH_SIZE").unwrap_or_else(|_| "500MB".into()))
            .unwrap();
    let opts = SeedOptions::new(size, 1);
    let started = Instant::now();
    let stats = seed::write_sql(&opts, std::io::sink()).unwrap();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "generate only: {:.1} MB in {secs:.1} s = {:.1} MB/s ({} rows)",
        stats.bytes as f64 / 1e6,
        stats.bytes as f64 / 1e6 / secs,
        stats.total_rows()
    );
    for major in [Major::Pg15, Major::Pg11] {
        let (_server, db, report) = seeded(major, opts);
        eprintln!(
            "generate + load into {major:?}: {:.1} MB/s",
            report.mb_per_s()
        );
        let started = Instant::now();
        let snap = seed::snapshot(&db).unwrap();
        eprintln!(
            "snapshot of {major:?} ({} rows): {:.1} s",
            snap.total_rows(),
            started.elapsed().as_secs_f64()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let manifest = seed::write_attachments(dir.path(), &opts).unwrap();
    eprintln!(
        "attachments: {} files, {:.1} MB in {:.1} s",
        manifest.files.len(),
        manifest.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
}
