//! A fake Kubernetes API server for tests of the informers: plain HTTP/1.1 on
//! 127.0.0.1, speaking the real list/watch protocol for Pods, Namespaces and
//! NetworkPolicies (the only fake of Kubernetes the tests use).
//!
//! - `GET <collection>`: a JSON List whose `metadata.resourceVersion` is the
//!   server's current one. With `limit=N` it pages as a real API server
//!   does: at most N items and a `metadata.continue` token while more remain;
//!   the pages of one list carry the first page's resourceVersion.
//! - `GET <collection>?watch=true&resourceVersion=N`: a chunked stream of
//!   `ADDED`/`MODIFIED`/`DELETED` events after N (from the history, then
//!   live), `BOOKMARK`s on request, and an `ERROR` event with a `Status` of
//!   code 410 (reason Expired) when N is older than the compacted history, as
//!   a real API server does.
//! - `stop()` closes the listener and every connection mid-stream;
//!   `restart()` listens on the same port again with the same objects.
//!
//! Must not: listen anywhere but 127.0.0.1, or run without a bound.

#![allow(dead_code)] // each test crate uses a different part of this module

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::JoinSet;

/// The kinds served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Pod,
    Namespace,
    NetworkPolicy,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Pod => "/api/v1/pods",
            Kind::Namespace => "/api/v1/namespaces",
            Kind::NetworkPolicy => "/apis/networking.k8s.io/v1/networkpolicies",
        }
    }

    fn from_path(path: &str) -> Option<Kind> {
        [Kind::Pod, Kind::Namespace, Kind::NetworkPolicy]
            .into_iter()
            .find(|k| k.path() == path)
    }

    fn list_kind(self) -> (&'static str, &'static str) {
        match self {
            Kind::Pod => ("v1", "PodList"),
            Kind::Namespace => ("v1", "NamespaceList"),
            Kind::NetworkPolicy => ("networking.k8s.io/v1", "NetworkPolicyList"),
        }
    }

    fn of(obj: &Value) -> Kind {
        match obj["kind"].as_str() {
            Some("Pod") => Kind::Pod,
            Some("Namespace") => Kind::Namespace,
            Some("NetworkPolicy") => Kind::NetworkPolicy,
            other => panic!("fake API server: unsupported kind {other:?}"),
        }
    }
}

/// What goes out to the watchers.
#[derive(Debug, Clone)]
enum Broadcast {
    Event {
        rv: u64,
        kind: Kind,
        kind_type: &'static str,
        object: Value,
    },
    Bookmark,
    /// Send `ERROR 410` to every open watch and end it.
    Expire,
}

#[derive(Debug)]
struct State {
    rv: u64,
    objects: BTreeMap<(Kind, String, String), Value>,
    /// Every change, oldest first, for watches that resume at an older rv.
    history: Vec<(u64, Kind, &'static str, Value)>,
    /// Watches from a resourceVersion below this get 410 Gone.
    compacted: u64,
    /// Answer a watch from a compacted resourceVersion with HTTP 410 instead
    /// of an ERROR event in a 200 stream.
    gone_as_http: bool,
    /// Kinds whose list requests answer 500 (to hold back a store's sync).
    failing_lists: Vec<Kind>,
    /// Every request line served (`GET /path?query`).
    requests: Vec<String>,
    tx: broadcast::Sender<Broadcast>,
}

/// A running (or stopped) fake API server.
pub struct FakeApiServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    tasks: Option<JoinSet<()>>,
}

