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
use super::nfnl::{self, Elem, SetSpec, Writer, NLM_F_ACK, NLM_F_REQUEST};
use crate::model::{AddrSet, Chain, ChainPolicy, Family, Hook, Interval, RuleSet, VerdictMap};

/// Sequence number of the BATCH_BEGIN message.
pub const FIRST_SEQ: u32 = 1;

/// Longest table, chain or set name the kernel takes (`NFT_NAME_MAXLEN`
/// 256, NUL included).
const MAX_NAME_BYTES: usize = 255;

/// What one message of the batch does, to name it in an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    /// BATCH_BEGIN; an error on it is an error of the whole commit.
    Commit,
    Table(String),
    TableDelete(String),
    Map(String),
    Set(String),
    /// One NEWSETELEM message: `part` (0-based) of the set's elements.
    Elements {
        set: String,
        part: usize,
    },
    Chain(String),
    /// Rule number `index` (0-based) of `chain`.
    Rule {
        chain: String,
        index: usize,
        comment: String,
    },
    BatchEnd,
}

impl fmt::Display for Object {
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
pub struct Encoded {
    pub bytes: Vec<u8>,
    /// `objects[i]` is the message with sequence number `FIRST_SEQ + i`.
    pub objects: Vec<Object>,
}

impl Encoded {
    /// What the message with sequence number `seq` does.
    pub fn object(&self, seq: u32) -> Option<&Object> {
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
struct Stream {
    w: Writer,
    objects: Vec<Object>,
}

impl Stream {
    fn new() -> Stream {
        let mut s = Stream {
            w: Writer::default(),
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
    /// and END), renumbered, one per object in `objects`.
    fn push_rustables(&mut self, finalized: &[u8], objects: Vec<Object>) {
        let msgs = nfnl::messages(finalized);
        let inner = &msgs[1..msgs.len() - 1];
        assert_eq!(
            inner.len(),
            objects.len(),
            "rustables wrote one message per object"
        );
        for (m, o) in inner.iter().zip(objects) {
            let start = self.w.buf.len();
            self.w.buf.extend_from_slice(m.bytes);
            let seq = self.next_seq();
            nfnl::patch_header(&mut self.w.buf, start, seq, m.flags & !NLM_F_ACK);
            self.objects.push(o);
        }
    }

    /// Ask for an ACK on the last message, close the batch.
    fn finish(mut self) -> Encoded {
        if let Some(last) = nfnl::messages(&self.w.buf).last().copied() {
            // The last message ends the buffer.
            let start = self.w.buf.len() - last.bytes.len();
            let seq = last.seq;
            let flags = last.flags | NLM_F_ACK | NLM_F_REQUEST;
            nfnl::patch_header(&mut self.w.buf, start, seq, flags);
        }
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
pub fn encode_delete_table(name: &str) -> Result<Encoded, EncodeError> {
    check_name("table", name)?;
    let mut b = rustables::Batch::new();
    b.add(&table(name), MsgType::Del);
    let mut s = Stream::new();
    s.push_rustables(&b.finalize(), vec![Object::TableDelete(name.into())]);
    Ok(s.finish())
}

/// The batch that atomically replaces table `inet <rs.table>` with `rs`.
pub fn encode(rs: &RuleSet) -> Result<Encoded, EncodeError> {
    check_name("table", &rs.table)?;
    let mut s = Stream::new();

    // add table; delete table; add table
    let t = table(&rs.table);
    let mut b = rustables::Batch::new();
    b.add(&t, MsgType::Add);
    b.add(&t, MsgType::Del);
    b.add(&t, MsgType::Add);
    s.push_rustables(
        &b.finalize(),
        vec![
            Object::Table(rs.table.clone()),
            Object::TableDelete(rs.table.clone()),
            Object::Table(rs.table.clone()),
        ],
    );

    let mut b = rustables::Batch::new();
    let mut objects = Vec::new();
    for (name, chain) in &rs.chains {
        check_name("chain", name)?;
        b.add(&nft_chain(&t, name, chain), MsgType::Add);
        objects.push(Object::Chain(name.clone()));
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
    let mut objects = Vec::new();
    for (name, chain) in &rs.chains {
        let nc = NftChain::new(&t).with_name(name.as_str());
        for (index, rule) in chain.rules.iter().enumerate() {
            let object = Object::Rule {
                chain: name.clone(),
                index,
                comment: rule.comment.clone(),
            };
            b.add(
                &nft_rule(&nc, rule).map_err(|r| invalid(&object, r))?,
                MsgType::Add,
            );
            objects.push(object);
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

fn nft_rule(chain: &NftChain, rule: &crate::model::Rule) -> Result<NftRule, String> {
    let mut exprs = Vec::new();
    let mut deps = expr::Deps::default();
    for m in &rule.matches {
        expr::push_match(&mut exprs, &mut deps, m).map_err(|e| e.to_string())?;
    }
    expr::push_verdict(&mut exprs, &mut deps, rule.counter, &rule.verdict)
        .map_err(|e| e.to_string())?;
    let mut r = NftRule::new(chain).map_err(|e| format!("{e:?}"))?;
    for e in exprs {
        r.add_expr(e);
    }
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
fn declare(s: &mut Stream, table: &str, name: &str, family: Family, is_map: bool, id: u32) {
    let (key_type, key_len) = key_spec(family);
    let seq = s.next_seq();
    let (flags, data_type, object) = if is_map {
        // map NAME { type ipv4_addr : verdict; }
        let data = Some(nfnl::NFT_DATA_VERDICT);
        (rustables::sys::NFT_SET_MAP, data, Object::Map(name.into()))
    } else {
        // set NAME { type ipv4_addr; flags interval; }
        (
            rustables::sys::NFT_SET_INTERVAL,
            None,
            Object::Set(name.into()),
        )
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

fn push_map(
    s: &mut Stream,
    table: &str,
    name: &str,
    map: &VerdictMap,
    id: u32,
) -> Result<(), EncodeError> {
    check_name("map", name)?;
    declare(s, table, name, map.family, true, id);
    let mut elems = Vec::with_capacity(map.elements.len());
    for (addr, chain) in &map.elements {
        if Family::of(addr) != map.family {
            return Err(invalid(
                format!("map {name}"),
                format!("element {addr} is not of the map's family"),
            ));
        }
        check_name("chain", chain)?;
        elems.push(Elem {
            key: expr::addr_bytes(addr),
            flags: 0,
            jump: Some(chain),
        });
    }
    push_elems(s, table, name, id, &elems);
    Ok(())
}

fn push_set(
    s: &mut Stream,
    table: &str,
    name: &str,
    set: &AddrSet,
    id: u32,
) -> Result<(), EncodeError> {
    check_name("set", name)?;
    declare(s, table, name, set.family, false, id);
    let elems = interval_elems(set).map_err(|r| invalid(format!("set {name}"), r))?;
    push_elems(s, table, name, id, &elems);
    Ok(())
}

fn push_elems(s: &mut Stream, table: &str, name: &str, id: u32, elems: &[Elem<'_>]) {
    let first = s.next_seq();
    let mut seq = first;
    let n = nfnl::new_set_elems(&mut s.w, table, name, id, elems, || {
        let this = seq;
        seq += 1;
        this
    });
    for part in 0..n {
        s.objects.push(Object::Elements {
            set: name.into(),
            part,
        });
    }
}

fn as_u128(a: &IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u32::from(*a) as u128,
        IpAddr::V6(a) => u128::from(*a),
    }
}

fn key_of(family: Family, v: u128) -> Vec<u8> {
    match family {
        Family::V4 => (v as u32).to_be_bytes().to_vec(),
        Family::V6 => v.to_be_bytes().to_vec(),
    }
}

/// The elements nft sends for an interval set: an interval-end element at
/// the zero address when the first interval does not start there, then for
/// each interval its start and (unless it ends at the all-ones address) an
/// interval-end element at the first address after it.
fn interval_elems(set: &AddrSet) -> Result<Vec<Elem<'static>>, String> {
    let max = match set.family {
        Family::V4 => u32::MAX as u128,
        Family::V6 => u128::MAX,
    };
    let mut out = Vec::with_capacity(set.elements.len() * 2 + 1);
    let mut prev_end: Option<u128> = None;
    for Interval { start, end } in &set.elements {
        if Family::of(start) != set.family || Family::of(end) != set.family {
            return Err(format!("interval {start}-{end} is not of the set's family"));
        }
        let (lo, hi) = (as_u128(start), as_u128(end));
        if lo > hi {
            return Err(format!("interval {start}-{end} ends before it starts"));
        }
        match prev_end {
            None if lo != 0 => out.push(Elem {
                key: key_of(set.family, 0),
                flags: nfnl::NFT_SET_ELEM_INTERVAL_END,
                jump: None,
            }),
            Some(p) if p == max || p + 1 >= lo => {
                return Err(format!(
                    "interval {start}-{end} overlaps or touches the one before (intervals must be sorted and merged)"
                ));
            }
            _ => {}
        }
        out.push(Elem {
            key: key_of(set.family, lo),
            flags: 0,
            jump: None,
        });
        if hi != max {
            out.push(Elem {
                key: key_of(set.family, hi + 1),
                flags: nfnl::NFT_SET_ELEM_INTERVAL_END,
                jump: None,
            });
        }
        prev_end = Some(hi);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
