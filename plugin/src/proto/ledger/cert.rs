//! Votes, certificates, equivocation proofs, and batched signature verification.

use std::collections::BTreeSet;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::committee::Committee;
use super::{Input, LedgerError, OrderDigest, Output, OutputId, TransferOrder, VOTES_MAX};
use crate::proto::identity::{Domain, Identity, PublicKey, Signature, signing_digest, verify};

/// A validator's vote: "I locked this order's inputs that I am responsible for, and will never
/// vote for another order spending them."
///
/// A validator signs a *batch* of orders at once ([`Domain::LedgerVote`] over
/// `leaves u16 LE ‖ Merkle root` of the batch's order digests) so the signing cost is paid once per
/// batch, not per order; each vote carries its order's path to the root. A batch of one has an
/// empty path and its root is the order digest itself.
///
/// Tree shape: level 0 is the order digests in batch order; each next level pairs neighbours,
/// `sha256(0x01 ‖ left ‖ right)`, and an odd last node moves up unchanged. Order digests are
/// domain-tagged hashes ([`TransferOrder::digest`]), so they cannot collide with inner nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The validator.
    pub validator: PublicKey,
    /// Its signature over the batch root.
    pub signature: Signature,
    /// Where the order sits in the signed batch.
    pub batch: VoteBatch,
}

/// An order's place in a signed batch of votes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteBatch {
    /// Orders in the batch (1..=`VOTE_BATCH_MAX`).
    pub leaves: u16,
    /// This order's position.
    pub index: u16,
    /// Sibling hashes from the leaf up (levels where the node has no sibling are skipped).
    pub path: Vec<[u8; 32]>,
}

/// Most orders one vote signature covers.
pub const VOTE_BATCH_MAX: u16 = 1024;

fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Merkle root of `leaves` and, for each leaf, its path.
fn tree(leaves: &[[u8; 32]]) -> ([u8; 32], Vec<Vec<[u8; 32]>>) {
    let mut paths = vec![Vec::new(); leaves.len()];
    let mut positions: Vec<usize> = (0..leaves.len()).collect();
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        for (leaf, pos) in positions.iter_mut().enumerate() {
            let sibling = *pos ^ 1;
            if sibling < level.len() {
                paths[leaf].push(level[sibling]);
            }
            *pos /= 2;
        }
        level = level
            .chunks(2)
            .map(|c| if let [l, r] = c { node(l, r) } else { c[0] })
            .collect();
    }
    (level[0], paths)
}

fn message(leaves: u16, root: &[u8; 32]) -> [u8; 34] {
    let mut m = [0u8; 34];
    m[..2].copy_from_slice(&leaves.to_le_bytes());
    m[2..].copy_from_slice(root);
    m
}

impl Vote {
    /// Sign a vote for one order. Only [`Validator`](super::Validator) should vote for real
    /// orders, after the lock is recorded; this is public for tests and for simulating byzantine
    /// validators.
    pub fn sign(identity: &Identity, order: &OrderDigest) -> Self {
        Self::sign_batch(identity, std::slice::from_ref(order))
            .pop()
            .expect("one vote per order")
    }

    /// Votes for `orders` (at most `VOTE_BATCH_MAX`) under one signature.
    pub fn sign_batch(identity: &Identity, orders: &[OrderDigest]) -> Vec<Self> {
        assert!(
            !orders.is_empty() && orders.len() <= usize::from(VOTE_BATCH_MAX),
            "vote batch size"
        );
        let leaves: Vec<[u8; 32]> = orders.iter().map(|d| d.0).collect();
        let (root, paths) = tree(&leaves);
        let n = u16::try_from(orders.len()).expect("≤ VOTE_BATCH_MAX");
        let signature = identity.sign(Domain::LedgerVote, &message(n, &root));
        paths
            .into_iter()
            .enumerate()
            .map(|(i, path)| Self {
                validator: identity.public_key(),
                signature,
                batch: VoteBatch {
                    leaves: n,
                    index: u16::try_from(i).expect("≤ VOTE_BATCH_MAX"),
                    path,
                },
            })
            .collect()
    }

