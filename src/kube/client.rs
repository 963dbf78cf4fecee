//! A `kube::Client` built from [`KubeSettings`] the way helm builds its own.
//!
//! kube's `Config::infer()` is not enough here: it ignores `HELM_KUBECONTEXT` and every
//! `HELM_KUBE*` override, so the plugin would act on a different cluster than the `helm`
//! command that started it. The rules below follow client-go's loading rules:
//! - `KUBECONFIG` is a list of files (`:`-separated); missing ones are skipped, the rest are
//!   merged (the first file to set a value wins). Without it, `~/.kube/config`.
//! - The context is `--kube-context` / `HELM_KUBECONTEXT`, else the merged `current-context`.
//! - `HELM_KUBEAPISERVER`, `HELM_KUBETOKEN`, `HELM_KUBECAFILE`,
//!   `HELM_KUBEINSECURE_SKIP_TLS_VERIFY`, `HELM_KUBETLS_SERVER_NAME`, `HELM_KUBEASUSER` and
//!   `HELM_KUBEASGROUPS` override what the context says.
//! - With no kubeconfig at all, an API server given by `HELM_KUBEAPISERVER` is enough, and
//!   inside a pod the service account is used.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ::kube::config::{KubeConfigOptions, Kubeconfig};
use ::kube::{Client, Config};
use secrecy::SecretString;

use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::settings::{KubeSettings, Settings};

/// A client and what it was built from, for messages that name the cluster.
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    /// Closed when this run loses the migration lock: the client's requests fail from then on.
    pub fence: super::fence::Fence,
    /// The context used (`None` without a kubeconfig: API server override or in-cluster)
    pub context: Option<String>,
    pub cluster_url: String,
}

/// Where the configuration came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Kubeconfig files that were read, in merge order
    Files(Vec<PathBuf>),
    /// No kubeconfig: the API server came from `HELM_KUBEAPISERVER`
    ApiServerOverride,
    /// No kubeconfig: the pod's service account
    InCluster,
}

/// A configuration ready for a client, and the context it was taken from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub context: Option<String>,
    pub source: Source,
}

/// Builds the client for `settings`. Must run inside the tokio runtime.
pub async fn connect(settings: &Settings) -> Result<Connection> {
    let loaded = load_config(&settings.kube, &settings.namespace, home_dir().as_deref()).await?;
    let cluster_url = loaded.config.cluster_url.to_string();
    let where_ = describe(&loaded);
    let fence = super::fence::Fence::default();
    let client = ::kube::client::ClientBuilder::try_from(loaded.config)
        .map(|b| b.with_layer(&fence).build())
        .map_err(|e| {
            Error::new(
            ExitCode::Failure,
            format!("cannot build a Kubernetes client for {where_}"),
        )
        .source(e)
        .hint("check the context's certificate and credentials with `kubectl config view --minify`")
        })?;
    Ok(Connection {
        client,
        fence,
        context: loaded.context,
        cluster_url,
    })
}

/// Reads the kubeconfig(s), selects the context and applies helm's overrides. `home` is where
/// `.kube/config` is looked for when `KUBECONFIG` is not set.
pub async fn load_config(
    kube: &KubeSettings,
    namespace: &str,
    home: Option<&Path>,
) -> Result<Loaded> {
    let files = kubeconfig_files(kube.kubeconfig.as_ref(), home);
    let present: Vec<PathBuf> = files.iter().filter(|p| p.exists()).cloned().collect();

    let mut loaded = if present.is_empty() {
        without_kubeconfig(kube, &files)?
    } else {
        let merged = read_merged(&present)?;
        let context = select_context(&merged, kube.context.as_deref(), &present)?;
        let options = KubeConfigOptions {
            context: Some(context.clone()),
            ..KubeConfigOptions::default()
        };
        let config = Config::from_custom_kubeconfig(merged, &options)
            .await
            .map_err(|e| {
                Error::new(
                    ExitCode::InvalidInput,
                    format!(
                        "kube context {context:?} in {} is unusable",
                        join_paths(&present)
                    ),
                )
                .source(e)
                .hint(format!(
                    "inspect it with `kubectl config view --minify --context {context}`"
                ))
            })?;
        Loaded {
            config,
            context: Some(context),
            source: Source::Files(present),
        }
    };

    let ca = match &kube.ca_file {
        Some(path) => Some(read_ca_file(path)?),
        None => None,
    };
    apply_overrides(&mut loaded.config, kube, ca)?;
    loaded.config.default_namespace = namespace.to_string();
    bound_reads(&mut loaded.config);
    Ok(loaded)
}

