//! The one door for commands inside the cluster: exec in a pod over the API's websocket,
//! stdout and stderr collected, the exit status read from the API's status message.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};
use crate::exit::ExitCode;

/// What a command printed and how it ended.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// Exit code from the API's final status: `Success`, or `NonZeroExitCode` with an
/// `ExitCode` cause.
fn exit_code(status: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>) -> i32 {
    let Some(status) = status else { return -1 };
    if status.status.as_deref() == Some("Success") {
        return 0;
    }
    status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|causes| {
            causes
                .iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
                .and_then(|c| c.message.as_deref())
                .and_then(|m| m.parse().ok())
        })
        .unwrap_or(1)
}

/// The longest a command in a pod may run before the plugin gives up waiting for it: long
/// work (dump, restore) runs detached and is polled with short commands, so only a command
/// that hangs (or a connection that died without a word) reaches it.
pub const LIMIT: Duration = Duration::from_secs(3 * 3600);

/// Runs `argv` in `pod` (first container unless `container`), returning its output and code.
/// A failure to reach the pod is an error; a non-zero exit is not (callers decide). A command
/// that has not ended after [`LIMIT`] is an error naming it.
pub async fn run(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    argv: &[String],
) -> Result<ExecOutput> {
    let what = format!("`{}` in pod {namespace}/{pod}", describe(argv));
    let hint = format!(
        "see what runs in the pod (`kubectl -n {namespace} exec {pod} -- ps -ef`) and its state (`kubectl -n {namespace} describe pod {pod}`), then run the same command again: it resumes at this step"
    );
    bounded(
        &what,
        LIMIT,
        &hint,
        run_unbounded(client, namespace, pod, container, argv),
    )
    .await
}

/// A command line as an error names it: its words, a script by its first line, shortened.
pub fn describe(argv: &[String]) -> String {
    let words = match argv {
        [sh, c, script, ..] if sh == "sh" && c == "-c" => {
            format!("sh -c {}", script.trim().lines().next().unwrap_or(""))
        }
        _ => argv.join(" "),
    };
    match words.char_indices().nth(80) {
        Some((at, _)) => format!("{}...", &words[..at]),
        None => words,
    }
}

/// A duration as the errors show it: `3h`, `5m`, `90s`, `50ms`.
fn span(d: Duration) -> String {
    match d.as_secs() {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        0 => format!("{}ms", d.as_millis()),
        s => format!("{s}s"),
    }
}

/// `work`, or an error saying `what` did not end within `limit` (and `hint`).
pub async fn bounded<T>(
    what: &str,
    limit: Duration,
    hint: &str,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ExitCode::External,
            format!("{what} did not end within {}", span(limit)),
        )
        .hint(hint.to_string())),
    }
}

/// Starts `argv` in `pod` and hands back the running process, its stdout to be streamed by
/// the caller (`what`: what it streams, for the error).
pub async fn stream(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    what: &str,
    argv: Vec<String>,
) -> Result<kube::api::AttachedProcess> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    api.exec(
        pod,
        argv,
        &AttachParams::default().stdout(true).stderr(true),
    )
    .await
    .map_err(|e| {
        Error::new(
            ExitCode::External,
            format!("cannot stream {what} from pod {namespace}/{pod}"),
        )
        .source(e)
    })
}

async fn run_unbounded(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    argv: &[String],
) -> Result<ExecOutput> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut params = AttachParams::default()
        .stdout(true)
        .stderr(true)
        .stdin(false);
    if let Some(c) = container {
        params = params.container(c);
    }
    tracing::debug!(pod, ?argv, "exec");
    let mut process = api.exec(pod, argv.to_vec(), &params).await.map_err(|e| {
        Error::new(
            ExitCode::External,
            format!("cannot run a command in pod {namespace}/{pod}"),
        )
        .source(e)
        .hint("check that the pod is running (`kubectl get pod`), then run again")
    })?;
    let status = process.take_status();
    let mut out = process.stdout();
    let mut err = process.stderr();
    let read_out = async {
        let mut s = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut s).await;
        }
        s
    };
    let read_err = async {
        let mut s = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut s).await;
        }
        s
    };
    let (stdout, stderr) = tokio::join!(read_out, read_err);
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    let _ = process.join().await;
    Ok(ExecOutput {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        code: exit_code(status.as_ref()),
    })
}

/// Runs a shell script (`sh -c`) in the pod.
pub async fn script(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    script: &str,
) -> Result<ExecOutput> {
    run(
        client,
        namespace,
        pod,
        None,
        &["sh".to_string(), "-c".to_string(), script.to_string()],
    )
    .await
}

/// Like [`run`], but a non-zero exit is an [`ExitCode::External`] error showing stderr.
pub async fn checked(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    what: &str,
    argv: &[String],
) -> Result<String> {
    let out = run(client, namespace, pod, None, argv).await?;
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(Error::new(
            ExitCode::External,
            format!(
                "{what} failed in pod {namespace}/{pod} (exit {}): {}",
                out.code,
                last_lines(&out.stderr, 8)
            ),
        )
        .hint("fix the cause shown, then run the same command again: it resumes here"))
    }
}

pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};

    #[tokio::test]
    async fn a_command_that_never_ends_is_an_error_naming_it() {
        let argv: Vec<String> = ["sh", "-c", "pg_dump big\nmore"].map(String::from).to_vec();
        let what = format!("`{}` in pod ns/p", describe(&argv));
        assert_eq!(what, "`sh -c pg_dump big` in pod ns/p");
        let err = bounded(
            &what,
            Duration::from_millis(50),
            "run again",
            std::future::pending::<Result<()>>(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, ExitCode::External);
        assert_eq!(
            err.message,
            "`sh -c pg_dump big` in pod ns/p did not end within 50ms"
        );
        assert!(bounded("x", Duration::from_secs(1), "", async { Ok(7) })
            .await
            .is_ok());
        assert!(describe(&["x".repeat(200)]).ends_with("..."));
        assert_eq!(span(LIMIT), "3h");
        assert_eq!(span(Duration::from_secs(300)), "5m");
    }

    #[test]
    fn the_exit_code_comes_from_the_status_cause() {
        let ok = Status {
            status: Some("Success".into()),
            ..Status::default()
        };
        assert_eq!(exit_code(Some(&ok)), 0);
        let failed = Status {
            status: Some("Failure".into()),
            reason: Some("NonZeroExitCode".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some("3".into()),
                    ..StatusCause::default()
                }]),
                ..StatusDetails::default()
            }),
            ..Status::default()
        };
        assert_eq!(exit_code(Some(&failed)), 3);
        assert_eq!(exit_code(None), -1);
    }
}
