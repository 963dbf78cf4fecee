//! The seed's SQL and files on their own, and the attachment files against the blob rows a
//! real PostgreSQL 15 holds for the same seed.

mod seed_support;

use std::collections::BTreeMap;
use std::fs;

use base64::Engine as _;
use la_sim::seed::{self, SeedOptions};
use md5::{Digest as _, Md5};
use seed_support::{Major, PgServer, DATABASE};

fn sql(opts: SeedOptions) -> Vec<u8> {
    let mut out = Vec::new();
    seed::write_sql(&opts, &mut out).unwrap();
    out
}

#[test]
fn the_same_seed_writes_the_same_sql_and_another_seed_different_sql() {
    let a = sql(SeedOptions::new(3_000_000, 11));
    let b = sql(SeedOptions::new(3_000_000, 11));
    let c = sql(SeedOptions::new(3_000_000, 12));
    assert!(a == b, "same seed, different bytes");
    assert!(a != c, "different seeds, same bytes");
    let text = String::from_utf8(a).expect("the script is UTF-8");
    assert!(text.contains("COPY public.messages ("));
}

#[test]
fn the_same_seed_writes_the_same_attachment_files() {
    let opts = SeedOptions::new(3_000_000, 5);
    let (d1, d2, d3) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let m1 = seed::write_attachments(d1.path(), &opts).unwrap();
    let m2 = seed::write_attachments(d2.path(), &opts).unwrap();
    let m3 = seed::write_attachments(d3.path(), &SeedOptions::new(3_000_000, 6)).unwrap();
    assert!(!m1.files.is_empty());
    assert_eq!(m1, m2);
    assert_ne!(m1, m3);
    assert_eq!(
        seed::read_manifest(d1.path()).unwrap(),
        m1,
        "the manifest describes the disk"
    );

    // A lost or altered file shows up in the comparison.
    let (first, _) = m1.files.iter().next().unwrap();
    fs::write(d2.path().join(first), b"changed").unwrap();
    let (last, _) = m1.files.iter().next_back().unwrap();
    fs::remove_file(d2.path().join(last)).unwrap();
    let after = seed::read_manifest(d2.path()).unwrap();
    assert_eq!(
        m1.missing_or_changed(&after),
        vec![
            format!("{first}: content differs"),
            format!("{last}: missing")
        ]
    );
}

#[test]
fn attachment_files_match_the_blob_rows_byte_for_byte() {
    let opts = SeedOptions::new(10_000_000, 2);
    let pg = PgServer::start(Major::Pg15);
    let db = pg.create_database(DATABASE);
    seed::load_into(&db, &opts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = seed::write_attachments(dir.path(), &opts).unwrap();

    let rows = db
        .query(
            "blobs",
            "SELECT b.key, b.byte_size, b.checksum, a.record_type, m.id IS NOT NULL \
             FROM active_storage_blobs b \
             JOIN active_storage_attachments a ON a.blob_id = b.id \
             LEFT JOIN attachments t ON t.id = a.record_id \
             LEFT JOIN messages m ON m.id = t.message_id ORDER BY b.id;",
        )
        .unwrap();
    assert!(
        rows.len() > 50,
        "a 10 MB seed has attachments ({} blobs)",
        rows.len()
    );
    assert_eq!(rows.len(), manifest.files.len(), "one file per blob row");
    let mut on_disk = BTreeMap::new();
    for row in &rows {
        let [key, size, checksum, record_type, has_message] = row.as_slice() else {
            panic!("unexpected row {row:?}")
        };
        assert_eq!(record_type, "Attachment");
        assert_eq!(has_message, "t", "blob {key} belongs to a message");
        let rel = format!("{}/{}/{key}", &key[0..2], &key[2..4]);
        let content =
            fs::read(dir.path().join(&rel)).unwrap_or_else(|e| panic!("file for blob {key}: {e}"));
        assert_eq!(content.len().to_string(), *size, "byte_size of {key}");
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&content));
        assert_eq!(&md5, checksum, "checksum of {key}");
        on_disk.insert(rel, ());
    }
    assert_eq!(
        on_disk.keys().collect::<Vec<_>>(),
        manifest.files.keys().collect::<Vec<_>>()
    );
}
