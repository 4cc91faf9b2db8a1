//! The project's own nfnetlink encoder, for what rustables 0.9 cannot
//! express: named sets with a data type (verdict maps), set flags (interval
//! sets), set elements with flags and verdict data, element lists split over
//! several messages, and the message framing of the batch itself.
//!
//! Layout facts (from `linux/netlink.h`, `linux/netfilter/nfnetlink.h` and
//! `linux/netfilter/nf_tables.h`): a message is a 16-byte `nlmsghdr` (length,
//! type, flags, sequence, port id; host byte order) followed by a 4-byte
//! `nfgenmsg` (family, version 0, resource id in big endian) and attributes.
//! An attribute is a 4-byte header (length including the header, type) and
//! its payload padded to 4 bytes; nested attributes carry `NLA_F_NESTED`.
//! nf_tables integers inside attributes are big endian.
//!
//! Must not: open sockets, know about the `RuleSet`, or decide what goes in
//! a batch (that is `batch`).

use std::net::IpAddr;

use rustables::sys;

/// Netlink message header length.
pub const NLMSG_HDRLEN: usize = 16;
/// nfgenmsg length (family, version, resource id).
const NFGENMSG_LEN: usize = 4;
/// Attribute header length.
const NLA_HDRLEN: usize = 4;
/// Flag on an attribute type: the payload is a list of attributes.
const NLA_F_NESTED: u16 = 0x8000;

/// `NLM_F_REQUEST`: every message we send is a request.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`: ask the kernel for an acknowledgement of this message.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_CREATE`: create the object when absent.
const NLM_F_CREATE: u16 = 0x400;

/// `NFPROTO_INET`: the family of our table and everything in it.
pub const NFPROTO_INET: u8 = 1;

/// nftables data type id of `ipv4_addr` (nft's `TYPE_IPADDR`).
pub const TYPE_IPV4_ADDR: u32 = 7;
/// nftables data type id of `ipv6_addr` (nft's `TYPE_IP6ADDR`).
pub const TYPE_IPV6_ADDR: u32 = 8;
/// `NFT_DATA_VERDICT`: the data type of a verdict map.
pub const NFT_DATA_VERDICT: u32 = 0xffff_ff00;
/// `NFT_JUMP` verdict code (-3), as the kernel reads it (big endian i32).
pub const NFT_JUMP: i32 = -3;
/// `NFT_SET_ELEM_INTERVAL_END`: this element closes an interval.
pub const NFT_SET_ELEM_INTERVAL_END: u32 = 1;

/// An element list attribute may not exceed 64 KiB (its length is a u16);
/// keep each NEWSETELEM message under this many bytes, as nft does.
pub const MAX_ELEM_MSG_BYTES: usize = 60 * 1024;

/// The nftables message type on the wire: subsystem in the high byte.
fn nft_msg_type(msg: u32) -> u16 {
    ((sys::NFNL_SUBSYS_NFTABLES as u16) << 8) | msg as u16
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends netlink messages and attributes to a byte buffer.
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
    /// Offset of the last message begun with [`Writer::begin`] (or
    /// appended whole and recorded by its writer).
    pub last: usize,
}

impl Writer {
    /// A writer whose buffer holds `bytes` before it grows.
    pub fn with_capacity(bytes: usize) -> Writer {
        Writer {
            buf: Vec::with_capacity(bytes),
            last: 0,
        }
    }

