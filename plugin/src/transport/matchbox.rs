//! Real WebRTC links over matchbox (native and wasm32). See [`MatchboxTransport`].
//!
//! # Two kinds of sockets
//!
//! - **Bootstrap.** One `WebRtcSocket` joins the signalling server's room with matchbox's own
//!   websocket signaller. The server introduces a newcomer to a few members only
//!   ([`super::signalling`]); each matchbox peer this socket connects becomes one overlay link.
//!   matchbox 0.15 cannot close one peer of a socket, so [`Transport::close`] on a bootstrap link
//!   only *retires* it (its frames are dropped, `LinkDown` is reported); once every bootstrap
//!   link is retired the whole bootstrap socket is dropped, which closes them for real and leaves
//!   the room.
//! - **Per link.** Every link the overlay asks for later (`dial` after the remote's `accept`)
//!   gets its own socket whose [`signaller`] carries matchbox's signals through the mesh
//!   ([`TransportEvent::SignalOut`] → the overlay signs and routes them → the remote's
//!   [`Transport::signal`]). One socket per link is how a single link is closed (drop its socket)
//!   and sidesteps matchbox's "a pair of sockets can handshake only once". The dialler's socket
//!   gets `NewPeer` (it offers), the acceptor's socket is created by the first Offer from a peer it
//!   accepted, within `connect_timeout_ms`, and at most `pending_max` sockets may be connecting.
//!
//! Relayed signalling is untrusted: it is [`validate`]d (sizes, SDP structure and the webrtc-rs
//! parsers natively, candidate grammar, role and order) before it reaches matchbox, whose native
//! task `unwrap`s a bad SDP. Candidates that overtake their Offer/Answer in the mesh are held
//! until it is applied (matchbox drops them otherwise).
//!
//! # Channels
//!
//! Every socket declares the same channels in the same order ([`channel_configs`]); natively they
//! are pre-negotiated SCTP streams, so both ends must agree: index [`CHANNEL_MESH`] (reliable,
//! ordered) carries overlay frames (≤ 60 KiB, under matchbox's 64 KiB native cap);
//! [`CHANNEL_GGRS`] (unreliable, unordered) carries datagrams ([`Transport::send_datagram`]):
//! rollback inputs (see the `ggrs` module, feature `ggrs`).
//!
//! # Runtime
//!
//! Socket loops run on one shared background thread natively and as `spawn_local` tasks in the
//! browser ([`runtime`]). ICE servers default to none: host candidates only (fine on a LAN or
//! loopback; add STUN/TURN for the internet).

pub mod runtime;
pub mod signaller;
pub mod validate;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use matchbox_socket::{
    ChannelConfig, Packet, PeerEvent, PeerRequest, PeerState, RtcIceServerConfig, WebRtcSocket,
    WebRtcSocketBuilder,
};
use uuid::Uuid;

pub use runtime::spawn as spawn_socket_loop;
pub use signaller::{MeshSignal, SignalKind};
pub use validate::SignalError;

use super::{DATAGRAM_BYTES_MAX, DATAGRAMS_QUEUED_MAX, Transport, TransportEvent};
use crate::proto::identity::PeerId;
use crate::proto::overlay::{LinkId, TransportId};
use crate::proto::wire;
use signaller::{ChannelSignallerBuilder, SignallerEnds};

/// matchbox's per-socket peer id (a uuid), not to be confused with the overlay's [`PeerId`].
pub type SocketId = matchbox_socket::PeerId;

/// Index of the reliable, ordered channel that carries overlay frames.
pub const CHANNEL_MESH: usize = 0;
/// Index of the unreliable channel that carries datagrams (GGRS rollback inputs).
pub const CHANNEL_GGRS: usize = 1;
/// Largest mesh-signalling envelope accepted from a peer.
pub const SIGNAL_BYTES_MAX: usize = validate::SDP_BYTES_MAX + 256;
/// Frames held per link while matchbox has not yet reported it connected.
const EARLY_FRAMES_MAX: usize = 16;
/// Candidates held per link while its Offer/Answer has not arrived.
const HELD_CANDIDATES_MAX: usize = 32;
/// Accepted peers remembered while they have not dialled.
const ACCEPTS_MAX: usize = 64;

