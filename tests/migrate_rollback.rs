//! `rollback` brings the release back to chart 4.43.1 from wherever the migration stopped:
//! the migration is killed (SIGKILL) right after each step of its plan and once after it
//! completed, then rolled back; each time the release runs 4.43.1 on PostgreSQL 11 with every
//! table, sequence and attachment as the test recorded them before the migration, the kept
//! secrets unchanged, the replicas as before and nothing of the plugin left. The next
//! migration starts from scratch; the last one completes.

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;

use common::sim::{
    assert_migrated, assert_rolled_back, text, Before, ReleaseSpec, Sim, DATABASE, RELEASE,
};

/// `rollback --yes` (with more arguments), which must succeed; its stdout and stderr, and
/// how long it took.
fn rollback(sim: &Sim, extra: &[&str]) -> (String, String, Duration) {
    let started = Instant::now();
    let mut args = vec!["4.44", "rollback", "--yes"];
    args.extend_from_slice(extra);
    let out = sim.run_plugin(&args);
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "rollback failed ({}):\n{}\n{}",
        out.status,
        text(&out.stderr),
        text(&out.stdout)
    );
    (text(&out.stdout), text(&out.stderr), took)
}

/// Kills the migration after `step` (`None`: lets it complete), rolls back, checks.
fn kill_then_roll_back(sim: &Sim, before: &Before, step: Option<&str>) -> Duration {
    match step {
        Some(step) => {
            sim.kill_plugin_after(&format!("✓ [{step}]"), Duration::ZERO, None);
        }
        None => sim.migrate(),
    }
    let after = step.unwrap_or("the completed migration");
    let (_, said, took) = rollback(sim, &[]);
    eprintln!("rolled back after {after} in {:.1}s", took.as_secs_f64());
    assert!(
        said.contains("Rollback complete"),
        "after {after}: the rollback said:\n{said}"
    );
    assert_rolled_back(sim, before);
    took
}

/// The plan's steps and where its uninstall (the point of no return) is among them.
fn steps_and_uninstall(sim: &Sim) -> (Vec<String>, usize) {
    let steps = sim.plan_steps(&[]);
    let uninstall = steps
        .iter()
        .position(|s| s == "cutover.helm-uninstall")
        .expect("the plan uninstalls");
    (steps, uninstall)
}

#[test]
fn a_migration_killed_before_its_point_of_no_return_rolls_back_to_the_release_as_it_was() {
    let (sim, before) = Sim::with_release(ReleaseSpec::custom("3.19.0"));
    let (steps, uninstall) = steps_and_uninstall(&sim);
    let mut times = Vec::new();
    for step in &steps[..uninstall] {
        times.push(kill_then_roll_back(&sim, &before, Some(step)));
    }
    eprintln!(
        "{} rollbacks before the point of no return, longest {:.1}s",
        times.len(),
        times.iter().max().unwrap().as_secs_f64()
    );
    // Without a recorded migration there is nothing to roll back, and nothing changes.
    let objects = sim.dump_objects();
    let out = sim.run_plugin(&["4.44", "rollback", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("nothing to roll back"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(sim.dump_objects(), objects);
}

#[test]
fn a_migration_killed_after_its_point_of_no_return_or_completed_rolls_back_onto_postgresql_11() {
    // Passwords the chart generated: only the Secrets saved when the migration started
    // let 4.43.1 reach PostgreSQL 11 again.
    let (sim, before) = Sim::with_release(ReleaseSpec::generated_password("3.19.0"));
    let (steps, uninstall) = steps_and_uninstall(&sim);
    let mut times = Vec::new();
    // Every boundary from the uninstall on; after the last step the migration has completed.
    for step in &steps[uninstall..steps.len() - 1] {
        times.push(kill_then_roll_back(&sim, &before, Some(step)));
    }

    // The 4.44 app writes to PostgreSQL 15 after the migration: the rollback names what does
    // not go back, per table.
    sim.migrate();
    sim.kubectl(&[
        "exec",
        &format!("{RELEASE}-postgresql-0"),
        "--",
        "sh",
        "-c",
        &format!(
            "PGPASSWORD=\"$POSTGRES_PASSWORD\" psql -U postgres -d {DATABASE} -v ON_ERROR_STOP=1 \
             -c 'CREATE TABLE public.written_on_15 (id int); INSERT INTO public.written_on_15 VALUES (1), (2), (3)'"
        ),
    ]);
    let (stdout, _, took) = rollback(&sim, &["-o", "json"]);
    times.push(took);
    let confirm: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "confirm-rollback")
        .unwrap_or_else(|| panic!("no confirm-rollback event:\n{stdout}"));
    assert_eq!(
        confirm["written_since_cutover"],
        serde_json::json!([{"table": "written_on_15", "rows_at_cutover": 0, "rows_now": 3}]),
        "{confirm}"
    );
    assert_rolled_back(&sim, &before);
    let kept: Vec<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "summary")
        .and_then(|e| e["record"]["rollback_kept_volumes"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(
        !kept.is_empty(),
        "PostgreSQL 15's volume is kept after the rollback:\n{stdout}"
    );
    for volume in &kept {
        let pv: Value =
            serde_json::from_str(&sim.kubectl(&["get", "pv", volume, "-o", "json"])).unwrap();
        assert_eq!(
            pv["spec"]["persistentVolumeReclaimPolicy"], "Retain",
            "{volume}"
        );
    }
    eprintln!(
        "{} rollbacks after the point of no return, longest {:.1}s",
        times.len(),
        times.iter().max().unwrap().as_secs_f64()
    );

    // The rolled-back release migrates again, from scratch, to the end (keeping the passwords,
    // which the test reads PostgreSQL 15 with).
    let out = sim.run_migrate(&["--yes", "--keep-passwords"]);
    assert!(
        out.status.success(),
        "the migration after the rollback failed:\n{}",
        text(&out.stderr)
    );
    assert_migrated(&sim, &before);
}
