//! Rendered scripts applied for real with `nft -f`, as root, each inside a
//! throwaway network namespace; and the expression table in `render`'s module
//! doc checked against what nft really sends (`nft --debug=netlink`).
//! Without root (or without nft) every test skips, saying so.

mod common;

use std::collections::BTreeMap;

use common::fixture::{self, ip, iv};
use common::{in_netns, nft, skip_unless_root_and_nft as skip};
use flock_netpol::model::{
    AddrField, AddrSet, Chain, CtStates, Family, Match, Proto, Rule, RuleSet, Verdict, VerdictMap,
};
use flock_netpol::render::render;

/// The shared sample (every construct the renderer knows, both families,
/// empty and full sets and maps, intervals ending at the all-ones address)
/// plus a comment longer than nft allows, which the renderer cuts.
fn kitchen_sink(table: &str) -> RuleSet {
    let mut rs = fixture::sample(table);
    let long = Rule::new(vec![], Verdict::Drop, "long ".repeat(40));
    let in_a = rs.chains.get_mut("in-a").expect("sample chain in-a");
    in_a.rules.insert(0, long);
    rs
}

/// Apply `script` twice in a row, then return `nft list table inet <table>`.
fn apply_twice(script: &str, table: &str) -> String {
    nft(&["-f", "-"], Some(script))
        .unwrap_or_else(|e| panic!("first nft -f failed: {e}\n{script}"));
    nft(&["-f", "-"], Some(script))
        .unwrap_or_else(|e| panic!("second nft -f failed: {e}\n{script}"));
    nft(&["list", "table", "inet", table], None).expect("nft list table")
}

#[test]
fn an_empty_ruleset_applies_twice() {
    if skip("an_empty_ruleset_applies_twice") {
        return;
    }
    let script = render(&RuleSet::new("fnp-empty"));
    let listed = in_netns(move || apply_twice(&script, "fnp-empty"));
    assert!(listed.contains("table inet fnp-empty"), "{listed}");
}

#[test]
fn every_construct_applies_twice_and_lists_back() {
    if skip("every_construct_applies_twice_and_lists_back") {
        return;
    }
    let script = render(&kitchen_sink("fnp-sink"));
    let listed = in_netns(move || apply_twice(&script, "fnp-sink"));
    for expected in [
        "198.18.2.1-198.18.2.9",
        "255.255.255.0/24",
        "0.0.0.0/8",
        "fd00:198:18:1::5-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "::/0",
        "198.18.0.10 : jump pin-a",
        "fd00:198:18::10 : jump pin-a",
        "ip daddr vmap @ingress-v4",
        "counter packets 0 bytes 0 ip6 saddr vmap @egress-v6 comment \"ingress 'dispatch' \"",
        "ct state established,related accept",
        "ip saddr @peers-v4 tcp dport 80 accept comment \"x/allow-web\"",
        "ip6 daddr @peers-v6 udp dport 1000-2000 return",
        "ct state new meta l4proto sctp drop comment \"x/sctp\"",
        &format!("drop comment \"{}lon\"", "long ".repeat(25)),
        "jump in-a",
        "type filter hook forward priority filter; policy accept;",
    ] {
        assert!(
            listed.contains(expected),
            "missing {expected:?} in\n{listed}"
        );
    }
}

#[test]
fn a_second_ruleset_replaces_the_first_and_leaves_other_tables_alone() {
    if skip("a_second_ruleset_replaces_the_first_and_leaves_other_tables_alone") {
        return;
    }
    let first = render(&kitchen_sink("fnp-swap"));
    let mut small = RuleSet::new("fnp-swap");
    let drop = Rule::new(vec![], Verdict::Drop, "");
    small
        .chains
        .insert("only".into(), Chain::regular(vec![drop], ""));
    let second = render(&small);
    let (listed, other) = in_netns(move || {
        nft(&["add", "table", "inet", "someone-else"], None).expect("other table");
        apply_twice(&first, "fnp-swap");
        let listed = apply_twice(&second, "fnp-swap");
        let other = nft(&["list", "table", "inet", "someone-else"], None);
        (listed, other)
    });
    assert!(listed.contains("chain only"), "{listed}");
    assert!(!listed.contains("pin-a"), "old chain survived:\n{listed}");
    assert!(!listed.contains("peers-v4"), "old set survived:\n{listed}");
    assert!(other.is_ok(), "another component's table was removed");
}

