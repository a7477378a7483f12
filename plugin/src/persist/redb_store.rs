//! [`RedbStore`]: the validator's [`LedgerStore`] on redb, crash-safe.
//!
//! # How it keeps the store contract
//!
//! - **Atomic**: every [`LedgerStore::apply`] is one redb write transaction. Ops are checked and
//!   written inside it; on any refusal or error the transaction is aborted, so none of the ops
//!   is recorded.
//! - **Durable before `Ok`**: the transaction commits with [`Durability::Immediate`] (redb
//!   fsyncs before `commit` returns) and with quick repair on, which commits in two phases (the
//!   header is only switched to the new root after the data is synced) and makes reopening after
//!   a crash cheap. A SIGKILL at any instant leaves either the state before the `apply` or the
//!   state after it.
//! - **Locks are never replaced**: `Lock`/`Spend` read the input's record *inside the write
//!   transaction* (so they see earlier ops of the same batch) and fail the whole `apply` when a
//!   different order holds the lock.
//! - **Read-your-writes**: reads go through a read snapshot taken after every commit (one
//!   `begin_read` per commit, not per read); if taking it fails, reads fall back to a fresh
//!   read transaction.
//!
//! # Layout
//!
//! | table        | key                                              | value                          |
//! |--------------|--------------------------------------------------|--------------------------------|
//! | `meta`       | `"format"`                                       | `u32` format version (1)       |
//! | `outputs`    | output id (32 bytes)                             | bincode `(Option<Output>, Option<lock>, Option<spent>)` |
//! | `committees` | epoch (`u64`)                                    | bincode `Committee`            |
//! | `handoffs`   | epoch BE (8) ‖ from key (32) ‖ part BE (2) ‖ parts BE (2) | `()`                  |
//!
//! Values use the wire's bincode configuration and byte limit, so a corrupt record is an error,
//! never a panic. redb takes an exclusive lock on the file: two validators cannot share one.

use std::cell::RefCell;
use std::path::Path;

use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use crate::proto::identity::PublicKey;
use crate::proto::ledger::{
    Committee, Epoch, LedgerStore, OrderDigest, Output, OutputId, OutputState, StoreError, StoreOp,
};
use crate::proto::wire;

const META: TableDefinition<'static, &str, u32> = TableDefinition::new("meta");
const OUTPUTS: TableDefinition<'static, [u8; 32], &[u8]> = TableDefinition::new("outputs");
const COMMITTEES: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("committees");
const HANDOFFS: TableDefinition<'static, [u8; 44], ()> = TableDefinition::new("handoffs");

/// The on-disk format this code reads and writes.
const FORMAT: u32 = 1;

/// One output's record (what [`OutputState`] holds, in a serialisable shape).
#[derive(Serialize, Deserialize)]
struct Record {
    output: Option<Output>,
    lock: Option<OrderDigest>,
    spent: Option<OrderDigest>,
}

impl Record {
    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        wire::decode(bytes).map_err(|e| StoreError(format!("corrupt output record: {e}")))
    }

    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        wire::encode_body(self).map_err(|e| StoreError(format!("output record: {e}")))
    }

    fn into_state(self) -> OutputState {
        OutputState {
            output: self.output,
            lock: self.lock,
            spent: self.spent,
        }
    }
}

fn handoff_key(epoch: Epoch, from: &PublicKey, part: u16, parts: u16) -> [u8; 44] {
    let mut k = [0u8; 44];
    k[..8].copy_from_slice(&epoch.0.to_be_bytes());
    k[8..40].copy_from_slice(&from.0);
    k[40..42].copy_from_slice(&part.to_be_bytes());
    k[42..].copy_from_slice(&parts.to_be_bytes());
    k
}

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError(format!("{what}: {e}"))
}

