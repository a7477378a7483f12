//! Votes, certificates, equivocation proofs, and batched signature verification.

use std::collections::BTreeSet;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::committee::Committee;
use super::{LedgerError, OrderDigest, TransferOrder, VOTES_MAX};
use crate::proto::identity::{Domain, Identity, PublicKey, Signature, signing_digest, verify};

/// A validator's signature over an order digest ([`Domain::LedgerVote`]): "I locked this order's
/// inputs that I am responsible for, and will never vote for another order spending them."
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The validator.
    pub validator: PublicKey,
    /// Its signature.
    pub signature: Signature,
}

impl Vote {
    /// Sign a vote for `order`. Only [`Validator`](super::Validator) should call this for real
    /// orders, after the lock is recorded; it is public for tests and for simulating byzantine
    /// validators.
    pub fn sign(identity: &Identity, order: &OrderDigest) -> Self {
        Self {
            validator: identity.public_key(),
            signature: identity.sign(Domain::LedgerVote, &order.0),
        }
    }

    /// Check this vote's signature alone.
    pub fn verify(&self, order: &OrderDigest) -> Result<(), LedgerError> {
        verify(
            &self.validator,
            Domain::LedgerVote,
            &order.0,
            &self.signature,
        )
        .map_err(|_| LedgerError::BadSignature)
    }
}

/// Signatures checked together (ed25519 batch verification, deterministic: dalek derives its
/// random scalars from a transcript of the batch). A batch is valid only if the batch equation
/// holds; [`SigBatch::failures`] finds the culprits one by one when it does not.
#[derive(Default)]
pub(crate) struct SigBatch {
    keys: Vec<VerifyingKey>,
    digests: Vec<[u8; 32]>,
    sigs: Vec<ed25519_dalek::Signature>,
}

impl SigBatch {
    pub(crate) fn push(&mut self, key: VerifyingKey, domain: Domain, msg: &[u8], sig: &Signature) {
        self.keys.push(key);
        self.digests.push(signing_digest(domain, msg));
        self.sigs.push(ed25519_dalek::Signature::from_bytes(&sig.0));
    }

    pub(crate) fn len(&self) -> usize {
        self.sigs.len()
    }

    /// Whether every signature is valid.
    pub(crate) fn verify(&self) -> bool {
        if self.sigs.is_empty() {
            return true;
        }
        if self.sigs.len() == 1 {
            return self.keys[0]
                .verify_strict(&self.digests[0], &self.sigs[0])
                .is_ok();
        }
        let msgs: Vec<&[u8]> = self.digests.iter().map(|d| d.as_slice()).collect();
        ed25519_dalek::verify_batch(&msgs, &self.sigs, &self.keys).is_ok()
    }

    /// Indices of the signatures that fail on their own.
    pub(crate) fn failures(&self) -> Vec<usize> {
        (0..self.sigs.len())
            .filter(|&i| {
                self.keys[i]
                    .verify_strict(&self.digests[i], &self.sigs[i])
                    .is_err()
            })
            .collect()
    }
}

/// A decompressed public key, or [`LedgerError::BadSignature`] if it is not a curve point.
pub(crate) fn key_of(public: &PublicKey) -> Result<VerifyingKey, LedgerError> {
    VerifyingKey::from_bytes(&public.0).map_err(|_| LedgerError::BadSignature)
}

/// An order plus votes from more than 2/3 of the weight of every input's validator set in the
/// order's epoch: the order is final, its inputs spent and its outputs created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The certified order.
    pub order: TransferOrder,
    /// The votes, one per validator.
    pub votes: Vec<Vote>,
}

impl Certificate {
    /// Structure and quorum checks without signatures, then push the vote signatures onto
    /// `batch`. `committee` must be the committee of the order's epoch.
    pub(crate) fn precheck(
        &self,
        committee: &Committee,
        batch: &mut SigBatch,
    ) -> Result<OrderDigest, LedgerError> {
        if committee.epoch != self.order.epoch {
            return Err(LedgerError::ForgedCertificate("committee of another epoch"));
        }
        if self.votes.len() > VOTES_MAX {
            return Err(LedgerError::ForgedCertificate("too many votes"));
        }
        self.order.check_shape()?;
        let digest = self.order.digest();
        let mut voters = BTreeSet::new();
        let mut indices = Vec::with_capacity(self.votes.len());
        for v in &self.votes {
            let i = committee
                .index_of(&v.validator)
                .ok_or(LedgerError::ForgedCertificate("voter not in committee"))?;
            if !voters.insert(i) {
                return Err(LedgerError::ForgedCertificate("duplicate voter"));
            }
            indices.push(i);
        }
        for input in &self.order.inputs {
            if !committee.is_quorum_of_shard(&input.id, &voters) {
                return Err(LedgerError::ForgedCertificate("no quorum for an input"));
            }
        }
        for (v, i) in self.votes.iter().zip(indices) {
            batch.push(
                committee.verifying_key(i),
                Domain::LedgerVote,
                &digest.0,
                &v.signature,
            );
        }
        Ok(digest)
    }

    /// Verify against the committee of the order's epoch; returns the order digest.
    pub fn verify(&self, committee: &Committee) -> Result<OrderDigest, LedgerError> {
        let mut batch = SigBatch::default();
        let digest = self.precheck(committee, &mut batch)?;
        if !batch.verify() {
            return Err(LedgerError::ForgedCertificate("bad vote signature"));
        }
        Ok(digest)
    }
}

/// Verify many certificates at once (one batch for all their votes). Returns each one's result.
pub fn verify_batch(
    certificates: &[&Certificate],
    committee: &Committee,
) -> Vec<Result<OrderDigest, LedgerError>> {
    let mut batch = SigBatch::default();
    let mut results: Vec<_> = certificates
        .iter()
        .map(|c| c.precheck(committee, &mut batch))
        .collect();
    if batch.verify() {
        return results;
    }
    // Rare path: find the bad ones individually.
    for (r, c) in results.iter_mut().zip(certificates) {
        if r.is_ok() {
            *r = c.verify(committee);
        }
    }
    results
}

/// Two votes by one validator for two different orders that spend a common input. Anyone can
/// check it with the validator's public key; it forfeits the validator's bonds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquivocationProof {
    /// The equivocating validator.
    pub validator: PublicKey,
    /// One order it voted for.
    pub first: TransferOrder,
    /// Its vote signature on `first`.
    pub first_signature: Signature,
    /// A conflicting order it also voted for.
    pub second: TransferOrder,
    /// Its vote signature on `second`.
    pub second_signature: Signature,
}

impl EquivocationProof {
    /// Check that the orders differ, share an input, and both votes are the validator's.
    pub fn verify(&self) -> Result<(), LedgerError> {
        self.first.check_shape()?;
        self.second.check_shape()?;
        let (a, b) = (self.first.digest(), self.second.digest());
        if a == b {
            return Err(LedgerError::BadEvidence("the two orders are the same"));
        }
        let shared = self
            .first
            .inputs
            .iter()
            .any(|i| self.second.inputs.iter().any(|j| j.id == i.id));
        if !shared {
            return Err(LedgerError::BadEvidence("the orders share no input"));
        }
        for (d, sig) in [(a, &self.first_signature), (b, &self.second_signature)] {
            verify(&self.validator, Domain::LedgerVote, &d.0, sig)
                .map_err(|_| LedgerError::BadSignature)?;
        }
        Ok(())
    }
}
