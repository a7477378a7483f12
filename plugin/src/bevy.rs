//! Bevy glue: [`MeshworkPlugin`], its resources, messages and system sets. Thin by design: all
//! protocol logic lives in [`crate::proto`]; this module only pumps a [`Node`] once per frame.
//!
//! ```no_run
//! use bevy::prelude::*;
//! use meshwork::bevy::prelude::*;
//! use meshwork::transport::memory::MemoryNetwork;
//!
//! let net = MemoryNetwork::new();
//! App::new()
//!     .add_plugins(MinimalPlugins)
//!     .add_plugins(MeshworkPlugin::new(MeshworkConfig::memory(net)))
//!     .add_systems(Update, |mut joined: MessageReader<PeerJoined>| {
//!         for j in joined.read() {
//!             info!("linked to {:?}", j.peer);
//!         }
//!     })
//!     .run();
//! ```

pub mod contract_state;
pub mod fetch;
pub mod ledger;
pub mod session;

use std::collections::BTreeMap;

use ::bevy::diagnostic::{Diagnostic, DiagnosticPath, Diagnostics, RegisterDiagnostic};
use ::bevy::prelude::*;
use ::bevy::time::Real;

use crate::proto::identity::{Identity, PeerId};
use crate::proto::overlay::{Overlay, OverlayConfig};
use crate::transport::memory::MemoryNetwork;
use crate::transport::{Node, NodeEvent, Transport, TransportEvent};

/// The usual imports.
pub mod prelude {
    pub use super::contract_state::{
        ContractKey, ContractState, ContractStatePlugin, ContractStates, MirrorContractState,
    };
    pub use super::fetch::{FetchCompleted, FetchIncoming, FetchNotice, RespondFetch, StartFetch};
    pub use super::ledger::{
        LedgerConfig, LedgerPlugin, LedgerReceived, LedgerTransmit, PaymentError, PaymentFailed,
        PaymentReceived, PaymentSettled, SendPayment, Wallet,
    };
    pub use super::session::{CheatDetected, CheckpointFinalised, SubmitFrame, attach_session};
    pub use super::{
        LocalPeer, MeshworkConfig, MeshworkPlugin, MeshworkSystems, MessageReceived, PeerJoined,
        PeerLeft, Peers, Published, SendMessage, Subscribe,
    };
    pub use crate::proto::identity::PeerId;
    pub use crate::proto::ledger::Amount;
}

/// Where the local identity comes from.
#[derive(Clone, Debug)]
pub enum IdentitySource {
    /// A fresh key pair each run.
    Generate,
    /// A fixed secret seed (tests, bots).
    Seed([u8; 32]),
    /// A key file (native) or local-storage key (browser), created on first use.
    Stored(String),
}

/// How the node reaches other peers.
#[derive(Clone, Debug)]
pub enum TransportConfig {
    /// An in-process network (tests, examples).
    Memory {
        /// The shared network.
        network: MemoryNetwork,
        /// Existing members a newcomer is introduced to.
        introductions: usize,
    },
    /// Real WebRTC links over matchbox.
    #[cfg(feature = "matchbox")]
    Matchbox(crate::transport::matchbox::MatchboxConfig),
}

/// Configuration of [`MeshworkPlugin`].
#[derive(Clone, Debug, Resource)]
pub struct MeshworkConfig {
    /// The local identity.
    pub identity: IdentitySource,
    /// Overlay tunables.
    pub overlay: OverlayConfig,
    /// The transport.
    pub transport: TransportConfig,
}

impl MeshworkConfig {
    /// Defaults over an in-memory network.
    pub fn memory(network: MemoryNetwork) -> Self {
        Self {
            identity: IdentitySource::Generate,
            overlay: OverlayConfig::default(),
            transport: TransportConfig::Memory {
                network,
                introductions: 3,
            },
        }
    }

