//! Prints pieces of the copy pod's script, so `scripts/bench.sh load-settings` runs exactly
//! the copy the plugin runs, with PostgreSQL 15 started under other settings.
//!
//! `cargo bench -p la-migrate --bench copy_script -- tables-query|copy-one|load-settings|sequences-query`
//! (no harness: it measures nothing itself). `load-settings` prints one `name<TAB>value` line
//! per load setting, the value as a server flag takes it.

use la_migrate::plan::copy_script::{
    copy_one_script, LOAD_SETTINGS, SEQUENCES_QUERY, TABLES_QUERY,
};

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("tables-query") => println!("{TABLES_QUERY}"),
        Some("copy-one") => print!("{}", copy_one_script()),
        Some("sequences-query") => println!("{SEQUENCES_QUERY}"),
        Some("load-settings") => {
            for (name, value, _) in LOAD_SETTINGS {
                println!("{name}\t{}", value.trim_matches('\''));
            }
        }
        other => {
            eprintln!("copy_script: which piece? tables-query, copy-one, load-settings or sequences-query (got {other:?})");
            std::process::exit(2);
        }
    }
}
