//! The migration run phase by phase, as an operator who wants to look between the steps
//! would: each phase alone, resuming from the state the previous one recorded. After the
//! cut-over the new Redis gets the onboarding flag an install on an empty database sets, so
//! finalize has a key to delete; verify then finds the key if it is set again.

mod common;

use common::sim::{assert_migrated, migrate_args, text, Sim, ONBOARDING_KEY};
use serde_json::Value;

/// Runs one phase to success and returns its stdout.
fn phase(sim: &Sim, name: &str, extra: &[&str]) -> String {
    let mut args = migrate_args(&[name, "--yes"]);
    args.extend_from_slice(extra);
    let out = sim.run_plugin(&args);
    assert!(
        out.status.success(),
        "la-migrate 4.44 {name} failed ({}):\n{}\n{}",
        out.status,
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stdout)
}

/// What `la-migrate 4.44 status` prints, which must succeed.
fn status_text(sim: &Sim) -> String {
    let out = sim.run_plugin(&["4.44", "status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    sim.redact(&text(&out.stdout))
}

/// The JSON step events of a run with `-o json`.
fn step_events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "step")
        .collect()
}

#[test]
fn finalize_deletes_the_onboarding_key_an_empty_install_set_and_leaves_other_redis_keys_alone() {
    let (sim, before) = Sim::with_seeded_release("3MB");
    let password = sim.spec.redis_password.clone();

    for name in ["prepare", "copy", "cutover"] {
        phase(&sim, name, &[]);
    }
    insta::assert_snapshot!("status_after_cutover", status_text(&sim));
    // What the chart's migration Job leaves in Redis on an empty database, plus keys of the
    // app that finalize must not touch.
    sim.redis_set(ONBOARDING_KEY, &password);
    sim.redis_set("alfred:OTHER_FLAG", &password);
    sim.redis_set("sidekiq:stats", &password);
    assert!(sim.redis_exists(ONBOARDING_KEY, &password));

    let finalize = phase(&sim, "finalize", &["-o", "json"]);
    let events = step_events(&finalize);
    let done = events
        .iter()
        .find(|e| e["id"] == "finalize.clear-onboarding" && e["status"] == "done")
        .unwrap_or_else(|| panic!("no done event for finalize.clear-onboarding:\n{finalize}"));
    assert_eq!(
        done["message"],
        format!("removed {ONBOARDING_KEY}"),
        "{finalize}"
    );
    assert!(!sim.redis_exists(ONBOARDING_KEY, &password));
    assert!(sim.redis_exists("alfred:OTHER_FLAG", &password));
    assert!(sim.redis_exists("sidekiq:stats", &password));

    // Verify checks the result, not the record: a key set again since finalize fails it,
    // naming the command that removes it.
    sim.redis_set(ONBOARDING_KEY, &password);
    let out = sim.run_migrate(&["verify"]);
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{said}");
    assert!(
        said.contains(&format!("the onboarding key {ONBOARDING_KEY} is set"))
            && said.contains(&format!("DEL {ONBOARDING_KEY}")),
        "{said}"
    );
    sim.redis_cli_del(ONBOARDING_KEY, &password);

    let report = sim.run_migrate(&["verify"]);
    let said = text(&report.stderr);
    assert!(report.status.success(), "{said}");
    for line in [
        "release cognigy-live-agent deployed on chart 4.44.0",
        "no onboarding key in Redis",
        "bound to the original volume",
    ] {
        assert!(said.contains(line), "{line:?} missing:\n{said}");
    }
    assert_migrated(&sim, &before);
    // Asked for again, verify checks again.
    sim.redis_set(ONBOARDING_KEY, &password);
    let again = sim.run_migrate(&["verify"]);
    assert_eq!(again.status.code(), Some(9), "{}", text(&again.stderr));
    sim.redis_cli_del(ONBOARDING_KEY, &password);
    let status = sim.run_plugin(&["4.44", "status", "-o", "json"]);
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["status"], "complete", "{status}");
    insta::assert_snapshot!("status_complete", status_text(&sim));
}
