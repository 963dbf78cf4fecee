//! `pods/exec` over WebSocket with the Kubernetes channel protocols: `v5.channel.k8s.io`
//! (kubectl 1.31+; adds the close signal that ends stdin) and `v4.channel.k8s.io` (kube-rs).
//! Every message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error/status,
//! 4 resize, 255 close (v5).

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::logs::container_name;
use super::request::ResourceRequest;
use super::{ApiState, Body};
use crate::store::ApiError;

const PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// The status sent on channel 3 when the command ends.
pub fn exit_status(argv: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({ "metadata": {}, "status": "Success" });
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", argv.join(" ")),
        "reason": "NonZeroExitCode",
        "details": { "causes": [{ "reason": "ExitCode", "message": code.to_string() }] },
    })
}

pub async fn handle(
    state: Arc<ApiState>,
    mut req: Request<Incoming>,
    rr: ResourceRequest,
) -> Result<Response<Body>, ApiError> {
    let pod = state.store.get(rr.rt, &rr.namespace, rr.name())?;
    let container = container_name(&pod, rr.query.get("container"))?;
    if pod.pointer("/status/phase").and_then(Value::as_str) != Some("Running") {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: pod {} is not running",
            rr.name()
        )));
    }
    let argv = rr.query.all("command");
    if argv.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let offered = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| {
            v.split(',')
                .map(|p| p.trim().to_string())
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    let Some(protocol) = PROTOCOLS.iter().find(|p| offered.iter().any(|o| o == *p)) else {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: none of the offered subprotocols {offered:?} is supported (want v5.channel.k8s.io or v4.channel.k8s.io)"
        )));
    };
    let Some(key) = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()))
    else {
        return Err(ApiError::bad_request("missing Sec-WebSocket-Key"));
    };
    let v5 = *protocol == "v5.channel.k8s.io";
    let tty = rr.query.flag("tty");
    let want_stdin = rr.query.flag("stdin");
    let want_stderr = rr.query.flag("stderr") && !tty;
    let child = state
        .runtime
        .exec(&rr.namespace, rr.name(), &container, &argv, tty)
        .map_err(|e| {
            ApiError::internal(format!(
                "unable to start the command in container {container}: {e}"
            ))
        })?;
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        session(ws, child, argv, v5, want_stdin, want_stderr).await;
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", key)
        .header("Sec-WebSocket-Protocol", *protocol)
        .body(super::full(""))
        .expect("response builds"))
}

async fn pump(mut r: Box<dyn AsyncRead + Send + Unpin>, channel: u8, tx: mpsc::Sender<Message>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf[1..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                buf[0] = channel;
                if tx
                    .send(Message::Binary(buf[..n + 1].to_vec().into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

async fn session<S>(
    ws: WebSocketStream<S>,
    mut child: crate::runtime::ExecChild,
    argv: Vec<String>,
    v5: bool,
    want_stdin: bool,
    want_stderr: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
        sink
    });
    // The first (empty) frame on stdout tells the client the stream is established.
    let _ = tx.send(Message::Binary(vec![1u8].into())).await;
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(out, 1, tx.clone())));
    }
    if let Some(err) = child.stderr.take() {
        if want_stderr {
            pumps.push(tokio::spawn(pump(err, 2, tx.clone())));
        } else {
            pumps.push(tokio::spawn(pump(err, 255, mpsc::channel(1).0)));
        }
    }
    let mut stdin = if want_stdin { child.stdin.take() } else { None };
    drop(child.stdin.take());
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(25));
    let code = loop {
        tokio::select! {
            _ = tick.tick() => {
                match child.child.try_wait() {
                    Ok(Some(status)) => break status.code().unwrap_or(137),
                    Ok(None) => {}
                    Err(_) => break 137,
                }
            }
            msg = stream.next() => {
                let data = match msg {
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        stdin = None;
                        let _ = child.child.start_kill();
                        let status = child.child.wait().await;
                        break status.ok().and_then(|s| s.code()).unwrap_or(137);
                    }
                    Some(Ok(_)) => continue,
                };
                let Some((&ch, rest)) = data.split_first() else { continue };
                match ch {
                    0 => {
                        if let Some(w) = stdin.as_mut() {
                            if w.write_all(rest).await.is_err() || w.flush().await.is_err() {
                                stdin = None;
                            }
                        }
                    }
                    4 => {
                        if let Ok(v) = serde_json::from_slice::<Value>(rest) {
                            let w = v["Width"].as_u64().unwrap_or(80) as u16;
                            let h = v["Height"].as_u64().unwrap_or(24) as u16;
                            child.resize(w, h);
                        }
                    }
                    255 if v5 && rest.first() == Some(&0) => {
                        if let Some(mut w) = stdin.take() {
                            let _ = w.shutdown().await;
                        }
                    }
                    _ => {}
                }
            }
        }
    };
    drop(stdin);
    for p in pumps {
        let _ = p.await;
    }
    let status = serde_json::to_vec(&exit_status(&argv, code)).expect("serialises");
    let mut msg = vec![3u8];
    msg.extend(status);
    let _ = tx.send(Message::Binary(msg.into())).await;
    // A normal closure (1000): clients read it as the end of every stream.
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    drop(tx);
    // Closes the connection as a Go server does: TLS close_notify, then TCP shutdown, so a
    // client reading past the close frame sees a clean end of stream.
    if let Ok(sink) = writer.await {
        if let Ok(mut ws) = sink.reunite(stream) {
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(5), ws.get_mut().shutdown())
                    .await;
        }
    }
}
