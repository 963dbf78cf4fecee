//! The copy of PostgreSQL 11 into PostgreSQL 15, as the shell text the copy pod runs
//! (detached, so the operator's session may end) and the runbook shows. Pure text.
//!
//! Streamed: no dump file of the data. Roles that own objects or hold grants first, then a
//! fresh database, the schema's pre-data section, every table's rows through `COPY ... TO
//! STDOUT | COPY ... FROM STDIN` (binary where every column is of a built-in type; largest
//! first, `JOBS` at a time), indexes and constraints
//! (`pg_restore --section=post-data --jobs`), every sequence's value, large objects,
//! materialized views. PostgreSQL 15 is tuned for loading meanwhile ([`LOAD_SETTINGS`]) and set
//! back and checkpointed at the end, before anything else uses it.
//!
//! Names (database, owner) and passwords are in the pod's environment (`SRC_*`, `DST_*`),
//! never in this text, so any name reaches the commands intact and runs nothing else.

use super::scripts::detached_script;
use super::COPY_DIR;

/// The detached job's name (markers `copy.exit`, `copy.log` in [`COPY_DIR`]).
pub const COPY_JOB: &str = "copy";

/// Server settings while loading, each with why; all reset (`ALTER SYSTEM RESET ALL`) and
/// checkpointed before the database is handed over.
pub const LOAD_SETTINGS: &[(&str, &str, &str)] = &[
    (
        "fsync",
        "off",
        "no flush per commit while the data is loaded",
    ),
    (
        "full_page_writes",
        "off",
        "no full page images in the WAL after each checkpoint",
    ),
    (
        "synchronous_commit",
        "off",
        "commits do not wait for the WAL",
    ),
    (
        "max_wal_size",
        "'8GB'",
        "no checkpoint forced by WAL volume during the load",
    ),
    (
        "checkpoint_timeout",
        "'30min'",
        "no timed checkpoint during the load",
    ),
    (
        "maintenance_work_mem",
        "'256MB'",
        "index builds sort in memory",
    ),
    (
        "max_parallel_maintenance_workers",
        "2",
        "index builds use parallel workers",
    ),
    ("autovacuum", "off", "no vacuum competing with the load"),
];

/// Which database of the copy pod a command talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// PostgreSQL 11 (`SRC_*`).
    Source,
    /// PostgreSQL 15 (`DST_*`).
    Target,
}

impl Side {
    fn prefix(self) -> &'static str {
        match self {
            Side::Source => "SRC",
            Side::Target => "DST",
        }
    }
}

/// Runs `argv` in the copy pod with libpq's environment set to one side's connection.
pub fn on(side: Side, argv: &[String]) -> Vec<String> {
    let p = side.prefix();
    let mut out = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!(
            r#"export PGHOST="${p}_HOST" PGPORT="${p}_PORT" PGUSER="${p}_USER" PGDATABASE="${p}_DATABASE" PGPASSWORD="${p}_PASSWORD"; exec "$@""#
        ),
        "sh".to_string(),
    ];
    out.extend(argv.iter().cloned());
    out
}

/// Shell functions that run a command against either side.
pub const SIDES: &str = r#"src() ( export PGHOST="$SRC_HOST" PGPORT="$SRC_PORT" PGUSER="$SRC_USER" PGDATABASE="$SRC_DATABASE" PGPASSWORD="$SRC_PASSWORD"; "$@" )
dst() ( export PGHOST="$DST_HOST" PGPORT="$DST_PORT" PGUSER="$DST_USER" PGDATABASE="$DST_DATABASE" PGPASSWORD="$DST_PASSWORD"; "$@" )"#;

/// On the source: a `DO` block per role that owns an object or holds a grant in the database,
/// creating it on the target unless it exists (no password, no superuser: reported).
const ROLES_QUERY: &str = r#"with used as (
  select relowner as r from pg_class union select nspowner from pg_namespace
  union select proowner from pg_proc union select typowner from pg_type
  union select datdba from pg_database where datname = current_database()
  union select (aclexplode(relacl)).grantee from pg_class where relacl is not null
  union select (aclexplode(nspacl)).grantee from pg_namespace where nspacl is not null
  union select (aclexplode(proacl)).grantee from pg_proc where proacl is not null
  union select (aclexplode(typacl)).grantee from pg_type where typacl is not null
)
select format('DO $la_migrate$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %L) THEN CREATE ROLE %I%s; RAISE NOTICE ''created role %%'', %L; END IF; END $la_migrate$;',
  a.rolname, a.rolname,
  case when a.rolcanlogin then ' LOGIN' else ' NOLOGIN' end || case when a.rolinherit then '' else ' NOINHERIT' end,
  a.rolname)
from pg_roles a join used on used.r = a.oid
where a.rolname not like 'pg\_%' order by a.rolname;"#;

