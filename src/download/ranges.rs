//! Byte ranges: which parts of a download are on disk, how the rest is split
//! into pieces, and the `Content-Range` header that must confirm each piece.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Half-open byte ranges `[start, end)`, sorted, merged, never empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RangeSet(Vec<(u64, u64)>);

impl RangeSet {
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut start, mut end) = (start, end);
        let mut merged = Vec::with_capacity(self.0.len() + 1);
        let mut placed = false;
        for &(s, e) in &self.0 {
            if e < start {
                merged.push((s, e));
            } else if s > end {
                if !placed {
                    merged.push((start, end));
                    placed = true;
                }
                merged.push((s, e));
            } else {
                // Overlapping or touching: absorb into the new range.
                start = start.min(s);
                end = end.max(e);
            }
        }
        if !placed {
            merged.push((start, end));
        }
        self.0 = merged;
    }

    /// Bytes covered.
    pub fn covered(&self) -> u64 {
        self.0.iter().map(|(s, e)| e - s).sum()
    }

    /// The gaps in `[0, total)`.
    pub fn missing(&self, total: u64) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut at = 0;
        for &(s, e) in &self.0 {
            if s >= total {
                break;
            }
            if s > at {
                gaps.push((at, s));
            }
            at = at.max(e);
        }
        if at < total {
            gaps.push((at, total));
        }
        gaps
    }

    /// The gaps in `[start, end)`.
    pub fn missing_between(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        self.missing(end)
            .into_iter()
            .filter(|&(_, e)| e > start)
            .map(|(s, e)| (s.max(start), e))
            .collect()
    }

    pub fn is_complete(&self, total: u64) -> bool {
        self.missing(total).is_empty()
    }

    /// Every range lies inside `[0, total)` (a state file that says otherwise
    /// belongs to another file, or was tampered with).
    pub fn fits(&self, total: u64) -> bool {
        self.0.iter().all(|&(s, e)| s < e && e <= total)
            && self.0.windows(2).all(|w| w[0].1 < w[1].0)
    }
}

/// How big the pieces of `remaining` bytes should be for `connections`
/// connections: several pieces per connection, so a slow connection holds back
/// at most a small piece at the end while the others keep working.
pub fn piece_size(remaining: u64, connections: u32) -> u64 {
    const MIN_PIECE: u64 = 256 * 1024;
    const MAX_PIECE: u64 = 16 * 1024 * 1024;
    const PIECES_PER_CONNECTION: u64 = 8;
    if connections <= 1 {
        return remaining.max(1);
    }
    (remaining / (u64::from(connections) * PIECES_PER_CONNECTION)).clamp(MIN_PIECE, MAX_PIECE)
}

/// Splits `gaps` into pieces of at most `size` bytes, in file order.
pub fn pieces(gaps: &[(u64, u64)], size: u64) -> VecDeque<(u64, u64)> {
    let size = size.max(1);
    let mut out = VecDeque::new();
    for &(mut start, end) in gaps {
        while start < end {
            let stop = end.min(start.saturating_add(size));
            out.push_back((start, stop));
            start = stop;
        }
    }
    out
}

/// `Content-Range: bytes <first>-<last>/<total>` as `(first, last + 1, total)`.
/// An unknown total (`*`) or anything malformed is `None`.
pub fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (first, last, total) = (number(first)?, number(last)?, number(total)?);
    if first > last || last >= total {
        return None;
    }
    Some((first, last + 1, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ranges: &[(u64, u64)]) -> RangeSet {
        let mut s = RangeSet::default();
        for &(a, b) in ranges {
            s.insert(a, b);
        }
        s
    }

    #[test]
    fn inserts_merge_overlapping_and_touching_ranges() {
        assert_eq!(set(&[(0, 10), (10, 20)]).0, vec![(0, 20)]);
        assert_eq!(set(&[(30, 40), (0, 10)]).0, vec![(0, 10), (30, 40)]);
        assert_eq!(set(&[(0, 10), (30, 40), (5, 35)]).0, vec![(0, 40)]);
        assert_eq!(set(&[(5, 5)]).0, vec![]);
        assert_eq!(set(&[(0, 10), (20, 30), (12, 15)]).covered(), 23);
    }

    #[test]
    fn missing_lists_the_gaps() {
        let s = set(&[(10, 20), (30, 40)]);
        assert_eq!(s.missing(50), vec![(0, 10), (20, 30), (40, 50)]);
        assert_eq!(s.missing(35), vec![(0, 10), (20, 30)]);
        assert!(set(&[(0, 50)]).is_complete(50));
        assert_eq!(RangeSet::default().missing(7), vec![(0, 7)]);
        assert_eq!(s.missing_between(15, 35), vec![(20, 30)]);
        assert_eq!(s.missing_between(5, 12), vec![(5, 10)]);
        assert_eq!(s.missing_between(12, 18), vec![]);
    }

    #[test]
    fn fits_rejects_ranges_outside_the_file() {
        assert!(set(&[(0, 10)]).fits(10));
        assert!(!set(&[(0, 11)]).fits(10));
        let forged: RangeSet = serde_json::from_str("[[5,3]]").unwrap();
        assert!(!forged.fits(10));
        let overlapping: RangeSet = serde_json::from_str("[[0,5],[4,8]]").unwrap();
        assert!(!overlapping.fits(10));
    }

    #[test]
    fn pieces_split_gaps_in_order() {
        let p = pieces(&[(0, 10), (20, 25)], 4);
        assert_eq!(
            p.into_iter().collect::<Vec<_>>(),
            vec![(0, 4), (4, 8), (8, 10), (20, 24), (24, 25)]
        );
    }

    #[test]
    fn piece_size_gives_several_pieces_per_connection() {
        let forty_mb = 40 << 20;
        let size = piece_size(forty_mb, 4);
        assert_eq!(size, forty_mb / 32);
        assert_eq!(piece_size(1 << 20, 4), 256 * 1024);
        assert_eq!(piece_size(10 << 30, 4), 16 << 20);
        assert_eq!(piece_size(12345, 1), 12345);
    }

    #[test]
    fn content_range_forms() {
        assert_eq!(parse_content_range("bytes 0-99/1000"), Some((0, 100, 1000)));
        assert_eq!(
            parse_content_range("bytes 900-999/1000"),
            Some((900, 1000, 1000))
        );
        assert_eq!(parse_content_range("bytes 0-99/*"), None);
        assert_eq!(parse_content_range("bytes 0-1000/1000"), None);
        assert_eq!(parse_content_range("bytes 10-5/100"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes -5/100"), None);
        assert_eq!(parse_content_range("bytes +1-5/100"), None);
    }
}
