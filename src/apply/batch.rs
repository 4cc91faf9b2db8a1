//! Pure: a `RuleSet` as the bytes of ONE nftables netlink batch, plus what
//! each message of it creates (so a kernel error can name its object).
//!
//! The batch: BEGIN; add table; delete table; add table (an atomic replace:
//! add is idempotent); every chain (verdict map elements jump to them, so
//! they come first, as in nft's own batches); every verdict map and set
//! with its elements; every rule; END. Rustables encodes tables, chains and rules
//! (`Batch::finalize()` bytes, framing stripped); `nfnl` encodes sets, maps,
//! elements and the framing. Every message gets its own sequence number
//! (`FIRST_SEQ + index into objects`); only the last one before END asks for
//! an acknowledgement, errors are reported by the kernel anyway.
//!
//! Must not: open sockets, read clocks, log, or depend on hash order.

use std::fmt;
use std::net::IpAddr;

use rustables::{Chain as NftChain, MsgType, ProtocolFamily, Rule as NftRule, Table};

use super::expr;
use super::nfnl::{self, Elem, Key, SetSpec, Writer, NLM_F_ACK, NLM_F_REQUEST};
use crate::model::{AddrSet, Chain, ChainPolicy, Family, Hook, Interval, RuleSet, VerdictMap};

/// Sequence number of the BATCH_BEGIN message.
pub const FIRST_SEQ: u32 = 1;

/// Longest table, chain or set name the kernel takes (`NFT_NAME_MAXLEN`
/// 256, NUL included).
const MAX_NAME_BYTES: usize = 255;

/// What one message of the batch does, to name it in an error. Names and
/// comments are borrowed from the encoded `RuleSet` (no copy per message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object<'a> {
    /// BATCH_BEGIN; an error on it is an error of the whole commit.
    Commit,
    Table(&'a str),
    TableDelete(&'a str),
    Map(&'a str),
    Set(&'a str),
    /// One NEWSETELEM message: `part` (0-based) of the set's elements.
    Elements {
        set: &'a str,
        part: usize,
    },
    Chain(&'a str),
    /// Rule number `index` (0-based) of `chain`.
    Rule {
        chain: &'a str,
        index: usize,
        comment: &'a str,
    },
    BatchEnd,
}

impl fmt::Display for Object<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Commit => write!(f, "the transaction (commit)"),
            Object::Table(t) => write!(f, "table inet {t}"),
            Object::TableDelete(t) => write!(f, "deletion of table inet {t}"),
            Object::Map(m) => write!(f, "map {m}"),
            Object::Set(s) => write!(f, "set {s}"),
            Object::Elements { set, part } => write!(f, "elements of set {set} (message {part})"),
            Object::Chain(c) => write!(f, "chain {c}"),
            Object::Rule {
                chain,
                index,
                comment,
            } => {
                write!(f, "rule {index} in chain {chain}")?;
                if !comment.is_empty() {
                    write!(f, " (comment {comment:?})")?;
                }
                Ok(())
            }
            Object::BatchEnd => write!(f, "the end of the batch"),
        }
    }
}

/// The batch bytes and what each message does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded<'a> {
    pub bytes: Vec<u8>,
    /// `objects[i]` is the message with sequence number `FIRST_SEQ + i`.
    pub objects: Vec<Object<'a>>,
}

impl<'a> Encoded<'a> {
    /// What the message with sequence number `seq` does.
    pub fn object(&self, seq: u32) -> Option<&Object<'a>> {
        let i = seq.checked_sub(FIRST_SEQ)? as usize;
        self.objects.get(i)
    }

    /// Sequence number of the last message (BATCH_END).
    pub fn last_seq(&self) -> u32 {
        FIRST_SEQ + self.objects.len() as u32 - 1
    }
}

/// The ruleset cannot be expressed as netlink messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {reason}")]
pub struct EncodeError {
    /// `set peers-x`, `rule 3 in chain in-abc (comment "ns/pol")`, ...
    pub object: String,
    pub reason: String,
}

fn invalid(object: impl fmt::Display, reason: impl Into<String>) -> EncodeError {
    EncodeError {
        object: object.to_string(),
        reason: reason.into(),
    }
}

fn check_name(what: &str, name: &str) -> Result<(), EncodeError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES || name.contains('\0') {
        return Err(invalid(
            format!("{what} {name:?}"),
            format!("a name must be 1 to {MAX_NAME_BYTES} bytes without NUL"),
        ));
    }
    Ok(())
}

