//! Prints the plugin's fingerprint SQL (every table's row count and content hash, sequence
//! values, schema objects and the newest schema migration), so `scripts/bench.sh fingerprint` times exactly the query
//! the copy's proof runs, with `psql` against a seeded database.
//!
//! `cargo bench -p la-migrate --bench fingerprint_sql [-- row-text|counts]` (no harness: it
//! measures nothing itself). `row-text` prints the query with the whole-row text hash, and
//! `counts` the row-count-only query, for comparison.

use la_migrate::verify::sql::{self, HashMethod};

fn main() {
    let query = match std::env::args().nth(1).as_deref() {
        Some("row-text") => sql::fingerprint_query(HashMethod::RowText),
        Some("counts") => sql::row_count_query(),
        _ => sql::fingerprint_query(HashMethod::CURRENT),
    };
    println!("{query}");
}
