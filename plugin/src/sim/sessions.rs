//! Session simulator: many sessions of players in a world, each checkpoint judged by referees
//! drawn from the *other* peers, over a direct simulated network (per-pair latency from one
//! seed, FIFO per pair), like the ledger simulator. Everything derives from one seed: rosters,
//! joins and leaves, who cheats, which referees are corrupt, every player's actions.
//!
//! - The world: one genesis host (token + world contract, every peer funded, approving the
//!   world and delegating to [`session_sequencer`](crate::proto::referee::session_sequencer)); each *region* is an independent chain of
//!   sessions starting from it. A session plays `checkpoints` checkpoints of `frames_per_checkpoint`
//!   frames; then a player leaves or joins (the roster change starts a new session from the
//!   last finalised root). A caught cheater is always dropped.
//! - At a checkpoint the honest players really execute the log on the world contract (once per
//!   checkpoint, shared by the honest players of the session), sign their claims and send them
//!   to each other; the checkpoint's leader sends the checkpoint and log to the selected
//!   referees. Every player runs a [`Finaliser`]; the first honest player drives judgements.
//! - A cheater claims a tampered root. A corrupt referee attests the same tampered root
//!   (colluding) and never signs a verdict share. Referees' re-execution is memoised on
//!   `(code, prior root, log, world, roster)` — a pure function — so 64 panel judges cost one
//!   execution; only this simulator may do that.
//! - Checked after every event: every finalised root is the true root; every forfeited bond is
//!   a cheater's (evidence verified by the ledger's own `Evidence::verify`). At the end
//!   ([`SessionSim::assert_punished`]): every cheater whose claim met a finalised checkpoint lost
//!   its bond.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest as _, Sha256};

use crate::proto::contract::{Address, CodeHash, ContractId, StateRoot};
use crate::proto::identity::{Identity, PeerId, PublicKey};
use crate::proto::ledger::{Amount, Epoch, Evidence, Output, OutputId};
use crate::proto::referee::{
    Checkpoint, CheckpointDigest, Claim, Finaliser, FinaliserEvent, InputLog, InputLogBuilder,
    Karma, Member, Panel, Referee, RefereeError, RefereeMsg, RefereePool, Roster, SessionId,
};

mod config;
mod worlds;

pub use config::{SessionReport, SessionSimConfig};
pub use worlds::{SandboxGenesis, sandbox_genesis, tampered};
use worlds::{SimExecutor, Worlds};

struct Peer {
    identity: Identity,
    key: PublicKey,
    corrupt: bool,
    referee: Referee,
    /// The session it plays in.
    playing: Option<usize>,
}

/// One checkpoint of a session, as every player sees it.
struct Cp {
    checkpoint: Checkpoint,
    digest: CheckpointDigest,
    log: InputLog,
    true_root: StateRoot,
    formed_ms: u64,
    /// Per player (peer index), its finaliser.
    finalisers: BTreeMap<usize, Finaliser>,
    finalised_at: BTreeMap<usize, u64>,
    /// The honest player that asks the panel for judgements.
    judge_driver: usize,
    stalled: bool,
    /// Recorded in the report (once).
    counted: bool,
}

struct Session {
    region: usize,
    id: SessionId,
    roster: Roster,
    /// Peer indices in roster order.
    players: Vec<usize>,
    cheater: Option<usize>,
    panel: Panel,
    start_ms: u64,
    first_frame: u64,
    planned: u64,
    cps: Vec<Cp>,
    /// Waiting for the previous checkpoint's finality before forming the next.
    ended: bool,
}

struct Region {
    last_root: StateRoot,
    last_digest: CheckpointDigest,
    next_frame: u64,
    sessions: u64,
    /// Players of the next session.
    roster: Vec<usize>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// The session's next checkpoint frame.
    CheckpointDue { session: usize },
    /// A finaliser's deadline.
    Timeout {
        session: usize,
        cp: usize,
        player: usize,
    },
    /// A message arrives.
    Deliver {
        to: usize,
        from: usize,
        bytes: Vec<u8>,
    },
    /// Start the region's next session.
    NextSession { region: usize },
}

