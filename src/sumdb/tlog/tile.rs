//! Tiles: coordinates, paths, and the hashes they hold.

use std::fmt;

use super::{
    HASH_SIZE, Hash, Result, TlogError, node_hash, shr, split_stored_hash_index, stored_hash_index,
};

/// The largest tile height Go accepts.
pub const MAX_TILE_HEIGHT: u8 = 30;

/// The highest hash-tile level: tree levels stop at 63.
const MAX_TILE_LEVEL: u8 = 63;

/// Which row of tiles a tile belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileLevel {
    /// Raw record data (Go's level -1, written `data` in paths), parallel to
    /// the level-0 hash tiles.
    Data,
    /// Hashes at tree level `height × L`.
    Hash(u8),
}

/// A tile of height `h` at level `l`, number `n`, holding `w` consecutive
/// hashes of tree level `h × l` starting at hash `n × 2^h`. A full tile has
/// `w == 2^h`; a partial one, at the right edge of a tree, fewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// Height: the tile spans `h` tree levels (1..=30; sum.golang.org uses 8).
    pub h: u8,
    /// Level in the tiling.
    pub l: TileLevel,
    /// Number within the level.
    pub n: u64,
    /// Width: how many hashes (or records) the tile holds.
    pub w: u32,
}

/// Number of hashes in a full tile of height `h`, or 0 for a height that no
/// tile can have.
fn full_width(h: u8) -> u64 {
    if h > MAX_TILE_HEIGHT { 0 } else { 1 << h }
}

pub(super) fn check_height(h: u8) -> Result<()> {
    if (1..=MAX_TILE_HEIGHT).contains(&h) {
        Ok(())
    } else {
        Err(TlogError::InvalidHeight(h))
    }
}

impl Tile {
    /// Whether the tile holds all 2^h hashes it can.
    pub fn is_full(&self) -> bool {
        u64::from(self.w) == full_width(self.h)
    }

    /// The tile's path below the database URL: `tile/H/L/NNN[.p/W]`, with N in
    /// 3-digit groups, all but the last prefixed by `x` (so no directory holds
    /// more than a few thousand entries), and `data` for the data level.
    pub fn path(&self) -> String {
        let mut digits = format!("{:03}", self.n % 1000);
        let mut rest = self.n / 1000;
        while rest > 0 {
            digits = format!("x{:03}/{digits}", rest % 1000);
            rest /= 1000;
        }
        let level = match self.l {
            TileLevel::Data => "data".to_owned(),
            TileLevel::Hash(l) => l.to_string(),
        };
        let partial = if self.is_full() {
            String::new()
        } else {
            format!(".p/{}", self.w)
        };
        format!("tile/{}/{level}/{digits}{partial}", self.h)
    }

    /// Parses a tile path. Only the canonical path of a tile is accepted, so
    /// that each tile has exactly one name (a cache key can be the path).
    pub fn parse_path(path: &str) -> Result<Tile> {
        let bad = || TlogError::MalformedTilePath(path.to_owned());
        let parts: Vec<&str> = path.split('/').collect();
        let [first, height, level, groups @ ..] = parts.as_slice() else {
            return Err(bad());
        };
        if *first != "tile" || groups.is_empty() {
            return Err(bad());
        }
        let h: u8 = height.parse().map_err(|_| bad())?;
        check_height(h).map_err(|_| bad())?;
        let l = match *level {
            "data" => TileLevel::Data,
            digits => match digits.parse::<u8>() {
                Ok(l) if l <= MAX_TILE_LEVEL => TileLevel::Hash(l),
                _ => return Err(bad()),
            },
        };
        let mut w = full_width(h);
        let mut groups = groups.to_vec();
        if let [.., last, width] = groups.as_slice()
            && let Some(last) = last.strip_suffix(".p")
        {
            w = match width.parse::<u64>() {
                Ok(pw) if pw > 0 && pw < w => pw,
                _ => return Err(bad()),
            };
            groups.pop();
            groups.pop();
            groups.push(last);
        }
        let mut n = 0u64;
        for group in groups {
            let group = group.strip_prefix('x').unwrap_or(group);
            let value = match group.parse::<u64>() {
                Ok(v) if v < 1000 => v,
                _ => return Err(bad()),
            };
            n = n
                .checked_mul(1000)
                .and_then(|n| n.checked_add(value))
                .ok_or_else(bad)?;
        }
        let w = u32::try_from(w).map_err(|_| bad())?;
        let tile = Tile { h, l, n, w };
        if tile.path() != path {
            return Err(bad());
        }
        Ok(tile)
    }

    /// The tree level of the tile's bottom row, for a valid hash tile.
    pub(super) fn tree_level(&self) -> Result<u32> {
        match self.l {
            TileLevel::Hash(l)
                if check_height(self.h).is_ok()
                    && l <= MAX_TILE_LEVEL
                    && self.w >= 1
                    && u64::from(self.w) <= full_width(self.h) =>
            {
                Ok(u32::from(l) * u32::from(self.h))
            }
            _ => Err(TlogError::InvalidTile(self.path())),
        }
    }

