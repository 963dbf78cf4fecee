//! The one door to `$HELM_BIN`. Argument lists are built by pure functions (tested below);
//! [`Helm`] runs them through duct and attaches helm's stderr to any failure.
//!
//! Credentials never go on a command line: a token reaches the child through
//! `HELM_KUBETOKEN` in its environment, not `--kube-token`.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::settings::Settings;

/// How helm is invoked: the binary and the connection flags every call carries.
#[derive(Debug, Clone)]
pub struct Helm {
    bin: PathBuf,
    namespace: String,
    kube_context: Option<String>,
    kubeconfig: Option<OsString>,
    /// Environment for the child: `HELM_KUBE*` overrides (the token among them).
    env: Vec<(String, String)>,
}

/// What a finished helm call printed.
#[derive(Debug, Clone)]
pub struct HelmOutput {
    pub stdout: String,
    pub stderr: String,
}

impl Helm {
    pub fn from_settings(settings: &Settings) -> Helm {
        let k = &settings.kube;
        let mut env = Vec::new();
        let mut put = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                env.push((name.to_string(), v));
            }
        };
        put("HELM_KUBEAPISERVER", k.apiserver.clone());
        put(
            "HELM_KUBETOKEN",
            k.token.as_ref().map(|t| t.expose().to_string()),
        );
        put(
            "HELM_KUBECAFILE",
            k.ca_file.as_ref().map(|p| p.display().to_string()),
        );
        put(
            "HELM_KUBEINSECURE_SKIP_TLS_VERIFY",
            k.insecure_skip_tls_verify.then(|| "true".to_string()),
        );
        put("HELM_KUBETLS_SERVER_NAME", k.tls_server_name.clone());
        put("HELM_KUBEASUSER", k.as_user.clone());
        put(
            "HELM_KUBEASGROUPS",
            (!k.as_groups.is_empty()).then(|| k.as_groups.join(",")),
        );
        Helm {
            bin: settings.helm_bin.clone(),
            namespace: settings.namespace.clone(),
            kube_context: k.context.clone(),
            kubeconfig: k.kubeconfig.clone(),
            env,
        }
    }

    /// The namespace every call works in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The connection flags every call carries, so a standalone run reaches the same cluster
    /// as one started by helm.
    pub fn connection_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["--namespace".into(), self.namespace.clone().into()];
        if let Some(c) = &self.kube_context {
            args.push("--kube-context".into());
            args.push(c.into());
        }
        if let Some(k) = &self.kubeconfig {
            args.push("--kubeconfig".into());
            args.push(k.clone());
        }
        args
    }

    /// Runs helm with `args` (connection flags appended) and returns what it printed.
    /// A non-zero exit becomes an [`ExitCode::External`] error carrying helm's stderr.
    pub fn run(&self, args: &[OsString]) -> Result<HelmOutput> {
        let mut argv: Vec<OsString> = args.to_vec();
        argv.extend(self.connection_args());
        tracing::debug!(helm = %self.bin.display(), args = ?crate::redact::argv(&argv), "running helm");
        let mut expr = duct::cmd(&self.bin, &argv)
            .stdout_capture()
            .stderr_capture()
            .stdin_null()
            .unchecked();
        for (name, value) in &self.env {
            expr = expr.env(name, value);
        }
        let cannot_run = |e: std::io::Error| {
            Error::new(
                ExitCode::NotFound,
                format!("cannot run helm ({})", self.bin.display()),
            )
            .source(e)
            .hint("install helm 3.17 or later and run the plugin as `helm la-migrate ...`")
        };
        // Never an endless wait: helm's own --timeout plus a margin, or a few minutes.
        let limit = argv::time_limit(&argv);
        let handle = expr.start().map_err(cannot_run)?;
        let out = match handle.wait_timeout(limit).map_err(cannot_run)? {
            Some(out) => out.clone(),
            None => {
                let _ = handle.kill();
                let verb = args
                    .first()
                    .map(|a| a.to_string_lossy())
                    .unwrap_or_default();
                return Err(Error::new(
                    ExitCode::External,
                    format!("`helm {verb}` did not end within {} s: stopped", limit.as_secs()),
                )
                .hint("check the cluster's API server and the release (`helm list -a`), then run the same command again: it resumes at this step"));
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            Ok(HelmOutput { stdout, stderr })
        } else {
            let verb = args
                .first()
                .map(|a| a.to_string_lossy().into_owned())
                .unwrap_or_default();
            // helm may echo a value it could not use: never a secret one.
            let stderr = crate::redact::mask(stderr.trim(), &crate::redact::argv_secrets(&argv));
            Err(Error::new(
                ExitCode::External,
                format!("`helm {verb}` failed: {stderr}"),
            ))
        }
    }

    /// The chart's own metadata (`Chart.yaml`): its version and the versions of its subcharts.
    pub fn chart_metadata(&self, chart: &OsString, version: Option<&str>) -> Result<ChartMetadata> {
        let out = self.run(&argv::show_chart(chart, version))?;
        parse_chart_metadata(&out.stdout).ok_or_else(|| {
            Error::new(
                ExitCode::InvalidInput,
                format!(
                    "`helm show chart {}` printed no chart version",
                    chart.to_string_lossy()
                ),
            )
        })
    }

    /// The release's manifest (`helm get manifest`): every object it installed.
    pub fn get_manifest(&self, release: &str) -> Result<String> {
        Ok(self.run(&argv::get_manifest(release))?.stdout)
    }

    /// The release's user-supplied values, as YAML (`helm get values <release> -o yaml`).
    /// A missing release is a [`ExitCode::NotFound`] error naming release and namespace.
    pub fn get_values(&self, release: &str) -> Result<String> {
        match self.run(&argv::get_values(release)) {
            Ok(out) => Ok(out.stdout),
            Err(e) if e.message.contains("release: not found") => Err(Error::new(
                ExitCode::NotFound,
                format!(
                    "release {release:?} was not found in namespace {:?}",
                    self.namespace
                ),
            )
            .hint(format!(
                "list the releases with `helm list -n {}`, then pass --release <name> or -n <namespace>",
                self.namespace
            ))),
            Err(e) => Err(e),
        }
    }
}

