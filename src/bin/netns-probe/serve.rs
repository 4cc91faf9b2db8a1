//! Echo servers in every pod namespace: TCP and UDP, ports 80 and 81, on the
//! pod's IPv4 and IPv6 addresses. A reply is `NAMESPACE/POD PAYLOAD`, so a
//! probe knows which pod answered.
//!
//! Must not: bind outside the pod namespaces or exit on a client's error.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::matrix::Svc;
use crate::netns;
use crate::plan::{pod_netns, Family, Topology};

/// Bind every server, report readiness, then serve until killed.
pub fn serve(topo: &Topology, prefix: &str, ready: Option<&std::path::Path>) -> Result<()> {
    let (tx, rx) = mpsc::channel::<Result<()>>();
    for ep in topo.endpoints.clone() {
        let ns = pod_netns(prefix, &ep.key);
        let tx = tx.clone();
        std::thread::spawn(move || {
            let bound = bind_all(&ns, &ep.key, [ep.ip(Family::V4), ep.ip(Family::V6)]);
            let _ = tx.send(bound.map(|_| ()));
            // Keep this thread (and so its namespace) alive; servers run on
            // threads started from it.
            loop {
                std::thread::park();
            }
        });
    }
    drop(tx);
    for _ in 0..topo.endpoints.len() {
        rx.recv().context("a server thread died")??;
    }
    if let Some(path) = ready {
        std::fs::write(path, "ready\n").with_context(|| format!("write {}", path.display()))?;
    }
    eprintln!("netns-probe: serving {} pods", topo.endpoints.len());
    loop {
        std::thread::park();
    }
}

fn bind_all(ns: &str, key: &str, ips: [Option<std::net::IpAddr>; 2]) -> Result<()> {
    netns::enter(ns)?;
    for ip in ips.into_iter().flatten() {
        for port in Svc::PORTS {
            let addr = SocketAddr::new(ip, port);
            let tcp = TcpListener::bind(addr).with_context(|| format!("{key}: bind tcp {addr}"))?;
            let udp = UdpSocket::bind(addr).with_context(|| format!("{key}: bind udp {addr}"))?;
            let (k1, k2) = (key.to_string(), key.to_string());
            std::thread::spawn(move || tcp_loop(tcp, &k1));
            std::thread::spawn(move || udp_loop(udp, &k2));
        }
    }
    Ok(())
}

fn tcp_loop(listener: TcpListener, key: &str) {
    for stream in listener.incoming().flatten() {
        let key = key.to_string();
        std::thread::spawn(move || {
            let _ = echo_tcp(stream, &key);
        });
    }
}

fn echo_tcp(mut stream: TcpStream, key: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut buf = [0u8; 256];
    let mut len = 0;
    while len < buf.len() {
        let n = stream.read(&mut buf[len..])?;
        len += n;
        if n == 0 || buf[..len].contains(&b'\n') {
            break;
        }
    }
    let payload = String::from_utf8_lossy(&buf[..len]);
    stream.write_all(format!("{key} {}\n", payload.trim_end()).as_bytes())
}

fn udp_loop(sock: UdpSocket, key: &str) {
    let mut buf = [0u8; 256];
    loop {
        if let Ok((n, peer)) = sock.recv_from(&mut buf) {
            let payload = String::from_utf8_lossy(&buf[..n]);
            let _ = sock.send_to(format!("{key} {}\n", payload.trim_end()).as_bytes(), peer);
        }
    }
}
