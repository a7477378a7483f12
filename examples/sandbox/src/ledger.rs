//! The sandbox's ledger (no Bevy): what a deployment tells its players ([`LedgerSetup`]: the
//! genesis, whose committee every certificate is checked against, and the faucet's key), the
//! session bond every player posts before it may play, and the checks a peer applies to a bond
//! someone else shows it.
//!
//! Decisions:
//! - **Where the setup comes from.** The node that serves the page serves the setup too
//!   (`/ledger.bin`): the page is as trusted as the node, and the genesis is the ledger's root
//!   of trust. A deployment with no setup plays with named placeholder bonds (see
//!   `crate::session`); one deployment is one mode.
//! - **Funds.** A newcomer asks the faucet (a node peer with the genesis coins) for
//!   [`GRANT`] once; the faucet pays every queued newcomer in one order.
//! - **The session bond** is [`SESSION_BOND`] locked under [`session_bond_terms`]: the
//!   referee pool the sessions draw their panels from (in the demo the pool is at most
//!   [`PANEL_MAX`] referees and never includes a player, so a session's panel *is* the pool),
//!   a verdict quorum of more than two thirds of it, no beneficiaries (a forfeited bond is
//!   burned), locked [`BOND_EPOCHS`] epochs past the one it is posted in. The demo's committee
//!   never reconfigures, so a bond stays locked for the whole run. A change in the referee pool
//!   needs new bonds (a bond names its panel).

use meshwork::proto::identity::PublicKey;
use meshwork::proto::ledger::{
    Amount, BondTerms, Committee, Epoch, Genesis, LedgerError, Output, OutputId, OutputProof,
};
use meshwork::proto::referee::{PANEL_MAX, quorum};
use meshwork::proto::wire;
use serde::{Deserialize, Serialize};

/// What a newcomer gets from the faucet.
pub const GRANT: Amount = Amount(1_000);
/// The session bond.
pub const SESSION_BOND: Amount = Amount(100);
/// The fee burned with every order a player makes.
pub const FEE: Amount = Amount(1);
/// Epochs past the current one a session bond stays locked.
pub const BOND_EPOCHS: u64 = 4;

/// A deployment's ledger as its players need it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerSetup {
    /// The genesis (its committee checks every certificate).
    pub genesis: Genesis,
    /// The faucet's key (ask its peer id for a [`GRANT`]).
    pub faucet: PublicKey,
}

impl LedgerSetup {
    /// The bytes the node serves.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode_body(self).unwrap_or_default()
    }

    /// Decodes (bounded) the bytes the node serves.
    pub fn decode(bytes: &[u8]) -> Result<Self, LedgerError> {
        Ok(wire::decode(bytes)?)
    }

    /// The committee certificates are checked against.
    pub fn committee(&self) -> &Committee {
        &self.genesis.committee
    }
}

/// The node's web port (`meshwork --web-port`'s default).
pub const WEB_PORT: u16 = 3580;
/// The path the node serves the setup at.
pub const SETUP_PATH: &str = "/ledger.bin";
/// Most bytes of a setup.
pub const SETUP_BYTES_MAX: usize = 64 * 1024;

/// Where a node whose signalling server is at `signalling_url` serves its setup (same host,
/// [`WEB_PORT`]).
pub fn setup_url(signalling_url: &str) -> String {
    let rest = signalling_url
        .split_once("://")
        .map_or(signalling_url, |(_, r)| r);
    let host = rest.split(['/', ':']).next().unwrap_or("127.0.0.1");
    format!("http://{host}:{WEB_PORT}{SETUP_PATH}")
}

/// Fetches a setup from `url` (`http://host:port/path`, plain HTTP/1.0, 5 s timeouts).
#[cfg(not(target_arch = "wasm32"))]
pub fn fetch_setup(url: &str) -> Result<LedgerSetup, String> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    use std::time::Duration;
    let rest = url.strip_prefix("http://").ok_or("not an http:// URL")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let timeout = Duration::from_secs(5);
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {authority}\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .take(SETUP_BYTES_MAX as u64 + 4096)
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP response")?;
    let status = String::from_utf8_lossy(&response[..split]);
    if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
        return Err(status.lines().next().unwrap_or_default().to_string());
    }
    LedgerSetup::decode(&response[split + 4..]).map_err(|e| e.to_string())
}

