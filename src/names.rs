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
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Hex of the first `digits` nibbles of `fnv1a64(bytes)`.
pub fn short_hash(bytes: &[u8], digits: usize) -> String {
    let full = format!("{:016x}", fnv1a64(bytes));
    full[..digits.min(16)].to_string()
}

/// Keep `[a-z0-9_-]`, map everything else (dots, slashes, upper case) to `_`
/// or its lower-case form, so the result is a valid nft identifier part.
pub fn sanitize(part: &str) -> String {
    part.chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '_' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .collect()
}

/// `prefix-<readable>-<hash>`: the readable part is `sanitize(readable)` cut so
/// the whole name fits in `MAX_NAME`; the 10-digit hash is over `identity`
/// (the full, uncut identity of the object), so two objects never share a
/// name because of the cut.
pub fn object_name(prefix: &str, readable: &str, identity: &str) -> String {
    let hash = short_hash(identity.as_bytes(), 10);
    let room = MAX_NAME.saturating_sub(prefix.len() + hash.len() + 2);
    let mut body = sanitize(readable);
    body.truncate(room);
    if body.is_empty() {
        format!("{prefix}-{hash}")
    } else {
        format!("{prefix}-{body}-{hash}")
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
