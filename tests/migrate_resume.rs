//! A migration killed at any step resumes when run again, from the state recorded in the
//! cluster, and ends with nothing lost: killed mid-dump, right after the release was
//! uninstalled, while PostgreSQL 15 starts, and mid-restore (the dump and restore are checked
//! to be still running in their pods at the kill).

mod common;

use std::time::{Duration, Instant};

use common::sim::{assert_migrated, chart, text, ReleaseSpec, RunningPlugin, Sim, ONBOARDING_KEY};

#[test]
fn a_migration_killed_at_four_steps_resumes_each_time_and_loses_nothing() {
    let mut spec = ReleaseSpec::custom("3.19.0");
    // Big enough that dump and restore outlast the kill by seconds.
    spec.seed_size = "40MB";
    let (sim, before) = Sim::with_release(spec);

    const DUMP_POD: &str = "la-migrate-cognigy-live-agent-dump";
    const RESTORE_POD: &str = "la-migrate-cognigy-live-agent-restore";
    sim.kill_plugin_after("→ [backup.dump]", Duration::ZERO, Some((DUMP_POD, "dump")));
    sim.assert_job_running(DUMP_POD, "dump");

    sim.kill_plugin_after("✓ [uninstall.helm-uninstall]", Duration::ZERO, None);
    sim.kill_plugin_after(
        "→ [install.wait-databases]",
        Duration::from_millis(300),
        None,
    );
    sim.kill_plugin_after(
        "→ [restore.restore]",
        Duration::ZERO,
        Some((RESTORE_POD, "restore")),
    );
    sim.assert_job_running(RESTORE_POD, "restore");

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

/// Sends `signal` to the helm processes the plugin started.
fn signal_helm(running: &RunningPlugin, signal: &str) {
    let plugin = running.child.id().to_string();
    let sent = std::process::Command::new("pkill")
        .args([signal, "-P", &plugin])
        .status()
        .unwrap();
    let ps = std::process::Command::new("ps")
        .args(["-e", "-o", "pid,ppid,stat,args"])
        .output()
        .unwrap();
    assert!(
        sent.success(),
        "no helm child of la-migrate {plugin} to signal:\n{}",
        text(&ps.stdout)
            .lines()
            .filter(|l| l.contains("helm") || l.contains("la-migrate"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn helm_operations_interrupted_or_killed_midway_are_completed_by_the_next_run() {
    let mut spec = ReleaseSpec::custom("3.19.0");
    spec.seed_size = "3MB";
    let (sim, before) = Sim::with_release(spec);
    let pending = |state: &str| {
        sim.helm(&["list", "--pending", "--failed", "-o", "json"])
            .contains(state)
    };

    // Ctrl-C while helm installs (the API holds up the StatefulSets' creation, which helm
    // retries): helm marks the install failed, the plugin stops with 130.
    // The fault starts before helm does (the uninstall is over: nothing else creates
    // StatefulSets) and lets helm's reads through, so helm records the install as pending.
    let running = sim.plugin_with_until(&["--helm-timeout", "8s"], "✓ [uninstall.delete-claims]");
    sim.fail_api_method(503, 20, "/statefulsets", "POST");
    let fault_ends = Instant::now() + Duration::from_secs(20);
    let started = Instant::now();
    while !pending("pending-install") {
        if started.elapsed() > Duration::from_secs(30) {
            let mut running = running;
            let _ = running.child.kill();
            let (_, said) = running.finish();
            panic!(
                "helm install never ran:\n{said}\n{}",
                sim.helm(&["list", "-a"])
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // A terminal's Ctrl-C reaches both.
    let _ = std::process::Command::new("kill")
        .args(["-INT", &running.child.id().to_string()])
        .status();
    signal_helm(&running, "-INT");
    let (status, said) = running.finish();
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(said.contains("interrupted by SIGINT"), "{said}");
    sim.wait_until(
        "helm to record the failed install",
        Duration::from_secs(30),
        || pending("\"failed\""),
    );

    std::thread::sleep(fault_ends.saturating_duration_since(Instant::now()));

    // The next run completes the failed install; killed hard (plugin and helm, as when the
    // machine running them is lost) while helm upgrades, it leaves the upgrade pending.
    let running = sim.plugin_until("→ [restore.verify]");
    assert!(
        running
            .seen
            .contains("completed the failed install of chart 4.44.0"),
        "{}",
        running.seen
    );
    // Set before the upgrade starts (restore.verify creates no Jobs), over before the next
    // run takes the release over (helm's 8 s timeout plus a 10 s margin).
    sim.fail_api_method(503, 15, "/jobs", "POST");
    sim.wait_until("helm upgrade to run", Duration::from_secs(30), || {
        pending("pending-upgrade")
    });
    signal_helm(&running, "-KILL");
    let mut running = running;
    let _ = running.child.kill();
    let _ = running.finish();
    assert!(pending("pending-upgrade"));

    // helm itself refuses any operation now; the next run waits out helm's timeout (8 s from
    // the first run's plan, plus a margin), drops the dead operation's record (revision 3:
    // 1 the failed install, 2 its completion) and upgrades.
    let out = sim.run_plugin(&[
        "4.44",
        "--chart",
        chart("4.44.0").to_str().unwrap(),
        "--yes",
    ]);
    let log = text(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("waiting up to"), "{log}");
    assert!(
        log.contains("was left pending-upgrade at revision 3 by a helm that no longer runs"),
        "{log}"
    );
    assert_migrated(&sim, &before);
    assert!(!sim.redis_exists(ONBOARDING_KEY, &sim.spec.redis_password));
}
