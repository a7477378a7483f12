//! Collateral: bond terms, forfeit evidence (equivocation proofs and referee verdicts) and the
//! fixed outputs of a forfeit.
//!
//! A bond is an [`Output`](super::Output) with [`BondTerms`]. Its owner can spend it only in an
//! epoch after `expiry` (released). Until it is spent, anyone holding evidence against the owner
//! can submit a forfeit order ([`SignedOrder::forfeit`](super::SignedOrder::forfeit)): the amount
//! is split equally among the beneficiaries and the remainder burned. Release and forfeit race
//! like any two orders on one input: whichever the bond's validators lock first wins, so evidence
//! must arrive before expiry to be sure to count.
//!
//! # Verdict-named beneficiaries
//!
//! A bond whose terms name no beneficiaries lets a verdict name them: a fetch responder's bond is
//! posted before anyone knows which requester and auditors it will owe, so the referees' verdict
//! says who they are ([`Verdict::beneficiaries`], covered by the referee signatures). If the terms
//! name beneficiaries, the terms decide and a verdict must name none (a verdict naming any is
//! refused, even the same ones: one rule, no comparison of lists). Equivocation proofs pay the
//! terms' beneficiaries (none: all burned), as before.
//!
//! An escrow (lottery tickets, [`super::ticket`]) is a bond with
//! [`lottery`](BondTerms::lottery) terms.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::cert::EquivocationProof;
use super::ticket::LotteryTerms;
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
    /// `Some` for an escrow that pays lottery tickets (see [`super::ticket`]).
    pub lottery: Option<LotteryTerms>,
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
            lottery: None,
        }
    }

    /// An escrow locked through `expiry` paying tickets of lineage `root`: no beneficiaries, no
    /// referees, nothing redeemed yet.
    pub fn escrow(expiry: Epoch, root: [u8; 32]) -> Self {
        Self {
            lottery: Some(LotteryTerms::new(root)),
            ..Self::until(expiry)
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
        if let Some(lottery) = &self.lottery {
            lottery.check_shape()?;
        }
        Ok(())
    }
}

/// The outputs of a forfeited bond of `amount` under `terms` (to the terms' beneficiaries), and
/// the burned remainder. See [`Evidence::forfeit_outputs`] for the evidence-aware rule.
pub fn forfeit_outputs(terms: &BondTerms, amount: Amount) -> (Vec<Output>, Amount) {
    split(&terms.beneficiaries, amount)
}

/// `amount` in equal shares to `beneficiaries` (at most `BENEFICIARIES_MAX`), remainder burned;
/// all burned if there are none or fewer units than beneficiaries.
fn split(beneficiaries: &[PublicKey], amount: Amount) -> (Vec<Output>, Amount) {
    let n = u64::try_from(beneficiaries.len()).expect("≤ BENEFICIARIES_MAX");
    if n == 0 || amount.0 < n {
        return (Vec::new(), amount);
    }
    let share = amount.0 / n;
    let outputs = beneficiaries
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
    /// Who receives the bond in equal shares (remainder burned), for a bond whose terms name no
    /// beneficiaries (at most `BENEFICIARIES_MAX`, distinct); must be empty otherwise.
    pub beneficiaries: Vec<PublicKey>,
    /// Referee signatures over `bond ‖ case ‖ beneficiaries` ([`Domain::LedgerVerdict`]).
    pub signatures: Vec<(PublicKey, Signature)>,
}

impl Verdict {
    /// `bond 32 ‖ case 32 ‖ beneficiaries 32 each`. Keys are fixed-size, so the length fixes the
    /// count; with no beneficiaries the message is the 64 bytes signed before they existed.
    fn message(bond: &OutputId, case: &[u8; 32], beneficiaries: &[PublicKey]) -> Vec<u8> {
        let mut m = Vec::with_capacity(64 + 32 * beneficiaries.len());
        m.extend_from_slice(&bond.0);
        m.extend_from_slice(case);
        for b in beneficiaries {
            m.extend_from_slice(&b.0);
        }
        m
    }

    /// One referee's signature on a verdict against `bond` naming no beneficiaries.
    pub fn sign(referee: &Identity, bond: &OutputId, case: &[u8; 32]) -> (PublicKey, Signature) {
        Self::sign_naming(referee, bond, case, &[])
    }

    /// One referee's signature on a verdict against `bond` that pays `beneficiaries`.
    pub fn sign_naming(
        referee: &Identity,
        bond: &OutputId,
        case: &[u8; 32],
        beneficiaries: &[PublicKey],
    ) -> (PublicKey, Signature) {
        (
            referee.public_key(),
            referee.sign(
                Domain::LedgerVerdict,
                &Self::message(bond, case, beneficiaries),
            ),
        )
    }

    /// Whether enough distinct listed referees signed, and the beneficiaries are allowed: at most
    /// `BENEFICIARIES_MAX`, distinct, and none if the terms name their own.
    pub fn verify(&self, terms: &BondTerms) -> Result<(), LedgerError> {
        if terms.referee_quorum == 0 {
            return Err(LedgerError::BadEvidence("bond accepts no verdicts"));
        }
        if self.signatures.len() > REFEREES_MAX {
            return Err(LedgerError::Malformed("too many verdict signatures"));
        }
        if self.beneficiaries.len() > BENEFICIARIES_MAX {
            return Err(LedgerError::Malformed("too many verdict beneficiaries"));
        }
        let distinct: BTreeSet<_> = self.beneficiaries.iter().collect();
        if distinct.len() != self.beneficiaries.len() {
            return Err(LedgerError::Malformed("duplicate verdict beneficiary"));
        }
        if !terms.beneficiaries.is_empty() && !self.beneficiaries.is_empty() {
            return Err(LedgerError::BadEvidence(
                "the bond's terms name its beneficiaries",
            ));
        }
        let listed: BTreeSet<_> = terms.referees.iter().collect();
        let mut signers = BTreeSet::new();
        let message = Self::message(&self.bond, &self.case, &self.beneficiaries);
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
    /// Who receives a bond under `terms` forfeited on this evidence: the terms' beneficiaries,
    /// or, if they name none, a verdict's.
    pub fn beneficiaries<'a>(&'a self, terms: &'a BondTerms) -> &'a [PublicKey] {
        match self {
            Evidence::Verdict(v) if terms.beneficiaries.is_empty() => &v.beneficiaries,
            _ => &terms.beneficiaries,
        }
    }

    /// The outputs of a bond of `amount` under `terms` forfeited on this evidence, and the
    /// burned remainder (equal shares to [`Evidence::beneficiaries`]). Bounded: a verdict with
    /// more than `BENEFICIARIES_MAX` beneficiaries pays none (and fails [`Evidence::verify`]).
    pub fn forfeit_outputs(&self, terms: &BondTerms, amount: Amount) -> (Vec<Output>, Amount) {
        let to = self.beneficiaries(terms);
        if to.len() > BENEFICIARIES_MAX {
            return (Vec::new(), amount);
        }
        split(to, amount)
    }

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
