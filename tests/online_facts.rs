//! The facts `--online` is decided on, read from a real PostgreSQL 11: replica identities,
//! large objects, extensions, the WAL and database sizes, as a superuser and as a plain user.

mod common;

use common::pg::{PgServer, PG11_BIN, PG15_BIN};
use la_migrate::plan::online::{
    free_space_script, online_facts_query, parse_free_bytes, parse_online_facts, readiness,
    replica_identity_sql, IdentityFix, OnlineFacts,
};
use la_migrate::plan::scripts::shell_quote;

const SCHEMA: &str = r#"
create extension if not exists pgcrypto;
create table accounts (id bigserial primary key, name text);
create table portals_members (portal_id bigint not null, user_id bigint not null, note text);
create unique index index_portals_members_on_portal_id_and_user_id on portals_members (portal_id, user_id);
create table logs (line text, at timestamptz);
create table tokens (token text, kind text not null);
create unique index index_tokens_on_token on tokens (token);
create table "Odd Name" (a int not null);
create unique index "odd index" on "Odd Name" (a);
create unique index odd_partial on "Odd Name" (a) where a > 0;
create table nothing (a int primary key);
alter table nothing replica identity nothing; -- its primary key is the fix
create unlogged table scratch (a int);
create table events (id bigint not null, at date not null) partition by range (at);
create table events_2024 partition of events for values from ('2024-01-01') to ('2025-01-01');
select lo_create(0);
"#;

fn facts(server: &PgServer, db: &str) -> OnlineFacts {
    let out = server.psql(db, online_facts_query());
    parse_online_facts(&out, None).unwrap_or_else(|e| panic!("{e}\noutput:\n{out}"))
}

fn fix(table: &str, index: Option<&str>) -> IdentityFix {
    IdentityFix {
        table: table.into(),
        index: index.map(Into::into),
    }
}

#[test]
fn pg11_facts_name_each_table_without_identity_and_the_fixes_clear_them() {
    let server = PgServer::start(PG11_BIN, "online-facts");
    server.psql("postgres", "create database chatwoot");
    server.psql("chatwoot", SCHEMA);

    let f = facts(&server, "chatwoot");
    assert_eq!(f.wal_level, "replica");
    assert!(f.superuser);
    assert_eq!(f.user, "postgres");
    assert_eq!(f.large_objects, 1);
    assert!(f.extensions.contains(&"plpgsql".to_string()), "{f:?}");
    assert!(f.extensions.contains(&"pgcrypto".to_string()), "{f:?}");
    assert!(f.database_bytes > 0);
    assert!(f.wal_bytes > 0, "a superuser lists pg_wal");
    assert_eq!(f.replication_slots_used, 0);
    assert!(f.max_replication_slots > 0 && f.max_wal_senders > 0);
    assert_eq!(
        f.tables_without_identity,
        [
            fix("public.\"Odd Name\"", Some("\"odd index\"")),
            fix("public.events_2024", None),
            fix("public.logs", None),
            fix("public.nothing", Some("nothing_pkey")),
            fix(
                "public.portals_members",
                Some("index_portals_members_on_portal_id_and_user_id")
            ),
            fix("public.tokens", None),
        ]
    );
    let r = readiness(&f);
    assert!(r.restart_for_wal_level);
    assert_eq!(
        r.blockers.len(),
        1,
        "the large object only: {:?}",
        r.blockers
    );

    let fixes: String = f
        .tables_without_identity
        .iter()
        .map(replica_identity_sql)
        .collect::<Vec<_>>()
        .join("\n");
    server.psql("chatwoot", &fixes);
    let after = facts(&server, "chatwoot");
    assert_eq!(after.tables_without_identity, []);
}

#[test]
fn a_plain_user_reads_the_facts_without_the_wal_size() {
    let server = PgServer::start(PG11_BIN, "online-facts-user");
    server.psql(
        "postgres",
        "create role app login; create database app owner app",
    );
    // As preflight runs it: one `-c`, the query quoted for the shell.
    let out = server.run(&format!(
        "{PG15_BIN}/psql -X -A -t -h 127.0.0.1 -p {} -U app -d app -c {}",
        server.port,
        shell_quote(online_facts_query())
    ));
    let f = parse_online_facts(&out, Some(1 << 40)).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(!f.superuser);
    assert_eq!(f.user, "app");
    assert_eq!(f.wal_bytes, 0);
    let r = readiness(&f);
    assert_eq!(r.blockers.len(), 1, "{:?}", r.blockers);
    assert!(
        r.blockers[0].contains("the user app is not one"),
        "{:?}",
        r.blockers
    );
}

#[test]
fn the_free_space_is_measured_where_pgdata_is() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(free_space_script())
        .env("PGDATA", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let free = parse_free_bytes(&String::from_utf8_lossy(&out.stdout));
    assert!(free.is_some_and(|b| b > 0 && b % 1024 == 0), "{out:?}");

    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(free_space_script())
        .env("PGDATA", dir.path().join("absent"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let expected = std::path::Path::new("/bitnami/postgresql").is_dir();
    assert_eq!(
        parse_free_bytes(&String::from_utf8_lossy(&out.stdout)).is_some(),
        expected,
        "{out:?}"
    );
}
