//! A migration whose Kubernetes API fails: right after each step of the plan is recorded done,
//! and once while the copy runs detached in its pod, the API answers 500 to every request for
//! a few seconds (a control plane restarting, an overloaded one). Each time the plugin either
//! carries on once the API is back or stops with a documented exit code and a hint to run it
//! again; run again, it resumes, until the migration is complete with nothing lost and
//! PostgreSQL 11's retained volume still holding the data of before.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::sim::{
    assert_migrated, assert_old_database_untouched, text, Sim, COPY_POD, ONBOARDING_KEY,
};

/// How long each fault lasts.
const FAULT: Duration = Duration::from_secs(3);

/// The exit codes a run may stop with when the API fails (README, "Exit codes"): 1, a
/// Kubernetes call failed; 11, helm or a command in a pod failed.
const STOPPED_WITH: &[i32] = &[1, 11];

/// The step id of a progress line `<mark> [<id>] ...`.
fn step_of<'a>(line: &'a str, mark: &str) -> Option<&'a str> {
    let rest = line.trim_start().strip_prefix(mark)?.strip_prefix(" [")?;
    rest.split_once(']').map(|(id, _)| id)
}

/// `kill -<signal> <pid>`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// One run of the migration: each time a step is recorded done the plugin is stopped
/// (SIGSTOP) at once, the API set to answer 500 for [`FAULT`] and the plugin continued, so
/// the fault is in place before its next request; the first time the copy is seen running in
/// its pod, the API fails likewise. The run's exit status, what it printed, and when the last
/// fault ends.
struct Run {
    status: ExitStatus,
    said: String,
    fault_ends: Option<Instant>,
}

fn run(sim: &Sim, faulted: &mut Vec<String>, mid_copy: &mut bool) -> Run {
    let mut child = sim
        .migrate_command(&["--yes"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("starting la-migrate");
    let pid = child.id();
    let mut said = String::new();
    let mut fault_ends = None;
    let fail_api = |fault_ends: &mut Option<Instant>| {
        sim.fail_api(500, FAULT.as_secs(), "");
        *fault_ends = Some(Instant::now() + FAULT);
    };
    let stderr = child.stderr.take().unwrap();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        said.push_str(&line);
        said.push('\n');
        if let Some(step) = step_of(&line, "✓") {
            signal(pid, "-STOP");
            fail_api(&mut fault_ends);
            signal(pid, "-CONT");
            faulted.push(step.to_string());
        } else if step_of(&line, "→") == Some("copy.copy") && !*mid_copy && fault_ends.is_none() {
            sim.wait_until(
                "the copy to run in its pod",
                Duration::from_secs(120),
                || sim.job_running(COPY_POD, "copy").is_ok(),
            );
            fail_api(&mut fault_ends);
            *mid_copy = true;
        }
    }
    let status = child.wait().expect("waiting for la-migrate");
    Run {
        status,
        said,
        fault_ends,
    }
}

#[test]
fn a_migration_whose_api_fails_after_every_step_and_mid_copy_resumes_each_time_and_loses_nothing() {
    // Big enough that the copy runs for seconds once seen running.
    let (sim, before) = Sim::with_seeded_release("40MB");
    // The plan's steps in order (no `--keep-dump`): each gets its fault.
    let steps = sim.plan_steps(&[]);

    let started = Instant::now();
    let mut faulted: Vec<String> = Vec::new();
    let mut mid_copy = false;
    let mut runs = 0;
    let mut stops = Vec::new();
    loop {
        runs += 1;
        assert!(
            runs <= 3 * steps.len(),
            "no end after {runs} runs; faults after {faulted:?}"
        );
        let Run {
            status,
            said,
            fault_ends,
        } = run(&sim, &mut faulted, &mut mid_copy);
        if let Some(ends) = fault_ends {
            std::thread::sleep(ends.saturating_duration_since(Instant::now()));
        }
        if status.success() {
            assert!(
                said.contains("✓ [verify.report]") || said.contains("· [verify.report]"),
                "a run ended well before the migration was done:\n{said}"
            );
            break;
        }
        let code = status.code();
        assert!(
            fault_ends.is_some(),
            "la-migrate stopped ({status}) without a fault:\n{said}"
        );
        assert!(
            code.is_some_and(|c| STOPPED_WITH.contains(&c)),
            "la-migrate stopped with {status}, not one of {STOPPED_WITH:?}:\n{said}"
        );
        let hint = said
            .lines()
            .find(|l| l.trim_start().starts_with("hint:"))
            .unwrap_or_else(|| panic!("no hint after exit {code:?}:\n{said}"));
        assert!(
            hint.contains("again"),
            "the hint does not say to run again:\n{said}"
        );
        stops.push(code.unwrap_or_default());
    }
    eprintln!(
        "{} faults, {runs} runs ({} stopped, exit codes {stops:?}) in {:.1}s",
        faulted.len() + usize::from(mid_copy),
        stops.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        faulted, steps,
        "the steps whose completion a fault followed"
    );
    assert!(mid_copy, "no fault while the copy ran");

    assert_migrated(&sim, &before);
    assert!(!sim.redis_exists(ONBOARDING_KEY, &sim.spec.redis_password));
    assert_old_database_untouched(&sim, &before);
    let status = sim.run_plugin(&["4.44", "status"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
}