/// On the source: every table with rows of its own (not partitioned parents, not extension
/// members), largest first, each as its copy format and its quoted name, NUL-separated (psql
/// `-0 -z`). Binary when every column is of a built-in type (an array's elements too): its
/// send/receive form is the same in PostgreSQL 11 and 15 and is read and written without
/// text conversion. A type made in the database (an enum, a domain, an extension's type)
/// carries its own OID in binary arrays and records, which differ on the target, and a
/// `reg*` value (`regclass`, ...) is an OID in binary but a name in text: text for those.
pub const TABLES_QUERY: &str = r#"select case when exists (
    select 1 from pg_attribute a join pg_type t on t.oid = a.atttypid
    where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      and (t.oid >= 16384 or t.typelem >= 16384 or t.typtype <> 'b' or t.typname ~ '^_?reg')
  ) then 'text' else 'binary' end,
  format('%I.%I', n.nspname, c.relname)
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname not like 'pg\_toast%' and n.nspname not like 'pg\_temp%'
  and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
order by pg_relation_size(c.oid) desc;"#;

/// On the source: `setval` for every sequence, free-standing ones included.
pub const SEQUENCES_QUERY: &str = r#"select format('select pg_catalog.setval(%L, %s, %s);', format('%I.%I', schemaname, sequencename), coalesce(last_value, start_value), case when last_value is null then 'false' else 'true' end)
from pg_sequences where schemaname not in ('pg_catalog', 'information_schema');"#;

/// On the source: a refresh for every materialized view that holds data.
const MATVIEWS_QUERY: &str = r#"select format('REFRESH MATERIALIZED VIEW %I.%I;', schemaname, matviewname) from pg_matviews where ispopulated;"#;

/// One table, source to target (`$1`: `binary` or `text`, as [`TABLES_QUERY`] chose; `$2`:
/// the quoted name).
const COPY_ONE: &str = r#"set -euo pipefail
format=; [ "$1" = binary ] && format=" (FORMAT binary)"
src psql -X -q -v ON_ERROR_STOP=1 -c "COPY $2 TO STDOUT$format" | dst psql -X -q -v ON_ERROR_STOP=1 -c "COPY $2 FROM STDIN$format""#;

/// The script that copies one table (`bash copy-one.sh FORMAT NAME`, the pair
/// [`TABLES_QUERY`] lists), as the copy writes it to `copy-one.sh`.
pub fn copy_one_script() -> String {
    format!("{SIDES}\n{COPY_ONE}\n")
}

/// The copy's first step (bash, after [`SIDES`] and `step`): every role that owns an object
/// or holds a grant, created on the target unless it exists.
pub fn roles_section() -> String {
    format!(
        r#"step roles
cat >roles-query.sql <<'SQL'
{ROLES_QUERY}
SQL
src psql -X -A -t -q -v ON_ERROR_STOP=1 -f roles-query.sql >roles.sql
dst psql -X -q -v ON_ERROR_STOP=1 -d template1 -f roles.sql
"#
    )
}

/// A fresh target database, with the source's encoding and locale, owned by `DST_OWNER`.
pub fn database_section() -> String {
    r#"step database
IFS=$'\t' read -r encoding collate ctype < <(src psql -X -A -t -q -F $'\t' -v ON_ERROR_STOP=1 -c "select pg_encoding_to_char(encoding), datcollate, datctype from pg_database where datname = current_database()")
dst psql -X -q -v ON_ERROR_STOP=1 -d template1 -v db="$DST_DATABASE" -v owner="$DST_OWNER" -v encoding="$encoding" -v collate="$collate" -v ctype="$ctype" <<'SQL'
DROP DATABASE IF EXISTS :"db" WITH (FORCE);
CREATE DATABASE :"db" OWNER :"owner" TEMPLATE template0 ENCODING :'encoding' LC_COLLATE :'collate' LC_CTYPE :'ctype';
SQL
"#
    .to_string()
}