/// The channels every socket declares, in this fixed order (see the module docs).
pub fn channel_configs() -> [ChannelConfig; 2] {
    [ChannelConfig::reliable(), ChannelConfig::unreliable()]
}

/// How to reach the mesh over matchbox.
#[derive(Clone, Debug)]
pub struct MatchboxConfig {
    /// The signalling server's room URL used to bootstrap (e.g. `ws://127.0.0.1:3536/meshwork`).
    /// Empty: no bootstrap socket (links only through an existing mesh).
    pub signalling_url: String,
    /// ICE server URLs (`stun:`/`turn:`). Default: none, host candidates only.
    pub ice_servers: Vec<String>,
    /// TURN user name.
    pub ice_username: Option<String>,
    /// TURN credential.
    pub ice_credential: Option<String>,
    /// A per-link socket that has not connected within this long is dropped (default 15 s);
    /// also how long an `accept` waits for the peer's Offer.
    pub connect_timeout_ms: u64,
    /// Per-link sockets connecting at once (default 8).
    pub pending_max: usize,
    /// Signals accepted per per-link socket (default 64).
    pub signals_per_link_max: u32,
    /// A peer with no link, up or connecting, for this long opens a fresh bootstrap socket, so
    /// the signalling server introduces it again (0: never). Retried with doubling waits up to
    /// a minute while it stays alone. Covers a bootstrap socket that closed or whose introduced
    /// links all failed to connect (matchbox does not retry them), which left a peer isolated
    /// for good. Default natively 20 s (above `connect_timeout_ms`, so a slow handshake is not
    /// cut short); 0 in the browser, where dropping a socket whose handshake is still running
    /// can end the page (see [`MatchboxTransport`]'s parking) — a page is reloaded instead.
    pub rejoin_after_ms: u64,
}

impl Default for MatchboxConfig {
    fn default() -> Self {
        Self {
            signalling_url: String::new(),
            ice_servers: Vec::new(),
            ice_username: None,
            ice_credential: None,
            connect_timeout_ms: 15_000,
            pending_max: 8,
            signals_per_link_max: 64,
            rejoin_after_ms: if cfg!(target_arch = "wasm32") {
                0
            } else {
                20_000
            },
        }
    }
}

impl MatchboxConfig {
    /// Defaults, bootstrapping through the room at `signalling_url`.
    pub fn new(signalling_url: impl Into<String>) -> Self {
        Self {
            signalling_url: signalling_url.into(),
            ..Self::default()
        }
    }
}

/// Counters of a [`MatchboxTransport`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchboxStats {
    /// Links reported up (bootstrap and per-link).
    pub links_up: u64,
    /// Links reported down.
    pub links_down: u64,
    /// Per-link sockets created (dialled or accepted).
    pub link_sockets: u64,
    /// Signals handed to the mesh.
    pub signals_out: u64,
    /// Signals received from the mesh.
    pub signals_in: u64,
    /// Signals rejected (see the logged reason).
    pub signals_rejected: u64,
    /// Frames received on live links.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Frames dropped by the transport (retired or unknown link, too large, early overflow,
    /// datagram queue overflow).
    pub frames_dropped: u64,
    /// Datagrams received on the unreliable channel.
    pub datagrams_in: u64,
    /// Datagrams sent on the unreliable channel.
    pub datagrams_out: u64,
    /// Bootstrap sockets opened (the first, and one per rejoin).
    pub bootstraps: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Dialler,
    Acceptor,
}

/// A link with a socket of its own, signalled through the mesh.
struct MeshLink {
    peer: PeerId,
    role: Role,
    /// Our socket id (we drew it).
    local: Uuid,
    /// The remote socket id (it drew it), learned from its first signal.
    remote: Option<Uuid>,
    /// How our socket names the remote: the dialler's id at the acceptor, a placeholder at the
    /// dialler (matchbox wants a name before the acceptor has drawn its id).
    label: SocketId,
    socket: WebRtcSocket,
    ends: SignallerEnds,
    started_ms: u64,
    up: bool,
    sdp_applied: bool,
    held: Vec<String>,
    early: Vec<Vec<u8>>,
    signals_in: u32,
}

