//! The validator core: votes on orders, accepts certificates, catches equivocation, follows
//! reconfigurations. Sans-IO: `handle_*` in, [`Validator::poll_transmit`] /
//! [`Validator::poll_event`] out; all state that a vote depends on lives in the [`LedgerStore`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ed25519_dalek::VerifyingKey;

use super::cert::{SigBatch, key_of};
use super::committee::is_quorum;
use super::{
    Authority, Certificate, CertifiedReconfiguration, Committee, Epoch, EquivocationProof,
    Evidence, Genesis, Handoff, LedgerError, LedgerMsg, LedgerStore, OrderDigest, OutputId,
    RejectReason, SignedOrder, StoreOp, TransferOrder, VOTE_BATCH_MAX, VOTES_MAX, Vote,
    redemption_outputs,
};
use crate::proto::identity::{Domain, Identity, PeerId, PublicKey};

const KEY_CACHE_MAX: usize = 8192;
const CERT_CACHE_MAX: usize = 16_384;
const SEEN_VOTES_MAX: usize = 65_536;
const OUTBOX_MAX: usize = 65_536;

/// Something a validator wants its host to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerEvent {
    /// A committee member signed two conflicting orders; the proof was sent to its bond's
    /// beneficiaries.
    EquivocationDetected(Box<EquivocationProof>),
    /// The validator moved to a new epoch.
    Reconfigured(Epoch),
}

/// A validator: one committee member's ledger core over a store `S`.
#[derive(Debug)]
pub struct Validator<S: LedgerStore> {
    identity: Identity,
    store: S,
    committees: BTreeMap<Epoch, Committee>,
    epoch: Epoch,
    /// Complete handoffs absorbed for the current epoch: member → parts seen / parts.
    absorbed: BTreeMap<PublicKey, (BTreeSet<u16>, u16)>,
    keys: BTreeMap<PublicKey, VerifyingKey>,
    certified: BTreeSet<OrderDigest>,
    certified_fifo: VecDeque<OrderDigest>,
    seen_votes: BTreeMap<(OutputId, PublicKey), (OrderDigest, Vote)>,
    seen_fifo: VecDeque<(OutputId, PublicKey)>,
    seen_orders: BTreeMap<OrderDigest, (TransferOrder, u32)>,
    accused: BTreeSet<PublicKey>,
    outbox: VecDeque<(PeerId, LedgerMsg)>,
    events: VecDeque<LedgerEvent>,
}

struct Checked {
    digest: OrderDigest,
    mine: Vec<usize>,
}

