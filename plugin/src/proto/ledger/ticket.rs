//! Lottery tickets: probabilistic micropayments drawn on an escrow.
//!
//! A requester pays for each fetch response with a [`SignedTicket`] instead of a ledger order: a
//! promise of `face` that wins with probability `win_threshold / 2^64`, so its expected value is
//! the fee ([`win_threshold_for`]). Only winning tickets reach the ledger, as a redemption
//! ([`SignedOrder::redeem`](super::SignedOrder::redeem)): 1,000 paid requests at fee 10 and face
//! 1,000 cost about 10 ledger orders, plus the one that funded the escrow.
//!
//! ```
//! use meshwork::proto::identity::Identity;
//! use meshwork::proto::ledger::ticket::commit;
//! use meshwork::proto::ledger::*;
//!
//! let payer = Identity::from_seed([1; 32]);
//! let payee = Identity::from_seed([2; 32]);
//! // The payer's escrow (normally opened with `Wallet::open_escrow` and shown to payees with an
//! // `OutputProof`): 5,000 for lineage [9; 32], locked through epoch 8.
//! let escrow = Input {
//!     id: OutputId([0; 32]),
//!     output: Output {
//!         owner: payer.public_key(),
//!         amount: Amount(5_000),
//!         bond: Some(BondTerms::escrow(Epoch(8), [9; 32])),
//!     },
//! };
//! // The payee committed to a secret in its signed response; the payer pays a fee of 10 with a
//! // ticket of face 1,000 (P(win) = 1/100).
//! let secret = [7; 32];
//! let face = Amount(1_000);
//! let mut ticket = Ticket {
//!     escrow_root: [9; 32],
//!     payer: payer.public_key(),
//!     payee: payee.public_key(),
//!     face,
//!     win_threshold: win_threshold_for(Amount(10), face)?,
//!     payee_commit: commit(&secret),
//!     payer_rand: [0; 32],
//!     expiry: Epoch(4),
//! };
//! // (Here the payer draws until a ticket wins, to show a redemption; really it draws once.)
//! while !ticket.wins(&ticket.id(), &secret) {
//!     ticket.payer_rand[0] += 1;
//! }
//! let signed = SignedTicket::sign(&payer, ticket);
//! signed.verify()?;
//! // The payee redeems the winner: the face to it, the rest stays in the escrow lineage.
//! // A redemption burns no fee (its order is then fully determined: see `LedgerError::RedeemFee`).
//! let winning = WinningTicket { ticket: signed, reveal: secret };
//! let order = SignedOrder::redeem(Epoch(0), escrow, winning, Amount(0))?;
//! assert_eq!(order.order.outputs[0], Output::plain(payee.public_key(), Amount(1_000)));
//! assert_eq!(order.order.outputs[1].amount, Amount(4_000));
//! # Ok::<(), LedgerError>(())
//! ```
//!
//! # Escrow
//!
//! An escrow is a bond output ([`BondTerms`](super::BondTerms)) with [`LotteryTerms`]: a lineage
//! id (`root`) its owner chooses and the ids of the tickets already paid from the lineage. Like
//! any bond its owner can spend it only after its expiry, so tickets stay payable until then. A
//! redemption spends the escrow and creates the payee's output plus the *change*: the same escrow
//! (same owner and terms) with the ticket's id appended to `redeemed` and the amount lowered.
//! Tickets name the lineage root, not an output id, so one ticket stays valid across the change
//! outputs of earlier redemptions, and `redeemed` travels with the lineage so a ticket pays once.
//! `redeemed` holds at most [`REDEEMED_MAX`] ids: when it is full further redemptions are refused
//! ([`LedgerError::EscrowFull`]) and the owner must open a new escrow (another root) for new
//! tickets. This bounds every escrow output (and every order claiming one) to ~2 KiB of ids.
//!
//! # Win rule
//!
//! `wins` ⇔ `sha256(reveal) == payee_commit` and the first 8 bytes (big endian) of
//! `sha256("meshwork/v1 ticket\0" ‖ ticket id ‖ reveal)` are `< win_threshold`. The payee commits
//! to its secret (in its signed response) before it sees the ticket, whose `payer_rand` the payer
//! chooses without knowing the secret; the ticket id covers both the commitment and `payer_rand`.
//! So the payee cannot grind its secret against a known ticket (the commitment is fixed first),
//! and the payer cannot grind `payer_rand` against the secret (it only knows its hash).
//!
//! # Signed bytes
//!
//! ```text
//! ticket encoding  escrow_root 32 ‖ payer 32 ‖ payee 32 ‖ face u64 LE ‖ win_threshold u64 LE
//!                  ‖ payee_commit 32 ‖ payer_rand 32 ‖ expiry u64 LE                (184 bytes)
//! ticket id        sha256("meshwork/ledger/ticket\0" ‖ ticket encoding)
//! signature        the payer's, over the ticket id, Domain::LedgerTicket
//! draw             sha256("meshwork/v1 ticket\0" ‖ ticket id ‖ reveal)[..8] as u64 BE
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Amount, Epoch, Input, LedgerError, Output};
use crate::proto::identity::{Domain, Identity, PublicKey, Signature, verify};

