//! The SQL run on the source (PostgreSQL 11) and the target (PostgreSQL 15), and the parser
//! of its output. One query, so psql runs once per database.

use std::collections::BTreeMap;

use super::{DatabaseStats, TableStats};

/// Session settings that make a row's text form identical on PostgreSQL 11 and 15: float
/// output changed in 12 (shortest-exact unless `extra_float_digits` <= 0), and time zone,
/// date and bytea styles follow the session.
pub const STABLE_TEXT_SETTINGS: &str = "SET extra_float_digits = 0; SET TimeZone = 'UTC'; \
SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET bytea_output = 'hex';";

/// Per table in `public`: `T<TAB>name<TAB>rows<TAB>hash`, then `V<TAB>max(schema_migrations)`.
/// The hash is the sum of a 64-bit hash of every row's text form: order-independent, and
/// `hashtextextended` (PostgreSQL 11 and later) is stable across versions, as hash partitioning
/// requires.
///
/// `query_to_xml` runs a per-table query inside one statement, so no client-side loop is
/// needed and the same text works on both servers.
pub fn fingerprint_query() -> String {
    tables_query("coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)")
}

/// The same output as [`fingerprint_query`] with every hash `0`: exact row counts only, for
/// checks of a live database whose contents may have changed since (a fraction of the time).
pub fn row_count_query() -> String {
    tables_query("0")
}

fn tables_query(hash_expression: &str) -> String {
    let per_table = format!("select count(*) as n, {hash_expression} as h from %I.%I t");
    format!(
        "{STABLE_TEXT_SETTINGS} \
select 'T' || E'\\t' || c.relname || E'\\t' || \
(xpath('/row/n/text()', x))[1]::text || E'\\t' || (xpath('/row/h/text()', x))[1]::text \
from pg_class c join pg_namespace s on s.oid = c.relnamespace, \
lateral query_to_xml(format('{per_table}', s.nspname, c.relname), false, true, '') as x \
where s.nspname = 'public' and c.relkind in ('r', 'p') \
union all \
select 'V' || E'\\t' || coalesce((select (xpath('/row/v/text()', \
query_to_xml('select max(version) as v from public.schema_migrations', false, true, '')))[1]::text \
where to_regclass('public.schema_migrations') is not null), '') \
order by 1;"
    )
}

/// `pg_database_size` of the connected database, in bytes.
pub fn database_size_query() -> &'static str {
    "select pg_database_size(current_database());"
}

/// Parses what `psql -XAt` printed for [`fingerprint_query`].
pub fn parse_fingerprint(output: &str) -> Result<DatabaseStats, String> {
    let mut tables = BTreeMap::new();
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_output_parses_into_tables_and_a_version() {
        let out = "T\taccounts\t3\t1234567890123456789\nT\tmessages\t0\t0\nV\t20230101000000\n";
        let stats = parse_fingerprint(out).unwrap();
        assert_eq!(stats.tables["accounts"].rows, 3);
        assert_eq!(stats.tables["accounts"].hash, "1234567890123456789");
        assert_eq!(stats.tables["messages"].rows, 0);
        assert_eq!(stats.schema_version.as_deref(), Some("20230101000000"));
        assert_eq!(stats.total_rows(), 3);
    }

    #[test]
    fn a_database_without_schema_migrations_has_no_version() {
        let stats = parse_fingerprint("V\t\n").unwrap();
        assert!(stats.tables.is_empty());
        assert_eq!(stats.schema_version, None);
    }

    #[test]
    fn truncated_output_is_an_error_not_an_empty_fingerprint() {
        assert!(parse_fingerprint("T\taccounts\t3\t12\n").is_err());
        assert!(parse_fingerprint("").is_err());
        assert!(parse_fingerprint("T\taccounts\tthree\t12\nV\t1\n").is_err());
        assert!(parse_fingerprint("T\taccounts\t3\t-\nV\t1\n").is_err());
    }

    #[test]
    fn a_negative_hash_sum_is_a_number() {
        let stats = parse_fingerprint("T\taccounts\t3\t-922337203685477580\nV\t1\n").unwrap();
        assert_eq!(stats.tables["accounts"].hash, "-922337203685477580");
    }

    #[test]
    fn the_row_count_query_reads_no_row_contents() {
        let q = row_count_query();
        assert!(!q.contains("t::text"), "{q}");
        assert!(fingerprint_query().contains("hashtextextended(t::text, 0)"));
    }
}
