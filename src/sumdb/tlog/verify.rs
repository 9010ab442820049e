//! Authenticating downloaded tiles against a signed tree head, and the
//! record and consistency checks built on it.

use std::collections::HashMap;

use super::tile::{check_height, locate, subtree_hash};
use super::{
    EMPTY_TREE_HASH, HASH_SIZE, Hash, MAX_TREE_SIZE, Result, Tile, TlogError, Tree, fold_root,
    hash_from_tile, record_hash, stored_hash_index, subtree_root_indexes,
};

/// Where tile bytes come from: a server, a cache, or a test. The bytes are not
/// trusted; they are authenticated before any hash from them is used.
pub trait TileSource {
    /// The bytes of each tile, in order. A partial tile `.p/W` may be answered
    /// with the first W×32 bytes of the full tile of the same coordinates.
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>>;
}

/// Phase one of reading stored hashes out of a tree's tiles: which tiles to
/// fetch. Phase two, [`TileHashPlan::verify`], authenticates the fetched tiles
/// and returns the hashes.
///
/// The tiles that make up the root are checked against the signed root hash;
/// every other tile is a full tile checked against the entry for it in its
/// parent, and parents come before their children in [`TileHashPlan::tiles`].
#[derive(Clone, Debug)]
pub struct TileHashPlan {
    tree: Tree,
    tiles: Vec<Tile>,
    /// (stored index, slot in `tiles`) of each subtree root making up the root.
    root: Vec<(u64, usize)>,
    /// `tiles[root_tiles..]` are checked against their parents: `parents[i]`
    /// is the slot of the parent of `tiles[root_tiles + i]`.
    root_tiles: usize,
    parents: Vec<usize>,
    /// (stored index, slot in `tiles`) of each requested hash.
    wanted: Vec<(u64, usize)>,
}

impl TileHashPlan {
    /// Plans reading the stored hashes `indexes` from the height-`h` tiles of
    /// `tree`. Every index must be below `stored_hash_index(0, tree.n)`.
    pub fn new(tree: Tree, h: u8, indexes: &[u64]) -> Result<Self> {
        check_height(h)?;
        if tree.n > MAX_TREE_SIZE {
            return Err(TlogError::TreeTooLarge(tree.n));
        }
        let not_in_tree = |index| TlogError::IndexNotInTree {
            index,
            size: tree.n,
        };
        let mut plan = TileHashPlan {
            tree,
            tiles: Vec::new(),
            root: Vec::new(),
            root_tiles: 0,
            parents: Vec::new(),
            wanted: Vec::new(),
        };
        let mut slots: HashMap<Tile, usize> = HashMap::new();
        for index in subtree_root_indexes(tree.n) {
            let tile = locate(h, index)
                .0
                .parent(0, tree.n)
                .ok_or_else(|| not_in_tree(index))?;
            let slot = *slots.entry(tile).or_insert_with(|| {
                plan.tiles.push(tile);
                plan.tiles.len() - 1
            });
            plan.root.push((index, slot));
        }
        plan.root_tiles = plan.tiles.len();

        let end = stored_hash_index(0, tree.n);
        for &index in indexes {
            if index >= end {
                return Err(not_in_tree(index));
            }
            let tile = locate(h, index).0;
            // Climb to the nearest tile already planned: it will be
            // authenticated, and so can vouch for the chain below it.
            let mut k = 0u8;
            let mut slot = loop {
                let ancestor = tile.parent(k, tree.n).ok_or_else(|| not_in_tree(index))?;
                if let Some(&slot) = slots.get(&ancestor) {
                    break slot;
                }
                k += 1;
            };
            for below in (0..k).rev() {
                let child = tile
                    .parent(below, tree.n)
                    .ok_or_else(|| not_in_tree(index))?;
                plan.tiles.push(child);
                plan.parents.push(slot);
                slot = plan.tiles.len() - 1;
                slots.insert(child, slot);
            }
            plan.wanted.push((index, slot));
        }
        Ok(plan)
    }

    /// The tiles to fetch, parents before children. Once [`Self::verify`]
    /// succeeds, all of them are authentic and may be cached.
    pub fn tiles(&self) -> &[Tile] {
        &self.tiles
    }

    /// Authenticates `data`, the bytes of [`Self::tiles`] in the same order,
    /// and returns the requested hashes in request order.
    pub fn verify<D: AsRef<[u8]>>(&self, data: &[D]) -> Result<Vec<Hash>> {
        if data.len() != self.tiles.len() {
            return Err(TlogError::TileCount {
                got: data.len(),
                want: self.tiles.len(),
            });
        }
        for (tile, bytes) in self.tiles.iter().zip(data) {
            let want = tile.w as usize * HASH_SIZE;
            if bytes.as_ref().len() != want {
                return Err(TlogError::TileLength {
                    tile: tile.path(),
                    len: bytes.as_ref().len(),
                    want,
                });
            }
        }
        let hash_at = |(index, slot): (u64, usize)| {
            hash_from_tile(&self.tiles[slot], data[slot].as_ref(), index)
        };

        let roots = self
            .root
            .iter()
            .map(|&at| hash_at(at))
            .collect::<Result<Vec<_>>>()?;
        if let Some(root) = fold_root(&roots)
            && root != self.tree.hash
        {
            // At least one tile is wrong, but nothing says which.
            return Err(TlogError::RootMismatch { size: self.tree.n });
        }

        for (i, &parent) in self.parents.iter().enumerate() {
            let slot = self.root_tiles + i;
            let child = &self.tiles[slot];
            let parent_tile = &self.tiles[parent];
            let entry = stored_hash_index(parent_tile.tree_level()?, child.n);
            if hash_at((entry, parent))? != subtree_hash(data[slot].as_ref()) {
                return Err(TlogError::TileMismatch { tile: child.path() });
            }
        }

        self.wanted.iter().map(|&at| hash_at(at)).collect()
    }
}

