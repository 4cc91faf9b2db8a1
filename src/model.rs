//! The `RuleSet`: the intermediate representation between the translator and
//! the two back ends (the text renderer and the netlink apply stage).
//!
//! This is where Kubernetes vocabulary ends and nftables vocabulary begins.
//! Nothing here knows about pods, policies, kube types or rustables types: a
//! `RuleSet` is one nftables table of family `inet` described as plain,
//! ordered data. Both back ends derive everything from it, so the kernel state
//! made by `nft -f` of the rendered text and by the netlink batch is the same.
//!
//! Must not: do I/O, depend on hash order, or hold anything a back end could
//! not express with nftables' netlink API (no anonymous sets, no
//! concatenations, no range expressions: port ranges are two comparisons).
//!
//! # Shape
//!
//! - `sets`: named address sets of one family each, always with the
//!   `interval` flag; their elements are sorted, merged, non-overlapping
//!   inclusive ranges.
//! - `maps`: named verdict maps `ipv4_addr : verdict` / `ipv6_addr : verdict`
//!   whose elements are `address : jump chain` (dispatch by pod IP).
//! - `chains`: base chains (with a hook) and regular chains, each an ordered
//!   list of rules. A rule is a conjunction of matches and one verdict.
//!
//! Tiers (AdminNetworkPolicy, BaselineAdminNetworkPolicy) will add chains and
//! verdicts (`Return` already serves "pass to the next tier"), not new kinds
//! of objects.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// Default name of our nftables table (family `inet`).
pub const DEFAULT_TABLE: &str = "flock-netpol";

/// Address family of a set, a map or an address match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// Layer 4 protocol a rule can match on (`meta l4proto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
    Icmpv6,
}

impl Proto {
    /// IANA protocol number, as `meta l4proto` compares it.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
            Proto::Icmpv6 => 58,
        }
    }

    /// The keyword nft uses for it.
    pub fn nft_name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
            Proto::Icmpv6 => "ipv6-icmp",
        }
    }
}

/// Which address of the packet a match or a map lookup reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddrField {
    Saddr,
    Daddr,
}

/// Netfilter hook of a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    Forward,
    Input,
    Output,
}

/// Policy of a base chain (what happens when no rule gave a final verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChainPolicy {
    Accept,
    Drop,
}

/// Base chain parameters: `type filter hook <hook> priority <priority>; policy <policy>;`
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BaseChain {
    pub hook: Hook,
    /// Numeric priority (`filter` is 0).
    pub priority: i32,
    pub policy: ChainPolicy,
}

/// Conntrack states, as a bit mask in the kernel's encoding
/// (`NF_CT_STATE_BIT`): invalid 1, established 2, related 4, new 8, untracked 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CtStates(pub u32);

impl CtStates {
    pub const INVALID: CtStates = CtStates(1);
    pub const ESTABLISHED: CtStates = CtStates(2);
    pub const RELATED: CtStates = CtStates(4);
    pub const NEW: CtStates = CtStates(8);
    pub const UNTRACKED: CtStates = CtStates(64);

    pub fn union(self, other: CtStates) -> CtStates {
        CtStates(self.0 | other.0)
    }
}

/// One match of a rule. A rule matches a packet when all its matches do.
/// Order inside a rule is significant for the back ends (dependencies first:
/// `L4Proto` before `Dport` or `Icmpv6Type`), and the translator emits them in
/// the order listed here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Match {
    /// `ct state established,related`: the packet's state is one of these.
    CtState(CtStates),
    /// `ip saddr @set` / `ip6 daddr @set`: the address is in the named set
    /// (whose family is `family`).
    AddrInSet {
        field: AddrField,
        family: Family,
        set: String,
    },
    /// `ip saddr 198.18.0.1` / `ip6 daddr fd00:198:18::1`: the address equals
    /// this one (of the family of `addr`).
    AddrEq { field: AddrField, addr: IpAddr },
    /// `meta l4proto tcp`.
    L4Proto(Proto),
    /// `th dport 80` when `lo == hi`, else `th dport >= lo th dport <= hi`.
    /// Always preceded by an `L4Proto` of TCP, UDP or SCTP.
    Dport { lo: u16, hi: u16 },
    /// `icmpv6 type >= lo icmpv6 type <= hi` (or `== lo` when equal).
    /// Always preceded by `L4Proto(Icmpv6)`.
    Icmpv6Type { lo: u8, hi: u8 },
}

