//! The embedded matchbox signalling server (native only, feature `signalling`).
//!
//! Its topology ([`Introducer`]) introduces a newcomer to a few members of its room only
//! (`introductions`, default 3; never the full mesh): each chosen member gets
//! `NewPeer(newcomer)` and offers, the newcomer answers. The server relays signals only between
//! pairs it introduced, in that role order (Offer from the introduced member, Answer from the
//! newcomer, candidates both ways), after the same [validation](super::matchbox::validate) the
//! peers apply to mesh-relayed signals. Everything after bootstrap is signalled through the mesh,
//! so the server can go away once peers have joined.
//!
//! It never sends `PeerLeft`: matchbox 0.15 reports it as a disconnection although the WebRTC
//! connection lives on, so a server restart would tear down working links. Dead links are found
//! by the overlay's liveness pings instead.
//!
//! ```no_run
//! use meshwork::transport::signalling::{SignallingConfig, SignallingServer};
//! let server = SignallingServer::start(SignallingConfig::default()).expect("bind");
//! let url = server.room_url("meshwork"); // ws://127.0.0.1:PORT/meshwork
//! # let _ = url;
//! server.shutdown();
//! ```

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::Message;
use futures::StreamExt as _;
use matchbox_protocol::{JsonPeerEvent, PeerId as SocketId, PeerRequest};
use matchbox_signaling::common_logic::{SignalingChannel, parse_request, try_send};
use matchbox_signaling::{
    ClientRequestError, NoCallbacks, SignalingServerBuilder, SignalingState, SignalingTopology,
    WsStateMeta,
};
use rand_core::RngCore as _;

use super::matchbox::validate::{self, SignalError};

/// Largest websocket text message accepted from a peer.
pub const REQUEST_BYTES_MAX: usize = 32 * 1024;
/// Signals relayed per introduced pair.
const SIGNALS_PER_PAIR_MAX: u32 = 128;

/// How to run the signalling server.
#[derive(Clone, Debug)]
pub struct SignallingConfig {
    /// Address to listen on (default `127.0.0.1:0`: loopback, any free port).
    pub bind: SocketAddr,
    /// Existing members a newcomer is introduced to (default 3).
    pub introductions: usize,
    /// Members per room (default 4096).
    pub room_members_max: usize,
}

impl Default for SignallingConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            introductions: 3,
            room_members_max: 4096,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum SignallingError {
    /// Binding the listening socket failed.
    #[error("bind: {0}")]
    Bind(String),
    /// The server's runtime or thread could not be started.
    #[error("runtime: {0}")]
    Runtime(String),
}

/// Counters of a running server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignallingStats {
    /// Peers that joined a room.
    pub joined: u64,
    /// Introductions made (`NewPeer` sent).
    pub introductions: u64,
    /// Signals relayed.
    pub relayed: u64,
    /// Requests rejected (malformed, oversized, not introduced, invalid signal).
    pub rejected: u64,
}

#[derive(Default)]
struct Counters {
    joined: AtomicU64,
    introductions: AtomicU64,
    relayed: AtomicU64,
    rejected: AtomicU64,
}

