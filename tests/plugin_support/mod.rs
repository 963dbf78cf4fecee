//! Helpers for the plugin packaging tests: the release archive built from the freshly built
//! binary, a loopback HTTP server for it, plugin directories, and isolated helm homes.
#![allow(dead_code, unused_imports)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[path = "../common/tools.rs"]
mod tools;

pub use tools::{helm as helm_binary, HELM_VERSIONS};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const BINARY: &str = env!("CARGO_BIN_EXE_la-migrate");
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn root() -> &'static Path {
    Path::new(ROOT)
}

/// `la-migrate_<version>_<os>_<arch>.tar.gz` for this machine.
pub fn asset_name() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("la-migrate_{VERSION}_{os}_{arch}.tar.gz")
}

/// The release assets of the freshly built binary, made by `scripts/package-release.sh`.
pub struct Release {
    pub dir: tempfile::TempDir,
}

impl Release {
    pub fn build() -> Release {
        Release::build_with(&[])
    }

    /// The release assets signed with `key`: the archive's `.prov` and `la-migrate-pubring.gpg`
    /// beside it.
    pub fn build_signed(key: &TestKey) -> Release {
        let keyring = key.secret_keyring();
        Release::build_with(&[
            "--key".as_ref(),
            key.email().as_ref(),
            "--keyring".as_ref(),
            keyring.as_os_str(),
        ])
    }

    fn build_with(extra: &[&std::ffi::OsStr]) -> Release {
        let dir = tempfile::Builder::new()
            .prefix("la-migrate-release-")
            .tempdir()
            .unwrap();
        let out = Command::new(root().join("scripts/package-release.sh"))
            .arg("--binary")
            .arg(BINARY)
            .arg("--out")
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap();
        assert_success("scripts/package-release.sh", &out);
        Release { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn archive(&self) -> PathBuf {
        self.path().join(asset_name())
    }

    /// `bin/la-migrate` as stored in the archive.
    pub fn packaged_binary(&self) -> Vec<u8> {
        let out = Command::new("tar")
            .arg("-xzOf")
            .arg(self.archive())
            .arg("bin/la-migrate")
            .output()
            .unwrap();
        assert_success("tar -xzOf <archive> bin/la-migrate", &out);
        out.stdout
    }

    pub fn file_url(&self) -> String {
        format!("file://{}", self.path().display())
    }
}

/// A throwaway OpenPGP signing key (ed25519) made by the real gpg in a private gpg home; its
/// gpg agent is stopped when dropped.
pub struct TestKey {
    name: &'static str,
    passphrase: &'static str,
    dir: tempfile::TempDir,
}

impl TestKey {
    /// A new key for `name` (`<name>@example.invalid`), without a passphrase.
    pub fn generate(name: &'static str) -> TestKey {
        TestKey::generate_with_passphrase(name, "")
    }

    pub fn generate_with_passphrase(name: &'static str, passphrase: &'static str) -> TestKey {
        let dir = tempfile::Builder::new()
            .prefix("la-migrate-gpg-")
            .tempdir()
            .unwrap();
        let key = TestKey {
            name,
            passphrase,
            dir,
        };
        std::fs::create_dir(key.home()).unwrap();
        std::fs::set_permissions(
            key.home(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let uid = format!("{name} test key <{}>", key.email());
        key.gpg(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            passphrase,
            "--quick-gen-key",
            &uid,
            "ed25519",
            "sign",
            "never",
        ]);
        key
    }

    pub fn email(&self) -> String {
        format!("{}@example.invalid", self.name)
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("gnupg")
    }

    /// The real gpg on the key's own home; a missing gpg fails with the fix.
    fn gpg(&self, args: &[&str]) -> Output {
        let out = Command::new("gpg")
            .env("GNUPGHOME", self.home())
            .args(["--batch", "--quiet", "--no-tty"])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("gpg did not run ({e}): run scripts/install-test-deps.sh (Debian gnupg)")
            });
        assert_success(&format!("gpg {}", args.join(" ")), &out);
        out
    }

    /// The secret key as `gpg --export-secret-keys` writes it, for `package-release.sh --keyring`.
    pub fn secret_keyring(&self) -> PathBuf {
        let path = self.dir.path().join("secret.gpg");
        let out = self.gpg(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            self.passphrase,
            "--export-secret-keys",
            &self.email(),
        ]);
        std::fs::write(&path, out.stdout).unwrap();
        path
    }

