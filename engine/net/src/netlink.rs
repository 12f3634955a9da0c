//! A small synchronous rtnetlink client: just the requests Berth needs (links, addresses,
//! routes), encoded by hand. Every request asks for an ACK and the kernel's errno is returned.

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

use crate::NetError;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// ifaddrmsg flag: no duplicate address detection, so an IPv6 address works at once.
const IFA_F_NODAD: u8 = 0x02;
const IFF_UP: u32 = 1;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

static SEQ: AtomicU32 = AtomicU32::new(1);

/// One netlink message under construction.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(kind: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in finish()
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&SEQ.fetch_add(1, Ordering::Relaxed).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    fn seq(&self) -> u32 {
        u32::from_ne_bytes(self.buf[8..12].try_into().expect("header is 16 bytes"))
    }

    /// struct ifinfomsg
    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) {
        self.buf.extend_from_slice(&[AF_UNSPEC, 0, 0, 0]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, kind: u16, data: &[u8]) {
        self.pad();
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn attr_str(&mut self, kind: u16, s: &str) {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data);
    }

    fn attr_u32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_ne_bytes());
    }

    fn begin(&mut self, kind: u16) {
        self.pad();
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
    }

    fn end(&mut self) {
        let start = self.nests.pop().expect("end() matches begin()");
        self.pad();
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        self.pad();
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// A NETLINK_ROUTE socket. Requests act on the network namespace the socket was created in.
pub(crate) struct Netlink {
    fd: OwnedFd,
}

impl Netlink {
    pub(crate) fn open() -> Result<Self, NetError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| NetError::sys("open a netlink socket", e))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
            .map_err(|e| NetError::sys("bind a netlink socket", e))?;
        Ok(Netlink { fd })
    }

    fn request(&self, op: &str, msg: Msg) -> Result<(), NetError> {
        let seq = msg.seq();
        let bytes = msg.finish();
        let fail = |errno| NetError::Netlink {
            op: op.to_string(),
            errno,
        };
        send(self.fd.as_raw_fd(), &bytes, MsgFlags::empty()).map_err(fail)?;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()).map_err(fail)?;
            let mut off = 0;
            while off + 16 <= n {
                let len = u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
                let kind = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().expect("2 bytes"));
                let mseq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().expect("4 bytes"));
                if len < 16 || off + len > n {
                    return Err(fail(Errno::EBADMSG));
                }
                if mseq == seq && kind == NLMSG_ERROR && len >= 20 {
                    let code = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().expect("4 bytes"));
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(fail(Errno::from_raw(-code)))
                    };
                }
                if mseq == seq && kind == NLMSG_DONE {
                    return Ok(());
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// Creates a bridge; Ok(false) when a link of that name already exists.
    pub(crate) fn create_bridge(&self, name: &str) -> Result<bool, NetError> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        m.end();
        match self.request(&format!("create bridge {name}"), m) {
            Ok(()) => Ok(true),
            Err(NetError::Netlink {
                errno: Errno::EEXIST, ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a veth pair: `host` stays here, `peer` is created directly inside the
    /// network namespace `peer_ns` with the given MAC address.
    pub(crate) fn create_veth(
        &self,
        host: &str,
        peer: &str,
        peer_ns: BorrowedFd<'_>,
        peer_mac: [u8; 6],
    ) -> Result<(), NetError> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, host);
        m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        m.begin(IFLA_INFO_DATA);
        m.begin(VETH_INFO_PEER);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, peer);
        m.attr(IFLA_ADDRESS, &peer_mac);
        m.attr_u32(IFLA_NET_NS_FD, peer_ns.as_raw_fd() as u32);
        m.end();
        m.end();
        m.end();
        self.request(&format!("create veth pair {host}/{peer}"), m)
    }

    /// Sets a link up and, when given, enslaves it to a bridge.
    pub(crate) fn link_up(&self, index: u32, master: Option<u32>) -> Result<(), NetError> {
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.ifinfo(index as i32, IFF_UP, IFF_UP);
        if let Some(master) = master {
            m.attr_u32(IFLA_MASTER, master);
        }
        self.request(&format!("bring up interface #{index}"), m)
    }

    /// Deletes a link by name; Ok(false) when it did not exist.
    pub(crate) fn delete_link(&self, name: &str) -> Result<bool, NetError> {
        let mut m = Msg::new(RTM_DELLINK, 0);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        match self.request(&format!("delete interface {name}"), m) {
            Ok(()) => Ok(true),
            Err(NetError::Netlink {
                errno: Errno::ENODEV, ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds an address (IPv6 ones without duplicate address detection, as docker does, so
    /// they work at once); an address that is already there is fine.
    pub(crate) fn add_address(&self, index: u32, ip: IpAddr, prefix: u8) -> Result<(), NetError> {
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        let (family, flags) = match ip {
            IpAddr::V4(_) => (AF_INET, 0),
            IpAddr::V6(_) => (AF_INET6, IFA_F_NODAD),
        };
        m.buf
            .extend_from_slice(&[family, prefix, flags, RT_SCOPE_UNIVERSE]);
        m.buf.extend_from_slice(&index.to_ne_bytes());
        let octets = ip_octets(ip);
        m.attr(IFA_LOCAL, &octets);
        m.attr(IFA_ADDRESS, &octets);
        match self.request(&format!("add address {ip}/{prefix}"), m) {
            Ok(())
            | Err(NetError::Netlink {
                errno: Errno::EEXIST, ..
            }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Adds the default route (IPv4 or IPv6, as `gateway` is) via `gateway` out of
    /// interface `index`.
    pub(crate) fn add_default_route(&self, gateway: IpAddr, index: u32) -> Result<(), NetError> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        let family = if gateway.is_ipv4() { AF_INET } else { AF_INET6 };
        m.buf.extend_from_slice(&[
            family,
            0,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        m.buf.extend_from_slice(&0u32.to_ne_bytes());
        m.attr(RTA_GATEWAY, &ip_octets(gateway));
        m.attr_u32(RTA_OIF, index);
        match self.request(&format!("add default route via {gateway}"), m) {
            Ok(())
            | Err(NetError::Netlink {
                errno: Errno::EEXIST, ..
            }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn ip_octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

impl AsFd for Netlink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Interface index of `name` in the calling thread's network namespace.
pub(crate) fn index_of(name: &str) -> Result<u32, NetError> {
    nix::net::if_::if_nametoindex(name).map_err(|e| NetError::sys(format!("find interface {name}"), e))
}