    /// Start a message; returns its offset, to pass to [`Writer::end`].
    pub fn begin(&mut self, msg_type: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
        let start = self.buf.len();
        self.last = start;
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched by end()
        self.buf.extend_from_slice(&msg_type.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        self.buf.push(family);
        self.buf.push(0); // NFNETLINK_V0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        start
    }

    /// Finish the message started at `start` (patch its length).
    pub fn end(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    pub fn attr(&mut self, ty: u16, payload: &[u8]) {
        self.attr_parts(ty, payload, &[]);
    }

    /// An attribute header: length (header included) and type.
    #[inline]
    fn attr_header(&mut self, len: usize, ty: u16) {
        let [l0, l1] = (len as u16).to_ne_bytes();
        let [t0, t1] = ty.to_ne_bytes();
        self.buf.extend_from_slice(&[l0, l1, t0, t1]);
    }

    /// Zero bytes up to the next multiple of 4.
    fn pad(&mut self) {
        let pad = align4(self.buf.len()) - self.buf.len();
        self.buf.extend_from_slice(&[0; 3][..pad]);
    }

    /// An attribute whose payload is `head` then `tail`.
    fn attr_parts(&mut self, ty: u16, head: &[u8], tail: &[u8]) {
        self.attr_header(NLA_HDRLEN + head.len() + tail.len(), ty);
        self.buf.extend_from_slice(head);
        self.buf.extend_from_slice(tail);
        self.pad();
    }

    #[inline]
    pub fn attr_be32(&mut self, ty: u16, v: u32) {
        // Header and a 4-byte payload: always aligned.
        self.attr_header(NLA_HDRLEN + 4, ty);
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A NUL-terminated string attribute.
    pub fn attr_str(&mut self, ty: u16, s: &str) {
        self.attr_parts(ty, s.as_bytes(), &[0]);
    }

    /// Open a nested attribute; returns its offset for [`Writer::nest_end`].
    pub fn nest_begin(&mut self, ty: u16) -> usize {
        let start = self.buf.len();
        self.attr_header(0, ty | NLA_F_NESTED);
        start
    }

    pub fn nest_end(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }
}

/// `NFNL_MSG_BATCH_BEGIN` (resource id: the nftables subsystem).
pub fn batch_begin(w: &mut Writer, seq: u32) {
    let s = w.begin(
        sys::NFNL_MSG_BATCH_BEGIN as u16,
        NLM_F_REQUEST,
        seq,
        0,
        sys::NFNL_SUBSYS_NFTABLES as u16,
    );
    w.end(s);
}

/// `NFNL_MSG_BATCH_END`: the kernel commits the transaction here.
pub fn batch_end(w: &mut Writer, seq: u32) {
    let s = w.begin(
        sys::NFNL_MSG_BATCH_END as u16,
        NLM_F_REQUEST,
        seq,
        0,
        sys::NFNL_SUBSYS_NFTABLES as u16,
    );
    w.end(s);
}

/// What a NEWSET message declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSpec<'a> {
    pub table: &'a str,
    pub name: &'a str,
    /// `NFT_SET_*` flags (MAP 0x8, INTERVAL 0x4).
    pub flags: u32,
    pub key_type: u32,
    pub key_len: u32,
    /// Data type of a map (`NFT_DATA_VERDICT`), `None` for a plain set.
    pub data_type: Option<u32>,
    /// Transaction-local id; element messages refer to the set by it too.
    pub id: u32,
}

/// nft's set user data (libnftnl `NFTNL_UDATA_SET_*` TLVs: one-byte type,
/// one-byte length, value): key byte order big endian (2), and for a
/// verdict map also data byte order (0) and data-interval (0). Stored so that
/// `nft list` describes the set exactly as for a set nft made itself.
fn set_userdata(is_map: bool) -> Vec<u8> {
    const KEYBYTEORDER: u8 = 0;
    const DATABYTEORDER: u8 = 1;
    const DATA_INTERVAL: u8 = 6;
    const BYTEORDER_BIG_ENDIAN: u32 = 2;
    let mut v = Vec::new();
    let mut tlv = |ty: u8, val: u32| {
        v.push(ty);
        v.push(4);
        v.extend_from_slice(&val.to_ne_bytes());
    };
    tlv(KEYBYTEORDER, BYTEORDER_BIG_ENDIAN);
    if is_map {
        tlv(DATABYTEORDER, 0);
        tlv(DATA_INTERVAL, 0);
    }
    v
}

/// `NFT_MSG_NEWSET` for a named set or verdict map in table `inet <table>`.
pub fn new_set(w: &mut Writer, seq: u32, spec: &SetSpec<'_>) {
    let s = w.begin(
        nft_msg_type(sys::NFT_MSG_NEWSET),
        NLM_F_REQUEST | NLM_F_CREATE,
        seq,
        NFPROTO_INET,
        0,
    );
    w.attr_str(sys::NFTA_SET_TABLE, spec.table);
    w.attr_str(sys::NFTA_SET_NAME, spec.name);
    w.attr_be32(sys::NFTA_SET_FLAGS, spec.flags);
    w.attr_be32(sys::NFTA_SET_KEY_TYPE, spec.key_type);
    w.attr_be32(sys::NFTA_SET_KEY_LEN, spec.key_len);
    if let Some(dt) = spec.data_type {
        w.attr_be32(sys::NFTA_SET_DATA_TYPE, dt);
        // A verdict has no fixed data length: nft sends 0.
        w.attr_be32(sys::NFTA_SET_DATA_LEN, 0);
    }
    w.attr_be32(sys::NFTA_SET_ID, spec.id);
    w.attr(
        sys::NFTA_SET_USERDATA,
        &set_userdata(spec.data_type.is_some()),
    );
    w.end(s);
}

/// The key of a set element: an address as a number, sent as 4 or 16
/// bytes in network order (no allocation per element).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    value: u128,
    /// 4 or 16.
    len: u8,
}

impl Key {
    /// An IPv4 address as a number.
    pub fn v4(addr: u32) -> Key {
        Key {
            value: u128::from(addr),
            len: 4,
        }
    }

