//! The overlay: Kademlia knowledge, a capped set of live links, greedy XOR routing, lookups,
//! liveness, the authenticated link handshake, link requests signalled through the mesh, and
//! pub/sub topics. Sans-IO: a transport feeds it link events and frames, and drains
//! [`Overlay::poll_transmit`] and [`Overlay::poll_event`].
//!
//! # Links
//!
//! Live links are scarce (a browser tab gets ~500 `RTCPeerConnection`s in its lifetime), so a
//! node keeps at most `links_max` (default 24): one *finger* in every occupied k-bucket plus its
//! `neighbours` closest known peers. Bucket indices are symmetric (`a` is in `b`'s bucket `i`
//! iff `b` is in `a`'s), so a link serves as a finger at both ends. With a live link in every
//! occupied bucket, greedy forwarding to the link closest to the target fixes at least one more
//! leading bit per hop and ends at the peer closest to the target: O(log N) hops.
//!
//! # Handshake
//!
//! On link-up each side sends `Hello { public_key, nonce }`, then on the other's Hello an
//! `Auth` signature (domain `LinkAuth`) over both transport ids and both nonces
//! ([`msg::auth_message`]). Until both are verified a link carries nothing else.
//!
//! # Delivery
//!
//! Each routed hop is acknowledged; an unacknowledged hop is re-sent (re-choosing the next hop,
//! so a dead link is routed around) up to `retries_max` times. Duplicates are dropped by
//! `(origin, id)`. The `origin` of a routed message is a hint unless its body is signed.

mod delivery;
pub(crate) mod drbg;
mod links;
pub mod msg;
mod routing;
pub mod table;

use drbg::Drbg;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use litemap::LiteMap;

use rand_core::RngCore;
use sha2::{Digest, Sha256};

use crate::proto::identity::{self, Domain, Identity, PeerId, PublicKey};
use crate::proto::wire::{self, Frame, Reassembler, WireError};
pub use msg::{
    Body, ConnectReply, ConnectRequest, LinkMsg, Routed, SignalBody, Signed, TransportId,
};
use table::Table;

/// Capacity kept by idle queues.
const QUEUE_KEEP: usize = 8;

/// How long an acknowledgement may wait for a `Routed` frame to ride on.
const ACK_DELAY_MS: u64 = 20;

/// Consecutive unacknowledged hops after which a link is considered dead, if it has also been
/// silent for [`STRIKE_SILENCE_RTOS`] retransmit timeouts.
const LINK_STRIKES_MAX: u8 = 3;
/// Retransmit timeouts of silence (nothing received on the link) that, with
/// [`LINK_STRIKES_MAX`] missed acks, close a link.
const STRIKE_SILENCE_RTOS: u64 = 8;

/// How to answer a peer that sent us something: retrace that message's path (`last_id`), or
/// head for its waypoint.
#[derive(Debug, Clone, Copy)]
struct ReturnPath {
    origin: [u8; 8],
    via: [u8; 4],
    last_id: u64,
}

/// Two bits of a 64-bit Bloom filter standing for `id` on a message's path.
fn visit_bits(id: &PeerId) -> u64 {
    (1u64 << (id.0[0] & 63)) | (1u64 << (id.0[1] & 63))
}

/// A word both ends of a link derive alike from its two transport ids (order-independent).
fn link_tie(a: TransportId, b: TransportId) -> u64 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let mut h = Sha256::new();
    h.update(lo.0);
    h.update(hi.0);
    let d = h.finalize();
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

fn prefix8(id: &PeerId) -> [u8; 8] {
    let mut p = [0u8; 8];
    p.copy_from_slice(&id.0[..8]);
    p
}

/// Peers that refused a link are not asked again for this long.
const REFUSED_BACKOFF_MS: u64 = 30_000;
/// Refusals remembered.
const REFUSED_MAX: usize = 16;

/// Concurrent queries of one lookup (Kademlia's α).
const LOOKUP_PARALLELISM: usize = 2;
/// Queries one lookup may send in all.
const LOOKUP_QUERIES_MAX: u8 = 16;
/// Lookups in progress at once.
const LOOKUPS_MAX: usize = 24;

#[derive(Debug)]
struct Lookup {
    started_ms: u64,
    asked: Vec<PeerId>,
    in_flight: usize,
    queries_left: u8,
}

/// Origins whose reply waypoint we remember (see [`Routed::via`]).
const RETURN_PATHS_MAX: usize = 32;

/// A link as named by the transport that owns it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct LinkId(pub u64);

