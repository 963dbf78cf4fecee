//! A simulated cluster for the migration tests: the real `la-sim` binary on a private state
//! directory, a Live Agent release installed from the real chart archive with real helm, a
//! seeded database and attachment files, and the test's own record of what the release held
//! before the migration. Everything started here stops on drop (also on panic).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use la_sim::seed::{self, DbSnapshot, Manifest, PgTarget, SeedOptions};
use serde_json::Value;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const PLUGIN: &str = env!("CARGO_BIN_EXE_la-migrate");
pub const NAMESPACE: &str = "live-agent";
pub const RELEASE: &str = "cognigy-live-agent";
pub const DATABASE: &str = "live_agent_production";
pub const ONBOARDING_KEY: &str = "alfred:CHATWOOT_INSTALLATION_ONBOARDING";
/// The plugin's copy pod: PostgreSQL 15 client tools, running the detached `copy` job.
pub const COPY_POD: &str = "la-migrate-cognigy-live-agent-copy";
/// The release's PostgreSQL 11 claim (chart 4.43.1).
pub const DATABASE_CLAIM: &str = "data-cognigy-live-agent-postgresql-0";

/// A real chart archive of `tests/fixtures/charts`.
pub fn chart(version: &str) -> PathBuf {
    let p = Path::new(ROOT)
        .join("tests/fixtures/charts")
        .join(format!("live-agent-{version}.tgz"));
    assert!(p.is_file(), "chart archive {} is missing", p.display());
    p
}

/// A helm binary of the test dependencies; a missing one fails with the fix.
pub fn helm(version: &str) -> PathBuf {
    let p = Path::new(ROOT)
        .join(".tools/helm")
        .join(version)
        .join("helm");
    assert!(
        p.is_file(),
        "helm {version} is missing at {}: run scripts/install-test-deps.sh to install the test dependencies",
        p.display()
    );
    p
}

pub fn kubectl_bin() -> PathBuf {
    let p = Path::new(ROOT).join(".tools/helm/3.19.0/kubectl");
    assert!(
        p.is_file(),
        "kubectl is missing at {}: run scripts/install-test-deps.sh to install the test dependencies",
        p.display()
    );
    p
}

fn require_tool(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: run scripts/install-test-deps.sh to install the test dependencies"
    );
}

/// The `la-sim` binary next to the plugin's, built once per test process (a no-op when
/// `cargo build`/`nextest` built the workspace already).
fn la_sim() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(PLUGIN).parent().expect("target dir");
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(other) => other.to_string(),
            None => "dev".to_string(),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "la-sim",
                "--bin",
                "la-sim",
                "--profile",
            ])
            .arg(&profile)
            .current_dir(ROOT)
            .status()
            .expect("running cargo build -p la-sim");
        assert!(status.success(), "cargo build -p la-sim failed");
        dir.join("la-sim")
    })
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// How a release is installed before the migration.
#[derive(Debug, Clone)]
pub struct ReleaseSpec {
    pub helm_version: &'static str,
    /// The operator's values file for chart 4.43.1.
    pub values: String,
    /// Objects applied before `helm install` (e.g. an existing database Secret).
    pub pre_objects: Option<String>,
    /// The database the seed fills and the snapshots read (`postgresql.postgresqlDatabase`).
    pub database: String,
    /// The role the seed and the snapshots connect as (`postgresql.postgresqlUsername`).
    pub db_user: String,
    /// The database password the seed connects with (`db_user`'s).
    pub db_password: String,
    /// The `postgres` superuser's password when `db_user` is another role
    /// (`postgresqlPostgresPassword`): the seed's extensions are created with it, as
    /// PostgreSQL 11 lets only a superuser create them.
    pub superuser_password: Option<String>,
    pub redis_password: String,
    /// `false`: PostgreSQL is external (no seed, no database pod).
    pub internal_postgres: bool,
    pub seed_size: &'static str,
}

impl ReleaseSpec {
    /// A custom values file as an operator keeps it: passwords, a Redis password, a
    /// PostgreSQL volume size and comments.
    pub fn custom(helm_version: &'static str) -> ReleaseSpec {
        ReleaseSpec {
            helm_version,
            values: "\
# Live Agent production values
postgresql:
  postgresqlPassword: pg-Secret-42
  persistence:
    size: 4Gi
redis:
  auth:
    password: redis-Secret-42
app:
  replica: 2
worker:
  replica: 1
"
            .to_string(),
            pre_objects: None,
            database: DATABASE.into(),
            db_user: "postgres".into(),
            db_password: "pg-Secret-42".into(),
            superuser_password: None,
            redis_password: "redis-Secret-42".into(),
            internal_postgres: true,
            seed_size: "8MB",
        }
    }

