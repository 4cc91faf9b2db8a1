//! Hand-written text of addresses and small numbers, appended straight to
//! the script: the renderer writes tens of thousands of addresses per sync,
//! and `core::fmt` (a `Formatter` per value, padding logic, a `String` per
//! `format!`) was most of its time.
//!
//! The text is exactly std's `Display` text (proven by the property tests
//! below against `Ipv4Addr`, `Ipv6Addr` and the integer types): dotted
//! decimal for IPv4; for IPv6 RFC 5952 text as std writes it: lowercase hex
//! groups without leading zeros, the longest run of two or more zero groups
//! (the first one on a tie) shortened to `::`, and IPv4-mapped addresses
//! (`::ffff:a.b.c.d`) with a dotted IPv4 tail.
//!
//! Must not: allocate, or write anything but ASCII.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest text of one address: eight groups of four hex digits and seven
/// colons.
const MAX_ADDR_LEN: usize = 39;

/// A stack buffer of ASCII text.
struct Ascii {
    buf: [u8; MAX_ADDR_LEN],
    len: usize,
}

impl Ascii {
    fn new() -> Ascii {
        Ascii {
            buf: [0; MAX_ADDR_LEN],
            len: 0,
        }
    }

    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn bytes(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// Decimal digits of `v`, no leading zeros.
    fn decimal(&mut self, v: u16) {
        let mut digits = [0u8; 5];
        let mut i = digits.len();
        let mut v = v;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.bytes(&digits[i..]);
    }

    /// Lowercase hex digits of `v`, no leading zeros.
    fn hex(&mut self, v: u16) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let nibbles = ((16 - v.leading_zeros()).div_ceil(4)).max(1);
        for k in (0..nibbles).rev() {
            self.byte(HEX[usize::from((v >> (4 * k)) as u8 & 0xf)]);
        }
    }

    fn ipv4(&mut self, a: Ipv4Addr) {
        let [b0, b1, b2, b3] = a.octets();
        self.decimal(b0.into());
        for b in [b1, b2, b3] {
            self.byte(b'.');
            self.decimal(b.into());
        }
    }

    /// Groups separated by colons (nothing for no groups).
    fn groups(&mut self, groups: &[u16]) {
        for (i, g) in groups.iter().enumerate() {
            if i > 0 {
                self.byte(b':');
            }
            self.hex(*g);
        }
    }

    fn ipv6(&mut self, a: Ipv6Addr) {
        if let Some(v4) = a.to_ipv4_mapped() {
            self.bytes(b"::ffff:");
            self.ipv4(v4);
            return;
        }
        let seg = a.segments();
        let (start, len) = longest_zero_run(&seg);
        if len > 1 {
            self.groups(&seg[..start]);
            self.bytes(b"::");
            self.groups(&seg[start + len..]);
        } else {
            self.groups(&seg);
        }
    }

    fn push_to(&self, out: &mut String) {
        // Only ASCII bytes are ever written to `buf`.
        out.push_str(std::str::from_utf8(&self.buf[..self.len]).expect("ASCII text"));
    }
}

/// Start and length of the first longest run of zero groups.
fn longest_zero_run(seg: &[u16; 8]) -> (usize, usize) {
    let (mut best, mut current) = ((0, 0), (0, 0));
    for (i, g) in seg.iter().enumerate() {
        if *g != 0 {
            current = (i + 1, 0);
            continue;
        }
        current.1 += 1;
        if current.1 > best.1 {
            best = current;
        }
    }
    best
}

/// Append `a` as `Ipv4Addr`'s `Display` writes it.
pub fn push_ipv4(out: &mut String, a: Ipv4Addr) {
    let mut t = Ascii::new();
    t.ipv4(a);
    t.push_to(out);
}

/// Append `a` as `Ipv6Addr`'s `Display` writes it.
pub fn push_ipv6(out: &mut String, a: Ipv6Addr) {
    let mut t = Ascii::new();
    t.ipv6(a);
    t.push_to(out);
}

