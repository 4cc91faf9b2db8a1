//! Parity: the table the apply stage commits over netlink equals the table
//! `nft -f` makes from the rendered script of the same `RuleSet`, compared
//! as normalised `nft -j list table` (see `common::nftjson`). Checked for
//! every fixture on every node it names, for random clusters (through the
//! translator) and for random rulesets that use every kind of object, match
//! and verdict directly. Root only; each side in its own throwaway netns.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::skip_unless_root_and_nft as skip;
use flock_netpol::apply;
use flock_netpol::model::*;
use flock_netpol::{manifests, render, translate};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const TABLE: &str = "fnp-parity";

/// Random cases per property (at least 200 per run each).
const CASES: u32 = 200;

/// Both sides, each in the current netns, one after the other (our table is
/// deleted in between): Err(diff) when they differ.
fn compare_here(rs: &RuleSet) -> Result<(), String> {
    apply::commit_once(rs).map_err(|e| format!("netlink commit: {e}"))?;
    let ours = common::nftjson::table(&rs.table)?;
    apply::cleanup(&rs.table).map_err(|e| format!("cleanup: {e}"))?;
    let script = render::render(rs);
    common::nft(&["-f", "-"], Some(&script)).map_err(|e| format!("nft -f: {e}\n{script}"))?;
    let theirs = common::nftjson::table(&rs.table)?;
    common::nft(&["delete", "table", "inet", &rs.table], None)?;
    common::nftjson::same(&ours, &theirs, &script)
}

/// Compare the netlink commit of `rs` with `nft -f` of `script`, each in
/// its own fresh namespace.
fn compare_apart(rs: &RuleSet, script: &str) -> Result<(), String> {
    let r1 = rs.clone();
    let ours = common::in_netns(move || -> Result<_, String> {
        apply::commit_once(&r1).map_err(|e| format!("netlink commit: {e}"))?;
        common::nftjson::table(&r1.table)
    })?;
    let s1 = script.to_string();
    let table = rs.table.clone();
    let theirs = common::in_netns(move || -> Result<_, String> {
        common::nft(&["-f", "-"], Some(&s1)).map_err(|e| format!("nft -f: {e}"))?;
        common::nftjson::table(&table)
    })?;
    common::nftjson::same(&ours, &theirs, script)
}

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The manifest a golden `<cluster>.<node>.nft` was made from.
fn golden_cluster(stem: &str) -> std::path::PathBuf {
    if stem == "examples-cluster" {
        root().join("examples/cluster.yaml")
    } else {
        root().join(format!("tests/fixtures/{stem}.yaml"))
    }
}

#[test]
fn every_golden_script_makes_the_table_the_netlink_commit_makes() {
    if skip("every_golden_script_makes_the_table_the_netlink_commit_makes") {
        return;
    }
    let Ok(dir) = std::fs::read_dir(root().join("tests/golden")) else {
        eprintln!("SKIP: no tests/golden yet");
        return;
    };
    let mut files: Vec<_> = dir
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "nft"))
        .collect();
    files.sort();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let (stem, node) = name.rsplit_once('.').expect("<cluster>.<node>.nft");
        let snap = manifests::load(&[golden_cluster(stem)]).expect("golden's manifest loads");
        let rs = translate::translate(&snap, node, DEFAULT_TABLE).ruleset;
        let script = std::fs::read_to_string(file).unwrap();
        compare_apart(&rs, &script).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    eprintln!("{} golden scripts checked", files.len());
}

