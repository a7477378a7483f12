//! The committee of an epoch: members, weights (bond + attested work), the validator set (shard)
//! of each output, genesis, work certificates, certified reconfiguration and lock handoff.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cert::key_of;
use super::{
    Amount, BondTerms, COMMITTEE_MAX, Epoch, HANDOFF_LOCKS_MAX, LedgerError, OrderDigest, Output,
    OutputId,
};
use crate::proto::contract::Fuel;
use crate::proto::identity::{Domain, Identity, PeerId, PublicKey, Signature, verify};
use crate::proto::wire;

/// Fuel per unit of weight: 1,000,000 fuel of attested work weighs as much as one unit of bond.
/// Work weight is capped at the bond, so weight ≤ 2 × bond: work can double a stake, never
/// replace it (an unbonded worker has nothing to forfeit).
pub const FUEL_PER_WEIGHT: u64 = 1_000_000;

/// A committee member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorInfo {
    /// Its key (votes are checked against it; the bond is owned by it).
    pub public: PublicKey,
    /// Its bond output.
    pub bond: OutputId,
    /// The bond's amount.
    pub bond_amount: Amount,
    /// Certified work credited to it for this epoch.
    pub work: Fuel,
}

impl ValidatorInfo {
    /// `bond + min(work / FUEL_PER_WEIGHT, bond)`.
    pub fn weight(&self) -> u64 {
        let work = self.work.0 / FUEL_PER_WEIGHT;
        self.bond_amount
            .0
            .saturating_add(work.min(self.bond_amount.0))
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct CommitteeWire {
    epoch: Epoch,
    shard_size: u16,
    validators: Vec<ValidatorInfo>,
}

/// The validators of one epoch. Members are sorted by key; derived lookups are rebuilt on decode.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "CommitteeWire", into = "CommitteeWire")]
pub struct Committee {
    /// The epoch.
    pub epoch: Epoch,
    /// Validators per output (16 by default; all members if fewer).
    pub shard_size: u16,
    validators: Vec<ValidatorInfo>,
    ids: Vec<PeerId>,
    keys: Vec<VerifyingKey>,
    index: BTreeMap<PublicKey, usize>,
    total_weight: u64,
}

impl PartialEq for Committee {
    fn eq(&self, other: &Self) -> bool {
        self.epoch == other.epoch
            && self.shard_size == other.shard_size
            && self.validators == other.validators
    }
}
impl Eq for Committee {}

impl From<Committee> for CommitteeWire {
    fn from(c: Committee) -> Self {
        Self {
            epoch: c.epoch,
            shard_size: c.shard_size,
            validators: c.validators,
        }
    }
}

impl TryFrom<CommitteeWire> for Committee {
    type Error = LedgerError;
    fn try_from(w: CommitteeWire) -> Result<Self, LedgerError> {
        Committee::new(w.epoch, w.shard_size, w.validators)
    }
}

impl Committee {
    /// A committee; members are sorted by key. Fails on duplicates, bad keys, zero weight,
    /// a zero shard size or more than `COMMITTEE_MAX` members.
    pub fn new(
        epoch: Epoch,
        shard_size: u16,
        mut validators: Vec<ValidatorInfo>,
    ) -> Result<Self, LedgerError> {
        if validators.is_empty() || validators.len() > COMMITTEE_MAX {
            return Err(LedgerError::Malformed("committee size"));
        }
        if shard_size == 0 {
            return Err(LedgerError::Malformed("zero shard size"));
        }
        validators.sort_by_key(|v| v.public);
        let mut index = BTreeMap::new();
        let mut keys = Vec::with_capacity(validators.len());
        let mut total_weight = 0u64;
        for (i, v) in validators.iter().enumerate() {
            if index.insert(v.public, i).is_some() {
                return Err(LedgerError::Malformed("duplicate committee member"));
            }
            if v.weight() == 0 {
                return Err(LedgerError::Malformed("member without weight"));
            }
            keys.push(key_of(&v.public)?);
            total_weight = total_weight
                .checked_add(v.weight())
                .ok_or(LedgerError::Overflow)?;
        }
        let ids = validators
            .iter()
            .map(|v| PeerId::from_public_key(&v.public))
            .collect();
        Ok(Self {
            epoch,
            shard_size,
            validators,
            ids,
            keys,
            index,
            total_weight,
        })
    }

    /// The members, sorted by key.
    pub fn validators(&self) -> &[ValidatorInfo] {
        &self.validators
    }

    /// Member `i`'s overlay id.
    pub fn peer_id(&self, i: usize) -> PeerId {
        self.ids[i]
    }

    /// Index of the member with key `public`.
    pub fn index_of(&self, public: &PublicKey) -> Option<usize> {
        self.index.get(public).copied()
    }

    pub(crate) fn verifying_key(&self, i: usize) -> VerifyingKey {
        self.keys[i]
    }

    /// Member `i`'s weight.
    pub fn weight(&self, i: usize) -> u64 {
        self.validators[i].weight()
    }

    /// Σ weights.
    pub fn total_weight(&self) -> u64 {
        self.total_weight
    }

    /// The validators of `output`: indices of the `shard_size` members XOR-closest to its id.
    pub fn shard(&self, output: &OutputId) -> Vec<usize> {
        let s = usize::from(self.shard_size);
        let mut d: Vec<_> = (0..self.ids.len())
            .map(|i| (self.ids[i].distance(&output.key()), i))
            .collect();
        if d.len() > s {
            d.select_nth_unstable(s - 1);
            d.truncate(s);
        }
        let mut out: Vec<_> = d.into_iter().map(|(_, i)| i).collect();
        out.sort_unstable();
        out
    }

    /// Whether `voters` hold more than 2/3 of the weight of `output`'s shard.
    pub fn is_quorum_of_shard(&self, output: &OutputId, voters: &BTreeSet<usize>) -> bool {
        let shard = self.shard(output);
        let total: u64 = shard.iter().map(|&i| self.weight(i)).sum();
        let got: u64 = shard
            .iter()
            .filter(|i| voters.contains(i))
            .map(|&i| self.weight(i))
            .sum();
        is_quorum(got, total)
    }

    /// The next committee: `members` (key, bond output, bond amount) weighted by the work
    /// certified in this epoch. Honest members endorse a reconfiguration only if it equals the
    /// committee they compute here from what they know.
    pub fn next(
        &self,
        members: Vec<(PublicKey, OutputId, Amount)>,
        work: &[WorkCertificate],
    ) -> Result<Committee, LedgerError> {
        let mut fuel: BTreeMap<PublicKey, u64> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for w in work {
            w.verify(self)?;
            if seen.insert(w.attestation.digest) {
                let f = fuel.entry(w.attestation.worker).or_default();
                *f = f.saturating_add(w.attestation.fuel.0);
            }
        }
        let validators = members
            .into_iter()
            .map(|(public, bond, bond_amount)| ValidatorInfo {
                public,
                bond,
                bond_amount,
                work: Fuel(fuel.get(&public).copied().unwrap_or(0)),
            })
            .collect();
        Committee::new(
            Epoch(self.epoch.0.saturating_add(1)),
            self.shard_size,
            validators,
        )
    }

    /// Check signers: distinct members of this committee holding > 2/3 of its total weight,
    /// each signature valid for `domain` over `message`.
    fn check_committee_quorum(
        &self,
        domain: Domain,
        message: &[u8],
        signatures: &[(PublicKey, Signature)],
    ) -> Result<(), LedgerError> {
        if signatures.len() > COMMITTEE_MAX {
            return Err(LedgerError::Malformed("too many signatures"));
        }
        let mut signers = BTreeSet::new();
        let mut weight = 0u64;
        for (public, sig) in signatures {
            let i = self
                .index_of(public)
                .ok_or(LedgerError::ForgedCertificate("signer not in committee"))?;
            if !signers.insert(i) {
                return Err(LedgerError::ForgedCertificate("duplicate signer"));
            }
            verify(public, domain, message, sig).map_err(|_| LedgerError::BadSignature)?;
            weight = weight.saturating_add(self.weight(i));
        }
        if !is_quorum(weight, self.total_weight) {
            return Err(LedgerError::ForgedCertificate("no committee quorum"));
        }
        Ok(())
    }
}

/// `3 × got > 2 × total`, without overflow.
pub(crate) fn is_quorum(got: u64, total: u64) -> bool {
    u128::from(got) * 3 > u128::from(total) * 2
}

fn hash_of<T: Serialize>(tag: &[u8], value: &T) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(tag);
    h.update(wire::encode_body(value).unwrap_or_default());
    h.finalize().into()
}

/// The ledger's start: minted outputs (including the validators' bonds) and epoch 0's committee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// The pseudo-order digest the genesis outputs' ids derive from.
    pub digest: OrderDigest,
    /// Every minted output; output `i` has id `OutputId::new(&digest, i)`.
    pub outputs: Vec<Output>,
    /// Epoch 0's committee (its members' bonds are among `outputs`).
    pub committee: Committee,
}

