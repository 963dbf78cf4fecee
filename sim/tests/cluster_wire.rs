//! The wire format, spoken directly (HTTPS with the kubeconfig's CA and token, JSON bodies,
//! chunked watch streams, exec WebSockets), where kubectl and helm do not go: exec over
//! `v4.channel.k8s.io` alone (kube-rs), conflicts and their Status objects, resumed and expired
//! watches, deletion propagation, a failing Job, and in-pod DNS across namespaces.

mod cluster_support;

use std::time::{Duration, Instant};

use cluster_support::api::{read_to_close, send, Api};
use cluster_support::SimProcess;
use serde_json::{json, Value};

const NS: &str = "/api/v1/namespaces/default";

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn create(api: &Api, collection: &str, object: Value) -> Value {
    let (code, body) = api.request("POST", collection, Some(&object));
    assert_eq!(code, 201, "{body}");
    body
}

/// A busybox pod running `command` (a real process with the runtime).
fn busybox(name: &str, labels: Value, command: &[&str]) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": command}]},
    })
}

fn wait_ready(api: &Api, pod: &str) -> Value {
    let mut last = Value::Null;
    wait_until(
        &format!("pod {pod} to be Ready"),
        Duration::from_secs(30),
        || {
            last = api.request("GET", pod, None).1;
            last.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        },
    );
    last
}

fn rv(object: &Value) -> String {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

fn exec_path(pod: &str, command: &[&str], options: &str) -> String {
    let command: String = command
        .iter()
        .map(|c| {
            let encoded: String = c
                .bytes()
                .map(|b| match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("command={encoded}&")
        })
        .collect();
    format!("{NS}/pods/{pod}/exec?{command}{options}")
}

#[test]
fn exec_over_a_websocket_offering_only_v4_streams_each_channel_and_resizes_a_tty() {
    let sim = SimProcess::start_with_runtime();
    let api = Api::new(&sim.kubeconfig);
    create(
        &api,
        &format!("{NS}/pods"),
        busybox("shell", json!({}), &["sleep", "3600"]),
    );
    wait_ready(&api, &format!("{NS}/pods/shell"));

    // Pipes: stdin in, stdout and stderr apart, the exit code in the closing Status.
    let script = "read line; echo out:$line; echo err >&2; exit 3";
    let (mut ws, protocol) = api.exec(
        &exec_path(
            "shell",
            &["sh", "-c", script],
            "stdin=true&stdout=true&stderr=true",
        ),
        &["v4.channel.k8s.io"],
    );
    assert_eq!(protocol, "v4.channel.k8s.io");
    send(&mut ws, 0, b"hello\n");
    let out = read_to_close(&mut ws);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out:hello\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(
        out.status,
        Some(json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command [sh -c {script}], exit code 3"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
        }))
    );

    // A terminal: the size sent on the resize channel is the one the command sees.
    let (mut ws, _) = api.exec(
        &exec_path(
            "shell",
            &["sh", "-c", "read go; stty size"],
            "stdin=true&stdout=true&tty=true",
        ),
        &["v4.channel.k8s.io"],
    );
    send(&mut ws, 4, br#"{"Width":123,"Height":45}"#);
    send(&mut ws, 0, b"go\n");
    let out = read_to_close(&mut ws);
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("45 123\r\n"), "{screen:?}");
    assert!(out.stderr.is_empty(), "a tty has no separate stderr");
    assert_eq!(
        out.status,
        Some(json!({"metadata": {}, "status": "Success"}))
    );
}

