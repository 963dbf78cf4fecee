//! Proof on the real charts: every corpus file is translated by the real binary, the old
//! file is rendered with the real 4.43.1 chart and the translation with the real 4.44.0 chart
//! (`helm template`), and what matters must come out the same: database name, user, password
//! source, external host/port, SSL mode, ingress backends, attachment storage, PostgreSQL
//! volume and resources, Redis ports. Translations and reports are snapshots.
//!
//! helm: `LA_MIGRATE_TEST_HELM` or `.tools/helm/3.19.0/helm`; charts: `LA_MIGRATE_TEST_CHARTS`
//! or `tests/fixtures/charts`.

use std::path::{Path, PathBuf};
use std::process::Command;

use la_migrate::naming::{Generation, NameInputs, ObjectNames};
use serde_norway::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn helm() -> PathBuf {
    let path = std::env::var_os("LA_MIGRATE_TEST_HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".tools/helm/3.19.0/helm"));
    assert!(
        path.is_file(),
        "helm not found at {}: run scripts/install-test-deps.sh (or set LA_MIGRATE_TEST_HELM)",
        path.display()
    );
    path
}

fn chart(version: &str) -> PathBuf {
    let dir = std::env::var_os("LA_MIGRATE_TEST_CHARTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("tests/fixtures/charts"));
    let tgz = dir.join(format!("live-agent-{version}.tgz"));
    assert!(
        tgz.is_file(),
        "{} is missing (set LA_MIGRATE_TEST_CHARTS to the directory of the real charts)",
        tgz.display()
    );
    tgz
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/values").join(name)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn la_migrate(args: &[&str], dir: &Path) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_la-migrate"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("HELM_NAMESPACE")
        .env_remove("LA_MIGRATE_RELEASE")
        .output()
        .expect("run la-migrate");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn render(version: &str, release: &str, values: &Path) -> Vec<Value> {
    let out = Command::new(helm())
        .args(["template", release])
        .arg(chart(version))
        .args(["--namespace", "live-agent", "-f"])
        .arg(values)
        .output()
        .expect("run helm template");
    assert!(
        out.status.success(),
        "helm template {version} with {} failed:\n{}",
        values.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objs.iter()
        .find(|o| o["kind"].as_str() == Some(kind) && o["metadata"]["name"].as_str() == Some(name))
}

fn decode_base64(s: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()) {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Drops empty maps, so `limits: {}` and no `limits` compare equal.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .filter(|(_, v)| !matches!(v, Value::Mapping(m) if m.is_empty()))
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What matters in one render.
#[derive(Debug, PartialEq)]
struct Facts {
    database: Value,
    user: Value,
    host: Value,
    port: Value,
    ssl_mode: Value,
    password_secret: String,
    password_key: String,
    /// The password, when the render holds the Secret
    password: Option<String>,
    /// Whether the chart's PostgreSQL gives the app's user the app's password (`None`: no
    /// PostgreSQL in the render, or a password the render does not hold)
    db_login: Option<bool>,
    /// (host, path, backend service, whether that Service is in the render)
    ingress: Vec<(String, String, String, bool)>,
    attachments_pvc: Value,
    storage_class: Option<(Value, Value, Value)>,
    pg_volume: Option<(Value, Value)>,
    pg_resources: Option<Value>,
    pg_fs_group: Option<Value>,
    redis_ports: Option<(Value, Value)>,
    app_resources: Value,
}

fn facts(objs: &[Value], names: &ObjectNames) -> Facts {
    let cm = find(objs, "ConfigMap", &names.configmap).expect("app ConfigMap");
    let data = &cm["data"];
    let app = find(objs, "Deployment", &names.app_deployment).expect("app Deployment");
    let container = &app["spec"]["template"]["spec"]["containers"][0];
    let env = container["env"].as_sequence().expect("app env");
    let pw = env
        .iter()
        .find(|e| e["name"].as_str() == Some("POSTGRES_PASSWORD"))
        .expect("POSTGRES_PASSWORD")["valueFrom"]["secretKeyRef"]
        .clone();
    let password_secret = pw["name"].as_str().unwrap().to_string();
    // The 4.43 chart renders an empty key when existingSecret is set without
    // existingSecretPasswordKey (the guide's spelling was never read).
    let password_key = pw["key"].as_str().unwrap_or_default().to_string();
    let password = find(objs, "Secret", &password_secret)
        .and_then(|s| s["data"][password_key.as_str()].as_str())
        .map(decode_base64);
    let mut ingress = Vec::new();
    if let Some(ing) = find(objs, "Ingress", &names.ingress) {
        for rule in ing["spec"]["rules"].as_sequence().unwrap() {
            for p in rule["http"]["paths"].as_sequence().unwrap() {
                let svc = p["backend"]["service"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let exists = find(objs, "Service", &svc).is_some();
                ingress.push((
                    rule["host"].as_str().unwrap().to_string(),
                    p["path"].as_str().unwrap().to_string(),
                    svc,
                    exists,
                ));
            }
        }
    }
    let pvc = find(objs, "PersistentVolumeClaim", names.attachments_pvc).expect("attachments PVC");
    let storage_class = find(
        objs,
        "StorageClass",
        la_migrate::naming::AWS_EFS_STORAGE_CLASS,
    )
    .map(|s| {
        (
            s["provisioner"].clone(),
            s["parameters"].clone(),
            s["reclaimPolicy"].clone(),
        )
    });
    let pg = find(objs, "StatefulSet", &names.postgresql);
    let redis = find(objs, "StatefulSet", &names.redis_master);
    let redis_svc = find(objs, "Service", &names.redis_master);
    let db_login = pg.and_then(|s| {
        let (user, password) = database_user(objs, s)?;
        let app_password = password_value(objs, &pw)?;
        Some(data["POSTGRES_USERNAME"].as_str() == Some(user.as_str()) && app_password == password)
    });
    Facts {
        database: data["POSTGRES_DB"].clone(),
        user: data["POSTGRES_USERNAME"].clone(),
        host: data["POSTGRES_HOST"].clone(),
        port: data["POSTGRES_PORT"].clone(),
        ssl_mode: data["POSTGRES_SSL_MODE"].clone(),
        password_secret,
        password_key,
        password,
        db_login,
        ingress,
        attachments_pvc: pvc["spec"].clone(),
        storage_class,
        pg_volume: pg.map(|s| {
            let claim = &s["spec"]["volumeClaimTemplates"][0]["spec"];
            (
                claim["resources"]["requests"]["storage"].clone(),
                claim["storageClassName"].clone(),
            )
        }),
        pg_resources: pg
            .map(|s| normalized(&s["spec"]["template"]["spec"]["containers"][0]["resources"])),
        pg_fs_group: pg
            .map(|s| s["spec"]["template"]["spec"]["securityContext"]["fsGroup"].clone()),
        redis_ports: redis.zip(redis_svc).map(|(s, svc)| {
            (
                s["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"].clone(),
                svc["spec"]["ports"][0]["port"].clone(),
            )
        }),
        app_resources: normalized(&container["resources"]),
    }
}

/// The value a `secretKeyRef` points at, when the render holds that Secret.
fn password_value(objs: &[Value], secret_key_ref: &Value) -> Option<String> {
    let secret = find(objs, "Secret", secret_key_ref["name"].as_str()?)?;
    secret["data"][secret_key_ref["key"].as_str()?]
        .as_str()
        .map(decode_base64)
}

/// The user the PostgreSQL container creates for the app and that user's password: Bitnami
/// sets `POSTGRES_USER` for a user other than postgres, and `POSTGRES_PASSWORD` is that
/// user's password.
fn database_user(objs: &[Value], statefulset: &Value) -> Option<(String, String)> {
    let env = statefulset["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence()?;
    let var = |name: &str| env.iter().find(|e| e["name"].as_str() == Some(name));
    let user = var("POSTGRES_USER")
        .and_then(|e| e["value"].as_str())
        .unwrap_or("postgres")
        .to_string();
    let password = password_value(
        objs,
        &var("POSTGRES_PASSWORD")?["valueFrom"]["secretKeyRef"],
    )?;
    Some((user, password))
}

fn old_values_set_password(v: &Value) -> bool {
    let pg = &v["postgresql"];
    !pg["postgresqlPassword"].is_null() || !pg["existingSecret"].is_null()
}

/// The corpus is every file in `tests/fixtures/values` but the invalid ones; each is rendered
/// as release `cognigy-live-agent` unless named here.
const RELEASES: &[(&str, &str)] = &[
    ("05-custom-release-name.yaml", "prod"),
    ("06-fullname-override.yaml", "prod"),
];
const DEFAULT_RELEASE: &str = "cognigy-live-agent";

/// The files that must be refused (exit 3), with what the error must say.
const INVALID: &[(&str, &[&str])] = &[
    (
        "14-invalid.yaml",
        &["14-invalid.yaml: invalid YAML at line 3, column 22"],
    ),
    (
        "15-conflict.yaml",
        &[
            "postgresql.postgresqlDatabase (line 2) and postgresql.auth.database (line 4) are both set, to different values",
            "postgresql.existingSecretPasswordKey (line 5) and postgresql.existingPasswordSecretKey (line 6) both become postgresql.auth.secretKeys.adminPasswordKey",
            "chart 4.43 reads postgresql.existingSecretPasswordKey",
        ],
    ),
];

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("tests/fixtures/values"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    names
}

/// The valid corpus files and the release each is rendered as.
fn corpus() -> Vec<(String, &'static str)> {
    fixture_names()
        .into_iter()
        .filter(|n| !INVALID.iter().any(|(i, _)| i == n))
        .map(|n| {
            let release = RELEASES
                .iter()
                .find(|(f, _)| *f == n)
                .map_or(DEFAULT_RELEASE, |(_, r)| r);
            (n, release)
        })
        .collect()
}

fn check_case(file: &str, release: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(file);
    let run = la_migrate(
        &[
            "4.44",
            "values",
            "--release",
            release,
            "-f",
            input.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{file}: {}", run.stderr);
    let name = file.trim_end_matches(".yaml");
    insta::assert_snapshot!(format!("{name}.translated"), run.stdout);
    let report = run.stderr.replace(input.to_str().unwrap(), file);
    insta::assert_snapshot!(format!("{name}.report"), report);

    let translated = dir.path().join("translated.yaml");
    std::fs::write(&translated, &run.stdout).unwrap();
    let old_values: Value =
        serde_norway::from_str(&std::fs::read_to_string(&input).unwrap()).unwrap_or(Value::Null);
    let inputs = NameInputs::from_values(&old_values);
    let old_names = ObjectNames::new(release, &inputs, Generation::Pg11);
    let new_names = ObjectNames::new(release, &inputs, Generation::Pg15);
    let old = facts(&render("4.43.1", release, &input), &old_names);
    let new = facts(&render("4.44.0", release, &translated), &new_names);

    assert_eq!(old.database, new.database, "{file}: database");
    assert_eq!(old.user, new.user, "{file}: user");
    assert_eq!(old.host, new.host, "{file}: database host");
    assert_eq!(old.port, new.port, "{file}: database port");
    assert_eq!(old.ssl_mode, new.ssl_mode, "{file}: SSL mode");
    assert_eq!(
        old.password_secret, new.password_secret,
        "{file}: password Secret"
    );
    assert_eq!(
        old.password.is_some(),
        new.password.is_some(),
        "{file}: the chart creates the password Secret in one version only"
    );
    assert_eq!(
        old.db_login, new.db_login,
        "{file}: the database gives the app's user the app's password"
    );
    let generated = report.contains("no PostgreSQL password is set");
    match (&old.password, &new.password) {
        // The 4.43 default password gives way to a generated one, and the report says so.
        (Some(_), Some(_)) if generated => {
            assert!(
                !old_values_set_password(&old_values),
                "{file}: warned although a password is set"
            )
        }
        (Some(a), Some(b)) => assert_eq!(a, b, "{file}: password value"),
        _ if old.password_key.is_empty() => assert_eq!(
            Some(new.password_key.as_str()),
            old_values["postgresql"]["existingPasswordSecretKey"].as_str(),
            "{file}: the guide's key spelling becomes the key 4.44 reads"
        ),
        _ => assert_eq!(old.password_key, new.password_key, "{file}: password key"),
    }
    assert_eq!(
        old.ingress.len(),
        new.ingress.len(),
        "{file}: ingress paths"
    );
    for (o, n) in old.ingress.iter().zip(&new.ingress) {
        assert_eq!((&o.0, &o.1), (&n.0, &n.1), "{file}: ingress host/path");
        if o.2 == old_names.app_service {
            assert_eq!(n.2, new_names.app_service, "{file}: ingress backend -> app");
            assert!(n.3, "{file}: ingress backend {} is not in the render", n.2);
        } else {
            assert_eq!(o.2, n.2, "{file}: other ingress backends stay");
            assert_eq!(o.3, n.3, "{file}: backend presence");
        }
    }
    assert_eq!(
        old.attachments_pvc, new.attachments_pvc,
        "{file}: attachments PVC"
    );
    assert_eq!(
        old.storage_class, new.storage_class,
        "{file}: attachments StorageClass"
    );
    assert_eq!(
        old.pg_volume, new.pg_volume,
        "{file}: PostgreSQL volume size/class"
    );
    assert_eq!(
        old.pg_resources, new.pg_resources,
        "{file}: PostgreSQL resources"
    );
    assert_eq!(
        old.pg_fs_group, new.pg_fs_group,
        "{file}: PostgreSQL fsGroup"
    );
    assert_eq!(old.redis_ports, new.redis_ports, "{file}: Redis ports");
    assert_eq!(
        old.app_resources, new.app_resources,
        "{file}: app resources"
    );
}

#[test]
fn every_corpus_file_renders_the_same_essentials_on_4_43_1_and_4_44_0() {
    let mut failures = Vec::new();
    for (file, release) in &corpus() {
        if let Err(e) = std::panic::catch_unwind(|| check_case(file, release)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{file}: {msg}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_corpus_is_every_fixture_but_the_invalid_ones() {
    let names = fixture_names();
    let named = RELEASES
        .iter()
        .map(|(f, _)| f)
        .chain(INVALID.iter().map(|(f, _)| f));
    for file in named {
        assert!(names.iter().any(|n| n == file), "{file} is not a fixture");
    }
    let valid = corpus();
    assert_eq!(valid.len() + INVALID.len(), names.len());
    assert!(
        valid.len() >= 12,
        "the corpus has {} valid files: {valid:?}",
        valid.len()
    );
}

/// Each invalid fixture, translated to a file and in place: exit 3, the error names the
/// problem (with the lines of both keys of a conflict), and nothing is written.
#[test]
fn invalid_fixtures_are_refused_with_the_problem_and_nothing_is_written() {
    for (file, needles) in INVALID {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join(file);
        let original = std::fs::read(fixture(file)).unwrap();
        std::fs::write(&input, &original).unwrap();
        for extra in [&["--out", "new.yaml"][..], &["--in-place"]] {
            let mut args = vec!["4.44", "values", "-f", file];
            args.extend_from_slice(extra);
            let run = la_migrate(&args, dir.path());
            assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
            for needle in *needles {
                assert!(
                    run.stderr.contains(needle),
                    "{args:?}: {needle:?} not in {}",
                    run.stderr
                );
            }
            assert_eq!(run.stdout, "", "{args:?}");
            let mut left: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            left.sort();
            assert_eq!(left, [file.to_string()], "{args:?} wrote a file");
            assert_eq!(
                std::fs::read(&input).unwrap(),
                original,
                "{args:?} changed {file}"
            );
            if extra == ["--in-place"] {
                let name = file.trim_end_matches(".yaml");
                insta::assert_snapshot!(format!("{name}.error"), run.stderr);
            }
        }
    }
}

#[test]
fn the_defaults_keep_their_comments_and_only_the_changed_lines_differ() {
    let input = fixture("01-chart-defaults.yaml");
    let run = la_migrate(&["4.44", "values", "-f", input.to_str().unwrap()], root());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let before = std::fs::read_to_string(&input).unwrap();
    let removed: Vec<&str> = before
        .lines()
        .filter(|l| !run.stdout.lines().any(|o| o == *l))
        .collect();
    // Only the renamed keys' lines and the two service-name lines change.
    assert_eq!(
        removed,
        [
            "  name: cognigy-live-agent",
            "              name: cognigy-live-agent",
            "  postgresqlDatabase: live_agent_production",
            "  postgresqlUsername: postgres",
            "  # For internal instances: If password is commented, one autogenerated is created. Otherwise the secret created takes the field value.",
            "  # Omit the password field if your external PG instance doesn't use password.",
            "  postgresqlPassword: postgres",
            "  postgresSSLMode: disable",
        ]
    );
    let comments_before = before
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .count();
    let comments_after = run
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .count();
    assert_eq!(comments_before, comments_after, "no comment is lost");
}