/// Most ticket ids one escrow lineage records; a full escrow accepts no more redemptions.
pub const REDEEMED_MAX: usize = 64;

/// Bytes of [`Ticket::encode`].
pub const TICKET_BYTES: usize = 184;

/// What makes a bond an escrow: a lineage id chosen by its owner and the tickets already paid
/// from the lineage (at most [`REDEEMED_MAX`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotteryTerms {
    /// The lineage id tickets name (`Ticket::escrow_root`).
    pub root: [u8; 32],
    /// Tickets already redeemed from this lineage, oldest first.
    pub redeemed: Vec<TicketId>,
}

impl LotteryTerms {
    /// A fresh lineage: nothing redeemed yet.
    pub fn new(root: [u8; 32]) -> Self {
        Self {
            root,
            redeemed: Vec::new(),
        }
    }

    /// Bounds: at most [`REDEEMED_MAX`] ids, no duplicates.
    pub fn check_shape(&self) -> Result<(), LedgerError> {
        if self.redeemed.len() > REDEEMED_MAX {
            return Err(LedgerError::Malformed("too many redeemed tickets"));
        }
        let distinct: std::collections::BTreeSet<_> = self.redeemed.iter().collect();
        if distinct.len() != self.redeemed.len() {
            return Err(LedgerError::Malformed("duplicate redeemed ticket"));
        }
        Ok(())
    }
}

/// `sha256("meshwork/ledger/ticket\0" ‖ ticket encoding)`: names a ticket in `redeemed` and is
/// what the payer signs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TicketId(pub [u8; 32]);

impl fmt::Debug for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TicketId({})", hex::encode(&self.0[..4]))
    }
}

/// A lottery ticket: `payer` promises `face` from its escrow lineage `escrow_root` to `payee` if
/// the payee's secret (committed as `payee_commit`) makes it win.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The escrow lineage it is drawn on ([`LotteryTerms::root`]).
    pub escrow_root: [u8; 32],
    /// Who pays: the escrow's owner, who signs the ticket.
    pub payer: PublicKey,
    /// Who is paid.
    pub payee: PublicKey,
    /// Paid if it wins (or the whole escrow, if that holds less).
    pub face: Amount,
    /// `P(win) = win_threshold / 2^64`.
    pub win_threshold: u64,
    /// `sha256` of the payee's secret, committed before the ticket was drawn.
    pub payee_commit: [u8; 32],
    /// The payer's randomness.
    pub payer_rand: [u8; 32],
    /// Last epoch in which it can be redeemed (at most the escrow's expiry).
    pub expiry: Epoch,
}