    /// The public key in the binary format `helm plugin install --keyring` reads.
    pub fn public_keyring(&self) -> PathBuf {
        let path = self.dir.path().join("pubring.gpg");
        let out = self.gpg(&["--export", &self.email()]);
        assert!(!out.stdout.is_empty(), "gpg exported no public key");
        std::fs::write(&path, out.stdout).unwrap();
        path
    }
}

impl Drop for TestKey {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home())
            .args(["--kill", "all"])
            .output();
    }
}

/// A plugin directory as helm lays it out before the install hook runs: `plugin.yaml` and
/// `install-binary.sh` from this checkout, nothing else unless a test adds it.
pub struct PluginDir {
    pub dir: tempfile::TempDir,
}

impl PluginDir {
    pub fn new() -> PluginDir {
        let dir = tempfile::Builder::new()
            .prefix("la-migrate-plugin-")
            .tempdir()
            .unwrap();
        for file in ["plugin.yaml", "install-binary.sh"] {
            copy_preserving_mode(&root().join(file), &dir.path().join(file));
        }
        PluginDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn binary(&self) -> PathBuf {
        self.path().join("bin/la-migrate")
    }

    /// Runs `install-binary.sh` the way helm's hook does, with `env` on top of a clean
    /// environment (PATH included only when given).
    pub fn run_hook(&self, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(self.path().join("install-binary.sh"));
        cmd.env_clear()
            .env("HELM_PLUGIN_DIR", self.path())
            .env("HOME", self.path())
            .current_dir(self.path());
        if !env.iter().any(|(k, _)| *k == "PATH") {
            cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

pub fn copy_preserving_mode(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
}

/// What `binary --version` prints, or `None` when it is absent or does not run.
pub fn version_of(binary: &Path) -> Option<String> {
    let out = Command::new(binary).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `binary --version` reports the plugin's version.
pub fn assert_version(binary: &Path) {
    assert_eq!(
        version_of(binary).as_deref(),
        Some(format!("la-migrate {VERSION}").as_str()),
        "{}",
        binary.display()
    );
}

pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A static file server on 127.0.0.1 for one directory; records every request
/// (`"GET /path"`) and stops when dropped.
pub struct FileServer {
    pub url: String,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    pub fn serve(dir: &Path) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let dir = dir.to_path_buf();
        let (reqs, halt) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = serve_one(stream, &dir, &reqs);
                }
            }
        });
        FileServer {
            url: format!("http://{addr}"),
            requests,
            stop,
            addr,
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve_one(stream: TcpStream, dir: &Path, requests: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    let mut words = request_line.split_whitespace();
    let method = words.next().unwrap_or("GET").to_string();
    let path = words.next().unwrap_or("/").to_string();
    requests.lock().unwrap().push(format!("{method} {path}"));
    let file = dir.join(path.trim_start_matches('/'));
    // Helm 3 picks its archive installer from the content type of a HEAD response.
    let content_type = if path.ends_with(".tar.gz") || path.ends_with(".tgz") {
        "application/gzip"
    } else {
        "text/plain"
    };
    let mut stream = stream;
    match (path.contains(".."), std::fs::read(&file)) {
        (false, Ok(body)) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )?;
            if method != "HEAD" {
                stream.write_all(&body)?;
            }
        }
        _ => {
            stream.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )?;
        }
    }
    stream.flush()
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One helm binary with its own cache, config, data and plugins directories.
pub struct Helm {
    pub version: &'static str,
    pub bin: PathBuf,
    pub home: tempfile::TempDir,
}

impl Helm {
    pub fn isolated(version: &'static str) -> Helm {
        let home = tempfile::Builder::new()
            .prefix(&format!("la-migrate-helm-{version}-"))
            .tempdir()
            .unwrap();
        Helm {
            version,
            bin: helm_binary(version),
            home,
        }
    }