/// A release as `helm list -o json` reports it.
pub use crate::plan::helm_release::Release as ReleaseStatus;

/// Unix seconds of a time as helm prints it (`2026-11-30 14:35:09.255944501 +0000 UTC`, the
/// zone offset as written).
pub fn parse_helm_time(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let (date, time, offset) = (parts.next()?, parts.next()?, parts.next()?);
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time
        .split('.')
        .next()?
        .split(':')
        .map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let sign = match offset.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let off = offset.get(1..5)?.parse::<i64>().ok()?;
    let offset_seconds = sign * ((off / 100) * 3600 + (off % 100) * 60);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - offset_seconds)
}

/// The version in helm's `<chart name>-<version>` (the first `-` followed by a digit starts
/// the version: chart names may hold dashes, versions start with a digit).
pub fn chart_version_of(chart: &str) -> &str {
    let bytes = chart.as_bytes();
    (0..bytes.len())
        .find(|&i| bytes[i] == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        .map(|i| &chart[i + 1..])
        .unwrap_or("")
}

/// The row for `release` in `helm list -o json` output, if any.
pub fn parse_list(stdout: &str, release: &str) -> Option<ReleaseStatus> {
    let rows: Vec<serde_json::Value> = serde_json::from_str(stdout).ok()?;
    let row = rows.iter().find(|r| r["name"].as_str() == Some(release))?;
    // helm 3 prints the revision as a string, other versions may print a number.
    let revision = match &row["revision"] {
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        v => v.as_u64().unwrap_or(0) as u32,
    };
    Some(ReleaseStatus {
        status: row["status"].as_str().unwrap_or("unknown").to_string(),
        chart_version: chart_version_of(row["chart"].as_str().unwrap_or("")).to_string(),
        revision,
        updated: row["updated"].as_str().and_then(parse_helm_time),
    })
}

impl Helm {
    /// The release as `helm list` shows it (every state, not only deployed): `None` when it
    /// does not exist. `helm status -o json` carries no chart version, `helm list` does.
    pub fn status(&self, release: &str) -> Result<Option<ReleaseStatus>> {
        let out = self.run(&argv::list(release))?;
        if out.stdout.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str::<serde_json::Value>(&out.stdout).map_err(|e| {
            Error::new(
                ExitCode::External,
                format!("`helm list` printed no JSON for release {release:?}"),
            )
            .source(e)
        })?;
        Ok(parse_list(&out.stdout, release))
    }

    /// Runs helm with `values` documents passed as private temporary files (mode 0600,
    /// removed when done), each as `--values FILE` after `args`: values may hold passwords,
    /// which must never reach an argv.
    pub fn run_with_values(&self, args: &[OsString], values: &[&str]) -> Result<HelmOutput> {
        self.run_with_value_files(values, |files| {
            let mut argv = args.to_vec();
            for file in files {
                argv.push("--values".into());
                argv.push(file.clone());
            }
            argv
        })
    }

    /// Runs helm with the argv `build` makes of the paths of `values`, each document in a
    /// private temporary file (mode 0600, removed when done).
    pub fn run_with_value_files(
        &self,
        values: &[&str],
        build: impl FnOnce(&[OsString]) -> Vec<OsString>,
    ) -> Result<HelmOutput> {
        use std::io::Write;
        let mut files = Vec::new();
        for doc in values {
            let mut file = tempfile::Builder::new()
                .prefix("la-migrate-values-")
                .suffix(".yaml")
                .tempfile()
                .map_err(|e| {
                    Error::new(ExitCode::Failure, "cannot create a temporary values file").source(e)
                })?;
            file.write_all(doc.as_bytes()).map_err(|e| {
                Error::new(ExitCode::Failure, "cannot write a temporary values file").source(e)
            })?;
            files.push(file);
        }
        let paths: Vec<OsString> = files.iter().map(|f| f.path().into()).collect();
        let result = self.run(&build(&paths));
        drop(files);
        result
    }
}

/// What a chart's `Chart.yaml` says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartMetadata {
    pub version: String,
    /// Subchart name -> version constraint as written (`12.1.6`).
    pub dependencies: Vec<(String, String)>,
}

