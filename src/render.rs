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

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::model::{
    AddrField, AddrSet, Chain, ChainPolicy, CtStates, Family, Hook, Interval, Match, Rule, RuleSet,
    Verdict, VerdictMap,
};

mod text;
use text::{push_ip, push_u16};

/// nft refuses rule comments longer than this many bytes.
pub const MAX_COMMENT_BYTES: usize = 128;

/// The complete script that atomically replaces our table.
///
/// Everything is appended to one `String` sized from the ruleset up front:
/// no `String` per element, rule or match.
pub fn render(rs: &RuleSet) -> String {
    let mut out = String::with_capacity(size_hint(rs));
    write_script(&mut out, rs);
    out
}

/// About the length of the script (a little more for IPv4-heavy rulesets,
/// less for long IPv6 ranges), so that the output rarely grows.
fn size_hint(rs: &RuleSet) -> usize {
    let elements: usize = rs
        .sets
        .values()
        .map(|s| {
            s.elements.len()
                * match s.family {
                    Family::V4 => 24,
                    Family::V6 => 48,
                }
        })
        .sum();
    let map_elements: usize = rs.maps.values().map(|m| m.elements.len() * 64).sum();
    let rules: usize = rs
        .chains
        .values()
        .flat_map(|c| &c.rules)
        .map(|r| 48 + 32 * r.matches.len() + r.comment.len().min(MAX_COMMENT_BYTES))
        .sum();
    let objects = (rs.sets.len() + rs.maps.len() + rs.chains.len()) * 128;
    1024 + elements + map_elements + rules + objects
}

/// The text of a rule comment as nft and the kernel store it: `"` becomes
/// `'`, control characters become spaces, cut to [`MAX_COMMENT_BYTES`] bytes
/// on a character boundary.
pub fn comment_text(comment: &str) -> String {
    let mut out = String::with_capacity(comment.len().min(MAX_COMMENT_BYTES));
    push_comment_text(&mut out, comment);
    out
}

/// Append [`comment_text`]`(comment)` to `out`.
pub fn push_comment_text(out: &mut String, comment: &str) {
    let plain = |b: &u8| (b' '..=b'~').contains(b) && *b != b'"';
    if comment.len() <= MAX_COMMENT_BYTES && comment.bytes().all(|b| plain(&b)) {
        // Printable ASCII without quotes: nothing to replace or cut.
        out.push_str(comment);
        return;
    }
    let start = out.len();
    for c in comment.chars() {
        let c = match c {
            '"' => '\'',
            c if c.is_control() => ' ',
            c => c,
        };
        if out.len() - start + c.len_utf8() > MAX_COMMENT_BYTES {
            break;
        }
        out.push(c);
    }
}

fn write_script(out: &mut String, rs: &RuleSet) {
    let t = &rs.table;
    // Writing into a String cannot fail.
    let _ = writeln!(out, "# flock-netpol: table inet {t}: {}", rs.stats());
    let _ = writeln!(out, "table inet {t}");
    let _ = writeln!(out, "delete table inet {t}");
    let _ = writeln!(out, "table inet {t} {{");
    let mut first = true;
    let mut separator = |out: &mut String| {
        if !std::mem::take(&mut first) {
            out.push('\n');
        }
    };
    for (name, set) in &rs.sets {
        separator(out);
        write_set(out, name, set);
    }
    for (name, map) in &rs.maps {
        separator(out);
        write_map(out, name, map);
    }
    let base = rs.chains.iter().filter(|(_, c)| c.base.is_some());
    let regular = rs.chains.iter().filter(|(_, c)| c.base.is_none());
    for (name, chain) in base.chain(regular) {
        separator(out);
        write_chain(out, name, chain);
    }
    out.push_str("}\n");
}

/// A model comment as a `\t# ...` line: one line, no control characters.
fn write_object_comment(out: &mut String, comment: &str) {
    if comment.is_empty() {
        return;
    }
    out.push_str("\t# ");
    out.extend(
        comment
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c }),
    );
    out.push('\n');
}

/// `\t\ttype ipv4_addr<rest>` (or `ipv6_addr`).
fn write_type(out: &mut String, family: Family, rest: &str) {
    out.push_str(match family {
        Family::V4 => "\t\ttype ipv4_addr",
        Family::V6 => "\t\ttype ipv6_addr",
    });
    out.push_str(rest);
}

/// `\t<keyword> <name> {\n`, after the object's comment line.
fn open_object(out: &mut String, keyword: &str, name: &str, comment: &str) {
    write_object_comment(out, comment);
    out.push('\t');
    out.push_str(keyword);
    out.push(' ');
    out.push_str(name);
    out.push_str(" {\n");
}

fn write_set(out: &mut String, name: &str, set: &AddrSet) {
    open_object(out, "set", name, &set.comment);
    write_type(out, set.family, "\n\t\tflags interval\n");
    write_elements(out, &set.elements, push_interval);
    out.push_str("\t}\n");
}

fn write_map(out: &mut String, name: &str, map: &VerdictMap) {
    open_object(out, "map", name, &map.comment);
    write_type(out, map.family, " : verdict\n");
    write_elements(out, &map.elements, |out, (addr, chain)| {
        // 198.18.0.1 : jump chain
        push_ip(out, addr);
        out.push_str(" : jump ");
        out.push_str(chain);
    });
    out.push_str("\t}\n");
}

