//! The simulator's parameters and figures.

use crate::proto::referee::FinaliserConfig;

/// Parameters of a run.
#[derive(Clone)]
pub struct SessionSimConfig {
    /// The seed everything derives from.
    pub seed: u64,
    /// The token contract's wasm.
    pub token_wasm: Vec<u8>,
    /// The world contract's wasm.
    pub world_wasm: Vec<u8>,
    /// Sessions to run in all.
    pub sessions: usize,
    /// Regions playing at once (each a chain of sessions).
    pub regions: usize,
    /// Peers (every one a bonded referee; players are drawn from those not playing).
    pub peers: usize,
    /// Roster size range.
    pub players_min: usize,
    /// See `players_min`.
    pub players_max: usize,
    /// Checkpoints per session range.
    pub checkpoints_min: u64,
    /// See `checkpoints_min`.
    pub checkpoints_max: u64,
    /// Frames per checkpoint (K), at 60 frames per second.
    pub frames_per_checkpoint: u16,
    /// Sessions with a cheating member, percent.
    pub cheating_percent: u64,
    /// Corrupt referees, percent of peers.
    pub corrupt_percent: u64,
    /// A player's chance to act in a frame, percent.
    pub action_percent: u64,
    /// One-way latency range (uniform per pair).
    pub latency_ms_min: u64,
    /// See `latency_ms_min`.
    pub latency_ms_max: u64,
    /// Time a referee takes to re-execute (added before its answer leaves).
    pub execute_ms: u64,
    /// Finaliser timing.
    pub finaliser: FinaliserConfig,
}

impl std::fmt::Debug for SessionSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SessionSimConfig {{ seed: {}, sessions: {}, regions: {}, peers: {} }}",
            self.seed, self.sessions, self.regions, self.peers
        )
    }
}

impl SessionSimConfig {
    /// The acceptance run's parameters with the given contracts.
    pub fn new(token_wasm: Vec<u8>, world_wasm: Vec<u8>) -> Self {
        Self {
            seed: 1,
            token_wasm,
            world_wasm,
            sessions: 200,
            regions: 40,
            peers: 400,
            players_min: 2,
            players_max: 8,
            checkpoints_min: 1,
            checkpoints_max: 3,
            frames_per_checkpoint: 30,
            cheating_percent: 20,
            corrupt_percent: 10,
            action_percent: 10,
            latency_ms_min: 10,
            latency_ms_max: 60,
            execute_ms: 2,
            finaliser: FinaliserConfig {
                attempt_timeout_ms: 1_000,
            },
        }
    }
}

/// Figures of a run.
#[derive(Clone, Debug, Default)]
pub struct SessionReport {
    /// Sessions started.
    pub sessions: u64,
    /// Sessions with a cheating member.
    pub cheating_sessions: u64,
    /// Checkpoints formed.
    pub checkpoints: u64,
    /// Checkpoints finalised (by every honest player of the session).
    pub finalised: u64,
    /// Checkpoints that stalled (every referee set tried).
    pub stalled: u64,
    /// Referee sets asked beyond the first.
    pub retries: u64,
    /// Distinct cheaters whose bonds were forfeited.
    pub cheats_caught: u64,
    /// Distinct corrupt referees caught attesting a wrong root.
    pub corrupt_referees_caught: u64,
    /// Real executions of the world contract (players' and memo misses).
    pub executions: u64,
    /// Referee re-executions answered from the memo.
    pub memo_hits: u64,
    /// Messages delivered, and their bytes.
    pub messages: u64,
    /// See `messages`.
    pub bytes: u64,
    /// Refusals the cores returned (late or stray messages; each a typed error).
    pub refusals: u64,
    /// Time from a checkpoint's frame to its finality at the last honest player, in mean
    /// network round trips, sorted.
    pub finality_round_trips: Vec<f64>,
}

impl SessionReport {
    /// A quantile of `finality_round_trips`.
    pub fn round_trips_quantile(&self, q: f64) -> f64 {
        let v = &self.finality_round_trips;
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i.min(v.len() - 1)]
    }
}
