//! Who judges a session: the pool of bonded referees, a session's panel, and each checkpoint's
//! referee set. Deterministic from public data, so a session cannot pick its judges.

use sha2::{Digest as _, Sha256};

use super::{RefereeError, Roster, SessionId};
use crate::proto::identity::PublicKey;
use crate::proto::ledger::{BondTerms, Epoch};

/// Referees a session's panel holds: the referees its players' session bonds list (the ledger's
/// `REFEREES_MAX`), so a verdict of the panel can forfeit them.
pub const PANEL_MAX: usize = 64;
/// Referees selected per checkpoint attempt (`N`), by default and at most. With a share `p` of
/// corrupt referees a wrong root needs ≥ 11 of 16 corrupt: for p = 10% that is ~3·10⁻⁸ per
/// checkpoint (colluding); no quorum at all (≥ 6 corrupt or silent) ~1.3%, which a retry
/// resolves. A small deployment may choose fewer ([`RefereePool::with_per_checkpoint`]) and
/// accepts the weaker bound (with 4: a wrong root needs 3 of 4 corrupt).
pub const REFEREES_PER_CHECKPOINT: usize = 16;
/// Most bonded referees a pool may list (bounds the ranking work).
pub const POOL_MAX: usize = 100_000;

/// Signatures needed out of `n`: strictly more than two thirds.
pub fn quorum(n: usize) -> usize {
    n * 2 / 3 + 1
}

fn rank(seed: &[u8; 32], key: &PublicKey) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed);
    h.update(key.0);
    h.finalize().into()
}

/// The bonded referees known to every peer at a session's start: keys holding a live referee
/// bond in the ledger (a node learns them from the ledger; the simulator from its peers).
/// Sorted, distinct, at most [`POOL_MAX`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefereePool {
    keys: Vec<PublicKey>,
    per_checkpoint: usize,
}

impl Default for RefereePool {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            per_checkpoint: REFEREES_PER_CHECKPOINT,
        }
    }
}

impl RefereePool {
    /// A pool of `keys` (sorted and deduplicated here); `Err` above [`POOL_MAX`].
    pub fn new(mut keys: Vec<PublicKey>) -> Result<Self, RefereeError> {
        keys.sort();
        keys.dedup();
        if keys.len() > POOL_MAX {
            return Err(RefereeError::Malformed("referee pool above POOL_MAX"));
        }
        Ok(Self {
            keys,
            per_checkpoint: REFEREES_PER_CHECKPOINT,
        })
    }

    /// The same pool drawing `n` referees per checkpoint attempt instead of
    /// [`REFEREES_PER_CHECKPOINT`]: a consensus parameter every player and referee of a session
    /// must share. `Err` unless `1 ≤ n ≤ REFEREES_PER_CHECKPOINT`.
    pub fn with_per_checkpoint(mut self, n: usize) -> Result<Self, RefereeError> {
        if n == 0 || n > REFEREES_PER_CHECKPOINT {
            return Err(RefereeError::Malformed(
                "referees per checkpoint out of 1..=REFEREES_PER_CHECKPOINT",
            ));
        }
        self.per_checkpoint = n;
        Ok(self)
    }

    /// Referees drawn per checkpoint attempt.
    pub fn per_checkpoint(&self) -> usize {
        self.per_checkpoint
    }

    /// The keys, sorted.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }
}

/// A session's judges: the [`PANEL_MAX`] pool members *not in the roster* ranked first by
/// `sha256(sha256("meshwork/referee-panel/v1" ‖ session) ‖ key)`. Players bond with the panel as
/// their bond's referees ([`Panel::bond_terms`]); each checkpoint attempt draws
/// [`REFEREES_PER_CHECKPOINT`] of them ([`Panel::selected`]), disjoint across attempts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panel {
    session: SessionId,
    roster: Roster,
    per_checkpoint: usize,
    /// In rank order.
    keys: Vec<PublicKey>,
}

impl Panel {
    /// Draws the panel of `session` from `pool`, excluding the roster. Needs at least
    /// [`REFEREES_PER_CHECKPOINT`] eligible referees.
    pub fn draw(
        pool: &RefereePool,
        session: &SessionId,
        roster: &Roster,
    ) -> Result<Self, RefereeError> {
        let seed: [u8; 32] = Sha256::new()
            .chain_update(b"meshwork/referee-panel/v1")
            .chain_update(session.0)
            .finalize()
            .into();
        let mut ranked: Vec<([u8; 32], PublicKey)> = pool
            .keys
            .iter()
            .filter(|k| !roster.contains(k))
            .map(|k| (rank(&seed, k), *k))
            .collect();
        if ranked.len() < pool.per_checkpoint {
            return Err(RefereeError::PoolTooSmall(
                ranked.len(),
                pool.per_checkpoint,
            ));
        }
        ranked.sort_unstable();
        ranked.truncate(PANEL_MAX);
        Ok(Self {
            session: *session,
            roster: roster.clone(),
            per_checkpoint: pool.per_checkpoint,
            keys: ranked.into_iter().map(|(_, k)| k).collect(),
        })
    }

