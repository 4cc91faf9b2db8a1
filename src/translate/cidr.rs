//! CIDRs and address intervals: parsing `ipBlock.cidr` / `except` the way
//! the API server accepts them, and the interval arithmetic (sort, merge,
//! subtract) that turns `cidr` minus `except` into non-overlapping ranges.
//!
//! Addresses are handled as `u128` numbers (IPv4 in the low 32 bits) tagged
//! with their family. Must not: know about policies or pods.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{Family, Interval};

/// An inclusive range of addresses of one family, as numbers.
pub type Range = (u128, u128);

/// A parsed CIDR: family, prefix length and the range it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub family: Family,
    pub prefix: u8,
    pub range: Range,
}

impl Cidr {
    /// Whether `other` is a strict subset of `self` (same family, longer
    /// prefix, inside), as the API server requires of `except` entries.
    pub fn strictly_contains(&self, other: &Cidr) -> bool {
        self.family == other.family
            && other.prefix > self.prefix
            && self.range.0 <= other.range.0
            && other.range.1 <= self.range.1
    }
}

/// Bits of an address of `family`.
pub fn bits(family: Family) -> u8 {
    match family {
        Family::V4 => 32,
        Family::V6 => 128,
    }
}

/// The address as a number.
pub fn to_num(addr: &IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(*a)),
        IpAddr::V6(a) => u128::from(*a),
    }
}

/// The number as an address of `family` (IPv4 keeps the low 32 bits).
pub fn from_num(family: Family, n: u128) -> IpAddr {
    match family {
        // Truncation is the point: IPv4 numbers never exceed 32 bits here.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(n as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// Parse `a.b.c.d/n` or `x::y/n` (host bits may be set, as Go's
/// `net.ParseCIDR` allows). The error says what is wrong.
pub fn parse(s: &str) -> Result<Cidr, String> {
    let (addr, prefix) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not a CIDR (address/prefix)"))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{s:?}: {addr:?} is not an IP address"))?;
    let family = Family::of(&addr);
    let max = bits(family);
    let prefix: u8 = match prefix.parse() {
        Ok(p) if p <= max && prefix.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => return Err(format!("{s:?}: prefix length must be 0..={max}")),
    };
    let host_bits = u32::from(max - prefix);
    let host_mask: u128 = if host_bits == 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    let start = to_num(&addr) & !host_mask;
    Ok(Cidr {
        family,
        prefix,
        range: (start, start | host_mask),
    })
}

/// Sort and merge ranges: overlapping or adjacent ranges become one.
pub fn merge(mut v: Vec<Range>) -> Vec<Range> {
    if !v.is_sorted() {
        v.sort_unstable();
    }
    // In place: `kept` ranges are final, the rest is still to merge.
    let mut kept: usize = 0;
    for i in 0..v.len() {
        let (s, e) = v[i];
        match kept.checked_sub(1).map(|k| &mut v[k]) {
            Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => {
                v[kept] = (s, e);
                kept += 1;
            }
        }
    }
    v.truncate(kept);
    v
}

/// `range` minus every hole (holes need not be sorted or merged).
pub fn subtract(range: Range, holes: Vec<Range>) -> Vec<Range> {
    let mut out = Vec::new();
    let mut next = Some(range.0);
    for (hs, he) in merge(holes) {
        let Some(cur) = next else { break };
        if he < cur || hs > range.1 {
            continue;
        }
        if hs > cur {
            out.push((cur, hs - 1));
        }
        next = he.checked_add(1);
    }
    if let Some(cur) = next {
        if cur <= range.1 {
            out.push((cur, range.1));
        }
    }
    out
}

/// Whether `n` is inside one of `merged` (sorted, merged ranges).
pub fn contains(merged: &[Range], n: u128) -> bool {
    let i = merged.partition_point(|r| r.1 < n);
    merged.get(i).is_some_and(|r| r.0 <= n)
}

/// Model intervals from merged ranges of `family`.
pub fn to_intervals(family: Family, merged: &[Range]) -> Vec<Interval> {
    merged
        .iter()
        .map(|&(s, e)| Interval {
            start: from_num(family, s),
            end: from_num(family, e),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> u128 {
        to_num(&s.parse().unwrap())
    }

    #[test]
    fn parses_both_families_and_masks_host_bits() {
        let c = parse("198.18.1.7/24").unwrap();
        assert_eq!(c.family, Family::V4);
        assert_eq!(c.range, (ip("198.18.1.0"), ip("198.18.1.255")));
        let c = parse("fd00:198:18::/48").unwrap();
        assert_eq!(c.family, Family::V6);
        assert_eq!(
            c.range,
            (
                ip("fd00:198:18::"),
                ip("fd00:198:18:ffff:ffff:ffff:ffff:ffff")
            )
        );
        assert_eq!(parse("0.0.0.0/0").unwrap().range, (0, u128::from(u32::MAX)));
        assert_eq!(parse("::/0").unwrap().range, (0, u128::MAX));
        for bad in [
            "198.18.0.0",
            "198.18.0.0/33",
            "198.18.0/24",
            "x/8",
            "::/129",
            "1.2.3.4/+8",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn subtract_and_merge_give_sorted_disjoint_ranges() {
        assert_eq!(
            subtract((0, 100), vec![(50, 60), (0, 9), (55, 70), (100, 100)]),
            vec![(10, 49), (71, 99)]
        );
        assert_eq!(subtract((0, u128::MAX), vec![(5, u128::MAX)]), vec![(0, 4)]);
        assert_eq!(subtract((3, 4), vec![(0, 10)]), vec![]);
        assert_eq!(
            merge(vec![(5, 6), (0, 2), (3, 4), (9, 9)]),
            vec![(0, 6), (9, 9)]
        );
        assert!(contains(&[(0, 2), (9, 9)], 9));
        assert!(!contains(&[(0, 2), (9, 9)], 3));
    }
}
