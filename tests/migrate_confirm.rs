//! The point of no return. Without `--yes`, a run that reaches the cut-over shows what will
//! be deleted and needs the release name typed on a terminal; without a terminal (or with
//! `--no-input`) it stops with exit 6. A run that resumes after the confirmation, with
//! destructive steps still ahead, asks again. Nothing is deleted until it is answered.

mod common;

use common::sim::{assert_migrated, migrate_args, text, Sim, RELEASE};
use serde_json::Value;

fn still_installed(sim: &Sim) {
    let list = sim.helm(&["list", "-o", "json"]);
    assert!(
        list.contains("live-agent-4.43.1") && list.contains("deployed"),
        "the release was touched: {list}"
    );
    sim.kubectl(&["get", "pvc", &format!("data-{RELEASE}-postgresql-0")]);
    sim.kubectl(&["get", "secret", &format!("{RELEASE}-postgresql")]);
}

#[test]
fn the_point_of_no_return_asks_every_run_that_would_delete_and_refuses_without_an_answer() {
    let (sim, before) = Sim::with_seeded_release("3MB");

    // Jobs waiting in Sidekiq (one queued, two scheduled): Redis 7 will not have them, so the
    // point of no return names them.
    let password = sim.spec.redis_password.clone();
    for command in [
        &["SADD", "queues", "default"][..],
        &["LPUSH", "queue:default", r#"{"class":"SendReplyJob"}"#],
        &["ZADD", "schedule", "1", "a", "2", "b"],
    ] {
        assert!(sim.redis_cli(command, &password).status.success());
    }

    // Prepare and copy delete nothing: no confirmation.
    for phase in ["prepare", "copy"] {
        let out = sim.run_migrate(&[phase]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    // No terminal, no --yes: refused before anything is deleted, the list as a JSON event.
    let out = sim.run_migrate(&["-o", "json"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stdout));
    let events: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let confirm = events
        .iter()
        .find(|e| e["event"] == "confirm")
        .expect("a confirm event");
    let deletes = confirm["deletes"].to_string();
    for named in [
        format!("PersistentVolumeClaim live-agent/data-{RELEASE}-postgresql-0"),
        format!("PersistentVolumeClaim live-agent/redis-data-{RELEASE}-redis-master-0"),
        format!("Secret live-agent/{RELEASE}-postgresql"),
    ] {
        assert!(deletes.contains(&named), "{named} not in {deletes}");
    }
    assert!(confirm["keeps"]
        .to_string()
        .contains(&format!("{RELEASE}-cookies-integrity")));
    let jobs = confirm["sidekiq_jobs"].to_string();
    for set in [
        r#"{"jobs":1,"set":"queue:default"}"#,
        r#"{"jobs":2,"set":"schedule"}"#,
        r#"{"jobs":0,"set":"retry"}"#,
    ] {
        assert!(jobs.contains(set), "{set} not in {jobs}");
    }
    let error = events.iter().find(|e| e.get("error").is_some()).unwrap();
    assert_eq!(error["error"]["kind"], "refused", "{error}");
    still_installed(&sim);
    assert!(!sim.steps_done().contains("cutover.confirm"));

    // On a terminal, a wrong name is refused.
    let (code, shown) = sim.plugin_on_terminal(&migrate_args(&[]), "cognigy\n");
    assert_eq!(code, Some(6), "{shown}");
    assert!(shown.contains("The next steps delete:"), "{shown}");
    assert!(
        shown.contains("Sidekiq jobs waiting in Redis 6") && shown.contains("queue:default: 1"),
        "{shown}"
    );
    assert!(shown.contains("was not confirmed"), "{shown}");
    still_installed(&sim);

    // The right name confirms; then the API fails every patch of a volume for a while (the
    // run only reads before the confirmation), so setting the volumes to Retain, the first
    // step after it, fails and the run stops with the release still there.
    sim.fail_api_method(500, 15, "/persistentvolumes", "PATCH");
    let fault_ends = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let (code, shown) = sim.plugin_on_terminal(&migrate_args(&[]), &format!("{RELEASE}\n"));
    assert_eq!(code, Some(1), "{shown}");
    assert!(shown.contains("run the same command again"), "{shown}");
    assert!(sim.steps_done().contains("cutover.confirm"), "{shown}");
    assert!(!sim.steps_done().contains("cutover.helm-uninstall"));
    std::thread::sleep(fault_ends.saturating_duration_since(std::time::Instant::now()));
    still_installed(&sim);

    // A rerun with destructive steps ahead asks again: without an answer, nothing happens.
    let out = sim.run_migrate(&["--no-input"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("The next steps delete:"));
    still_installed(&sim);

    // Answered, it goes to the end.
    let (code, shown) = sim.plugin_on_terminal(&migrate_args(&[]), &format!("{RELEASE}\n"));
    assert_eq!(code, Some(0), "{shown}");
    assert_migrated(&sim, &before);
}
