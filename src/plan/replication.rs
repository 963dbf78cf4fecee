//! Online (`--online`): PostgreSQL 15 filled by logical replication from PostgreSQL 11 while
//! the app runs, so the app is down only for the cut-over. Pure: the plan's part, the SQL and
//! shell text the copy pod runs, the parsing of what it prints and the decisions on it.
//!
//! The order, as the tools of the trade do it: the schema loaded on PostgreSQL 15 first (a
//! subscription carries rows, not DDL), a publication for all tables on 11 and a subscription
//! on 15 (its slot on 11 keeps the WAL until 15 has applied it), the initial copy, then a
//! proof while the app runs. At the cut-over: the app stopped, PostgreSQL 11's schema checked
//! unchanged, 15 caught up with 11's current WAL position, every sequence synced (the
//! subscriber's triggers never fired, so per-account sequences may be missing), the tables
//! written since that proof proven again, and the subscription, slot and publication dropped.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::copy_script::{self, SIDES};
use super::online::IdentityFix;
use super::COPY_DIR;
use crate::verify::DatabaseStats;

/// Publication on PostgreSQL 11, subscription on PostgreSQL 15 and the slot the subscription
/// holds on 11: one name (each database serves one release).
pub const NAME: &str = "la_migrate";

/// The detached job that loads the schema and creates the subscription.
pub const SUBSCRIBE_JOB: &str = "subscribe";

/// What the online path needs to know beyond the offline plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlinePlan {
    /// The publication, subscription and slot name ([`NAME`]).
    pub name: String,
    /// `wal_level` of PostgreSQL 11 before the migration: set back by the rollback.
    pub wal_level_before: String,
    /// Whether PostgreSQL 11 is restarted with `wal_level = logical` at prepare.
    pub restart_for_wal_level: bool,
    /// PostgreSQL 11's pod (`<release>-postgresql-0`), restarted by its StatefulSet.
    pub source_pod: String,
    /// Tables without a primary key, and the replica identity each gets before publishing.
    pub identity_fixes: Vec<IdentityFix>,
    /// The extensions of PostgreSQL 11's database: PostgreSQL 15 must offer each.
    #[serde(default)]
    pub extensions: Vec<String>,
}

/// On PostgreSQL 15: the extensions it can create, one per line.
pub fn available_extensions_query() -> &'static str {
    "select name from pg_available_extensions order by 1"
}

/// One table's write mark on PostgreSQL 11: its file node (a `TRUNCATE` or rewrite changes
/// it) and its rows inserted, updated and deleted since the statistics began. A table whose
/// mark is unchanged was not written to in between.
pub fn table_marks_query() -> &'static str {
    "select case when s.schemaname = 'public' then s.relname else s.schemaname || '.' || s.relname end \
|| E'\\t' || c.relfilenode || ':' || s.n_tup_ins || ':' || s.n_tup_upd || ':' || s.n_tup_del \
from pg_stat_user_tables s join pg_class c on c.oid = s.relid order by 1"
}

/// Parses [`table_marks_query`]'s output: table -> mark.
pub fn parse_table_marks(output: &str) -> Result<BTreeMap<String, String>, String> {
    output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_once('\t')
                .map(|(t, m)| (t.to_string(), m.trim().to_string()))
                .ok_or_else(|| format!("unexpected line in the table marks: {l:?}"))
        })
        .collect()
}

/// The tables to prove again at the cut-over: written since the proof while replicating
/// (their mark changed, or they are new), or not proven equal then.
pub fn tables_to_prove_again(
    before: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
    unproven: &[String],
) -> Vec<String> {
    let mut out: BTreeSet<String> = unproven.iter().cloned().collect();
    for (table, mark) in now {
        if before.get(table) != Some(mark) {
            out.insert(table.clone());
        }
    }
    out.extend(before.keys().filter(|t| !now.contains_key(*t)).cloned());
    out.into_iter().collect()
}

