//! Identity: ed25519 key pairs, `PeerId = sha256(public key)`, the optional S/Kademlia static
//! puzzle, domain-separated signatures and key persistence.
//!
//! # Domain separation
//!
//! Every signature Meshwork makes is over
//! `sha256("meshwork/v1" || 0x00 || domain || 0x00 || message)`, where `domain` is one of the
//! [`Domain`] tags. A signature made for one purpose (say a link handshake) can therefore never be
//! replayed as another (say a payment), and value-carrying messages can be relayed and later used
//! as evidence by anyone holding the author's public key.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The address of a peer: `sha256(ed25519 public key)`, also its Kademlia key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PeerId(pub [u8; 32]);

/// A 256-bit key in the overlay's XOR metric space (a peer id, a block hash, a contract id…).
pub type Key = PeerId;

/// XOR distance between two keys; compares as a big-endian 256-bit integer.
///
/// Held as four big-endian 64-bit words, most significant first, so comparing two distances is
/// at most four integer compares: routing and table upkeep compare distances constantly.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Distance(pub [u64; 4]);

impl PeerId {
    /// The id of the holder of `public`.
    pub fn from_public_key(public: &PublicKey) -> Self {
        Self(Sha256::digest(public.0).into())
    }

    /// The key of arbitrary bytes (`sha256(bytes)`), e.g. to route toward a topic or block.
    pub fn hash_of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// XOR distance to `other`.
    pub fn distance(&self, other: &PeerId) -> Distance {
        let mut d = [0u64; 4];
        for (i, word) in d.iter_mut().enumerate() {
            let mut a = [0u8; 8];
            let mut b = [0u8; 8];
            a.copy_from_slice(&self.0[i * 8..i * 8 + 8]);
            b.copy_from_slice(&other.0[i * 8..i * 8 + 8]);
            *word = u64::from_be_bytes(a) ^ u64::from_be_bytes(b);
        }
        Distance(d)
    }

    /// The k-bucket `other` falls into as seen from `self`: the number of leading bits the two
    /// share (0 = differs in the first bit, the farthest half of the space). `None` when equal.
    pub fn bucket_of(&self, other: &PeerId) -> Option<u8> {
        let zeros = self.distance(other).leading_zeros();
        (zeros < 256).then(|| u8::try_from(zeros).expect("zeros < 256"))
    }

    /// Bit `i` (0 = most significant) of the key.
    pub fn bit(&self, i: u8) -> bool {
        self.0[usize::from(i / 8)] & (0x80 >> (i % 8)) != 0
    }

    /// This key with bit `i` flipped.
    pub fn with_bit_flipped(&self, i: u8) -> PeerId {
        let mut k = *self;
        k.0[usize::from(i / 8)] ^= 0x80 >> (i % 8);
        k
    }

    /// Whether `sha256(self)` has at least `bits` leading zero bits (the S/Kademlia static
    /// puzzle that makes minting many ids costly).
    pub fn meets_difficulty(&self, bits: u8) -> bool {
        let h: [u8; 32] = Sha256::digest(self.0).into();
        leading_zeros(&h) >= u32::from(bits)
    }

    /// Short hex form for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl Distance {
    /// Number of leading zero bits (256 for a zero distance).
    pub fn leading_zeros(&self) -> u32 {
        let mut n = 0;
        for w in self.0 {
            if w != 0 {
                return n + w.leading_zeros();
            }
            n += 64;
        }
        n
    }
}

fn leading_zeros(bytes: &[u8; 32]) -> u32 {
    let mut n = 0;
    for b in bytes {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.short())
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::str::FromStr for PeerId {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|_| IdentityError::BadEncoding)?;
        Ok(Self(
            bytes.try_into().map_err(|_| IdentityError::BadEncoding)?,
        ))
    }
}

/// An ed25519 public key as it travels on the wire (validated when used).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(&self.0[..4]))
    }
}

/// An ed25519 signature as it travels on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..4]))
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(64)?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Signature, A::Error> {
                let mut out = [0u8; 64];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(out))
            }
        }
        d.deserialize_tuple(64, V)
    }
}

/// What a signature is for. The tag is hashed into every signed message (see module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Domain {
    /// Link handshake: binds a transport-level socket id to a `PeerId`.
    LinkAuth,
    /// A request to open a WebRTC link, signalled through the mesh.
    SignalRequest,
    /// A routed overlay message whose origin must be provable.
    Routed,
    /// A pub/sub publication.
    Publish,
    /// A ledger transfer order, signed by the owners of its inputs.
    LedgerOrder,
    /// A validator's vote for an order (certificates and equivocation proofs are made of these).
    LedgerVote,
    /// A referee verdict that forfeits a bond.
    LedgerVerdict,
    /// A committee endorsement of verified WASM work (validator weight).
    LedgerWork,
    /// A committee endorsement of the next epoch's committee.
    LedgerReconfig,
    /// An old-committee member's lock handoff to the next epoch.
    LedgerHandoff,
    /// A probabilistic micropayment (lottery ticket) drawn on an escrow.
    LedgerTicket,
    /// A fetch request (`proto::fetch`).
    FetchRequest,
    /// A bonded fetch response: the evidence a dispute is built from.
    FetchResponse,
    /// A session checkpoint claimed by a player (`proto::referee`).
    SessionCheckpoint,
    /// A referee's attestation of a checkpoint's root.
    RefereeAttestation,
}