#[test]
fn a_stale_update_is_a_409_conflict_and_a_second_create_a_409_already_exists() {
    let sim = SimProcess::start_without_runtime();
    let api = Api::new(&sim.kubeconfig);
    let cm = |value: &str, rv: Option<&str>| {
        let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": value}});
        if let Some(rv) = rv {
            o["metadata"]["resourceVersion"] = json!(rv);
        }
        o
    };
    let created = create(&api, &format!("{NS}/configmaps"), cm("a", None));
    let first = rv(&created);
    let path = format!("{NS}/configmaps/settings");
    let (code, updated) = api.request("PUT", &path, Some(&cm("b", Some(&first))));
    assert_eq!(code, 200, "{updated}");
    assert_ne!(rv(&updated), first);

    // The Status a real server sends for a 409 on this ConfigMap.
    let refused = |reason: &str, message: &str| {
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason,
            "details": {"name": "settings", "kind": "configmaps"}, "code": 409,
        })
    };
    let (code, status) = api.request("PUT", &path, Some(&cm("c", Some(&first))));
    assert_eq!(code, 409);
    assert_eq!(
        status,
        refused("Conflict", "Operation cannot be fulfilled on configmaps \"settings\": the object has been modified; please apply your changes to the latest version and try again")
    );
    assert_eq!(api.request("GET", &path, None).1["data"]["mode"], "b");

    let (code, status) = api.request("POST", &format!("{NS}/configmaps"), Some(&cm("d", None)));
    assert_eq!(code, 409);
    assert_eq!(
        status,
        refused("AlreadyExists", "configmaps \"settings\" already exists")
    );
    // A grouped resource names its group.
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "busybox"}]}}},
    });
    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    create(&api, deployments, deployment.clone());
    let (code, status) = api.request("POST", deployments, Some(&deployment));
    assert_eq!(code, 409);
    assert_eq!(status["message"], "deployments.apps \"web\" already exists");
    assert_eq!(
        status["details"],
        json!({"name": "web", "group": "apps", "kind": "deployments"})
    );
}

#[test]
fn a_watch_resumes_after_a_resource_version_and_a_too_old_one_gets_410_expired() {
    let sim = SimProcess::start_with(&["--no-runtime", "--watch-cache-size", "20"]);
    let api = Api::new(&sim.kubeconfig);
    let configmaps = format!("{NS}/configmaps");
    let cm = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": "1"}});
    let from = rv(&create(&api, &configmaps, cm("first")));
    let (code, _) = api.request(
        "PATCH",
        &format!("{configmaps}/first"),
        Some(&json!({"data": {"v": "2"}})),
    );
    assert_eq!(code, 200);
    create(&api, &configmaps, cm("second"));
    let (code, _) = api.request("DELETE", &format!("{configmaps}/first"), None);
    assert_eq!(code, 200);

    // Everything after `from`, in order, and nothing before it.
    let watch = format!("{configmaps}?watch=true&resourceVersion={from}&timeoutSeconds=1");
    let (code, events) = api.watch(&watch);
    assert_eq!(code, 200);
    let seen: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                e["object"]["data"]["v"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let expected = [
        ("MODIFIED", "first", "2"),
        ("ADDED", "second", "1"),
        ("DELETED", "first", "2"),
    ]
    .map(|(t, n, v)| (t.to_string(), n.to_string(), v.to_string()));
    assert_eq!(seen, expected);
    let versions: Vec<u64> = events
        .iter()
        .map(|e| rv(&e["object"]).parse().unwrap())
        .collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]) && versions[0] > from.parse().unwrap(),
        "{versions:?}"
    );

    // More changes than the watch cache keeps: `from` is too old now. The real server answers
    // 200 and a single ERROR event with the Expired Status, which clients take as "list again".
    for i in 0..25 {
        create(&api, &configmaps, cm(&format!("filler-{i}")));
    }
    let (code, events) = api.watch(&watch);
    assert_eq!(code, 200);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    let status = &events[0]["object"];
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("too old resource version: {from} (")),
        "{message}"
    );
    assert_eq!(
        status,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": "Expired", "code": 410})
    );
}

