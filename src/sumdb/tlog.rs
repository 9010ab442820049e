//! Tiled transparency logs (`golang.org/x/mod/sumdb/tlog`).
//!
//! The checksum database is an RFC 6962 Merkle tree whose hashes are published
//! as fixed-height *tiles*. This module has the hashing and the numbering of
//! stored hashes (what a server writes), the tile coordinates and paths, and the
//! client-side checks the go command makes: a record is proved by reading its
//! leaf hash out of tiles authenticated against a signed tree head, and an older
//! tree head is proved consistent with a newer one by recomputing the older root
//! from tiles authenticated against the newer head. The server never sends
//! audit or consistency proofs; the tiles are the proofs.
//!
//! Verification is split in two phases so that async callers can do the I/O:
//! [`RecordCheck::new`] or [`ConsistencyCheck::new`] (or, for arbitrary stored
//! hashes, [`TileHashPlan::new`]) lists the tiles to fetch, by [`Tile::path`];
//! `verify` then takes the fetched bytes in the same order. A tile's bytes
//! must be exactly W×32 long (a client that falls back from a partial tile to
//! the full one cuts it to W×32 first). Tiles may be cached only after
//! `verify` succeeds. The synchronous [`prove_record`] and
//! [`check_tree_consistency`] run both phases against a [`TileSource`].

mod tile;
mod verify;

pub use tile::{
    MAX_TILE_HEIGHT, Tile, TileLevel, hash_from_tile, new_tiles, read_tile_data, tile_for_index,
};
pub use verify::{
    ConsistencyCheck, RecordCheck, TileHashPlan, TileHashReader, TileSource,
    check_tree_consistency, prove_record,
};

use sha2::{Digest, Sha256};

/// Size in bytes of a [`Hash`].
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash of a record or of a tree node.
pub type Hash = [u8; HASH_SIZE];

/// The root hash of the tree with no records: SHA-256 of the empty string
/// (RFC 6962 §2.1).
pub const EMPTY_TREE_HASH: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The largest tree size accepted by the verifying functions. Beyond it the
/// stored-hash numbering no longer fits in a `u64` (Go uses `int64` sizes).
pub const MAX_TREE_SIZE: u64 = (1 << 63) - 1;

/// A result carrying a [`TlogError`].
pub type Result<T, E = TlogError> = std::result::Result<T, E>;

/// Everything that can go wrong while hashing, addressing or verifying a log.
#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    /// A tile path is not the canonical path of any tile.
    #[error("malformed tile path {0:?}")]
    MalformedTilePath(String),
    /// A tile height outside 1..=30.
    #[error("invalid tile height {0} (want 1 to 30)")]
    InvalidHeight(u8),
    /// A tile whose coordinates cannot describe hashes (a data tile, a level
    /// above 63, or a width of zero or above 2^height).
    #[error("invalid hash tile {0}")]
    InvalidTile(String),
    /// A hash was looked up in a tile that does not hold it.
    #[error("hash index {index} is not in tile {tile}")]
    IndexNotInTile { index: u64, tile: String },
    /// A stored hash that the tree does not have yet.
    #[error("hash index {index} is not in the tree of size {size}")]
    IndexNotInTree { index: u64, size: u64 },
    /// A record id at or beyond the tree size.
    #[error("record {id} is not in the tree of size {size}")]
    RecordNotInTree { id: u64, size: u64 },
    /// A tree size above [`MAX_TREE_SIZE`].
    #[error("tree size {0} is too large")]
    TreeTooLarge(u64),
    /// Tile bytes whose length is not the tile's width times 32.
    #[error("tile {tile} has {len} bytes, want {want}")]
    TileLength {
        tile: String,
        len: usize,
        want: usize,
    },
    /// A tile source answered with the wrong number of tiles.
    #[error("got {got} tiles, want {want}")]
    TileCount { got: usize, want: usize },
    /// A hash reader answered with the wrong number of hashes.
    #[error("got {got} hashes, want {want}")]
    HashCount { got: usize, want: usize },
    /// A hash reader does not have a stored hash.
    #[error("stored hash {0} is not available")]
    HashNotStored(u64),
    /// The tiles that make up the root do not hash to the signed root.
    #[error("downloaded tiles do not hash to the root of the tree of size {size}")]
    RootMismatch { size: u64 },
    /// A tile does not hash to the entry its authenticated parent has for it.
    #[error("downloaded tile {tile} does not match its authenticated parent")]
    TileMismatch { tile: String },
    /// The record data is not the record the tree holds at that id.
    #[error("record {id} does not match the tree of size {size}")]
    RecordMismatch { id: u64, size: u64 },
    /// The older tree is not a prefix of the newer one: the log has forked or
    /// one of the tree heads is false.
    #[error(
        "consistency check failed: tree of size {older} is not a prefix of tree of size {newer}"
    )]
    Inconsistent { older: u64, newer: u64 },
    /// A consistency check was asked with the trees in the wrong order.
    #[error("consistency check needs the smaller tree first, got sizes {older} and {newer}")]
    NotOlder { older: u64, newer: u64 },
    /// A caller-supplied tile source or hash reader failed.
    #[error("reading tiles or hashes: {0}")]
    Read(Box<dyn std::error::Error + Send + Sync>),
}

/// A tree head: the number of records and the root hash a signed note vouches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tree {
    /// Number of records.
    pub n: u64,
    /// RFC 6962 root hash of those records.
    pub hash: Hash,
}

