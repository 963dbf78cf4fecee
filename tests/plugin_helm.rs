//! The plugin through the real helm binaries (3.17.3, 3.19.0, 4.3.1), each in its own helm
//! home, offline: `helm plugin install` of a plugin directory (the install hook fetches the
//! release archive from a `file://` URL) and of the release archive itself (from a loopback
//! HTTP server), then commands run through helm.

mod plugin_support;

use std::path::Path;

use plugin_support::*;

/// A plugin directory as in a checkout: the hook finds no binary and downloads the release.
fn checkout_like_plugin_dir() -> PluginDir {
    let plugin = PluginDir::new();
    copy_preserving_mode(&root().join("README.md"), &plugin.path().join("README.md"));
    plugin
}

fn install_from_directory(helm: &Helm, plugin: &Path, release: &Release) {
    let out = helm
        .command()
        .args(["plugin", "install"])
        .arg(plugin)
        .env("LA_MIGRATE_DOWNLOAD_URL", release.file_url())
        .output()
        .unwrap();
    assert_success(&format!("helm {} plugin install <dir>", helm.version), &out);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains("Installed plugin: la-migrate"), "{all}");
    assert!(
        all.contains(&format!("verified SHA-256 of {}", asset_name())),
        "the install hook downloaded and verified the release: {all}"
    );
}

/// `helm plugin list` shows the plugin's version and `helm la-migrate --help` runs.
fn assert_listed_and_runs(helm: &Helm) {
    let list = helm.run(&["plugin", "list"]);
    assert_success("helm plugin list", &list);
    let row = stdout(&list)
        .lines()
        .find(|l| l.starts_with("la-migrate"))
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "));
    assert_eq!(row, Some(format!("la-migrate {VERSION}")));

    let help = helm.run(&["la-migrate", "--help"]);
    assert_success("helm la-migrate --help", &help);
    assert!(
        stdout(&help).contains("Usage: la-migrate"),
        "{}",
        stdout(&help)
    );
    assert!(stdout(&help).contains("4.44"), "{}", stdout(&help));
}

fn env_json(helm: &Helm, args: &[&str]) -> serde_json::Value {
    let out = helm.run(args);
    assert_success(&format!("helm {} {}", helm.version, args.join(" ")), &out);
    serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("`env -o json` printed no JSON ({e}):\n{}", stdout(&out)))
}

