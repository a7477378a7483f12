//! Sessions over the mesh: the network half of [`crate::proto::referee`]. Sans-IO, like every
//! core: frames in through [`SessionService::push_frame`], messages through
//! [`SessionService::handle_message`], sends out of [`SessionService::poll_send`].
//!
//! One service per peer plays two roles:
//! - **Player** of at most one session ([`SessionService::start`]): it records the confirmed
//!   frames' actions in an [`InputLog`]; every `frames_per_checkpoint` frames it executes them on
//!   its world state, signs its [`Claim`] of the next root, sends it to the other players, and
//!   runs a [`Finaliser`] that asks the drawn referees to attest. The next checkpoint starts at
//!   once from the root it computed (pipelined: play never waits for finality).
//! - **Referee** of other sessions (`referee: true`): it re-executes what it is asked, from the
//!   prior state the player sends along ([`Snapshot`], checked against the checkpoint's prior
//!   root before anything runs), and attests or judges.
//!
//! Decision: a referee gets the prior state *with* the request, not by a separate fetch. It
//! costs bytes per request (the demo's world is a few KiB; bounded by the wire's 1 MiB decode
//! limit) but needs no extra round trip, so a checkpoint is final after one round trip to the
//! referees plus execution. Fetching state as content-addressed blocks by root (cached) is the
//! scalable variant, left for when worlds grow.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::proto::contract::{CodeHash, ContractHost, ContractId, StateEntry, StateRoot};
use crate::proto::identity::{Identity, PeerId, PublicKey};
use crate::proto::ledger::{OutputId, Verdict};
use crate::proto::referee::{
    Checkpoint, CheckpointDigest, Claim, Finaliser, FinaliserConfig, FinaliserEvent, HostExecutor,
    InputLog, InputLogBuilder, Member, Panel, Referee, RefereeError, RefereeMsg, RefereePool,
    Roster, SessionId, execute,
};
use crate::proto::wire;

/// The one-byte service tag in front of session messages in a routed overlay payload.
pub const SERVICE_SESSION: u8 = 2;

/// Contracts in a snapshot.
pub const SNAPSHOT_CONTRACTS_MAX: usize = 16;
/// Checkpoints of our own session kept in flight (finalisers, logs).
const IN_FLIGHT_MAX: usize = 16;
/// Early claims/attestations buffered for checkpoints we have not formed yet.
const EARLY_MAX: usize = 256;

/// A host's state: every contract's code hash, state root and entries, enough to rebuild it
/// at its root. The per-contract roots are claims: each is checked as its contract is imported,
/// and the rebuilt host's root must equal the checkpoint's prior root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `(contract, code, state root, entries)` for every contract of the host.
    pub contracts: Vec<(ContractId, CodeHash, StateRoot, Vec<StateEntry>)>,
}

impl Snapshot {
    /// Everything `host` holds.
    pub fn of(host: &ContractHost) -> Self {
        Self {
            contracts: host
                .contracts()
                .map(|c| {
                    (
                        *c,
                        host.code_of(c).expect("listed contracts have code"),
                        host.contract_root(c).expect("listed contracts have a root"),
                        host.export_state(c).expect("listed contracts have state"),
                    )
                })
                .collect(),
        }
    }

    /// Rebuild on a copy of `template` (which must have the code loaded); refused unless it
    /// reaches exactly `root`.
    pub fn restore(
        &self,
        template: &ContractHost,
        root: StateRoot,
    ) -> Result<ContractHost, SessionError> {
        if self.contracts.len() > SNAPSHOT_CONTRACTS_MAX {
            return Err(SessionError::Malformed("too many contracts in a snapshot"));
        }
        let mut host = template.clone();
        for c in template.contracts().copied().collect::<Vec<_>>() {
            if !self.contracts.iter().any(|(id, _, _, _)| *id == c) {
                return Err(SessionError::Malformed("snapshot lacks a contract"));
            }
        }
        for (id, code, contract_root, entries) in &self.contracts {
            host.import_contract(*id, *code, entries, *contract_root)
                .map_err(|_| SessionError::Malformed("snapshot contract refused"))?;
        }
        if host.root() != root {
            return Err(SessionError::Malformed(
                "snapshot is not at the checkpoint's prior root",
            ));
        }
        Ok(host)
    }
}

