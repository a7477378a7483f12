//! GGRS over real WebRTC links on loopback: two overlay nodes, linked through the embedded
//! signalling server, each run a GGRS P2P session at 60 Hz over the mesh's unreliable channel
//! (`GgrsSocket` / `GgrsPort`, as the Bevy plugin does), driven by one thread that keeps the
//! 60 Hz frame clock and polls both nodes in between. For input delays 0, 1 and 2 it prints:
//!
//! - **input to remote confirmation**: from a player adding its input (at its frame f, for
//!   frame f + delay) to the other player's session confirming frame f + delay
//!   (`confirmed_frame()`), in ms and in 60 Hz frames — how long a remote player's action takes
//!   to be final in input (what the sandbox writes into the referees' input log);
//! - **rollback**: frames re-simulated per frame advanced, and rollbacks per second;
//! - **stalls**: frames a session could not advance (GGRS's prediction threshold);
//! - **bytes per player per second** of GGRS datagrams (inputs, acks, quality reports);
//!
//! and then the smallest input delay that ran without a rollback: the input delay in frames
//! GGRS needs on loopback.
//!
//! Inputs are 10 bytes (the sandbox's action pad) and change every 6 frames, predicted by
//! repeating the last one, so a late remote input costs a rollback.
//!
//! `cargo bench -p meshwork --features ggrs,matchbox,signalling --bench ggrs_loopback`
//! (`GGRS_SECONDS=N` seconds measured per input delay, default 10).

#[path = "common/linked_pair.rs"]
mod linked_pair;

use linked_pair::linked_pair;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use meshwork::proto::identity::PeerId;
use meshwork::transport::Node;
use meshwork::transport::ggrs::ggrs::{
    Config, GgrsError, GgrsRequest, P2PSession, PlayerType, PredictRepeatLast, SessionBuilder,
    SessionState,
};
use meshwork::transport::ggrs::{GgrsPort, ggrs_channel};
use meshwork::transport::matchbox::MatchboxTransport;
use meshwork::transport::signalling::{SignallingConfig, SignallingServer};

const FPS: u32 = 60;
const WARMUP_FRAMES: i32 = 60;

struct Bench;
impl Config for Bench {
    type Input = [u8; 10];
    type InputPredictor = PredictRepeatLast;
    type State = u64;
    type Address = PeerId;
}

