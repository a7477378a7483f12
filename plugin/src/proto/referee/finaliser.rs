//! [`Finaliser`]: collects the claims and attestations of one checkpoint and decides finality,
//! cheaters and faulty referees. [`Karma`]: reputation per `PeerId`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{
    Attestation, Checkpoint, CheckpointDigest, Claim, FinalityCertificate, Panel, RefereeError,
    RefereeFault, VerdictShare, quorum,
};
use crate::proto::contract::StateRoot;
use crate::proto::identity::{PeerId, PublicKey};
use crate::proto::ledger::{OutputId, Verdict};

/// Timing of a [`Finaliser`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FinaliserConfig {
    /// How long an attempt's referees have to reach a quorum before the next set is asked.
    pub attempt_timeout_ms: u64,
}

impl Default for FinaliserConfig {
    fn default() -> Self {
        Self {
            attempt_timeout_ms: 2_000,
        }
    }
}

/// What a [`Finaliser`] tells its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinaliserEvent {
    /// Send the checkpoint and its log to these referees for `attempt` (attempt 0 at once,
    /// the next one after each timeout without a quorum).
    RequestAttestations {
        /// The attempt.
        attempt: u8,
        /// Its referee set.
        referees: Vec<PublicKey>,
    },
    /// Referees of an attempt that timed out without attesting.
    Unresponsive(Vec<PublicKey>),
    /// The checkpoint is final.
    Finalised {
        /// The proof.
        certificate: FinalityCertificate,
        /// Players whose claims (received so far) agree.
        agreeing_players: Vec<PublicKey>,
    },
    /// `claim` contradicts the finalised root: send it with the checkpoint and log to the whole
    /// panel ([`super::Referee::judge`]) and feed back their [`VerdictShare`]s.
    RequestJudgement {
        /// The contradicting claim.
        claim: Claim,
        /// The whole panel.
        referees: Vec<PublicKey>,
    },
    /// A player claimed a root other than the finalised one, and the panel's verdict forfeits
    /// its session bond (submit `verdict` as `ledger::Evidence::Verdict`).
    CheatDetected {
        /// The player.
        player: PublicKey,
        /// Its session bond.
        bond: OutputId,
        /// Its own contradicting claim.
        claim: Claim,
        /// Signed by [`Panel::verdict_quorum`] panel referees.
        verdict: Verdict,
    },
    /// A referee attested a root other than the finalised one.
    RefereeFaulted(Box<RefereeFault>),
    /// Every referee set of the panel was tried without a quorum: no finality for this
    /// checkpoint (the session cannot go on from it; its players' bonds are untouched).
    Stalled,
}

/// Decides one checkpoint. Fed claims, attestations and verdict shares (any order, any
/// duplicates, any forgeries: each is checked and refused with a [`RefereeError`]); driven by
/// `handle_timeout`; drained with `poll_event`.
///
/// Rules:
/// - Attestations count only from referees selected for an attempt already started; one per
///   referee. A root attested by a quorum (> 2/3) of *one* attempt's set is final. Honest
///   referees only sign the true root, so a wrong root needs a corrupt quorum of a randomly
///   drawn set (see [`super::REFEREES_PER_CHECKPOINT`]); it is never final otherwise.
/// - No quorum by the attempt's deadline: the next disjoint set is asked, attestations of
///   earlier sets still count toward *their* set's quorum. After the last set: `Stalled`.
/// - After finality, every claim (early or late) that differs asks the panel for a judgement;
///   a verdict of [`Panel::verdict_quorum`] shares on it gives `CheatDetected`. Every
///   attestation that differs gives `RefereeFaulted`.
#[derive(Debug)]
pub struct Finaliser {
    checkpoint: Checkpoint,
    digest: CheckpointDigest,
    panel: Panel,
    config: FinaliserConfig,
    attempt: u8,
    deadline_ms: u64,
    /// Per attempt, its referees.
    selected: Vec<Vec<PublicKey>>,
    claims: BTreeMap<PublicKey, Claim>,
    attestations: BTreeMap<PublicKey, (u8, Attestation)>,
    certificate: Option<FinalityCertificate>,
    stalled: bool,
    judging: BTreeMap<PublicKey, BTreeMap<PublicKey, VerdictShare>>,
    caught: BTreeSet<PublicKey>,
    faulted: BTreeSet<PublicKey>,
    events: VecDeque<FinaliserEvent>,
}

