//! Ledger: UTXO micropayments final after one round trip to a small quorum, without a global
//! chain (FastPay-style consistent broadcast), collateral bonds, and validator weight from bond and
//! attested WASM work. Sans-IO: the cores take messages in and hand messages out; storage is a
//! trait ([`LedgerStore`]) so the same validator runs over memory (simulator, tests) and over a
//! crash-safe database (the node).
//!
//! # How a payment works
//!
//! 1. The payer's [`Wallet`] builds a [`TransferOrder`]: inputs (each an [`OutputId`] plus the
//!    claimed [`Output`]), new outputs, a fee (burned) and the committee [`Epoch`]. Every distinct
//!    owner of an input signs the order digest ([`Domain::LedgerOrder`]).
//! 2. It sends the order (with the certificates that created its inputs, so validators that have
//!    not seen them can check creation on the spot) to the *validators of each input*: the
//!    `shard_size` (default 16) committee members whose [`PeerId`] is XOR-closest to the output id.
//! 3. A [`Validator`] checks the order; for every input it is responsible for, the input must
//!    exist, match the claim and be unlocked or locked by this same order. It then **records the
//!    lock through [`LedgerStore::apply`] and only if that succeeds signs a [`Vote`]**
//!    ([`Domain::LedgerVote`]). A validator never signs two different orders spending one input.
//! 4. Votes from more than 2/3 of the weight of every input's validator set form a
//!    [`Certificate`]: the payment is final after this one round trip. The certificate is the
//!    proof of creation of the order's outputs; payees keep it and attach it when they spend.
//!
//! ```
//! use meshwork::proto::contract::Fuel;
//! use meshwork::proto::identity::{Identity, PeerId};
//! use meshwork::proto::ledger::*;
//!
//! // Genesis: a coin of 100 for Alice; four validators bonded with 1,000 each, shards of 4.
//! let alice = Identity::from_seed([1; 32]);
//! let bob = Identity::from_seed([2; 32]);
//! let keys: Vec<_> = (10..14).map(|i| Identity::from_seed([i; 32])).collect();
//! let terms = BondTerms::until(Epoch(9));
//! let bonds: Vec<_> = keys.iter().map(|k| (k.public_key(), Amount(1_000), Fuel(0))).collect();
//! let coin = Output::plain(alice.public_key(), Amount(100));
//! let genesis = Genesis::new(vec![coin], &bonds, &terms, 4)?;
//! let mut validators = keys
//!     .iter()
//!     .map(|k| Validator::new(k.clone(), &genesis, MemoryStore::new()))
//!     .collect::<Result<Vec<_>, _>>()?;
//!
//! // Alice pays Bob 60 (fee 1): the wallet sends the order to her coin's validators…
//! let mut wallet = Wallet::new(alice.clone(), genesis.committee.clone(), WalletConfig::default());
//! let (id, output) = genesis.created().next().expect("Alice's coin");
//! wallet.add_coin(id, output.clone(), None);
//! wallet.pay(0, bob.public_key(), Amount(60), Amount(1))?;
//! let mut replies = Vec::new();
//! while let Some((to, msg)) = wallet.poll_transmit() {
//!     let v = validators
//!         .iter_mut()
//!         .find(|v| PeerId::from_public_key(&v.public_key()) == to)
//!         .expect("sent to a validator");
//!     v.handle_message(alice.peer_id(), msg)?;
//!     while let Some((_, reply)) = v.poll_transmit() {
//!         replies.push((PeerId::from_public_key(&v.public_key()), reply));
//!     }
//! }
//! // …and their votes, one round trip later, make the certificate: the payment is final.
//! for (from, reply) in replies {
//!     wallet.handle_message(0, from, reply)?;
//! }
//! assert!(matches!(wallet.poll_event(), Some(WalletEvent::Settled { .. })));
//! assert_eq!(wallet.balance(), Amount(39));
//! // The certificate for Bob is queued next (a `Confirm` to his peer id).
//! assert!(matches!(wallet.poll_transmit(), Some((_, LedgerMsg::Confirm(_)))));
//! # Ok::<(), LedgerError>(())
//! ```
//!
//! # Lottery tickets
//!
//! Paid fetch responses use probabilistic micropayments ([`ticket`]): the payer signs tickets
//! drawn on an escrow (a bond with [`LotteryTerms`]) and only winning tickets reach the ledger,
//! as [`Authority::Redeem`] orders whose outputs the ticket fixes. [`OutputProof`] lets a payee
//! check an escrow (or a responder's bond) offline against the committee.
//!
//! Value is conserved: `Σ inputs == Σ outputs + fee` for every order, fees are burned, so
//! `Σ unspent outputs + Σ burned == Σ minted (genesis)` holds for any set of non-conflicting
//! certificates.
//!
//! # Safety assumption
//!
//! Less than 1/3 of the weight of **every shard** (validator set of an output) is byzantine. Two
//! certificates for one input need two quorums of > 2/3 of the same shard, which share > 1/3 of
//! its weight, hence an honest validator that would have signed both. Two conflicting votes by
//! one validator are an [`EquivocationProof`] that forfeits its bond.
//!
//! # Epochs
//!
//! The committee changes only at epoch boundaries, by a [`CertifiedReconfiguration`] signed by
//! more than 2/3 of the old committee's weight. On applying it a validator stops voting for the
//! old epoch and publishes a signed [`Handoff`] of every lock it holds; a validator votes on an
//! input in the new epoch only after it has absorbed handoffs from more than 2/3 of the weight of
//! that input's *previous* shard (quorum intersection carries every certified lock over).

