//! The Kademlia routing table: what a peer *knows*, as opposed to whom it is linked to.

use crate::proto::identity::PeerId;

/// One known peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contact {
    /// The peer.
    pub id: PeerId,
    /// Failed dials since it was last seen alive; a contact with too many is forgotten.
    pub fails: u8,
    /// The first four bytes of the id of the peer that told us of this one (zero if none):
    /// a waypoint for reaching it before greedy routing can.
    pub via: [u8; 4],
}

/// k-buckets over XOR distance. Bucket `i` holds peers sharing exactly `i` leading bits with us;
/// only buckets up to the deepest occupied one are allocated (a few dozen at most in practice).
#[derive(Debug)]
pub struct Table {
    me: PeerId,
    k: usize,
    buckets: Vec<Vec<Contact>>,
}

impl Table {
    /// An empty table for `me` with buckets of `k` contacts.
    pub fn new(me: PeerId, k: usize) -> Self {
        assert!(k > 0, "bucket size must be positive");
        Self {
            me,
            k,
            buckets: Vec::new(),
        }
    }

    /// Learn of `id`. Returns true if it was added (not merely refreshed). A full
    /// bucket keeps its existing contacts (older contacts are likelier to stay, Kademlia §2.2),
    /// except that a contact that failed to answer is replaced.
    pub fn insert(&mut self, id: PeerId) -> bool {
        self.insert_via(id, None)
    }

    /// As [`Table::insert`], remembering who told us of `id`.
    pub fn insert_via(&mut self, id: PeerId, via: Option<&PeerId>) -> bool {
        let via = via.map_or([0; 4], |v| [v.0[0], v.0[1], v.0[2], v.0[3]]);
        let Some(b) = self.me.bucket_of(&id) else {
            return false;
        };
        let b = usize::from(b);
        if self.buckets.len() <= b {
            self.buckets.resize_with(b + 1, Vec::new);
        }
        let k = self.k;
        let bucket = &mut self.buckets[b];
        if let Some(c) = bucket.iter_mut().find(|c| c.id == id) {
            c.fails = 0;
            return false;
        }
        let fresh = Contact { id, fails: 0, via };
        if bucket.len() < k {
            if bucket.capacity() == 0 {
                bucket.reserve_exact(k.min(4));
            }
            bucket.push(fresh);
            return true;
        }
        if let Some(worst) = bucket
            .iter_mut()
            .filter(|c| c.fails > 0)
            .max_by_key(|c| c.fails)
        {
            *worst = fresh;
            return true;
        }
        false
    }

    /// Forget `id`.
    pub fn remove(&mut self, id: &PeerId) {
        if let Some(b) = self.me.bucket_of(id)
            && let Some(bucket) = self.buckets.get_mut(usize::from(b))
        {
            bucket.retain(|c| c.id != *id);
        }
        while self.buckets.last().is_some_and(Vec::is_empty) {
            self.buckets.pop();
        }
    }

    /// Note a failed dial; forget the contact after `fails_max` failures in a row.
    pub fn note_failure(&mut self, id: &PeerId, fails_max: u8) {
        let Some(b) = self.me.bucket_of(id) else {
            return;
        };
        let Some(bucket) = self.buckets.get_mut(usize::from(b)) else {
            return;
        };
        if let Some(c) = bucket.iter_mut().find(|c| c.id == *id) {
            c.fails = c.fails.saturating_add(1);
            if c.fails >= fails_max {
                self.remove(id);
            }
        }
    }

    /// The contact for `id`, if known.
    pub fn get(&self, id: &PeerId) -> Option<&Contact> {
        self.me
            .bucket_of(id)
            .and_then(|b| self.buckets.get(usize::from(b)))?
            .iter()
            .find(|c| c.id == *id)
    }

    /// A contact whose id starts with `prefix`.
    pub fn by_prefix(&self, prefix: &[u8; 4]) -> Option<&Contact> {
        self.buckets
            .iter()
            .flatten()
            .find(|c| c.id.0[..4] == *prefix)
    }

    /// Whether `id` is known.
    pub fn contains(&self, id: &PeerId) -> bool {
        self.me
            .bucket_of(id)
            .and_then(|b| self.buckets.get(usize::from(b)))
            .is_some_and(|bucket| bucket.iter().any(|c| c.id == *id))
    }

    /// The contacts of bucket `b`.
    pub fn bucket(&self, b: usize) -> &[Contact] {
        self.buckets.get(b).map_or(&[], Vec::as_slice)
    }

    /// Number of allocated buckets (one past the deepest occupied).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Total contacts.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }

    /// Whether no contacts are known.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Up to `n` known peers closest to `key`, closest first.
    ///
    /// Walks buckets in order of distance from `key` instead of sorting the whole table: with
    /// `kb` the bucket `key` falls into, every contact in bucket `kb` is closer to `key` than
    /// any contact in a deeper bucket (they share bit `kb` with `key`, the deeper ones do not),
    /// and those are closer than any in bucket `b < kb`, which in turn are ordered by `b`
    /// descending. Only the groups needed to reach `n` are sorted. For `key == me` this is the
    /// deepest buckets first, which makes the neighbourhood test cheap.
    pub fn closest(&self, key: &PeerId, n: usize) -> Vec<PeerId> {
        let mut out: Vec<PeerId> = Vec::with_capacity(n + self.k);
        if n == 0 {
            return out;
        }
        let len = self.buckets.len();
        let kb = self.me.bucket_of(key).map_or(len, usize::from).min(len);
        let by_distance = |ids: &mut [PeerId]| ids.sort_unstable_by_key(|id| id.distance(key));
        if let Some(bucket) = self.buckets.get(kb) {
            out.extend(bucket.iter().map(|c| c.id));
            by_distance(&mut out);
        }
        if out.len() < n && kb + 1 < len {
            let start = out.len();
            out.extend(self.buckets[kb + 1..].iter().flatten().map(|c| c.id));
            by_distance(&mut out[start..]);
        }
        for b in (0..kb).rev() {
            if out.len() >= n {
                break;
            }
            let start = out.len();
            out.extend(self.buckets[b].iter().map(|c| c.id));
            by_distance(&mut out[start..]);
        }
        out.truncate(n);
        out
    }

    /// Heap bytes held (for the simulator's memory figures).
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * size_of::<Vec<Contact>>()
            + self
                .buckets
                .iter()
                .map(|b| b.capacity() * size_of::<Contact>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(first: u8, last: u8) -> PeerId {
        let mut b = [0u8; 32];
        b[0] = first;
        b[31] = last;
        PeerId(b)
    }

    #[test]
    fn buckets_fill_and_keep_old_contacts() {
        let mut t = Table::new(id(0, 0), 2);
        assert!(t.insert(id(0x80, 1)));
        assert!(t.insert(id(0x80, 2)));
        assert!(!t.insert(id(0x80, 3)), "full bucket keeps its contacts");
        assert!(!t.insert(id(0x80, 1)), "refresh is not an add");
        t.note_failure(&id(0x80, 2), 3);
        assert!(t.insert(id(0x80, 3)), "a failing contact is replaced");
        assert!(!t.contains(&id(0x80, 2)));
        assert_eq!(t.bucket(0).len(), 2);
        assert!(!t.insert(id(0, 0)), "never insert ourselves");
    }

    #[test]
    fn closest_orders_by_xor() {
        let mut t = Table::new(id(0, 0), 8);
        for i in 1..=20u8 {
            t.insert(id(i, i));
        }
        let c = t.closest(&id(3, 0), 3);
        assert_eq!(c[0], id(3, 3));
        assert_eq!(c.len(), 3);
        t.remove(&id(3, 3));
        assert!(!t.contains(&id(3, 3)));
    }

    /// The bucket walk gives exactly what sorting every contact would, for any key and `n`.
    #[test]
    fn closest_matches_a_full_sort() {
        use rand_chacha::ChaCha8Rng;
        use rand_core::{RngCore, SeedableRng};
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let random_id = |rng: &mut ChaCha8Rng| {
            let mut b = [0u8; 32];
            rng.fill_bytes(&mut b);
            PeerId(b)
        };
        for _ in 0..50 {
            let me = random_id(&mut rng);
            let mut t = Table::new(me, 8);
            for _ in 0..400 {
                // Mix random ids with ids near `me`, so deep buckets are occupied too.
                let mut p = random_id(&mut rng);
                let keep = usize::try_from(rng.next_u32() % 24).unwrap_or(0);
                p.0[..keep].copy_from_slice(&me.0[..keep]);
                t.insert(p);
            }
            let all: Vec<PeerId> = t.buckets.iter().flatten().map(|c| c.id).collect();
            let mut keys = vec![me];
            for _ in 0..20 {
                let mut k = random_id(&mut rng);
                let keep = usize::try_from(rng.next_u32() % 4).unwrap_or(0);
                k.0[..keep].copy_from_slice(&me.0[..keep]);
                keys.push(k);
            }
            keys.extend(all.iter().take(5).copied());
            for key in keys {
                let mut expect = all.clone();
                expect.sort_by_key(|id| id.distance(&key));
                for n in [1, 6, 8, 20, 1000] {
                    let want: Vec<PeerId> = expect.iter().take(n).copied().collect();
                    assert_eq!(t.closest(&key, n), want, "key {key:?} n {n}");
                }
            }
        }
    }
}
