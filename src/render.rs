//! Renderer: pure `RuleSet -> String`, a complete `nft -f` script that
//! atomically replaces our table.
//!
//! Must not: do I/O, log, read a clock, or depend on hash order. It emits only
//! constructs that map one-to-one onto nftables netlink objects the apply stage
//! builds itself: no anonymous sets, no concatenations, no range expressions,
//! no `auto-merge`, no `destroy` (Debian's nft 1.0.6 lacks it).
//!
//! # Script shape
//!
//! ```text
//! # flock-netpol: table inet NAME: <stats>
//! table inet NAME                 # creates the table if absent (no-op otherwise)
//! delete table inet NAME          # so this delete never fails
//! table inet NAME {               # the complete new table
//!     set ... / map ... / chain ...
//! }
//! ```
//!
//! `nft -f` sends all of it as ONE transaction. Inside the block, objects come
//! sorted: sets, then maps (by name), then base chains, then regular chains
//! (by name); set elements ascending; model comments of sets, maps and chains
//! become `# ...` lines (never stored in the kernel).
//!
//! # What the kernel receives (measured with `nft --debug=netlink,mnl -f`, nft 1.0.6)
//!
//! This is the contract for the netlink builder in `apply`: from the same
//! `RuleSet` it must send exactly these objects and expressions. nft orders
//! the batch as: NEWTABLE, every NEWCHAIN, then per set/map NEWSET followed by
//! its NEWSETELEM, then every NEWRULE (so maps may jump to any chain and rules
//! may name any set). Registers: `reg 1` is NFT_REG_1, `reg 0` is the verdict
//! register. All `cmp`/payload data is in network byte order, as shown.
//!
//! | construct (model) | nft text | kernel expressions |
//! |---|---|---|
//! | table | `table inet T` | NEWTABLE family inet (1), NAME, FLAGS 0 |
//! | regular chain | `chain C { ... }` | NEWCHAIN TABLE, NAME (no hook, no type) |
//! | base chain | `type filter hook forward priority N; policy accept;` | NEWCHAIN TABLE, NAME, TYPE "filter", POLICY (accept 1, drop 0), HOOK { HOOKNUM (input 1, forward 2, output 3), PRIORITY N (s32) } |
//! | interval set | `set S { type ipv4_addr; flags interval; }` | NEWSET TABLE, NAME, FLAGS 0x4 (INTERVAL), KEY_TYPE 7 (ipv4_addr) / 8 (ipv6_addr), KEY_LEN 4 / 16, SET_ID, USERDATA `00 04 02 00 00 00` (KEYBYTEORDER = big endian) |
//! | verdict map | `map M { type ipv4_addr : verdict; }` | NEWSET TABLE, NAME, FLAGS 0x8 (MAP), KEY_TYPE 7 / 8, KEY_LEN 4 / 16, DATA_TYPE 0xffffff00, DATA_LEN 0, SET_ID, USERDATA `00 04 02 00 00 00` `01 04 00 00 00 00` `06 04 00 00 00 00` (KEYBYTEORDER 2, DATABYTEORDER 0, DATA_INTERVAL 0) |
//! | set elements | `elements = { 198.18.0.0/24, 198.18.1.5, a-b }` | NEWSETELEM TABLE, SET, SET_ID, LIST of ELEM { KEY { VALUE } , FLAGS }, ascending: if the first interval does not start at the zero address, first an element `0.0.0.0` / `::` with FLAGS 1 (INTERVAL_END); then per interval a start element (FLAGS 0, as nft sends it: the attribute is present with value 0) and an end element keyed by `end + 1` with FLAGS 1, the end element omitted when `end` is the all-ones address. An empty set sends no NEWSETELEM |
//! | map elements | `198.18.0.1 : jump C` | NEWSETELEM ... ELEM { KEY { VALUE addr }, DATA { VERDICT { CODE -3 (jump), CHAIN "C" } } } (no FLAGS) |
//! | `CtState(est+rel)` | `ct state established,related` | `ct load state => reg 1`, `bitwise reg 1 = (reg 1 & 0x00000006) ^ 0`, `cmp neq reg 1 0x00000000` (mask = the bits, 4 bytes host order; same shape for one state) |
//! | `AddrInSet` v4 | `ip saddr @S` / `ip daddr @S` | `meta load nfproto => reg 1`, `cmp eq reg 1 0x02`, `payload load 4b @ network header + 12` (saddr) / `+ 16` (daddr) `=> reg 1`, `lookup reg 1 set S` (SREG 1, SET name, SET_ID of S) |
//! | `AddrInSet` v6 | `ip6 saddr @S` / `ip6 daddr @S` | `meta load nfproto`, `cmp eq 0x0a`, `payload load 16b @ network header + 8` (saddr) / `+ 24` (daddr), `lookup reg 1 set S` |
//! | `AddrEq` v4 / v6 | `ip saddr 198.18.0.1` / `ip6 daddr fd00:198:18::1` | `meta load nfproto`, `cmp eq 0x02`/`0x0a`, payload load as above, `cmp eq reg 1 <address bytes>` |
//! | `L4Proto(p)` | `meta l4proto tcp` (udp, sctp, ipv6-icmp) | `meta load l4proto => reg 1`, `cmp eq reg 1 <6, 17, 132, 58>` (1 byte) |
//! | `Dport` lo == hi | `th dport 80` | `payload load 2b @ transport header + 2 => reg 1`, `cmp eq reg 1 <port, big endian>` |
//! | `Dport` lo < hi | `th dport >= 1000 th dport <= 2000` | payload load as above, `cmp gte reg 1 lo`, payload load again, `cmp lte reg 1 hi` (no range expression) |
//! | `Icmpv6Type` | `icmpv6 type 135` / `icmpv6 type >= 133 icmpv6 type <= 137` | `payload load 1b @ transport header + 0 => reg 1`, `cmp eq` / (`cmp gte`, load again, `cmp lte`) |
//! | `counter` | `counter` (after the matches, before the verdict) | `counter pkts 0 bytes 0` |
//! | `Accept` / `Drop` / `Return` | `accept` / `drop` / `return` | `immediate reg 0 accept` / `drop` / `return` |
//! | `Jump(C)` | `jump C` | `immediate reg 0 jump -> C` |
//! | `Vmap` v4 | `ip saddr vmap @M` / `ip daddr vmap @M` | `meta load nfproto`, `cmp eq 0x02`, payload load (+12 / +16), `lookup reg 1 set M dreg 0` (SREG 1, DREG 0 = verdict, SET, SET_ID) |
//! | `Vmap` v6 | `ip6 saddr vmap @M` | as above with `0x0a`, 16b at +8 / +24 |
//! | rule comment | `comment "text"` | rule USERDATA: TLV type 0 (COMMENT), length = bytes + 1, the text and a NUL; no USERDATA when the comment is empty |
//!
//! Dependencies nft adds on its own (the apply stage must add the same):
//!
//! - Before the FIRST `ip`/`ip6` payload of a rule (match or vmap) comes
//!   `meta load nfproto; cmp eq` (2 for ip, 10 for ip6), even when other
//!   matches (`meta l4proto`, `counter`) precede it. Later payloads of the
//!   same family in the same rule get none.
//! - `icmpv6 type` after `meta l4proto ipv6-icmp` gets no dependency (not
//!   even `meta nfproto`). Without it nft would add `meta nfproto ipv6;
//!   meta l4proto 58`; the translator always emits `L4Proto` first.
//! - `th dport` gets no dependency at all.
//! - Matches keep the model's order; `counter` goes after every match, so
//!   for a vmap rule the counter comes BEFORE the vmap's payload and lookup.
//!
//! Comments: nft's quoted strings have no escapes and at most 128 bytes, so
//! [`comment_text`] replaces `"` with `'` and control characters with spaces,
//! and cuts at 128 bytes on a character boundary. The apply stage stores the
//! same bytes.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use crate::model::{
    AddrField, AddrSet, Chain, ChainPolicy, CtStates, Family, Hook, Interval, Match, Rule, RuleSet,
    Verdict, VerdictMap,
};