    /// The database password lives in a Secret the operator created (`existingSecret`).
    pub fn existing_secret(helm_version: &'static str) -> ReleaseSpec {
        ReleaseSpec {
            helm_version,
            values: "\
postgresql:
  existingSecret: live-agent-db-credentials
  existingSecretPasswordKey: postgresql-password
redis:
  auth:
    password: redis-Secret-7
"
            .to_string(),
            pre_objects: Some(format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: live-agent-db-credentials\n  namespace: {NAMESPACE}\ntype: Opaque\nstringData:\n  postgresql-password: ex1sting-Pass\n"
            )),
            database: DATABASE.into(),
            db_user: "postgres".into(),
            db_password: "ex1sting-Pass".into(),
            superuser_password: None,
            redis_password: "redis-Secret-7".into(),
            internal_postgres: true,
            seed_size: "6MB",
        }
    }

    /// The chart generates the database password (an empty `postgresqlPassword`): random,
    /// so it appears nowhere else and can be searched for; read from the Secret after the
    /// install.
    pub fn generated_password(helm_version: &'static str) -> ReleaseSpec {
        ReleaseSpec {
            helm_version,
            values: "\
postgresql:
  postgresqlPassword: \"\"
redis:
  auth:
    password: rds-Q7vX-k2Lm-91
"
            .to_string(),
            pre_objects: None,
            database: DATABASE.into(),
            db_user: "postgres".into(),
            db_password: String::new(),
            superuser_password: None,
            redis_password: "rds-Q7vX-k2Lm-91".into(),
            internal_postgres: true,
            seed_size: "3MB",
        }
    }

    /// PostgreSQL outside the cluster (a server on the host at `host`, an address pods reach):
    /// the chart's database is off, the password in an existing Secret.
    pub fn external_postgres(helm_version: &'static str, host: &str, port: u16) -> ReleaseSpec {
        ReleaseSpec {
            helm_version,
            values: format!(
                "\
postgresql:
  enabled: false
  postgresqlHost: {host}
  postgresqlPort: {port}
  existingSecret: external-db
  existingSecretPasswordKey: password
redis:
  auth:
    password: redis-Secret-9
"
            ),
            pre_objects: Some(format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: external-db\n  namespace: {NAMESPACE}\ntype: Opaque\nstringData:\n  password: ext-Secret-1\n"
            )),
            database: DATABASE.into(),
            db_user: "postgres".into(),
            db_password: "ext-Secret-1".into(),
            superuser_password: None,
            redis_password: "redis-Secret-9".into(),
            internal_postgres: false,
            seed_size: "none",
        }
    }
}

/// What the release held before the migration, recorded by the test itself.
#[derive(Debug, Clone)]
pub struct Before {
    pub db: Option<DbSnapshot>,
    pub attachments: Manifest,
    pub attachments_volume: String,
    /// The volume of PostgreSQL 11's claim ([`DATABASE_CLAIM`]), with an internal database.
    pub database_volume: Option<String>,
    pub kept_secrets: BTreeMap<String, Value>,
    pub replicas: BTreeMap<String, i64>,
}

pub struct Sim {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub spec: ReleaseSpec,
    running: bool,
}

