//! Passwords stay where they belong. With `--keep-passwords` the old (here: chart-generated,
//! random) database password is staged under the 4.44 keys, PostgreSQL 15 beside PostgreSQL
//! 11 is initialised with it (and refuses another), and at the cut-over the database Secret
//! is recreated with it, which the installed PostgreSQL 15 accepts. Across that migration,
//! run in text mode with logs and in JSON mode, no password or token appears in anything the
//! plugin printed, in its state, in the pods it created, in any process's argv on this
//! machine while it ran, or in a leftover temporary file.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::sim::{
    assert_migrated, migrate_args, text, ReleaseSpec, Sim, COPY_POD, DATABASE, RELEASE,
};
use la_sim::seed::PgTarget;

/// Reads every process's argv under `/proc` until stopped; keeps each argv that holds a
/// secret.
struct ArgvWatch {
    stop: Arc<AtomicBool>,
    found: Arc<Mutex<Vec<String>>>,
    samples: Arc<Mutex<u64>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ArgvWatch {
    fn start(secrets: Vec<String>) -> ArgvWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let found = Arc::new(Mutex::new(Vec::new()));
        let samples = Arc::new(Mutex::new(0));
        let (s, f, n) = (stop.clone(), found.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
                        continue;
                    };
                    let argv = String::from_utf8_lossy(&raw).replace('\0', " ");
                    if secrets.iter().any(|p| argv.contains(p.as_str())) {
                        f.lock().unwrap().push(argv);
                    }
                }
                *n.lock().unwrap() += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        ArgvWatch {
            stop,
            found,
            samples,
            thread: Some(thread),
        }
    }

    /// Stops watching; returns the offending argvs and how many times /proc was read.
    fn finish(mut self) -> (Vec<String>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let found = self.found.lock().unwrap().clone();
        let samples = *self.samples.lock().unwrap();
        (found, samples)
    }
}

impl Drop for ArgvWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn assert_clean(what: &str, haystack: &str, secrets: &[String]) {
    for s in secrets {
        assert!(
            !haystack.contains(s.as_str()),
            "a secret ({} characters) appears in {what}:\n{haystack}",
            s.len()
        );
    }
}

/// PostgreSQL 15 beside PostgreSQL 11 (the plugin's pod), as `postgres` with `password`.
fn beside(sim: &Sim, password: &str) -> PgTarget {
    let ip = sim.kubectl(&[
        "get",
        "pod",
        &format!("la-migrate-{RELEASE}-postgresql"),
        "-o",
        "jsonpath={.status.podIP}",
    ]);
    PgTarget::new(ip.trim(), 5432, "postgres", DATABASE).with_password(password.to_string())
}

/// Every file under `dir` (the plugin's TMPDIR): none may be left behind.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path().display().to_string())
        .collect()
}

#[test]
fn keep_passwords_carries_the_old_password_to_postgresql_15_and_no_secret_appears_anywhere() {
    let (sim, before) = Sim::with_release(ReleaseSpec::generated_password("3.19.0"));
    let db_password = sim.spec.db_password.clone();
    let mut secrets = vec![db_password.clone(), sim.spec.redis_password.clone()];
    for (name, data) in &before.kept_secrets {
        for (key, encoded) in data.as_object().unwrap() {
            // Kept tokens, base64 as stored and decoded as a pod sees them.
            secrets.push(encoded.as_str().unwrap().to_string());
            let decoded = sim.secret_value(name, key);
            if decoded.len() >= 8 {
                secrets.push(decoded);
            }
        }
    }
    assert!(
        db_password.len() >= 8,
        "generated password too short to search for"
    );

    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let run = |args: &[&str]| -> Output {
        let out = sim
            .plugin(args)
            .env("TMPDIR", tmp.path())
            .output()
            .expect("running la-migrate");
        assert!(
            out.status.success(),
            "la-migrate {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            text(&out.stderr)
        );
        assert_eq!(
            leftovers(tmp.path()),
            Vec::<String>::new(),
            "files left in TMPDIR"
        );
        out
    };
    let mut printed = String::new();
    let mut record = |out: &Output| {
        printed.push_str(&text(&out.stdout));
        printed.push_str(&text(&out.stderr));
    };

    let watch = ArgvWatch::start(secrets.clone());
    for args in [
        migrate_args(&["--keep-passwords", "--dry-run"]),
        migrate_args(&["--keep-passwords", "--dry-run", "-o", "json"]),
        migrate_args(&["--keep-passwords", "prepare", "--yes", "-vv"]),
    ] {
        record(&run(&args));
    }
    // Prepared: the old password staged under the 4.44 keys, and PostgreSQL 15 beside the
    // old one initialised with it: it takes that password and no other.
    let staged = format!("la-migrate-{RELEASE}-postgresql");
    assert_eq!(sim.secret_value(&staged, "postgres-password"), db_password);
    assert_eq!(sim.secret_value(&staged, "password"), db_password);
    let version = beside(&sim, &db_password)
        .query("server version", "show server_version_num")
        .expect("PostgreSQL 15 beside PostgreSQL 11 accepts the old password");
    assert!(version[0][0].starts_with("15"), "{version:?}");
    assert!(
        beside(&sim, "not-the-old-password")
            .query("server version", "show server_version_num")
            .is_err(),
        "PostgreSQL 15 beside PostgreSQL 11 accepts any password"
    );
    for pod in [staged.as_str(), COPY_POD] {
        let spec = sim.kubectl(&["get", "pod", pod, "-o", "json"]);
        assert_clean(&format!("pod {pod}"), &spec, &secrets);
    }
    for args in [
        migrate_args(&["--keep-passwords", "--yes", "-o", "json"]),
        vec!["4.44", "status"],
        vec!["4.44", "status", "-o", "json"],
    ] {
        record(&run(&args));
    }
    let (argvs, samples) = watch.finish();
    assert!(samples > 50, "/proc was read only {samples} times");
    assert_eq!(
        argvs,
        Vec::<String>::new(),
        "a process's argv held a secret"
    );

    assert!(printed.contains("\"event\":\"summary\""), "{printed}");
    assert_clean("the plugin's output", &printed, &secrets);
    let state = sim.kubectl(&[
        "get",
        "configmap",
        &format!("la-migrate-{RELEASE}"),
        "-o",
        "yaml",
    ]);
    assert!(state.contains("copy.prove"), "{state}");
    assert!(state.contains("cutover.helm-install"), "{state}");
    assert_clean("the state ConfigMap", &state, &secrets);
    let own_pods = sim.kubectl(&[
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/managed-by=la-migrate",
        "-o",
        "yaml",
    ]);
    assert!(own_pods.contains(COPY_POD), "{own_pods}");
    assert_clean("the plugin's pods", &own_pods, &secrets);

    // The old password, under the 4.44 keys, and PostgreSQL 15 takes it.
    let secret = format!("{RELEASE}-postgresql");
    assert_eq!(sim.secret_value(&secret, "postgres-password"), db_password);
    assert_eq!(sim.secret_value(&secret, "password"), db_password);
    let version = sim
        .database()
        .query("server version", "show server_version_num")
        .expect("PostgreSQL 15 accepts the old password");
    assert!(version[0][0].starts_with("15"), "{version:?}");
    assert!(
        sim.database()
            .with_password("not-the-old-password")
            .query("server version", "show server_version_num")
            .is_err(),
        "PostgreSQL 15 accepts any password"
    );
    assert_migrated(&sim, &before);
}
