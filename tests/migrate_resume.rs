//! A migration killed at any step resumes when run again, from the state recorded in the
//! cluster, and ends with nothing lost: killed (SIGKILL) right after every step of the plan
//! was recorded done, and in the middle of the two long steps (the detached copy, checked to
//! be still running in the copy pod at the kill, and helm's install). Afterwards PostgreSQL 11's
//! retained volume still holds the data of before. Helm operations interrupted or killed
//! midway are completed by the next run.

mod common;

use std::time::{Duration, Instant};

use common::sim::{
    assert_migrated, assert_old_database_untouched, text, RunningPlugin, Sim, COPY_POD,
    ONBOARDING_KEY,
};

/// Where a run is killed (SIGKILL, as a closed laptop or a lost node would).
enum Kill {
    /// Right after the step's `✓` line: it is recorded done, the next one has not started.
    After(&'static str),
    /// While the detached copy runs in the copy pod (it goes on after the kill).
    MidCopy,
    /// While helm installs the release (pending-install; the helm process goes on).
    MidInstall,
}

/// The plan's steps in order (the runbook's ids, no `--keep-dump`), with the two long ones
/// also killed midway. Not after `verify.report`: that run has nothing left to resume.
const KILLS: &[Kill] = &[
    Kill::After("prepare.save-values"),
    Kill::After("prepare.record-replicas"),
    Kill::After("prepare.passwords"),
    Kill::After("prepare.new-database"),
    Kill::After("prepare.copy-pod"),
    Kill::After("copy.scale-down"),
    Kill::MidCopy,
    Kill::After("copy.copy"),
    Kill::After("copy.prove"),
    Kill::After("cutover.confirm"),
    Kill::After("cutover.retain-volumes"),
    Kill::After("cutover.helm-uninstall"),
    Kill::After("cutover.rebind-attachments"),
    Kill::After("cutover.delete-claims"),
    Kill::After("cutover.bind-database"),
    Kill::After("cutover.secrets"),
    Kill::MidInstall,
    Kill::After("cutover.helm-install"),
    Kill::After("cutover.wait-app"),
    Kill::After("finalize.clear-onboarding"),
];

/// Whether the state records `step` done.
fn recorded_done(sim: &Sim, step: &str) -> bool {
    sim.steps_done().contains(&format!("\"{step}\""))
}

/// Starts the migration and SIGKILLs it once `step` started and `midway` holds; what it
/// printed. The step is not recorded done.
fn kill_during(sim: &Sim, step: &str, what: &str, midway: impl FnMut() -> bool) -> String {
    let mut running = sim.plugin_until(&format!("→ [{step}]"));
    sim.wait_until(what, Duration::from_secs(120), midway);
    let _ = running.child.kill();
    let (status, said) = running.finish();
    assert!(
        !status.success(),
        "la-migrate finished before it was killed"
    );
    eprintln!("killed while {what}");
    assert!(
        !recorded_done(sim, step),
        "{step} is recorded done though killed midway"
    );
    said
}

#[test]
fn a_migration_killed_after_every_step_and_mid_copy_resumes_each_time_and_loses_nothing() {
    // Big enough that the copy runs for seconds after the kill.
    let (sim, before) = Sim::with_seeded_release("40MB");

    let started = Instant::now();
    let mut previous: Option<&str> = None;
    for kill in KILLS {
        let said = match *kill {
            Kill::After(step) => {
                let said = sim.kill_plugin_after(&format!("✓ [{step}]"), Duration::ZERO, None);
                assert!(
                    recorded_done(&sim, step),
                    "{step} is not recorded done: {}",
                    sim.steps_done()
                );
                said
            }
            Kill::MidCopy => {
                let said = kill_during(&sim, "copy.copy", "the copy runs in its pod", || {
                    sim.job_running(COPY_POD, "copy").is_ok()
                });
                sim.assert_job_running(COPY_POD, "copy");
                said
            }
            Kill::MidInstall => kill_during(&sim, "cutover.helm-install", "helm installs", || {
                sim.helm(&["list", "--pending", "-o", "json"])
                    .contains("pending-install")
            }),
        };
        // The copy killed midway goes on in its pod: the next run follows it to its end.
        if matches!(kill, Kill::After("copy.copy")) {
            assert!(
                said.contains("reattached to the running copy")
                    || said.contains("the copy had finished already"),
                "the run after the kill mid-copy did not take up the running copy:\n{said}"
            );
        }
        // Each run resumes where the last one was killed.
        if let Some(previous) = previous {
            assert!(
                said.contains(&format!("· [{previous}]")),
                "the run did not skip {previous}, done earlier:\n{said}"
            );
        }
        if let Kill::After(step) = kill {
            previous = Some(step);
        }
    }
    eprintln!(
        "{} runs killed in {:.1}s",
        KILLS.len(),
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let out = sim.run_migrate(&["--yes"]);
    assert!(
        out.status.success(),
        "the resumed migration failed ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    let log = text(&out.stderr);
    assert!(log.contains("· [finalize.clear-onboarding]"), "{log}");
    assert!(log.contains("✓ [verify.report]"), "{log}");
    eprintln!(
        "resumed to the end in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_migrated(&sim, &before);
    assert!(!sim.redis_exists(ONBOARDING_KEY, &sim.spec.redis_password));
    assert_old_database_untouched(&sim, &before);

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
    let (sim, before) = Sim::with_seeded_release("3MB");
    let pending = |state: &str| {
        sim.helm(&["list", "--pending", "--failed", "-o", "json"])
            .contains(state)
    };

    // Ctrl-C while helm installs (the API holds up the StatefulSets' creation, which helm
    // retries): helm marks the install failed, the plugin stops with 130.
    // The fault starts before helm does (the uninstall is over: nothing else creates
    // StatefulSets) and lets helm's reads through, so helm records the install as pending.
    let running = sim.plugin_with_until(&["--helm-timeout", "8s"], "✓ [cutover.secrets]");
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

    // The next run completes the failed install (an upgrade over it); killed hard (plugin
    // and helm, as when the machine running them is lost) while helm creates the
    // StatefulSets the failed install could not, it leaves that upgrade pending. The fault is
    // set before the run starts (the plugin itself creates no StatefulSet) and is over before
    // the next run takes the release over (helm's 8 s timeout plus a 10 s margin).
    sim.fail_api_method(503, 15, "/statefulsets", "POST");
    let running = sim.plugin_until("→ [cutover.helm-install]");
    sim.wait_until("helm upgrade to run", Duration::from_secs(30), || {
        pending("pending-upgrade")
    });
    signal_helm(&running, "-KILL");
    let mut running = running;
    let _ = running.child.kill();
    let (_, said) = running.finish();
    assert!(pending("pending-upgrade"), "{said}");

    // helm itself refuses any operation now; the next run waits out helm's timeout (8 s from
    // the first run's plan, plus a margin), drops the dead operation's record (revision 2:
    // 1 the failed install) and completes the failed install.
    let out = sim.run_migrate(&["--yes"]);
    let log = text(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("waiting up to"), "{log}");
    assert!(
        log.contains("was left pending-upgrade at revision 2 by a helm that no longer runs"),
        "{log}"
    );
    assert!(
        log.contains("completed the failed install of chart 4.44.0"),
        "{log}"
    );
    assert_migrated(&sim, &before);
    assert!(!sim.redis_exists(ONBOARDING_KEY, &sim.spec.redis_password));
    assert_old_database_untouched(&sim, &before);
}
