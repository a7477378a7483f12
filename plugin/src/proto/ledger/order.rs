//! Amounts, outputs and transfer orders: the UTXO data model and its structural checks.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::LedgerError;
use super::bond::{BondTerms, Evidence};
use super::ticket::{WinningTicket, redemption_outputs};
use crate::proto::identity::{Domain, Identity, PeerId, PublicKey, Signature};
use crate::proto::wire;

/// Most inputs of one order.
pub const INPUTS_MAX: usize = 16;
/// Most outputs of one order.
pub const OUTPUTS_MAX: usize = 16;

/// An amount of the ledger's unit. Integer only; every sum is checked.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Amount(pub u64);

impl Amount {
    /// Nothing.
    pub const ZERO: Self = Self(0);

    /// `self + other`, or [`LedgerError::Overflow`].
    pub fn checked_add(self, other: Self) -> Result<Self, LedgerError> {
        self.0
            .checked_add(other.0)
            .map(Self)
            .ok_or(LedgerError::Overflow)
    }

    /// `self - other`, or [`LedgerError::Overflow`] if `other` is larger.
    pub fn checked_sub(self, other: Self) -> Result<Self, LedgerError> {
        self.0
            .checked_sub(other.0)
            .map(Self)
            .ok_or(LedgerError::Overflow)
    }

    /// The checked sum of `amounts`.
    pub fn sum(amounts: impl IntoIterator<Item = Amount>) -> Result<Self, LedgerError> {
        amounts
            .into_iter()
            .try_fold(Self::ZERO, |acc, a| acc.checked_add(a))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A committee epoch. The ledger's only clock: bonds expire at an epoch.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Epoch(pub u64);

/// The id of an output: `sha256("meshwork/ledger/output" ‖ creating order digest ‖ index u16 LE)`.
/// Also its key in the XOR metric that picks its validators.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OutputId(pub [u8; 32]);

impl OutputId {
    /// The id of output `index` of the order with digest `order`.
    pub fn new(order: &OrderDigest, index: u16) -> Self {
        let mut h = Sha256::new();
        h.update(b"meshwork/ledger/output\0");
        h.update(order.0);
        h.update(index.to_le_bytes());
        Self(h.finalize().into())
    }

    /// The id as a key in the overlay's metric space.
    pub fn key(&self) -> PeerId {
        PeerId(self.0)
    }
}

impl fmt::Debug for OutputId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OutputId({})", hex::encode(&self.0[..4]))
    }
}

/// `sha256` of an order's encoding: what owners sign and validators vote for.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderDigest(pub [u8; 32]);

impl fmt::Debug for OrderDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrderDigest({})", hex::encode(&self.0[..4]))
    }
}

/// An unspent output: an amount owned by a public key, optionally locked as a bond.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// Who may spend it (and, for a bond, whose misbehaviour forfeits it).
    pub owner: PublicKey,
    /// How much.
    pub amount: Amount,
    /// `Some` for collateral: spendable by the owner only after expiry, forfeitable on evidence.
    pub bond: Option<BondTerms>,
}

impl Output {
    /// A plain (non-bond) output.
    pub fn plain(owner: PublicKey, amount: Amount) -> Self {
        Self {
            owner,
            amount,
            bond: None,
        }
    }
}

/// An input of an order: the output spent and what the spender claims it holds. Validators of the
/// output check the claim against their record, so a certificate proves every claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// The output spent.
    pub id: OutputId,
    /// Its claimed content.
    pub output: Output,
}

/// A transfer: spend `inputs`, create `outputs`, burn `fee`, within committee `epoch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferOrder {
    /// The committee epoch the order is valid in.
    pub epoch: Epoch,
    /// Free for the payer: makes otherwise identical orders distinct.
    pub nonce: u64,
    /// Outputs spent (no duplicates, 1..=`INPUTS_MAX`).
    pub inputs: Vec<Input>,
    /// Outputs created (0..=`OUTPUTS_MAX`).
    pub outputs: Vec<Output>,
    /// Burned. Validators are paid by the services they sell (fetch, referee duties), not here.
    pub fee: Amount,
}

impl TransferOrder {
    /// The digest owners sign and validators vote for.
    pub fn digest(&self) -> OrderDigest {
        // Encoding a well-typed value cannot fail unless it exceeds the message limit, which
        // `check_shape` bounds; an oversized order still gets a (useless) unique digest.
        let bytes = wire::encode_body(self).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(b"meshwork/ledger/order\0");
        h.update(&bytes);
        OrderDigest(h.finalize().into())
    }

    /// The id of created output `index`.
    pub fn output_id(digest: &OrderDigest, index: usize) -> OutputId {
        OutputId::new(
            digest,
            u16::try_from(index).expect("index < OUTPUTS_MAX fits u16"),
        )
    }

    /// The outputs this order creates, with their ids (at most `OUTPUTS_MAX`: an order with more
    /// is malformed and creates nothing valid, but peers may send one before it is checked).
    pub fn created(&self, digest: &OrderDigest) -> impl Iterator<Item = (OutputId, &Output)> {
        self.outputs
            .iter()
            .take(OUTPUTS_MAX)
            .enumerate()
            .map(move |(i, o)| (Self::output_id(digest, i), o))
    }