/// What peers send each other about sessions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMsg {
    /// The referee protocol message.
    pub msg: RefereeMsg,
    /// The prior state, with requests to re-execute (`Request`, `Judge`).
    pub snapshot: Option<Box<Snapshot>>,
    /// The session's referee pool, with requests to re-execute: a referee draws the panel from
    /// it instead of its own configured pool. Needed once players of *other* sessions attest
    /// ([`RefereePool::with_attesters`]): the attesters differ from session to session (a
    /// session's own players are never among them), so no referee holds every session's pool.
    pub pool: Option<Box<PoolSpec>>,
}

/// Most judges or attesters a [`PoolSpec`] carries.
///
/// Decision: the pool travels with each request, bounded here (8 KiB of keys per list). A
/// deployment whose pool is the ledger's whole bonded set would have referees read it from the
/// ledger instead and carry only the attesters.
pub const POOL_SPEC_KEYS_MAX: usize = 256;

/// A [`RefereePool`] on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    /// The judges.
    pub judges: Vec<PublicKey>,
    /// The attesters.
    pub attesters: Vec<PublicKey>,
    /// Referees drawn per checkpoint attempt.
    pub per_checkpoint: u8,
}

impl PoolSpec {
    /// The wire form of `pool` (`None` above [`POOL_SPEC_KEYS_MAX`] keys in a list).
    pub fn of(pool: &RefereePool) -> Option<Self> {
        (pool.keys().len() <= POOL_SPEC_KEYS_MAX && pool.attesters().len() <= POOL_SPEC_KEYS_MAX)
            .then(|| Self {
                judges: pool.keys().to_vec(),
                attesters: pool.attesters().to_vec(),
                per_checkpoint: u8::try_from(pool.per_checkpoint()).unwrap_or(u8::MAX),
            })
    }

    /// The pool it describes; `Err` for lists above [`POOL_SPEC_KEYS_MAX`] or an out-of-range
    /// `per_checkpoint`.
    pub fn pool(&self) -> Result<RefereePool, SessionError> {
        if self.judges.len() > POOL_SPEC_KEYS_MAX || self.attesters.len() > POOL_SPEC_KEYS_MAX {
            return Err(SessionError::Malformed(
                "a carried referee pool is too large",
            ));
        }
        Ok(RefereePool::new(self.judges.clone())?
            .with_attesters(self.attesters.clone())?
            .with_per_checkpoint(usize::from(self.per_checkpoint))?)
    }
}

/// Errors of this boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// From the referee core.
    #[error(transparent)]
    Referee(#[from] RefereeError),
    /// Structurally invalid.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// Not playing a session.
    #[error("no session")]
    NoSession,
}

/// What the service reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// A checkpoint of our session is final.
    CheckpointFinalised {
        /// The session.
        session: SessionId,
        /// Its sequence number.
        seq: u64,
        /// Its digest (the parent of a session that continues from it).
        digest: CheckpointDigest,
        /// The frame it ends at.
        frame: u64,
        /// The finalised root.
        root: StateRoot,
        /// Whether our own claim agreed (false: our state diverged; we adopt nothing and
        /// report it).
        agreed: bool,
    },
    /// A player of our session claimed a wrong root; the panel's verdict forfeits its bond.
    CheatDetected {
        /// The player.
        player: PublicKey,
        /// Its session bond.
        bond: OutputId,
        /// The ledger evidence.
        verdict: Box<Verdict>,
    },
    /// No referee set reached a quorum for a checkpoint.
    Stalled {
        /// Its sequence number.
        seq: u64,
    },
    /// We attested (or judged) a checkpoint of another session.
    Refereed {
        /// The session.
        session: SessionId,
    },
}

