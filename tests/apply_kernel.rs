//! The apply stage against the real kernel, each test in a throwaway network
//! namespace: commit, atomic rejection naming the object, foreign tables left
//! alone, cleanup.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use flock_netpol::apply::{self, Dataplane};
use flock_netpol::model::*;
use serde_json::Value;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rule(matches: Vec<Match>, verdict: Verdict, comment: &str) -> Rule {
    Rule {
        matches,
        counter: false,
        verdict,
        comment: comment.into(),
    }
}

/// The base chain `forward` (filter, priority 0, policy accept).
fn forward_chain(rules: Vec<Rule>) -> Chain {
    Chain {
        base: Some(BaseChain {
            hook: Hook::Forward,
            priority: 0,
            policy: ChainPolicy::Accept,
        }),
        rules,
        comment: String::new(),
    }
}

/// A small ruleset with every kind of object and match.
fn sample(table: &str) -> RuleSet {
    let mut rs = RuleSet::new(table);
    rs.sets.insert(
        "peers-v4".into(),
        AddrSet {
            family: Family::V4,
            elements: vec![
                Interval {
                    start: ip("198.18.0.0"),
                    end: ip("198.18.0.255"),
                },
                Interval {
                    start: ip("198.18.5.1"),
                    end: ip("198.18.5.1"),
                },
            ],
            comment: String::new(),
        },
    );
    rs.sets.insert(
        "peers-v6".into(),
        AddrSet {
            family: Family::V6,
            elements: vec![Interval {
                start: ip("fd00:198:18::"),
                end: ip("fd00:198:18::ffff"),
            }],
            comment: String::new(),
        },
    );
    rs.maps.insert(
        "ingress-v4".into(),
        VerdictMap {
            family: Family::V4,
            elements: BTreeMap::from([(ip("198.18.0.1"), "pin-a".to_string())]),
            comment: String::new(),
        },
    );
    rs.maps.insert(
        "ingress-v6".into(),
        VerdictMap {
            family: Family::V6,
            elements: BTreeMap::from([(ip("fd00:198:18::1"), "pin-a".to_string())]),
            comment: String::new(),
        },
    );
    let vmap = |family, map: &str| Verdict::Vmap {
        field: AddrField::Daddr,
        family,
        map: map.into(),
    };
    rs.chains.insert(
        "forward".into(),
        forward_chain(vec![
            rule(
                vec![Match::CtState(
                    CtStates::ESTABLISHED.union(CtStates::RELATED),
                )],
                Verdict::Accept,
                "replies",
            ),
            rule(
                vec![
                    Match::L4Proto(Proto::Icmpv6),
                    Match::Icmpv6Type { lo: 133, hi: 137 },
                ],
                Verdict::Accept,
                "neighbour discovery",
            ),
            rule(vec![], vmap(Family::V4, "ingress-v4"), ""),
            rule(vec![], vmap(Family::V6, "ingress-v6"), ""),
        ]),
    );
    rs.chains.insert(
        "pin-a".into(),
        Chain {
            base: None,
            rules: vec![
                rule(
                    vec![Match::AddrEq {
                        field: AddrField::Saddr,
                        addr: ip("198.18.0.1"),
                    }],
                    Verdict::Accept,
                    "hairpin",
                ),
                rule(vec![], Verdict::Jump("in-x".into()), ""),
            ],
            comment: String::new(),
        },
    );
    rs.chains.insert(
        "in-x".into(),
        Chain {
            base: None,
            rules: vec![
                rule(
                    vec![
                        Match::AddrInSet {
                            field: AddrField::Saddr,
                            family: Family::V4,
                            set: "peers-v4".into(),
                        },
                        Match::L4Proto(Proto::Tcp),
                        Match::Dport { lo: 80, hi: 80 },
                    ],
                    Verdict::Accept,
                    "ns/pol",
                ),
                rule(
                    vec![
                        Match::AddrInSet {
                            field: AddrField::Saddr,
                            family: Family::V6,
                            set: "peers-v6".into(),
                        },
                        Match::L4Proto(Proto::Udp),
                        Match::Dport { lo: 80, hi: 90 },
                    ],
                    Verdict::Return,
                    "ns/pol2",
                ),
                Rule {
                    matches: vec![],
                    counter: true,
                    verdict: Verdict::Drop,
                    comment: "default deny".into(),
                },
            ],
            comment: String::new(),
        },
    );
    rs
}

