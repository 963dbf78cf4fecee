//! Whether PostgreSQL 15 can be filled by logical replication from PostgreSQL 11 while the app
//! runs (`--online`): the facts preflight reads from PostgreSQL 11 (the SQL and shell text it
//! runs, and their parsers) and what they mean for the operator. Pure: the I/O is in
//! `crate::phases::preflight::online_facts`.

use serde::{Deserialize, Serialize};

use super::quantity::human;

/// Free space on PostgreSQL 11's volume below which online is refused: the replication slot
/// keeps WAL there until PostgreSQL 15 has applied it.
pub const MIN_FREE_BYTES: u64 = 1 << 30;

/// Free replication slots (and WAL senders) the initial copy uses at most: the subscription's
/// own and one per table synchronised at once (`max_sync_workers_per_subscription`, 2).
pub const FULL_SPEED_SLOTS: u32 = 3;

/// What PostgreSQL 11 says about logical replication from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlineFacts {
    pub wal_level: String,
    pub max_replication_slots: u32,
    pub replication_slots_used: u32,
    pub max_wal_senders: u32,
    pub wal_senders_used: u32,
    /// The user the facts were read as.
    pub user: String,
    pub superuser: bool,
    /// Tables whose UPDATE and DELETE would fail once published, with their fix.
    pub tables_without_identity: Vec<IdentityFix>,
    pub large_objects: u64,
    /// The extensions installed in the database (`plpgsql` included).
    pub extensions: Vec<String>,
    /// Size of `pg_wal` now; 0 when the user may not list it.
    pub wal_bytes: u64,
    /// Free space on the volume holding the data directory, when known.
    pub free_bytes: Option<u64>,
    pub database_bytes: u64,
}

/// A table without a primary key or replica identity, and the identity it gets before it is
/// published.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdentityFix {
    /// Schema-qualified, each part quoted as an identifier.
    pub table: String,
    /// A unique, non-partial, immediate index on NOT NULL columns, quoted; `None`: no such
    /// index, the identity is FULL.
    pub index: Option<String>,
}

/// The statement that gives a table its replica identity.
pub fn replica_identity_sql(fix: &IdentityFix) -> String {
    match &fix.index {
        Some(index) => format!(
            "ALTER TABLE {} REPLICA IDENTITY USING INDEX {index};",
            fix.table
        ),
        None => format!("ALTER TABLE {} REPLICA IDENTITY FULL;", fix.table),
    }
}

