//! Byte pumps: move frames between the overlay core and real or in-memory links, nothing else.
//!
//! A [`Transport`] owns links and reports [`TransportEvent`]s; the [`Node`] glue feeds them to
//! an [`Overlay`] and carries out what the overlay asks (dial, accept, close, signal).

pub mod client;
#[cfg(feature = "ggrs")]
pub mod ggrs;
#[cfg(feature = "matchbox")]
pub mod matchbox;
pub mod memory;
#[cfg(all(feature = "signalling", not(target_arch = "wasm32")))]
pub mod signalling;

use crate::proto::fetch::{Fetch, FetchEvent, SERVICE_FETCH};
use crate::proto::identity::PeerId;
use crate::proto::ledger::LedgerMsg;
use crate::proto::overlay::{Event, LinkId, Overlay, TransportId};
use crate::proto::session::{SERVICE_SESSION, SessionEvent, SessionService};

/// The service tag in front of application payloads in routed overlay messages (fetch uses
/// [`SERVICE_FETCH`]). A payload with an unknown tag is dropped.
pub const SERVICE_APP: u8 = 0;

/// The service tag in front of ledger messages ([`LedgerMsg`]) in routed overlay messages:
/// wallets reach validators (and payees) through the mesh, exact-routed to their peer ids.
pub const SERVICE_LEDGER: u8 = 3;

/// What a transport reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// A link opened. `local`/`remote` are the socket-level ids the handshake binds.
    LinkUp {
        /// The link.
        link: LinkId,
        /// Our socket id on this link.
        local: TransportId,
        /// The remote socket id.
        remote: TransportId,
    },
    /// A link closed or failed.
    LinkDown {
        /// The link.
        link: LinkId,
    },
    /// A frame arrived.
    Frame {
        /// The link.
        link: LinkId,
        /// The frame bytes (untrusted).
        bytes: Vec<u8>,
    },
    /// The transport wants signalling bytes delivered to `to` through the mesh.
    SignalOut {
        /// The recipient.
        to: PeerId,
        /// The bytes.
        payload: Vec<u8>,
    },
}

/// A source and sink of links and frames.
pub trait Transport: 'static {
    /// Collect what happened since the last call.
    fn poll(&mut self, now_ms: u64, out: &mut Vec<TransportEvent>);
    /// Put `frame` on `link` (dropped silently if the link is gone).
    fn send(&mut self, link: LinkId, frame: Vec<u8>);
    /// Open a link to `peer`, who agreed to it; we make the offer.
    fn dial(&mut self, now_ms: u64, peer: PeerId);
    /// `peer` will dial us: accept its offer.
    fn accept(&mut self, now_ms: u64, peer: PeerId);
    /// Signalling bytes from `from` arrived through the mesh (authenticated, not yet validated).
    fn signal(&mut self, now_ms: u64, from: PeerId, payload: Vec<u8>);
    /// Close `link`.
    fn close(&mut self, link: LinkId);
    /// Put `datagram` (≤ [`DATAGRAM_BYTES_MAX`]) on `link`'s unreliable, unordered channel;
    /// dropped if the link is gone, the queue is full, or the transport has no such channel.
    /// For rollback inputs (GGRS brings its own reliability).
    fn send_datagram(&mut self, _link: LinkId, _datagram: Vec<u8>) {}
    /// Move the datagrams received since the last call to `out` (bounded queue, oldest dropped).
    fn poll_datagrams(&mut self, _out: &mut Vec<(LinkId, Vec<u8>)>) {}
}

/// Largest datagram a transport carries (well under one SCTP/UDP packet, so it is never split).
pub const DATAGRAM_BYTES_MAX: usize = 1_200;
/// Received datagrams a transport holds until polled; beyond that the oldest are dropped.
pub const DATAGRAMS_QUEUED_MAX: usize = 1_024;

