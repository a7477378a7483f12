//! Session bonds on the ledger (Bevy side; the rules are in [`crate::ledger`]): a newcomer asks
//! the faucet for its grant, locks its session bond once it knows the referee pool, and
//! publishes the bond's proof on the world topic; peers verify the proofs they hear (once per
//! bond) so proposers propose only bonded players and members check every member's bond before
//! they play; when we learn that referees caught a player cheating (in our session, or from a
//! ban someone shows us, which carries the verdict and the bond's proof), our wallet submits
//! the forfeit order with their verdict.
//!
//! Without a [`LedgerSetup`] (a deployment without a ledger) none of this runs and sessions use
//! named placeholder bonds.

use std::collections::{BTreeMap, BTreeSet};

use bevy::prelude::*;
use bevy::time::Real;
use meshwork::bevy::ledger::{PaymentFailed, PaymentSettled, Wallet};
use meshwork::bevy::prelude::*;
use meshwork::proto::identity::{PeerId, PublicKey};
use meshwork::proto::ledger::{
    Epoch, Evidence, OrderDigest, Output, OutputId, OutputProof, SignedOrder,
};

use crate::game::now_ms;
use crate::ledger::{
    BondError, FEE, LedgerSetup, SESSION_BOND, check_session_bond, check_session_bond_output,
    session_bond_terms,
};
use crate::net::{Ban, SandboxMsg, WORLD_TOPIC};
use crate::session::Play;

/// How often a newcomer without funds asks the faucet again.
const GRANT_RETRY_MS: u64 = 5_000;
/// How often a player publishes its bond's proof.
const BOND_PUBLISH_MS: u64 = 3_000;
/// A bond order not settled after this long is given up (and tried again).
const BOND_PENDING_MS: u64 = 30_000;
/// Other players' verified bonds kept (beyond: the oldest-heard go first).
pub const KNOWN_BONDS_MAX: usize = 256;
/// The referee pool must stay the same this long before we lock a bond naming it (referees
/// announce every 2 s; a bond naming a pool heard half-way would have to be posted again).
const POOL_STABLE_MS: u64 = 5_000;
/// Forfeits waiting for the wallet.
const FORFEITS_QUEUED_MAX: usize = 32;

/// A player's bond as a peer verified it: its certificate checks against the committee and
/// its owner is the player. Whether its terms fit the current pool is checked where used.
#[derive(Clone, Debug)]
pub struct KnownBond {
    /// The output's id.
    pub id: OutputId,
    /// Its content.
    pub output: Output,
    /// Its proof (shown on in proposals).
    pub proof: OutputProof,
    /// When it was last heard.
    pub heard_ms: u64,
}

/// The ledger side of a sandbox peer (inside [`Play`]).
#[derive(Debug, Default)]
pub struct Bonds {
    /// The deployment's ledger (`None`: placeholder bonds).
    pub setup: Option<LedgerSetup>,
    /// Verified bonds of players we heard, by key.
    pub known: BTreeMap<PublicKey, KnownBond>,
    /// Our bond, once settled (and as long as its terms fit the pool).
    pub mine: Option<KnownBond>,
    /// Bonds of our session's members (from the accepted proposal): what a verdict forfeits.
    pub session: BTreeMap<OutputId, OutputProof>,
    /// Bans whose bonds we will forfeit (each ban once).
    to_forfeit: Vec<Ban>,
    /// The pool as last seen, and since when.
    pool_seen: (Vec<PublicKey>, u64),
    /// Forfeit orders we submitted, not yet settled.
    forfeiting: BTreeSet<OrderDigest>,
    /// Bonds we saw forfeited (our forfeit orders settled).
    pub forfeited: u64,
    /// Our bond order in flight, and since when.
    pending: Option<(OrderDigest, u64)>,
    next_grant_ms: u64,
    next_publish_ms: u64,
}

impl Bonds {
    /// The committee's epoch (the demo's committee never reconfigures).
    pub fn epoch(&self) -> Epoch {
        self.setup
            .as_ref()
            .map_or(Epoch(0), |s| s.committee().epoch)
    }

