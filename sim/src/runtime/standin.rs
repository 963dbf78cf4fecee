//! The stand-in for the Live Agent migration Job's `bundle exec rails db:chatwoot_prepare`.
//!
//! The real task (Chatwoot's `lib/tasks/db_enhancements.rake`) loads the schema and seeds an
//! empty database, which also sets the Redis key `alfred:CHATWOOT_INSTALLATION_ONBOARDING`
//! (the reason the migration guide clears it in step 8), and only migrates a populated one.
//! The stand-in does what matters to the migration, with the PostgreSQL 15 client tools and
//! `redis-cli`, from the Job's env (`POSTGRES_HOST`, `POSTGRES_PORT`, `POSTGRES_USERNAME`,
//! `POSTGRES_PASSWORD`, `POSTGRES_DB`/`POSTGRES_DATABASE`, `REDIS_URL`, `REDIS_PASSWORD`):
//! - database unreachable: a log line and exit 1, so the Job fails (and retries) as Rails would;
//! - no `schema_migrations` table: creates the schema markers (`schema_migrations` with the
//!   schema versions, `ar_internal_metadata`) and sets the onboarding key to `true` in DB 0;
//! - otherwise: leaves the database alone (every row count stays as it was).

/// The stand-in as a POSIX shell script (no secret on any command line: `PGPASSWORD` and
/// `REDISCLI_AUTH` travel in the environment).
pub fn script() -> String {
    // Every version, as `db:schema:load` records them, so `max(version)` is the seeded
    // schema's.
    let values = crate::seed::SCHEMA_MIGRATIONS
        .iter()
        .map(|v| format!("('{v}')"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"#!/bin/sh
# la-sim stand-in for `rails db:chatwoot_prepare` (see sim/src/runtime/standin.rs)
set -u
export PGHOST="${{POSTGRES_HOST:-localhost}}" PGPORT="${{POSTGRES_PORT:-5432}}"
export PGUSER="${{POSTGRES_USERNAME:-postgres}}" PGPASSWORD="${{POSTGRES_PASSWORD:-}}"
export PGDATABASE="${{POSTGRES_DATABASE:-${{POSTGRES_DB:-chatwoot_production}}}}" PGCONNECT_TIMEOUT=5
export PGSSLMODE="${{POSTGRES_SSL_MODE:-prefer}}"
q() {{ psql -X -v ON_ERROR_STOP=1 -qtA "$@"; }}
if ! err=$(q -d postgres -c 'select 1' 2>&1 >/dev/null); then
  echo "chatwoot_prepare: could not connect to PostgreSQL at $PGHOST:$PGPORT as $PGUSER: $err" >&2
  exit 1
fi
# The name travels as a psql variable, quoted by psql (as Rails quotes it): any name works.
if [ "$(echo "select count(*) from pg_database where datname = :'db'" | q -d postgres -v db="$PGDATABASE")" = 0 ]; then
  echo "chatwoot_prepare: creating database $PGDATABASE"
  echo 'create database :"db"' | q -d postgres -v db="$PGDATABASE" || exit 1
fi
upsert="insert into schema_migrations (version) values {values} on conflict do nothing;"
if [ "$(q -c "select to_regclass('public.schema_migrations') is not null")" = t ]; then
  echo "chatwoot_prepare: database $PGDATABASE has a schema; leaving its data alone"
  exit 0
fi
echo "chatwoot_prepare: empty database $PGDATABASE; loading the schema markers and seeding"
q <<SQL || exit 1
create table schema_migrations (version character varying primary key);
create table ar_internal_metadata (key character varying primary key, value character varying,
  created_at timestamp(6) not null, updated_at timestamp(6) not null);
insert into ar_internal_metadata values ('environment', 'production', now(), now());
$upsert
SQL
export REDISCLI_AUTH="${{REDIS_PASSWORD:-}}"
redis_url=$(printf '%s' "${{REDIS_URL:-redis://localhost:6379}}" | sed -E 's#//[^@/]*@#//#')
redis-cli --no-auth-warning -u "$redis_url" -n 0 SET alfred:CHATWOOT_INSTALLATION_ONBOARDING true >/dev/null || {{
  echo "chatwoot_prepare: could not reach Redis at $redis_url" >&2
  exit 1
}}
echo "chatwoot_prepare: done"
"#
    )
}

/// `nslookup NAME` for images that wait on DNS (busybox init containers), from the pod's
/// hosts file.
pub const NSLOOKUP: &str = r#"#!/bin/sh
# la-sim: nslookup from the pod's /etc/hosts (the cluster DNS of this simulation)
name=""
for a in "$@"; do case "$a" in -*) ;; *) [ -z "$name" ] && name="$a" ;; esac; done
addr=$(getent hosts "$name" | awk '{print $1; exit}')
[ -n "$addr" ] || { echo "nslookup: can't resolve '$name'" >&2; exit 1; }
printf 'Name:      %s\nAddress 1: %s\n' "$name" "$addr"
"#;
