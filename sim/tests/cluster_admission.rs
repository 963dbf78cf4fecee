//! Acceptance: pods admitted as a real API server admits them, through kubectl: Pod Security
//! levels from the namespace label, and compute ResourceQuotas, for pods created directly and
//! for those a controller creates from a template.

mod cluster_support;

use std::process::Output;
use std::time::Duration;

use cluster_support::{kubectl, SimProcess};

fn apply(sim: &SimProcess, yaml: &str) -> Output {
    sim.run_as(
        &sim.kubeconfig,
        &kubectl(),
        &["apply", "-n", "apps", "-f", "-"],
        Some(yaml),
    )
}

/// Waits until quota `compute` counts `want` of `limits.memory`.
fn wait_for_memory_limits_used(sim: &SimProcess, want: &str) {
    sim.wait_for(
        &[
            "get",
            "quota",
            "compute",
            "-n",
            "apps",
            "-o",
            "jsonpath={.status.used.limits\\.memory}",
        ],
        &format!("quota compute to count limits.memory={want}"),
        Duration::from_secs(30),
        |t| t == want,
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

const BARE_POD: &str = "
apiVersion: v1
kind: Pod
metadata: {name: bare}
spec:
  containers: [{name: c, image: busybox}]
";

const HARDENED_POD: &str = "
apiVersion: v1
kind: Pod
metadata: {name: hardened}
spec:
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 1001
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: c
    image: busybox
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
    resources:
      requests: {cpu: 100m, memory: 64Mi}
      limits: {cpu: 500m, memory: 128Mi}
";

#[test]
fn a_restricted_namespace_refuses_a_bare_pod_directly_and_from_a_deployment() {
    let sim = SimProcess::start_without_runtime();
    sim.kubectl(&["create", "namespace", "apps"]);
    // No label: every pod is admitted.
    let out = apply(&sim, BARE_POD);
    assert!(out.status.success(), "{}", stderr(&out));
    sim.kubectl(&["delete", "pod", "bare", "-n", "apps", "--wait=false"]);
    sim.kubectl(&[
        "label",
        "namespace",
        "apps",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    let refused = apply(&sim, BARE_POD);
    assert!(!refused.status.success());
    assert_eq!(
        stderr(&refused),
        "Error from server (Forbidden): error when creating \"STDIN\": pods \"bare\" is forbidden: \
         violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"c\" must set \
         securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"c\" must set \
         securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"c\" must set \
         securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must set \
         securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
    let out = apply(&sim, HARDENED_POD);
    assert!(out.status.success(), "{}", stderr(&out));

    // The Deployment is admitted; its pods are not, and the refusal is an event on the
    // ReplicaSet.
    let out = apply(
        &sim,
        "
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: nginx}]
",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // kubectl shows the API server's warning that the pods will be refused.
    assert!(
        stderr(&out).starts_with(
            "Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false)"
        ),
        "{}",
        stderr(&out)
    );
    let events = sim.wait_for(
        &[
            "get",
            "events",
            "-n",
            "apps",
            "--field-selector",
            "reason=FailedCreate",
            "-o",
            "jsonpath={range .items[*]}{.involvedObject.kind} {.count} {.message}{\"\\n\"}{end}",
        ],
        "a FailedCreate event counted at least twice",
        Duration::from_secs(20),
        |t| {
            t.lines()
                .any(|l| l.split(' ').nth(1).is_some_and(|n| n != "1"))
        },
    );
    assert!(
        events.starts_with("ReplicaSet ")
            && events.contains(" Error creating: pods \"web-")
            && events.contains("is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"nginx\""),
        "{events}"
    );
    let pods = sim.kubectl(&["get", "pods", "-n", "apps", "-o", "name"]);
    assert_eq!(pods.trim(), "pod/hardened");

    // At baseline the same pods are admitted.
    sim.kubectl(&[
        "label",
        "--overwrite",
        "namespace",
        "apps",
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
    sim.wait_for(
        &[
            "get",
            "deployment",
            "web",
            "-n",
            "apps",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
        "the Deployment's pods, once the level allows them",
        Duration::from_secs(30),
        |t| t == "2",
    );
}

#[test]
fn a_compute_quota_requires_requests_and_limits_and_refuses_what_exceeds_it() {
    let sim = SimProcess::start_without_runtime();
    sim.kubectl(&["create", "namespace", "apps"]);
    let out = apply(
        &sim,
        "
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute}
spec:
  hard: {requests.cpu: '1', requests.memory: 256Mi, limits.cpu: '1', limits.memory: 256Mi}
",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let refused = apply(&sim, BARE_POD);
    assert_eq!(
        stderr(&refused),
        "Error from server (Forbidden): error when creating \"STDIN\": pods \"bare\" is forbidden: failed quota: \
         compute: must specify limits.cpu for: c; limits.memory for: c; requests.cpu for: c; requests.memory for: c"
    );
    let out = apply(&sim, HARDENED_POD);
    assert!(out.status.success(), "{}", stderr(&out));
    sim.wait_for(
        &["get", "quota", "compute", "-n", "apps", "-o", "jsonpath={.status.used}"],
        "the quota's usage",
        Duration::from_secs(10),
        |t| {
            t == r#"{"limits.cpu":"500m","limits.memory":"128Mi","requests.cpu":"100m","requests.memory":"64Mi"}"#
        },
    );
    let second = HARDENED_POD
        .replace("name: hardened", "name: second")
        .replace("cpu: 500m, memory: 128Mi", "cpu: 600m, memory: 128Mi");
    assert_eq!(
        stderr(&apply(&sim, &second)),
        "Error from server (Forbidden): error when creating \"STDIN\": pods \"second\" is forbidden: exceeded quota: \
         compute, requested: limits.cpu=600m, used: limits.cpu=500m, limited: limits.cpu=1"
    );
    // A limit alone is also the request (the API server's defaulting), and fits.
    let third = HARDENED_POD
        .replace("name: hardened", "name: third")
        .replace("      requests: {cpu: 100m, memory: 64Mi}\n", "");
    let out = apply(&sim, &third);
    assert!(out.status.success(), "{}", stderr(&out));
    let qos = sim.kubectl(&[
        "get",
        "pod",
        "third",
        "-n",
        "apps",
        "-o",
        "jsonpath={.status.qosClass}",
    ]);
    assert_eq!(qos, "Guaranteed");
    wait_for_memory_limits_used(&sim, "256Mi");
    // With a LimitRange, a container declaring nothing gets its defaults and is admitted
    // (once there is room again).
    sim.kubectl(&["delete", "pod", "third", "-n", "apps"]);
    wait_for_memory_limits_used(&sim, "128Mi");
    let out = apply(
        &sim,
        "
apiVersion: v1
kind: LimitRange
metadata: {name: defaults}
spec:
  limits: [{type: Container, default: {cpu: 100m, memory: 32Mi}}]
",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = apply(&sim, BARE_POD);
    assert!(out.status.success(), "{}", stderr(&out));
    let set = sim.kubectl(&[
        "get",
        "pod",
        "bare",
        "-n",
        "apps",
        "-o",
        "jsonpath={.metadata.annotations.kubernetes\\.io/limit-ranger} {.spec.containers[0].resources.requests.cpu} {.status.qosClass}",
    ]);
    assert_eq!(
        set,
        "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c 100m Guaranteed"
    );
}

fn volume_pod(name: &str, security: &str) -> String {
    format!(
        "
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  securityContext: {security}
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'trap \"exit 0\" TERM; while :; do sleep 1; done']
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: data}}
"
    )
}

#[test]
fn a_pod_runs_as_its_run_as_user_and_writes_its_volume_through_its_fs_group() {
    let sim = SimProcess::start_with_runtime();
    sim.kubectl(&["create", "namespace", "apps"]);
    let claim = "
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
";
    let out = apply(&sim, claim);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = apply(
        &sim,
        &volume_pod(
            "owner",
            "{runAsUser: 1001, runAsNonRoot: true, fsGroup: 2000}",
        ),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    sim.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/owner",
        "-n",
        "apps",
        "--timeout=60s",
    ]);
    let exec = |pod: &str, script: &str| {
        sim.run(
            &kubectl(),
            &["exec", "-n", "apps", pod, "--", "sh", "-c", script],
        )
    };
    let id = exec("owner", "id -u; id -g; id -G");
    assert_eq!(
        String::from_utf8_lossy(&id.stdout),
        "1001\n0\n0 2000\n",
        "{}",
        stderr(&id)
    );
    let wrote = exec(
        "owner",
        "mkdir /data/dir && echo x > /data/dir/f && stat -c '%u %g' /data/dir/f && stat -c '%a' /data/dir",
    );
    assert_eq!(
        String::from_utf8_lossy(&wrote.stdout),
        "1001 2000\n2755\n",
        "{}",
        stderr(&wrote)
    );

    // Without an fsGroup the volume stays root's: a non-root user cannot write it.
    let out = apply(&sim, &volume_pod("stranger", "{runAsUser: 1002}"));
    assert!(out.status.success(), "{}", stderr(&out));
    sim.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/stranger",
        "-n",
        "apps",
        "--timeout=60s",
    ]);
    let refused = exec("stranger", "touch /data/g");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("Permission denied"),
        "{}",
        stderr(&refused)
    );

    // runAsNonRoot with an image that runs as root: the kubelet refuses to start it.
    let out = apply(&sim, &volume_pod("rooted", "{runAsNonRoot: true}"));
    assert!(out.status.success(), "{}", stderr(&out));
    let waiting = sim.wait_for(
        &[
            "get",
            "pod",
            "rooted",
            "-n",
            "apps",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason}: {.status.containerStatuses[0].state.waiting.message}",
        ],
        "the kubelet to refuse a root container",
        Duration::from_secs(30),
        |t| t.starts_with("CreateContainerConfigError"),
    );
    assert!(
        waiting
            .contains("container has runAsNonRoot and image will run as root (pod: \"rooted_apps("),
        "{waiting}"
    );
}
