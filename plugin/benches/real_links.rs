//! Round trip of a 1 KiB message over real WebRTC links on loopback: through the mesh (a routed
//! `Data` message between two linked overlay nodes, echoed back) against a raw matchbox channel
//! (two plain `WebRtcSocket`s, echo), in the same run, all bootstrapped by the embedded
//! signalling server and driven by one busy-polling thread.
//!
//! The kinds of round trip are **interleaved round by round** (raw, raw + acks, mesh, raw, …), so
//! the load of this shared 2-core box falls on all of them alike; run one after the other, a
//! burst of load during one phase alone moved the ratio between 1.1× and 2×.
//!
//! `cargo bench -p meshwork --features signalling --bench real_links` (`REAL_LINKS_ROUNDS=N`).
//! Target: mesh p50 ≤ 1.25 × raw p50.

#[path = "common/linked_pair.rs"]
mod linked_pair;

use linked_pair::linked_pair;
use std::time::{Duration, Instant};

use matchbox_socket::{
    Packet, PeerId as SocketPeer, RtcIceServerConfig, WebRtcSocket, WebRtcSocketBuilder,
};
use meshwork::proto::identity::PeerId;
use meshwork::transport::matchbox::{MatchboxTransport, channel_configs, spawn_socket_loop};
use meshwork::transport::signalling::{SignallingConfig, SignallingServer};
use meshwork::transport::{Node, NodeEvent};

const PAYLOAD_BYTES: usize = 1024;
const LOST: Duration = Duration::from_secs(5);