struct Bootstrap {
    socket: WebRtcSocket,
    links: BTreeMap<SocketId, BootLink>,
    by_link: BTreeMap<LinkId, SocketId>,
    /// Connected before our own id was known; reported once it is.
    waiting: Vec<SocketId>,
    early: BTreeMap<SocketId, Vec<Vec<u8>>>,
}

#[derive(Clone, Copy)]
struct BootLink {
    link: LinkId,
    in_use: bool,
}

/// Real WebRTC links: a bootstrap socket plus one socket per mesh-signalled link.
pub struct MatchboxTransport {
    config: MatchboxConfig,
    bootstrap: Option<Bootstrap>,
    mesh: BTreeMap<LinkId, MeshLink>,
    accepts: BTreeMap<PeerId, u64>,
    queued: Vec<TransportEvent>,
    next_link: u64,
    stats: MatchboxStats,
    last_rejection: Option<SignalError>,
    datagrams: VecDeque<(LinkId, Vec<u8>)>,
    /// Per-link sockets we gave up on while they were still connecting, kept until a deadline
    /// in the browser (see [`MatchboxTransport::park`]).
    parked: Vec<(MeshLink, u64)>,
    /// Since when we have had no live link (`None`: we have one).
    alone_since_ms: Option<u64>,
    /// The wait before the next rejoin, and when it is due.
    rejoin_wait_ms: u64,
    next_rejoin_ms: u64,
}

/// The longest wait between two rejoins of a peer that stays alone.
const REJOIN_WAIT_MAX_MS: u64 = 60_000;

/// How long a given-up connecting socket is kept in the browser before it is dropped.
const PARK_MS: u64 = 60_000;
/// Given-up sockets kept at once (beyond it they are dropped at once).
const PARKED_MAX: usize = 32;

impl std::fmt::Debug for MatchboxTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatchboxTransport")
            .field("signalling_url", &self.config.signalling_url)
            .field("bootstrap", &self.bootstrap.is_some())
            .field("link_sockets", &self.mesh.len())
            .finish_non_exhaustive()
    }
}

impl MatchboxTransport {
    /// A transport that bootstraps through `config.signalling_url` (the socket starts now).
    pub fn new(config: MatchboxConfig) -> Self {
        let mut t = Self {
            bootstrap: None,
            mesh: BTreeMap::new(),
            accepts: BTreeMap::new(),
            queued: Vec::new(),
            next_link: 0,
            stats: MatchboxStats::default(),
            last_rejection: None,
            datagrams: VecDeque::new(),
            parked: Vec::new(),
            alone_since_ms: None,
            rejoin_wait_ms: 0,
            next_rejoin_ms: 0,
            config,
        };
        t.open_bootstrap();
        t
    }

    /// Opens a bootstrap socket to the signalling server (replacing the current one, if any).
    fn open_bootstrap(&mut self) {
        if self.config.signalling_url.is_empty() {
            return;
        }
        let (socket, future) = self.builder(&self.config.signalling_url).build();
        runtime::spawn("bootstrap", future);
        self.stats.bootstraps += 1;
        self.bootstrap = Some(Bootstrap {
            socket,
            links: BTreeMap::new(),
            by_link: BTreeMap::new(),
            waiting: Vec::new(),
            early: BTreeMap::new(),
        });
    }

    /// Links up or on their way: bootstrap links in use or reported but not yet ours, and
    /// per-link sockets (connecting or connected).
    fn live_links(&self) -> usize {
        self.bootstrap.as_ref().map_or(0, |b| {
            b.links.values().filter(|bl| bl.in_use).count() + b.waiting.len()
        }) + self.mesh.len()
    }