/// The copy itself (bash), written to a file by [`start_copy`] and run detached.
pub fn copy_body() -> String {
    let settings: String = LOAD_SETTINGS
        .iter()
        .map(|(k, v, _)| format!("ALTER SYSTEM SET {k} = {v};\n"))
        .collect();
    let copy_one = copy_one_script();
    let (roles, database) = (roles_section(), database_section());
    format!(
        r#"set -euo pipefail
cd {COPY_DIR}
{SIDES}
step() {{ echo "$1" >step.tmp && mv step.tmp step; echo "== $(date -u +%H:%M:%S) $1"; }}
{roles}step settings
dst psql -X -q -v ON_ERROR_STOP=1 -d template1 <<'SQL'
{settings}SELECT pg_reload_conf();
SQL
{database}step schema
rm -f schema.dump
src pg_dump --schema-only --format=custom --file=schema.dump
dst pg_restore --section=pre-data --exit-on-error --dbname="$DST_DATABASE" schema.dump
step data
cat >tables-query.sql <<'SQL'
{TABLES_QUERY}
SQL
src psql -X -A -t -q -0 -z -v ON_ERROR_STOP=1 -f tables-query.sql >tables.list
cat >copy-one.sh <<'SH'
{copy_one}SH
xargs -0 -r -P "$JOBS" -n 2 bash copy-one.sh <tables.list
step indexes
dst pg_restore --section=post-data --exit-on-error --jobs="$JOBS" --dbname="$DST_DATABASE" schema.dump
step sequences
src psql -X -A -t -q -v ON_ERROR_STOP=1 -c "{SEQUENCES_QUERY}" >sequences.sql
dst psql -X -q -v ON_ERROR_STOP=1 -f sequences.sql
step large-objects
if [ "$(src psql -X -A -t -q -c 'select count(*) from pg_largeobject_metadata')" != 0 ]; then
  src pg_dump --format=custom --exclude-schema='*' --file=large-objects.dump
  dst pg_restore --exit-on-error --dbname="$DST_DATABASE" large-objects.dump
fi
step materialized-views
src psql -X -A -t -q -v ON_ERROR_STOP=1 -c "{MATVIEWS_QUERY}" >matviews.sql
dst psql -X -q -v ON_ERROR_STOP=1 -f matviews.sql
step settle
dst psql -X -q -v ON_ERROR_STOP=1 -d template1 -c 'ALTER SYSTEM RESET ALL' -c 'SELECT pg_reload_conf()' -c 'CHECKPOINT'
step done
"#
    )
}

/// Writes the copy to `copy.sh` in the scratch directory and starts it detached (or
/// reattaches, or reports it done). A rerun after a failure starts it anew: the copy drops
/// and recreates the target database first. The file is replaced by a rename, never
/// rewritten in place: bash reads a running script as it goes, and a truncated `copy.sh`
/// would end a copy that is being reattached to early, with exit 0.
pub fn start_copy() -> String {
    start_job(COPY_JOB, &copy_body())
}

/// Writes `body` to `<name>.sh` in the scratch directory and starts it detached (see
/// [`start_copy`]).
pub fn start_job(name: &str, body: &str) -> String {
    format!(
        "set -eu\ncat >{COPY_DIR}/{name}.sh.tmp <<'LA_MIGRATE_JOB'\n{body}LA_MIGRATE_JOB\nmv -f {COPY_DIR}/{name}.sh.tmp {COPY_DIR}/{name}.sh\n{}",
        detached_script(COPY_DIR, name, "rm -f step", &format!("bash {name}.sh"))
    )
}

/// The copy's state, its step and the target database's size so far.
pub fn poll_copy() -> String {
    format!(
        "{}\necho \"step=$(cat {COPY_DIR}/step 2>/dev/null || echo starting)\"",
        super::scripts::poll(
            COPY_JOB,
            r#"export PGHOST="$DST_HOST" PGPORT="$DST_PORT" PGUSER="$DST_USER" PGPASSWORD="$DST_PASSWORD"; psql -X -A -t -d "$DST_DATABASE" -c 'select pg_database_size(current_database())' 2>/dev/null || echo 0"#,
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_names_no_database_user_or_password_in_its_text() {
        let text = start_copy();
        for var in [
            "$SRC_PASSWORD",
            "$DST_PASSWORD",
            "$DST_DATABASE",
            "$DST_OWNER",
        ] {
            assert!(text.contains(var), "{var}");
        }
        // Every step the progress names, in order.
        let steps: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("step "))
            .collect();
        assert_eq!(
            steps,
            [
                "roles",
                "settings",
                "database",
                "schema",
                "data",
                "indexes",
                "sequences",
                "large-objects",
                "materialized-views",
                "settle",
                "done"
            ]
        );
        // The detached wrapper quotes its command in single quotes.
        assert!(!detached_script(COPY_DIR, COPY_JOB, "", "bash copy.sh").is_empty());
    }

    #[test]
    fn a_command_runs_against_one_side_with_the_password_from_the_environment() {
        let argv = on(
            Side::Target,
            &["psql".to_string(), "-c".to_string(), "select 1".to_string()],
        );
        assert_eq!(argv[0], "sh");
        assert!(argv[2].contains(r#"PGPASSWORD="$DST_PASSWORD""#));
        assert_eq!(&argv[4..], ["psql", "-c", "select 1"]);
    }

    #[test]
    fn every_load_setting_is_reset_before_the_handover() {
        let body = copy_body();
        let reset = body.find("ALTER SYSTEM RESET ALL").unwrap();
        for (k, _, _) in LOAD_SETTINGS {
            let set = body.find(&format!("ALTER SYSTEM SET {k} =")).unwrap();
            assert!(set < reset, "{k}");
        }
        assert!(body[reset..].contains("CHECKPOINT"));
    }
}
