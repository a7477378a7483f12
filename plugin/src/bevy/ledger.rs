//! Bevy glue for the ledger: a [`Wallet`] resource over the sans-IO
//! [`ledger::Wallet`], the [`SendPayment`] request, the
//! [`PaymentSettled`], [`PaymentReceived`] and [`PaymentFailed`] messages, and the
//! `meshwork/balance` diagnostic. Thin by design: every decision is the core's.
//!
//! Ledger messages travel as [`LedgerTransmit`] (out) and [`LedgerReceived`] (in). With
//! [`MeshworkPlugin`](super::MeshworkPlugin) in the app the mesh carries them: every
//! `LedgerTransmit` is exact-routed to its peer id behind the ledger service tag
//! ([`SERVICE_LEDGER`](crate::transport::SERVICE_LEDGER)), and ledger messages that arrive become
//! `LedgerReceived` (at most [`LEDGER_INBOX_MAX`] per frame; more are dropped, the wallet
//! retries). Without the mesh plugin the host carries them (tests wire them to in-process
//! validators). Systems run in [`MeshworkSystems`]: received messages in `Receive`, core events become
//! messages in `Process` (both `PreUpdate`), payment requests and outgoing messages in `Send`
//! (`PostUpdate`). Time is `Time<Real>`, like the rest of the plugin.
//!
//! With [`IdentitySource::Stored`] the wallet (key, coins, unsettled orders) is kept by
//! [`WalletStorage`] — a file natively, local storage in the browser — and saved after every
//! change.

use std::collections::BTreeMap;

use ::bevy::diagnostic::{Diagnostic, Diagnostics, RegisterDiagnostic};
use ::bevy::prelude::*;
use ::bevy::time::Real;

use super::{IdentitySource, MeshworkSystems, diagnostics, fresh_identity, now_ms};
use crate::persist::WalletStorage;
use crate::proto::identity::{Identity, PeerId, PublicKey};
use crate::proto::ledger::{
    self, Amount, Certificate, Coin, Committee, LedgerError, LedgerMsg, OrderDigest, Output,
    OutputId, RejectReason, WalletConfig, WalletEvent,
};

/// Configuration of [`LedgerPlugin`].
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    /// The wallet's key (and with [`IdentitySource::Stored`], where the wallet is kept).
    pub identity: IdentitySource,
    /// The committee the wallet starts from (the genesis committee, or a later certified one).
    pub committee: Committee,
    /// Wallet timing.
    pub wallet: WalletConfig,
}

impl LedgerConfig {
    /// A wallet with a fresh key knowing `committee`.
    pub fn new(committee: Committee) -> Self {
        Self {
            identity: IdentitySource::Generate,
            committee,
            wallet: WalletConfig::default(),
        }
    }

    /// The same with a fixed key seed.
    pub fn with_seed(mut self, seed: [u8; 32]) -> Self {
        self.identity = IdentitySource::Seed(seed);
        self
    }

    /// The same, kept at `location` (a file path natively, a local-storage prefix in the
    /// browser).
    pub fn stored(mut self, location: impl Into<String>) -> Self {
        self.identity = IdentitySource::Stored(location.into());
        self
    }
}

/// Adds a [`Wallet`] resource, payment requests and messages. Works with or without
/// [`MeshworkPlugin`](super::MeshworkPlugin), headless with `MinimalPlugins`.
#[derive(Clone, Debug)]
pub struct LedgerPlugin {
    config: LedgerConfig,
}

impl LedgerPlugin {
    /// A plugin with `config`.
    pub fn new(config: LedgerConfig) -> Self {
        Self { config }
    }
}

/// The local wallet: balance, coins, and the core behind them.
#[derive(Resource, Debug)]
pub struct Wallet {
    core: ledger::Wallet,
    storage: Option<WalletStorage>,
    /// Requests by the order they became, to report failures with what was asked.
    requests: BTreeMap<OrderDigest, SendPayment>,
    changed: bool,
}

impl Wallet {
    /// Σ spendable coins (excluding bonds and coins held by unsettled orders).
    pub fn balance(&self) -> Amount {
        self.core.balance()
    }

    /// Spendable coins.
    pub fn outputs(&self) -> impl Iterator<Item = (&OutputId, &Coin)> {
        self.core.coins()
    }

    /// The wallet's key (payments to it go to this key).
    pub fn public_key(&self) -> PublicKey {
        self.core.public_key()
    }

    /// The wallet's id (where ledger messages for it are addressed).
    pub fn peer_id(&self) -> PeerId {
        PeerId::from_public_key(&self.core.public_key())
    }

    /// Orders submitted and not yet settled or failed.
    pub fn pending(&self) -> usize {
        self.core.pending().count()
    }