    /// A peer alone for `rejoin_after_ms` opens a fresh bootstrap socket (see
    /// [`MatchboxConfig::rejoin_after_ms`]).
    fn rejoin_if_alone(&mut self, now_ms: u64) {
        if self.live_links() > 0 {
            self.alone_since_ms = None;
            self.rejoin_wait_ms = 0;
            return;
        }
        let after = self.config.rejoin_after_ms;
        let since = *self.alone_since_ms.get_or_insert(now_ms);
        if after == 0
            || self.config.signalling_url.is_empty()
            || now_ms.saturating_sub(since) < after
            || now_ms < self.next_rejoin_ms
        {
            return;
        }
        self.rejoin_wait_ms = (self.rejoin_wait_ms * 2).clamp(after, REJOIN_WAIT_MAX_MS.max(after));
        self.next_rejoin_ms = now_ms + self.rejoin_wait_ms;
        tracing::info!(
            alone_ms = now_ms - since,
            "no live link: rejoining through the signalling server"
        );
        self.open_bootstrap();
    }

    /// Counters.
    pub fn stats(&self) -> &MatchboxStats {
        &self.stats
    }

    /// Why the most recent relayed signal was rejected.
    pub fn last_rejection(&self) -> Option<&SignalError> {
        self.last_rejection.as_ref()
    }

    /// Whether the bootstrap socket is still open.
    pub fn bootstrap_open(&self) -> bool {
        self.bootstrap.is_some()
    }

    /// Per-link sockets held (connecting or up).
    pub fn link_sockets(&self) -> usize {
        self.mesh.len()
    }

    fn builder(&self, url: &str) -> WebRtcSocketBuilder {
        let ice = RtcIceServerConfig {
            urls: self.config.ice_servers.clone(),
            username: self.config.ice_username.clone(),
            credential: self.config.ice_credential.clone(),
        };
        let mut b = WebRtcSocketBuilder::new(url).ice_server(ice);
        for c in channel_configs() {
            b = b.add_channel(c);
        }
        b
    }

    /// A per-link socket with a mesh signaller; its own id is `local`.
    fn link_socket(&mut self, what: &'static str, local: Uuid) -> (WebRtcSocket, SignallerEnds) {
        let (signaller, ends) = ChannelSignallerBuilder::new();
        let (socket, future) = self
            .builder("mesh:")
            .signaller_builder(Arc::new(signaller))
            .signaling_keep_alive_interval(None)
            .reconnect_attempts(Some(1))
            .build();
        runtime::spawn(what, future);
        // First event, exactly once (a second IdAssigned panics inside matchbox).
        let _ = ends
            .events
            .unbounded_send(PeerEvent::IdAssigned(SocketId::from(local)));
        self.stats.link_sockets += 1;
        (socket, ends)
    }

    /// Puts `bytes` on `channel` of `link`'s socket; false if the link is not up or the
    /// channel refused it.
    fn put(&mut self, link: LinkId, channel: usize, bytes: Vec<u8>) -> bool {
        let (socket, to) = if let Some(m) = self.mesh.get_mut(&link) {
            if !m.up {
                return false;
            }
            (&mut m.socket, m.label)
        } else if let Some(b) = self.bootstrap.as_mut() {
            match b.by_link.get(&link).copied() {
                Some(id) if b.links.get(&id).is_some_and(|bl| bl.in_use) => (&mut b.socket, id),
                _ => return false,
            }
        } else {
            return false;
        };
        socket
            .get_channel_mut(channel)
            .is_ok_and(|c| c.try_send(Packet::from(bytes), to).is_ok())
    }

    fn fresh_link(&mut self) -> LinkId {
        self.next_link += 1;
        LinkId(self.next_link)
    }

    fn connecting(&self) -> usize {
        self.mesh.values().filter(|m| !m.up).count()
    }

