//! Per-requester rate limiting: a token bucket per key, in a bounded table.
//!
//! A flood from one key drains only that key's bucket, so other requesters keep being served.
//! The table is bounded: when full, the bucket that has been idle longest is dropped (a
//! dropped key starts again with a full burst, which is the same as never having been seen).

use std::collections::BTreeMap;

/// Token buckets keyed by `K`.
#[derive(Clone, Debug)]
pub struct RateLimiter<K: Ord + Clone> {
    buckets: BTreeMap<K, Bucket>,
    per_s: u32,
    burst: u32,
    keys_max: usize,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens × 1000 (milli-tokens), so refills are exact integers.
    milli: u64,
    last_ms: u64,
}

impl<K: Ord + Clone> RateLimiter<K> {
    /// `per_s` requests per second sustained, bursts of `burst`, at most `keys_max` keys tracked.
    pub fn new(per_s: u32, burst: u32, keys_max: usize) -> Self {
        assert!(
            keys_max > 0 && burst > 0,
            "a limiter needs room and a burst"
        );
        Self {
            buckets: BTreeMap::new(),
            per_s,
            burst,
            keys_max,
        }
    }

    /// Take one token for `key` at `now_ms`; `false` if its bucket is empty.
    pub fn allow(&mut self, key: &K, now_ms: u64) -> bool {
        let cap = u64::from(self.burst) * 1000;
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.keys_max {
            // Evict the longest-idle bucket: O(n) but only when a new key arrives at a full table.
            if let Some(oldest) = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last_ms)
                .map(|(k, _)| k.clone())
            {
                self.buckets.remove(&oldest);
            }
        }
        let b = self.buckets.entry(key.clone()).or_insert(Bucket {
            milli: cap,
            last_ms: now_ms,
        });
        let elapsed = now_ms.saturating_sub(b.last_ms);
        b.milli = cap.min(b.milli + elapsed.saturating_mul(u64::from(self.per_s)));
        b.last_ms = now_ms;
        if b.milli >= 1000 {
            b.milli -= 1000;
            true
        } else {
            false
        }
    }

    /// Keys tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooder_is_limited_and_others_are_not() {
        let mut l = RateLimiter::new(10, 20, 4);
        let allowed = (0..1000).filter(|_| l.allow(&1u8, 0)).count();
        assert_eq!(allowed, 20, "burst only");
        assert!(l.allow(&2u8, 0), "another key is unaffected");
        // One second refills 10.
        let later = (0..1000).filter(|_| l.allow(&1u8, 1000)).count();
        assert_eq!(later, 10);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut l = RateLimiter::new(1, 1, 8);
        for k in 0..1000u32 {
            l.allow(&k, u64::from(k));
        }
        assert_eq!(l.len(), 8);
    }
}
