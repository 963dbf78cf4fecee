//! The migration where the cluster is strict: a namespace that enforces Pod Security
//! `restricted` and whose ResourceQuota requires cpu and memory requests and limits. The
//! chart's pods get a restricted security context and resources from the release's values
//! (a LimitRange gives defaults to the migration Job's containers, to which charts 4.43.1 and
//! 4.44.0 give none); the plugin's pods bring their own.

mod common;

use common::sim::{assert_migrated, chart, text, ReleaseSpec, Sim, NAMESPACE, RELEASE};
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
    let target = chart("4.44.0");
    let out = sim.run_plugin(&[
        "4.44",
        "--chart",
        target.to_str().unwrap(),
        "--tools-cpu",
        "300m",
        "--tools-memory",
        "384Mi",
        "--yes",
    ]);
    assert!(
        out.status.success(),
        "la-migrate 4.44 failed ({}):\n{}\n{}\nevents:\n{}",
        out.status,
        text(&out.stderr),
        text(&out.stdout),
        sim.kubectl(&["get", "events", "--field-selector", "reason=FailedCreate"])
    );
    assert_migrated(&sim, &before);

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
    // The restore pod carries the resources asked for, not the LimitRange's defaults, and
    // runs as the non-root user.
    let pod = json(&sim.kubectl(&[
        "get",
        "pod",
        &format!("la-migrate-{RELEASE}-restore"),
        "-o",
        "json",
    ]));
    let amounts = json(r#"{"cpu": "300m", "memory": "384Mi"}"#);
    assert_eq!(
        pod["spec"]["containers"][0]["resources"],
        serde_json::json!({"requests": amounts, "limits": amounts})
    );
    assert!(
        pod.pointer("/metadata/annotations/kubernetes.io~1limit-ranger")
            .is_none(),
        "{pod}"
    );
    let uid = sim.kubectl(&[
        "exec",
        &format!("la-migrate-{RELEASE}-restore"),
        "--",
        "id",
        "-u",
    ]);
    assert_eq!(uid.trim(), "1001");
    let used = json(&sim.kubectl(&["get", "quota", "compute", "-o", "jsonpath={.status.used}"]));
    assert_ne!(used["limits.cpu"], "0", "{used}");
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
    let objects = sim.state_dir().join("objects.yaml");
    std::fs::write(
        &objects,
        format!(
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
    )
    .unwrap();
    sim.kubectl(&["apply", "-f", objects.to_str().unwrap()]);
    let backup = backup_plan();
    {
        let pod = tools_pod(&backup, NAMESPACE, RELEASE);
        let name = pod.metadata.name.clone().unwrap();
        let file = sim.state_dir().join(format!("{name}.json"));
        std::fs::write(&file, serde_json::to_string(&pod).unwrap()).unwrap();
        sim.kubectl(&["apply", "-f", file.to_str().unwrap()]);
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

#[test]
fn a_dump_pod_the_quota_has_no_room_for_stops_the_run_before_the_app_stops_and_the_rerun_resumes() {
    let (sim, before) = Sim::with_release(ReleaseSpec {
        seed_size: "2MB",
        ..ReleaseSpec::custom("3.19.0")
    });
    let pods = sim.kubectl(&["get", "pods", "-o", "name"]).lines().count();
    let quota = sim.state_dir().join("quota.yaml");
    std::fs::write(
        &quota,
        format!("apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: pods}}\nspec: {{hard: {{pods: '{pods}'}}}}\n"),
    )
    .unwrap();
    sim.kubectl(&["apply", "-f", quota.to_str().unwrap()]);
    let target = chart("4.44.0");
    let args = ["4.44", "--chart", target.to_str().unwrap(), "--yes"];
    let out = sim.run_plugin(&args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "step prepare.backup-volume failed: cannot create pod {NAMESPACE}/la-migrate-{RELEASE}-dump: refused by the cluster's admission: pods \"la-migrate-{RELEASE}-dump\" is forbidden: exceeded quota: pods, requested: pods=1, used: pods={pods}, limited: pods={pods}"
        )) && stderr.contains("raise the quota or free room"),
        "{stderr}"
    );
    // The app still runs: nothing was stopped for a backup that could not start.
    assert_eq!(sim.replicas(), before.replicas);

    sim.kubectl(&["delete", "quota", "pods"]);
    let out = sim.run_plugin(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_migrated(&sim, &before);
}
