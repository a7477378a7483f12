//! The validator's storage boundary.
//!
//! # Contract
//!
//! A [`LedgerStore`] is the validator's memory of what it promised. The [`Validator`] keeps no
//! lock state of its own: it reads every input through [`LedgerStore::output`] and changes state
//! only through [`LedgerStore::apply`]. Implementations must guarantee:
//!
//! 1. **Atomic**: `apply` records all of its ops or none of them.
//! 2. **Durable before `Ok`**: when `apply` returns `Ok`, the ops survive a crash (SIGKILL, power
//!    loss) of the process. The validator signs a vote *only after* `apply` of the vote's locks
//!    returned `Ok`; on `Err` it signs nothing. So a restarted validator never signs an order
//!    conflicting with a vote it gave before the crash.
//! 3. **Locks are never replaced**: a `Lock` (or `Spend`) on an input already locked by a
//!    *different* order must fail the whole `apply` (the validator never asks for that; this
//!    is a second line of defence).
//! 4. **Reads see every applied op** (read-your-writes).
//!
//! [`MemoryStore`] is the in-memory implementation (simulator, tests). The node's crash-safe
//! implementation (one database write transaction per `apply`, committed with fsync) goes behind
//! the same trait.
//!
//! [`Validator`]: super::Validator

use std::collections::{BTreeMap, BTreeSet};

use super::{Committee, Epoch, OrderDigest, Output, OutputId};
use crate::proto::identity::PublicKey;

/// A storage failure. Nothing was recorded and nothing will be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// What a validator knows about one output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputState {
    /// The output's content, once its creation is known (genesis or a verified certificate).
    pub output: Option<Output>,
    /// The order this validator voted for (or learnt certified) spending it.
    pub lock: Option<OrderDigest>,
    /// The certified order that spent it, if a certificate was seen.
    pub spent: Option<OrderDigest>,
}

/// One change to validator state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// An output exists (creation seen).
    Create {
        /// Its id.
        id: OutputId,
        /// Its content.
        output: Output,
    },
    /// Lock `input` for `order` (before voting, or taken over from a handoff).
    Lock {
        /// The input.
        input: OutputId,
        /// The order.
        order: OrderDigest,
    },
    /// `order` was certified: `input` is spent (and locked for `order` if it was not locked).
    Spend {
        /// The input.
        input: OutputId,
        /// The order.
        order: OrderDigest,
    },
    /// The committee of an epoch became known (applied on reconfiguration).
    Committee(Box<Committee>),
    /// A handoff part from `from` for `epoch` was absorbed (its locks are in the same batch).
    Handoff {
        /// The new epoch.
        epoch: Epoch,
        /// The old-committee member.
        from: PublicKey,
        /// Part number.
        part: u16,
        /// Parts in all.
        parts: u16,
    },
}

/// Storage of a validator's outputs, locks, committees and absorbed handoffs. See the module docs
/// for the contract every implementation must keep.
pub trait LedgerStore {
    /// What is known about `id` (all `None` if nothing).
    fn output(&self, id: &OutputId) -> Result<OutputState, StoreError>;
    /// Record `ops` atomically and durably; see the module docs.
    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), StoreError>;
    /// Every lock held, sorted by input (for handoffs).
    fn locks(&self) -> Result<Vec<(OutputId, OrderDigest)>, StoreError>;
    /// Every committee recorded, sorted by epoch.
    fn committees(&self) -> Result<Vec<Committee>, StoreError>;
    /// Handoff parts absorbed for `epoch`: `(from, part, parts)`.
    fn handoffs(&self, epoch: Epoch) -> Result<Vec<(PublicKey, u16, u16)>, StoreError>;
}

/// In-memory [`LedgerStore`]. `fail_writes` makes every `apply` fail (to test that a failing
/// store means no vote).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    outputs: BTreeMap<OutputId, OutputState>,
    committees: BTreeMap<Epoch, Committee>,
    handoffs: BTreeSet<(Epoch, PublicKey, u16, u16)>,
    /// When set, `apply` fails and records nothing.
    pub fail_writes: bool,
    /// Successful `apply` calls (a stand-in for fsyncs in benchmarks).
    pub commits: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Outputs tracked.
    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }
}

impl LedgerStore for MemoryStore {
    fn output(&self, id: &OutputId) -> Result<OutputState, StoreError> {
        Ok(self.outputs.get(id).cloned().unwrap_or_default())
    }

    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        if self.fail_writes {
            return Err(StoreError("writes disabled".into()));
        }
        // Check first so that a refused batch records nothing (atomicity).
        let mut pending: BTreeMap<OutputId, OrderDigest> = BTreeMap::new();
        for op in ops {
            if let StoreOp::Lock { input, order } | StoreOp::Spend { input, order } = op {
                let held = pending
                    .get(input)
                    .copied()
                    .or_else(|| self.outputs.get(input).and_then(|s| s.lock));
                if let Some(held) = held
                    && held != *order
                {
                    return Err(StoreError(format!("{input:?} already locked by {held:?}")));
                }
                pending.insert(*input, *order);
            }
        }
        for op in ops {
            match op {
                StoreOp::Create { id, output } => {
                    self.outputs.entry(*id).or_default().output = Some(output.clone());
                }
                StoreOp::Lock { input, order } => {
                    self.outputs.entry(*input).or_default().lock = Some(*order);
                }
                StoreOp::Spend { input, order } => {
                    let s = self.outputs.entry(*input).or_default();
                    s.lock = Some(*order);
                    s.spent = Some(*order);
                }
                StoreOp::Committee(c) => {
                    self.committees.insert(c.epoch, (**c).clone());
                }
                StoreOp::Handoff {
                    epoch,
                    from,
                    part,
                    parts,
                } => {
                    self.handoffs.insert((*epoch, *from, *part, *parts));
                }
            }
        }
        self.commits += 1;
        Ok(())
    }

    fn locks(&self) -> Result<Vec<(OutputId, OrderDigest)>, StoreError> {
        Ok(self
            .outputs
            .iter()
            .filter_map(|(id, s)| s.lock.map(|l| (*id, l)))
            .collect())
    }

    fn committees(&self) -> Result<Vec<Committee>, StoreError> {
        Ok(self.committees.values().cloned().collect())
    }

    fn handoffs(&self, epoch: Epoch) -> Result<Vec<(PublicKey, u16, u16)>, StoreError> {
        Ok(self
            .handoffs
            .range((epoch, PublicKey([0; 32]), 0, 0)..)
            .take_while(|(e, ..)| *e == epoch)
            .map(|(_, f, p, n)| (*f, *p, *n))
            .collect())
    }
}