impl<S: LedgerStore> Validator<S> {
    /// A validator over `store`. An empty store is initialised from `genesis` (epoch 0's
    /// committee and every minted output); a store that already holds committees is reopened
    /// where it stopped (after a restart), and `genesis` is ignored.
    pub fn new(identity: Identity, genesis: &Genesis, mut store: S) -> Result<Self, LedgerError> {
        let mut committees: BTreeMap<Epoch, Committee> = store
            .committees()?
            .into_iter()
            .map(|c| (c.epoch, c))
            .collect();
        if committees.is_empty() {
            let mut ops = vec![StoreOp::Committee(Box::new(genesis.committee.clone()))];
            ops.extend(genesis.created().map(|(id, o)| StoreOp::Create {
                id,
                output: o.clone(),
            }));
            store.apply(&ops)?;
            committees.insert(Epoch(0), genesis.committee.clone());
        }
        let epoch = *committees.keys().next_back().expect("at least genesis");
        let mut absorbed: BTreeMap<PublicKey, (BTreeSet<u16>, u16)> = BTreeMap::new();
        for (from, part, parts) in store.handoffs(epoch)? {
            let e = absorbed.entry(from).or_insert((BTreeSet::new(), parts));
            e.0.insert(part);
        }
        Ok(Self {
            identity,
            store,
            committees,
            epoch,
            absorbed,
            keys: BTreeMap::new(),
            certified: BTreeSet::new(),
            certified_fifo: VecDeque::new(),
            seen_votes: BTreeMap::new(),
            seen_fifo: VecDeque::new(),
            seen_orders: BTreeMap::new(),
            accused: BTreeSet::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The current epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The current committee.
    pub fn committee(&self) -> &Committee {
        self.committees
            .get(&self.epoch)
            .expect("the current epoch's committee is always known")
    }

    /// The committee of `epoch`, if known.
    pub fn committee_of(&self, epoch: Epoch) -> Option<&Committee> {
        self.committees.get(&epoch)
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, mutably (tests inject failures through it).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// This validator's key.
    pub fn public_key(&self) -> PublicKey {
        self.identity.public_key()
    }

    /// Vote for one order (see [`Validator::handle_orders`]).
    pub fn handle_order(
        &mut self,
        order: &SignedOrder,
        proofs: &[Certificate],
    ) -> Result<Vote, LedgerError> {
        self.handle_orders(&[(order, proofs)])
            .pop()
            .expect("one result per order")
    }

    /// Vote for a batch of orders: owner signatures are checked in one ed25519 batch and all
    /// new locks are recorded in one [`LedgerStore::apply`]. Each order gets a vote, or the typed
    /// reason it got none. A vote is signed only after its locks are durably recorded.
    pub fn handle_orders(
        &mut self,
        batch: &[(&SignedOrder, &[Certificate])],
    ) -> Vec<Result<Vote, LedgerError>> {
        // Pass 1: structure, epoch, responsibility, authority; signatures into one batch.
        let mut sigs = SigBatch::default();
        let mut ranges = Vec::with_capacity(batch.len());
        let mut results: Vec<Result<Checked, LedgerError>> = batch
            .iter()
            .map(|(order, _)| {
                let start = sigs.len();
                let r = self.precheck(order, &mut sigs);
                ranges.push(start..sigs.len());
                r
            })
            .collect();
        if !sigs.verify() {
            let bad = sigs.failures();
            for (r, range) in results.iter_mut().zip(&ranges) {
                if bad.iter().any(|i| range.contains(i)) {
                    *r = Err(LedgerError::BadSignature);
                }
            }
        }
        // Pass 2: proofs of creation, then input state, with locks pending in this batch.
        let mut pending: BTreeMap<OutputId, OrderDigest> = BTreeMap::new();
        let mut ops = Vec::new();
        for ((order, proofs), r) in batch.iter().zip(results.iter_mut()) {
            let Ok(checked) = r else { continue };
            if let Err(e) = self.accept_proofs(order, &checked.mine, proofs) {
                *r = Err(e);
                continue;
            }
            match self.check_inputs(order, checked, &pending) {
                Ok(new_locks) => {
                    for input in new_locks {
                        pending.insert(input, checked.digest);
                        ops.push(StoreOp::Lock {
                            input,
                            order: checked.digest,
                        });
                    }
                }
                Err(e) => *r = Err(e),
            }
        }
        // Record, then sign.
        if !ops.is_empty()
            && let Err(e) = self.store.apply(&ops)
        {
            for r in results.iter_mut() {
                if r.is_ok() {
                    *r = Err(LedgerError::Store(e.clone()));
                }
            }
        }
        // One signature for the whole batch (a Merkle root of the voted digests).
        let digests: Vec<OrderDigest> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|c| c.digest))
            .collect();
        let mut votes = Vec::with_capacity(digests.len());
        for chunk in digests.chunks(usize::from(VOTE_BATCH_MAX)) {
            votes.extend(Vote::sign_batch(&self.identity, chunk));
        }
        let mut votes = votes.into_iter();
        results
            .into_iter()
            .map(|r| r.map(|_| votes.next().expect("one vote per accepted order")))
            .collect()
    }

    fn cached_key(&mut self, public: &PublicKey) -> Result<VerifyingKey, LedgerError> {
        if let Some(k) = self.keys.get(public) {
            return Ok(*k);
        }
        let k = key_of(public)?;
        if self.keys.len() >= KEY_CACHE_MAX {
            self.keys.clear();
        }
        self.keys.insert(*public, k);
        Ok(k)
    }

    fn precheck(
        &mut self,
        signed: &SignedOrder,
        sigs: &mut SigBatch,
    ) -> Result<Checked, LedgerError> {
        let order = &signed.order;
        order.check_shape()?;
        if order.epoch != self.epoch {
            return Err(LedgerError::WrongEpoch {
                order: order.epoch.0,
                current: self.epoch.0,
            });
        }
        let committee = self.committee();
        let me = committee
            .index_of(&self.identity.public_key())
            .ok_or(LedgerError::NotResponsible)?;
        let mine: Vec<usize> = (0..order.inputs.len())
            .filter(|&i| committee.shard(&order.inputs[i].id).contains(&me))
            .collect();
        if mine.is_empty() {
            return Err(LedgerError::NotResponsible);
        }
        let digest = order.digest();
        match &signed.authority {
            Authority::Owners(signatures) => {
                let owners = order.owners();
                if signatures.len() != owners.len()
                    || !signatures.iter().map(|s| &s.owner).eq(owners.iter())
                {
                    return Err(LedgerError::WrongSigners);
                }
                for i in &mine {
                    let input = &order.inputs[*i];
                    if let Some(terms) = &input.output.bond
                        && order.epoch <= terms.expiry
                    {
                        return Err(LedgerError::BondLocked(input.id));
                    }
                }
                for s in signatures {
                    let key = self.cached_key(&s.owner)?;
                    sigs.push(key, Domain::LedgerOrder, &digest.0, &s.signature);
                }
            }
            Authority::Forfeit(evidence) => {
                let [bond] = order.inputs.as_slice() else {
                    return Err(LedgerError::BadEvidence(
                        "a forfeit spends exactly one bond",
                    ));
                };
                let terms = bond
                    .output
                    .bond
                    .as_ref()
                    .ok_or(LedgerError::BadEvidence("input is not a bond"))?;
                let (outputs, fee) = evidence.forfeit_outputs(terms, bond.output.amount);
                if outputs != order.outputs || fee != order.fee {
                    return Err(LedgerError::BadEvidence(
                        "outputs differ from the bond's terms",
                    ));
                }
                evidence.verify(&bond.id, &bond.output)?;
            }
            Authority::Redeem(winning) => {
                let [escrow] = order.inputs.as_slice() else {
                    return Err(LedgerError::BadRedemption(
                        "a redemption spends exactly one escrow",
                    ));
                };
                // Fixed so that the only free choice in a redemption is its fee.
                if order.nonce != 0 {
                    return Err(LedgerError::BadRedemption("a redemption has nonce 0"));
                }
                let (id, outputs) = redemption_outputs(order.epoch, escrow, winning, order.fee)?;
                if outputs != order.outputs {
                    return Err(LedgerError::BadRedemption(
                        "outputs differ from the ticket's",
                    ));
                }
                let ticket = &winning.ticket;
                let key = self.cached_key(&ticket.ticket.payer)?;
                sigs.push(key, Domain::LedgerTicket, &id.0, &ticket.signature);
            }
        }
        Ok(Checked { digest, mine })
    }

    /// Verify the certificates that created this order's unknown inputs and record creation.
    fn accept_proofs(
        &mut self,
        signed: &SignedOrder,
        mine: &[usize],
        proofs: &[Certificate],
    ) -> Result<(), LedgerError> {
        if proofs.len() > super::INPUTS_MAX {
            return Err(LedgerError::Malformed("too many proofs"));
        }
        for i in mine {
            let input = &signed.order.inputs[*i];
            if self.store.output(&input.id)?.output.is_some() {
                continue;
            }
            for proof in proofs {
                let digest = proof.order.digest();
                if proof.order.created(&digest).any(|(id, _)| id == input.id) {
                    self.handle_certificate(proof)?;
                    break;
                }
            }
        }
        Ok(())
    }

    /// The inputs this order must newly lock, or why it cannot.
    fn check_inputs(
        &self,
        signed: &SignedOrder,
        checked: &Checked,
        pending: &BTreeMap<OutputId, OrderDigest>,
    ) -> Result<Vec<OutputId>, LedgerError> {
        let mut new_locks = Vec::new();
        for i in &checked.mine {
            let input = &signed.order.inputs[*i];
            if !self.is_synced(&input.id) {
                return Err(LedgerError::NotSynced(input.id));
            }
            let state = self.store.output(&input.id)?;
            let recorded = state.output.ok_or(LedgerError::UnknownOutput(input.id))?;
            if recorded != input.output {
                return Err(LedgerError::InputMismatch(input.id));
            }
            match pending.get(&input.id).copied().or(state.lock) {
                Some(held) if held != checked.digest => {
                    return Err(LedgerError::Conflicting {
                        input: input.id,
                        locked_by: held,
                    });
                }
                Some(_) => {}
                None => new_locks.push(input.id),
            }
        }
        Ok(new_locks)
    }

    /// Whether this validator may vote on `input` in the current epoch: always in epoch 0;
    /// later, once it absorbed complete handoffs from > 2/3 of the weight of the input's shard
    /// in the previous epoch.
    fn is_synced(&self, input: &OutputId) -> bool {
        let Some(prev_epoch) = self.epoch.0.checked_sub(1) else {
            return true;
        };
        let Some(prev) = self.committees.get(&Epoch(prev_epoch)) else {
            return false;
        };
        let shard = prev.shard(input);
        let total: u64 = shard.iter().map(|&i| prev.weight(i)).sum();
        let got: u64 = shard
            .iter()
            .filter(|&&i| {
                self.absorbed
                    .get(&prev.validators()[i].public)
                    .is_some_and(|(seen, parts)| seen.len() == usize::from(*parts))
            })
            .map(|&i| prev.weight(i))
            .sum();
        is_quorum(got, total)
    }

    /// Accept a certificate: record creation of the outputs and spending of the inputs this
    /// validator is responsible for in the current epoch. Idempotent.
    pub fn handle_certificate(&mut self, cert: &Certificate) -> Result<OrderDigest, LedgerError> {
        let committee = self
            .committees
            .get(&cert.order.epoch)
            .ok_or(LedgerError::UnknownEpoch(cert.order.epoch.0))?;
        let digest = if self.certified.contains(&cert.order.digest()) {
            cert.order.digest()
        } else {
            cert.verify(committee)?
        };
        let current = self.committee();
        let Some(me) = current.index_of(&self.identity.public_key()) else {
            return Ok(digest);
        };
        let mut ops = Vec::new();
        for (id, output) in cert.order.created(&digest) {
            if current.shard(&id).contains(&me) && self.store.output(&id)?.output.is_none() {
                ops.push(StoreOp::Create {
                    id,
                    output: output.clone(),
                });
            }
        }
        for input in &cert.order.inputs {
            if current.shard(&input.id).contains(&me) {
                let state = self.store.output(&input.id)?;
                if state.spent.is_none() && state.lock.is_none_or(|l| l == digest) {
                    ops.push(StoreOp::Spend {
                        input: input.id,
                        order: digest,
                    });
                }
            }
        }
        if !ops.is_empty() {
            self.store.apply(&ops)?;
        }
        if self.certified.insert(digest) {
            self.certified_fifo.push_back(digest);
            if self.certified_fifo.len() > CERT_CACHE_MAX
                && let Some(old) = self.certified_fifo.pop_front()
            {
                self.certified.remove(&old);
            }
            for v in &cert.votes {
                self.observe_vote(&cert.order, digest, v);
            }
        }
        Ok(digest)
    }

    /// Votes a wallet collected for an order that met a conflict: check each and look for a
    /// member that also voted for a conflicting order.
    pub fn handle_report(
        &mut self,
        order: &TransferOrder,
        votes: &[Vote],
    ) -> Result<(), LedgerError> {
        order.check_shape()?;
        if votes.len() > VOTES_MAX {
            return Err(LedgerError::Malformed("too many votes"));
        }
        let committee = self
            .committees
            .get(&order.epoch)
            .ok_or(LedgerError::UnknownEpoch(order.epoch.0))?;
        let digest = order.digest();
        let valid: Vec<Vote> = votes
            .iter()
            .filter(|v| committee.index_of(&v.validator).is_some() && v.verify(&digest).is_ok())
            .cloned()
            .collect();
        for v in &valid {
            self.observe_vote(order, digest, v);
        }
        Ok(())
    }

    /// Remember a verified vote on the inputs this validator is responsible for; on a second
    /// vote by the same member for a different order spending the same input, accuse it.
    fn observe_vote(&mut self, order: &TransferOrder, digest: OrderDigest, vote: &Vote) {
        let committee = self.committee();
        let Some(me) = committee.index_of(&self.identity.public_key()) else {
            return;
        };
        let mine: Vec<OutputId> = order
            .inputs
            .iter()
            .map(|i| i.id)
            .filter(|id| committee.shard(id).contains(&me))
            .collect();
        for input in mine {
            let key = (input, vote.validator);
            match self.seen_votes.get(&key) {
                Some((d, first_vote)) if *d != digest => {
                    let (d, first_vote) = (*d, first_vote.clone());
                    if let Some((first, _)) = self.seen_orders.get(&d).cloned() {
                        self.accuse(EquivocationProof {
                            validator: vote.validator,
                            first,
                            first_vote,
                            second: order.clone(),
                            second_vote: vote.clone(),
                        });
                    }
                }
                Some(_) => {}
                None => {
                    self.seen_votes.insert(key, (digest, vote.clone()));
                    self.seen_orders
                        .entry(digest)
                        .or_insert_with(|| (order.clone(), 0))
                        .1 += 1;
                    self.seen_fifo.push_back(key);
                    if self.seen_fifo.len() > SEEN_VOTES_MAX
                        && let Some(old) = self.seen_fifo.pop_front()
                        && let Some((d, _)) = self.seen_votes.remove(&old)
                        && let Some(entry) = self.seen_orders.get_mut(&d)
                    {
                        entry.1 -= 1;
                        if entry.1 == 0 {
                            self.seen_orders.remove(&d);
                        }
                    }
                }
            }
        }
    }

    fn accuse(&mut self, proof: EquivocationProof) {
        if self.accused.contains(&proof.validator) || proof.verify().is_err() {
            return;
        }
        self.accused.insert(proof.validator);
        // Send the proof to the beneficiaries of the accused's bond: they profit from forfeiting.
        let bond = self
            .committees
            .values()
            .rev()
            .find_map(|c| c.index_of(&proof.validator).map(|i| c.validators()[i].bond));
        let beneficiaries = bond
            .and_then(|b| self.store.output(&b).ok())
            .and_then(|s| s.output)
            .and_then(|o| o.bond)
            .map(|t| t.beneficiaries)
            .unwrap_or_default();
        for b in beneficiaries {
            self.send(
                PeerId::from_public_key(&b),
                LedgerMsg::Evidence(Box::new(proof.clone())),
            );
        }
        self.events
            .push_back(LedgerEvent::EquivocationDetected(Box::new(proof)));
    }

    /// Move to the next epoch on a certified reconfiguration, then hand every lock over to the
    /// new committee. Older or already applied reconfigurations are ignored.
    pub fn handle_reconfiguration(
        &mut self,
        reconfig: &CertifiedReconfiguration,
    ) -> Result<(), LedgerError> {
        if reconfig.next.epoch <= self.epoch {
            return Ok(());
        }
        reconfig.verify(self.committee())?;
        self.store
            .apply(&[StoreOp::Committee(Box::new(reconfig.next.clone()))])?;
        let was_member = self
            .committee()
            .index_of(&self.identity.public_key())
            .is_some();
        self.epoch = reconfig.next.epoch;
        self.committees.insert(self.epoch, reconfig.next.clone());
        self.absorbed.clear();
        for (from, part, parts) in self.store.handoffs(self.epoch)? {
            self.absorbed
                .entry(from)
                .or_insert((BTreeSet::new(), parts))
                .0
                .insert(part);
        }
        if was_member {
            let parts = Handoff::create(&self.identity, self.epoch, &self.store.locks()?);
            let me = self.identity.peer_id();
            let targets: Vec<PeerId> = (0..reconfig.next.validators().len())
                .map(|i| reconfig.next.peer_id(i))
                .filter(|p| *p != me)
                .collect();
            for h in parts {
                for t in &targets {
                    self.send(*t, LedgerMsg::Handoff(h.clone()));
                }
                self.handle_handoff(&h)?;
            }
        }
        self.events.push_back(LedgerEvent::Reconfigured(self.epoch));
        Ok(())
    }

    /// Absorb an old-committee member's handoff part for the current epoch: take over its
    /// locks (never replacing one of ours).
    pub fn handle_handoff(&mut self, handoff: &Handoff) -> Result<(), LedgerError> {
        if handoff.epoch != self.epoch {
            return Err(LedgerError::WrongEpoch {
                order: handoff.epoch.0,
                current: self.epoch.0,
            });
        }
        let prev = self
            .epoch
            .0
            .checked_sub(1)
            .and_then(|e| self.committees.get(&Epoch(e)))
            .ok_or(LedgerError::UnknownEpoch(self.epoch.0))?;
        if prev.index_of(&handoff.validator).is_none() {
            return Err(LedgerError::NotResponsible);
        }
        handoff.verify()?;
        if let Some((seen, parts)) = self.absorbed.get(&handoff.validator)
            && (seen.contains(&handoff.part) || *parts != handoff.parts)
        {
            return Ok(());
        }
        let mut ops = Vec::new();
        let mut taken = BTreeSet::new();
        for (input, order) in &handoff.locks {
            if self.store.output(input)?.lock.is_none() && taken.insert(*input) {
                ops.push(StoreOp::Lock {
                    input: *input,
                    order: *order,
                });
            }
        }
        ops.push(StoreOp::Handoff {
            epoch: handoff.epoch,
            from: handoff.validator,
            part: handoff.part,
            parts: handoff.parts,
        });
        self.store.apply(&ops)?;
        self.absorbed
            .entry(handoff.validator)
            .or_insert((BTreeSet::new(), handoff.parts))
            .0
            .insert(handoff.part);
        Ok(())
    }

    /// Handle one message from `from`; replies go to [`Validator::poll_transmit`]. Errors are
    /// returned for the host's logs and counters; refusals of orders are also sent back typed.
    pub fn handle_message(&mut self, from: PeerId, msg: LedgerMsg) -> Result<(), LedgerError> {
        match msg {
            LedgerMsg::Order { order, proofs } => {
                let digest = order.order.digest();
                match self.handle_order(&order, &proofs) {
                    Ok(vote) => {
                        self.send(
                            from,
                            LedgerMsg::Vote {
                                order: digest,
                                vote,
                            },
                        );
                        Ok(())
                    }
                    Err(e) => {
                        let reason = RejectReason::of(&e);
                        self.send(
                            from,
                            LedgerMsg::Reject {
                                order: digest,
                                reason,
                            },
                        );
                        Err(e)
                    }
                }
            }
            LedgerMsg::Confirm(cert) => self.handle_certificate(&cert).map(|_| ()),
            LedgerMsg::Report { order, votes } => self.handle_report(&order, &votes),
            LedgerMsg::Reconfigure(r) => self.handle_reconfiguration(&r),
            LedgerMsg::Handoff(h) => self.handle_handoff(&h),
            LedgerMsg::Vote { .. }
            | LedgerMsg::Reject { .. }
            | LedgerMsg::Confirmed(_)
            | LedgerMsg::Evidence(_) => Err(LedgerError::Malformed("not for a validator")),
        }
    }

    fn send(&mut self, to: PeerId, msg: LedgerMsg) {
        if self.outbox.len() < OUTBOX_MAX {
            self.outbox.push_back((to, msg));
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<(PeerId, LedgerMsg)> {
        self.outbox.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<LedgerEvent> {
        self.events.pop_front()
    }
}

impl Evidence {
    /// The key this evidence accuses (for equivocation) — verdicts name a bond instead.
    pub fn accused(&self) -> Option<PublicKey> {
        match self {
            Evidence::Equivocation(p) => Some(p.validator),
            Evidence::Verdict(_) => None,
        }
    }
}