#[test]
fn every_fixture_commits_like_its_rendered_script_on_every_node() {
    if skip("every_fixture_commits_like_its_rendered_script_on_every_node") {
        return;
    }
    let mut files: Vec<_> = std::fs::read_dir(root().join("tests/fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "json"))
        .collect();
    files.push(root().join("examples/cluster.yaml"));
    files.sort();
    let mut checked = 0;
    for file in files {
        let Ok(snap) = manifests::load(std::slice::from_ref(&file)) else {
            eprintln!(
                "{}: not loadable (a bad-input fixture), skipped",
                file.display()
            );
            continue;
        };
        let nodes: BTreeSet<String> = snap.pods.iter().filter_map(|p| p.node.clone()).collect();
        for node in nodes.iter().map(String::as_str).chain(["no-such-node"]) {
            let rs = translate::translate(&snap, node, TABLE).ruleset;
            compare_apart(&rs, &render::render(&rs))
                .unwrap_or_else(|e| panic!("{} on {node}: {e}", file.display()));
            checked += 1;
        }
    }
    assert!(checked > 0, "no fixture checked");
}

/// Run `check` on `CASES` values of `strategy`, all inside one throwaway
/// netns (each case deletes what it made).
fn property<S>(strategy: fn() -> S, check: fn(S::Value) -> Result<(), String>)
where
    S: Strategy + 'static,
    S::Value: std::fmt::Debug,
{
    common::in_netns(move || {
        let strategy = strategy();
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            max_shrink_iters: 100,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&strategy, |v| check(v).map_err(TestCaseError::fail))
            .unwrap();
    });
}

#[test]
fn random_clusters_commit_like_their_rendered_script() {
    if skip("random_clusters_commit_like_their_rendered_script") {
        return;
    }
    property(common::gen::cluster, |snap| {
        for node in common::gen::NODES {
            let rs = translate::translate(&snap, node, TABLE).ruleset;
            compare_here(&rs).map_err(|e| format!("{node}: {e}"))?;
        }
        Ok(())
    });
}

#[test]
fn random_rulesets_commit_like_their_rendered_script() {
    if skip("random_rulesets_commit_like_their_rendered_script") {
        return;
    }
    property(ruleset, |rs| compare_here(&rs));
}

// ---- random rulesets -------------------------------------------------------

fn v4(offset: u32) -> IpAddr {
    // inside 198.18.0.0/15
    IpAddr::V4(Ipv4Addr::from(0xc612_0000u32 + (offset & 0x1_ffff)))
}

fn v6(offset: u32) -> IpAddr {
    // inside fd00:198:18::/48
    let base = u128::from("fd00:198:18::".parse::<Ipv6Addr>().unwrap());
    IpAddr::V6(Ipv6Addr::from(
        base + ((offset as u128) << 40) + offset as u128,
    ))
}

fn addr(family: Family, offset: u32) -> IpAddr {
    match family {
        Family::V4 => v4(offset),
        Family::V6 => v6(offset),
    }
}

fn as_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(family: Family, v: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// Sorted, merged, non-adjacent intervals from raw (start, length) draws,
/// sometimes reaching the zero or the all-ones address (`0.0.0.0/0`-like
/// ipBlocks produce those).
fn intervals(family: Family, raw: Vec<(u32, u32)>, low: bool, high: bool) -> Vec<Interval> {
    let max = match family {
        Family::V4 => u32::MAX as u128,
        Family::V6 => u128::MAX,
    };
    let mut spans: Vec<(u128, u128)> = raw
        .into_iter()
        .map(|(o, len)| {
            let s = as_u128(addr(family, o));
            (s, s + len as u128 % 300)
        })
        .collect();
    if low {
        spans.push((0, 5));
    }
    if high {
        spans.push((max - 7, max));
    }
    spans.sort();
    let mut merged: Vec<(u128, u128)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
        .into_iter()
        .map(|(s, e)| Interval {
            start: from_u128(family, s),
            end: from_u128(family, e),
        })
        .collect()
}

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![Just(Family::V4), Just(Family::V6)]
}

fn addr_set() -> impl Strategy<Value = AddrSet> {
    (
        family(),
        prop::collection::vec((any::<u32>(), any::<u32>()), 0..12),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(family, raw, low, high)| AddrSet {
            family,
            elements: intervals(family, raw, low, high),
            comment: "peers".into(),
        })
}

fn comment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z]{1,8}/[a-z0-9-]{1,12}",
        Just("with \"quotes\" and\ta tab".to_string()),
        "[a-zé ]{100,160}",
    ]
}

/// A rule skeleton drawn before we know the sets, maps and chains; indices
/// are taken modulo what exists.
#[derive(Debug, Clone)]
struct RawRule {
    ct: Option<u32>,
    addr: Option<(bool, bool, usize, u32)>, // (in set?, saddr?, set index, addr offset)
    v6: bool,
    l4: Option<(u8, u16, u16)>,
    counter: bool,
    verdict: (u8, usize),
    comment: String,
}

fn raw_rule() -> impl Strategy<Value = RawRule> {
    (
        prop::option::of(prop::sample::select(vec![2u32, 6, 8, 1, 0x4a])),
        prop::option::of((any::<bool>(), any::<bool>(), 0..8usize, any::<u32>())),
        any::<bool>(),
        prop::option::of((0u8..4, 1u16..65535, 0u16..200)),
        any::<bool>(),
        (0u8..5, 0..8usize),
        comment(),
    )
        .prop_map(|(ct, addr, v6, l4, counter, verdict, comment)| RawRule {
            ct,
            addr,
            v6,
            l4,
            counter,
            verdict,
            comment,
        })
}

fn ruleset() -> impl Strategy<Value = RuleSet> {
    (
        prop::collection::vec(addr_set(), 0..5),
        prop::collection::vec((family(), prop::collection::vec(any::<u32>(), 0..6)), 0..3),
        1..6usize,
        prop::collection::vec(prop::collection::vec(raw_rule(), 0..6), 6),
        (0u8..3, -300i32..300, any::<bool>()),
    )
        .prop_map(|(sets, maps, n_chains, rules, (hook, priority, drop))| {
            build(sets, maps, n_chains, rules, (hook, priority, drop))
        })
}

