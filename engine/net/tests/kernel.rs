//! Tests against the real kernel (run as root). Every test uses its own bridge `bt<random>`,
//! its own 10.200.x.0/24 and its own state dir, and only talks to addresses inside the
//! namespaces it created or on loopback.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use berth_net::{
    bind_published, spawn_proxies, veth_name, Driver, NetError, NetworkManager, PortSpec, Proto,
};
use common::*;

#[test]
fn two_endpoints_talk_and_detach_cleans_up() {
    let mut t = TestNet::new();
    let (a, b) = (t.id("a"), t.id("b"));
    let ea = t.mgr.attach(&a, &t.net.name, &["web".to_string()]).unwrap();
    let eb = t.mgr.attach(&b, &t.net.name, &[]).unwrap();
    assert_ne!(ea.ip, eb.ip);
    assert!(t.net.subnet.contains(ea.ip) && t.net.subnet.contains(eb.ip));
    assert_eq!(ea.gateway, t.net.gateway);
    assert_eq!(ea.prefix, 24);
    assert_eq!(ea.netns, t.run_dir().join(&a));
    let o = ea.ip.octets();
    assert_eq!(
        ea.mac,
        format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
    );

    // Inside: eth0 has the address and MAC, lo is up, default route via the gateway.
    let addr = in_netns(&ea.netns, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    assert!(addr.contains(&format!("{}/24", ea.ip)), "{addr}");
    let link = in_netns(&ea.netns, &["ip", "-o", "link", "show", "dev", "eth0"]);
    assert!(link.contains(&ea.mac) && link.contains("UP"), "{link}");
    let lo = in_netns(&ea.netns, &["ip", "-o", "link", "show", "dev", "lo"]);
    assert!(lo.contains("UP"), "{lo}");
    let route = in_netns(&ea.netns, &["ip", "route", "show", "default"]);
    assert!(
        route.contains(&format!("via {} dev eth0", t.net.gateway)),
        "{route}"
    );
    assert!(link_exists(&veth_name(&a)) && link_exists(&veth_name(&b)));

    // a runs an echo server; b and the host reach it.
    let _echo = tcp_echo(&ea.netns, 7000);
    let target = SocketAddr::new(IpAddr::V4(ea.ip), 7000);
    assert_eq!(
        roundtrip_from(&eb.netns, target, b"hello from b"),
        b"hello from b"
    );
    assert_eq!(roundtrip(target, b"hello from host").unwrap(), b"hello from host");

    // endpoints() serves /etc/hosts.
    let eps = t.mgr.endpoints(&t.net.name).unwrap();
    assert_eq!(eps.len(), 2);
    assert!(eps.iter().any(|e| e.container_id == a && e.aliases == ["web"]));

    // Attaching again is idempotent; attaching elsewhere is refused.
    assert_eq!(t.mgr.attach(&a, &t.net.name, &["web".to_string()]).unwrap(), ea);
    let err = t.mgr.attach(&a, "none", &[]).unwrap_err();
    assert!(matches!(err, NetError::AlreadyAttached { .. }), "{err}");

    // Detach removes veth and netns, releases the address; detach is idempotent.
    t.mgr.detach(&a).unwrap();
    t.mgr.detach(&a).unwrap();
    assert!(!link_exists(&veth_name(&a)));
    assert!(!ea.netns.exists());
    assert!(!std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(ea.netns.to_str().unwrap()));
    assert_eq!(t.mgr.endpoints(&t.net.name).unwrap().len(), 1);
    let again = t.mgr.attach(&a, &t.net.name, &[]).unwrap();
    assert_eq!(again.ip, ea.ip, "the released address is handed out again");
}

#[test]
fn published_ports_forward_tcp_and_udp() {
    let mut t = TestNet::new();
    let c = t.id("web");
    let ep = t.mgr.attach(&c, &t.net.name, &[]).unwrap();
    let _tcp = tcp_echo(&ep.netns, 5000);
    let _udp = udp_echo(&ep.netns, 5001);

    let mut specs = berth_units::parse_publish("127.0.0.1::5000").unwrap();
    specs.extend(berth_units::parse_publish("0.0.0.0::5000").unwrap());
    specs.extend(berth_units::parse_publish("127.0.0.1::5001/udp").unwrap());
    let bound = bind_published(&specs).unwrap();
    let ports: Vec<PortSpec> = bound.iter().map(|b| b.spec).collect();
    assert!(ports.iter().all(|p| p.host_port != 0));

    // A second bind of a taken port is refused with a clear message.
    let taken = PortSpec {
        host_port: ports[0].host_port,
        ..specs[0]
    };
    let err = bind_published(&[taken]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, NetError::PortInUse { .. }));
    assert!(
        msg.starts_with(&format!(
            "port {} is already in use on 127.0.0.1 — pick another host port, e.g. -p ",
            taken.host_port
        )),
        "{msg}"
    );
    assert!(msg.contains(":5000"), "{msg}");

    let proxies = spawn_proxies(bound, ep.ip).unwrap();
    assert_eq!(proxies.ports(), &ports[..]);

    // 50 concurrent connections through 127.0.0.1, each with its own payload and a half-close.
    let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), ports[0].host_port);
    let workers: Vec<_> = (0..50)
        .map(|i| {
            std::thread::spawn(move || {
                let msg = format!("connection {i} ").repeat(200 + i);
                let got = roundtrip(local, msg.as_bytes()).unwrap();
                assert_eq!(got, msg.as_bytes(), "connection {i}");
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }

    // The 0.0.0.0 port is reachable on the host's own (non-loopback) address: the gateway.
    let own = SocketAddr::new(IpAddr::V4(t.net.gateway), ports[1].host_port);
    assert_eq!(roundtrip(own, b"via own address").unwrap(), b"via own address");

    // UDP.
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..3 {
        let msg = format!("datagram {i}");
        client
            .send_to(msg.as_bytes(), ("127.0.0.1", ports[2].host_port))
            .unwrap();
        let mut buf = [0u8; 256];
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], format!("echo:{msg}").as_bytes());
    }
    assert_eq!(ports[2].proto, Proto::Udp);

    // Stopping closes the host sockets.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while proxies.active_connections() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        proxies.active_connections(),
        0,
        "finished connections are forgotten"
    );
    proxies.stop();
    assert!(std::net::TcpStream::connect_timeout(&local, Duration::from_secs(2)).is_err());
    assert!(bind_published(&[PortSpec {
        host_port: ports[0].host_port,
        ..specs[0]
    }])
    .is_ok());
}