    /// The same with a fixed identity seed.
    pub fn with_seed(mut self, seed: [u8; 32]) -> Self {
        self.identity = IdentitySource::Seed(seed);
        self
    }
}

/// Adds a Meshwork node to the app. Works headless with `MinimalPlugins`.
#[derive(Clone, Debug)]
pub struct MeshworkPlugin {
    config: MeshworkConfig,
    fetch: crate::proto::fetch::FetchConfig,
}

impl MeshworkPlugin {
    /// A plugin with `config`.
    pub fn new(config: MeshworkConfig) -> Self {
        Self {
            config,
            fetch: crate::proto::fetch::FetchConfig::default(),
        }
    }

    /// Configure the node's fetch core (prices, bond, escrow, audit committee). By default it
    /// serves free requests and makes free ones.
    pub fn with_fetch(mut self, fetch: crate::proto::fetch::FetchConfig) -> Self {
        self.fetch = fetch;
        self
    }
}

/// Ordered phases of the per-frame pump, in `PreUpdate` (receive, process) and `PostUpdate` (send).
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeshworkSystems {
    /// Frames and link events are read from the transport and fed to the protocol cores.
    Receive,
    /// Protocol events become Bevy messages and resources are updated.
    Process,
    /// Requests written during the frame are handed to the cores and frames are sent.
    Send,
}

/// The local peer.
#[derive(Resource, Debug, Clone)]
pub struct LocalPeer {
    /// Its id.
    pub peer_id: PeerId,
}

/// Peers we hold authenticated links to.
#[derive(Resource, Debug, Default, Clone)]
pub struct Peers {
    /// Linked peers and what we know of each.
    pub linked: BTreeMap<PeerId, PeerInfo>,
    /// Size of the routing table.
    pub known: usize,
}

/// What we know about a linked peer.
#[derive(Debug, Default, Clone)]
pub struct PeerInfo {
    /// Last measured round trip.
    pub rtt_ms: Option<u32>,
}

/// A link to a peer finished its authenticated handshake.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct PeerJoined {
    /// The peer.
    pub peer: PeerId,
}

/// A link to a peer went away.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct PeerLeft {
    /// The peer.
    pub peer: PeerId,
}

/// A routed message reached us.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct MessageReceived {
    /// The claimed origin (authenticate value-carrying payloads yourself: sign them).
    pub origin: PeerId,
    /// The key it was sent to.
    pub target: PeerId,
    /// The bytes.
    pub payload: Vec<u8>,
    /// Hops it took.
    pub hops: u8,
}

/// A publication on a subscribed topic.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Topic key (`sha256(topic)`).
    pub topic: PeerId,
    /// Claimed publisher.
    pub origin: PeerId,
    /// The bytes.
    pub payload: Vec<u8>,
}

/// Request: route `payload` to the peer closest to `target` (or exactly `target`).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SendMessage {
    /// Where to.
    pub target: PeerId,
    /// Only to the peer whose id is `target`.
    pub exact: bool,
    /// The bytes (at most ~1 MiB; large ones are chunked).
    pub payload: Vec<u8>,
}

/// Request: subscribe to a topic, or publish to it when `payload` is set.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The topic name.
    pub topic: Vec<u8>,
    /// Publish this instead of subscribing.
    pub payload: Option<Vec<u8>>,
}

/// The node the plugin drives. Non-send because browser transports are single-threaded.
pub struct MeshworkNode {
    /// The overlay and its transport.
    pub node: Node<Box<dyn Transport>>,
    /// Events produced while sending (e.g. a message to a key we are closest to), reported
    /// in the next frame's `Receive`.
    pending: Vec<NodeEvent>,
}