/// Tunables of the overlay. Defaults suit browsers and native nodes alike.
#[derive(Clone, Debug)]
pub struct OverlayConfig {
    /// Most live links (default 24).
    pub links_max: usize,
    /// Kademlia bucket size k (default 8).
    pub bucket_size: usize,
    /// How many of the closest known peers to keep linked (default 6).
    pub neighbours: usize,
    /// Routed messages are dropped after this many hops (default 32).
    pub hops_max: u8,
    /// Interval between maintenance passes (default 1 s).
    pub maintenance_ms: u64,
    /// A link with no traffic is pinged after this long (default 10 s).
    pub ping_idle_ms: u64,
    /// A link is pinged at least this often even when busy, so its round-trip time
    /// ([`Overlay::rtt_ms`]) stays known and current (default 15 s: longer than
    /// `ping_idle_ms`, so an idle link's liveness pings serve and only busy links, which never
    /// fall idle, get extra pings — one ping and pong per link per 15 s).
    pub rtt_probe_ms: u64,
    /// A link silent for this long is closed (default 30 s).
    pub link_timeout_ms: u64,
    /// A handshake, dial or expected dial older than this is abandoned (default 10 s).
    pub handshake_timeout_ms: u64,
    /// First re-send delay of an unacknowledged hop (default 300 ms; doubles per try).
    pub retransmit_ms: u64,
    /// Sends of one hop before it is given up (default 5).
    pub retries_max: u8,
    /// Concurrent outgoing link requests (default 4).
    pub dials_max: usize,
    /// Recently seen `(origin, id)` pairs remembered for duplicate suppression and for replies to
    /// retrace their path (default 256; 12 bytes each).
    pub seen_max: usize,
    /// Unacknowledged hops held (default 256).
    pub pending_max: usize,
    /// Required leading zero bits of `sha256(PeerId)` for peers we link with (default 0).
    pub id_difficulty_bits: u8,
    /// How often a node looks itself up to refresh its neighbourhood (default 60 s).
    pub refresh_ms: u64,
    /// Topic subscriptions are renewed this often and expire after 3× it (default 20 s).
    pub subscribe_ms: u64,
    /// Topics a rendezvous peer tracks, and subscribers per topic (default 64, 256).
    pub topics_max: usize,
    /// See `topics_max`.
    pub subscribers_max: usize,
    /// Malformed frames tolerated on one link before it is closed (default 16).
    pub link_errors_max: u32,
}

impl Default for OverlayConfig {
    fn default() -> Self {
        Self {
            links_max: 24,
            bucket_size: 8,
            neighbours: 6,
            hops_max: 32,
            maintenance_ms: 1_000,
            ping_idle_ms: 10_000,
            rtt_probe_ms: 15_000,
            link_timeout_ms: 30_000,
            handshake_timeout_ms: 10_000,
            retransmit_ms: 300,
            retries_max: 5,
            dials_max: 4,
            seen_max: 256,
            pending_max: 256,
            id_difficulty_bits: 0,
            refresh_ms: 60_000,
            subscribe_ms: 20_000,
            topics_max: 64,
            subscribers_max: 256,
            link_errors_max: 16,
        }
    }
}

/// A frame to put on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The link.
    pub link: LinkId,
    /// The frame (≤ `wire::FRAME_BYTES_MAX`).
    pub frame: Vec<u8>,
}

/// What the overlay tells its transport and application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A link finished its handshake.
    PeerJoined {
        /// The authenticated peer.
        peer: PeerId,
        /// Its link.
        link: LinkId,
    },
    /// An authenticated link went away.
    PeerLeft {
        /// The peer.
        peer: PeerId,
        /// Its former link.
        link: LinkId,
    },
    /// A routed application message reached us (we are the closest peer to `target`, or `target`).
    Delivered {
        /// The claimed origin.
        origin: PeerId,
        /// The key it was sent to.
        target: PeerId,
        /// The bytes.
        payload: Vec<u8>,
        /// Hops it took.
        hops: u8,
    },
    /// A publication on a topic we subscribed to.
    Published {
        /// The topic key.
        topic: PeerId,
        /// The publisher (claimed).
        origin: PeerId,
        /// The bytes.
        payload: Vec<u8>,
    },
    /// Transport: open a link to `peer` (it agreed); we make the offer.
    Dial {
        /// The peer.
        peer: PeerId,
    },
    /// Transport: `peer` will dial us; accept its offer.
    Accept {
        /// The peer.
        peer: PeerId,
    },
    /// Transport signalling from `from`, carried through the mesh and signature-checked.
    Signal {
        /// The authenticated sender.
        from: PeerId,
        /// The transport's bytes (validate before use).
        payload: Vec<u8>,
    },
    /// Transport: close this link.
    CloseLink {
        /// The link.
        link: LinkId,
    },
    /// A lookup finished.
    LookupDone {
        /// The key.
        key: PeerId,
        /// The closest peers found, closest first.
        peers: Vec<PeerId>,
    },
}