fn rounds() -> usize {
    std::env::var("REAL_LINKS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One kind of round trip's samples: the whole round trip, and send → the echoer has it.
#[derive(Default)]
struct Samples {
    round_trip: Vec<Duration>,
    one_way: Vec<Duration>,
}

impl Samples {
    fn push(&mut self, (rt, one_way): (Duration, Duration)) {
        self.round_trip.push(rt);
        self.one_way.push(one_way);
    }

    fn sort(&mut self) {
        self.round_trip.sort();
        self.one_way.sort();
    }

    fn p50(&self) -> Duration {
        quantile(&self.round_trip, 0.5)
    }

    fn p95(&self) -> Duration {
        quantile(&self.round_trip, 0.95)
    }
}

/// Two overlay nodes linked over real matchbox links.
struct MeshPair {
    a: Node<MatchboxTransport>,
    b: Node<MatchboxTransport>,
    ida: PeerId,
    idb: PeerId,
}

impl MeshPair {
    fn new(url: &str, now: &dyn Fn() -> u64) -> Self {
        let (a, b) = linked_pair(url, now);
        let (ida, idb) = (a.overlay.peer_id(), b.overlay.peer_id());
        Self { a, b, ida, idb }
    }

    /// A routed `Data` message a → b, echoed b → a.
    fn round_trip(&mut self, now: &dyn Fn() -> u64, payload: &[u8]) -> (Duration, Duration) {
        let (ida, idb) = (self.ida, self.idb);
        let t0 = Instant::now();
        let mut arrived = t0;
        self.a.send(now(), idb, true, payload.to_vec());
        self.a.flush(now(), &mut Vec::new());
        loop {
            for ev in self.b.tick(now()) {
                if let NodeEvent::Message {
                    origin, payload, ..
                } = ev
                    && origin == ida
                {
                    arrived = Instant::now();
                    self.b.send(now(), ida, true, payload);
                    self.b.flush(now(), &mut Vec::new());
                }
            }
            for ev in self.a.tick(now()) {
                if matches!(ev, NodeEvent::Message { origin, .. } if origin == idb) {
                    return (t0.elapsed(), arrived - t0);
                }
            }
            assert!(t0.elapsed() < LOST, "mesh round trip lost");
            std::thread::yield_now();
        }
    }
}

/// Two plain matchbox sockets connected to each other.
struct RawPair {
    a: WebRtcSocket,
    b: WebRtcSocket,
    /// b as a sees it.
    to_b: SocketPeer,
    /// With `acks`, each side also sends a 4-byte frame where the overlay sends its hop
    /// acknowledgement (the receiver before echoing, the sender after the echo arrived).
    acks: bool,
}

fn raw_socket(url: &str) -> WebRtcSocket {
    let mut builder = WebRtcSocketBuilder::new(url).ice_server(RtcIceServerConfig {
        urls: vec![],
        ..Default::default()
    });
    for c in channel_configs() {
        builder = builder.add_channel(c);
    }
    let (socket, future) = builder.build();
    spawn_socket_loop("bench raw", future);
    socket
}

impl RawPair {
    fn new(url: &str, acks: bool) -> Self {
        let mut a = raw_socket(url);
        std::thread::sleep(Duration::from_millis(200));
        let mut b = raw_socket(url);
        let deadline = Instant::now() + Duration::from_secs(30);
        let to_b = loop {
            let _ = a.try_update_peers();
            let _ = b.try_update_peers();
            if let (Some(to_b), Some(_)) = (a.connected_peers().next(), b.connected_peers().next())
            {
                break to_b;
            }
            assert!(Instant::now() < deadline, "raw sockets did not connect");
            std::thread::sleep(Duration::from_millis(1));
        };
        Self { a, b, to_b, acks }
    }

    fn round_trip(&mut self, payload: &Packet) -> (Duration, Duration) {
        // A frame the size of the overlay's per-hop Ack.
        let ack = Packet::from(vec![1u8, 0, 6, 0]);
        let t0 = Instant::now();
        let mut arrived = t0;
        self.a.channel_mut(0).send(payload.clone(), self.to_b);
        loop {
            for (from, packet) in self.b.channel_mut(0).receive() {
                if packet.len() <= 4 {
                    continue;
                }
                arrived = Instant::now();
                if self.acks {
                    self.b.channel_mut(0).send(ack.clone(), from);
                }
                self.b.channel_mut(0).send(packet, from);
            }
            if self
                .a
                .channel_mut(0)
                .receive()
                .iter()
                .any(|(_, p)| p.len() > 4)
            {
                if self.acks {
                    self.a.channel_mut(0).send(ack.clone(), self.to_b);
                }
                return (t0.elapsed(), arrived - t0);
            }
            assert!(t0.elapsed() < LOST, "raw round trip lost");
            std::thread::yield_now();
        }
    }
}

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    let n = rounds();
    let server = SignallingServer::start(SignallingConfig {
        introductions: 1,
        ..SignallingConfig::default()
    })
    .expect("signalling server");
    let start = Instant::now();
    let now = || u64::try_from(start.elapsed().as_millis()).expect("short run");
    // The mesh pair first: its handshake runs while no other socket is open.
    let mut mesh_pair = MeshPair::new(&server.room_url("bench-mesh"), &now);
    let mut raw_pair = RawPair::new(&server.room_url("bench-raw"), false);
    let mut acks_pair = RawPair::new(&server.room_url("bench-raw-acks"), true);
    let packet = Packet::from(vec![0xa5u8; PAYLOAD_BYTES]);
    let payload = vec![0xa5u8; PAYLOAD_BYTES];
    let (mut raw, mut raw_acks, mut mesh) =
        (Samples::default(), Samples::default(), Samples::default());
    let warmup = n / 10;
    for round in 0..n + warmup {
        let r = raw_pair.round_trip(&packet);
        let ra = acks_pair.round_trip(&packet);
        let m = mesh_pair.round_trip(&now, &payload);
        if round >= warmup {
            raw.push(r);
            raw_acks.push(ra);
            mesh.push(m);
        }
    }
    let (sa, sb) = (mesh_pair.a.overlay.stats(), mesh_pair.b.overlay.stats());
    println!(
        "mesh: frames out a {} b {}, retransmits a {} b {}, dropped a {} b {}",
        sa.frames_out,
        sb.frames_out,
        sa.retransmits,
        sb.retransmits,
        sa.frames_dropped,
        sb.frames_dropped
    );
    server.shutdown();
    for s in [&mut raw, &mut raw_acks, &mut mesh] {
        s.sort();
    }
    println!("real links, 1 KiB round trip over loopback WebRTC, {n} rounds each, interleaved:");
    for (name, s) in [
        ("raw matchbox channel:      ", &raw),
        ("raw + ack-sized frames:    ", &raw_acks),
        ("mesh (routed Data + acks): ", &mesh),
    ] {
        println!(
            "  {name} p50 {:.3} ms  p95 {:.3} ms  (one way p50 {:.3} ms)",
            ms(s.p50()),
            ms(s.p95()),
            ms(quantile(&s.one_way, 0.5))
        );
    }
    println!(
        "  mesh / raw: p50 {:.2}x  p95 {:.2}x  (target p50 ≤ 1.25x); mesh / raw+acks: p50 {:.2}x",
        ms(mesh.p50()) / ms(raw.p50()),
        ms(mesh.p95()) / ms(raw.p95()),
        ms(mesh.p50()) / ms(raw_acks.p50())
    );
}
