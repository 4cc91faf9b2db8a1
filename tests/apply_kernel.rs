//! The apply stage against the real kernel, each test in a throwaway network
//! namespace: commit, atomic rejection naming the object, foreign tables left
//! alone, cleanup.

mod common;

use std::net::IpAddr;

use common::fixture::{ip, sample, skeleton};
use flock_netpol::apply::{self, Dataplane};
use flock_netpol::model::*;
use flock_netpol::render::render;
use serde_json::Value;

#[test]
fn a_committed_ruleset_is_listed_by_nft() {
    if common::skip_unless_root_and_nft("a_committed_ruleset_is_listed_by_nft") {
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
        "ip saddr @peers-v4 tcp dport 80 accept comment \"x/allow-web\"",
        "198.18.0.0/24",
        "jump in-a",
        "counter packets 0 bytes 0 drop comment \"default deny\"",
    ] {
        assert!(listed.contains(want), "missing {want:?} in\n{listed}");
    }
}

/// What `sample("fnp")` adds to the skeleton, written by hand as an nft
/// script. The skeleton itself (the translator's `forward` chain and maps)
/// is rendered: that the renderer and the netlink batch agree on the
/// translator's output is what `tests/parity.rs` checks.
const SAMPLE_SCRIPT: &str = r#"
table inet fnp {
    set peers-v4 {
        type ipv4_addr; flags interval
        elements = { 0.0.0.0/8, 198.18.0.0/24, 198.18.1.5, 198.18.2.1-198.18.2.9, 255.255.255.0/24 }
    }
    set peers-v6 {
        type ipv6_addr; flags interval
        elements = { fd00:198:18::/64, fd00:198:18:1::5-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff }
    }
    set all-v6 { type ipv6_addr; flags interval; elements = { ::/0 } }
    set empty-v4 { type ipv4_addr; flags interval; }
    chain pin-a {
        ip saddr 198.18.0.10 accept comment "hairpin"
        ip6 saddr fd00:198:18::10 accept comment "hairpin"
        jump in-a
    }
    chain in-a {
        ip saddr @peers-v4 meta l4proto tcp th dport 80 accept comment "x/allow-web"
        ip6 daddr @peers-v6 meta l4proto udp th dport >= 1000 th dport <= 2000 return comment "x/range"
        ct state new meta l4proto sctp drop comment "x/sctp"
        counter ip6 saddr vmap @egress-v6 comment "ingress 'dispatch' "
        counter drop comment "default deny"
    }
}
add element inet fnp ingress-v4 { 198.18.0.10 : jump pin-a, 198.18.0.11 : jump pin-a }
add element inet fnp ingress-v6 { fd00:198:18::10 : jump pin-a }
"#;

fn listed(table: &str) -> Vec<Value> {
    common::nftjson::table(table).expect("nft -j list table")
}

#[test]
fn the_netlink_table_equals_the_one_nft_makes_from_the_same_script() {
    if common::skip_unless_root_and_nft(
        "the_netlink_table_equals_the_one_nft_makes_from_the_same_script",
    ) {
        return;
    }
    let ours = common::in_netns(|| {
        apply::commit_once(&sample("fnp")).expect("commit");
        listed("fnp")
    });
    let script = render(&skeleton("fnp")) + SAMPLE_SCRIPT;
    let s1 = script.clone();
    let theirs = common::in_netns(move || {
        common::nft(&["-f", "-"], Some(&s1)).expect("nft -f");
        listed("fnp")
    });
    common::nftjson::same(&ours, &theirs, &script).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_rejected_commit_leaves_the_previous_table_and_names_the_rule() {
    if common::skip_unless_root_and_nft(
        "a_rejected_commit_leaves_the_previous_table_and_names_the_rule",
    ) {
        return;
    }
    common::in_netns(|| {
        let mut kernel = apply::Kernel::new();
        kernel.commit(&sample("fnp")).expect("first commit");
        let before = listed("fnp");
        let mut bad = sample("fnp");
        // Also drop a set and add one: none of it may reach the kernel.
        bad.sets.remove("peers-v6");
        let broken = Rule::new(vec![], Verdict::jump("missing"), "ns/broken");
        bad.chains.get_mut("in-a").unwrap().rules.insert(1, broken);
        let err = kernel.commit(&bad).expect_err("a jump to a missing chain");
        let text = err.to_string();
        assert!(
            text.contains("rule 1 in chain in-a (comment \"ns/broken\")"),
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
    if common::skip_unless_root_and_nft("foreign_tables_are_identical_after_commit_and_cleanup") {
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
    if common::skip_unless_root_and_nft("a_new_commit_replaces_the_whole_table") {
        return;
    }
    common::in_netns(|| {
        apply::commit_once(&sample("fnp")).unwrap();
        let mut smaller = sample("fnp");
        smaller.sets.remove("peers-v6");
        smaller.chains.get_mut("in-a").unwrap().rules.remove(1);
        smaller.maps.get_mut("ingress-v4").unwrap().elements.clear();
        apply::commit_once(&smaller).unwrap();
        let text = common::nft(&["list", "table", "inet", "fnp"], None).unwrap();
        assert!(!text.contains("peers-v6"), "{text}");
        assert!(!text.contains("x/range"), "{text}");
        assert!(!text.contains("198.18.0.10 : jump"), "{text}");
        assert!(text.contains("x/allow-web\""), "{text}");
    });
}

/// 20,000 rules in 200 chains and 100,000 set elements (single IPv6
/// addresses, so 200,001 kernel elements with the interval ends).
fn large(table: &str) -> RuleSet {
    let mut rs = RuleSet::new(table);
    let base = u128::from("fd00:198:18:1::".parse::<std::net::Ipv6Addr>().unwrap());
    let elements = (0..100_000u128)
        .map(|i| Interval::single(IpAddr::V6((base + 2 * i).into())))
        .collect();
    rs.sets
        .insert("big".into(), AddrSet::new(Family::V6, elements, ""));
    let mut forward = Vec::new();
    for c in 0..200 {
        let name = format!("c{c:03}");
        forward.push(Rule::new(vec![], Verdict::jump(&name), ""));
        let rules = (0..100u16)
            .map(|r| {
                let matches = vec![
                    Match::saddr_in(Family::V6, "big"),
                    Match::L4Proto(Proto::Tcp),
                    Match::dport(1000 + r),
                ];
                Rule::new(matches, Verdict::Accept, format!("ns-{c}/policy-{r}"))
            })
            .collect();
        rs.chains.insert(name, Chain::regular(rules, ""));
    }
    forward.truncate(100); // 200 jumps would make 20,200 rules; keep it round
    let hook = BaseChain::new(Hook::Forward, 0, ChainPolicy::Accept);
    rs.chains
        .insert("forward".into(), Chain::base(hook, forward, ""));
    rs.chains.get_mut("c199").unwrap().rules.truncate(0);
    rs
}

#[test]
fn twenty_thousand_rules_and_a_hundred_thousand_elements_commit() {
    if common::skip_unless_root_and_nft(
        "twenty_thousand_rules_and_a_hundred_thousand_elements_commit",
    ) {
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
