//! Comparing the source's fingerprint with the target's.

use serde::Serialize;

use super::{DatabaseStats, HashMethod};

/// One difference between source and target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Difference {
    MissingTable {
        table: String,
    },
    ExtraTable {
        table: String,
    },
    RowCount {
        table: String,
        source: u64,
        target: u64,
    },
    Content {
        table: String,
    },
    SchemaVersion {
        source: Option<String>,
        target: Option<String>,
    },
    MissingSequence {
        sequence: String,
    },
    Sequence {
        sequence: String,
        source: String,
        target: String,
    },
    /// A schema object (index, constraint, trigger, ...) of the source is not in the target.
    MissingObject {
        object: String,
    },
    ExtraObject {
        object: String,
    },
    /// Same object, another definition.
    Definition {
        object: String,
    },
    /// The content hashes were computed differently, so they say nothing.
    HashMethod {
        source: HashMethod,
        target: HashMethod,
    },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::MissingTable { table } => write!(f, "table {table} is missing"),
            Difference::ExtraTable { table } => write!(f, "table {table} is not in the source"),
            Difference::RowCount {
                table,
                source,
                target,
            } => write!(f, "table {table}: {target} rows, the source had {source}"),
            Difference::Content { table } => {
                write!(f, "table {table}: same row count, different contents")
            }
            Difference::SchemaVersion { source, target } => write!(
                f,
                "schema_migrations: newest version {}, the source had {}",
                target.as_deref().unwrap_or("(none)"),
                source.as_deref().unwrap_or("(none)")
            ),
            Difference::MissingSequence { sequence } => {
                write!(f, "sequence {sequence} is missing")
            }
            Difference::Sequence {
                sequence,
                source,
                target,
            } => write!(
                f,
                "sequence {sequence}: last value {}, the source's {}",
                or_unused(target),
                or_unused(source)
            ),
            Difference::MissingObject { object } => write!(f, "{object} is missing"),
            Difference::ExtraObject { object } => write!(f, "{object} is not in the source"),
            Difference::Definition { object } => {
                write!(f, "{object}: its definition differs from the source's")
            }
            Difference::HashMethod { source, target } => write!(
                f,
                "content hashes computed as {target:?}, the source's as {source:?}: not comparable"
            ),
        }
    }
}

fn or_unused(value: &str) -> &str {
    if value.is_empty() {
        "(never used)"
    } else {
        value
    }
}

/// The outcome of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub tables: usize,
    pub rows: u64,
    pub differences: Vec<Difference>,
}