/// The batch under construction: bytes and the object of each message.
struct Stream<'a> {
    w: Writer,
    objects: Vec<Object<'a>>,
}

impl<'a> Stream<'a> {
    /// A batch with room for `bytes` before its buffer grows.
    fn new(bytes: usize) -> Stream<'a> {
        let mut s = Stream {
            w: Writer::with_capacity(bytes),
            objects: Vec::new(),
        };
        nfnl::batch_begin(&mut s.w, FIRST_SEQ);
        s.objects.push(Object::Commit);
        s
    }

    fn next_seq(&self) -> u32 {
        FIRST_SEQ + self.objects.len() as u32
    }

    /// Take the messages of a finalized rustables batch (without its BEGIN
    /// and END), renumbered, one per object in `objects`: copied in one
    /// piece, then each header patched in place.
    fn push_rustables(&mut self, finalized: &[u8], objects: impl IntoIterator<Item = Object<'a>>) {
        // BATCH_BEGIN and BATCH_END carry no attributes.
        let (begin, end) = (nfnl::BATCH_MSG_LEN, finalized.len() - nfnl::BATCH_MSG_LEN);
        let mut at = self.w.buf.len();
        self.w.buf.extend_from_slice(&finalized[begin..end]);
        for o in objects {
            let (len, flags) = nfnl::header_len_flags(&self.w.buf[at..])
                .expect("rustables wrote one message per object");
            let seq = self.next_seq();
            nfnl::patch_header(&mut self.w.buf, at, seq, flags & !NLM_F_ACK);
            self.objects.push(o);
            self.w.last = at;
            at += len;
        }
        assert_eq!(
            at,
            self.w.buf.len(),
            "rustables wrote one message per object"
        );
    }

    /// Ask for an ACK on the last message, close the batch.
    fn finish(mut self) -> Encoded<'a> {
        let last = self.w.last;
        let (_, flags) = nfnl::header_len_flags(&self.w.buf[last..]).expect("a message");
        let seq = self.next_seq() - 1;
        let flags = flags | NLM_F_ACK | NLM_F_REQUEST;
        nfnl::patch_header(&mut self.w.buf, last, seq, flags);
        let seq = self.next_seq();
        nfnl::batch_end(&mut self.w, seq);
        self.objects.push(Object::BatchEnd);
        Encoded {
            bytes: self.w.buf,
            objects: self.objects,
        }
    }
}

fn table(name: &str) -> Table {
    Table::new(ProtocolFamily::Inet).with_name(name)
}

/// A batch that only deletes table `inet <name>` (`--cleanup`).
pub fn encode_delete_table(name: &str) -> Result<Encoded<'_>, EncodeError> {
    check_name("table", name)?;
    let mut b = rustables::Batch::new();
    b.add(&table(name), MsgType::Del);
    let mut s = Stream::new(256);
    s.push_rustables(&b.finalize(), [Object::TableDelete(name)]);
    Ok(s.finish())
}

/// Rules per rustables batch: small batches stay inside the buffer rustables
/// allocates for each (128 KiB), instead of one batch that grows by
/// doubling and copying.
const RULES_PER_BATCH: usize = 100;

/// About the size of the batch for `rs`, so that its buffer rarely grows:
/// exact for sets and elements, an estimate for rules.
fn size_hint(rs: &RuleSet) -> usize {
    const SET_MSG: usize = 200;
    let key_len = |f: Family| match f {
        Family::V4 => 4,
        Family::V6 => 16,
    };
    let sets: usize = rs
        .sets
        .iter()
        .map(|(n, s)| SET_MSG + 2 * n.len() + s.elements.len() * 2 * (28 + key_len(s.family)))
        .sum();
    let maps: usize = rs
        .maps
        .iter()
        .map(|(n, m)| {
            let elems: usize = m
                .elements
                .values()
                .map(|c| 48 + key_len(m.family) + c.len())
                .sum();
            SET_MSG + 2 * n.len() + elems
        })
        .sum();
    let rules: usize = rs
        .chains
        .iter()
        .map(|(n, c)| 128 + n.len() + c.rules.len() * (256 + n.len()))
        .sum();
    1024 + sets + maps + rules
}