#[test]
fn remove_network_removes_bridge_and_nat_rules() {
    let mut t = TestNet::new();
    let bridge = t.net.bridge.clone();
    let c = t.id("x");
    t.mgr.attach(&c, &t.net.name, &[]).unwrap();
    assert!(link_exists(&bridge));
    let rules = nft_ruleset();
    assert!(rules.contains(&format!("chain nat_{bridge}")), "{rules}");
    assert!(
        rules.contains(&format!(
            "ip saddr {} oifname != \"{bridge}\" masquerade",
            t.net.subnet
        )),
        "{rules}"
    );
    assert!(
        rules.contains(&format!(
            "oifname \"{bridge}\" iifname != \"{bridge}\" ct state new drop"
        )),
        "networks are isolated: {rules}"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .unwrap()
            .trim(),
        "1"
    );

    let err = t.mgr.remove_network(&t.net.name).unwrap_err();
    assert!(matches!(err, NetError::NetworkInUse { count: 1, .. }), "{err}");
    t.mgr.detach(&c).unwrap();
    t.mgr.remove_network(&t.net.name).unwrap();
    assert!(!link_exists(&bridge));
    let rules = nft_ruleset();
    assert!(!rules.contains(&bridge), "{rules}");
    assert!(!t
        .mgr
        .list_networks()
        .unwrap()
        .iter()
        .any(|n| n.name == t.net.name));
    let err = t.mgr.remove_network(&t.net.name).unwrap_err();
    assert!(matches!(err, NetError::NetworkNotFound(_)), "{err}");
}

#[test]
fn twenty_attach_detach_cycles_leak_nothing() {
    let mut t = TestNet::new();
    let ids: Vec<String> = (0..2).map(|i| t.id(&format!("leak{i}"))).collect();
    for round in 0..20 {
        for id in &ids {
            let ep = t.mgr.attach(id, &t.net.name, &[]).unwrap();
            assert!(ep.netns.exists(), "round {round}");
        }
        for id in &ids {
            t.mgr.detach(id).unwrap();
        }
    }
    for id in &ids {
        assert!(!link_exists(&veth_name(id)), "veth of {id} leaked");
    }
    let run = t.run_dir();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(run.to_str().unwrap()), "netns mount leaked");
    assert_eq!(std::fs::read_dir(&run).unwrap().count(), 0);
    assert!(t.mgr.endpoints(&t.net.name).unwrap().is_empty());
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.dir.path().join("state/state.json")).unwrap()).unwrap();
    assert_eq!(state["endpoints"], serde_json::json!({}));
}