#[test]
fn a_committed_ruleset_is_listed_by_nft() {
    if common::skip_unless_root("a_committed_ruleset_is_listed_by_nft") || !common::have_nft() {
        return;
    }
    let listed = common::in_netns(|| {
        let report = apply::commit_once(&sample("fnp")).expect("commit");
        assert!(report.messages > 10, "{report}");
        common::nft(&["list", "table", "inet", "fnp"], None).unwrap()
    });
    eprintln!("{listed}");
    for want in [
        "ip daddr vmap @ingress-v4",
        "ip saddr @peers-v4 tcp dport 80 accept comment \"ns/pol\"",
        "198.18.0.0/24",
        "jump in-x",
        "counter packets 0 bytes 0 drop comment \"default deny\"",
    ] {
        assert!(listed.contains(want), "missing {want:?} in\n{listed}");
    }
}

/// `sample("fnp")` written by hand as an nft script.
const SAMPLE_SCRIPT: &str = r#"
table inet fnp {
    map ingress-v4 { type ipv4_addr : verdict; elements = { 198.18.0.1 : jump pin-a } }
    map ingress-v6 { type ipv6_addr : verdict; elements = { fd00:198:18::1 : jump pin-a } }
    set peers-v4 { type ipv4_addr; flags interval; elements = { 198.18.0.0/24, 198.18.5.1 } }
    set peers-v6 { type ipv6_addr; flags interval; elements = { fd00:198:18::-fd00:198:18::ffff } }
    chain forward {
        type filter hook forward priority 0; policy accept;
        ct state established,related accept comment "replies"
        meta l4proto ipv6-icmp icmpv6 type >= 133 icmpv6 type <= 137 accept comment "neighbour discovery"
        ip daddr vmap @ingress-v4
        ip6 daddr vmap @ingress-v6
    }
    chain pin-a {
        ip saddr 198.18.0.1 accept comment "hairpin"
        jump in-x
    }
    chain in-x {
        ip saddr @peers-v4 meta l4proto tcp th dport 80 accept comment "ns/pol"
        ip6 saddr @peers-v6 meta l4proto udp th dport >= 80 th dport <= 90 return comment "ns/pol2"
        counter drop comment "default deny"
    }
}
"#;

fn listed(table: &str) -> Vec<Value> {
    common::nftjson::table(table).expect("nft -j list table")
}

#[test]
fn the_netlink_table_equals_the_one_nft_makes_from_the_same_script() {
    if common::skip_unless_root("the_netlink_table_equals_the_one_nft_makes_from_the_same_script")
        || !common::have_nft()
    {
        return;
    }
    let ours = common::in_netns(|| {
        apply::commit_once(&sample("fnp")).expect("commit");
        listed("fnp")
    });
    let theirs = common::in_netns(|| {
        common::nft(&["-f", "-"], Some(SAMPLE_SCRIPT)).expect("nft -f");
        listed("fnp")
    });
    assert_eq!(
        common::nftjson::lines(&ours),
        common::nftjson::lines(&theirs)
    );
}