/// What the application sees from a [`Node`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// An authenticated link to `peer` opened.
    PeerJoined(PeerId),
    /// The link to `peer` went away.
    PeerLeft(PeerId),
    /// A routed message arrived for us.
    Message {
        /// Claimed origin.
        origin: PeerId,
        /// The key it was sent to.
        target: PeerId,
        /// Bytes.
        payload: Vec<u8>,
        /// Hops taken.
        hops: u8,
    },
    /// A publication on a subscribed topic.
    Published {
        /// Topic key.
        topic: PeerId,
        /// Claimed publisher.
        origin: PeerId,
        /// Bytes.
        payload: Vec<u8>,
    },
    /// A lookup finished.
    LookupDone {
        /// The key.
        key: PeerId,
        /// Closest peers found.
        peers: Vec<PeerId>,
    },
    /// Something the fetch core reports (answers, payments, verdicts, custom-path requests).
    Fetch(FetchEvent),
    /// Something the session service reports (finality, cheats, referee duties).
    Session(SessionEvent),
    /// A ledger message (decoded and bounded by [`LedgerMsg::decode`]) from its claimed origin.
    /// Ledger messages carry their own signatures; the origin only says where to answer.
    Ledger {
        /// Claimed origin.
        origin: PeerId,
        /// The message.
        msg: LedgerMsg,
    },
}

/// One overlay core driven by one transport: the glue shared by the Bevy plugin, the node binary
/// and tests. Call [`Node::tick`] often (every frame, or on a timer).
pub struct Node<T: Transport> {
    /// The overlay core.
    pub overlay: Overlay,
    /// The transport.
    pub transport: T,
    /// The fetch core, if this node requests or serves (see [`Node::with_fetch`]).
    pub fetch: Option<Fetch>,
    /// The session service, if this node plays sessions or referees them
    /// (see [`Node::with_session`]).
    pub session: Option<SessionService>,
    client: Option<client::FetchClient>,
    scratch: Vec<TransportEvent>,
}