#[test]
fn detach_cleans_leftovers_of_a_killed_engine() {
    let mut t = TestNet::new();
    let c = t.id("crash");
    let state = t.dir.path().join("state/state.json");
    let before = std::fs::read(&state).unwrap();
    let ep = t.mgr.attach(&c, &t.net.name, &[]).unwrap();
    // The engine died after creating the kernel objects but before its state was written.
    std::fs::write(&state, &before).unwrap();
    assert!(t.mgr.endpoints(&t.net.name).unwrap().is_empty());
    assert!(link_exists(&veth_name(&c)) && ep.netns.exists());
    // A new attach for the same id recovers (cleans first) ...
    let again = t.mgr.attach(&c, &t.net.name, &[]).unwrap();
    assert_eq!(again.ip, ep.ip);
    std::fs::write(&state, &before).unwrap();
    // ... and detach removes unrecorded leftovers too.
    t.mgr.detach(&c).unwrap();
    assert!(!link_exists(&veth_name(&c)));
    assert!(!ep.netns.exists());
}

#[test]
fn prune_releases_endpoints_whose_netns_vanished() {
    let mut t = TestNet::new();
    let (gone, alive) = (t.id("gone"), t.id("alive"));
    let eg = t.mgr.attach(&gone, &t.net.name, &[]).unwrap();
    t.mgr.attach(&alive, &t.net.name, &[]).unwrap();
    // As after a reboot: the namespace mount is gone, the state file still lists the lease.
    nix::mount::umount2(&eg.netns, nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert_eq!(t.mgr.prune_stale().unwrap(), vec![gone.clone()]);
    assert!(!link_exists(&veth_name(&gone)));
    let left: Vec<String> = t
        .mgr
        .endpoints(&t.net.name)
        .unwrap()
        .into_iter()
        .map(|e| e.container_id)
        .collect();
    assert_eq!(left, vec![alive]);
    assert!(t.mgr.prune_stale().unwrap().is_empty());
}

#[test]
fn concurrent_attaches_from_many_managers_get_distinct_addresses() {
    let mut t = TestNet::new();
    let ids: Vec<String> = (0..8).map(|i| t.id(&format!("par{i}"))).collect();
    let (state, run) = (t.dir.path().join("state"), t.run_dir());
    let net = t.net.name.clone();
    let handles: Vec<_> = ids
        .iter()
        .cloned()
        .map(|id| {
            let (state, run, net) = (state.clone(), run.clone(), net.clone());
            std::thread::spawn(move || {
                let mgr = NetworkManager::new(&state, &run).unwrap();
                mgr.attach(&id, &net, &[]).unwrap().ip
            })
        })
        .collect();
    let mut ips: Vec<Ipv4Addr> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 8);
    assert_eq!(t.mgr.endpoints(&net).unwrap().len(), 8);
}

