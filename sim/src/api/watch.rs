//! Watch: a chunked stream of `{"type": ..., "object": ...}` lines, resumable from a
//! resourceVersion, with `sendInitialEvents` (streaming lists) and its closing bookmark. A
//! resourceVersion older than the watch cache gets, as from the real server, a stream with one
//! `ERROR` event holding the 410 `Expired` Status (not an HTTP 410).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::Response;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::request::ResourceRequest;
use super::ApiState;
use super::Body;
use crate::store::selectors::{FieldSelector, LabelSelector};
use crate::store::{ApiError, Event};

struct Filter {
    namespace: String,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, o: &Value) -> bool {
        (self.namespace.is_empty()
            || o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(&self.namespace))
            && self.labels.matches_object(o)
            && self.fields.matches(o)
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut b = serde_json::to_vec(&json!({ "type": kind, "object": object })).expect("serialises");
    b.push(b'\n');
    Bytes::from(b)
}

pub async fn handle(state: Arc<ApiState>, rr: ResourceRequest) -> Result<Response<Body>, ApiError> {
    let filter = Filter {
        namespace: rr.namespace.clone(),
        labels: LabelSelector::parse(rr.query.get("labelSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?,
        fields: FieldSelector::parse(rr.query.get("fieldSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?,
    };
    let initial_events = rr.query.flag("sendInitialEvents");
    let from = match rr.query.get("resourceVersion") {
        _ if initial_events => None,
        None | Some("") => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {v:?}")))?,
        ),
    };
    let timeout = rr
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let (backlog, rx, start_rv) = match state.store.watch(rr.rt, from) {
        Ok(start) => start,
        Err(e) if e.code == 410 => return Ok(stream_of(vec![line("ERROR", &e.to_status())])),
        Err(e) => return Err(e),
    };
    let (tx, out) = mpsc::channel::<Bytes>(256);
    let rt = rr.rt;
    let mut shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let mut rx: broadcast::Receiver<Arc<Event>> = rx;
        for ev in &backlog {
            if filter.matches(&ev.object)
                && tx.send(line(ev.kind.as_str(), &ev.object)).await.is_err()
            {
                return;
            }
        }
        if initial_events {
            let bookmark = json!({
                "kind": rt.kind,
                "apiVersion": rt.api_version(),
                "metadata": {
                    "resourceVersion": start_rv.to_string(),
                    "annotations": { "k8s.io/initial-events-end": "true" },
                },
            });
            if tx.send(line("BOOKMARK", &bookmark)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= start_rv || !std::ptr::eq(ev.resource, rt) || !filter.matches(&ev.object) {
                            continue;
                        }
                        if tx.send(line(ev.kind.as_str(), &ev.object)).await.is_err() {
                            return;
                        }
                    }
                    // A watcher that fell behind ends; clients list and watch again.
                    Err(_) => return,
                },
            }
        }
    });
    let stream = futures_util::stream::unfold(out, |mut out| async move {
        out.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), out))
    })
    .boxed();
    Ok(chunked(stream))
}

/// A watch response that sends `lines` and ends.
fn stream_of(lines: Vec<Bytes>) -> Response<Body> {
    chunked(
        futures_util::stream::iter(
            lines
                .into_iter()
                .map(|b| Ok::<_, std::io::Error>(Frame::data(b))),
        )
        .boxed(),
    )
}

fn chunked(
    stream: futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, std::io::Error>>,
) -> Response<Body> {
    Response::builder()
        .header("Content-Type", "application/json")
        .header("Transfer-Encoding", "chunked")
        .body(BodyExt::boxed_unsync(StreamBody::new(stream)))
        .expect("response builds")
}
