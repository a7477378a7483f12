//! What a wallet keeps across restarts ([`WalletState`]), as bytes. Sans-IO: where the bytes
//! live (a file, the browser's local storage) is the host's business (`crate::persist`).
//!
//! Kept: the committees, the nonce, every coin with the certificate that created it, orders
//! submitted but not settled (resubmitted on restore: their inputs may already be locked for
//! them, so a new order would only conflict), certificates payees have not acknowledged, and
//! watched bonds. Not kept: the key (kept by the identity's storage), recent certificates (only
//! used to answer conflicts) and in-flight votes (re-requested on resubmission).
//!
//! Layout: bincode 2 standard configuration of [`WalletState`], one copy of each certificate
//! (coins name theirs by index), at most [`WalletState::BYTES_MAX`] bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Coin, Pending, Unconfirmed, Wallet, WalletConfig};
use crate::proto::identity::{Identity, PeerId};
use crate::proto::ledger::{
    Certificate, Committee, Input, LedgerError, LedgerMsg, OrderDigest, Output, OutputId,
    SignedOrder,
};
use crate::proto::wire::WireError;

/// The state of a [`Wallet`] that survives a restart. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletState {
    /// Every committee the wallet knows, oldest first.
    pub committees: Vec<Committee>,
    /// The last order nonce used.
    pub nonce: u64,
    /// Certificates referenced by coins, pending orders and unacknowledged payments.
    pub certificates: Vec<Certificate>,
    /// Coins: id, content and the index of the creating certificate (`None`: genesis).
    pub coins: Vec<(OutputId, Output, Option<u32>)>,
    /// Orders submitted and not settled, with the indices of their inputs' certificates.
    pub pending: Vec<(SignedOrder, Vec<u32>)>,
    /// Certificates (by index) not yet acknowledged by these payees.
    pub unconfirmed: Vec<(u32, Vec<PeerId>)>,
    /// Bonds watched for forfeiture.
    pub bonds: Vec<Input>,
}

impl WalletState {
    /// Most bytes a saved wallet may take (the browser's local storage holds ~5 MiB per origin,
    /// and the text form doubles it).
    pub const BYTES_MAX: usize = 2 << 20;

    /// The saved bytes.
    pub fn encode(&self) -> Result<Vec<u8>, LedgerError> {
        let bytes = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|e| WireError::Encode(e.to_string()))?;
        if bytes.len() > Self::BYTES_MAX {
            return Err(WireError::MessageTooLarge(bytes.len()).into());
        }
        Ok(bytes)
    }

    /// Parse saved bytes (bounded, trailing bytes refused). Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, LedgerError> {
        if bytes.len() > Self::BYTES_MAX {
            return Err(WireError::MessageTooLarge(bytes.len()).into());
        }
        let config = bincode::config::standard().with_limit::<{ Self::BYTES_MAX }>();
        let (state, used): (Self, usize) = bincode::serde::decode_from_slice(bytes, config)
            .map_err(|e| WireError::Decode(e.to_string()))?;
        if used != bytes.len() {
            return Err(WireError::TrailingBytes(bytes.len() - used).into());
        }
        Ok(state)
    }
}

/// Certificates stored once per order (any certificate of an order proves it), named by index.
#[derive(Default)]
struct CertTable {
    certs: Vec<Certificate>,
    by_order: BTreeMap<OrderDigest, u32>,
}

impl CertTable {
    fn index(&mut self, cert: &Certificate) -> u32 {
        *self.by_order.entry(cert.order.digest()).or_insert_with(|| {
            self.certs.push(cert.clone());
            u32::try_from(self.certs.len() - 1)
                .expect("a saved wallet holds far fewer than 2^32 certificates")
        })
    }
}

fn cert_at(certs: &[Certificate], i: u32) -> Result<Certificate, LedgerError> {
    usize::try_from(i)
        .ok()
        .and_then(|i| certs.get(i))
        .cloned()
        .ok_or(LedgerError::Malformed(
            "saved wallet names a missing certificate",
        ))
}

impl Wallet {
    /// What to save so that [`Wallet::restore`] can rebuild this wallet.
    pub fn state(&self) -> WalletState {
        let mut table = CertTable::default();
        let coins = self
            .coins
            .iter()
            .map(|(id, c)| {
                (
                    *id,
                    c.output.clone(),
                    c.proof.as_ref().map(|p| table.index(p)),
                )
            })
            .collect();
        let pending = self
            .pending
            .values()
            .map(|p: &Pending| {
                let proofs = p.proofs.iter().map(|c| table.index(c)).collect();
                (p.signed.clone(), proofs)
            })
            .collect();
        let unconfirmed = self
            .unconfirmed
            .values()
            .map(|u: &Unconfirmed| (table.index(&u.cert), u.to.iter().copied().collect()))
            .collect();
        WalletState {
            committees: self.committees.values().cloned().collect(),
            nonce: self.nonce,
            certificates: table.certs,
            coins,
            pending,
            unconfirmed,
            bonds: self.bonds.values().cloned().collect(),
        }
    }

    /// Rebuild a wallet for `identity` from `state` at `now_ms`: its coins, committees and nonce
    /// come back, unsettled orders are submitted again (their messages are queued) and
    /// unacknowledged certificates are sent again to their payees.
    pub fn restore(
        identity: Identity,
        state: WalletState,
        cfg: WalletConfig,
        now_ms: u64,
    ) -> Result<Self, LedgerError> {
        let mut committees = state.committees.into_iter();
        let first = committees
            .next()
            .ok_or(LedgerError::Malformed("saved wallet without a committee"))?;
        let mut wallet = Wallet::new(identity, first, cfg);
        for c in committees {
            wallet.set_committee(c);
        }
        wallet.nonce = state.nonce;
        for (id, output, proof) in state.coins {
            let proof = proof.map(|i| cert_at(&state.certificates, i)).transpose()?;
            if output.owner == wallet.identity.public_key() {
                wallet.coins.insert(id, Coin { output, proof });
            }
        }
        for bond in state.bonds {
            wallet.watch_bond(bond);
        }
        for (signed, proofs) in state.pending {
            let proofs = proofs
                .into_iter()
                .map(|i| cert_at(&state.certificates, i))
                .collect::<Result<Vec<_>, _>>()?;
            wallet.submit(now_ms, signed, proofs)?;
        }
        for (i, to) in state.unconfirmed {
            let cert = cert_at(&state.certificates, i)?;
            let digest = cert.order.digest();
            for peer in &to {
                super::push(&mut wallet.outbox, *peer, LedgerMsg::Confirm(cert.clone()));
            }
            wallet.unconfirmed.insert(
                digest,
                Unconfirmed {
                    cert,
                    to: to.into_iter().collect(),
                    retry_at_ms: now_ms.saturating_add(wallet.cfg.retry_ms),
                    tries: 0,
                },
            );
        }
        Ok(wallet)
    }
}
