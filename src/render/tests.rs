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
    Interval::new(ip(a), ip(b))
}

fn ct_states_text(states: CtStates) -> String {
    let mut out = String::new();
    write_ct_states(&mut out, states);
    out
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
    const ALL_ONES: &str = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let cases = [
        ("198.18.0.7", "198.18.0.7", "198.18.0.7"),
        ("198.18.0.0", "198.18.0.255", "198.18.0.0/24"),
        // Right size, wrong alignment: not a prefix.
        ("198.18.0.128", "198.18.1.127", "198.18.0.128-198.18.1.127"),
        ("198.18.0.1", "198.18.0.9", "198.18.0.1-198.18.0.9"),
        ("0.0.0.0", "255.255.255.255", "0.0.0.0/0"),
        ("255.255.255.0", "255.255.255.255", "255.255.255.0/24"),
        ("::", ALL_ONES, "::/0"),
        (
            "fd00:198:18::5",
            ALL_ONES,
            "fd00:198:18::5-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ),
        (
            "fd00:198:18::",
            "fd00:198:18:0:ffff:ffff:ffff:ffff",
            "fd00:198:18::/64",
        ),
        ("fd00:198:18::", "fd00:198:18::1", "fd00:198:18::/127"),
    ];
    for (start, end, want) in cases {
        assert_eq!(interval_text(&iv(start, end)), want, "{start} - {end}");
    }
}

#[test]
fn sets_and_maps_list_their_type_flags_and_elements_one_per_line() {
    let mut rs = RuleSet::new("t");
    let peers = vec![
        iv("198.18.0.0", "198.18.0.255"),
        Interval::single(ip("198.18.2.1")),
    ];
    let peers = AddrSet::new(Family::V4, peers, "peers of x/a\nsecond line");
    rs.sets.insert("peers-v4".into(), peers);
    rs.sets
        .insert("empty-v6".into(), AddrSet::new(Family::V6, vec![], ""));
    let mut elements = BTreeMap::new();
    elements.insert(ip("fd00:198:18::2"), "pin-b".to_string());
    elements.insert(ip("fd00:198:18::1"), "pin-a".to_string());
    let dispatch = VerdictMap::new(Family::V6, elements, "dispatch");
    rs.maps.insert("ingress-v6".into(), dispatch);
    let empty = VerdictMap::new(Family::V4, BTreeMap::new(), "");
    rs.maps.insert("egress-v4".into(), empty);
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
    let drop = Rule::new(vec![], Verdict::Drop, "");
    rs.chains
        .insert("a-regular".into(), Chain::regular(vec![drop], ""));
    let forward = BaseChain::new(Hook::Forward, -5, ChainPolicy::Accept);
    let go = Rule::new(vec![], Verdict::jump("a-regular"), "go");
    rs.chains
        .insert("forward".into(), Chain::base(forward, vec![go], "entry"));
    let out = BaseChain::new(Hook::Output, 10, ChainPolicy::Drop);
    rs.chains.insert("out".into(), Chain::base(out, vec![], ""));
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
    let nd = |lo, hi| vec![Match::L4Proto(Proto::Icmpv6), Match::Icmpv6Type { lo, hi }];
    let cases = [
        (
            Rule::new(
                vec![
                    Match::CtState(CtStates::NEW),
                    Match::saddr_in(Family::V4, "peers"),
                    Match::daddr_eq(ip("198.18.0.1")),
                    Match::L4Proto(Proto::Udp),
                    Match::dport(53),
                ],
                Verdict::Accept,
                "x/allow-dns",
            )
            .counted(),
            "ct state new ip saddr @peers ip daddr 198.18.0.1 meta l4proto udp th dport 53 \
             counter accept comment \"x/allow-dns\"",
        ),
        (
            Rule::new(
                vec![
                    Match::daddr_in(Family::V6, "p6"),
                    Match::L4Proto(Proto::Sctp),
                    Match::Dport { lo: 1000, hi: 2000 },
                ],
                Verdict::Return,
                "",
            ),
            "ip6 daddr @p6 meta l4proto sctp th dport >= 1000 th dport <= 2000 return",
        ),
        (
            Rule::new(nd(133, 137), Verdict::Accept, "nd"),
            "meta l4proto ipv6-icmp icmpv6 type >= 133 icmpv6 type <= 137 accept comment \"nd\"",
        ),
        (
            Rule::new(nd(135, 135), Verdict::Accept, ""),
            "meta l4proto ipv6-icmp icmpv6 type 135 accept",
        ),
        (
            Rule::new(
                vec![Match::saddr_eq(ip("fd00:198:18::1"))],
                Verdict::Accept,
                "hairpin",
            ),
            "ip6 saddr fd00:198:18::1 accept comment \"hairpin\"",
        ),
    ];
    for (rule, want) in cases {
        assert_eq!(rule_text(&rule), want, "{rule:?}");
    }
}

#[test]
fn vmap_rules_put_the_counter_before_the_lookup() {
    let vmap = Verdict::vmap(AddrField::Daddr, Family::V6, "ingress-v6");
    let r = Rule::new(vec![], vmap, "");
    assert_eq!(rule_text(&r), "ip6 daddr vmap @ingress-v6");
    let vmap = Verdict::vmap(AddrField::Saddr, Family::V4, "egress-v4");
    let r = Rule::new(vec![], vmap, "").counted();
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
    let r = Rule::new(vec![], Verdict::Accept, "say \"hi\"");
    assert_eq!(rule_text(&r), "accept comment \"say 'hi'\"");
}

#[test]
fn long_names_are_rendered_verbatim() {
    let name = format!("in-{}-0123456789", "x".repeat(48));
    let mut rs = RuleSet::new("flock-netpol");
    rs.chains.insert(name.clone(), Chain::regular(vec![], ""));
    assert!(render(&rs).contains(&format!("\tchain {name} {{\n\t}}\n")));
}

#[test]
fn rendering_is_deterministic_and_independent_of_insertion_order() {
    let build = |names: &[&str]| {
        let mut rs = RuleSet::new("t");
        for n in names {
            rs.sets
                .insert((*n).into(), AddrSet::new(Family::V4, vec![], ""));
        }
        render(&rs)
    };
    let a = build(&["b", "a", "c"]);
    assert_eq!(a, build(&["c", "b", "a"]));
    assert!(a.find("set a {").unwrap() < a.find("set b {").unwrap());
}