#[test]
fn a_rejected_commit_leaves_the_previous_table_and_names_the_rule() {
    if common::skip_unless_root("a_rejected_commit_leaves_the_previous_table_and_names_the_rule")
        || !common::have_nft()
    {
        return;
    }
    common::in_netns(|| {
        let mut kernel = apply::Kernel::new();
        kernel.commit(&sample("fnp")).expect("first commit");
        let before = listed("fnp");
        let mut bad = sample("fnp");
        // Also drop a set and add one: none of it may reach the kernel.
        bad.sets.remove("peers-v6");
        bad.chains.get_mut("in-x").unwrap().rules.insert(
            1,
            rule(vec![], Verdict::Jump("missing".into()), "ns/broken"),
        );
        let err = kernel.commit(&bad).expect_err("a jump to a missing chain");
        let text = err.to_string();
        assert!(
            text.contains("rule 1 in chain in-x (comment \"ns/broken\")"),
            "{text}"
        );
        assert!(err.kernel_errors().iter().all(|e| e.errno != 0), "{err:?}");
        assert_eq!(
            common::nftjson::lines(&listed("fnp")),
            common::nftjson::lines(&before)
        );
        eprintln!("rejected as expected: {text}");
        // The failed ruleset was not remembered: the kernel still holds the
        // first one, so committing it again is skipped, and the bad one is
        // tried again (and rejected again).
        assert!(kernel.commit(&sample("fnp")).unwrap().skipped);
        assert!(kernel.commit(&bad).is_err());
    });
}

#[test]
fn a_set_element_jumping_to_a_missing_chain_is_rejected_naming_the_map() {
    if common::skip_unless_root(
        "a_set_element_jumping_to_a_missing_chain_is_rejected_naming_the_map",
    ) {
        return;
    }
    common::in_netns(|| {
        let mut bad = sample("fnp");
        bad.maps
            .get_mut("ingress-v4")
            .unwrap()
            .elements
            .insert(ip("198.18.0.9"), "nowhere".into());
        let err = apply::commit_once(&bad).expect_err("rejected");
        assert!(
            err.to_string().contains("elements of set ingress-v4"),
            "{err}"
        );
        assert!(!apply::cleanup("fnp").unwrap(), "nothing was created");
    });
}

const FOREIGN: &str = r#"
table inet other {
    set s { type ipv4_addr; elements = { 198.18.7.7 } }
    chain c { type filter hook forward priority 10; policy accept; ip saddr @s counter drop comment "theirs"; }
}
table ip filter {
    chain FORWARD { type filter hook forward priority 0; policy accept; ip daddr 198.18.8.8 drop; }
}
"#;

#[test]
fn foreign_tables_are_identical_after_commit_and_cleanup() {
    if common::skip_unless_root("foreign_tables_are_identical_after_commit_and_cleanup")
        || !common::have_nft()
    {
        return;
    }
    common::in_netns(|| {
        common::nft(&["-f", "-"], Some(FOREIGN)).expect("nft -f");
        let foreign = || {
            let other = listed("other");
            let filter = common::nft(&["-j", "list", "table", "ip", "filter"], None).unwrap();
            (
                common::nftjson::lines(&other),
                common::nftjson::lines(&common::nftjson::normalise(&filter)),
            )
        };
        let before = foreign();
        apply::commit_once(&sample("fnp")).expect("commit");
        assert_eq!(foreign(), before, "after commit");
        apply::commit_once(&sample("fnp")).expect("second commit");
        assert_eq!(foreign(), before, "after a second commit");
        assert!(apply::cleanup("fnp").expect("cleanup"));
        assert_eq!(foreign(), before, "after cleanup");
        let tables = common::nft(&["list", "tables"], None).unwrap();
        assert!(!tables.contains("fnp"), "{tables}");
    });
}

#[test]
fn cleanup_of_an_absent_table_is_not_an_error() {
    if common::skip_unless_root("cleanup_of_an_absent_table_is_not_an_error") {
        return;
    }
    common::in_netns(|| {
        assert!(!apply::cleanup("fnp").expect("absent is fine"));
        apply::commit_once(&sample("fnp")).unwrap();
        assert!(apply::cleanup("fnp").unwrap());
        assert!(!apply::cleanup("fnp").unwrap());
    });
}