/// Reads authenticated stored hashes from a [`TileSource`] in one step (the
/// synchronous form of [`TileHashPlan`]).
#[derive(Clone, Copy, Debug)]
pub struct TileHashReader<'a, S: ?Sized> {
    /// The trusted tree head the tiles are checked against.
    pub tree: Tree,
    /// Tile height.
    pub h: u8,
    /// Where the tile bytes come from.
    pub source: &'a S,
}

impl<S: TileSource + ?Sized> TileHashReader<'_, S> {
    /// The stored hashes at `indexes`, each proven to be in the tree.
    pub fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>> {
        let plan = TileHashPlan::new(self.tree, self.h, indexes)?;
        plan.verify(&fetch(self.source, plan.tiles())?)
    }
}

fn fetch<S: TileSource + ?Sized>(source: &S, tiles: &[Tile]) -> Result<Vec<Vec<u8>>> {
    if tiles.is_empty() {
        return Ok(Vec::new());
    }
    source.read_tiles(tiles)
}

/// Two-phase proof that a tree holds a record: the record's leaf hash must be
/// the level-0 stored hash at its id, read from authenticated tiles.
#[derive(Clone, Debug)]
pub struct RecordCheck {
    plan: TileHashPlan,
    id: u64,
    leaf: Hash,
}

impl RecordCheck {
    /// Plans checking that record `id` of `tree` is `record` (the exact record
    /// text, as hashed by [`record_hash`]), with tiles of height `h`.
    pub fn new(tree: Tree, h: u8, id: u64, record: &[u8]) -> Result<Self> {
        if id >= tree.n {
            return Err(TlogError::RecordNotInTree { id, size: tree.n });
        }
        let plan = TileHashPlan::new(tree, h, &[stored_hash_index(0, id)])?;
        Ok(RecordCheck {
            plan,
            id,
            leaf: record_hash(record),
        })
    }

    /// The tiles to fetch; all are authentic once [`Self::verify`] succeeds.
    pub fn tiles(&self) -> &[Tile] {
        self.plan.tiles()
    }

    /// Checks the fetched tile bytes (in [`Self::tiles`] order) and the record.
    pub fn verify<D: AsRef<[u8]>>(&self, data: &[D]) -> Result<()> {
        match self.plan.verify(data)?.as_slice() {
            [leaf] if *leaf == self.leaf => Ok(()),
            _ => Err(TlogError::RecordMismatch {
                id: self.id,
                size: self.plan.tree.n,
            }),
        }
    }
}

/// Two-phase check that `older` is a prefix of `newer`: the root of the first
/// `older.n` records is recomputed from tiles authenticated against `newer`
/// and compared with `older.hash`. This is how the go command checks
/// consistency; it never asks for a consistency proof.
#[derive(Clone, Debug)]
pub struct ConsistencyCheck {
    older: Tree,
    newer: Tree,
    plan: Option<TileHashPlan>,
}

impl ConsistencyCheck {
    /// Plans the check with tiles of height `h`; `older.n` must not exceed `newer.n`.
    pub fn new(older: Tree, newer: Tree, h: u8) -> Result<Self> {
        check_height(h)?;
        if older.n > newer.n {
            return Err(TlogError::NotOlder {
                older: older.n,
                newer: newer.n,
            });
        }
        let plan = if older.n == 0 || older.n == newer.n {
            None
        } else {
            Some(TileHashPlan::new(newer, h, &subtree_root_indexes(older.n))?)
        };
        Ok(ConsistencyCheck { older, newer, plan })
    }

    /// The tiles of `newer` to fetch (none when `older` is empty or the sizes
    /// are equal); all are authentic once [`Self::verify`] succeeds.
    pub fn tiles(&self) -> &[Tile] {
        self.plan.as_ref().map_or(&[], TileHashPlan::tiles)
    }

    /// Checks the fetched tile bytes (in [`Self::tiles`] order) and the trees.
    pub fn verify<D: AsRef<[u8]>>(&self, data: &[D]) -> Result<()> {
        let expected = match &self.plan {
            Some(plan) => fold_root(&plan.verify(data)?).unwrap_or(EMPTY_TREE_HASH),
            None if !data.is_empty() => {
                return Err(TlogError::TileCount {
                    got: data.len(),
                    want: 0,
                });
            }
            None if self.older.n == self.newer.n => self.newer.hash,
            // The empty tree is a prefix of every tree.
            None => EMPTY_TREE_HASH,
        };
        if expected == self.older.hash {
            Ok(())
        } else {
            Err(TlogError::Inconsistent {
                older: self.older.n,
                newer: self.newer.n,
            })
        }
    }
}

/// Proves that record `id` of `tree` is `record`, reading height-`h` tiles
/// from `source`.
pub fn prove_record<S: TileSource + ?Sized>(
    tree: &Tree,
    id: u64,
    record: &[u8],
    h: u8,
    source: &S,
) -> Result<()> {
    let check = RecordCheck::new(*tree, h, id, record)?;
    check.verify(&fetch(source, check.tiles())?)
}

/// Checks that `older` is a prefix of `newer`, reading height-`h` tiles of
/// `newer` from `source`.
pub fn check_tree_consistency<S: TileSource + ?Sized>(
    older: &Tree,
    newer: &Tree,
    h: u8,
    source: &S,
) -> Result<()> {
    let check = ConsistencyCheck::new(*older, *newer, h)?;
    check.verify(&fetch(source, check.tiles())?)
}
