//! The throwaway-namespace helper really isolates: a table made inside is not
//! seen outside.

mod common;

#[test]
fn a_table_made_in_a_throwaway_namespace_stays_there() {
    if common::skip_unless_root_and_nft("a_table_made_in_a_throwaway_namespace_stays_there") {
        return;
    }
    let inside = common::in_netns(|| {
        common::nft(&["-f", "-"], Some("table inet fnp-smoke { }\n")).unwrap();
        common::nft(&["list", "tables"], None).unwrap()
    });
    assert!(inside.contains("fnp-smoke"), "made inside: {inside}");
    let outside = common::nft(&["list", "tables"], None).unwrap();
    assert!(!outside.contains("fnp-smoke"), "leaked outside: {outside}");
}