fn build(
    sets: Vec<AddrSet>,
    maps: Vec<(Family, Vec<u32>)>,
    n_chains: usize,
    rules: Vec<Vec<RawRule>>,
    (hook, priority, drop): (u8, i32, bool),
) -> RuleSet {
    let mut rs = RuleSet::new(TABLE);
    let chain_names: Vec<String> = (0..n_chains).map(|i| format!("c{i}")).collect();
    for (i, s) in sets.into_iter().enumerate() {
        rs.sets.insert(format!("set-{i}"), s);
    }
    for (i, (family, offsets)) in maps.into_iter().enumerate() {
        let elements: BTreeMap<IpAddr, String> = offsets
            .into_iter()
            .map(|o| (addr(family, o), chain_names[o as usize % n_chains].clone()))
            .collect();
        rs.maps.insert(
            format!("map-{i}"),
            VerdictMap {
                family,
                elements,
                comment: String::new(),
            },
        );
    }
    let set_names: Vec<(String, Family)> =
        rs.sets.iter().map(|(n, s)| (n.clone(), s.family)).collect();
    let map_names: Vec<(String, Family)> =
        rs.maps.iter().map(|(n, m)| (n.clone(), m.family)).collect();
    // chain index 0 is the base chain "forward"; regular chains c0..cN-1 may
    // only jump to chains after them (no loops); vmaps only from the base.
    for (ci, raw_rules) in rules.into_iter().enumerate().take(n_chains + 1) {
        let is_base = ci == 0;
        let mut chain_rules = Vec::new();
        for r in raw_rules {
            let family = if r.v6 { Family::V6 } else { Family::V4 };
            let mut matches = Vec::new();
            if let Some(ct) = r.ct {
                matches.push(Match::CtState(CtStates(ct)));
            }
            if let Some((in_set, saddr, si, off)) = r.addr {
                let field = if saddr {
                    AddrField::Saddr
                } else {
                    AddrField::Daddr
                };
                let of_family: Vec<_> = set_names.iter().filter(|(_, f)| *f == family).collect();
                if in_set && !of_family.is_empty() {
                    let set = of_family[si % of_family.len()].0.clone();
                    matches.push(Match::AddrInSet { field, family, set });
                } else {
                    matches.push(Match::AddrEq {
                        field,
                        addr: addr(family, off),
                    });
                }
            }
            if let Some((p, lo, span)) = r.l4 {
                let proto = [Proto::Tcp, Proto::Udp, Proto::Sctp, Proto::Icmpv6][p as usize];
                matches.push(Match::L4Proto(proto));
                if proto == Proto::Icmpv6 {
                    let lo = (lo % 256) as u8;
                    let hi = lo.saturating_add((span % 5) as u8);
                    matches.push(Match::Icmpv6Type { lo, hi });
                } else {
                    matches.push(Match::Dport {
                        lo,
                        hi: lo.saturating_add(span % 3 * span),
                    });
                }
            }
            let later: Vec<&String> = if is_base {
                chain_names.iter().collect()
            } else {
                chain_names.iter().skip(ci).collect()
            };
            let (kind, idx) = r.verdict;
            let maps_of: Vec<_> = map_names.iter().filter(|(_, f)| *f == family).collect();
            let verdict = match kind {
                0 => Verdict::Accept,
                1 => Verdict::Drop,
                2 if !is_base => Verdict::Return,
                3 if !later.is_empty() => Verdict::Jump(later[idx % later.len()].clone()),
                4 if is_base && !maps_of.is_empty() => Verdict::Vmap {
                    field: if idx % 2 == 0 {
                        AddrField::Saddr
                    } else {
                        AddrField::Daddr
                    },
                    family,
                    map: maps_of[idx % maps_of.len()].0.clone(),
                },
                _ => Verdict::Accept,
            };
            chain_rules.push(Rule {
                matches,
                counter: r.counter,
                verdict,
                comment: r.comment,
            });
        }
        let (name, base) = if is_base {
            let hook = [Hook::Forward, Hook::Input, Hook::Output][hook as usize];
            let policy = if drop {
                ChainPolicy::Drop
            } else {
                ChainPolicy::Accept
            };
            (
                "forward".to_string(),
                Some(BaseChain {
                    hook,
                    priority,
                    policy,
                }),
            )
        } else {
            (chain_names[ci - 1].clone(), None)
        };
        rs.chains.insert(
            name,
            Chain {
                base,
                rules: chain_rules,
                comment: String::new(),
            },
        );
    }
    // Regular chains without rules drawn still exist (maps may jump there).
    for name in &chain_names {
        rs.chains.entry(name.clone()).or_insert_with(|| Chain {
            base: None,
            rules: Vec::new(),
            comment: String::new(),
        });
    }
    rs
}