/// A running signalling server. Dropping it shuts it down (as [`SignallingServer::shutdown`]).
pub struct SignallingServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for SignallingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignallingServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SignallingServer {
    /// Bind and serve on a background thread of its own (with its own tokio runtime).
    pub fn start(config: SignallingConfig) -> Result<Self, SignallingError> {
        let counters = Arc::new(Counters::default());
        let state = IntroState {
            inner: Arc::new(Mutex::new(Rooms::default())),
            introductions: config.introductions,
            room_members_max: config.room_members_max,
            counters: counters.clone(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut server = SignalingServerBuilder::<Introducer, NoCallbacks, IntroState>::new(
            config.bind,
            Introducer,
            state,
        )
        .with_shutdown(rx)
        .build();
        let addr = server
            .bind()
            .map_err(|e| SignallingError::Bind(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SignallingError::Runtime(e.to_string()))?;
        let thread = std::thread::Builder::new()
            .name("meshwork-signalling".into())
            .spawn(move || {
                if let Err(e) = runtime.block_on(server.serve()) {
                    tracing::error!(%e, "signalling server stopped");
                }
                // Kill what graceful shutdown left (connections that did not close in time).
                runtime.shutdown_timeout(Duration::from_millis(200));
            })
            .map_err(|e| SignallingError::Runtime(e.to_string()))?;
        tracing::info!(%addr, "signalling server listening");
        Ok(Self {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
            counters,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The websocket URL of `room` (one path segment).
    pub fn room_url(&self, room: &str) -> String {
        format!("ws://{}/{room}", self.addr)
    }

    /// Counters so far.
    pub fn stats(&self) -> SignallingStats {
        let c = &self.counters;
        SignallingStats {
            joined: c.joined.load(Ordering::Relaxed),
            introductions: c.introductions.load(Ordering::Relaxed),
            relayed: c.relayed.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
        }
    }

    /// Stop accepting, close every websocket (waiting at most a few seconds) and return.
    /// Links already made between peers live on.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("signalling server thread panicked");
            }
            tracing::info!(addr = %self.addr, "signalling server stopped");
        }
    }
}

impl Drop for SignallingServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The topology: introduce a newcomer to a few members, relay only between introduced pairs.
#[derive(Debug, Default)]
pub struct Introducer;

/// Shared state of the [`Introducer`] (cloned per connection; the data is behind the `Arc`).
#[derive(Clone)]
pub struct IntroState {
    inner: Arc<Mutex<Rooms>>,
    introductions: usize,
    room_members_max: usize,
    counters: Arc<Counters>,
}

impl SignalingState for IntroState {}

#[derive(Default)]
struct Rooms {
    rooms: BTreeMap<String, Room>,
}

#[derive(Default)]
struct Room {
    members: BTreeMap<SocketId, SignalingChannel>,
    /// (offerer, answerer) → what has been relayed.
    pairs: BTreeMap<(SocketId, SocketId), PairState>,
}

#[derive(Default)]
struct PairState {
    offered: bool,
    answered: bool,
    signals: u32,
}

/// A signal as matchbox's JSON carries it (`PeerSignal`).
#[derive(serde::Deserialize)]
enum JsonSignal {
    IceCandidate(String),
    Offer(String),
    Answer(String),
}

impl IntroState {
    fn lock(&self) -> MutexGuard<'_, Rooms> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn reject(&self, peer: SocketId, reason: &dyn std::fmt::Display) {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%peer, %reason, "signalling request rejected");
    }

    /// Add `newcomer` and introduce it to a few random members. False if the room is full.
    fn join(&self, room: &str, newcomer: SocketId, sender: SignalingChannel) -> bool {
        let mut rooms = self.lock();
        let r = rooms.rooms.entry(room.to_owned()).or_default();
        if r.members.len() >= self.room_members_max {
            return false;
        }
        let mut members: Vec<SocketId> = r.members.keys().copied().collect();
        // Partial Fisher–Yates: the first `introductions` entries become a uniform sample.
        let k = self.introductions.min(members.len());
        for i in 0..k {
            let span = u64::try_from(members.len() - i).unwrap_or(u64::MAX);
            let j = i + usize::try_from(rand_core::OsRng.next_u64() % span).unwrap_or(0);
            members.swap(i, j);
        }
        let event = Message::Text(JsonPeerEvent::NewPeer(newcomer).to_string().into());
        for member in &members[..k] {
            if let Some(tx) = r.members.get(member)
                && try_send(tx, event.clone()).is_ok()
            {
                r.pairs.insert((*member, newcomer), PairState::default());
                self.counters.introductions.fetch_add(1, Ordering::Relaxed);
            }
        }
        r.members.insert(newcomer, sender);
        self.counters.joined.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%newcomer, room, introduced = k, "peer joined");
        true
    }

    fn leave(&self, room: &str, peer: SocketId) {
        let mut rooms = self.lock();
        if let Some(r) = rooms.rooms.get_mut(room) {
            r.members.remove(&peer);
            r.pairs.retain(|(a, b), _| *a != peer && *b != peer);
            if r.members.is_empty() {
                rooms.rooms.remove(room);
            }
        }
    }

    /// Relay `data` from `from` to `to` if they were introduced and it is a valid next signal.
    fn relay(
        &self,
        room: &str,
        from: SocketId,
        to: SocketId,
        data: serde_json::Value,
    ) -> Result<(), SignalError> {
        let signal: JsonSignal = serde_json::from_value(data.clone())
            .map_err(|e| SignalError::Undecodable(e.to_string()))?;
        let mut rooms = self.lock();
        let r = rooms
            .rooms
            .get_mut(room)
            .ok_or(SignalError::Unexpected("no such room"))?;
        let (pair, from_offerer) = if r.pairs.contains_key(&(from, to)) {
            ((from, to), true)
        } else if r.pairs.contains_key(&(to, from)) {
            ((to, from), false)
        } else {
            return Err(SignalError::Unexpected("peers were not introduced"));
        };
        let state = r
            .pairs
            .get_mut(&pair)
            .ok_or(SignalError::Unexpected("peers were not introduced"))?;
        if state.signals >= SIGNALS_PER_PAIR_MAX {
            return Err(SignalError::Limit("signals for this pair"));
        }
        match (&signal, from_offerer) {
            (JsonSignal::Offer(sdp), true) if !state.offered => {
                validate::check_sdp(sdp, false)?;
                state.offered = true;
            }
            (JsonSignal::Answer(sdp), false) if state.offered && !state.answered => {
                validate::check_sdp(sdp, true)?;
                state.answered = true;
            }
            (JsonSignal::IceCandidate(c), _) => validate::check_candidate_json(c)?,
            _ => {
                return Err(SignalError::Unexpected(
                    "offer/answer out of order or from the wrong side",
                ));
            }
        }
        state.signals += 1;
        let tx = r
            .members
            .get(&to)
            .ok_or(SignalError::Unexpected("receiver left"))?;
        let event = Message::Text(
            JsonPeerEvent::Signal { sender: from, data }
                .to_string()
                .into(),
        );
        try_send(tx, event).map_err(|_| SignalError::Unexpected("receiver unreachable"))?;
        self.counters.relayed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[async_trait::async_trait]
impl SignalingTopology<NoCallbacks, IntroState> for Introducer {
    async fn state_machine(upgrade: WsStateMeta<NoCallbacks, IntroState>) {
        let WsStateMeta {
            room,
            peer_id,
            sender,
            mut receiver,
            state,
            ..
        } = upgrade;
        if !state.join(&room, peer_id, sender) {
            state.reject(peer_id, &"room full");
            return;
        }
        while let Some(message) = receiver.next().await {
            if let Ok(Message::Text(text)) = &message
                && text.len() > REQUEST_BYTES_MAX
            {
                let too_large = SignalError::TooLarge {
                    what: "request",
                    bytes: text.len(),
                };
                state.reject(peer_id, &too_large);
                continue;
            }
            let request = match parse_request(message) {
                Ok(r) => r,
                Err(ClientRequestError::Close | ClientRequestError::Axum(_)) => break,
                Err(e) => {
                    state.reject(peer_id, &e);
                    continue;
                }
            };
            match request {
                PeerRequest::Signal { receiver: to, data } => {
                    if let Err(e) = state.relay(&room, peer_id, to, data) {
                        state.reject(peer_id, &e);
                    }
                }
                PeerRequest::KeepAlive => {}
            }
        }
        state.leave(&room, peer_id);
        tracing::debug!(%peer_id, room, "peer left");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_only_between_introduced_pairs_in_role_order() {
        let state = IntroState {
            inner: Arc::new(Mutex::new(Rooms::default())),
            introductions: 1,
            room_members_max: 8,
            counters: Arc::new(Counters::default()),
        };
        let (a_tx, _a_rx) = tokio::sync::mpsc::unbounded_channel();
        let (b_tx, mut b_rx) = tokio::sync::mpsc::unbounded_channel();
        let (c_tx, _c_rx) = tokio::sync::mpsc::unbounded_channel();
        let [a, b, c] = [1u128, 2, 3].map(|n| SocketId::from(uuid::Uuid::from_u128(n)));
        assert!(state.join("r", a, a_tx));
        assert!(state.join("r", b, b_tx)); // introduced to a: a offers
        let sdp = validate::tests_support::OFFER.to_owned();
        let offer = serde_json::json!({ "Offer": sdp });
        // b may not offer (it answers); c was never introduced to b.
        assert!(state.relay("r", b, a, offer.clone()).is_err());
        assert!(state.join("r", c, c_tx));
        assert!(
            state
                .relay("r", a, b, serde_json::json!({ "Offer": "v=0\r\nnonsense" }))
                .is_err()
        );
        state.relay("r", a, b, offer.clone()).expect("valid offer");
        assert!(b_rx.try_recv().is_ok());
        assert!(state.relay("r", a, b, offer).is_err(), "second offer");
        assert!(
            state
                .relay(
                    "r",
                    a,
                    b,
                    serde_json::json!({ "IceCandidate": "{\"candidate\":\"x\"}" })
                )
                .is_err()
        );
        assert!(
            state
                .relay("r", a, b, serde_json::json!({ "Bogus": 1 }))
                .is_err()
        );
    }
}
