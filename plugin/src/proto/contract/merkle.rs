//! [`MerkleMap`]: a key-value map that commits to a sha256 root and proves membership and
//! absence of keys.
//!
//! # Why our own tree
//!
//! `jmt` would do, but it brings its own storage traits, `anyhow`, `borsh` and a versioned
//! node store we do not need; a contract's state is small and lives in memory. This is the same
//! tree shape (a sparse Merkle tree over `sha256(key)` with single-leaf subtrees collapsed, as
//! in Diem's JMT without the 16-ary nodes) in ~400 lines, with structural sharing so that forking
//! a state for re-execution is O(1).
//!
//! # Definition (this *is* the commitment; changing it changes every root)
//!
//! ```text
//! key_hash   = sha256(key)                         bit i = bit (7 - i % 8) of byte i / 8
//! leaf       = sha256(0x00 ‖ key_hash ‖ sha256(value))
//! branch     = sha256(0x01 ‖ left ‖ right)
//! empty      = 32 zero bytes
//! root(S, d) = empty                               if S is empty
//!            = leaf(s)                             if S = {s}
//!            = branch(root(S0, d+1), root(S1, d+1)) otherwise, Sb = {s in S : bit d of s = b}
//! root       = root(all entries, 0)
//! ```
//!
//! The root depends only on the set of entries, never on insertion order. Key hashes are
//! sha256, so an attacker needs ~2^k work to make two keys share a k-bit prefix: paths stay
//! about log2(n) deep.
//!
//! A [`MerkleProof`] lists the sibling hashes from the root down to where the key's path ends:
//! at the key's own leaf (inclusion), at an empty subtree, or at another key's leaf (exclusion).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::types::Digest;

/// Hash of an empty subtree.
pub const EMPTY_ROOT: Digest = [0; 32];

const LEAF_TAG: u8 = 0x00;
const BRANCH_TAG: u8 = 0x01;

