//! The fingerprint that proves a migration lost nothing, on real servers: PostgreSQL 11 as the
//! source, PostgreSQL 15 as the target, dumped and restored with the PostgreSQL 15 tools the
//! way the backup and restore pods do it.

mod common;

use common::pg::{PgServer, PG11_BIN, PG15_BIN};
use la_migrate::verify::{compare, sql};

const SCHEMA: &str = r#"
create table schema_migrations (version varchar primary key);
insert into schema_migrations values ('20221101000000'), ('20230110120000');
create table accounts (id bigserial primary key, name text, settings jsonb, created_at timestamptz default now());
create table messages (id bigserial primary key, account_id bigint, content text, score double precision, ratio real, amount numeric(12,4), sent_at timestamp, raw bytea, span interval, tags text[]);
insert into accounts (name, settings) select 'account ' || g, jsonb_build_object('g', g, 'x', array[g, g*2]) from generate_series(1, 50) g;
insert into messages (account_id, content, score, ratio, amount, sent_at, raw, span, tags)
  select g % 50 + 1, repeat('hello ', g % 7) || g, g / 3.0, g / 7.0, g * 1.2345, timestamp '2023-01-01' + g * interval '1 minute',
         decode(md5(g::text), 'hex'), g * interval '1 second', array['a' || g, 'b']
  from generate_series(1, 2000) g;
create table empty_table (id int);
"#;

fn fingerprint(server: &PgServer, db: &str) -> la_migrate::verify::DatabaseStats {
    let out = server.psql(db, &sql::fingerprint_query());
    sql::parse_fingerprint(&out).unwrap_or_else(|e| panic!("{e}\noutput:\n{out}"))
}

#[test]
fn a_pg11_database_dumped_and_restored_into_pg15_has_the_same_fingerprint() {
    let source = PgServer::start(PG11_BIN, "fp-source");
    let target = PgServer::start(PG15_BIN, "fp-target");
    source.psql("postgres", "create database live_agent_production");
    source.psql("live_agent_production", SCHEMA);

    let before = fingerprint(&source, "live_agent_production");
    assert_eq!(before.tables.len(), 4);
    assert_eq!(before.tables["messages"].rows, 2000);
    assert_eq!(before.tables["empty_table"].rows, 0);
    assert_eq!(before.schema_version.as_deref(), Some("20230110120000"));

    let dump = source.dir.join("dump");
    source.run(&format!(
        "{PG15_BIN}/pg_dump --format=directory --jobs=2 -h 127.0.0.1 -p {} -U postgres -f {} live_agent_production",
        source.port,
        dump.display()
    ));
    target.psql("postgres", "create database live_agent_production");
    target.run(&format!(
        "{PG15_BIN}/pg_restore --jobs=2 --exit-on-error --no-owner -h 127.0.0.1 -p {} -U postgres -d live_agent_production {}",
        target.port,
        dump.display()
    ));

    let after = fingerprint(&target, "live_agent_production");
    let report = compare(&before, &after, true);
    assert!(report.is_equal(), "{:?}", report.differences);
    assert_eq!(report.rows, 2052);

    // One changed value in one row is found, and named.
    target.psql(
        "live_agent_production",
        "update messages set score = score + 0.000001 where id = 17",
    );
    let changed = compare(
        &before,
        &fingerprint(&target, "live_agent_production"),
        true,
    );
    let text: Vec<String> = changed.differences.iter().map(|d| d.to_string()).collect();
    assert_eq!(text, ["table messages: same row count, different contents"]);
}