    /// An IPv6 address as a number.
    pub fn v6(addr: u128) -> Key {
        Key {
            value: addr,
            len: 16,
        }
    }

    pub fn of(addr: &IpAddr) -> Key {
        match addr {
            IpAddr::V4(a) => Key::v4(u32::from(*a)),
            IpAddr::V6(a) => Key::v6(u128::from(*a)),
        }
    }

    /// Length in bytes: 4 or 16.
    pub fn byte_len(&self) -> usize {
        usize::from(self.len)
    }

    /// The bytes on the wire.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.put(&mut w);
        w.buf
    }

    /// Append the key's bytes: one store of a 4 or 16 byte value (both
    /// multiples of 4: no padding).
    #[inline]
    fn put(&self, w: &mut Writer) {
        if self.len == 4 {
            w.buf.extend_from_slice(&(self.value as u32).to_be_bytes());
        } else {
            w.buf.extend_from_slice(&self.value.to_be_bytes());
        }
    }

    /// `NFTA_DATA_VALUE` with the key.
    #[inline]
    fn write_value(&self, w: &mut Writer) {
        w.attr_header(NLA_HDRLEN + self.byte_len(), sys::NFTA_DATA_VALUE);
        self.put(w);
    }
}

/// One set element: its key, its flags, and for a verdict map the chain to
/// jump to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elem<'a> {
    pub key: Key,
    pub flags: u32,
    pub jump: Option<&'a str>,
}

/// Append one `NFTA_LIST_ELEM` to the open element list.
#[inline]
fn elem(w: &mut Writer, e: &Elem<'_>) {
    if e.jump.is_none() {
        set_elem(w, e);
    } else {
        nested_elem(w, e);
    }
}

/// [`elem`], attribute by attribute.
fn nested_elem(w: &mut Writer, e: &Elem<'_>) {
    let el = w.nest_begin(sys::NFTA_LIST_ELEM);
    if e.flags != 0 {
        w.attr_be32(sys::NFTA_SET_ELEM_FLAGS, e.flags);
    }
    let key = w.nest_begin(sys::NFTA_SET_ELEM_KEY);
    e.key.write_value(w);
    w.nest_end(key);
    if let Some(chain) = e.jump {
        let data = w.nest_begin(sys::NFTA_SET_ELEM_DATA);
        let verdict = w.nest_begin(sys::NFTA_DATA_VERDICT);
        w.attr(sys::NFTA_VERDICT_CODE, &NFT_JUMP.to_be_bytes());
        w.attr_str(sys::NFTA_VERDICT_CHAIN, chain);
        w.nest_end(verdict);
        w.nest_end(data);
    }
    w.nest_end(el);
}

