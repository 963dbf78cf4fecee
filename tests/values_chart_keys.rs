//! The embedded list of keys chart 4.44.0 reads is what the real chart says.
//!
//! Re-extracts the list from `live-agent-4.44.0.tgz` (`LA_MIGRATE_TEST_CHARTS`, default
//! `tests/fixtures/charts`) and compares. `LA_MIGRATE_BLESS=1` rewrites the embedded file.

use std::path::{Path, PathBuf};
use std::process::Command;

use la_migrate::values::chart_keys::{extract, KEYS_4_44_0};

fn charts_dir() -> PathBuf {
    std::env::var_os("LA_MIGRATE_TEST_CHARTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/charts"))
}

fn read_dir_texts(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            read_dir_texts(&p, out);
        } else if let Ok(text) = std::fs::read_to_string(&p) {
            out.push(text);
        }
    }
}

#[test]
fn the_embedded_key_list_matches_the_real_4_44_0_chart() {
    let tgz = charts_dir().join("live-agent-4.44.0.tgz");
    assert!(
        tgz.is_file(),
        "{} is missing: the real charts are needed (set LA_MIGRATE_TEST_CHARTS)",
        tgz.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("tar is needed to unpack the chart: run scripts/install-test-deps.sh");
    assert!(status.success(), "tar failed on {}", tgz.display());
    let chart = dir.path().join("live-agent");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let parent_values = read(&chart.join("values.yaml"));
    let pg_values = read(&chart.join("charts/postgresql/values.yaml"));
    let redis_values = read(&chart.join("charts/redis/values.yaml"));
    let mut parent_t = Vec::new();
    read_dir_texts(&chart.join("templates"), &mut parent_t);
    let mut pg_t = Vec::new();
    read_dir_texts(&chart.join("charts/postgresql/templates"), &mut pg_t);
    let mut redis_t = Vec::new();
    read_dir_texts(&chart.join("charts/redis/templates"), &mut redis_t);
    let mut templates: Vec<(&str, &str)> = Vec::new();
    templates.extend(parent_t.iter().map(|t| ("", t.as_str())));
    templates.extend(pg_t.iter().map(|t| ("postgresql", t.as_str())));
    templates.extend(redis_t.iter().map(|t| ("redis", t.as_str())));
    let fresh = extract(
        &[
            ("", parent_values.as_str()),
            ("postgresql", pg_values.as_str()),
            ("redis", redis_values.as_str()),
        ],
        &templates,
    )
    .unwrap();
    if std::env::var_os("LA_MIGRATE_BLESS").is_some() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/values/chart_keys_4_44_0.txt");
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    assert!(
        fresh == KEYS_4_44_0,
        "src/values/chart_keys_4_44_0.txt is stale; rerun with LA_MIGRATE_BLESS=1 and review the diff"
    );
}