/// The batch that atomically replaces table `inet <rs.table>` with `rs`.
pub fn encode(rs: &RuleSet) -> Result<Encoded<'_>, EncodeError> {
    check_name("table", &rs.table)?;
    let mut s = Stream::new(size_hint(rs));

    // add table; delete table; add table; every chain
    let t = table(&rs.table);
    let mut b = rustables::Batch::new();
    b.add(&t, MsgType::Add);
    b.add(&t, MsgType::Del);
    b.add(&t, MsgType::Add);
    let mut objects = vec![
        Object::Table(&rs.table),
        Object::TableDelete(&rs.table),
        Object::Table(&rs.table),
    ];
    for (name, chain) in &rs.chains {
        check_name("chain", name)?;
        b.add(&nft_chain(&t, name, chain), MsgType::Add);
        objects.push(Object::Chain(name));
    }
    s.push_rustables(&b.finalize(), objects);

    let mut set_id = 0;
    for (name, map) in &rs.maps {
        set_id += 1;
        push_map(&mut s, &rs.table, name, map, set_id)?;
    }
    for (name, set) in &rs.sets {
        set_id += 1;
        push_set(&mut s, &rs.table, name, set, set_id)?;
    }

    let mut b = rustables::Batch::new();
    let mut objects = Vec::with_capacity(RULES_PER_BATCH);
    for (name, chain) in &rs.chains {
        let nc = NftChain::new(&t).with_name(name.as_str());
        for (index, rule) in chain.rules.iter().enumerate() {
            let object = Object::Rule {
                chain: name,
                index,
                comment: &rule.comment,
            };
            let r = nft_rule(&nc, rule).map_err(|r| invalid(&object, r))?;
            b.add(&r, MsgType::Add);
            objects.push(object);
            if objects.len() == RULES_PER_BATCH {
                let full = std::mem::replace(&mut b, rustables::Batch::new());
                s.push_rustables(&full.finalize(), objects.drain(..));
            }
        }
    }
    s.push_rustables(&b.finalize(), objects);
    Ok(s.finish())
}

fn nft_chain(t: &Table, name: &str, chain: &Chain) -> NftChain {
    let c = NftChain::new(t).with_name(name);
    let Some(base) = &chain.base else {
        return c;
    };
    let hook = match base.hook {
        Hook::Forward => rustables::HookClass::Forward,
        Hook::Input => rustables::HookClass::In,
        Hook::Output => rustables::HookClass::Out,
    };
    let policy = match base.policy {
        ChainPolicy::Accept => rustables::ChainPolicy::Accept,
        ChainPolicy::Drop => rustables::ChainPolicy::Drop,
    };
    // type filter hook HOOK priority PRIO; policy POLICY;
    c.with_hook(rustables::Hook::new(hook, base.priority))
        .with_policy(policy)
        .with_type(rustables::ChainType::Filter)
}

/// The rustables rule for `rule`.
fn nft_rule(chain: &NftChain, rule: &crate::model::Rule) -> Result<NftRule, String> {
    let mut r = NftRule::new(chain).map_err(|e| format!("{e:?}"))?;
    let mut deps = expr::Deps::default();
    for m in &rule.matches {
        expr::push_match(&mut r, &mut deps, m).map_err(|e| e.to_string())?;
    }
    expr::push_verdict(&mut r, &mut deps, rule.counter, &rule.verdict)
        .map_err(|e| e.to_string())?;
    if let Some(ud) = expr::comment_userdata(&rule.comment) {
        r.set_userdata(ud);
    }
    Ok(r)
}

fn key_spec(family: Family) -> (u32, u32) {
    match family {
        Family::V4 => (nfnl::TYPE_IPV4_ADDR, 4),
        Family::V6 => (nfnl::TYPE_IPV6_ADDR, 16),
    }
}

/// NEWSET of a verdict map (`is_map`) or an interval set.
fn declare<'a>(
    s: &mut Stream<'a>,
    table: &str,
    name: &'a str,
    family: Family,
    is_map: bool,
    id: u32,
) {
    let (key_type, key_len) = key_spec(family);
    let seq = s.next_seq();
    let (flags, data_type, object) = if is_map {
        // map NAME { type ipv4_addr : verdict; }
        let data = Some(nfnl::NFT_DATA_VERDICT);
        (rustables::sys::NFT_SET_MAP, data, Object::Map(name))
    } else {
        // set NAME { type ipv4_addr; flags interval; }
        (rustables::sys::NFT_SET_INTERVAL, None, Object::Set(name))
    };
    let spec = SetSpec {
        table,
        name,
        flags,
        key_type,
        key_len,
        data_type,
        id,
    };
    nfnl::new_set(&mut s.w, seq, &spec);
    s.objects.push(object);
}

