//! Flags on a resumed run are applied or refused by name, never ignored: the flags that fixed
//! the plan (`--chart`, `--keep-passwords`, `--backup-storage-class`, ...) are refused (exit 2)
//! when they differ from it, a local chart changed since the first run is refused, and
//! `--local-copy` given on a resume of a run that keeps a dump (`--keep-dump`) still makes
//! its copy of the dump before the point of no return.

mod common;

use common::sim::{chart, text, Sim};

#[test]
fn a_resumed_run_refuses_flags_that_change_the_plan_and_applies_a_local_copy() {
    let (sim, _before) = Sim::with_seeded_release("1MB");
    let local = sim.state_dir().join("live-agent-4.44.0.tgz");
    std::fs::copy(chart("4.44.0"), &local).unwrap();
    let local_arg = local.to_str().unwrap();

    // The first run keeps a dump (what --local-copy copies), copies, and stops at the point
    // of no return (no --yes).
    let first = sim.run_plugin(&["4.44", "--chart", local_arg, "--keep-dump", "--no-input"]);
    assert_eq!(first.status.code(), Some(6), "{}", text(&first.stderr));
    let before = sim.dump_objects();

    // What it said is snapshotted as `name`.
    let refused = |name: &str, args: &[&str], code: i32, names: &[&str]| {
        let mut argv = vec!["4.44"];
        argv.extend_from_slice(args);
        argv.push("--no-input");
        let out = sim.run_plugin(&argv);
        let said = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{said}");
        for name in names {
            assert!(said.contains(name), "{name} not named:\n{said}");
        }
        assert_eq!(before, sim.dump_objects(), "the cluster changed");
        insta::assert_snapshot!(name, sim.redact(&said));
    };
    refused(
        "plan_flags_changed",
        &[
            "--chart",
            local_arg,
            "--keep-passwords",
            "--backup-storage-class",
            "fast",
        ],
        2,
        &["--keep-passwords", "--backup-storage-class fast"],
    );
    let other = chart("4.44.0");
    refused(
        "another_chart",
        &["--chart", other.to_str().unwrap()],
        2,
        &["--chart"],
    );
    refused(
        "another_version",
        &["--chart", local_arg, "--version", "4.45.0"],
        2,
        &["--version 4.45.0"],
    );

    // The chart file changed under the plan.
    let original = std::fs::read(&local).unwrap();
    let mut changed = original.clone();
    changed.extend_from_slice(b"\0");
    std::fs::write(&local, &changed).unwrap();
    refused(
        "chart_changed",
        &["--chart", local_arg],
        8,
        &[local_arg, "changed since the migration started"],
    );
    std::fs::write(&local, &original).unwrap();

    // --local-copy on the resume (without repeating --keep-dump, which the plan kept):
    // copied before the point of no return.
    let out = sim.run_plugin(&[
        "4.44",
        "--chart",
        local_arg,
        "--local-copy",
        "resumed.tar",
        "--no-input",
    ]);
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{said}");
    assert!(said.contains("✓ [copy.local-copy]"), "{said}");
    let copy = sim.state_dir().join("resumed.tar");
    assert!(std::fs::metadata(&copy).unwrap().len() > 0);
    let record = sim.state_record();
    assert_eq!(
        record["local_copy"]["path"],
        copy.display().to_string(),
        "{record}"
    );
}