impl Ticket {
    /// The canonical encoding (see the module docs).
    pub fn encode(&self) -> [u8; TICKET_BYTES] {
        let mut b = [0u8; TICKET_BYTES];
        b[0..32].copy_from_slice(&self.escrow_root);
        b[32..64].copy_from_slice(&self.payer.0);
        b[64..96].copy_from_slice(&self.payee.0);
        b[96..104].copy_from_slice(&self.face.0.to_le_bytes());
        b[104..112].copy_from_slice(&self.win_threshold.to_le_bytes());
        b[112..144].copy_from_slice(&self.payee_commit);
        b[144..176].copy_from_slice(&self.payer_rand);
        b[176..184].copy_from_slice(&self.expiry.0.to_le_bytes());
        b
    }

    /// Its id.
    pub fn id(&self) -> TicketId {
        let mut h = Sha256::new();
        h.update(b"meshwork/ledger/ticket\0");
        h.update(self.encode());
        TicketId(h.finalize().into())
    }

    /// Whether `reveal` opens the payee's commitment and makes the ticket with id `ticket_id`
    /// (this ticket's, passed in so callers that hold it do not hash twice) win.
    pub fn wins(&self, ticket_id: &TicketId, reveal: &[u8; 32]) -> bool {
        commit(reveal) == self.payee_commit && draw(ticket_id, reveal) < self.win_threshold
    }

    /// Bounds: a ticket promises something.
    pub fn check_shape(&self) -> Result<(), LedgerError> {
        if self.face == Amount::ZERO {
            return Err(LedgerError::BadTicket("zero face value"));
        }
        Ok(())
    }
}

/// `sha256(secret)`: the commitment a payee publishes before tickets are drawn for it.
pub fn commit(secret: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// The ticket's lottery draw for `reveal`: a uniform `u64`, compared with `win_threshold`.
pub fn draw(ticket_id: &TicketId, reveal: &[u8; 32]) -> u64 {
    let mut h = Sha256::new();
    h.update(b"meshwork/v1 ticket\0");
    h.update(ticket_id.0);
    h.update(reveal);
    let d: [u8; 32] = h.finalize().into();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The `win_threshold` that makes a ticket of `face` worth `fee` in expectation:
/// `floor(fee × 2^64 / face)`, so `face × P(win) = fee` up to rounding down (less than one
/// 2^64th of `face`). `fee == face` gives `u64::MAX` (the threshold cannot express exactly 1: the
/// ticket then loses with probability 2^-64). Refused if `face` is zero or `fee > face`.
pub fn win_threshold_for(fee: Amount, face: Amount) -> Result<u64, LedgerError> {
    if face == Amount::ZERO {
        return Err(LedgerError::BadTicket("zero face value"));
    }
    if fee > face {
        return Err(LedgerError::BadTicket("fee above face value"));
    }
    let t = (u128::from(fee.0) << 64) / u128::from(face.0);
    Ok(u64::try_from(t).unwrap_or(u64::MAX))
}

/// A ticket signed by its payer ([`Domain::LedgerTicket`] over the ticket id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTicket {
    /// The ticket.
    pub ticket: Ticket,
    /// The payer's signature.
    pub signature: Signature,
}

impl SignedTicket {
    /// Sign `ticket` as its payer. Panics if `identity` is not `ticket.payer` (a programmer
    /// error: the ticket would never verify).
    pub fn sign(identity: &Identity, ticket: Ticket) -> Self {
        assert_eq!(
            identity.public_key(),
            ticket.payer,
            "a ticket is signed by its payer"
        );
        let signature = identity.sign(Domain::LedgerTicket, &ticket.id().0);
        Self { ticket, signature }
    }

    /// Check the shape and the payer's signature.
    pub fn verify(&self) -> Result<(), LedgerError> {
        self.ticket.check_shape()?;
        verify(
            &self.ticket.payer,
            Domain::LedgerTicket,
            &self.ticket.id().0,
            &self.signature,
        )
        .map_err(|_| LedgerError::BadSignature)
    }

    /// The ticket's id.
    pub fn id(&self) -> TicketId {
        self.ticket.id()
    }

    /// Whether `reveal` makes this ticket win (signature not checked).
    pub fn wins(&self, reveal: &[u8; 32]) -> bool {
        self.ticket.wins(&self.ticket.id(), reveal)
    }
}

/// A ticket and the payee's secret that makes it win: what a redemption carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinningTicket {
    /// The signed ticket.
    pub ticket: SignedTicket,
    /// The payee's secret (`sha256(reveal) == payee_commit`).
    pub reveal: [u8; 32],
}