/// Frame `f` starts at `f × 1000 / 60` ms.
fn frame_ms(frame: u64) -> u64 {
    frame * 1000 / 60
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn address(key: &PublicKey) -> Address {
    Address(PeerId::from_public_key(key).0)
}

/// World parameters of the simulated world.
const REGIONS: u16 = 4;
const REGION_SIZE: u16 = 16;
const BLOCK_PRICE: u64 = 10;
/// A session bond.
const BOND: Amount = Amount(1_000);

/// The session simulator.
pub struct SessionSim {
    cfg: SessionSimConfig,
    now_ms: u64,
    rng: ChaCha8Rng,
    peers: Vec<Peer>,
    index: BTreeMap<PublicKey, usize>,
    pool: RefereePool,
    world: ContractId,
    code: CodeHash,
    worlds: Worlds,
    regions: Vec<Region>,
    sessions: Vec<Session>,
    by_digest: BTreeMap<CheckpointDigest, (usize, usize)>,
    queue: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    trace: Sha256,
    karma: Karma,
    /// Bonds forfeited (id → owner), through verified evidence.
    forfeited: BTreeMap<OutputId, PublicKey>,
    /// Cheaters (peer index) whose tampered claim met a finalised checkpoint, with their bond.
    owed: BTreeMap<OutputId, usize>,
    faulted: BTreeSet<PublicKey>,
    report: SessionReport,
}

impl std::fmt::Debug for SessionSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionSim {{ {:?}, now {} ms }}", self.cfg, self.now_ms)
    }
}