    /// A ban we just learnt (caught in our session, or shown with its verdict): its bond is
    /// forfeited through our wallet, unless it is ours (a cheating client does not slash
    /// itself; everyone else who learns of the ban does, and the identical orders settle once).
    pub(crate) fn forfeit_later(&mut self, ban: &Ban, me: Option<PublicKey>) {
        if self.on_ledger()
            && ban.bond.is_some()
            && Some(ban.player) != me
            && self.to_forfeit.len() < FORFEITS_QUEUED_MAX
        {
            self.to_forfeit.push(ban.clone());
        }
    }

    /// Forfeits waiting for the wallet.
    pub fn forfeits_queued(&self) -> usize {
        self.to_forfeit.len()
    }

    /// Whether sessions use ledger bonds.
    pub fn on_ledger(&self) -> bool {
        self.setup.is_some()
    }

    /// A bond proof `key`'s peer published: verified (certificate and owner) unless we hold
    /// it already.
    pub fn heard(&mut self, key: PublicKey, proof: &OutputProof, now: u64) -> Result<(), String> {
        let Some(setup) = &self.setup else {
            return Ok(());
        };
        if let Some(k) = self.known.get_mut(&key)
            && k.proof == *proof
        {
            k.heard_ms = now;
            return Ok(());
        }
        let (id, output) = proof.verify(setup.committee()).map_err(|e| e.to_string())?;
        if output.owner != key {
            return Err("the bond is not the sender's".into());
        }
        if output.bond.is_none() {
            return Err("not a bond".into());
        }
        if self.known.len() >= KNOWN_BONDS_MAX && !self.known.contains_key(&key) {
            let oldest = self
                .known
                .iter()
                .min_by_key(|(_, k)| k.heard_ms)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.known.remove(&oldest);
            }
        }
        self.known.insert(
            key,
            KnownBond {
                id,
                output,
                proof: proof.clone(),
                heard_ms: now,
            },
        );
        Ok(())
    }

    /// The bond we hold for `key` (ours, or one we heard), certificate already verified.
    fn held(&self, key: &PublicKey) -> Option<&KnownBond> {
        match &self.mine {
            Some(m) if m.output.owner == *key => Some(m),
            _ => self.known.get(key),
        }
    }

    /// `key`'s bond if it is a session bond for `pool`: ours, or one we heard. Runs for every
    /// candidate every frame, so it checks the terms only (the certificate was checked when
    /// the bond was heard).
    pub fn bond_of(&self, key: &PublicKey, pool: &[PublicKey]) -> Option<&KnownBond> {
        self.setup.as_ref()?;
        let k = self.held(key)?;
        check_session_bond_output(&k.output, key, pool, self.epoch())
            .ok()
            .map(|_| k)
    }

    /// Checks a proposal's bond for `key` against `pool`: the id it proves. A proof we
    /// verified already (the same bytes) is not verified again.
    pub fn check(
        &self,
        proof: &OutputProof,
        key: &PublicKey,
        pool: &[PublicKey],
    ) -> Result<OutputId, BondError> {
        let Some(setup) = &self.setup else {
            return Err(BondError::Terms);
        };
        match self.held(key) {
            Some(k) if k.proof == *proof => {
                check_session_bond_output(&k.output, key, pool, self.epoch()).map(|()| k.id)
            }
            _ => check_session_bond(setup.committee(), proof, key, pool, self.epoch()),
        }
    }
}

