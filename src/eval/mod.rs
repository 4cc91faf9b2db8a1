//! Packet evaluator: runs one packet through the forward base chain(s) of a
//! `RuleSet` the way nftables would, and says which rule decided.
//!
//! Used by the property tests (the translator's output against the reference
//! evaluator) and meant to back a future `explain` command.
//!
//! Must not: do I/O, know Kubernetes, or panic on a malformed ruleset (a
//! dangling chain, set or map name, a jump loop or a too deep jump stack is
//! an [`EvalError`]).
//!
//! nftables semantics modelled:
//! - base chains on the forward hook run in (priority, name) order; `accept`
//!   ends one base chain and the next one still runs; `drop` is final; the end
//!   of a base chain (or a `return` in it) applies its policy;
//! - `jump` runs the target chain and comes back to the next rule when it
//!   ends or `return`s; `vmap` lookups jump to the chain of the matching
//!   element and do nothing when no element matches;
//! - an `ip ...` / `ip6 ...` match never matches a packet of the other family;
//! - at most [`MAX_JUMP_DEPTH`] nested jumps (the kernel's jump stack).

use std::fmt;
use std::net::IpAddr;

use crate::model::{
    AddrField, Chain, ChainPolicy, CtStates, Family, Hook, Match, Proto, Rule, RuleSet, Verdict,
};

/// The kernel's jump stack (`NFT_JUMP_STACK_SIZE`).
pub const MAX_JUMP_DEPTH: usize = 16;

/// What the evaluator needs to know about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Proto,
    /// Destination port (TCP, UDP, SCTP).
    pub dport: Option<u16>,
    /// ICMPv6 type (ICMPv6 only).
    pub icmpv6_type: Option<u8>,
    /// Conntrack state of the packet (one bit).
    pub ct: CtStates,
}

impl Packet {
    /// The first packet of a new TCP/UDP/SCTP connection.
    pub fn first(src: IpAddr, dst: IpAddr, proto: Proto, dport: u16) -> Packet {
        Packet {
            src,
            dst,
            proto,
            dport: Some(dport),
            icmpv6_type: None,
            ct: CtStates::NEW,
        }
    }

    fn addr(&self, field: AddrField) -> IpAddr {
        match field {
            AddrField::Saddr => self.src,
            AddrField::Daddr => self.dst,
        }
    }
}

/// The final word of our table on a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept,
    Drop,
}

/// One rule that matched and moved the packet (a jump, a vmap hit, or the
/// final accept / drop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub chain: String,
    /// Index of the rule in its chain.
    pub rule: usize,
    pub comment: String,
    /// What happened: `jump X`, `vmap M -> jump X`, `accept`, `drop`, `return`.
    pub action: String,
}

/// The decision and how it came about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    /// Chain whose rule (or policy) decided.
    pub chain: String,
    /// The deciding rule; `None` when a base chain's policy decided.
    pub rule: Option<usize>,
    /// The deciding rule's comment, or a description of the policy.
    pub comment: String,
    /// Every rule that moved the packet, in order.
    pub trace: Vec<Step>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.decision {
            Decision::Accept => "accept",
            Decision::Drop => "drop",
        };
        match self.rule {
            Some(i) => write!(
                f,
                "{verdict} by chain {} rule #{i} ({})",
                self.chain, self.comment
            )?,
            None => write!(f, "{verdict} by {}", self.comment)?,
        }
        for step in &self.trace {
            write!(
                f,
                "\n  {}#{}: {} ({})",
                step.chain, step.rule, step.action, step.comment
            )?;
        }
        Ok(())
    }
}

/// A ruleset the evaluator cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("chain {chain} rule #{rule}: jump to unknown chain {target}")]
    UnknownChain {
        chain: String,
        rule: usize,
        target: String,
    },
    #[error("chain {chain} rule #{rule}: jump to base chain {target}")]
    JumpToBaseChain {
        chain: String,
        rule: usize,
        target: String,
    },
    #[error("chain {chain} rule #{rule}: unknown set {set}")]
    UnknownSet {
        chain: String,
        rule: usize,
        set: String,
    },
    #[error("chain {chain} rule #{rule}: unknown verdict map {map}")]
    UnknownMap {
        chain: String,
        rule: usize,
        map: String,
    },
    #[error("chain {chain} rule #{rule}: {object} is not of the family the rule reads")]
    FamilyMismatch {
        chain: String,
        rule: usize,
        object: String,
    },
    #[error("jump loop: {path}")]
    Loop { path: String },
    #[error("more than {MAX_JUMP_DEPTH} nested jumps: {path}")]
    TooDeep { path: String },
}

