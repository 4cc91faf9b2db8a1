//! The daemon's informer layer against a fake API server on 127.0.0.1 that
//! speaks the real list/watch protocol: initial sync, pod / namespace /
//! policy changes, a server restart mid-watch, 410 Gone forcing a re-list.
//! Each step asserts the snapshot the daemon built (against the server's
//! objects converted independently) and the RuleSet committed to the fake
//! dataplane (against `translate` of that expected snapshot).

mod daemon_common;
mod fake_apiserver;

use std::time::Duration;

use daemon_common::{config, Daemon, NODE, TABLE};
use fake_apiserver::{namespace, pod, policy, FakeApiServer, Kind};
use flock_netpol::snapshot::Snapshot;
use flock_netpol::{convert, translate};
use serde_json::{json, Value};

async fn start(server: &FakeApiServer, dir: &tempfile::TempDir) -> Daemon {
    let mut cfg = config();
    cfg.kubeconfig = Some(server.kubeconfig(dir.path()));
    Daemon::start(cfg)
}

/// The snapshot `objects` stand for, converted without the informers.
fn expected(objects: &[Value]) -> Snapshot {
    let mut s = Snapshot::default();
    for o in objects {
        match o["kind"].as_str().unwrap() {
            "Pod" => s
                .pods
                .push(convert::pod(&serde_json::from_value(o.clone()).unwrap()).unwrap()),
            "Namespace" => s
                .namespaces
                .push(convert::namespace(&serde_json::from_value(o.clone()).unwrap()).unwrap()),
            "NetworkPolicy" => s
                .policies
                .push(convert::policy(&serde_json::from_value(o.clone()).unwrap()).unwrap()),
            k => panic!("unexpected kind {k}"),
        }
    }
    s.normalize();
    s
}

/// Wait until the daemon's latest sync saw exactly `objects`, then check
/// the ruleset in force is the translation of them.
async fn converges_to(d: &mut Daemon, objects: &[Value]) {
    let want = expected(objects);
    d.synced(&want).await;
    let rs = translate::translate(&want, NODE, TABLE).ruleset;
    assert_eq!(d.fake.last().as_ref(), Some(&rs), "ruleset in force");
}

/// x (team a) holds a local pod `x/a` (app a) isolated by `x/allow`, which
/// lets in pods labelled app=b of x and every pod of namespaces with team=b.
fn cluster() -> (Vec<Value>, Value) {
    let allow = policy(
        "x",
        "allow",
        json!({
            "podSelector": {"matchLabels": {"app": "a"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [
                {"podSelector": {"matchLabels": {"app": "b"}}},
                {"namespaceSelector": {"matchLabels": {"team": "b"}}}
            ], "ports": [{"port": "http"}]}]
        }),
    );
    let objects = vec![
        namespace("x", json!({"team": "a"})),
        namespace("y", json!({"team": "b"})),
        pod("x", "a", NODE, "198.18.1.1", json!({"app": "a"})),
        pod("x", "b", "node-b", "198.18.2.1", json!({"app": "b"})),
        pod("y", "c", "node-b", "198.18.2.2", json!({"app": "c"})),
        allow.clone(),
    ];
    (objects, allow)
}

async fn server_with(objects: &[Value]) -> FakeApiServer {
    let server = FakeApiServer::start().await;
    for o in objects {
        server.apply(o.clone());
    }
    server
}

fn replace(objects: &mut Vec<Value>, new: Value) {
    let same = |o: &Value| {
        o["kind"] == new["kind"]
            && o["metadata"]["namespace"] == new["metadata"]["namespace"]
            && o["metadata"]["name"] == new["metadata"]["name"]
    };
    objects.retain(|o| !same(o));
    objects.push(new);
}

fn remove(objects: &mut Vec<Value>, kind: &str, ns: &str, name: &str) {
    objects.retain(|o| {
        !(o["kind"] == kind
            && o["metadata"]["namespace"].as_str().unwrap_or("") == ns
            && o["metadata"]["name"] == name)
    });
}

#[tokio::test]
async fn nothing_is_committed_before_every_store_synced_then_exactly_one_commit() {
    let (objects, _) = cluster();
    let server = server_with(&objects).await;
    server.set_list_failing(Kind::NetworkPolicy, true);
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir).await;
    // Pods and namespaces list fine; policies do not: no commit may happen
    // (a ruleset without the policy would open x/a).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        server.list_count(Kind::NetworkPolicy) >= 1,
        "policies were listed"
    );
    assert_eq!(d.fake.attempts(), 0, "committed before every store synced");
    server.set_list_failing(Kind::NetworkPolicy, false);
    converges_to(&mut d, &objects).await;
    // Quiet cluster: nothing more (debounce 20 ms, max delay 200 ms).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(d.fake.attempts(), 1, "exactly one commit after the sync");
    d.stop().await;
}

