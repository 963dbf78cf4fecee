//! The SQL run on the source (PostgreSQL 11) and the target (PostgreSQL 15), and the parser
//! of its output. One query, so psql runs once per database.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{DatabaseStats, TableStats};

/// How a row's 64-bit hash is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashMethod {
    /// `hashtextextended` of the row's whole text form. Correct, but turning every value into
    /// text costs about three times as much as hashing it; kept to finish migrations whose
    /// backup was fingerprinted this way.
    #[default]
    RowText,
    /// Each column's hash, from its binary value for common types ([`row_hash_expression`]),
    /// tables of schema `public` only; floats from their text form (15 digits).
    ColumnHash,
    /// As `ColumnHash`, over every schema, with floats hashed from their exact binary value;
    /// the fingerprint also lists sequences and schema objects.
    Exact,
}

impl HashMethod {
    /// The method new fingerprints use.
    pub const CURRENT: HashMethod = HashMethod::Exact;

    /// Whether fingerprints made this way cover every schema, sequences and schema objects.
    pub fn is_exact(self) -> bool {
        self == HashMethod::Exact
    }
}

/// Session settings that make a row's text form identical on PostgreSQL 11 and 15: float
/// output changed in 12 (shortest-exact unless `extra_float_digits` <= 0), and time zone,
/// date and bytea styles follow the session.
pub const STABLE_TEXT_SETTINGS: &str = "SET extra_float_digits = 0; SET TimeZone = 'UTC'; \
SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET bytea_output = 'hex';";

/// Per table in `public`: `T<TAB>name<TAB>rows<TAB>hash`, then `V<TAB>max(schema_migrations)`.
/// The hash is the sum, over rows, of a 64-bit row hash: order-independent, and the same on
/// PostgreSQL 11 and 15 for the same rows.
///
/// `query_to_xml` runs a per-table query inside one statement, so no client-side loop is
/// needed, the same text works on both servers, and each table's scan and sum can use the
/// server's parallel workers.
pub fn fingerprint_query(method: HashMethod) -> String {
    fingerprint_of(method, None)
}

/// [`fingerprint_query`] for the tables named (as it names them) only; sequences, schema
/// objects and the schema version as for the whole database.
pub fn fingerprint_tables_query(method: HashMethod, tables: &[String]) -> String {
    fingerprint_of(method, Some(tables))
}

/// `O` lines of every schema object and the `V` line: the schema alone, cheap.
pub fn schema_objects_query() -> String {
    fingerprint_of(HashMethod::Exact, Some(&[])).replacen(
        &sequences_query(),
        "select null::text where false",
        1,
    )
}

fn fingerprint_of(method: HashMethod, only: Option<&[String]>) -> String {
    let tables = tables_query_in(Some(method), only);
    if !method.is_exact() {
        return tables;
    }
    // One statement: the lines of sequences and objects join the tables' before the order.
    let body = tables.trim_end_matches(';');
    let (body, order) = body
        .rsplit_once(" order by ")
        .expect("the tables query ends in order by");
    format!(
        "{body} union all {} union all {} order by {order};",
        sequences_query(),
        objects_query()
    )
}

/// The same output as [`fingerprint_query`] with every hash `0`: exact row counts only, for
/// checks of a live database whose contents may have changed since (a fraction of the time).
pub fn row_count_query() -> String {
    tables_query(None)
}