impl SessionSim {
    /// Sets up the genesis world and the peers; the regions' first sessions start at once.
    pub fn new(cfg: SessionSimConfig) -> Self {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&cfg.seed.to_le_bytes());
        seed[8] = 0x5e;
        let mut rng = ChaCha8Rng::from_seed(seed);
        let code = CodeHash::of(&cfg.world_wasm);
        let mut peers = Vec::with_capacity(cfg.peers);
        let corrupt_count = cfg.peers as u64 * cfg.corrupt_percent / 100;
        let mut corrupt: BTreeSet<usize> = BTreeSet::new();
        while (corrupt.len() as u64) < corrupt_count {
            corrupt.insert((rng.next_u64() % cfg.peers as u64) as usize);
        }
        for i in 0..cfg.peers {
            let mut s = [0x5e; 32];
            s[..8].copy_from_slice(&cfg.seed.to_le_bytes());
            s[8..16].copy_from_slice(&(i as u64).to_le_bytes());
            let identity = Identity::from_seed(s);
            let key = identity.public_key();
            peers.push(Peer {
                referee: Referee::new(identity.clone(), code),
                identity,
                key,
                corrupt: corrupt.contains(&i),
                playing: None,
            });
        }
        let players: Vec<Address> = peers.iter().map(|p| address(&p.key)).collect();
        let SandboxGenesis {
            host,
            world,
            code: genesis_code,
            ..
        } = sandbox_genesis(
            &cfg.token_wasm,
            &cfg.world_wasm,
            (REGIONS, REGION_SIZE, BLOCK_PRICE),
            &players,
            1_000_000,
        );
        assert_eq!(
            genesis_code, code,
            "the world's code hash is its wasm's sha256"
        );
        let pool =
            RefereePool::new(peers.iter().map(|p| p.key).collect()).expect("pool within bounds");
        let genesis = host.root();
        let mut worlds = Worlds::default();
        worlds.states.insert(genesis, host);
        let index = peers.iter().enumerate().map(|(i, p)| (p.key, i)).collect();
        let mut sim = Self {
            now_ms: 0,
            rng,
            peers,
            index,
            pool,
            world,
            code,
            worlds,
            regions: Vec::new(),
            sessions: Vec::new(),
            by_digest: BTreeMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            trace: Sha256::new(),
            karma: Karma::default(),
            forfeited: BTreeMap::new(),
            owed: BTreeMap::new(),
            faulted: BTreeSet::new(),
            report: SessionReport::default(),
            cfg,
        };
        for r in 0..sim.cfg.regions {
            let size = sim.roll_range(sim.cfg.players_min as u64, sim.cfg.players_max as u64);
            let roster = sim.free_players(size as usize);
            for &p in &roster {
                sim.peers[p].playing = Some(usize::MAX);
            }
            let mut parent = [0u8; 32];
            parent[..8].copy_from_slice(&(r as u64).to_le_bytes());
            sim.regions.push(Region {
                last_root: genesis,
                last_digest: CheckpointDigest(parent),
                next_frame: 0,
                sessions: 0,
                roster,
            });
            let at = sim.rng.next_u64() % 500;
            sim.schedule(at, Ev::NextSession { region: r });
        }
        sim
    }

    fn roll_range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.rng.next_u64() % (hi - lo + 1)
    }

    /// `n` random peers that play nowhere.
    fn free_players(&mut self, n: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(n);
        let mut guard = 0;
        while out.len() < n && guard < 100_000 {
            guard += 1;
            let p = (self.rng.next_u64() % self.peers.len() as u64) as usize;
            if self.peers[p].playing.is_none() && !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, ev)));
    }

    fn latency(&self, a: usize, b: usize) -> u64 {
        let (lo, hi) = (a.min(b) as u64, a.max(b) as u64);
        let span = self.cfg.latency_ms_max - self.cfg.latency_ms_min + 1;
        self.cfg.latency_ms_min + splitmix(self.cfg.seed ^ (lo << 32) ^ hi) % span
    }

    fn mean_rtt_ms(&self) -> f64 {
        (self.cfg.latency_ms_min + self.cfg.latency_ms_max) as f64
    }

    fn send(&mut self, from: usize, to: usize, delay_ms: u64, msg: &RefereeMsg) {
        let bytes = msg.encode().expect("simulated messages encode");
        let at = self.now_ms + delay_ms + self.latency(from, to);
        self.schedule(at, Ev::Deliver { to, from, bytes });
    }

    /// Virtual time.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Hash of every delivered message and its time.
    pub fn trace_hash(&self) -> [u8; 32] {
        self.trace.clone().finalize().into()
    }

    /// Karma so far.
    pub fn karma(&self) -> &Karma {
        &self.karma
    }

    /// Figures so far.
    pub fn report(&self) -> SessionReport {
        let mut r = self.report.clone();
        r.cheats_caught = self.forfeited.len() as u64;
        r.corrupt_referees_caught = self.faulted.len() as u64;
        r.executions = self.worlds.executions;
        r.memo_hits = self.worlds.hits;
        r.finality_round_trips.sort_by(f64::total_cmp);
        r
    }

    /// Runs until every session has ended and no message is in flight (or `ms_max` passed).
    pub fn run(&mut self, ms_max: u64) {
        while let Some(Reverse((at, ..))) = self.queue.peek() {
            if *at > ms_max {
                break;
            }
            let Reverse((at, _, ev)) = self.queue.pop().expect("peeked");
            self.now_ms = at;
            self.step(ev);
            self.check();
        }
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::NextSession { region } => self.start_session(region),
            Ev::CheckpointDue { session } => self.form_checkpoint(session),
            Ev::Timeout {
                session,
                cp,
                player,
            } => {
                let now = self.now_ms;
                if let Some(f) = self.sessions[session].cps[cp].finalisers.get_mut(&player) {
                    f.handle_timeout(now);
                }
                self.drain(session, cp, player);
            }
            Ev::Deliver { to, from, bytes } => {
                self.trace.update(self.now_ms.to_le_bytes());
                self.trace.update((from as u64).to_le_bytes());
                self.trace.update((to as u64).to_le_bytes());
                self.trace.update(&bytes);
                self.report.messages += 1;
                self.report.bytes += bytes.len() as u64;
                let msg = RefereeMsg::decode(&bytes).expect("the simulator sends valid messages");
                if let Err(_e) = self.deliver(to, from, msg) {
                    self.report.refusals += 1;
                }
            }
        }
    }
}

