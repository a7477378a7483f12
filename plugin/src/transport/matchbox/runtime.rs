//! Where matchbox sockets run, and fresh socket ids.
//!
//! Natively every socket's `MessageLoopFuture` runs on one shared background thread (a smol
//! executor, matchbox's own runtime), created on first use and kept for the life of the process.
//! A socket's loop ends by itself once the socket is dropped. A panic inside matchbox is caught
//! and logged so it cannot take the other sockets down with it; validation
//! ([`super::validate`]) is what keeps peers from triggering one in the first place.
//! In the browser each loop is a `wasm_bindgen_futures::spawn_local` task.

use matchbox_socket::MessageLoopFuture;

/// Drive `future` (a socket's message loop) in the background, where Meshwork drives its own
/// sockets. `what` names it in logs.
#[cfg(not(target_arch = "wasm32"))]
pub fn spawn(what: &'static str, future: MessageLoopFuture) {
    use futures::FutureExt as _;
    use std::sync::OnceLock;

    static EXECUTOR: OnceLock<&'static smol::Executor<'static>> = OnceLock::new();
    let executor = EXECUTOR.get_or_init(|| {
        let executor: &'static smol::Executor<'static> = Box::leak(Box::new(smol::Executor::new()));
        let spawned = std::thread::Builder::new()
            .name("meshwork-matchbox".into())
            .spawn(move || smol::block_on(executor.run(futures::future::pending::<()>())));
        if let Err(e) = spawned {
            tracing::error!(%e, "cannot start the matchbox thread; sockets will not run");
        }
        executor
    });
    executor
        .spawn(async move {
            match std::panic::AssertUnwindSafe(future).catch_unwind().await {
                Ok(Ok(())) => tracing::debug!(what, "matchbox socket loop ended"),
                Ok(Err(e)) => tracing::debug!(what, %e, "matchbox socket loop ended with an error"),
                Err(_) => {
                    tracing::error!(what, "matchbox socket loop panicked; the socket is gone")
                }
            }
        })
        .detach();
}

/// Drive `future` (a socket's message loop) in the background, where Meshwork drives its own
/// sockets. `what` names it in logs.
#[cfg(target_arch = "wasm32")]
pub fn spawn(what: &'static str, future: MessageLoopFuture) {
    wasm_bindgen_futures::spawn_local(async move {
        match future.await {
            Ok(()) => tracing::debug!(what, "matchbox socket loop ended"),
            Err(e) => tracing::debug!(what, %e, "matchbox socket loop ended with an error"),
        }
    });
}

/// A fresh random (v4) uuid for a socket we create.
pub fn fresh_uuid() -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(not(target_arch = "wasm32"))]
fn fill_random(bytes: &mut [u8]) {
    use rand_core::RngCore as _;
    rand_core::OsRng.fill_bytes(bytes);
}

#[cfg(target_arch = "wasm32")]
fn fill_random(bytes: &mut [u8]) {
    if let Err(e) = getrandom::getrandom(bytes) {
        // WebCrypto is missing (not a browser?). Socket ids only need to be unique within this
        // page, not secret: fall back to a counter.
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        tracing::warn!(%e, "no randomness for socket ids; using a counter");
        let n = NEXT.fetch_add(1, Ordering::Relaxed).to_le_bytes();
        bytes
            .iter_mut()
            .zip(n.iter().cycle())
            .for_each(|(b, n)| *b = *n);
    }
}
