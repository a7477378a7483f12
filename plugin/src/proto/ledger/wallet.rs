//! The wallet core: a payer's and payee's side of the ledger. Builds and signs orders, sends them
//! to the validators of their inputs, gathers votes into a certificate, hands certificates to
//! payees, retries through loss, reports conflicts, and forfeits bonds it is a beneficiary of.
//! Sans-IO: `handle_*(now_ms, …)` in, [`Wallet::poll_transmit`] / [`Wallet::poll_event`] out,
//! [`Wallet::poll_timeout`] says when to call [`Wallet::handle_timeout`].

mod saved;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::cert::SigBatch;
use super::committee::is_quorum;
use super::{
    Amount, Authority, BondTerms, Certificate, Committee, Epoch, EquivocationProof, Evidence,
    Input, LedgerError, LedgerMsg, OrderDigest, Output, OutputId, RejectReason, SignedOrder,
    TransferOrder, Vote, WinningTicket,
};
use crate::proto::identity::{Domain, Identity, PeerId, PublicKey};

pub use saved::WalletState;

const OUTBOX_MAX: usize = 65_536;
const RECENT_MAX: usize = 64;

/// Wallet timing.
#[derive(Clone, Debug)]
pub struct WalletConfig {
    /// First retry of an unanswered order after this long; doubles up to 8×.
    pub retry_ms: u64,
    /// How often a certificate is re-sent to a payee that has not acknowledged it.
    pub confirm_retries_max: u32,
}

impl Default for WalletConfig {
    fn default() -> Self {
        Self {
            retry_ms: 1_000,
            confirm_retries_max: 30,
        }
    }
}

/// A spendable output held by the wallet, with the certificate that created it (`None` for
/// genesis outputs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coin {
    /// Its content.
    pub output: Output,
    /// Its creation certificate.
    pub proof: Option<Certificate>,
}

/// Committee indices that voted for a pending order, and those that refused it (with why).
pub type Progress = (Vec<usize>, Vec<(usize, RejectReason)>);

/// What happened to the wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalletEvent {
    /// An order this wallet submitted was certified: final.
    Settled {
        /// The order.
        order: OrderDigest,
        /// Milliseconds from submission to certificate.
        elapsed_ms: u64,
        /// The certificate.
        certificate: Box<Certificate>,
    },
    /// Outputs owned by this wallet arrived with a verified certificate.
    Received {
        /// The order that created them.
        order: OrderDigest,
        /// Their total.
        amount: Amount,
    },
    /// One of this wallet's escrows was spent by someone else's certified order (a winning
    /// ticket redeemed, or a forfeit); its change, if any, is the lineage's new live output.
    EscrowSpent {
        /// The order that spent it.
        order: OrderDigest,
        /// The escrow output spent.
        escrow: OutputId,
        /// What left the lineage: the escrow's amount minus its change.
        paid: Amount,
    },
    /// An order can no longer be certified (too much of some input's shard refused it).
    Failed {
        /// The order.
        order: OrderDigest,
        /// The refusal that tipped it.
        reason: RejectReason,
    },
}

#[derive(Debug)]
struct Pending {
    signed: SignedOrder,
    proofs: Vec<Certificate>,
    shards: Vec<Vec<usize>>,
    targets: BTreeSet<usize>,
    votes: BTreeMap<usize, Vote>,
    verified: BTreeSet<usize>,
    refused: BTreeMap<usize, RejectReason>,
    conflict: bool,
    started_ms: u64,
    retry_at_ms: u64,
    backoff: u64,
}

#[derive(Debug)]
struct Unconfirmed {
    cert: Certificate,
    to: BTreeSet<PeerId>,
    retry_at_ms: u64,
    tries: u32,
}

/// One key's wallet.
#[derive(Debug)]
pub struct Wallet {
    identity: Identity,
    cfg: WalletConfig,
    committees: BTreeMap<Epoch, Committee>,
    epoch: Epoch,
    coins: BTreeMap<OutputId, Coin>,
    reserved: BTreeMap<OutputId, OrderDigest>,
    pending: BTreeMap<OrderDigest, Pending>,
    unconfirmed: BTreeMap<OrderDigest, Unconfirmed>,
    /// Recently settled certificates, to show validators when another order claims their inputs.
    recent: VecDeque<Certificate>,
    bonds: BTreeMap<PublicKey, Input>,
    forfeited: BTreeSet<PublicKey>,
    nonce: u64,
    outbox: VecDeque<(PeerId, LedgerMsg)>,
    events: VecDeque<WalletEvent>,
}

