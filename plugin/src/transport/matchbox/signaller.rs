//! Signalling through the mesh: the envelope relayed between overlay peers, and the matchbox
//! [`Signaller`] of a per-link socket, which is nothing but a pair of in-process channels that
//! the transport drains and feeds.
//!
//! # Envelope, byte by byte
//!
//! A [`MeshSignal`] is the bincode body ([`crate::proto::wire::encode_body`]) of:
//!
//! ```text
//! enum MeshSignal {
//!     0 ToAcceptor { dialler: [u8; 16], signal: SignalKind }
//!     1 ToDialler  { dialler: [u8; 16], acceptor: [u8; 16], signal: SignalKind }
//! }
//! enum SignalKind { 0 Offer(String), 1 Answer(String), 2 Candidate(String) }
//! ```
//!
//! `dialler` and `acceptor` are the two per-link socket ids (uuids). Each side picks its own at
//! random and learns the other's from the first signal it gets, then pins it: the link handshake
//! signs both ids, and since neither side can choose the other's id, a peer in the middle cannot
//! splice two links into one (it would have to know an id before it is drawn).
//! The overlay signs the whole envelope (`Domain::SignalRequest`) and routes it to the peer.

use futures::StreamExt as _;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender};
use matchbox_socket::async_trait::async_trait;
use matchbox_socket::{PeerEvent, PeerRequest, SignalingError, Signaller, SignallerBuilder};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Signalling relayed through the mesh for one per-link socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeshSignal {
    /// From the dialler (who offers) to the acceptor.
    ToAcceptor {
        /// The dialler's socket id.
        dialler: [u8; 16],
        /// The signal.
        signal: SignalKind,
    },
    /// From the acceptor to the dialler.
    ToDialler {
        /// The dialler's socket id (names the link at the dialler).
        dialler: [u8; 16],
        /// The acceptor's socket id.
        acceptor: [u8; 16],
        /// The signal.
        signal: SignalKind,
    },
}

/// One WebRTC signal (matchbox's `PeerSignal`, with our own stable encoding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignalKind {
    /// SDP offer.
    Offer(String),
    /// SDP answer.
    Answer(String),
    /// A trickled ICE candidate (JSON of an `RTCIceCandidateInit`, or `null`).
    Candidate(String),
}

impl SignalKind {
    pub(crate) fn from_matchbox(s: matchbox_socket::PeerSignal) -> Self {
        match s {
            matchbox_socket::PeerSignal::Offer(o) => Self::Offer(o),
            matchbox_socket::PeerSignal::Answer(a) => Self::Answer(a),
            matchbox_socket::PeerSignal::IceCandidate(c) => Self::Candidate(c),
        }
    }

    pub(crate) fn into_matchbox(self) -> matchbox_socket::PeerSignal {
        match self {
            Self::Offer(o) => matchbox_socket::PeerSignal::Offer(o),
            Self::Answer(a) => matchbox_socket::PeerSignal::Answer(a),
            Self::Candidate(c) => matchbox_socket::PeerSignal::IceCandidate(c),
        }
    }
}

/// The transport's ends of a per-link socket's signaller.
pub(crate) struct SignallerEnds {
    /// Events for the socket (`IdAssigned`, `NewPeer`, remote signals).
    pub events: UnboundedSender<PeerEvent>,
    /// The socket's outgoing signalling requests.
    pub requests: UnboundedReceiver<PeerRequest>,
}

/// Builds the one [`ChannelSignaller`] of a per-link socket.
#[derive(Debug)]
pub(crate) struct ChannelSignallerBuilder {
    inner: Mutex<Option<ChannelSignaller>>,
}

/// A matchbox signaller backed by in-process channels.
pub(crate) struct ChannelSignaller {
    events: UnboundedReceiver<PeerEvent>,
    requests: UnboundedSender<PeerRequest>,
}

impl std::fmt::Debug for ChannelSignaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelSignaller").finish_non_exhaustive()
    }
}

impl ChannelSignallerBuilder {
    /// A builder and the transport's ends of the signaller it will build.
    pub(crate) fn new() -> (Self, SignallerEnds) {
        let (events_tx, events_rx) = futures::channel::mpsc::unbounded();
        let (requests_tx, requests_rx) = futures::channel::mpsc::unbounded();
        let signaller = ChannelSignaller {
            events: events_rx,
            requests: requests_tx,
        };
        (
            Self {
                inner: Mutex::new(Some(signaller)),
            },
            SignallerEnds {
                events: events_tx,
                requests: requests_rx,
            },
        )
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl SignallerBuilder for ChannelSignallerBuilder {
    async fn new_signaller(
        &self,
        _attempts: Option<u16>,
        _room_url: String,
    ) -> Result<Box<dyn Signaller>, SignalingError> {
        let taken = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match taken {
            Some(s) => Ok(Box::new(s)),
            // matchbox builds one signaller per socket; never return UnknownFormat or
            // StreamExhausted here (matchbox reaches `unimplemented!` on those).
            None => Err(SignalingError::UserImplementationError(
                "signaller already built".into(),
            )),
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl Signaller for ChannelSignaller {
    async fn send(&mut self, request: PeerRequest) -> Result<(), SignalingError> {
        if matches!(request, PeerRequest::Signal { .. }) {
            // A closed channel means the transport dropped this link; the socket follows.
            let _ = self.requests.unbounded_send(request);
        }
        Ok(())
    }

    async fn next_message(&mut self) -> Result<PeerEvent, SignalingError> {
        // Cancel-safe: receiving from an mpsc channel loses nothing when dropped mid-wait.
        match self.events.next().await {
            Some(event) => Ok(event),
            // The transport dropped its end together with the socket: stay quiet until the
            // socket's loop notices its own end.
            None => futures::future::pending().await,
        }
    }
}