/// Columns hashed from their binary value, by built-in type: the extended (64-bit, seeded)
/// hash functions PostgreSQL 11 introduced for hash partitioning, which must stay stable
/// across versions. They skip turning the value into text, which is most of the cost of
/// hashing a row's text form (timestamps and `jsonb` above all).
///
/// Every other type (numeric, floats, dates, arrays, `json`, `bytea`, enums, domains, ...)
/// is hashed from its text form under [`STABLE_TEXT_SETTINGS`]: strict, and the same on both
/// versions. `%1$I` is the column, `%2$s` its position.
const NATIVE_HASHES: &[(&str, &str)] = &[
    ("int2", "hashint2extended(t.%1$I, %2$s)"),
    ("int4", "hashint4extended(t.%1$I, %2$s)"),
    ("int8", "hashint8extended(t.%1$I, %2$s)"),
    ("bool", "hashint4extended(t.%1$I::int4, %2$s)"),
    ("text", "hashtextextended(t.%1$I, %2$s)"),
    ("varchar", "hashtextextended(t.%1$I, %2$s)"),
    ("uuid", "uuid_hash_extended(t.%1$I, %2$s)"),
    ("jsonb", "jsonb_hash_extended(t.%1$I, %2$s)"),
    ("timestamp", "timestamp_hash_extended(t.%1$I, %2$s)"),
    (
        "timestamptz",
        "timestamp_hash_extended(t.%1$I at time zone 'UTC', %2$s)",
    ),
];

/// The SQL (run by the server) that builds one table's row hash expression from the catalog:
/// every live column's hash, seeded with its position among the live columns, NULL as minus
/// that position, combined with xor. Positions, not `attnum`: a column dropped on the source
/// leaves a gap in `attnum` that the restored table does not have.
pub fn row_hash_expression() -> String {
    row_hash_expression_with(NATIVE_HASHES)
}

/// Floats hashed from their exact binary value (`float4send`/`float8send`): their text form
/// under [`STABLE_TEXT_SETTINGS`] keeps only 15 significant digits.
const EXACT_FLOAT_HASHES: &[(&str, &str)] = &[
    (
        "float4",
        "hashtextextended(encode(float4send(t.%1$I), 'hex'), %2$s)",
    ),
    (
        "float8",
        "hashtextextended(encode(float8send(t.%1$I), 'hex'), %2$s)",
    ),
];

fn row_hash_expression_with(hashes: &[(&str, &str)]) -> String {
    let cases: String = hashes
        .iter()
        .map(|(ty, f)| {
            format!(
                "when '{ty}'::regtype::oid then '{}' ",
                f.replace('\'', "''")
            )
        })
        .collect();
    format!(
        "(select coalesce(string_agg(format('coalesce(' || \
case a.atttypid {cases}else 'hashtextextended(t.%1$I::text, %2$s)' end || ', -%2$s)', \
a.attname, a.n), ' # ' order by a.n), '0') \
from (select attname, atttypid, row_number() over (order by attnum) as n from pg_attribute \
where attrelid = c.oid and attnum > 0 and not attisdropped) a)"
    )
}

/// The schemas a fingerprint covers: every schema of the database's own (no system schema).
const USER_SCHEMAS: &str = "s.nspname not in ('pg_catalog', 'information_schema') \
and s.nspname not like 'pg\\_toast%' and s.nspname not like 'pg\\_temp%'";

/// Objects that belong to an extension (recreated by `CREATE EXTENSION`, not by the copy).
fn not_in_extension(catalog: &str, oid: &str) -> String {
    format!(
        "not exists (select 1 from pg_depend d where d.classid = '{catalog}'::regclass \
and d.objid = {oid} and d.deptype = 'e')"
    )
}

fn tables_query(hash: Option<HashMethod>) -> String {
    tables_query_in(hash, None)
}

