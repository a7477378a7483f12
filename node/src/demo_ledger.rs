//! The sandbox demo's ledger: the node's referee peers double as its validators (one
//! [`Validator`] each, over its own crash-safe [`RedbStore`] in a per-run directory), a faucet
//! peer pays each newcomer its grant, and the [`LedgerSetup`] players need (genesis and faucet
//! key) is served by the web server at `/ledger.bin`.
//!
//! Decisions:
//! - **Fresh per run.** Keys and genesis are new on every start, so the stores live in a
//!   directory named after the process (`$TMPDIR/meshwork-demo-ledger-<pid>`), removed when the
//!   node exits normally (a killed node leaves it behind; it is a few hundred KB).
//! - **Committee** = the referees, equal bonds, every validator in every shard (a one-machine
//!   committee is small): an order is final with votes of more than two thirds of them.
//! - **The faucet** holds the genesis coin and pays every queued newcomer ([`GRANT`]) in one
//!   order, one order at a time (its change is the next order's input). A key is granted once
//!   per run; at most [`FAUCET_QUEUE_MAX`] wait.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;

use meshwork::persist::RedbStore;
use meshwork::proto::contract::Fuel;
use meshwork::proto::identity::{Identity, PeerId, PublicKey};
use meshwork::proto::ledger::{
    Amount, Authority, BondTerms, Epoch, Genesis, LedgerMsg, OrderDigest, Output, Validator,
    Wallet, WalletConfig, WalletEvent,
};
use meshwork::transport::matchbox::MatchboxTransport;
use meshwork::transport::{Node, NodeEvent};
use meshwork_sandbox::ledger::{FEE, GRANT, LedgerSetup};
use meshwork_sandbox::net::SandboxMsg;

/// The faucet's genesis coin.
const FAUCET_COIN: Amount = Amount(1_000_000_000);
/// Each validator's genesis bond.
const VALIDATOR_BOND: Amount = Amount(1_000_000);
/// Newcomers waiting for a grant at most.
pub const FAUCET_QUEUE_MAX: usize = 1_024;
/// Grants paid in one order (the order's other output is the change).
const GRANTS_PER_ORDER: usize = meshwork::proto::ledger::OUTPUTS_MAX - 1;

/// Keys, genesis and store directory of one run.
pub struct DemoLedger {
    /// The referees' identities (each is also a validator).
    pub referees: Vec<Identity>,
    /// The faucet's identity.
    pub faucet: Identity,
    /// What players need.
    pub setup: LedgerSetup,
    dir: PathBuf,
}

impl DemoLedger {
    /// `referees` validators (from `seed`), a faucet, and the genesis paying the faucet.
    pub fn new(referees: usize, mut seed: impl FnMut() -> [u8; 32]) -> Result<Self, String> {
        let ids: Vec<Identity> = (0..referees).map(|_| Identity::from_seed(seed())).collect();
        let faucet = Identity::from_seed(seed());
        let bonds: Vec<_> = ids
            .iter()
            .map(|i| (i.public_key(), VALIDATOR_BOND, Fuel(0)))
            .collect();
        let shard = u16::try_from(referees.max(1)).map_err(|_| "too many validators")?;
        let genesis = Genesis::new(
            vec![Output::plain(faucet.public_key(), FAUCET_COIN)],
            &bonds,
            &BondTerms::until(Epoch(1_000)),
            shard,
        )
        .map_err(|e| format!("genesis: {e}"))?;
        let dir = std::env::temp_dir().join(format!("meshwork-demo-ledger-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Self {
            setup: LedgerSetup {
                genesis,
                faucet: faucet.public_key(),
            },
            referees: ids,
            faucet,
            dir,
        })
    }

    /// Referee `i`'s validator over its own store.
    pub fn validator(&self, i: usize) -> Result<Validator<RedbStore>, String> {
        let store = RedbStore::open(&self.dir.join(format!("validator-{i}.redb")))
            .map_err(|e| e.to_string())?;
        Validator::new(self.referees[i].clone(), &self.setup.genesis, store)
            .map_err(|e| e.to_string())
    }

    /// The faucet's wallet, holding the genesis coin.
    pub fn faucet_wallet(&self) -> Wallet {
        let mut w = Wallet::new(
            self.faucet.clone(),
            self.setup.committee().clone(),
            WalletConfig::default(),
        );
        for (id, o) in self.setup.genesis.created() {
            w.add_coin(id, o.clone(), None);
        }
        w
    }
}

