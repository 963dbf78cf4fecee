//! Helm 4 verifies a plugin archive before installing it: `scripts/package-release.sh --key`
//! writes the provenance file (`<archive>.prov`) and the public keyring, and the real helm
//! 4.3.1, verification on, installs the signed archive from a loopback HTTP server and refuses
//! a tampered archive, an archive with another `plugin.yaml`, and a keyring without the key.
//! Packaging with a key the keyring lacks fails before anything is written; a key with a
//! passphrase signs with `--passphrase-file`.

mod plugin_support;

use std::path::Path;
use std::process::Command;

use plugin_support::*;

const HELM_4: &str = "4.3.1";

/// `sha256:<hex>` of the archive, as the `.sha256` asset beside it says.
fn archive_sum(release: &Release) -> String {
    let line =
        std::fs::read_to_string(release.path().join(format!("{}.sha256", asset_name()))).unwrap();
    format!("sha256:{}", line.split_whitespace().next().unwrap())
}

fn install(helm: &Helm, url: &str, keyring: &Path) -> std::process::Output {
    // No --verify flag: verification is Helm 4's default.
    helm.command()
        .args(["plugin", "install", url, "--keyring"])
        .arg(keyring)
        .output()
        .unwrap()
}

/// helm 4, given `keyring`, refuses the archive served from `assets` with `reason` and
/// installs nothing.
fn assert_install_refused(assets: &Path, keyring: &Path, what: &str, reason: &str) {
    let server = FileServer::serve(assets);
    let helm = Helm::isolated(HELM_4);
    let out = install(&helm, &format!("{}/{}", server.url, asset_name()), keyring);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!out.status.success(), "helm installed {what}:\n{all}");
    assert!(all.contains(reason), "{what}: {reason:?} missing:\n{all}");
    let list = helm.run(&["plugin", "list"]);
    assert_success("helm plugin list", &list);
    assert!(
        !stdout(&list).contains("la-migrate"),
        "{what} is listed:\n{}",
        stdout(&list)
    );
}

/// A directory serving `archive` under the release's archive name, with the genuine `.prov`.
fn tampered_assets(release: &Release, archive: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("la-migrate-tampered-")
        .tempdir()
        .unwrap();
    let name = asset_name();
    std::fs::write(dir.path().join(&name), archive).unwrap();
    let prov = format!("{name}.prov");
    std::fs::copy(release.path().join(&prov), dir.path().join(&prov)).unwrap();
    dir
}

/// The release archive packed again, the same files with another `plugin.yaml` (its usage
/// line changed).
fn archive_with_another_plugin_yaml(release: &Release) -> Vec<u8> {
    let work = tempfile::tempdir().unwrap();
    let run = |cmd: &mut Command, what: &str| assert_success(what, &cmd.output().unwrap());
    run(
        Command::new("tar")
            .arg("-xzf")
            .arg(release.archive())
            .arg("-C")
            .arg(work.path()),
        "tar -xzf <archive>",
    );
    let plugin_yaml = work.path().join("plugin.yaml");
    let text = std::fs::read_to_string(&plugin_yaml).unwrap();
    let changed = text.replacen("usage: \"", "usage: \"(changed) ", 1);
    assert_ne!(changed, text, "plugin.yaml has no usage line");
    std::fs::write(&plugin_yaml, changed).unwrap();
    let repacked = work.path().join("repacked.tar.gz");
    run(
        Command::new("tar")
            .arg("-czf")
            .arg(&repacked)
            .arg("-C")
            .arg(work.path())
            .args(["plugin.yaml", "install-binary.sh", "README.md", "bin"]),
        "tar -czf <repacked archive>",
    );
    std::fs::read(repacked).unwrap()
}

