//! `la-migrate 4.44 values` through the real binary: outputs, reports, exit codes, and that
//! nothing is written when anything fails.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_la-migrate"));
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("HELM_NAMESPACE")
        .env_remove("HELM_BIN")
        .env_remove("LA_MIGRATE_RELEASE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run la-migrate");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

const OLD: &str = "\
# our values
postgresql:
  postgresqlDatabase: live_agent_production  # the app's database
  postgresqlPassword: hunter2-very-secret
service:
  name: cognigy-live-agent
";

const NEW: &str = "\
# our values
postgresql:
  auth:
    database: live_agent_production  # the app's database
    postgresPassword: hunter2-very-secret
service:
  name: cognigy-live-agent-app
";

fn setup(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_file_is_translated_to_stdout_with_the_report_on_stderr() {
    let dir = setup(&[("custom-values.yaml", OLD)]);
    let r = run_in(
        dir.path(),
        &["4.44", "values", "-f", "custom-values.yaml"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, NEW);
    insta::assert_snapshot!("cli_report", r.stderr);
    assert!(
        !r.stderr.contains("hunter2"),
        "a password reached the report"
    );
    assert_eq!(
        listing(dir.path()),
        ["custom-values.yaml"],
        "nothing else written"
    );
}

#[test]
fn out_writes_a_new_file_and_refuses_an_existing_one_without_force() {
    let dir = setup(&[("old.yaml", OLD), ("taken.yaml", "keep me\n")]);
    let r = run_in(
        dir.path(),
        &["4.44", "values", "-f", "old.yaml", "--out", "new.yaml"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new.yaml")).unwrap(),
        NEW
    );

    let r = run_in(
        dir.path(),
        &["4.44", "values", "-f", "old.yaml", "--out", "taken.yaml"],
        &[],
    );
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("taken.yaml exists"), "{}", r.stderr);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("taken.yaml")).unwrap(),
        "keep me\n"
    );

    let r = run_in(
        dir.path(),
        &[
            "4.44",
            "values",
            "-f",
            "old.yaml",
            "--out",
            "taken.yaml",
            "--force",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("taken.yaml")).unwrap(),
        NEW
    );
}

#[test]
fn in_place_keeps_a_backup_and_will_not_overwrite_it() {
    let dir = setup(&[("values.yaml", OLD)]);
    let r = run_in(
        dir.path(),
        &["4.44", "values", "-f", "values.yaml", "--in-place"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("values.yaml")).unwrap(),
        NEW
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("values.yaml.bak")).unwrap(),
        OLD
    );
    assert!(r.stderr.contains("values.yaml.bak"), "{}", r.stderr);

    std::fs::write(dir.path().join("values.yaml"), OLD).unwrap();
    let r = run_in(
        dir.path(),
        &["4.44", "values", "-f", "values.yaml", "--in-place"],
        &[],
    );
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("values.yaml")).unwrap(),
        OLD
    );
}

#[test]
fn dry_run_reports_the_translation_and_writes_no_file() {
    let dir = setup(&[("values.yaml", OLD)]);
    std::fs::create_dir(dir.path().join("out")).unwrap();
    for extra in [
        &["--in-place"][..],
        &["--out", "new.yaml"],
        &["--out-dir", "out"],
    ] {
        let mut args = vec!["4.44", "values", "-f", "values.yaml", "--dry-run"];
        args.extend_from_slice(extra);
        let r = run_in(dir.path(), &args, &[]);
        assert_eq!(r.code, 0, "{:?}: {}", extra, r.stderr);
        assert!(
            r.stderr.contains("dry run:") && r.stderr.contains("not written"),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr
                .contains("postgresql.postgresqlDatabase -> postgresql.auth.database"),
            "{}",
            r.stderr
        );
        assert_eq!(
            listing(dir.path()),
            ["out", "values.yaml"],
            "{extra:?} wrote a file"
        );
        assert!(
            listing(&dir.path().join("out")).is_empty(),
            "{extra:?} wrote a file"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("values.yaml")).unwrap(),
            OLD
        );
    }
    // To stdout it is a result, not a write: printed as usual.
    let r = run_in(
        dir.path(),
        &["4.44", "values", "-f", "values.yaml", "--dry-run"],
        &[],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, NEW), "{}", r.stderr);
}