/// Parameters.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The world contract.
    pub world: ContractId,
    /// Its agreed code (code consensus: players and referees refuse any other).
    pub code: CodeHash,
    /// Bonded referees known from the ledger.
    pub pool: RefereePool,
    /// Frames per checkpoint (K).
    pub frames_per_checkpoint: u16,
    /// Finaliser timing.
    pub finaliser: FinaliserConfig,
    /// Whether we referee other sessions.
    pub referee: bool,
    /// Test double: claim a tampered root (a cheating player).
    #[doc(hidden)]
    pub cheat: bool,
}

struct InFlight {
    checkpoint: Checkpoint,
    log: InputLog,
    prior: Snapshot,
    finaliser: Finaliser,
    my_root: StateRoot,
}

struct Active {
    session: SessionId,
    roster: Roster,
    panel: Panel,
    /// The pool `panel` was drawn from, as requests carry it.
    pool: Option<Box<PoolSpec>>,
    seq: u64,
    builder: InputLogBuilder,
    /// Our world state after the last formed checkpoint (what the next one starts from).
    host: ContractHost,
    in_flight: BTreeMap<u64, InFlight>,
}

/// Counters for diagnostics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Checkpoints of ours finalised.
    pub finalised: u64,
    /// The last one's sequence number.
    pub last_finalised: Option<u64>,
    /// Attestations and judgements we made for other sessions.
    pub refereed: u64,
    /// Messages dropped as invalid.
    pub dropped: u64,
}

/// One peer's session service.
pub struct SessionService {
    identity: Identity,
    cfg: SessionConfig,
    template: ContractHost,
    active: Option<Active>,
    referee: Referee,
    early: VecDeque<RefereeMsg>,
    out: VecDeque<(PeerId, Vec<u8>)>,
    events: VecDeque<SessionEvent>,
    stats: SessionStats,
}

impl std::fmt::Debug for SessionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("me", &self.identity.peer_id())
            .finish_non_exhaustive()
    }
}

fn tagged(msg: &SessionMsg) -> Vec<u8> {
    let body = wire::encode_body(msg).expect("session messages are bounded and encode");
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(SERVICE_SESSION);
    out.extend_from_slice(&body);
    out
}

