//! Translator: pure `(Snapshot, node name) -> RuleSet` plus warnings.
//!
//! Must not: do I/O, log, read a clock, or depend on hash order.
//!
//! # The ruleset it builds (table `inet <table>`)
//!
//! ```text
//! map ingress-v4 { type ipv4_addr : verdict; elements = { <local pod IPv4> : jump pin-<pod> } }
//! map ingress-v6 / egress-v4 / egress-v6       (same, keyed by IPv6 / by source)
//! set <peer sets> { type ipv4_addr; flags interval; elements = { ... } }   (and ipv6_addr)
//!
//! chain forward {
//!     type filter hook forward priority filter; policy accept;
//!     ct state established,related accept            # replies of allowed connections
//!     meta l4proto ipv6-icmp icmpv6 type >= 133 icmpv6 type <= 137 accept   # neighbour discovery
//!     ip saddr vmap @egress-v4                        # isolated local sources: egress check
//!     ip6 saddr vmap @egress-v6
//!     ip daddr vmap @ingress-v4                       # isolated local destinations: ingress check
//!     ip6 daddr vmap @ingress-v6
//! }
//! chain pin-<pod> {             # one per ingress-isolated local pod
//!     ip saddr <pod IPv4> accept    # a pod to itself (hairpin)
//!     ip6 saddr <pod IPv6> accept
//!     jump in-<class>
//! }
//! chain in-<class> {            # shared by pods with the same effective ingress rules
//!     ip saddr @<peers> meta l4proto tcp th dport 80 accept   # policy ns/name
//!     ...
//!     counter drop                                            # default deny
//! }
//! chain pout-<pod> { ip daddr <own IP> return ...; jump out-<class> }
//! chain out-<class> { ... return ...; counter drop }   # egress allows `return` to forward
//! ```
//!
//! Node-to-pod traffic leaves through the output hook and is not filtered
//! (kubelet probes); pod-to-node traffic reaches the input hook, also not
//! filtered. Everything not in a map (pods not isolated, remote pods) passes
//! our table untouched; other tables still decide for themselves.

use crate::model::{RuleSet, Warning};
use crate::snapshot::Snapshot;

/// What the translator produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub ruleset: RuleSet,
    /// Problems in the input; every object named stays fail-closed.
    pub warnings: Vec<Warning>,
}

/// Build the ruleset that enforces `snapshot`'s policies on `node`'s pods, in
/// table `table`.
pub fn translate(snapshot: &Snapshot, node: &str, table: &str) -> Translation {
    let _ = (snapshot, node);
    Translation {
        ruleset: RuleSet::new(table),
        warnings: Vec::new(),
    }
}