#[test]
fn bad_inputs_get_their_exit_code_and_nothing_is_written() {
    let dir = setup(&[
        ("good.yaml", OLD),
        ("broken.yaml", "postgresql:\n  a: 1\n   b: 2\n"),
        ("list.yaml", "- a\n- b\n"),
        (
            "conflict.yaml",
            "postgresql:\n  postgresqlDatabase: a\n  auth:\n    database: b\n",
        ),
    ]);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::create_dir(dir.path().join("adir")).unwrap();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["-f", "good.yaml", "-f", "broken.yaml", "--out-dir", "out"], 3, "broken.yaml: invalid YAML at line 3"),
        (&["-f", "list.yaml", "--out", "out/x.yaml"], 3, "the top level is a list"),
        (
            &["-f", "conflict.yaml", "--out", "out/x.yaml"],
            3,
            "postgresql.postgresqlDatabase (line 2) and postgresql.auth.database (line 4) are both set",
        ),
        (&["-f", "missing.yaml", "--out", "out/x.yaml"], 4, "cannot read values file missing.yaml"),
        // Unreadable even as root: a directory, and a file whose read fails.
        (&["-f", "adir", "--out", "out/x.yaml"], 3, "values file adir is a directory"),
        (&["-f", "/proc/self/mem", "--out", "out/x.yaml"], 3, "cannot read values file /proc/self/mem"),
        (&["-f", "good.yaml", "-f", "list.yaml"], 2, "several -f files cannot all go to stdout"),
        (&["-f", "good.yaml", "--out-dir", "nowhere"], 4, "output directory nowhere does not exist"),
    ];
    for (args, code, message) in cases {
        let mut argv = vec!["4.44", "values"];
        argv.extend_from_slice(args);
        let r = run_in(dir.path(), &argv, &[]);
        assert_eq!(r.code, *code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("hint:"),
            "{args:?}: no hint in {}",
            r.stderr
        );
        assert_eq!(r.stdout, "", "{args:?}");
        assert!(
            listing(&out).is_empty(),
            "{args:?} wrote {:?}",
            listing(&out)
        );
    }
    let r = run_in(dir.path(), &["4.44", "values", "-f", "conflict.yaml"], &[]);
    insta::assert_snapshot!("cli_conflict_error", r.stderr);
}

#[test]
fn logs_go_to_stderr_and_stdout_stays_exactly_the_translation() {
    let dir = setup(&[("values.yaml", OLD)]);
    let args = ["4.44", "values", "-f", "values.yaml"];
    /// Flags, environment, and the log lines they must put on stderr.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            &["-v"],
            &[],
            &["INFO read values file file=values.yaml", "INFO translated"],
        ),
        (&["-vv"], &[], &["DEBUG translating input=values.yaml"]),
        // Helm's --debug arrives as HELM_DEBUG=true.
        (
            &[],
            &[("HELM_DEBUG", "true")],
            &[
                "DEBUG translating",
                "DEBUG writing input=values.yaml output=-",
            ],
        ),
    ];
    for (flags, env, logs) in cases {
        let argv: Vec<&str> = args.iter().chain(flags.iter()).copied().collect();
        let r = run_in(dir.path(), &argv, env);
        assert_eq!(r.code, 0, "{flags:?} {env:?}: {}", r.stderr);
        assert_eq!(
            r.stdout, NEW,
            "{flags:?} {env:?}: stdout is the translation only"
        );
        for log in *logs {
            assert!(
                r.stderr.contains(log),
                "{flags:?} {env:?}: {log:?} not in {}",
                r.stderr
            );
        }
        assert!(r.stderr.contains("values.yaml: 3 changes"), "{}", r.stderr);
    }
    let quiet = run_in(dir.path(), &args, &[]);
    assert!(!quiet.stderr.contains("INFO"), "{}", quiet.stderr);

    // Log colours follow --color: none on a pipe by default, none with `never`, some with
    // `always` (NO_COLOR unset here).
    for (color, escapes) in [
        (None, false),
        (Some("never"), false),
        (Some("always"), true),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_la-migrate"));
        cmd.args(args).arg("-v").current_dir(dir.path());
        if let Some(c) = color {
            cmd.args(["--color", c]);
        }
        let out = cmd
            .env_remove("NO_COLOR")
            .env_remove("HELM_BIN")
            .env_remove("HELM_NAMESPACE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("INFO"), "{stderr}");
        assert_eq!(
            stderr.contains("\x1b["),
            escapes,
            "--color {color:?}: {stderr:?}"
        );
    }
}