impl Sim {
    /// Starts a sim, installs chart 4.43.1 with the spec's values and seeds it.
    pub fn with_release(spec: ReleaseSpec) -> (Sim, Before) {
        require_tool(seed::DEFAULT_PSQL);
        require_tool(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/.tools/pg11/bin/postgres"
        ));
        let mut sim = Sim::start(spec);
        sim.install();
        if sim.spec.db_password.is_empty() {
            sim.spec.db_password =
                sim.secret_value(&format!("{RELEASE}-postgresql"), "postgresql-password");
            assert!(
                !sim.spec.db_password.is_empty(),
                "the chart generated no database password"
            );
        }
        let before = sim.seed_and_record();
        (sim, before)
    }

    pub fn start(spec: ReleaseSpec) -> Sim {
        // Not under /tmp: every pod gets a private /tmp, and the state directory must stay
        // visible inside the pods.
        let dir = tempfile::Builder::new()
            .prefix("migrate-sim-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("state dir");
        let out = Command::new(la_sim())
            .args(["start", "--background", "--state-dir"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("running la-sim start");
        let mut sim = Sim {
            kubeconfig: dir.path().join("kubeconfig"),
            dir,
            spec,
            running: true,
        };
        if !out.status.success() {
            sim.running = false;
            panic!("la-sim start failed: {}", text(&out.stderr));
        }
        sim
    }

    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    fn install(&self) {
        self.install_as(RELEASE, NAMESPACE);
    }

    /// Installs chart 4.43.1 with the spec's values as `release` in `namespace` (not seeded).
    pub fn install_as(&self, release: &str, namespace: &str) {
        let values = self.state_dir().join("operator-values.yaml");
        std::fs::write(&values, &self.spec.values).unwrap();
        if let Some(objects) = &self.spec.pre_objects {
            self.kubectl(&["create", "namespace", NAMESPACE]);
            let file = self.state_dir().join("pre-objects.yaml");
            std::fs::write(&file, objects).unwrap();
            self.kubectl(&["apply", "-f", file.to_str().unwrap()]);
        }
        let started = Instant::now();
        let out = Command::new(la_sim())
            .args(["install", "--timeout-seconds", "120", "--state-dir"])
            .arg(self.state_dir())
            .args(["--release", release, "--namespace", namespace])
            .arg("--chart")
            .arg(chart("4.43.1"))
            .arg("--values")
            .arg(&values)
            .arg("--helm")
            .arg(helm(self.spec.helm_version))
            .stdin(Stdio::null())
            .output()
            .expect("running la-sim install");
        assert!(
            out.status.success(),
            "la-sim install of chart 4.43.1 failed: {}{}\npods:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            text(&self.kubectl_unchecked(&["get", "pods"]).stdout)
        );
        eprintln!(
            "installed 4.43.1 with helm {} in {:.1}s",
            self.spec.helm_version,
            started.elapsed().as_secs_f64()
        );
    }

    /// Loads the generated database and attachment files, then records [`Before`].
    fn seed_and_record(&self) -> Before {
        let attachments_volume = self.claim_volume("live-agent");
        let root = self.volume_dir(&attachments_volume);
        let db = if self.spec.internal_postgres {
            let opts = SeedOptions::new(seed::parse_size(self.spec.seed_size).unwrap(), 7);
            let target = self.database();
            let started = Instant::now();
            if let Some(password) = &self.spec.superuser_password {
                let superuser = PgTarget {
                    user: "postgres".into(),
                    ..target.clone()
                }
                .with_password(password.clone());
                superuser
                    .query(
                        "the seed's extensions",
                        "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public; \
                         CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;",
                    )
                    .expect("creating the seed's extensions as the superuser");
            }
            seed::load_into(&target, &opts).expect("seeding the database");
            seed::write_attachments(&root, &opts).expect("writing attachment files");
            eprintln!(
                "seeded {} in {:.1}s",
                self.spec.seed_size,
                started.elapsed().as_secs_f64()
            );
            Some(seed::snapshot(&target).expect("snapshot before"))
        } else {
            seed::write_attachments(&root, &SeedOptions::new(200_000, 7))
                .expect("writing attachment files");
            None
        };
        let attachments = seed::read_manifest(&root).expect("attachments manifest");
        assert!(
            !attachments.files.is_empty(),
            "no attachment file was written"
        );
        Before {
            database_volume: db.as_ref().map(|_| self.claim_volume(DATABASE_CLAIM)),
            db,
            attachments,
            attachments_volume,
            kept_secrets: self.kept_secrets(),
            replicas: self.replicas(),
        }
    }

    /// The release's database, reached at the PostgreSQL pod's address as the spec's user.
    pub fn database(&self) -> PgTarget {
        let ip = self.kubectl(&[
            "get",
            "pod",
            &format!("{RELEASE}-postgresql-0"),
            "-o",
            "jsonpath={.status.podIP}",
        ]);
        PgTarget::new(ip.trim(), 5432, &self.spec.db_user, &self.spec.database)
            .with_password(self.spec.db_password.clone())
    }

    pub fn claim_volume(&self, claim: &str) -> String {
        self.kubectl(&["get", "pvc", claim, "-o", "jsonpath={.spec.volumeName}"])
            .trim()
            .to_string()
    }

    /// The directory on disk behind a PersistentVolume.
    pub fn volume_dir(&self, volume: &str) -> PathBuf {
        let pv: Value = serde_json::from_str(&self.kubectl(&["get", "pv", volume, "-o", "json"]))
            .expect("pv json");
        for p in ["/spec/hostPath/path", "/spec/local/path"] {
            if let Some(path) = pv.pointer(p).and_then(Value::as_str) {
                return PathBuf::from(path);
            }
        }
        self.state_dir().join("volumes").join(volume)
    }

    /// One decoded value of a Secret (empty when the key is missing).
    pub fn secret_value(&self, secret: &str, key: &str) -> String {
        self.kubectl(&[
            "get",
            "secret",
            secret,
            "-o",
            &format!("go-template={{{{index .data \"{key}\" | base64decode}}}}"),
        ])
    }

    /// The data of the Secrets the chart keeps on uninstall.
    pub fn kept_secrets(&self) -> BTreeMap<String, Value> {
        [
            format!("{RELEASE}-cookies-integrity"),
            format!("{RELEASE}-cognigy-platform-app-token"),
        ]
        .into_iter()
        .map(|name| {
            let s: Value =
                serde_json::from_str(&self.kubectl(&["get", "secret", &name, "-o", "json"]))
                    .expect("secret json");
            (name, s["data"].clone())
        })
        .collect()
    }

    /// Replicas of the app and worker Deployments (either chart's names).
    pub fn replicas(&self) -> BTreeMap<String, i64> {
        let list: Value =
            serde_json::from_str(&self.kubectl(&["get", "deployments", "-o", "json"])).unwrap();
        let mut out = BTreeMap::new();
        for d in list["items"].as_array().unwrap() {
            let name = d["metadata"]["name"].as_str().unwrap();
            let role = match name.strip_prefix(RELEASE) {
                Some("") | Some("-app") => "app",
                Some("-worker") => "worker",
                Some("-odata") => "odata",
                _ => continue,
            };
            out.insert(
                role.to_string(),
                d["spec"]["replicas"].as_i64().unwrap_or(1),
            );
        }
        out
    }

    /// Runs `redis-cli` against the Redis master pod's address; the password goes through
    /// the environment, never argv.
    pub fn redis_cli(&self, command: &[&str], password: &str) -> Output {
        let ip = self.kubectl(&[
            "get",
            "pod",
            &format!("{RELEASE}-redis-master-0"),
            "-o",
            "jsonpath={.status.podIP}",
        ]);
        Command::new("redis-cli")
            .args(["-h", ip.trim(), "--no-auth-warning"])
            .args(command)
            .env("REDISCLI_AUTH", password)
            .output()
            .expect("redis-cli is missing: run scripts/install-test-deps.sh")
    }

    /// `redis-cli EXISTS key` against the Redis master pod's address.
    pub fn redis_exists(&self, key: &str, password: &str) -> bool {
        let out = self.redis_cli(&["EXISTS", key], password);
        let answer = text(&out.stdout);
        assert!(
            out.status.success() && !answer.contains("ERR") && !answer.contains("NOAUTH"),
            "redis-cli EXISTS failed: {answer}{}",
            text(&out.stderr)
        );
        answer.trim() == "1"
    }

    pub fn redis_cli_del(&self, key: &str, password: &str) {
        let out = self.redis_cli(&["DEL", key], password);
        assert_eq!(text(&out.stdout).trim(), "1", "{}", text(&out.stderr));
    }

    pub fn redis_set(&self, key: &str, password: &str) {
        let out = self.redis_cli(&["SET", key, "true"], password);
        assert_eq!(text(&out.stdout).trim(), "OK", "{}", text(&out.stderr));
    }

    pub fn kubectl_unchecked(&self, args: &[&str]) -> Output {
        // The namespace first: anything after `--` (exec) belongs to the command.
        Command::new(kubectl_bin())
            .args(["-n", NAMESPACE])
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null())
            .output()
            .expect("running kubectl")
    }

    /// kubectl in the release's namespace; panics with its output on failure.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_unchecked(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// helm (the spec's version) against this sim, in a home inside the state directory.
    pub fn helm(&self, args: &[&str]) -> String {
        let out = Command::new(helm(self.spec.helm_version))
            .args(args)
            .args(["-n", NAMESPACE])
            .envs(self.helm_home_env())
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null())
            .output()
            .expect("running helm");
        assert!(
            out.status.success(),
            "helm {} failed: {}",
            args.join(" "),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn helm_home_env(&self) -> Vec<(String, PathBuf)> {
        let h = self.state_dir().join("helm-home");
        vec![
            ("HOME".into(), h.clone()),
            ("HELM_CACHE_HOME".into(), h.join("cache")),
            ("HELM_CONFIG_HOME".into(), h.join("config")),
            ("HELM_DATA_HOME".into(), h.join("data")),
            ("HELM_PLUGINS".into(), h.join("data/plugins")),
        ]
    }

    /// Every object the migration could touch, as JSON, without fields that change on their
    /// own (status, timestamps of the pods' processes): two dumps are equal when nothing
    /// was changed through the API.
    pub fn dump_objects(&self) -> String {
        let kinds = "deployments,statefulsets,services,secrets,configmaps,persistentvolumeclaims,pods,jobs,serviceaccounts,ingresses";
        let ns = self.kubectl(&["get", kinds, "-o", "json"]);
        let pv = self.kubectl(&["get", "pv,storageclasses", "-o", "json"]);
        let mut out = String::new();
        for doc in [ns, pv] {
            let v: Value = serde_json::from_str(&doc).unwrap();
            for item in v["items"].as_array().unwrap() {
                out.push_str(&format!(
                    "{}/{} rv={} {}\n",
                    item["kind"].as_str().unwrap_or(""),
                    item["metadata"]["name"].as_str().unwrap_or(""),
                    item["metadata"]["resourceVersion"].as_str().unwrap_or(""),
                    serde_json::to_string(&item["spec"]).unwrap()
                ));
            }
        }
        out
    }

    /// Makes an identity limited to `rules` (JSON) and returns its kubeconfig.
    pub fn identity(&self, name: &str, rules: &str) -> PathBuf {
        let file = self.state_dir().join(format!("{name}-rules.json"));
        std::fs::write(&file, rules).unwrap();
        let out = Command::new(la_sim())
            .args(["identity", "--name", name, "--rules"])
            .arg(&file)
            .arg("--state-dir")
            .arg(self.state_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "la-sim identity: {}",
            text(&out.stderr)
        );
        PathBuf::from(text(&out.stdout).trim())
    }

    /// The plugin binary, run as helm runs it (`HELM_BIN`, `HELM_NAMESPACE`, `KUBECONFIG`).
    pub fn plugin(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(PLUGIN);
        cmd.args(args)
            .envs(self.helm_home_env())
            .env("HELM_BIN", helm(self.spec.helm_version))
            .env("HELM_NAMESPACE", NAMESPACE)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("NO_COLOR", "1")
            .env_remove("HELM_DEBUG")
            .current_dir(self.state_dir())
            .stdin(Stdio::null());
        cmd
    }

    /// `la-migrate 4.44 --chart <4.44.0> --yes`, which must succeed (its output shown if not).
    pub fn migrate(&self) {
        let target = chart("4.44.0");
        let out = self.run_plugin(&["4.44", "--chart", target.to_str().unwrap(), "--yes"]);
        assert!(
            out.status.success(),
            "la-migrate 4.44 failed ({}):\n{}\n{}",
            out.status,
            text(&out.stderr),
            text(&out.stdout)
        );
    }

    /// Runs `la-migrate <args>` to the end.
    pub fn run_plugin(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let out = self.plugin(args).output().expect("running la-migrate");
        eprintln!(
            "la-migrate {} -> {} in {:.1}s",
            args.join(" "),
            out.status,
            started.elapsed().as_secs_f64()
        );
        out
    }

    /// The state ConfigMap's record (`record.json`) of facts for later steps.
    pub fn state_record(&self) -> Value {
        let out = self.kubectl(&[
            "get",
            "configmap",
            &format!("la-migrate-{RELEASE}"),
            "-o",
            "jsonpath={.data.record\\.json}",
        ]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("record.json: {e}: {out}"))
    }

    /// The state ConfigMap's record of completed steps, empty when none.
    pub fn steps_done(&self) -> String {
        let out = self.kubectl_unchecked(&[
            "get",
            "configmap",
            &format!("la-migrate-{RELEASE}"),
            "-o",
            "jsonpath={.data.steps\\.json}",
        ]);
        text(&out.stdout)
    }

    /// Starts the migration to 4.44.0 (`--yes`) with its stderr piped, and returns once a
    /// stderr line containing `marker` appeared.
    pub fn plugin_until(&self, marker: &str) -> RunningPlugin {
        self.plugin_with_until(&[], marker)
    }

    /// [`Sim::plugin_until`] with more arguments for the migration.
    pub fn plugin_with_until(&self, extra: &[&str], marker: &str) -> RunningPlugin {
        let target = chart("4.44.0");
        let mut args = vec!["4.44", "--chart", target.to_str().unwrap(), "--yes"];
        args.extend_from_slice(extra);
        let mut child = self
            .plugin(&args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting la-migrate");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap_or_default();
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(marker) {
                // The rest of stderr is read in the background, so the plugin never blocks
                // on a full pipe.
                let rest = std::thread::spawn(move || {
                    lines
                        .map_while(Result::ok)
                        .map(|l| l + "\n")
                        .collect::<String>()
                });
                return RunningPlugin { child, seen, rest };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("la-migrate never printed {marker:?}:\n{seen}");
    }

    /// Starts the migration and kills it (SIGKILL, as a closed laptop or a lost node would)
    /// `delay` after a stderr line containing `marker` appears. Returns what it printed.
    /// With `job` (pod, job name), the kill waits until that detached job runs in the pod.
    pub fn kill_plugin_after(
        &self,
        marker: &str,
        delay: Duration,
        job: Option<(&str, &str)>,
    ) -> String {
        let mut running = self.plugin_until(marker);
        std::thread::sleep(delay);
        if let Some((pod, job)) = job {
            self.wait_until(
                &format!("the {job} to start in {pod}"),
                Duration::from_secs(120),
                || self.job_running(pod, job).is_ok(),
            );
        }
        let _ = running.child.kill();
        let (status, said) = running.finish();
        assert!(
            !status.success(),
            "la-migrate finished before it was killed"
        );
        eprintln!("killed after {marker:?} (+{delay:?})");
        said
    }

    /// Whether the plugin's detached job runs in `pod`: no exit marker in its directory, its
    /// process alive. `Ok` holds the KiB on the backup volume (the dump) or the copy's step.
    pub fn job_running(&self, pod: &str, job: &str) -> Result<String, String> {
        let progress = match job {
            "copy" => "echo \"step $(cat /work/step 2>/dev/null || echo starting)\"".to_string(),
            _ => "echo \"$(du -sk /backup | cut -f1) KiB on the backup volume\"".to_string(),
        };
        let dir = job_dir(job);
        let out = self.kubectl_unchecked(&[
            "exec",
            pod,
            "--",
            "sh",
            "-c",
            &format!(
                "test ! -f {dir}/{job}.exit && kill -0 \"$(cat /tmp/{job}.pid)\" && {progress}"
            ),
        ]);
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        if out.status.success() {
            Ok(said.trim().to_string())
        } else {
            Err(said)
        }
    }

    /// Right after a kill: the job still runs, so the kill provably hit it mid-way.
    pub fn assert_job_running(&self, pod: &str, job: &str) {
        match self.job_running(pod, job) {
            Ok(progress) => eprintln!("{job} running ({progress})"),
            Err(e) => panic!("the {job} in {pod} was not running: {e}"),
        }
    }

    /// `la-sim fault <args>` on this sim.
    fn fault(&self, args: &[&str]) {
        let out = Command::new(la_sim())
            .args(["fault", "--state-dir"])
            .arg(self.state_dir())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "la-sim fault {}: {}",
            args.join(" "),
            text(&out.stderr)
        );
    }

    /// Sends `signal` to `program` (and its workers) started by the detached `job` in `pod`.
    /// Fails while the program has not started yet.
    pub fn signal_job(&self, pod: &str, job: &str, program: &str, signal: &str) -> bool {
        let script = format!(
            r#"set -eu
main=$(pgrep -P "$(cat /tmp/{job}.pid)" -x {program})
for p in $main $(pgrep -P "$main" || true); do kill -{signal} "$p"; done"#
        );
        self.kubectl_unchecked(&["exec", pod, "--", "sh", "-c", &script])
            .status
            .success()
    }

    /// SIGKILLs the processes of a pod's containers; its restart policy applies.
    pub fn kill_pod_processes(&self, pod: &str) {
        self.fault(&["kill", "-n", NAMESPACE, pod]);
    }

    /// Makes the API answer `code` for `seconds` to requests whose path contains `path`.
    pub fn fail_api(&self, code: u16, seconds: u64, path: &str) {
        self.fail_api_method(code, seconds, path, "");
    }

    /// [`Sim::fail_api`] for requests of one HTTP method only (empty: all).
    pub fn fail_api_method(&self, code: u16, seconds: u64, path: &str, method: &str) {
        let (code, seconds) = (code.to_string(), seconds.to_string());
        self.fault(&[
            "api",
            "--code",
            &code,
            "--seconds",
            &seconds,
            "--path-contains",
            path,
            "--method",
            method,
        ]);
    }

    /// Runs `la-migrate <args>` on a terminal (a pty from `script`) with `input` typed on it;
    /// the exit code and everything the terminal showed.
    pub fn plugin_on_terminal(&self, args: &[&str], input: &str) -> (Option<i32>, String) {
        let line = std::iter::once(PLUGIN)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let typescript = tempfile::NamedTempFile::new_in(self.state_dir()).unwrap();
        let mut child = Command::new("script")
            .args(["-qefc", &line])
            .arg(typescript.path())
            .envs(
                self.plugin(&[])
                    .get_envs()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
            )
            .current_dir(self.state_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running la-migrate under script");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(input.as_bytes());
            // Kept open until the plugin ends: a closed terminal input ends `script`.
            let status = child.wait().unwrap();
            drop(stdin);
            let shown = text(&std::fs::read(typescript.path()).unwrap_or_default());
            (status.code(), shown)
        }
    }

    /// Waits until the pod is Ready.
    pub fn wait_pod_ready(&self, pod: &str) {
        self.wait_until(
            &format!("pod {pod} to be Ready"),
            Duration::from_secs(120),
            || {
                self.kubectl_unchecked(&[
                    "get",
                    "pod",
                    pod,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ])
                .stdout
                    == b"True"
            },
        );
    }

    /// Holds an exclusive lock on `table` of the release's PostgreSQL 11 in a session of its
    /// own until the returned guard is dropped (or the server dies): whatever reads that
    /// table waits meanwhile, as behind a long transaction of the app.
    pub fn hold_table_lock(&self, table: &str) -> HeldLock {
        let db = self.database();
        let child = Command::new(&db.psql)
            .args(["-X", "-q", "-h", &db.host, "-p", &db.port.to_string()])
            .args(["-U", &db.user, "-d", &db.database, "-v", "ON_ERROR_STOP=1"])
            .arg("-c")
            .arg(format!(
                "begin; lock table {table} in access exclusive mode; select pg_sleep(3600);"
            ))
            .env("PGPASSWORD", db.password.clone().unwrap_or_default())
            .env("PGAPPNAME", HeldLock::APPLICATION)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("psql holding a lock");
        let probe = db.clone();
        self.wait_until(
            &format!("the lock on {table}"),
            Duration::from_secs(30),
            || {
                probe
                    .query(
                        "the locks",
                        &format!(
                            "select count(*) from pg_locks where relation = '{table}'::regclass \
                             and mode = 'AccessExclusiveLock' and granted"
                        ),
                    )
                    .is_ok_and(|rows| rows.first().is_some_and(|r| r[0] == "1"))
            },
        );
        HeldLock { child, db }
    }

    /// Polls until `pred` holds, or fails after `timeout` naming `what`.
    pub fn wait_until(&self, what: &str, timeout: Duration, mut pred: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !pred() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let _ = Command::new(la_sim())
            .args(["stop", "--state-dir"])
            .arg(self.state_dir())
            .stdin(Stdio::null())
            .output();
    }
}

/// Where the plugin's detached `job` keeps its markers: the copy in the copy pod's scratch
/// directory, the dump on the backup volume.
pub fn job_dir(job: &str) -> &'static str {
    if job == "copy" {
        "/work"
    } else {
        "/backup"
    }
}

/// A migration started by [`Sim::plugin_until`].
pub struct RunningPlugin {
    pub child: std::process::Child,
    /// Stderr up to the marker line.
    pub seen: String,
    rest: std::thread::JoinHandle<String>,
}

impl RunningPlugin {
    /// Waits for the plugin to end; its exit status and everything it printed on stderr.
    pub fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("waiting for la-migrate");
        let rest = self.rest.join().unwrap_or_default();
        (status, self.seen + &rest)
    }
}

/// The session holding a lock of [`Sim::hold_table_lock`]; dropped, its server backend is
/// terminated (a backend sleeping in a query does not notice its client go) and the lock
/// with it.
pub struct HeldLock {
    child: std::process::Child,
    db: PgTarget,
}

impl HeldLock {
    const APPLICATION: &str = "la-migrate-tests-lock";
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let _ = self.db.query(
            "the lock's session",
            &format!(
                "select pg_terminate_backend(pid) from pg_stat_activity where application_name = '{}'",
                Self::APPLICATION
            ),
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The checks the issue asks for after a completed migration, made by the test itself.
pub fn assert_migrated(sim: &Sim, before: &Before) {
    assert_migrated_to(sim, before, "4.44.0");
}

/// [`assert_migrated`] for a target chart `version`.
pub fn assert_migrated_to(sim: &Sim, before: &Before, version: &str) {
    let list = sim.helm(&["list", "-o", "json"]);
    let rows: Value = serde_json::from_str(&list).unwrap();
    let row = &rows[0];
    assert_eq!(row["name"], RELEASE, "{list}");
    assert_eq!(row["status"], "deployed", "{list}");
    assert_eq!(row["chart"], format!("live-agent-{version}"), "{list}");

    if let Some(db_before) = &before.db {
        let image = sim.kubectl(&[
            "get",
            "pod",
            &format!("{RELEASE}-postgresql-0"),
            "-o",
            "jsonpath={.spec.containers[0].image}",
        ]);
        assert!(image.contains(":15."), "PostgreSQL image is {image}");
        let target = sim.database();
        let version = target
            .query("server version", "show server_version_num")
            .expect("server version");
        assert!(
            version[0][0].starts_with("15"),
            "server version {:?}",
            version
        );
        let after = seed::snapshot(&target).expect("snapshot after");
        assert_eq!(
            db_before.diff(&after),
            Vec::<String>::new(),
            "the database differs after the migration"
        );
        assert_eq!(db_before.tables, after.tables);
        assert_eq!(db_before.schema_version, after.schema_version);
    }

    assert_eq!(
        sim.claim_volume("live-agent"),
        before.attachments_volume,
        "the attachments claim is bound to another volume"
    );
    let root = sim.volume_dir(&before.attachments_volume);
    let after = seed::read_manifest(&root).expect("attachments after");
    assert_eq!(
        before.attachments.missing_or_changed(&after),
        Vec::<String>::new()
    );
    assert_eq!(before.attachments.bytes, after.bytes);

    assert_eq!(
        sim.kept_secrets(),
        before.kept_secrets,
        "kept secrets changed"
    );
    assert_eq!(sim.replicas(), before.replicas, "replicas differ");
}

/// After a migration: PostgreSQL 11's volume (the one [`DATABASE_CLAIM`] had before) still
/// exists, is Retained and bound to no claim, and PostgreSQL 11 started on its data directory
/// (a copy of it, so the check changes nothing on the volume) holds every table and sequence
/// the test recorded before the migration. A no-op for an external database.
pub fn assert_old_database_untouched(sim: &Sim, before: &Before) {
    let (Some(db_before), Some(volume)) = (&before.db, &before.database_volume) else {
        return;
    };
    let pv: Value = serde_json::from_str(&sim.kubectl(&["get", "pv", volume, "-o", "json"]))
        .unwrap_or_else(|e| panic!("PostgreSQL 11's volume {volume}: {e}"));
    assert_eq!(
        pv["spec"]["persistentVolumeReclaimPolicy"], "Retain",
        "PostgreSQL 11's volume {volume} is not retained: {}",
        pv["spec"]
    );
    assert_ne!(
        pv["status"]["phase"], "Bound",
        "PostgreSQL 11's volume {volume} is in use: {}",
        pv["spec"]["claimRef"]
    );
    let data = sim.volume_dir(volume).join("data");
    let major = std::fs::read_to_string(data.join("PG_VERSION"))
        .unwrap_or_else(|e| panic!("{}: {e}", data.join("PG_VERSION").display()));
    assert_eq!(major.trim(), "11", "the data directory on {volume}");
    let started = Instant::now();
    let server = super::pg::PgServer::on_copy_of(super::pg::PG11_BIN, "pg11-volume", &data);
    let target = PgTarget::new(
        "127.0.0.1",
        server.port,
        &sim.spec.db_user,
        &sim.spec.database,
    )
    .with_password(sim.spec.db_password.clone());
    let version = target
        .query("server version", "show server_version_num")
        .expect("server version");
    assert!(
        version[0][0].starts_with("11"),
        "server version {version:?}"
    );
    let after = seed::snapshot(&target).expect("snapshot of PostgreSQL 11's volume");
    assert_eq!(
        db_before.diff(&after),
        Vec::<String>::new(),
        "PostgreSQL 11's volume {volume} no longer holds the data it held before the migration"
    );
    assert_eq!(*db_before, after);
    eprintln!(
        "PostgreSQL 11 on volume {volume} holds the data of before ({} tables, {} rows; checked in {:.1}s)",
        after.tables.len(),
        after.total_rows(),
        started.elapsed().as_secs_f64()
    );
}
