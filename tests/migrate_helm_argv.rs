//! The runbook's helm commands are the ones the migration runs: a helm that records its argv
//! (`tests/fixtures/bin/recording-helm`, as helm-diff's tests do) runs the migration, and
//! its `helm uninstall` and `helm install` equal the runbook's (`--dry-run`) word for word,
//! once the connection flags are left out and the values files (private temporary files in
//! the run, `values-4.44.0.yaml` and the operator's path in the runbook) named alike.

mod common;

use common::sim::{assert_migrated, chart, helm, text, ReleaseSpec, Sim, ROOT};

/// Runs the plugin with the recording helm, returning its output and the recorded calls.
fn run_recorded(sim: &Sim, args: &[&str]) -> (std::process::Output, Vec<Vec<String>>) {
    let record = sim.state_dir().join("helm-argv.txt");
    let out = sim
        .plugin(args)
        .env(
            "HELM_BIN",
            format!("{ROOT}/tests/fixtures/bin/recording-helm"),
        )
        .env("REAL_HELM", helm(sim.spec.helm_version))
        .env("HELM_RECORD", &record)
        .output()
        .expect("running la-migrate");
    let recorded = std::fs::read_to_string(&record).unwrap_or_default();
    let calls = recorded
        .split("--end--\n")
        .filter(|c| !c.is_empty())
        .map(|c| c.lines().map(str::to_string).collect())
        .collect();
    (out, calls)
}

/// A helm argv as the comparison reads it: no connection flags, every values file alike.
fn normalised(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut words = argv.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-n" | "--namespace" | "--kube-context" | "--kubeconfig" => {
                words.next();
            }
            "-f" | "--values" => {
                words.next();
                out.extend(["-f".to_string(), "<values file>".to_string()]);
            }
            _ => out.push(word.clone()),
        }
    }
    out
}

/// The runbook's helm commands of one verb, as argv (its words need no shell quoting here).
fn runbook_commands(plan: &serde_json::Value, verb: &str) -> Vec<Vec<String>> {
    let prefix = format!("helm {verb} ");
    plan["plan"]["steps"]
        .as_array()
        .expect("the plan's steps")
        .iter()
        .flat_map(|s| s["commands"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c.as_str().map(str::to_string))
        .filter(|c| c.starts_with(&prefix))
        .map(|c| c.split_whitespace().skip(1).map(str::to_string).collect())
        .collect()
}

#[test]
fn the_runbook_shows_the_helm_commands_the_migration_runs() {
    let (sim, before) = Sim::with_release(ReleaseSpec::custom("3.19.0"));
    let target = chart("4.44.0");
    let file = sim.state_dir().join("operator-values.yaml");
    std::fs::write(&file, "worker:\n  resources: {}\n").unwrap();
    let args = [
        "4.44",
        "--chart",
        target.to_str().unwrap(),
        "--values-override",
        file.to_str().unwrap(),
        "--set",
        "redis.image.repository=bitnamilegacy/redis",
        "--set",
        "worker.resources.limits.cpu=1",
    ];

    let dry = sim.run_plugin(&[&args[..], &["--dry-run", "-o", "json"]].concat());
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&dry.stdout).expect("the plan as JSON");

    let (run, calls) = run_recorded(&sim, &[&args[..], &["--yes"]].concat());
    assert!(
        run.status.success(),
        "la-migrate 4.44 failed ({}):\n{}",
        run.status,
        text(&run.stderr)
    );
    assert_migrated(&sim, &before);

    for verb in ["uninstall", "install"] {
        let shown: Vec<Vec<String>> = runbook_commands(&plan, verb)
            .iter()
            .map(|c| normalised(c))
            .collect();
        let ran: Vec<Vec<String>> = calls
            .iter()
            .filter(|c| c.first().map(String::as_str) == Some(verb))
            .map(|c| normalised(c))
            .collect();
        assert_eq!(shown.len(), 1, "one helm {verb} in the runbook: {shown:?}");
        assert_eq!(
            ran, shown,
            "helm {verb}: what ran, then what the runbook shows"
        );
    }
}
