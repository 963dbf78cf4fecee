//! A dump or restore that fails in the cluster stops the migration with the job's log, and
//! the next run starts it anew (the failed attempt's log kept) instead of repeating the
//! failure; a tools pod that is gone (evicted, deleted) is created again. The migration then
//! ends with nothing lost.

mod common;

use std::time::Duration;

use common::sim::{assert_migrated, chart, text, ReleaseSpec, Sim, ONBOARDING_KEY, RELEASE};

const DUMP_POD: &str = "la-migrate-cognigy-live-agent-dump";
const RESTORE_POD: &str = "la-migrate-cognigy-live-agent-restore";

/// Runs the migration until the detached `job` runs `program` in `pod`, then kills the
/// database server `db_pod` under it (the program held still meanwhile, so the kill lands
/// mid-way whatever the machine's speed); the plugin's exit code and stderr.
fn fail_job_by_killing_the_database(
    sim: &Sim,
    marker: &str,
    (pod, job, program): (&str, &str, &str),
    db_pod: &str,
) -> (Option<i32>, String) {
    let running = sim.plugin_until(marker);
    sim.wait_until(
        &format!("{program} to run in {pod}"),
        Duration::from_secs(120),
        || sim.signal_job(pod, job, program, "STOP"),
    );
    sim.kill_pod_processes(db_pod);
    assert!(sim.signal_job(pod, job, program, "CONT"));
    let (status, said) = running.finish();
    (status.code(), said)
}

#[test]
fn a_failed_dump_and_a_failed_restore_are_started_anew_by_the_next_run_and_nothing_is_lost() {
    let mut spec = ReleaseSpec::custom("3.19.0");
    spec.seed_size = "8MB";
    let (sim, before) = Sim::with_release(spec);
    let db_pod = format!("{RELEASE}-postgresql-0");
    let target = chart("4.44.0");
    let migrate = ["4.44", "--chart", target.to_str().unwrap(), "--yes"];

    // The PostgreSQL 11 server dies under pg_dump: the run stops with exit 11 (external).
    let (code, said) = fail_job_by_killing_the_database(
        &sim,
        "→ [backup.dump]",
        (DUMP_POD, "dump", "pg_dump"),
        &db_pod,
    );
    assert_eq!(code, Some(11), "the failed dump must stop the run:\n{said}");
    assert!(
        said.contains(&format!("the dump in pod live-agent/{DUMP_POD} failed"))
            && said.contains("it starts the dump anew"),
        "{said}"
    );
    assert!(sim.steps_done().contains("backup.scale-down"));
    assert!(!sim.steps_done().contains("backup.dump"));
    assert!(
        sim.helm(&["list", "-o", "json"])
            .contains("live-agent-4.43.1"),
        "nothing may be uninstalled after a failed dump"
    );
    let status = sim.run_plugin(&["4.44", "status"]);
    assert!(text(&status.stdout).contains("Next: backup.dump"));

    // The dump pod is gone too (as after an eviction), and the old server is back.
    sim.kubectl(&["delete", "pod", DUMP_POD, "--wait=true"]);
    sim.wait_pod_ready(&db_pod);

    // The next run recreates the pod, dumps anew and goes on; this time PostgreSQL 15 dies
    // under pg_restore.
    let (code, said) = fail_job_by_killing_the_database(
        &sim,
        "→ [restore.restore]",
        (RESTORE_POD, "restore", "pg_restore"),
        &db_pod,
    );
    assert!(
        said.contains("the previous dump failed") && said.contains("started anew"),
        "{said}"
    );
    assert_eq!(
        code,
        Some(11),
        "the failed restore must stop the run:\n{said}"
    );
    assert!(said.contains("it starts the restore anew"), "{said}");
    assert!(sim.steps_done().contains("backup.verify"));
    assert!(!sim.steps_done().contains("restore.restore"));
    let failed_dump_log = sim.kubectl_unchecked(&[
        "exec",
        RESTORE_POD,
        "--",
        "test",
        "-s",
        "/backup/dump.failed.log",
    ]);
    assert!(
        failed_dump_log.status.success(),
        "the failed dump's log is kept"
    );

    // The next run restores anew into a recreated database and completes.
    let out = sim.run_plugin(&migrate);
    let log = text(&out.stderr);
    assert!(out.status.success(), "the resumed migration failed:\n{log}");
    assert!(
        log.contains("the previous restore failed") && log.contains("started anew"),
        "{log}"
    );
    assert_migrated(&sim, &before);
    assert!(!sim.redis_exists(ONBOARDING_KEY, &sim.spec.redis_password));
}

/// The lock's expiry as the state ConfigMap holds it.
fn lock_expires(sim: &Sim) -> i64 {
    let out = sim.kubectl(&[
        "get",
        "configmap",
        &format!("la-migrate-{RELEASE}"),
        "-o",
        "jsonpath={.metadata.annotations.la-migrate\\.cognigy\\.com/lock-expires}",
    ]);
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("no lock expiry: {out:?}"))
}

#[test]
fn a_run_holds_the_lock_while_it_waits_is_refused_to_a_second_run_and_releases_it_on_sigterm() {
    let mut spec = ReleaseSpec::custom("3.19.0");
    spec.seed_size = "3MB";
    let (sim, before) = Sim::with_release(spec);
    let target = chart("4.44.0");
    let migrate = ["4.44", "--chart", target.to_str().unwrap(), "--yes"];

    // The first run waits on a dump held still, writing no step meanwhile.
    let running = sim.plugin_until("→ [backup.dump]");
    sim.wait_until("pg_dump to run", Duration::from_secs(120), || {
        sim.signal_job(DUMP_POD, "dump", "pg_dump", "STOP")
    });
    let holder = format!(":{}", running.child.id());

    let second = sim.run_plugin(&migrate);
    let said = text(&second.stderr);
    assert_eq!(second.status.code(), Some(10), "{said}");
    assert!(
        said.contains("is locked by") && said.contains(&holder),
        "{said}"
    );
    let status = sim.run_plugin(&["4.44", "status"]);
    let shown = text(&status.stdout);
    assert!(
        shown.contains("holds the lock") && shown.contains(&holder),
        "{shown}"
    );
    let json = sim.run_plugin(&["4.44", "status", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(json["locked_by"].as_str().unwrap().ends_with(&holder));
    assert_eq!(json["next"], "backup.dump");

    // A minute later the lock was renewed by the waiting run.
    let first = lock_expires(&sim);
    std::thread::sleep(Duration::from_secs(65));
    let renewed = lock_expires(&sim);
    // Nothing else writes the state while the dump is held still: a later expiry is the
    // renewal's.
    assert!(
        renewed > first,
        "the lock was not renewed while the run waited: {first} -> {renewed}"
    );

    // SIGTERM (as from a closing terminal or a CI job's timeout): exit 130, the lock released,
    // the dump left to go on in its pod.
    let pid = running.child.id().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let (status, said) = running.finish();
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(
        said.contains("interrupted by SIGTERM") && said.contains("again: it resumes"),
        "{said}"
    );
    let json = sim.run_plugin(&["4.44", "status", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(json["locked_by"].is_null(), "the lock was kept: {json}");
    assert!(sim.signal_job(DUMP_POD, "dump", "pg_dump", "CONT"));

    // The rerun picks up the dump that went on, and completes.
    let out = sim.run_plugin(&migrate);
    let log = text(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("reattached to the running dump")
            || log.contains("the dump had finished already"),
        "{log}"
    );
    assert_migrated(&sim, &before);
}