/// An element without data (an interval set's), the same bytes as
/// [`nested_elem`] writes, without going back to patch lengths (there are
/// tens of thousands per batch): `LIST_ELEM { [FLAGS be32,] KEY { VALUE
/// key } }`, every length known up front.
#[inline]
fn set_elem(w: &mut Writer, e: &Elem<'_>) {
    let key_len = e.key.byte_len();
    let flags_len = if e.flags != 0 { NLA_HDRLEN + 4 } else { 0 };
    let list_len = NLA_HDRLEN + flags_len + 2 * NLA_HDRLEN + key_len;
    w.attr_header(list_len, sys::NFTA_LIST_ELEM | NLA_F_NESTED);
    if e.flags != 0 {
        w.attr_be32(sys::NFTA_SET_ELEM_FLAGS, e.flags);
    }
    w.attr_header(
        2 * NLA_HDRLEN + key_len,
        sys::NFTA_SET_ELEM_KEY | NLA_F_NESTED,
    );
    e.key.write_value(w);
}

/// Writes the `NFT_MSG_NEWSETELEM` messages adding elements to one set,
/// each message under [`MAX_ELEM_MSG_BYTES`]: an element that would make
/// the current message longer starts the next one.
pub struct ElemMessages<'a> {
    table: &'a str,
    name: &'a str,
    set_id: u32,
    /// Sequence number of the next message.
    seq: u32,
    /// The message being written: its offset, its element list's offset,
    /// how many elements it holds.
    open: Option<(usize, usize, usize)>,
    written: usize,
}

impl<'a> ElemMessages<'a> {
    /// Messages for set `name` (id `set_id`) numbered from `first_seq`.
    pub fn new(table: &'a str, name: &'a str, set_id: u32, first_seq: u32) -> ElemMessages<'a> {
        ElemMessages {
            table,
            name,
            set_id,
            seq: first_seq,
            open: None,
            written: 0,
        }
    }

    fn begin(&mut self, w: &mut Writer) -> (usize, usize, usize) {
        let s = w.begin(
            nft_msg_type(sys::NFT_MSG_NEWSETELEM),
            NLM_F_REQUEST | NLM_F_CREATE,
            self.seq,
            NFPROTO_INET,
            0,
        );
        self.seq += 1;
        w.attr_str(sys::NFTA_SET_ELEM_LIST_TABLE, self.table);
        w.attr_str(sys::NFTA_SET_ELEM_LIST_SET, self.name);
        w.attr_be32(sys::NFTA_SET_ELEM_LIST_SET_ID, self.set_id);
        let list = w.nest_begin(sys::NFTA_SET_ELEM_LIST_ELEMENTS);
        (s, list, 0)
    }

    fn end(&mut self, w: &mut Writer) {
        if let Some((s, list, _)) = self.open.take() {
            w.nest_end(list);
            w.end(s);
            self.written += 1;
        }
    }

    /// Append one element (inlined into the callers' loops: there are tens
    /// of thousands per batch).
    #[inline]
    pub fn push(&mut self, w: &mut Writer, e: &Elem<'_>) {
        let Some((s, list, taken)) = self.open else {
            return self.push_first(w, e);
        };
        let before = w.buf.len();
        elem(w, e);
        if taken > 0 && w.buf.len() - s > MAX_ELEM_MSG_BYTES {
            // Too long: this element starts the next message.
            w.buf.truncate(before);
            self.end(w);
            return self.push_first(w, e);
        }
        self.open = Some((s, list, taken + 1));
    }

    /// Open a message and append its first element.
    #[cold]
    fn push_first(&mut self, w: &mut Writer, e: &Elem<'_>) {
        let (s, list, _) = self.begin(w);
        elem(w, e);
        self.open = Some((s, list, 1));
    }

    /// Close the last message; returns how many messages were written (none
    /// for no elements).
    pub fn finish(mut self, w: &mut Writer) -> usize {
        self.end(w);
        self.written
    }
}