    fn poll_bootstrap(&mut self, out: &mut Vec<TransportEvent>) {
        let Some(b) = self.bootstrap.as_mut() else {
            return;
        };
        let changes = match b.socket.try_update_peers() {
            Ok(c) => c,
            Err(_) => {
                tracing::warn!("bootstrap socket closed (signalling unreachable or gone)");
                for bl in b.links.values().filter(|bl| bl.in_use) {
                    self.stats.links_down += 1;
                    out.push(TransportEvent::LinkDown { link: bl.link });
                }
                self.bootstrap = None;
                return;
            }
        };
        for (id, state) in changes {
            match state {
                PeerState::Connected if !b.links.contains_key(&id) && !b.waiting.contains(&id) => {
                    b.waiting.push(id)
                }
                PeerState::Connected => {}
                PeerState::Disconnected => {
                    b.waiting.retain(|w| *w != id);
                    b.early.remove(&id);
                    if let Some(bl) = b.links.get_mut(&id)
                        && bl.in_use
                    {
                        bl.in_use = false;
                        self.stats.links_down += 1;
                        out.push(TransportEvent::LinkDown { link: bl.link });
                    }
                }
            }
        }
        if let Some(local) = b.socket.id() {
            for id in std::mem::take(&mut b.waiting) {
                self.next_link += 1;
                let link = LinkId(self.next_link);
                b.links.insert(id, BootLink { link, in_use: true });
                b.by_link.insert(link, id);
                self.stats.links_up += 1;
                out.push(TransportEvent::LinkUp {
                    link,
                    local: tid(local.0),
                    remote: tid(id.0),
                });
                for bytes in b.early.remove(&id).unwrap_or_default() {
                    self.stats.frames_in += 1;
                    out.push(TransportEvent::Frame { link, bytes });
                }
            }
        }
        if let Ok(channel) = b.socket.get_channel_mut(CHANNEL_MESH) {
            for (id, packet) in channel.receive() {
                match b.links.get(&id) {
                    Some(bl) if bl.in_use => {
                        self.stats.frames_in += 1;
                        out.push(TransportEvent::Frame {
                            link: bl.link,
                            bytes: packet.to_vec(),
                        });
                    }
                    Some(_) => self.stats.frames_dropped += 1,
                    None => {
                        // Data can overtake matchbox's "connected" report: hold a little.
                        let peers_held = b.early.len();
                        let early = b.early.entry(id).or_default();
                        if early.len() < EARLY_FRAMES_MAX && peers_held <= ACCEPTS_MAX {
                            early.push(packet.to_vec());
                        } else {
                            self.stats.frames_dropped += 1;
                        }
                    }
                }
            }
        }
        if let Ok(channel) = b.socket.get_channel_mut(CHANNEL_GGRS) {
            for (id, packet) in channel.receive() {
                match b.links.get(&id) {
                    Some(bl) if bl.in_use => {
                        push_datagram(&mut self.datagrams, &mut self.stats, bl.link, &packet)
                    }
                    _ => self.stats.frames_dropped += 1,
                }
            }
        }
        if !b.links.is_empty() && b.waiting.is_empty() && b.links.values().all(|bl| !bl.in_use) {
            tracing::info!("no bootstrap link in use: closing the bootstrap socket");
            self.bootstrap = None;
        }
    }

    fn poll_mesh(&mut self, now_ms: u64, out: &mut Vec<TransportEvent>) {
        let mut dead = Vec::new();
        for (&link, m) in &mut self.mesh {
            while let Ok(request) = m.ends.requests.try_recv() {
                let PeerRequest::Signal { data, .. } = request else {
                    continue;
                };
                let signal = SignalKind::from_matchbox(data);
                let envelope = match m.role {
                    Role::Dialler => MeshSignal::ToAcceptor {
                        dialler: m.local.into_bytes(),
                        signal,
                    },
                    Role::Acceptor => MeshSignal::ToDialler {
                        dialler: m.label.0.into_bytes(),
                        acceptor: m.local.into_bytes(),
                        signal,
                    },
                };
                match wire::encode_body(&envelope) {
                    Ok(payload) => {
                        self.stats.signals_out += 1;
                        out.push(TransportEvent::SignalOut {
                            to: m.peer,
                            payload,
                        });
                    }
                    Err(e) => tracing::warn!(%e, "outgoing signal not encodable"),
                }
            }
            match m.socket.try_update_peers() {
                Ok(changes) => {
                    for (id, state) in changes {
                        if id != m.label {
                            continue;
                        }
                        match state {
                            PeerState::Connected if !m.up => {
                                m.up = true;
                                let remote = m.remote.unwrap_or(m.label.0);
                                self.stats.links_up += 1;
                                out.push(TransportEvent::LinkUp {
                                    link,
                                    local: tid(m.local),
                                    remote: tid(remote),
                                });
                                for bytes in m.early.drain(..) {
                                    self.stats.frames_in += 1;
                                    out.push(TransportEvent::Frame { link, bytes });
                                }
                            }
                            PeerState::Connected => {}
                            PeerState::Disconnected => dead.push(link),
                        }
                    }
                }
                Err(_) => dead.push(link),
            }
            if let Ok(channel) = m.socket.get_channel_mut(CHANNEL_MESH) {
                for (id, packet) in channel.receive() {
                    if id != m.label {
                        self.stats.frames_dropped += 1;
                    } else if m.up {
                        self.stats.frames_in += 1;
                        out.push(TransportEvent::Frame {
                            link,
                            bytes: packet.to_vec(),
                        });
                    } else if m.early.len() < EARLY_FRAMES_MAX {
                        m.early.push(packet.to_vec());
                    } else {
                        self.stats.frames_dropped += 1;
                    }
                }
            }
            if let Ok(channel) = m.socket.get_channel_mut(CHANNEL_GGRS) {
                for (id, packet) in channel.receive() {
                    if id == m.label && m.up {
                        push_datagram(&mut self.datagrams, &mut self.stats, link, &packet);
                    } else {
                        self.stats.frames_dropped += 1;
                    }
                }
            }
            if !m.up && now_ms.saturating_sub(m.started_ms) > self.config.connect_timeout_ms {
                tracing::debug!(peer = %m.peer.short(), "mesh link did not connect in time: dropped");
                dead.push(link);
            }
        }
        for link in dead {
            if let Some(m) = self.mesh.remove(&link) {
                if m.up {
                    self.stats.links_down += 1;
                    out.push(TransportEvent::LinkDown { link });
                } else {
                    self.park(now_ms, m);
                }
            }
        }
        self.parked.retain(|(_, until)| now_ms < *until);
    }