    /// Structural checks every validator and wallet applies: bounds, no duplicate inputs, bond
    /// terms well formed, and `Σ inputs == Σ outputs + fee` with checked arithmetic.
    pub fn check_shape(&self) -> Result<(), LedgerError> {
        if self.inputs.is_empty() {
            return Err(LedgerError::Malformed("no inputs"));
        }
        if self.inputs.len() > INPUTS_MAX {
            return Err(LedgerError::Malformed("too many inputs"));
        }
        if self.outputs.len() > OUTPUTS_MAX {
            return Err(LedgerError::Malformed("too many outputs"));
        }
        let ids: BTreeSet<_> = self.inputs.iter().map(|i| i.id).collect();
        if ids.len() != self.inputs.len() {
            return Err(LedgerError::Malformed("duplicate input"));
        }
        for o in self.inputs.iter().map(|i| &i.output).chain(&self.outputs) {
            if let Some(terms) = &o.bond {
                terms.check_shape()?;
            }
        }
        if self.outputs.iter().any(|o| o.amount == Amount::ZERO) {
            return Err(LedgerError::Malformed("zero output"));
        }
        let inputs = Amount::sum(self.inputs.iter().map(|i| i.output.amount))?;
        let outputs = Amount::sum(self.outputs.iter().map(|o| o.amount))?;
        if outputs.checked_add(self.fee)? != inputs {
            return Err(LedgerError::Overspend {
                inputs: inputs.0,
                outputs: outputs.0,
                fee: self.fee.0,
            });
        }
        Ok(())
    }

    /// The distinct owners of the inputs, sorted.
    pub fn owners(&self) -> BTreeSet<PublicKey> {
        self.inputs.iter().map(|i| i.output.owner).collect()
    }

    /// Sign as the owner `identity` (one of the inputs' owners).
    pub fn sign(&self, identity: &Identity) -> OwnerSignature {
        OwnerSignature {
            owner: identity.public_key(),
            signature: identity.sign(Domain::LedgerOrder, &self.digest().0),
        }
    }

    /// This order signed by `identities` (the owners of all its inputs).
    pub fn signed_by(self, identities: &[&Identity]) -> SignedOrder {
        let mut sigs: Vec<_> = identities.iter().map(|id| self.sign(id)).collect();
        sigs.sort_by_key(|s| s.owner);
        SignedOrder {
            order: self,
            authority: Authority::Owners(sigs),
        }
    }
}

/// One owner's signature over an order digest ([`Domain::LedgerOrder`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerSignature {
    /// The owner.
    pub owner: PublicKey,
    /// Its signature.
    pub signature: Signature,
}

/// What authorises spending the inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Authority {
    /// Signatures of exactly the distinct input owners, sorted by key.
    Owners(Vec<OwnerSignature>),
    /// A bond forfeited on evidence: exactly one bond input, outputs fixed by its terms (or, for
    /// a verdict against a bond naming no beneficiaries, by the verdict).
    Forfeit(Box<Evidence>),
    /// A winning lottery ticket paid from its payer's escrow: exactly one escrow input, nonce 0,
    /// outputs fixed by [`redemption_outputs`]. The payer's signature on the ticket is the
    /// authority (the escrow's owner is the ticket's payer).
    Redeem(Box<WinningTicket>),
}

/// An order plus what authorises it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOrder {
    /// The order.
    pub order: TransferOrder,
    /// Owner signatures or forfeit evidence.
    pub authority: Authority,
}

impl SignedOrder {
    /// A forfeit order: `bond` goes to its beneficiaries (remainder burned) on `evidence`.
    pub fn forfeit(epoch: Epoch, bond: Input, evidence: Evidence) -> Result<Self, LedgerError> {
        let terms = bond
            .output
            .bond
            .as_ref()
            .ok_or(LedgerError::BadEvidence("input is not a bond"))?;
        let (outputs, fee) = evidence.forfeit_outputs(terms, bond.output.amount);
        Ok(Self {
            order: TransferOrder {
                epoch,
                nonce: 0,
                inputs: vec![bond],
                outputs,
                fee,
            },
            authority: Authority::Forfeit(Box::new(evidence)),
        })
    }

    /// A redemption order: `winning` paid from `escrow` (its payer's escrow output, as claimed
    /// by the spender) in `epoch`, burning `fee` out of the payee's winnings. Checks everything
    /// validators check except the ticket signature.
    pub fn redeem(
        epoch: Epoch,
        escrow: Input,
        winning: WinningTicket,
        fee: Amount,
    ) -> Result<Self, LedgerError> {
        let (_, outputs) = redemption_outputs(epoch, &escrow, &winning, fee)?;
        Ok(Self {
            order: TransferOrder {
                epoch,
                nonce: 0,
                inputs: vec![escrow],
                outputs,
                fee,
            },
            authority: Authority::Redeem(Box::new(winning)),
        })
    }
}