    /// This tile's ancestor `k` levels up in a tree of `tree_n` records, with
    /// the width that tree gives it, or `None` if the tree has no such tile.
    pub(super) fn parent(&self, k: u8, tree_n: u64) -> Option<Tile> {
        let TileLevel::Hash(l) = self.l else {
            return None;
        };
        let l = l.checked_add(k).filter(|&l| l <= MAX_TILE_LEVEL)?;
        let h = u32::from(self.h);
        let n = shr(self.n, u32::from(k) * h);
        let hashes_at_level = shr(tree_n, u32::from(l) * h);
        let start = n.checked_mul(full_width(self.h))?;
        let w = hashes_at_level.checked_sub(start).filter(|&w| w > 0)?;
        let w = w.min(full_width(self.h)) as u32;
        Some(Tile {
            h: self.h,
            l: TileLevel::Hash(l),
            n,
            w,
        })
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// The narrowest tile of height `h` that holds stored hash `index`.
///
/// # Panics
///
/// If `h` is not in 1..=30, which is a caller bug, not bad input.
pub fn tile_for_index(h: u8, index: u64) -> Tile {
    assert!(check_height(h).is_ok(), "invalid tile height {h}");
    locate(h, index).0
}

/// The narrowest tile holding `index`, and the byte range of the tile data
/// whose subtree hash is that stored hash (a hash above the tile's bottom row
/// is not stored in the tile but recomputed from the row).
pub(super) fn locate(h: u8, index: u64) -> (Tile, usize, usize) {
    let (level, n) = split_stored_hash_index(index);
    let h32 = u32::from(h);
    let tile_level = level / h32;
    let above_row = level - tile_level * h32;
    let tile_n = shr(n << above_row, h32);
    let in_tile = n - ((tile_n << h32) >> above_row);
    let first = (in_tile << above_row) as usize;
    let end = ((in_tile + 1) << above_row) as usize;
    let tile = Tile {
        h,
        l: TileLevel::Hash(tile_level as u8),
        n: tile_n,
        w: end as u32,
    };
    (tile, first * HASH_SIZE, end * HASH_SIZE)
}

/// The stored hash `index` from `data`, the bytes of `tile`, which must be the
/// tile [`tile_for_index`] names or a wider one with the same coordinates.
pub fn hash_from_tile(tile: &Tile, data: &[u8], index: u64) -> Result<Hash> {
    tile.tree_level()?;
    let want = tile.w as usize * HASH_SIZE;
    if data.len() < want {
        return Err(TlogError::TileLength {
            tile: tile.path(),
            len: data.len(),
            want,
        });
    }
    let (needed, start, end) = locate(tile.h, index);
    if needed.l != tile.l || needed.n != tile.n || needed.w > tile.w {
        return Err(TlogError::IndexNotInTile {
            index,
            tile: tile.path(),
        });
    }
    Ok(subtree_hash(&data[start..end]))
}

/// Root of the perfect subtree whose leaves are the hashes in `data`; callers
/// pass 2^k whole hashes.
pub(super) fn subtree_hash(data: &[u8]) -> Hash {
    match data.len() / (2 * HASH_SIZE) {
        0 => {
            let mut h = [0; HASH_SIZE];
            let len = data.len().min(HASH_SIZE);
            h[..len].copy_from_slice(&data[..len]);
            h
        }
        half => {
            let (left, right) = data.split_at(half * HASH_SIZE);
            node_hash(&subtree_hash(left), &subtree_hash(right))
        }
    }
}

/// The tiles of height `h` a server publishes when its tree grows from
/// `old_n` to `new_n` records: every tile that is new or wider.
///
/// # Panics
///
/// If `h` is not in 1..=30.
pub fn new_tiles(h: u8, old_n: u64, new_n: u64) -> Vec<Tile> {
    assert!(check_height(h).is_ok(), "invalid tile height {h}");
    let h32 = u32::from(h);
    let mut tiles = Vec::new();
    for l in 0..=MAX_TILE_LEVEL {
        let new_hashes = shr(new_n, u32::from(l) * h32);
        if new_hashes == 0 {
            break;
        }
        let old_hashes = shr(old_n, u32::from(l) * h32);
        if old_hashes == new_hashes {
            continue;
        }
        let level = TileLevel::Hash(l);
        let full = full_width(h) as u32;
        for n in (old_hashes >> h32)..(new_hashes >> h32) {
            tiles.push(Tile {
                h,
                l: level,
                n,
                w: full,
            });
        }
        let n = new_hashes >> h32;
        let w = (new_hashes - (n << h32)) as u32;
        if w > 0 {
            tiles.push(Tile { h, l: level, n, w });
        }
    }
    tiles
}

/// The bytes of hash tile `tile`, from the stored hashes `read` returns.
pub fn read_tile_data(tile: &Tile, read: impl Fn(&[u64]) -> Result<Vec<Hash>>) -> Result<Vec<u8>> {
    let level = tile.tree_level()?;
    let start = tile.n << tile.h;
    let indexes: Vec<u64> = (0..u64::from(tile.w))
        .map(|i| stored_hash_index(level, start.wrapping_add(i)))
        .collect();
    let hashes = super::read_exact(&read, &indexes)?;
    Ok(hashes.concat())
}