/// Everything a redemption of `winning` from `escrow` in `epoch` burning `fee` (which must be
/// zero) must satisfy,
/// except the payer's signature (validators check that in their signature batch): returns the
/// ticket id and the exact outputs the order must create, in order:
///
/// 1. `Output::plain(payee, paid - fee)` (left out if zero), where `paid = min(face, escrow)`;
/// 2. if anything remains, the escrow's change: same owner and terms, the ticket id appended to
///    `redeemed`, amount `escrow - paid`.
///
/// Refused: an input that is not an escrow, an escrow not owned by the payer or of another
/// lineage, a ticket expired (`epoch > expiry`) or outliving the escrow (`expiry > escrow
/// expiry`), already redeemed, a full `redeemed` list, a reveal that does not open the
/// commitment, a losing draw, a nonzero fee.
pub fn redemption_outputs(
    epoch: Epoch,
    escrow: &Input,
    winning: &WinningTicket,
    fee: Amount,
) -> Result<(TicketId, Vec<Output>), LedgerError> {
    let ticket = &winning.ticket.ticket;
    ticket.check_shape()?;
    let terms = escrow
        .output
        .bond
        .as_ref()
        .ok_or(LedgerError::NotAnEscrow(escrow.id))?;
    let lottery = terms
        .lottery
        .as_ref()
        .ok_or(LedgerError::NotAnEscrow(escrow.id))?;
    if escrow.output.owner != ticket.payer {
        return Err(LedgerError::EscrowNotPayers);
    }
    if lottery.root != ticket.escrow_root {
        return Err(LedgerError::TicketForAnotherEscrow);
    }
    if epoch > ticket.expiry {
        return Err(LedgerError::TicketExpired {
            expiry: ticket.expiry.0,
            epoch: epoch.0,
        });
    }
    if ticket.expiry > terms.expiry {
        return Err(LedgerError::TicketOutlivesEscrow {
            ticket: ticket.expiry.0,
            escrow: terms.expiry.0,
        });
    }
    let id = ticket.id();
    if lottery.redeemed.contains(&id) {
        return Err(LedgerError::TicketRedeemed(id));
    }
    if lottery.redeemed.len() >= REDEEMED_MAX {
        return Err(LedgerError::EscrowFull);
    }
    if commit(&winning.reveal) != ticket.payee_commit {
        return Err(LedgerError::WrongReveal);
    }
    if draw(&id, &winning.reveal) >= ticket.win_threshold {
        return Err(LedgerError::TicketLost);
    }
    let paid = ticket.face.min(escrow.output.amount);
    if fee != Amount::ZERO {
        return Err(LedgerError::RedeemFee { fee: fee.0 });
    }
    let mut outputs = Vec::with_capacity(2);
    let to_payee = paid.checked_sub(fee)?;
    if to_payee > Amount::ZERO {
        outputs.push(Output::plain(ticket.payee, to_payee));
    }
    let change = escrow.output.amount.checked_sub(paid)?;
    if change > Amount::ZERO {
        let mut terms = terms.clone();
        let mut lottery = lottery.clone();
        lottery.redeemed.push(id);
        terms.lottery = Some(lottery);
        outputs.push(Output {
            owner: escrow.output.owner,
            amount: change,
            bond: Some(terms),
        });
    }
    Ok((id, outputs))
}