#[test]
fn several_files_go_to_a_directory_each_on_its_own() {
    let dir = setup(&[
        ("a.yaml", OLD),
        ("b.yaml", "redis:\n  master:\n    containerPort: 6380\n"),
    ]);
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let r = run_in(
        dir.path(),
        &[
            "4.44",
            "values",
            "-f",
            "a.yaml",
            "-f",
            "b.yaml",
            "--out-dir",
            "out",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/a.yaml")).unwrap(),
        NEW
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/b.yaml")).unwrap(),
        "redis:\n  master:\n    containerPorts:\n      redis: 6380\n"
    );
}

#[test]
fn json_output_is_one_document_with_changes_warnings_and_yaml() {
    let dir = setup(&[
        ("a.yaml", OLD),
        (
            "b.yaml",
            "postgresql:\n  postgresqlPassword: x\n  postgresqlMaxConnections: 200\n",
        ),
    ]);
    let r = run_in(
        dir.path(),
        &[
            "4.44", "values", "-f", "a.yaml", "-f", "b.yaml", "-o", "json",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["input"], "a.yaml");
    assert_eq!(files[0]["output"], "-");
    assert_eq!(files[0]["yaml"], NEW);
    assert_eq!(
        files[0]["changes"][0]["from"],
        "postgresql.postgresqlDatabase"
    );
    assert_eq!(files[0]["changes"][0]["to"], "postgresql.auth.database");
    assert_eq!(files[0]["changes"][0]["line"], 3);
    assert_eq!(
        files[1]["warnings"][0]["path"],
        "postgresql.postgresqlMaxConnections"
    );
    // Warning lines are lines of the translated file (auth: was inserted above).
    assert_eq!(files[1]["warnings"][0]["line"], 4);

    let r = run_in(
        dir.path(),
        &["4.44", "values", "-f", "nope.yaml", "-o", "json"],
        &[],
    );
    assert_eq!(r.code, 4);
    let err: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(err["error"]["kind"], "not-found");
}

/// A stand-in for helm that records its arguments and prints a values document, or fails
/// like helm does for a missing release.
fn fake_helm(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("helm");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"{}/argv\"\n{body}\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn without_f_the_releases_values_are_read_through_helm_get_values() {
    let dir = setup(&[("release-values.yaml", OLD)]);
    let helm = fake_helm(
        dir.path(),
        &format!("cat \"{}/release-values.yaml\"", dir.path().display()),
    );
    let r = run_in(
        dir.path(),
        &[
            "4.44",
            "values",
            "--release",
            "prod-live-agent",
            "--out",
            "new.yaml",
        ],
        &[
            ("HELM_BIN", helm.to_str().unwrap()),
            ("HELM_NAMESPACE", "live-agent"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let argv = std::fs::read_to_string(dir.path().join("argv")).unwrap();
    assert_eq!(
        argv.lines().collect::<Vec<_>>(),
        [
            "get",
            "values",
            "prod-live-agent",
            "--output",
            "yaml",
            "--namespace",
            "live-agent"
        ]
    );
    // Release prod-live-agent: its 4.43 app Service was prod-live-agent, so the literal
    // cognigy-live-agent in service.name is not this release's and stays.
    let out = std::fs::read_to_string(dir.path().join("new.yaml")).unwrap();
    assert!(out.contains("    database: live_agent_production"), "{out}");
    assert!(out.contains("  name: cognigy-live-agent\n"), "{out}");
    assert!(
        r.stderr.starts_with("release prod-live-agent: 2 changes"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_unknown_release_is_not_found_and_nothing_is_written() {
    let dir = setup(&[]);
    let helm = fake_helm(dir.path(), "echo 'Error: release: not found' >&2\nexit 1");
    let r = run_in(
        dir.path(),
        &["4.44", "values", "--release", "gone", "--out", "new.yaml"],
        &[("HELM_BIN", helm.to_str().unwrap())],
    );
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("release \"gone\" was not found"),
        "{}",
        r.stderr
    );
    assert!(!dir.path().join("new.yaml").exists());
}

#[test]
fn help_documents_outputs_json_and_exit_codes() {
    let dir = setup(&[]);
    let r = run_in(dir.path(), &["4.44", "values", "--help"], &[]);
    assert_eq!(r.code, 0);
    for needle in [
        "--out",
        "--out-dir",
        "--in-place",
        "--force",
        "-o json",
        "Exit codes",
    ] {
        assert!(r.stdout.contains(needle), "--help lacks {needle}");
    }
}