impl Genesis {
    /// Mint `outputs` plus one bond per validator `(key, bond, genesis work)` under `bond_terms`
    /// (each bond owned by its validator), and form epoch 0's committee.
    pub fn new(
        mut outputs: Vec<Output>,
        validators: &[(PublicKey, Amount, Fuel)],
        bond_terms: &BondTerms,
        shard_size: u16,
    ) -> Result<Self, LedgerError> {
        let first_bond = outputs.len();
        for (public, amount, _) in validators {
            outputs.push(Output {
                owner: *public,
                amount: *amount,
                bond: Some(bond_terms.clone()),
            });
        }
        if outputs.len() > usize::from(u16::MAX) {
            return Err(LedgerError::Malformed("too many genesis outputs"));
        }
        Amount::sum(outputs.iter().map(|o| o.amount))?;
        let digest = OrderDigest(hash_of(b"meshwork/ledger/genesis\0", &outputs));
        let infos = validators
            .iter()
            .enumerate()
            .map(|(i, (public, amount, work))| ValidatorInfo {
                public: *public,
                bond: OutputId::new(
                    &digest,
                    u16::try_from(first_bond + i).expect("checked above"),
                ),
                bond_amount: *amount,
                work: *work,
            })
            .collect();
        Ok(Self {
            digest,
            outputs,
            committee: Committee::new(Epoch(0), shard_size, infos)?,
        })
    }

