//! An async `fetch` for plain Rust: a cloneable [`FetchClient`] whose futures are completed by
//! the [`Node`](super::Node) that owns the fetch core, whenever its driver calls `tick`.
//!
//! ```no_run
//! # async fn demo(client: meshwork::transport::client::FetchClient) {
//! use meshwork::proto::fetch::Request;
//! let url = format!("mesh://block/{}", "00".repeat(32));
//! match client.fetch(Request::get(&url).expect("valid URL")).await {
//!     Ok(r) => println!("{} bytes from {:?}", r.body.len(), r.responder),
//!     Err(e) => println!("failed: {e}"),
//! }
//! # }
//! ```
//!
//! No runtime is assumed: the future is woken by the thread that ticks the node, so it works
//! under tokio, smol or a browser executor alike.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::proto::fetch::{Fetch, FetchError, Request, RequestId, Response};

type Outcome = Result<Response, FetchError>;

#[derive(Default)]
struct Slot {
    outcome: Option<Outcome>,
    waker: Option<Waker>,
}

#[derive(Default)]
struct Shared {
    queue: VecDeque<(Request, Arc<Mutex<Slot>>)>,
    inflight: BTreeMap<RequestId, Arc<Mutex<Slot>>>,
}

/// A handle to start fetches from any thread or task; see the module docs.
#[derive(Clone, Default)]
pub struct FetchClient {
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for FetchClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchClient").finish_non_exhaustive()
    }
}

/// The answer to one [`FetchClient::fetch`].
pub struct FetchFuture {
    slot: Arc<Mutex<Slot>>,
}

impl Future for FetchFuture {
    type Output = Outcome;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut slot = self
            .slot
            .lock()
            .expect("no panics while holding the slot lock");
        match slot.outcome.take() {
            Some(o) => Poll::Ready(o),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

fn complete(slot: &Mutex<Slot>, outcome: Outcome) {
    let mut s = slot.lock().expect("no panics while holding the slot lock");
    s.outcome = Some(outcome);
    if let Some(w) = s.waker.take() {
        w.wake();
    }
}

impl FetchClient {
    /// Queue `request`; it starts on the node's next tick.
    pub fn fetch(&self, request: Request) -> FetchFuture {
        let slot = Arc::new(Mutex::new(Slot::default()));
        self.shared
            .lock()
            .expect("no panics while holding the client lock")
            .queue
            .push_back((request, slot.clone()));
        FetchFuture { slot }
    }

    /// Start queued requests on `core` (called by the node).
    pub(crate) fn start(&self, now_ms: u64, core: &mut Fetch) {
        let mut shared = self
            .shared
            .lock()
            .expect("no panics while holding the client lock");
        while let Some((req, slot)) = shared.queue.pop_front() {
            match core.fetch(now_ms, req) {
                Ok(id) => {
                    shared.inflight.insert(id, slot);
                }
                Err(e) => complete(&slot, Err(e)),
            }
        }
    }

    /// Complete the future of `id` if this client started it; returns the outcome back if not.
    pub(crate) fn finish(&self, id: RequestId, outcome: Outcome) -> Option<Outcome> {
        let slot = self
            .shared
            .lock()
            .expect("no panics while holding the client lock")
            .inflight
            .remove(&id);
        match slot {
            Some(s) => {
                complete(&s, outcome);
                None
            }
            None => Some(outcome),
        }
    }
}