impl ChartMetadata {
    pub fn dependency(&self, name: &str) -> Option<&str> {
        self.dependencies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads `helm show chart` output.
pub fn parse_chart_metadata(yaml: &str) -> Option<ChartMetadata> {
    let doc: serde_norway::Value = serde_norway::from_str(yaml).ok()?;
    let text = |v: &serde_norway::Value| match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let version = text(doc.get("version")?)?;
    let dependencies = doc
        .get("dependencies")
        .and_then(serde_norway::Value::as_sequence)
        .map(|deps| {
            deps.iter()
                .filter_map(|d| Some((text(d.get("name")?)?, text(d.get("version")?)?)))
                .collect()
        })
        .unwrap_or_default();
    Some(ChartMetadata {
        version,
        dependencies,
    })
}

/// Pure builders of helm argument lists (without the connection flags).
pub mod argv {
    use std::ffi::OsString;
    use std::time::Duration;

    /// How long a helm call may take: its `--timeout Ns` plus a tenth (at least a minute)
    /// for the work before and after helm's waits; five minutes for a call without one.
    pub fn time_limit(argv: &[OsString]) -> Duration {
        let timeout = argv
            .windows(2)
            .find(|w| w[0] == "--timeout")
            .and_then(|w| w[1].to_str()?.strip_suffix('s')?.parse::<u64>().ok());
        Duration::from_secs(match timeout {
            Some(t) => t + (t / 10).max(60),
            None => 300,
        })
    }

    /// `helm list` of one release in any current state, as JSON. Helm 4 dropped `--all`;
    /// the state flags work on every version.
    pub fn list(release: &str) -> Vec<OsString> {
        vec![
            "list".into(),
            "--deployed".into(),
            "--failed".into(),
            "--pending".into(),
            "--uninstalling".into(),
            "--filter".into(),
            format!("^{}$", regex_escape(release)).into(),
            "--output".into(),
            "json".into(),
        ]
    }

    /// Escapes a release name for helm's `--filter` regular expression.
    fn regex_escape(s: &str) -> String {
        s.chars()
            .flat_map(|c| {
                let special = "\\.+*?()|[]{}^$".contains(c);
                special
                    .then_some('\\')
                    .into_iter()
                    .chain(std::iter::once(c))
            })
            .collect()
    }

    pub fn uninstall(release: &str, timeout_seconds: u64) -> Vec<OsString> {
        uninstall_in(release, None, timeout_seconds)
    }

    /// `helm uninstall`, with `-n` when `namespace` is given (a command shown to a person;
    /// a call gets it with the connection flags).
    pub fn uninstall_in(
        release: &str,
        namespace: Option<&str>,
        timeout_seconds: u64,
    ) -> Vec<OsString> {
        let mut out: Vec<OsString> = vec!["uninstall".into(), release.into()];
        out.extend(in_namespace(namespace));
        out.extend(["--wait".into(), "--timeout".into()]);
        out.push(format!("{timeout_seconds}s").into());
        out
    }

    fn in_namespace(namespace: Option<&str>) -> Vec<OsString> {
        namespace
            .map(|ns| vec!["-n".into(), ns.into()])
            .unwrap_or_default()
    }

    /// `helm install|upgrade` of the migration: [`ReleaseOperation`] without values files.
    pub fn release_operation(
        verb: &str,
        release: &str,
        chart: &OsString,
        version: Option<&str>,
        sets: &[String],
        timeout_seconds: u64,
    ) -> Vec<OsString> {
        ReleaseOperation {
            verb,
            release,
            chart,
            version,
            namespace: None,
            values: &[],
            sets,
            timeout_seconds,
        }
        .argv()
    }

    /// The migration's `helm install|upgrade`, as the executor runs it and the runbook shows
    /// it: `<verb> <release> <chart> [--version v] [-n ns] [-f FILE ...] [--set k=v ...]
    /// --timeout Ns`. A later values file wins over an earlier one, a later `--set` over an
    /// earlier one and over every file.
    #[derive(Debug, Clone)]
    pub struct ReleaseOperation<'a> {
        pub verb: &'a str,
        pub release: &'a str,
        pub chart: &'a OsString,
        pub version: Option<&'a str>,
        /// `-n`: for a command shown to a person (a call gets the connection flags).
        pub namespace: Option<&'a str>,
        pub values: &'a [OsString],
        pub sets: &'a [String],
        pub timeout_seconds: u64,
    }

    impl ReleaseOperation<'_> {
        pub fn argv(&self) -> Vec<OsString> {
            let mut out = deploy(self.verb, self.release, self.chart, self.version, &[]);
            out.extend(in_namespace(self.namespace));
            for file in self.values {
                out.push("-f".into());
                out.push(file.clone());
            }
            for set in self.sets {
                out.push("--set".into());
                out.push(set.into());
            }
            out.push("--timeout".into());
            out.push(format!("{}s", self.timeout_seconds).into());
            out
        }
    }