/// The tables' lines; `only`: of these tables (named as the lines name them).
fn tables_query_in(hash: Option<HashMethod>, only: Option<&[String]>) -> String {
    let per_table = match hash {
        Some(HashMethod::ColumnHash) => format!(
            "format('select count(*) as n, coalesce(sum((%s)::numeric), 0) as h from %I.%I t', \
{}, c.nspname, c.relname)",
            row_hash_expression()
        ),
        Some(HashMethod::Exact) => {
            let mut hashes = EXACT_FLOAT_HASHES.to_vec();
            hashes.extend_from_slice(NATIVE_HASHES);
            format!(
                "format('select count(*) as n, coalesce(sum((%s)::numeric), 0) as h from %I.%I t', \
{}, c.nspname, c.relname)",
                row_hash_expression_with(&hashes)
            )
        }
        Some(HashMethod::RowText) => "format('select count(*) as n, \
coalesce(sum(hashtextextended(t::text, 0)::numeric), 0) as h from %I.%I t', c.nspname, c.relname)"
            .to_string(),
        None => {
            "format('select count(*) as n, 0 as h from %I.%I t', c.nspname, c.relname)".to_string()
        }
    };
    // Tables of `public` go by their name, others by `schema.name`.
    let (name, scope) = if hash.is_some_and(HashMethod::is_exact) || hash.is_none() {
        (
            "case when c.nspname = 'public' then c.relname else c.nspname || '.' || c.relname end"
                .to_string(),
            format!(
                "{USER_SCHEMAS} and {}",
                not_in_extension("pg_class", "c.oid")
            ),
        )
    } else {
        ("c.relname".to_string(), "s.nspname = 'public'".to_string())
    };
    let scope = match only {
        None => scope,
        Some(tables) => {
            let names: Vec<String> = tables
                .iter()
                .map(|t| format!("'{}'", t.replace('\'', "''")))
                .collect();
            format!(
                "{scope} and (case when s.nspname = 'public' then c.relname else s.nspname || '.' || c.relname end) \
= any(array[{}]::text[])",
                names.join(", ")
            )
        }
    };
    // The tables are listed first (`offset 0` keeps the planner from merging that query into
    // this one): evaluated lateral to an unfiltered join, the per-table query could run for
    // pairs the filters reject.
    format!(
        "{STABLE_TEXT_SETTINGS} \
select 'T' || E'\\t' || {name} || E'\\t' || \
(xpath('/row/n/text()', x))[1]::text || E'\\t' || (xpath('/row/h/text()', x))[1]::text \
from (select c.oid, c.relname, s.nspname from pg_class c \
join pg_namespace s on s.oid = c.relnamespace \
where {scope} and c.relkind in ('r', 'p') offset 0) as c(oid, relname, nspname), \
lateral query_to_xml({per_table}, false, true, '') as x \
union all \
select 'V' || E'\\t' || coalesce((select (xpath('/row/v/text()', \
query_to_xml('select max(version) as v from public.schema_migrations', false, true, '')))[1]::text \
where to_regclass('public.schema_migrations') is not null), '') \
order by 1;"
    )
}

/// `S<TAB>schema.name<TAB>last_value` per sequence (empty before its first `nextval`).
fn sequences_query() -> String {
    format!(
        "select 'S' || E'\\t' || format('%I.%I', s.schemaname, s.sequencename) || E'\\t' || \
coalesce(s.last_value::text, '') from pg_sequences s \
where {}",
        USER_SCHEMAS.replace("s.nspname", "s.schemaname")
    )
}