    /// Gives up on a socket that is still connecting. Natively it is dropped (matchbox closes
    /// its peer connection). In the browser matchbox 0.15 leaves the `RTCPeerConnection` running
    /// and panics (ending the page) if a data channel of a dropped handshake opens later, so the
    /// socket and its signaller are kept for [`PARK_MS`] (at most [`PARKED_MAX`]), long enough
    /// for the handshake to finish or fail by itself, and dropped after.
    fn park(&mut self, now_ms: u64, m: MeshLink) {
        if cfg!(target_arch = "wasm32") && self.parked.len() < PARKED_MAX {
            self.parked.push((m, now_ms.saturating_add(PARK_MS)));
        }
    }

    fn handle_signal(
        &mut self,
        now_ms: u64,
        from: PeerId,
        payload: &[u8],
    ) -> Result<(), SignalError> {
        if payload.len() > SIGNAL_BYTES_MAX {
            return Err(SignalError::TooLarge {
                what: "signal",
                bytes: payload.len(),
            });
        }
        let envelope: MeshSignal =
            wire::decode(payload).map_err(|e| SignalError::Undecodable(e.to_string()))?;
        let max = self.config.signals_per_link_max;
        match envelope {
            MeshSignal::ToAcceptor { dialler, signal } => {
                let label = SocketId::from(Uuid::from_bytes(dialler));
                if let Some(m) = self
                    .mesh
                    .values_mut()
                    .find(|m| m.role == Role::Acceptor && m.peer == from && m.label == label)
                {
                    return inject(m, signal, max);
                }
                let SignalKind::Offer(sdp) = &signal else {
                    return Err(SignalError::Unexpected("signal for no link we know"));
                };
                let timeout = self.config.connect_timeout_ms;
                if self
                    .accepts
                    .get(&from)
                    .is_none_or(|t| now_ms.saturating_sub(*t) > timeout)
                {
                    return Err(SignalError::Unexpected(
                        "offer from a peer we did not accept",
                    ));
                }
                validate::check_sdp(sdp, false)?;
                let remote = Uuid::from_bytes(dialler);
                if remote.is_nil() || self.mesh.values().any(|m| m.local == remote) {
                    return Err(SignalError::Unexpected("bad dialler socket id"));
                }
                if self.connecting() >= self.config.pending_max {
                    return Err(SignalError::Limit("connecting links"));
                }
                self.accepts.remove(&from);
                let local = runtime::fresh_uuid();
                let (socket, ends) = self.link_socket("mesh accept", local);
                let link = self.fresh_link();
                let mut m = MeshLink {
                    peer: from,
                    role: Role::Acceptor,
                    local,
                    remote: Some(remote),
                    label,
                    socket,
                    ends,
                    started_ms: now_ms,
                    up: false,
                    sdp_applied: false,
                    held: Vec::new(),
                    early: Vec::new(),
                    signals_in: 0,
                };
                let result = inject(&mut m, signal, max);
                self.mesh.insert(link, m);
                result
            }
            MeshSignal::ToDialler {
                dialler,
                acceptor,
                signal,
            } => {
                let local = Uuid::from_bytes(dialler);
                let Some(m) = self
                    .mesh
                    .values_mut()
                    .find(|m| m.role == Role::Dialler && m.peer == from && m.local == local)
                else {
                    return Err(SignalError::Unexpected("signal for no link we know"));
                };
                let acceptor = Uuid::from_bytes(acceptor);
                if acceptor.is_nil() || acceptor == local {
                    return Err(SignalError::Unexpected("bad acceptor socket id"));
                }
                if m.remote.is_some_and(|r| r != acceptor) {
                    return Err(SignalError::Unexpected("acceptor socket id changed"));
                }
                inject(m, signal, max)?;
                // Pinned only once a valid signal carried it.
                m.remote = Some(acceptor);
                Ok(())
            }
        }
    }
}