/// `NFT_MSG_NEWSETELEM` messages adding `elems` to set `name` (id
/// `set_id`), numbered from `first_seq` (see [`ElemMessages`]); returns how
/// many messages were written.
pub fn new_set_elems<'a>(
    w: &mut Writer,
    table: &str,
    name: &str,
    set_id: u32,
    elems: impl IntoIterator<Item = Elem<'a>>,
    first_seq: u32,
) -> usize {
    let mut m = ElemMessages::new(table, name, set_id, first_seq);
    for e in elems {
        m.push(w, &e);
    }
    m.finish(w)
}

/// One message of a byte stream of netlink messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawMsg<'a> {
    pub msg_type: u16,
    pub flags: u16,
    pub seq: u32,
    /// The whole message, header included.
    pub bytes: &'a [u8],
}

/// Split a byte stream into its netlink messages. Stops at a truncated or
/// malformed header (the caller compares the total length).
pub fn messages(mut buf: &[u8]) -> Vec<RawMsg<'_>> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            break;
        }
        out.push(RawMsg {
            msg_type: u16::from_ne_bytes([buf[4], buf[5]]),
            flags: u16::from_ne_bytes([buf[6], buf[7]]),
            seq: u32::from_ne_bytes(buf[8..12].try_into().expect("4 bytes")),
            bytes: &buf[..len],
        });
        buf = &buf[align4(len).min(buf.len())..];
    }
    out
}

/// Split attributes: (type without the nested flag, payload). Stops at a
/// malformed header.
pub fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= NLA_HDRLEN {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        if len < NLA_HDRLEN || len > buf.len() {
            break;
        }
        let ty = u16::from_ne_bytes([buf[2], buf[3]]) & !NLA_F_NESTED;
        out.push((ty, &buf[NLA_HDRLEN..len]));
        buf = &buf[align4(len).min(buf.len())..];
    }
    out
}

/// Length of a BATCH_BEGIN or BATCH_END message: a header and the nfgenmsg.
pub const BATCH_MSG_LEN: usize = NLMSG_HDRLEN + NFGENMSG_LEN;

/// Length (padded to 4 bytes) and flags of the message at the start of
/// `buf`; `None` when its header is cut or its length does not fit.
pub fn header_len_flags(buf: &[u8]) -> Option<(usize, u16)> {
    let header = buf.get(..NLMSG_HDRLEN)?;
    let len = u32::from_ne_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
    if len < NLMSG_HDRLEN || len > buf.len() {
        return None;
    }
    let flags = u16::from_ne_bytes([header[6], header[7]]);
    Some((align4(len).min(buf.len()), flags))
}

/// Set the sequence number and flags of the message at `start` in `buf`.
pub fn patch_header(buf: &mut [u8], start: usize, seq: u32, flags: u16) {
    buf[start + 6..start + 8].copy_from_slice(&flags.to_ne_bytes());
    buf[start + 8..start + 12].copy_from_slice(&seq.to_ne_bytes());
}