/// The verdict (final statement) of a rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    Accept,
    Drop,
    /// Back to the calling chain (the next rule after the jump).
    Return,
    Jump(String),
    /// `ip saddr vmap @map` / `ip6 daddr vmap @map`: dispatch through a
    /// verdict map; no verdict when the address is not in it.
    Vmap {
        field: AddrField,
        family: Family,
        map: String,
    },
}

/// One rule: all matches, then the verdict, with a counter when `counter`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    pub matches: Vec<Match>,
    /// `counter` statement before the verdict.
    pub counter: bool,
    pub verdict: Verdict,
    /// Shown in the script and stored in the kernel (rule user data):
    /// names the policy (`namespace/name`) or the built-in purpose of the rule.
    pub comment: String,
}

/// A chain: a base chain when `base` is set, else a regular chain reached
/// by jumps.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Chain {
    pub base: Option<BaseChain>,
    pub rules: Vec<Rule>,
    /// Shown in the script as a comment line (not stored in the kernel).
    pub comment: String,
}

/// An inclusive address range; `start == end` is a single address.
/// Both ends have the same family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    pub start: IpAddr,
    pub end: IpAddr,
}

/// A named address set with the `interval` flag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddrSet {
    pub family: Family,
    /// Sorted, non-overlapping and non-adjacent (merged) intervals.
    pub elements: Vec<Interval>,
    /// Shown in the script as a comment line (not stored in the kernel).
    pub comment: String,
}

/// A named verdict map keyed by single addresses: `address : jump chain`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VerdictMap {
    pub family: Family,
    /// Address -> name of the chain to jump to.
    pub elements: BTreeMap<IpAddr, String>,
    pub comment: String,
}

/// One nftables table of family `inet`, complete. Replacing the kernel's table
/// with this one is the unit of enforcement.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleSet {
    pub table: String,
    pub sets: BTreeMap<String, AddrSet>,
    pub maps: BTreeMap<String, VerdictMap>,
    /// All chains by name. The back ends create every chain before any rule,
    /// so rules may jump to chains in any order.
    pub chains: BTreeMap<String, Chain>,
}

// Constructors: shorthands for the literals above, for the translator and
// for hand-built rulesets in tests. Each builds plain data, checks nothing.

impl Interval {
    /// `start-end` (both included).
    pub fn new(start: IpAddr, end: IpAddr) -> Interval {
        Interval { start, end }
    }

    /// One address: `addr`.
    pub fn single(addr: IpAddr) -> Interval {
        Interval::new(addr, addr)
    }
}

impl Match {
    /// `ip saddr @set` / `ip6 daddr @set` (by `field` and `family`).
    pub fn addr_in(field: AddrField, family: Family, set: impl Into<String>) -> Match {
        Match::AddrInSet {
            field,
            family,
            set: set.into(),
        }
    }

    /// `ip saddr @set` / `ip6 saddr @set`.
    pub fn saddr_in(family: Family, set: impl Into<String>) -> Match {
        Match::addr_in(AddrField::Saddr, family, set)
    }

    /// `ip daddr @set` / `ip6 daddr @set`.
    pub fn daddr_in(family: Family, set: impl Into<String>) -> Match {
        Match::addr_in(AddrField::Daddr, family, set)
    }

    /// `ip saddr 198.18.0.1` / `ip6 saddr fd00:198:18::1`.
    pub fn saddr_eq(addr: IpAddr) -> Match {
        Match::AddrEq {
            field: AddrField::Saddr,
            addr,
        }
    }

    /// `ip daddr 198.18.0.1` / `ip6 daddr fd00:198:18::1`.
    pub fn daddr_eq(addr: IpAddr) -> Match {
        Match::AddrEq {
            field: AddrField::Daddr,
            addr,
        }
    }