impl Domain {
    /// The tag bytes hashed into the signed message.
    pub fn tag(self) -> &'static [u8] {
        match self {
            Domain::LinkAuth => b"link-auth",
            Domain::SignalRequest => b"signal-request",
            Domain::Routed => b"routed",
            Domain::Publish => b"publish",
            Domain::LedgerOrder => b"ledger-order",
            Domain::LedgerVote => b"ledger-vote",
            Domain::LedgerVerdict => b"ledger-verdict",
            Domain::LedgerWork => b"ledger-work",
            Domain::LedgerReconfig => b"ledger-reconfig",
            Domain::LedgerHandoff => b"ledger-handoff",
            Domain::LedgerTicket => b"ledger-ticket",
            Domain::FetchRequest => b"fetch-request",
            Domain::FetchResponse => b"fetch-response",
            Domain::SessionCheckpoint => b"session-checkpoint",
            Domain::RefereeAttestation => b"referee-attestation",
        }
    }
}

/// The 32-byte digest that is actually signed for `domain` and `message`.
pub fn signing_digest(domain: Domain, message: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"meshwork/v1\0");
    h.update(domain.tag());
    h.update([0u8]);
    h.update(message);
    h.finalize().into()
}

/// Errors about keys, ids and signatures.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The bytes are not a valid ed25519 public key.
    #[error("invalid public key")]
    BadPublicKey,
    /// The signature does not verify for this key, domain and message.
    #[error("signature does not verify")]
    BadSignature,
    /// The id does not meet the configured puzzle difficulty.
    #[error("peer id {0:?} does not meet the id difficulty of {1} bits")]
    TooEasy(PeerId, u8),
    /// A stored key or id could not be parsed.
    #[error("malformed key or id encoding")]
    BadEncoding,
    /// Reading or writing the key file failed.
    #[error("key storage: {0}")]
    Storage(String),
}

/// Verify `signature` by `public` over `message` in `domain`.
pub fn verify(
    public: &PublicKey,
    domain: Domain,
    message: &[u8],
    signature: &Signature,
) -> Result<(), IdentityError> {
    let key = verifying_key(public)?;
    let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
    key.verify(&signing_digest(domain, message), &sig)
        .map_err(|_| IdentityError::BadSignature)
}

/// Slots of the per-thread cache of decompressed public keys.
const KEY_CACHE_SLOTS: usize = 64;

/// A slot of that cache: a key's bytes and the key decompressed.
type KeySlot = Option<([u8; 32], VerifyingKey)>;

std::thread_local! {
    /// Decompressed public keys, direct-mapped by the key's first byte. Decompressing a key (a
    /// field square root, ~4–5 µs here) is an eighth of a verification, and the keys a peer
    /// verifies repeat: its links, its requesters and responders, its referees. Only valid keys
    /// are kept, each under its own exact bytes, so a hit gives what decompressing would.
    static KEY_CACHE: std::cell::RefCell<Vec<KeySlot>> =
        std::cell::RefCell::new(vec![None; KEY_CACHE_SLOTS]);
}

/// `public` decompressed, from the cache when it is there.
fn verifying_key(public: &PublicKey) -> Result<VerifyingKey, IdentityError> {
    let slot = usize::from(public.0[0]) % KEY_CACHE_SLOTS;
    let cached = KEY_CACHE.with_borrow(|c| match &c[slot] {
        Some((bytes, key)) if *bytes == public.0 => Some(*key),
        _ => None,
    });
    if let Some(key) = cached {
        return Ok(key);
    }
    let key = VerifyingKey::from_bytes(&public.0).map_err(|_| IdentityError::BadPublicKey)?;
    KEY_CACHE.with_borrow_mut(|c| c[slot] = Some((public.0, key)));
    Ok(key)
}

