//! The prober: measures a set of cells in parallel, one thread per source
//! namespace (setns) and one per probe under it, 1 s timeout per probe.
//! UDP probes bind a fresh source port each (per source address), so an
//! earlier conntrack entry cannot make a blocked probe look allowed.
//!
//! Must not: decide what is expected; touch any namespace but the plan's.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use crate::matrix::{Cell, Matrix, Proto, Source};
use crate::netns;
use crate::plan::{node_ip, node_netns, pod_netns, Topology};

/// Per-probe timeout of a measurement that decides PASS or FAIL.
pub const TIMEOUT: Duration = Duration::from_secs(1);
/// UDP source ports cycle through this range, per source.
const FIRST_PORT: u32 = 10_000;
const LAST_PORT: u32 = 60_000;

pub struct Prober {
    topo: Topology,
    prefix: String,
    next_port: BTreeMap<Source, AtomicU32>,
}

impl Prober {
    pub fn new(topo: &Topology, prefix: &str) -> Prober {
        let mut next_port = BTreeMap::new();
        for i in 0..topo.endpoints.len() {
            next_port.insert(Source::Pod(i), AtomicU32::new(FIRST_PORT));
        }
        for n in &topo.nodes {
            next_port.insert(Source::Node(n.clone()), AtomicU32::new(FIRST_PORT));
        }
        Prober {
            topo: topo.clone(),
            prefix: prefix.to_string(),
            next_port,
        }
    }

    fn fresh_port(&self, src: &Source) -> u16 {
        let n = self.next_port[src].fetch_add(1, Ordering::Relaxed);
        (FIRST_PORT + (n - FIRST_PORT) % (LAST_PORT - FIRST_PORT)) as u16
    }

    /// Probe every cell with the 1 s timeout; Err only when a namespace
    /// cannot be entered.
    pub fn measure(&self, cells: &[Cell]) -> Result<Matrix> {
        self.measure_with(cells, TIMEOUT)
    }

    /// Probe every cell, giving each probe `timeout`.
    pub fn measure_with(&self, cells: &[Cell], timeout: Duration) -> Result<Matrix> {
        let mut by_source: BTreeMap<&Source, Vec<&Cell>> = BTreeMap::new();
        for c in cells {
            by_source.entry(&c.from).or_default().push(c);
        }
        let results = std::thread::scope(|s| {
            let handles: Vec<_> = by_source
                .into_iter()
                .map(|(src, cells)| s.spawn(move || self.measure_from(src, &cells, timeout)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a probe thread panicked")))
                })
                .collect::<Vec<_>>()
        });
        let mut out = Matrix::new();
        for r in results {
            out.extend(r?);
        }
        Ok(out)
    }

    /// Runs on its own thread: enter the source's namespace, then probe each
    /// cell on a thread of its own (threads inherit the namespace).
    fn measure_from(
        &self,
        src: &Source,
        cells: &[&Cell],
        timeout: Duration,
    ) -> Result<Vec<(Cell, bool)>> {
        let ns = match src {
            Source::Pod(i) => pod_netns(&self.prefix, &self.topo.endpoints[*i].key),
            Source::Node(n) => node_netns(&self.prefix, n),
        };
        netns::enter(&ns)?;
        Ok(std::thread::scope(|s| {
            let handles: Vec<_> = cells
                .iter()
                .map(|c| s.spawn(move || ((*c).clone(), self.probe(c, timeout))))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        }))
    }

    fn probe(&self, cell: &Cell, timeout: Duration) -> bool {
        let dst = &self.topo.endpoints[cell.to];
        let family = cell.svc.family;
        let (Some(dst_ip), Some(src_ip)) = (dst.ip(family), self.source_ip(&cell.from, family))
        else {
            return false;
        };
        let token = format!("probe-{}", self.fresh_port(&cell.from));
        let reply = match cell.svc.proto {
            Proto::Tcp => tcp_exchange(SocketAddr::new(dst_ip, cell.svc.port), &token, timeout),
            Proto::Udp => {
                let port = self.fresh_port(&cell.from);
                udp_exchange(
                    SocketAddr::new(src_ip, port),
                    SocketAddr::new(dst_ip, cell.svc.port),
                    &token,
                    timeout,
                )
            }
        };
        reply.is_some_and(|r| r.trim_end() == format!("{} {token}", dst.key))
    }

    fn source_ip(&self, src: &Source, family: crate::plan::Family) -> Option<IpAddr> {
        match src {
            Source::Pod(i) => self.topo.endpoints[*i].ip(family),
            Source::Node(n) => Some(node_ip(self.topo.node_number(n), family)),
        }
    }
}

fn tcp_exchange(dst: SocketAddr, token: &str, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&dst, timeout).ok()?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(50));
    stream.set_read_timeout(Some(left)).ok()?;
    stream.write_all(format!("{token}\n").as_bytes()).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.contains(&b'\n') {
                    break;
                }
            }
            Err(_) => return None,
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn udp_exchange(
    src: SocketAddr,
    dst: SocketAddr,
    token: &str,
    timeout: Duration,
) -> Option<String> {
    let sock = UdpSocket::bind(src).ok()?;
    sock.connect(dst).ok()?;
    sock.set_read_timeout(Some(timeout)).ok()?;
    sock.send(format!("{token}\n").as_bytes()).ok()?;
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}