/// How long the API server may leave a request unanswered (or a response half-read) before
/// the request fails: kube leaves it unbounded by default, so a server that stops answering
/// would hold a run forever.
pub const API_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Every read from the API server bounded by [`API_READ_TIMEOUT`], counted from the request's
/// last write: a long exec session stays open, kept alive by the pings kube writes on it
/// every 60 s, while a server that no longer answers fails the request.
fn bound_reads(config: &mut Config) {
    config.read_timeout = Some(API_READ_TIMEOUT);
    config.reset_reader_on_write = true;
}

/// The files `KUBECONFIG` names (empty entries dropped), or `~/.kube/config`.
pub fn kubeconfig_files(kubeconfig: Option<&OsString>, home: Option<&Path>) -> Vec<PathBuf> {
    match kubeconfig {
        Some(list) if !list.is_empty() => std::env::split_paths(list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        _ => home
            .map(|h| vec![h.join(".kube").join("config")])
            .unwrap_or_default(),
    }
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn read_merged(files: &[PathBuf]) -> Result<Kubeconfig> {
    let mut merged = Kubeconfig::default();
    for path in files {
        let next = Kubeconfig::read_from(path).map_err(|e| {
            Error::new(
                ExitCode::InvalidInput,
                format!("cannot read kubeconfig {}", path.display()),
            )
            .source(e)
            .hint("fix the file, or point --kubeconfig / KUBECONFIG at a valid one")
        })?;
        merged = merged.merge(next).map_err(|e| {
            Error::new(
                ExitCode::InvalidInput,
                format!("cannot merge kubeconfig {}", path.display()),
            )
            .source(e)
            .hint("use one kubeconfig file with --kubeconfig")
        })?;
    }
    Ok(merged)
}

/// The context to use: the one asked for (which must exist), else `current-context`.
pub fn select_context(
    config: &Kubeconfig,
    wanted: Option<&str>,
    files: &[PathBuf],
) -> Result<String> {
    let names: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
    let available = if names.is_empty() {
        "it defines no contexts".to_string()
    } else {
        format!("it defines: {}", names.join(", "))
    };
    let (name, origin) = match (wanted, config.current_context.as_deref()) {
        (Some(w), _) => (w, "--kube-context"),
        (None, Some(c)) if !c.is_empty() => (c, "current-context"),
        (None, _) => {
            return Err(Error::new(
                ExitCode::Usage,
                format!(
                    "no kube context chosen: {} sets no current-context ({available})",
                    join_paths(files)
                ),
            )
            .hint("pass --kube-context <name>, or run `kubectl config use-context <name>`"));
        }
    };
    if names.contains(&name) {
        Ok(name.to_string())
    } else {
        Err(Error::new(
            ExitCode::NotFound,
            format!(
                "kube context {name:?} ({origin}) is not in {} ({available})",
                join_paths(files)
            ),
        )
        .hint(
            "list the contexts with `kubectl config get-contexts` and pass one with --kube-context",
        ))
    }
}

/// No kubeconfig file exists: an API server override or the pod's service account will do.
fn without_kubeconfig(kube: &KubeSettings, looked_at: &[PathBuf]) -> Result<Loaded> {
    let looked = if looked_at.is_empty() {
        "no kubeconfig (KUBECONFIG and HOME are unset)".to_string()
    } else {
        format!("no kubeconfig at {}", join_paths(looked_at))
    };
    if let Some(context) = &kube.context {
        return Err(Error::new(
            ExitCode::NotFound,
            format!("kube context {context:?} was asked for, but there is {looked}"),
        )
        .hint("pass --kubeconfig <file> (helm: --kubeconfig) naming the file that defines it"));
    }
    if let Some(server) = &kube.apiserver {
        let url = parse_server(server)?;
        return Ok(Loaded {
            config: Config::new(url),
            context: None,
            source: Source::ApiServerOverride,
        });
    }
    match Config::incluster() {
        Ok(config) => Ok(Loaded {
            config,
            context: None,
            source: Source::InCluster,
        }),
        Err(_) => Err(Error::new(
            ExitCode::NotFound,
            format!("cannot reach a cluster: there is {looked}, and this is not a pod"),
        )
        .hint("pass --kubeconfig <file> and --kube-context <name>, or set KUBECONFIG")),
    }
}

fn parse_server(server: &str) -> Result<http::Uri> {
    let invalid = || {
        Error::new(
            ExitCode::Usage,
            format!("HELM_KUBEAPISERVER={server:?} is not an API server URL"),
        )
        .hint("pass --kube-apiserver https://<host>:<port> to helm")
    };
    let url: http::Uri = server.parse().map_err(|e| invalid().source(e))?;
    match (url.scheme_str(), url.host()) {
        (Some("https" | "http"), Some(_)) => Ok(url),
        _ => Err(invalid()),
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<Vec<u8>>> {
    let unusable = |why: String| {
        Error::new(
            ExitCode::InvalidInput,
            format!(
                "CA file {} (HELM_KUBECAFILE) is unusable: {why}",
                path.display()
            ),
        )
        .hint("pass --kube-ca-file a PEM file with the API server's CA certificate")
    };
    let pem = std::fs::read(path).map_err(|e| unusable(e.to_string()))?;
    let certs = parse_pem_certificates(&pem).map_err(unusable)?;
    if certs.is_empty() {
        return Err(unusable("it holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// DER bodies of the `CERTIFICATE` blocks of a PEM bundle.
fn parse_pem_certificates(data: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    let blocks = pem::parse_many(data).map_err(|e| format!("it is not a PEM file: {e}"))?;
    Ok(blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect())
}

/// Applies helm's `--kube-*` overrides, with client-go's precedence: an API server override
/// also replaces the kubeconfig's TLS server name; a CA file or `insecure` replaces the
/// kubeconfig's CA; a token replaces the kubeconfig user's other credentials.
pub fn apply_overrides(
    config: &mut Config,
    kube: &KubeSettings,
    ca: Option<Vec<Vec<u8>>>,
) -> Result<()> {
    if let Some(server) = &kube.apiserver {
        config.cluster_url = parse_server(server)?;
    }
    if kube.apiserver.is_some() || kube.tls_server_name.is_some() {
        config.tls_server_name = kube.tls_server_name.clone();
    }
    if ca.is_some() || kube.insecure_skip_tls_verify {
        config.accept_invalid_certs = kube.insecure_skip_tls_verify;
        config.root_cert = ca;
    }
    if let Some(token) = &kube.token {
        let auth = &mut config.auth_info;
        auth.token = Some(SecretString::from(token.expose().to_string()));
        auth.token_file = None;
        auth.username = None;
        auth.password = None;
        auth.exec = None;
        auth.auth_provider = None;
    }
    if let Some(user) = &kube.as_user {
        config.auth_info.impersonate = Some(user.clone());
    }
    if !kube.as_groups.is_empty() {
        config.auth_info.impersonate_groups = Some(kube.as_groups.clone());
    }
    Ok(())
}

fn describe(loaded: &Loaded) -> String {
    match (&loaded.source, &loaded.context) {
        (Source::Files(files), Some(context)) => {
            format!("kube context {context:?} in {}", join_paths(files))
        }
        (Source::Files(files), None) => join_paths(files),
        (Source::ApiServerOverride, _) => {
            format!(
                "API server {} (HELM_KUBEAPISERVER)",
                loaded.config.cluster_url
            )
        }
        (Source::InCluster, _) => "the pod's service account".to_string(),
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;
    use secrecy::ExposeSecret;
    use std::io::{BufRead, BufReader, Write};

    const TWO_CONTEXTS: &str = r#"
apiVersion: v1
kind: Config
current-context: staging
clusters:
- name: staging
  cluster:
    server: https://staging.example:6443
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkFRSURCQT09Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K
- name: prod
  cluster:
    server: https://prod.example:6443
    tls-server-name: api.prod.internal
contexts:
- name: staging
  context: {cluster: staging, user: staging-admin, namespace: staging-ns}
- name: prod
  context: {cluster: prod, user: prod-admin, namespace: prod-ns}
users:
- name: staging-admin
  user: {token: staging-token}
- name: prod-admin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: get-prod-token
"#;

    /// A CA bundle whose one certificate's DER body is the bytes 1, 2, 3, 4.
    const CA_1234: &str = "-----BEGIN CERTIFICATE-----\nAQIDBA==\n-----END CERTIFICATE-----\n";

    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Dir {
            Dir(tempfile::tempdir().unwrap())
        }
        fn file(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    fn settings(kubeconfig: &[&Path]) -> KubeSettings {
        let joined = std::env::join_paths(kubeconfig).unwrap();
        KubeSettings {
            kubeconfig: Some(joined),
            ..KubeSettings::default()
        }
    }

    fn token(config: &Config) -> Option<String> {
        config
            .auth_info
            .token
            .as_ref()
            .map(|t| t.expose_secret().to_string())
    }

    #[tokio::test]
    async fn current_context_gives_server_ca_and_credentials_and_the_namespace_is_the_settings_one()
    {
        let dir = Dir::new();
        let kc = dir.file("config", TWO_CONTEXTS);
        let loaded = load_config(&settings(&[&kc]), "live-agent", None)
            .await
            .unwrap();
        assert_eq!(loaded.context.as_deref(), Some("staging"));
        assert_eq!(loaded.source, Source::Files(vec![kc]));
        let c = &loaded.config;
        assert_eq!(c.cluster_url.to_string(), "https://staging.example:6443/");
        assert_eq!(c.root_cert, Some(vec![vec![1, 2, 3, 4]]));
        assert_eq!(token(c).as_deref(), Some("staging-token"));
        assert_eq!(c.default_namespace, "live-agent");
        assert!(!c.accept_invalid_certs);
    }

    #[tokio::test]
    async fn every_read_from_the_api_server_is_bounded_and_exec_sessions_are_kept_alive() {
        let dir = Dir::new();
        let kc = dir.file("config", TWO_CONTEXTS);
        let loaded = load_config(&settings(&[&kc]), "live-agent", None)
            .await
            .unwrap();
        // kube's default is no read timeout at all: a silent server would hold a run forever.
        assert_eq!(loaded.config.read_timeout, Some(API_READ_TIMEOUT));
        // Counted from the last write, so kube's 60 s pings keep a quiet exec session open.
        assert!(loaded.config.reset_reader_on_write);
        assert!(API_READ_TIMEOUT > std::time::Duration::from_secs(60));
        assert!(loaded.config.connect_timeout.is_some());
    }

    #[tokio::test]
    async fn the_kube_context_setting_selects_another_context_than_the_current_one() {
        let dir = Dir::new();
        let kc = dir.file("config", TWO_CONTEXTS);
        let kube = KubeSettings {
            context: Some("prod".into()),
            ..settings(&[&kc])
        };
        let loaded = load_config(&kube, "live-agent", None).await.unwrap();
        let c = &loaded.config;
        assert_eq!(loaded.context.as_deref(), Some("prod"));
        assert_eq!(c.cluster_url.to_string(), "https://prod.example:6443/");
        assert_eq!(c.tls_server_name.as_deref(), Some("api.prod.internal"));
        assert_eq!(c.root_cert, None);
        assert_eq!(token(c), None);
        let exec = c.auth_info.exec.as_ref().expect("prod-admin's exec plugin");
        assert_eq!(exec.command.as_deref(), Some("get-prod-token"));
    }

    #[tokio::test]
    async fn a_kubeconfig_list_is_merged_with_the_first_file_winning_and_missing_files_skipped() {
        let dir = Dir::new();
        let first = dir.file(
            "first",
            r#"
current-context: mine
clusters:
- {name: shared, cluster: {server: "https://first.example"}}
contexts:
- {name: mine, context: {cluster: shared, user: me}}
users:
- {name: me, user: {token: first-token}}
"#,
        );
        let second = dir.file(
            "second",
            r#"
current-context: theirs
clusters:
- {name: shared, cluster: {server: "https://second.example"}}
- {name: other, cluster: {server: "https://other.example"}}
contexts:
- {name: theirs, context: {cluster: other, user: me}}
users:
- {name: me, user: {token: second-token}}
"#,
        );
        let missing = dir.0.path().join("missing");
        let kube = settings(&[&missing, &first, &second]);
        let loaded = load_config(&kube, "default", None).await.unwrap();
        assert_eq!(loaded.context.as_deref(), Some("mine"));
        assert_eq!(loaded.source, Source::Files(vec![first, second]));
        assert_eq!(
            loaded.config.cluster_url.to_string(),
            "https://first.example/"
        );
        assert_eq!(token(&loaded.config).as_deref(), Some("first-token"));

        let kube = KubeSettings {
            context: Some("theirs".into()),
            ..kube
        };
        let loaded = load_config(&kube, "default", None).await.unwrap();
        assert_eq!(
            loaded.config.cluster_url.to_string(),
            "https://other.example/"
        );
        assert_eq!(token(&loaded.config).as_deref(), Some("first-token"));
    }

    #[tokio::test]
    async fn without_kubeconfig_the_file_in_the_home_directory_is_read() {
        let dir = Dir::new();
        std::fs::create_dir(dir.0.path().join(".kube")).unwrap();
        dir.file(".kube/config", TWO_CONTEXTS);
        let loaded = load_config(&KubeSettings::default(), "x", Some(dir.0.path()))
            .await
            .unwrap();
        assert_eq!(loaded.context.as_deref(), Some("staging"));
    }

    #[tokio::test]
    async fn an_unknown_context_is_refused_naming_the_file_and_the_contexts_it_has() {
        let dir = Dir::new();
        let kc = dir.file("config", TWO_CONTEXTS);
        let kube = KubeSettings {
            context: Some("dev".into()),
            ..settings(&[&kc])
        };
        let err = load_config(&kube, "x", None).await.unwrap_err();
        assert_eq!(err.code, ExitCode::NotFound);
        assert_eq!(
            err.message.replace(&kc.display().to_string(), "<kubeconfig>"),
            "kube context \"dev\" (--kube-context) is not in <kubeconfig> (it defines: staging, prod)"
        );
        assert!(err.hint.unwrap().contains("kubectl config get-contexts"));
    }

    #[tokio::test]
    async fn a_kubeconfig_without_current_context_asks_for_one() {
        let dir = Dir::new();
        let kc = dir.file(
            "config",
            &TWO_CONTEXTS.replace("current-context: staging", ""),
        );
        let err = load_config(&settings(&[&kc]), "x", None).await.unwrap_err();
        assert_eq!(err.code, ExitCode::Usage);
        assert!(
            err.message.contains("sets no current-context"),
            "{}",
            err.message
        );
        assert!(err.message.contains(&kc.display().to_string()));
        assert!(err.hint.unwrap().contains("--kube-context"));
    }

    #[tokio::test]
    async fn an_invalid_kubeconfig_is_named_in_the_error() {
        let dir = Dir::new();
        let kc = dir.file("config", "clusters: [this is: not: yaml");
        let err = load_config(&settings(&[&kc]), "x", None).await.unwrap_err();
        assert_eq!(err.code, ExitCode::InvalidInput);
        assert_eq!(
            err.message,
            format!("cannot read kubeconfig {}", kc.display())
        );
        assert!(!err.causes().is_empty());
    }

    #[tokio::test]
    async fn helm_overrides_replace_server_credentials_and_identity() {
        let dir = Dir::new();
        let kc = dir.file("config", TWO_CONTEXTS);
        let kube = KubeSettings {
            context: Some("prod".into()),
            apiserver: Some("https://10.0.0.1:6443".into()),
            token: Some(Secret::new("override-token")),
            as_user: Some("alice".into()),
            as_groups: vec!["ops".into(), "dev".into()],
            ..settings(&[&kc])
        };
        let c = load_config(&kube, "x", None).await.unwrap().config;
        assert_eq!(c.cluster_url.to_string(), "https://10.0.0.1:6443/");
        // A new server drops the kubeconfig's TLS server name, as in client-go.
        assert_eq!(c.tls_server_name, None);
        assert_eq!(token(&c).as_deref(), Some("override-token"));
        assert!(
            c.auth_info.exec.is_none(),
            "the token replaces the exec plugin"
        );
        assert_eq!(c.auth_info.impersonate.as_deref(), Some("alice"));
        assert_eq!(
            c.auth_info.impersonate_groups,
            Some(vec!["ops".to_string(), "dev".to_string()])
        );
    }

    #[tokio::test]
    async fn a_ca_file_or_insecure_override_replaces_the_kubeconfig_ca() {
        let dir = Dir::new();
        let kc = dir.file(
            "config",
            &TWO_CONTEXTS.replace(
                "server: https://staging.example:6443",
                "server: https://staging.example:6443\n    insecure-skip-tls-verify: false",
            ),
        );
        let ca = dir.file("ca.crt", &CA_1234.replace("AQIDBA==", "BQYHCA=="));
        let kube = KubeSettings {
            ca_file: Some(ca.clone()),
            tls_server_name: Some("api.internal".into()),
            ..settings(&[&kc])
        };
        let c = load_config(&kube, "x", None).await.unwrap().config;
        assert_eq!(c.root_cert, Some(vec![vec![5, 6, 7, 8]]));
        assert!(!c.accept_invalid_certs);
        assert_eq!(c.tls_server_name.as_deref(), Some("api.internal"));

        let kube = KubeSettings {
            insecure_skip_tls_verify: true,
            ..settings(&[&kc])
        };
        let c = load_config(&kube, "x", None).await.unwrap().config;
        assert!(c.accept_invalid_certs);
        assert_eq!(c.root_cert, None);
    }

    #[tokio::test]
    async fn an_unusable_ca_file_is_named_with_the_variable_it_came_from() {
        let dir = Dir::new();
        let kc = dir.file("config", TWO_CONTEXTS);
        let ca = dir.file("ca.crt", "not a certificate\n");
        let kube = KubeSettings {
            ca_file: Some(ca.clone()),
            ..settings(&[&kc])
        };
        let err = load_config(&kube, "x", None).await.unwrap_err();
        assert_eq!(err.code, ExitCode::InvalidInput);
        assert_eq!(
            err.message,
            format!(
                "CA file {} (HELM_KUBECAFILE) is unusable: it holds no PEM certificate",
                ca.display()
            )
        );
    }

    #[tokio::test]
    async fn without_any_kubeconfig_an_apiserver_override_is_enough() {
        let dir = Dir::new();
        let kube = KubeSettings {
            apiserver: Some("https://10.0.0.1:6443".into()),
            token: Some(Secret::new("t")),
            ..settings(&[&dir.0.path().join("absent")])
        };
        let loaded = load_config(&kube, "live-agent", None).await.unwrap();
        assert_eq!(loaded.source, Source::ApiServerOverride);
        assert_eq!(loaded.context, None);
        assert_eq!(
            loaded.config.cluster_url.to_string(),
            "https://10.0.0.1:6443/"
        );
        assert_eq!(token(&loaded.config).as_deref(), Some("t"));
        assert_eq!(loaded.config.default_namespace, "live-agent");
    }

    #[tokio::test]
    async fn a_context_asked_for_without_any_kubeconfig_names_the_missing_file() {
        let dir = Dir::new();
        let absent = dir.0.path().join("absent");
        let kube = KubeSettings {
            context: Some("prod".into()),
            ..settings(&[&absent])
        };
        let err = load_config(&kube, "x", None).await.unwrap_err();
        assert_eq!(err.code, ExitCode::NotFound);
        assert_eq!(
            err.message,
            format!(
                "kube context \"prod\" was asked for, but there is no kubeconfig at {}",
                absent.display()
            )
        );
    }

    #[tokio::test]
    async fn an_apiserver_override_that_is_not_a_url_is_a_usage_error() {
        let dir = Dir::new();
        let kc = dir.file("config", TWO_CONTEXTS);
        let kube = KubeSettings {
            apiserver: Some("10.0.0.1:6443".into()),
            ..settings(&[&kc])
        };
        let err = load_config(&kube, "x", None).await.unwrap_err();
        assert_eq!(err.code, ExitCode::Usage);
        assert!(err.message.contains("HELM_KUBEAPISERVER=\"10.0.0.1:6443\""));
    }

    #[tokio::test]
    async fn a_client_for_an_https_api_server_builds_with_the_bundled_tls_provider() {
        let dir = Dir::new();
        let kc = dir.file("config", TWO_CONTEXTS);
        let mut settings = test_settings(settings(&[&kc]));
        settings.kube.insecure_skip_tls_verify = true;
        let conn = connect(&settings).await.unwrap();
        assert_eq!(conn.cluster_url, "https://staging.example:6443/");
    }

    fn test_settings(kube: KubeSettings) -> Settings {
        Settings {
            namespace: "live-agent".into(),
            release: "cognigy-live-agent".into(),
            kube,
            helm_bin: "helm".into(),
            under_helm: false,
            helm_driver: None,
            target: None,
            output: crate::cli::OutputFormat::Text,
            verbosity: 0,
            quiet: true,
            color: crate::cli::ColorChoice::Never,
        }
    }

    /// Serves one HTTP request on loopback and returns what the client sent.
    fn one_shot_server(body: &'static str) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end().to_string();
                if line.is_empty() {
                    break;
                }
                head.push(line);
            }
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            head
        });
        (url, handle)
    }

    #[tokio::test]
    async fn the_client_talks_to_the_chosen_context_with_the_overridden_identity() {
        let (url, server) = one_shot_server(
            r#"{"major":"1","minor":"33","gitVersion":"v1.33.0","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":""}"#,
        );
        let dir = Dir::new();
        let kc = dir.file(
            "config",
            &TWO_CONTEXTS.replace("https://prod.example:6443", &url),
        );
        let settings = test_settings(KubeSettings {
            context: Some("prod".into()),
            token: Some(Secret::new("override-token")),
            as_user: Some("alice".into()),
            ..settings(&[&kc])
        });
        let conn = connect(&settings).await.unwrap();
        assert_eq!(conn.context.as_deref(), Some("prod"));
        let info = conn.client.apiserver_version().await.unwrap();
        assert_eq!(info.git_version, "v1.33.0");
        let head = server.join().unwrap();
        assert_eq!(head[0], "GET /version HTTP/1.1");
        let header = |name: &str| {
            head.iter()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
                .unwrap_or_else(|| panic!("no {name} header in {head:?}"))
        };
        assert_eq!(header("authorization"), "Bearer override-token");
        assert_eq!(header("impersonate-user"), "alice");
    }
}