fn installs_from_a_directory_and_runs_through_helm(version: &'static str) {
    let release = Release::build();
    let plugin = checkout_like_plugin_dir();
    let helm = Helm::isolated(version);

    install_from_directory(&helm, plugin.path(), &release);

    assert_listed_and_runs(&helm);

    // Helm's global flags, given before and after the plugin name, reach the settings.
    let env = env_json(
        &helm,
        &[
            "-n",
            "foo",
            "--kube-context",
            "bar",
            "--kubeconfig",
            "/x",
            "la-migrate",
            "env",
            "-o",
            "json",
        ],
    );
    assert_eq!(env["namespace"], "foo");
    assert_eq!(env["kube"]["context"], "bar");
    assert_eq!(env["kube"]["kubeconfig"], "/x");
    assert_eq!(env["under_helm"], true);
    assert_eq!(env["verbosity"], 0);
    assert_eq!(env["helm_bin"], helm.bin.display().to_string());

    let env = env_json(
        &helm,
        &[
            "la-migrate",
            "env",
            "-o",
            "json",
            "--debug",
            "--kube-apiserver",
            "https://10.1.2.3:6443",
            "--kube-token",
            "tok-do-not-print",
            "--kube-as-user",
            "alice",
            "--kube-as-group",
            "ops",
            "--kube-insecure-skip-tls-verify",
        ],
    );
    assert_eq!(env["verbosity"], 2, "--debug became HELM_DEBUG=true");
    assert_eq!(env["namespace"], "default");
    assert_eq!(env["kube"]["apiserver"], "https://10.1.2.3:6443");
    assert_eq!(env["kube"]["token"], "<redacted>");
    assert_eq!(env["kube"]["as_user"], "alice");
    assert_eq!(env["kube"]["as_groups"], serde_json::json!(["ops"]));
    assert_eq!(env["kube"]["insecure_skip_tls_verify"], true);
    assert!(!env.to_string().contains("tok-do-not-print"));

    let values = plugin.path().join("old-values.yaml");
    std::fs::write(
        &values,
        "postgresql:\n  postgresqlDatabase: chatwoot\n  postgresqlUsername: chatwoot\n",
    )
    .unwrap();
    let out = helm
        .command()
        .args(["la-migrate", "4.44", "values", "-f"])
        .arg(&values)
        .output()
        .unwrap();
    assert_success("helm la-migrate 4.44 values -f <file>", &out);
    assert_eq!(
        stdout(&out),
        "postgresql:\n  auth:\n    database: chatwoot\n    username: chatwoot\n"
    );

    // Helm's --debug (HELM_DEBUG=true) puts the plugin's logs on stderr; stdout stays the
    // translation, byte for byte, so `> new.yaml` still works.
    let debug = helm
        .command()
        .args(["la-migrate", "4.44", "values", "--debug", "-f"])
        .arg(&values)
        .output()
        .unwrap();
    assert_success("helm la-migrate 4.44 values --debug -f <file>", &debug);
    assert_eq!(stdout(&debug), stdout(&out), "logs reached stdout");
    let logs = stderr(&debug);
    for needle in ["DEBUG", "translating", "INFO", "read values file"] {
        assert!(logs.contains(needle), "{needle:?} not in {logs}");
    }

    // Exit codes pass through helm.
    let missing = helm.run(&["la-migrate", "4.44", "values", "-f", "/nonexistent.yaml"]);
    assert_eq!(missing.status.code(), Some(4), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("/nonexistent.yaml"));

    colour_flags_reach_the_plugin(&helm);
}

/// Helm 4's `--color`/`--colour` are not stripped: every helm version passes both spellings
/// to the plugin as typed, before or after the plugin's name. The error line shows which
/// choice the plugin got (helm adds no colour of its own to a plugin's failure).
fn colour_flags_reach_the_plugin(helm: &Helm) {
    const ESC: &str = "\x1b[";
    let values = ["4.44", "values", "-f", "/nonexistent.yaml"];
    for spelling in ["--color", "--colour"] {
        for choice in ["always", "never"] {
            let after: Vec<&str> = [&["la-migrate"][..], &values, &[spelling, choice]].concat();
            let before: Vec<&str> = [&[spelling, choice, "la-migrate"][..], &values].concat();
            for args in [after, before] {
                let out = helm.run(&args);
                let shown = format!("helm {} {}", helm.version, args.join(" "));
                assert_eq!(out.status.code(), Some(4), "{shown}: {}", stderr(&out));
                let err = stderr(&out);
                let line = err
                    .lines()
                    .find(|l| l.contains("cannot read values file"))
                    .unwrap_or_else(|| panic!("{shown}: no error line in {err}"));
                assert_eq!(line.contains(ESC), choice == "always", "{shown}: {line:?}");
            }
        }
    }
}

/// `helm plugin install <checkout>` where no release can be downloaded: the install hook
/// builds the plugin from source with cargo, offline, and the plugin then runs through helm.
fn installs_a_checkout_by_building_it_offline(version: &'static str) {
    let checkout = source_build_dir().join(format!("checkout-helm-{version}"));
    copy_checkout(&checkout);
    let helm = Helm::isolated_at(version, &source_build_dir().join(format!("helm-{version}")));
    let (env, empty) = offline_source_build_env();

    let out = helm
        .command()
        .args(["plugin", "install"])
        .arg(&checkout)
        .envs(env)
        .output()
        .unwrap();
    assert_success(&format!("helm {version} plugin install <checkout>"), &out);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains(&format!(
            "no release archive at file://{}",
            empty.path().display()
        )),
        "{all}"
    );
    assert!(
        all.contains("(cargo build --locked --profile dev)"),
        "{all}"
    );
    assert!(all.contains("(built from source)"), "{all}");
    assert!(all.contains("Installed plugin: la-migrate"), "{all}");
    assert_version(&checkout.join("bin/la-migrate"));
    assert_listed_and_runs(&helm);
}