/// A whole database's fingerprint at the cut-over, from `hashed` (the tables proven again,
/// with every sequence, schema object and the schema version) and, for every other table
/// PostgreSQL 11 has now (`marks`), what the proof while replicating found.
pub fn whole_fingerprint(
    live: &DatabaseStats,
    marks: &BTreeMap<String, String>,
    hashed: &DatabaseStats,
) -> DatabaseStats {
    let mut tables = hashed.tables.clone();
    for table in marks.keys() {
        if let (false, Some(stats)) = (tables.contains_key(table), live.tables.get(table)) {
            tables.insert(table.clone(), stats.clone());
        }
    }
    DatabaseStats {
        tables,
        ..hashed.clone()
    }
}

/// On PostgreSQL 11: `wal_level = logical` from the next start (`postgresql.auto.conf`).
pub fn set_wal_level_logical() -> String {
    "ALTER SYSTEM SET wal_level = logical".to_string()
}

/// On PostgreSQL 11: `wal_level` back to what the configuration files say.
pub fn reset_wal_level() -> String {
    "ALTER SYSTEM RESET wal_level".to_string()
}

/// On PostgreSQL 11: the publication of every table, unless it exists.
pub fn publish() -> String {
    format!(
        "DO $la$ BEGIN IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = '{NAME}') THEN \
CREATE PUBLICATION {NAME} FOR ALL TABLES; END IF; END $la$;"
    )
}

/// psql text (read from stdin on PostgreSQL 15, `DST_*`) that drops the subscription if it
/// exists, without touching PostgreSQL 11 (its slot is dropped there, see [`drop_source_side`]).
fn drop_subscription_psql() -> String {
    format!(
        r#"SELECT EXISTS (SELECT FROM pg_subscription WHERE subname = '{NAME}') AS la_sub \gset
\if :la_sub
ALTER SUBSCRIPTION {NAME} DISABLE;
ALTER SUBSCRIPTION {NAME} SET (slot_name = NONE);
DROP SUBSCRIPTION {NAME};
\endif
"#
    )
}

/// SQL on PostgreSQL 11: the slot (its walsender ended first) and the publication dropped,
/// if they exist.
pub fn drop_source_side() -> String {
    format!("{} DROP PUBLICATION IF EXISTS {NAME};", drop_slot_only())
}

/// SQL on PostgreSQL 11: the slot dropped if it exists, its walsender ended first (a
/// subscriber that reconnects meanwhile is ended again).
fn drop_slot_only() -> String {
    format!(
        "DO $la$ BEGIN \
FOR i IN 1..100 LOOP \
  PERFORM pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{NAME}' AND active_pid IS NOT NULL; \
  BEGIN \
    PERFORM pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{NAME}'; \
    EXIT; \
  EXCEPTION WHEN object_in_use THEN PERFORM pg_sleep(0.1); \
  END; \
END LOOP; \
END $la$;"
    )
}

/// The psql text (stdin, PostgreSQL 15) that creates the subscription to PostgreSQL 11. The
/// connection string is built inside psql from the copy pod's environment (`\getenv`), each
/// value quoted for libpq: no password in any argv or in this text. The statement that
/// carries it is neither logged by the server nor echoed by psql on an error (terse errors
/// show no statement text).
fn create_subscription_psql() -> String {
    format!(
        r#"\set VERBOSITY terse
SET log_min_error_statement = panic;
SET log_statement = 'none';
\getenv la_host SRC_HOST
\getenv la_port SRC_PORT
\getenv la_user SRC_USER
\getenv la_db SRC_DATABASE
\getenv la_pw SRC_PASSWORD
CREATE FUNCTION pg_temp.q(text) RETURNS text LANGUAGE sql AS $$ SELECT '''' || replace(replace($1, '\', '\\'), '''', '\''') || '''' $$;
SELECT format('host=%s port=%s user=%s dbname=%s password=%s application_name={NAME}',
  pg_temp.q(:'la_host'), pg_temp.q(:'la_port'), pg_temp.q(:'la_user'), pg_temp.q(:'la_db'),
  pg_temp.q(:'la_pw')) AS la_conninfo \gset
CREATE SUBSCRIPTION {NAME} CONNECTION :'la_conninfo' PUBLICATION {NAME} WITH (copy_data = true);
"#
    )
}

