//! Signed statements: a player's claim, a referee's attestation, a verdict share, the finality
//! certificate, and the evidence against a referee who signed a wrong root.

use serde::{Deserialize, Serialize};

use super::{CheckpointDigest, Panel, RefereeError, quorum};
use crate::proto::contract::StateRoot;
use crate::proto::identity::{Domain, Identity, PublicKey, Signature, verify};
use crate::proto::ledger::{BondTerms, Epoch, OutputId, Verdict};

fn message(checkpoint: &CheckpointDigest, root: &StateRoot) -> [u8; 64] {
    let mut m = [0u8; 64];
    m[..32].copy_from_slice(&checkpoint.0);
    m[32..].copy_from_slice(&root.0);
    m
}

/// A player's answer to a checkpoint: "from its prior root, these inputs give `root`". Signed
/// over `checkpoint ‖ root` ([`Domain::SessionCheckpoint`]); a claim that disagrees with the
/// finalised root is the player's own signed evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The checkpoint.
    pub checkpoint: CheckpointDigest,
    /// The root the player claims.
    pub root: StateRoot,
    /// The player.
    pub player: PublicKey,
    /// Its signature.
    pub signature: Signature,
}

impl Claim {
    /// `player` claims `root` for `checkpoint`.
    pub fn sign(player: &Identity, checkpoint: CheckpointDigest, root: StateRoot) -> Self {
        Self {
            checkpoint,
            root,
            player: player.public_key(),
            signature: player.sign(Domain::SessionCheckpoint, &message(&checkpoint, &root)),
        }
    }

    /// Checks the signature.
    pub fn verify(&self) -> Result<(), RefereeError> {
        verify(
            &self.player,
            Domain::SessionCheckpoint,
            &message(&self.checkpoint, &self.root),
            &self.signature,
        )
        .map_err(|_| RefereeError::BadSignature(self.player))
    }
}

/// A referee's answer: "re-executing `checkpoint` I got `root`". Signed over
/// `checkpoint ‖ root` ([`Domain::RefereeAttestation`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// The checkpoint.
    pub checkpoint: CheckpointDigest,
    /// The root the referee computed.
    pub root: StateRoot,
    /// The referee.
    pub referee: PublicKey,
    /// Its signature.
    pub signature: Signature,
}

impl Attestation {
    /// `referee` attests `root` for `checkpoint`.
    pub fn sign(referee: &Identity, checkpoint: CheckpointDigest, root: StateRoot) -> Self {
        Self {
            checkpoint,
            root,
            referee: referee.public_key(),
            signature: referee.sign(Domain::RefereeAttestation, &message(&checkpoint, &root)),
        }
    }

    /// Checks the signature.
    pub fn verify(&self) -> Result<(), RefereeError> {
        verify(
            &self.referee,
            Domain::RefereeAttestation,
            &message(&self.checkpoint, &self.root),
            &self.signature,
        )
        .map_err(|_| RefereeError::BadSignature(self.referee))
    }
}

/// One panel referee's signature on a ledger [`Verdict`] against `bond` (the accused player's
/// session bond) with `case` = the checkpoint digest. [`Panel::verdict_quorum`] of them make a
/// verdict that forfeits the bond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictShare {
    /// The checkpoint (the verdict's case).
    pub checkpoint: CheckpointDigest,
    /// The accused player.
    pub player: PublicKey,
    /// Its session bond.
    pub bond: OutputId,
    /// The referee.
    pub referee: PublicKey,
    /// `Verdict::sign(referee, bond, checkpoint)`.
    pub signature: Signature,
}

impl VerdictShare {
    /// `referee`'s share of a verdict against `player`'s `bond` in `checkpoint`.
    pub fn sign(
        referee: &Identity,
        checkpoint: CheckpointDigest,
        player: PublicKey,
        bond: OutputId,
    ) -> Self {
        let (key, signature) = Verdict::sign(referee, &bond, &checkpoint.0);
        Self {
            checkpoint,
            player,
            bond,
            referee: key,
            signature,
        }
    }

    /// Checks the signature, through the ledger's own verdict check.
    pub fn verify(&self) -> Result<(), RefereeError> {
        let terms = BondTerms {
            expiry: Epoch(0),
            beneficiaries: Vec::new(),
            referees: vec![self.referee],
            referee_quorum: 1,
            lottery: None,
        };
        Verdict {
            bond: self.bond,
            case: self.checkpoint.0,
            beneficiaries: Vec::new(),
            signatures: vec![(self.referee, self.signature)],
        }
        .verify(&terms)
        .map_err(|_| RefereeError::BadSignature(self.referee))
    }
}

/// Proof that a checkpoint is final: attestations of one `root` by a quorum (> 2/3) of the
/// referees selected for `attempt`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalityCertificate {
    /// The checkpoint.
    pub checkpoint: CheckpointDigest,
    /// Its sequence number in the session (selects the referees).
    pub seq: u64,
    /// The finalised root.
    pub root: StateRoot,
    /// Which referee set finalised it.
    pub attempt: u8,
    /// The quorum's attestations (at most [`super::REFEREES_PER_CHECKPOINT`]).
    pub attestations: Vec<Attestation>,
}

impl FinalityCertificate {
    /// Checks every attestation: same checkpoint and root, distinct referees selected for
    /// `attempt` of `seq` in `panel`, at least a quorum of them.
    pub fn verify(&self, panel: &Panel) -> Result<(), RefereeError> {
        let selected = panel.selected(self.seq, self.attempt)?;
        if self.attestations.len() > selected.len() {
            return Err(RefereeError::Malformed("more attestations than referees"));
        }
        let mut seen = Vec::with_capacity(self.attestations.len());
        for a in &self.attestations {
            if a.checkpoint != self.checkpoint || a.root != self.root {
                return Err(RefereeError::WrongCheckpoint);
            }
            if !selected.contains(&a.referee) {
                return Err(RefereeError::NotSelected(a.referee));
            }
            if seen.contains(&a.referee) {
                return Err(RefereeError::Duplicate(a.referee));
            }
            seen.push(a.referee);
            a.verify()?;
        }
        if seen.len() < quorum(selected.len()) {
            return Err(RefereeError::Malformed("attestations below quorum"));
        }
        Ok(())
    }
}

/// Evidence against a referee's bond: its own signed attestation of a root other than the
/// finalised one, next to the quorum's certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefereeFault {
    /// The wrong attestation.
    pub attestation: Attestation,
    /// The quorum's statement.
    pub certificate: FinalityCertificate,
}

impl RefereeFault {
    /// Checks that the certificate holds and the attestation contradicts it.
    pub fn verify(&self, panel: &Panel) -> Result<(), RefereeError> {
        self.certificate.verify(panel)?;
        if self.attestation.checkpoint != self.certificate.checkpoint {
            return Err(RefereeError::WrongCheckpoint);
        }
        if self.attestation.root == self.certificate.root {
            return Err(RefereeError::Malformed("the attestation agrees"));
        }
        self.attestation.verify()
    }

    /// The referee at fault.
    pub fn referee(&self) -> PublicKey {
        self.attestation.referee
    }
}