    /// `helm install|upgrade <release> <chart> [--version v] [--set k=v ...]`; values files
    /// are appended by `Helm::run_with_values`. `--set` values win over every values file.
    pub fn deploy(
        verb: &str,
        release: &str,
        chart: &OsString,
        version: Option<&str>,
        sets: &[String],
    ) -> Vec<OsString> {
        let mut out: Vec<OsString> = vec![verb.into(), release.into(), chart.clone()];
        if let Some(v) = version {
            out.push("--version".into());
            out.push(v.into());
        }
        for s in sets {
            out.push("--set".into());
            out.push(s.into());
        }
        out
    }

    /// `helm template` of the target chart, to list the images it pulls.
    pub fn template(
        release: &str,
        chart: &OsString,
        version: Option<&str>,
        sets: &[String],
    ) -> Vec<OsString> {
        let mut out = deploy("template", release, chart, version, sets);
        out.push("--skip-tests".into());
        out
    }

    /// `helm show chart`: the chart's `Chart.yaml`.
    pub fn show_chart(chart: &OsString, version: Option<&str>) -> Vec<OsString> {
        let mut out: Vec<OsString> = vec!["show".into(), "chart".into(), chart.clone()];
        if let Some(v) = version {
            out.push("--version".into());
            out.push(v.into());
        }
        out
    }

    pub fn get_manifest(release: &str) -> Vec<OsString> {
        vec!["get".into(), "manifest".into(), release.into()]
    }