/// The detached job (bash, in the copy pod): any earlier subscription and slot dropped, the
/// publication, roles, a fresh database, the whole schema, then the subscription (PostgreSQL
/// 15 starts copying). A rerun after a failure starts anew.
pub fn subscribe_body() -> String {
    format!(
        r#"set -euo pipefail
cd {COPY_DIR}
{SIDES}
step() {{ echo "$1" >step.tmp && mv step.tmp step; echo "== $(date -u +%H:%M:%S) $1"; }}
step unsubscribe
exists=$(dst psql -X -A -t -q -d template1 -v db="$DST_DATABASE" <<'SQL'
select count(*) from pg_database where datname = :'db';
SQL
)
if [ "$exists" != 0 ]; then
  dst psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
{drop_sub}SQL
fi
src psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
{drop_slot}
{publish}
SQL
{roles}{database}step schema
rm -f schema.dump
src pg_dump --schema-only --format=custom --file=schema.dump
dst pg_restore --exit-on-error --dbname="$DST_DATABASE" schema.dump
step subscribe
dst psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
{create}SQL
step done
"#,
        drop_sub = drop_subscription_psql(),
        drop_slot = drop_slot_only(),
        publish = publish(),
        roles = copy_script::roles_section(),
        database = copy_script::database_section(),
        create = create_subscription_psql(),
    )
}

/// Writes the subscribe job to its file and starts it detached (or reattaches, or reports it
/// done).
pub fn start_subscribe() -> String {
    copy_script::start_job(SUBSCRIBE_JOB, &subscribe_body())
}

/// The subscribe job's state and step.
pub fn poll_subscribe() -> String {
    format!(
        "{}\necho \"step=$(cat {COPY_DIR}/step 2>/dev/null || echo starting)\"",
        super::scripts::poll(SUBSCRIBE_JOB, "echo 0")
    )
}

/// On PostgreSQL 15: `ready<TAB>tables<TAB>database bytes` of the subscription's initial copy
/// (a table is ready once copied and caught up with the stream).
pub fn initial_copy_query() -> String {
    format!(
        "select count(*) filter (where r.srsubstate = 'r') || E'\\t' || count(*) || E'\\t' || \
pg_database_size(current_database()) from pg_subscription_rel r \
join pg_subscription s on s.oid = r.srsubid where s.subname = '{NAME}'"
    )
}

/// Progress of the initial copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialCopy {
    pub ready: u64,
    pub tables: u64,
    pub bytes: u64,
}

impl InitialCopy {
    pub fn done(&self) -> bool {
        self.tables > 0 && self.ready == self.tables
    }
}

pub fn parse_initial_copy(output: &str) -> Result<InitialCopy, String> {
    let fields: Vec<u64> = output
        .trim()
        .split('\t')
        .map(|f| f.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("unexpected initial copy progress {output:?}"))?;
    match fields.as_slice() {
        [ready, tables, bytes] => Ok(InitialCopy {
            ready: *ready,
            tables: *tables,
            bytes: *bytes,
        }),
        _ => Err(format!("unexpected initial copy progress {output:?}")),
    }
}

/// On PostgreSQL 11: `lag bytes<TAB>lag seconds<TAB>active` of the slot: WAL written but not
/// yet confirmed applied by PostgreSQL 15, how long ago the last confirmed change was made,
/// whether 15 is connected. Nothing when the slot does not exist.
pub fn lag_query() -> String {
    format!(
        "select coalesce(pg_current_wal_lsn() - s.confirmed_flush_lsn, 0)::bigint || E'\\t' || \
coalesce(extract(epoch from (select r.replay_lag from pg_stat_replication r where r.application_name = '{NAME}' limit 1)), 0)::numeric(12,1) \
|| E'\\t' || s.active from pg_replication_slots s where s.slot_name = '{NAME}'"
    )
}

/// How far PostgreSQL 15 is behind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lag {
    pub bytes: u64,
    pub seconds: f64,
    pub connected: bool,
}

/// Parses [`lag_query`]'s output; `None` when the slot does not exist.
pub fn parse_lag(output: &str) -> Result<Option<Lag>, String> {
    let line = output.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let bad = || format!("unexpected replication lag {line:?}");
    let mut f = line.split('\t');
    let bytes = f
        .next()
        .and_then(|b| b.parse::<i64>().ok())
        .ok_or_else(bad)?;
    let seconds = f
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(bad)?;
    let connected = matches!(f.next().ok_or_else(bad)?, "t" | "true");
    Ok(Some(Lag {
        bytes: bytes.max(0) as u64,
        seconds,
        connected,
    }))
}