    /// The bytes the signature must cover for this vote to count for `order`, or
    /// [`LedgerError::Malformed`] if the batch position or path is inconsistent.
    pub fn signed_message(&self, order: &OrderDigest) -> Result<[u8; 34], LedgerError> {
        let VoteBatch {
            leaves,
            index,
            path,
        } = &self.batch;
        if *leaves == 0 || *leaves > VOTE_BATCH_MAX || index >= leaves {
            return Err(LedgerError::Malformed("vote batch position"));
        }
        let (mut pos, mut len) = (usize::from(*index), usize::from(*leaves));
        let mut hash = order.0;
        let mut siblings = path.iter();
        while len > 1 {
            let sibling = pos ^ 1;
            if sibling < len {
                let s = siblings
                    .next()
                    .ok_or(LedgerError::Malformed("vote path too short"))?;
                hash = if pos % 2 == 0 {
                    node(&hash, s)
                } else {
                    node(s, &hash)
                };
            }
            pos /= 2;
            len = len.div_ceil(2);
        }
        if siblings.next().is_some() {
            return Err(LedgerError::Malformed("vote path too long"));
        }
        Ok(message(*leaves, &hash))
    }

    /// Check this vote's signature alone.
    pub fn verify(&self, order: &OrderDigest) -> Result<(), LedgerError> {
        verify(
            &self.validator,
            Domain::LedgerVote,
            &self.signed_message(order)?,
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
            let m = v
                .signed_message(&digest)
                .map_err(|_| LedgerError::ForgedCertificate("bad vote path"))?;
            batch.push(
                committee.verifying_key(i),
                Domain::LedgerVote,
                &m,
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

/// An offline proof that an output was created: the certificate of the order that created it
/// and the output's index in that order. Anyone knowing the committee of the order's epoch can
/// check it without asking a validator (fetch uses it to reject forged bonds and escrows).
///
/// It proves creation, not that the output is still unspent: a bond cannot be spent by its owner
/// before its expiry, but a forfeit or (for an escrow) redemptions may have spent it since;
/// whoever relies on it must weigh that (an escrow's change carries its `redeemed` list, so a
/// newer proof of the same lineage shows what was paid). Genesis outputs have no certificate:
/// check those against [`Genesis::created`](super::Genesis::created).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputProof {
    /// The certificate of the order that created the output.
    pub certificate: Certificate,
    /// The output's index among the order's outputs.
    pub index: u16,
}

impl OutputProof {
    /// The proof that output `index` of `certificate`'s order exists.
    pub fn new(certificate: Certificate, index: u16) -> Self {
        Self { certificate, index }
    }

    /// The proven output's id and content, unchecked.
    pub fn output(&self) -> Result<(OutputId, &Output), LedgerError> {
        let output = self
            .certificate
            .order
            .outputs
            .get(usize::from(self.index))
            .ok_or(LedgerError::Malformed("no output at this index"))?;
        Ok((
            OutputId::new(&self.certificate.order.digest(), self.index),
            output,
        ))
    }

    /// The proven output as an order input (unchecked; see [`OutputProof::verify`]).
    pub fn input(&self) -> Result<Input, LedgerError> {
        let (id, output) = self.output()?;
        Ok(Input {
            id,
            output: output.clone(),
        })
    }

    /// Check the certificate against `committee` (the committee of its order's epoch) and
    /// return the output's id and content.
    pub fn verify(&self, committee: &Committee) -> Result<(OutputId, Output), LedgerError> {
        let digest = self.certificate.verify(committee)?;
        let output = self
            .certificate
            .order
            .outputs
            .get(usize::from(self.index))
            .ok_or(LedgerError::Malformed("no output at this index"))?;
        Ok((OutputId::new(&digest, self.index), output.clone()))
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
    /// Its vote for `first`.
    pub first_vote: Vote,
    /// A conflicting order it also voted for.
    pub second: TransferOrder,
    /// Its vote for `second`.
    pub second_vote: Vote,
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
        for (d, vote) in [(a, &self.first_vote), (b, &self.second_vote)] {
            if vote.validator != self.validator {
                return Err(LedgerError::BadEvidence("votes by another validator"));
            }
            vote.verify(&d)?;
        }
        Ok(())
    }
}
