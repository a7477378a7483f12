//! Tiny fixed-width little-endian codec for contract inputs, outputs and state. Self-contained
//! (only `core` and `alloc`), like `env.rs`.

use alloc::vec::Vec;

/// Reads fields from the front of a byte slice; every read fails cleanly on short input.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.bytes.len() < n {
            return Err("input too short");
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// A `u8`.
    pub fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, &'static str> {
        let mut b = [0; 2];
        b.copy_from_slice(self.take(2)?);
        Ok(u16::from_le_bytes(b))
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, &'static str> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, &'static str> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    /// A 32-byte id.
    pub fn id(&mut self) -> Result<[u8; 32], &'static str> {
        let mut b = [0; 32];
        b.copy_from_slice(self.take(32)?);
        Ok(b)
    }

    /// Fails unless every byte was read.
    pub fn end(&self) -> Result<(), &'static str> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err("trailing input")
        }
    }
}

/// Appends fields to a byte vector (for outputs and inputs whose size varies; see [`Fixed`] for
/// small records of known size, which need no allocation).
#[derive(Default)]
pub struct Writer {
    /// The bytes so far.
    pub bytes: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `capacity` bytes (one allocation, no regrowth).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(capacity),
        }
    }

    /// Appends a `u8`.
    pub fn u8(mut self, v: u8) -> Self {
        self.bytes.push(v);
        self
    }

    /// Appends a little-endian `u16`.
    pub fn u16(mut self, v: u16) -> Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends a little-endian `u32`.
    pub fn u32(mut self, v: u32) -> Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends a little-endian `u64`.
    pub fn u64(mut self, v: u64) -> Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends raw bytes.
    pub fn raw(mut self, v: &[u8]) -> Self {
        self.bytes.extend_from_slice(v);
        self
    }

    /// The bytes.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Builds a record of at most `N` bytes on the stack: the allocation-free [`Writer`] for keys,
/// state values and events, whose sizes are known when the contract is written. Appending past
/// `N` is a bug in the contract and panics (a trap on wasm, which rolls the call back).
pub struct Fixed<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Fixed<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Fixed<N> {
    /// An empty record.
    pub fn new() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
        }
    }

    /// Appends raw bytes.
    pub fn raw(mut self, v: &[u8]) -> Self {
        let end = self.len + v.len();
        self.bytes[self.len..end].copy_from_slice(v);
        self.len = end;
        self
    }

    /// Appends a `u8`.
    pub fn u8(self, v: u8) -> Self {
        self.raw(&[v])
    }

    /// Appends a little-endian `u16`.
    pub fn u16(self, v: u16) -> Self {
        self.raw(&v.to_le_bytes())
    }

    /// Appends a little-endian `u32`.
    pub fn u32(self, v: u32) -> Self {
        self.raw(&v.to_le_bytes())
    }

    /// Appends a little-endian `u64`.
    pub fn u64(self, v: u64) -> Self {
        self.raw(&v.to_le_bytes())
    }

    /// The bytes written.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}