impl SessionSim {
    fn start_session(&mut self, region: usize) {
        let mut players = std::mem::take(&mut self.regions[region].roster);
        if self.sessions.len() >= self.cfg.sessions {
            for p in players {
                self.peers[p].playing = None;
            }
            return;
        }
        let index = self.sessions.len();
        let r = &mut self.regions[region];
        r.sessions += 1;
        let tag = (region as u64) << 32 | r.sessions;
        players.sort_by_key(|&p| self.peers[p].key);
        let members: Vec<Member> = players
            .iter()
            .map(|&p| {
                let key = self.peers[p].key;
                let bond = Sha256::new()
                    .chain_update(b"meshwork-sim/session-bond")
                    .chain_update(tag.to_le_bytes())
                    .chain_update(key.0)
                    .finalize();
                Member {
                    key,
                    bond: OutputId(bond.into()),
                }
            })
            .collect();
        let roster = Roster::new(members).expect("2..=8 distinct players");
        let r = &self.regions[region];
        let id = SessionId::derive(
            &r.last_digest,
            &self.world,
            &self.code,
            &r.last_root,
            &roster,
        );
        let panel = Panel::draw(&self.pool, &id, &roster).expect("the pool is large enough");
        let cheater = (self.rng.next_u64() % 100 < self.cfg.cheating_percent)
            .then(|| players[(self.rng.next_u64() % players.len() as u64) as usize]);
        let planned = self.roll_range(self.cfg.checkpoints_min, self.cfg.checkpoints_max);
        for &p in &players {
            self.peers[p].playing = Some(index);
        }
        self.report.sessions += 1;
        self.report.cheating_sessions += u64::from(cheater.is_some());
        let first_frame = self.regions[region].next_frame;
        self.sessions.push(Session {
            region,
            id,
            roster,
            players,
            cheater,
            panel,
            start_ms: self.now_ms,
            first_frame,
            planned,
            cps: Vec::new(),
            ended: false,
        });
        let due = self.now_ms + frame_ms(u64::from(self.cfg.frames_per_checkpoint));
        self.schedule(due, Ev::CheckpointDue { session: index });
    }

    /// The frame time of checkpoint `seq` of session `s`.
    fn frame_time(&self, s: usize, seq: u64) -> u64 {
        let k = u64::from(self.cfg.frames_per_checkpoint);
        self.sessions[s].start_ms + frame_ms((seq + 1) * k)
    }

    fn random_log(&mut self, first_frame: u64, players: usize) -> InputLog {
        let mut log = InputLogBuilder::new(first_frame, players as u8);
        for _ in 0..self.cfg.frames_per_checkpoint {
            let inputs: Vec<Vec<Vec<u8>>> = (0..players)
                .map(|_| {
                    if self.rng.next_u64() % 100 >= self.cfg.action_percent {
                        return Vec::new();
                    }
                    let x = (self.rng.next_u64() % 12) as u32;
                    let y = (self.rng.next_u64() % 12) as u32;
                    let mut a = Vec::with_capacity(10);
                    if self.rng.next_u64() % 100 < 60 {
                        a.push(0x01);
                        a.extend_from_slice(&x.to_le_bytes());
                        a.extend_from_slice(&y.to_le_bytes());
                        a.push(1 + (self.rng.next_u64() % 3) as u8);
                    } else {
                        a.push(0x02);
                        a.extend_from_slice(&x.to_le_bytes());
                        a.extend_from_slice(&y.to_le_bytes());
                    }
                    vec![a]
                })
                .collect();
            log.push_frame(&inputs).expect("within bounds");
        }
        log.finish().expect("within bounds")
    }