impl Drop for DemoLedger {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a validator did, for the node's report.
#[derive(Debug, Default, Clone, Copy)]
pub struct ValidatorStats {
    /// Orders voted for.
    pub votes: u64,
    /// Of those, forfeits of bonds.
    pub forfeits: u64,
    /// Orders refused.
    pub refused: u64,
}

/// Hands a ledger message to `validator` and its answers to the mesh.
pub fn validate(
    node: &mut Node<MatchboxTransport>,
    validator: &mut Validator<RedbStore>,
    stats: &mut ValidatorStats,
    now_ms: u64,
    origin: PeerId,
    msg: LedgerMsg,
) {
    let forfeit = matches!(
        &msg,
        LedgerMsg::Order { order, .. } if matches!(order.authority, Authority::Forfeit(_))
    );
    let is_order = matches!(msg, LedgerMsg::Order { .. });
    match validator.handle_message(origin, msg) {
        Ok(()) if is_order => {
            stats.votes += 1;
            stats.forfeits += u64::from(forfeit);
        }
        Ok(()) => {}
        Err(e) => {
            stats.refused += u64::from(is_order);
            tracing::debug!(
                "validator: a ledger message from {} refused: {e}",
                origin.short()
            );
        }
    }
    while let Some((to, m)) = validator.poll_transmit() {
        node.send_ledger(now_ms, to, &m);
    }
}

/// The faucet peer: a headless node with a wallet paying grants.
pub struct Faucet {
    /// Its mesh node.
    pub node: Node<MatchboxTransport>,
    wallet: Wallet,
    queue: VecDeque<PublicKey>,
    granted: BTreeSet<PublicKey>,
    paying: Option<(OrderDigest, Vec<PublicKey>)>,
    /// Grants paid (settled).
    pub grants: u64,
}

impl Faucet {
    /// A faucet over `node` with `wallet`.
    pub fn new(node: Node<MatchboxTransport>, wallet: Wallet) -> Self {
        Self {
            node,
            wallet,
            queue: VecDeque::new(),
            granted: BTreeSet::new(),
            paying: None,
            grants: 0,
        }
    }

    /// Pump the node, take grant requests and ledger answers, pay the queue.
    pub fn tick(&mut self, now_ms: u64) {
        for ev in self.node.tick(now_ms) {
            match ev {
                NodeEvent::Ledger { origin, msg } => {
                    if let Err(e) = self.wallet.handle_message(now_ms, origin, msg) {
                        tracing::debug!(
                            "faucet: ledger message from {} refused: {e}",
                            origin.short()
                        );
                    }
                }
                NodeEvent::Message {
                    origin, payload, ..
                } => {
                    if let Ok(SandboxMsg::Grant { key }) = SandboxMsg::decode(&payload)
                        && PeerId::from_public_key(&key) == origin
                        && !self.granted.contains(&key)
                        && !self.queue.contains(&key)
                        && self.queue.len() < FAUCET_QUEUE_MAX
                        && !self.paying.as_ref().is_some_and(|(_, p)| p.contains(&key))
                    {
                        self.queue.push_back(key);
                    }
                }
                _ => {}
            }
        }
        if self.wallet.poll_timeout().is_some_and(|t| t <= now_ms) {
            self.wallet.handle_timeout(now_ms);
        }
        while let Some(ev) = self.wallet.poll_event() {
            match ev {
                WalletEvent::Settled { order, .. } => {
                    if let Some((d, payees)) = self.paying.take() {
                        if d == order {
                            self.grants += payees.len() as u64;
                            self.granted.extend(payees);
                        } else {
                            self.paying = Some((d, payees));
                        }
                    }
                }
                WalletEvent::Failed { order, reason } => {
                    if let Some((d, payees)) = self.paying.take() {
                        if d == order {
                            tracing::warn!(
                                "faucet: a grant order failed ({reason:?}); asking again"
                            );
                            self.queue.extend(payees);
                        } else {
                            self.paying = Some((d, payees));
                        }
                    }
                }
                WalletEvent::Received { .. } | WalletEvent::EscrowSpent { .. } => {}
            }
        }
        if self.paying.is_none() && !self.queue.is_empty() {
            let n = self.queue.len().min(GRANTS_PER_ORDER);
            let payees: Vec<PublicKey> = self.queue.drain(..n).collect();
            let payments: Vec<_> = payees.iter().map(|k| (*k, GRANT)).collect();
            match self.wallet.pay_all(now_ms, &payments, FEE) {
                Ok(order) => self.paying = Some((order, payees)),
                Err(e) => tracing::warn!("faucet: cannot pay grants: {e}"),
            }
        }
        // Sent on the next tick's flush.
        while let Some((to, m)) = self.wallet.poll_transmit() {
            self.node.send_ledger(now_ms, to, &m);
        }
    }
}
