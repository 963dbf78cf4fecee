//! The README's first command, `scripts/demo.sh`: the migration through the real
//! `helm la-migrate` (the plugin installed into a private helm home) on a seeded 4.43.1
//! release in the simulated cluster, ending on 4.44.0, with nothing left running.

mod common;

use std::process::Command;

use common::sim::{text, ROOT};

#[test]
fn the_demo_migrates_a_seeded_release_through_helm_la_migrate_and_leaves_nothing_running() {
    let out = Command::new("bash")
        .arg("scripts/demo.sh")
        .current_dir(ROOT)
        .env("DEMO_HELM", "4.3.1")
        .env("DEMO_SEED_SIZE", "5MB")
        .env_remove("KUBECONFIG")
        .output()
        .expect("running scripts/demo.sh");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "the demo failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for shown in [
        "== helm la-migrate 4.44 -n live-agent",
        "✓ [verify.report]",
        "Migration complete.",
    ] {
        assert!(stderr.contains(shown), "{shown:?} missing:\n{stderr}");
    }
    // The result as helm lists it, and the state as `helm la-migrate status` shows it.
    let deployed = stdout.lines().any(|l| {
        l.contains("cognigy-live-agent")
            && l.contains("deployed")
            && l.contains("live-agent-4.44.0")
    });
    assert!(deployed, "{stdout}");
    assert!(stdout.contains("Complete."), "{stdout}");
    // Nothing of the demo's sim runs any more.
    let ps = Command::new("ps")
        .args(["-e", "-o", "args"])
        .output()
        .unwrap();
    let left: Vec<String> = text(&ps.stdout)
        .lines()
        .filter(|l| l.contains("target/demo."))
        .map(str::to_string)
        .collect();
    assert_eq!(left, Vec::<String>::new(), "processes left running");
}
