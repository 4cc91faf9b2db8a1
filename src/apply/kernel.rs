//! The netlink socket: send one encoded batch to nf_tables in ONE `send()`,
//! read back every acknowledgement and error, and name the object of each
//! error by its sequence number.
//!
//! The kernel processes a netlink batch synchronously inside `send()`, so
//! when it returns every reply is already queued on the socket (nft relies
//! on the same). The buffers are forced large enough for the whole batch
//! (`SO_SNDBUFFORCE`, needs CAP_NET_ADMIN, which committing needs anyway).
//! Extended ACKs are switched on to get the kernel's message text, and
//! capped so an error does not echo a 60 KiB element message back.
//!
//! Must not: encode objects (that is `batch`), or retry.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{
    self, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use nix::sys::time::TimeVal;

use super::batch::Encoded;
use super::nfnl::{self, NLMSG_HDRLEN};
use super::{ApplyError, KernelError};

/// `SOL_NETLINK`.
const SOL_NETLINK: libc::c_int = 270;
/// `NLMSG_ERROR`: an acknowledgement (error 0) or an error.
const NLMSG_ERROR: u16 = 2;
/// `NLMSGERR_ATTR_MSG`: the extended ACK's text.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// `NLMSGERR_ATTR_OFFS`: offset of the offending attribute in the request.
const NLMSGERR_ATTR_OFFS: u16 = 2;
/// Flags on an error reply: the request was cut to its header / TLVs follow.
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;

/// Receive buffer: replies are small, but every failing message gets one.
const RCVBUF_MIN: usize = 4 << 20;
/// How long to wait for a reply that was not queued when `send()` returned
/// (it always is, on the kernels we know; this only bounds a surprise).
const LATE_REPLY_WAIT: Duration = Duration::from_secs(2);

fn sock_err(what: &'static str) -> impl FnOnce(nix::Error) -> ApplyError {
    move |e| ApplyError::Socket {
        what,
        source: io::Error::from(e),
    }
}