    fn form_checkpoint(&mut self, s: usize) {
        let seq = self.sessions[s].cps.len() as u64;
        if self.sessions[s].ended {
            return;
        }
        let prior_root = match self.sessions[s].cps.last() {
            None => self.regions[self.sessions[s].region].last_root,
            Some(prev) => {
                if prev.stalled {
                    return;
                }
                if !prev.finalised_at.contains_key(&prev.judge_driver) {
                    // The next checkpoint starts from a finalised root: wait for it.
                    let at = self.now_ms + 5;
                    self.schedule(at, Ev::CheckpointDue { session: s });
                    return;
                }
                prev.true_root
            }
        };
        let k = u64::from(self.cfg.frames_per_checkpoint);
        let session = &self.sessions[s];
        let first = session.first_frame + seq * k;
        let n = session.players.len();
        let log = self.random_log(first, n);
        let session = &self.sessions[s];
        let checkpoint = Checkpoint {
            session: session.id,
            seq,
            frame: first + k,
            world: self.world,
            code_hash: self.code,
            prior_root,
            input_log_hash: log.hash(),
            roster: session.roster.clone(),
        };
        let true_root = self
            .worlds
            .run(&checkpoint, &log)
            .expect("the honest players' run succeeds");
        let digest = checkpoint.digest();
        let mut cp = Cp {
            checkpoint: checkpoint.clone(),
            digest,
            log,
            true_root,
            formed_ms: self.frame_time(s, seq),
            finalisers: BTreeMap::new(),
            finalised_at: BTreeMap::new(),
            judge_driver: *session
                .players
                .iter()
                .find(|p| Some(**p) != session.cheater)
                .expect("at most one cheater among ≥ 2 players"),
            stalled: false,
            counted: false,
        };
        let mut claims = Vec::with_capacity(n);
        for &p in &session.players {
            let mut f = Finaliser::new(
                checkpoint.clone(),
                session.panel.clone(),
                self.now_ms,
                self.cfg.finaliser,
            )
            .expect("the session's own checkpoint");
            let root = if session.cheater == Some(p) {
                tampered(&true_root)
            } else {
                true_root
            };
            let claim = Claim::sign(&self.peers[p].identity, digest, root);
            f.handle_claim(claim).expect("its own claim");
            claims.push((p, claim));
            cp.finalisers.insert(p, f);
        }
        let players = session.players.clone();
        let planned = session.planned;
        self.sessions[s].cps.push(cp);
        self.by_digest.insert(digest, (s, seq as usize));
        self.report.checkpoints += 1;
        for &(p, claim) in &claims {
            for &q in &players {
                if q != p {
                    self.send(p, q, 0, &RefereeMsg::Claim(claim));
                }
            }
        }
        for &p in &players {
            self.drain(s, seq as usize, p);
        }
        if seq + 1 < planned {
            let due = self.frame_time(s, seq + 1).max(self.now_ms + 1);
            self.schedule(due, Ev::CheckpointDue { session: s });
        }
    }

    fn deliver(&mut self, to: usize, from: usize, msg: RefereeMsg) -> Result<(), RefereeError> {
        let locate = |d: &CheckpointDigest| {
            self.by_digest
                .get(d)
                .copied()
                .ok_or(RefereeError::WrongCheckpoint)
        };
        match msg {
            RefereeMsg::Request {
                checkpoint,
                attempt,
                log,
            } => {
                let (s, _) = locate(&checkpoint.digest())?;
                let session = &self.sessions[s];
                let peer = &mut self.peers[to];
                let mut exec = SimExecutor {
                    worlds: &mut self.worlds,
                    corrupt: peer.corrupt,
                };
                let a =
                    peer.referee
                        .attest(&mut exec, &session.panel, &checkpoint, attempt, &log)?;
                let players = session.players.clone();
                let delay = self.cfg.execute_ms;
                for p in players {
                    self.send(to, p, delay, &RefereeMsg::Attestation(a));
                }
            }
            RefereeMsg::Judge {
                checkpoint,
                log,
                claim,
            } => {
                let (s, _) = locate(&checkpoint.digest())?;
                let session = &self.sessions[s];
                let peer = &mut self.peers[to];
                if peer.corrupt {
                    // Corrupt referees protect cheaters: no share.
                    return Ok(());
                }
                let mut exec = SimExecutor {
                    worlds: &mut self.worlds,
                    corrupt: false,
                };
                let share =
                    peer.referee
                        .judge(&mut exec, &session.panel, &checkpoint, &log, &claim)?;
                let delay = self.cfg.execute_ms;
                self.send(to, from, delay, &RefereeMsg::Share(share));
            }
            RefereeMsg::Claim(c) => {
                let (s, j) = locate(&c.checkpoint)?;
                self.finaliser(s, j, to)?.handle_claim(c)?;
                self.drain(s, j, to);
            }
            RefereeMsg::Attestation(a) => {
                let (s, j) = locate(&a.checkpoint)?;
                self.finaliser(s, j, to)?.handle_attestation(a)?;
                self.drain(s, j, to);
            }
            RefereeMsg::Share(share) => {
                let (s, j) = locate(&share.checkpoint)?;
                self.finaliser(s, j, to)?.handle_verdict_share(share)?;
                self.drain(s, j, to);
            }
            RefereeMsg::Finalised(_) => {}
        }
        Ok(())
    }

