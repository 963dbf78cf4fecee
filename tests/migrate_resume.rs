//! A migration killed at any step resumes when run again, from the state recorded in the
//! cluster, and ends with nothing lost: killed mid-dump, right after the release was
//! uninstalled, while PostgreSQL 15 starts, and mid-restore (the dump and restore are checked
//! to be still running in their pods at the kill).

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::sim::{assert_migrated, chart, text, ReleaseSpec, Sim, ONBOARDING_KEY};

/// Starts the migration and kills it (SIGKILL, as a closed laptop or a lost node would)
/// `delay` after a stderr line containing `marker` appears. Returns what it printed.
/// With `job` (pod, job name), the kill waits until that detached job runs in the pod.
fn kill_after(sim: &Sim, marker: &str, delay: Duration, job: Option<(&str, &str)>) -> String {
    let target = chart("4.44.0");
    let mut child = sim
        .plugin(&["4.44", "--chart", target.to_str().unwrap(), "--yes"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("starting la-migrate");
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut found = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap_or_default();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(marker) {
            found = true;
            break;
        }
    }
    assert!(found, "la-migrate never printed {marker:?}:\n{seen}");
    std::thread::sleep(delay);
    if let Some((pod, job)) = job {
        sim.wait_until(
            &format!("the {job} to start in {pod}"),
            Duration::from_secs(120),
            || job_running(sim, pod, job).is_ok(),
        );
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "la-migrate finished before it was killed"
    );
    eprintln!("killed after {marker:?} (+{delay:?})");
    seen
}

/// Whether the detached job in `pod` runs: no exit marker on the volume, its process alive.
fn job_running(sim: &Sim, pod: &str, job: &str) -> Result<String, String> {
    let out = sim.kubectl_unchecked(&[
        "exec",
        pod,
        "--",
        "sh",
        "-c",
        &format!("test ! -f /backup/{job}.exit && kill -0 \"$(cat /tmp/{job}.pid)\" && du -sk /backup | cut -f1"),
    ]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    if out.status.success() {
        Ok(said.trim().to_string())
    } else {
        Err(said)
    }
}

/// Right after the kill: the job still runs, so the kill provably hit it mid-way.
fn assert_job_running(sim: &Sim, pod: &str, job: &str) {
    match job_running(sim, pod, job) {
        Ok(kib) => eprintln!("{job} running at the kill ({kib} KiB on the backup volume)"),
        Err(e) => panic!("the {job} in {pod} was not running when la-migrate was killed: {e}"),
    }
}

#[test]
fn a_migration_killed_at_four_steps_resumes_each_time_and_loses_nothing() {
    let mut spec = ReleaseSpec::custom("3.19.0");
    // Big enough that dump and restore outlast the kill by seconds.
    spec.seed_size = "40MB";
    let (sim, before) = Sim::with_release(spec);

    const DUMP_POD: &str = "la-migrate-cognigy-live-agent-dump";
    const RESTORE_POD: &str = "la-migrate-cognigy-live-agent-restore";
    kill_after(
        &sim,
        "→ [backup.dump]",
        Duration::ZERO,
        Some((DUMP_POD, "dump")),
    );
    assert_job_running(&sim, DUMP_POD, "dump");

    kill_after(&sim, "✓ [uninstall.helm-uninstall]", Duration::ZERO, None);
    kill_after(
        &sim,
        "→ [install.wait-databases]",
        Duration::from_millis(300),
        None,
    );
    kill_after(
        &sim,
        "→ [restore.restore]",
        Duration::ZERO,
        Some((RESTORE_POD, "restore")),
    );
    assert_job_running(&sim, RESTORE_POD, "restore");

    let started = Instant::now();
    let target = chart("4.44.0");
    let out = sim.run_plugin(&["4.44", "--chart", target.to_str().unwrap(), "--yes"]);
    assert!(
        out.status.success(),
        "the resumed migration failed ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    let log = text(&out.stderr);
    assert!(log.contains("(done earlier)"), "{log}");
    eprintln!(
        "resumed to the end in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_migrated(&sim, &before);
    assert!(!sim.redis_exists(ONBOARDING_KEY, &sim.spec.redis_password));

    let status = sim.run_plugin(&["4.44", "status"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
}