/// Validate `signal` for link `m` and hand it to its socket (or hold it, see module docs).
fn inject(m: &mut MeshLink, signal: SignalKind, max: u32) -> Result<(), SignalError> {
    if m.signals_in >= max {
        return Err(SignalError::Limit("signals on this link"));
    }
    match (&signal, m.role) {
        (SignalKind::Offer(sdp), Role::Acceptor) | (SignalKind::Answer(sdp), Role::Dialler) => {
            if m.sdp_applied {
                return Err(SignalError::Unexpected("second offer/answer"));
            }
            validate::check_sdp(sdp, m.role == Role::Dialler)?;
        }
        (SignalKind::Candidate(c), _) => validate::check_candidate_json(c)?,
        (SignalKind::Offer(_), Role::Dialler) => {
            return Err(SignalError::Unexpected("offer sent to the dialler"));
        }
        (SignalKind::Answer(_), Role::Acceptor) => {
            return Err(SignalError::Unexpected("answer sent to the acceptor"));
        }
    }
    m.signals_in += 1;
    let sender = m.label;
    let send = |m: &MeshLink, s: SignalKind| {
        // Fails only if the socket's loop is gone; the link then ends at the next poll.
        let _ = m.ends.events.unbounded_send(PeerEvent::Signal {
            sender,
            data: s.into_matchbox(),
        });
    };
    match signal {
        SignalKind::Candidate(c) if !m.sdp_applied => {
            if m.held.len() >= HELD_CANDIDATES_MAX {
                return Err(SignalError::Limit("candidates before the offer/answer"));
            }
            m.held.push(c);
        }
        SignalKind::Candidate(c) => send(m, SignalKind::Candidate(c)),
        sdp => {
            send(m, sdp);
            m.sdp_applied = true;
            for c in std::mem::take(&mut m.held) {
                send(m, SignalKind::Candidate(c));
            }
        }
    }
    Ok(())
}

/// Queues a received datagram (oversized ones and, when full, the oldest are dropped).
fn push_datagram(
    queue: &mut VecDeque<(LinkId, Vec<u8>)>,
    stats: &mut MatchboxStats,
    link: LinkId,
    packet: &[u8],
) {
    if packet.len() > DATAGRAM_BYTES_MAX {
        stats.frames_dropped += 1;
        return;
    }
    if queue.len() >= DATAGRAMS_QUEUED_MAX {
        queue.pop_front();
        stats.frames_dropped += 1;
    }
    stats.datagrams_in += 1;
    queue.push_back((link, packet.to_vec()));
}

fn tid(id: Uuid) -> TransportId {
    TransportId(id.into_bytes())
}

