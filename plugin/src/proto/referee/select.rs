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
///
/// Two tiers. The **judges** ([`RefereePool::keys`]) form every session's [`Panel`]: players'
/// session bonds name them and only they sign verdicts. **Attesters**
/// ([`RefereePool::attesters`], optional) are further bonded peers — players of *other*
/// sessions, whose session bonds name the judges — who re-execute checkpoints and sign roots:
/// with attesters, each checkpoint's referee set is drawn from judges and attesters together
/// (never from the roster), so every player's client referees other sessions while verdicts,
/// and so bonds, stay with the judges. A wrong root still needs more than two thirds of one
/// drawn set, and a referee that signs one is caught by the judges' re-execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefereePool {
    keys: Vec<PublicKey>,
    attesters: Vec<PublicKey>,
    per_checkpoint: usize,
}

impl Default for RefereePool {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            attesters: Vec::new(),
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
            attesters: Vec::new(),
            per_checkpoint: REFEREES_PER_CHECKPOINT,
        })
    }

    /// The same pool with `attesters` (sorted and deduplicated here; judges among them are
    /// dropped, they already draw): a consensus parameter every player and referee of a
    /// session must share. `Err` above [`POOL_MAX`] keys in all.
    pub fn with_attesters(mut self, mut attesters: Vec<PublicKey>) -> Result<Self, RefereeError> {
        attesters.sort();
        attesters.dedup();
        attesters.retain(|k| self.keys.binary_search(k).is_err());
        if self.keys.len() + attesters.len() > POOL_MAX {
            return Err(RefereeError::Malformed("referee pool above POOL_MAX"));
        }
        self.attesters = attesters;
        Ok(self)
    }

    /// The attesters, sorted (none unless [`RefereePool::with_attesters`]).
    pub fn attesters(&self) -> &[PublicKey] {
        &self.attesters
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
///
/// With attesters in the pool, the sets are drawn instead from the *drawing list*: the
/// [`PANEL_MAX`] judges and attesters not in the roster ranked first the same way. Verdicts
/// ([`Panel::verdict_quorum`], [`Panel::contains`]) stay with the judges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panel {
    session: SessionId,
    roster: Roster,
    per_checkpoint: usize,
    /// Judges, in rank order.
    keys: Vec<PublicKey>,
    /// Whom checkpoints draw from, in rank order: `keys` when the pool has no attesters.
    drawing: Vec<PublicKey>,
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
        let ranked_of = |keys: &mut dyn Iterator<Item = &PublicKey>| {
            let mut ranked: Vec<([u8; 32], PublicKey)> = keys
                .filter(|k| !roster.contains(k))
                .map(|k| (rank(&seed, k), *k))
                .collect();
            ranked.sort_unstable();
            ranked.truncate(PANEL_MAX);
            ranked.into_iter().map(|(_, k)| k).collect::<Vec<_>>()
        };
        let keys = ranked_of(&mut pool.keys.iter());
        if keys.len() < pool.per_checkpoint {
            return Err(RefereeError::PoolTooSmall(keys.len(), pool.per_checkpoint));
        }
        let drawing = if pool.attesters.is_empty() {
            keys.clone()
        } else {
            ranked_of(&mut pool.keys.iter().chain(&pool.attesters))
        };
        Ok(Self {
            session: *session,
            roster: roster.clone(),
            per_checkpoint: pool.per_checkpoint,
            keys,
            drawing,
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

    /// Whom checkpoints draw their referees from, in rank order: the judges, or judges and
    /// attesters together when the pool has attesters.
    pub fn drawing(&self) -> &[PublicKey] {
        &self.drawing
    }

    /// Attempts the panel can staff: `drawing list size / N` disjoint referee sets.
    pub fn attempts(&self) -> u8 {
        u8::try_from(self.drawing.len() / self.per_checkpoint).expect("≤ PANEL_MAX / N")
    }

    /// Distinct panel signatures a verdict needs: > 2/3 of the whole panel, so that a quorum of
    /// one checkpoint's referee set alone can never forfeit a bond.
    pub fn verdict_quorum(&self) -> usize {
        quorum(self.keys.len())
    }

    /// The referees of checkpoint `seq`, attempt `attempt`: the drawing list ranked by
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
            self.drawing.iter().map(|k| (rank(&seed, k), *k)).collect();
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

    #[test]
    fn attesters_join_the_draw_but_not_the_verdicts() {
        let players = keys(2, 200);
        let roster = Roster::new(
            players
                .iter()
                .map(|k| Member {
                    key: *k,
                    bond: OutputId([1; 32]),
                })
                .collect(),
        )
        .expect("two players");
        let session = SessionId([9; 32]);
        let judges = keys(8, 0);
        let plain = RefereePool::new(judges.clone())
            .expect("pool")
            .with_per_checkpoint(4)
            .expect("4");
        // Attesters: 12 others, plus a judge and a player listed by mistake.
        let mut listed = keys(12, 100);
        listed.push(judges[3]);
        listed.push(players[0]);
        let pool = plain.clone().with_attesters(listed).expect("attesters");
        assert_eq!(
            pool.attesters().len(),
            13,
            "the judge is dropped, the player kept"
        );
        let without = Panel::draw(&plain, &session, &roster).expect("8 ≥ 4");
        let with = Panel::draw(&pool, &session, &roster).expect("8 ≥ 4");
        // Verdicts: the same judges, the same quorum.
        assert_eq!(with.keys(), without.keys());
        assert_eq!(with.verdict_quorum(), without.verdict_quorum());
        assert!(
            !with.contains(&keys(12, 100)[0]),
            "an attester never judges"
        );
        // Draws: judges and attesters, never the roster.
        assert_eq!(
            without.drawing(),
            without.keys(),
            "no attesters: draw the judges"
        );
        assert_eq!(with.drawing().len(), 8 + 12);
        assert!(!with.drawing().contains(&players[0]));
        assert_eq!(with.attempts(), 5);
        let mut seen = Vec::new();
        for attempt in 0..with.attempts() {
            let set = with.selected(11, attempt).expect("attempt");
            assert_eq!(set.len(), 4);
            assert!(set.iter().all(|k| !seen.contains(k)), "disjoint attempts");
            seen.extend(set);
        }
        assert!(
            seen.iter().any(|k| keys(12, 100).contains(k)),
            "attesters are drawn"
        );
        // Without attesters the selection is what it always was.
        assert_eq!(
            without.selected(11, 0).expect("attempt"),
            Panel::draw(&plain, &session, &roster)
                .expect("again")
                .selected(11, 0)
                .expect("attempt")
        );
        // Too many keys in all.
        let many: Vec<PublicKey> = (0..=POOL_MAX as u32)
            .map(|i| {
                let mut b = [0u8; 32];
                b[..4].copy_from_slice(&i.to_le_bytes());
                PublicKey(b)
            })
            .collect();
        assert!(plain.with_attesters(many).is_err());
    }
}
