//! New TCP connections per second, for the dataplane bench
//! (benches/dataplane.sh): a server that accepts, writes one byte and closes,
//! and a client that connects, reads that byte and resets the connection
//! (SO_LINGER 0, so no TIME_WAIT holds its source port), in a loop.
//!
//! `connrate serve ADDR:PORT` runs until killed (or SECONDS, when given);
//! `connrate client ADDR:PORT SECONDS` prints `<connections> <seconds> <rate>`
//! (failed connects are counted apart and printed to stderr; the exit status
//! is 1 when none succeeded).
//!
//! Must not: loop without a time bound (the server takes an optional bound,
//! the client always has one).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use nix::sys::socket::{setsockopt, sockopt};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["serve", addr] => serve(addr.parse()?, None),
        ["serve", addr, secs] => serve(addr.parse()?, Some(Duration::from_secs(secs.parse()?))),
        ["client", addr, secs] => client(addr.parse()?, Duration::from_secs_f64(secs.parse()?)),
        _ => anyhow::bail!("usage: connrate serve ADDR:PORT [SECONDS] | client ADDR:PORT SECONDS"),
    }
}

fn serve(addr: SocketAddr, bound: Option<Duration>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)?;
    let start = Instant::now();
    for conn in listener.incoming() {
        if let Ok(mut s) = conn {
            let _ = s.write_all(b"x");
        }
        if bound.is_some_and(|b| start.elapsed() > b) {
            break;
        }
    }
    Ok(())
}

fn client(addr: SocketAddr, length: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut byte = [0u8; 1];
    while start.elapsed() < length {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(1)))?;
                match s.read_exact(&mut byte) {
                    Ok(()) => ok += 1,
                    Err(_) => failed += 1,
                }
                // RST on close: no TIME_WAIT, the source port is free again.
                setsockopt(
                    &s,
                    sockopt::Linger,
                    &libc::linger {
                        l_onoff: 1,
                        l_linger: 0,
                    },
                )?;
            }
            Err(_) => failed += 1,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if failed > 0 {
        eprintln!("connrate: {failed} failed connections");
    }
    println!("{ok} {secs:.3} {:.1}", ok as f64 / secs);
    if ok == 0 {
        anyhow::bail!("no connection to {addr} succeeded");
    }
    Ok(())
}