/// One rule alone in a chain, plus the sets and maps it names; returns the
/// `nft --debug=netlink` lines of that rule's expressions.
fn expressions_of(r: Rule, rs_extra: impl FnOnce(&mut RuleSet)) -> Vec<String> {
    let mut rs = RuleSet::new("fnp-expr");
    rs_extra(&mut rs);
    rs.chains
        .insert("probe".into(), Chain::regular(vec![r], ""));
    let script = render(&rs);
    let debug = in_netns(move || {
        nft(&["--debug=netlink", "-f", "-"], Some(&script))
            .unwrap_or_else(|e| panic!("nft -f failed: {e}\n{script}"))
    });
    let block = debug
        .split("inet fnp-expr probe\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no rule of chain probe in\n{debug}"));
    block
        .lines()
        .take_while(|l| l.starts_with("  ["))
        .map(|l| l.trim().to_string())
        .collect()
}

fn v4_set(rs: &mut RuleSet) {
    rs.sets
        .insert("s".into(), AddrSet::new(Family::V4, vec![], ""));
}

#[test]
fn the_documented_expressions_are_what_nft_sends() {
    if skip("the_documented_expressions_are_what_nft_sends") {
        return;
    }
    // `ip saddr @s meta l4proto tcp th dport 80 accept`
    let got = expressions_of(
        Rule::new(
            vec![
                Match::saddr_in(Family::V4, "s"),
                Match::L4Proto(Proto::Tcp),
                Match::dport(80),
            ],
            Verdict::Accept,
            "",
        ),
        v4_set,
    );
    assert_eq!(
        got,
        [
            "[ meta load nfproto => reg 1 ]",
            "[ cmp eq reg 1 0x00000002 ]",
            "[ payload load 4b @ network header + 12 => reg 1 ]",
            "[ lookup reg 1 set s ]",
            "[ meta load l4proto => reg 1 ]",
            "[ cmp eq reg 1 0x00000006 ]",
            "[ payload load 2b @ transport header + 2 => reg 1 ]",
            "[ cmp eq reg 1 0x00005000 ]",
            "[ immediate reg 0 accept ]",
        ]
    );
    // `meta l4proto udp ip6 daddr fd00:198:18::1 th dport >= 1000 th dport <= 2000 counter return`
    let got = expressions_of(
        Rule::new(
            vec![
                Match::L4Proto(Proto::Udp),
                Match::daddr_eq(ip("fd00:198:18::1")),
                Match::Dport { lo: 1000, hi: 2000 },
            ],
            Verdict::Return,
            "",
        )
        .counted(),
        |_| {},
    );
    assert_eq!(
        got,
        [
            "[ meta load l4proto => reg 1 ]",
            "[ cmp eq reg 1 0x00000011 ]",
            "[ meta load nfproto => reg 1 ]",
            "[ cmp eq reg 1 0x0000000a ]",
            "[ payload load 16b @ network header + 24 => reg 1 ]",
            "[ cmp eq reg 1 0x980100fd 0x00001800 0x00000000 0x01000000 ]",
            "[ payload load 2b @ transport header + 2 => reg 1 ]",
            "[ cmp gte reg 1 0x0000e803 ]",
            "[ payload load 2b @ transport header + 2 => reg 1 ]",
            "[ cmp lte reg 1 0x0000d007 ]",
            "[ counter pkts 0 bytes 0 ]",
            "[ immediate reg 0 return ]",
        ]
    );
    // `ct state established,related meta l4proto ipv6-icmp icmpv6 type >= 133 icmpv6 type <= 137 jump probe2`
    let got = expressions_of(
        Rule::new(
            vec![
                Match::CtState(CtStates::ESTABLISHED.union(CtStates::RELATED)),
                Match::L4Proto(Proto::Icmpv6),
                Match::Icmpv6Type { lo: 133, hi: 137 },
            ],
            Verdict::jump("probe2"),
            "",
        ),
        |rs| {
            rs.chains
                .insert("probe2".into(), Chain::regular(vec![], ""));
        },
    );
    assert_eq!(
        got,
        [
            "[ ct load state => reg 1 ]",
            "[ bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000 ]",
            "[ cmp neq reg 1 0x00000000 ]",
            "[ meta load l4proto => reg 1 ]",
            "[ cmp eq reg 1 0x0000003a ]",
            "[ payload load 1b @ transport header + 0 => reg 1 ]",
            "[ cmp gte reg 1 0x00000085 ]",
            "[ payload load 1b @ transport header + 0 => reg 1 ]",
            "[ cmp lte reg 1 0x00000089 ]",
            "[ immediate reg 0 jump -> probe2 ]",
        ]
    );
    // `counter ip6 saddr vmap @m`
    let got = expressions_of(
        Rule::new(vec![], Verdict::vmap(AddrField::Saddr, Family::V6, "m"), "").counted(),
        |rs| {
            let m = VerdictMap::new(Family::V6, BTreeMap::new(), "");
            rs.maps.insert("m".into(), m);
        },
    );
    assert_eq!(
        got,
        [
            "[ counter pkts 0 bytes 0 ]",
            "[ meta load nfproto => reg 1 ]",
            "[ cmp eq reg 1 0x0000000a ]",
            "[ payload load 16b @ network header + 8 => reg 1 ]",
            "[ lookup reg 1 set m dreg 0 ]",
        ]
    );
}