/// The terms of a session bond for sessions judged by `referees` (the pool), posted in `epoch`.
pub fn session_bond_terms(referees: &[PublicKey], epoch: Epoch) -> BondTerms {
    let mut referees = referees.to_vec();
    referees.sort();
    referees.dedup();
    referees.truncate(PANEL_MAX);
    BondTerms {
        expiry: Epoch(epoch.0.saturating_add(BOND_EPOCHS)),
        beneficiaries: Vec::new(),
        referee_quorum: u16::try_from(quorum(referees.len())).unwrap_or(u16::MAX),
        referees,
        lottery: None,
    }
}

/// Why a bond someone showed us does not let its owner play.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BondError {
    /// The certificate does not check against the committee.
    #[error("the certificate does not verify: {0}")]
    Certificate(String),
    /// It is someone else's output.
    #[error("the bond is not the player's")]
    Owner,
    /// Not a bond, or not one the session's referees can forfeit.
    #[error("the terms are not a session bond for these referees")]
    Terms,
    /// Too small.
    #[error("the bond is below the session bond")]
    Amount,
}

/// Checks that `proof` shows a session bond of `player` that `referees` can forfeit, locked
/// past `epoch`; returns its id.
pub fn check_session_bond(
    committee: &Committee,
    proof: &OutputProof,
    player: &PublicKey,
    referees: &[PublicKey],
    epoch: Epoch,
) -> Result<OutputId, BondError> {
    let (id, output) = proof
        .verify(committee)
        .map_err(|e| BondError::Certificate(e.to_string()))?;
    check_session_bond_output(&output, player, referees, epoch)?;
    Ok(id)
}