    /// `th dport 80`: one port (after an `L4Proto`).
    pub fn dport(port: u16) -> Match {
        Match::Dport { lo: port, hi: port }
    }
}

impl Verdict {
    /// `jump chain`.
    pub fn jump(chain: impl Into<String>) -> Verdict {
        Verdict::Jump(chain.into())
    }

    /// `ip saddr vmap @map` / `ip6 daddr vmap @map` (by `field` and `family`).
    pub fn vmap(field: AddrField, family: Family, map: impl Into<String>) -> Verdict {
        Verdict::Vmap {
            field,
            family,
            map: map.into(),
        }
    }
}

impl Rule {
    /// `<matches> <verdict> comment "<comment>"`, without a counter.
    pub fn new(matches: Vec<Match>, verdict: Verdict, comment: impl Into<String>) -> Rule {
        Rule {
            matches,
            counter: false,
            verdict,
            comment: comment.into(),
        }
    }

    /// This rule with a `counter` before its verdict.
    pub fn counted(self) -> Rule {
        Rule {
            counter: true,
            ..self
        }
    }
}

impl BaseChain {
    /// `type filter hook <hook> priority <priority>; policy <policy>;`
    pub fn new(hook: Hook, priority: i32, policy: ChainPolicy) -> BaseChain {
        BaseChain {
            hook,
            priority,
            policy,
        }
    }
}

impl Chain {
    /// A regular chain (reached by jumps).
    pub fn regular(rules: Vec<Rule>, comment: impl Into<String>) -> Chain {
        Chain {
            base: None,
            rules,
            comment: comment.into(),
        }
    }

    /// A base chain with these parameters.
    pub fn base(base: BaseChain, rules: Vec<Rule>, comment: impl Into<String>) -> Chain {
        Chain {
            base: Some(base),
            rules,
            comment: comment.into(),
        }
    }
}

impl AddrSet {
    /// `set { type ipv4_addr; flags interval; elements = { ... } }` (or
    /// `ipv6_addr`); `elements` must already be sorted and merged.
    pub fn new(family: Family, elements: Vec<Interval>, comment: impl Into<String>) -> AddrSet {
        AddrSet {
            family,
            elements,
            comment: comment.into(),
        }
    }
}

impl VerdictMap {
    /// `map { type ipv4_addr : verdict; elements = { addr : jump chain, ... } }`
    /// (or `ipv6_addr`).
    pub fn new(
        family: Family,
        elements: BTreeMap<IpAddr, String>,
        comment: impl Into<String>,
    ) -> VerdictMap {
        VerdictMap {
            family,
            elements,
            comment: comment.into(),
        }
    }
}

/// Counts that describe the size of a ruleset (logs, metrics, benches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub chains: usize,
    pub rules: usize,
    pub sets: usize,
    pub maps: usize,
    pub set_elements: usize,
    pub map_elements: usize,
}

impl RuleSet {
    pub fn new(table: impl Into<String>) -> RuleSet {
        RuleSet {
            table: table.into(),
            ..RuleSet::default()
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            chains: self.chains.len(),
            rules: self.chains.values().map(|c| c.rules.len()).sum(),
            sets: self.sets.len(),
            maps: self.maps.len(),
            set_elements: self.sets.values().map(|s| s.elements.len()).sum(),
            map_elements: self.maps.values().map(|m| m.elements.len()).sum(),
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} chains, {} rules, {} sets ({} elements), {} maps ({} elements)",
            self.chains, self.rules, self.sets, self.set_elements, self.maps, self.map_elements
        )
    }
}

/// A problem found in the input that did not stop translation. The object it
/// names stays fail-closed (its pods isolated, nothing opened by it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Warning {
    /// `NetworkPolicy ns/name`, `Pod ns/name`, ...
    pub object: String,
    /// JSON-path-like field, e.g. `spec.ingress[0].from[1].ipBlock.cidr`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.object, self.field, self.message)
    }
}