//! # Wire and signed bytes
//!
//! A ledger message is one [`LedgerMsg`], bincode 2 standard configuration (variant index and
//! integers as little-endian varints, keys 32 raw bytes, signatures 64 raw bytes, vectors
//! length-prefixed) inside a [`wire`] frame; [`LedgerMsg::decode`] applies the wire byte limit
//! and rejects trailing bytes. Decoded vectors are bounded before any work is done on them
//! (`INPUTS_MAX`, `OUTPUTS_MAX`, `VOTES_MAX`, `COMMITTEE_MAX`, `HANDOFF_LOCKS_MAX`, bond term
//! limits). What is signed (each under its [`Domain`], see `identity`):
//!
//! ```text
//! order digest   sha256("meshwork/ledger/order\0" ‖ bincode(TransferOrder))   owners sign it
//! output id      sha256("meshwork/ledger/output\0" ‖ order digest ‖ index u16 LE)
//! vote           leaves u16 LE ‖ Merkle root of the batch's order digests      (34 bytes)
//! verdict        bond output id ‖ case ‖ beneficiaries (32 bytes each)         (64 + 32·n bytes)
//! ticket id      sha256("meshwork/ledger/ticket\0" ‖ 184-byte ticket encoding)  the payer signs it
//! work, reconfig sha256(tag ‖ bincode(WorkAttestation | Committee))
//! handoff        sha256("meshwork/ledger/handoff\0" ‖ bincode((epoch, part, parts, locks)))
//! ```

mod bond;
mod cert;
mod committee;
mod order;
mod store;
pub mod ticket;
mod validator;
mod wallet;

pub use bond::{BENEFICIARIES_MAX, BondTerms, Evidence, REFEREES_MAX, Verdict, forfeit_outputs};
pub use cert::{
    Certificate, EquivocationProof, OutputProof, VOTE_BATCH_MAX, Vote, VoteBatch, verify_batch,
};
pub use committee::{
    CertifiedReconfiguration, Committee, FUEL_PER_WEIGHT, Genesis, Handoff, ValidatorInfo,
    WorkAttestation, WorkCertificate,
};
pub use order::{
    Amount, Authority, Epoch, INPUTS_MAX, Input, OUTPUTS_MAX, OrderDigest, Output, OutputId,
    OwnerSignature, SignedOrder, TransferOrder,
};
pub use store::{LedgerStore, MemoryStore, OutputState, StoreError, StoreOp};
pub use ticket::{
    LotteryTerms, REDEEMED_MAX, SignedTicket, Ticket, TicketId, WinningTicket, redemption_outputs,
    win_threshold_for,
};
pub use validator::{LedgerEvent, Validator};
pub use wallet::{Coin, Progress, Wallet, WalletConfig, WalletEvent, WalletState};

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::proto::identity::{Domain, PeerId};
use crate::proto::wire::{self, WireError};