/// `elements = { ... }`, one element per line; nothing for an empty set
/// (nft rejects an empty element list).
fn write_elements<I: IntoIterator>(out: &mut String, elements: I, write: fn(&mut String, I::Item)) {
    let mut elements = elements.into_iter().peekable();
    if elements.peek().is_none() {
        return;
    }
    out.push_str("\t\telements = {\n");
    for e in elements {
        out.push_str("\t\t\t");
        write(out, e);
        out.push_str(",\n");
    }
    out.push_str("\t\t}\n");
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
    let mut out = String::new();
    push_interval(&mut out, iv);
    out
}

/// Append [`interval_text`]`(iv)` to `out`.
fn push_interval(out: &mut String, iv: &Interval) {
    push_ip(out, &iv.start);
    if iv.start == iv.end {
        return;
    }
    let ((w1, s), (w2, e)) = (bits(&iv.start), bits(&iv.end));
    if w1 == w2 && e > s {
        let host = e - s; // a prefix spans 2^k addresses: host = 2^k - 1
        if host & host.wrapping_add(1) == 0 && s & host == 0 {
            out.push('/');
            // At most 128: fits a u16.
            push_u16(out, (w1 - host.count_ones()) as u16);
            return;
        }
    }
    out.push('-');
    push_ip(out, &iv.end);
}

fn write_chain(out: &mut String, name: &str, chain: &Chain) {
    open_object(out, "chain", name, &chain.comment);
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
        let _ = writeln!(
            out,
            "\t\ttype filter hook {hook} priority {}; policy {policy};",
            base.priority
        );
    }
    for rule in &chain.rules {
        out.push_str("\t\t");
        write_rule(out, rule);
        out.push('\n');
    }
    out.push_str("\t}\n");
}

/// One rule on one line: matches, `counter`, verdict, `comment "..."`.
pub fn rule_text(rule: &Rule) -> String {
    let mut out = String::new();
    write_rule(&mut out, rule);
    out
}

/// Append [`rule_text`]`(rule)` to `out`.
fn write_rule(out: &mut String, rule: &Rule) {
    for m in &rule.matches {
        write_match(out, m);
        out.push(' ');
    }
    if rule.counter {
        out.push_str("counter ");
    }
    write_verdict(out, &rule.verdict);
    if !rule.comment.is_empty() {
        // Never empty once cleaned: the first character stays (as
        // itself, `'` or a space).
        out.push_str(" comment \"");
        push_comment_text(out, &rule.comment);
        out.push('"');
    }
}

/// `ip saddr` / `ip6 daddr` ...
fn addr_selector(field: AddrField, family: Family) -> &'static str {
    match (family, field) {
        (Family::V4, AddrField::Saddr) => "ip saddr",
        (Family::V4, AddrField::Daddr) => "ip daddr",
        (Family::V6, AddrField::Saddr) => "ip6 saddr",
        (Family::V6, AddrField::Daddr) => "ip6 daddr",
    }
}

/// `key value` when `lo == hi`, else `key >= lo key <= hi`.
fn write_range(out: &mut String, key: &str, lo: u16, hi: u16) {
    out.push_str(key);
    if lo == hi {
        out.push(' ');
        push_u16(out, lo);
        return;
    }
    out.push_str(" >= ");
    push_u16(out, lo);
    out.push(' ');
    out.push_str(key);
    out.push_str(" <= ");
    push_u16(out, hi);
}

/// Named conntrack states in the order of their bits; bits without a name
/// are appended as one hex number.
fn write_ct_states(out: &mut String, states: CtStates) {
    const NAMES: [(CtStates, &str); 5] = [
        (CtStates::INVALID, "invalid"),
        (CtStates::ESTABLISHED, "established"),
        (CtStates::RELATED, "related"),
        (CtStates::NEW, "new"),
        (CtStates::UNTRACKED, "untracked"),
    ];
    let mut rest = states.0;
    let mut first = true;
    let mut comma = |out: &mut String| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
    };
    for (bit, name) in NAMES {
        if rest & bit.0 != 0 {
            comma(out);
            out.push_str(name);
            rest &= !bit.0;
        }
    }
    if rest != 0 || rest == states.0 {
        comma(out);
        let _ = write!(out, "{rest:#x}");
    }
}

fn write_match(out: &mut String, m: &Match) {
    match m {
        Match::CtState(states) => {
            out.push_str("ct state ");
            write_ct_states(out, *states);
        }
        Match::AddrInSet { field, family, set } => {
            out.push_str(addr_selector(*field, *family));
            out.push_str(" @");
            out.push_str(set);
        }
        Match::AddrEq { field, addr } => {
            out.push_str(addr_selector(*field, Family::of(addr)));
            out.push(' ');
            push_ip(out, addr);
        }
        Match::L4Proto(p) => {
            out.push_str("meta l4proto ");
            out.push_str(p.nft_name());
        }
        Match::Dport { lo, hi } => write_range(out, "th dport", *lo, *hi),
        Match::Icmpv6Type { lo, hi } => {
            write_range(out, "icmpv6 type", u16::from(*lo), u16::from(*hi))
        }
    }
}

fn write_verdict(out: &mut String, v: &Verdict) {
    match v {
        Verdict::Accept => out.push_str("accept"),
        Verdict::Drop => out.push_str("drop"),
        Verdict::Return => out.push_str("return"),
        Verdict::Jump(chain) => {
            out.push_str("jump ");
            out.push_str(chain);
        }
        Verdict::Vmap { field, family, map } => {
            out.push_str(addr_selector(*field, *family));
            out.push_str(" vmap @");
            out.push_str(map);
        }
    }
}

#[cfg(test)]
mod tests;
