//! The operator's extra values (`--values-override FILE`, `--set`), typically the image
//! overrides for images that moved to `docker.io/bitnamilegacy`: the runbook shows them on
//! the one `helm install` of the cut-over (secret-looking values redacted), they are saved
//! with the values by `prepare.save-values`, and a run resumed without the flags (the file
//! gone, another directory) still installs with them; given again, they replace the saved
//! ones. The storage class of the dump volume (`--keep-dump --backup-storage-class`) is kept
//! with the plan likewise.

mod common;

use common::sim::{assert_migrated, text, Sim, RELEASE};

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
fn overrides_given_once_are_used_by_the_single_install_of_a_resumed_run() {
    let (sim, before) = Sim::with_seeded_release("3MB");
    let file = sim.state_dir().join("operator/images.yaml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        "postgresql:\n  image:\n    repository: bitnamilegacy/postgresql\n",
    )
    .unwrap();
    let file_arg = file.to_str().unwrap();

    let dry = sim.run_migrate(&[
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
    // One helm install, no upgrade: the overrides on it, the files first and the operator's
    // `--set`s last (after the plugin's own), so they win.
    let installs: Vec<&str> = runbook
        .lines()
        .filter(|l| l.contains("helm install ") || l.contains("helm upgrade "))
        .collect();
    assert_eq!(installs.len(), 1, "{runbook}");
    let install = installs[0];
    assert!(install.contains("helm install "), "{install}");
    assert!(
        install.contains(&format!("-f {file_arg} --set migration.enabled=true")),
        "{install}"
    );
    assert!(
        install.contains(
            "--set redis.image.repository=bitnamilegacy/redis --set postgresql.auth.postgresPassword=<redacted> --timeout"
        ),
        "{install}"
    );
    assert!(!runbook.contains("Dry-Run-Pw-77"), "{runbook}");

    // The first run saves the overrides with the values and is killed right after. It also
    // keeps a dump, on a volume of a storage class it names, which the plan keeps.
    sim.apply(
        "class.yaml",
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: backup-ssd\nprovisioner: example.com/ssd\nreclaimPolicy: Delete\n",
    );
    let mut running = sim.plugin_with_until(
        &[
            "--values-override",
            file_arg,
            "--set",
            "redis.image.repository=bitnamilegacy/redis",
            "--keep-dump",
            "--backup-storage-class",
            "backup-ssd",
        ],
        "✓ [prepare.save-values]",
    );
    let _ = running.child.kill();
    let _ = running.finish();
    assert!(
        !sim.steps_done().contains("prepare.backup-volume"),
        "killed too late"
    );

    // A later run given overrides again replaces the saved ones (here: one more --set).
    let prepare = sim.run_migrate(&[
        "prepare",
        "-f",
        file_arg,
        "--set",
        "redis.image.repository=bitnamilegacy/redis",
        "--set",
        "redis.master.podAnnotations.overrides=replaced",
    ]);
    let said = text(&prepare.stderr);
    assert!(prepare.status.success(), "{said}");
    assert!(
        said.contains("the install uses the overrides given now (1 values files, 2 --set)"),
        "{said}"
    );
    std::fs::remove_file(&file).unwrap();

    // Resumed without the flags: the saved overrides apply to the install.
    let out = sim.run_migrate(&["--yes"]);
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
    let values = sim.helm(&["get", "values", RELEASE, "-o", "json"]);
    assert!(values.contains("bitnamilegacy/postgresql"), "{values}");
    assert!(values.contains("\"overrides\":\"replaced\""), "{values}");
    // Installed once, with them: the release's only revision is an install.
    let history: serde_json::Value =
        serde_json::from_str(&sim.helm(&["history", RELEASE, "-o", "json"])).unwrap();
    let revisions = history.as_array().unwrap();
    assert_eq!(revisions.len(), 1, "{history}");
    assert_eq!(revisions[0]["description"], "Install complete", "{history}");
}