/// The part of [`check_session_bond`] after the certificate: whether `output` (proven
/// already) is a session bond of `player` that `referees` can forfeit, locked past `epoch`.
/// Cheap: no signature is checked.
pub fn check_session_bond_output(
    output: &Output,
    player: &PublicKey,
    referees: &[PublicKey],
    epoch: Epoch,
) -> Result<(), BondError> {
    if output.owner != *player {
        return Err(BondError::Owner);
    }
    let terms = output.bond.as_ref().ok_or(BondError::Terms)?;
    let expected = session_bond_terms(referees, epoch);
    if terms.referees != expected.referees
        || terms.referee_quorum != expected.referee_quorum
        || !terms.beneficiaries.is_empty()
        || terms.lottery.is_some()
        || terms.expiry <= epoch
    {
        return Err(BondError::Terms);
    }
    if output.amount < SESSION_BOND {
        return Err(BondError::Amount);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use meshwork::proto::contract::Fuel;
    use meshwork::proto::identity::{Identity, PeerId};
    use meshwork::proto::ledger::{
        LedgerMsg, MemoryStore, Output, Validator, Wallet, WalletConfig, WalletEvent,
    };

    /// A setup with four in-memory validators, and `player`'s session bond for `pool` locked
    /// through them (a fixture shared with the session tests).
    pub(crate) fn bonded(player: &Identity, pool: &[PublicKey]) -> (LedgerSetup, OutputProof) {
        let validators: Vec<_> = (0..4).map(|i| Identity::from_seed([10 + i; 32])).collect();
        let bonds: Vec<_> = validators
            .iter()
            .map(|v| (v.public_key(), Amount(1_000), Fuel(0)))
            .collect();
        let genesis = Genesis::new(
            vec![Output::plain(player.public_key(), GRANT)],
            &bonds,
            &BondTerms::until(Epoch(9)),
            4,
        )
        .expect("genesis");
        let mut vals: Vec<_> = validators
            .iter()
            .map(|v| Validator::new(v.clone(), &genesis, MemoryStore::new()).expect("validator"))
            .collect();
        let mut wallet = Wallet::new(
            player.clone(),
            genesis.committee.clone(),
            WalletConfig::default(),
        );
        let (id, out) = genesis.created().next().expect("coin");
        wallet.add_coin(id, out.clone(), None);
        wallet
            .lock_bond(0, SESSION_BOND, FEE, session_bond_terms(pool, Epoch(0)))
            .expect("lock");
        for _ in 0..4 {
            let mut replies = Vec::new();
            while let Some((to, msg)) = wallet.poll_transmit() {
                for v in &mut vals {
                    if PeerId::from_public_key(&v.public_key()) == to {
                        let _ = v.handle_message(player.peer_id(), msg.clone());
                        while let Some((_, r)) = v.poll_transmit() {
                            replies.push((PeerId::from_public_key(&v.public_key()), r));
                        }
                    }
                }
            }
            for (from, r) in replies {
                let r = LedgerMsg::decode(&r.encode().expect("encode")).expect("decode");
                let _ = wallet.handle_message(0, from, r);
            }
        }
        assert!(matches!(
            wallet.poll_event(),
            Some(WalletEvent::Settled { .. })
        ));
        let (bond, _) = wallet.bonds().next().expect("bond");
        let proof = wallet.output_proof(bond).expect("proof");
        let setup = LedgerSetup {
            genesis,
            faucet: player.public_key(),
        };
        (setup, proof)
    }

    /// A player's bond, locked with four in-memory validators, checks out for its owner and
    /// the pool it names, and for nobody and nothing else.
    #[test]
    fn a_session_bond_checks_out_only_for_its_owner_and_pool() {
        let player = Identity::from_seed([1; 32]);
        let stranger = Identity::from_seed([2; 32]);
        let pool: Vec<_> = (0..6)
            .map(|i| Identity::from_seed([20 + i; 32]).public_key())
            .collect();
        let (setup, proof) = bonded(&player, &pool);
        let bond = proof.output().expect("output").0;
        let genesis = setup.genesis.clone();
        let c = &genesis.committee;
        let me = player.public_key();
        assert_eq!(
            check_session_bond(c, &proof, &me, &pool, Epoch(0)),
            Ok(bond)
        );
        let mut shuffled = pool.clone();
        shuffled.reverse();
        assert_eq!(
            check_session_bond(c, &proof, &me, &shuffled, Epoch(0)),
            Ok(bond),
            "the pool is a set"
        );
        assert_eq!(
            check_session_bond(c, &proof, &stranger.public_key(), &pool, Epoch(0)),
            Err(BondError::Owner)
        );
        assert_eq!(
            check_session_bond(c, &proof, &me, &pool[..5], Epoch(0)),
            Err(BondError::Terms),
            "another pool"
        );
        assert_eq!(
            check_session_bond(c, &proof, &me, &pool, Epoch(BOND_EPOCHS)),
            Err(BondError::Terms),
            "expired"
        );
        let mut forged = proof.clone();
        forged.certificate.order.outputs[0].amount = Amount(900);
        assert!(matches!(
            check_session_bond(c, &forged, &me, &pool, Epoch(0)),
            Err(BondError::Certificate(_))
        ));
        let others: Vec<_> = (0..4)
            .map(|i| {
                (
                    Identity::from_seed([40 + i; 32]).public_key(),
                    Amount(1_000),
                    Fuel(0),
                )
            })
            .collect();
        let other =
            Genesis::new(Vec::new(), &others, &BondTerms::until(Epoch(9)), 4).expect("genesis");
        assert!(matches!(
            check_session_bond(&other.committee, &proof, &me, &pool, Epoch(0)),
            Err(BondError::Certificate(_))
        ));
        // The setup round-trips through its bytes.
        let setup = LedgerSetup {
            genesis,
            faucet: me,
        };
        assert_eq!(LedgerSetup::decode(&setup.encode()).expect("decode"), setup);
    }
}