impl Finaliser {
    /// Starts deciding `checkpoint` (the session's agreed checkpoint) with `panel` (drawn by
    /// this peer from its referee pool) at `now_ms`; asks attempt 0 at once.
    pub fn new(
        checkpoint: Checkpoint,
        panel: Panel,
        now_ms: u64,
        config: FinaliserConfig,
    ) -> Result<Self, RefereeError> {
        checkpoint.check_shape()?;
        panel.check(&checkpoint)?;
        let first = panel.selected(checkpoint.seq, 0)?;
        let mut f = Self {
            digest: checkpoint.digest(),
            checkpoint,
            panel,
            config,
            attempt: 0,
            deadline_ms: now_ms.saturating_add(config.attempt_timeout_ms),
            selected: vec![first.clone()],
            claims: BTreeMap::new(),
            attestations: BTreeMap::new(),
            certificate: None,
            stalled: false,
            judging: BTreeMap::new(),
            caught: BTreeSet::new(),
            faulted: BTreeSet::new(),
            events: VecDeque::new(),
        };
        f.events.push_back(FinaliserEvent::RequestAttestations {
            attempt: 0,
            referees: first,
        });
        Ok(f)
    }

    /// The checkpoint being decided.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Its digest.
    pub fn digest(&self) -> CheckpointDigest {
        self.digest
    }

    /// The certificate, once final.
    pub fn finalised(&self) -> Option<&FinalityCertificate> {
        self.certificate.as_ref()
    }

    /// Whether every referee set failed.
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }

    /// The current attempt.
    pub fn attempt(&self) -> u8 {
        self.attempt
    }

    /// A player's signed claim.
    pub fn handle_claim(&mut self, claim: Claim) -> Result<(), RefereeError> {
        if claim.checkpoint != self.digest {
            return Err(RefereeError::WrongCheckpoint);
        }
        if !self.checkpoint.roster.contains(&claim.player) {
            return Err(RefereeError::NotAPlayer(claim.player));
        }
        if self.claims.contains_key(&claim.player) {
            return Err(RefereeError::Duplicate(claim.player));
        }
        claim.verify()?;
        self.claims.insert(claim.player, claim);
        self.judge_claim(&claim);
        Ok(())
    }

    /// A referee's attestation.
    pub fn handle_attestation(&mut self, a: Attestation) -> Result<(), RefereeError> {
        if a.checkpoint != self.digest {
            return Err(RefereeError::WrongCheckpoint);
        }
        if self.checkpoint.roster.contains(&a.referee) {
            return Err(RefereeError::RefereeInSession(a.referee));
        }
        let attempt = self
            .selected
            .iter()
            .position(|s| s.contains(&a.referee))
            .ok_or(RefereeError::NotSelected(a.referee))?;
        if self.attestations.contains_key(&a.referee) {
            return Err(RefereeError::Duplicate(a.referee));
        }
        a.verify()?;
        let attempt = u8::try_from(attempt).expect("≤ attempts");
        self.attestations.insert(a.referee, (attempt, a));
        match &self.certificate {
            Some(cert) => {
                if a.root != cert.root {
                    self.fault(a);
                }
            }
            None => self.try_finalise(attempt, a.root),
        }
        Ok(())
    }

    /// A panel referee's share of a verdict against a player whose claim was sent for
    /// judgement.
    pub fn handle_verdict_share(&mut self, share: VerdictShare) -> Result<(), RefereeError> {
        if share.checkpoint != self.digest {
            return Err(RefereeError::WrongCheckpoint);
        }
        if !self.panel.contains(&share.referee) {
            return Err(RefereeError::NotSelected(share.referee));
        }
        let member = self
            .checkpoint
            .roster
            .member(&share.player)
            .ok_or(RefereeError::NotAPlayer(share.player))?;
        if member.bond != share.bond {
            return Err(RefereeError::Malformed("share names another bond"));
        }
        let Some(shares) = self.judging.get_mut(&share.player) else {
            // Only players whose claims contradict the finalised root are ever judged.
            return Err(RefereeError::ClaimAgrees);
        };
        if shares.contains_key(&share.referee) {
            return Err(RefereeError::Duplicate(share.referee));
        }
        share.verify()?;
        shares.insert(share.referee, share);
        if shares.len() >= self.panel.verdict_quorum() && self.caught.insert(share.player) {
            let verdict = Verdict {
                bond: share.bond,
                case: self.digest.0,
                // Session bonds name their beneficiaries in their terms.
                beneficiaries: Vec::new(),
                signatures: shares.values().map(|s| (s.referee, s.signature)).collect(),
            };
            let claim = *self
                .claims
                .get(&share.player)
                .expect("only players with a claim are judged");
            self.events.push_back(FinaliserEvent::CheatDetected {
                player: share.player,
                bond: share.bond,
                claim,
                verdict,
            });
        }
        Ok(())
    }

    /// When `handle_timeout` next needs calling.
    pub fn poll_timeout(&self) -> Option<u64> {
        (self.certificate.is_none() && !self.stalled).then_some(self.deadline_ms)
    }

    /// Moves to the next referee set if the current one missed its deadline.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if self.certificate.is_some() || self.stalled || now_ms < self.deadline_ms {
            return;
        }
        let silent: Vec<PublicKey> = self.selected[usize::from(self.attempt)]
            .iter()
            .filter(|k| !self.attestations.contains_key(k))
            .copied()
            .collect();
        if !silent.is_empty() {
            self.events.push_back(FinaliserEvent::Unresponsive(silent));
        }
        let next = self.attempt + 1;
        match self.panel.selected(self.checkpoint.seq, next) {
            Ok(referees) => {
                self.attempt = next;
                self.deadline_ms = now_ms.saturating_add(self.config.attempt_timeout_ms);
                self.selected.push(referees.clone());
                self.events.push_back(FinaliserEvent::RequestAttestations {
                    attempt: next,
                    referees,
                });
            }
            Err(_) => {
                self.stalled = true;
                self.events.push_back(FinaliserEvent::Stalled);
            }
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<FinaliserEvent> {
        self.events.pop_front()
    }

    fn try_finalise(&mut self, attempt: u8, root: StateRoot) {
        let set = &self.selected[usize::from(attempt)];
        let agreeing: Vec<Attestation> = self
            .attestations
            .values()
            .filter(|(at, a)| *at == attempt && a.root == root)
            .map(|(_, a)| *a)
            .collect();
        if agreeing.len() < quorum(set.len()) {
            return;
        }
        let certificate = FinalityCertificate {
            checkpoint: self.digest,
            seq: self.checkpoint.seq,
            root,
            attempt,
            attestations: agreeing,
        };
        self.certificate = Some(certificate.clone());
        let agreeing_players = self
            .claims
            .values()
            .filter(|c| c.root == root)
            .map(|c| c.player)
            .collect();
        self.events.push_back(FinaliserEvent::Finalised {
            certificate,
            agreeing_players,
        });
        let wrong: Vec<Attestation> = self
            .attestations
            .values()
            .filter(|(_, a)| a.root != root)
            .map(|(_, a)| *a)
            .collect();
        for a in wrong {
            self.fault(a);
        }
        let claims: Vec<Claim> = self.claims.values().copied().collect();
        for c in claims {
            self.judge_claim(&c);
        }
    }

    fn fault(&mut self, a: Attestation) {
        let Some(certificate) = &self.certificate else {
            return;
        };
        if self.faulted.insert(a.referee) {
            self.events
                .push_back(FinaliserEvent::RefereeFaulted(Box::new(RefereeFault {
                    attestation: a,
                    certificate: certificate.clone(),
                })));
        }
    }

    fn judge_claim(&mut self, claim: &Claim) {
        let Some(cert) = &self.certificate else {
            return;
        };
        if claim.root == cert.root || self.judging.contains_key(&claim.player) {
            return;
        }
        self.judging.insert(claim.player, BTreeMap::new());
        self.events.push_back(FinaliserEvent::RequestJudgement {
            claim: *claim,
            referees: self.panel.keys().to_vec(),
        });
    }
}

