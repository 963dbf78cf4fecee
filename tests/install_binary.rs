//! `install-binary.sh`, every path, offline: the release archive comes from
//! `scripts/package-release.sh` (run on the freshly built binary) and is served from a loopback
//! HTTP server or a `file://` URL.

mod plugin_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use plugin_support::*;

#[test]
fn a_release_served_over_http_is_verified_and_installed() {
    let release = Release::build();
    let server = FileServer::serve(release.path());
    let plugin = PluginDir::new();

    let out = plugin.run_hook(&[("LA_MIGRATE_DOWNLOAD_URL", &server.url)]);

    assert_success("install-binary.sh", &out);
    assert_version(&plugin.binary());
    let asset = asset_name();
    assert_eq!(
        server.requests(),
        [format!("GET /{asset}.sha256"), format!("GET /{asset}")]
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("verified SHA-256 of {asset}")),
        "{err}"
    );
    assert!(err.contains("installed la-migrate"), "{err}");
}

#[test]
fn a_release_at_a_file_url_is_installed() {
    let release = Release::build();
    let plugin = PluginDir::new();

    let out = plugin.run_hook(&[("LA_MIGRATE_DOWNLOAD_URL", &release.file_url())]);

    assert_success("install-binary.sh", &out);
    assert_eq!(
        sha256_hex(&std::fs::read(plugin.binary()).unwrap()),
        sha256_hex(&release.packaged_binary()),
        "the installed binary is the packaged one"
    );
    let mode = std::fs::metadata(plugin.binary())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[test]
fn a_bundled_binary_of_the_plugin_version_is_kept_and_nothing_is_downloaded() {
    let release = Release::build();
    let server = FileServer::serve(release.path());
    let plugin = PluginDir::new();
    std::fs::create_dir(plugin.path().join("bin")).unwrap();
    copy_preserving_mode(Path::new(BINARY), &plugin.binary());
    let before = std::fs::metadata(plugin.binary())
        .unwrap()
        .modified()
        .unwrap();

    let out = plugin.run_hook(&[("LA_MIGRATE_DOWNLOAD_URL", &server.url)]);

    assert_success("install-binary.sh", &out);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    let after = std::fs::metadata(plugin.binary())
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "the bundled binary was not touched");
    assert!(
        stderr(&out).contains("already installed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_binary_of_another_version_is_replaced_by_the_release() {
    let release = Release::build();
    let plugin = PluginDir::new();
    std::fs::create_dir(plugin.path().join("bin")).unwrap();
    write_script(&plugin.binary(), "echo 'la-migrate 0.0.1'");

    let out = plugin.run_hook(&[("LA_MIGRATE_DOWNLOAD_URL", &release.file_url())]);

    assert_success("install-binary.sh", &out);
    assert_version(&plugin.binary());
    assert!(
        stderr(&out).contains("replacing bin/la-migrate (la-migrate 0.0.1)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_corrupted_archive_is_refused_nothing_is_installed_and_nothing_is_built() {
    let release = Release::build();
    let mut bytes = std::fs::read(release.archive()).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(release.archive(), bytes).unwrap();
    let server = FileServer::serve(release.path());
    // A source checkout with a cargo that would leave a trace: a mismatch must not fall
    // back to building.
    let plugin = PluginDir::new();
    std::fs::write(plugin.path().join("Cargo.toml"), "").unwrap();
    let tools = ToolDir::with_system_tools();
    let trace = plugin.path().join("cargo-was-run");
    write_script(
        &tools.path().join("cargo"),
        &format!("touch '{}'", trace.display()),
    );

    let out = plugin.run_hook(&[
        ("LA_MIGRATE_DOWNLOAD_URL", &server.url),
        ("PATH", &tools.path_var()),
    ]);

    assert!(!out.status.success());
    let err = stderr(&out);
    let asset = asset_name();
    assert!(
        err.contains(&format!(
            "error: SHA-256 mismatch for {}/{asset}: expected ",
            server.url
        )),
        "{err}"
    );
    assert!(err.contains("nothing was installed"), "{err}");
    assert!(!plugin.binary().exists());
    assert!(!plugin.path().join("bin/.la-migrate.new").exists());
    assert!(!trace.exists(), "cargo ran after a checksum mismatch");
}

#[test]
fn a_checksum_file_for_another_archive_is_refused() {
    let release = Release::build();
    let asset = asset_name();
    let sum = std::fs::read_to_string(release.path().join(format!("{asset}.sha256"))).unwrap();
    let other = sum.replace(&asset, "la-migrate_0.0.1_linux_amd64.tar.gz");
    std::fs::write(release.path().join(format!("{asset}.sha256")), other).unwrap();
    let plugin = PluginDir::new();

    let out = plugin.run_hook(&[("LA_MIGRATE_DOWNLOAD_URL", &release.file_url())]);

    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is the checksum of 'la-migrate_0.0.1_linux_amd64.tar.gz'"),
        "{}",
        stderr(&out)
    );
    assert!(!plugin.binary().exists());
}

#[test]
fn a_checksum_file_that_is_not_one_is_refused() {
    let release = Release::build();
    let asset = asset_name();
    std::fs::write(
        release.path().join(format!("{asset}.sha256")),
        "<html>Not Found</html>\n",
    )
    .unwrap();
    let plugin = PluginDir::new();

    let out = plugin.run_hook(&[("LA_MIGRATE_DOWNLOAD_URL", &release.file_url())]);

    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not a SHA-256 checksum file; nothing was installed"),
        "{}",
        stderr(&out)
    );
    assert!(!plugin.binary().exists());
}

#[test]
fn without_a_release_and_without_cargo_a_checkout_is_told_to_install_rust() {
    let empty = tempfile::tempdir().unwrap();
    let server = FileServer::serve(empty.path());
    let plugin = PluginDir::new();
    std::fs::write(plugin.path().join("Cargo.toml"), "").unwrap();
    let tools = ToolDir::with_system_tools();

    let out = plugin.run_hook(&[
        ("LA_MIGRATE_DOWNLOAD_URL", &server.url),
        ("PATH", &tools.path_var()),
    ]);

    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "no release archive at {}/{}",
            server.url,
            asset_name()
        )),
        "{err}"
    );
    assert!(
        err.contains("cargo is not installed to build from source"),
        "{err}"
    );
    assert!(err.contains("https://rustup.rs"), "{err}");
    assert!(!plugin.binary().exists());
}

