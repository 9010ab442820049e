//! Tests for the tiled transparency log. The table-driven vectors and the
//! shape of `go_tree` and `go_tile_hash_reader` come from Go's
//! `golang.org/x/mod/sumdb/tlog` tests (BSD-style licence, The Go Authors).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::*;

/// A dense hash store, as a server keeps it.
fn read_stored(storage: &[Hash], indexes: &[u64]) -> Result<Vec<Hash>> {
    assert!(
        indexes.windows(2).all(|w| w[0] < w[1]),
        "indexes out of order: {indexes:?}"
    );
    indexes
        .iter()
        .map(|&i| {
            storage
                .get(i as usize)
                .copied()
                .ok_or(TlogError::HashNotStored(i))
        })
        .collect()
}

/// A log built record by record, remembering the root of every size.
#[derive(Default)]
struct Log {
    hashes: Vec<Hash>,
    roots: Vec<Hash>,
}

impl Log {
    fn with_records(records: impl IntoIterator<Item = Vec<u8>>) -> Log {
        let mut log = Log {
            hashes: Vec::new(),
            roots: vec![EMPTY_TREE_HASH],
        };
        for record in records {
            log.add(&record);
        }
        log
    }

    fn size(&self) -> u64 {
        self.roots.len() as u64 - 1
    }

    fn add(&mut self, record: &[u8]) {
        let n = self.size();
        let new = stored_hashes(n, record, |ix| read_stored(&self.hashes, ix)).unwrap();
        self.hashes.extend(new);
        assert_eq!(stored_hash_count(n + 1), self.hashes.len() as u64);
        let root = tree_hash(n + 1, |ix| read_stored(&self.hashes, ix)).unwrap();
        self.roots.push(root);
    }

    fn tree(&self, n: u64) -> Tree {
        Tree {
            n,
            hash: self.roots[n as usize],
        }
    }

    fn tile_data(&self, tile: &Tile) -> Vec<u8> {
        read_tile_data(tile, |ix| read_stored(&self.hashes, ix)).unwrap()
    }
}

fn leaf(i: u64) -> Vec<u8> {
    format!("leaf {i}\n").into_bytes()
}

/// Tiles published by a server, served from memory. A tile that was never
/// published is answered from the widest published tile at the same
/// coordinates, cut to size, as a client falls back to the full tile.
#[derive(Default, Clone)]
struct MemTiles(HashMap<Tile, Vec<u8>>);

impl MemTiles {
    fn publish(&mut self, log: &Log, h: u8, old_n: u64, new_n: u64) {
        for tile in new_tiles(h, old_n, new_n) {
            self.0.insert(tile, log.tile_data(&tile));
        }
    }

    /// Every tile of every size up to `log.size()`.
    fn incremental(log: &Log, h: u8) -> MemTiles {
        let mut tiles = MemTiles::default();
        for n in 0..log.size() {
            tiles.publish(log, h, n, n + 1);
        }
        tiles
    }

    /// Only the tiles of the final tree.
    fn last(log: &Log, h: u8) -> MemTiles {
        let mut tiles = MemTiles::default();
        tiles.publish(log, h, 0, log.size());
        tiles
    }
}

impl TileSource for MemTiles {
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>> {
        tiles
            .iter()
            .map(|t| {
                if let Some(data) = self.0.get(t) {
                    return Ok(data.clone());
                }
                let want = t.w as usize * HASH_SIZE;
                self.0
                    .iter()
                    .find(|(k, v)| k.h == t.h && k.l == t.l && k.n == t.n && v.len() >= want)
                    .map(|(_, v)| v[..want].to_vec())
                    .ok_or_else(|| TlogError::Read(format!("no tile {t}").into()))
            })
            .collect()
    }
}

/// Computes any tile straight from a log's hashes.
struct Computed<'a>(&'a Log);

impl TileSource for Computed<'_> {
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>> {
        Ok(tiles.iter().map(|t| self.0.tile_data(t)).collect())
    }
}

/// Serves `inner`'s tiles with the bytes from which stored hash `index` is
/// computed zeroed (Go's zeroIndex).
struct ZeroIndex<'a, S> {
    inner: &'a S,
    h: u8,
    index: u64,
}

impl<S: TileSource> TileSource for ZeroIndex<'_, S> {
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>> {
        let mut data = self.inner.read_tiles(tiles)?;
        let (target, start, end) = super::tile::locate(self.h, self.index);
        for (tile, bytes) in tiles.iter().zip(&mut data) {
            if (tile.l, tile.n) == (target.l, target.n) && end <= bytes.len() {
                bytes[start..end].fill(0);
            }
        }
        Ok(data)
    }
}