impl Transport for Box<dyn Transport> {
    fn poll(&mut self, now_ms: u64, out: &mut Vec<TransportEvent>) {
        (**self).poll(now_ms, out);
    }
    fn send(&mut self, link: crate::proto::overlay::LinkId, frame: Vec<u8>) {
        (**self).send(link, frame);
    }
    fn dial(&mut self, now_ms: u64, peer: PeerId) {
        (**self).dial(now_ms, peer);
    }
    fn accept(&mut self, now_ms: u64, peer: PeerId) {
        (**self).accept(now_ms, peer);
    }
    fn signal(&mut self, now_ms: u64, from: PeerId, payload: Vec<u8>) {
        (**self).signal(now_ms, from, payload);
    }
    fn close(&mut self, link: crate::proto::overlay::LinkId) {
        (**self).close(link);
    }
    fn send_datagram(&mut self, link: crate::proto::overlay::LinkId, datagram: Vec<u8>) {
        (**self).send_datagram(link, datagram);
    }
    fn poll_datagrams(&mut self, out: &mut Vec<(crate::proto::overlay::LinkId, Vec<u8>)>) {
        (**self).poll_datagrams(out);
    }
}

/// Diagnostic paths the plugin measures every frame.
pub mod diagnostics {
    use super::DiagnosticPath;
    /// Live authenticated links.
    pub const PEERS: DiagnosticPath = DiagnosticPath::const_new("meshwork/peers");
    /// Mean round trip over linked peers, in ms.
    pub const RTT_MS: DiagnosticPath = DiagnosticPath::const_new("meshwork/rtt_ms");
    /// Bytes received per second.
    pub const BYTES_IN_PER_S: DiagnosticPath = DiagnosticPath::const_new("meshwork/bytes_in_per_s");
    /// Bytes sent per second.
    pub const BYTES_OUT_PER_S: DiagnosticPath =
        DiagnosticPath::const_new("meshwork/bytes_out_per_s");
    /// The wallet's spendable balance (with [`LedgerPlugin`](super::ledger::LedgerPlugin)).
    pub const BALANCE: DiagnosticPath = DiagnosticPath::const_new("meshwork/balance");
}

fn make_identity(source: &IdentitySource, difficulty: u8) -> Identity {
    match source {
        IdentitySource::Seed(seed) => Identity::from_seed(*seed),
        IdentitySource::Generate => fresh_identity(difficulty),
        IdentitySource::Stored(location) => {
            #[cfg(not(target_arch = "wasm32"))]
            let loaded = Identity::load_or_create(std::path::Path::new(location), difficulty);
            #[cfg(target_arch = "wasm32")]
            let loaded = Identity::load_or_create(location, difficulty);
            loaded.unwrap_or_else(|e| {
                error!("cannot load identity from {location}: {e}; using a fresh one for this run");
                fresh_identity(difficulty)
            })
        }
    }
}

fn fresh_identity(difficulty: u8) -> Identity {
    let mut seed = [0u8; 32];
    fill_random(&mut seed);
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed(seed);
    Identity::generate(&mut rng, difficulty)
}

/// Fill `buf` from the operating system / browser RNG (the edge where entropy enters).
pub fn fill_random(buf: &mut [u8]) {
    #[cfg(not(target_arch = "wasm32"))]
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, buf);
    #[cfg(target_arch = "wasm32")]
    getrandom::getrandom(buf).expect("the browser provides crypto.getRandomValues");
}