/// Most votes a certificate, report or handoff may carry (bounds every decoded vector).
pub const VOTES_MAX: usize = 256;
/// Most committee members.
pub const COMMITTEE_MAX: usize = 256;
/// Most locks in one handoff message (a validator holding more sends several).
pub const HANDOFF_LOCKS_MAX: usize = 4096;

/// Why the ledger refused something. Every variant is a value a peer's input can cause; none of
/// them is a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The bytes are not a ledger message (see [`WireError`]).
    #[error("undecodable ledger message: {0}")]
    Decode(#[from] WireError),
    /// The message decoded but breaks a structural rule (empty, too many items, duplicates…).
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// A signature does not verify, or a key is not a valid ed25519 point.
    #[error("bad signature")]
    BadSignature,
    /// The signers of an order are not exactly the distinct owners of its inputs.
    #[error("order is not signed by exactly the owners of its inputs")]
    WrongSigners,
    /// Inputs do not cover outputs plus fee (or cover more: value must balance exactly).
    #[error("overspend: inputs {inputs} != outputs {outputs} + fee {fee}")]
    Overspend {
        /// Σ inputs.
        inputs: u64,
        /// Σ outputs.
        outputs: u64,
        /// The fee.
        fee: u64,
    },
    /// An amount sum does not fit in 64 bits.
    #[error("arithmetic overflow")]
    Overflow,
    /// The order names another epoch than the validator's current one (a replay from an older
    /// epoch, or a client ahead of us).
    #[error("order for epoch {order}, current epoch is {current}")]
    WrongEpoch {
        /// The order's epoch.
        order: u64,
        /// The validator's epoch.
        current: u64,
    },
    /// An input the validator is responsible for was never created (as far as it knows).
    #[error("unknown output {0:?}")]
    UnknownOutput(OutputId),
    /// An input's claimed owner, amount or bond terms differ from the recorded output.
    #[error("input {0:?} does not match the recorded output")]
    InputMismatch(OutputId),
    /// An input is already locked by (or spent by) a different order.
    #[error("input {input:?} is locked by order {locked_by:?}")]
    Conflicting {
        /// The input.
        input: OutputId,
        /// The order holding the lock.
        locked_by: OrderDigest,
    },
    /// A bond input spent by its owner before its expiry.
    #[error("bond {0:?} is locked until its expiry")]
    BondLocked(OutputId),
    /// Forfeit evidence that does not implicate the bond, or the wrong forfeit outputs.
    #[error("invalid forfeit evidence: {0}")]
    BadEvidence(&'static str),
    /// The validator is responsible for none of the order's inputs (or is not in the committee).
    #[error("not a validator of any input of this order")]
    NotResponsible,
    /// A certificate lacks > 2/3 of some input's validator weight, names unknown or duplicate
    /// voters, or carries a bad signature.
    #[error("forged or insufficient certificate: {0}")]
    ForgedCertificate(&'static str),
    /// A certificate or reconfiguration for an epoch whose committee we do not know.
    #[error("unknown epoch {0}")]
    UnknownEpoch(u64),
    /// The validator has not yet absorbed handoffs from > 2/3 of the input's previous shard.
    #[error("not synced with the previous epoch for input {0:?}")]
    NotSynced(OutputId),
    /// The store could not record the change; nothing was signed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A ticket is malformed (zero face value) or its terms are impossible (fee above face).
    #[error("bad ticket: {0}")]
    BadTicket(&'static str),
    /// A redemption's input is not an escrow (a bond with lottery terms).
    #[error("{0:?} is not an escrow")]
    NotAnEscrow(OutputId),
    /// The escrow is not owned by the ticket's payer.
    #[error("the escrow is not the ticket payer's")]
    EscrowNotPayers,
    /// The ticket names another escrow lineage than the input's.
    #[error("the ticket is drawn on another escrow")]
    TicketForAnotherEscrow,
    /// The ticket expired before the redemption's epoch.
    #[error("ticket expired at epoch {expiry}, redemption in epoch {epoch}")]
    TicketExpired {
        /// The ticket's last epoch.
        expiry: u64,
        /// The order's epoch.
        epoch: u64,
    },
    /// The ticket's expiry is after the escrow's: the owner could take the escrow back first.
    #[error("ticket valid until epoch {ticket}, escrow only until {escrow}")]
    TicketOutlivesEscrow {
        /// The ticket's expiry.
        ticket: u64,
        /// The escrow's expiry.
        escrow: u64,
    },
    /// The ticket was already paid from this escrow lineage.
    #[error("ticket {0:?} already redeemed")]
    TicketRedeemed(TicketId),
    /// The escrow's `redeemed` list is full (`REDEEMED_MAX`): open a new escrow.
    #[error("escrow full: no more redemptions")]
    EscrowFull,
    /// The reveal does not hash to the ticket's payee commitment.
    #[error("reveal does not open the payee commitment")]
    WrongReveal,
    /// The ticket does not win with this reveal.
    #[error("losing ticket")]
    TicketLost,
    /// A redemption must burn no fee: then its order is fully determined by the escrow and the
    /// winning ticket, so a copy relayed by anyone is the same order and cannot conflict with it
    /// (with a free fee, anyone who saw the ticket could race a differently-feed copy and get
    /// both stuck).
    #[error("a redemption burns no fee (got {fee})")]
    RedeemFee {
        /// The order's fee.
        fee: u64,
    },
    /// A redemption order of the wrong shape (inputs, nonce, outputs).
    #[error("bad redemption: {0}")]
    BadRedemption(&'static str),
    /// The wallet's spendable outputs do not cover the payment.
    #[error("insufficient funds: have {have}, need {need}")]
    InsufficientFunds {
        /// Spendable total.
        have: u64,
        /// Amount plus fee.
        need: u64,
    },
}

/// The ledger's messages between wallets and validators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerMsg {
    /// Wallet → validators of the inputs: please vote. `proofs` are the certificates that created
    /// the inputs (none for genesis outputs).
    Order {
        /// The signed order.
        order: SignedOrder,
        /// Creation certificates of its inputs.
        proofs: Vec<Certificate>,
    },
    /// Validator → wallet: a vote for the order with this digest.
    Vote {
        /// The order voted for.
        order: OrderDigest,
        /// The vote.
        vote: Vote,
    },
    /// Validator → wallet: the order was refused (typed, so the wallet can react).
    Reject {
        /// The refused order.
        order: OrderDigest,
        /// Why.
        reason: RejectReason,
    },
    /// Anyone → validators of the outputs / payees: a certificate (proof of creation).
    Confirm(Certificate),
    /// Payee → payer: the certificate of this order arrived.
    Confirmed(OrderDigest),
    /// Wallet → validators of the inputs: votes it collected for an order that met a conflict,
    /// so validators can catch a member that signed both sides.
    Report {
        /// The order.
        order: TransferOrder,
        /// Votes for it.
        votes: Vec<Vote>,
    },
    /// Validator → bond beneficiaries: an equivocation was caught; forfeit the bond.
    Evidence(Box<EquivocationProof>),
    /// A certified committee change.
    Reconfigure(CertifiedReconfiguration),
    /// Old committee member → new committee: the locks it holds.
    Handoff(Handoff),
}

/// Why a validator refused an order, on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// An input is locked by another order.
    Conflicting(OrderDigest),
    /// Wrong epoch; the validator's current epoch.
    WrongEpoch(u64),
    /// Not synced yet: retry later.
    NotSynced,
    /// Any other refusal (malformed, bad signature, unknown output…): do not retry.
    Invalid,
    /// The store failed: retry later.
    Unavailable,
}

impl RejectReason {
    /// The wire form of a refusal.
    pub fn of(error: &LedgerError) -> Self {
        match error {
            LedgerError::Conflicting { locked_by, .. } => Self::Conflicting(*locked_by),
            LedgerError::WrongEpoch { current, .. } => Self::WrongEpoch(*current),
            LedgerError::NotSynced(_) => Self::NotSynced,
            LedgerError::Store(_) => Self::Unavailable,
            _ => Self::Invalid,
        }
    }

    /// Whether the wallet should try the same validator again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::NotSynced | Self::Unavailable)
    }
}

impl LedgerMsg {
    /// Decode a message body (bincode, byte limit, no trailing bytes). Never panics.
    pub fn decode(body: &[u8]) -> Result<Self, LedgerError> {
        Ok(wire::decode(body)?)
    }

    /// Encode a message body.
    pub fn encode(&self) -> Result<Vec<u8>, LedgerError> {
        Ok(wire::encode_body(self)?)
    }
}
