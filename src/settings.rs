//! Flags and helm's environment, resolved once into one typed [`Settings`] value.
//!
//! Precedence: the plugin's own flag, then helm's variable (`HELM_NAMESPACE`, ...), then the
//! default. Resolution is pure: the environment comes in as a lookup function, so tests can
//! feed any environment.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::{ColorChoice, DEFAULT_TARGET_VERSION};
use crate::cli::{GlobalArgs, MigrationArgs, OutputFormat, DEFAULT_CHART, DEFAULT_RELEASE};
use crate::error::{Error, Result};
use crate::exit::ExitCode;

/// A value that must never be printed (tokens). `Debug` and `Serialize` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value itself, for the one place that hands it to a client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// How to reach the cluster: helm's kube flags, as helm passes them to plugins.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct KubeSettings {
    /// `--kubeconfig` / `KUBECONFIG` (may hold several paths joined by `:`)
    #[serde(serialize_with = "serialize_os_string")]
    pub kubeconfig: Option<OsString>,
    /// `--kube-context` / `HELM_KUBECONTEXT`
    pub context: Option<String>,
    /// `HELM_KUBEAPISERVER`: overrides the server of the selected cluster
    pub apiserver: Option<String>,
    /// `HELM_KUBETOKEN`: bearer token instead of the kubeconfig's credentials
    pub token: Option<Secret>,
    /// `HELM_KUBECAFILE`: CA bundle for the API server
    pub ca_file: Option<PathBuf>,
    /// `HELM_KUBEINSECURE_SKIP_TLS_VERIFY`
    pub insecure_skip_tls_verify: bool,
    /// `HELM_KUBETLS_SERVER_NAME`
    pub tls_server_name: Option<String>,
    /// `HELM_KUBEASUSER`: impersonate this user
    pub as_user: Option<String>,
    /// `HELM_KUBEASGROUPS`: impersonate these groups (comma separated)
    pub as_groups: Vec<String>,
}

/// A path list as the text a person typed (serde would otherwise write the platform's raw
/// representation, such as `{"Unix": [47, 120]}`).
fn serialize_os_string<S: serde::Serializer>(
    value: &Option<OsString>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.serialize_some(&v.to_string_lossy()),
        None => s.serialize_none(),
    }
}

/// Where the target chart comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "ref", rename_all = "lowercase")]
pub enum ChartRef {
    /// `oci://...`
    Oci(String),
    /// A packaged chart on disk (`.tgz`)
    Archive(PathBuf),
    /// An unpacked chart directory
    Directory(PathBuf),
    /// `repo/chart` from a configured helm repository
    Repo(String),
}

impl ChartRef {
    /// Classifies a `--chart` value. A path is only taken as local when it exists, and is
    /// then made absolute, so the plan's commands and a resumed run from another directory
    /// name the same chart.
    pub fn parse(reference: &str, env: &dyn Env) -> ChartRef {
        if reference.starts_with("oci://") {
            return ChartRef::Oci(reference.to_string());
        }
        let path = Path::new(reference);
        match env.path_kind(path) {
            Some(true) => ChartRef::Directory(env.absolute(path)),
            Some(false) => ChartRef::Archive(env.absolute(path)),
            None => ChartRef::Repo(reference.to_string()),
        }
    }

    /// The argument helm takes for this chart.
    pub fn as_helm_arg(&self) -> OsString {
        match self {
            ChartRef::Oci(s) | ChartRef::Repo(s) => s.into(),
            ChartRef::Archive(p) | ChartRef::Directory(p) => p.into(),
        }
    }

    /// Whether helm needs `--version` (a local chart carries its own).
    pub fn is_remote(&self) -> bool {
        matches!(self, ChartRef::Oci(_) | ChartRef::Repo(_))
    }
}

/// The target of the migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetSettings {
    pub chart: ChartRef,
    /// `--version`, or the default (a local chart's own version then decides).
    pub version: String,
    /// Whether `--version` was given.
    pub version_given: bool,
}