impl Transport for MatchboxTransport {
    fn poll(&mut self, now_ms: u64, out: &mut Vec<TransportEvent>) {
        out.append(&mut self.queued);
        self.poll_bootstrap(out);
        self.poll_mesh(now_ms, out);
        self.rejoin_if_alone(now_ms);
        let timeout = self.config.connect_timeout_ms;
        self.accepts
            .retain(|_, t| now_ms.saturating_sub(*t) <= timeout);
    }

    fn send(&mut self, link: LinkId, frame: Vec<u8>) {
        if frame.len() > wire::FRAME_BYTES_MAX {
            tracing::warn!(bytes = frame.len(), "frame over the limit not sent");
            self.stats.frames_dropped += 1;
            return;
        }
        if self.put(link, CHANNEL_MESH, frame) {
            self.stats.frames_out += 1;
        } else {
            self.stats.frames_dropped += 1;
        }
    }

    fn send_datagram(&mut self, link: LinkId, datagram: Vec<u8>) {
        if datagram.len() <= DATAGRAM_BYTES_MAX && self.put(link, CHANNEL_GGRS, datagram) {
            self.stats.datagrams_out += 1;
        } else {
            self.stats.frames_dropped += 1;
        }
    }

    fn poll_datagrams(&mut self, out: &mut Vec<(LinkId, Vec<u8>)>) {
        out.extend(self.datagrams.drain(..));
    }

    fn dial(&mut self, now_ms: u64, peer: PeerId) {
        // One dial per peer at a time: a new request replaces a stale one (its Offer may predate
        // the remote's acceptance of this request, which only a fresh Offer matches).
        let stale: Vec<LinkId> = self
            .mesh
            .iter()
            .filter(|(_, m)| m.role == Role::Dialler && m.peer == peer && !m.up)
            .map(|(l, _)| *l)
            .collect();
        for l in stale {
            if let Some(m) = self.mesh.remove(&l) {
                self.park(now_ms, m);
            }
        }
        if self.connecting() >= self.config.pending_max {
            tracing::warn!(peer = %peer.short(), "too many links connecting: dial dropped");
            return;
        }
        let local = runtime::fresh_uuid();
        let label = SocketId::from(runtime::fresh_uuid());
        let (socket, ends) = self.link_socket("mesh dial", local);
        // We offer: matchbox offers to the peers it is told are new.
        let _ = ends.events.unbounded_send(PeerEvent::NewPeer(label));
        let link = self.fresh_link();
        self.mesh.insert(
            link,
            MeshLink {
                peer,
                role: Role::Dialler,
                local,
                remote: None,
                label,
                socket,
                ends,
                started_ms: now_ms,
                up: false,
                sdp_applied: false,
                held: Vec::new(),
                early: Vec::new(),
                signals_in: 0,
            },
        );
    }

    fn accept(&mut self, now_ms: u64, peer: PeerId) {
        if self.accepts.len() >= ACCEPTS_MAX && !self.accepts.contains_key(&peer) {
            let oldest = self
                .accepts
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(p, _)| *p);
            if let Some(p) = oldest {
                self.accepts.remove(&p);
            }
        }
        self.accepts.insert(peer, now_ms);
    }

    fn signal(&mut self, now_ms: u64, from: PeerId, payload: Vec<u8>) {
        self.stats.signals_in += 1;
        if let Err(reason) = self.handle_signal(now_ms, from, &payload) {
            self.stats.signals_rejected += 1;
            tracing::warn!(peer = %from.short(), %reason, "relayed signal rejected");
            self.last_rejection = Some(reason);
        }
    }

    fn close(&mut self, link: LinkId) {
        if let Some(m) = self.mesh.remove(&link) {
            // Dropping the socket ends its loop and closes the WebRTC connection.
            if m.up {
                self.stats.links_down += 1;
                self.queued.push(TransportEvent::LinkDown { link });
            }
            return;
        }
        if let Some(b) = self.bootstrap.as_mut() {
            let id = b.by_link.get(&link).copied();
            if let Some(bl) = id.and_then(|id| b.links.get_mut(&id))
                && bl.in_use
            {
                // Retired: matchbox cannot close one peer of a socket (see module docs).
                bl.in_use = false;
                self.stats.links_down += 1;
                self.queued.push(TransportEvent::LinkDown { link });
            }
        }
    }
}
