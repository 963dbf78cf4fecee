//! The fingerprint that proves a migration lost nothing, on real servers: PostgreSQL 11 as the
//! source, PostgreSQL 15 as the target, the data dumped and restored with the PostgreSQL 15
//! tools.

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
create table contacts (id serial primary key, gone text, name varchar, flag boolean, small smallint, token uuid,
  attrs jsonb, raw_json json, seen_at timestamptz, born date, created_at timestamp, nothing text);
insert into contacts (gone, name, flag, small, token, attrs, raw_json, seen_at, born, created_at, nothing)
  select 'x', 'contact ' || g, g % 2 = 0, g % 300, md5(g::text)::uuid, jsonb_build_object('n', g, 'tags', array['a', 'b']),
         json_build_object('n', g), timestamptz '2023-06-01 10:00+02' + g * interval '1 hour', date '2020-01-01' + g,
         timestamp '2023-01-01' + g * interval '1 second', case when g % 3 > 0 then 'note ' || g end
  from generate_series(1, 300) g;
alter table contacts drop column gone;
"#;

fn fingerprint(server: &PgServer, db: &str) -> la_migrate::verify::DatabaseStats {
    let out = server.psql(db, &sql::fingerprint_query(sql::HashMethod::CURRENT));
    sql::parse_fingerprint(&out, sql::HashMethod::CURRENT)
        .unwrap_or_else(|e| panic!("{e}\noutput:\n{out}"))
}

#[test]
fn a_pg11_database_dumped_and_restored_into_pg15_has_the_same_fingerprint() {
    let source = PgServer::start(PG11_BIN, "fp-source");
    let target = PgServer::start(PG15_BIN, "fp-target");
    source.psql("postgres", "create database live_agent_production");
    source.psql("live_agent_production", SCHEMA);

    let before = fingerprint(&source, "live_agent_production");
    assert_eq!(before.tables.len(), 5);
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
    assert_eq!(report.rows, 2352);
    // The whole-row text hash, which a backup made by an earlier version recorded, agrees too.
    let legacy = |server: &PgServer| {
        let out = server.psql(
            "live_agent_production",
            &sql::fingerprint_query(sql::HashMethod::RowText),
        );
        sql::parse_fingerprint(&out, sql::HashMethod::RowText).unwrap()
    };
    let (legacy_before, legacy_after) = (legacy(&source), legacy(&target));
    assert!(compare(&legacy_before, &legacy_after, true).is_equal());
    assert_ne!(
        legacy_after.tables["contacts"].hash,
        after.tables["contacts"].hash
    );

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

    // Every column type, hashed natively or by its text form, notices a change; so do a
    // NULL set or cleared, and two values of one type swapped between columns.
    let changes = [
        "update contacts set name = name || '.' where id = 3",
        "update contacts set flag = not flag where id = 3",
        "update contacts set small = small + 1 where id = 3",
        "update contacts set token = md5('other')::uuid where id = 3",
        "update contacts set attrs = attrs || '{\"n\": 0}' where id = 3",
        "update contacts set raw_json = '{\"n\":3}' where id = 3",
        "update contacts set seen_at = seen_at + interval '1 microsecond' where id = 3",
        "update contacts set born = born + 1 where id = 3",
        "update contacts set created_at = created_at - interval '1 second' where id = 3",
        "update contacts set nothing = '' where id = 3",
        "update contacts set nothing = null where id = 4",
        "update contacts set name = null where id = 3",
        "update contacts set nothing = 'x' where id = 3",
        "update contacts set name = nothing, nothing = name where id = 4",
        "update contacts set name = (select name from contacts where id = 4) where id = 3",
    ];
    target.psql(
        "live_agent_production",
        "update messages set score = score - 0.000001 where id = 17",
    );
    let restored = fingerprint(&target, "live_agent_production");
    assert!(compare(&before, &restored, true).is_equal());
    for change in changes {
        target.psql(
            "live_agent_production",
            &format!("begin; {change}; commit;"),
        );
        let report = compare(
            &restored,
            &fingerprint(&target, "live_agent_production"),
            true,
        );
        let text: Vec<String> = report.differences.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            text,
            ["table contacts: same row count, different contents"],
            "after {change}"
        );
        // Back to the restored contents for the next change.
        reload_contacts(&target, &source);
        assert!(
            compare(
                &restored,
                &fingerprint(&target, "live_agent_production"),
                true
            )
            .is_equal(),
            "reloading after {change}"
        );
    }
}

/// Replaces the target's contacts rows with the source's (the restored contents).
fn reload_contacts(target: &PgServer, source: &PgServer) {
    let rows = source.psql("live_agent_production", "copy contacts to stdout");
    let path = target.dir.join("contacts.copy");
    std::fs::write(&path, rows).unwrap();
    target.psql(
        "live_agent_production",
        &format!(
            "begin; delete from contacts; copy contacts from '{}'; commit;",
            path.display()
        ),
    );
}