/// A crash-safe [`LedgerStore`] in one redb file. See the module docs for how it keeps the store
/// contract.
pub struct RedbStore {
    db: Database,
    /// The outputs table as of the last commit (`None` after a failed refresh: reads then open
    /// a fresh read transaction).
    snapshot: RefCell<Option<ReadOnlyTable<[u8; 32], &'static [u8]>>>,
    /// Successful non-empty `apply` calls since opening (each one a durable commit).
    commits: u64,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("commits", &self.commits)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Open the store at `path`, creating the file (not its directory) if it does not exist.
    /// After a crash redb repairs the file on open. Fails if another process holds it open.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::builder()
            .create(path)
            .map_err(|e| StoreError(format!("open {}: {e}", path.display())))?;
        let txn = begin_write(&db)?;
        {
            let mut meta = txn.open_table(META).map_err(err("meta table"))?;
            let format = meta
                .get("format")
                .map_err(err("read format"))?
                .map(|g| g.value());
            match format {
                None => {
                    meta.insert("format", FORMAT).map_err(err("write format"))?;
                }
                Some(FORMAT) => {}
                Some(other) => {
                    return Err(StoreError(format!(
                        "{}: store format {other}, this build reads {FORMAT}",
                        path.display()
                    )));
                }
            }
            txn.open_table(OUTPUTS).map_err(err("outputs table"))?;
            txn.open_table(COMMITTEES)
                .map_err(err("committees table"))?;
            txn.open_table(HANDOFFS).map_err(err("handoffs table"))?;
        }
        txn.commit().map_err(err("commit"))?;
        let store = Self {
            db,
            snapshot: RefCell::new(None),
            commits: 0,
        };
        store.refresh();
        Ok(store)
    }

    /// Durable commits made through this handle (one per non-empty `apply`).
    pub fn commits(&self) -> u64 {
        self.commits
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.db.begin_read().map_err(err("begin read"))
    }

    fn refresh(&self) {
        let table = self
            .read()
            .and_then(|r| r.open_table(OUTPUTS).map_err(err("outputs table")))
            .ok();
        *self.snapshot.borrow_mut() = table;
    }

    /// Record `ops` inside `txn`; an `Err` leaves the caller to abort.
    fn write(txn: &WriteTransaction, ops: &[StoreOp]) -> Result<(), StoreError> {
        let mut outputs = txn.open_table(OUTPUTS).map_err(err("outputs table"))?;
        let mut committees = txn
            .open_table(COMMITTEES)
            .map_err(err("committees table"))?;
        let mut handoffs = txn.open_table(HANDOFFS).map_err(err("handoffs table"))?;
        for op in ops {
            match op {
                StoreOp::Create { id, output } => {
                    let mut r = load(&outputs, id)?;
                    r.output = Some(output.clone());
                    outputs
                        .insert(id.0, r.encode()?.as_slice())
                        .map_err(err("write output"))?;
                }
                StoreOp::Lock { input, order } | StoreOp::Spend { input, order } => {
                    let mut r = load(&outputs, input)?;
                    if let Some(held) = r.lock
                        && held != *order
                    {
                        return Err(StoreError(format!("{input:?} already locked by {held:?}")));
                    }
                    r.lock = Some(*order);
                    if matches!(op, StoreOp::Spend { .. }) {
                        r.spent = Some(*order);
                    }
                    outputs
                        .insert(input.0, r.encode()?.as_slice())
                        .map_err(err("write lock"))?;
                }
                StoreOp::Committee(c) => {
                    let bytes = wire::encode_body(&**c).map_err(err("committee"))?;
                    committees
                        .insert(c.epoch.0, bytes.as_slice())
                        .map_err(err("write committee"))?;
                }
                StoreOp::Handoff {
                    epoch,
                    from,
                    part,
                    parts,
                } => {
                    handoffs
                        .insert(handoff_key(*epoch, from, *part, *parts), ())
                        .map_err(err("write handoff"))?;
                }
            }
        }
        Ok(())
    }
}

fn begin_write(db: &Database) -> Result<WriteTransaction, StoreError> {
    let mut txn = db.begin_write().map_err(err("begin write"))?;
    txn.set_durability(Durability::Immediate)
        .map_err(err("durability"))?;
    txn.set_quick_repair(true);
    Ok(txn)
}

