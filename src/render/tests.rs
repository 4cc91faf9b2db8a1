//! Unit tests of the renderer: hand-built RuleSets, expected text written by
//! hand from nft's syntax.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::*;
use crate::model::{BaseChain, Proto};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn iv(a: &str, b: &str) -> Interval {
    Interval {
        start: ip(a),
        end: ip(b),
    }
}

fn rule(matches: Vec<Match>, verdict: Verdict, comment: &str) -> Rule {
    Rule {
        matches,
        counter: false,
        verdict,
        comment: comment.to_string(),
    }
}

#[test]
fn an_empty_ruleset_adds_deletes_and_readds_the_table() {
    let text = render(&RuleSet::new("fnp"));
    assert_eq!(
        text,
        "# flock-netpol: table inet fnp: 0 chains, 0 rules, 0 sets (0 elements), 0 maps (0 elements)\n\
         table inet fnp\n\
         delete table inet fnp\n\
         table inet fnp {\n\
         }\n"
    );
}

#[test]
fn intervals_render_as_addresses_prefixes_or_ranges() {
    assert_eq!(interval_text(&iv("198.18.0.7", "198.18.0.7")), "198.18.0.7");
    assert_eq!(
        interval_text(&iv("198.18.0.0", "198.18.0.255")),
        "198.18.0.0/24"
    );
    // Right size, wrong alignment: not a prefix.
    assert_eq!(
        interval_text(&iv("198.18.0.128", "198.18.1.127")),
        "198.18.0.128-198.18.1.127"
    );
    assert_eq!(
        interval_text(&iv("198.18.0.1", "198.18.0.9")),
        "198.18.0.1-198.18.0.9"
    );
    assert_eq!(
        interval_text(&iv("0.0.0.0", "255.255.255.255")),
        "0.0.0.0/0"
    );
    assert_eq!(
        interval_text(&iv("255.255.255.0", "255.255.255.255")),
        "255.255.255.0/24"
    );
    assert_eq!(
        interval_text(&iv("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
        "::/0"
    );
    assert_eq!(
        interval_text(&iv(
            "fd00:198:18::5",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        )),
        "fd00:198:18::5-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    );
    assert_eq!(
        interval_text(&iv("fd00:198:18::", "fd00:198:18:0:ffff:ffff:ffff:ffff")),
        "fd00:198:18::/64"
    );
    assert_eq!(
        interval_text(&iv("fd00:198:18::", "fd00:198:18::1")),
        "fd00:198:18::/127"
    );
}

#[test]
fn sets_and_maps_list_their_type_flags_and_elements_one_per_line() {
    let mut rs = RuleSet::new("t");
    rs.sets.insert(
        "peers-v4".into(),
        AddrSet {
            family: Family::V4,
            elements: vec![
                iv("198.18.0.0", "198.18.0.255"),
                iv("198.18.2.1", "198.18.2.1"),
            ],
            comment: "peers of x/a\nsecond line".into(),
        },
    );
    rs.sets.insert(
        "empty-v6".into(),
        AddrSet {
            family: Family::V6,
            elements: vec![],
            comment: String::new(),
        },
    );
    let mut elements = BTreeMap::new();
    elements.insert(ip("fd00:198:18::2"), "pin-b".to_string());
    elements.insert(ip("fd00:198:18::1"), "pin-a".to_string());
    rs.maps.insert(
        "ingress-v6".into(),
        VerdictMap {
            family: Family::V6,
            elements,
            comment: "dispatch".into(),
        },
    );
    rs.maps.insert(
        "egress-v4".into(),
        VerdictMap {
            family: Family::V4,
            elements: BTreeMap::new(),
            comment: String::new(),
        },
    );
    let text = render(&rs);
    let body = text.split_once("table inet t {\n").unwrap().1;
    assert_eq!(
        body,
        "\tset empty-v6 {\n\
         \t\ttype ipv6_addr\n\
         \t\tflags interval\n\
         \t}\n\
         \n\
         \t# peers of x/a second line\n\
         \tset peers-v4 {\n\
         \t\ttype ipv4_addr\n\
         \t\tflags interval\n\
         \t\telements = {\n\
         \t\t\t198.18.0.0/24,\n\
         \t\t\t198.18.2.1,\n\
         \t\t}\n\
         \t}\n\
         \n\
         \tmap egress-v4 {\n\
         \t\ttype ipv4_addr : verdict\n\
         \t}\n\
         \n\
         \t# dispatch\n\
         \tmap ingress-v6 {\n\
         \t\ttype ipv6_addr : verdict\n\
         \t\telements = {\n\
         \t\t\tfd00:198:18::1 : jump pin-a,\n\
         \t\t\tfd00:198:18::2 : jump pin-b,\n\
         \t\t}\n\
         \t}\n\
         }\n"
    );
    assert!(text.starts_with(
        "# flock-netpol: table inet t: 0 chains, 0 rules, 2 sets (2 elements), 2 maps (2 elements)\n"
    ));
}

#[test]
fn base_chains_come_first_with_hook_priority_and_policy() {
    let mut rs = RuleSet::new("t");
    rs.chains.insert(
        "a-regular".into(),
        Chain {
            base: None,
            rules: vec![rule(vec![], Verdict::Drop, "")],
            comment: String::new(),
        },
    );
    rs.chains.insert(
        "forward".into(),
        Chain {
            base: Some(BaseChain {
                hook: Hook::Forward,
                priority: -5,
                policy: ChainPolicy::Accept,
            }),
            rules: vec![rule(vec![], Verdict::Jump("a-regular".into()), "go")],
            comment: "entry".into(),
        },
    );
    rs.chains.insert(
        "out".into(),
        Chain {
            base: Some(BaseChain {
                hook: Hook::Output,
                priority: 10,
                policy: ChainPolicy::Drop,
            }),
            rules: vec![],
            comment: String::new(),
        },
    );
    let text = render(&rs);
    let body = text.split_once("table inet t {\n").unwrap().1;
    assert_eq!(
        body,
        "\t# entry\n\
         \tchain forward {\n\
         \t\ttype filter hook forward priority -5; policy accept;\n\
         \t\tjump a-regular comment \"go\"\n\
         \t}\n\
         \n\
         \tchain out {\n\
         \t\ttype filter hook output priority 10; policy drop;\n\
         \t}\n\
         \n\
         \tchain a-regular {\n\
         \t\tdrop\n\
         \t}\n\
         }\n"
    );
}

#[test]
fn every_match_kind_renders_in_model_order() {
    let r = Rule {
        matches: vec![
            Match::CtState(CtStates::NEW),
            Match::AddrInSet {
                field: AddrField::Saddr,
                family: Family::V4,
                set: "peers".into(),
            },
            Match::AddrEq {
                field: AddrField::Daddr,
                addr: ip("198.18.0.1"),
            },
            Match::L4Proto(Proto::Udp),
            Match::Dport { lo: 53, hi: 53 },
        ],
        counter: true,
        verdict: Verdict::Accept,
        comment: "x/allow-dns".into(),
    };
    assert_eq!(
        rule_text(&r),
        "ct state new ip saddr @peers ip daddr 198.18.0.1 meta l4proto udp th dport 53 \
         counter accept comment \"x/allow-dns\""
    );
    let r = rule(
        vec![
            Match::AddrInSet {
                field: AddrField::Daddr,
                family: Family::V6,
                set: "p6".into(),
            },
            Match::L4Proto(Proto::Sctp),
            Match::Dport { lo: 1000, hi: 2000 },
        ],
        Verdict::Return,
        "",
    );
    assert_eq!(
        rule_text(&r),
        "ip6 daddr @p6 meta l4proto sctp th dport >= 1000 th dport <= 2000 return"
    );
    let r = rule(
        vec![
            Match::L4Proto(Proto::Icmpv6),
            Match::Icmpv6Type { lo: 133, hi: 137 },
        ],
        Verdict::Accept,
        "nd",
    );
    assert_eq!(
        rule_text(&r),
        "meta l4proto ipv6-icmp icmpv6 type >= 133 icmpv6 type <= 137 accept comment \"nd\""
    );
    let r = rule(
        vec![
            Match::L4Proto(Proto::Icmpv6),
            Match::Icmpv6Type { lo: 135, hi: 135 },
        ],
        Verdict::Accept,
        "",
    );
    assert_eq!(
        rule_text(&r),
        "meta l4proto ipv6-icmp icmpv6 type 135 accept"
    );
    let r = rule(
        vec![Match::AddrEq {
            field: AddrField::Saddr,
            addr: ip("fd00:198:18::1"),
        }],
        Verdict::Accept,
        "hairpin",
    );
    assert_eq!(
        rule_text(&r),
        "ip6 saddr fd00:198:18::1 accept comment \"hairpin\""
    );
}

#[test]
fn vmap_rules_put_the_counter_before_the_lookup() {
    let mut r = rule(
        vec![],
        Verdict::Vmap {
            field: AddrField::Daddr,
            family: Family::V6,
            map: "ingress-v6".into(),
        },
        "",
    );
    assert_eq!(rule_text(&r), "ip6 daddr vmap @ingress-v6");
    r.counter = true;
    r.verdict = Verdict::Vmap {
        field: AddrField::Saddr,
        family: Family::V4,
        map: "egress-v4".into(),
    };
    assert_eq!(rule_text(&r), "counter ip saddr vmap @egress-v4");
}

#[test]
fn ct_states_are_named_in_bit_order_with_unknown_bits_as_hex() {
    let est_rel = CtStates::RELATED.union(CtStates::ESTABLISHED);
    assert_eq!(ct_states_text(est_rel), "established,related");
    let all = CtStates::INVALID
        .union(est_rel)
        .union(CtStates::NEW)
        .union(CtStates::UNTRACKED);
    assert_eq!(
        ct_states_text(all),
        "invalid,established,related,new,untracked"
    );
    assert_eq!(ct_states_text(CtStates(0x12)), "established,0x10");
}

#[test]
fn comments_lose_quotes_and_control_characters_and_fit_128_bytes() {
    assert_eq!(comment_text("ns/\"name\"\n"), "ns/'name' ");
    let long = "é".repeat(100); // 200 bytes
    let cut = comment_text(&long);
    assert_eq!(cut.len(), 128);
    assert_eq!(cut, "é".repeat(64));
    let odd = format!("a{}", "é".repeat(100)); // boundary falls inside a char
    assert_eq!(comment_text(&odd).len(), 127);
    let r = rule(vec![], Verdict::Accept, "say \"hi\"");
    assert_eq!(rule_text(&r), "accept comment \"say 'hi'\"");
}

#[test]
fn long_names_are_rendered_verbatim() {
    let name = format!("in-{}-0123456789", "x".repeat(48));
    let mut rs = RuleSet::new("flock-netpol");
    rs.chains.insert(
        name.clone(),
        Chain {
            base: None,
            rules: vec![],
            comment: String::new(),
        },
    );
    assert!(render(&rs).contains(&format!("\tchain {name} {{\n\t}}\n")));
}

#[test]
fn rendering_is_deterministic_and_independent_of_insertion_order() {
    let build = |names: &[&str]| {
        let mut rs = RuleSet::new("t");
        for n in names {
            rs.sets.insert(
                (*n).into(),
                AddrSet {
                    family: Family::V4,
                    elements: vec![],
                    comment: String::new(),
                },
            );
        }
        render(&rs)
    };
    let a = build(&["b", "a", "c"]);
    assert_eq!(a, build(&["c", "b", "a"]));
    assert!(a.find("set a {").unwrap() < a.find("set b {").unwrap());
}