/// Hash of a record (a leaf): SHA-256(0x00 || data).
pub fn record_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// Hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Position of the node `n` of tree level `level` in the dense sequence of
/// stored hashes (Crosby and Wallach's ordering, which lets a server append).
///
/// Meaningful for nodes of trees up to [`MAX_TREE_SIZE`] records; other inputs
/// give an unspecified value rather than a panic.
pub fn stored_hash_index(level: u32, n: u64) -> u64 {
    // A node is written in the batch of its rightmost leaf, `level` hashes
    // after that leaf's own hash.
    let last_leaf = if level >= u64::BITS {
        u64::MAX
    } else {
        (n << level) | ((1 << level) - 1)
    };
    leaf_batch_start(last_leaf).wrapping_add(u64::from(level))
}

/// Where leaf `m`'s batch starts: each earlier leaf `j` wrote 1 + trailing
/// ones of `j` hashes, which sums to m + m/2 + m/4 + ... = 2m - popcount(m).
fn leaf_batch_start(m: u64) -> u64 {
    m.wrapping_mul(2).wrapping_sub(u64::from(m.count_ones()))
}

/// Inverse of [`stored_hash_index`]: the tree level and node number of a
/// stored hash index.
pub fn split_stored_hash_index(index: u64) -> (u32, u64) {
    // The leaf whose batch holds `index` lies in [index/2, index/2 + log2(index)].
    let mut leaf = index / 2;
    let mut start = leaf_batch_start(leaf);
    loop {
        let batch = 1 + u64::from(leaf.trailing_ones());
        match start.checked_add(batch) {
            Some(next) if next <= index => {
                leaf += 1;
                start = next;
            }
            _ => break,
        }
    }
    let level = (index - start) as u32;
    (level, shr(leaf, level))
}

/// Number of hashes stored for a tree of `n` records.
pub fn stored_hash_count(n: u64) -> u64 {
    match n.checked_sub(1) {
        None => 0,
        Some(last) => leaf_batch_start(last) + 1 + u64::from(last.trailing_ones()),
    }
}

/// The hashes a server stores, starting at `stored_hash_index(0, n)`, when it
/// appends record `n` whose [`record_hash`] is `leaf`: the leaf itself, then
/// the root of every subtree that leaf completes. `read` is asked for the
/// left siblings of those subtrees, in increasing index order.
pub fn stored_hashes_for_record_hash(
    n: u64,
    leaf: Hash,
    read: impl Fn(&[u64]) -> Result<Vec<Hash>>,
) -> Result<Vec<Hash>> {
    let completed = n.trailing_ones();
    let indexes: Vec<u64> = (0..completed)
        .rev()
        .map(|level| stored_hash_index(level, shr(n, level).wrapping_sub(1)))
        .collect();
    let siblings = read_exact(&read, &indexes)?;
    let mut hashes = vec![leaf];
    let mut h = leaf;
    for sibling in siblings.iter().rev() {
        h = node_hash(sibling, &h);
        hashes.push(h);
    }
    Ok(hashes)
}

/// [`stored_hashes_for_record_hash`] for the record's data.
pub fn stored_hashes(
    n: u64,
    data: &[u8],
    read: impl Fn(&[u64]) -> Result<Vec<Hash>>,
) -> Result<Vec<Hash>> {
    stored_hashes_for_record_hash(n, record_hash(data), read)
}

/// The RFC 6962 root hash of the first `n` records, from the stored hashes of
/// the complete subtrees that make it up (one call to `read`, at most
/// 1 + log2 n hashes, in increasing index order).
pub fn tree_hash(n: u64, read: impl Fn(&[u64]) -> Result<Vec<Hash>>) -> Result<Hash> {
    if n == 0 {
        return Ok(EMPTY_TREE_HASH);
    }
    let hashes = read_exact(&read, &subtree_root_indexes(n))?;
    Ok(fold_root(&hashes).unwrap_or(EMPTY_TREE_HASH))
}

/// The complete subtrees whose roots make up the root of a tree of `n` records,
/// largest (leftmost) first, as (tree level, node number): one per set bit of `n`.
fn subtree_roots(n: u64) -> impl Iterator<Item = (u32, u64)> {
    let mut covered = 0u64;
    (0..u64::BITS).rev().filter_map(move |level| {
        let size = 1u64 << level;
        if n & size == 0 {
            return None;
        }
        let node = (level, covered >> level);
        covered += size;
        Some(node)
    })
}

fn subtree_root_indexes(n: u64) -> Vec<u64> {
    subtree_roots(n)
        .map(|(level, node)| stored_hash_index(level, node))
        .collect()
}

/// Combines subtree roots (largest first) into the tree root; RFC 6962 hashes
/// the unbalanced right edge from the right.
fn fold_root(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)))
}

fn read_exact(read: &impl Fn(&[u64]) -> Result<Vec<Hash>>, indexes: &[u64]) -> Result<Vec<Hash>> {
    let hashes = read(indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TlogError::HashCount {
            got: hashes.len(),
            want: indexes.len(),
        });
    }
    Ok(hashes)
}

/// `x >> s` that gives 0 instead of overflowing when `s` reaches 64.
fn shr(x: u64, s: u32) -> u64 {
    x.checked_shr(s).unwrap_or(0)
}

#[cfg(test)]
#[path = "tlog_tests.rs"]
mod tests;