#[test]
fn hashes_match_rfc6962_and_go() {
    assert_eq!(EMPTY_TREE_HASH, <Hash>::from(Sha256::digest(b"")));
    assert_eq!(tree_hash(0, |_| unreachable!()).unwrap(), EMPTY_TREE_HASH);
    // Golden value from Go's note_test.go (TestFormatTree).
    assert_eq!(
        STANDARD.encode(record_hash(b"hello world")),
        "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0="
    );
    let (a, b) = (record_hash(b"a"), record_hash(b"b"));
    let mut input = vec![1u8];
    input.extend_from_slice(&a);
    input.extend_from_slice(&b);
    assert_eq!(node_hash(&a, &b), <Hash>::from(Sha256::digest(&input)));
}

#[test]
fn stored_hash_indexes() {
    // Leaves 0..4 store: L0 | L1 N(0,1) | L2 | L3 N(2,3) N(0..4)
    let layout = [(0, 0), (0, 1), (1, 0), (0, 2), (0, 3), (1, 1), (2, 0)];
    for (index, &(level, n)) in layout.iter().enumerate() {
        assert_eq!(stored_hash_index(level, n), index as u64);
        assert_eq!(split_stored_hash_index(index as u64), (level, n));
    }
    let counts = [0, 1, 3, 4, 7, 8, 10, 11, 15];
    for (n, &count) in counts.iter().enumerate() {
        assert_eq!(stored_hash_count(n as u64), count, "n={n}");
    }
}

#[test]
fn split_stored_hash_index_inverts() {
    for level in 0..10 {
        for n in 0..100 {
            let x = stored_hash_index(level, n);
            assert_eq!(split_stored_hash_index(x), (level, n), "index {x}");
        }
    }
    for level in [20, 40, 62] {
        let x = stored_hash_index(level, 1);
        assert_eq!(split_stored_hash_index(x), (level, 1));
    }
    // No overflow panics at the edges of u64.
    for x in [u64::MAX, u64::MAX - 1, 1 << 63] {
        split_stored_hash_index(x);
        tile_for_index(8, x);
    }
    stored_hash_index(200, u64::MAX);
}

fn tile(h: u8, l: i8, n: u64, w: u32) -> Tile {
    let l = if l < 0 {
        TileLevel::Data
    } else {
        TileLevel::Hash(l as u8)
    };
    Tile { h, l, n, w }
}

#[test]
fn tile_paths() {
    let valid = [
        ("tile/4/0/001", tile(4, 0, 1, 16)),
        ("tile/4/0/001.p/5", tile(4, 0, 1, 5)),
        ("tile/3/5/x123/x456/078", tile(3, 5, 123456078, 8)),
        ("tile/3/5/x123/x456/078.p/2", tile(3, 5, 123456078, 2)),
        ("tile/1/0/x003/x057/500", tile(1, 0, 3057500, 2)),
        ("tile/1/data/x003/x057/500", tile(1, -1, 3057500, 2)),
        ("tile/8/data/000.p/1", tile(8, -1, 0, 1)),
        ("tile/8/63/x001/000", tile(8, 63, 1000, 256)),
        ("tile/30/0/000", tile(30, 0, 0, 1 << 30)),
    ];
    for (path, want) in valid {
        assert_eq!(want.path(), path);
        assert_eq!(want.to_string(), path);
        assert_eq!(Tile::parse_path(path).unwrap(), want, "{path}");
    }
    let invalid = [
        "tile/3/5/123/456/078",
        "tile/3/-1/123/456/078",
        "",
        "tile",
        "tile/8/0",
        "tiles/8/0/000",
        "tile/8/0/000/",
        "/tile/8/0/000",
        "tile/0/0/000",
        "tile/31/0/000",
        "tile/08/0/000",
        "tile/+8/0/000",
        "tile/8/64/000",
        "tile/8/-0/000",
        "tile/8/00/000",
        "tile/8/0/1",
        "tile/8/0/0001",
        "tile/8/0/x000/001",
        "tile/8/0/x1/001",
        "tile/8/0/001/002",
        "tile/8/0/x1000/000",
        "tile/8/0/xx01/000",
        "tile/4/0/001.p/16",
        "tile/4/0/001.p/0",
        "tile/4/0/001.p/05",
        "tile/4/0/001.p/+5",
        "tile/4/0/001.p/",
        "tile/4/0/001.p",
        "tile/4/0/.p/5",
        "tile/4/0/001.p/5/6",
        "tile/8/DATA/000",
        "tile/8/data/000.p/256",
        "tile/8/0/x999/x999/x999/x999/x999/x999/x999/x999/999",
    ];
    for path in invalid {
        assert!(
            matches!(Tile::parse_path(path), Err(TlogError::MalformedTilePath(_))),
            "{path} should be rejected"
        );
    }
}