/// The ReplicaSet of a Deployment, once it has a pod.
fn replicaset_with_a_pod(api: &Api, deployment: &Value) -> (String, String) {
    let uid = deployment["metadata"]["uid"].as_str().unwrap().to_string();
    let owned_by = |o: &Value, uid: &str| {
        o["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| r["uid"] == uid))
    };
    let mut found = None;
    wait_until("a ReplicaSet with a pod", Duration::from_secs(30), || {
        let rss = api
            .request("GET", "/apis/apps/v1/namespaces/default/replicasets", None)
            .1;
        let pods = api.request("GET", &format!("{NS}/pods"), None).1;
        found = rss["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|rs| owned_by(rs, &uid))
            .and_then(|rs| {
                let rs_uid = rs["metadata"]["uid"].as_str().unwrap();
                let pod = pods["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| owned_by(p, rs_uid))?;
                Some((
                    rs["metadata"]["name"].as_str().unwrap().to_string(),
                    pod["metadata"]["name"].as_str().unwrap().to_string(),
                ))
            });
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn deleting_in_the_foreground_removes_dependents_first_and_orphaning_keeps_them() {
    let sim = SimProcess::start_without_runtime();
    let api = Api::new(&sim.kubeconfig);
    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    let deployment = |name: &str| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": "busybox"}]}}},
        })
    };
    let gone = |path: &str| api.request("GET", path, None).0 == 404;

    // Orphan: the owner is held by the `orphan` finalizer until its dependents are freed.
    let kept = create(&api, deployments, deployment("kept"));
    let (kept_rs, kept_pod) = replicaset_with_a_pod(&api, &kept);
    let (code, pending) = api.request(
        "DELETE",
        &format!("{deployments}/kept"),
        Some(&json!({"propagationPolicy": "Orphan"})),
    );
    assert_eq!(code, 200, "{pending}");
    assert_eq!(pending["metadata"]["finalizers"], json!(["orphan"]));
    assert!(pending["metadata"]["deletionTimestamp"].is_string());
    wait_until("the orphaning owner to go", Duration::from_secs(30), || {
        gone(&format!("{deployments}/kept"))
    });
    let (code, rs) = api.request(
        "GET",
        &format!("/apis/apps/v1/namespaces/default/replicasets/{kept_rs}"),
        None,
    );
    assert_eq!(code, 200, "the orphaned ReplicaSet was deleted");
    assert!(rs["metadata"].get("ownerReferences").is_none(), "{rs}");
    assert!(rs["metadata"].get("deletionTimestamp").is_none(), "{rs}");
    assert_eq!(
        api.request("GET", &format!("{NS}/pods/{kept_pod}"), None).0,
        200
    );

    // Foreground: dependents go first, the owner last.
    let dropped = create(&api, deployments, deployment("dropped"));
    let (dropped_rs, dropped_pod) = replicaset_with_a_pod(&api, &dropped);
    let before = api.request("GET", &format!("{NS}/configmaps"), None).1["metadata"]
        ["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, pending) = api.request(
        "DELETE",
        &format!("{deployments}/dropped"),
        Some(&json!({"propagationPolicy": "Foreground"})),
    );
    assert_eq!(code, 200, "{pending}");
    assert_eq!(
        pending["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    wait_until("the owner to go", Duration::from_secs(30), || {
        gone(&format!("{deployments}/dropped"))
    });
    assert!(gone(&format!(
        "/apis/apps/v1/namespaces/default/replicasets/{dropped_rs}"
    )));
    assert!(gone(&format!("{NS}/pods/{dropped_pod}")));
    // The order, from the watch history: the ReplicaSet's deletion precedes the Deployment's.
    let deleted_at = |collection: &str, name: &str| -> u64 {
        let (_, events) = api.watch(&format!(
            "{collection}?watch=true&resourceVersion={before}&timeoutSeconds=1"
        ));
        let event = events
            .iter()
            .find(|e| e["type"] == "DELETED" && e["object"]["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no DELETED event for {name}: {events:?}"));
        rv(&event["object"]).parse().unwrap()
    };
    assert!(
        deleted_at("/apis/apps/v1/namespaces/default/replicasets", &dropped_rs)
            < deleted_at(deployments, "dropped")
    );
}

#[test]
fn a_job_failing_past_its_backoff_limit_shows_the_failed_condition_and_keeps_its_pods() {
    let sim = SimProcess::start_with_runtime();
    let api = Api::new(&sim.kubeconfig);
    let jobs = "/apis/batch/v1/namespaces/default/jobs";
    create(
        &api,
        jobs,
        json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
            "spec": {"backoffLimit": 1, "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "migrate", "image": "busybox:1.36",
                                "command": ["sh", "-c", "echo cannot migrate; exit 3"]}]}}},
        }),
    );
    let mut job = Value::Null;
    wait_until("the Job to fail", Duration::from_secs(60), || {
        job = api.request("GET", &format!("{jobs}/migrate"), None).1;
        job.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Failed"))
    });
    let status = &job["status"];
    assert_eq!(status["failed"], 2, "{status}");
    assert!(status.get("active").is_none(), "{status}");
    assert!(status.get("completionTime").is_none(), "{status}");
    let conditions: Vec<(&str, &str, &str, &str)> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
                c["reason"].as_str().unwrap(),
                c["message"].as_str().unwrap(),
            )
        })
        .collect();
    let failed = (
        "True",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    );
    assert_eq!(
        conditions,
        [
            ("FailureTarget", failed.0, failed.1, failed.2),
            ("Failed", failed.0, failed.1, failed.2)
        ]
    );
    // Its pods stay, failed with the command's exit code and output.
    let pods = api
        .request(
            "GET",
            &format!("{NS}/pods?labelSelector=job-name%3Dmigrate"),
            None,
        )
        .1;
    let pods = pods["items"].as_array().unwrap();
    assert_eq!(pods.len(), 2);
    for pod in pods {
        assert_eq!(pod["status"]["phase"], "Failed", "{pod}");
        assert_eq!(
            pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            3
        );
    }
    let name = pods[0]["metadata"]["name"].as_str().unwrap();
    let (code, _) = api.request("GET", &format!("{NS}/pods/{name}"), None);
    assert_eq!(code, 200);
    let log = sim.kubectl(&["logs", name]);
    assert_eq!(log, "cannot migrate\n");
}