#[test]
fn without_a_release_outside_a_checkout_the_error_names_the_download_location() {
    let empty = tempfile::tempdir().unwrap();
    let plugin = PluginDir::new();
    let url = format!("file://{}", empty.path().display());

    let out = plugin.run_hook(&[("LA_MIGRATE_DOWNLOAD_URL", &url)]);

    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: no release archive could be downloaded from {url}. Check the network"
        )),
        "{err}"
    );
    assert!(!plugin.binary().exists());
}

/// A real source build: a copy of this checkout's sources, built with `cargo build --locked`
/// offline in the target directory the helm source-install tests share (kept between runs,
/// so only the first run compiles the dependencies).
#[test]
fn without_a_release_a_source_checkout_is_built_with_cargo_locked() {
    let checkout = source_build_dir().join("checkout");
    copy_checkout(&checkout);
    let (env, _empty) = offline_source_build_env();
    // A clean environment, as under helm: the test's own CARGO_* variables would reach the
    // build scripts (ring's reruns when CARGO_MANIFEST_DIR changes) and rebuild half the tree
    // in turn with the helm source-install tests, which share the target directory.
    let mut cmd = std::process::Command::new(checkout.join("install-binary.sh"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("HELM_PLUGIN_DIR", &checkout)
        .envs(env);
    let out = cmd.output().unwrap();

    assert_success("install-binary.sh", &out);
    let err = stderr(&out);
    assert!(
        err.contains("(cargo build --locked --profile dev)"),
        "{err}"
    );
    assert!(err.contains("(built from source)"), "{err}");
    assert_version(&checkout.join("bin/la-migrate"));
}

#[test]
fn plugin_yaml_carries_the_crate_version_that_selects_the_release() {
    let yaml = std::fs::read_to_string(root().join("plugin.yaml")).unwrap();
    assert!(
        yaml.lines().any(|l| l == format!("version: \"{VERSION}\"")),
        "plugin.yaml must say version: \"{VERSION}\" (Cargo.toml's version)"
    );
}

/// A PATH with the system tools the script needs, and no cargo.
struct ToolDir(tempfile::TempDir);

impl ToolDir {
    fn with_system_tools() -> ToolDir {
        let dir = tempfile::tempdir().unwrap();
        for tool in [
            "sh",
            "sed",
            "head",
            "uname",
            "tr",
            "mktemp",
            "rm",
            "cp",
            "mkdir",
            "chmod",
            "mv",
            "cut",
            "tar",
            "gzip",
            "curl",
            "sha256sum",
            "cat",
            "dirname",
            "touch",
        ] {
            let found = which::which(tool).unwrap_or_else(|_| panic!("{tool} is not installed"));
            std::os::unix::fs::symlink(found, dir.path().join(tool)).unwrap();
        }
        ToolDir(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn path_var(&self) -> String {
        self.0.path().display().to_string()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
