//! `--online`: PostgreSQL 15 filled by logical replication while 4.43.1 runs, then a cut-over.

mod common;

use common::sim::{assert_migrated, text, Sim};

#[test]
fn an_online_migration_keeps_every_row_sequence_and_attachment() {
    let (sim, before) = Sim::with_seeded_release("8MB");
    let out = sim.run_migrate(&["--online", "--yes"]);
    let said = text(&out.stderr);
    assert!(out.status.success(), "{said}\n{}", text(&out.stdout));
    eprintln!("{said}");
    assert_migrated(&sim, &before);
}