/// nft refuses rule comments longer than this many bytes.
pub const MAX_COMMENT_BYTES: usize = 128;

/// The complete script that atomically replaces our table.
pub fn render(rs: &RuleSet) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write_script(&mut out, rs);
    out
}

/// The text of a rule comment as nft and the kernel store it: `"` becomes
/// `'`, control characters become spaces, cut to [`MAX_COMMENT_BYTES`] bytes
/// on a character boundary.
pub fn comment_text(comment: &str) -> String {
    let mut out = String::with_capacity(comment.len().min(MAX_COMMENT_BYTES));
    for c in comment.chars() {
        let c = match c {
            '"' => '\'',
            c if c.is_control() => ' ',
            c => c,
        };
        if out.len() + c.len_utf8() > MAX_COMMENT_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

/// A model comment as a `# ...` line body: one line, no control characters.
fn line_comment(comment: &str) -> String {
    comment
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn write_script(out: &mut String, rs: &RuleSet) -> fmt::Result {
    let t = &rs.table;
    writeln!(out, "# flock-netpol: table inet {t}: {}", rs.stats())?;
    writeln!(out, "table inet {t}")?;
    writeln!(out, "delete table inet {t}")?;
    writeln!(out, "table inet {t} {{")?;
    let mut first = true;
    let mut separator = |out: &mut String| {
        if !std::mem::take(&mut first) {
            out.push('\n');
        }
    };
    for (name, set) in &rs.sets {
        separator(out);
        write_set(out, name, set)?;
    }
    for (name, map) in &rs.maps {
        separator(out);
        write_map(out, name, map)?;
    }
    let base = rs.chains.iter().filter(|(_, c)| c.base.is_some());
    let regular = rs.chains.iter().filter(|(_, c)| c.base.is_none());
    for (name, chain) in base.chain(regular) {
        separator(out);
        write_chain(out, name, chain)?;
    }
    writeln!(out, "}}")
}

fn write_object_comment(out: &mut String, comment: &str) -> fmt::Result {
    if comment.is_empty() {
        return Ok(());
    }
    writeln!(out, "\t# {}", line_comment(comment))
}

fn addr_type(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4_addr",
        Family::V6 => "ipv6_addr",
    }
}

fn write_set(out: &mut String, name: &str, set: &AddrSet) -> fmt::Result {
    write_object_comment(out, &set.comment)?;
    writeln!(out, "\tset {name} {{")?;
    writeln!(out, "\t\ttype {}", addr_type(set.family))?;
    writeln!(out, "\t\tflags interval")?;
    write_elements(out, set.elements.iter().map(interval_text))?;
    writeln!(out, "\t}}")
}

fn write_map(out: &mut String, name: &str, map: &VerdictMap) -> fmt::Result {
    write_object_comment(out, &map.comment)?;
    writeln!(out, "\tmap {name} {{")?;
    writeln!(out, "\t\ttype {} : verdict", addr_type(map.family))?;
    write_elements(
        out,
        map.elements
            .iter()
            .map(|(addr, chain)| format!("{addr} : jump {chain}")),
    )?;
    writeln!(out, "\t}}")
}

/// `elements = { ... }`, one element per line; nothing for an empty set
/// (nft rejects an empty element list).
fn write_elements(out: &mut String, elements: impl Iterator<Item = String>) -> fmt::Result {
    let mut elements = elements.peekable();
    if elements.peek().is_none() {
        return Ok(());
    }
    writeln!(out, "\t\telements = {{")?;
    for e in elements {
        writeln!(out, "\t\t\t{e},")?;
    }
    writeln!(out, "\t\t}}")
}

/// Width in bits and value of an address, for prefix arithmetic.
fn bits(addr: &IpAddr) -> (u32, u128) {
    match addr {
        IpAddr::V4(a) => (32, u128::from(u32::from(*a))),
        IpAddr::V6(a) => (128, u128::from(*a)),
    }
}

/// `a` for a single address, `a/len` when the interval is exactly a prefix,
/// else `a-b`.
pub fn interval_text(iv: &Interval) -> String {
    if iv.start == iv.end {
        return iv.start.to_string();
    }
    let ((w1, s), (w2, e)) = (bits(&iv.start), bits(&iv.end));
    if w1 == w2 && e > s {
        let host = e - s; // a prefix spans 2^k addresses: host = 2^k - 1
        if host & host.wrapping_add(1) == 0 && s & host == 0 {
            return format!("{}/{}", iv.start, w1 - host.count_ones());
        }
    }
    format!("{}-{}", iv.start, iv.end)
}

fn write_chain(out: &mut String, name: &str, chain: &Chain) -> fmt::Result {
    write_object_comment(out, &chain.comment)?;
    writeln!(out, "\tchain {name} {{")?;
    if let Some(base) = &chain.base {
        let hook = match base.hook {
            Hook::Forward => "forward",
            Hook::Input => "input",
            Hook::Output => "output",
        };
        let policy = match base.policy {
            ChainPolicy::Accept => "accept",
            ChainPolicy::Drop => "drop",
        };
        writeln!(
            out,
            "\t\ttype filter hook {hook} priority {}; policy {policy};",
            base.priority
        )?;
    }
    for rule in &chain.rules {
        writeln!(out, "\t\t{}", rule_text(rule))?;
    }
    writeln!(out, "\t}}")
}

/// One rule on one line: matches, `counter`, verdict, `comment "..."`.
pub fn rule_text(rule: &Rule) -> String {
    let mut parts: Vec<String> = rule.matches.iter().map(match_text).collect();
    if rule.counter {
        parts.push("counter".to_string());
    }
    parts.push(verdict_text(&rule.verdict));
    let comment = comment_text(&rule.comment);
    if !comment.is_empty() {
        parts.push(format!("comment \"{comment}\""));
    }
    parts.join(" ")
}

fn addr_selector(field: AddrField, family: Family) -> String {
    let proto = match family {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    };
    let field = match field {
        AddrField::Saddr => "saddr",
        AddrField::Daddr => "daddr",
    };
    format!("{proto} {field}")
}

/// `key value` when `lo == hi`, else `key >= lo key <= hi`.
fn range_text<T: fmt::Display + PartialEq>(key: &str, lo: T, hi: T) -> String {
    if lo == hi {
        format!("{key} {lo}")
    } else {
        format!("{key} >= {lo} {key} <= {hi}")
    }
}

/// Named conntrack states in the order of their bits; bits without a name
/// are appended as one hex number.
fn ct_states_text(states: CtStates) -> String {
    const NAMES: [(CtStates, &str); 5] = [
        (CtStates::INVALID, "invalid"),
        (CtStates::ESTABLISHED, "established"),
        (CtStates::RELATED, "related"),
        (CtStates::NEW, "new"),
        (CtStates::UNTRACKED, "untracked"),
    ];
    let mut rest = states.0;
    let mut names: Vec<String> = Vec::new();
    for (bit, name) in NAMES {
        if rest & bit.0 != 0 {
            names.push(name.to_string());
            rest &= !bit.0;
        }
    }
    if rest != 0 || names.is_empty() {
        names.push(format!("{rest:#x}"));
    }
    names.join(",")
}

fn match_text(m: &Match) -> String {
    match m {
        Match::CtState(states) => format!("ct state {}", ct_states_text(*states)),
        Match::AddrInSet { field, family, set } => {
            format!("{} @{set}", addr_selector(*field, *family))
        }
        Match::AddrEq { field, addr } => {
            format!("{} {addr}", addr_selector(*field, Family::of(addr)))
        }
        Match::L4Proto(p) => format!("meta l4proto {}", p.nft_name()),
        Match::Dport { lo, hi } => range_text("th dport", lo, hi),
        Match::Icmpv6Type { lo, hi } => range_text("icmpv6 type", lo, hi),
    }
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Accept => "accept".to_string(),
        Verdict::Drop => "drop".to_string(),
        Verdict::Return => "return".to_string(),
        Verdict::Jump(chain) => format!("jump {chain}"),
        Verdict::Vmap { field, family, map } => {
            format!("{} vmap @{map}", addr_selector(*field, *family))
        }
    }
}

#[cfg(test)]
mod tests;