    /// The minted outputs with their ids.
    pub fn created(&self) -> impl Iterator<Item = (OutputId, &Output)> {
        self.outputs.iter().enumerate().map(|(i, o)| {
            (
                OutputId::new(&self.digest, u16::try_from(i).expect("≤ u16::MAX outputs")),
                o,
            )
        })
    }

    /// Σ minted.
    pub fn minted(&self) -> Amount {
        Amount::sum(self.outputs.iter().map(|o| o.amount)).expect("checked in Genesis::new")
    }
}

/// "`worker` did `fuel` of verified WASM work identified by `digest` in `epoch`" (e.g. a
/// referee re-execution whose transition digest the session finalised).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkAttestation {
    /// Who did the work.
    pub worker: PublicKey,
    /// The epoch it is credited in (counts toward the next committee's weights).
    pub epoch: Epoch,
    /// Fuel used.
    pub fuel: Fuel,
    /// The work's identity (counted once however often it is certified).
    pub digest: [u8; 32],
}

/// A work attestation signed by more than 2/3 of the epoch's committee weight
/// ([`Domain::LedgerWork`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkCertificate {
    /// What is attested.
    pub attestation: WorkAttestation,
    /// Committee signatures.
    pub signatures: Vec<(PublicKey, Signature)>,
}

impl WorkAttestation {
    fn message(&self) -> [u8; 32] {
        hash_of(b"meshwork/ledger/work\0", self)
    }

    /// One committee member's endorsement.
    pub fn sign(&self, identity: &Identity) -> (PublicKey, Signature) {
        (
            identity.public_key(),
            identity.sign(Domain::LedgerWork, &self.message()),
        )
    }
}