    fn finaliser(&mut self, s: usize, j: usize, p: usize) -> Result<&mut Finaliser, RefereeError> {
        self.sessions[s].cps[j]
            .finalisers
            .get_mut(&p)
            .ok_or(RefereeError::NotAPlayer(self.peers[p].key))
    }

    /// Acts on what player `p`'s finaliser of checkpoint `j` of session `s` has to say.
    fn drain(&mut self, s: usize, j: usize, p: usize) {
        loop {
            let Some(f) = self.sessions[s].cps[j].finalisers.get_mut(&p) else {
                return;
            };
            let Some(event) = f.poll_event() else {
                return;
            };
            let timeout = f.poll_timeout();
            let driver = self.sessions[s].cps[j].judge_driver == p;
            if driver {
                self.karma.record(&event);
            }
            match event {
                FinaliserEvent::RequestAttestations { attempt, referees } => {
                    let session = &self.sessions[s];
                    let n = session.players.len();
                    let leader = session.players[(j + usize::from(attempt)) % n];
                    if let Some(t) = timeout {
                        self.schedule(
                            t,
                            Ev::Timeout {
                                session: s,
                                cp: j,
                                player: p,
                            },
                        );
                    }
                    if leader != p {
                        continue;
                    }
                    if attempt > 0 {
                        self.report.retries += 1;
                    }
                    let cp = &self.sessions[s].cps[j];
                    let msg = RefereeMsg::Request {
                        checkpoint: cp.checkpoint.clone(),
                        attempt,
                        log: cp.log.clone(),
                    };
                    for r in referees {
                        let r = self.peer_index(&r);
                        self.send(p, r, 0, &msg);
                    }
                }
                FinaliserEvent::Finalised { certificate, .. } => {
                    let cp = &self.sessions[s].cps[j];
                    assert_eq!(
                        certificate.root, cp.true_root,
                        "a wrong root was finalised (checkpoint {:?})",
                        cp.digest
                    );
                    if driver {
                        certificate
                            .verify(&self.sessions[s].panel)
                            .expect("a finaliser's certificate verifies");
                    }
                    let now = self.now_ms;
                    let cp = &mut self.sessions[s].cps[j];
                    cp.finalised_at.insert(p, now);
                    let cheater = self.sessions[s].cheater;
                    let cp = &self.sessions[s].cps[j];
                    let honest = self.sessions[s]
                        .players
                        .iter()
                        .filter(|q| Some(**q) != cheater)
                        .all(|q| cp.finalised_at.contains_key(q));
                    if honest && !cp.counted {
                        let elapsed = now.saturating_sub(cp.formed_ms) as f64;
                        let rtt = self.mean_rtt_ms();
                        self.report.finalised += 1;
                        self.report.finality_round_trips.push(elapsed / rtt);
                        self.sessions[s].cps[j].counted = true;
                    }
                    if driver {
                        self.on_final(s, j);
                    }
                }
                FinaliserEvent::RequestJudgement { claim, referees } => {
                    if !driver {
                        continue;
                    }
                    let cp = &self.sessions[s].cps[j];
                    let msg = RefereeMsg::Judge {
                        checkpoint: cp.checkpoint.clone(),
                        log: cp.log.clone(),
                        claim,
                    };
                    for r in referees {
                        let r = self.peer_index(&r);
                        self.send(p, r, 0, &msg);
                    }
                }
                FinaliserEvent::CheatDetected {
                    player,
                    bond,
                    verdict,
                    ..
                } => {
                    if !driver {
                        continue;
                    }
                    let terms = self.sessions[s].panel.bond_terms(Epoch(1_000), Vec::new());
                    let output = Output {
                        owner: player,
                        amount: BOND,
                        bond: Some(terms),
                    };
                    Evidence::Verdict(verdict)
                        .verify(&bond, &output)
                        .expect("the ledger accepts the verdict");
                    self.forfeited.insert(bond, player);
                }
                FinaliserEvent::RefereeFaulted(fault) => {
                    if !driver {
                        continue;
                    }
                    fault
                        .verify(&self.sessions[s].panel)
                        .expect("referee evidence verifies");
                    assert!(
                        self.peers[self.peer_index(&fault.referee())].corrupt,
                        "an honest referee was accused"
                    );
                    self.faulted.insert(fault.referee());
                }
                FinaliserEvent::Stalled => {
                    if driver {
                        self.sessions[s].cps[j].stalled = true;
                        self.report.stalled += 1;
                        self.end_session(s);
                    }
                }
                FinaliserEvent::Unresponsive(_) => {}
            }
        }
    }

