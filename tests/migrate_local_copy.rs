//! A later 4.4x chart (4.45.0, same subcharts) is a valid target (a local archive's own
//! version is the target's, without `--version`), and `--local-copy` streams
//! the dump to the operator's disk with a progress bar: the file's SHA-256 is the one the
//! state records, and it is a complete, readable archive (the test unpacks it, checks every
//! file against the archive's checksum list and lists it with PostgreSQL 15's pg_restore).

mod common;

use std::path::Path;
use std::process::Command;

use common::pg::PG15_BIN;
use common::sim::{assert_migrated_to, chart, migrate_args, text, Sim, PLUGIN};
use sha2::{Digest, Sha256};

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn a_migration_to_4_45_with_a_local_copy_writes_the_recorded_archive_with_a_progress_bar() {
    let (sim, before) = Sim::with_seeded_release("4MB");
    let copy = sim.state_dir().join("operator-disk/live-agent-dump.tar");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let target = chart("4.45.0");

    // On a terminal, as an operator runs it: `script` gives the plugin a pty for stderr.
    let line = format!(
        "{PLUGIN} 4.44 --chart {} --local-copy {} --yes",
        target.display(),
        copy.display()
    );
    let typescript = sim.state_dir().join("typescript");
    let mut cmd = Command::new("script");
    cmd.args(["-qefc", &line])
        .arg(&typescript)
        .envs(
            sim.plugin(&[])
                .get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .env("COLUMNS", "160")
        .current_dir(sim.state_dir());
    let run = cmd.output().expect("running la-migrate under script");
    let log = text(&std::fs::read(&typescript).unwrap_or_default());
    assert!(
        run.status.success(),
        "la-migrate failed ({}):\n{log}",
        run.status
    );
    assert!(
        log.contains("local copy ["),
        "no progress bar for the local copy:\n{log}"
    );
    assert!(log.contains("archive copied to"), "{log}");
    assert_migrated_to(&sim, &before, "4.45.0");

    let record = sim.state_record();
    let local = &record["local_copy"];
    assert_eq!(local["path"], copy.display().to_string(), "{record}");
    assert_eq!(local["sha256"], sha256_hex(&copy), "{record}");
    assert_eq!(
        local["bytes"].as_u64(),
        Some(std::fs::metadata(&copy).unwrap().len())
    );
    // Every customer conversation is in it: readable by its owner only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let mut partial = copy.clone().into_os_string();
    partial.push(".partial");
    assert!(!Path::new(&partial).exists(), "a .partial file is left");

    // A complete archive: every file matches the checksum list whose hash the backup
    // recorded, and pg_restore reads its table of contents.
    let unpacked = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    sh(unpacked.path(), &format!("tar -xf {}", copy.display()));
    let list_hash = sh(unpacked.path(), "sha256sum dump.sha256 | cut -d' ' -f1");
    assert_eq!(
        list_hash.trim(),
        record["backup"]["sha256"].as_str().unwrap()
    );
    sh(
        &unpacked.path().join("dump"),
        "sha256sum -c --quiet ../dump.sha256",
    );
    let toc = sh(
        unpacked.path(),
        &format!("{PG15_BIN}/pg_restore --list dump"),
    );
    let entries = toc.lines().filter(|l| l.contains(" TABLE DATA ")).count() as u64;
    assert_eq!(
        Some(entries),
        record["backup"]["table_data_entries"].as_u64(),
        "{toc}"
    );
}

#[test]
fn an_existing_file_at_the_local_copy_path_is_refused_before_anything_changes() {
    let (sim, _before) = Sim::with_seeded_release("1MB");
    let copy = sim.state_dir().join("dump.tar");
    std::fs::write(&copy, "last week's copy").unwrap();
    let before = sim.dump_objects();

    for args in [
        vec!["--local-copy", copy.to_str().unwrap(), "--yes"],
        // Relative to the working directory (the state directory), like the operator types it.
        vec!["prepare", "--local-copy", "dump.tar"],
    ] {
        let mut argv = migrate_args(&[]);
        argv.extend(args);
        let out = sim.run_plugin(&argv);
        let said = text(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{said}");
        assert!(
            said.contains(&format!("{} exists", copy.display())),
            "{said}"
        );
        assert!(said.contains("--local-copy"), "{said}");
        assert_eq!(std::fs::read(&copy).unwrap(), b"last week's copy");
        assert_eq!(before, sim.dump_objects(), "the cluster changed");
    }

    // A partial file an interrupted copy left is refused by name too.
    std::fs::remove_file(&copy).unwrap();
    let partial = sim.state_dir().join("dump.tar.partial");
    std::fs::write(&partial, "half").unwrap();
    let out = sim.run_migrate(&["--local-copy", "dump.tar", "--dry-run"]);
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{said}");
    assert!(said.contains("dump.tar.partial exists"), "{said}");
    assert!(said.contains("interrupted copy"), "{said}");
}