/// Counters, for diagnostics and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames put on links.
    pub frames_out: u64,
    /// Bytes put on links.
    pub bytes_out: u64,
    /// Frames received.
    pub frames_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Frames dropped as malformed, unauthenticated or unexpected.
    pub frames_dropped: u64,
    /// Routed messages forwarded for others.
    pub forwarded: u64,
    /// Hop re-sends.
    pub retransmits: u64,
    /// Routed messages given up (no ack after all tries, hop limit, undeliverable).
    pub routed_lost: u64,
    /// Handshakes rejected.
    pub handshakes_rejected: u64,
    /// Routed messages received again (a re-send, a duplicate, or a loop) and dropped.
    pub duplicates: u64,
    /// Exact-target messages that found no route (a subset of `routed_lost`).
    pub no_route: u64,
    /// Link requests we sent.
    pub dials: u64,
    /// Link requests of ours that were refused.
    pub dials_refused: u64,
    /// Link requests of ours that got no answer or no link in time.
    pub dials_timed_out: u64,
    /// Link requests from others that we refused.
    pub connects_refused: u64,
    /// Links closed because the peer had a second link to us (both dialled at once).
    pub links_closed_duplicate: u64,
    /// Links closed to make room for a more useful one.
    pub links_closed_for_room: u64,
    /// Links closed for being over the cap (e.g. after bootstrap introductions).
    pub links_shed: u64,
}

#[derive(Debug)]
enum LinkState {
    /// Boxed: only new links carry it, and it would double the size of every link.
    Handshake(Box<Handshake>),
    Up {
        peer: PeerId,
    },
}

#[derive(Debug)]
struct Handshake {
    our_nonce: [u8; 16],
    theirs: Option<(PublicKey, [u8; 16])>,
    /// The transport-level socket ids the handshake binds; not needed once authenticated.
    local: TransportId,
    remote: TransportId,
}

#[derive(Debug)]
struct Link {
    id: LinkId,
    /// Both ends compute the same word from the two transport ids (see `link_tie`); it
    /// decides which of two links to one peer survives.
    tie: u64,
    state: LinkState,
    opened_ms: u64,
    last_recv_ms: u64,
    last_send_ms: u64,
    remote_needs: bool,
    next_seq: u32,
    next_msg_id: u32,
    errors: u32,
    strikes: u8,
    owed_acks: Vec<u32>,
    ack_due_ms: u64,
    ping: Option<(u64, u64)>,
    /// When the last ping left (0: never).
    last_ping_ms: u64,
    rtt_ms: Option<u32>,
    reassembler: Option<Box<Reassembler>>,
}

impl Link {
    fn peer(&self) -> Option<PeerId> {
        match self.state {
            LinkState::Up { peer } => Some(peer),
            LinkState::Handshake(_) => None,
        }
    }
}

#[derive(Debug)]
struct Pending {
    link: LinkId,
    seq: u32,
    msg: Routed,
    skip: Option<PeerId>,
    due_ms: u64,
    tries: u8,
}

/// Whether a new link fits (see `Overlay::room_for`).
enum Room {
    /// Under the cap.
    Free,
    /// Fits once this link we do not need is closed.
    Closing(LinkId),
    /// Does not fit.
    None,
}

#[derive(Debug)]
struct Dial {
    nonce: u64,
    started_ms: u64,
    accepted: bool,
}

/// One peer's overlay state machine.
#[derive(Debug)]
pub struct Overlay {
    identity: Identity,
    me: PeerId,
    cfg: OverlayConfig,
    rng: Drbg,
    table: Table,
    links: Vec<Link>,
    pending: VecDeque<Pending>,
    /// Small sorted vectors, not B-trees: a B-tree's first node costs ~450 bytes and outlives its
    /// last entry, which at 100k peers was several hundred bytes per peer of empty maps.
    dials: LiteMap<PeerId, Dial>,
    expected: LiteMap<PeerId, u64>,
    /// A word an entry: the 40-bit seen key in the low five bytes, the first 3 bytes of the
    /// peer it came from above them (little-endian). A 40-bit key makes a false duplicate among
    /// 256 entries a 1-in-4-billion event, and 3 bytes tell apart the ≤ 24 links the way back
    /// is among.
    seen: VecDeque<u64>,
    subscriptions: BTreeSet<PeerId>,
    /// Most recent last; keyed by 8-byte id prefixes to stay small.
    return_paths: VecDeque<ReturnPath>,
    rendezvous: BTreeMap<PeerId, BTreeMap<PeerId, u64>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_routed_id: u64,
    next_maintenance_ms: u64,
    next_refresh_ms: u64,
    lookups: LiteMap<PeerId, Lookup>,
    /// `(id prefix, until)` of peers that refused a link.
    refused: VecDeque<([u8; 8], u64)>,
    next_subscribe_ms: u64,
    stats: Stats,
}