/// Everything a command needs to know about where and how to work.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub namespace: String,
    pub release: String,
    pub kube: KubeSettings,
    /// The helm binary children are run with (absolute when it could be resolved)
    pub helm_bin: PathBuf,
    /// `true` when started by helm (`HELM_PLUGIN_NAME` set)
    pub under_helm: bool,
    /// `HELM_DRIVER`: where helm keeps its release records (`None`: Secrets, helm's default)
    #[serde(skip)]
    pub helm_driver: Option<String>,
    pub target: Option<TargetSettings>,
    pub output: OutputFormat,
    /// 0 = warnings, 1 = info, 2 = debug, 3 = trace; `HELM_DEBUG=true` counts as 2
    pub verbosity: u8,
    pub quiet: bool,
    #[serde(skip)]
    pub color: ColorChoice,
}

/// The process environment as the resolver sees it.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
    fn var_os(&self, name: &str) -> Option<OsString>;
    /// Resolves a bare or relative program name against `PATH` and the working directory.
    fn resolve_program(&self, program: &Path) -> Option<PathBuf>;
    /// `Some(is_dir)` when the path exists.
    fn path_kind(&self, path: &Path) -> Option<bool>;
    /// The path made absolute against the working directory.
    fn absolute(&self, path: &Path) -> PathBuf;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn var_os(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }
    fn resolve_program(&self, program: &Path) -> Option<PathBuf> {
        let cwd = std::env::current_dir().ok()?;
        which::which_in(program, std::env::var_os("PATH"), cwd).ok()
    }
    fn path_kind(&self, path: &Path) -> Option<bool> {
        std::fs::metadata(path).ok().map(|m| m.is_dir())
    }
    fn absolute(&self, path: &Path) -> PathBuf {
        std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn parse_bool(name: &str, value: Option<String>) -> Result<bool> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
        Some(v) => Err(
            Error::new(ExitCode::Usage, format!("{name}={v:?} is not a boolean"))
                .hint(format!("set {name} to true or false")),
        ),
    }
}

impl Settings {
    /// Resolves flags and environment into settings. `migration` is the `4.44` command's
    /// arguments, when that command runs.
    pub fn resolve(
        global: &GlobalArgs,
        migration: Option<&MigrationArgs>,
        env: &dyn Env,
    ) -> Result<Settings> {
        let namespace = global
            .namespace
            .clone()
            .or_else(|| non_empty(env.var("HELM_NAMESPACE")))
            .unwrap_or_else(|| "default".to_string());
        validate_dns_label("namespace", &namespace)?;

        let release = global
            .release
            .clone()
            .unwrap_or_else(|| DEFAULT_RELEASE.to_string());
        validate_release_name(&release)?;

        let kube = KubeSettings {
            kubeconfig: global
                .kubeconfig
                .clone()
                .map(OsString::from)
                .or_else(|| env.var_os("KUBECONFIG").filter(|v| !v.is_empty())),
            context: global
                .kube_context
                .clone()
                .or_else(|| non_empty(env.var("HELM_KUBECONTEXT"))),
            apiserver: non_empty(env.var("HELM_KUBEAPISERVER")),
            token: non_empty(env.var("HELM_KUBETOKEN")).map(Secret::new),
            ca_file: non_empty(env.var("HELM_KUBECAFILE")).map(PathBuf::from),
            insecure_skip_tls_verify: parse_bool(
                "HELM_KUBEINSECURE_SKIP_TLS_VERIFY",
                env.var("HELM_KUBEINSECURE_SKIP_TLS_VERIFY"),
            )?,
            tls_server_name: non_empty(env.var("HELM_KUBETLS_SERVER_NAME")),
            as_user: non_empty(env.var("HELM_KUBEASUSER")),
            as_groups: non_empty(env.var("HELM_KUBEASGROUPS"))
                .map(|g| parse_groups(&g))
                .unwrap_or_default(),
        };

        let helm_bin = resolve_helm_bin(env)?;
        let helm_debug = parse_bool("HELM_DEBUG", env.var("HELM_DEBUG"))?;
        let verbosity = if global.quiet {
            0
        } else {
            global.verbose.max(if helm_debug { 2 } else { 0 })
        };

        let target = migration.map(|m| TargetSettings {
            chart: ChartRef::parse(&m.chart, env),
            version: m
                .target_version
                .clone()
                .unwrap_or_else(|| DEFAULT_TARGET_VERSION.to_string()),
            version_given: m.target_version.is_some(),
        });
        if let Some(t) = &target {
            validate_target_version(&t.version)?;
        }

        Ok(Settings {
            namespace,
            release,
            kube,
            helm_bin,
            under_helm: env.var("HELM_PLUGIN_NAME").is_some(),
            helm_driver: non_empty(env.var("HELM_DRIVER")),
            target,
            output: global.output,
            verbosity,
            quiet: global.quiet,
            color: global.color,
        })
    }