#[test]
fn connect_adds_eth1_live_and_disconnect_removes_it() {
    let mut t = TestNet::new();
    let other = t.another_network();
    let (x, y, z) = (t.id("x"), t.id("y"), t.id("z"));
    let ex = t.mgr.attach(&x, &t.net.name, &["x".to_string()]).unwrap();
    let ez = t.mgr.attach(&z, &t.net.name, &[]).unwrap();
    let ey = t.mgr.attach(&y, &other.name, &["y".to_string()]).unwrap();
    // Before: x (first network) cannot reach y (other network).
    let _echo = tcp_echo(&ey.netns, 7100);
    let y_addr = SocketAddr::new(IpAddr::V4(ey.ip), 7100);
    assert!(
        try_roundtrip_from(&ex.netns, y_addr).is_err(),
        "x reached y unconnected"
    );

    let e1 = t.mgr.connect(&x, &other.name, &["x".to_string()]).unwrap();
    assert_eq!(e1.interface, "eth1");
    assert!(!e1.default_route && ex.default_route);
    assert!(other.subnet.contains(e1.ip) && e1.gateway == other.gateway);
    assert_ne!(e1.host_veth(), veth_name(&x));
    let addr = in_netns(&ex.netns, &["ip", "-o", "-4", "addr", "show", "dev", "eth1"]);
    assert!(addr.contains(&format!("{}/24", e1.ip)), "{addr}");
    let route = in_netns(&ex.netns, &["ip", "route", "show", "default"]);
    assert!(route.contains("dev eth0") && !route.contains("eth1"), "{route}");
    // Now x reaches y on the new network and still reaches z on the first one.
    assert_eq!(roundtrip_from(&ex.netns, y_addr, b"to y"), b"to y");
    let _echo_z = tcp_echo(&ez.netns, 7101);
    let z_addr = SocketAddr::new(IpAddr::V4(ez.ip), 7101);
    assert_eq!(roundtrip_from(&ex.netns, z_addr, b"to z"), b"to z");
    // The state lists both endpoints, in interface order; each network lists x.
    let mine = t.mgr.endpoints_of(&x).unwrap();
    assert_eq!(
        mine.iter().map(|e| e.interface.as_str()).collect::<Vec<_>>(),
        ["eth0", "eth1"]
    );
    assert!(t
        .mgr
        .endpoints(&other.name)
        .unwrap()
        .iter()
        .any(|e| e.container_id == x));
    let err = t.mgr.connect(&x, &other.name, &[]).unwrap_err();
    assert!(matches!(err, NetError::AlreadyConnected { .. }), "{err}");

    // Disconnect: eth1 leaves the namespace, y is unreachable again, the address is free.
    t.mgr.disconnect(&x, &other.name).unwrap();
    let links = in_netns(&ex.netns, &["ip", "-o", "link", "show"]);
    assert!(!links.contains("eth1"), "{links}");
    assert!(!link_exists(&e1.host_veth()));
    assert!(
        try_roundtrip_from(&ex.netns, y_addr).is_err(),
        "x still reaches y"
    );
    assert_eq!(roundtrip_from(&ex.netns, z_addr, b"still z"), b"still z");
    let err = t.mgr.disconnect(&x, &other.name).unwrap_err();
    assert!(matches!(err, NetError::NotConnected { .. }), "{err}");

    // Disconnecting the first network hands the default route to the next one.
    t.mgr.connect(&x, &other.name, &[]).unwrap();
    t.mgr.disconnect(&x, &t.net.name).unwrap();
    let route = in_netns(&ex.netns, &["ip", "route", "show", "default"]);
    assert!(
        route.contains(&format!("via {} dev eth1", other.gateway)),
        "{route}"
    );
    assert!(t
        .mgr
        .endpoint(&x)
        .unwrap()
        .is_some_and(|e| e.interface == "eth1" && e.default_route));
    // The freed eth0 is the next interface handed out.
    assert_eq!(t.mgr.connect(&x, &t.net.name, &[]).unwrap().interface, "eth0");

    // Detach removes every interface and the namespace.
    t.mgr.detach(&x).unwrap();
    assert!(t.mgr.endpoints_of(&x).unwrap().is_empty());
    assert!(!ex.netns.exists());
    assert!(!link_exists(&veth_name(&x)) && !link_exists(&e1.host_veth()));
}

#[test]
fn sandbox_then_connect_and_prune() {
    let mut t = TestNet::new();
    let c = t.id("sandbox");
    let err = t.mgr.connect(&c, &t.net.name, &[]).unwrap_err();
    assert!(matches!(err, NetError::NoNamespace(_)), "{err}");
    let path = t.mgr.sandbox(&c).unwrap();
    assert_eq!(t.mgr.sandbox(&c).unwrap(), path, "sandbox is idempotent");
    let links = in_netns(&path, &["ip", "-o", "link", "show"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    let ep = t.mgr.connect(&c, &t.net.name, &[]).unwrap();
    assert_eq!(ep.interface, "eth0");
    assert!(ep.default_route, "the only endpoint carries the default route");
    let route = in_netns(&path, &["ip", "route", "show", "default"]);
    assert!(route.contains("dev eth0"), "{route}");
    // A namespace that vanished (a reboot) releases all the container's endpoints.
    Command::new("umount").arg(&path).status().unwrap();
    assert_eq!(t.mgr.prune_stale().unwrap(), vec![c.clone()]);
    assert!(t.mgr.endpoints_of(&c).unwrap().is_empty());
    assert!(!link_exists(&ep.host_veth()));
}

#[test]
fn none_network_has_only_loopback() {
    let mut t = TestNet::new();
    let c = t.id("none");
    let ep = t.mgr.attach(&c, "none", &[]).unwrap();
    let links = in_netns(&ep.netns, &["ip", "-o", "link", "show"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    let h = t.id("h");
    let err = t.mgr.attach(&h, "host", &[]).unwrap_err();
    assert!(matches!(err, NetError::NotAttachable(_)), "{err}");
    t.mgr.detach(&c).unwrap();
    assert!(!ep.netns.exists());
}

#[test]
fn network_catalogue() {
    // No kernel objects: only the state file is touched.
    let dir = tempfile::tempdir().unwrap();
    let mgr = NetworkManager::new(&dir.path().join("s"), &dir.path().join("r"))
        .unwrap()
        .with_default_subnet("10.201.0.0/16");
    let def = mgr.default_network().unwrap();
    assert_eq!((def.name.as_str(), def.bridge.as_str()), ("bridge", "berth0"));
    assert_eq!(def.subnet.to_string(), "10.201.0.0/16");
    assert_eq!(def.gateway, Ipv4Addr::new(10, 201, 0, 1));
    let names: Vec<String> = mgr.list_networks().unwrap().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["bridge", "host", "none"]);
    let host = mgr
        .list_networks()
        .unwrap()
        .into_iter()
        .find(|n| n.name == "host")
        .unwrap();
    assert_eq!(host.driver, Driver::Host);
    for name in ["bridge", "host", "none"] {
        assert!(matches!(
            mgr.remove_network(name),
            Err(NetError::BuiltinNetwork(_))
        ));
        assert!(matches!(
            mgr.create_network(name, None),
            Err(NetError::BuiltinNetwork(_))
        ));
    }
    let err = mgr.create_network("x", Some("10.201.5.0/24")).unwrap_err();
    assert!(matches!(err, NetError::SubnetOverlap { .. }), "{err}");
    let err = mgr.create_network("x", Some("10.201.5.1/24")).unwrap_err();
    assert!(err.to_string().contains("host bits"), "{err}");
    assert!(matches!(
        mgr.remove_network("nope"),
        Err(NetError::NetworkNotFound(_))
    ));
}

/// Removes the stand-in "outside world" of the masquerade test, even on failure.
struct Outside {
    ns: String,
    link: String,
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.link])
            .output();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .output();
    }
}