#[test]
fn helm_3_19_installs_a_checkout_offline_by_building_it_from_source() {
    installs_a_checkout_by_building_it_offline("3.19.0");
}

#[test]
fn helm_4_3_installs_a_checkout_offline_by_building_it_from_source() {
    installs_a_checkout_by_building_it_offline("4.3.1");
}

/// The flags `helm --help` lists under `Flags:`.
fn helm_flags(helm: &Helm) -> Vec<String> {
    let out = helm.run(&["--help"]);
    assert_success(&format!("helm {} --help", helm.version), &out);
    let text = stdout(&out);
    let flags = text
        .split("\nFlags:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no Flags: section in {text}"));
    let mut found = Vec::new();
    for line in flags.lines().take_while(|l| !l.trim().is_empty()) {
        for word in line.split_whitespace() {
            match word.trim_end_matches(',') {
                w if w.starts_with("--") => {
                    found.push(w.to_string());
                    break;
                }
                w if w.starts_with('-') && w.len() == 2 => found.push(w.to_string()),
                _ => break,
            }
        }
    }
    found
}

#[test]
fn the_helm_global_flags_the_plugin_keeps_clear_of_are_those_of_helm_3_19_and_4_3() {
    let mut real: Vec<String> = ["3.19.0", "4.3.1"]
        .into_iter()
        .flat_map(|v| helm_flags(&Helm::isolated(v)))
        .collect();
    real.sort();
    real.dedup();
    let mut listed: Vec<String> = la_migrate::cli::HELM_GLOBAL_FLAGS
        .iter()
        .map(|f| f.to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, real, "update la_migrate::cli::HELM_GLOBAL_FLAGS");
}

fn installs_the_release_archive_from_a_url(version: &'static str) {
    let release = Release::build();
    let server = FileServer::serve(release.path());
    let helm = Helm::isolated(version);
    let url = format!("{}/{}", server.url, asset_name());

    let mut args = vec!["plugin", "install", url.as_str()];
    if helm.is_v4() {
        // Helm 4 verifies plugins by default and refuses an unsigned archive.
        let refused = helm.run(&args);
        assert!(
            !refused.status.success(),
            "helm 4 installed an unsigned plugin"
        );
        args.push("--verify=false");
    }
    let out = helm.run(&args);
    assert_success(
        &format!("helm {version} plugin install <archive URL>"),
        &out,
    );
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains(&format!("la-migrate {VERSION} is already installed")),
        "the hook keeps the bundled binary: {all}"
    );
    assert!(
        server.requests().iter().all(|p| !p.ends_with(".sha256")),
        "nothing but the archive was fetched: {:?}",
        server.requests()
    );

    let env = env_json(
        &helm,
        &["-n", "live-agent", "la-migrate", "env", "-o", "json"],
    );
    assert_eq!(env["namespace"], "live-agent");
    assert_eq!(env["under_helm"], true);
}

#[test]
fn helm_3_17_installs_the_plugin_from_a_directory_and_passes_its_flags_through() {
    installs_from_a_directory_and_runs_through_helm("3.17.3");
}

#[test]
fn helm_3_19_installs_the_plugin_from_a_directory_and_passes_its_flags_through() {
    installs_from_a_directory_and_runs_through_helm("3.19.0");
}

#[test]
fn helm_4_3_installs_the_plugin_from_a_directory_and_passes_its_flags_through() {
    installs_from_a_directory_and_runs_through_helm("4.3.1");
}

#[test]
fn helm_3_17_installs_the_release_archive_with_its_bundled_binary() {
    installs_the_release_archive_from_a_url("3.17.3");
}

#[test]
fn helm_3_19_installs_the_release_archive_with_its_bundled_binary() {
    installs_the_release_archive_from_a_url("3.19.0");
}

#[test]
fn helm_4_3_installs_the_release_archive_only_with_verify_false() {
    installs_the_release_archive_from_a_url("4.3.1");
}