impl<T: Transport> std::fmt::Debug for Node<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.overlay.peer_id())
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Node<T> {
    /// Glue `overlay` to `transport`.
    pub fn new(overlay: Overlay, transport: T) -> Self {
        Self {
            overlay,
            transport,
            fetch: None,
            session: None,
            client: None,
            scratch: Vec::new(),
        }
    }

    /// Attach a fetch core (its identity should be the overlay's: answers are routed to the
    /// key that signed the request).
    pub fn with_fetch(mut self, fetch: Fetch) -> Self {
        self.fetch = Some(fetch);
        self
    }

    /// Pump once at `now_ms`: transport → overlay → transport, returning application events.
    pub fn tick(&mut self, now_ms: u64) -> Vec<NodeEvent> {
        let mut out = Vec::new();
        self.transport.poll(now_ms, &mut self.scratch);
        for ev in self.scratch.drain(..) {
            match ev {
                TransportEvent::LinkUp {
                    link,
                    local,
                    remote,
                } => self.overlay.handle_link_up(now_ms, link, local, remote),
                TransportEvent::LinkDown { link } => self.overlay.handle_link_down(now_ms, link),
                TransportEvent::Frame { link, bytes } => {
                    self.overlay.handle_frame(now_ms, link, &bytes)
                }
                TransportEvent::SignalOut { to, payload } => {
                    self.overlay.send_signal(now_ms, to, payload)
                }
            }
        }
        if self.overlay.poll_timeout() <= now_ms {
            self.overlay.handle_timeout(now_ms);
        }
        if let Some(f) = self.fetch.as_mut()
            && f.poll_timeout() <= now_ms
        {
            f.handle_timeout(now_ms);
        }
        if let Some(s) = self.session.as_mut()
            && s.poll_timeout() <= now_ms
        {
            s.handle_timeout(now_ms);
        }
        self.flush(now_ms, &mut out);
        out
    }

    /// Attach a session service (its identity should be the overlay's).
    pub fn with_session(mut self, session: SessionService) -> Self {
        self.session = Some(session);
        self
    }

    /// An async handle for starting fetches on this node's core (created on first use). Its
    /// futures complete as this node is ticked; their answers do not appear as [`NodeEvent`]s.
    pub fn client(&mut self) -> client::FetchClient {
        self.client
            .get_or_insert_with(client::FetchClient::default)
            .clone()
    }

    /// Move the session service's sends onto the overlay and its events out.
    fn pump_session(&mut self, now_ms: u64, out: &mut Vec<NodeEvent>) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        while let Some((to, payload)) = s.poll_send() {
            self.overlay.send(now_ms, to, true, payload);
        }
        while let Some(ev) = s.poll_event() {
            out.push(NodeEvent::Session(ev));
        }
    }

    /// Move the fetch core's sends onto the overlay and its events out.
    fn pump_fetch(&mut self, now_ms: u64, out: &mut Vec<NodeEvent>) {
        let Some(f) = self.fetch.as_mut() else {
            return;
        };
        if let Some(c) = &self.client {
            c.start(now_ms, f);
        }
        while let Some(o) = f.poll_send() {
            o.send_on(&mut self.overlay, now_ms);
        }
        while let Some(ev) = f.poll_event() {
            let ev = match (ev, &self.client) {
                (FetchEvent::Completed { id, result }, Some(c)) => match c.finish(id, result) {
                    None => continue,
                    Some(result) => FetchEvent::Completed { id, result },
                },
                (ev, _) => ev,
            };
            out.push(NodeEvent::Fetch(ev));
        }
    }

    /// Move everything the overlay wants done to the transport; collect application events.
    pub fn flush(&mut self, now_ms: u64, out: &mut Vec<NodeEvent>) {
        loop {
            self.pump_fetch(now_ms, out);
            self.pump_session(now_ms, out);
            while let Some(t) = self.overlay.poll_transmit() {
                self.transport.send(t.link, t.frame);
            }
            let Some(ev) = self.overlay.poll_event() else {
                break;
            };
            match ev {
                Event::PeerJoined { peer, .. } => out.push(NodeEvent::PeerJoined(peer)),
                Event::PeerLeft { peer, .. } => out.push(NodeEvent::PeerLeft(peer)),
                Event::Delivered {
                    origin,
                    target,
                    payload,
                    hops,
                } => match payload.split_first() {
                    Some((&SERVICE_APP, rest)) => out.push(NodeEvent::Message {
                        origin,
                        target,
                        payload: rest.to_vec(),
                        hops,
                    }),
                    Some((&SERVICE_FETCH, rest)) => {
                        if let Some(f) = self.fetch.as_mut()
                            && let Err(e) = f.handle_message(now_ms, origin, rest)
                        {
                            tracing::debug!(%e, "dropped a fetch message");
                        }
                    }
                    Some((&SERVICE_SESSION, rest)) => {
                        if let Some(s) = self.session.as_mut()
                            && let Err(e) = s.handle_message(now_ms, origin, rest)
                        {
                            tracing::debug!(%e, "dropped a session message");
                        }
                    }
                    Some((&SERVICE_LEDGER, rest)) => match LedgerMsg::decode(rest) {
                        Ok(msg) => out.push(NodeEvent::Ledger { origin, msg }),
                        Err(e) => tracing::debug!(%e, "dropped a ledger message"),
                    },
                    _ => tracing::debug!("dropped a routed message with an unknown service tag"),
                },
                Event::Published {
                    topic,
                    origin,
                    payload,
                } => out.push(NodeEvent::Published {
                    topic,
                    origin,
                    payload,
                }),
                Event::LookupDone { key, peers } => out.push(NodeEvent::LookupDone { key, peers }),
                Event::Dial { peer } => self.transport.dial(now_ms, peer),
                Event::Accept { peer } => self.transport.accept(now_ms, peer),
                Event::Signal { from, payload } => self.transport.signal(now_ms, from, payload),
                Event::CloseLink { link } => self.transport.close(link),
            }
        }
    }

    /// Route `payload` to the peer closest to `target` (or exactly `target`).
    pub fn send(&mut self, now_ms: u64, target: PeerId, exact: bool, payload: Vec<u8>) {
        self.overlay
            .send(now_ms, target, exact, tagged(SERVICE_APP, &payload));
    }

    /// Route ledger message `msg` to exactly peer `to` (a validator or a payee).
    pub fn send_ledger(&mut self, now_ms: u64, to: PeerId, msg: &LedgerMsg) {
        match msg.encode() {
            Ok(body) => {
                self.overlay
                    .send(now_ms, to, true, tagged(SERVICE_LEDGER, &body));
            }
            Err(e) => tracing::warn!(%e, "cannot encode a ledger message"),
        }
    }

    /// Start a fetch (the node must have a fetch core); the answer arrives as
    /// [`NodeEvent::Fetch`] with [`FetchEvent::Completed`].
    pub fn fetch(
        &mut self,
        now_ms: u64,
        request: crate::proto::fetch::Request,
    ) -> Result<crate::proto::fetch::RequestId, crate::proto::fetch::FetchError> {
        let f = self
            .fetch
            .as_mut()
            .ok_or(crate::proto::fetch::FetchError::Malformed(
                "this node has no fetch core",
            ))?;
        f.fetch(now_ms, request)
    }

    /// Put `datagram` on the unreliable channel of our direct link to `peer`; false (and
    /// dropped) without one. Datagrams are never routed: rollback wants the direct path or nothing.
    pub fn send_datagram(&mut self, peer: PeerId, datagram: Vec<u8>) -> bool {
        if datagram.len() > DATAGRAM_BYTES_MAX {
            return false;
        }
        let link = self
            .overlay
            .linked_peers()
            .find(|(p, _)| *p == peer)
            .map(|(_, l)| l);
        match link {
            Some(link) => {
                self.transport.send_datagram(link, datagram);
                true
            }
            None => false,
        }
    }

    /// Datagrams received on authenticated links, by peer (those on other links are dropped).
    pub fn poll_datagrams(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        let mut raw = Vec::new();
        self.transport.poll_datagrams(&mut raw);
        if raw.is_empty() {
            return;
        }
        let links: std::collections::BTreeMap<LinkId, PeerId> =
            self.overlay.linked_peers().map(|(p, l)| (l, p)).collect();
        out.extend(
            raw.into_iter()
                .filter(|(_, d)| d.len() <= DATAGRAM_BYTES_MAX)
                .filter_map(|(l, d)| links.get(&l).map(|p| (*p, d))),
        );
    }
}

