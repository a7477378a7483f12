//! Session checkpoints and cross-session referees, sans-IO.
//!
//! A **session** is a roster of players running one world contract from one start root
//! ([`SessionId::derive`]; a roster change starts a new session from the last finalised root).
//! Every K confirmed frames it forms a [`Checkpoint`]: the prior root, the hash of the
//! [`InputLog`] of those frames, the code hash (code consensus) and the roster with each
//! player's session bond. Each player signs its [`Claim`] of the next root. Referees are drawn
//! from bonded peers *not* in the session ([`Panel`], [`Panel::selected`]); each
//! [`Referee`] checks the code hash, re-executes and signs an [`Attestation`]. A [`Finaliser`]
//! (any player or observer) finalises the root a quorum (> 2/3) of one referee set attests,
//! then turns every contradicting claim into a ledger [`Verdict`](crate::proto::ledger::Verdict)
//! against the player's session bond (signed by > 2/3 of the panel) and every contradicting
//! attestation into a [`RefereeFault`]. [`Karma`] keeps reputation per `PeerId`.
//!
//! ```
//! use meshwork::proto::contract::{CodeHash, ContractId, StateRoot};
//! use meshwork::proto::identity::Identity;
//! use meshwork::proto::ledger::OutputId;
//! use meshwork::proto::referee::*;
//!
//! // Two players, 40 bonded referees elsewhere in the mesh.
//! let players: Vec<Identity> = (1..=2u8).map(|i| Identity::from_seed([i; 32])).collect();
//! let referees: Vec<Identity> = (10..50u8).map(|i| Identity::from_seed([i; 32])).collect();
//! let roster = Roster::new(players.iter().map(|p| Member {
//!     key: p.public_key(), bond: OutputId([p.public_key().0[0]; 32]),
//! }).collect()).unwrap();
//! let (world, code, prior) = (ContractId([7; 32]), CodeHash([8; 32]), StateRoot([9; 32]));
//! let session = SessionId::derive(&CheckpointDigest::default(), &world, &code, &prior, &roster);
//! let pool = RefereePool::new(referees.iter().map(|r| r.public_key()).collect()).unwrap();
//! let panel = Panel::draw(&pool, &session, &roster).unwrap();
//!
//! // 30 frames in which nobody acted.
//! let mut log = InputLogBuilder::new(0, 2);
//! for _ in 0..30 { log.push_frame(&[vec![], vec![]]).unwrap(); }
//! let log = log.finish().unwrap();
//! let checkpoint = Checkpoint {
//!     session, seq: 0, frame: 30, world, code_hash: code, prior_root: prior,
//!     input_log_hash: log.hash(), roster,
//! };
//! let mut finaliser = Finaliser::new(checkpoint.clone(), panel.clone(), 0, FinaliserConfig::default()).unwrap();
//! let Some(FinaliserEvent::RequestAttestations { referees: asked, .. }) = finaliser.poll_event() else { panic!() };
//!
//! // Each asked referee re-executes (here: a stand-in executor) and attests.
//! struct Same(StateRoot);
//! impl Executor for Same {
//!     fn execute(&mut self, _: &Checkpoint, _: &InputLog) -> Result<StateRoot, RefereeError> { Ok(self.0) }
//! }
//! let next = StateRoot([1; 32]);
//! for r in referees.iter().filter(|r| asked.contains(&r.public_key())) {
//!     let mut referee = Referee::new(r.clone(), code);
//!     let a = referee.attest(&mut Same(next), &panel, &checkpoint, 0, &log).unwrap();
//!     finaliser.handle_attestation(a).unwrap();
//! }
//! assert_eq!(finaliser.finalised().unwrap().root, next);
//! ```
//!
//! # Decisions
//!
//! - **The answer is not in the checkpoint.** [`Checkpoint`] is the question (its digest is the
//!   verdict's `case`); players' roots are their [`Claim`]s, so a cheater's claim and the honest
//!   ones name the same checkpoint and can be compared.
//! - **Who judges.** The pool is the bonded referees every peer knows from the ledger at the
//!   session's start. A session's panel is the [`PANEL_MAX`] (64) pool members outside the
//!   roster ranked first by a hash of the session id; players' session bonds list the panel as
//!   their referees with a verdict quorum of > 2/3 of the panel ([`Panel::bond_terms`]; the
//!   ledger's bond terms hold at most 64 referees). Each checkpoint attempt asks
//!   N = [`REFEREES_PER_CHECKPOINT`] (16) of them, ranked by
//!   `sha256(sha256("meshwork/referee-seed/v1" ‖ session ‖ seq) ‖ key)`; attempts take
//!   disjoint rank slices, so a retry never asks the same referees again.
//! - **Two quorums.** Finality: > 2/3 of one attempt's 16. Forfeiting a bond: > 2/3 of the
//!   64-panel (43), so a corrupt majority of one small set can stall a checkpoint or finalise
//!   (with probability ~10⁻⁸ at 10% corrupt) but never take an honest player's bond.
//! - **No quorum** (silence, disagreement): after `attempt_timeout_ms` the next set is asked;
//!   earlier sets' attestations still count toward their own quorum; after the last set the
//!   checkpoint is `Stalled` — never finalised wrongly, and nobody is punished for it but
//!   silent referees' karma.
//! - **Referee evidence** is a [`RefereeFault`]: its own wrong attestation next to the
//!   quorum's [`FinalityCertificate`]. The ledger has no evidence kind for it yet (its
//!   `Evidence` holds equivocation proofs and verdicts); a referee bond listing the same
//!   panel could be forfeited by a verdict on the fault's digest.
//!
//! # Bounds
//!
//! Roster ≤ [`ROSTER_MAX`]; a log ≤ [`LOG_BYTES_MAX`] bytes, ≤ [`FRAMES_PER_CHECKPOINT_MAX`]
//! frames, ≤ [`ACTIONS_PER_FRAME_MAX`] actions of ≤ [`ACTION_BYTES_MAX`] bytes per player
//! and frame; a finaliser keeps ≤ one claim per player, one attestation per selected referee,
//! one share per panel referee per judged player; a referee remembers ≤ [`REMEMBERED_MAX`]
//! roots. Everything a peer sends is checked before use ([`RefereeError`]; fuzz target
//! `referee`).

mod checkpoint;
mod error;
mod finaliser;
mod judge;
mod msg;
mod select;
mod statement;

pub use checkpoint::{
    ACTION_BYTES_MAX, ACTIONS_PER_FRAME_MAX, Checkpoint, CheckpointDigest,
    FRAMES_PER_CHECKPOINT_MAX, InputLog, InputLogBuilder, LOG_BYTES_MAX, LogHash, Member,
    ROSTER_MAX, Roster, SessionId, TICK_FUEL, TickInput, WORLD_TICK_OP, session_sequencer,
};
pub use error::RefereeError;
pub use finaliser::{Finaliser, FinaliserConfig, FinaliserEvent, Karma, points};
pub use judge::{Executor, HostExecutor, REMEMBERED_MAX, Referee, check_log, execute};
pub use msg::RefereeMsg;
pub use select::{PANEL_MAX, POOL_MAX, Panel, REFEREES_PER_CHECKPOINT, RefereePool, quorum};
pub use statement::{Attestation, Claim, FinalityCertificate, RefereeFault, VerdictShare};