/// Append `a` as `IpAddr`'s `Display` writes it.
pub fn push_ip(out: &mut String, a: &IpAddr) {
    match a {
        IpAddr::V4(a) => push_ipv4(out, *a),
        IpAddr::V6(a) => push_ipv6(out, *a),
    }
}

/// Append `v` in decimal.
pub fn push_u16(out: &mut String, v: u16) {
    let mut t = Ascii::new();
    t.decimal(v);
    t.push_to(out);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn v6_text(a: Ipv6Addr) -> String {
        let mut s = String::from("<");
        push_ipv6(&mut s, a);
        s.split_off(1)
    }

    /// Addresses made of groups that are zero, small, `ffff` or anything,
    /// so that zero runs of every length and position (and ties between
    /// runs) come up often; sometimes an IPv4-mapped (`::ffff:a.b.c.d`) or
    /// an old IPv4-compatible (`::a.b.c.d`) address.
    fn patterned_v6() -> impl Strategy<Value = Ipv6Addr> {
        let group = prop_oneof![
            3 => Just(0u16),
            1 => 1u16..16,
            1 => Just(0xffff),
            1 => any::<u16>(),
        ];
        prop_oneof![
            6 => proptest::array::uniform8(group).prop_map(Ipv6Addr::from),
            1 => any::<u32>().prop_map(|v| Ipv4Addr::from(v).to_ipv6_mapped()),
            1 => any::<u32>().prop_map(|v| Ipv6Addr::from(u128::from(v))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn ipv6_text_is_std_display_for_random_addresses(v in any::<u128>()) {
            let a = Ipv6Addr::from(v);
            prop_assert_eq!(v6_text(a), a.to_string());
        }

        #[test]
        fn ipv6_text_is_std_display_for_zero_run_patterns(a in patterned_v6()) {
            prop_assert_eq!(v6_text(a), a.to_string());
        }

        #[test]
        fn ipv4_text_is_std_display(v in any::<u32>(), small in 0u8..2) {
            // `small` also brings addresses with many zero or one-digit octets.
            let v = if small == 1 { v & 0x0903_0001 } else { v };
            let a = Ipv4Addr::from(v);
            let mut s = String::new();
            push_ipv4(&mut s, a);
            prop_assert_eq!(&s, &a.to_string());
            let mut s = String::new();
            push_ip(&mut s, &IpAddr::V4(a));
            prop_assert_eq!(s, a.to_string());
        }

        #[test]
        fn decimal_text_is_std_display(v in any::<u16>()) {
            let mut s = String::new();
            push_u16(&mut s, v);
            prop_assert_eq!(s, v.to_string());
        }
    }

    #[test]
    fn corner_addresses_are_written_as_std_writes_them() {
        let cases = [
            "::",
            "::1",
            "1::",
            "::ffff:0.0.0.0",
            "::ffff:198.18.0.1",
            "::198.18.0.1",
            "1:0:1:0:1:0:1:0",
            "1:0:0:1:0:0:1:1",
            "0:1:0:0:1:0:0:0",
            "1:0:0:2:0:0:0:3",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fd00:198:18::",
            "fd00:198:18:0:ffff::1",
            "0:0:0:0:0:fffe:1:2",
        ];
        for c in cases {
            let a: Ipv6Addr = c.parse().unwrap();
            assert_eq!(v6_text(a), a.to_string(), "{c}");
        }
        // Spot checks written by hand (std agrees, see above).
        assert_eq!(v6_text("1:0:0:1:0:0:1:1".parse().unwrap()), "1::1:0:0:1:1");
        assert_eq!(
            v6_text("1:0:1:0:1:0:1:0".parse().unwrap()),
            "1:0:1:0:1:0:1:0"
        );
        assert_eq!(
            v6_text("::ffff:198.18.0.1".parse().unwrap()),
            "::ffff:198.18.0.1"
        );
        for v in [0u16, 9, 10, 99, 100, 65535] {
            let mut s = String::new();
            push_u16(&mut s, v);
            assert_eq!(s, v.to_string());
        }
    }
}
