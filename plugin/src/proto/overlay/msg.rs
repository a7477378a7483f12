//! Messages exchanged over a link (the bodies of wire frames).

use serde::{Deserialize, Serialize};

use crate::proto::identity::{PeerId, PublicKey, Signature};

/// A transport-level socket id (matchbox's per-socket uuid; random bytes in the simulator).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct TransportId(pub [u8; 16]);

/// Everything that travels on a link.
#[expect(
    clippy::large_enum_variant,
    reason = "decoded once per frame and consumed at once; boxing would cost an allocation per hop"
)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkMsg {
    /// First message in each direction: who I claim to be and a fresh challenge for you.
    Hello {
        /// The sender's public key (its `PeerId` is the hash of it).
        public_key: PublicKey,
        /// A fresh random challenge the other side must sign.
        nonce: [u8; 16],
    },
    /// Proof of the claim in `Hello`: a [`Domain::LinkAuth`](crate::proto::identity::Domain)
    /// signature over [`auth_message`].
    Auth {
        /// The signature.
        signature: Signature,
    },
    /// Liveness probe; `needed` tells the other side whether we rely on this link for routing.
    Ping {
        /// Echoed in the pong.
        nonce: u64,
        /// Whether the sender would lose a routing finger or neighbour without this link.
        needed: bool,
    },
    /// Answer to a ping.
    Pong {
        /// The ping's nonce.
        nonce: u64,
        /// As in `Ping`.
        needed: bool,
    },
    /// Peers the sender is linked to: lets the receiver fill its buckets without lookups.
    Peers {
        /// At most `PEERS_MAX` ids.
        peers: Vec<PeerId>,
    },
    /// A routed message, with the per-hop sequence number the receiver acknowledges, and
    /// acknowledgements the sender owes (piggybacked, so request/response traffic needs no
    /// separate ack frames).
    Routed {
        /// Per-link sequence number for the hop acknowledgement.
        seq: u32,
        /// Sequence numbers of `Routed` frames received on this link (at most `ACKS_MAX`).
        acks: Vec<u32>,
        /// The message.
        msg: Routed,
    },
    /// Acknowledges `Routed` frames on this link; sent when no `Routed` frame carried them
    /// within the ack delay.
    Ack {
        /// The acknowledged sequence numbers (at most `ACKS_MAX`).
        seqs: Vec<u32>,
    },
}

/// Most acknowledgements in one frame.
pub const ACKS_MAX: usize = 64;

/// Most peer ids in one `Peers` message.
pub const PEERS_MAX: usize = 64;

/// A message routed greedily over live links toward `target`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routed {
    /// Origin-chosen id; `(origin, id)` is unique and used to drop duplicates.
    pub id: u64,
    /// The originating peer. Unauthenticated unless the body carries a signature.
    pub origin: PeerId,
    /// Where it is going.
    pub target: PeerId,
    /// Deliver only to the peer whose id *is* `target` (else: to the closest peer).
    pub exact: bool,
    /// Hops taken so far.
    pub hops: u8,
    /// A waypoint: route exactly to this peer first, which then routes on to `target` (it
    /// holds a link to it). Lets replies reach a peer that is not yet reachable greedily,
    /// such as a newcomer whose only links are its bootstrap introductions.
    pub via: Option<PeerId>,
    /// The waypoint replies to the origin should take (a peer the origin is linked to).
    pub return_via: Option<PeerId>,
    /// The id of the `target`'s message this answers: each peer on the way sends it back to
    /// whoever handed it that message, retracing the path exactly (no loops, no stale hints).
    pub reply_to: Option<u64>,
    /// A 64-bit Bloom filter of the peers it passed (two bits each): an exact message that
    /// has to wander while links are still forming never goes back to where it was.
    pub visited: u64,
    /// What it carries.
    pub body: Body,
}

/// The payload kinds of a routed message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Application bytes.
    Data(Vec<u8>),
    /// Kademlia FIND_NODE: the closest peer answers with `Nodes`.
    FindNode {
        /// The key looked up (the routed target is the peer asked, for exact queries).
        key: PeerId,
    },
    /// Answer to `FindNode`: known peers closest to `key`, closest first.
    Nodes {
        /// The looked-up key.
        key: PeerId,
        /// Closest known peers, including the answerer.
        peers: Vec<PeerId>,
    },
    /// A signed request to open a direct link, signalled through the mesh.
    Connect(Signed<ConnectRequest>),
    /// The answer to a `Connect`. Unsigned on purpose: it echoes the request's fresh 64-bit
    /// nonce, which only the target and the relays on the request's path have seen, and any of
    /// those could as well drop the request. A forged accept costs the requester one dial that
    /// the link handshake (signed at both ends) then fails; a forged refusal, a 30 s back-off.
    /// Not signing saves a signature and a verification on every link request.
    ConnectReply(ConnectReply),
    /// Transport signalling (e.g. WebRTC SDP/ICE) between two peers, signed by the sender.
    Signal(Signed<SignalBody>),
    /// A pub/sub publication routed to the topic's rendezvous key.
    Publish {
        /// The topic.
        topic: PeerId,
        /// The payload.
        payload: Vec<u8>,
    },
    /// Subscribe the origin to a topic at its rendezvous peer.
    Subscribe {
        /// The topic.
        topic: PeerId,
    },
}

/// A value with its author's key and signature (see [`crate::proto::identity::Domain`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed<T> {
    /// The value.
    pub value: T,
    /// The author's key; the author is `PeerId::from_public_key(&public_key)`.
    pub public_key: PublicKey,
    /// The author's signature over the bincode encoding of `value`.
    pub signature: Signature,
}

/// Transport signalling for one recipient. Naming the recipient inside the signed value stops
/// a signal meant for one peer from being replayed to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalBody {
    /// The recipient.
    pub to: PeerId,
    /// The transport's bytes.
    pub payload: Vec<u8>,
}

/// Ask the target to accept a link from the requester.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectRequest {
    /// Who is asked.
    pub to: PeerId,
    /// Fresh per request: replays are ignored.
    pub nonce: u64,
    /// The requester's routing needs this link (it fills a bucket of the requester's with no
    /// link, or links a neighbour): the target then accepts it past the soft cap for inbound
    /// links, up to the hard cap (or by trading a link neither side needs). A peer that claims
    /// it falsely gains at most one link within the target's cap.
    pub needed: bool,
}

/// The target's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectReply {
    /// Who asked.
    pub to: PeerId,
    /// The request's nonce.
    pub nonce: u64,
    /// Whether the link is welcome.
    pub accept: bool,
}

/// The bytes a `LinkAuth` signature covers: `signer's transport id || other's transport id ||
/// other's nonce || signer's nonce`. Binding both transport ids stops a relay from replaying the
/// proof on another socket; the other side's fresh nonce stops replays on this one.
pub fn auth_message(
    signer: TransportId,
    other: TransportId,
    other_nonce: &[u8; 16],
    own_nonce: &[u8; 16],
) -> [u8; 64] {
    let mut m = [0u8; 64];
    m[..16].copy_from_slice(&signer.0);
    m[16..32].copy_from_slice(&other.0);
    m[32..48].copy_from_slice(other_nonce);
    m[48..].copy_from_slice(own_nonce);
    m
}