impl SessionService {
    /// A service whose world code is loaded in `template` (state is irrelevant: referees
    /// restore snapshots on it; players pass their start state to [`SessionService::start`]).
    pub fn new(identity: Identity, cfg: SessionConfig, template: ContractHost) -> Self {
        let referee = Referee::new(identity.clone(), cfg.code);
        Self {
            identity,
            cfg,
            template,
            active: None,
            referee,
            early: VecDeque::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: SessionStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// The configuration (the referee pool changes with the ledger's bonds).
    pub fn config_mut(&mut self) -> &mut SessionConfig {
        &mut self.cfg
    }

    /// The session we play, if any.
    pub fn session(&self) -> Option<SessionId> {
        self.active.as_ref().map(|a| a.session)
    }

    /// Start playing with `members` from `host`'s state (the last finalised root), continuing
    /// after checkpoint `parent` (default for a new world). Every player must pass the same
    /// roster, state and parent: they derive the same session id. A roster change is a new
    /// session started the same way.
    pub fn start(
        &mut self,
        members: Vec<Member>,
        host: ContractHost,
        parent: CheckpointDigest,
        first_frame: u64,
    ) -> Result<SessionId, SessionError> {
        let roster = Roster::new(members)?;
        if !roster.contains(&self.identity.public_key()) {
            return Err(SessionError::Malformed("we are not in the roster"));
        }
        if host.code_of(&self.cfg.world).ok() != Some(self.cfg.code) {
            return Err(RefereeError::UnknownWorld.into());
        }
        let session = SessionId::derive(
            &parent,
            &self.cfg.world,
            &self.cfg.code,
            &host.root(),
            &roster,
        );
        let panel = Panel::draw(&self.cfg.pool, &session, &roster)?;
        let carried = PoolSpec::of(&self.cfg.pool).ok_or(SessionError::Malformed(
            "the referee pool is too large to carry with requests (POOL_SPEC_KEYS_MAX)",
        ))?;
        let players = u8::try_from(roster.len()).expect("ROSTER_MAX fits a byte");
        self.active = Some(Active {
            session,
            panel,
            pool: Some(Box::new(carried)),
            seq: 0,
            builder: InputLogBuilder::new(first_frame, players),
            roster,
            host,
            in_flight: BTreeMap::new(),
        });
        Ok(session)
    }

    /// Stop playing (leaving, or before a new roster's session).
    pub fn stop(&mut self) {
        self.active = None;
    }

    /// One confirmed frame: `actions[p]` are roster player `p`'s actions (roster order =
    /// sorted keys, [`Roster::members`]). Forms a checkpoint every `frames_per_checkpoint`.
    pub fn push_frame(
        &mut self,
        now_ms: u64,
        actions: &[Vec<Vec<u8>>],
    ) -> Result<(), SessionError> {
        let k = self.cfg.frames_per_checkpoint;
        let a = self.active.as_mut().ok_or(SessionError::NoSession)?;
        a.builder.push_frame(actions)?;
        if a.builder.frames() >= k {
            self.checkpoint(now_ms)?;
        }
        Ok(())
    }

    fn checkpoint(&mut self, now_ms: u64) -> Result<(), SessionError> {
        let cfg = &self.cfg;
        let a = self.active.as_mut().ok_or(SessionError::NoSession)?;
        let players = u8::try_from(a.roster.len()).expect("ROSTER_MAX fits a byte");
        let prior_root = a.host.root();
        let log_builder = std::mem::replace(&mut a.builder, InputLogBuilder::new(0, players));
        let log = log_builder.finish()?;
        a.builder = InputLogBuilder::new(log.end_frame(), players);
        let checkpoint = Checkpoint {
            session: a.session,
            seq: a.seq,
            frame: log.end_frame(),
            world: cfg.world,
            code_hash: cfg.code,
            prior_root,
            input_log_hash: log.hash(),
            roster: a.roster.clone(),
        };
        a.seq += 1;
        let next = execute(&a.host, &checkpoint, &log)?;
        let prior = Snapshot::of(&a.host);
        let mut my_root = next.root();
        if cfg.cheat {
            my_root.0[0] ^= 0xFF;
        }
        a.host = next;
        let claim = Claim::sign(&self.identity, checkpoint.digest(), my_root);
        let me = self.identity.public_key();
        for m in a.roster.members() {
            if m.key != me {
                self.out.push_back((
                    PeerId::from_public_key(&m.key),
                    tagged(&SessionMsg {
                        msg: RefereeMsg::Claim(claim),
                        snapshot: None,
                        pool: None,
                    }),
                ));
            }
        }
        let mut finaliser =
            Finaliser::new(checkpoint.clone(), a.panel.clone(), now_ms, cfg.finaliser)?;
        finaliser.handle_claim(claim)?;
        if a.in_flight.len() >= IN_FLIGHT_MAX {
            a.in_flight.pop_first();
        }
        a.in_flight.insert(
            checkpoint.seq,
            InFlight {
                checkpoint,
                log,
                prior,
                finaliser,
                my_root,
            },
        );
        // Claims and attestations that arrived before we formed this checkpoint.
        let early: Vec<RefereeMsg> = self.early.drain(..).collect();
        for m in early {
            let _ = self.on_player_msg(m);
        }
        self.pump();
        Ok(())
    }

    /// Route finaliser events to the network and the application.
    fn pump(&mut self) {
        let Some(a) = self.active.as_mut() else {
            return;
        };
        let mut finished = Vec::new();
        let carried = a.pool.clone();
        for (seq, f) in &mut a.in_flight {
            while let Some(ev) = f.finaliser.poll_event() {
                match ev {
                    FinaliserEvent::RequestAttestations { attempt, referees } => {
                        let msg = tagged(&SessionMsg {
                            msg: RefereeMsg::Request {
                                checkpoint: f.checkpoint.clone(),
                                attempt,
                                log: f.log.clone(),
                            },
                            snapshot: Some(Box::new(f.prior.clone())),
                            pool: carried.clone(),
                        });
                        for r in referees {
                            self.out
                                .push_back((PeerId::from_public_key(&r), msg.clone()));
                        }
                    }
                    FinaliserEvent::RequestJudgement { claim, referees } => {
                        let msg = tagged(&SessionMsg {
                            msg: RefereeMsg::Judge {
                                checkpoint: f.checkpoint.clone(),
                                log: f.log.clone(),
                                claim,
                            },
                            snapshot: Some(Box::new(f.prior.clone())),
                            pool: carried.clone(),
                        });
                        for r in referees {
                            self.out
                                .push_back((PeerId::from_public_key(&r), msg.clone()));
                        }
                    }
                    FinaliserEvent::Finalised { certificate, .. } => {
                        self.stats.finalised += 1;
                        self.stats.last_finalised = Some(*seq);
                        self.events.push_back(SessionEvent::CheckpointFinalised {
                            session: a.session,
                            seq: *seq,
                            digest: f.checkpoint.digest(),
                            frame: f.checkpoint.frame,
                            root: certificate.root,
                            agreed: certificate.root == f.my_root,
                        });
                    }
                    FinaliserEvent::CheatDetected {
                        player,
                        bond,
                        verdict,
                        ..
                    } => {
                        self.events.push_back(SessionEvent::CheatDetected {
                            player,
                            bond,
                            verdict: Box::new(verdict),
                        });
                    }
                    FinaliserEvent::Stalled => {
                        self.events.push_back(SessionEvent::Stalled { seq: *seq });
                        finished.push(*seq);
                    }
                    FinaliserEvent::Unresponsive(_) | FinaliserEvent::RefereeFaulted(_) => {}
                }
            }
        }
        for s in finished {
            a.in_flight.remove(&s);
        }
    }

    fn on_player_msg(&mut self, msg: RefereeMsg) -> Result<(), SessionError> {
        let Some(a) = self.active.as_mut() else {
            return Err(SessionError::NoSession);
        };
        let digest = match &msg {
            RefereeMsg::Claim(c) => c.checkpoint,
            RefereeMsg::Attestation(at) => at.checkpoint,
            RefereeMsg::Share(s) => s.checkpoint,
            _ => return Ok(()),
        };
        let Some(f) = a
            .in_flight
            .values_mut()
            .find(|f| f.finaliser.digest() == digest)
        else {
            if self.early.len() < EARLY_MAX {
                self.early.push_back(msg);
            }
            return Ok(());
        };
        match msg {
            RefereeMsg::Claim(c) => f.finaliser.handle_claim(c)?,
            RefereeMsg::Attestation(at) => f.finaliser.handle_attestation(at)?,
            RefereeMsg::Share(s) => f.finaliser.handle_verdict_share(s)?,
            _ => {}
        }
        Ok(())
    }

    fn on_referee_msg(
        &mut self,
        from: PeerId,
        msg: RefereeMsg,
        snapshot: Option<Box<Snapshot>>,
        pool: Option<Box<PoolSpec>>,
    ) -> Result<(), SessionError> {
        if !self.cfg.referee {
            return Ok(());
        }
        let (checkpoint, log) = match &msg {
            RefereeMsg::Request {
                checkpoint, log, ..
            }
            | RefereeMsg::Judge {
                checkpoint, log, ..
            } => (checkpoint.clone(), log.clone()),
            _ => return Ok(()),
        };
        // Code consensus first: nothing runs for another code.
        if checkpoint.code_hash != self.cfg.code {
            return Err(RefereeError::CodeHashMismatch {
                expected: self.cfg.code,
                actual: checkpoint.code_hash,
            }
            .into());
        }
        let snapshot =
            snapshot.ok_or(SessionError::Malformed("a request without its prior state"))?;
        let host = snapshot.restore(&self.template, checkpoint.prior_root)?;
        let carried = self.carried_pool(&msg, pool.as_deref())?;
        let panel = Panel::draw(
            carried.as_ref().unwrap_or(&self.cfg.pool),
            &checkpoint.session,
            &checkpoint.roster,
        )?;
        let mut exec = HostExecutor { host: &host };
        match msg {
            RefereeMsg::Request { attempt, .. } => {
                let at = self
                    .referee
                    .attest(&mut exec, &panel, &checkpoint, attempt, &log)?;
                let out = tagged(&SessionMsg {
                    msg: RefereeMsg::Attestation(at),
                    snapshot: None,
                    pool: None,
                });
                for m in checkpoint.roster.members() {
                    self.out
                        .push_back((PeerId::from_public_key(&m.key), out.clone()));
                }
            }
            RefereeMsg::Judge { claim, .. } => {
                let share = self
                    .referee
                    .judge(&mut exec, &panel, &checkpoint, &log, &claim)?;
                self.out.push_back((
                    from,
                    tagged(&SessionMsg {
                        msg: RefereeMsg::Share(share),
                        snapshot: None,
                        pool: None,
                    }),
                ));
            }
            _ => {}
        }
        self.stats.refereed += 1;
        self.events.push_back(SessionEvent::Refereed {
            session: checkpoint.session,
        });
        Ok(())
    }

    /// The pool a request carries, as far as we take it: its attesters always (they differ per
    /// session), its judges and panel size only if we have none of our own (a player's client
    /// outside any session). A referee with judges of its own (from the ledger, or its
    /// deployment) refuses a request naming other judges, so a requester cannot make it judge
    /// a session it does not judge; and only a judge of our own pool judges.
    fn carried_pool(
        &self,
        msg: &RefereeMsg,
        spec: Option<&PoolSpec>,
    ) -> Result<Option<RefereePool>, SessionError> {
        let own = &self.cfg.pool;
        if matches!(msg, RefereeMsg::Judge { .. }) && own.keys().is_empty() {
            return Err(SessionError::Malformed("we judge no session"));
        }
        let Some(spec) = spec else {
            return Ok(None);
        };
        let carried = spec.pool()?;
        if own.keys().is_empty() {
            return Ok(Some(carried));
        }
        if carried.keys() != own.keys() || carried.per_checkpoint() != own.per_checkpoint() {
            return Err(SessionError::Malformed(
                "the request names judges that are not ours",
            ));
        }
        Ok(Some(carried))
    }

    /// A routed message with our service tag arrived from (claimed) `origin`.
    pub fn handle_message(
        &mut self,
        _now_ms: u64,
        origin: PeerId,
        bytes: &[u8],
    ) -> Result<(), SessionError> {
        let r = (|| {
            let m: SessionMsg =
                wire::decode(bytes).map_err(|_| SessionError::Malformed("undecodable"))?;
            // Re-check the referee message's own bounds (roster, log) as its decoder does.
            let body =
                wire::encode_body(&m.msg).map_err(|_| SessionError::Malformed("re-encode"))?;
            let msg = RefereeMsg::decode(&body)?;
            match msg {
                RefereeMsg::Request { .. } | RefereeMsg::Judge { .. } => {
                    self.on_referee_msg(origin, msg, m.snapshot, m.pool)
                }
                RefereeMsg::Finalised(_) => Ok(()),
                other => self.on_player_msg(other),
            }
        })();
        if r.is_err() {
            self.stats.dropped += 1;
        }
        self.pump();
        r
    }

    /// When [`SessionService::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> u64 {
        self.active
            .as_ref()
            .and_then(|a| {
                a.in_flight
                    .values()
                    .filter_map(|f| f.finaliser.poll_timeout())
                    .min()
            })
            .unwrap_or(u64::MAX)
    }

    /// Drive finaliser timeouts (next referee sets).
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if let Some(a) = self.active.as_mut() {
            for f in a.in_flight.values_mut() {
                if f.finaliser.poll_timeout().is_some_and(|t| t <= now_ms) {
                    f.finaliser.handle_timeout(now_ms);
                }
            }
        }
        self.pump();
    }

    /// The next `(peer, payload)` to route exactly.
    pub fn poll_send(&mut self) -> Option<(PeerId, Vec<u8>)> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }
}
