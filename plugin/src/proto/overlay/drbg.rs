//! The overlay's randomness: sha256 in counter mode over a secret 32-byte seed.
//!
//! Why not `ChaCha8Rng`: it buffers four blocks (256 bytes) per generator, and every peer of a
//! 100,000-peer simulation owns one, while an overlay draws only a few numbers a second (nonces,
//! finger picks, lookup keys). This generator is 48 bytes and, like ChaCha, unpredictable to
//! anyone who does not know the seed, which matters: link-request nonces are capabilities.

use rand_core::{RngCore, impls};
use sha2::{Digest, Sha256};

/// A deterministic random bit generator: block `i` is `sha256(seed ‖ i)`.
#[derive(Clone)]
pub(crate) struct Drbg {
    seed: [u8; 32],
    counter: u64,
    /// The unused tail of the last block, most significant first; `len` bytes are left.
    left: [u8; 8],
    len: u8,
}

impl std::fmt::Debug for Drbg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the seed.
        f.debug_struct("Drbg")
            .field("counter", &self.counter)
            .finish()
    }
}

impl Drbg {
    /// A generator for `seed`.
    pub(crate) fn new(seed: [u8; 32]) -> Self {
        Self {
            seed,
            counter: 0,
            left: [0; 8],
            len: 0,
        }
    }

    fn block(&mut self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(self.counter.to_le_bytes());
        self.counter += 1;
        h.finalize().into()
    }
}

impl RngCore for Drbg {
    fn next_u32(&mut self) -> u32 {
        impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let mut out = dest;
        while !out.is_empty() {
            if self.len == 0 {
                let b = self.block();
                let n = out.len().min(24);
                out[..n].copy_from_slice(&b[..n]);
                out = &mut out[n..];
                // Keep the block's last 8 bytes for small draws that follow.
                self.left.copy_from_slice(&b[24..]);
                self.len = 8;
                continue;
            }
            let start = 8 - usize::from(self.len);
            let n = out.len().min(usize::from(self.len));
            out[..n].copy_from_slice(&self.left[start..start + n]);
            self.len -= u8::try_from(n).expect("n ≤ 8");
            out = &mut out[n..];
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_seed_dependent() {
        let mut a = Drbg::new([1; 32]);
        let mut b = Drbg::new([1; 32]);
        let mut c = Drbg::new([2; 32]);
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..100).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        let distinct: std::collections::BTreeSet<u64> = xs.iter().copied().collect();
        assert_eq!(distinct.len(), 100);
        let mut buf = [0u8; 100];
        a.fill_bytes(&mut buf);
        assert!(buf.iter().filter(|b| **b == 0).count() < 10, "looks random");
    }
}