fn load(
    table: &impl ReadableTable<[u8; 32], &'static [u8]>,
    id: &OutputId,
) -> Result<Record, StoreError> {
    match table.get(id.0).map_err(err("read output"))? {
        Some(g) => Record::decode(g.value()),
        None => Ok(Record {
            output: None,
            lock: None,
            spent: None,
        }),
    }
}

impl LedgerStore for RedbStore {
    fn output(&self, id: &OutputId) -> Result<OutputState, StoreError> {
        if let Some(table) = &*self.snapshot.borrow() {
            return load(table, id).map(Record::into_state);
        }
        let table = self
            .read()?
            .open_table(OUTPUTS)
            .map_err(err("outputs table"))?;
        load(&table, id).map(Record::into_state)
    }

    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let txn = begin_write(&self.db)?;
        if let Err(e) = Self::write(&txn, ops) {
            // Nothing of this batch is recorded; an abort failure changes nothing durable.
            let _ = txn.abort();
            return Err(e);
        }
        txn.commit().map_err(err("commit"))?;
        self.commits += 1;
        self.refresh();
        Ok(())
    }

    fn locks(&self) -> Result<Vec<(OutputId, OrderDigest)>, StoreError> {
        let table = self
            .read()?
            .open_table(OUTPUTS)
            .map_err(err("outputs table"))?;
        let mut locks = Vec::new();
        for entry in table.iter().map_err(err("scan outputs"))? {
            let (k, v) = entry.map_err(err("scan outputs"))?;
            if let Some(lock) = Record::decode(v.value())?.lock {
                locks.push((OutputId(k.value()), lock));
            }
        }
        Ok(locks)
    }

    fn committees(&self) -> Result<Vec<Committee>, StoreError> {
        let table = self
            .read()?
            .open_table(COMMITTEES)
            .map_err(err("committees table"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(err("scan committees"))? {
            let (_, v) = entry.map_err(err("scan committees"))?;
            out.push(wire::decode(v.value()).map_err(err("corrupt committee"))?);
        }
        Ok(out)
    }

    fn handoffs(&self, epoch: Epoch) -> Result<Vec<(PublicKey, u16, u16)>, StoreError> {
        let table = self
            .read()?
            .open_table(HANDOFFS)
            .map_err(err("handoffs table"))?;
        let lo = handoff_key(epoch, &PublicKey([0; 32]), 0, 0);
        let hi = handoff_key(epoch, &PublicKey([0xff; 32]), u16::MAX, u16::MAX);
        let mut out = Vec::new();
        for entry in table.range(lo..=hi).map_err(err("scan handoffs"))? {
            let (k, _) = entry.map_err(err("scan handoffs"))?;
            let k = k.value();
            let from: [u8; 32] = k[8..40].try_into().expect("a 32-byte slice");
            let part = u16::from_be_bytes([k[40], k[41]]);
            let parts = u16::from_be_bytes([k[42], k[43]]);
            out.push((PublicKey(from), part, parts));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::contract::Fuel;
    use crate::proto::identity::Identity;
    use crate::proto::ledger::{
        Amount, BondTerms, Genesis, LedgerError, MemoryStore, TransferOrder, Validator,
    };

    /// A fresh directory for one test (removed when dropped).
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("meshwork-redb-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            Self(dir)
        }

        fn db(&self) -> std::path::PathBuf {
            self.0.join("ledger.redb")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn oid(i: u8) -> OutputId {
        OutputId([i; 32])
    }

    fn digest(i: u8) -> OrderDigest {
        OrderDigest([i; 32])
    }

    fn genesis(coins: usize) -> (Identity, Identity, Genesis) {
        let validator = Identity::from_seed([7; 32]);
        let user = Identity::from_seed([8; 32]);
        let outputs = (0..coins)
            .map(|_| Output::plain(user.public_key(), Amount(100)))
            .collect();
        let terms = BondTerms::until(Epoch(5));
        let bonds = [(validator.public_key(), Amount(1_000), Fuel(0))];
        let g = Genesis::new(outputs, &bonds, &terms, 1).expect("genesis");
        (validator, user, g)
    }

    /// An escrow output with a redeemed ticket: the richest output the store holds.
    fn escrow(user: &Identity) -> Output {
        let mut terms = BondTerms::escrow(Epoch(5), [6; 32]);
        if let Some(l) = terms.lottery.as_mut() {
            l.redeemed.push(crate::proto::ledger::TicketId([7; 32]));
        }
        Output {
            owner: user.public_key(),
            amount: Amount(40),
            bond: Some(terms),
        }
    }

    #[test]
    fn reopening_keeps_outputs_locks_committees_and_handoffs() {
        let dir = TempDir::new("reopen");
        let (_, user, g) = genesis(2);
        {
            let mut s = RedbStore::open(&dir.db()).expect("open");
            s.apply(&[
                StoreOp::Create {
                    id: oid(1),
                    output: Output::plain(user.public_key(), Amount(5)),
                },
                StoreOp::Lock {
                    input: oid(1),
                    order: digest(9),
                },
                StoreOp::Spend {
                    input: oid(2),
                    order: digest(8),
                },
                StoreOp::Create {
                    id: oid(4),
                    output: escrow(&user),
                },
                StoreOp::Committee(Box::new(g.committee.clone())),
                StoreOp::Handoff {
                    epoch: Epoch(1),
                    from: user.public_key(),
                    part: 0,
                    parts: 2,
                },
            ])
            .expect("apply");
            assert_eq!(s.commits(), 1);
        }
        let s = RedbStore::open(&dir.db()).expect("reopen");
        let one = s.output(&oid(1)).expect("read");
        assert_eq!(one.lock, Some(digest(9)));
        assert_eq!(one.output.map(|o| o.amount), Some(Amount(5)));
        assert_eq!(one.spent, None);
        assert_eq!(s.output(&oid(2)).expect("read").spent, Some(digest(8)));
        assert_eq!(s.output(&oid(3)).expect("read"), OutputState::default());
        assert_eq!(
            s.output(&oid(4)).expect("read").output,
            Some(escrow(&user)),
            "an escrow's lottery terms survive the store"
        );
        assert_eq!(
            s.locks().expect("locks"),
            vec![(oid(1), digest(9)), (oid(2), digest(8))]
        );
        assert_eq!(s.committees().expect("committees"), vec![g.committee]);
        assert_eq!(
            s.handoffs(Epoch(1)).expect("handoffs"),
            vec![(user.public_key(), 0, 2)]
        );
        assert!(s.handoffs(Epoch(0)).expect("handoffs").is_empty());
        assert!(s.handoffs(Epoch(2)).expect("handoffs").is_empty());
    }

    #[test]
    fn a_refused_apply_records_nothing() {
        let dir = TempDir::new("atomic");
        let mut s = RedbStore::open(&dir.db()).expect("open");
        s.apply(&[StoreOp::Lock {
            input: oid(1),
            order: digest(1),
        }])
        .expect("first lock");
        // The second op conflicts: the first op of the batch (and the committee) must not stick.
        let (_, _, g) = genesis(1);
        let refused = s.apply(&[
            StoreOp::Lock {
                input: oid(2),
                order: digest(2),
            },
            StoreOp::Committee(Box::new(g.committee)),
            StoreOp::Lock {
                input: oid(1),
                order: digest(2),
            },
        ]);
        assert!(refused.is_err());
        assert_eq!(s.output(&oid(2)).expect("read").lock, None);
        assert!(s.committees().expect("committees").is_empty());
        drop(s);
        let s = RedbStore::open(&dir.db()).expect("reopen");
        assert_eq!(s.locks().expect("locks"), vec![(oid(1), digest(1))]);
    }

    #[test]
    fn a_lock_is_never_replaced() {
        let dir = TempDir::new("replace");
        let mut s = RedbStore::open(&dir.db()).expect("open");
        let lock = |o: u8| StoreOp::Lock {
            input: oid(1),
            order: digest(o),
        };
        let spend = |o: u8| StoreOp::Spend {
            input: oid(1),
            order: digest(o),
        };
        s.apply(&[lock(1)]).expect("lock");
        assert!(s.apply(&[lock(2)]).is_err());
        assert!(s.apply(&[spend(2)]).is_err());
        // Within one batch too.
        assert!(s.apply(&[lock(3)]).is_err());
        s.apply(&[lock(1), spend(1)]).expect("same order again");
        let state = s.output(&oid(1)).expect("read");
        assert_eq!(
            (state.lock, state.spent),
            (Some(digest(1)), Some(digest(1)))
        );
        let mut fresh = RedbStore::open(&TempDir::new("replace-batch").db()).expect("open");
        let batch = [
            StoreOp::Lock {
                input: oid(5),
                order: digest(1),
            },
            StoreOp::Lock {
                input: oid(5),
                order: digest(2),
            },
        ];
        assert!(fresh.apply(&batch).is_err());
        assert_eq!(fresh.output(&oid(5)).expect("read").lock, None);
    }

    #[test]
    fn a_second_handle_on_an_open_store_is_refused() {
        let dir = TempDir::new("exclusive");
        let _s = RedbStore::open(&dir.db()).expect("open");
        assert!(RedbStore::open(&dir.db()).is_err());
    }

    #[test]
    fn agrees_with_the_memory_store_on_random_ops() {
        let dir = TempDir::new("model");
        let mut redb = RedbStore::open(&dir.db()).expect("open");
        let mut memory = MemoryStore::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let owner = Identity::from_seed([3; 32]).public_key();
        for _ in 0..200 {
            let ops: Vec<StoreOp> = (0..1 + next() % 4)
                .map(|_| {
                    let (input, order) = ((next() % 12) as u8, (next() % 3) as u8);
                    match next() % 3 {
                        0 => StoreOp::Create {
                            id: oid(input),
                            output: Output::plain(owner, Amount(u64::from(order))),
                        },
                        1 => StoreOp::Lock {
                            input: oid(input),
                            order: digest(order),
                        },
                        _ => StoreOp::Spend {
                            input: oid(input),
                            order: digest(order),
                        },
                    }
                })
                .collect();
            assert_eq!(
                redb.apply(&ops).is_ok(),
                memory.apply(&ops).is_ok(),
                "{ops:?}"
            );
        }
        for i in 0..12 {
            assert_eq!(redb.output(&oid(i)), memory.output(&oid(i)));
        }
        assert_eq!(redb.locks(), memory.locks());
    }

    #[test]
    fn a_reopened_validator_refuses_to_vote_against_its_locks() {
        let dir = TempDir::new("validator");
        let (key, user, g) = genesis(3);
        let coin = |i: usize| {
            let (id, output) = g.created().nth(i).expect("coin");
            crate::proto::ledger::Input {
                id,
                output: output.clone(),
            }
        };
        let order = |i: usize, nonce: u64| {
            TransferOrder {
                epoch: Epoch(0),
                nonce,
                inputs: vec![coin(i)],
                outputs: vec![Output::plain(user.public_key(), Amount(99))],
                fee: Amount(1),
            }
            .signed_by(&[&user])
        };
        let first = order(0, 1);
        {
            let store = RedbStore::open(&dir.db()).expect("open");
            let mut v = Validator::new(key.clone(), &g, store).expect("validator");
            let vote = v.handle_order(&first, &[]).expect("vote");
            vote.verify(&first.order.digest()).expect("a valid vote");
        }
        let store = RedbStore::open(&dir.db()).expect("reopen");
        // Genesis is ignored on reopen: the store already knows epoch 0.
        let mut v = Validator::new(key, &g, store).expect("validator");
        assert!(
            v.handle_order(&first, &[]).is_ok(),
            "the same order votes again"
        );
        assert_eq!(
            v.handle_order(&order(0, 2), &[]),
            Err(LedgerError::Conflicting {
                input: coin(0).id,
                locked_by: first.order.digest(),
            })
        );
        assert!(v.handle_order(&order(1, 3), &[]).is_ok());
    }
}