/// Run `pkt` through every forward base chain of `rs`.
pub fn eval(rs: &RuleSet, pkt: &Packet) -> Result<Outcome, EvalError> {
    let mut bases: Vec<(&String, &Chain, i32)> = rs
        .chains
        .iter()
        .filter_map(|(name, c)| match &c.base {
            Some(b) if b.hook == Hook::Forward => Some((name, c, b.priority)),
            _ => None,
        })
        .collect();
    bases.sort_by(|a, b| (a.2, a.0).cmp(&(b.2, b.0)));
    let mut trace = Vec::new();
    let mut last = None;
    for (name, chain, _) in bases {
        let mut stack = vec![name.clone()];
        let outcome = match run(rs, name, chain, pkt, &mut stack, &mut trace)? {
            Some(end) => end,
            None => {
                let policy = chain
                    .base
                    .as_ref()
                    .map_or(ChainPolicy::Accept, |b| b.policy);
                let decision = match policy {
                    ChainPolicy::Accept => Decision::Accept,
                    ChainPolicy::Drop => Decision::Drop,
                };
                End {
                    decision,
                    chain: name.clone(),
                    rule: None,
                    comment: format!("policy of base chain {name}"),
                }
            }
        };
        let drop = outcome.decision == Decision::Drop;
        last = Some(outcome);
        if drop {
            break;
        }
    }
    let end = last.unwrap_or_else(|| End {
        decision: Decision::Accept,
        chain: String::new(),
        rule: None,
        comment: "no forward base chain".to_string(),
    });
    Ok(Outcome {
        decision: end.decision,
        chain: end.chain,
        rule: end.rule,
        comment: end.comment,
        trace,
    })
}

/// A final verdict reached inside a chain.
struct End {
    decision: Decision,
    chain: String,
    rule: Option<usize>,
    comment: String,
}

/// Run one chain; `Ok(None)` when it ends or returns without a final verdict.
fn run(
    rs: &RuleSet,
    name: &str,
    chain: &Chain,
    pkt: &Packet,
    stack: &mut Vec<String>,
    trace: &mut Vec<Step>,
) -> Result<Option<End>, EvalError> {
    for (i, rule) in chain.rules.iter().enumerate() {
        if !matches_all(rs, name, i, rule, pkt)? {
            continue;
        }
        let step = |action: String| Step {
            chain: name.to_string(),
            rule: i,
            comment: rule.comment.clone(),
            action,
        };
        let end = |decision| End {
            decision,
            chain: name.to_string(),
            rule: Some(i),
            comment: rule.comment.clone(),
        };
        let target = match &rule.verdict {
            Verdict::Accept => {
                trace.push(step("accept".into()));
                return Ok(Some(end(Decision::Accept)));
            }
            Verdict::Drop => {
                trace.push(step("drop".into()));
                return Ok(Some(end(Decision::Drop)));
            }
            Verdict::Return => {
                trace.push(step("return".into()));
                return Ok(None);
            }
            Verdict::Jump(target) => {
                trace.push(step(format!("jump {target}")));
                target.clone()
            }
            Verdict::Vmap { field, family, map } => {
                let m = rs.maps.get(map).ok_or_else(|| EvalError::UnknownMap {
                    chain: name.to_string(),
                    rule: i,
                    map: map.clone(),
                })?;
                if m.family != *family {
                    return Err(EvalError::FamilyMismatch {
                        chain: name.to_string(),
                        rule: i,
                        object: format!("map {map}"),
                    });
                }
                let addr = pkt.addr(*field);
                if Family::of(&addr) != *family {
                    continue;
                }
                match m.elements.get(&addr) {
                    None => continue,
                    Some(target) => {
                        trace.push(step(format!("vmap {map}: {addr} -> jump {target}")));
                        target.clone()
                    }
                }
            }
        };
        let next = rs
            .chains
            .get(&target)
            .ok_or_else(|| EvalError::UnknownChain {
                chain: name.to_string(),
                rule: i,
                target: target.clone(),
            })?;
        if next.base.is_some() {
            return Err(EvalError::JumpToBaseChain {
                chain: name.to_string(),
                rule: i,
                target,
            });
        }
        let looped = stack.contains(&target);
        stack.push(target.clone());
        if looped {
            return Err(EvalError::Loop {
                path: stack.join(" -> "),
            });
        }
        if stack.len() > MAX_JUMP_DEPTH + 1 {
            return Err(EvalError::TooDeep {
                path: stack.join(" -> "),
            });
        }
        let result = run(rs, &target, next, pkt, stack, trace)?;
        stack.pop();
        if result.is_some() {
            return Ok(result);
        }
    }
    Ok(None)
}

fn matches_all(
    rs: &RuleSet,
    chain: &str,
    rule: usize,
    r: &Rule,
    pkt: &Packet,
) -> Result<bool, EvalError> {
    for m in &r.matches {
        let hit = match m {
            Match::CtState(states) => pkt.ct.0 & states.0 != 0,
            Match::AddrInSet { field, family, set } => {
                let s = rs.sets.get(set).ok_or_else(|| EvalError::UnknownSet {
                    chain: chain.to_string(),
                    rule,
                    set: set.clone(),
                })?;
                if s.family != *family {
                    return Err(EvalError::FamilyMismatch {
                        chain: chain.to_string(),
                        rule,
                        object: format!("set {set}"),
                    });
                }
                let addr = pkt.addr(*field);
                Family::of(&addr) == *family
                    && s.elements
                        .iter()
                        .any(|iv| iv.start <= addr && addr <= iv.end)
            }
            Match::AddrEq { field, addr } => pkt.addr(*field) == *addr,
            Match::L4Proto(p) => pkt.proto == *p,
            Match::Dport { lo, hi } => pkt.dport.is_some_and(|d| *lo <= d && d <= *hi),
            Match::Icmpv6Type { lo, hi } => {
                pkt.proto == Proto::Icmpv6 && pkt.icmpv6_type.is_some_and(|t| *lo <= t && t <= *hi)
            }
        };
        if !hit {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