impl FakeApiServer {
    /// Listen on 127.0.0.1 on a free port.
    pub async fn start() -> FakeApiServer {
        let (tx, _) = broadcast::channel(1024);
        let state = Arc::new(Mutex::new(State {
            rv: 1,
            objects: BTreeMap::new(),
            history: Vec::new(),
            compacted: 0,
            gone_as_http: false,
            failing_lists: Vec::new(),
            requests: Vec::new(),
            tx,
        }));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let mut server = FakeApiServer {
            addr,
            state,
            tasks: None,
        };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: TcpListener) {
        let mut tasks = JoinSet::new();
        let state = self.state.clone();
        let conns = Arc::new(Mutex::new(JoinSet::new()));
        let conns2 = conns.clone();
        tasks.spawn(async move {
            // Keep the connection tasks alive as long as the accept task:
            // aborting it drops the JoinSet, which aborts them all.
            let _conns = conns2;
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                lock(&_conns).spawn(handle(stream, state));
            }
        });
        self.tasks = Some(tasks);
        drop(conns);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Close the listener and every open connection (watches end mid-stream).
    pub async fn stop(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.shutdown().await;
        }
    }

    /// Listen again on the same port, with the objects and history kept.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("fake API server: rebind {}: {e}, retrying", self.addr);
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("fake API server: cannot rebind {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Create or replace an object (by kind, namespace, name); emits ADDED
    /// or MODIFIED. Returns the new resourceVersion.
    pub fn apply(&self, mut object: Value) -> u64 {
        let kind = Kind::of(&object);
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .expect("object has metadata.name")
            .to_string();
        let mut s = self.state();
        s.rv += 1;
        let rv = s.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        if object["metadata"]["uid"].is_null() {
            object["metadata"]["uid"] = json!(format!("uid-{ns}-{name}"));
        }
        let kind_type = match s.objects.insert((kind, ns, name), object.clone()) {
            Some(_) => "MODIFIED",
            None => "ADDED",
        };
        s.record(rv, kind, kind_type, object);
        rv
    }

    /// Delete an object; emits DELETED. Panics when it does not exist.
    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) -> u64 {
        let mut s = self.state();
        let mut object = s
            .objects
            .remove(&(kind, namespace.to_string(), name.to_string()))
            .unwrap_or_else(|| panic!("fake API server: no {kind:?} {namespace}/{name}"));
        s.rv += 1;
        let rv = s.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        s.record(rv, kind, "DELETED", object);
        rv
    }

    /// Forget the history: a watch resuming at an older resourceVersion gets
    /// 410 Gone and must re-list.
    pub fn compact(&self) {
        let mut s = self.state();
        s.compacted = s.rv;
        s.history.clear();
    }

    /// Compact, then end every open watch with `ERROR 410` (the client must
    /// re-list, it cannot resume).
    pub fn expire_watches(&self) {
        self.compact();
        let _ = self.state().tx.send(Broadcast::Expire);
    }

    /// Answer watches from a compacted resourceVersion with HTTP 410 (true)
    /// or, as the API server's watch cache does, with an ERROR event (false).
    pub fn set_gone_as_http(&self, http: bool) {
        self.state().gone_as_http = http;
    }

    /// Send a BOOKMARK at the current resourceVersion to every open watch.
    pub fn bookmark(&self) {
        let _ = self.state().tx.send(Broadcast::Bookmark);
    }

    /// Make list requests of `kind` fail with HTTP 500 (or succeed again).
    pub fn set_list_failing(&self, kind: Kind, failing: bool) {
        let mut s = self.state();
        s.failing_lists.retain(|k| *k != kind);
        if failing {
            s.failing_lists.push(kind);
        }
    }

    /// Request lines served so far.
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }

    /// Number of list (not watch) requests served for `kind`.
    pub fn list_count(&self, kind: Kind) -> usize {
        self.requests()
            .iter()
            .filter(|r| {
                let (path, query) = r.split_once('?').unwrap_or((r, ""));
                path == kind.path() && !query.contains("watch=true")
            })
            .count()
    }

    /// Write a kubeconfig for this server (plain http, no credentials).
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
             users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
             current-context: fake\n",
            self.addr
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(tasks) = self.tasks.as_mut() {
            tasks.abort_all();
        }
    }
}

