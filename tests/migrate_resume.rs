//! A migration killed at any step resumes when run again, from the state recorded in the
//! cluster, and ends with nothing lost: killed mid-dump, right after the release was
//! uninstalled, while PostgreSQL 15 starts, and mid-restore.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::sim::{assert_migrated, chart, text, ReleaseSpec, Sim, ONBOARDING_KEY};

/// Starts the migration and kills it (SIGKILL, as a closed laptop or a lost node would)
/// `delay` after a stderr line containing `marker` appears. Returns what it printed.
fn kill_after(sim: &Sim, marker: &str, delay: Duration) -> String {
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
    let _ = child.kill();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "la-migrate finished before it was killed"
    );
    eprintln!("killed after {marker:?} (+{delay:?})");
    seen
}

#[test]
fn a_migration_killed_at_four_steps_resumes_each_time_and_loses_nothing() {
    let mut spec = ReleaseSpec::custom("3.19.0");
    spec.seed_size = "20MB";
    let (sim, before) = Sim::with_release(spec);

    kill_after(&sim, "→ [backup.dump]", Duration::from_millis(800));
    let dump_pod = sim.kubectl(&["get", "pods", "-o", "name"]);
    assert!(
        dump_pod.contains("la-migrate-cognigy-live-agent-dump"),
        "{dump_pod}"
    );

    kill_after(&sim, "✓ [uninstall.helm-uninstall]", Duration::ZERO);
    kill_after(
        &sim,
        "→ [install.wait-databases]",
        Duration::from_millis(300),
    );
    kill_after(&sim, "→ [restore.restore]", Duration::from_millis(800));

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