    /// Whether helm keeps its release records in Secrets (`HELM_DRIVER` unset, `secret` or
    /// `secrets`), where the plugin can drop one.
    pub fn helm_records_in_secrets(&self) -> bool {
        self.helm_driver
            .as_deref()
            .is_none_or(|d| d.starts_with("secret"))
    }

    /// The target, for commands that need one.
    pub fn target(&self) -> &TargetSettings {
        static DEFAULT: std::sync::OnceLock<TargetSettings> = std::sync::OnceLock::new();
        self.target.as_ref().unwrap_or_else(|| {
            DEFAULT.get_or_init(|| TargetSettings {
                chart: ChartRef::Oci(DEFAULT_CHART.to_string()),
                version: DEFAULT_TARGET_VERSION.to_string(),
                version_given: false,
            })
        })
    }
}

/// `HELM_BIN` is helm's argv[0] as typed: it may be bare (`helm`) or relative. Resolve it now,
/// so a later change of directory cannot change which helm runs.
fn resolve_helm_bin(env: &dyn Env) -> Result<PathBuf> {
    let given = env
        .var_os("HELM_BIN")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| OsString::from("helm"));
    let path = PathBuf::from(&given);
    match env.resolve_program(&path) {
        Some(resolved) => Ok(resolved),
        None if env.var_os("HELM_BIN").is_some() => Err(Error::new(
            ExitCode::NotFound,
            format!("helm binary {:?} (from HELM_BIN) was not found", path),
        )
        .hint("run the plugin as `helm la-migrate ...`, or set HELM_BIN to the helm binary")),
        // No helm at all: commands that need one fail when they call it, with this hint.
        None => Ok(path),
    }
}

/// `HELM_KUBEASGROUPS` is comma separated; helm 3.17 to 4.3 repeat every `--kube-as-group`
/// in it (`a,b,a,b`), so duplicates are dropped, keeping the first occurrence.
fn parse_groups(value: &str) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for g in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !groups.iter().any(|seen| seen == g) {
            groups.push(g.to_string());
        }
    }
    groups
}

fn validate_dns_label(what: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ExitCode::Usage,
            format!("{what} {value:?} is not a valid Kubernetes name"),
        )
        .hint(format!(
            "a {what} is 1-63 lowercase letters, digits and '-', starting and ending alphanumeric"
        )))
    }
}

fn validate_release_name(value: &str) -> Result<()> {
    // Helm's rule: a DNS-1123 subdomain of at most 53 characters.
    let ok = !value.is_empty()
        && value.len() <= 53
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ExitCode::Usage,
            format!("release name {value:?} is not a valid helm release name"),
        )
        .hint("list the releases with `helm list -n <namespace>` and pass one with --release"))
    }
}

/// Whether a chart version is one the migration goes to: 4.44 or a later 4.x.
pub fn is_target_version(version: &str) -> bool {
    let mut parts = version.trim_start_matches('v').split('.');
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    matches!((major, minor), (Some(4), Some(m)) if m >= 44)
}