#[test]
fn tile_path_parsing_never_panics_and_round_trips() {
    let seeds = [
        "tile/4/0/001.p/5",
        "tile/3/5/x123/x456/078.p/2",
        "tile/1/data/x003/x057/500",
    ];
    let replacements = ['x', '/', '.', 'p', '0', '1', '9', '-', '+', 'é'];
    for seed in seeds {
        for (pos, _) in seed.char_indices() {
            for r in replacements {
                let mut s = seed.to_owned();
                s.replace_range(pos..pos + 1, &r.to_string());
                if let Ok(t) = Tile::parse_path(&s) {
                    assert_eq!(t.path(), s);
                }
                s.truncate(pos);
                if let Ok(t) = Tile::parse_path(&s) {
                    assert_eq!(t.path(), s);
                }
            }
        }
    }
}

#[test]
fn new_tiles_for_size() {
    let cases = [
        (1, 1, 0),
        (100, 101, 1),
        (1023, 1025, 3),
        (1024, 1030, 1),
        (1030, 2000, 1),
        (1030, 10000, 10),
        (49516517, 49516586, 3),
    ];
    for (old, new, want) in cases {
        let tiles = new_tiles(10, old, new);
        assert_eq!(tiles.len(), want, "{old}-{new}: {tiles:?}");
    }
    assert_eq!(
        new_tiles(8, 0, 300),
        vec![tile(8, 0, 0, 256), tile(8, 0, 1, 44), tile(8, 1, 0, 1)]
    );
}

#[test]
fn go_tree() {
    const H: u8 = 2;
    let mut log = Log::with_records([]);
    let mut tiles = MemTiles::default();
    for i in 0..100u64 {
        let old_storage = log.hashes.len();
        log.add(&leaf(i));
        let th = log.roots[i as usize + 1];
        let tree = log.tree(i + 1);

        for t in new_tiles(H, i, i + 1) {
            let data = log.tile_data(&t);
            let old = Tile { w: t.w - 1, ..t };
            let old_data = tiles.0.get(&old).cloned().unwrap_or_default();
            assert_eq!(old_data.len(), data.len() - HASH_SIZE, "{t} extends {old}");
            assert_eq!(old_data, data[..old_data.len()], "{t} extends {old}");
            tiles.0.insert(t, data);
        }
        for t in new_tiles(H, 0, i + 1)
            .into_iter()
            .chain(new_tiles(H, i / 2, i + 1))
        {
            assert_eq!(tiles.0[&t], log.tile_data(&t), "{t}");
        }
        for j in old_storage as u64..log.hashes.len() as u64 {
            let t = tile_for_index(H, j);
            let data = tiles.0.get(&t).unwrap_or_else(|| panic!("{t} not stored"));
            assert_eq!(hash_from_tile(&t, data, j).unwrap(), log.hashes[j as usize]);
        }

        let thr = TileHashReader {
            tree,
            h: H,
            source: &tiles,
        };
        for j in 0..=i {
            let got = thr.read_hashes(&[stored_hash_index(0, j)]).unwrap();
            assert_eq!(got, [record_hash(&leaf(j))]);
            prove_record(&tree, j, &leaf(j), H, &tiles).unwrap();
            let err = prove_record(&tree, j, &leaf(j + 1), H, &tiles).unwrap_err();
            assert!(matches!(err, TlogError::RecordMismatch { .. }), "{err}");
        }
        assert!(thr.read_hashes(&[(i + 1) * 2]).is_err());
        assert!(prove_record(&tree, i + 1, &leaf(i + 1), H, &tiles).is_err());

        for j in 0..=i {
            let h = tree_hash(j + 1, |ix| thr.read_hashes(ix)).unwrap();
            assert_eq!(
                h,
                log.roots[j as usize + 1],
                "TreeHash({}) via tiles of {}",
                j + 1,
                i + 1
            );
            check_tree_consistency(&log.tree(j + 1), &tree, H, &tiles).unwrap();
        }
        assert_eq!(th, tree_hash(i + 1, |ix| thr.read_hashes(ix)).unwrap());
    }
}

