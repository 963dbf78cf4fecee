//! The operator's extra values (`--values-override FILE`, `--set`), typically the image
//! overrides for images that moved to `docker.io/bitnamilegacy`: the runbook shows them
//! (secret-looking values redacted), they are saved with the values at backup, and a run
//! resumed without the flags (the file gone, another directory) still installs and upgrades
//! with them; given again, they replace the saved ones. The storage class of the backup volume
//! (`--backup-storage-class`) is kept with the plan likewise.

mod common;

use common::sim::{assert_migrated, chart, text, ReleaseSpec, Sim, RELEASE};

fn image_of(sim: &Sim, statefulset: &str) -> String {
    sim.kubectl(&[
        "get",
        "statefulset",
        statefulset,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
}

#[test]
fn overrides_given_once_are_used_by_the_install_and_the_upgrade_of_a_resumed_run() {
    let mut spec = ReleaseSpec::custom("3.19.0");
    spec.seed_size = "3MB";
    let (sim, before) = Sim::with_release(spec);
    let target = chart("4.44.0");
    let chart_arg = target.to_str().unwrap();
    let file = sim.state_dir().join("operator/images.yaml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        "postgresql:\n  image:\n    repository: bitnamilegacy/postgresql\n",
    )
    .unwrap();
    let file_arg = file.to_str().unwrap();

    let dry = sim.run_plugin(&[
        "4.44",
        "--chart",
        chart_arg,
        "--dry-run",
        "--values-override",
        file_arg,
        "--set",
        "redis.image.repository=bitnamilegacy/redis",
        "--set",
        "postgresql.auth.postgresPassword=Dry-Run-Pw-77",
    ]);
    let runbook = text(&dry.stdout);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(
        runbook.contains(&format!(
            "-f {file_arg} --set redis.image.repository=bitnamilegacy/redis --set postgresql.auth.postgresPassword=<redacted> --set app.replica=0"
        )),
        "{runbook}"
    );
    assert!(!runbook.contains("Dry-Run-Pw-77"), "{runbook}");

    // The first run saves the overrides with the values and is killed right after. It also
    // names a storage class for the backup volume, which the plan keeps.
    let class = sim.state_dir().join("class.yaml");
    std::fs::write(
        &class,
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: backup-ssd\nprovisioner: example.com/ssd\nreclaimPolicy: Delete\n",
    )
    .unwrap();
    sim.kubectl(&["apply", "-f", class.to_str().unwrap()]);
    let mut running = sim.plugin_with_until(
        &[
            "--values-override",
            file_arg,
            "--set",
            "redis.image.repository=bitnamilegacy/redis",
            "--backup-storage-class",
            "backup-ssd",
        ],
        "✓ [prepare.save-values]",
    );
    let _ = running.child.kill();
    let _ = running.finish();

    // A later run given overrides again replaces the saved ones (here: one more --set).
    let backup = sim.run_plugin(&[
        "4.44",
        "--chart",
        chart_arg,
        "backup",
        "-f",
        file_arg,
        "--set",
        "redis.image.repository=bitnamilegacy/redis",
        "--set",
        "redis.master.podAnnotations.overrides=replaced",
    ]);
    let said = text(&backup.stderr);
    assert!(backup.status.success(), "{said}");
    assert!(
        said.contains("install and upgrade use the overrides given now (1 values files, 2 --set)"),
        "{said}"
    );
    std::fs::remove_file(&file).unwrap();

    // Resumed without the flags: the saved overrides apply to install and upgrade.
    let out = sim.run_plugin(&["4.44", "--chart", chart_arg, "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_migrated(&sim, &before);
    let postgres = image_of(&sim, &format!("{RELEASE}-postgresql"));
    let redis = image_of(&sim, &format!("{RELEASE}-redis-master"));
    assert!(
        postgres.starts_with("docker.io/bitnamilegacy/postgresql:15."),
        "{postgres}"
    );
    assert!(
        redis.starts_with("docker.io/bitnamilegacy/redis:7."),
        "{redis}"
    );
    let backup_class = sim.kubectl(&[
        "get",
        "pvc",
        &format!("la-migrate-{RELEASE}-backup"),
        "-o",
        "jsonpath={.spec.storageClassName}",
    ]);
    assert_eq!(backup_class, "backup-ssd");
    let history = sim.helm(&["get", "values", RELEASE, "-o", "json"]);
    assert!(history.contains("bitnamilegacy/postgresql"), "{history}");
    assert!(history.contains("\"overrides\":\"replaced\""), "{history}");
}
