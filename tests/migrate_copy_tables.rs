//! The copy pod's table copy on real servers: PostgreSQL 11 as the source, PostgreSQL 15 as
//! the target, each table through the copy's own `copy-one.sh` in the format the copy's own
//! table query chose for it, the sequences set by its own query.

mod common;

use common::pg::{as_postgres, PgServer, PG11_BIN, PG15_BIN};
use la_migrate::plan::copy_script::{copy_one_script, SEQUENCES_QUERY, TABLES_QUERY};
use la_migrate::verify::{compare, sql};

const SCHEMA: &str = r#"
create type state as enum ('open', 'resolved');
create domain positive as integer check (value > 0);
create table messages (id bigserial primary key, content text, attrs jsonb, score double precision,
  ratio real, amount numeric(12,4), sent_at timestamptz, raw bytea, span interval, tags text[], ids int[],
  token uuid, born date, flag boolean, small smallint, addr inet, words tsvector, "odd ""name""" text);
insert into messages (content, attrs, score, ratio, amount, sent_at, raw, span, tags, ids, token, born, flag, small, addr, words, "odd ""name""")
  select repeat('hé ', g % 5) || g, jsonb_build_object('g', g, 'a', array[g, -g]), g / 3.0, g / 7.0, g * 1.2345,
         timestamptz '2023-01-01 00:00+02' + g * interval '1 minute 1.5 second', decode(md5(g::text), 'hex'),
         g * interval '1 second', array['a' || g, null], array[g, g + 1], md5(g::text)::uuid, date '2020-01-01' + g,
         g % 2 = 0, g % 300, ('10.0.' || g % 250 || '.1')::inet, to_tsvector('simple', 'word' || g || ' other'),
         case when g % 4 > 0 then 'x' || g end
  from generate_series(1, 3000) g;
create table conversations (id serial primary key, status state, history state[], count positive);
insert into conversations (status, history, count)
  select (array['open', 'resolved'])[g % 2 + 1]::state, array['open', 'resolved']::state[], g from generate_series(1, 200) g;
create table refs (id int primary key, rel regclass);
insert into refs values (1, 'messages'), (2, 'conversations');
create schema "other schema";
create table "other schema"."a;b" (id int, note text);
insert into "other schema"."a;b" select g, 'n' || g from generate_series(1, 10) g;
create table empty_table (id int);
"#;

fn fingerprint(server: &PgServer, db: &str) -> la_migrate::verify::DatabaseStats {
    let out = server.psql(db, &sql::fingerprint_query(sql::HashMethod::CURRENT));
    sql::parse_fingerprint(&out, sql::HashMethod::CURRENT)
        .unwrap_or_else(|e| panic!("{e}\noutput:\n{out}"))
}

/// The environment `copy-one.sh` reads for one side (`SRC` or `DST`).
fn side(prefix: &str, server: &PgServer) -> String {
    format!(
        "{prefix}_HOST=127.0.0.1 {prefix}_PORT={} {prefix}_USER=postgres {prefix}_DATABASE=live_agent_production {prefix}_PASSWORD=",
        server.port
    )
}

#[test]
fn tables_of_built_in_types_are_copied_in_binary_the_others_in_text_and_all_arrive_unchanged() {
    let source = PgServer::start(PG11_BIN, "copy-source");
    let target = PgServer::start(PG15_BIN, "copy-target");
    source.psql("postgres", "create database live_agent_production");
    source.psql("live_agent_production", SCHEMA);
    target.psql("postgres", "create database live_agent_production");

    // The list as the copy reads it: format and quoted name, NUL-separated.
    let query = source.dir.join("tables-query.sql");
    std::fs::write(&query, TABLES_QUERY).unwrap();
    let list = source.dir.join("tables.list");
    as_postgres(&format!(
        "{PG15_BIN}/psql -X -A -t -q -0 -z -v ON_ERROR_STOP=1 -h 127.0.0.1 -p {} -U postgres -d live_agent_production -f {} >{}",
        source.port,
        query.display(),
        list.display()
    ));
    let raw = std::fs::read_to_string(&list).unwrap();
    let fields: Vec<&str> = raw.split('\0').filter(|f| !f.is_empty()).collect();
    let chosen: Vec<(&str, &str)> = fields.chunks(2).map(|p| (p[1], p[0])).collect();
    assert_eq!(chosen.len(), 5, "{chosen:?}");
    // Largest first; an enum, an array of enums, a domain or a regclass column means text.
    assert_eq!(chosen[0], ("public.messages", "binary"));
    for (table, format) in [
        ("public.conversations", "text"),
        ("public.refs", "text"),
        (r#""other schema"."a;b""#, "binary"),
        ("public.empty_table", "binary"),
    ] {
        assert!(chosen.contains(&(table, format)), "{table}: {chosen:?}");
    }

    // The schema first, then each table through the copy's own script, then the rest.
    let dump = source.dir.join("schema.dump");
    as_postgres(&format!(
        "{PG15_BIN}/pg_dump --schema-only --format=custom -h 127.0.0.1 -p {} -U postgres -f {} live_agent_production && \
         {PG15_BIN}/pg_restore --section=pre-data --exit-on-error -h 127.0.0.1 -p {} -U postgres -d live_agent_production {}",
        source.port,
        dump.display(),
        target.port,
        dump.display()
    ));
    let script = source.dir.join("copy-one.sh");
    std::fs::write(&script, copy_one_script()).unwrap();
    as_postgres(&format!(
        "export PATH={PG15_BIN}:$PATH; export {} {}; xargs -0 -r -n 2 bash {} <{}",
        side("SRC", &source),
        side("DST", &target),
        script.display(),
        list.display()
    ));
    as_postgres(&format!(
        "{PG15_BIN}/pg_restore --section=post-data --exit-on-error -h 127.0.0.1 -p {} -U postgres -d live_agent_production {}",
        target.port,
        dump.display()
    ));
    let setvals = source.psql("live_agent_production", SEQUENCES_QUERY);
    target.psql("live_agent_production", &setvals);

    let before = fingerprint(&source, "live_agent_production");
    let after = fingerprint(&target, "live_agent_production");
    let report = compare(&before, &after, true);
    assert!(report.is_equal(), "{:?}", report.differences);
    assert_eq!(report.rows, 3000 + 200 + 2 + 10);
    // A regclass names the same table on the target (its OID there is another).
    assert_eq!(
        target.psql(
            "live_agent_production",
            "select rel::text from refs order by id"
        ),
        "messages\nconversations\n"
    );
}
