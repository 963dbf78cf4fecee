//! The migration where the cluster is strict: a namespace that enforces Pod Security
//! `restricted` and whose ResourceQuota requires cpu and memory requests and limits. The
//! chart's pods get a restricted security context and resources from the release's values
//! (a LimitRange gives defaults to the migration Job's containers, to which charts 4.43.1 and
//! 4.44.0 give none); the plugin's pods bring their own.

mod common;

use common::sim::{
    assert_migrated, assert_old_database_untouched, migrate_args, text, ReleaseSpec, Sim,
    NAMESPACE, RELEASE,
};
use la_migrate::plan::manifests::tools_pod;
use la_migrate::plan::options::PodResources;
use la_migrate::plan::{BackupPlan, DbEndpoint};
use serde_json::Value;

/// The namespace, labelled `restricted`, with a compute quota and container defaults.
fn strict_namespace() -> String {
    format!(
        "\
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels: {{pod-security.kubernetes.io/enforce: restricted}}
---
apiVersion: v1
kind: ResourceQuota
metadata: {{name: compute, namespace: {NAMESPACE}}}
spec:
  hard: {{requests.cpu: '12', requests.memory: 12Gi, limits.cpu: '24', limits.memory: 24Gi}}
---
apiVersion: v1
kind: LimitRange
metadata: {{name: defaults, namespace: {NAMESPACE}}}
spec:
  limits: [{{type: Container, default: {{cpu: 200m, memory: 256Mi}}, defaultRequest: {{cpu: 50m, memory: 128Mi}}}}]
"
    )
}

/// An operator's 4.43.1 values for such a namespace: restricted security contexts and
/// resources for every pod the chart lets them be set on (the plugin translates them to
/// 4.44's keys: `postgresql.primary.*`).
const STRICT_VALUES: &str = "\
podSecurityContext: {runAsNonRoot: true, runAsUser: 1001, fsGroup: 1001, seccompProfile: {type: RuntimeDefault}}
securityContext: &restricted {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, runAsNonRoot: true, runAsUser: 1001}
resources: &small {requests: {cpu: 50m, memory: 128Mi}, limits: {cpu: 250m, memory: 256Mi}}
migration:
  hooks:
    securityContext: *restricted
odata:
  resources: *small