/// `O<TAB>kind<TAB>identity<TAB>md5(definition)` per schema object: schemas, tables, views
/// and materialized views (with their columns and types), indexes, constraints, triggers,
/// functions, types and extensions. Definitions come from the server's own `pg_get_*def`
/// functions, which print the same text on PostgreSQL 11 and 15; extension members are left
/// out (`CREATE EXTENSION` makes them).
fn objects_query() -> String {
    let line = |kind: &str, identity: &str, definition: &str| {
        format!("'O' || E'\\t' || '{kind}' || E'\\t' || {identity} || E'\\t' || md5({definition})")
    };
    let relations = format!(
        "select {} from pg_class c join pg_namespace s on s.oid = c.relnamespace \
where {USER_SCHEMAS} and c.relkind in ('r', 'p', 'v', 'm', 'f') and {}",
        line(
            "relation",
            "format('%I.%I', s.nspname, c.relname)",
            "c.relkind::text || coalesce((select string_agg(quote_ident(a.attname) || ' ' || \
format_type(a.atttypid, a.atttypmod) || case when a.attnotnull then ' not null' else '' end, ', ' \
order by a.attnum) from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 \
and not a.attisdropped), '')"
        ),
        not_in_extension("pg_class", "c.oid")
    );
    let indexes = format!(
        "select {} from pg_class c join pg_namespace s on s.oid = c.relnamespace \
where {USER_SCHEMAS} and c.relkind in ('i', 'I')",
        line(
            "index",
            "format('%I.%I', s.nspname, c.relname)",
            "pg_get_indexdef(c.oid)"
        )
    );
    let constraints = format!(
        "select {} from pg_constraint k join pg_namespace s on s.oid = k.connamespace \
left join pg_class c on c.oid = k.conrelid where {USER_SCHEMAS} and {}",
        line(
            "constraint",
            "format('%I.%I.%I', s.nspname, coalesce(c.relname, '-'), k.conname)",
            "pg_get_constraintdef(k.oid)"
        ),
        not_in_extension("pg_constraint", "k.oid")
    );
    // PostgreSQL 13 and later keep the clones of a partitioned table's trigger on its
    // partitions as ordinary triggers (`tgparentid`); 11 marks them internal. 11 prints
    // `EXECUTE PROCEDURE` where 12 and later print `EXECUTE FUNCTION`: the same trigger.
    let triggers = format!(
        "select {} from pg_trigger g join pg_class c on c.oid = g.tgrelid \
join pg_namespace s on s.oid = c.relnamespace where {USER_SCHEMAS} and not g.tgisinternal \
and coalesce((to_jsonb(g) ->> 'tgparentid')::oid, 0) = 0",
        line(
            "trigger",
            "format('%I.%I.%I', s.nspname, c.relname, g.tgname)",
            "replace(pg_get_triggerdef(g.oid), ' EXECUTE PROCEDURE ', ' EXECUTE FUNCTION ')"
        )
    );
    let functions = format!(
        "select {} from pg_proc p join pg_namespace s on s.oid = p.pronamespace \
where {USER_SCHEMAS} and {}",
        line(
            "function",
            "format('%I.%I(%s)', s.nspname, p.proname, pg_get_function_identity_arguments(p.oid))",
            "p.prosrc"
        ),
        not_in_extension("pg_proc", "p.oid")
    );
    let types = format!(
        "select {} from pg_type t join pg_namespace s on s.oid = t.typnamespace \
where {USER_SCHEMAS} and (t.typtype in ('e', 'd', 'r') or (t.typtype = 'c' and exists \
(select 1 from pg_class x where x.oid = t.typrelid and x.relkind = 'c'))) and {}",
        line(
            "type",
            "format('%I.%I', s.nspname, t.typname)",
            "t.typtype::text || coalesce((select string_agg(e.enumlabel, ',' order by e.enumsortorder) \
from pg_enum e where e.enumtypid = t.oid), '') || coalesce(format_type(nullif(t.typbasetype, 0), null), '')"
        ),
        not_in_extension("pg_type", "t.oid")
    );
    let schemas = format!(
        "select {} from pg_namespace s where {USER_SCHEMAS} and {}",
        line("schema", "quote_ident(s.nspname)", "''"),
        not_in_extension("pg_namespace", "s.oid")
    );
    let extensions = format!(
        "select {} from pg_extension e",
        line("extension", "quote_ident(e.extname)", "''")
    );
    [
        relations,
        indexes,
        constraints,
        triggers,
        functions,
        types,
        schemas,
        extensions,
    ]
    .join(" union all ")
}

/// `pg_database_size` of the connected database, in bytes.
/// One line that changes whenever the database is written to: the rows inserted, updated and
/// deleted in every table since the statistics began, and a hash of every sequence's value.
/// Cheap (no table is read), so the point of no return can check the copy is still current.
pub fn write_marks_query() -> &'static str {
    "select coalesce((select sum(n_tup_ins + n_tup_upd + n_tup_del) from pg_stat_all_tables \
where schemaname not in ('pg_catalog', 'information_schema') and schemaname not like 'pg\\_toast%'), 0)::text \
|| ' ' || coalesce((select md5(string_agg(format('%I.%I=%s', schemaname, sequencename, last_value), ',' \
order by schemaname, sequencename)) from pg_sequences), '-')"
}