/// On PostgreSQL 11: its current WAL position.
pub fn current_lsn_query() -> &'static str {
    "select pg_current_wal_lsn()"
}

/// On PostgreSQL 11: whether PostgreSQL 15 has confirmed applying everything up to `lsn`
/// (`t`/`f`), and the bytes still to go.
pub fn caught_up_query(lsn: &str) -> String {
    let lsn = lsn.replace('\'', "");
    format!(
        "select (s.confirmed_flush_lsn >= '{lsn}'::pg_lsn) || E'\\t' || \
greatest('{lsn}'::pg_lsn - s.confirmed_flush_lsn, 0)::bigint from pg_replication_slots s where s.slot_name = '{NAME}'"
    )
}

/// `(caught up, bytes to go)`, `None` when the slot does not exist.
pub fn parse_caught_up(output: &str) -> Result<Option<(bool, u64)>, String> {
    let line = output.trim();
    if line.is_empty() {
        return Ok(None);
    }
    match line.split_once('\t') {
        Some((done, left)) => Ok(Some((
            matches!(done, "t" | "true"),
            left.parse()
                .map_err(|_| format!("unexpected catch-up output {line:?}"))?,
        ))),
        None => Err(format!("unexpected catch-up output {line:?}")),
    }
}

/// On PostgreSQL 11: for every sequence, the statements that make PostgreSQL 15's the same:
/// created when missing (a per-account `conv_dpid_seq_<id>` made by a trigger, which does
/// not fire on a subscriber), owned by the same role, at the same value.
pub const SYNC_SEQUENCES_QUERY: &str = r#"select format('CREATE SEQUENCE IF NOT EXISTS %I.%I AS %s INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s %s; ALTER SEQUENCE %I.%I OWNER TO %I; SELECT pg_catalog.setval(%L, %s, %s);',
  s.schemaname, s.sequencename, s.data_type, s.increment_by, s.min_value, s.max_value, s.start_value, s.cache_size,
  case when s.cycle then 'CYCLE' else 'NO CYCLE' end,
  s.schemaname, s.sequencename, s.sequenceowner,
  format('%I.%I', s.schemaname, s.sequencename), coalesce(s.last_value, s.start_value),
  case when s.last_value is null then 'false' else 'true' end)
from pg_sequences s where s.schemaname not in ('pg_catalog', 'information_schema');"#;

/// The sequence sync (bash in the copy pod): the statements read on 11, run on 15 in one
/// transaction; prints how many sequences were created.
pub fn sync_sequences_script() -> String {
    format!(
        r#"set -euo pipefail
{SIDES}
before=$(dst psql -X -A -t -q -c "select count(*) from pg_sequences")
src psql -X -A -t -q -v ON_ERROR_STOP=1 <<'SQL' >{COPY_DIR}/sync-sequences.sql
{SYNC_SEQUENCES_QUERY}
SQL
dst psql -X -q -1 -v ON_ERROR_STOP=1 -f {COPY_DIR}/sync-sequences.sql >/dev/null
after=$(dst psql -X -A -t -q -c "select count(*) from pg_sequences")
echo "sequences=$(grep -c . {COPY_DIR}/sync-sequences.sql || true) created=$((after - before))"
"#
    )
}

