use std::collections::BTreeMap;

use super::*;
use crate::apply::nfnl::{attrs, messages, NFNL_PAYLOAD_OFFSET};
use crate::model::{AddrField, BaseChain, Match, Rule, Verdict};

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// forward: `ip saddr vmap @m4`; m4 sends 198.18.0.1 to chain c;
/// c: `ip saddr @s4 accept`, `counter drop`.
fn sample() -> RuleSet {
    let mut rs = RuleSet::new("fnp");
    let s4 = vec![
        Interval::new(v4("198.18.0.0"), v4("198.18.0.255")),
        Interval::single(v4("198.18.5.1")),
    ];
    rs.sets
        .insert("s4".into(), AddrSet::new(Family::V4, s4, ""));
    let m4 = BTreeMap::from([(v4("198.18.0.1"), "c".to_string())]);
    rs.maps
        .insert("m4".into(), VerdictMap::new(Family::V4, m4, ""));
    let dispatch = Verdict::vmap(AddrField::Saddr, Family::V4, "m4");
    let forward = vec![Rule::new(vec![], dispatch, "")];
    let hook = BaseChain::new(Hook::Forward, 0, ChainPolicy::Accept);
    rs.chains
        .insert("forward".into(), Chain::base(hook, forward, ""));
    let c = vec![
        Rule::new(
            vec![Match::saddr_in(Family::V4, "s4")],
            Verdict::Accept,
            "ns/pol",
        ),
        Rule::new(vec![], Verdict::Drop, "").counted(),
    ];
    rs.chains.insert("c".into(), Chain::regular(c, ""));
    rs
}

#[test]
fn the_batch_replaces_the_table_then_adds_maps_sets_chains_and_rules_in_order() {
    let rs = sample();
    let enc = encode(&rs).unwrap();
    let msgs = messages(&enc.bytes);
    assert_eq!(
        msgs.iter().map(|m| m.bytes.len()).sum::<usize>(),
        enc.bytes.len()
    );
    assert_eq!(msgs.len(), enc.objects.len());
    let kinds: Vec<u16> = msgs.iter().map(|m| m.msg_type).collect();
    // BEGIN, NEWTABLE, DELTABLE, NEWTABLE, NEWCHAIN c, NEWCHAIN forward,
    // NEWSET m4, NEWSETELEM, NEWSET s4, NEWSETELEM, 3 x NEWRULE, END
    assert_eq!(
        kinds,
        vec![
            0x10, 0xa00, 0xa02, 0xa00, 0xa03, 0xa03, 0xa09, 0xa0c, 0xa09, 0xa0c, 0xa06, 0xa06,
            0xa06, 0x11
        ]
    );
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(
            m.seq,
            FIRST_SEQ + i as u32,
            "one sequence number per message"
        );
        let wants_ack = i == msgs.len() - 2;
        assert_eq!(
            m.flags & NLM_F_ACK != 0,
            wants_ack,
            "ACK flag of message {i}"
        );
    }
    assert_eq!(enc.object(FIRST_SEQ + 6), Some(&Object::Map("m4")));
    assert_eq!(
        enc.object(FIRST_SEQ + 10).unwrap().to_string(),
        "rule 0 in chain c (comment \"ns/pol\")"
    );
    assert_eq!(enc.object(enc.last_seq()), Some(&Object::BatchEnd));
}

#[test]
fn interval_elements_are_those_nft_sends() {
    // `nft --debug=netlink` for `elements = { 198.18.0.0/24, 198.18.5.1 }`:
    // 0.0.0.0 end, 198.18.0.0, 198.18.1.0 end, 198.18.5.1, 198.18.5.2 end.
    let rs = sample();
    check_intervals(&rs.sets["s4"]).unwrap();
    let mut got: Vec<(Vec<u8>, u32)> = Vec::new();
    for_interval_elems(&rs.sets["s4"], |e| {
        got.push((e.key.as_bytes().to_vec(), e.flags))
    });
    assert_eq!(
        got,
        vec![
            (vec![0, 0, 0, 0], 1),
            (vec![198, 18, 0, 0], 0),
            (vec![198, 18, 1, 0], 1),
            (vec![198, 18, 5, 1], 0),
            (vec![198, 18, 5, 2], 1),
        ]
    );
}

#[test]
fn an_interval_up_to_the_last_address_has_no_end_element() {
    let all = Interval::new(
        "::".parse().unwrap(),
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(),
    );
    let set = AddrSet::new(Family::V6, vec![all], "");
    check_intervals(&set).unwrap();
    let mut got = Vec::new();
    for_interval_elems(&set, |e| got.push(e));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].key.as_bytes(), &[0u8; 16]);
    assert_eq!(got[0].flags, 0);
}

#[test]
fn overlapping_or_foreign_family_intervals_are_refused_naming_the_set() {
    let mut rs = sample();
    let touching = Interval::new(v4("198.18.5.2"), v4("198.18.5.9"));
    rs.sets.get_mut("s4").unwrap().elements.push(touching);
    let e = encode(&rs).unwrap_err();
    assert_eq!(e.object, "set s4");
    assert!(e.reason.contains("touches"), "{e}");

    let mut rs = sample();
    rs.sets.get_mut("s4").unwrap().elements[1].end = "fd00:198:18::1".parse().unwrap();
    assert_eq!(encode(&rs).unwrap_err().object, "set s4");
}

#[test]
fn a_rule_comment_becomes_rule_user_data() {
    let rs = sample();
    let enc = encode(&rs).unwrap();
    let msgs = messages(&enc.bytes);
    let rule = msgs[10].bytes;
    let ud = attrs(&rule[NFNL_PAYLOAD_OFFSET..])
        .into_iter()
        .find(|(t, _)| *t == rustables::sys::NFTA_RULE_USERDATA)
        .map(|(_, v)| v.to_vec());
    assert_eq!(ud, Some(b"\x00\x07ns/pol\x00".to_vec()));
}

#[test]
fn cleanup_is_one_table_deletion() {
    let enc = encode_delete_table("fnp").unwrap();
    let kinds: Vec<u16> = messages(&enc.bytes).iter().map(|m| m.msg_type).collect();
    assert_eq!(kinds, vec![0x10, 0xa02, 0x11]);
    assert_eq!(enc.object(FIRST_SEQ + 1), Some(&Object::TableDelete("fnp")));
}

#[test]
fn encoding_is_deterministic() {
    assert_eq!(encode(&sample()).unwrap(), encode(&sample()).unwrap());
}

#[test]
fn only_the_last_message_asks_for_an_ack_whatever_kind_it_is() {
    // No chains, so no rules: the batch ends with the elements of the last
    // set (a message the project writes itself, not rustables).
    let mut only_sets = sample();
    only_sets.chains.clear();
    // No sets or maps either: the batch ends with the table.
    let mut bare = only_sets.clone();
    bare.sets.clear();
    bare.maps.clear();
    for (rs, last_kind) in [(only_sets, 0xa0c), (bare, 0xa00)] {
        let enc = encode(&rs).unwrap();
        let msgs = messages(&enc.bytes);
        let acked: Vec<usize> = (0..msgs.len())
            .filter(|&i| msgs[i].flags & NLM_F_ACK != 0)
            .collect();
        assert_eq!(acked, vec![msgs.len() - 2], "{:?}", enc.objects);
        assert_eq!(msgs[msgs.len() - 2].msg_type, last_kind);
    }
}