#[test]
fn interval_sets_send_a_leading_end_element_and_none_after_all_ones() {
    if skip("interval_sets_send_a_leading_end_element_and_none_after_all_ones") {
        return;
    }
    let mut rs = RuleSet::new("fnp-elems");
    let elements = vec![
        iv("198.18.0.0", "198.18.0.255"),
        iv("255.255.255.0", "255.255.255.255"),
    ];
    rs.sets
        .insert("s".into(), AddrSet::new(Family::V4, elements, ""));
    let script = render(&rs);
    let debug =
        in_netns(move || nft(&["--debug=netlink", "-f", "-"], Some(&script)).expect("nft -f"));
    // Element keys are printed in host (little-endian) word order; flag 1 = INTERVAL_END.
    let elements = debug
        .lines()
        .find(|l| l.trim_start().starts_with("element"))
        .unwrap_or_else(|| panic!("no elements in\n{debug}"));
    let got: Vec<&str> = elements
        .split("[end]")
        .map(str::trim)
        .filter(|e| e.starts_with("element"))
        .collect();
    assert_eq!(
        got,
        [
            "element 00000000  : 1",
            "element 000012c6  : 0",
            "element 000112c6  : 1",
            "element 00ffffff  : 0",
        ]
    );
}

#[test]
fn every_golden_script_applies_twice_and_lists_its_table() {
    if skip("every_golden_script_applies_twice_and_lists_its_table") {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "nft"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden scripts in {}", dir.display());
    let table = flock_netpol::model::DEFAULT_TABLE;
    for file in files {
        let script = std::fs::read_to_string(&file).expect("read golden");
        let shown = file.display().to_string();
        let listed = in_netns(move || {
            for round in ["first", "second"] {
                nft(&["-f", "-"], Some(&script))
                    .unwrap_or_else(|e| panic!("{round} nft -f of {shown} failed: {e}"));
            }
            nft(&["list", "table", "inet", table], None)
                .unwrap_or_else(|e| panic!("nft list table after {shown}: {e}"))
        });
        assert!(
            listed.contains(&format!("table inet {table} {{")),
            "{}: table not listed:\n{listed}",
            file.display()
        );
        let script = std::fs::read_to_string(&file).expect("read golden");
        for object in ["\tchain ", "\tset ", "\tmap "] {
            assert_eq!(
                count_lines(&listed, object),
                count_lines(&script, object),
                "{}: {object:?} objects differ between the script and the kernel",
                file.display()
            );
        }
    }
}

fn count_lines(text: &str, prefix: &str) -> usize {
    text.lines().filter(|l| l.starts_with(prefix)).count()
}