/// The drop of the subscription (on 15), the slot and the publication (on 11): bash in the
/// copy pod.
pub fn unsubscribe_script() -> String {
    format!(
        r#"set -euo pipefail
{SIDES}
dst psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
{drop_sub}SQL
src psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
{drop_source}
SQL
"#,
        drop_sub = drop_subscription_psql(),
        drop_source = drop_source_side(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::TableStats;

    fn marks(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(t, m)| (t.to_string(), m.to_string()))
            .collect()
    }

    #[test]
    fn only_tables_written_since_the_proof_or_unproven_are_proven_again() {
        let before = marks(&[
            ("accounts", "1:5:0:0"),
            ("messages", "2:9:1:0"),
            ("gone", "3:0:0:0"),
        ]);
        let now = marks(&[
            ("accounts", "1:5:0:0"),
            ("messages", "2:10:1:0"),
            ("new_table", "4:0:0:0"),
        ]);
        assert_eq!(
            tables_to_prove_again(&before, &now, &["portals_members".to_string()]),
            ["gone", "messages", "new_table", "portals_members"]
        );
        assert!(tables_to_prove_again(&before, &before, &[]).is_empty());
    }

    #[test]
    fn the_cut_over_fingerprint_takes_unwritten_tables_from_the_live_proof() {
        let stats = |rows, hash: &str| TableStats {
            rows,
            hash: hash.to_string(),
        };
        let live = DatabaseStats {
            tables: [("accounts", stats(3, "7")), ("messages", stats(10, "9"))]
                .map(|(t, s)| (t.to_string(), s))
                .into(),
            ..DatabaseStats::default()
        };
        let hashed = DatabaseStats {
            tables: [("messages".to_string(), stats(11, "12"))].into(),
            schema_version: Some("42".into()),
            ..DatabaseStats::default()
        };
        let now = marks(&[
            ("accounts", "1:3:0:0"),
            ("messages", "2:11:0:0"),
            ("new", "3:0:0:0"),
        ]);
        let whole = whole_fingerprint(&live, &now, &hashed);
        assert_eq!(whole.tables["accounts"], stats(3, "7"));
        assert_eq!(whole.tables["messages"], stats(11, "12"));
        // A table the live proof never saw is in `hashed` (it is proven again), or missing.
        assert!(!whole.tables.contains_key("new"));
        assert_eq!(whole.schema_version.as_deref(), Some("42"));
    }

    #[test]
    fn a_truncate_changes_the_mark_even_without_counted_rows() {
        let before = marks(&[("t", "100:3:0:0")]);
        let now = marks(&[("t", "101:3:0:0")]);
        assert_eq!(tables_to_prove_again(&before, &now, &[]), ["t"]);
    }

    #[test]
    fn marks_lag_and_progress_parse() {
        let m = parse_table_marks("accounts\t16384:3:0:1\nschema2.x\t1:0:0:0\n").unwrap();
        assert_eq!(m["accounts"], "16384:3:0:1");
        assert!(parse_table_marks("nonsense").is_err());
        let lag = parse_lag("1024\t0.5\tt\n").unwrap().unwrap();
        assert_eq!((lag.bytes, lag.connected), (1024, true));
        assert_eq!(parse_lag("").unwrap(), None);
        assert!(parse_lag("x\t1\tt").is_err());
        let p = parse_initial_copy("3\t5\t1000\n").unwrap();
        assert!(!p.done());
        assert!(parse_initial_copy("5\t5\t1000").unwrap().done());
        assert!(!parse_initial_copy("0\t0\t1").unwrap().done());
        assert_eq!(parse_caught_up("t\t0").unwrap(), Some((true, 0)));
        assert_eq!(parse_caught_up("true\t0").unwrap(), Some((true, 0)));
        assert_eq!(parse_caught_up("f\t120").unwrap(), Some((false, 120)));
        assert_eq!(parse_caught_up("").unwrap(), None);
    }

    #[test]
    fn no_password_or_name_is_in_the_subscription_text() {
        let body = subscribe_body();
        assert!(body.contains(r"\getenv la_pw SRC_PASSWORD"));
        assert!(body.contains("CREATE SUBSCRIPTION la_migrate CONNECTION :'la_conninfo'"));
        let steps: Vec<&str> = body
            .lines()
            .filter_map(|l| l.strip_prefix("step "))
            .collect();
        assert_eq!(
            steps,
            [
                "unsubscribe",
                "roles",
                "database",
                "schema",
                "subscribe",
                "done"
            ]
        );
    }

    #[test]
    fn the_sequence_sync_creates_missing_sequences_before_setting_them() {
        let q = SYNC_SEQUENCES_QUERY;
        let create = q.find("CREATE SEQUENCE IF NOT EXISTS").unwrap();
        let set = q.find("setval").unwrap();
        assert!(create < set);
        assert!(sync_sequences_script().contains("-1 -v ON_ERROR_STOP=1"));
    }
}