postgresql:
  postgresqlPassword: pg-Strict-7
  securityContext: {enabled: true, fsGroup: 1001, seccompProfile: {type: RuntimeDefault}}
  containerSecurityContext: {enabled: true, runAsUser: 1001, runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
  resources: {requests: {cpu: 100m, memory: 256Mi}, limits: {cpu: '1', memory: 1Gi}}
redis:
  auth:
    password: redis-Strict-7
  master: &redis
    podSecurityContext: {enabled: true, fsGroup: 1001, seccompProfile: {type: RuntimeDefault}}
    containerSecurityContext: {enabled: true, runAsUser: 1001, runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
    resources: *small
  replica: *redis
";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// A pod of the plugin's, asserting the LimitRange gave it nothing and that it runs as
/// Bitnami's non-root user by its security context.
fn plugin_pod(sim: &Sim, pod: &str) -> Value {
    let json = json(&sim.kubectl(&["get", "pod", pod, "-o", "json"]));
    assert!(
        json.pointer("/metadata/annotations/kubernetes.io~1limit-ranger")
            .is_none(),
        "{json}"
    );
    let sc = &json["spec"]["securityContext"];
    assert_eq!(
        (&sc["runAsUser"], &sc["runAsNonRoot"]),
        (&1001.into(), &true.into()),
        "{pod}: {sc}"
    );
    json
}

#[test]
fn a_release_in_a_restricted_namespace_under_a_compute_quota_migrates() {
    let spec = ReleaseSpec {
        values: STRICT_VALUES.to_string(),
        pre_objects: Some(strict_namespace()),
        db_password: "pg-Strict-7".into(),
        redis_password: "redis-Strict-7".into(),
        seed_size: "4MB",
        ..ReleaseSpec::custom("3.19.0")
    };
    let (sim, before) = Sim::with_release(spec);
    let run = |extra: &[&str]| {
        let mut args = migrate_args(&[]);
        args.extend_from_slice(extra);
        let out = sim.run_plugin(&args);
        assert!(
            out.status.success(),
            "la-migrate {args:?} failed ({}):\n{}\n{}\nevents:\n{}",
            out.status,
            text(&out.stderr),
            text(&out.stdout),
            sim.kubectl(&["get", "events", "--field-selector", "reason=FailedCreate"])
        );
    };
    // Prepare alone first, to look at the plugin's pods while both run.
    run(&[
        "prepare",
        "--tools-cpu",
        "300m",
        "--tools-memory",
        "384Mi",
        "--yes",
    ]);
    // PostgreSQL 15 beside PostgreSQL 11 carries the chart's resources (the release's
    // `postgresql.resources`, translated to `postgresql.primary.resources`), not the
    // LimitRange's defaults nor the tools' amounts.
    let postgres = plugin_pod(&sim, &format!("la-migrate-{RELEASE}-postgresql"));
    assert_eq!(
        postgres["spec"]["containers"][0]["resources"],
        serde_json::json!({
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        })
    );
    // The copy pod carries the amounts asked for, as request and limit.
    let amounts = json(r#"{"cpu": "300m", "memory": "384Mi"}"#);
    let copy = format!("la-migrate-{RELEASE}-copy");
    assert_eq!(
        plugin_pod(&sim, &copy)["spec"]["containers"][0]["resources"],
        serde_json::json!({"requests": amounts, "limits": amounts})
    );
    // Its processes run as that user. (The sim's PostgreSQL server keeps the host's own
    // `postgres` user, so the database pod is judged by its security context alone.)
    assert_eq!(
        sim.kubectl(&["exec", &copy, "--", "id", "-u"]).trim(),
        "1001"
    );
    let used = json(&sim.kubectl(&["get", "quota", "compute", "-o", "jsonpath={.status.used}"]));
    assert_ne!(used["limits.cpu"], "0", "{used}");

    // The rest resumes from the plan, which kept the tools' amounts.
    run(&["--yes"]);
    assert_migrated(&sim, &before);
    assert_old_database_untouched(&sim, &before);
    assert_eq!(
        plugin_pod(&sim, &copy)["spec"]["containers"][0]["resources"],
        serde_json::json!({"requests": amounts, "limits": amounts})
    );

    let level = sim.kubectl(&[
        "get",
        "namespace",
        NAMESPACE,
        "-o",
        "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}",
    ]);
    assert_eq!(level, "restricted");
    // No pod was ever refused: every pod of both charts and of the plugin was admitted.
    let refusals = sim.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "reason=FailedCreate",
        "-o",
        "name",
    ]);
    assert_eq!(refusals, "", "pods were refused");
}

fn backup_plan() -> BackupPlan {
    let db = |user: &str| DbEndpoint {
        host: format!("{RELEASE}-postgresql"),
        port: 5432,
        user: user.into(),
        database: "live_agent_production".into(),
        secret: "db".into(),
        key: "password".into(),
    };
    BackupPlan {
        claim: "backup".into(),
        dump_pod: "dump".into(),
        storage_class: None,
        size_bytes: 1 << 30,
        image: la_migrate::plan::options::DEFAULT_BACKUP_IMAGE.into(),
        jobs: 2,
        source: db("postgres"),
        resources: PodResources {
            cpu: "250m".into(),
            memory: "256Mi".into(),
        },
    }
}

#[test]
fn the_plugins_pods_are_admitted_at_restricted_and_a_bare_pod_is_not() {
    let sim = Sim::start(ReleaseSpec::custom("3.19.0"));
    sim.apply(
        "objects.yaml",
        &format!(
            "{}---
apiVersion: v1
kind: Secret
metadata: {{name: db, namespace: {NAMESPACE}}}
stringData: {{password: x}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: backup, namespace: {NAMESPACE}}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
",
            strict_namespace()
                .split("---\napiVersion: v1\nkind: LimitRange")
                .next()
                .unwrap()
        ),
    );
    let backup = backup_plan();
    {
        let pod = tools_pod(&backup, NAMESPACE, RELEASE);
        let name = pod.metadata.name.clone().unwrap();
        sim.apply(
            &format!("{name}.json"),
            &serde_json::to_string(&pod).unwrap(),
        );
        sim.kubectl(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{name}"),
            "--timeout=60s",
        ]);
        // The script's way of working: files on the backup volume and pid files in /tmp, as
        // the non-root user.
        let out = sim.kubectl(&[
            "exec",
            &name,
            "--",
            "sh",
            "-c",
            "id -u && echo x > /backup/$HOSTNAME && echo 1 > /tmp/job.pid && stat -c '%u %g' /backup/$HOSTNAME",
        ]);
        assert_eq!(out, "1001\n1001 1001\n", "{name}");
    }

    // The same pod without what the plugin adds is refused, as a real API server refuses it.
    let mut bare = serde_json::to_value(tools_pod(&backup, NAMESPACE, RELEASE)).unwrap();
    bare["metadata"]["name"] = "bare".into();
    bare["spec"]
        .as_object_mut()
        .unwrap()
        .remove("securityContext");
    bare["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("securityContext");
    let file = sim.state_dir().join("bare.json");
    std::fs::write(&file, bare.to_string()).unwrap();
    let refused = sim.kubectl_unchecked(&["apply", "-f", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains(
            "pods \"bare\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"pg-tools\""
        ),
        "{}",
        text(&refused.stderr)
    );
    // Without resources, the quota refuses it.
    let mut no_resources = serde_json::to_value(tools_pod(&backup, NAMESPACE, RELEASE)).unwrap();
    no_resources["metadata"]["name"] = "greedy".into();
    no_resources["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("resources");
    std::fs::write(&file, no_resources.to_string()).unwrap();
    let refused = sim.kubectl_unchecked(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        text(&refused.stderr).contains(
            "pods \"greedy\" is forbidden: failed quota: compute: must specify limits.cpu for: pg-tools; limits.memory for: pg-tools; requests.cpu for: pg-tools; requests.memory for: pg-tools"
        ),
        "{}",
        text(&refused.stderr)
    );
}

/// A ResourceQuota `pods` of `pods` pods.
fn pod_quota(sim: &Sim, pods: usize) {
    sim.apply(
        "quota.yaml",
        &format!("apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: pods}}\nspec: {{hard: {{pods: '{pods}'}}}}\n"),
    );
}

#[test]
fn a_plugin_pod_the_quota_has_no_room_for_stops_the_run_before_the_app_stops_and_the_rerun_resumes()
{
    let (sim, before) = Sim::with_seeded_release("2MB");
    let pods = sim.kubectl(&["get", "pods", "-o", "name"]).lines().count();
    let args = migrate_args(&["--yes"]);
    let refused = |step: &str, pod: &str, limit: usize| {
        let out = sim.run_plugin(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(8), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "step {step} failed: cannot create pod {NAMESPACE}/{pod}: refused by the cluster's admission: pods \"{pod}\" is forbidden: exceeded quota: pods, requested: pods=1, used: pods={limit}, limited: pods={limit}"
            )) && stderr.contains("raise the quota or free room"),
            "{stderr}"
        );
        // The app still runs: nothing was stopped for a copy that could not start.
        assert_eq!(sim.replicas(), before.replicas);
        stderr
    };
    // No room for PostgreSQL 15 beside PostgreSQL 11.
    pod_quota(&sim, pods);
    refused(
        "prepare.new-database",
        &format!("la-migrate-{RELEASE}-postgresql"),
        pods,
    );
    // Room for PostgreSQL 15, none for the copy pod: the rerun takes up at PostgreSQL 15.
    pod_quota(&sim, pods + 1);
    let stderr = refused(
        "prepare.copy-pod",
        &format!("la-migrate-{RELEASE}-copy"),
        pods + 1,
    );
    assert!(
        stderr.contains("[prepare.save-values] Save the release's values and their 4.44 translation in the cluster (done earlier)")
            && stderr.contains("✓ [prepare.new-database] PostgreSQL 15 ready"),
        "{stderr}"
    );
    sim.wait_pod_ready(&format!("la-migrate-{RELEASE}-postgresql"));

    sim.kubectl(&["delete", "quota", "pods"]);
    let out = sim.run_plugin(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_migrated(&sim, &before);
}