    fn peer_index(&self, key: &PublicKey) -> usize {
        *self.index.get(key).expect("referees are peers")
    }

    /// The judge driver saw checkpoint `j` of session `s` finalised.
    fn on_final(&mut self, s: usize, j: usize) {
        let session = &self.sessions[s];
        let cp = &session.cps[j];
        if let Some(cheater) = session.cheater {
            let bond = session
                .roster
                .member(&self.peers[cheater].key)
                .expect("the cheater plays")
                .bond;
            self.owed.insert(bond, cheater);
        }
        let region = &mut self.regions[session.region];
        // Checkpoints of a session finalise in order (the next one is formed from a final root).
        if cp.checkpoint.frame > region.next_frame {
            region.last_root = cp.true_root;
            region.last_digest = cp.digest;
            region.next_frame = cp.checkpoint.frame;
        }
        if j as u64 + 1 == session.planned {
            self.end_session(s);
        }
    }

    /// A roster change: the cheater (if any) and maybe one more player leave, or someone joins;
    /// the region's next session continues from its last finalised root.
    fn end_session(&mut self, s: usize) {
        if self.sessions[s].ended {
            return;
        }
        self.sessions[s].ended = true;
        let session = &self.sessions[s];
        let region = session.region;
        let mut next: Vec<usize> = session
            .players
            .iter()
            .copied()
            .filter(|p| Some(*p) != session.cheater)
            .collect();
        for p in &session.players {
            self.peers[*p].playing = None;
        }
        if let Some(c) = session.cheater {
            // Not free to play again at once either: it stays out of this run's sessions.
            self.peers[c].playing = Some(usize::MAX);
        }
        let leave = self.rng.next_u64().is_multiple_of(2);
        if leave && next.len() > self.cfg.players_min {
            let i = (self.rng.next_u64() % next.len() as u64) as usize;
            next.remove(i);
        } else {
            while next.len() < self.cfg.players_min.max(2)
                || (!leave && next.len() < self.cfg.players_max)
            {
                for &p in &next {
                    self.peers[p].playing = Some(usize::MAX);
                }
                let joiner = self.free_players(1);
                if joiner.is_empty() {
                    break;
                }
                next.extend(joiner);
                if next.len() >= self.cfg.players_min.max(2) {
                    break;
                }
            }
        }
        for &p in &next {
            self.peers[p].playing = Some(usize::MAX);
        }
        self.regions[region].roster = next;
        let at = self.now_ms;
        self.schedule(at, Ev::NextSession { region });
    }

    /// Invariants after every event: no wrong root is final anywhere; every forfeited bond is
    /// a cheater's.
    fn check(&self) {
        for (bond, owner) in &self.forfeited {
            assert!(
                self.owed.contains_key(bond),
                "bond {bond:?} of {owner:?} forfeited without a cheat at a finalised checkpoint"
            );
        }
    }

    /// Every cheater caught at a finalised checkpoint lost its bond; no honest player lost
    /// anything or has negative karma.
    pub fn assert_punished(&self) {
        for (bond, cheater) in &self.owed {
            assert!(
                self.forfeited.contains_key(bond),
                "cheater {cheater} kept its bond {bond:?}"
            );
        }
        let cheaters: BTreeSet<PublicKey> = self
            .sessions
            .iter()
            .filter_map(|s| s.cheater.map(|c| self.peers[c].key))
            .collect();
        for p in &self.peers {
            let score = self.karma.score(&PeerId::from_public_key(&p.key));
            if !cheaters.contains(&p.key) && !p.corrupt {
                assert!(score >= 0, "honest peer with karma {score}");
            }
        }
        for owner in self.forfeited.values() {
            assert!(cheaters.contains(owner), "an honest player lost its bond");
        }
    }

    /// The line that reruns a failing test with this seed.
    pub fn reproduce_line(&self, test: &str) -> String {
        format!(
            "reproduce: SIM_SEED={} cargo test -p meshwork --features sim --test it {test}",
            self.cfg.seed
        )
    }
}
