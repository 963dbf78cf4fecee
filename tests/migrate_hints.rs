//! Every next command the plugin suggests names the release and the namespace it is about:
//! a release named otherwise (`la-prod`) in another namespace (`prod`) goes through the
//! refusals (not started, a phase out of order, the point of no return without `--yes`, a
//! lock held elsewhere) and the status, and each `helm la-migrate` command printed carries
//! `-n prod --release la-prod`.

mod common;

use std::process::Output;

use common::sim::{migrate_args, text, ReleaseSpec, Sim};

const RELEASE: &str = "la-prod";
const NS: &str = "prod";

/// Each `helm la-migrate ...` command in `printed` (up to a closing backtick, parenthesis or
/// the end of the line).
fn suggested(printed: &str) -> Vec<String> {
    printed
        .lines()
        .flat_map(|line| {
            line.match_indices("helm la-migrate")
                .map(|(at, _)| {
                    let rest = &line[at..];
                    rest[..rest.find(['`', ')']).unwrap_or(rest.len())].to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Runs the plugin on `la-prod` in `prod`; asserts the exit code and that it suggested at
/// least one command, each naming both.
fn assert_hints(sim: &Sim, args: &[&str], code: i32) -> String {
    let mut argv = args.to_vec();
    argv.extend(["-n", NS, "--release", RELEASE]);
    let out: Output = sim.run_plugin(&argv);
    let printed = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{printed}");
    let commands = suggested(&printed);
    assert!(!commands.is_empty(), "no command suggested:\n{printed}");
    for command in &commands {
        assert!(
            command.contains(&format!(" -n {NS}"))
                && command.contains(&format!("--release {RELEASE}")),
            "{command:?} does not name the release and namespace:\n{printed}"
        );
    }
    printed
}

#[test]
fn every_suggested_command_names_a_release_and_namespace_that_are_not_the_defaults() {
    let sim = Sim::start(ReleaseSpec::custom("3.19.0"));
    sim.install_as(RELEASE, NS);

    let said = assert_hints(&sim, &["4.44", "status"], 0);
    assert!(said.contains("Start one"), "{said}");
    insta::assert_snapshot!("status_not_started", sim.redact(&said));
    let said = assert_hints(&sim, &migrate_args(&["cutover"]), 8);
    insta::assert_snapshot!("cutover_before_prepare", sim.redact(&said));
    let said = assert_hints(&sim, &migrate_args(&["--dry-run"]), 0);
    assert!(said.contains("Run it"), "{said}");

    // Prepare and copy run; the point of no return is refused without --yes.
    let said = assert_hints(&sim, &migrate_args(&["--no-input"]), 6);
    assert!(said.contains("--yes"), "{said}");
    let said = assert_hints(&sim, &migrate_args(&["finalize"]), 8);
    assert!(said.contains("has not run yet"), "{said}");
    insta::assert_snapshot!("finalize_before_cutover", sim.redact(&said));
    let said = assert_hints(&sim, &["4.44", "status"], 0);
    assert!(said.contains("Next: cutover."), "{said}");
    insta::assert_snapshot!("status_before_cutover", sim.redact(&said));

    // A lock held by a live run on another machine: it renews the lock while this run
    // watches it.
    let state = format!("la-migrate-{RELEASE}");
    let renew = |n: u64| {
        sim.kubectl(&[
            "-n",
            NS,
            "annotate",
            "--overwrite",
            "configmap",
            &state,
            "la-migrate.cognigy.com/lock-holder=ops@elsewhere:1",
            &format!("la-migrate.cognigy.com/lock-expires={n}"),
        ])
    };
    renew(1);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let said = std::thread::scope(|s| {
        let renewer = s.spawn(|| {
            let mut n = 2;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_secs(1));
                renew(n);
                n += 1;
            }
        });
        let said = assert_hints(&sim, &migrate_args(&["--no-input"]), 10);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        renewer.join().unwrap();
        said
    });
    assert!(said.contains("ops@elsewhere:1"), "{said}");
}
