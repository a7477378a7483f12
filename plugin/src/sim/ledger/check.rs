//! The ledger simulator's checker and the enumeration of every possible shard.

use std::collections::{BTreeMap, BTreeSet};

use crate::proto::identity::PeerId;
use crate::proto::ledger::{Certificate, Committee, Genesis, OrderDigest, Output, OutputId};

/// What the simulator checks on every certificate and after every step.
#[derive(Debug, Default)]
pub struct Checker {
    pub(super) live: BTreeMap<OutputId, Output>,
    pub(super) spent_by: BTreeMap<OutputId, OrderDigest>,
    certified: BTreeSet<OrderDigest>,
    live_total: u128,
    burned: u128,
    minted: u128,
}

impl Checker {
    pub(super) fn new(genesis: &Genesis) -> Self {
        let mut c = Self::default();
        for (id, o) in genesis.created() {
            c.live_total += u128::from(o.amount.0);
            c.live.insert(id, o.clone());
        }
        c.minted = c.live_total;
        c
    }

    /// Record a certificate; panics on a double spend or an input that did not exist as claimed.
    pub(super) fn certificate(&mut self, cert: &Certificate) {
        let digest = cert.order.digest();
        if !self.certified.insert(digest) {
            return;
        }
        for input in &cert.order.inputs {
            if let Some(other) = self.spent_by.insert(input.id, digest) {
                panic!(
                    "two certificates spend {:?}: {other:?} and {digest:?}",
                    input.id
                );
            }
            let existing = self
                .live
                .remove(&input.id)
                .unwrap_or_else(|| panic!("certificate spends unknown {:?}", input.id));
            assert_eq!(existing, input.output, "certified input claim is false");
            self.live_total -= u128::from(existing.amount.0);
        }
        for (id, o) in cert.order.created(&digest) {
            self.live_total += u128::from(o.amount.0);
            self.live.insert(id, o.clone());
        }
        self.burned += u128::from(cert.order.fee.0);
    }

    /// `Σ live + Σ burned == Σ minted`.
    pub fn assert_conserved(&self) {
        assert_eq!(
            self.live_total + self.burned,
            self.minted,
            "value not conserved"
        );
    }

    /// Certificates seen.
    pub fn certificates(&self) -> usize {
        self.certified.len()
    }

    /// Whether `order` was certified.
    pub fn is_certified(&self, order: &OrderDigest) -> bool {
        self.certified.contains(order)
    }
}

/// Every validator set an output can have: the `k` XOR-closest members to some key. Walks the
/// binary trie of member ids: at each bit, the key's side supplies what it has and the other
/// side the rest, for any key on either side.
pub fn all_shards(committee: &Committee) -> BTreeSet<Vec<usize>> {
    fn rec(ids: &[(PeerId, usize)], depth: u8, k: usize, out: &mut Vec<Vec<usize>>) {
        if ids.len() <= k || depth == 255 {
            out.push(ids.iter().map(|(_, i)| *i).collect());
            return;
        }
        let (zeros, ones): (Vec<_>, Vec<_>) = ids.iter().partition(|(p, _)| !p.bit(depth));
        for (near, far) in [(&zeros, &ones), (&ones, &zeros)] {
            if near.len() >= k {
                rec(near, depth + 1, k, out);
            } else {
                let mut sub = Vec::new();
                rec(far, depth + 1, k - near.len(), &mut sub);
                for s in sub {
                    out.push(near.iter().map(|(_, i)| *i).chain(s).collect());
                }
            }
        }
    }
    let ids: Vec<_> = (0..committee.validators().len())
        .map(|i| (committee.peer_id(i), i))
        .collect();
    let mut out = Vec::new();
    rec(&ids, 0, usize::from(committee.shard_size), &mut out);
    out.into_iter()
        .map(|mut s| {
            s.sort_unstable();
            s
        })
        .collect()
}