    /// Add a coin this wallet owns (e.g. a genesis output); ignored if another key owns it.
    pub fn add_coin(&mut self, id: OutputId, output: Output, proof: Option<Certificate>) {
        self.core.add_coin(id, output, proof);
        self.changed = true;
    }

    /// The core.
    pub fn core(&self) -> &ledger::Wallet {
        &self.core
    }

    /// The core, mutably (the wallet is saved after the frame).
    pub fn core_mut(&mut self) -> &mut ledger::Wallet {
        self.changed = true;
        &mut self.core
    }

    fn save(&mut self) {
        if !std::mem::take(&mut self.changed) {
            return;
        }
        if let Some(storage) = &self.storage
            && let Err(e) = storage.save(&self.core)
        {
            error!("cannot save the wallet: {e}");
        }
    }
}

/// Request: pay `amount` to `to`, burning `fee`.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SendPayment {
    /// The payee's key.
    pub to: PublicKey,
    /// How much the payee gets.
    pub amount: Amount,
    /// Burned on top of `amount`.
    pub fee: Amount,
}

/// A payment from this wallet is final (certified by its inputs' validators).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct PaymentSettled {
    /// The order.
    pub order: OrderDigest,
    /// The payee (first output of the order).
    pub to: PublicKey,
    /// What the payee got.
    pub amount: Amount,
    /// What was burned.
    pub fee: Amount,
    /// From submission to certificate.
    pub elapsed_ms: u64,
    /// The proof.
    pub certificate: Box<Certificate>,
}

/// Coins for this wallet arrived with a verified certificate.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct PaymentReceived {
    /// The order that created them.
    pub order: OrderDigest,
    /// Their total.
    pub amount: Amount,
}

/// Why a payment failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentError {
    /// The wallet could not build the order (e.g. insufficient funds); nothing was sent.
    Refused(LedgerError),
    /// Too many validators refused the order for it ever to be certified.
    Rejected(RejectReason),
}

/// A payment request failed; its coins are spendable again unless another order holds them.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct PaymentFailed {
    /// The order, if one was submitted.
    pub order: Option<OrderDigest>,
    /// The request, if it came through [`SendPayment`].
    pub request: Option<SendPayment>,
    /// Why.
    pub reason: PaymentError,
}

/// A ledger message the wallet wants delivered to `to` (a validator or a payee).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct LedgerTransmit {
    /// The recipient.
    pub to: PeerId,
    /// The message.
    pub msg: LedgerMsg,
}

/// A ledger message for the wallet, from `from` (written by whatever carries ledger messages).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct LedgerReceived {
    /// The sender.
    pub from: PeerId,
    /// The message.
    pub msg: LedgerMsg,
}

/// Most ledger messages from the mesh taken in one frame (a flood is dropped, not queued).
pub const LEDGER_INBOX_MAX: usize = 4_096;

/// Ledger messages the mesh delivered this frame (filled by the mesh plugin's receive system).
#[derive(Resource, Debug, Default)]
pub struct LedgerInbox(Vec<(PeerId, LedgerMsg)>);

impl LedgerInbox {
    pub(crate) fn push(&mut self, from: PeerId, msg: LedgerMsg) {
        if self.0.len() < LEDGER_INBOX_MAX {
            self.0.push((from, msg));
        }
    }
}

fn load_wallet(cfg: &LedgerConfig) -> Wallet {
    let fresh = |identity: Identity| {
        ledger::Wallet::new(identity, cfg.committee.clone(), cfg.wallet.clone())
    };
    let (core, storage) = match &cfg.identity {
        IdentitySource::Seed(seed) => (fresh(Identity::from_seed(*seed)), None),
        IdentitySource::Generate => (fresh(fresh_identity(0)), None),
        IdentitySource::Stored(location) => {
            let storage = WalletStorage::new(location.clone());
            match storage.load_or_create(cfg.committee.clone(), cfg.wallet.clone(), 0) {
                Ok(core) => (core, Some(storage)),
                Err(e) => {
                    // Never overwrite a wallet we could not read: run unsaved instead.
                    error!("cannot load the wallet at {location}: {e}; using a fresh unsaved one");
                    (fresh(fresh_identity(0)), None)
                }
            }
        }
    };
    Wallet {
        core,
        storage,
        requests: BTreeMap::new(),
        changed: false,
    }
}