fn set_netlink_opt(fd: &OwnedFd, opt: libc::c_int, what: &'static str) -> Result<(), ApplyError> {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live c_int.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            SOL_NETLINK,
            opt,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(ApplyError::Socket {
            what,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// A netlink socket to nf_tables, sized for a batch of `batch_len` bytes.
fn open(batch_len: usize, messages: usize) -> Result<OwnedFd, ApplyError> {
    let fd = socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )
    .map_err(sock_err("socket(AF_NETLINK, NETLINK_NETFILTER)"))?;
    // netlink refuses a message longer than the send buffer minus 32 bytes.
    let sndbuf = batch_len + (64 << 10);
    socket::setsockopt(&fd, sockopt::SndBufForce, &sndbuf)
        .map_err(sock_err("setsockopt(SO_SNDBUFFORCE)"))?;
    let rcvbuf = RCVBUF_MIN.max(messages.saturating_mul(1024));
    socket::setsockopt(&fd, sockopt::RcvBufForce, &rcvbuf)
        .map_err(sock_err("setsockopt(SO_RCVBUFFORCE)"))?;
    set_netlink_opt(&fd, libc::NETLINK_EXT_ACK, "setsockopt(NETLINK_EXT_ACK)")?;
    set_netlink_opt(&fd, libc::NETLINK_CAP_ACK, "setsockopt(NETLINK_CAP_ACK)")?;
    socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(sock_err("bind(AF_NETLINK)"))?;
    Ok(fd)
}

/// One `NLMSG_ERROR` reply: its sequence number, errno (0 = ACK) and the
/// extended ACK text when the kernel gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub seq: u32,
    pub errno: i32,
    pub message: Option<String>,
    pub attr_offset: Option<u32>,
}

/// Parse the `NLMSG_ERROR` replies in a datagram; other messages are ignored.
pub fn parse_replies(buf: &[u8]) -> Vec<Reply> {
    let mut out = Vec::new();
    for m in nfnl::messages(buf) {
        if m.msg_type != NLMSG_ERROR || m.bytes.len() < NLMSG_HDRLEN + 4 + NLMSG_HDRLEN {
            continue;
        }
        let body = &m.bytes[NLMSG_HDRLEN..];
        let error = i32::from_ne_bytes(body[0..4].try_into().expect("4 bytes"));
        let orig_len = u32::from_ne_bytes(body[4..8].try_into().expect("4 bytes")) as usize;
        let mut reply = Reply {
            seq: m.seq,
            errno: -error,
            message: None,
            attr_offset: None,
        };
        if m.flags & NLM_F_ACK_TLVS != 0 {
            let echoed = if m.flags & NLM_F_CAPPED != 0 {
                NLMSG_HDRLEN
            } else {
                (orig_len + 3) & !3
            };
            let tlvs = body.get(4 + echoed..).unwrap_or(&[]);
            for (ty, val) in nfnl::attrs(tlvs) {
                match ty {
                    NLMSGERR_ATTR_MSG => {
                        let text = val.split(|b| *b == 0).next().unwrap_or(&[]);
                        reply.message = Some(String::from_utf8_lossy(text).into_owned());
                    }
                    NLMSGERR_ATTR_OFFS if val.len() == 4 => {
                        reply.attr_offset = Some(u32::from_ne_bytes(val.try_into().expect("4")));
                    }
                    _ => {}
                }
            }
        }
        out.push(reply);
    }
    out
}

/// Send `enc` as one transaction. `Ok` when the kernel acknowledged the
/// last message and reported no error; else the errors, each naming its
/// object.
pub fn send(enc: &Encoded) -> Result<(), ApplyError> {
    let fd = open(enc.bytes.len(), enc.objects.len())?;
    let sent = socket::send(fd.as_raw_fd(), &enc.bytes, MsgFlags::empty())
        .map_err(sock_err("send(batch)"))?;
    if sent != enc.bytes.len() {
        return Err(ApplyError::Socket {
            what: "send(batch)",
            source: io::Error::other(format!("sent {sent} of {} bytes", enc.bytes.len())),
        });
    }
    let acked_seq = enc.last_seq() - 1;
    let mut replies = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut waited = false;
    loop {
        match socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(0) => break,
            Ok(n) => replies.extend(parse_replies(&buf[..n])),
            Err(nix::Error::EAGAIN) => {
                let finished = replies.iter().any(|r: &Reply| {
                    r.seq == acked_seq || (r.errno != 0 && r.seq == super::FIRST_SEQ)
                });
                if finished || waited {
                    break;
                }
                // Nothing more queued and no final reply yet: wait once, bounded.
                waited = true;
                let tv = TimeVal::new(LATE_REPLY_WAIT.as_secs() as _, 0);
                socket::setsockopt(&fd, sockopt::ReceiveTimeout, &tv)
                    .map_err(sock_err("setsockopt(SO_RCVTIMEO)"))?;
                match socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                    Ok(n) => replies.extend(parse_replies(&buf[..n])),
                    Err(nix::Error::EAGAIN) => break,
                    Err(e) => return Err(sock_err("recv(replies)")(e)),
                }
            }
            Err(nix::Error::ENOBUFS) => {
                return Err(ApplyError::Rejected {
                    errors: vec![KernelError {
                        object: "the transaction".into(),
                        seq: 0,
                        errno: libc::ENOBUFS,
                        message: Some("more error replies than the socket could hold".into()),
                    }],
                })
            }
            Err(e) => return Err(sock_err("recv(replies)")(e)),
        }
    }
    let errors: Vec<KernelError> = replies
        .iter()
        .filter(|r| r.errno != 0)
        .map(|r| KernelError {
            object: enc
                .object(r.seq)
                .map(|o| o.to_string())
                .unwrap_or_else(|| format!("message {}", r.seq)),
            seq: r.seq,
            errno: r.errno,
            message: r.message.clone(),
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApplyError::Rejected { errors });
    }
    if !replies.iter().any(|r| r.seq == acked_seq) {
        return Err(ApplyError::NoAck {
            replies: replies.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_reply_with_extended_ack_text_is_parsed() {
        // NLMSG_ERROR, flags CAPPED|ACK_TLVS, seq 7: error -ENOENT, the
        // request's header, then NLMSGERR_ATTR_MSG "no such chain".
        let mut b = Vec::new();
        let text = b"no such chain\0";
        let tlv_len = 4 + text.len();
        let total = 16 + 4 + 16 + ((tlv_len + 3) & !3);
        b.extend_from_slice(&(total as u32).to_ne_bytes());
        b.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        b.extend_from_slice(&(NLM_F_CAPPED | NLM_F_ACK_TLVS).to_ne_bytes());
        b.extend_from_slice(&7u32.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&(-libc::ENOENT).to_ne_bytes());
        b.extend_from_slice(&200u32.to_ne_bytes()); // original length (not echoed)
        b.extend_from_slice(&0x0a06u16.to_ne_bytes());
        b.extend_from_slice(&[0; 10]);
        b.extend_from_slice(&(tlv_len as u16).to_ne_bytes());
        b.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        b.extend_from_slice(text);
        b.resize(total, 0);
        let r = parse_replies(&b);
        assert_eq!(
            r,
            vec![Reply {
                seq: 7,
                errno: libc::ENOENT,
                message: Some("no such chain".into()),
                attr_offset: None,
            }]
        );
    }
}