#[test]
fn go_tile_hash_reader() {
    const H: u8 = 2;
    let mut log = Log::with_records([]);
    for i in 0..100u64 {
        log.add(&leaf(i));
        let n = i + 1;
        let source = Computed(&log);
        let thr = TileHashReader {
            tree: log.tree(n),
            h: H,
            source: &source,
        };
        let end = stored_hash_index(0, n);
        for x in 0..end {
            assert_eq!(thr.read_hashes(&[x]).unwrap(), [log.hashes[x as usize]]);
        }
        let all: Vec<u64> = (0..end).collect();
        assert_eq!(thr.read_hashes(&all).unwrap(), log.hashes[..end as usize]);

        for x in 0..end {
            let zeroed = ZeroIndex {
                inner: &source,
                h: H,
                index: x,
            };
            let thz = TileHashReader {
                tree: log.tree(n),
                h: H,
                source: &zeroed,
            };
            assert!(thz.read_hashes(&[x]).is_err(), "N={n} tampered={x}");
            assert!(thz.read_hashes(&all).is_err(), "N={n} tampered={x}");
        }
    }
}

const SIZES: [u64; 17] = [
    1, 2, 3, 4, 5, 7, 8, 9, 100, 127, 128, 129, 255, 256, 257, 299, 300,
];

#[test]
fn log_of_300_records_proves_every_record_and_every_prefix() {
    let log = Log::with_records((0..300).map(leaf));
    for h in [8, 2] {
        let sources = [MemTiles::incremental(&log, h), MemTiles::last(&log, h)];
        for source in &sources {
            for &n in &SIZES {
                let tree = log.tree(n);
                for id in 0..n {
                    prove_record(&tree, id, &leaf(id), h, source)
                        .unwrap_or_else(|e| panic!("h={h} record {id} in {n}: {e}"));
                }
                for &m in SIZES.iter().filter(|&&m| m <= n) {
                    check_tree_consistency(&log.tree(m), &tree, h, source)
                        .unwrap_or_else(|e| panic!("h={h} {m} -> {n}: {e}"));
                }
            }
        }
    }
}

/// Every byte of every fetched tile matters: flipping any of several bytes in
/// any one tile makes `verify` fail.
fn assert_tamper_evident(tiles: &[Tile], data: &[Vec<u8>], verify: impl Fn(&[Vec<u8>]) -> bool) {
    assert!(verify(data));
    for (i, t) in tiles.iter().enumerate() {
        let len = data[i].len();
        for pos in [0, 31, len / 2, len - 1] {
            let mut bad = data.to_vec();
            bad[i][pos] ^= 0x40;
            assert!(!verify(&bad), "flipped byte {pos} of {t} went unnoticed");
        }
    }
}

#[test]
fn flipped_tile_byte_is_rejected() {
    let log = Log::with_records((0..300).map(leaf));
    for h in [8, 2] {
        let source = MemTiles::incremental(&log, h);
        for &n in &SIZES {
            for id in [0, n / 2, n - 1] {
                let check = RecordCheck::new(log.tree(n), h, id, &leaf(id)).unwrap();
                let data = source.read_tiles(check.tiles()).unwrap();
                assert_tamper_evident(check.tiles(), &data, |d| check.verify(d).is_ok());
            }
            for &m in SIZES.iter().filter(|&&m| m < n) {
                let check = ConsistencyCheck::new(log.tree(m), log.tree(n), h).unwrap();
                let data = source.read_tiles(check.tiles()).unwrap();
                assert_tamper_evident(check.tiles(), &data, |d| check.verify(d).is_ok());
            }
        }
    }
}

#[test]
fn changed_root_is_rejected() {
    const H: u8 = 8;
    let log = Log::with_records((0..300).map(leaf));
    let source = MemTiles::incremental(&log, H);
    let forged = |n: u64| {
        let mut t = log.tree(n);
        t.hash[7] ^= 1;
        t
    };
    for &n in &SIZES {
        let err = prove_record(&forged(n), 0, &leaf(0), H, &source).unwrap_err();
        assert!(
            matches!(err, TlogError::RootMismatch { size } if size == n),
            "{err}"
        );
        for &m in SIZES.iter().filter(|&&m| m <= n) {
            let err = check_tree_consistency(&forged(m), &log.tree(n), H, &source).unwrap_err();
            assert!(matches!(err, TlogError::Inconsistent { .. }), "{err}");
            if m < n {
                let err = check_tree_consistency(&log.tree(m), &forged(n), H, &source).unwrap_err();
                assert!(matches!(err, TlogError::RootMismatch { .. }), "{err}");
            }
        }
    }
}