impl Plugin for LedgerPlugin {
    fn build(&self, app: &mut App) {
        let wallet = load_wallet(&self.config);
        info!(
            "meshwork wallet {} balance {}",
            wallet.peer_id(),
            wallet.balance()
        );
        app.insert_resource(wallet)
            .init_resource::<LedgerInbox>()
            .add_message::<SendPayment>()
            .add_message::<PaymentSettled>()
            .add_message::<PaymentReceived>()
            .add_message::<PaymentFailed>()
            .add_message::<LedgerTransmit>()
            .add_message::<LedgerReceived>()
            .register_diagnostic(Diagnostic::new(diagnostics::BALANCE))
            .configure_sets(
                PreUpdate,
                (MeshworkSystems::Receive, MeshworkSystems::Process).chain(),
            )
            .configure_sets(PostUpdate, MeshworkSystems::Send)
            .add_systems(
                PreUpdate,
                (mesh_to_wallet, receive_ledger)
                    .chain()
                    .after(super::receive)
                    .in_set(MeshworkSystems::Receive),
            )
            .add_systems(PreUpdate, report_payments.in_set(MeshworkSystems::Process))
            .add_systems(
                PostUpdate,
                (
                    send_payments,
                    report_payments,
                    transmit_ledger,
                    wallet_to_mesh,
                )
                    .chain()
                    .before(super::send_requests)
                    .in_set(MeshworkSystems::Send),
            );
    }
}

/// Ledger messages from the mesh become [`LedgerReceived`].
fn mesh_to_wallet(mut inbox: ResMut<LedgerInbox>, mut received: MessageWriter<LedgerReceived>) {
    for (from, msg) in inbox.0.drain(..) {
        received.write(LedgerReceived { from, msg });
    }
}

/// With a mesh node in the app, every [`LedgerTransmit`] is routed to its recipient.
fn wallet_to_mesh(
    time: Res<Time<Real>>,
    node: Option<NonSendMut<super::MeshworkNode>>,
    mut out: MessageReader<LedgerTransmit>,
) {
    let Some(mut node) = node else {
        return;
    };
    let now = now_ms(&time);
    for m in out.read() {
        node.node.send_ledger(now, m.to, &m.msg);
    }
}

fn receive_ledger(
    time: Res<Time<Real>>,
    mut wallet: ResMut<Wallet>,
    mut received: MessageReader<LedgerReceived>,
) {
    let now = now_ms(&time);
    let wallet = &mut *wallet;
    for m in received.read() {
        // A bad message from a peer is its problem, not ours: log and go on.
        if let Err(e) = wallet.core.handle_message(now, m.from, m.msg.clone()) {
            debug!("ledger message from {} refused: {e}", m.from);
        }
        wallet.changed = true;
    }
    if wallet.core.poll_timeout().is_some_and(|t| t <= now) {
        wallet.core.handle_timeout(now);
    }
}

fn report_payments(
    mut wallet: ResMut<Wallet>,
    mut settled: MessageWriter<PaymentSettled>,
    mut received: MessageWriter<PaymentReceived>,
    mut failed: MessageWriter<PaymentFailed>,
) {
    let wallet = &mut *wallet;
    while let Some(event) = wallet.core.poll_event() {
        wallet.changed = true;
        match event {
            WalletEvent::Settled {
                order,
                elapsed_ms,
                certificate,
            } => {
                wallet.requests.remove(&order);
                let payee = certificate.order.outputs.first();
                settled.write(PaymentSettled {
                    order,
                    to: payee.map_or(PublicKey([0; 32]), |o| o.owner),
                    amount: payee.map_or(Amount::ZERO, |o| o.amount),
                    fee: certificate.order.fee,
                    elapsed_ms,
                    certificate,
                });
            }
            WalletEvent::Received { order, amount } => {
                received.write(PaymentReceived { order, amount });
            }
            // Tickets are fetch's business: its glue reads the escrow from the wallet core.
            WalletEvent::EscrowSpent { .. } => {}
            WalletEvent::Failed { order, reason } => {
                failed.write(PaymentFailed {
                    order: Some(order),
                    request: wallet.requests.remove(&order),
                    reason: PaymentError::Rejected(reason),
                });
            }
        }
    }
    wallet.save();
}

fn send_payments(
    time: Res<Time<Real>>,
    mut wallet: ResMut<Wallet>,
    mut requests: MessageReader<SendPayment>,
    mut failed: MessageWriter<PaymentFailed>,
) {
    let now = now_ms(&time);
    let wallet = &mut *wallet;
    for r in requests.read() {
        match wallet.core.pay(now, r.to, r.amount, r.fee) {
            Ok(order) => {
                wallet.requests.insert(order, r.clone());
                wallet.changed = true;
            }
            Err(e) => {
                failed.write(PaymentFailed {
                    order: None,
                    request: Some(r.clone()),
                    reason: PaymentError::Refused(e),
                });
            }
        }
    }
}

fn transmit_ledger(
    mut wallet: ResMut<Wallet>,
    mut out: MessageWriter<LedgerTransmit>,
    mut diagnostics: Diagnostics,
) {
    while let Some((to, msg)) = wallet.core.poll_transmit() {
        out.write(LedgerTransmit { to, msg });
    }
    let balance = wallet.balance().0;
    // Diagnostics are f64; balances beyond 2^53 lose precision there, never in the ledger.
    diagnostics.add_measurement(&diagnostics::BALANCE, || balance as f64);
}
