//! Acceptance 4: the migration guide replayed literally on the sim, as an operator runs it.
//!
//! A seeded Live Agent 4.43.1 release (PostgreSQL 11, Redis, attachment files) is migrated
//! to 4.44.0 with the guide's English commands (domain.md and the guide, steps 1 to 9), typed
//! into bash with helm 3.19.0 and its kubectl on `PATH`. Interactive sessions (`kubectl exec -it
//! ... -- bash`, the `psql` prompt) get the same lines on stdin. Two deviations, both named
//! where they happen: the guide's `<placeholders>` are filled from `kubectl get` output, and
//! step 8 clears the onboarding key with `redis-cli DEL` in the Redis master (domain.md), as
//! the sim's app pods have no Rails console. The test itself records the database (per-table
//! counts and content checksums) and the attachment files before and compares after.
//!
//! The onboarding key: in the guide's order the migration Job meets an empty database only at
//! the 4.43.1 install, which sets the key in the *old* Redis; step 3 deletes the Redis claims,
//! step 5 installs with the Job off and step 7's pre-upgrade Job finds the restored schema, so
//! the new Redis never gets the key and step 8 is a safety net. The test checks both facts,
//! then sets the key as Chatwoot's `db:seed` does (the state after an install whose Job ran on
//! the empty database, which step 8 guards against) so that step 8 must delete it.

mod cluster_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use cluster_support::{chart, helm, SimProcess};
use la_sim::seed::{self, PgTarget};

const NS: &str = "live-agent";
const RELEASE: &str = "cognigy-live-agent";
const DATABASE: &str = "live_agent_production";
const ONBOARDING_KEY: &str = "alfred:CHATWOOT_INSTALLATION_ONBOARDING";
const HELM_VERSION: &str = "3.19.0";

/// Runs the operator's shell commands against the sim.
struct Operator<'a> {
    sim: &'a SimProcess,
    /// The operator's working directory (values files, backup-pod.yaml)
    home: PathBuf,
    tools: PathBuf,
}

impl Operator<'_> {
    fn new(sim: &SimProcess) -> Operator<'_> {
        let home = sim.state_dir().join("operator");
        std::fs::create_dir_all(&home).unwrap();
        let tools = helm(HELM_VERSION).parent().unwrap().to_path_buf();
        Operator { sim, home, tools }
    }

    fn write(&self, name: &str, content: &str) {
        std::fs::write(self.home.join(name), content).unwrap();
    }

    /// Runs `script` in `bash -eu -o pipefail`; returns stdout and stderr, panics on failure.
    fn step(&self, name: &str, script: &str) -> (String, String) {
        let started = Instant::now();
        let path = format!(
            "{}:{}",
            self.tools.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("bash")
            .args(["-eu", "-o", "pipefail", "-c", script])
            .current_dir(&self.home)
            .env("PATH", path)
            .env("KUBECONFIG", &self.sim.kubeconfig)
            .env("HELM_CACHE_HOME", self.sim.state_dir().join("helm-cache"))
            .env("HELM_CONFIG_HOME", self.sim.state_dir().join("helm-config"))
            .env("HELM_DATA_HOME", self.sim.state_dir().join("helm-data"))
            .stdin(Stdio::null())
            .output()
            .expect("bash");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(
            out.status.success(),
            "{name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- sim log\n{}",
            out.status,
            self.sim.log()
        );
        eprintln!("{name}: {:.1}s", started.elapsed().as_secs_f64());
        (stdout, stderr)
    }
}

fn kubectl(sim: &SimProcess, args: &[&str]) -> String {
    sim.kubectl(args).trim().to_string()
}

fn secret(sim: &SimProcess, name: &str, key: &str) -> String {
    use base64::Engine;
    let b64 = kubectl(
        sim,
        &[
            "get",
            "secret",
            name,
            "-n",
            NS,
            "-o",
            &format!("jsonpath={{.data.{key}}}"),
        ],
    );
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

/// The release's database at the PostgreSQL pod's address, as the superuser.
fn database(sim: &SimProcess, password_key: &str) -> PgTarget {
    let ip = kubectl(
        sim,
        &[
            "get",
            "pod",
            &format!("{RELEASE}-postgresql-0"),
            "-n",
            NS,
            "-o",
            "jsonpath={.status.podIP}",
        ],
    );
    PgTarget::new(ip, 5432, "postgres", DATABASE).with_password(secret(
        sim,
        &format!("{RELEASE}-postgresql"),
        password_key,
    ))
}

fn volume_dir(sim: &SimProcess, volume: &str) -> PathBuf {
    PathBuf::from(kubectl(
        sim,
        &["get", "pv", volume, "-o", "jsonpath={.spec.hostPath.path}"],
    ))
}

/// The data of the Secrets the guide keeps across the migration, to compare before and after.
fn kept_secrets(sim: &SimProcess) -> Vec<String> {
    ["cookies-integrity", "cognigy-platform-app-token"]
        .iter()
        .map(|s| {
            kubectl(
                sim,
                &[
                    "get",
                    "secret",
                    "-n",
                    NS,
                    &format!("{RELEASE}-{s}"),
                    "-o",
                    "jsonpath={.data}",
                ],
            )
        })
        .collect()
}

fn claim_volume(sim: &SimProcess, claim: &str) -> String {
    kubectl(
        sim,
        &[
            "get",
            "pvc",
            claim,
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.volumeName}",
        ],
    )
}