fn push_map<'a>(
    s: &mut Stream<'a>,
    table: &str,
    name: &'a str,
    map: &VerdictMap,
    id: u32,
) -> Result<(), EncodeError> {
    check_name("map", name)?;
    declare(s, table, name, map.family, true, id);
    for (addr, chain) in &map.elements {
        if Family::of(addr) != map.family {
            return Err(invalid(
                format!("map {name}"),
                format!("element {addr} is not of the map's family"),
            ));
        }
        check_name("chain", chain)?;
    }
    let elems = map.elements.iter().map(|(addr, chain)| Elem {
        key: Key::of(addr),
        flags: 0,
        jump: Some(chain),
    });
    push_elems(s, table, name, id, elems);
    Ok(())
}

fn push_set<'a>(
    s: &mut Stream<'a>,
    table: &str,
    name: &'a str,
    set: &AddrSet,
    id: u32,
) -> Result<(), EncodeError> {
    check_name("set", name)?;
    declare(s, table, name, set.family, false, id);
    check_intervals(set).map_err(|r| invalid(format!("set {name}"), r))?;
    let mut m = nfnl::ElemMessages::new(table, name, id, s.next_seq());
    for_interval_elems(set, |e| m.push(&mut s.w, &e));
    let n = m.finish(&mut s.w);
    push_parts(s, name, n);
    Ok(())
}

fn push_elems<'a, 'e>(
    s: &mut Stream<'a>,
    table: &str,
    name: &'a str,
    id: u32,
    elems: impl IntoIterator<Item = Elem<'e>>,
) {
    let first = s.next_seq();
    let n = nfnl::new_set_elems(&mut s.w, table, name, id, elems, first);
    push_parts(s, name, n);
}

/// The objects of the `n` element messages of set `name`.
fn push_parts<'a>(s: &mut Stream<'a>, name: &'a str, n: usize) {
    for part in 0..n {
        s.objects.push(Object::Elements { set: name, part });
    }
}

fn as_u128(a: &IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u32::from(*a) as u128,
        IpAddr::V6(a) => u128::from(*a),
    }
}

fn key_of(family: Family, v: u128) -> Key {
    match family {
        Family::V4 => Key::v4(v as u32),
        Family::V6 => Key::v6(v),
    }
}

/// The intervals of `set` can be sent as interval elements: of the set's
/// family, each ending after it starts and before the next one starts
/// (with a gap: touching intervals must have been merged).
fn check_intervals(set: &AddrSet) -> Result<(), String> {
    let mut prev_end: Option<u128> = None;
    for Interval { start, end } in &set.elements {
        if Family::of(start) != set.family || Family::of(end) != set.family {
            return Err(format!("interval {start}-{end} is not of the set's family"));
        }
        let (lo, hi) = (as_u128(start), as_u128(end));
        if lo > hi {
            return Err(format!("interval {start}-{end} ends before it starts"));
        }
        if prev_end.is_some_and(|p| p == max_addr(set.family) || p + 1 >= lo) {
            return Err(format!(
                "interval {start}-{end} overlaps or touches the one before (intervals must be sorted and merged)"
            ));
        }
        prev_end = Some(hi);
    }
    Ok(())
}

fn max_addr(family: Family) -> u128 {
    match family {
        Family::V4 => u32::MAX as u128,
        Family::V6 => u128::MAX,
    }
}

/// The elements nft sends for an interval set (checked by
/// [`check_intervals`]), in order, to `f`: an interval-end element at the
/// zero address when the first interval does not start there, then for
/// each interval its start and (unless it ends at the all-ones address) an
/// interval-end element at the first address after it.
fn for_interval_elems(set: &AddrSet, mut f: impl FnMut(Elem<'static>)) {
    let family = set.family;
    let elem = |v: u128, flags: u32| Elem {
        key: key_of(family, v),
        flags,
        jump: None,
    };
    let end = nfnl::NFT_SET_ELEM_INTERVAL_END;
    if set
        .elements
        .first()
        .is_some_and(|iv| as_u128(&iv.start) != 0)
    {
        f(elem(0, end));
    }
    for iv in &set.elements {
        let (lo, hi) = (as_u128(&iv.start), as_u128(&iv.end));
        f(elem(lo, 0));
        if hi != max_addr(family) {
            f(elem(hi + 1, end));
        }
    }
}

#[cfg(test)]
mod tests;
