//! Round trip of a 1 KiB message over real WebRTC links on loopback: through the mesh (a routed
//! `Data` message between two linked overlay nodes, echoed back) against a raw matchbox channel
//! (two plain `WebRtcSocket`s, echo), in the same run, both bootstrapped by the embedded
//! signalling server and both driven by one busy-polling thread.
//!
//! `cargo bench -p meshwork --features signalling --bench real_links` (`REAL_LINKS_ROUNDS=N`).
//! Target: mesh p50 ≤ 1.25 × raw p50.

#[path = "common/linked_pair.rs"]
mod linked_pair;

use linked_pair::linked_pair;
use std::time::{Duration, Instant};

use matchbox_socket::{Packet, RtcIceServerConfig, WebRtcSocket, WebRtcSocketBuilder};
use meshwork::transport::NodeEvent;
use meshwork::transport::matchbox::{channel_configs, spawn_socket_loop};
use meshwork::transport::signalling::{SignallingConfig, SignallingServer};

const PAYLOAD_BYTES: usize = 1024;

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

fn mesh_round_trips(url: &str, n: usize) -> Vec<Duration> {
    let start = Instant::now();
    let now = || u64::try_from(start.elapsed().as_millis()).expect("short run");
    let (mut a, mut b) = linked_pair(url, &now);
    let (ida, idb) = (a.overlay.peer_id(), b.overlay.peer_id());
    let payload = vec![0xa5u8; PAYLOAD_BYTES];
    let warmup = n / 10;
    let mut rtts = Vec::with_capacity(n);
    for round in 0..n + warmup {
        let t0 = Instant::now();
        a.send(now(), idb, true, payload.clone());
        a.flush(now(), &mut Vec::new());
        'wait: loop {
            for ev in b.tick(now()) {
                if let NodeEvent::Message {
                    origin, payload, ..
                } = ev
                    && origin == ida
                {
                    b.send(now(), ida, true, payload);
                    b.flush(now(), &mut Vec::new());
                }
            }
            for ev in a.tick(now()) {
                if matches!(ev, NodeEvent::Message { origin, .. } if origin == idb) {
                    break 'wait;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "mesh round trip lost"
            );
            std::thread::yield_now();
        }
        if round >= warmup {
            rtts.push(t0.elapsed());
        }
    }
    let (sa, sb) = (a.overlay.stats(), b.overlay.stats());
    println!(
        "mesh: frames out a {} b {}, retransmits a {} b {}, dropped a {} b {}",
        sa.frames_out,
        sb.frames_out,
        sa.retransmits,
        sb.retransmits,
        sa.frames_dropped,
        sb.frames_dropped
    );
    rtts
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

/// Raw echo; with `acks`, each side also sends a 4-byte frame where the overlay sends its hop
/// acknowledgement (the receiver before echoing, the sender after the echo arrived).
fn raw_round_trips(url: &str, n: usize, acks: bool) -> Vec<Duration> {
    let mut a = raw_socket(url);
    std::thread::sleep(Duration::from_millis(200));
    let mut b = raw_socket(url);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (pa, _pb) = loop {
        let _ = a.try_update_peers();
        let _ = b.try_update_peers();
        if let (Some(pa), Some(pb)) = (b.connected_peers().next(), a.connected_peers().next()) {
            break (pb, pa);
        }
        assert!(Instant::now() < deadline, "raw sockets did not connect");
        std::thread::sleep(Duration::from_millis(1));
    };
    let payload = Packet::from(vec![0xa5u8; PAYLOAD_BYTES]);
    // A frame the size of the overlay's per-hop Ack, sent where the overlay sends it.
    let ack = Packet::from(vec![1u8, 0, 6, 0]);
    let warmup = n / 10;
    let mut rtts = Vec::with_capacity(n);
    for round in 0..n + warmup {
        let t0 = Instant::now();
        a.channel_mut(0).send(payload.clone(), pa);
        'wait: loop {
            for (from, packet) in b.channel_mut(0).receive() {
                if packet.len() <= 4 {
                    continue;
                }
                if acks {
                    b.channel_mut(0).send(ack.clone(), from);
                }
                b.channel_mut(0).send(packet, from);
            }
            if a.channel_mut(0).receive().iter().any(|(_, p)| p.len() > 4) {
                if acks {
                    a.channel_mut(0).send(ack.clone(), pa);
                }
                break 'wait;
            }
            assert!(t0.elapsed() < Duration::from_secs(5), "raw round trip lost");
            std::thread::yield_now();
        }
        if round >= warmup {
            rtts.push(t0.elapsed());
        }
    }
    rtts
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
    let mut raw = raw_round_trips(&server.room_url("bench-raw"), n, false);
    let mut raw_acks = raw_round_trips(&server.room_url("bench-raw-acks"), n, true);
    let mut mesh = mesh_round_trips(&server.room_url("bench-mesh"), n);
    server.shutdown();
    raw.sort();
    raw_acks.sort();
    mesh.sort();
    let (r50, r95) = (quantile(&raw, 0.5), quantile(&raw, 0.95));
    let (a50, a95) = (quantile(&raw_acks, 0.5), quantile(&raw_acks, 0.95));
    let (m50, m95) = (quantile(&mesh, 0.5), quantile(&mesh, 0.95));
    println!("real links, 1 KiB round trip over loopback WebRTC, {n} rounds each:");
    println!(
        "  raw matchbox channel:        p50 {:.3} ms  p95 {:.3} ms",
        ms(r50),
        ms(r95)
    );
    println!(
        "  raw + ack-sized frames:      p50 {:.3} ms  p95 {:.3} ms",
        ms(a50),
        ms(a95)
    );
    println!(
        "  mesh (routed Data + acks):   p50 {:.3} ms  p95 {:.3} ms",
        ms(m50),
        ms(m95)
    );
    println!(
        "  mesh / raw: p50 {:.2}x  p95 {:.2}x  (target p50 ≤ 1.25x); mesh / raw+acks: p50 {:.2}x",
        ms(m50) / ms(r50),
        ms(m95) / ms(r95),
        ms(m50) / ms(a50)
    );
}