/// `body` behind its one-byte service tag.
fn tagged(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(tag);
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ledger::OrderDigest;
    use crate::transport::memory::{MemoryNetwork, test_nodes};

    /// A ledger message crosses the mesh to exactly its peer and arrives decoded; bytes behind
    /// the ledger tag that do not decode are dropped without an event.
    #[test]
    fn ledger_messages_cross_the_mesh() {
        let net = MemoryNetwork::new();
        let mut nodes = test_nodes(&net, 3);
        let to = nodes[2].overlay.peer_id();
        let from = nodes[0].overlay.peer_id();
        let msg = LedgerMsg::Confirmed(OrderDigest([7; 32]));
        let mut got = Vec::new();
        for now in (0..5_000).step_by(10) {
            if now == 2_000 {
                nodes[0].send_ledger(now, to, &msg);
                nodes[0]
                    .overlay
                    .send(now, to, true, vec![SERVICE_LEDGER, 0xff, 0xff, 0xff]);
            }
            for (i, n) in nodes.iter_mut().enumerate() {
                for ev in n.tick(now) {
                    if let NodeEvent::Ledger { origin, msg } = ev {
                        got.push((i, origin, msg));
                    }
                }
            }
        }
        assert_eq!(got, vec![(2, from, msg)]);
    }
}