#[test]
fn forked_log_is_inconsistent() {
    const H: u8 = 8;
    let a = Log::with_records((0..300).map(leaf));
    for fork_at in [150u64, 256] {
        let b = Log::with_records((0..300).map(|i| {
            if i < fork_at {
                leaf(i)
            } else {
                format!("fork {i}\n").into_bytes()
            }
        }));
        let (a_tiles, b_tiles) = (MemTiles::incremental(&a, H), MemTiles::incremental(&b, H));
        for &newer in &SIZES {
            for &older in SIZES.iter().filter(|&&m| m <= newer) {
                // A's older head against B's newer head, B serving its tiles:
                // only heads from before the fork are prefixes of B.
                let got = check_tree_consistency(&a.tree(older), &b.tree(newer), H, &b_tiles);
                match &got {
                    Ok(()) => assert!(older <= fork_at, "{older} -> {newer} forked at {fork_at}"),
                    Err(TlogError::Inconsistent { older: o, newer: n }) => {
                        assert!(older > fork_at);
                        assert_eq!((*o, *n), (older, newer));
                        let msg = got.unwrap_err().to_string();
                        assert!(msg.contains("consistency"), "{msg}");
                        assert!(msg.contains(&older.to_string()), "{msg}");
                        assert!(msg.contains(&newer.to_string()), "{msg}");
                    }
                    Err(e) => panic!("{older} -> {newer}: {e}"),
                }
                // A's tiles cannot pass for B's tree once B has forked.
                let got = check_tree_consistency(&a.tree(older), &b.tree(newer), H, &a_tiles);
                assert_eq!(got.is_ok(), newer <= fork_at, "{older} -> {newer}: {got:?}");
            }
        }
    }
}

#[test]
fn two_phase_api_fetches_by_path() {
    const H: u8 = 8;
    let log = Log::with_records((0..300).map(leaf));
    // What an HTTP server would hold: only the latest tiles, by path.
    let server: HashMap<String, Vec<u8>> = new_tiles(H, 0, 300)
        .iter()
        .map(|t| (t.path(), log.tile_data(t)))
        .collect();
    let fetch = |tiles: &[Tile]| -> Vec<Vec<u8>> {
        tiles
            .iter()
            .map(|t| match server.get(&t.path()) {
                Some(data) => data.clone(),
                None => {
                    let full = Tile { w: 1 << t.h, ..*t };
                    server[&full.path()][..t.w as usize * HASH_SIZE].to_vec()
                }
            })
            .collect()
    };

    let check = RecordCheck::new(log.tree(200), H, 42, &leaf(42)).unwrap();
    let paths: Vec<String> = check.tiles().iter().map(Tile::path).collect();
    assert_eq!(paths, ["tile/8/0/000.p/200"]);
    check.verify(&fetch(check.tiles())).unwrap();

    let check = ConsistencyCheck::new(log.tree(200), log.tree(300), H).unwrap();
    let paths: Vec<String> = check.tiles().iter().map(Tile::path).collect();
    assert_eq!(
        paths,
        ["tile/8/1/000.p/1", "tile/8/0/001.p/44", "tile/8/0/000"]
    );
    check.verify(&fetch(check.tiles())).unwrap();

    let plan = TileHashPlan::new(log.tree(300), H, &[0, 590, 3]).unwrap();
    let hashes = plan.verify(&fetch(plan.tiles())).unwrap();
    assert_eq!(hashes, [log.hashes[0], log.hashes[590], log.hashes[3]]);
}

#[test]
fn malformed_tile_answers_are_errors() {
    const H: u8 = 8;
    let log = Log::with_records((0..300).map(leaf));
    let check = RecordCheck::new(log.tree(300), H, 10, &leaf(10)).unwrap();
    let data = Computed(&log).read_tiles(check.tiles()).unwrap();
    assert!(check.verify(&data).is_ok());

    let err = check.verify(&data[1..]).unwrap_err();
    assert!(matches!(err, TlogError::TileCount { .. }), "{err}");
    let empty: Vec<Vec<u8>> = vec![Vec::new(); data.len()];
    let err = check.verify(&empty).unwrap_err();
    assert!(matches!(err, TlogError::TileLength { .. }), "{err}");
    for i in 0..data.len() {
        let mut short = data.clone();
        short[i].pop();
        assert!(matches!(
            check.verify(&short),
            Err(TlogError::TileLength { .. })
        ));
        let mut long = data.clone();
        long[i].extend_from_slice(&[0; HASH_SIZE]);
        assert!(matches!(
            check.verify(&long),
            Err(TlogError::TileLength { .. })
        ));
    }

    struct Failing;
    impl TileSource for Failing {
        fn read_tiles(&self, _: &[Tile]) -> Result<Vec<Vec<u8>>> {
            Err(TlogError::Read("connection reset".into()))
        }
    }
    let err = prove_record(&log.tree(300), 10, &leaf(10), H, &Failing).unwrap_err();
    assert_eq!(err.to_string(), "reading tiles or hashes: connection reset");
}