pub fn database_size_query() -> &'static str {
    "select pg_database_size(current_database());"
}

/// Parses what `psql -XAt` printed for [`fingerprint_query`] with `method` (or for
/// [`row_count_query`]).
pub fn parse_fingerprint(output: &str, method: HashMethod) -> Result<DatabaseStats, String> {
    let mut tables = BTreeMap::new();
    let mut sequences = BTreeMap::new();
    let mut objects = BTreeMap::new();
    let mut version = None;
    let mut saw_version = false;
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["T", name, rows, hash] => {
                let rows = rows
                    .parse()
                    .map_err(|_| format!("row count {rows:?} of table {name} is not a number"))?;
                let digits = hash.strip_prefix('-').unwrap_or(hash);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("hash {hash:?} of table {name} is not a number"));
                }
                tables.insert(
                    name.to_string(),
                    TableStats {
                        rows,
                        hash: hash.to_string(),
                    },
                );
            }
            ["S", name, value] => {
                sequences.insert(name.to_string(), value.to_string());
            }
            ["O", kind, identity, digest] => {
                objects.insert(format!("{kind} {identity}"), digest.to_string());
            }
            ["V", v] => {
                saw_version = true;
                version = (!v.is_empty()).then(|| v.to_string());
            }
            _ => {
                return Err(format!(
                    "unexpected line in the fingerprint output: {line:?}"
                ))
            }
        }
    }
    if !saw_version {
        return Err("the fingerprint output is incomplete (no schema version line)".to_string());
    }
    Ok(DatabaseStats {
        tables,
        schema_version: version,
        method,
        sequences,
        objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_output_parses_into_tables_and_a_version() {
        let out = "T\taccounts\t3\t1234567890123456789\nT\tmessages\t0\t0\nV\t20230101000000\n";
        let stats = parse_fingerprint(out, HashMethod::CURRENT).unwrap();
        assert_eq!(stats.tables["accounts"].rows, 3);
        assert_eq!(stats.tables["accounts"].hash, "1234567890123456789");
        assert_eq!(stats.tables["messages"].rows, 0);
        assert_eq!(stats.schema_version.as_deref(), Some("20230101000000"));
        assert_eq!(stats.total_rows(), 3);
    }

    #[test]
    fn a_database_without_schema_migrations_has_no_version() {
        let stats = parse_fingerprint("V\t\n", HashMethod::CURRENT).unwrap();
        assert!(stats.tables.is_empty());
        assert_eq!(stats.schema_version, None);
    }

    #[test]
    fn truncated_output_is_an_error_not_an_empty_fingerprint() {
        assert!(parse_fingerprint("T\taccounts\t3\t12\n", HashMethod::CURRENT).is_err());
        assert!(parse_fingerprint("", HashMethod::CURRENT).is_err());
        assert!(parse_fingerprint("T\taccounts\tthree\t12\nV\t1\n", HashMethod::CURRENT).is_err());
        assert!(parse_fingerprint("T\taccounts\t3\t-\nV\t1\n", HashMethod::CURRENT).is_err());
    }

    #[test]
    fn a_negative_hash_sum_is_a_number() {
        let stats = parse_fingerprint(
            "T\taccounts\t3\t-922337203685477580\nV\t1\n",
            HashMethod::CURRENT,
        )
        .unwrap();
        assert_eq!(stats.tables["accounts"].hash, "-922337203685477580");
    }

    #[test]
    fn the_row_count_query_reads_no_row_contents() {
        let q = row_count_query();
        assert!(!q.contains("hashtextextended"), "{q}");
        assert!(fingerprint_query(HashMethod::ColumnHash)
            .contains("hashtextextended(t.%1$I::text, %2$s)"));
        assert!(fingerprint_query(HashMethod::RowText).contains("hashtextextended(t::text, 0)"));
    }
}
