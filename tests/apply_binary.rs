//! The binary's `--once` and `--cleanup` in a throwaway netns with an empty
//! PATH (no `nft` to fall back on): the committed table equals what `nft -f`
//! makes of the binary's own `--dump-script`, and cleanup removes it.

mod common;

use std::process::{Command, Output};

const TABLE: &str = "fnp-bin";

/// Run the binary with no environment but `RUST_LOG`, an empty PATH.
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flock-netpol"))
        .args(args)
        .env_clear()
        .env("PATH", "")
        .env("RUST_LOG", "info")
        .output()
        .expect("the binary runs")
}

fn fixture() -> String {
    format!(
        "{}/tests/fixtures/default-deny-all.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn once_and_cleanup_work_without_nft_on_path() {
    if common::skip_unless_root_and_nft("once_and_cleanup_work_without_nft_on_path") {
        return;
    }
    let manifests = fixture();
    let args = [
        "--node",
        "node-1",
        "--table",
        TABLE,
        "--manifests",
        &manifests,
    ];
    let dump = run(&[&args[..], &["--dump-script"]].concat());
    ok(&dump, "--dump-script");
    let script = String::from_utf8(dump.stdout).unwrap();

    let m = manifests.clone();
    let (ours, after_cleanup, absent) = common::in_netns(move || {
        let args = ["--node", "node-1", "--table", TABLE, "--manifests", &m];
        ok(&run(&[&args[..], &["--once"]].concat()), "--once");
        let ours = common::nftjson::table(TABLE).expect("table committed by --once");
        let cleanup = run(&["--table", TABLE, "--node", "node-1", "--cleanup"]);
        ok(&cleanup, "--cleanup");
        let after = common::nft(&["list", "tables"], None).unwrap();
        let again = run(&["--table", TABLE, "--node", "node-1", "--cleanup"]);
        ok(&again, "--cleanup of an absent table");
        (
            ours,
            after,
            String::from_utf8_lossy(&again.stderr).into_owned(),
        )
    });
    assert!(!after_cleanup.contains(TABLE), "{after_cleanup}");
    assert!(absent.contains("absent"), "{absent}");

    let theirs = common::in_netns(move || {
        common::nft(&["-f", "-"], Some(&script)).expect("nft -f of --dump-script");
        common::nftjson::table(TABLE).unwrap()
    });
    assert_eq!(
        common::nftjson::lines(&ours),
        common::nftjson::lines(&theirs)
    );
}

#[test]
fn a_failed_once_exits_non_zero_naming_the_failure() {
    if common::skip_unless_root("a_failed_once_exits_non_zero_naming_the_failure") {
        return;
    }
    // Without CAP_NET_ADMIN (user nobody) the commit cannot happen.
    use std::os::unix::process::CommandExt;
    let m = fixture();
    let out = common::in_netns(move || {
        Command::new(env!("CARGO_BIN_EXE_flock-netpol"))
            .args([
                "--node",
                "node-1",
                "--table",
                TABLE,
                "--manifests",
                &m,
                "--once",
            ])
            .env_clear()
            .uid(65534)
            .gid(65534)
            .output()
            .expect("the binary runs")
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("commit failed") && stderr.contains("Operation not permitted"),
        "{stderr}"
    );
}