impl Wallet {
    /// A wallet for `identity` knowing `committee`.
    pub fn new(identity: Identity, committee: Committee, cfg: WalletConfig) -> Self {
        let epoch = committee.epoch;
        Self {
            identity,
            cfg,
            committees: BTreeMap::from([(epoch, committee)]),
            epoch,
            coins: BTreeMap::new(),
            reserved: BTreeMap::new(),
            pending: BTreeMap::new(),
            unconfirmed: BTreeMap::new(),
            recent: VecDeque::new(),
            bonds: BTreeMap::new(),
            forfeited: BTreeSet::new(),
            nonce: 0,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The wallet's key.
    pub fn public_key(&self) -> PublicKey {
        self.identity.public_key()
    }

    /// Adopt a newer committee (after a certified reconfiguration).
    pub fn set_committee(&mut self, committee: Committee) {
        self.epoch = self.epoch.max(committee.epoch);
        self.committees.insert(committee.epoch, committee);
    }

    /// Add an output this wallet owns (e.g. from genesis).
    pub fn add_coin(&mut self, id: OutputId, output: Output, proof: Option<Certificate>) {
        if output.owner == self.identity.public_key() {
            self.coins.insert(id, Coin { output, proof });
        }
    }

    /// Watch `bond` (owned by a validator) so evidence against its owner forfeits it.
    pub fn watch_bond(&mut self, bond: Input) {
        self.bonds.insert(bond.output.owner, bond);
    }

    /// Spendable coins (excluding bonds and coins in pending orders).
    pub fn coins(&self) -> impl Iterator<Item = (&OutputId, &Coin)> {
        self.coins
            .iter()
            .filter(|(id, c)| c.output.bond.is_none() && !self.reserved.contains_key(id))
    }

    /// Σ spendable coins.
    pub fn balance(&self) -> Amount {
        Amount(self.coins().map(|(_, c)| c.output.amount.0).sum())
    }

    /// Orders submitted and neither settled nor failed.
    pub fn pending(&self) -> impl Iterator<Item = &OrderDigest> {
        self.pending.keys()
    }

    /// Progress of a pending order: `(voters, refusals with reasons)` by committee index.
    pub fn progress(&self, digest: &OrderDigest) -> Option<Progress> {
        self.pending.get(digest).map(|p| {
            (
                p.votes.keys().copied().collect(),
                p.refused.iter().map(|(i, r)| (*i, *r)).collect(),
            )
        })
    }

    /// A pending order by digest.
    pub fn pending_order(&self, digest: &OrderDigest) -> Option<&SignedOrder> {
        self.pending.get(digest).map(|p| &p.signed)
    }

    /// Pay `amount` to `to`, burning `fee`. Picks the largest coins first, returns change.
    pub fn pay(
        &mut self,
        now_ms: u64,
        to: PublicKey,
        amount: Amount,
        fee: Amount,
    ) -> Result<OrderDigest, LedgerError> {
        self.pay_output(now_ms, Output::plain(to, amount), fee)
    }

    /// Open an escrow of `amount` paying lottery tickets of lineage `root` until `expiry`
    /// (burning `fee`): a normal transfer to this wallet's own key with escrow terms. Once
    /// settled the escrow is one of [`Wallet::escrows`]; after each redemption its change
    /// replaces it there.
    pub fn open_escrow(
        &mut self,
        now_ms: u64,
        amount: Amount,
        fee: Amount,
        expiry: Epoch,
        root: [u8; 32],
    ) -> Result<OrderDigest, LedgerError> {
        let escrow = Output {
            owner: self.identity.public_key(),
            amount,
            bond: Some(BondTerms::escrow(expiry, root)),
        };
        self.pay_output(now_ms, escrow, fee)
    }

    /// Lock `amount` as a bond of this wallet's own key under `terms` (burning `fee`): a normal
    /// transfer to itself whose output carries the terms. Once settled the bond is one of
    /// [`Wallet::bonds`] (never part of the balance); [`Wallet::output_proof`] proves it to
    /// others offline.
    pub fn lock_bond(
        &mut self,
        now_ms: u64,
        amount: Amount,
        fee: Amount,
        terms: BondTerms,
    ) -> Result<OrderDigest, LedgerError> {
        terms.check_shape()?;
        if terms.lottery.is_some() {
            return Err(LedgerError::Malformed(
                "an escrow is opened with open_escrow",
            ));
        }
        let bond = Output {
            owner: self.identity.public_key(),
            amount,
            bond: Some(terms),
        };
        self.pay_output(now_ms, bond, fee)
    }

    /// This wallet's bonds that are not escrows (live outputs it owns with bond terms), with
    /// their creation certificates.
    pub fn bonds(&self) -> impl Iterator<Item = (&OutputId, &Coin)> {
        self.coins
            .iter()
            .filter(|(_, c)| c.output.bond.as_ref().is_some_and(|t| t.lottery.is_none()))
    }

    /// The offline proof of one of this wallet's outputs created by a certified order (`None`
    /// for a genesis output or an output the wallet does not hold).
    pub fn output_proof(&self, id: &OutputId) -> Option<super::OutputProof> {
        let cert = self.coins.get(id)?.proof.as_ref()?;
        let digest = cert.order.digest();
        let index = (0..cert.order.outputs.len())
            .filter_map(|i| u16::try_from(i).ok())
            .find(|i| OutputId::new(&digest, *i) == *id)?;
        Some(super::OutputProof::new(cert.clone(), index))
    }

    /// Redeem a winning ticket paid to this wallet from `escrow_input` (the escrow's current
    /// output; `proof` is its creation certificate, e.g. from an
    /// [`OutputProof`](super::OutputProof), `None` for a genesis output), burning `fee` out of
    /// the winnings. Settles like any payment ([`WalletEvent::Settled`]); the payer's wallet
    /// gets the certificate too, to follow its escrow.
    pub fn redeem(
        &mut self,
        now_ms: u64,
        winning: WinningTicket,
        escrow_input: Input,
        proof: Option<Certificate>,
        fee: Amount,
    ) -> Result<OrderDigest, LedgerError> {
        winning.ticket.verify()?;
        let signed = SignedOrder::redeem(self.epoch, escrow_input, winning, fee)?;
        self.submit(now_ms, signed, proof.into_iter().collect())
    }

    /// This wallet's escrows: live outputs it owns with lottery terms, with their creation
    /// certificates (pass one to [`OutputProof::new`](super::OutputProof::new) for payees).
    pub fn escrows(&self) -> impl Iterator<Item = (&OutputId, &Coin)> {
        self.coins
            .iter()
            .filter(|(_, c)| c.output.bond.as_ref().is_some_and(|t| t.lottery.is_some()))
    }

    /// The live output of this wallet's escrow lineage `root`, if any.
    pub fn escrow(&self, root: &[u8; 32]) -> Option<(&OutputId, &Coin)> {
        self.escrows().find(|(_, c)| {
            c.output
                .bond
                .as_ref()
                .and_then(|t| t.lottery.as_ref())
                .is_some_and(|l| l.root == *root)
        })
    }

    /// Pay every `(payee, amount)` in one order (at most `OUTPUTS_MAX - 1` payees: one output
    /// is the change), burning `fee` once: a faucet or a payroll settles many payments in one
    /// round trip. [`WalletEvent::Settled`] reports the order.
    pub fn pay_all(
        &mut self,
        now_ms: u64,
        payments: &[(PublicKey, Amount)],
        fee: Amount,
    ) -> Result<OrderDigest, LedgerError> {
        if payments.is_empty() || payments.len() >= super::OUTPUTS_MAX {
            return Err(LedgerError::Malformed("1 to OUTPUTS_MAX - 1 payees"));
        }
        let outputs = payments
            .iter()
            .map(|(to, amount)| Output::plain(*to, *amount))
            .collect();
        self.pay_outputs(now_ms, outputs, fee)
    }

    /// Send `first` (to its owner), burning `fee`, from the largest coins, returning change.
    fn pay_output(
        &mut self,
        now_ms: u64,
        first: Output,
        fee: Amount,
    ) -> Result<OrderDigest, LedgerError> {
        self.pay_outputs(now_ms, vec![first], fee)
    }

    /// Send `outputs` (each to its owner), burning `fee`, from the largest coins, returning
    /// change.
    fn pay_outputs(
        &mut self,
        now_ms: u64,
        outputs: Vec<Output>,
        fee: Amount,
    ) -> Result<OrderDigest, LedgerError> {
        let amount = Amount::sum(outputs.iter().map(|o| o.amount))?;
        let need = amount.checked_add(fee)?;
        if outputs.iter().any(|o| o.amount == Amount::ZERO) {
            return Err(LedgerError::Malformed("zero payment"));
        }
        let mut candidates: Vec<_> = self.coins().map(|(id, c)| (*id, c.clone())).collect();
        candidates.sort_by(|a, b| {
            b.1.output
                .amount
                .cmp(&a.1.output.amount)
                .then(a.0.cmp(&b.0))
        });
        let mut chosen = Vec::new();
        let mut have = Amount::ZERO;
        for (id, coin) in candidates {
            if have >= need || chosen.len() == super::INPUTS_MAX {
                break;
            }
            have = have.checked_add(coin.output.amount)?;
            chosen.push((id, coin));
        }
        if have < need {
            return Err(LedgerError::InsufficientFunds {
                have: self.balance().0,
                need: need.0,
            });
        }
        let mut outputs = outputs;
        let change = have.checked_sub(need)?;
        if change > Amount::ZERO {
            outputs.push(Output::plain(self.identity.public_key(), change));
        }
        self.nonce += 1;
        let order = TransferOrder {
            epoch: self.epoch,
            nonce: self.nonce,
            inputs: chosen
                .iter()
                .map(|(id, c)| Input {
                    id: *id,
                    output: c.output.clone(),
                })
                .collect(),
            outputs,
            fee,
        };
        let proofs = chosen.into_iter().filter_map(|(_, c)| c.proof).collect();
        let signed = order.signed_by(&[&self.identity]);
        self.submit(now_ms, signed, proofs)
    }

    /// Submit any signed order (the wallet's own coins it spends are reserved until it settles
    /// or fails). Returns its digest.
    pub fn submit(
        &mut self,
        now_ms: u64,
        signed: SignedOrder,
        proofs: Vec<Certificate>,
    ) -> Result<OrderDigest, LedgerError> {
        signed.order.check_shape()?;
        let committee = self
            .committees
            .get(&signed.order.epoch)
            .ok_or(LedgerError::UnknownEpoch(signed.order.epoch.0))?;
        let digest = signed.order.digest();
        if self.pending.contains_key(&digest) {
            return Ok(digest);
        }
        let shards: Vec<Vec<usize>> = signed
            .order
            .inputs
            .iter()
            .map(|i| committee.shard(&i.id))
            .collect();
        let targets: BTreeSet<usize> = shards.iter().flatten().copied().collect();
        for input in &signed.order.inputs {
            if self.coins.contains_key(&input.id) {
                self.reserved.insert(input.id, digest);
            }
        }
        let msg = LedgerMsg::Order {
            order: signed.clone(),
            proofs: proofs.clone(),
        };
        for t in &targets {
            push(&mut self.outbox, committee.peer_id(*t), msg.clone());
        }
        self.pending.insert(
            digest,
            Pending {
                signed,
                proofs,
                shards,
                targets,
                votes: BTreeMap::new(),
                verified: BTreeSet::new(),
                refused: BTreeMap::new(),
                conflict: false,
                started_ms: now_ms,
                retry_at_ms: now_ms.saturating_add(self.cfg.retry_ms),
                backoff: self.cfg.retry_ms,
            },
        );
        Ok(digest)
    }

    /// Forfeit `bond` on `evidence` (the wallet should be among its beneficiaries to profit).
    pub fn forfeit(
        &mut self,
        now_ms: u64,
        bond: Input,
        evidence: Evidence,
    ) -> Result<OrderDigest, LedgerError> {
        let signed = SignedOrder::forfeit(self.epoch, bond, evidence)?;
        self.submit(now_ms, signed, Vec::new())
    }

    /// Handle a message from `from`.
    pub fn handle_message(
        &mut self,
        now_ms: u64,
        from: PeerId,
        msg: LedgerMsg,
    ) -> Result<(), LedgerError> {
        match msg {
            LedgerMsg::Vote { order, vote } => {
                self.handle_vote(now_ms, order, vote);
                Ok(())
            }
            LedgerMsg::Reject { order, reason } => {
                self.handle_reject(order, from, reason);
                Ok(())
            }
            LedgerMsg::Confirm(cert) => self.handle_confirm(from, &cert),
            LedgerMsg::Confirmed(order) => {
                if let Some(u) = self.unconfirmed.get_mut(&order) {
                    u.to.remove(&from);
                    if u.to.is_empty() {
                        self.unconfirmed.remove(&order);
                    }
                }
                Ok(())
            }
            LedgerMsg::Evidence(proof) => self.handle_evidence(now_ms, *proof),
            LedgerMsg::Reconfigure(r) => {
                let current = self
                    .committees
                    .get(&self.epoch)
                    .expect("current committee known");
                r.verify(current)?;
                self.set_committee(r.next);
                Ok(())
            }
            LedgerMsg::Order { .. } | LedgerMsg::Report { .. } | LedgerMsg::Handoff(_) => {
                Err(LedgerError::Malformed("not for a wallet"))
            }
        }
    }

    fn handle_vote(&mut self, now_ms: u64, order: OrderDigest, vote: Vote) {
        let Some(p) = self.pending.get_mut(&order) else {
            return;
        };
        let Some(committee) = self.committees.get(&p.signed.order.epoch) else {
            return;
        };
        let Some(i) = committee.index_of(&vote.validator) else {
            return;
        };
        if !p.targets.contains(&i) || p.votes.contains_key(&i) {
            return;
        }
        p.votes.insert(i, vote);
        p.refused.remove(&i);
        self.try_certify(now_ms, order);
    }

    fn has_quorum(committee: &Committee, p: &Pending) -> bool {
        p.shards.iter().all(|shard| {
            let total: u64 = shard.iter().map(|&i| committee.weight(i)).sum();
            let got: u64 = shard
                .iter()
                .filter(|i| p.votes.contains_key(i))
                .map(|&i| committee.weight(i))
                .sum();
            is_quorum(got, total)
        })
    }

    fn try_certify(&mut self, now_ms: u64, digest: OrderDigest) {
        let Some(p) = self.pending.get_mut(&digest) else {
            return;
        };
        let committee = self
            .committees
            .get(&p.signed.order.epoch)
            .expect("pending orders name a known epoch");
        if !Self::has_quorum(committee, p) {
            return;
        }
        // Check the new votes in one batch; drop forgeries and wait for more if they mattered.
        let new: Vec<usize> = p
            .votes
            .keys()
            .filter(|i| !p.verified.contains(i))
            .copied()
            .collect();
        let mut batch = SigBatch::default();
        let mut checked = Vec::with_capacity(new.len());
        for i in &new {
            match p.votes[i].signed_message(&digest) {
                Ok(m) => {
                    batch.push(
                        committee.verifying_key(*i),
                        Domain::LedgerVote,
                        &m,
                        &p.votes[i].signature,
                    );
                    checked.push(*i);
                }
                Err(_) => {
                    p.votes.remove(i);
                }
            }
        }
        if !batch.verify() {
            for bad in batch.failures() {
                p.votes.remove(&checked[bad]);
            }
        }
        p.verified.extend(p.votes.keys().copied());
        if !Self::has_quorum(committee, p) {
            return;
        }
        let p = self.pending.remove(&digest).expect("present");
        // A redemption's payer follows its escrow through the certificate even when no change
        // output is left for it.
        let escrow_owner = match &p.signed.authority {
            Authority::Redeem(_) => p.signed.order.inputs.first().map(|i| i.output.owner),
            Authority::Owners(_) | Authority::Forfeit(_) => None,
        };
        let cert = Certificate {
            order: p.signed.order,
            votes: p.votes.into_values().collect(),
        };
        for input in &cert.order.inputs {
            self.coins.remove(&input.id);
            self.reserved.remove(&input.id);
        }
        let me = self.identity.public_key();
        let mut payees = BTreeSet::new();
        for (id, o) in cert.order.created(&digest) {
            if o.owner == me {
                self.coins.insert(
                    id,
                    Coin {
                        output: o.clone(),
                        proof: Some(cert.clone()),
                    },
                );
            } else {
                payees.insert(PeerId::from_public_key(&o.owner));
            }
        }
        if let Some(owner) = escrow_owner.filter(|o| *o != me) {
            payees.insert(PeerId::from_public_key(&owner));
        }
        if p.conflict {
            // Someone else is spending these inputs too: let their validators see the votes.
            for t in &p.targets {
                push(
                    &mut self.outbox,
                    committee.peer_id(*t),
                    LedgerMsg::Confirm(cert.clone()),
                );
            }
        }
        for to in &payees {
            push(&mut self.outbox, *to, LedgerMsg::Confirm(cert.clone()));
        }
        if !payees.is_empty() {
            self.unconfirmed.insert(
                digest,
                Unconfirmed {
                    cert: cert.clone(),
                    to: payees,
                    retry_at_ms: now_ms.saturating_add(self.cfg.retry_ms),
                    tries: 0,
                },
            );
        }
        if self.recent.len() >= RECENT_MAX {
            self.recent.pop_front();
        }
        self.recent.push_back(cert.clone());
        self.events.push_back(WalletEvent::Settled {
            order: digest,
            elapsed_ms: now_ms.saturating_sub(p.started_ms),
            certificate: Box::new(cert),
        });
    }

    fn handle_reject(&mut self, digest: OrderDigest, from: PeerId, reason: RejectReason) {
        let Some(p) = self.pending.get_mut(&digest) else {
            return;
        };
        let committee = self
            .committees
            .get(&p.signed.order.epoch)
            .expect("pending orders name a known epoch");
        let Some(i) = p
            .targets
            .iter()
            .copied()
            .find(|&i| committee.peer_id(i) == from)
        else {
            return;
        };
        if p.votes.contains_key(&i) {
            return;
        }
        if matches!(reason, RejectReason::Conflicting(_)) {
            p.conflict = true;
        }
        if reason.is_transient() {
            return;
        }
        p.refused.insert(i, reason);
        // Hopeless once refusals hold ≥ 1/3 of some input's shard.
        let hopeless = p.shards.iter().any(|shard| {
            let total: u64 = shard.iter().map(|&i| committee.weight(i)).sum();
            let refused: u64 = shard
                .iter()
                .filter(|i| p.refused.contains_key(i))
                .map(|&i| committee.weight(i))
                .sum();
            !is_quorum(total - refused, total)
        });
        if !hopeless {
            return;
        }
        let p = self.pending.remove(&digest).expect("present");
        if p.conflict {
            let report = LedgerMsg::Report {
                order: p.signed.order.clone(),
                votes: p.votes.values().cloned().collect(),
            };
            // Our own certified order on the same inputs (a double spend from this wallet)
            // goes along, so the validators hold both sides of any equivocation.
            let related: Vec<_> = self
                .recent
                .iter()
                .filter(|c| {
                    c.order
                        .inputs
                        .iter()
                        .any(|i| p.signed.order.inputs.iter().any(|j| j.id == i.id))
                })
                .cloned()
                .collect();
            for t in &p.targets {
                push(&mut self.outbox, committee.peer_id(*t), report.clone());
                for c in &related {
                    push(
                        &mut self.outbox,
                        committee.peer_id(*t),
                        LedgerMsg::Confirm(c.clone()),
                    );
                }
            }
        }
        for input in &p.signed.order.inputs {
            if self.reserved.get(&input.id) == Some(&digest) {
                self.reserved.remove(&input.id);
                if p.conflict {
                    // Locked by another order: not spendable by us any more.
                    self.coins.remove(&input.id);
                }
            }
        }
        self.events.push_back(WalletEvent::Failed {
            order: digest,
            reason,
        });
    }

    fn handle_confirm(&mut self, from: PeerId, cert: &Certificate) -> Result<(), LedgerError> {
        let committee = self
            .committees
            .get(&cert.order.epoch)
            .ok_or(LedgerError::UnknownEpoch(cert.order.epoch.0))?;
        let digest = cert.order.digest();
        let me = self.identity.public_key();
        let fresh: Vec<_> = cert
            .order
            .created(&digest)
            .filter(|(id, o)| o.owner == me && !self.coins.contains_key(id))
            .map(|(id, o)| (id, o.clone()))
            .collect();
        // Our outputs someone else spent (a ticket redeemed from our escrow, a forfeit).
        let spent: Vec<_> = cert
            .order
            .inputs
            .iter()
            .filter(|i| self.coins.contains_key(&i.id))
            .map(|i| i.id)
            .collect();
        if !fresh.is_empty() || !spent.is_empty() {
            cert.verify(committee)?;
        }
        let mut escrow_paid = None;
        for id in spent {
            let Some(coin) = self.coins.remove(&id) else {
                continue;
            };
            if coin
                .output
                .bond
                .as_ref()
                .is_some_and(|t| t.lottery.is_some())
            {
                let change = fresh
                    .iter()
                    .filter(|(_, o)| o.bond.as_ref().is_some_and(|t| t.lottery.is_some()))
                    .map(|(_, o)| o.amount)
                    .next()
                    .unwrap_or(Amount::ZERO);
                // Saturating: nothing below may fail half-way through this update.
                escrow_paid = Some((id, Amount(coin.output.amount.0.saturating_sub(change.0))));
            }
        }
        if let Some((escrow, paid)) = escrow_paid {
            self.events.push_back(WalletEvent::EscrowSpent {
                order: digest,
                escrow,
                paid,
            });
        }
        let received: Vec<_> = fresh
            .iter()
            .filter(|(_, o)| escrow_paid.is_none() || o.bond.is_none())
            .map(|(_, o)| o.amount)
            .collect();
        for (id, output) in fresh {
            self.coins.insert(
                id,
                Coin {
                    output,
                    proof: Some(cert.clone()),
                },
            );
        }
        if !received.is_empty() {
            self.events.push_back(WalletEvent::Received {
                order: digest,
                amount: Amount::sum(received)?,
            });
        }
        push(&mut self.outbox, from, LedgerMsg::Confirmed(digest));
        Ok(())
    }

    fn handle_evidence(
        &mut self,
        now_ms: u64,
        proof: EquivocationProof,
    ) -> Result<(), LedgerError> {
        if self.forfeited.contains(&proof.validator) {
            return Ok(());
        }
        let Some(bond) = self.bonds.get(&proof.validator).cloned() else {
            return Ok(());
        };
        proof.verify()?;
        self.forfeited.insert(proof.validator);
        self.forfeit(now_ms, bond, Evidence::Equivocation(Box::new(proof)))?;
        Ok(())
    }

    /// When [`Wallet::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<u64> {
        let a = self.pending.values().map(|p| p.retry_at_ms).min();
        let b = self.unconfirmed.values().map(|u| u.retry_at_ms).min();
        a.into_iter().chain(b).min()
    }

    /// Retry unanswered orders (to validators that neither voted nor refused for good) and
    /// unacknowledged certificates.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let mut sends = Vec::new();
        for p in self.pending.values_mut() {
            if p.retry_at_ms > now_ms {
                continue;
            }
            let committee = &self.committees[&p.signed.order.epoch];
            let msg = LedgerMsg::Order {
                order: p.signed.clone(),
                proofs: p.proofs.clone(),
            };
            for t in &p.targets {
                if !p.votes.contains_key(t) && !p.refused.contains_key(t) {
                    sends.push((committee.peer_id(*t), msg.clone()));
                }
            }
            p.backoff = (p.backoff * 2).min(self.cfg.retry_ms * 8);
            p.retry_at_ms = now_ms.saturating_add(p.backoff);
        }
        let max = self.cfg.confirm_retries_max;
        self.unconfirmed.retain(|_, u| u.tries < max);
        for u in self.unconfirmed.values_mut() {
            if u.retry_at_ms > now_ms {
                continue;
            }
            u.tries += 1;
            u.retry_at_ms = now_ms.saturating_add(self.cfg.retry_ms * 4);
            for to in &u.to {
                sends.push((*to, LedgerMsg::Confirm(u.cert.clone())));
            }
        }
        for (to, msg) in sends {
            push(&mut self.outbox, to, msg);
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<(PeerId, LedgerMsg)> {
        self.outbox.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<WalletEvent> {
        self.events.pop_front()
    }
}

fn push(outbox: &mut VecDeque<(PeerId, LedgerMsg)>, to: PeerId, msg: LedgerMsg) {
    if outbox.len() < OUTBOX_MAX {
        outbox.push_back((to, msg));
    }
}
