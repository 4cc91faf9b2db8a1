//! Each `Match` and `Verdict` of the model as the rustables expressions nft
//! itself generates for the rendered text (checked with
//! `nft --debug=netlink`), so the kernel holds the same rule either way.
//!
//! Must not: build messages or batches, or know about sockets.

use std::net::IpAddr;

use rustables::expr::{
    Bitwise, Cmp, CmpOp, Conntrack, ConntrackKey, Counter, Immediate, Lookup, Meta, MetaType,
    Payload, RawExpression, Register, VerdictKind,
};

use crate::model::{AddrField, Family, Match, Verdict};

/// Where the expressions of a rule go: straight into the rustables rule
/// (no intermediate list to move them through), or a `Vec` in tests.
pub trait Exprs {
    fn add(&mut self, e: impl Into<RawExpression>);
}

impl Exprs for Vec<RawExpression> {
    fn add(&mut self, e: impl Into<RawExpression>) {
        self.push(e.into());
    }
}

impl Exprs for rustables::Rule {
    fn add(&mut self, e: impl Into<RawExpression>) {
        self.add_expr(e);
    }
}

/// `NFT_PAYLOAD_NETWORK_HEADER`.
const NETWORK_HEADER: u32 = 1;
/// `NFT_PAYLOAD_TRANSPORT_HEADER`.
const TRANSPORT_HEADER: u32 = 2;
/// `NFPROTO_IPV4` / `NFPROTO_IPV6`, as `meta nfproto` loads them (one byte).
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

/// What went wrong building one expression (a name rustables refuses).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

/// `[ payload load LENb @ BASE + OFFSET => reg 1 ]`
fn load(base: u32, offset: u32, len: u32) -> Payload {
    Payload::default()
        .with_base(base)
        .with_offset(offset)
        .with_len(len)
        .with_dreg(Register::Reg1)
}

/// Which protocol dependencies a rule already has: nft adds `meta nfproto`
/// before the FIRST `ip` / `ip6` payload of a rule only.
#[derive(Debug, Default)]
pub struct Deps {
    nfproto: Option<Family>,
}

/// `meta nfproto ipv4|ipv6` (the dependency nft adds before the first
/// `ip`/`ip6` header field of a rule in an inet table), then the address
/// field loaded into reg 1.
fn addr_field(out: &mut impl Exprs, deps: &mut Deps, field: AddrField, family: Family) {
    let (proto, offset, len) = match (family, field) {
        (Family::V4, AddrField::Saddr) => (NFPROTO_IPV4, 12, 4), // ip saddr
        (Family::V4, AddrField::Daddr) => (NFPROTO_IPV4, 16, 4), // ip daddr
        (Family::V6, AddrField::Saddr) => (NFPROTO_IPV6, 8, 16), // ip6 saddr
        (Family::V6, AddrField::Daddr) => (NFPROTO_IPV6, 24, 16), // ip6 daddr
    };
    if deps.nfproto != Some(family) {
        // meta nfproto ipv4 / ipv6
        out.add(Meta::new(MetaType::NfProto));
        out.add(Cmp::new(CmpOp::Eq, [proto]));
        deps.nfproto = Some(family);
    }
    // ip saddr / ip daddr / ip6 saddr / ip6 daddr (loaded into reg 1)
    out.add(load(NETWORK_HEADER, offset, len));
}

