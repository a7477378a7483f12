//! Collateral: bond terms, forfeit evidence (equivocation proofs and referee verdicts) and the
//! fixed outputs of a forfeit.
//!
//! A bond is an [`Output`](super::Output) with [`BondTerms`]. Its owner can spend it only in an
//! epoch after `expiry` (released). Until it is spent, anyone holding evidence against the owner
//! can submit a forfeit order ([`SignedOrder::forfeit`](super::SignedOrder::forfeit)): the amount
//! is split equally among the beneficiaries and the remainder burned. Release and forfeit race
//! like any two orders on one input: whichever the bond's validators lock first wins, so evidence
//! must arrive before expiry to be sure to count.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::cert::EquivocationProof;
use super::{Amount, Epoch, LedgerError, Output, OutputId};
use crate::proto::identity::{Domain, Identity, PublicKey, Signature, verify};

/// Most beneficiaries of one bond.
pub const BENEFICIARIES_MAX: usize = 16;
/// Most referees of one bond.
pub const REFEREES_MAX: usize = 64;

/// The conditions of a bond output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondTerms {
    /// Last epoch in which the bond is locked; the owner may spend it from `expiry + 1` on.
    pub expiry: Epoch,
    /// Who receives a forfeited bond, in equal shares (remainder burned). Empty = all burned.
    pub beneficiaries: Vec<PublicKey>,
    /// Referees whose verdict can forfeit the bond.
    pub referees: Vec<PublicKey>,
    /// Distinct referee signatures a verdict needs (0 = verdicts cannot forfeit this bond).
    pub referee_quorum: u16,
}

impl BondTerms {
    /// A bond locked through `expiry` that only an equivocation proof can forfeit, burned
    /// whole: no beneficiaries, no referees.
    pub fn until(expiry: Epoch) -> Self {
        Self {
            expiry,
            beneficiaries: Vec::new(),
            referees: Vec::new(),
            referee_quorum: 0,
        }
    }

    /// Bounds and consistency.
    pub fn check_shape(&self) -> Result<(), LedgerError> {
        if self.beneficiaries.len() > BENEFICIARIES_MAX {
            return Err(LedgerError::Malformed("too many beneficiaries"));
        }
        if self.referees.len() > REFEREES_MAX {
            return Err(LedgerError::Malformed("too many referees"));
        }
        if usize::from(self.referee_quorum) > self.referees.len() {
            return Err(LedgerError::Malformed("referee quorum above referee count"));
        }
        let distinct: BTreeSet<_> = self.referees.iter().collect();
        if distinct.len() != self.referees.len() {
            return Err(LedgerError::Malformed("duplicate referee"));
        }
        Ok(())
    }
}

/// The outputs of a forfeited bond of `amount` under `terms`, and the burned remainder.
pub fn forfeit_outputs(terms: &BondTerms, amount: Amount) -> (Vec<Output>, Amount) {
    let n = u64::try_from(terms.beneficiaries.len()).expect("≤ BENEFICIARIES_MAX");
    if n == 0 || amount.0 < n {
        return (Vec::new(), amount);
    }
    let share = amount.0 / n;
    let outputs = terms
        .beneficiaries
        .iter()
        .map(|b| Output::plain(*b, Amount(share)))
        .collect();
    (outputs, Amount(amount.0 - share * n))
}

/// A referees' verdict that the owner of `bond` misbehaved in `case` (e.g. a session checkpoint
/// digest). Signed by at least the bond's `referee_quorum` of its listed referees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The bond to forfeit.
    pub bond: OutputId,
    /// What the verdict is about (opaque to the ledger).
    pub case: [u8; 32],
    /// Referee signatures over `bond ‖ case` ([`Domain::LedgerVerdict`]).
    pub signatures: Vec<(PublicKey, Signature)>,
}

impl Verdict {
    fn message(bond: &OutputId, case: &[u8; 32]) -> [u8; 64] {
        let mut m = [0u8; 64];
        m[..32].copy_from_slice(&bond.0);
        m[32..].copy_from_slice(case);
        m
    }

    /// One referee's signature on a verdict against `bond`.
    pub fn sign(referee: &Identity, bond: &OutputId, case: &[u8; 32]) -> (PublicKey, Signature) {
        (
            referee.public_key(),
            referee.sign(Domain::LedgerVerdict, &Self::message(bond, case)),
        )
    }

    /// Whether enough distinct listed referees signed.
    pub fn verify(&self, terms: &BondTerms) -> Result<(), LedgerError> {
        if terms.referee_quorum == 0 {
            return Err(LedgerError::BadEvidence("bond accepts no verdicts"));
        }
        if self.signatures.len() > REFEREES_MAX {
            return Err(LedgerError::Malformed("too many verdict signatures"));
        }
        let listed: BTreeSet<_> = terms.referees.iter().collect();
        let mut signers = BTreeSet::new();
        let message = Self::message(&self.bond, &self.case);
        for (referee, sig) in &self.signatures {
            if !listed.contains(referee) || !signers.insert(*referee) {
                return Err(LedgerError::BadEvidence("unlisted or duplicate referee"));
            }
            verify(referee, Domain::LedgerVerdict, &message, sig)
                .map_err(|_| LedgerError::BadSignature)?;
        }
        if signers.len() < usize::from(terms.referee_quorum) {
            return Err(LedgerError::BadEvidence("too few referee signatures"));
        }
        Ok(())
    }
}

/// Why a bond is forfeited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Evidence {
    /// The bond's owner signed two conflicting votes.
    Equivocation(Box<EquivocationProof>),
    /// A referee quorum ruled against the bond's owner.
    Verdict(Verdict),
}

impl Evidence {
    /// Check that this evidence forfeits `bond` (id and recorded content).
    pub fn verify(&self, bond: &OutputId, output: &Output) -> Result<(), LedgerError> {
        let terms = output
            .bond
            .as_ref()
            .ok_or(LedgerError::BadEvidence("input is not a bond"))?;
        match self {
            Evidence::Equivocation(proof) => {
                if proof.validator != output.owner {
                    return Err(LedgerError::BadEvidence("proof is against another key"));
                }
                proof.verify()
            }
            Evidence::Verdict(v) => {
                if v.bond != *bond {
                    return Err(LedgerError::BadEvidence("verdict names another bond"));
                }
                v.verify(terms)
            }
        }
    }
}