impl Plugin for MeshworkPlugin {
    fn build(&self, app: &mut App) {
        let cfg = self.config.clone();
        let identity = make_identity(&cfg.identity, cfg.overlay.id_difficulty_bits);
        let peer_id = identity.peer_id();
        let mut seed = [0u8; 32];
        fill_random(&mut seed);
        let fetch_core = {
            let mut fseed = [0u8; 32];
            fill_random(&mut fseed);
            crate::proto::fetch::Fetch::new(identity.clone(), self.fetch.clone(), fseed)
        };
        let overlay = Overlay::new(identity, cfg.overlay.clone(), 0, seed);
        let transport: Box<dyn Transport> = match &cfg.transport {
            TransportConfig::Memory {
                network,
                introductions,
            } => Box::new(network.join(peer_id, *introductions)),
            #[cfg(feature = "matchbox")]
            TransportConfig::Matchbox(m) => Box::new(
                crate::transport::matchbox::MatchboxTransport::new(m.clone()),
            ),
        };
        info!("meshwork peer {peer_id}");
        app.insert_resource(cfg)
            .insert_resource(LocalPeer { peer_id })
            .init_resource::<Peers>()
            .insert_non_send(MeshworkNode {
                node: Node::new(overlay, transport).with_fetch(fetch_core),
                pending: Vec::new(),
            })
            .add_message::<PeerJoined>()
            .add_message::<PeerLeft>()
            .add_message::<MessageReceived>()
            .add_message::<Published>()
            .add_message::<SendMessage>()
            .add_message::<Subscribe>()
            .add_plugins(fetch::FetchGlue)
            .add_plugins(session::SessionGlue)
            .register_diagnostic(Diagnostic::new(diagnostics::PEERS))
            .register_diagnostic(Diagnostic::new(diagnostics::RTT_MS).with_suffix("ms"))
            .register_diagnostic(Diagnostic::new(diagnostics::BYTES_IN_PER_S).with_suffix("B/s"))
            .register_diagnostic(Diagnostic::new(diagnostics::BYTES_OUT_PER_S).with_suffix("B/s"))
            .configure_sets(
                PreUpdate,
                (MeshworkSystems::Receive, MeshworkSystems::Process).chain(),
            )
            .configure_sets(PostUpdate, MeshworkSystems::Send)
            .add_systems(PreUpdate, receive.in_set(MeshworkSystems::Receive))
            .add_systems(PreUpdate, update_peers.in_set(MeshworkSystems::Process))
            .add_systems(
                PostUpdate,
                (send_requests, measure)
                    .chain()
                    .in_set(MeshworkSystems::Send),
            );
        #[cfg(feature = "ggrs")]
        app.insert_resource(MeshworkGgrs(crate::transport::ggrs::ggrs_channel().1))
            .add_systems(
                PreUpdate,
                pump_ggrs.after(receive).in_set(MeshworkSystems::Receive),
            )
            .add_systems(
                PostUpdate,
                pump_ggrs.after(measure).in_set(MeshworkSystems::Send),
            );
    }
}

/// The mesh end of GGRS sessions (feature `ggrs`): hand [`MeshworkGgrs::socket`] to
/// `ggrs::SessionBuilder::start_p2p_session` (or bevy_ggrs); the plugin moves its messages over
/// the unreliable channel of direct links in its receive and send phases.
#[cfg(feature = "ggrs")]
#[derive(Resource, Debug, Clone)]
pub struct MeshworkGgrs(pub crate::transport::ggrs::GgrsPort);

#[cfg(feature = "ggrs")]
impl MeshworkGgrs {
    /// A socket for a new session (each roster gets its own session; they share the queues).
    pub fn socket(&self) -> crate::transport::ggrs::GgrsSocket {
        self.0.socket()
    }
}

#[cfg(feature = "ggrs")]
fn pump_ggrs(ggrs: Res<MeshworkGgrs>, mut node: NonSendMut<MeshworkNode>) {
    ggrs.0.pump(&mut node.node);
}

