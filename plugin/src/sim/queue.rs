//! The simulator's event queue: a timing wheel of one slot per virtual millisecond for the near
//! future, and a binary heap for events further out.
//!
//! Events come out in `(time, insertion order)` order, exactly as from a heap keyed by
//! `(at, seq)`, but pushing and popping a near event is O(1): with 100,000 peers a binary heap of
//! tens of thousands of events spent more time sifting than the peers spent working.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Milliseconds the wheel covers (a power of two). Link latencies, ack delays, re-sends and
/// the 1 s maintenance tick all fall inside it; longer timers wait in the heap.
const WHEEL_MS: u64 = 2048;
const MASK: u64 = WHEEL_MS - 1;

/// A heap entry, ordered by `(at, seq)` only.
#[derive(Debug)]
struct Far<T> {
    at: u64,
    seq: u64,
    ev: T,
}

impl<T> PartialEq for Far<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<T> Eq for Far<T> {}
impl<T> PartialOrd for Far<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Far<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Deterministic event queue; see the module docs.
#[derive(Debug)]
pub(crate) struct EventQueue<T> {
    /// `slots[at & MASK]` holds the events due at `at`, for `base_ms <= at < base_ms + WHEEL_MS`,
    /// in insertion order.
    slots: Vec<VecDeque<T>>,
    /// Events due at or after `base_ms + WHEEL_MS` when pushed.
    far: BinaryHeap<Reverse<Far<T>>>,
    /// The earliest millisecond that may still hold events; never ahead of the caller's clock.
    base_ms: u64,
    /// Whether the far events due at `base_ms` have been moved into its slot.
    base_merged: bool,
    near_len: usize,
    seq: u64,
}

impl<T> EventQueue<T> {
    /// An empty queue starting at time 0.
    pub(crate) fn new() -> Self {
        Self {
            slots: (0..WHEEL_MS).map(|_| VecDeque::new()).collect(),
            far: BinaryHeap::new(),
            base_ms: 0,
            base_merged: false,
            near_len: 0,
            seq: 0,
        }
    }

    /// Schedule `ev` at `at` (an `at` in the past counts as now).
    pub(crate) fn push(&mut self, at: u64, ev: T) {
        self.seq += 1;
        let at = at.max(self.base_ms);
        if at < self.base_ms + WHEEL_MS && (self.base_merged || at != self.base_ms) {
            self.slots[slot(at)].push_back(ev);
            self.near_len += 1;
        } else {
            // Not yet merged into the current slot: keep `(at, seq)` order by going through the
            // heap like the events pushed before it.
            self.far.push(Reverse(Far {
                at,
                seq: self.seq,
                ev,
            }));
        }
    }

    /// The next event due at or before `end_ms`, with its time.
    pub(crate) fn pop_until(&mut self, end_ms: u64) -> Option<(u64, T)> {
        loop {
            if self.base_ms > end_ms {
                return None;
            }
            if !self.base_merged {
                self.merge_far();
            }
            let base = self.base_ms;
            let slot = &mut self.slots[slot(base)];
            if let Some(ev) = slot.pop_front() {
                self.near_len -= 1;
                return Some((base, ev));
            }
            if slot.capacity() > 0 {
                // Drained: free it, or two thousand idle slots would hold room for a burst.
                *slot = VecDeque::new();
            }
            if base >= end_ms {
                return None;
            }
            // Advance: to the next millisecond, or straight to the next far event when the
            // wheel is empty.
            self.base_ms = if self.near_len == 0 {
                self.far
                    .peek()
                    .map_or(end_ms, |Reverse(f)| f.at.min(end_ms))
                    .max(base + 1)
            } else {
                base + 1
            };
            self.base_merged = false;
        }
    }

    /// Move far events now inside the wheel's window to their slots. Those due at `base_ms`
    /// go in front of its slot: they were pushed earlier than anything already there.
    fn merge_far(&mut self) {
        self.base_merged = true;
        let horizon = self.base_ms + WHEEL_MS;
        let mut front = Vec::new();
        while let Some(Reverse(f)) = self.far.peek() {
            if f.at >= horizon {
                break;
            }
            let Some(Reverse(f)) = self.far.pop() else {
                break;
            };
            self.near_len += 1;
            if f.at == self.base_ms {
                front.push(f.ev);
            } else {
                // Only reached when the wheel jumped: those slots are empty, and the heap
                // yields them in `(at, seq)` order.
                self.slots[slot(f.at)].push_back(f.ev);
            }
        }
        let s = &mut self.slots[slot(self.base_ms)];
        for ev in front.into_iter().rev() {
            s.push_front(ev);
        }
    }

    /// Events queued.
    pub(crate) fn len(&self) -> usize {
        self.near_len + self.far.len()
    }

    /// Events the queue has room for without allocating.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.iter().map(VecDeque::capacity).sum::<usize>() + self.far.capacity()
    }

    /// Release spare room after a burst.
    pub(crate) fn shrink(&mut self) {
        if self.far.capacity() > 4 * self.far.len().max(1024) {
            self.far.shrink_to(2 * self.far.len().max(1024));
        }
    }
}

fn slot(at: u64) -> usize {
    usize::try_from(at & MASK).expect("masked to the wheel size")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};

    /// Same order as a plain heap keyed by `(at, seq)`, including pushes made while popping
    /// (at the current time and later) and long jumps through empty time.
    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut q = EventQueue::new();
        let mut reference: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
        let mut seq = 0u64;
        let mut now = 0u64;
        let mut push =
            |q: &mut EventQueue<u64>, r: &mut BinaryHeap<Reverse<(u64, u64)>>, at: u64| {
                seq += 1;
                q.push(at, seq);
                r.push(Reverse((at, seq)));
            };
        for round in 0..2000u64 {
            let end = now + rng.next_u64() % 300;
            for _ in 0..rng.next_u64() % 8 {
                let at = match rng.next_u64() % 4 {
                    0 => now,
                    1 => now + rng.next_u64() % 100,
                    2 => now + rng.next_u64() % 5000,
                    _ => now + 1_000 * (rng.next_u64() % 40),
                };
                push(&mut q, &mut reference, at);
            }
            while let Some((at, ev)) = q.pop_until(end) {
                let Reverse((rat, rseq)) = reference.pop().expect("reference has it too");
                assert_eq!((at, ev), (rat, rseq), "round {round}");
                now = at;
                if rng.next_u64() % 3 == 0 {
                    let at = now + rng.next_u64() % 3;
                    push(&mut q, &mut reference, at);
                }
            }
            assert!(reference.peek().is_none_or(|Reverse((at, _))| *at > end));
            now = end;
            if round % 500 == 0 {
                now += 100_000;
            }
        }
        assert_eq!(q.len(), reference.len());
    }
}
