//! Lottery tickets on the ledger simulator: a few honest clients open escrows; paid responses
//! (from a random payer to a random payee) each carry a ticket at `P(win) = fee / face`; a
//! winning ticket is redeemed by its payee's wallet from the payer's current escrow output. The
//! checker sees every redemption certificate like any other (value conserved, no double spend).
//!
//! A payee redeems only from an escrow output no other redemption is using (the sim waits until
//! the payer's wallet has followed its escrow to the change), as a real payee would after a
//! conflict; a win from a drained escrow goes unpaid (the payee's risk, counted).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_core::RngCore;
use sha2::{Digest, Sha256};

use super::{LedgerSim, Node};
use crate::proto::ledger::ticket::commit;
use crate::proto::ledger::{
    Amount, Epoch, Input, OrderDigest, OutputId, SignedTicket, Ticket, WinningTicket,
    win_threshold_for,
};

/// Escrows' lifetime in the simulator (it never reconfigures).
const EXPIRY: Epoch = Epoch(1_000);

/// Tickets state of a run.
#[derive(Debug, Default)]
pub(super) struct Tickets {
    /// Node indices of the clients with an escrow.
    payers: Vec<usize>,
    opened: bool,
    credit: u64,
    /// Winning tickets waiting for their payer's escrow to be free: (payee, payer, ticket).
    waiting: VecDeque<(usize, usize, WinningTicket)>,
    /// Payer → escrow output a submitted redemption spends.
    in_flight: BTreeMap<usize, OutputId>,
    /// Payers whose escrow was seen settled (a missing escrow is then drained, not pending).
    seen: BTreeSet<usize>,
    /// Submitted redemptions → payer.
    pub(super) redemptions: BTreeMap<OrderDigest, usize>,
    pub(super) issued: u64,
    pub(super) won: u64,
    pub(super) unpaid: u64,
}

impl LedgerSim {
    fn root(&self, payer: usize) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"sim escrow");
        h.update(self.cfg.seed.to_le_bytes());
        h.update((payer as u64).to_le_bytes());
        h.finalize().into()
    }

    /// Called every tick: open escrows once, issue this tick's tickets (if `issue`: payments
    /// run), and redeem waiting winners whose payer's escrow is free.
    pub(super) fn tick_tickets(&mut self, issue: bool) {
        if self.cfg.ticket_payers == 0 {
            return;
        }
        let v = self.cfg.validators;
        if !self.tickets.opened {
            self.tickets.opened = true;
            let first = 4 + self.cfg.double_spenders;
            let last = (first + self.cfg.ticket_payers).min(self.cfg.clients);
            for c in first..last {
                let n = v + c;
                let root = self.root(n);
                let now = self.now_ms;
                let escrow = Amount(self.cfg.ticket_face * 10);
                if let Node::Client { wallet, .. } = &mut self.nodes[n]
                    && wallet
                        .open_escrow(now, escrow, Amount(1), EXPIRY, root)
                        .is_ok()
                {
                    self.tickets.payers.push(n);
                    self.active.insert(n);
                }
                self.drain(n);
            }
        }
        self.tickets.credit += if issue { self.cfg.tickets_per_s } else { 0 };
        while self.tickets.credit >= 10 {
            self.tickets.credit -= 10;
            self.issue_ticket();
        }
        for _ in 0..self.tickets.waiting.len() {
            let Some((payee, payer, winning)) = self.tickets.waiting.pop_front() else {
                break;
            };
            if let Some(w) = self.redeem(payee, payer, winning) {
                self.tickets.waiting.push_back(w);
            }
        }
    }

    /// One paid response: a ticket from a random payer to a random client, drawn now.
    fn issue_ticket(&mut self) {
        if self.tickets.payers.is_empty() {
            return;
        }
        let v = self.cfg.validators;
        let payer =
            self.tickets.payers[(self.rng.next_u64() % self.tickets.payers.len() as u64) as usize];
        let mut payee = v + (self.rng.next_u64() % self.cfg.clients as u64) as usize;
        if payee == payer {
            payee = v + ((payee - v + 1) % self.cfg.clients);
        }
        let mut secret = [0u8; 32];
        self.rng.fill_bytes(&mut secret);
        let mut payer_rand = [0u8; 32];
        self.rng.fill_bytes(&mut payer_rand);
        let (Node::Client { identity: p, .. }, Node::Client { identity: q, .. }) =
            (&self.nodes[payer], &self.nodes[payee])
        else {
            return;
        };
        let face = Amount(self.cfg.ticket_face);
        let ticket = Ticket {
            escrow_root: self.root(payer),
            payer: p.public_key(),
            payee: q.public_key(),
            face,
            win_threshold: win_threshold_for(Amount(self.cfg.ticket_fee), face)
                .expect("the config's fee is at most its face"),
            payee_commit: commit(&secret),
            payer_rand,
            expiry: EXPIRY,
        };
        self.tickets.issued += 1;
        let signed = SignedTicket::sign(p, ticket);
        if signed.wins(&secret) {
            self.tickets.won += 1;
            let winning = WinningTicket {
                ticket: signed,
                reveal: secret,
            };
            if let Some(w) = self.redeem(payee, payer, winning) {
                self.tickets.waiting.push_back(w);
            }
        }
    }

    /// Submit the redemption if the payer's escrow is free; give the ticket back otherwise.
    fn redeem(
        &mut self,
        payee: usize,
        payer: usize,
        winning: WinningTicket,
    ) -> Option<(usize, usize, WinningTicket)> {
        let root = self.root(payer);
        let Node::Client { wallet, .. } = &self.nodes[payer] else {
            return None;
        };
        let Some((id, coin)) = wallet.escrow(&root).map(|(i, c)| (*i, c.clone())) else {
            // Not settled yet: wait. Drained: the win goes unpaid.
            if !self.tickets.seen.contains(&payer) {
                return Some((payee, payer, winning));
            }
            self.tickets.unpaid += 1;
            return None;
        };
        self.tickets.seen.insert(payer);
        if self.tickets.in_flight.get(&payer) == Some(&id) {
            return Some((payee, payer, winning));
        }
        let now = self.now_ms;
        let Node::Client { wallet, .. } = &mut self.nodes[payee] else {
            return None;
        };
        let input = Input {
            id,
            output: coin.output,
        };
        match wallet.redeem(now, winning, input, coin.proof, Amount::ZERO) {
            Ok(d) => {
                self.tickets.redemptions.insert(d, payer);
                self.tickets.in_flight.insert(payer, id);
                self.active.insert(payee);
                self.drain(payee);
            }
            Err(_) => self.tickets.unpaid += 1,
        }
        None
    }

    /// A redemption failed: its payer's escrow is free again.
    pub(super) fn redemption_failed(&mut self, order: &OrderDigest) {
        if let Some(payer) = self.tickets.redemptions.get(order) {
            self.tickets.in_flight.remove(payer);
        }
    }
}
