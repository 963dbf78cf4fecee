//! What a database holds, in a form two databases can be compared by: exact row counts and an
//! order-independent content checksum per table of schema `public`, sequence values, and the
//! Rails schema version.
//!
//! The checksum is the sum over rows of the row text's MD5 (two 64-bit halves summed as
//! `numeric`), so it needs no sort and no memory however large the table. The session pins the
//! settings that shape text output (`extra_float_digits = 0` prints floats with 15 digits on
//! PostgreSQL 11 and 15 alike; dates in ISO, UTC), so the same rows give the same checksum on
//! both versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::SeedError;
use super::psql::PgTarget;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSum {
    pub rows: u64,
    pub checksum: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbSnapshot {
    /// Every table of schema `public`.
    pub tables: BTreeMap<String, TableSum>,
    /// `last_value` of every sequence in schema `public` (`None` before its first use).
    pub sequences: BTreeMap<String, Option<i64>>,
    /// `max(version)` of `schema_migrations`, if that table exists.
    pub schema_version: Option<String>,
}

impl DbSnapshot {
    pub fn total_rows(&self) -> u64 {
        self.tables.values().map(|t| t.rows).sum()
    }

    /// Human-readable differences from `after` (empty when equal).
    pub fn diff(&self, after: &DbSnapshot) -> Vec<String> {
        let mut out = Vec::new();
        for (name, before) in &self.tables {
            match after.tables.get(name) {
                None => out.push(format!(
                    "table {name}: missing ({} rows before)",
                    before.rows
                )),
                Some(a) if a.rows != before.rows => out.push(format!(
                    "table {name}: {} rows before, {} after",
                    before.rows, a.rows
                )),
                Some(a) if a.checksum != before.checksum => out.push(format!(
                    "table {name}: same {} rows but different content",
                    a.rows
                )),
                Some(_) => {}
            }
        }
        for name in after
            .tables
            .keys()
            .filter(|n| !self.tables.contains_key(*n))
        {
            out.push(format!("table {name}: new"));
        }
        let show = |v: Option<&Option<i64>>| match v {
            None => "missing".to_string(),
            Some(None) => "unused".to_string(),
            Some(Some(n)) => n.to_string(),
        };
        for (name, before) in &self.sequences {
            let a = after.sequences.get(name);
            if a != Some(before) {
                out.push(format!(
                    "sequence {name}: {} before, {} after",
                    show(Some(before)),
                    show(a)
                ));
            }
        }
        if self.schema_version != after.schema_version {
            out.push(format!(
                "schema version: {:?} before, {:?} after",
                self.schema_version, after.schema_version
            ));
        }
        out
    }
}

const SESSION: &str = "SET extra_float_digits = 0; SET DateStyle = 'ISO, MDY'; \
SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC'; SET bytea_output = 'hex';\n";

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The per-table query: one row `name, count, checksum` per table.
pub fn checksum_sql(tables: &[String]) -> String {
    let parts: Vec<String> = tables
        .iter()
        .map(|t| {
            format!(
                "SELECT {lit}, count(*), \
coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0)::text || ':' || \
coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)::text \
FROM (SELECT md5(t::text) AS h FROM public.{ident} t) s",
                lit = quote_literal(t),
                ident = quote_ident(t)
            )
        })
        .collect();
    format!("{SESSION}{};\n", parts.join("\nUNION ALL\n"))
}

/// Takes a [`DbSnapshot`] of `target`.
pub fn snapshot(target: &PgTarget) -> Result<DbSnapshot, SeedError> {
    let answer = |what: &str, line: &[String]| SeedError::Answer {
        what: what.to_string(),
        target: target.to_string(),
        line: line.join("\t"),
    };
    let tables: Vec<String> = target
        .query(
            "table list",
            "SELECT c.relname FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1;",
        )?
        .into_iter()
        .filter_map(|mut r| r.drain(..).next())
        .collect();
    let mut snap = DbSnapshot {
        tables: BTreeMap::new(),
        sequences: BTreeMap::new(),
        schema_version: None,
    };
    if !tables.is_empty() {
        for row in target.query("row counts and checksums", &checksum_sql(&tables))? {
            let [name, rows, checksum] = row.as_slice() else {
                return Err(answer("row counts and checksums", &row));
            };
            let rows = rows
                .parse()
                .map_err(|_| answer("row counts and checksums", &row))?;
            snap.tables.insert(
                name.clone(),
                TableSum {
                    rows,
                    checksum: checksum.clone(),
                },
            );
        }
    }
    for row in target.query(
        "sequence values",
        "SELECT sequencename, coalesce(last_value::text, '') FROM pg_catalog.pg_sequences \
         WHERE schemaname = 'public' ORDER BY 1;",
    )? {
        let [name, value] = row.as_slice() else {
            return Err(answer("sequence values", &row));
        };
        let value = match value.as_str() {
            "" => None,
            v => Some(v.parse().map_err(|_| answer("sequence values", &row))?),
        };
        snap.sequences.insert(name.clone(), value);
    }
    if snap.tables.contains_key("schema_migrations") {
        let rows = target.query(
            "schema version",
            "SELECT coalesce(max(version), '') FROM public.schema_migrations;",
        )?;
        snap.schema_version = rows
            .first()
            .and_then(|r| r.first())
            .filter(|v| !v.is_empty())
            .cloned();
    }
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(rows: u64, checksum: &str) -> DbSnapshot {
        DbSnapshot {
            tables: BTreeMap::from([(
                "messages".to_string(),
                TableSum {
                    rows,
                    checksum: checksum.into(),
                },
            )]),
            sequences: BTreeMap::from([("messages_id_seq".to_string(), Some(rows as i64))]),
            schema_version: Some("20230112103216".into()),
        }
    }

    #[test]
    fn diff_names_each_difference() {
        assert!(snap(3, "a").diff(&snap(3, "a")).is_empty());
        let d = snap(3, "a").diff(&snap(2, "a"));
        assert_eq!(
            d,
            vec![
                "table messages: 3 rows before, 2 after".to_string(),
                "sequence messages_id_seq: 3 before, 2 after".to_string()
            ]
        );
        assert_eq!(
            snap(3, "a").diff(&snap(3, "b")),
            vec!["table messages: same 3 rows but different content".to_string()]
        );
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        let sql = checksum_sql(&["we\"ird'name".to_string()]);
        assert!(sql.contains("SELECT 'we\"ird''name', count(*)"));
        assert!(sql.contains("FROM public.\"we\"\"ird'name\" t"));
        assert!(sql.starts_with("SET extra_float_digits = 0;"));
    }
}