/// An address in network byte order (4 or 16 bytes).
pub fn addr_bytes(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// A lookup of the address in reg 1 in the named set or map: what
/// `Lookup::new` makes of a `Set` that has only a name (no set id: the
/// kernel finds the set by name, as it does for nft's own rules), built
/// without the intermediate `Set`.
fn lookup(name: &str) -> Lookup {
    Lookup::default().with_set(name).with_sreg(Register::Reg1)
}

/// `lo == hi`: `<field> == lo`; else `<field> >= lo <field> <= hi`, each
/// comparison with its own load, as nft emits two relational statements.
fn range(out: &mut impl Exprs, payload: Payload, lo: Vec<u8>, hi: Vec<u8>) {
    out.add(payload);
    if lo == hi {
        out.add(Cmp::new(CmpOp::Eq, lo));
    } else {
        out.add(Cmp::new(CmpOp::Gte, lo));
        out.add(payload);
        out.add(Cmp::new(CmpOp::Lte, hi));
    }
}

/// Append the expressions of one match.
pub fn push_match(out: &mut impl Exprs, deps: &mut Deps, m: &Match) -> Result<(), ExprError> {
    match m {
        Match::CtState(states) => {
            // ct state established,related:
            // [ ct load state => reg 1 ] [ bitwise reg 1 = (reg 1 & MASK) ^ 0 ]
            // [ cmp neq reg 1 0 ]  (the state bits are host-endian u32)
            out.add(Conntrack::new(ConntrackKey::State));
            let mask = states.0.to_ne_bytes();
            let bw = Bitwise::new(mask.to_vec(), vec![0u8; 4])
                .map_err(|e| ExprError(format!("ct state mask: {e:?}")))?;
            out.add(bw);
            out.add(Cmp::new(CmpOp::Neq, vec![0u8; 4]));
        }
        Match::AddrInSet { field, family, set } => {
            // ip saddr @set: [ lookup reg 1 set SET ]
            addr_field(out, deps, *field, *family);
            out.add(lookup(set));
        }
        Match::AddrEq { field, addr } => {
            // ip saddr 198.18.0.1: [ cmp eq reg 1 ADDR ]
            addr_field(out, deps, *field, Family::of(addr));
            out.add(Cmp::new(CmpOp::Eq, addr_bytes(addr)));
        }
        Match::L4Proto(p) => {
            // meta l4proto tcp: [ meta load l4proto => reg 1 ] [ cmp eq reg 1 6 ]
            out.add(Meta::new(MetaType::L4Proto));
            out.add(Cmp::new(CmpOp::Eq, [p.number()]));
        }
        Match::Dport { lo, hi } => {
            // th dport 80 / th dport >= lo th dport <= hi:
            // [ payload load 2b @ transport header + 2 => reg 1 ] [ cmp ... ]
            let dport = load(TRANSPORT_HEADER, 2, 2);
            range(
                out,
                dport,
                lo.to_be_bytes().to_vec(),
                hi.to_be_bytes().to_vec(),
            );
        }
        Match::Icmpv6Type { lo, hi } => {
            // icmpv6 type >= lo icmpv6 type <= hi:
            // [ payload load 1b @ transport header + 0 => reg 1 ] [ cmp ... ]
            let ty = load(TRANSPORT_HEADER, 0, 1);
            range(out, ty, vec![*lo], vec![*hi]);
        }
    }
    Ok(())
}

/// Append the statements that end a rule: `counter` when asked, then the
/// verdict.
pub fn push_verdict(
    out: &mut impl Exprs,
    deps: &mut Deps,
    counter: bool,
    v: &Verdict,
) -> Result<(), ExprError> {
    if counter {
        // counter: [ counter pkts 0 bytes 0 ]
        out.add(Counter::default());
    }
    let kind = match v {
        Verdict::Accept => VerdictKind::Accept, // accept: [ immediate reg 0 accept ]
        Verdict::Drop => VerdictKind::Drop,     // drop: [ immediate reg 0 drop ]
        Verdict::Return => VerdictKind::Return, // return: [ immediate reg 0 return ]
        Verdict::Jump(chain) => VerdictKind::Jump {
            // jump CHAIN: [ immediate reg 0 jump -> CHAIN ]
            chain: chain.clone(),
        },
        Verdict::Vmap { field, family, map } => {
            // ip saddr vmap @map: [ lookup reg 1 set MAP dreg 0 ]
            addr_field(out, deps, *field, *family);
            out.add(lookup(map).with_dreg(Register::Verdict));
            return Ok(());
        }
    };
    out.add(Immediate::new_verdict(kind));
    Ok(())
}

/// Rule user data holding `comment` exactly as nft stores it: the TLV
/// `NFTNL_UDATA_RULE_COMMENT` (type 0), length including the NUL, the text,
/// NUL. The text is the renderer's (`render::comment_text`: quotes and
/// control characters replaced, at most 128 bytes), so `nft list` shows the
/// same comment either way. Empty comment: no user data.
pub fn comment_userdata(comment: &str) -> Option<Vec<u8>> {
    if comment.is_empty() {
        return None;
    }
    // Type and length first (the length patched below), then the text
    // written in place, then the NUL: one allocation.
    let mut v = String::with_capacity(comment.len().min(crate::render::MAX_COMMENT_BYTES) + 3);
    v.push('\0'); // NFTNL_UDATA_RULE_COMMENT
    v.push('\0');
    crate::render::push_comment_text(&mut v, comment);
    v.push('\0');
    let mut v = v.into_bytes();
    v[1] = (v.len() - 2) as u8; // text and NUL: at most 129
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comment_is_stored_as_the_tlv_nft_writes() {
        // `nft --debug=netlink` shows `userdata = { \x00\x07ns/pol\x00 }`.
        assert_eq!(
            comment_userdata("ns/pol").unwrap(),
            b"\x00\x07ns/pol\x00".to_vec()
        );
        assert_eq!(comment_userdata(""), None);
    }

    #[test]
    fn a_port_range_is_two_loads_and_two_comparisons() {
        let mut one = Vec::new();
        push_match(
            &mut one,
            &mut Deps::default(),
            &Match::Dport { lo: 80, hi: 80 },
        )
        .unwrap();
        assert_eq!(one.len(), 2);
        let mut two = Vec::new();
        push_match(
            &mut two,
            &mut Deps::default(),
            &Match::Dport { lo: 80, hi: 90 },
        )
        .unwrap();
        assert_eq!(two.len(), 4);
        assert_eq!(two[0], two[2], "the same load twice");
        assert_ne!(two[1], two[3]);
    }

    #[test]
    fn an_ipv6_address_match_checks_the_family_first() {
        let mut out = Vec::new();
        let addr: IpAddr = "fd00:198:18::1".parse().unwrap();
        let mut deps = Deps::default();
        push_match(
            &mut out,
            &mut deps,
            &Match::AddrEq {
                field: AddrField::Daddr,
                addr,
            },
        )
        .unwrap();
        assert_eq!(out.len(), 4);
        assert_eq!(out[1], Cmp::new(CmpOp::Eq, [NFPROTO_IPV6]).into());
        assert_eq!(out[2], load(NETWORK_HEADER, 24, 16).into());
        assert_eq!(out[3], Cmp::new(CmpOp::Eq, addr_bytes(&addr)).into());
        // A second ip6 field in the same rule gets no second dependency.
        push_verdict(
            &mut out,
            &mut deps,
            false,
            &Verdict::Vmap {
                field: AddrField::Saddr,
                family: Family::V6,
                map: "m".into(),
            },
        )
        .unwrap();
        assert_eq!(out.len(), 6, "payload and lookup only");
    }

    #[test]
    fn a_long_comment_is_stored_cut_and_cleaned_like_the_rendered_one() {
        let long = format!("a\"b\n{}", "x".repeat(300));
        let ud = comment_userdata(&long).unwrap();
        assert_eq!(ud[1] as usize, 129, "128 bytes and the NUL");
        assert_eq!(&ud[2..6], b"a'b ");
    }
}
