//! Proof that no data was lost: per-table exact row counts, a content hash per table and the
//! newest schema migration, taken from the source before the dump and from the target after
//! the restore, and compared. Pure: SQL text, output parsing, comparison.

mod compare;
pub mod sql;

pub use compare::{compare, compare_objects, Difference, Report};
pub use sql::HashMethod;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One table's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStats {
    pub rows: u64,
    /// Sum over the rows of a 64-bit row hash (order-independent), as the decimal text
    /// PostgreSQL printed: it can exceed 64 bits.
    pub hash: String,
}

/// A database's fingerprint: every table (of schema `public` before [`HashMethod::Exact`]),
/// and with `Exact` every sequence's value and every schema object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseStats {
    pub tables: BTreeMap<String, TableStats>,
    /// `max(version)` of `schema_migrations`; `None` when the table does not exist or is empty.
    pub schema_version: Option<String>,
    /// How the content hashes were computed: only fingerprints made the same way compare.
    /// Records written before the method was stored used [`HashMethod::RowText`].
    #[serde(default)]
    pub method: HashMethod,
    /// `schema.name` -> last value (empty: never used).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sequences: BTreeMap<String, String>,
    /// `kind identity` -> md5 of its definition.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objects: BTreeMap<String, String>,
}

impl DatabaseStats {
    pub fn total_rows(&self) -> u64 {
        self.tables.values().map(|t| t.rows).sum()
    }
}

/// Tables a Live Agent database always has; a fingerprint without them is suspicious.
pub const CORE_TABLES: [&str; 12] = [
    "accounts",
    "users",
    "account_users",
    "inboxes",
    "inbox_members",
    "contacts",
    "contact_inboxes",
    "conversations",
    "messages",
    "attachments",
    "active_storage_blobs",
    "active_storage_attachments",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_without_a_hash_method_was_made_with_the_row_text_hash() {
        let old: DatabaseStats = serde_json::from_str(
            r#"{"tables": {"accounts": {"rows": 2, "hash": "7"}}, "schema_version": "1"}"#,
        )
        .unwrap();
        assert_eq!(old.method, HashMethod::RowText);
        let new = DatabaseStats {
            method: HashMethod::ColumnHash,
            ..old
        };
        let json = serde_json::to_string(&new).unwrap();
        assert!(json.contains(r#""method":"column-hash""#), "{json}");
    }
}