#[test]
fn degenerate_trees_and_arguments() {
    const H: u8 = 8;
    let empty = Tree {
        n: 0,
        hash: EMPTY_TREE_HASH,
    };
    let log = Log::with_records((0..3).map(leaf));
    assert!(matches!(
        RecordCheck::new(empty, H, 0, b"x"),
        Err(TlogError::RecordNotInTree { id: 0, size: 0 })
    ));
    assert!(matches!(
        TileHashPlan::new(empty, H, &[0]),
        Err(TlogError::IndexNotInTree { index: 0, size: 0 })
    ));
    assert!(TileHashPlan::new(empty, H, &[]).unwrap().tiles().is_empty());

    // The empty tree is a prefix of every tree; no tiles needed.
    let check = ConsistencyCheck::new(empty, log.tree(3), H).unwrap();
    assert!(check.tiles().is_empty());
    check.verify::<Vec<u8>>(&[]).unwrap();
    assert!(matches!(
        check.verify(&[vec![0u8; 32]]),
        Err(TlogError::TileCount { got: 1, want: 0 })
    ));
    let bogus = Tree {
        n: 0,
        hash: [9; 32],
    };
    assert!(check_tree_consistency(&bogus, &log.tree(3), H, &Failing).is_err());
    // Equal sizes compare hashes directly.
    check_tree_consistency(&log.tree(3), &log.tree(3), H, &Failing).unwrap();
    let err = check_tree_consistency(&log.tree(2), &log.tree(1), H, &Failing).unwrap_err();
    assert!(
        matches!(err, TlogError::NotOlder { older: 2, newer: 1 }),
        "{err}"
    );

    for bad_h in [0, 31] {
        assert!(matches!(
            TileHashPlan::new(log.tree(3), bad_h, &[0]),
            Err(TlogError::InvalidHeight(_))
        ));
    }
    let huge = Tree {
        n: u64::MAX,
        hash: [0; 32],
    };
    assert!(matches!(
        RecordCheck::new(huge, H, 5, b"x"),
        Err(TlogError::TreeTooLarge(_))
    ));
    // Trees near the size limit plan without overflow.
    let big = Tree {
        n: MAX_TREE_SIZE,
        hash: [0; 32],
    };
    let plan = RecordCheck::new(big, H, MAX_TREE_SIZE - 1, b"x").unwrap();
    assert!(!plan.tiles().is_empty());

    // Data tiles and malformed tiles carry no hashes.
    let data_tile = tile(8, -1, 0, 3);
    assert!(matches!(
        hash_from_tile(&data_tile, &[0; 96], 0),
        Err(TlogError::InvalidTile(_))
    ));
    assert!(matches!(
        hash_from_tile(&tile(8, 0, 0, 0), &[], 0),
        Err(TlogError::InvalidTile(_))
    ));
    assert!(matches!(
        hash_from_tile(&tile(8, 0, 0, 3), &[0; 95], 0),
        Err(TlogError::TileLength { .. })
    ));
    assert!(matches!(
        hash_from_tile(&tile(8, 0, 0, 3), &[0; 96], stored_hash_index(0, 3)),
        Err(TlogError::IndexNotInTile { .. })
    ));
    let far = tile(8, 0, u64::MAX / 2, 256);
    let unordered = |ix: &[u64]| -> Result<Vec<Hash>> {
        ix.iter()
            .map(|&i| {
                log.hashes
                    .get(i as usize)
                    .copied()
                    .ok_or(TlogError::HashNotStored(i))
            })
            .collect()
    };
    assert!(read_tile_data(&far, unordered).is_err());

    struct Failing;
    impl TileSource for Failing {
        fn read_tiles(&self, _: &[Tile]) -> Result<Vec<Vec<u8>>> {
            panic!("no tiles should be needed")
        }
    }
}