impl WorkCertificate {
    /// Check against `committee` (which must be of the attestation's epoch).
    pub fn verify(&self, committee: &Committee) -> Result<(), LedgerError> {
        if self.attestation.epoch != committee.epoch {
            return Err(LedgerError::UnknownEpoch(self.attestation.epoch.0));
        }
        committee.check_committee_quorum(
            Domain::LedgerWork,
            &self.attestation.message(),
            &self.signatures,
        )
    }
}

/// The next committee, signed by more than 2/3 of the current committee's weight
/// ([`Domain::LedgerReconfig`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedReconfiguration {
    /// The committee of epoch `current + 1`.
    pub next: Committee,
    /// Signatures of current members.
    pub signatures: Vec<(PublicKey, Signature)>,
}

impl CertifiedReconfiguration {
    fn message(next: &Committee) -> [u8; 32] {
        hash_of(b"meshwork/ledger/reconfig\0", next)
    }

    /// One current member's endorsement of `next`.
    pub fn endorse(identity: &Identity, next: &Committee) -> (PublicKey, Signature) {
        (
            identity.public_key(),
            identity.sign(Domain::LedgerReconfig, &Self::message(next)),
        )
    }

    /// Check against the current committee.
    pub fn verify(&self, current: &Committee) -> Result<(), LedgerError> {
        if self.next.epoch.0 != current.epoch.0.saturating_add(1) {
            return Err(LedgerError::UnknownEpoch(self.next.epoch.0));
        }
        if self.next.shard_size != current.shard_size {
            return Err(LedgerError::Malformed("shard size changed"));
        }
        current.check_committee_quorum(
            Domain::LedgerReconfig,
            &Self::message(&self.next),
            &self.signatures,
        )
    }
}

/// Part of the locks an old-committee member held when it moved to `epoch`
/// ([`Domain::LedgerHandoff`]). Signed after the member stopped voting in the old epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// The new epoch.
    pub epoch: Epoch,
    /// The old-committee member.
    pub validator: PublicKey,
    /// This part's number (0-based).
    pub part: u16,
    /// Parts in all.
    pub parts: u16,
    /// `(input, order holding its lock)`, at most `HANDOFF_LOCKS_MAX`.
    pub locks: Vec<(OutputId, OrderDigest)>,
    /// The member's signature over all the fields above.
    pub signature: Signature,
}

impl Handoff {
    fn message(epoch: Epoch, part: u16, parts: u16, locks: &[(OutputId, OrderDigest)]) -> [u8; 32] {
        hash_of(b"meshwork/ledger/handoff\0", &(epoch, part, parts, locks))
    }

    /// Split `locks` into signed parts.
    pub fn create(
        identity: &Identity,
        epoch: Epoch,
        locks: &[(OutputId, OrderDigest)],
    ) -> Vec<Handoff> {
        let chunks: Vec<_> = if locks.is_empty() {
            vec![&locks[..0]]
        } else {
            locks.chunks(HANDOFF_LOCKS_MAX).collect()
        };
        let parts = u16::try_from(chunks.len()).unwrap_or(u16::MAX);
        chunks
            .into_iter()
            .take(usize::from(parts))
            .enumerate()
            .map(|(i, c)| {
                let part = u16::try_from(i).expect("≤ parts");
                Handoff {
                    epoch,
                    validator: identity.public_key(),
                    part,
                    parts,
                    locks: c.to_vec(),
                    signature: identity
                        .sign(Domain::LedgerHandoff, &Self::message(epoch, part, parts, c)),
                }
            })
            .collect()
    }

    /// Check shape and signature.
    pub fn verify(&self) -> Result<(), LedgerError> {
        if self.locks.len() > HANDOFF_LOCKS_MAX || self.part >= self.parts {
            return Err(LedgerError::Malformed("handoff part"));
        }
        let m = Self::message(self.epoch, self.part, self.parts, &self.locks);
        verify(&self.validator, Domain::LedgerHandoff, &m, &self.signature)
            .map_err(|_| LedgerError::BadSignature)
    }
}
