//! Cleanup after a migration, on one migrated cluster, in the order an operator goes:
//! refused without confirmation (nothing deleted), then the plugin's pods, Secrets and dump
//! removed while the old volumes (PostgreSQL 11's is the backup) are only listed, then the old
//! volumes deleted and the attachments volume's original reclaim policy put back. The
//! attachment files and the copied database stay intact throughout.

mod common;

use common::sim::{assert_migrated, text, Sim, RELEASE};
use serde_json::Value;

fn volume_field(sim: &Sim, volume: &str, path: &str) -> Option<String> {
    let out = sim.kubectl_unchecked(&["get", "pv", volume, "-o", &format!("jsonpath={path}")]);
    out.status
        .success()
        .then(|| text(&out.stdout).trim().to_string())
}

/// Every object as [`Sim::dump_objects`] shows it, without the plugin's state ConfigMap.
fn objects_but_state(sim: &Sim) -> Vec<String> {
    let state = format!("ConfigMap/la-migrate-{RELEASE} ");
    sim.dump_objects()
        .lines()
        .filter(|l| !l.starts_with(&state))
        .map(String::from)
        .collect()
}

#[test]
fn cleanup_is_refused_unconfirmed_then_removes_the_backup_the_old_volumes_and_restores_the_policy()
{
    let (sim, before) = Sim::with_seeded_release("3MB");
    let out = sim.run_migrate(&["--keep-dump", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let backup_claim = format!("la-migrate-{RELEASE}-backup");
    let backup_volume = sim.claim_volume(&backup_claim);
    assert!(!backup_volume.is_empty());
    let record = sim.state_record();
    let database_volume = record["new_database_volume"].as_str().unwrap().to_string();
    assert_eq!(
        sim.claim_volume(&format!("data-{RELEASE}-postgresql-0")),
        database_volume
    );
    let policies = record["reclaim_policies"].as_object().unwrap().clone();
    let attachments = &before.attachments_volume;
    let old_volumes: Vec<String> = policies
        .keys()
        .filter(|v| *v != attachments)
        .cloned()
        .collect();
    assert!(
        old_volumes.len() >= 2,
        "the PostgreSQL and Redis volumes are recorded: {record}"
    );
    assert!(!old_volumes.contains(&database_volume), "{record}");
    for v in &old_volumes {
        assert_eq!(
            volume_field(&sim, v, "{.status.phase}").as_deref(),
            Some("Released"),
            "{v}"
        );
    }
    assert_eq!(
        volume_field(&sim, attachments, "{.spec.persistentVolumeReclaimPolicy}").as_deref(),
        Some("Retain")
    );

    // Unconfirmed under --no-input: refused, nothing deleted (the state only took and
    // released its lock).
    let objects = objects_but_state(&sim);
    let refused = sim.run_plugin(&["4.44", "cleanup", "--delete-old-volumes", "--no-input"]);
    assert_eq!(refused.status.code(), Some(6), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("--yes"),
        "{}",
        text(&refused.stderr)
    );
    let after = objects_but_state(&sim);
    let changed: Vec<&String> = after.iter().filter(|l| !objects.contains(l)).collect();
    assert!(
        changed.is_empty(),
        "a refused cleanup changed the cluster: {changed:?}"
    );
    assert_eq!(
        objects.len(),
        after.len(),
        "a refused cleanup deleted objects"
    );

    // The backup goes; the old volumes are listed, not deleted.
    let first = sim.run_plugin(&["4.44", "cleanup", "--yes"]);
    let log = text(&first.stderr);
    assert!(first.status.success(), "{log}");
    for v in &old_volumes {
        assert!(log.contains(v.as_str()), "{v} is not listed:\n{log}");
        assert!(
            volume_field(&sim, v, "{.metadata.name}").is_some(),
            "{v} was deleted"
        );
    }
    let left = sim.kubectl(&["get", "pods,pvc,secrets,services", "-o", "name"]);
    assert!(
        !left.contains("la-migrate-"),
        "the plugin's objects left: {left}"
    );
    assert!(
        volume_field(&sim, &backup_volume, "{.metadata.name}").is_none(),
        "the backup volume {backup_volume} is left"
    );

    // Confirmed: the old volumes go, the attachments volume gets its policy back.
    let second = sim.run_plugin(&[
        "4.44",
        "cleanup",
        "--delete-old-volumes",
        "--restore-reclaim-policy",
        "--yes",
    ]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    // A deleted volume goes once its protection finalizer is released, as on a real cluster.
    for v in &old_volumes {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while volume_field(&sim, v, "{.metadata.name}").is_some()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        assert!(
            volume_field(&sim, v, "{.metadata.name}").is_none(),
            "{v} is left"
        );
    }
    assert_eq!(
        volume_field(&sim, attachments, "{.spec.persistentVolumeReclaimPolicy}"),
        policies[attachments.as_str()].as_str().map(String::from)
    );
    // The release's database is the copied volume still.
    assert_eq!(
        sim.claim_volume(&format!("data-{RELEASE}-postgresql-0")),
        database_volume
    );
    assert_migrated(&sim, &before);

    let status = sim.run_plugin(&["4.44", "status", "-o", "json"]);
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["status"], "complete", "{status}");
    let done: Vec<&str> = status["done"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert!(
        done.contains(&"verify.report") && done.contains(&"cleanup.delete-old-volumes"),
        "{done:?}"
    );
}