#[tokio::test]
async fn pod_add_delete_and_relabel_reach_the_ruleset() {
    let (mut objects, _) = cluster();
    let server = server_with(&objects).await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir).await;
    converges_to(&mut d, &objects).await;

    // A new peer pod (app=b) appears.
    let new_peer = pod("x", "b2", "node-b", "198.18.2.3", json!({"app": "b"}));
    server.apply(new_peer.clone());
    objects.push(new_peer);
    converges_to(&mut d, &objects).await;

    // A new local pod selected by the policy appears.
    let local = pod("x", "a2", NODE, "198.18.1.2", json!({"app": "a"}));
    server.apply(local.clone());
    objects.push(local);
    converges_to(&mut d, &objects).await;

    // The first peer is relabelled out of the selector.
    let relabelled = pod("x", "b", "node-b", "198.18.2.1", json!({"app": "z"}));
    server.apply(relabelled.clone());
    replace(&mut objects, relabelled);
    converges_to(&mut d, &objects).await;

    // The new local pod is deleted.
    server.delete(Kind::Pod, "x", "a2");
    remove(&mut objects, "Pod", "x", "a2");
    converges_to(&mut d, &objects).await;
    d.stop().await;
}

#[tokio::test]
async fn a_namespace_relabel_moves_its_pods_in_and_out_of_peer_sets() {
    let (mut objects, _) = cluster();
    let server = server_with(&objects).await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir).await;
    converges_to(&mut d, &objects).await;

    let y_out = namespace("y", json!({"team": "c"}));
    server.apply(y_out.clone());
    replace(&mut objects, y_out);
    converges_to(&mut d, &objects).await;

    let x_in = namespace("x", json!({"team": "b"}));
    server.apply(x_in.clone());
    replace(&mut objects, x_in);
    converges_to(&mut d, &objects).await;
    d.stop().await;
}

#[tokio::test]
async fn policy_add_edit_and_delete_reach_the_ruleset() {
    let (mut objects, allow) = cluster();
    remove(&mut objects, "NetworkPolicy", "x", "allow");
    let server = server_with(&objects).await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir).await;
    converges_to(&mut d, &objects).await;

    server.apply(allow.clone());
    objects.push(allow);
    converges_to(&mut d, &objects).await;

    let edited = policy(
        "x",
        "allow",
        json!({
            "podSelector": {"matchLabels": {"app": "a"}},
            "ingress": [{"from": [{"ipBlock": {"cidr": "198.18.128.0/17", "except": ["198.18.200.0/24"]}}]}]
        }),
    );
    server.apply(edited.clone());
    replace(&mut objects, edited);
    converges_to(&mut d, &objects).await;

    let deny_egress = policy(
        "x",
        "deny-egress",
        json!({"podSelector": {}, "policyTypes": ["Egress"]}),
    );
    server.apply(deny_egress.clone());
    objects.push(deny_egress);
    converges_to(&mut d, &objects).await;

    server.delete(Kind::NetworkPolicy, "x", "allow");
    remove(&mut objects, "NetworkPolicy", "x", "allow");
    converges_to(&mut d, &objects).await;
    d.stop().await;
}

#[tokio::test]
async fn a_server_restart_mid_watch_keeps_the_state_and_resumes() {
    let (mut objects, _) = cluster();
    let mut server = server_with(&objects).await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir).await;
    converges_to(&mut d, &objects).await;
    let commits = d.fake.commit_count();
    let pod_lists = server.list_count(Kind::Pod);

    server.stop().await;
    // Changes while the server is unreachable (kept in its history).
    server.delete(Kind::Pod, "x", "b");
    remove(&mut objects, "Pod", "x", "b");
    let y = namespace("y", json!({"team": "c"}));
    server.apply(y.clone());
    replace(&mut objects, y);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        d.fake.commit_count(),
        commits,
        "nothing committed while down"
    );

    server.restart().await;
    converges_to(&mut d, &objects).await;
    // The watches resumed from their resourceVersion: no re-list needed.
    assert_eq!(
        server.list_count(Kind::Pod),
        pod_lists,
        "resumed, not re-listed"
    );

    // And they are live again.
    let p = pod("x", "b", "node-b", "198.18.2.9", json!({"app": "b"}));
    server.apply(p.clone());
    objects.push(p);
    converges_to(&mut d, &objects).await;
    d.stop().await;
}