fn sh(args: &[&str]) {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn traffic_leaving_through_another_interface_is_masqueraded() {
    // The "outside" is one more namespace of this test, wired to the host by its own veth
    // (10.202.x.0/24), so nothing leaves the machine.
    let mut t = TestNet::new();
    let x = t.net.subnet.addr.octets()[2];
    let outside = Outside {
        ns: format!("bo{}", t.tag),
        link: format!("vo{}", t.tag),
    };
    let (host_ip, far_ip) = (format!("10.202.{x}.1"), format!("10.202.{x}.2"));
    sh(&["ip", "netns", "add", &outside.ns]);
    sh(&[
        "ip",
        "link",
        "add",
        &outside.link,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &outside.ns,
    ]);
    sh(&[
        "ip",
        "addr",
        "add",
        &format!("{host_ip}/24"),
        "dev",
        &outside.link,
    ]);
    sh(&["ip", "link", "set", &outside.link, "up"]);
    let ns_path = std::path::PathBuf::from(format!("/run/netns/{}", outside.ns));
    in_netns(
        &ns_path,
        &["ip", "addr", "add", &format!("{far_ip}/24"), "dev", "eth0"],
    );
    in_netns(&ns_path, &["ip", "link", "set", "eth0", "up"]);
    in_netns(&ns_path, &["ip", "link", "set", "lo", "up"]);

    // A server out there that answers with the address it sees the client coming from.
    let listener = berth_net::run_in_netns(&ns_path, || {
        std::net::TcpListener::bind("0.0.0.0:7100").map_err(|e| NetError::Sys {
            what: "bind".into(),
            source: e,
        })
    })
    .unwrap();
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, peer) = listener.accept().unwrap();
        s.write_all(peer.ip().to_string().as_bytes()).unwrap();
    });

    let c = t.id("nat");
    let ep = t.mgr.attach(&c, &t.net.name, &[]).unwrap();
    let target: SocketAddr = format!("{far_ip}:7100").parse().unwrap();
    let seen = roundtrip_from(&ep.netns, target, b"");
    server.join().unwrap();
    assert_eq!(
        String::from_utf8(seen).unwrap(),
        host_ip,
        "the container's {} was not masqueraded",
        ep.ip
    );
}

#[test]
fn proxy_closes_clients_when_the_container_port_is_closed() {
    let mut t = TestNet::new();
    let c = t.id("closed");
    let ep = t.mgr.attach(&c, &t.net.name, &[]).unwrap();
    let bound = bind_published(&berth_units::parse_publish("127.0.0.1::5999").unwrap()).unwrap();
    let port = bound[0].spec.host_port;
    let proxies = spawn_proxies(bound, ep.ip).unwrap();
    let started = std::time::Instant::now();
    // The proxy accepts, fails to reach the container (RST from its netns) and closes the client.
    let got = roundtrip(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), b"anyone?");
    assert!(got.map(|v| v.is_empty()).unwrap_or(true));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    drop(proxies);
}