fn sha256(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

fn leaf_hash(key_hash: &Digest, value_hash: &Digest) -> Digest {
    let mut h = Sha256::new();
    h.update([LEAF_TAG]);
    h.update(key_hash);
    h.update(value_hash);
    h.finalize().into()
}

fn branch_hash(left: &Digest, right: &Digest) -> Digest {
    let mut h = Sha256::new();
    h.update([BRANCH_TAG]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Bit `depth` of `hash`, most significant bit of byte 0 first.
fn bit(hash: &Digest, depth: usize) -> usize {
    usize::from((hash[depth / 8] >> (7 - depth % 8)) & 1)
}

#[derive(Debug)]
struct Leaf {
    key_hash: Digest,
    key: Box<[u8]>,
    value: Box<[u8]>,
    hash: Digest,
}

impl Leaf {
    fn new(key_hash: Digest, key: Box<[u8]>, value: Box<[u8]>) -> Self {
        let hash = leaf_hash(&key_hash, &sha256(&value));
        Self {
            key_hash,
            key,
            value,
            hash,
        }
    }
}

#[derive(Clone, Debug)]
struct Branch {
    children: [Option<Node>; 2],
    /// `None` while a write below has not been hashed yet.
    hash: Option<Digest>,
}

#[derive(Clone, Debug)]
enum Node {
    Leaf(Arc<Leaf>),
    Branch(Arc<Branch>),
}

impl Node {
    /// The node's hash, computing (without caching) any dirty branch below.
    fn hash(&self) -> Digest {
        match self {
            Node::Leaf(leaf) => leaf.hash,
            Node::Branch(branch) => branch.hash.unwrap_or_else(|| {
                branch_hash(
                    &child_hash(&branch.children[0]),
                    &child_hash(&branch.children[1]),
                )
            }),
        }
    }
}

fn child_hash(child: &Option<Node>) -> Digest {
    child.as_ref().map_or(EMPTY_ROOT, Node::hash)
}

/// Hashes every dirty branch below `node` and caches the results.
fn commit_node(node: &mut Node) -> Digest {
    match node {
        Node::Leaf(leaf) => leaf.hash,
        Node::Branch(branch) => {
            if let Some(hash) = branch.hash {
                return hash;
            }
            // A dirty branch is never shared: the write that dirtied it went through
            // `Arc::make_mut`, so this does not copy.
            let branch = Arc::make_mut(branch);
            let left = branch.children[0].as_mut().map_or(EMPTY_ROOT, commit_node);
            let right = branch.children[1].as_mut().map_or(EMPTY_ROOT, commit_node);
            let hash = branch_hash(&left, &right);
            branch.hash = Some(hash);
            hash
        }
    }
}

/// A branch at `depth` whose subtree holds exactly the two different leaves `a` and `b`.
fn split(depth: usize, a: Arc<Leaf>, b: Arc<Leaf>) -> Node {
    // The first bit where the two key hashes differ; they agree on every bit above `depth`.
    let mut diff = depth;
    while bit(&a.key_hash, diff) == bit(&b.key_hash, diff) {
        diff += 1;
        // Two different sha256 outputs differ somewhere below bit 256.
        assert!(diff < 256, "split called with equal key hashes");
    }
    let key_hash = a.key_hash;
    let a_side = bit(&key_hash, diff);
    let mut children = [None, None];
    children[a_side] = Some(Node::Leaf(a));
    children[1 - a_side] = Some(Node::Leaf(b));
    let mut node = Node::Branch(Arc::new(Branch {
        children,
        hash: None,
    }));
    // Single-child branches for the shared prefix between `depth` and `diff`.
    for d in (depth..diff).rev() {
        let mut children = [None, None];
        children[bit(&key_hash, d)] = Some(node);
        node = Node::Branch(Arc::new(Branch {
            children,
            hash: None,
        }));
    }
    node
}

/// Inserts or replaces `leaf` below `slot` (at `depth`). Returns the replaced leaf.
fn insert(slot: &mut Option<Node>, depth: usize, leaf: Arc<Leaf>) -> Option<Arc<Leaf>> {
    match slot.take() {
        None => {
            *slot = Some(Node::Leaf(leaf));
            None
        }
        Some(Node::Leaf(existing)) => {
            if existing.key_hash == leaf.key_hash {
                *slot = Some(Node::Leaf(leaf));
                Some(existing)
            } else {
                *slot = Some(split(depth, existing, leaf));
                None
            }
        }
        Some(Node::Branch(mut branch)) => {
            let b = Arc::make_mut(&mut branch);
            b.hash = None;
            let side = bit(&leaf.key_hash, depth);
            let replaced = insert(&mut b.children[side], depth + 1, leaf);
            *slot = Some(Node::Branch(branch));
            replaced
        }
    }
}

/// Removes the leaf with `key_hash` below `slot`, which the caller knows is present, collapsing
/// branches left with a single leaf. Returns the removed leaf.
fn remove(slot: &mut Option<Node>, depth: usize, key_hash: &Digest) -> Option<Arc<Leaf>> {
    match slot.take() {
        None => None,
        Some(Node::Leaf(leaf)) => {
            if leaf.key_hash == *key_hash {
                Some(leaf)
            } else {
                *slot = Some(Node::Leaf(leaf));
                None
            }
        }
        Some(Node::Branch(mut branch)) => {
            let b = Arc::make_mut(&mut branch);
            b.hash = None;
            let removed = remove(&mut b.children[bit(key_hash, depth)], depth + 1, key_hash);
            // Canonical form: a subtree with one leaf is that leaf.
            let collapse = match (&b.children[0], &b.children[1]) {
                (None, Some(Node::Leaf(_))) => b.children[1].take(),
                (Some(Node::Leaf(_)), None) => b.children[0].take(),
                _ => None,
            };
            *slot = Some(collapse.unwrap_or(Node::Branch(branch)));
            removed
        }
    }
}

/// Where a [`MerkleProof`]'s path ends.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ProofTerminal {
    /// An empty subtree: the key is absent.
    Empty,
    /// A leaf: the key's own (inclusion) or another key's whose path shares the prefix
    /// (exclusion).
    Leaf {
        /// sha256 of the leaf's key.
        key_hash: Digest,
        /// sha256 of the leaf's value.
        value_hash: Digest,
    },
}

/// Proof that a key has a given value, or is absent, under a root.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MerkleProof {
    /// Sibling hashes from the root (index 0) down to the terminal; at most 256.
    pub siblings: Vec<Digest>,
    /// Where the path ends.
    pub terminal: ProofTerminal,
}

impl MerkleProof {
    /// Checks the proof against `root`: `Some(value)` claims `key = value`, `None` claims the key
    /// is absent. Never panics on hostile proofs.
    pub fn verify(&self, root: &Digest, key: &[u8], value: Option<&[u8]>) -> bool {
        if self.siblings.len() > 256 {
            return false;
        }
        let key_hash = sha256(key);
        let terminal = match (&self.terminal, value) {
            (ProofTerminal::Empty, None) => EMPTY_ROOT,
            (ProofTerminal::Empty, Some(_)) => return false,
            (
                ProofTerminal::Leaf {
                    key_hash: leaf_key,
                    value_hash,
                },
                value,
            ) => {
                // The leaf must sit on the key's path.
                let depth = self.siblings.len();
                if (0..depth).any(|d| bit(leaf_key, d) != bit(&key_hash, d)) {
                    return false;
                }
                match value {
                    Some(v) if *leaf_key != key_hash || *value_hash != sha256(v) => return false,
                    None if *leaf_key == key_hash => return false,
                    _ => {}
                }
                // Canonical trees collapse single-leaf subtrees, so a leaf's sibling is never
                // empty; rejecting that keeps one valid proof per (root, key).
                if self.siblings.last() == Some(&EMPTY_ROOT) {
                    return false;
                }
                leaf_hash(leaf_key, value_hash)
            }
        };
        let mut hash = terminal;
        for (depth, sibling) in self.siblings.iter().enumerate().rev() {
            hash = if bit(&key_hash, depth) == 0 {
                branch_hash(&hash, sibling)
            } else {
                branch_hash(sibling, &hash)
            };
        }
        hash == *root
    }
}

/// A key-value map with a sha256 Merkle root. Cloning is O(1) (nodes are shared and copied on
/// write), which is how a referee forks a state to re-execute a transition.
#[derive(Clone, Debug, Default)]
pub struct MerkleMap {
    root: Option<Node>,
    len: u64,
}

impl MerkleMap {
    /// An empty map (root [`EMPTY_ROOT`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn find(&self, key: &[u8]) -> Option<&Arc<Leaf>> {
        self.find_hashed(key, &sha256(key))
    }

    /// [`MerkleMap::find`] with the key's hash already computed.
    fn find_hashed(&self, key: &[u8], key_hash: &Digest) -> Option<&Arc<Leaf>> {
        let mut node = self.root.as_ref()?;
        let mut depth = 0;
        loop {
            match node {
                Node::Leaf(leaf) => {
                    return (leaf.key_hash == *key_hash && *leaf.key == *key).then_some(leaf);
                }
                Node::Branch(branch) => {
                    node = branch.children[bit(key_hash, depth)].as_ref()?;
                    depth += 1;
                }
            }
        }
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.find(key).map(|leaf| &*leaf.value)
    }

    /// Stores `value` under `key`, returning whether the key existed. Hashing of the path is
    /// deferred to [`MerkleMap::root`] / [`MerkleMap::commit`].
    pub fn insert(&mut self, key: &[u8], value: &[u8]) -> bool {
        self.insert_owned(key.into(), value.into())
    }

    /// [`MerkleMap::insert`] taking the bytes by value (no copy when the caller owns them).
    pub fn insert_owned(&mut self, key: Box<[u8]>, value: Box<[u8]>) -> bool {
        let key_hash = sha256(&key);
        if self.find_hashed(&key, &key_hash).map(|leaf| &*leaf.value) == Some(&*value) {
            return true;
        }
        let leaf = Arc::new(Leaf::new(key_hash, key, value));
        let replaced = insert(&mut self.root, 0, leaf);
        if replaced.is_none() {
            self.len += 1;
        }
        replaced.is_some()
    }

    /// Removes `key`, returning whether it existed.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let key_hash = sha256(key);
        if self.find_hashed(key, &key_hash).is_none() {
            return false;
        }
        let removed = remove(&mut self.root, 0, &key_hash);
        debug_assert!(removed.is_some());
        self.len -= 1;
        true
    }

    /// Hashes what changed since the last commit, caches it, and returns the root.
    pub fn commit(&mut self) -> Digest {
        self.root.as_mut().map_or(EMPTY_ROOT, commit_node)
    }

    /// The root; cheap after [`MerkleMap::commit`], otherwise rehashes dirty paths each time.
    pub fn root(&self) -> Digest {
        child_hash(&self.root)
    }

    /// A proof for `key` (present or absent) under [`MerkleMap::root`].
    pub fn prove(&self, key: &[u8]) -> MerkleProof {
        let key_hash = sha256(key);
        let mut siblings = Vec::new();
        let mut node = self.root.as_ref();
        let mut depth = 0;
        loop {
            match node {
                None => {
                    return MerkleProof {
                        siblings,
                        terminal: ProofTerminal::Empty,
                    };
                }
                Some(Node::Leaf(leaf)) => {
                    return MerkleProof {
                        siblings,
                        terminal: ProofTerminal::Leaf {
                            key_hash: leaf.key_hash,
                            value_hash: sha256(&leaf.value),
                        },
                    };
                }
                Some(Node::Branch(branch)) => {
                    let side = bit(&key_hash, depth);
                    siblings.push(child_hash(&branch.children[1 - side]));
                    node = branch.children[side].as_ref();
                    depth += 1;
                }
            }
        }
    }

    /// Every entry, ordered by `sha256(key)` (the tree's order; deterministic).
    pub fn entries(&self) -> Vec<(&[u8], &[u8])> {
        let mut out = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        let mut stack: Vec<&Node> = self.root.iter().collect();
        while let Some(node) = stack.pop() {
            match node {
                Node::Leaf(leaf) => out.push((&*leaf.key, &*leaf.value)),
                Node::Branch(branch) => {
                    // Right first so the left subtree pops first.
                    stack.extend(branch.children[1].as_ref());
                    stack.extend(branch.children[0].as_ref());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The definition in the module docs, computed from scratch.
    fn reference_root(entries: &BTreeMap<Vec<u8>, Vec<u8>>) -> Digest {
        fn go(set: &[(Digest, Digest)], depth: usize) -> Digest {
            match set {
                [] => EMPTY_ROOT,
                [(k, v)] => leaf_hash(k, v),
                _ => {
                    let (l, r): (Vec<_>, Vec<_>) =
                        set.iter().partition(|(k, _)| bit(k, depth) == 0);
                    branch_hash(&go(&l, depth + 1), &go(&r, depth + 1))
                }
            }
        }
        let set: Vec<_> = entries
            .iter()
            .map(|(k, v)| (sha256(k), sha256(v)))
            .collect();
        go(&set, 0)
    }

    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn matches_reference_definition_under_random_writes() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        let mut map = MerkleMap::new();
        let mut model = BTreeMap::new();
        for step in 0..3000 {
            let key = (rng(&mut seed) % 300).to_le_bytes().to_vec();
            if rng(&mut seed).is_multiple_of(3) {
                assert_eq!(map.remove(&key), model.remove(&key).is_some());
            } else {
                // Few distinct values, so that many writes store the value already there.
                let value = (rng(&mut seed) % 5).to_le_bytes().to_vec();
                assert_eq!(map.insert(&key, &value), model.insert(key, value).is_some());
            }
            assert_eq!(map.len(), model.len() as u64);
            if step % 7 == 0 {
                map.commit();
            }
            if step % 97 == 0 {
                assert_eq!(map.root(), reference_root(&model), "step {step}");
                assert_eq!(map.commit(), reference_root(&model));
            }
        }
        assert_eq!(map.commit(), reference_root(&model));
        let mut entries: Vec<_> = map
            .entries()
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        entries.sort();
        assert_eq!(entries, model.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn root_is_independent_of_order_and_empty_after_removing_all() {
        let mut a = MerkleMap::new();
        let mut b = MerkleMap::new();
        for i in 0..100u32 {
            a.insert(&i.to_be_bytes(), b"v");
            b.insert(&(99 - i).to_be_bytes(), b"v");
        }
        assert_eq!(a.commit(), b.commit());
        for i in 0..100u32 {
            assert!(a.remove(&i.to_be_bytes()));
        }
        assert_eq!(a.commit(), EMPTY_ROOT);
        assert!(a.is_empty());
    }

    #[test]
    fn proofs_of_presence_and_absence_verify_and_reject_lies() {
        let mut map = MerkleMap::new();
        for i in 0..50u32 {
            map.insert(&i.to_be_bytes(), &i.to_le_bytes());
        }
        let root = map.commit();
        for i in 0..50u32 {
            let proof = map.prove(&i.to_be_bytes());
            assert!(proof.verify(&root, &i.to_be_bytes(), Some(&i.to_le_bytes())));
            assert!(!proof.verify(&root, &i.to_be_bytes(), Some(b"other")));
            assert!(!proof.verify(&root, &i.to_be_bytes(), None));
        }
        for i in 50..150u32 {
            let proof = map.prove(&i.to_be_bytes());
            assert!(proof.verify(&root, &i.to_be_bytes(), None), "absent {i}");
            assert!(!proof.verify(&root, &i.to_be_bytes(), Some(b"x")));
        }
        let mut forged = map.prove(&7u32.to_be_bytes());
        forged.siblings[0][0] ^= 1;
        assert!(!forged.verify(&root, &7u32.to_be_bytes(), Some(&7u32.to_le_bytes())));
        let empty = MerkleMap::new();
        assert!(empty.prove(b"k").verify(&EMPTY_ROOT, b"k", None));
    }

    #[test]
    fn clones_are_independent() {
        let mut a = MerkleMap::new();
        for i in 0..20u8 {
            a.insert(&[i], &[i]);
        }
        let root_a = a.commit();
        let mut b = a.clone();
        b.insert(&[1], b"changed");
        b.remove(&[2]);
        assert_ne!(b.commit(), root_a);
        assert_eq!(a.root(), root_a);
        assert_eq!(a.get(&[1]), Some(&[1u8][..]));
        assert_eq!(a.get(&[2]), Some(&[2u8][..]));
    }
}