#[tokio::test]
async fn a_410_gone_forces_a_relist_that_sees_deletions_made_meanwhile() {
    let (mut objects, _) = cluster();
    let mut server = server_with(&objects).await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir).await;
    converges_to(&mut d, &objects).await;
    let lists = |s: &FakeApiServer| {
        [Kind::Pod, Kind::Namespace, Kind::NetworkPolicy].map(|k| s.list_count(k))
    };
    let before = lists(&server);

    // Down, objects deleted, history compacted: resuming is impossible.
    server.stop().await;
    server.delete(Kind::Pod, "x", "b");
    remove(&mut objects, "Pod", "x", "b");
    server.delete(Kind::NetworkPolicy, "x", "allow");
    remove(&mut objects, "NetworkPolicy", "x", "allow");
    server.delete(Kind::Namespace, "", "y");
    remove(&mut objects, "Namespace", "", "y");
    server.compact();
    server.restart().await;
    converges_to(&mut d, &objects).await;
    let after = lists(&server);
    for i in 0..3 {
        assert!(
            after[i] > before[i],
            "kind {i} re-listed: {before:?} -> {after:?}"
        );
    }
    let gone = server
        .requests()
        .iter()
        .filter(|r| r.contains("watch=true"))
        .count();
    assert!(gone > 3, "watches were attempted before the re-list");

    // A 410 on a live watch (ERROR event) also makes the watcher re-list.
    let before = lists(&server);
    server.expire_watches();
    let p = pod("x", "late", "node-b", "198.18.2.7", json!({"app": "b"}));
    server.apply(p.clone());
    objects.push(p);
    converges_to(&mut d, &objects).await;
    let after = lists(&server);
    assert!(after[0] > before[0], "pods re-listed after the ERROR 410");
    d.stop().await;
}

#[tokio::test]
async fn bookmarks_are_accepted_and_change_nothing() {
    let (objects, _) = cluster();
    let server = server_with(&objects).await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir).await;
    converges_to(&mut d, &objects).await;
    let attempts = d.fake.attempts();
    server.bookmark();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(d.fake.attempts(), attempts);
    let p = pod("x", "after-bookmark", "node-b", "198.18.2.8", json!({}));
    server.apply(p.clone());
    let mut objects = objects;
    objects.push(p);
    converges_to(&mut d, &objects).await;
    d.stop().await;
}

#[tokio::test]
async fn snapshot_once_lists_each_kind_once() {
    let (objects, _) = cluster();
    let server = server_with(&objects).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.kubeconfig = Some(server.kubeconfig(dir.path()));
    let got = flock_netpol::informers::snapshot_once(&cfg).await.unwrap();
    assert_eq!(got, expected(&objects));
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "one list per kind: {requests:?}");
    assert!(requests.iter().all(|r| !r.contains("watch=true")));
}

#[tokio::test]
async fn an_http_410_on_watch_start_also_forces_a_relist() {
    let (mut objects, _) = cluster();
    let mut server = server_with(&objects).await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir).await;
    converges_to(&mut d, &objects).await;
    let pod_lists = server.list_count(Kind::Pod);

    server.stop().await;
    server.delete(Kind::Pod, "x", "b");
    remove(&mut objects, "Pod", "x", "b");
    server.compact();
    server.set_gone_as_http(true);
    server.restart().await;
    converges_to(&mut d, &objects).await;
    assert!(server.list_count(Kind::Pod) > pod_lists, "pods re-listed");
    d.stop().await;
}

#[tokio::test]
async fn a_pod_list_longer_than_a_page_is_read_page_by_page_and_cached_whole() {
    let (mut objects, _) = cluster();
    // 1,200 remote pods: three pages of the informer's 500-item lists.
    for i in 0..1_200u32 {
        let ip = format!("198.18.{}.{}", 10 + i / 250, 1 + i % 250);
        objects.push(pod(
            "y",
            &format!("p{i:04}"),
            "node-b",
            &ip,
            json!({"app": "b"}),
        ));
    }
    let server = server_with(&objects).await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir).await;
    converges_to(&mut d, &objects).await;
    let pod_lists: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("/api/v1/pods?") && !r.contains("watch=true"))
        .collect();
    assert_eq!(pod_lists.len(), 3, "{pod_lists:?}");
    assert!(
        pod_lists.iter().all(|r| r.contains("limit=500")),
        "{pod_lists:?}"
    );
    assert_eq!(
        pod_lists.iter().filter(|r| r.contains("continue=")).count(),
        2,
        "{pod_lists:?}"
    );
    d.stop().await;
}
