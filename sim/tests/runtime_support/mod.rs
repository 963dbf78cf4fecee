//! Shared by the `runtime_*` integration tests: a runtime in a temp state directory that is
//! shut down on drop (also on panic), pod builders, waits and process checks.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use la_sim::runtime::{
    hosts_file, log_file, ContainerSpec, ContainerState, Mount, PodSpec, Runtime, Tools,
};

pub struct Sim {
    pub runtime: Runtime,
    pub dir: tempfile::TempDir,
    /// Unique per test: pod names carry it, so leftover processes can be found
    pub tag: String,
}

impl Sim {
    pub fn new(tag: &str) -> Sim {
        let tools = Tools::discover().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = Runtime::new(dir.path(), tools).expect("runtime");
        let tag = format!("{tag}-{}", std::process::id());
        Sim { runtime, dir, tag }
    }

    pub fn state(&self) -> &Path {
        self.dir.path()
    }

    /// The `n`th pod address of the runtime's subnet (1 to 253).
    pub fn ip(&self, n: u32) -> Ipv4Addr {
        self.runtime.subnet().address(n)
    }

    /// A host directory standing for a volume.
    pub fn volume(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join("volumes").join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// Writes the namespace's hosts file as the API side would.
    pub fn hosts(&self, namespace: &str, entries: &[(Ipv4Addr, &str)]) {
        let path = hosts_file(self.state(), namespace);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut text = String::from("127.0.0.1 localhost\n");
        for (ip, name) in entries {
            text.push_str(&format!(
                "{ip} {name} {name}.{namespace} {name}.{namespace}.svc.cluster.local\n"
            ));
        }
        std::fs::write(path, text).unwrap();
    }

    pub fn pod(&self, name: &str, ip: Ipv4Addr, containers: Vec<ContainerSpec>) -> PodSpec {
        PodSpec {
            namespace: "live-agent".into(),
            name: format!("{name}-{}", self.tag),
            uid: format!("uid-{name}"),
            ip,
            hostname: String::new(),
            init_containers: vec![],
            containers,
            restart_policy: "Always".into(),
            groups: vec![],
        }
    }

    pub fn log(&self, pod: &PodSpec, container: &str) -> String {
        std::fs::read_to_string(log_file(self.state(), &pod.namespace, &pod.name, container))
            .unwrap_or_default()
    }

    /// Waits until `pred` holds for the container's state; panics with the log otherwise.
    pub fn wait_for(
        &self,
        pod: &PodSpec,
        container: &str,
        what: &str,
        pred: impl Fn(&ContainerState) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let states = self.runtime.pod_state(&pod.namespace, &pod.name);
            if let Some((_, state)) = states.iter().find(|(n, _)| n == container) {
                if pred(state) {
                    return;
                }
                if Instant::now() > deadline {
                    panic!(
                        "container {container} of {} not {what}: {state:?}\nlog:\n{}",
                        pod.name,
                        self.log(pod, container)
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_ready(&self, pod: &PodSpec, container: &str) {
        self.wait_for(pod, container, "ready", |s| {
            *s == ContainerState::Running { ready: true }
        });
    }

    /// Processes whose environment names a pod of this test.
    pub fn leftover_processes(&self) -> Vec<String> {
        let needle = format!("-{}", self.tag);
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let pid = entry.file_name().to_string_lossy().to_string();
            if !pid.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
                continue;
            };
            let hit = environ.split(|b| *b == 0).any(|kv| {
                kv.starts_with(b"HOSTNAME=") && String::from_utf8_lossy(kv).ends_with(&needle)
            });
            let zombie = std::fs::read_to_string(entry.path().join("stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(false);
            if hit && !zombie {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                found.push(format!(
                    "{pid}: {}",
                    String::from_utf8_lossy(&cmdline).replace('\0', " ")
                ));
            }
        }
        found
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.runtime.shutdown();
    }
}

pub fn container(
    name: &str,
    image: &str,
    env: &[(&str, &str)],
    mounts: &[(&Path, &str)],
) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        image: image.into(),
        command: vec![],
        args: vec![],
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        mounts: mounts
            .iter()
            .map(|(host, path)| Mount {
                host_path: host.to_path_buf(),
                container_path: path.to_string(),
                read_only: false,
            })
            .collect(),
        run_as: Default::default(),
    }
}

/// The env the Live Agent 4.43.1 chart (Bitnami postgresql 10.16.2) gives its database.
pub fn bitnami_10_env(password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BITNAMI_DEBUG", "false".into()),
        ("POSTGRESQL_PORT_NUMBER", "5432".into()),
        ("POSTGRESQL_VOLUME_DIR", "/bitnami/postgresql".into()),
        ("PGDATA", "/bitnami/postgresql/data".into()),
        ("POSTGRES_USER", "postgres".into()),
        ("POSTGRES_PASSWORD", password.into()),
        ("POSTGRES_DB", "live_agent_production".into()),
    ]
}

/// The env the Live Agent 4.44.0 chart (Bitnami postgresql 12.1.6, PostgreSQL 15) gives its
/// database.
pub fn bitnami_12_env(password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BITNAMI_DEBUG", "false".into()),
        ("POSTGRESQL_PORT_NUMBER", "5432".into()),
        ("POSTGRESQL_VOLUME_DIR", "/bitnami/postgresql".into()),
        ("PGDATA", "/bitnami/postgresql/data".into()),
        ("POSTGRES_PASSWORD", password.into()),
        ("POSTGRES_DB", "live_agent_production".into()),
        ("POSTGRESQL_ENABLE_LDAP", "no".into()),
        ("POSTGRESQL_ENABLE_TLS", "no".into()),
        ("POSTGRESQL_LOG_HOSTNAME", "false".into()),
        ("POSTGRESQL_LOG_CONNECTIONS", "false".into()),
        ("POSTGRESQL_LOG_DISCONNECTIONS", "false".into()),
        ("POSTGRESQL_PGAUDIT_LOG_CATALOG", "off".into()),
        ("POSTGRESQL_CLIENT_MIN_MESSAGES", "error".into()),
        ("POSTGRESQL_SHARED_PRELOAD_LIBRARIES", "pgaudit".into()),
    ]
}

/// Runs a PostgreSQL 15 client tool on the host, password through the environment.
pub fn psql(ip: Ipv4Addr, password: &str, db: &str, sql: &str) -> std::process::Output {
    std::process::Command::new("/usr/lib/postgresql/15/bin/psql")
        .args([
            "-X",
            "-qtA",
            "-h",
            &ip.to_string(),
            "-U",
            "postgres",
            "-d",
            db,
            "-c",
            sql,
        ])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .expect("psql runs (scripts/install-test-deps.sh installs it)")
}

/// Runs a command in a pod through `Runtime::exec` and collects its output.
pub fn exec(sim: &Sim, pod: &PodSpec, container: &str, argv: &[&str]) -> (i32, String, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use tokio::io::AsyncReadExt;
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let mut child = sim
            .runtime
            .exec(&pod.namespace, &pod.name, container, &argv, false)
            .unwrap_or_else(|e| panic!("exec {argv:?}: {e}"));
        drop(child.stdin.take());
        let mut out = String::new();
        let mut err = String::new();
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (a, b) = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        );
        a.unwrap();
        b.unwrap();
        let status = child.child.wait().await.unwrap();
        (status.code().unwrap_or(-1), out, err)
    })
}
