//! Prints the plugin's fingerprint SQL (row count and content hash of every table in `public`,
//! and the newest schema migration), so `scripts/bench.sh fingerprint` times exactly the query
//! the backup and restore verification run, with `psql` against a seeded database.
//!
//! `cargo bench -p la-migrate --bench fingerprint_sql` (no harness: it measures nothing itself).

fn main() {
    println!("{}", la_migrate::verify::sql::fingerprint_query());
}