fn now_ms(time: &Time<Real>) -> u64 {
    u64::try_from(time.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one system feeding every message kind"
)]
fn receive(
    time: Res<Time<Real>>,
    mut node: NonSendMut<MeshworkNode>,
    mut peers: ResMut<Peers>,
    mut joined: MessageWriter<PeerJoined>,
    mut left: MessageWriter<PeerLeft>,
    mut received: MessageWriter<MessageReceived>,
    mut published: MessageWriter<Published>,
    mut fetch_inbox: ResMut<fetch::FetchInbox>,
    mut session_inbox: ResMut<session::SessionInbox>,
    mut ledger_inbox: Option<ResMut<ledger::LedgerInbox>>,
) {
    let node = &mut *node;
    let mut events = std::mem::take(&mut node.pending);
    events.extend(node.node.tick(now_ms(&time)));
    for ev in events {
        match ev {
            NodeEvent::PeerJoined(peer) => {
                peers.linked.insert(peer, PeerInfo::default());
                joined.write(PeerJoined { peer });
            }
            NodeEvent::PeerLeft(peer) => {
                peers.linked.remove(&peer);
                left.write(PeerLeft { peer });
            }
            NodeEvent::Message {
                origin,
                target,
                payload,
                hops,
            } => {
                received.write(MessageReceived {
                    origin,
                    target,
                    payload,
                    hops,
                });
            }
            NodeEvent::Published {
                topic,
                origin,
                payload,
            } => {
                published.write(Published {
                    topic,
                    origin,
                    payload,
                });
            }
            NodeEvent::LookupDone { .. } => {}
            NodeEvent::Fetch(ev) => fetch_inbox.0.push(ev),
            NodeEvent::Session(ev) => session_inbox.0.push(ev),
            NodeEvent::Ledger { origin, msg } => {
                // Without a `LedgerPlugin` nobody here reads ledger messages: dropped.
                if let Some(inbox) = ledger_inbox.as_mut() {
                    inbox.push(origin, msg);
                }
            }
        }
    }
}

fn update_peers(node: NonSend<MeshworkNode>, mut peers: ResMut<Peers>) {
    let overlay = &node.node.overlay;
    for (peer, info) in &mut peers.linked {
        info.rtt_ms = overlay.rtt_ms(peer);
    }
    peers.known = overlay.known_peers();
}

fn send_requests(
    time: Res<Time<Real>>,
    mut node: NonSendMut<MeshworkNode>,
    mut sends: MessageReader<SendMessage>,
    mut topics: MessageReader<Subscribe>,
) {
    let now = now_ms(&time);
    let node = &mut *node;
    for m in sends.read() {
        node.node.send(now, m.target, m.exact, m.payload.clone());
    }
    for t in topics.read() {
        match &t.payload {
            Some(p) => node.node.overlay.publish(now, &t.topic, p.clone()),
            None => {
                node.node.overlay.subscribe(now, &t.topic);
            }
        }
    }
    node.node.flush(now, &mut node.pending);
}

#[derive(Default)]
struct Rates {
    last_ms: u64,
    bytes_in: u64,
    bytes_out: u64,
}

fn measure(
    time: Res<Time<Real>>,
    node: NonSend<MeshworkNode>,
    peers: Res<Peers>,
    mut diagnostics: Diagnostics,
    mut rates: Local<Rates>,
) {
    let stats = node.node.overlay.stats();
    diagnostics.add_measurement(&diagnostics::PEERS, || peers.linked.len() as f64);
    let rtts: Vec<u32> = peers.linked.values().filter_map(|p| p.rtt_ms).collect();
    if !rtts.is_empty() {
        diagnostics.add_measurement(&diagnostics::RTT_MS, || {
            f64::from(rtts.iter().sum::<u32>()) / rtts.len() as f64
        });
    }
    let now = now_ms(&time);
    let dt = now.saturating_sub(rates.last_ms);
    if dt >= 1000 {
        let per_s = |d: u64| d as f64 * 1000.0 / dt as f64;
        let (bin, bout) = (
            stats.bytes_in - rates.bytes_in,
            stats.bytes_out - rates.bytes_out,
        );
        diagnostics.add_measurement(&diagnostics::BYTES_IN_PER_S, || per_s(bin));
        diagnostics.add_measurement(&diagnostics::BYTES_OUT_PER_S, || per_s(bout));
        *rates = Rates {
            last_ms: now,
            bytes_in: stats.bytes_in,
            bytes_out: stats.bytes_out,
        };
    }
}