/// Grant requests, our bond, publishing it, forfeits on verdicts, and what settled.
pub(crate) fn upkeep(
    time: Res<Time<Real>>,
    mut play: ResMut<Play>,
    wallet: Option<ResMut<Wallet>>,
    mut send: MessageWriter<SendMessage>,
    mut publish: MessageWriter<Subscribe>,
    mut settled: MessageReader<PaymentSettled>,
    mut failed: MessageReader<PaymentFailed>,
) {
    let now = now_ms(&time);
    let Some(mut wallet) = wallet else {
        return;
    };
    let Some(me) = play.key else {
        return;
    };
    let Some(faucet) = play.bonds.setup.as_ref().map(|s| s.faucet) else {
        return;
    };
    let pool = play.pool(now);
    let epoch = play.bonds.epoch();
    let bonds = &mut play.bonds;
    for s in settled.read() {
        if bonds.forfeiting.remove(&s.order) {
            bonds.forfeited += 1;
            info!(
                "a cheater's session bond was forfeited (order {})",
                hex::encode(&s.order.0[..4])
            );
        }
        if bonds.pending.is_some_and(|(d, _)| d == s.order) {
            bonds.pending = None;
        }
    }
    for f in failed.read() {
        if let Some(order) = f.order {
            bonds.forfeiting.remove(&order);
            if bonds.pending.is_some_and(|(d, _)| d == order) {
                warn!("our session bond order failed: {:?}", f.reason);
                bonds.pending = None;
            }
        }
    }
    if bonds
        .pending
        .is_some_and(|(_, since)| now.saturating_sub(since) > BOND_PENDING_MS)
    {
        bonds.pending = None;
    }
    // Our bond: the wallet's bond whose terms fit the pool. The wallet verified its
    // certificate when it settled; the proof is built only when the bond changes.
    let current = wallet
        .core()
        .bonds()
        .find(|(_, c)| check_session_bond_output(&c.output, &me, &pool, epoch).is_ok())
        .map(|(id, _)| *id);
    if bonds.mine.as_ref().map(|m| m.id) != current {
        bonds.mine = current.and_then(|id| {
            let proof = wallet.core().output_proof(&id)?;
            let output = proof.output().ok()?.1.clone();
            Some(KnownBond {
                id,
                output,
                proof,
                heard_ms: now,
            })
        });
    }
    if bonds.pool_seen.0 != pool {
        bonds.pool_seen = (pool.clone(), now);
    }
    let pool_stable = now.saturating_sub(bonds.pool_seen.1) >= POOL_STABLE_MS;
    let need = SESSION_BOND.0 + FEE.0;
    if bonds.mine.is_none() && bonds.pending.is_none() && !pool.is_empty() && pool_stable {
        if wallet.balance().0 >= need {
            match wallet.core_mut().lock_bond(
                now,
                SESSION_BOND,
                FEE,
                session_bond_terms(&pool, epoch),
            ) {
                Ok(order) => {
                    info!(
                        "locking a session bond of {} ({} referees)",
                        SESSION_BOND,
                        pool.len()
                    );
                    bonds.pending = Some((order, now));
                }
                Err(e) => warn!("cannot lock a session bond: {e}"),
            }
        } else if wallet.pending() == 0 && now >= bonds.next_grant_ms {
            bonds.next_grant_ms = now + GRANT_RETRY_MS;
            send.write(SendMessage {
                target: PeerId::from_public_key(&faucet),
                exact: true,
                payload: SandboxMsg::Grant { key: me }.encode(),
            });
        }
    }
    if let Some(mine) = &bonds.mine
        && now >= bonds.next_publish_ms
    {
        bonds.next_publish_ms = now + BOND_PUBLISH_MS;
        publish.write(Subscribe {
            topic: WORLD_TOPIC.to_vec(),
            payload: Some(SandboxMsg::Bond(Box::new(mine.proof.clone())).encode()),
        });
    }
    // Bans learnt: forfeit the cheaters' bonds with the referees' verdicts.
    for ban in std::mem::take(&mut bonds.to_forfeit) {
        let Some(proof) = &ban.bond else {
            continue;
        };
        let order = proof.input().and_then(|input| {
            SignedOrder::forfeit(epoch, input, Evidence::Verdict(ban.verdict.clone()))
        });
        match order.and_then(|o| {
            wallet
                .core_mut()
                .submit(now, o, vec![proof.certificate.clone()])
        }) {
            Ok(order) => {
                info!(
                    "forfeiting the session bond {} of {} on the referees' verdict",
                    hex::encode(&ban.verdict.bond.0[..4]),
                    PeerId::from_public_key(&ban.player).short()
                );
                bonds.forfeiting.insert(order);
            }
            Err(e) => warn!("cannot forfeit the bond of a cheater: {e}"),
        }
    }
}