impl State {
    fn record(&mut self, rv: u64, kind: Kind, kind_type: &'static str, object: Value) {
        self.history.push((rv, kind, kind_type, object.clone()));
        let _ = self.tx.send(Broadcast::Event {
            rv,
            kind,
            kind_type,
            object,
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One request per connection (`Connection: close`).
async fn handle(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    lock(&state).requests.push(target.to_string());
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params: BTreeMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let Some(kind) = Kind::from_path(path).filter(|_| method == "GET") else {
        let _ = respond(
            &mut stream,
            "404 Not Found",
            &status_json(404, "NotFound", target),
        )
        .await;
        return;
    };
    if params.get("watch") == Some(&"true") {
        let from: u64 = params
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let _ = watch(&mut stream, &state, kind, from).await;
    } else {
        let body = {
            let s = lock(&state);
            if s.failing_lists.contains(&kind) {
                None
            } else {
                Some(list_page(&s, kind, &params))
            }
        };
        let _ = match body {
            Some(b) => respond(&mut stream, "200 OK", &b).await,
            None => {
                let err = status_json(500, "InternalError", "list failing on purpose");
                respond(&mut stream, "500 Internal Server Error", &err).await
            }
        };
    }
}

/// One page of a list: `limit` items at most, after the key the `continue`
/// token names (`RV_NAMESPACE_NAME`; `_` occurs in no Kubernetes name).
fn list_page(s: &State, kind: Kind, params: &BTreeMap<&str, &str>) -> Value {
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| l > 0)
        .unwrap_or(usize::MAX);
    let (rv, after) = match params
        .get("continue")
        .map(|c| c.splitn(3, '_').collect::<Vec<_>>())
    {
        Some(parts) if parts.len() == 3 => (
            parts[0].to_string(),
            Some((kind, parts[1].to_string(), parts[2].to_string())),
        ),
        _ => (s.rv.to_string(), None),
    };
    let mut rest = s
        .objects
        .iter()
        .filter(|(key, _)| key.0 == kind && after.as_ref().is_none_or(|a| *key > a));
    let page: Vec<(&(Kind, String, String), &Value)> = rest.by_ref().take(limit).collect();
    let mut metadata = json!({"resourceVersion": rv});
    if let (Some((last, _)), Some(_)) = (page.last(), rest.next()) {
        metadata["continue"] = json!(format!("{rv}_{}_{}", last.1, last.2));
    }
    let (api_version, list_kind) = kind.list_kind();
    let items: Vec<&Value> = page.into_iter().map(|(_, v)| v).collect();
    json!({"apiVersion": api_version, "kind": list_kind, "metadata": metadata, "items": items})
}

fn status_json(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

async fn respond(stream: &mut TcpStream, status: &str, body: &Value) -> std::io::Result<()> {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

async fn chunk(stream: &mut TcpStream, event: &Value) -> std::io::Result<()> {
    let line = format!("{event}\n");
    let framed = format!("{:x}\r\n{line}\r\n", line.len());
    stream.write_all(framed.as_bytes()).await?;
    stream.flush().await
}

/// Stream events of `kind` after resourceVersion `from`.
async fn watch(
    stream: &mut TcpStream,
    state: &Mutex<State>,
    kind: Kind,
    from: u64,
) -> std::io::Result<()> {
    // Subscribe and read the history under one lock: no event is lost or
    // sent twice between the two.
    let (mut rx, backlog, expired, rv_now, gone_as_http) = {
        let s = lock(state);
        let backlog: Vec<Value> = s
            .history
            .iter()
            .filter(|(rv, k, _, _)| *rv > from && *k == kind)
            .map(|(_, _, t, o)| json!({"type": t, "object": o}))
            .collect();
        (
            s.tx.subscribe(),
            backlog,
            from < s.compacted,
            s.rv,
            s.gone_as_http,
        )
    };
    if expired && gone_as_http {
        let msg = format!("too old resource version: {from} ({rv_now})");
        return respond(stream, "410 Gone", &status_json(410, "Expired", &msg)).await;
    }
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await?;
    if expired {
        let msg = format!("too old resource version: {from} ({rv_now})");
        chunk(
            stream,
            &json!({"type": "ERROR", "object": status_json(410, "Expired", &msg)}),
        )
        .await?;
        return stream.write_all(b"0\r\n\r\n").await;
    }
    for event in backlog {
        chunk(stream, &event).await?;
    }
    loop {
        match rx.recv().await {
            Ok(Broadcast::Event {
                kind: k,
                kind_type,
                object,
                ..
            }) if k == kind => {
                chunk(stream, &json!({"type": kind_type, "object": object})).await?;
            }
            Ok(Broadcast::Event { .. }) => {}
            Ok(Broadcast::Bookmark) => {
                let rv = lock(state).rv.to_string();
                let (api_version, list_kind) = kind.list_kind();
                let object_kind = list_kind.trim_end_matches("List");
                let bm = json!({"type": "BOOKMARK", "object": {
                    "apiVersion": api_version, "kind": object_kind,
                    "metadata": {"resourceVersion": rv}}});
                chunk(stream, &bm).await?;
            }
            Ok(Broadcast::Expire) | Err(broadcast::error::RecvError::Lagged(_)) => {
                let msg = "watch expired by the test";
                chunk(
                    stream,
                    &json!({"type": "ERROR", "object": status_json(410, "Expired", msg)}),
                )
                .await?;
                return stream.write_all(b"0\r\n\r\n").await;
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

/// A Namespace object.
pub fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": labels}})
}

/// A running Pod with one IPv4 address, serving TCP 80 named "http".
pub fn pod(namespace: &str, name: &str, node: &str, ip: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": namespace, "labels": labels,
                        "annotations": {"noise": "trimmed away"}},
           "spec": {"nodeName": node, "containers": [{"name": "c", "image": "srv",
                    "ports": [{"name": "http", "containerPort": 80}]}]},
           "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
}

/// A NetworkPolicy object with the given spec.
pub fn policy(namespace: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": name, "namespace": namespace}, "spec": spec})
}