/// The query (`psql -X -A -t`, PostgreSQL 11, any user) printing the facts as `key=value`
/// lines: one `extension=NAME` per extension and one `identity=TABLE<TAB>INDEX` per table
/// without identity (INDEX empty: none usable). One SELECT, as `psql -c` prints only the last
/// result. The WAL size needs the right to list `pg_wal` (superusers, `pg_monitor`): without it
/// the listing is not run (it is dynamic SQL behind a CASE) and 0 is printed.
pub fn online_facts_query() -> &'static str {
    r#"select line from (
  select 'wal_level=' || current_setting('wal_level') as line
  union all select 'max_replication_slots=' || current_setting('max_replication_slots')
  union all select 'replication_slots_used=' || (select count(*) from pg_catalog.pg_replication_slots)
  union all select 'max_wal_senders=' || current_setting('max_wal_senders')
  union all select 'wal_senders_used=' || (select count(*) from pg_catalog.pg_stat_replication)
  union all select 'user=' || current_user
  union all select 'superuser=' || (select case when r.rolsuper then 'true' else 'false' end
                                    from pg_catalog.pg_roles r where r.rolname = current_user)
  union all select 'large_objects=' || (select count(*) from pg_catalog.pg_largeobject_metadata)
  union all select 'wal_bytes=' || case
      when has_function_privilege('pg_catalog.pg_ls_waldir()', 'execute')
      then (xpath('//s/text()', query_to_xml(
              'select coalesce(sum(size), 0) as s from pg_catalog.pg_ls_waldir()', false, true, '')))[1]::text
      else '0' end
  union all select 'database_bytes=' || pg_database_size(current_database())
  union all select 'extension=' || e.extname from pg_catalog.pg_extension e
  union all select 'identity=' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || E'\t' || coalesce((
      select quote_ident(ic.relname)
      from pg_catalog.pg_index i join pg_catalog.pg_class ic on ic.oid = i.indexrelid
      where i.indrelid = c.oid and i.indisunique and i.indimmediate
        and i.indisvalid and i.indisready and i.indislive
        and i.indpred is null and i.indexprs is null
        and not exists (
          select 1 from generate_series(0, i.indnkeyatts - 1) k
          left join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = i.indkey[k]
          where i.indkey[k] <= 0 or a.attnum is null or not a.attnotnull)
      order by i.indnkeyatts, ic.relname
      limit 1), '')
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.relkind = 'r' and c.relpersistence = 'p'
    and n.nspname not in ('pg_catalog', 'information_schema')
    and n.nspname not like 'pg\_toast%' and n.nspname not like 'pg\_temp%'
    and not exists (select 1 from pg_catalog.pg_depend d
                    where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
    and (c.relreplident = 'n'
      or (c.relreplident = 'd'
          and not exists (select 1 from pg_catalog.pg_index p where p.indrelid = c.oid and p.indisprimary))
      or (c.relreplident = 'i'
          and not exists (select 1 from pg_catalog.pg_index r where r.indrelid = c.oid and r.indisreplident)))
) facts"#
}

/// The facts from [`online_facts_query`]'s output and the free space measured apart
/// ([`parse_free_bytes`]). Every scalar key must be there, once.
pub fn parse_online_facts(output: &str, free_bytes: Option<u64>) -> Result<OnlineFacts, String> {
    let mut scalars = std::collections::BTreeMap::new();
    let mut extensions = Vec::new();
    let mut identity = Vec::new();
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("the online facts query printed {line:?}, not key=value"))?;
        match key {
            "extension" => extensions.push(value.to_string()),
            "identity" => identity.push(identity_fix(value)?),
            _ => {
                if scalars.insert(key, value.trim()).is_some() {
                    return Err(format!("the online facts query printed {key} twice"));
                }
            }
        }
    }
    extensions.sort();
    identity.sort();
    let facts = Facts(scalars);
    Ok(OnlineFacts {
        wal_level: facts.text("wal_level")?,
        max_replication_slots: facts.number("max_replication_slots")?,
        replication_slots_used: facts.number("replication_slots_used")?,
        max_wal_senders: facts.number("max_wal_senders")?,
        wal_senders_used: facts.number("wal_senders_used")?,
        user: facts.text("user")?,
        superuser: facts.flag("superuser")?,
        tables_without_identity: identity,
        large_objects: facts.number("large_objects")?,
        extensions,
        wal_bytes: facts.number("wal_bytes")?,
        free_bytes,
        database_bytes: facts.number("database_bytes")?,
    })
}

/// `TABLE<TAB>INDEX` (INDEX empty: none).
fn identity_fix(value: &str) -> Result<IdentityFix, String> {
    let (table, index) = value.split_once('\t').ok_or_else(|| {
        format!("the online facts query printed identity={value:?}, not TABLE<TAB>INDEX")
    })?;
    Ok(IdentityFix {
        table: table.to_string(),
        index: (!index.is_empty()).then(|| index.to_string()),
    })
}

/// The scalar lines of the query's output, by key.
struct Facts<'a>(std::collections::BTreeMap<&'a str, &'a str>);

impl Facts<'_> {
    fn text(&self, key: &str) -> Result<String, String> {
        self.0
            .get(key)
            .map(|v| v.to_string())
            .ok_or_else(|| format!("the online facts query printed no {key}"))
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<T, String> {
        let v = self.text(key)?;
        v.parse()
            .map_err(|_| format!("the online facts query printed {key}={v:?}, not a number"))
    }

    fn flag(&self, key: &str) -> Result<bool, String> {
        match self.text(key)?.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            v => Err(format!(
                "the online facts query printed {key}={v:?}, not true or false"
            )),
        }
    }
}