#[test]
fn commands_in_pods_reach_services_of_other_namespaces_by_their_qualified_names() {
    let sim = SimProcess::start_with_runtime();
    let api = Api::new(&sim.kubeconfig);
    for ns in ["shop", "tools"] {
        create(
            &api,
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        );
    }
    create(
        &api,
        "/api/v1/namespaces/shop/pods",
        busybox("db-0", json!({"app": "db"}), &["sleep", "3600"]),
    );
    create(
        &api,
        "/api/v1/namespaces/shop/services",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
               "spec": {"selector": {"app": "db"}, "ports": [{"port": 5432}]}}),
    );
    create(
        &api,
        "/api/v1/namespaces/tools/pods",
        busybox("client", json!({}), &["sleep", "3600"]),
    );
    let db = wait_ready(&api, "/api/v1/namespaces/shop/pods/db-0");
    let ip = db["status"]["podIP"].as_str().unwrap().to_string();
    wait_ready(&api, "/api/v1/namespaces/tools/pods/client");
    let resolve = |ns: &str, pod: &str, name: &str| {
        let out = sim.run(
            &cluster_support::kubectl(),
            &["exec", "-n", ns, pod, "--", "getent", "hosts", name],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let mut answer = None;
    wait_until("the Service to resolve", Duration::from_secs(30), || {
        answer = resolve("tools", "client", "db.shop");
        answer.is_some()
    });
    assert_eq!(answer.unwrap().split_whitespace().next(), Some(ip.as_str()));
    let full = resolve("tools", "client", "db.shop.svc.cluster.local").expect("FQDN");
    assert_eq!(
        full.split_whitespace().collect::<Vec<_>>(),
        [ip.as_str(), "db.shop.svc.cluster.local"]
    );
    // The short name is the Service's own namespace's only.
    assert_eq!(resolve("tools", "client", "db"), None);
    let short = resolve("shop", "db-0", "db").expect("short name in its namespace");
    assert_eq!(short.split_whitespace().next(), Some(ip.as_str()));
}