#[test]
fn helm_4_3_installs_the_signed_release_archive_with_verification_on() {
    let key = TestKey::generate("release");
    let release = Release::build_signed(&key);
    let sum = archive_sum(&release);

    // The provenance file is helm's: plugin.yaml, "...", the archive's sum, clearsigned.
    let prov =
        std::fs::read_to_string(release.path().join(format!("{}.prov", asset_name()))).unwrap();
    assert!(
        prov.starts_with("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n"),
        "{prov}"
    );
    let plugin_yaml = std::fs::read_to_string(root().join("plugin.yaml")).unwrap();
    assert!(prov.contains(&plugin_yaml), "plugin.yaml not in:\n{prov}");
    assert!(
        prov.contains(&format!("\n...\nfiles:\n  {}: {sum}\n", asset_name())),
        "{prov}"
    );

    let server = FileServer::serve(release.path());
    let helm = Helm::isolated(HELM_4);
    let url = format!("{}/{}", server.url, asset_name());
    let out = install(&helm, &url, &release.path().join("la-migrate-pubring.gpg"));
    assert_success("helm 4.3.1 plugin install <signed archive URL>", &out);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    for shown in [
        format!("Signed by: release test key <{}>", key.email()),
        format!("Plugin Hash Verified: {sum}"),
        "Installed plugin: la-migrate".to_string(),
    ] {
        assert!(all.contains(&shown), "{shown:?} missing:\n{all}");
    }
    assert!(
        server
            .requests()
            .contains(&format!("GET /{}.prov", asset_name())),
        "helm fetched no provenance file: {:?}",
        server.requests()
    );

    let run = helm.run(&["la-migrate", "--version"]);
    assert_success("helm la-migrate --version", &run);
    assert_eq!(stdout(&run).trim(), format!("la-migrate {VERSION}"));
}

#[test]
fn helm_4_3_refuses_a_tampered_archive_another_plugin_yaml_and_an_unknown_signer() {
    let key = TestKey::generate("release");
    let release = Release::build_signed(&key);
    let keyring = release.path().join("la-migrate-pubring.gpg");

    // One byte of the archive changed.
    let mut flipped = std::fs::read(release.archive()).unwrap();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let assets = tampered_assets(&release, &flipped);
    assert_install_refused(
        assets.path(),
        &keyring,
        "an archive with one byte changed",
        "sha256 sum does not match",
    );

    // The same files with another plugin.yaml.
    let assets = tampered_assets(&release, &archive_with_another_plugin_yaml(&release));
    assert_install_refused(
        assets.path(),
        &keyring,
        "an archive with another plugin.yaml",
        "sha256 sum does not match",
    );

    // The genuine archive, checked against a keyring that lacks the signing key.
    let stranger = TestKey::generate("stranger");
    assert_install_refused(
        release.path(),
        &stranger.public_keyring(),
        "an archive signed by a key not in the keyring",
        "signature made by unknown entity",
    );
}

#[test]
fn packaging_with_a_key_the_keyring_lacks_fails_before_writing_anything() {
    let key = TestKey::generate("release");
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(root().join("scripts/package-release.sh"))
        .arg("--binary")
        .arg(BINARY)
        .arg("--out")
        .arg(out_dir.path())
        .args(["--key", "someone-else@example.invalid", "--keyring"])
        .arg(key.secret_keyring())
        .output()
        .unwrap();
    assert!(!out.status.success(), "packaged without the key");
    assert!(
        stderr(&out).contains("no secret key 'someone-else@example.invalid' in"),
        "{}",
        stderr(&out)
    );
    let written: Vec<_> = std::fs::read_dir(out_dir.path()).unwrap().collect();
    assert!(written.is_empty(), "{written:?}");
}

#[test]
fn a_key_with_a_passphrase_signs_with_the_passphrase_file_and_not_without_it() {
    let key = TestKey::generate_with_passphrase("guarded", "Pass phrase 7");
    let keyring = key.secret_keyring();
    let work = tempfile::tempdir().unwrap();
    let passphrase = work.path().join("passphrase");
    std::fs::write(&passphrase, "Pass phrase 7\n").unwrap();
    let package = |out_dir: &Path, extra: &[&std::ffi::OsStr]| {
        Command::new(root().join("scripts/package-release.sh"))
            .arg("--binary")
            .arg(BINARY)
            .arg("--out")
            .arg(out_dir)
            .args(["--key", &key.email(), "--keyring"])
            .arg(&keyring)
            .args(extra)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };

    let signed = work.path().join("signed");
    let out = package(
        &signed,
        &["--passphrase-file".as_ref(), passphrase.as_os_str()],
    );
    assert_success("package-release.sh --passphrase-file", &out);
    // The real gpg verifies the provenance file with the exported public key.
    let verify = Command::new("gpgv")
        .arg("--keyring")
        .arg(signed.join("la-migrate-pubring.gpg"))
        .arg(signed.join(format!("{}.prov", asset_name())))
        .output()
        .unwrap();
    assert_success("gpgv <archive>.prov", &verify);

    let unsigned = work.path().join("unsigned");
    let out = package(&unsigned, &[]);
    assert!(!out.status.success(), "signed without the passphrase");
    assert!(
        stderr(&out).contains(&format!("gpg could not sign with key '{}'", key.email())),
        "{}",
        stderr(&out)
    );
    assert!(!unsigned.join(format!("{}.prov", asset_name())).exists());
}
