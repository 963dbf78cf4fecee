//! `--set` values the operator gives: secret ones (helm's comma form included, and keys such
//! as `DATABASE_URL`) are redacted in the runbook, the JSON plan and the debug logs (helm's
//! argv among them, the `helm template` that stages the new release's passwords too), and no
//! `--set` value at all reaches the state ConfigMap: they are kept in the private values
//! Secret only, from which the staged passwords are rendered.

mod common;

use common::sim::{migrate_args, text, Sim, RELEASE};

const COMMA_SECRET: &str = "Comma-Pw-4411";
const URL_SECRET: &str = "Url-Pw-4412";
const PLAIN: &str = "Plain-Note-4413";

fn sets() -> Vec<String> {
    vec![
        "--set".into(),
        format!("redis.master.podAnnotations.note={PLAIN},postgresql.auth.postgresPassword={COMMA_SECRET}"),
        "--set".into(),
        format!("app.env.DATABASE_URL=postgres://live:{URL_SECRET}@db:5432/live"),
    ]
}

fn assert_no_secret(what: &str, shown: &str) {
    for secret in [COMMA_SECRET, URL_SECRET] {
        assert!(!shown.contains(secret), "{secret} in {what}:\n{shown}");
    }
}

#[test]
fn set_secrets_are_redacted_everywhere_and_no_set_value_is_stored_in_the_state() {
    let (sim, _before) = Sim::with_seeded_release("1MB");
    let mut args: Vec<String> = migrate_args(&["-vv", "--dry-run"])
        .into_iter()
        .map(String::from)
        .collect();
    args.extend(sets());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();

    let dry = sim.run_plugin(&argv);
    let (runbook, logs) = (text(&dry.stdout), text(&dry.stderr));
    assert!(dry.status.success(), "{logs}");
    assert_no_secret("the runbook", &runbook);
    assert_no_secret("the debug log", &logs);
    assert!(
        logs.contains("running helm"),
        "no helm argv logged:\n{logs}"
    );
    assert!(
        runbook.contains(&format!(
            "--set redis.master.podAnnotations.note={PLAIN},postgresql.auth.postgresPassword=<redacted> --set app.env.DATABASE_URL=<redacted>"
        )),
        "{runbook}"
    );

    let mut json_args = argv.clone();
    json_args.extend(["-o", "json"]);
    let json = sim.run_plugin(&json_args);
    assert!(json.status.success(), "{}", text(&json.stderr));
    assert_no_secret("the JSON plan", &text(&json.stdout));
    assert!(text(&json.stdout).contains("DATABASE_URL=<redacted>"));

    // A real run, stopped once the values are saved and the passwords staged (rendered by
    // helm with the saved `--set`s): the state holds no `--set` value, the values Secret
    // holds them all, and the staged password is the one given with `--set`.
    let run: Vec<&str> = argv[3..]
        .iter()
        .copied()
        .filter(|a| *a != "--dry-run")
        .collect();
    let mut running = sim.plugin_with_until(&run, "✓ [prepare.passwords]");
    let _ = running.child.kill();
    let (_, said) = running.finish();
    assert_no_secret("the run's stderr", &said);
    // The passwords step's `helm template` was logged, its `--set`s redacted.
    let passwords_step = said
        .split_once("[prepare.passwords]")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    assert!(
        passwords_step.lines().any(|l| l.contains("running helm")
            && l.contains("template")
            && l.contains("postgresql.auth.postgresPassword=<redacted>")),
        "no redacted helm template logged by prepare.passwords:\n{said}"
    );
    let state = sim.kubectl(&[
        "get",
        "configmap",
        &format!("la-migrate-{RELEASE}"),
        "-o",
        "json",
    ]);
    assert_no_secret("the state ConfigMap", &state);
    assert!(
        !state.contains(PLAIN),
        "a --set value in the state:\n{state}"
    );
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let plan = state["data"]["plan.json"].as_str().unwrap_or_default();
    assert!(
        plan.contains("redis.master.podAnnotations.note=<saved>"),
        "{plan}"
    );
    let saved = sim.secret_value(&format!("la-migrate-{RELEASE}-values"), "overrides.json");
    for value in [COMMA_SECRET, URL_SECRET, PLAIN] {
        assert!(saved.contains(value), "{value} not saved: {saved}");
    }
    assert_eq!(
        sim.secret_value(
            &format!("la-migrate-{RELEASE}-postgresql"),
            "postgres-password"
        ),
        COMMA_SECRET
    );
}