    pub fn get_values(release: &str) -> Vec<OsString> {
        vec![
            "get".into(),
            "values".into(),
            release.into(),
            "--output".into(),
            "yaml".into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_times_read_as_unix_seconds_with_their_offset() {
        assert_eq!(
            parse_helm_time("2026-11-30 14:35:09.255944501 +0000 UTC"),
            Some(1_796_049_309)
        );
        assert_eq!(
            parse_helm_time("2026-11-30 15:35:09.1 +0100 CET"),
            Some(1_796_049_309)
        );
        assert_eq!(parse_helm_time("1970-01-01 00:00:00 +0000 UTC"), Some(0));
        assert_eq!(
            parse_helm_time("2024-02-29 00:00:00 -0130 X"),
            Some(1_709_170_200)
        );
        assert_eq!(parse_helm_time("yesterday"), None);
    }

    #[test]
    fn chart_metadata_names_the_version_and_the_subcharts() {
        let yaml = "apiVersion: v2\nname: live-agent\nversion: 4.44.0\ndependencies:\n- name: postgresql\n  version: 12.1.6\n  repository: https://charts.bitnami.com/bitnami\n- name: redis\n  version: 17.4.0\n";
        let meta = parse_chart_metadata(yaml).unwrap();
        assert_eq!(meta.version, "4.44.0");
        assert_eq!(meta.dependency("postgresql"), Some("12.1.6"));
        assert_eq!(meta.dependency("redis"), Some("17.4.0"));
        assert_eq!(meta.dependency("mongodb"), None);
        assert_eq!(parse_chart_metadata("name: x\n"), None);
    }
    use crate::cli::GlobalArgs;
    use crate::settings::{Env, Settings};
    use std::path::Path;

    struct E(Vec<(&'static str, &'static str)>);
    impl Env for E {
        fn var(&self, n: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        }
        fn var_os(&self, n: &str) -> Option<OsString> {
            self.var(n).map(OsString::from)
        }
        fn resolve_program(&self, p: &Path) -> Option<PathBuf> {
            Some(p.to_path_buf())
        }
        fn path_kind(&self, _: &Path) -> Option<bool> {
            None
        }
        fn absolute(&self, p: &Path) -> PathBuf {
            p.to_path_buf()
        }
    }

    #[test]
    fn connection_flags_follow_the_settings_and_the_token_stays_off_argv() {
        let e = E(vec![
            ("HELM_NAMESPACE", "live-agent"),
            ("HELM_KUBECONTEXT", "prod"),
            ("KUBECONFIG", "/tmp/kc"),
            ("HELM_KUBETOKEN", "tok-123"),
        ]);
        let s = Settings::resolve(&GlobalArgs::default(), None, &e).unwrap();
        let helm = Helm::from_settings(&s);
        let args: Vec<String> = helm
            .connection_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--namespace",
                "live-agent",
                "--kube-context",
                "prod",
                "--kubeconfig",
                "/tmp/kc"
            ]
        );
        assert!(!args.iter().any(|a| a.contains("tok-123")));
        assert!(helm
            .env
            .iter()
            .any(|(k, v)| k == "HELM_KUBETOKEN" && v == "tok-123"));
    }

    #[test]
    fn the_chart_version_is_read_from_helm_list() {
        let out = r#"[{"name":"cognigy-live-agent","namespace":"live-agent","revision":"3","updated":"2026-11-30 14:35:09.255944501 +0000 UTC","status":"deployed","chart":"live-agent-4.43.1","app_version":"4.43.1-59889"}]"#;
        assert_eq!(
            parse_list(out, "cognigy-live-agent"),
            Some(ReleaseStatus {
                status: "deployed".into(),
                chart_version: "4.43.1".into(),
                revision: 3,
                updated: Some(1_796_049_309),
            })
        );
        assert_eq!(parse_list(out, "other"), None);
        assert_eq!(parse_list("[]", "cognigy-live-agent"), None);
        assert_eq!(chart_version_of("live-agent-4.44.0-rc.1"), "4.44.0-rc.1");
    }

    #[test]
    fn the_release_filter_matches_the_name_exactly() {
        assert_eq!(
            argv::list("a.b"),
            [
                "list",
                "--deployed",
                "--failed",
                "--pending",
                "--uninstalling",
                "--filter",
                "^a\\.b$",
                "--output",
                "json"
            ]
            .map(OsString::from)
        );
    }

    #[test]
    fn every_helm_call_has_a_time_limit_beyond_its_own_timeout() {
        let install = argv::release_operation("install", "r", &OsString::from("c"), None, &[], 600);
        assert_eq!(argv::time_limit(&install).as_secs(), 660);
        assert_eq!(argv::time_limit(&argv::uninstall("r", 30)).as_secs(), 90);
        assert_eq!(argv::time_limit(&argv::list("r")).as_secs(), 300);
    }

    #[test]
    fn the_release_operation_takes_files_then_sets_then_the_timeout() {
        let chart = OsString::from("oci://charts/live-agent");
        let op = argv::ReleaseOperation {
            verb: "install",
            release: "r",
            chart: &chart,
            version: Some("4.44.0"),
            namespace: Some("ns"),
            values: &["a.yaml".into(), "b.yaml".into()],
            sets: &["x=1".into(), "y=2".into()],
            timeout_seconds: 600,
        };
        assert_eq!(
            op.argv(),
            [
                "install",
                "r",
                "oci://charts/live-agent",
                "--version",
                "4.44.0",
                "-n",
                "ns",
                "-f",
                "a.yaml",
                "-f",
                "b.yaml",
                "--set",
                "x=1",
                "--set",
                "y=2",
                "--timeout",
                "600s"
            ]
            .map(OsString::from)
        );
        assert_eq!(
            argv::uninstall_in("r", Some("ns"), 30),
            ["uninstall", "r", "-n", "ns", "--wait", "--timeout", "30s"].map(OsString::from)
        );
    }

    #[test]
    fn get_values_asks_for_yaml() {
        assert_eq!(
            argv::get_values("r"),
            ["get", "values", "r", "--output", "yaml"].map(OsString::from)
        );
    }
}