    /// The session.
    pub fn session(&self) -> &SessionId {
        &self.session
    }

    /// The roster it was drawn for (its members can never judge).
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// Checks that a checkpoint belongs to this panel's session and roster.
    pub fn check(&self, checkpoint: &super::Checkpoint) -> Result<(), RefereeError> {
        if checkpoint.session != self.session {
            return Err(RefereeError::WrongCheckpoint);
        }
        if checkpoint.roster != self.roster {
            return Err(RefereeError::WrongRoster);
        }
        Ok(())
    }

    /// The panel in rank order.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Whether `key` is on the panel.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.keys.contains(key)
    }

    /// Referees drawn per attempt (`N`, from the pool).
    pub fn per_checkpoint(&self) -> usize {
        self.per_checkpoint
    }

    /// Attempts the panel can staff: `panel size / N` disjoint referee sets.
    pub fn attempts(&self) -> u8 {
        u8::try_from(self.keys.len() / self.per_checkpoint).expect("≤ PANEL_MAX / N")
    }

    /// Distinct panel signatures a verdict needs: > 2/3 of the whole panel, so that a quorum of
    /// one checkpoint's referee set alone can never forfeit a bond.
    pub fn verdict_quorum(&self) -> usize {
        quorum(self.keys.len())
    }

    /// The referees of checkpoint `seq`, attempt `attempt`: the panel ranked by
    /// `sha256(seed ‖ key)` with `seed = sha256("meshwork/referee-seed/v1" ‖ session ‖ seq u64)`,
    /// ranks `attempt·N .. (attempt+1)·N`. The seed deliberately leaves out the checkpoint's
    /// contents: players choose their inputs, and a seed over them could be ground.
    pub fn selected(&self, seq: u64, attempt: u8) -> Result<Vec<PublicKey>, RefereeError> {
        if attempt >= self.attempts() {
            return Err(RefereeError::NoSuchAttempt(attempt));
        }
        let seed: [u8; 32] = Sha256::new()
            .chain_update(b"meshwork/referee-seed/v1")
            .chain_update(self.session.0)
            .chain_update(seq.to_le_bytes())
            .finalize()
            .into();
        let mut ranked: Vec<([u8; 32], PublicKey)> =
            self.keys.iter().map(|k| (rank(&seed, k), *k)).collect();
        ranked.sort_unstable();
        let start = usize::from(attempt) * self.per_checkpoint;
        Ok(ranked[start..start + self.per_checkpoint]
            .iter()
            .map(|(_, k)| *k)
            .collect())
    }

    /// The terms of a session bond for this panel: locked through `expiry`, forfeited to
    /// `beneficiaries` by a verdict of [`Panel::verdict_quorum`] panel referees.
    pub fn bond_terms(&self, expiry: Epoch, beneficiaries: Vec<PublicKey>) -> BondTerms {
        let mut referees = self.keys.clone();
        referees.sort();
        BondTerms {
            expiry,
            beneficiaries,
            referees,
            referee_quorum: u16::try_from(self.verdict_quorum()).expect("≤ PANEL_MAX"),
            lottery: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::identity::Identity;
    use crate::proto::ledger::OutputId;
    use crate::proto::referee::Member;

    fn keys(n: u8, from: u8) -> Vec<PublicKey> {
        (0..n)
            .map(|i| Identity::from_seed([from.wrapping_add(i); 32]).public_key())
            .collect()
    }

    #[test]
    fn a_smaller_panel_per_checkpoint_draws_that_many_disjoint_sets() {
        let roster = Roster::new(vec![Member {
            key: keys(1, 200)[0],
            bond: OutputId([1; 32]),
        }])
        .expect("one player");
        let session = SessionId([7; 32]);
        let pool = RefereePool::new(keys(10, 0)).expect("pool");
        assert!(matches!(
            Panel::draw(&pool, &session, &roster),
            Err(RefereeError::PoolTooSmall(10, 16))
        ));
        assert!(pool.clone().with_per_checkpoint(0).is_err());
        assert!(pool.clone().with_per_checkpoint(17).is_err());
        let small = pool.with_per_checkpoint(4).expect("4 per checkpoint");
        let panel = Panel::draw(&small, &session, &roster).expect("10 ≥ 4");
        assert_eq!(panel.per_checkpoint(), 4);
        assert_eq!(panel.attempts(), 2);
        let first = panel.selected(3, 0).expect("attempt 0");
        let second = panel.selected(3, 1).expect("attempt 1");
        assert_eq!((first.len(), second.len()), (4, 4));
        assert!(first.iter().all(|k| !second.contains(k)), "disjoint");
        assert!(matches!(
            panel.selected(3, 2),
            Err(RefereeError::NoSuchAttempt(2))
        ));
    }
}