fn seconds() -> u64 {
    std::env::var("GGRS_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One player: its node, GGRS session and what the bench measured on it.
struct Player {
    node: Node<MatchboxTransport>,
    port: GgrsPort,
    session: P2PSession<Bench>,
    handle: usize,
    frame: i32,
    state: u64,
    /// When the input for frame f was added here.
    added: BTreeMap<i32, Instant>,
    /// When frame f was first confirmed here.
    confirmed_at: BTreeMap<i32, Instant>,
    advanced: u64,
    simulated: u64,
    rollbacks: u64,
    stalls: u64,
}

impl Player {
    fn poll(&mut self, now_ms: u64) {
        self.node.tick(now_ms);
        self.port.pump(&mut self.node);
        self.session.poll_remote_clients();
        let _ = self.session.events().count();
        self.note_confirmed();
    }

    fn note_confirmed(&mut self) {
        let c = self.session.confirmed_frame();
        let next = self.confirmed_at.keys().next_back().map_or(0, |f| f + 1);
        let t = Instant::now();
        for f in next..=c {
            self.confirmed_at.insert(f, t);
        }
    }

    fn advance(&mut self, delay: i32) {
        if self.session.current_state() != SessionState::Running {
            return;
        }
        let f = self.session.current_frame();
        // A new input every 6 frames (movement keys change about ten times a second).
        let mut input = [0u8; 10];
        input[0] = (f / 6 % 5) as u8 + 1;
        input[1] = self.handle as u8;
        if self.session.add_local_input(self.handle, input).is_err() {
            return;
        }
        match self.session.advance_frame() {
            Ok(requests) => {
                self.added.entry(f + delay).or_insert_with(Instant::now);
                self.advanced += 1;
                for r in requests {
                    match r {
                        GgrsRequest::SaveGameState { cell, frame } => {
                            cell.save(frame, Some(self.state), None);
                        }
                        GgrsRequest::LoadGameState { cell, frame } => {
                            self.state = cell.load().unwrap_or_default();
                            self.frame = frame;
                            self.rollbacks += 1;
                        }
                        GgrsRequest::AdvanceFrame { inputs } => {
                            for (i, _) in &inputs {
                                for b in i {
                                    self.state =
                                        self.state.wrapping_mul(31).wrapping_add(u64::from(*b));
                                }
                            }
                            self.frame += 1;
                            self.simulated += 1;
                        }
                    }
                }
            }
            Err(GgrsError::PredictionThreshold) => self.stalls += 1,
            Err(e) => panic!("GGRS: {e}"),
        }
        self.note_confirmed();
    }
}

/// Runs one input delay; returns the rollbacks measured.
fn run(url: &str, delay: usize, seconds: u64) -> u64 {
    let start = Instant::now();
    let now = || u64::try_from(start.elapsed().as_millis()).expect("short run");
    let (a, b) = linked_pair(url, &now);
    let nodes = vec![a, b];
    let ids: Vec<PeerId> = nodes.iter().map(|n| n.overlay.peer_id()).collect();
    let mut order = ids.clone();
    order.sort();
    let mut players: Vec<Player> = nodes
        .into_iter()
        .map(|node| {
            let me = node.overlay.peer_id();
            let (socket, port) = ggrs_channel();
            let mut b = SessionBuilder::<Bench>::new()
                .with_num_players(2)
                .expect("2 players")
                .with_input_delay(delay)
                .with_max_prediction_window(8)
                .with_fps(FPS as usize)
                .expect("fps");
            let mut handle = 0;
            for (h, p) in order.iter().enumerate() {
                let kind = if *p == me {
                    handle = h;
                    PlayerType::Local
                } else {
                    PlayerType::Remote(*p)
                };
                b = b.add_player(kind, h).expect("player");
            }
            Player {
                session: b.start_p2p_session(socket).expect("session"),
                node,
                port,
                handle,
                frame: 0,
                state: 0,
                added: BTreeMap::new(),
                confirmed_at: BTreeMap::new(),
                advanced: 0,
                simulated: 0,
                rollbacks: 0,
                stalls: 0,
            }
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while players
        .iter()
        .any(|p| p.session.current_state() != SessionState::Running)
    {
        assert!(Instant::now() < deadline, "GGRS did not synchronise");
        for p in &mut players {
            p.poll(now());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // The 60 Hz frame clock; both players advance on each tick, polled in between.
    let frame_time = Duration::from_secs(1) / FPS;
    let total = i32::try_from(seconds * u64::from(FPS)).expect("short run") + WARMUP_FRAMES;
    let mut next = Instant::now();
    let mut measured_from = None;
    let bytes_before: Vec<u64> = players.iter().map(|p| p.port.stats().bytes_sent).collect();
    let mut counters_before = vec![(0, 0, 0, 0); 2];
    for tick in 0..total {
        if tick == WARMUP_FRAMES {
            measured_from = Some((Instant::now(), players[0].frame.max(players[1].frame)));
            counters_before = players
                .iter()
                .map(|p| (p.advanced, p.simulated, p.rollbacks, p.stalls))
                .collect();
        }
        next += frame_time;
        for p in &mut players {
            p.poll(now());
            p.advance(i32::try_from(delay).expect("small delay"));
        }
        while Instant::now() < next {
            for p in &mut players {
                p.poll(now());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let (t0, first_frame) = measured_from.expect("measured");
    let elapsed = t0.elapsed().as_secs_f64();
    // Input to remote confirmation, both directions, frames after the warm-up.
    let mut latency_ms = Vec::new();
    for (i, j) in [(0, 1), (1, 0)] {
        for (f, added) in players[i].added.range(first_frame..) {
            if let Some(confirmed) = players[j].confirmed_at.get(f) {
                latency_ms.push(confirmed.saturating_duration_since(*added).as_secs_f64() * 1e3);
            }
        }
    }
    latency_ms.sort_by(f64::total_cmp);
    let frame_ms = 1e3 / f64::from(FPS);
    let (p50, p95) = (quantile(&latency_ms, 0.5), quantile(&latency_ms, 0.95));
    let mut advanced = 0;
    let mut simulated = 0;
    let mut rollbacks = 0;
    let mut stalls = 0;
    for (p, b) in players.iter().zip(&counters_before) {
        advanced += p.advanced - b.0;
        simulated += p.simulated - b.1;
        rollbacks += p.rollbacks - b.2;
        stalls += p.stalls - b.3;
    }
    let bytes: u64 = players
        .iter()
        .zip(&bytes_before)
        .map(|(p, b)| p.port.stats().bytes_sent - b)
        .sum();
    let bytes_per_player_s = bytes as f64 / 2.0 / elapsed;
    println!(
        "input delay {delay}: input to remote confirmation p50 {p50:.2} ms ({:.3} frames), \
         p95 {p95:.2} ms ({:.3} frames), over {} inputs",
        p50 / frame_ms,
        p95 / frame_ms,
        latency_ms.len()
    );
    println!(
        "  re-simulated {:.3} frames per frame advanced, {:.1} rollbacks/s per player, \
         {stalls} stalls in {advanced} frames; GGRS datagrams {bytes_per_player_s:.0} bytes \
         per player per second",
        (simulated.saturating_sub(advanced)) as f64 / advanced.max(1) as f64,
        rollbacks as f64 / 2.0 / elapsed,
    );
    rollbacks
}

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    let server = SignallingServer::start(SignallingConfig {
        introductions: 1,
        ..SignallingConfig::default()
    })
    .expect("signalling server");
    let seconds = seconds();
    println!(
        "GGRS at {FPS} Hz over real loopback WebRTC links, 2 players, {seconds} s per input delay:"
    );
    let mut smallest = None;
    for delay in 0..=2 {
        let rollbacks = run(
            &server.room_url(&format!("bench-ggrs-{delay}")),
            delay,
            seconds,
        );
        if rollbacks == 0 && smallest.is_none() {
            smallest = Some(delay);
        }
    }
    server.shutdown();
    match smallest {
        Some(d) => println!("smallest input delay without a rollback on loopback: {d} frames"),
        None => println!("every input delay tried (0-2 frames) rolled back on loopback"),
    }
}