fn validate_target_version(version: &str) -> Result<()> {
    match is_target_version(version) {
        true => Ok(()),
        false => Err(Error::new(
            ExitCode::Usage,
            format!("target chart version {version:?} is not a 4.44 or later 4.x chart"),
        )
        .hint("pass --version 4.44.0 (the default), or a later 4.x chart such as 4.45.0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct FakeEnv {
        vars: HashMap<&'static str, &'static str>,
        programs: HashMap<PathBuf, PathBuf>,
        paths: HashMap<PathBuf, bool>,
    }

    impl Env for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).map(|v| v.to_string())
        }
        fn var_os(&self, name: &str) -> Option<OsString> {
            self.vars.get(name).map(OsString::from)
        }
        fn resolve_program(&self, program: &Path) -> Option<PathBuf> {
            self.programs.get(program).cloned()
        }
        fn path_kind(&self, path: &Path) -> Option<bool> {
            self.paths.get(path).copied()
        }
        fn absolute(&self, path: &Path) -> PathBuf {
            Path::new("/home/operator").join(path)
        }
    }

    fn env(vars: &[(&'static str, &'static str)]) -> FakeEnv {
        FakeEnv {
            vars: vars.iter().copied().collect(),
            programs: [(PathBuf::from("helm"), PathBuf::from("/usr/bin/helm"))]
                .into_iter()
                .collect(),
            ..FakeEnv::default()
        }
    }

    #[test]
    fn helm_driver_says_whether_release_records_are_secrets() {
        let driver = |vars: &[(&'static str, &'static str)]| {
            let s = Settings::resolve(&GlobalArgs::default(), None, &env(vars)).unwrap();
            (s.helm_driver.clone(), s.helm_records_in_secrets())
        };
        assert_eq!(driver(&[]), (None, true));
        assert_eq!(driver(&[("HELM_DRIVER", "")]), (None, true));
        assert_eq!(
            driver(&[("HELM_DRIVER", "secrets")]),
            (Some("secrets".into()), true)
        );
        assert_eq!(
            driver(&[("HELM_DRIVER", "configmap")]),
            (Some("configmap".into()), false)
        );
    }

    #[test]
    fn helm_environment_fills_the_settings() {
        let e = env(&[
            ("HELM_NAMESPACE", "live-agent"),
            ("HELM_KUBECONTEXT", "prod"),
            ("KUBECONFIG", "/tmp/kc"),
            ("HELM_KUBEAPISERVER", "https://10.0.0.1:6443"),
            ("HELM_KUBETOKEN", "s3cr3t"),
            ("HELM_KUBECAFILE", "/tmp/ca.crt"),
            ("HELM_KUBEINSECURE_SKIP_TLS_VERIFY", "true"),
            ("HELM_KUBETLS_SERVER_NAME", "api.internal"),
            ("HELM_KUBEASUSER", "alice"),
            ("HELM_KUBEASGROUPS", "ops, dev"),
            ("HELM_DEBUG", "true"),
            ("HELM_BIN", "helm"),
            ("HELM_PLUGIN_NAME", "la-migrate"),
        ]);
        let s = Settings::resolve(&GlobalArgs::default(), None, &e).unwrap();
        assert_eq!(s.namespace, "live-agent");
        assert_eq!(s.release, "cognigy-live-agent");
        assert_eq!(s.kube.context.as_deref(), Some("prod"));
        assert_eq!(s.kube.kubeconfig, Some(OsString::from("/tmp/kc")));
        assert_eq!(s.kube.apiserver.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(s.kube.token.as_ref().map(Secret::expose), Some("s3cr3t"));
        assert_eq!(s.kube.ca_file, Some(PathBuf::from("/tmp/ca.crt")));
        assert!(s.kube.insecure_skip_tls_verify);
        assert_eq!(s.kube.tls_server_name.as_deref(), Some("api.internal"));
        assert_eq!(s.kube.as_user.as_deref(), Some("alice"));
        assert_eq!(s.kube.as_groups, vec!["ops", "dev"]);
        assert_eq!(s.helm_bin, PathBuf::from("/usr/bin/helm"));
        assert_eq!(s.verbosity, 2);
        assert!(s.under_helm);
    }

    #[test]
    fn impersonated_groups_repeated_by_helm_are_kept_once_in_order() {
        let e = env(&[("HELM_KUBEASGROUPS", "ops,dev,ops,dev")]);
        let s = Settings::resolve(&GlobalArgs::default(), None, &e).unwrap();
        assert_eq!(s.kube.as_groups, vec!["ops", "dev"]);
    }

    #[test]
    fn flags_win_over_helm_environment() {
        let e = env(&[("HELM_NAMESPACE", "default"), ("HELM_KUBECONTEXT", "a")]);
        let global = GlobalArgs {
            namespace: Some("live-agent".into()),
            kube_context: Some("b".into()),
            kubeconfig: Some("/k".into()),
            ..GlobalArgs::default()
        };
        let s = Settings::resolve(&global, None, &e).unwrap();
        assert_eq!(s.namespace, "live-agent");
        assert_eq!(s.kube.context.as_deref(), Some("b"));
        assert_eq!(s.kube.kubeconfig, Some(OsString::from("/k")));
    }

    #[test]
    fn the_kubeconfig_list_is_plain_text_in_json() {
        let e = env(&[("KUBECONFIG", "/a/config:/b/config")]);
        let s = Settings::resolve(&GlobalArgs::default(), None, &e).unwrap();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["kube"]["kubeconfig"], "/a/config:/b/config");
        let e = env(&[]);
        let s = Settings::resolve(&GlobalArgs::default(), None, &e).unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap()["kube"]["kubeconfig"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn token_never_shows_in_debug_or_json() {
        let e = env(&[("HELM_KUBETOKEN", "very-secret-token")]);
        let s = Settings::resolve(&GlobalArgs::default(), None, &e).unwrap();
        assert!(!format!("{s:?}").contains("very-secret-token"));
        assert!(!serde_json::to_string(&s)
            .unwrap()
            .contains("very-secret-token"));
    }

    #[test]
    fn a_missing_helm_bin_is_an_error_naming_it() {
        let e = env(&[("HELM_BIN", "./nope/helm")]);
        let err = Settings::resolve(&GlobalArgs::default(), None, &e).unwrap_err();
        assert_eq!(err.code, ExitCode::NotFound);
        assert!(err.message.contains("nope/helm"), "{}", err.message);
    }

    #[test]
    fn a_bad_helm_debug_value_is_a_usage_error() {
        let e = env(&[("HELM_DEBUG", "yes please")]);
        let err = Settings::resolve(&GlobalArgs::default(), None, &e).unwrap_err();
        assert_eq!(err.code, ExitCode::Usage);
        assert!(err.message.contains("HELM_DEBUG"));
    }

    #[test]
    fn invalid_names_are_refused_with_a_hint() {
        let e = env(&[]);
        let global = GlobalArgs {
            namespace: Some("Live_Agent".into()),
            ..GlobalArgs::default()
        };
        let err = Settings::resolve(&global, None, &e).unwrap_err();
        assert!(err.message.contains("Live_Agent"));
        assert!(err.hint.is_some());
        let global = GlobalArgs {
            release: Some("-bad".into()),
            ..GlobalArgs::default()
        };
        assert!(Settings::resolve(&global, None, &e).is_err());
    }

    #[test]
    fn chart_references_are_classified_and_local_paths_made_absolute() {
        let env = FakeEnv {
            paths: [
                (PathBuf::from("charts/live-agent-4.44.0.tgz"), false),
                (PathBuf::from("charts/live-agent"), true),
                (PathBuf::from("/srv/live-agent-4.45.0.tgz"), false),
            ]
            .into_iter()
            .collect(),
            ..FakeEnv::default()
        };
        assert_eq!(
            ChartRef::parse("oci://cognigy.azurecr.io/helm/live-agent", &env),
            ChartRef::Oci("oci://cognigy.azurecr.io/helm/live-agent".into())
        );
        assert_eq!(
            ChartRef::parse("charts/live-agent-4.44.0.tgz", &env),
            ChartRef::Archive("/home/operator/charts/live-agent-4.44.0.tgz".into())
        );
        assert_eq!(
            ChartRef::parse("charts/live-agent", &env),
            ChartRef::Directory("/home/operator/charts/live-agent".into())
        );
        assert_eq!(
            ChartRef::parse("/srv/live-agent-4.45.0.tgz", &env),
            ChartRef::Archive("/srv/live-agent-4.45.0.tgz".into())
        );
        assert_eq!(
            ChartRef::parse("cognigy/live-agent", &env),
            ChartRef::Repo("cognigy/live-agent".into())
        );
    }

    #[test]
    fn only_4_44_or_later_targets_are_accepted() {
        assert!(validate_target_version("4.44.0").is_ok());
        assert!(validate_target_version("4.45.0").is_ok());
        assert!(validate_target_version("4.53.0").is_ok());
        assert!(validate_target_version("4.43.1").is_err());
        assert!(validate_target_version("5.0.0").is_err());
        assert!(validate_target_version("latest").is_err());
    }
}