/// Karma points of the rule below.
pub mod points {
    /// A referee in a finality certificate; a player whose claim agreed at finality.
    pub const AGREED: i64 = 1;
    /// A referee of a timed-out attempt that did not attest.
    pub const SILENT: i64 = -2;
    /// A player caught cheating; a referee who attested a wrong root.
    pub const CAUGHT: i64 = -100;
}

/// Reputation per `PeerId`, from [`FinaliserEvent`]s: +1 ([`points::AGREED`]) for each referee
/// of a finality certificate and each player whose claim agreed at finality; −2
/// ([`points::SILENT`]) for each referee of an attempt that timed out without its attestation;
/// −100 ([`points::CAUGHT`]) for a cheater (on its verdict) and for a referee who attested a
/// wrong root. One cheat outweighs a hundred good checkpoints. Saturating arithmetic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Karma {
    scores: BTreeMap<PeerId, i64>,
}

impl Karma {
    /// Applies one event's rule.
    pub fn record(&mut self, event: &FinaliserEvent) {
        match event {
            FinaliserEvent::Finalised {
                certificate,
                agreeing_players,
            } => {
                for a in &certificate.attestations {
                    self.add(&a.referee, points::AGREED);
                }
                for p in agreeing_players {
                    self.add(p, points::AGREED);
                }
            }
            FinaliserEvent::Unresponsive(keys) => {
                for k in keys {
                    self.add(k, points::SILENT);
                }
            }
            FinaliserEvent::CheatDetected { player, .. } => self.add(player, points::CAUGHT),
            FinaliserEvent::RefereeFaulted(fault) => self.add(&fault.referee(), points::CAUGHT),
            FinaliserEvent::RequestAttestations { .. }
            | FinaliserEvent::RequestJudgement { .. }
            | FinaliserEvent::Stalled => {}
        }
    }

    fn add(&mut self, key: &PublicKey, points: i64) {
        let score = self.scores.entry(PeerId::from_public_key(key)).or_insert(0);
        *score = score.saturating_add(points);
    }

    /// A peer's score (0 if unknown).
    pub fn score(&self, peer: &PeerId) -> i64 {
        self.scores.get(peer).copied().unwrap_or(0)
    }

    /// Every known score.
    pub fn scores(&self) -> &BTreeMap<PeerId, i64> {
        &self.scores
    }
}