impl Report {
    pub fn is_equal(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Sequences and schema objects, named source first.
fn compare_exact(source: &DatabaseStats, target: &DatabaseStats, out: &mut Vec<Difference>) {
    for (sequence, s) in &source.sequences {
        match target.sequences.get(sequence) {
            None => out.push(Difference::MissingSequence {
                sequence: sequence.clone(),
            }),
            Some(t) if t != s => out.push(Difference::Sequence {
                sequence: sequence.clone(),
                source: s.clone(),
                target: t.clone(),
            }),
            Some(_) => {}
        }
    }
    for (object, s) in &source.objects {
        match target.objects.get(object) {
            None => out.push(Difference::MissingObject {
                object: object.clone(),
            }),
            Some(t) if t != s => out.push(Difference::Definition {
                object: object.clone(),
            }),
            Some(_) => {}
        }
    }
    out.extend(
        target
            .objects
            .keys()
            .filter(|o| !source.objects.contains_key(*o))
            .map(|o| Difference::ExtraObject { object: o.clone() }),
    );
}

/// The schema objects that differ (sequences and tables aside): a schema change on one side.
pub fn compare_objects(source: &DatabaseStats, target: &DatabaseStats) -> Vec<Difference> {
    let only_objects = |s: &DatabaseStats| DatabaseStats {
        objects: s.objects.clone(),
        ..DatabaseStats::default()
    };
    let mut out = Vec::new();
    compare_exact(&only_objects(source), &only_objects(target), &mut out);
    out
}

/// Compares table by table; `check_content` off compares row counts only (a live database).
pub fn compare(source: &DatabaseStats, target: &DatabaseStats, check_content: bool) -> Report {
    let mut differences = Vec::new();
    if check_content && source.method != target.method {
        differences.push(Difference::HashMethod {
            source: source.method,
            target: target.method,
        });
    }
    for (table, s) in &source.tables {
        match target.tables.get(table) {
            None => differences.push(Difference::MissingTable {
                table: table.clone(),
            }),
            Some(t) if t.rows != s.rows => differences.push(Difference::RowCount {
                table: table.clone(),
                source: s.rows,
                target: t.rows,
            }),
            Some(t) if check_content && t.hash != s.hash => differences.push(Difference::Content {
                table: table.clone(),
            }),
            Some(_) => {}
        }
    }
    for table in target.tables.keys() {
        if !source.tables.contains_key(table) {
            differences.push(Difference::ExtraTable {
                table: table.clone(),
            });
        }
    }
    if check_content && source.method.is_exact() {
        compare_exact(source, target, &mut differences);
    }
    if source.schema_version != target.schema_version {
        differences.push(Difference::SchemaVersion {
            source: source.schema_version.clone(),
            target: target.schema_version.clone(),
        });
    }
    Report {
        tables: source.tables.len(),
        rows: source.total_rows(),
        differences,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::TableStats;

    fn stats(tables: &[(&str, u64, &str)], version: Option<&str>) -> DatabaseStats {
        DatabaseStats {
            tables: tables
                .iter()
                .map(|(n, rows, hash)| {
                    (
                        n.to_string(),
                        TableStats {
                            rows: *rows,
                            hash: hash.to_string(),
                        },
                    )
                })
                .collect(),
            schema_version: version.map(String::from),
            method: HashMethod::CURRENT,
            ..DatabaseStats::default()
        }
    }

    #[test]
    fn sequences_and_schema_objects_are_compared_by_name_and_definition() {
        let mut source = stats(&[("accounts", 1, "5")], Some("1"));
        source.sequences = [
            ("public.accounts_id_seq", "7"),
            ("public.conv_dpid_seq_3", ""),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        source.objects = [("index public.a_idx", "d1"), ("trigger public.a.t", "d2")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        let mut target = source.clone();
        assert!(compare(&source, &target, true).is_equal());
        target
            .sequences
            .insert("public.accounts_id_seq".into(), "1".into());
        target.sequences.remove("public.conv_dpid_seq_3");
        target
            .objects
            .insert("index public.a_idx".into(), "other".into());
        target.objects.remove("trigger public.a.t");
        target
            .objects
            .insert("index public.b_idx".into(), "d3".into());
        let text: Vec<String> = compare(&source, &target, true)
            .differences
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            [
                "sequence public.accounts_id_seq: last value 1, the source's 7",
                "sequence public.conv_dpid_seq_3 is missing",
                "index public.a_idx: its definition differs from the source's",
                "trigger public.a.t is missing",
                "index public.b_idx is not in the source",
            ]
        );
        // Row counts only (a live database): sequences and objects move on.
        assert!(compare(&source, &target, false).is_equal());
    }

    #[test]
    fn identical_fingerprints_compare_equal() {
        let s = stats(
            &[("accounts", 2, "99"), ("messages", 10, "7")],
            Some("2023"),
        );
        let report = compare(&s, &s.clone(), true);
        assert!(report.is_equal());
        assert_eq!(report.tables, 2);
        assert_eq!(report.rows, 12);
    }

    #[test]
    fn every_kind_of_difference_is_reported() {
        let source = stats(
            &[
                ("accounts", 2, "99"),
                ("messages", 10, "7"),
                ("users", 1, "5"),
            ],
            Some("2023"),
        );
        let target = stats(
            &[
                ("accounts", 2, "98"),
                ("messages", 9, "7"),
                ("extra", 0, "0"),
            ],
            Some("2022"),
        );
        let report = compare(&source, &target, true);
        let text: Vec<String> = report.differences.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            text,
            [
                "table accounts: same row count, different contents",
                "table messages: 9 rows, the source had 10",
                "table users is missing",
                "table extra is not in the source",
                "schema_migrations: newest version 2022, the source had 2023",
            ]
        );
    }

    #[test]
    fn without_content_checks_only_row_counts_matter() {
        let source = stats(&[("accounts", 2, "99")], None);
        let target = stats(&[("accounts", 2, "1")], None);
        assert!(compare(&source, &target, false).is_equal());
        assert!(!compare(&source, &target, true).is_equal());
    }

    #[test]
    fn hashes_computed_differently_never_compare_equal() {
        let source = stats(&[("accounts", 2, "99")], None);
        let mut target = source.clone();
        target.method = HashMethod::RowText;
        let text: Vec<String> = compare(&source, &target, true)
            .differences
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            text,
            ["content hashes computed as RowText, the source's as Exact: not comparable"]
        );
        assert!(compare(&source, &target, false).is_equal());
    }
}