/// Shell text (`sh`, inside the PostgreSQL pod) printing the free bytes of the filesystem
/// holding the data directory: `$PGDATA` or else `/bitnami/postgresql`. Prints nothing, and
/// succeeds, when neither exists or `df` fails.
pub fn free_space_script() -> String {
    r#"d="${PGDATA:-}"
if [ -z "$d" ] || [ ! -d "$d" ]; then d=/bitnami/postgresql; fi
if [ -d "$d" ]; then
  df -P -k "$d" 2>/dev/null | { read -r _ && read -r _ _ _ avail _ && echo $((avail * 1024)); } || :
fi"#
    .to_string()
}

/// The free bytes [`free_space_script`] printed, if any.
pub fn parse_free_bytes(out: &str) -> Option<u64> {
    out.lines()
        .rev()
        .find(|l| !l.trim().is_empty())?
        .trim()
        .parse()
        .ok()
}

/// What the facts mean for `--online`: what refuses it and what it will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Each: the problem and its fix. Any one refuses `--online`.
    pub blockers: Vec<String>,
    /// What online will do, with figures.
    pub notes: Vec<String>,
    /// PostgreSQL 11 is restarted once with `wal_level=logical`.
    pub restart_for_wal_level: bool,
    /// The replica identities set before the tables are published.
    pub identity_fixes: Vec<IdentityFix>,
}