#[test]
fn a_new_commit_replaces_the_whole_table() {
    if common::skip_unless_root("a_new_commit_replaces_the_whole_table") || !common::have_nft() {
        return;
    }
    common::in_netns(|| {
        apply::commit_once(&sample("fnp")).unwrap();
        let mut smaller = sample("fnp");
        smaller.sets.remove("peers-v6");
        smaller.chains.get_mut("in-x").unwrap().rules.remove(1);
        smaller.maps.get_mut("ingress-v4").unwrap().elements.clear();
        apply::commit_once(&smaller).unwrap();
        let text = common::nft(&["list", "table", "inet", "fnp"], None).unwrap();
        assert!(!text.contains("peers-v6"), "{text}");
        assert!(!text.contains("ns/pol2"), "{text}");
        assert!(!text.contains("198.18.0.1 : jump"), "{text}");
        assert!(text.contains("ns/pol\""), "{text}");
    });
}

/// 20,000 rules in 200 chains and 100,000 set elements (single IPv6
/// addresses, so 200,001 kernel elements with the interval ends).
fn large(table: &str) -> RuleSet {
    let mut rs = RuleSet::new(table);
    let base = u128::from("fd00:198:18:1::".parse::<std::net::Ipv6Addr>().unwrap());
    let elements = (0..100_000u128)
        .map(|i| {
            let a = IpAddr::V6((base + 2 * i).into());
            Interval { start: a, end: a }
        })
        .collect();
    rs.sets.insert(
        "big".into(),
        AddrSet {
            family: Family::V6,
            elements,
            comment: String::new(),
        },
    );
    let mut forward = Vec::new();
    for c in 0..200 {
        let name = format!("c{c:03}");
        forward.push(rule(vec![], Verdict::Jump(name.clone()), ""));
        let rules = (0..100u16)
            .map(|r| {
                rule(
                    vec![
                        Match::AddrInSet {
                            field: AddrField::Saddr,
                            family: Family::V6,
                            set: "big".into(),
                        },
                        Match::L4Proto(Proto::Tcp),
                        Match::Dport {
                            lo: 1000 + r,
                            hi: 1000 + r,
                        },
                    ],
                    Verdict::Accept,
                    &format!("ns-{c}/policy-{r}"),
                )
            })
            .collect();
        rs.chains.insert(
            name,
            Chain {
                base: None,
                rules,
                comment: String::new(),
            },
        );
    }
    forward.truncate(100); // 200 jumps would make 20,200 rules; keep it round
    rs.chains.insert("forward".into(), forward_chain(forward));
    rs.chains.get_mut("c199").unwrap().rules.truncate(0);
    rs
}

#[test]
fn twenty_thousand_rules_and_a_hundred_thousand_elements_commit() {
    if common::skip_unless_root("twenty_thousand_rules_and_a_hundred_thousand_elements_commit")
        || !common::have_nft()
    {
        return;
    }
    let rs = large("fnp");
    let stats = rs.stats();
    assert_eq!(
        (stats.rules, stats.set_elements),
        (20_000, 100_000),
        "{stats}"
    );
    let (report, rules, elems) = common::in_netns(move || {
        let report = apply::commit_once(&rs).expect("large commit");
        // Replacing it works too (the old table is deleted in the same batch).
        apply::commit_once(&rs).expect("second large commit");
        let text = common::nft(&["list", "table", "inet", "fnp"], None).unwrap();
        let rules = text.matches("comment \"ns-").count() + text.matches("jump c").count();
        let json = common::nft(&["-j", "list", "set", "inet", "fnp", "big"], None).unwrap();
        let v: Value = serde_json::from_str(&json).unwrap();
        let elems = v["nftables"][1]["set"]["elem"]
            .as_array()
            .map_or(0, Vec::len);
        (report, rules, elems)
    });
    eprintln!("{report}");
    assert!(
        report.bytes > 4 << 20,
        "a batch larger than any default socket buffer"
    );
    assert_eq!(rules, 20_000);
    assert_eq!(elems, 100_000);
}