impl Overlay {
    /// A node for `identity`, starting at `now_ms`, with its randomness from `seed`.
    pub fn new(identity: Identity, cfg: OverlayConfig, now_ms: u64, seed: [u8; 32]) -> Self {
        assert!(
            cfg.links_max > 0 && cfg.bucket_size > 0,
            "links_max and bucket_size must be positive"
        );
        let me = identity.peer_id();
        Self {
            table: Table::new(me, cfg.bucket_size),
            identity,
            me,
            rng: Drbg::new(seed),
            links: Vec::new(),
            pending: VecDeque::new(),
            dials: LiteMap::new(),
            expected: LiteMap::new(),
            seen: VecDeque::new(),
            subscriptions: BTreeSet::new(),
            return_paths: VecDeque::new(),
            rendezvous: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_routed_id: 0,
            next_maintenance_ms: now_ms,
            next_refresh_ms: now_ms,
            lookups: LiteMap::new(),
            refused: VecDeque::new(),
            next_subscribe_ms: now_ms,
            stats: Stats::default(),
            cfg,
        }
    }

    /// Our id.
    pub fn peer_id(&self) -> PeerId {
        self.me
    }

    /// Our identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The configuration.
    pub fn config(&self) -> &OverlayConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Authenticated peers we hold live links to, with their links.
    pub fn linked_peers(&self) -> impl Iterator<Item = (PeerId, LinkId)> + '_ {
        self.links
            .iter()
            .filter_map(|l| l.peer().map(|p| (p, l.id)))
    }

    /// Up to `n` authenticated linked peers closest (XOR) to `key`, closest first: where a
    /// service forwards work to competing replicas.
    pub fn closest_linked(&self, key: &PeerId, n: usize, exclude: Option<&PeerId>) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = self
            .linked_peers()
            .map(|(p, _)| p)
            .filter(|p| Some(p) != exclude)
            .collect();
        peers.sort_by_key(|p| p.distance(key));
        peers.truncate(n);
        peers
    }

    /// Number of links (including those still in their handshake).
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Last measured round trip on the link to `peer`.
    pub fn rtt_ms(&self, peer: &PeerId) -> Option<u32> {
        self.links
            .iter()
            .find(|l| l.peer() == Some(*peer))
            .and_then(|l| l.rtt_ms)
    }

    /// Known peers (routing-table size).
    pub fn known_peers(&self) -> usize {
        self.table.len()
    }

    /// Whether `peer` is in the routing table.
    pub fn knows(&self, peer: &PeerId) -> bool {
        self.table.contains(peer)
    }

    /// Learn of a peer out of band (e.g. a bootstrap list).
    pub fn add_known(&mut self, _now_ms: u64, peer: PeerId) {
        if peer != self.me {
            self.table.insert(peer);
        }
    }

    /// Approximate heap bytes held by this node (simulator memory figures): the containers'
    /// capacities (the small sorted maps by length) and the per-link buffers they own; the
    /// topic maps (empty in the overlay benchmark) are left out.
    pub fn heap_bytes(&self) -> usize {
        let links: usize = self
            .links
            .iter()
            .map(|l| {
                l.owed_acks.capacity() * size_of::<u32>()
                    + match l.state {
                        LinkState::Handshake(_) => size_of::<Handshake>(),
                        LinkState::Up { .. } => 0,
                    }
                    + l.reassembler
                        .as_ref()
                        .map_or(0, |_| size_of::<Reassembler>())
            })
            .sum();
        let lookups: usize = self
            .lookups
            .values()
            .map(|l| l.asked.capacity() * size_of::<PeerId>())
            .sum();
        self.table.heap_bytes()
            + self.links.capacity() * size_of::<Link>()
            + links
            + self.pending.capacity() * size_of::<Pending>()
            + self.seen.capacity() * size_of::<u64>()
            + self.return_paths.capacity() * size_of::<ReturnPath>()
            + self.refused.capacity() * size_of::<([u8; 8], u64)>()
            + self.transmits.capacity() * size_of::<Transmit>()
            + self.events.capacity() * size_of::<Event>()
            + self.dials.len() * size_of::<(PeerId, Dial)>()
            + self.expected.len() * size_of::<(PeerId, u64)>()
            + self.lookups.len() * size_of::<(PeerId, Lookup)>()
            + lookups
    }

    /// Hands back room a burst left in queues that are now short or empty (run from the
    /// maintenance pass, once a second): a peer that once held 100 unacknowledged hops should
    /// not keep room for 100 for the rest of its life. Kept at twice the length plus a little,
    /// so steady traffic does not reallocate every second.
    fn release_spare_room(&mut self) {
        fn spare<T>(q: &mut VecDeque<T>) {
            if q.capacity() > 2 * q.len() + 8 {
                q.shrink_to(q.len() + 4);
            }
        }
        spare(&mut self.pending);
        spare(&mut self.refused);
        spare(&mut self.transmits);
        spare(&mut self.events);
        if self.dials.is_empty() {
            self.dials = LiteMap::new();
        }
        if self.expected.is_empty() {
            self.expected = LiteMap::new();
        }
        if self.lookups.is_empty() {
            self.lookups = LiteMap::new();
        }
        for l in &mut self.links {
            if l.owed_acks.is_empty() && l.owed_acks.capacity() > 8 {
                l.owed_acks = Vec::new();
            }
        }
    }

    // ----- transport → core -------------------------------------------------------------

    /// A transport link came up. `local`/`remote` are the transport-level socket ids the
    /// handshake binds to the peers' ids.
    pub fn handle_link_up(
        &mut self,
        now_ms: u64,
        link: LinkId,
        local: TransportId,
        remote: TransportId,
    ) {
        if self.links.iter().any(|l| l.id == link) {
            tracing::warn!(?link, "duplicate link-up ignored");
            return;
        }
        let mut our_nonce = [0u8; 16];
        self.rng.fill_bytes(&mut our_nonce);
        // Grow one at a time: a doubling Vec would hold room for 32 links (7 KB) on every peer.
        self.links.reserve_exact(1);
        self.links.push(Link {
            id: link,
            tie: link_tie(local, remote),
            state: LinkState::Handshake(Box::new(Handshake {
                our_nonce,
                theirs: None,
                local,
                remote,
            })),
            opened_ms: now_ms,
            last_recv_ms: now_ms,
            last_send_ms: now_ms,
            remote_needs: false,
            next_seq: 0,
            next_msg_id: 0,
            errors: 0,
            strikes: 0,
            owed_acks: Vec::new(),
            ack_due_ms: 0,
            ping: None,
            last_ping_ms: 0,
            rtt_ms: None,
            reassembler: None,
        });
        self.send_link(
            now_ms,
            link,
            &LinkMsg::Hello {
                public_key: self.identity.public_key(),
                nonce: our_nonce,
            },
        );
    }

    /// A transport link went away (closed by either side or failed).
    pub fn handle_link_down(&mut self, _now_ms: u64, link: LinkId) {
        let Some(i) = self.links.iter().position(|l| l.id == link) else {
            return;
        };
        let l = self.links.swap_remove(i);
        if let Some(peer) = l.peer() {
            self.events.push_back(Event::PeerLeft { peer, link });
        }
    }

    /// A frame arrived on `link`. Bad frames are dropped with a logged reason.
    pub fn handle_frame(&mut self, now_ms: u64, link: LinkId, frame: &[u8]) {
        self.stats.frames_in += 1;
        self.stats.bytes_in += frame.len() as u64;
        let Some(l) = self.links.iter_mut().find(|l| l.id == link) else {
            self.stats.frames_dropped += 1;
            return;
        };
        // A whole frame decodes in place; chunks are copied until their message is complete.
        let msg = match wire::parse_frame(frame) {
            Ok(Frame::Whole(body)) => wire::decode::<LinkMsg>(body).map(Some),
            Ok(Frame::Chunk { .. }) => l
                .reassembler
                .get_or_insert_with(|| Box::new(Reassembler::new(4, 30_000)))
                .push(now_ms, frame)
                .and_then(|b| b.map(|b| wire::decode::<LinkMsg>(&b)).transpose()),
            Err(e) => Err(e),
        };
        let msg = match msg {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => return self.reject_frame(link, &e.to_string()),
        };
        self.handle_link_msg(now_ms, link, msg);
    }

    fn reject_frame(&mut self, link: LinkId, reason: &str) {
        self.stats.frames_dropped += 1;
        tracing::warn!(?link, reason, "frame dropped");
        let max = self.cfg.link_errors_max;
        if let Some(l) = self.links.iter_mut().find(|l| l.id == link) {
            l.errors += 1;
            if l.errors > max {
                tracing::warn!(?link, "too many bad frames: closing link");
                self.close_link(link);
            }
        }
    }

    fn handle_link_msg(&mut self, now_ms: u64, link: LinkId, msg: LinkMsg) {
        let Some(l) = self.links.iter_mut().find(|l| l.id == link) else {
            return;
        };
        l.last_recv_ms = now_ms;
        match (&mut l.state, msg) {
            (LinkState::Handshake(hs), LinkMsg::Hello { public_key, nonce }) => {
                if hs.theirs.is_some() {
                    return self.reject_frame(link, "second hello");
                }
                hs.theirs = Some((public_key, nonce));
                let m = msg::auth_message(hs.local, hs.remote, &nonce, &hs.our_nonce);
                let signature = self.identity.sign(Domain::LinkAuth, &m);
                self.send_link(now_ms, link, &LinkMsg::Auth { signature });
            }
            (LinkState::Handshake(hs), LinkMsg::Auth { signature }) => {
                let Some((public_key, their_nonce)) = hs.theirs else {
                    return self.reject_handshake(link, "auth before hello");
                };
                let m = msg::auth_message(hs.remote, hs.local, &hs.our_nonce, &their_nonce);
                if identity::verify(&public_key, Domain::LinkAuth, &m, &signature).is_err() {
                    return self.reject_handshake(link, "bad handshake signature");
                }
                let peer = PeerId::from_public_key(&public_key);
                self.link_authenticated(now_ms, link, peer);
            }
            (LinkState::Handshake(_), _) => self.reject_frame(link, "message before handshake"),
            (LinkState::Up { .. }, LinkMsg::Hello { .. } | LinkMsg::Auth { .. }) => {
                self.reject_frame(link, "handshake message on an authenticated link");
            }
            (LinkState::Up { .. }, LinkMsg::Ping { nonce, needed }) => {
                l.remote_needs = needed;
                let needed = self.needs_link(link);
                self.send_link(now_ms, link, &LinkMsg::Pong { nonce, needed });
            }
            (LinkState::Up { .. }, LinkMsg::Pong { nonce, needed }) => {
                l.remote_needs = needed;
                if let Some((n, sent)) = l.ping
                    && n == nonce
                {
                    l.rtt_ms = Some(u32::try_from(now_ms.saturating_sub(sent)).unwrap_or(u32::MAX));
                    l.ping = None;
                }
            }
            (LinkState::Up { peer }, LinkMsg::Peers { peers }) => {
                let from = *peer;
                if peers.len() > msg::PEERS_MAX {
                    return self.reject_frame(link, "peer list too long");
                }
                for p in peers {
                    if p != self.me && p != from {
                        self.table.insert_via(p, Some(&from));
                    }
                }
            }
            (LinkState::Up { .. }, LinkMsg::Ack { seqs }) => {
                if seqs.len() > msg::ACKS_MAX {
                    return self.reject_frame(link, "too many acks");
                }
                self.take_acks(link, &seqs);
            }
            (LinkState::Up { peer }, LinkMsg::Routed { seq, acks, msg }) => {
                let from = *peer;
                if acks.len() > msg::ACKS_MAX {
                    return self.reject_frame(link, "too many acks");
                }
                if l.owed_acks.is_empty() {
                    l.ack_due_ms = now_ms + ACK_DELAY_MS;
                }
                l.owed_acks.push(seq);
                let flush = l.owed_acks.len() >= msg::ACKS_MAX;
                self.take_acks(link, &acks);
                if flush {
                    self.flush_acks(now_ms, link);
                }
                if self.seen_before(&msg, &from) {
                    self.stats.duplicates += 1;
                    return;
                }
                // Remember the way back to the origin: through the peer that handed it to us.
                // Following these pointers hop by hop retraces the path (see `via_link`).
                if msg.origin != self.me && msg.origin != from {
                    self.table.insert_via(msg.origin, Some(&from));
                }
                let mut msg = msg;
                msg.hops = msg.hops.saturating_add(1);
                self.route(now_ms, msg, None, Some(from));
            }
        }
    }

    fn reject_handshake(&mut self, link: LinkId, reason: &str) {
        self.stats.handshakes_rejected += 1;
        self.stats.frames_dropped += 1;
        tracing::warn!(?link, reason, "handshake rejected: closing link");
        self.close_link(link);
    }

    fn link_authenticated(&mut self, now_ms: u64, link: LinkId, peer: PeerId) {
        if peer == self.me {
            return self.reject_handshake(link, "peer claims our own id");
        }
        if !peer.meets_difficulty(self.cfg.id_difficulty_bits) {
            return self.reject_handshake(link, "peer id misses the difficulty");
        }
        // Two links to one peer (both dialled at once): both ends keep the one with the
        // smaller tie word, so they agree without talking.
        let key = |l: &Link| (l.tie, l.id);
        if let Some(other) = self.links.iter().find(|o| o.peer() == Some(peer)) {
            let this = self
                .links
                .iter()
                .find(|l| l.id == link)
                .expect("caller found it");
            self.stats.links_closed_duplicate += 1;
            if key(other) < key(this) {
                return self.close_link(link);
            }
            let other = other.id;
            self.close_link(other);
        }
        let l = self
            .links
            .iter_mut()
            .find(|l| l.id == link)
            .expect("caller found it");
        l.state = LinkState::Up { peer };
        self.table.insert(peer);
        self.dials.remove(&peer);
        self.expected.remove(&peer);
        self.events.push_back(Event::PeerJoined { peer, link });
        let mut peers: Vec<PeerId> = self
            .linked_peers()
            .map(|(p, _)| p)
            .filter(|p| *p != peer)
            .collect();
        peers.extend(self.table.closest(&peer, self.cfg.bucket_size));
        peers.sort();
        peers.dedup();
        peers.truncate(msg::PEERS_MAX);
        self.send_link(now_ms, link, &LinkMsg::Peers { peers });
    }

    /// Time passed: re-send hops, ping, expire, keep the link set healthy.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let due: Vec<LinkId> = self
            .links
            .iter()
            .filter(|l| !l.owed_acks.is_empty() && l.ack_due_ms <= now_ms)
            .map(|l| l.id)
            .collect();
        for link in due {
            self.flush_acks(now_ms, link);
        }
        self.retransmit_due(now_ms);
        if now_ms >= self.next_maintenance_ms {
            self.next_maintenance_ms = now_ms + self.cfg.maintenance_ms;
            self.maintain(now_ms);
        }
    }

    /// When [`Overlay::handle_timeout`] next wants to run.
    pub fn poll_timeout(&self) -> u64 {
        let retransmit = self
            .pending
            .iter()
            .map(|p| p.due_ms)
            .min()
            .unwrap_or(u64::MAX);
        let acks = self
            .links
            .iter()
            .filter(|l| !l.owed_acks.is_empty())
            .map(|l| l.ack_due_ms)
            .min()
            .unwrap_or(u64::MAX);
        retransmit.min(acks).min(self.next_maintenance_ms)
    }

    fn take_acks(&mut self, link: LinkId, seqs: &[u32]) {
        if seqs.is_empty() {
            return;
        }
        if let Some(l) = self.links.iter_mut().find(|l| l.id == link) {
            l.strikes = 0;
        }
        self.pending
            .retain(|p| !(p.link == link && seqs.contains(&p.seq)));
    }

    fn flush_acks(&mut self, now_ms: u64, link: LinkId) {
        let Some(l) = self.links.iter_mut().find(|l| l.id == link) else {
            return;
        };
        let seqs = std::mem::take(&mut l.owed_acks);
        if !seqs.is_empty() {
            self.send_link(now_ms, link, &LinkMsg::Ack { seqs });
        }
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front();
        if t.is_none() && self.transmits.capacity() > 0 {
            // Bursts (a join, a lookup) must not pin memory on every one of many peers.
            self.transmits.shrink_to_fit();
        }
        t
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front();
        if e.is_none() && self.events.capacity() > 0 {
            self.events.shrink_to_fit();
        }
        e
    }

    // ----- application → core -----------------------------------------------------------

    /// Route `payload` to the peer closest to `target` (or exactly `target` if `exact`).
    /// Returns the message id.
    pub fn send(&mut self, now_ms: u64, target: PeerId, exact: bool, payload: Vec<u8>) -> u64 {
        self.originate(now_ms, target, exact, Body::Data(payload))
    }

    /// Send transport signalling to `to` through the mesh, signed by us.
    pub fn send_signal(&mut self, now_ms: u64, to: PeerId, payload: Vec<u8>) {
        let signed = self.sign(Domain::SignalRequest, SignalBody { to, payload });
        self.originate(now_ms, to, true, Body::Signal(signed));
    }

    /// Ask `peer` for a direct link; on acceptance the transport gets [`Event::Dial`].
    pub fn connect(&mut self, now_ms: u64, peer: PeerId) {
        self.connect_for(now_ms, peer, false);
    }

    /// [`Overlay::connect`], saying whether our routing needs the link (`fill_links`).
    fn connect_for(&mut self, now_ms: u64, peer: PeerId, needed: bool) {
        if peer == self.me
            || self.dials.contains_key(&peer)
            || self.linked_peers().any(|(p, _)| p == peer)
        {
            return;
        }
        let nonce = self.rng.next_u64();
        self.dials.insert(
            peer,
            Dial {
                nonce,
                started_ms: now_ms,
                accepted: false,
            },
        );
        self.stats.dials += 1;
        let signed = self.sign(
            Domain::SignalRequest,
            ConnectRequest {
                to: peer,
                nonce,
                needed,
            },
        );
        // Reach it through whoever told us of it: greedy routing may not find it yet.
        let via = self.table.get(&peer).map(|c| c.via).and_then(|prefix| {
            self.linked_peers()
                .map(|(p, _)| p)
                .find(|p| p.0[..4] == prefix && *p != peer)
        });
        self.originate_via(now_ms, peer, via, Body::Connect(signed));
    }

    /// Find the peers closest to `key`; answered by [`Event::LookupDone`].
    pub fn lookup(&mut self, now_ms: u64, key: PeerId) {
        if self.lookups.contains_key(&key) {
            return;
        }
        if self.lookups.len() >= LOOKUPS_MAX {
            let oldest = self
                .lookups
                .iter()
                .min_by_key(|(_, l)| l.started_ms)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.finish_lookup(now_ms, k);
            }
        }
        if self.table.is_empty() {
            // Nobody known yet: ask whoever greedy routing ends at.
            self.originate(now_ms, key, false, Body::FindNode { key });
            return;
        }
        self.lookups.insert(
            key,
            Lookup {
                started_ms: now_ms,
                asked: Vec::new(),
                in_flight: 0,
                queries_left: LOOKUP_QUERIES_MAX,
            },
        );
        self.step_lookup(now_ms, key);
    }

    /// Subscribe to `topic` (any bytes; the rendezvous key is `sha256(topic)`).
    pub fn subscribe(&mut self, now_ms: u64, topic: &[u8]) -> PeerId {
        let key = PeerId::hash_of(topic);
        self.subscriptions.insert(key);
        self.originate(now_ms, key, false, Body::Subscribe { topic: key });
        key
    }

    /// Publish `payload` to the subscribers of `topic`.
    pub fn publish(&mut self, now_ms: u64, topic: &[u8], payload: Vec<u8>) {
        let key = PeerId::hash_of(topic);
        self.originate(
            now_ms,
            key,
            false,
            Body::Publish {
                topic: key,
                payload,
            },
        );
    }

    fn sign<T: serde::Serialize>(&self, domain: Domain, value: T) -> Signed<T> {
        let bytes = wire::encode_body(&value).expect("overlay values always encode");
        Signed {
            signature: self.identity.sign(domain, &bytes),
            public_key: self.identity.public_key(),
            value,
        }
    }

    fn originate(&mut self, now_ms: u64, target: PeerId, exact: bool, body: Body) -> u64 {
        let via = if exact {
            self.return_waypoint(&target)
        } else {
            None
        };
        self.originate_with(now_ms, target, exact, via, body)
    }

    /// An exact message to `target` through waypoint `via` (or the remembered return path).
    fn originate_via(
        &mut self,
        now_ms: u64,
        target: PeerId,
        via: Option<PeerId>,
        body: Body,
    ) -> u64 {
        let via = via.or_else(|| self.return_waypoint(&target));
        self.originate_with(now_ms, target, true, via, body)
    }

    fn originate_with(
        &mut self,
        now_ms: u64,
        target: PeerId,
        exact: bool,
        via: Option<PeerId>,
        body: Body,
    ) -> u64 {
        self.next_routed_id += 1;
        let id = self.next_routed_id;
        let via = via.filter(|v| *v != self.me && *v != target);
        let return_via = self
            .linked_peers()
            .map(|(p, _)| p)
            .min_by_key(|p| p.distance(&self.me));
        let reply_to = if exact {
            self.return_path(&target).map(|r| r.last_id)
        } else {
            None
        };
        let msg = Routed {
            id,
            origin: self.me,
            target,
            exact,
            hops: 0,
            via,
            return_via,
            reply_to,
            visited: 0,
            body,
        };
        self.remember(&msg, None);
        let skip = matches!(msg.body, Body::FindNode { .. } if !exact).then_some(self.me);
        self.route(now_ms, msg, skip, None);
        id
    }

    // ----- framing ------------------------------------------------------------------------

    fn send_link(&mut self, now_ms: u64, link: LinkId, msg: &LinkMsg) {
        let Some(l) = self.links.iter_mut().find(|l| l.id == link) else {
            return;
        };
        let id = l.next_msg_id;
        l.next_msg_id = l.next_msg_id.wrapping_add(1);
        l.last_send_ms = now_ms;
        let frames = match wire::encode(msg, id) {
            Ok(f) => f,
            Err(WireError::MessageTooLarge(n)) => {
                return tracing::warn!(n, "message too large: not sent");
            }
            Err(e) => return tracing::error!(%e, "encode failed"),
        };
        for frame in frames {
            self.stats.frames_out += 1;
            self.stats.bytes_out += frame.len() as u64;
            self.transmits.push_back(Transmit { link, frame });
        }
    }
}

#[cfg(test)]
mod tests;