/// Whether online replication is possible from PostgreSQL 11 as the facts describe it.
pub fn readiness(f: &OnlineFacts) -> Readiness {
    let blockers = [
        superuser_blocker(f),
        large_objects_blocker(f),
        slots_blocker(f),
        senders_blocker(f),
        free_space_blocker(f),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut notes: Vec<String> = wal_level_note(f).into_iter().collect();
    notes.extend(f.tables_without_identity.iter().map(identity_note));
    notes.extend(sync_note(f));
    notes.push(wal_note(f));
    Readiness {
        blockers,
        notes,
        restart_for_wal_level: f.wal_level != "logical",
        identity_fixes: f.tables_without_identity.clone(),
    }
}

fn superuser_blocker(f: &OnlineFacts) -> Option<String> {
    (!f.superuser).then(|| {
        format!(
            "online needs a superuser on PostgreSQL 11 to publish every table and set \
             wal_level; the user {} is not one: run without --online (the offline copy), or \
             make {} a superuser (ALTER ROLE {} SUPERUSER) and run again",
            f.user,
            f.user,
            super::scripts::quote_ident(&f.user)
        )
    })
}

fn large_objects_blocker(f: &OnlineFacts) -> Option<String> {
    (f.large_objects > 0).then(|| {
        format!(
            "logical replication does not carry large objects: {} found in PostgreSQL 11; run \
             without --online (the offline copy carries them)",
            f.large_objects
        )
    })
}

fn slots_blocker(f: &OnlineFacts) -> Option<String> {
    (free_slots(f) < 1).then(|| {
        format!(
            "online needs a free replication slot on PostgreSQL 11 and none is free \
             (max_replication_slots {}, {} in use): raise \
             postgresql.postgresqlExtendedConf.maxReplicationSlots (PostgreSQL 11 restarts to \
             read it) or drop an unused slot, or run without --online",
            f.max_replication_slots, f.replication_slots_used
        )
    })
}

fn senders_blocker(f: &OnlineFacts) -> Option<String> {
    (free_senders(f) < 1).then(|| {
        format!(
            "online needs a free WAL sender on PostgreSQL 11 and none is free \
             (max_wal_senders {}, {} in use): raise \
             postgresql.postgresqlExtendedConf.maxWalSenders (PostgreSQL 11 restarts to read \
             it) or stop a replication client, or run without --online",
            f.max_wal_senders, f.wal_senders_used
        )
    })
}

fn free_space_blocker(f: &OnlineFacts) -> Option<String> {
    let free = f.free_bytes.filter(|&free| free < MIN_FREE_BYTES)?;
    Some(format!(
        "only {} is free on PostgreSQL 11's volume (WAL now {}, database {}); the replication \
         slot keeps WAL there until PostgreSQL 15 has applied it and online needs at least {}: \
         expand the volume or free space on it, or run without --online",
        human(free),
        wal_figure(f),
        human(f.database_bytes),
        human(MIN_FREE_BYTES)
    ))
}

fn wal_level_note(f: &OnlineFacts) -> Option<String> {
    (f.wal_level != "logical").then(|| {
        format!(
            "wal_level is {}: PostgreSQL 11's pod is restarted once with wal_level=logical \
             while the app runs (its connections drop for seconds); a rollback sets it back",
            f.wal_level
        )
    })
}

fn identity_note(fix: &IdentityFix) -> String {
    match &fix.index {
        Some(index) => format!(
            "table {} has no primary key: REPLICA IDENTITY USING INDEX {index}",
            fix.table
        ),
        None => format!(
            "table {} has no primary key nor unique index on NOT NULL columns: REPLICA \
             IDENTITY FULL (every column is compared on UPDATE/DELETE)",
            fix.table
        ),
    }
}

fn sync_note(f: &OnlineFacts) -> Option<String> {
    let free = free_slots(f).min(free_senders(f));
    (1..FULL_SPEED_SLOTS).contains(&free).then(|| {
        format!(
            "{free} replication slot(s) and WAL sender(s) free on PostgreSQL 11 (slots {}/{} \
             used, senders {}/{}): the initial copy synchronises fewer tables at once",
            f.replication_slots_used,
            f.max_replication_slots,
            f.wal_senders_used,
            f.max_wal_senders
        )
    })
}

fn wal_note(f: &OnlineFacts) -> String {
    let free = f.free_bytes.map_or_else(|| "unknown".to_string(), human);
    format!(
        "PostgreSQL 11's volume: {free} free, WAL now {}, database {}; the replication slot \
         keeps WAL there from the start of the copy until PostgreSQL 15 has applied it",
        wal_figure(f),
        human(f.database_bytes)
    )
}

/// The WAL size for people: a running server always has a WAL segment, so 0 means it could
/// not be listed.
fn wal_figure(f: &OnlineFacts) -> String {
    match f.wal_bytes {
        0 => "unknown".to_string(),
        b => human(b),
    }
}

fn free_slots(f: &OnlineFacts) -> u32 {
    f.max_replication_slots
        .saturating_sub(f.replication_slots_used)
}

fn free_senders(f: &OnlineFacts) -> u32 {
    f.max_wal_senders.saturating_sub(f.wal_senders_used)
}

/// The source's extensions PostgreSQL 15 does not offer, in the source's order.
pub fn missing_extensions(source: &[String], available_on_target: &[String]) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for e in source {
        if !available_on_target.contains(e) && !missing.contains(e) {
            missing.push(e.clone());
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> OnlineFacts {
        OnlineFacts {
            wal_level: "logical".into(),
            max_replication_slots: 10,
            replication_slots_used: 0,
            max_wal_senders: 10,
            wal_senders_used: 0,
            user: "postgres".into(),
            superuser: true,
            tables_without_identity: vec![],
            large_objects: 0,
            extensions: vec!["plpgsql".into()],
            wal_bytes: 16 << 20,
            free_bytes: Some(8 << 30),
            database_bytes: 2 << 30,
        }
    }

    fn fix(table: &str, index: Option<&str>) -> IdentityFix {
        IdentityFix {
            table: table.into(),
            index: index.map(Into::into),
        }
    }

    fn one_blocker(f: &OnlineFacts) -> String {
        let r = readiness(f);
        assert_eq!(r.blockers.len(), 1, "{:?}", r.blockers);
        r.blockers[0].clone()
    }

    #[test]
    fn ready_facts_have_no_blocker_and_only_the_wal_note() {
        let r = readiness(&ready());
        assert!(r.blockers.is_empty(), "{:?}", r.blockers);
        assert!(!r.restart_for_wal_level);
        assert!(r.identity_fixes.is_empty());
        assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
        let n = &r.notes[0];
        assert!(n.contains("8.0 GiB free"), "{n}");
        assert!(n.contains("WAL now 16 MiB"), "{n}");
        assert!(n.contains("database 2.0 GiB"), "{n}");
    }

    #[test]
    fn a_user_not_superuser_blocks_naming_it() {
        let f = OnlineFacts {
            superuser: false,
            user: "chatwoot".into(),
            wal_bytes: 0,
            ..ready()
        };
        let b = one_blocker(&f);
        assert!(b.contains("superuser") && b.contains("chatwoot"), "{b}");
        assert!(b.contains("without --online"), "{b}");
        assert!(readiness(&f).notes[0].contains("WAL now unknown"));
    }

    #[test]
    fn large_objects_block_with_their_count() {
        let b = one_blocker(&OnlineFacts {
            large_objects: 3,
            ..ready()
        });
        assert!(b.contains("large objects: 3 found"), "{b}");
        assert!(b.contains("without --online"), "{b}");
    }

    #[test]
    fn no_free_slot_blocks_naming_the_value() {
        let b = one_blocker(&OnlineFacts {
            max_replication_slots: 2,
            replication_slots_used: 2,
            ..ready()
        });
        assert!(
            b.contains("postgresql.postgresqlExtendedConf.maxReplicationSlots"),
            "{b}"
        );
        assert!(b.contains("restarts"), "{b}");
    }

    #[test]
    fn no_free_sender_blocks_naming_the_value() {
        let b = one_blocker(&OnlineFacts {
            max_wal_senders: 0,
            ..ready()
        });
        assert!(
            b.contains("postgresql.postgresqlExtendedConf.maxWalSenders"),
            "{b}"
        );
    }

    #[test]
    fn little_free_space_blocks_with_the_figures() {
        let b = one_blocker(&OnlineFacts {
            free_bytes: Some(512 << 20),
            ..ready()
        });
        assert!(b.contains("only 512 MiB is free"), "{b}");
        assert!(
            b.contains("WAL now 16 MiB") && b.contains("database 2.0 GiB"),
            "{b}"
        );
        let unknown = readiness(&OnlineFacts {
            free_bytes: None,
            ..ready()
        });
        assert!(unknown.blockers.is_empty());
        assert!(
            unknown.notes[0].contains("unknown free"),
            "{:?}",
            unknown.notes
        );
    }

    #[test]
    fn wal_level_replica_means_one_restart() {
        let r = readiness(&OnlineFacts {
            wal_level: "replica".into(),
            ..ready()
        });
        assert!(r.restart_for_wal_level);
        assert!(r.blockers.is_empty());
        assert!(
            r.notes[0].starts_with("wal_level is replica"),
            "{:?}",
            r.notes
        );
        assert!(r.notes[0].contains("sets it back"), "{:?}", r.notes);
    }

    #[test]
    fn identity_fixes_are_notes_and_kept() {
        let fixes = vec![
            fix("public.portals_members", Some("index_portals_members")),
            fix("public.logs", None),
        ];
        let r = readiness(&OnlineFacts {
            tables_without_identity: fixes.clone(),
            ..ready()
        });
        assert_eq!(r.identity_fixes, fixes);
        assert!(r.notes[0].contains("USING INDEX index_portals_members"));
        assert!(r.notes[1].contains("public.logs") && r.notes[1].contains("FULL"));
    }

    #[test]
    fn few_free_slots_slow_the_initial_copy() {
        let r = readiness(&OnlineFacts {
            max_wal_senders: 4,
            wal_senders_used: 2,
            ..ready()
        });
        assert!(r.blockers.is_empty());
        assert!(
            r.notes.iter().any(|n| n.contains("fewer tables at once")),
            "{:?}",
            r.notes
        );
        assert!(!readiness(&ready())
            .notes
            .iter()
            .any(|n| n.contains("fewer tables")));
    }

    #[test]
    fn every_blocker_at_once() {
        let r = readiness(&OnlineFacts {
            superuser: false,
            large_objects: 1,
            replication_slots_used: 10,
            wal_senders_used: 10,
            free_bytes: Some(0),
            ..ready()
        });
        assert_eq!(r.blockers.len(), 5, "{:?}", r.blockers);
    }

    #[test]
    fn replica_identity_statements() {
        assert_eq!(
            replica_identity_sql(&fix("public.\"Odd\"", Some("\"i x\""))),
            "ALTER TABLE public.\"Odd\" REPLICA IDENTITY USING INDEX \"i x\";"
        );
        assert_eq!(
            replica_identity_sql(&fix("public.logs", None)),
            "ALTER TABLE public.logs REPLICA IDENTITY FULL;"
        );
    }

    const OUTPUT: &str = "wal_level=replica\nmax_replication_slots=10\nreplication_slots_used=1\n\
        max_wal_senders=10\nwal_senders_used=0\nuser=postgres\nsuperuser=true\nlarge_objects=2\n\
        wal_bytes=16777216\ndatabase_bytes=8000000\nextension=plpgsql\nextension=pgcrypto\n\
        identity=public.portals_members\tindex_portals_members\nidentity=public.logs\t\n";

    #[test]
    fn the_output_parses() {
        let f = parse_online_facts(OUTPUT, Some(42)).unwrap();
        assert_eq!(f.wal_level, "replica");
        assert_eq!((f.max_replication_slots, f.replication_slots_used), (10, 1));
        assert_eq!((f.max_wal_senders, f.wal_senders_used), (10, 0));
        assert!(f.superuser);
        assert_eq!(f.user, "postgres");
        assert_eq!(f.large_objects, 2);
        assert_eq!(f.wal_bytes, 16 << 20);
        assert_eq!(f.database_bytes, 8_000_000);
        assert_eq!(f.free_bytes, Some(42));
        assert_eq!(f.extensions, ["pgcrypto", "plpgsql"]);
        assert_eq!(
            f.tables_without_identity,
            [
                fix("public.logs", None),
                fix("public.portals_members", Some("index_portals_members"))
            ]
        );
    }

    #[test]
    fn a_missing_key_is_named() {
        let out = OUTPUT.replace("wal_senders_used=0\n", "");
        let e = parse_online_facts(&out, None).unwrap_err();
        assert!(e.contains("no wal_senders_used"), "{e}");
    }

    #[test]
    fn garbage_is_refused() {
        for out in [
            "psql: could not connect",
            &format!("{OUTPUT}large_objects=3\n"),
            &OUTPUT.replace("large_objects=2", "large_objects=many"),
            &OUTPUT.replace("superuser=true", "superuser=t"),
            &format!("{OUTPUT}identity=public.x\n"),
        ] {
            assert!(parse_online_facts(out, None).is_err(), "{out}");
        }
    }

    #[test]
    fn free_bytes_parse() {
        assert_eq!(parse_free_bytes("1048576\n"), Some(1 << 20));
        assert_eq!(parse_free_bytes(""), None);
        assert_eq!(parse_free_bytes("df: no such file\n"), None);
    }

    #[test]
    fn missing_extensions_are_the_sources_the_target_lacks() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            missing_extensions(
                &s(&["plpgsql", "pgcrypto", "timescaledb", "timescaledb"]),
                &s(&["plpgsql", "pgcrypto", "pg_trgm"])
            ),
            ["timescaledb"]
        );
        assert!(missing_extensions(&s(&["plpgsql"]), &s(&["plpgsql"])).is_empty());
    }
}
