//! Pods with their own network, through kubectl: inside a pod `localhost` is the pod (Redis
//! answers `redis-cli PING` without `-h`, PostgreSQL `psql -h 127.0.0.1`), two pods serve one
//! port on all their addresses, a pod reaches each by its Service name, the host reaches pod
//! addresses over the sim's bridge (not its loopback), and a pod's interface goes with the
//! pod, the bridge with the sim.

mod cluster_support;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cluster_support::{kubectl, SimProcess};

/// Two servers on port 7000 (`redis-server` on every address, as a container's server
/// listens), a Service for each, a client, the chart's Redis without a password and a Bitnami
/// PostgreSQL 15.
const OBJECTS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: alpha, labels: {app: alpha}}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: [redis-server, --port, "7000", --protected-mode, "no", --save, "", --appendonly, "no"]
---
apiVersion: v1
kind: Pod
metadata: {name: beta, labels: {app: beta}}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: [redis-server, --port, "7000", --protected-mode, "no", --save, "", --appendonly, "no"]
---
apiVersion: v1
kind: Service
metadata: {name: alpha}
spec: {selector: {app: alpha}, ports: [{port: 7000}]}
---
apiVersion: v1
kind: Service
metadata: {name: beta}
spec: {selector: {app: beta}, ports: [{port: 7000}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers:
  - {name: main, image: "busybox:1.36", command: [sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: redis}
spec:
  containers:
  - name: redis
    image: docker.io/bitnami/redis:6.2.6-debian-10-r97
    env: [{name: ALLOW_EMPTY_PASSWORD, value: "yes"}]
---
apiVersion: v1
kind: Pod
metadata: {name: db}
spec:
  containers:
  - name: postgresql
    image: docker.io/bitnami/postgresql:15.1.0-debian-11-r12
    env:
    - {name: POSTGRES_PASSWORD, value: net-test-pass}
    - {name: POSTGRES_DB, value: net_test}
    volumeMounts: [{name: data, mountPath: /bitnami/postgresql}]
  volumes: [{name: data, emptyDir: {}}]
"#;

const PODS: &[&str] = &["alpha", "beta", "client", "redis", "db"];

fn exec(sim: &SimProcess, pod: &str, argv: &[&str]) -> (bool, String, String) {
    let mut args = vec!["exec", pod, "--"];
    args.extend_from_slice(argv);
    let out = sim.run(&kubectl(), &args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs until the output is `want` (a server may still be starting); panics after 60 s.
fn exec_until(sim: &SimProcess, pod: &str, argv: &[&str], want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, out, err) = exec(sim, pod, argv);
        if out == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{argv:?} in {pod}: {out:?}, not {want:?}\n{err}\nsim log:\n{}",
            sim.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn pod_ip(sim: &SimProcess, pod: &str) -> Ipv4Addr {
    let ip = sim.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.podIP}"]);
    ip.parse()
        .unwrap_or_else(|e| panic!("pod {pod} has no address ({ip:?}): {e}"))
}

/// The interface the host routes `ip` through (`ip route get`).
fn route_device(ip: Ipv4Addr) -> String {
    let out = Command::new("ip")
        .args(["-o", "route", "get", &ip.to_string()])
        .output()
        .expect("ip runs (scripts/install-test-deps.sh installs iproute2)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let words: Vec<&str> = text.split_whitespace().collect();
    let dev = words.iter().position(|w| *w == "dev");
    dev.and_then(|i| words.get(i + 1))
        .unwrap_or_else(|| panic!("no device in `ip route get {ip}`: {text}"))
        .to_string()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn each_pod_has_its_own_network_and_pods_reach_each_other_by_service_name() {
    let sim = SimProcess::start_with_runtime();
    let applied = sim.run_as(
        &sim.kubeconfig,
        &kubectl(),
        &["apply", "-f", "-"],
        Some(OBJECTS),
    );
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    for pod in PODS {
        sim.wait_for(
            &[
                "get",
                "pod",
                pod,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ],
            &format!("pod {pod} to be Ready"),
            Duration::from_secs(120),
            |s| s == "True",
        );
    }

    // localhost is the pod itself.
    exec_until(&sim, "redis", &["redis-cli", "PING"], "PONG\n");
    let psql = |host: &str| {
        format!(
            "PGPASSWORD=\"$POSTGRES_PASSWORD\" psql -X -qtA -h {host} -U postgres -d net_test \
             -c 'select current_database()'"
        )
    };
    for host in ["127.0.0.1", "localhost"] {
        let (ok, out, err) = exec(&sim, "db", &["sh", "-c", &psql(host)]);
        assert!(ok, "psql -h {host} in the PostgreSQL pod: {err}");
        assert_eq!(out, "net_test\n");
    }

    // Two pods serve port 7000, each reached by its Service name, each its own server.
    for name in ["alpha", "beta"] {
        exec_until(
            &sim,
            "client",
            &["redis-cli", "-h", name, "-p", "7000", "PING"],
            "PONG\n",
        );
        let (ok, out, err) = exec(
            &sim,
            "client",
            &["redis-cli", "-h", name, "-p", "7000", "SET", "who", name],
        );
        assert!(ok && out == "OK\n", "SET through {name}: {out}{err}");
    }
    for name in ["alpha", "beta"] {
        let (_, out, _) = exec(
            &sim,
            "client",
            &["redis-cli", "-h", name, "-p", "7000", "GET", "who"],
        );
        assert_eq!(out, format!("{name}\n"), "GET through the Service {name}");
        let (_, own, _) = exec(&sim, name, &["redis-cli", "-p", "7000", "GET", "who"]);
        assert_eq!(own, format!("{name}\n"), "GET on localhost in {name}");
    }

    // Pod addresses: distinct, not loopback, routed over the sim's bridge; the host reaches them.
    let ips: Vec<Ipv4Addr> = PODS.iter().map(|p| pod_ip(&sim, p)).collect();
    for (pod, ip) in PODS.iter().zip(&ips) {
        assert!(!ip.is_loopback(), "pod {pod} has the loopback address {ip}");
        assert_eq!(
            ips.iter().filter(|other| *other == ip).count(),
            1,
            "{ips:?}"
        );
    }
    let bridge = route_device(ips[0]);
    assert!(bridge.starts_with("lasim"), "routed through {bridge}");
    assert!(ips.iter().all(|ip| route_device(*ip) == bridge));
    let from_host = Command::new("redis-cli")
        .args(["-h", &ips[0].to_string(), "-p", "7000", "GET", "who"])
        .output()
        .expect("redis-cli runs");
    assert_eq!(String::from_utf8_lossy(&from_host.stdout), "alpha\n");

    // A pod's interface goes with the pod; the bridge goes with the sim.
    let veth = format!("{bridge}v{}", ips[0].octets()[3]);
    assert!(link_exists(&veth), "no interface {veth} for pod alpha");
    sim.kubectl(&["delete", "pod", "alpha", "--wait=true"]);
    wait_until(&format!("{veth} to go"), || !link_exists(&veth));
    drop(sim);
    assert!(
        !link_exists(&bridge),
        "the bridge {bridge} outlived the sim"
    );
}