    /// An isolated helm whose home is always `dir` (emptied first, removed when dropped): a
    /// plugin installed from a directory then has the same path in every run, so a source
    /// build by its install hook stays incremental.
    pub fn isolated_at(version: &'static str, dir: &Path) -> Helm {
        let _ = std::fs::remove_dir_all(dir);
        let parent = dir.parent().unwrap();
        std::fs::create_dir_all(parent).unwrap();
        let home = tempfile::Builder::new()
            .prefix(dir.file_name().unwrap())
            .rand_bytes(0)
            .tempdir_in(parent)
            .unwrap();
        Helm {
            version,
            bin: helm_binary(version),
            home,
        }
    }

    pub fn is_v4(&self) -> bool {
        self.version.starts_with("4.")
    }

    /// A helm command in the isolated home. `HELM_PLUGINS` is the default place under the
    /// data home: helm 4.3 installs there whatever `HELM_PLUGINS` says.
    pub fn command(&self) -> Command {
        let h = self.home.path();
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", h)
            .env("HELM_CACHE_HOME", h.join("cache"))
            .env("HELM_CONFIG_HOME", h.join("config"))
            .env("HELM_DATA_HOME", h.join("data"))
            .env("HELM_PLUGINS", h.join("data/plugins"))
            .stdin(std::process::Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }
}

/// Where the source-build tests keep their checkouts and their shared cargo target directory
/// (`target/install-binary-source-build`): kept between runs, so only the first run compiles
/// the dependencies.
pub fn source_build_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("install-binary-source-build")
}

/// The cargo target directory every source build of the tests shares (cargo's lock on it
/// serialises concurrent builds).
pub fn source_build_target() -> PathBuf {
    source_build_dir().join("target")
}

/// A real copy of this checkout at `to` (replaced if there): what the workspace needs to
/// build, the plugin files and the README.
pub fn copy_checkout(to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for item in [
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        "src",
        "benches",
        "sim/Cargo.toml",
        "sim/src",
        "plugin.yaml",
        "install-binary.sh",
    ] {
        let dest = to.join(item);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        // `cp -p` keeps modification times, so an unchanged tree is not rebuilt.
        let status = Command::new("cp")
            .args(["-Rp"])
            .arg(root().join(item))
            .arg(&dest)
            .status()
            .unwrap();
        assert!(status.success(), "copying {item}");
    }
}

/// The environment of an offline source build by the install hook: no release to download
/// (an empty `file://` directory), cargo offline on its own cache, the dev profile, the shared
/// target directory. `CARGO_HOME`/`RUSTUP_HOME` are named because helm runs with its own
/// `HOME`. Returns the variables and the empty directory (keep it alive).
pub fn offline_source_build_env() -> (Vec<(String, std::ffi::OsString)>, tempfile::TempDir) {
    let empty = tempfile::tempdir().unwrap();
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
    let var_or = |name: &str, default: PathBuf| {
        std::env::var_os(name).unwrap_or_else(|| default.into_os_string())
    };
    let mut env: Vec<(String, std::ffi::OsString)> = vec![
        (
            "LA_MIGRATE_DOWNLOAD_URL".into(),
            format!("file://{}", empty.path().display()).into(),
        ),
        ("LA_MIGRATE_CARGO_PROFILE".into(), "dev".into()),
        ("CARGO_TARGET_DIR".into(), source_build_target().into()),
        ("CARGO_NET_OFFLINE".into(), "true".into()),
        (
            "CARGO_HOME".into(),
            var_or("CARGO_HOME", home.join(".cargo")),
        ),
        (
            "RUSTUP_HOME".into(),
            var_or("RUSTUP_HOME", home.join(".rustup")),
        ),
    ];
    if let Some(toolchain) = std::env::var_os("RUSTUP_TOOLCHAIN") {
        env.push(("RUSTUP_TOOLCHAIN".into(), toolchain));
    }
    (env, empty)
}
