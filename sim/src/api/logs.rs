//! `pods/log`: a container's log file, whole, tailed, or followed while the container runs.

use std::io::SeekFrom;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::Response;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::request::ResourceRequest;
use super::{ApiState, Body};
use crate::runtime::log_file;
use crate::store::ApiError;

/// The container a request means: the named one, or the only one.
pub fn container_name(pod: &Value, requested: Option<&str>) -> Result<String, ApiError> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let names: Vec<String> = ["initContainers", "containers"]
        .iter()
        .flat_map(|l| pod["spec"][l].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let main: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    match requested.filter(|r| !r.is_empty()) {
        Some(r) if names.iter().any(|n| n == r) => Ok(r.to_string()),
        Some(r) => Err(ApiError::bad_request(format!(
            "container {r} is not valid for pod {name}"
        ))),
        None if main.len() == 1 => Ok(main[0].clone()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            main.join(" ")
        ))),
    }
}

fn tail(data: &[u8], lines: usize) -> &[u8] {
    let mut count = 0;
    let end = if data.ends_with(b"\n") {
        data.len() - 1
    } else {
        data.len()
    };
    for i in (0..end).rev() {
        if data[i] == b'\n' {
            count += 1;
            if count == lines {
                return &data[i + 1..];
            }
        }
    }
    data
}

pub async fn handle(state: Arc<ApiState>, rr: ResourceRequest) -> Result<Response<Body>, ApiError> {
    let pod = state.store.get(rr.rt, &rr.namespace, rr.name())?;
    let container = container_name(&pod, rr.query.get("container"))?;
    let path = log_file(&state.state_dir, &rr.namespace, rr.name(), &container);
    let data = match tokio::fs::read(&path).await {
        Ok(d) => d,
        Err(_) => {
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{}\" is waiting to start: ContainerCreating",
                rr.name()
            )))
        }
    };
    let first = match rr
        .query
        .get("tailLines")
        .and_then(|t| t.parse::<usize>().ok())
    {
        Some(n) => tail(&data, n).to_vec(),
        None => data.clone(),
    };
    let text = |b: Vec<u8>| {
        Response::builder()
            .header("Content-Type", "text/plain")
            .body(super::full(b))
            .expect("response builds")
    };
    if !rr.query.flag("follow") {
        return Ok(text(first));
    }
    let (tx, out) = mpsc::channel::<Bytes>(64);
    let store = state.store.clone();
    let rt = rr.rt;
    let (ns, name) = (rr.namespace.clone(), rr.name().to_string());
    let mut offset = data.len() as u64;
    let mut shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        if tx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
            }
            let Ok(mut f) = tokio::fs::File::open(&path).await else {
                return;
            };
            if f.seek(SeekFrom::Start(offset)).await.is_err() {
                return;
            }
            let mut buf = Vec::new();
            if f.read_to_end(&mut buf).await.is_err() {
                return;
            }
            offset += buf.len() as u64;
            if !buf.is_empty() && tx.send(Bytes::from(buf)).await.is_err() {
                return;
            }
            let running = store.try_get(rt, &ns, &name).is_some_and(|p| {
                p.pointer("/status/containerStatuses")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c["name"].as_str() == Some(&container)
                                && c.pointer("/state/terminated").is_none()
                        })
                    })
            });
            if !running {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(out, |mut out| async move {
        out.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), out))
    })
    .boxed();
    Ok(Response::builder()
        .header("Content-Type", "text/plain")
        .body(BodyExt::boxed_unsync(StreamBody::new(stream)))
        .expect("response builds"))
}
