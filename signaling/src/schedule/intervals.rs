//! Sets of instants as sorted, disjoint half-open intervals.

use super::civil::Instant;

/// Sorts and merges overlapping or touching intervals.
pub fn union(mut intervals: Vec<(Instant, Instant)>) -> Vec<(Instant, Instant)> {
    intervals.retain(|(s, e)| s < e);
    intervals.sort_unstable();
    let mut out: Vec<(Instant, Instant)> = Vec::with_capacity(intervals.len());
    for (s, e) in intervals {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The parts of `[from, to)` not in `covered` (which must be a union).
pub fn gaps(covered: &[(Instant, Instant)], from: Instant, to: Instant) -> Vec<(Instant, Instant)> {
    let mut out = Vec::new();
    let mut cursor = from;
    for &(s, e) in covered {
        if e <= cursor {
            continue;
        }
        if s >= to {
            break;
        }
        if s > cursor {
            out.push((cursor, s.min(to)));
        }
        cursor = cursor.max(e);
    }
    if cursor < to {
        out.push((cursor, to));
    }
    out
}

/// `covered` clipped to `[from, to)`.
pub fn clip(covered: &[(Instant, Instant)], from: Instant, to: Instant) -> Vec<(Instant, Instant)> {
    covered.iter().map(|&(s, e)| (s.max(from), e.min(to))).filter(|(s, e)| s < e).collect()
}

/// Subtracts minute windows from minute windows (both lists of `[start, end)`).
pub fn minus_minutes(windows: &[(u16, u16)], removed: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for &(s, e) in windows {
        let mut pieces = vec![(s, e)];
        for &(rs, re) in removed {
            pieces = pieces
                .into_iter()
                .flat_map(|(ps, pe)| {
                    let mut keep = Vec::new();
                    if rs > ps {
                        keep.push((ps, pe.min(rs)));
                    }
                    if re < pe {
                        keep.push((ps.max(re), pe));
                    }
                    keep.into_iter().filter(|(a, b)| a < b)
                })
                .collect();
        }
        out.extend(pieces);
    }
    out
}

/// True when `[start, end)` lies inside one interval of a union.
pub fn contains(covered: &[(Instant, Instant)], start: Instant, end: Instant) -> bool {
    covered.iter().any(|&(s, e)| s <= start && end <= e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_gaps_clip() {
        let u = union(vec![(5, 7), (1, 3), (2, 4), (7, 8), (10, 10)]);
        assert_eq!(u, vec![(1, 4), (5, 8)]);
        assert_eq!(gaps(&u, 0, 12), vec![(0, 1), (4, 5), (8, 12)]);
        assert_eq!(gaps(&u, 2, 6), vec![(4, 5)]);
        assert_eq!(clip(&u, 2, 6), vec![(2, 4), (5, 6)]);
        assert!(contains(&u, 5, 8));
        assert!(!contains(&u, 3, 6));
    }

    #[test]
    fn minutes_subtraction() {
        assert_eq!(minus_minutes(&[(0, 1440)], &[(600, 720)]), vec![(0, 600), (720, 1440)]);
        assert_eq!(minus_minutes(&[(600, 700)], &[(0, 1440)]), vec![]);
        assert_eq!(minus_minutes(&[(600, 700)], &[(650, 800), (0, 610)]), vec![(610, 650)]);
    }
}