/// Offset of the first attribute of an nfnetlink message.
pub const NFNL_PAYLOAD_OFFSET: usize = NLMSG_HDRLEN + NFGENMSG_LEN;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_map_element_is_encoded_as_nft_sends_it() {
        // Bytes of the NEWSETELEM message `nft --debug=mnl` printed for
        // `map m4 { type ipv4_addr : verdict; elements = { 198.18.0.1 : jump c } }`
        // in table `t` (set id 1), seq 4, without its header flags.
        let mut w = Writer::default();
        let e = Elem {
            key: Key::v4(0xc612_0001), // 198.18.0.1
            flags: 0,
            jump: Some("c"),
        };
        let n = new_set_elems(&mut w, "t", "m4", 1, [e], 4);
        assert_eq!(n, 1);
        assert_eq!(w.buf.len(), 88, "nft's message is 88 bytes long");
        let attrs = &w.buf[NFNL_PAYLOAD_OFFSET..];
        #[rustfmt::skip]
        let want: &[u8] = &[
            6, 0, 1, 0, b't', 0, 0, 0,
            7, 0, 2, 0, b'm', b'4', 0, 0,
            8, 0, 4, 0, 0, 0, 0, 1,
            44, 0, 3, 0x80, 40, 0, 1, 0x80,
            12, 0, 1, 0x80, 8, 0, 1, 0, 198, 18, 0, 1,
            24, 0, 2, 0x80, 20, 0, 2, 0x80,
            8, 0, 1, 0, 0xff, 0xff, 0xff, 0xfd,
            6, 0, 2, 0, b'c', 0, 0, 0,
        ];
        assert_eq!(attrs, want);
    }

    /// The attributes of one NEWSET message written by `new_set`.
    fn set_attrs(spec: &SetSpec<'_>) -> Vec<u8> {
        let mut w = Writer::default();
        new_set(&mut w, 5, spec);
        let msgs = messages(&w.buf);
        assert_eq!(msgs.len(), 1);
        assert_eq!(
            msgs[0].msg_type, 0x0a09,
            "NFNL_SUBSYS_NFTABLES << 8 | NEWSET"
        );
        assert_eq!(msgs[0].seq, 5);
        assert_eq!(
            w.buf[16], NFPROTO_INET,
            "the set's family is inet, not unspec"
        );
        w.buf[NFNL_PAYLOAD_OFFSET..].to_vec()
    }

    #[test]
    fn an_interval_set_declaration_is_the_one_nft_sends() {
        // `nft --debug=mnl` for `set s4 { type ipv4_addr; flags interval; }`
        // in table `t` (set id 2): an 80-byte message with these attributes.
        #[rustfmt::skip]
        let want: &[u8] = &[
            6, 0, 1, 0, b't', 0, 0, 0,             // TABLE "t"
            7, 0, 2, 0, b's', b'4', 0, 0,          // NAME "s4"
            8, 0, 3, 0, 0, 0, 0, 4,                // FLAGS interval
            8, 0, 4, 0, 0, 0, 0, 7,                // KEY_TYPE ipv4_addr
            8, 0, 5, 0, 0, 0, 0, 4,                // KEY_LEN 4
            8, 0, 10, 0, 0, 0, 0, 2,               // ID 2
            10, 0, 13, 0, 0, 4, 2, 0, 0, 0, 0, 0,  // USERDATA key byte order
        ];
        let got = set_attrs(&SetSpec {
            table: "t",
            name: "s4",
            flags: sys::NFT_SET_INTERVAL,
            key_type: TYPE_IPV4_ADDR,
            key_len: 4,
            data_type: None,
            id: 2,
        });
        assert_eq!(got, want);
    }

    #[test]
    fn a_verdict_map_declaration_is_the_one_nft_sends() {
        // `nft --debug=mnl` for `map m4 { type ipv4_addr : verdict; }` in
        // table `t` (set id 1): a 108-byte message with these attributes.
        #[rustfmt::skip]
        let want: &[u8] = &[
            6, 0, 1, 0, b't', 0, 0, 0,
            7, 0, 2, 0, b'm', b'4', 0, 0,
            8, 0, 3, 0, 0, 0, 0, 8,                // FLAGS map
            8, 0, 4, 0, 0, 0, 0, 7,
            8, 0, 5, 0, 0, 0, 0, 4,
            8, 0, 6, 0, 0xff, 0xff, 0xff, 0,       // DATA_TYPE verdict
            8, 0, 7, 0, 0, 0, 0, 0,                // DATA_LEN 0
            8, 0, 10, 0, 0, 0, 0, 1,               // ID 1
            22, 0, 13, 0,                          // USERDATA
            0, 4, 2, 0, 0, 0, 1, 4, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0, 0, 0,
        ];
        let got = set_attrs(&SetSpec {
            table: "t",
            name: "m4",
            flags: sys::NFT_SET_MAP,
            key_type: TYPE_IPV4_ADDR,
            key_len: 4,
            data_type: Some(NFT_DATA_VERDICT),
            id: 1,
        });
        assert_eq!(got.len() + NFNL_PAYLOAD_OFFSET, 108);
        assert_eq!(got, want);
    }

    #[test]
    fn an_interval_end_element_is_encoded_as_nft_sends_it() {
        // `nft --debug=netlink`: element 198.18.1.0 with flags 1
        // (INTERVAL_END): LIST_ELEM { FLAGS, KEY { VALUE } }.
        let mut w = Writer::default();
        let e = Elem {
            key: Key::v4(0xc612_0100),
            flags: NFT_SET_ELEM_INTERVAL_END,
            jump: None,
        };
        elem(&mut w, &e);
        #[rustfmt::skip]
        let want: &[u8] = &[
            24, 0, 1, 0x80,
            8, 0, 3, 0, 0, 0, 0, 1,
            12, 0, 1, 0x80, 8, 0, 1, 0, 198, 18, 1, 0,
        ];
        assert_eq!(w.buf, want);
    }

    #[test]
    fn set_elements_written_in_one_copy_equal_those_written_attribute_by_attribute() {
        let keys = [
            Key::v4(0),
            Key::v4(0xc612_0001),
            Key::v6(0),
            Key::v6(0xfd00_0198_0018 << 80 | 0x10),
            Key::v6(u128::MAX),
        ];
        for key in keys {
            for flags in [0, NFT_SET_ELEM_INTERVAL_END] {
                let e = Elem {
                    key,
                    flags,
                    jump: None,
                };
                let (mut fast, mut nested) = (Writer::default(), Writer::default());
                set_elem(&mut fast, &e);
                nested_elem(&mut nested, &e);
                assert_eq!(fast.buf, nested.buf, "{e:?}");
            }
        }
    }

    #[test]
    fn batch_framing_is_the_one_nft_sends() {
        // BATCH_BEGIN / END: 20 bytes, REQUEST, nfgenmsg res_id 10 (nftables)
        // in big endian.
        let mut w = Writer::default();
        batch_begin(&mut w, 1);
        batch_end(&mut w, 2);
        let msgs = messages(&w.buf);
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[0].msg_type, msgs[1].msg_type), (0x10, 0x11));
        for m in &msgs {
            assert_eq!(m.bytes.len(), 20);
            assert_eq!(m.flags, NLM_F_REQUEST);
            assert_eq!(&m.bytes[16..], &[0, 0, 0, 10]);
        }
    }

    #[test]
    fn element_lists_are_split_below_64_kib_and_keep_every_element() {
        let elems: Vec<Elem<'_>> = (0..20_000u32)
            .map(|i| Elem {
                key: Key::v4(i),
                flags: (i % 2) * NFT_SET_ELEM_INTERVAL_END,
                jump: None,
            })
            .collect();
        let mut w = Writer::default();
        let n = new_set_elems(&mut w, "t", "s", 1, elems, 11);
        let msgs = messages(&w.buf);
        assert_eq!(msgs.len(), n);
        assert!(n > 1, "20,000 elements need several messages");
        assert_eq!(
            msgs.iter().map(|m| m.bytes.len()).sum::<usize>(),
            w.buf.len()
        );
        for (i, m) in msgs.iter().enumerate() {
            assert!(m.bytes.len() <= MAX_ELEM_MSG_BYTES, "message {i} too long");
            assert_eq!(m.seq, 11 + i as u32);
        }
        // Every element appears once, in order.
        let mut keys = Vec::new();
        for m in &msgs {
            let top = attrs(&m.bytes[NFNL_PAYLOAD_OFFSET..]);
            let (_, list) = top
                .iter()
                .find(|(t, _)| *t == sys::NFTA_SET_ELEM_LIST_ELEMENTS)
                .expect("element list");
            for (_, el) in attrs(list) {
                let (_, key) = attrs(el)
                    .into_iter()
                    .find(|(t, _)| *t == sys::NFTA_SET_ELEM_KEY)
                    .expect("key");
                let value = attrs(key)[0].1;
                keys.push(u32::from_be_bytes(value.try_into().unwrap()));
            }
        }
        assert_eq!(keys, (0..20_000u32).collect::<Vec<_>>());
    }
}
