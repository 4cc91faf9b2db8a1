//! Stable, readable, length-capped names for nftables objects, and the
//! stable hash they carry.
//!
//! Names must not depend on hash order, process or Rust version: the hash is
//! FNV-1a 64 over bytes the caller gives, printed as hex.

/// Longest object name we generate (the kernel allows 255; shorter names keep
/// `nft list` readable and batches small).
pub const MAX_NAME: usize = 63;

/// FNV-1a, 64 bit: stable across runs, machines and toolchains.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv::default();
    h.bytes(bytes);
    h.0
}

/// FNV-1a 64 fed piece by piece; as `fmt::Write`, text is hashed as it is
/// formatted, without building it. Same value as `fnv1a64` of the
/// concatenated pieces.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Hex of the first `digits` nibbles of the hash.
    pub fn hex(self, digits: usize) -> String {
        let mut full = format!("{:016x}", self.0);
        full.truncate(digits.min(16));
        full
    }
}

impl std::fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

/// Hex of the first `digits` nibbles of `fnv1a64(bytes)`.
pub fn short_hash(bytes: &[u8], digits: usize) -> String {
    let mut h = Fnv::default();
    h.bytes(bytes);
    h.hex(digits)
}

/// Keep `[a-z0-9_-]`, map everything else (dots, slashes, upper case) to `_`
/// or its lower-case form, so the result is a valid nft identifier part.
fn sanitize_char(c: char) -> char {
    match c {
        'a'..='z' | '0'..='9' | '-' | '_' => c,
        'A'..='Z' => c.to_ascii_lowercase(),
        _ => '_',
    }
}

/// `prefix-<readable>-<hash>`: the readable part is `readable` with every
/// character through `sanitize_char`, cut so the whole name fits in
/// `MAX_NAME`; the 10-digit hash is over `identity`
/// (the full, uncut identity of the object), so two objects never share a
/// name because of the cut.
pub fn object_name(prefix: &str, readable: &str, identity: &str) -> String {
    object_name_fmt(
        prefix,
        format_args!("{readable}"),
        format_args!("{identity}"),
    )
}

/// [`object_name`] of formatted parts, formatted straight into the name and
/// the hash (no intermediate strings).
pub fn object_name_fmt(
    prefix: &str,
    readable: std::fmt::Arguments,
    identity: std::fmt::Arguments,
) -> String {
    use std::fmt::Write as _;
    const HASH_DIGITS: usize = 10;
    let mut h = Fnv::default();
    // Hashing cannot fail.
    let _ = h.write_fmt(identity);
    let mut out = String::with_capacity(MAX_NAME);
    out.push_str(prefix);
    out.push('-');
    let mut body = Sanitized {
        out: &mut out,
        room: MAX_NAME.saturating_sub(prefix.len() + HASH_DIGITS + 2),
    };
    // Writing into a String cannot fail.
    let _ = body.write_fmt(readable);
    if out.len() > prefix.len() + 1 {
        out.push('-');
    }
    out.push_str(&h.hex(HASH_DIGITS));
    out
}

/// Appends what is written, through `sanitize_char`, at most `room` bytes
/// (sanitized text is ASCII: one byte per character).
struct Sanitized<'a> {
    out: &'a mut String,
    room: usize,
}

impl std::fmt::Write for Sanitized<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for c in s.chars() {
            if self.room == 0 {
                break;
            }
            self.out.push(sanitize_char(c));
            self.room -= 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_the_published_fnv1a64() {
        // Reference values of FNV-1a 64 (empty input and "a").
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn hashing_in_pieces_is_hashing_the_whole() {
        use std::fmt::Write as _;
        let mut h = Fnv::default();
        let set = "src4-x";
        write!(h, "in {} @{set}", 6).unwrap();
        h.bytes(b" accept");
        assert_eq!(h.0, fnv1a64(b"in 6 @src4-x accept"));
        assert_eq!(h.hex(10), short_hash(b"in 6 @src4-x accept", 10));
        assert_eq!(h.hex(99).len(), 16);
    }

    #[test]
    fn names_are_capped_valid_and_distinct_after_the_cut() {
        let long = "x".repeat(200);
        let a = object_name("in", &long, &format!("{long}/a"));
        let b = object_name("in", &long, &format!("{long}/b"));
        assert!(a.len() <= MAX_NAME && b.len() <= MAX_NAME);
        assert_ne!(a, b);
        assert_eq!(
            object_name("in", "ns.x/Pod", "id"),
            format!("in-ns_x_pod-{}", short_hash(b"id", 10))
        );
    }
}