/// Runs a `redis-cli` command in the Redis master pod, as the chart's password allows.
fn redis(sim: &SimProcess, command: &str) -> String {
    sim.kubectl(&[
        "exec",
        "-n",
        NS,
        &format!("{RELEASE}-redis-master-0"),
        "--",
        "sh",
        "-c",
        &format!("REDISCLI_AUTH=$REDIS_PASSWORD redis-cli --no-auth-warning -h {RELEASE}-redis-master {command}"),
    ])
    .trim()
    .to_string()
}

fn la_sim(state_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_la-sim"))
        .args(args)
        .arg("--state-dir")
        .arg(state_dir)
        .output()
        .expect("la-sim");
    assert!(
        out.status.success(),
        "la-sim {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fills `{{NAME}}` placeholders of a step's script.
fn fill(script: &str, vars: &[(&str, &str)]) -> String {
    vars.iter().fold(script.to_string(), |s, (k, v)| {
        s.replace(&format!("{{{{{k}}}}}"), v)
    })
}

const PREPARE_SIZE: &str = r#"
kubectl exec -n live-agent cognigy-live-agent-postgresql-0 -- bash -c 'PGPASSWORD=$POSTGRES_PASSWORD psql -U postgres -d live_agent_production -c "SELECT pg_database_size('"'"'live_agent_production'"'"')/1024/1024/1024 AS size_in_gb;"'
kubectl apply -n live-agent -f backup-pod.yaml
timeout 120 bash -c 'until [ "$(kubectl get pod -n live-agent postgres-backup-0 -o jsonpath="{.status.containerStatuses[0].ready}" 2>/dev/null)" = true ]; do sleep 1; done'
"#;

const STEP_1: &str = r#"
kubectl scale --replicas=0 -n live-agent deployment/cognigy-live-agent
kubectl scale --replicas=0 -n live-agent deployment/cognigy-live-agent-worker
kubectl scale --replicas=0 -n live-agent deployment/cognigy-live-agent-odata
timeout 120 bash -c 'while kubectl get pods -n live-agent -l app.kubernetes.io/name=live-agent -o name | grep -q .; do sleep 1; done'
"#;

const STEP_2: &str = r#"
kubectl exec -n live-agent -i postgres-backup-0 -- bash <<'SHELL'
cd /mnt/postgres-backup/
nohup time pg_dump --user $POSTGRES_USER --host cognigy-live-agent-postgresql -d live_agent_production > live_agent_production-postgres-dump.sql &
jobs
wait
jobs
tail -c 300 live_agent_production-postgres-dump.sql
SHELL
"#;

const STEP_3: &str = r#"
kubectl get pv
# The attachments volume is the one bound to claim live-agent/live-agent in that listing.
kubectl patch pv {{ATTACHMENTS_PV}} -p '{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}'
kubectl get pv
helm delete -n live-agent cognigy-live-agent
timeout 120 bash -c 'until [ "$(kubectl get pv {{ATTACHMENTS_PV}} -o jsonpath={.status.phase})" = Released ]; do sleep 1; done'
kubectl patch pv {{ATTACHMENTS_PV}} -p '{"spec":{"claimRef": null}}'
kubectl get pvc -n live-agent
kubectl delete pvc -n live-agent data-cognigy-live-agent-postgresql-0
kubectl delete pvc -n live-agent redis-data-cognigy-live-agent-redis-master-0
kubectl delete pvc -n live-agent redis-data-cognigy-live-agent-redis-replicas-0 redis-data-cognigy-live-agent-redis-replicas-1 redis-data-cognigy-live-agent-redis-replicas-2
"#;

const STEP_4: &str = r#"
kubectl delete secret -n live-agent cognigy-live-agent-postgresql || true
kubectl delete secret -n live-agent cognigy-live-agent-redis || true
"#;

const VALUES_STEP_5: &str = "\
# custom-values.yaml
app:
  replica: 0

worker:
  replica: 0

odata:
  enabled: false

migration:
  enabled: false
";

const STEP_5: &str = r#"
helm install cognigy-live-agent {{CHART}} --version 4.44.0 --namespace live-agent -f custom-values.yaml
timeout 180 bash -c 'until [ "$(kubectl get pods -n live-agent -o jsonpath="{range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\n\"}{end}" | sort -u)" = True ]; do sleep 1; done'
kubectl get pods -n live-agent
"#;

const STEP_6: &str = r#"
PASSWORD=$(kubectl get secret -n live-agent cognigy-live-agent-postgresql -o jsonpath='{.data.postgres-password}' | base64 -d)
kubectl exec -n live-agent -i postgres-backup-0 -- bash <<SHELL
export PGPASSWORD=$PASSWORD
psql --host cognigy-live-agent-postgresql -U postgres -d postgres -p 5432 <<'SQL'
\l+
DROP DATABASE live_agent_production;
CREATE DATABASE live_agent_production;
GRANT ALL PRIVILEGES ON DATABASE live_agent_production TO postgres;
\l+
\q
SQL
cd /mnt/postgres-backup/
nohup time psql --host cognigy-live-agent-postgresql -U postgres -d live_agent_production < live_agent_production-postgres-dump.sql > restore.log 2> restore.err &
wait
cat restore.err
SHELL
"#;

const VALUES_STEP_7: &str = "\
# custom-values.yaml
app:
  replica: 2

worker:
  replica: 3

# In case the OData service was enabled, enable it again
odata:
  enabled: true

migration:
  enabled: true
";

const STEP_7: &str = r#"
helm upgrade cognigy-live-agent {{CHART}} --version 4.44.0 --namespace live-agent -f custom-values.yaml
timeout 180 bash -c 'until [ "$(kubectl get pods -n live-agent -l app.kubernetes.io/name=live-agent -o jsonpath="{range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\n\"}{end}" | grep -c True)" = 6 ]; do sleep 1; done'
kubectl get pods -n live-agent
"#;

/// Step 8 without a Rails console: `::Redis::Alfred.delete(...)` is a DEL on the namespaced key.
const STEP_8: &str = r#"
kubectl exec -n live-agent -i cognigy-live-agent-redis-master-0 -- bash <<'SHELL'
REDISCLI_AUTH=$REDIS_PASSWORD redis-cli --no-auth-warning -h cognigy-live-agent-redis-master DEL alfred:CHATWOOT_INSTALLATION_ONBOARDING
SHELL
"#;

const STEP_9: &str = r#"
kubectl delete statefulset -n live-agent postgres-backup
kubectl delete service -n live-agent postgres-backup
kubectl delete sc postgres-backup
kubectl delete pvc -n live-agent postgres-backup-claim-postgres-backup-0
"#;

#[test]
fn the_guide_replayed_literally_moves_a_seeded_4_43_1_release_to_4_44_0_on_postgresql_15() {
    let sim = SimProcess::start_with_runtime();
    let op = Operator::new(&sim);
    let state = sim.state_dir();

    // A running 4.43.1 release with a seeded database and attachment files.
    op.step(
        "install 4.43.1",
        &format!(
            "helm install cognigy-live-agent {} --namespace live-agent --create-namespace --wait --timeout 120s",
            chart("4.43.1").display()
        ),
    );
    // The 4.43.1 install's migration Job met the empty database: the old Redis has the key.
    assert_eq!(redis(&sim, &format!("GET {ONBOARDING_KEY}")), "true");
    let seeded = la_sim(state, &["seed", "--size", "20MB"]);
    eprintln!("{}", seeded.trim());
    let db_before =
        seed::snapshot(&database(&sim, "postgresql-password")).expect("snapshot before");
    assert!(
        db_before.tables["messages"].rows > 1000,
        "{:?}",
        db_before.tables
    );
    let attachments_pv = claim_volume(&sim, "live-agent");
    let files_before = seed::read_manifest(&volume_dir(&sim, &attachments_pv)).unwrap();
    assert!(!files_before.files.is_empty());
    let kept = kept_secrets(&sim);

    // Preparations: the database size and the backup pod.
    op.write("backup-pod.yaml", include_str!("fixtures/backup-pod.yaml"));
    let (size, _) = op.step("prepare: database size, backup pod", PREPARE_SIZE);
    assert!(
        size.contains("size_in_gb") && size.contains("(1 row)"),
        "{size}"
    );

    op.step("step 1: scale the app to 0", STEP_1);

    let (out, err) = op.step("step 2: pg_dump in the backup pod", STEP_2);
    assert!(
        out.contains("PostgreSQL database dump complete"),
        "{out}\n{err}"
    );
    // `time` reports on stderr, as in the guide's terminal.
    assert!(err.contains("elapsed"), "{err}");

    let step_3 = fill(STEP_3, &[("ATTACHMENTS_PV", &attachments_pv)]);
    let (out, _) = op.step(
        "step 3: retain the attachments volume, uninstall, delete the database claims",
        &step_3,
    );
    assert!(out.contains("Retain"), "{out}");
    assert_eq!(
        kubectl(
            &sim,
            &[
                "get",
                "pv",
                &attachments_pv,
                "-o",
                "jsonpath={.status.phase}"
            ]
        ),
        "Available"
    );

    let (_, err) = op.step("step 4: delete the database secrets", STEP_4);
    // helm delete removed them already; the guide's command says so and the operator moves on.
    assert!(
        err.contains("secrets \"cognigy-live-agent-postgresql\" not found"),
        "{err}"
    );

    op.write("custom-values.yaml", VALUES_STEP_5);
    let chart_4_44 = chart("4.44.0");
    let (pods, _) = op.step(
        "step 5: install 4.44.0 with the app off",
        &fill(STEP_5, &[("CHART", chart_4_44.to_str().unwrap())]),
    );
    // The pod listing that ends the step (after helm's notes).
    let listing = &pods[pods.rfind("NAME ").expect("a pod listing")..];
    let running: Vec<&str> = listing
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        running.iter().all(|p| p.contains("postgresql")
            || p.contains("redis")
            || p.starts_with("postgres-backup")),
        "only PostgreSQL, Redis and the backup pod run:\n{pods}"
    );
    let image = kubectl(
        &sim,
        &[
            "get",
            "pod",
            "-n",
            NS,
            &format!("{RELEASE}-postgresql-0"),
            "-o",
            "jsonpath={.spec.containers[0].image}",
        ],
    );
    assert!(image.contains(":15."), "{image}");
    assert_eq!(
        claim_volume(&sim, "live-agent"),
        attachments_pv,
        "the new attachments claim bound another volume"
    );

    let (out, _) = op.step("step 6: restore into PostgreSQL 15", STEP_6);
    assert!(
        !out.contains("ERROR"),
        "the restore reported errors:\n{out}"
    );

    op.write("custom-values.yaml", VALUES_STEP_7);
    op.step(
        "step 7: upgrade with the app on",
        &fill(STEP_7, &[("CHART", chart_4_44.to_str().unwrap())]),
    );

    // The guide's order never let the migration Job see an empty database since the Redis
    // claims went in step 3: the new Redis has no key.
    assert_eq!(redis(&sim, &format!("EXISTS {ONBOARDING_KEY}")), "0");
    // As Chatwoot's db:seed leaves it after a Job on an empty database (see the module doc).
    assert_eq!(redis(&sim, &format!("SET {ONBOARDING_KEY} true")), "OK");
    let (out, _) = op.step("step 8: remove the onboarding key", STEP_8);
    assert_eq!(out.trim(), "1", "step 8 deleted no key");

    op.step("step 9: delete the backup objects", STEP_9);

    // Verification, by the test itself.
    let list = sim.ok(&helm(HELM_VERSION), &["list", "-n", NS, "-o", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(rows[0]["name"], RELEASE, "{list}");
    assert_eq!(rows[0]["status"], "deployed", "{list}");
    assert_eq!(rows[0]["chart"], "live-agent-4.44.0", "{list}");
    let db_after = database(&sim, "postgres-password");
    let version = db_after
        .query("server version", "show server_version_num")
        .expect("server version");
    assert!(version[0][0].starts_with("15"), "{version:?}");
    let snapshot_after = seed::snapshot(&db_after).expect("snapshot after");
    assert_eq!(db_before.diff(&snapshot_after), Vec::<String>::new());
    assert_eq!(db_before.tables, snapshot_after.tables);
    assert_eq!(db_before.schema_version, snapshot_after.schema_version);

    assert_eq!(claim_volume(&sim, "live-agent"), attachments_pv);
    let files_after = seed::read_manifest(&volume_dir(&sim, &attachments_pv)).unwrap();
    assert_eq!(
        files_before.missing_or_changed(&files_after),
        Vec::<String>::new()
    );
    assert_eq!(files_before.bytes, files_after.bytes);

    assert_eq!(redis(&sim, &format!("EXISTS {ONBOARDING_KEY}")), "0");

    let kept_after = kept_secrets(&sim);
    assert_eq!(kept, kept_after, "the kept secrets changed");
    // The backup class retained its volume: Released, as on a real cluster.
    let pvs = kubectl(
        &sim,
        &[
            "get",
            "pv",
            "-o",
            "jsonpath={range .items[*]}{.spec.storageClassName}={.status.phase}{\"\\n\"}{end}",
        ],
    );
    assert!(pvs.contains("postgres-backup=Released"), "{pvs}");
}
