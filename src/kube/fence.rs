//! The fence a run puts around its cluster calls: closed once the run has lost the migration
//! lock (another run wrote the state over it), after which every request to the API server
//! fails without being sent, so a run that lost its lock changes nothing more.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::watch;

/// Open until [`Fence::close`]; shared by the client's requests, the lock's renewal and the
/// executor.
#[derive(Clone)]
pub struct Fence(Arc<watch::Sender<Option<String>>>);

impl Default for Fence {
    fn default() -> Self {
        Fence(Arc::new(watch::channel(None).0))
    }
}

impl Fence {
    /// Closes the fence for good, saying why (the first reason is kept).
    pub fn close(&self, why: impl Into<String>) {
        let why = why.into();
        self.0.send_if_modified(|v| {
            if v.is_none() {
                *v = Some(why);
                true
            } else {
                false
            }
        });
    }

    /// Why the fence is closed, if it is.
    pub fn closed(&self) -> Option<String> {
        self.0.borrow().clone()
    }

    /// Resolves once the fence is closed, with the reason.
    pub async fn wait_closed(&self) -> String {
        let mut rx = self.0.subscribe();
        let why = rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|v| v.clone());
        match why {
            Some(why) => why,
            // The sender lives in `self`: never dropped while this waits.
            None => std::future::pending().await,
        }
    }
}

impl<S> tower::Layer<S> for Fence {
    type Service = Fenced<S>;
    fn layer(&self, inner: S) -> Fenced<S> {
        Fenced {
            inner,
            fence: self.clone(),
        }
    }
}

/// A service whose requests fail once its fence is closed.
#[derive(Clone)]
pub struct Fenced<S> {
    inner: S,
    fence: Fence,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, R> tower::Service<R> for Fenced<S>
where
    S: tower::Service<R>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        if let Some(why) = self.fence.closed() {
            return Box::pin(std::future::ready(Err(why.into())));
        }
        let call = self.inner.call(request);
        Box::pin(async move { call.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service};

    #[derive(Clone)]
    struct Count(Arc<std::sync::atomic::AtomicUsize>);
    impl Service<&'static str> for Count {
        type Response = &'static str;
        type Error = BoxError;
        type Future = std::future::Ready<Result<&'static str, BoxError>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, r: &'static str) -> Self::Future {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::ready(Ok(r))
        }
    }

    #[tokio::test]
    async fn once_closed_no_request_reaches_the_service() {
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let fence = Fence::default();
        let mut service = fence.layer(Count(sent.clone()));
        assert_eq!(service.call("get").await.unwrap(), "get");
        fence.close("the lock was lost");
        fence.close("a later reason");
        let err = service.call("delete").await.unwrap_err();
        assert_eq!(err.to_string(), "the lock was lost");
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(fence.wait_closed().await, "the lock was lost");
    }
}