/// A local identity: the signing key and the id derived from it.
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
    public: PublicKey,
    peer_id: PeerId,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The identity whose secret key is `seed` (deterministic; used by the simulator and tests).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&seed);
        let public = PublicKey(signing.verifying_key().to_bytes());
        Self {
            peer_id: PeerId::from_public_key(&public),
            public,
            signing,
        }
    }

    /// A fresh identity whose id meets `difficulty_bits` (0 = any). Expected work is
    /// `2^difficulty_bits` key generations; keep it small (≤ 20) for interactive use.
    pub fn generate(rng: &mut impl CryptoRngCore, difficulty_bits: u8) -> Self {
        loop {
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            let id = Self::from_seed(seed);
            if id.peer_id.meets_difficulty(difficulty_bits) {
                return id;
            }
        }
    }

    /// The id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The secret seed (for persistence).
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// Sign `message` for `domain`.
    pub fn sign(&self, domain: Domain, message: &[u8]) -> Signature {
        Signature(
            self.signing
                .sign(&signing_digest(domain, message))
                .to_bytes(),
        )
    }

    /// Parse the text form written by [`Identity::to_text`].
    pub fn from_text(text: &str) -> Result<Self, IdentityError> {
        let bytes = hex::decode(text.trim()).map_err(|_| IdentityError::BadEncoding)?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| IdentityError::BadEncoding)?;
        Ok(Self::from_seed(seed))
    }

    /// The text form of the secret key (hex), as stored in a key file or local storage.
    pub fn to_text(&self) -> String {
        hex::encode(self.seed())
    }

    /// Load the identity stored at `path`, or create one (meeting `difficulty_bits`) and store it
    /// there with owner-only permissions. A stored id that misses the difficulty is an error.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_or_create(
        path: &std::path::Path,
        difficulty_bits: u8,
    ) -> Result<Self, IdentityError> {
        let storage =
            |e: std::io::Error| IdentityError::Storage(format!("{}: {e}", path.display()));
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let id = Self::from_text(&text)?;
                if !id.peer_id.meets_difficulty(difficulty_bits) {
                    return Err(IdentityError::TooEasy(id.peer_id, difficulty_bits));
                }
                Ok(id)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Self::generate(&mut rand_core::OsRng, difficulty_bits);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(storage)?;
                }
                write_private(path, &id.to_text()).map_err(storage)?;
                Ok(id)
            }
            Err(e) => Err(storage(e)),
        }
    }

    /// Load the identity kept in the browser's local storage under `key`, or create and keep one.
    #[cfg(target_arch = "wasm32")]
    pub fn load_or_create(key: &str, difficulty_bits: u8) -> Result<Self, IdentityError> {
        let storage = web_sys::window()
            .and_then(|w| w.local_storage().ok().flatten())
            .ok_or_else(|| IdentityError::Storage("local storage unavailable".into()))?;
        if let Ok(Some(text)) = storage.get_item(key) {
            let id = Self::from_text(&text)?;
            if !id.peer_id.meets_difficulty(difficulty_bits) {
                return Err(IdentityError::TooEasy(id.peer_id, difficulty_bits));
            }
            return Ok(id);
        }
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| IdentityError::Storage(e.to_string()))?;
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
        let id = Self::generate(&mut rng, difficulty_bits);
        storage
            .set_item(key, &id.to_text())
            .map_err(|_| IdentityError::Storage("local storage write failed".into()))?;
        Ok(id)
    }
}

#[cfg(target_arch = "wasm32")]
use rand_core::SeedableRng as _;

#[cfg(all(unix, not(target_arch = "wasm32")))]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(all(not(unix), not(target_arch = "wasm32")))]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_is_hash_of_public_key() {
        let id = Identity::from_seed([7; 32]);
        assert_eq!(
            id.peer_id().0,
            <[u8; 32]>::from(Sha256::digest(id.public_key().0))
        );
    }

    #[test]
    fn signatures_are_domain_separated() {
        let id = Identity::from_seed([1; 32]);
        let sig = id.sign(Domain::LinkAuth, b"hello");
        verify(&id.public_key(), Domain::LinkAuth, b"hello", &sig).expect("valid");
        assert!(verify(&id.public_key(), Domain::Routed, b"hello", &sig).is_err());
        assert!(verify(&id.public_key(), Domain::LinkAuth, b"hellO", &sig).is_err());
        let other = Identity::from_seed([2; 32]);
        assert!(verify(&other.public_key(), Domain::LinkAuth, b"hello", &sig).is_err());
    }

    #[test]
    fn difficulty_puzzle_is_met() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([3; 32]);
        use rand_core::SeedableRng as _;
        let id = Identity::generate(&mut rng, 8);
        assert!(id.peer_id().meets_difficulty(8));
        assert_eq!(
            PeerId(Sha256::digest(id.peer_id().0).into()).0[0],
            0,
            "8 leading zero bits means a zero first byte"
        );
    }

    #[test]
    fn buckets_and_bits() {
        let a = PeerId([0; 32]);
        assert_eq!(a.bucket_of(&a), None);
        assert_eq!(a.bucket_of(&a.with_bit_flipped(0)), Some(0));
        assert_eq!(a.bucket_of(&a.with_bit_flipped(255)), Some(255));
        assert!(a.with_bit_flipped(9).bit(9));
        assert!(a.distance(&a.with_bit_flipped(3)) > a.distance(&a.with_bit_flipped(4)));
    }

    #[test]
    fn key_file_round_trip() {
        let dir = std::env::temp_dir().join(format!("meshwork-id-{}", std::process::id()));
        let path = dir.join("key");
        let _ = std::fs::remove_file(&path);
        let a = Identity::load_or_create(&path, 2).expect("create");
        let b = Identity::load_or_create(&path, 2).expect("load");
        assert_eq!(a.peer_id(), b.peer_id());
        std::fs::write(&path, "zz").expect("write");
        assert!(matches!(
            Identity::load_or_create(&path, 0),
            Err(IdentityError::BadEncoding)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
