//! `network connect` / `disconnect` on the real kernel: a container on several networks,
//! seen from inside (eth1, addresses, /etc/hosts, who it reaches) and from inspect.

use std::time::{Duration, Instant};

use berth_tests::berth::Berth;
use berth_tests::daemon::Daemon;
use berth_tests::fixtures;
use berth_tests::registry::{Mode, Registry};
use serde_json::Value;

/// A store with `busybox` pulled from a loopback registry, and two fresh user networks.
struct Lab {
    _reg: Registry,
    b: Berth,
    a: String,
    bnet: String,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let reg = Registry::start(Mode::Plain);
        let b = Berth::new();
        reg.push_fixture(&fixtures::image("busybox"), "library/busybox:latest");
        b.ok(&["pull", "-q", &reg.reference("library/busybox")]);
        b.ok(&["tag", &reg.reference("library/busybox"), "busybox"]);
        let pid = std::process::id();
        let (a, bnet) = (format!("{tag}a{pid}"), format!("{tag}b{pid}"));
        b.ok(&["network", "create", &a]);
        b.ok(&["network", "create", &bnet]);
        Lab {
            _reg: reg,
            b,
            a,
            bnet,
        }
    }

    /// A detached busybox serving its own /etc over HTTP (so `/hostname` names it).
    fn server(&self, name: &str, network: &str) {
        self.make_server(&["run", "-d"], name, network);
    }

    /// `verb` (`run -d` or `create`) for such a server.
    fn make_server(&self, verb: &[&str], name: &str, network: &str) {
        let hostname = format!("{name}-host");
        let mut args = verb.to_vec();
        args.extend(["--name", name, "--hostname", &hostname, "--network", network]);
        args.extend(["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
        self.b.ok(&args);
    }

    /// What `wget http://TARGET/hostname` prints inside `container` (None: it failed).
    /// `timeout` bounds it: a dropped connection would otherwise hang for minutes.
    fn fetch(&self, container: &str, target: &str) -> Option<String> {
        let url = format!("http://{target}/hostname");
        let r = self
            .b
            .run(&["exec", container, "timeout", "5", "wget", "-qO-", &url]);
        (r.code == 0).then(|| r.stdout.trim().to_string())
    }

    /// Like [`fetch`](Self::fetch), retried for up to 5 s until it answers `want`.
    fn fetch_until(&self, container: &str, target: &str, want: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = self.fetch(container, target);
            if got.as_deref() == Some(want) || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn networks_of(&self, container: &str) -> serde_json::Map<String, Value> {
        let out = self.b.ok(&[
            "inspect",
            "--format",
            "{{json .NetworkSettings.Networks}}",
            container,
        ]);
        match serde_json::from_str(out.trim()) {
            Ok(Value::Object(m)) => m,
            other => panic!("Networks of {container} is not an object: {other:?} ({out})"),
        }
    }

    fn ip_on(&self, container: &str, network: &str) -> String {
        let nets = self.networks_of(container);
        let ip = nets[network]["IPAddress"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            !ip.is_empty(),
            "{container} has no address on {network}: {nets:?}"
        );
        ip
    }

    fn interfaces(&self, container: &str) -> Vec<String> {
        let dev = self.b.ok(&["exec", container, "cat", "/proc/net/dev"]);
        dev.lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(|s| s.trim().to_string())
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let ids = self.b.run(&["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let _ = self.b.run(&["rm", "-f", id]);
        }
        let _ = self.b.run(&["network", "rm", &self.a, &self.bnet]);
    }
}

#[test]
fn connect_a_running_container_to_a_second_network_and_disconnect_it() {
    let lab = Lab::new("nc");
    let (b, a, bnet) = (&lab.b, lab.a.as_str(), lab.bnet.as_str());
    lab.server("peer-a", a);
    lab.server("peer-b", bnet);
    lab.server("xc", a);
    let y_ip = lab.ip_on("peer-b", bnet);

    // On network A only: x reaches its A peer, but not peer-b by name or by address
    // (networks are isolated from each other).
    assert_eq!(
        lab.fetch_until("xc", "peer-a", "peer-a-host").as_deref(),
        Some("peer-a-host")
    );
    assert_eq!(lab.fetch("xc", "peer-b"), None, "peer-b resolved before connect");
    assert_eq!(lab.fetch("xc", &y_ip), None, "peer-b reachable across networks");
    assert_eq!(lab.interfaces("xc"), ["lo", "eth0"]);

    // Connected live, with an alias: eth1 with an address from B's subnet.
    let out = b.ok(&["network", "connect", "--alias", "x-alias", bnet, "xc"]);
    assert_eq!(out, "", "connect prints nothing, like docker");
    assert_eq!(lab.interfaces("xc"), ["lo", "eth0", "eth1"]);
    let x_b = lab.ip_on("xc", bnet);
    let addr = b.ok(&["exec", "xc", "ip", "-o", "-4", "addr", "show", "dev", "eth1"]);
    assert!(addr.contains(&format!("{x_b}/24")), "{addr}");
    let nets = lab.networks_of("xc");
    assert_eq!(nets.len(), 2, "{nets:?}");
    let eb = &nets[bnet];
    for key in ["NetworkID", "EndpointID", "Gateway", "MacAddress", "IPAddress"] {
        assert!(eb[key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {eb}");
    }
    assert!(
        eb["Aliases"].as_array().unwrap().contains(&"x-alias".into()),
        "{eb}"
    );
    let mac = b.ok(&["exec", "xc", "cat", "/sys/class/net/eth1/address"]);
    assert_eq!(mac.trim(), eb["MacAddress"].as_str().unwrap());
    // The default route stays on the first network.
    let route = b.ok(&["exec", "xc", "ip", "route", "show", "default"]);
    assert!(route.contains("dev eth0"), "{route}");

    // Now x reaches peer-b by name and address, and still its peer on A.
    assert_eq!(lab.fetch("xc", "peer-b").as_deref(), Some("peer-b-host"));
    assert_eq!(lab.fetch("xc", &y_ip).as_deref(), Some("peer-b-host"));
    assert_eq!(lab.fetch("xc", "peer-a").as_deref(), Some("peer-a-host"));
    // peer-b learned x's name and alias on B (its /etc/hosts was rewritten in place).
    let hosts = b.ok(&["exec", "peer-b", "cat", "/etc/hosts"]);
    let line = hosts
        .lines()
        .find(|l| l.starts_with(&format!("{x_b}\t")))
        .unwrap_or_else(|| panic!("peer-b does not know x: {hosts}"));
    assert!(line.contains(" x-alias") && line.contains("\txc "), "{line}");
    assert_eq!(
        lab.fetch("peer-b", "x-alias").as_deref(),
        Some("xc-host"),
        "peer-b reaches x by its alias"
    );
    // The network lists x as a member.
    let members = b.ok(&["network", "inspect", bnet]);
    assert!(
        members.contains("\"Name\": \"xc\"") && members.contains(&x_b),
        "{members}"
    );

    // Errors, each one sentence: a second connect, unknown network or container, host, none.
    let r = b.fails(&["network", "connect", bnet, "xc"]);
    assert!(
        r.stderr
            .contains(&format!("endpoint with name xc already exists in network {bnet}")),
        "{}",
        r.stderr
    );
    let r = b.fails(&["network", "connect", "no-such-net", "xc"]);
    assert!(r.stderr.contains("no-such-net"), "{}", r.stderr);
    let r = b.fails(&["network", "connect", bnet, "no-such-container"]);
    assert!(r.stderr.contains("no such container"), "{}", r.stderr);
    let r = b.fails(&["network", "connect", "host", "xc"]);
    assert!(r.stderr.contains("host network"), "{}", r.stderr);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "on-host",
        "--network",
        "host",
        "busybox",
        "sleep",
        "300",
    ]);
    let r = b.fails(&["network", "connect", bnet, "on-host"]);
    assert!(r.stderr.contains("cannot be connected"), "{}", r.stderr);
    let r = b.fails(&["network", "disconnect", "host", "on-host"]);
    assert!(r.stderr.contains("host network"), "{}", r.stderr);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "on-none",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let r = b.fails(&["network", "connect", bnet, "on-none"]);
    assert!(r.stderr.contains("private (none) mode"), "{}", r.stderr);
    assert_eq!(lab.interfaces("on-none"), ["lo"]);
    let r = b.fails(&["network", "connect", "none", "xc"]);
    assert!(r.stderr.contains("private (none) mode"), "{}", r.stderr);
    let r = b.fails(&["network", "disconnect", bnet, "peer-a"]);
    assert!(r.stderr.contains("is not connected to network"), "{}", r.stderr);
    let r = b.fails(&["network", "rm", bnet]);
    assert!(r.stderr.contains(bnet), "a network in use stays: {}", r.stderr);

    // Disconnect: eth1 leaves, names and address of B are gone for x, A still works.
    assert_eq!(b.ok(&["network", "disconnect", bnet, "xc"]), "");
    assert_eq!(lab.interfaces("xc"), ["lo", "eth0"]);
    assert_eq!(lab.fetch("xc", "peer-b"), None, "peer-b still resolves");
    assert_eq!(lab.fetch("xc", &y_ip), None, "peer-b still reachable");
    assert_eq!(lab.fetch("xc", "peer-a").as_deref(), Some("peer-a-host"));
    let hosts = b.ok(&["exec", "xc", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("peer-b") && !hosts.contains(&x_b), "{hosts}");
    let hosts = b.ok(&["exec", "peer-b", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("x-alias") && !hosts.contains(&x_b), "{hosts}");
    assert_eq!(lab.networks_of("xc").len(), 1);
    assert!(!b.ok(&["network", "inspect", bnet]).contains("\"Name\": \"xc\""));
}

#[test]
fn connect_before_start_and_across_restarts() {
    let lab = Lab::new("nd");
    let (b, a, bnet) = (&lab.b, lab.a.as_str(), lab.bnet.as_str());
    lab.server("peer-b", bnet);

    // A created container: the network is recorded and set up when it starts.
    lab.make_server(&["create"], "cc", a);
    b.ok(&["network", "connect", bnet, "cc"]);
    let nets = lab.networks_of("cc");
    assert_eq!(nets.len(), 2, "{nets:?}");
    assert_eq!(nets[bnet]["IPAddress"], "", "no address before start: {nets:?}");
    b.ok(&["start", "cc"]);
    assert_eq!(lab.interfaces("cc"), ["lo", "eth0", "eth1"]);
    assert_eq!(
        lab.fetch_until("cc", "peer-b", "peer-b-host").as_deref(),
        Some("peer-b-host")
    );
    assert_eq!(lab.fetch("peer-b", "cc").as_deref(), Some("cc-host"));

    // Stopping releases both endpoints; a new start sets both up again.
    b.ok(&["stop", "-t", "1", "cc"]);
    let members = b.ok(&["network", "inspect", bnet]);
    assert!(!members.contains("\"Name\": \"cc\""), "{members}");
    assert!(!b.ok(&["exec", "peer-b", "cat", "/etc/hosts"]).contains("cc-host"));
    b.ok(&["start", "cc"]);
    assert_eq!(lab.interfaces("cc"), ["lo", "eth0", "eth1"]);
    assert_eq!(lab.fetch("cc", "peer-b").as_deref(), Some("peer-b-host"));

    // Disconnected from both while stopped: it starts with loopback only, and a live
    // connect then gives it eth0 with the default route.
    b.ok(&["stop", "-t", "1", "cc"]);
    b.ok(&["network", "disconnect", a, "cc"]);
    b.ok(&["network", "disconnect", bnet, "cc"]);
    assert!(lab.networks_of("cc").is_empty());
    b.ok(&["start", "cc"]);
    assert_eq!(lab.interfaces("cc"), ["lo"]);
    b.ok(&["network", "connect", bnet, "cc"]);
    assert_eq!(lab.interfaces("cc"), ["lo", "eth0"]);
    let route = b.ok(&["exec", "cc", "ip", "route", "show", "default"]);
    assert!(route.contains("dev eth0"), "{route}");
    assert_eq!(lab.fetch("cc", "peer-b").as_deref(), Some("peer-b-host"));

    // `--network-alias` at run: the alias answers on that network from the start.
    let r = b.fails(&["create", "--network-alias", "nope", "busybox"]);
    assert!(r.stderr.contains("user defined networks"), "{}", r.stderr);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "aliased",
        "--network",
        bnet,
        "--network-alias",
        "al-one",
        "--network-alias",
        "al-two",
        "busybox",
        "sleep",
        "300",
    ]);
    let nets = lab.networks_of("aliased");
    let aliases = nets[bnet]["Aliases"].as_array().cloned().unwrap_or_default();
    assert!(
        aliases.contains(&"al-one".into()) && aliases.contains(&"al-two".into()),
        "{nets:?}"
    );
    let hosts = b.ok(&["exec", "peer-b", "cat", "/etc/hosts"]);
    assert!(hosts.contains("aliased al-one al-two"), "{hosts}");

    // Removing the container releases its endpoint: the network can go once peer-b goes.
    b.ok(&["rm", "-f", "cc", "peer-b", "aliased"]);
    b.ok(&["network", "rm", bnet]);
}

#[test]
fn published_ports_keep_forwarding_to_the_first_network() {
    let lab = Lab::new("np");
    let (b, a, bnet) = (&lab.b, lab.a.as_str(), lab.bnet.as_str());
    let port = berth_tests::free_port();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        a,
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sh",
        "-c",
        "mkdir /www && echo web-page > /www/index.html && httpd -f -p 80 -h /www",
    ]);
    let page = berth_tests::http::wait_for_200(port, Duration::from_secs(20));
    assert!(page.contains("web-page"), "{page}");
    b.ok(&["network", "connect", bnet, "web"]);
    let page = berth_tests::http::wait_for_200(port, Duration::from_secs(5));
    assert!(page.contains("web-page"), "after connect: {page}");
    b.ok(&["network", "disconnect", bnet, "web"]);
    let page = berth_tests::http::wait_for_200(port, Duration::from_secs(5));
    assert!(page.contains("web-page"), "after disconnect: {page}");
}

#[test]
fn engine_api_connect_disconnect_across_a_daemon_restart() {
    let lab = Lab::new("na");
    let (b, a, bnet) = (&lab.b, lab.a.as_str(), lab.bnet.as_str());
    lab.server("peer-b", bnet);
    lab.server("xa", a);
    let mut d = Daemon::start(b);
    let post = |d: &Daemon, what: &str, body: &str| {
        let r = d.request(
            "POST",
            &format!("/v1.43/networks/{bnet}/{what}"),
            Some(body.as_bytes()),
        );
        (r.status, String::from_utf8_lossy(&r.body).into_owned())
    };

    // Links are refused by name; a static address on a network without a subnet the user
    // gave is refused with docker's reason; nothing is connected.
    let (status, body) = post(
        &d,
        "connect",
        r#"{"Container": "xa", "EndpointConfig": {"Links": ["peer-b"]}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("EndpointConfig.Links"), "{body}");
    let (status, body) = post(
        &d,
        "connect",
        r#"{"Container": "xa", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.1.2.3"}}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("user configured subnets"), "{body}");
    assert_eq!(lab.interfaces("xa"), ["lo", "eth0"]);
    let (status, body) = post(&d, "connect", r#"{"Container": "no-such-container"}"#);
    assert_eq!(status, 404, "{body}");
    let r = d.request(
        "POST",
        "/v1.43/networks/no-such-net/connect",
        Some(br#"{"Container": "xa"}"#),
    );
    assert_eq!(r.status, 404);

    // Connected with an alias through the API (empty settings, as the docker CLI sends, pass).
    let (status, body) = post(
        &d,
        "connect",
        r#"{"Container": "xa", "EndpointConfig": {"Aliases": ["xa-alias"], "IPAMConfig": {}, "Links": null, "DriverOpts": {}}}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        post(&d, "connect", r#"{"Container": "xa"}"#).0,
        403,
        "second connect"
    );
    assert_eq!(lab.fetch("peer-b", "xa-alias").as_deref(), Some("xa-host"));

    // A daemon killed and started again finds the endpoint from the on-disk state.
    d.kill9();
    let d = Daemon::start(b);
    let r = d.request("GET", "/v1.43/containers/xa/json", None);
    let nets = r.json()["NetworkSettings"]["Networks"].clone();
    let eb = &nets[bnet];
    assert!(
        eb["IPAddress"].as_str().is_some_and(|ip| !ip.is_empty()),
        "{nets}"
    );
    assert!(
        nets[a]["IPAddress"].as_str().is_some_and(|ip| !ip.is_empty()),
        "{nets}"
    );
    let r = d.request("GET", &format!("/v1.43/networks/{bnet}"), None);
    let members = r.json()["Containers"].clone();
    let names: Vec<&str> = members
        .as_object()
        .expect("Containers is an object")
        .values()
        .filter_map(|m| m["Name"].as_str())
        .collect();
    assert!(names.contains(&"xa") && names.contains(&"peer-b"), "{members}");

    let (status, body) = post(&d, "disconnect", r#"{"Container": "xa", "Force": false}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(lab.interfaces("xa"), ["lo", "eth0"]);
    assert_eq!(
        post(&d, "disconnect", r#"{"Container": "xa"}"#).0,
        409,
        "not connected"
    );
    assert_eq!(lab.fetch("peer-b", "xa-alias"), None);

    // The CLI through the API (BERTH_HOST, bollard), from a client with a root of its own.
    let client = Berth::new();
    let remote = |args: &[&str]| {
        let mut c = client.command(args);
        c.env("BERTH_HOST", d.host());
        berth_tests::daemon::run_of(&mut c)
    };
    let r = remote(&["network", "connect", "--alias", "xa-remote", bnet, "xa"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lab.interfaces("xa"), ["lo", "eth0", "eth1"]);
    assert_eq!(lab.fetch("peer-b", "xa-remote").as_deref(), Some("xa-host"));
    let r = remote(&["network", "connect", bnet, "xa"]);
    assert!(r.code == 1 && r.stderr.contains("already exists"), "{r:?}");
    let r = remote(&["network", "disconnect", "-f", bnet, "xa"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lab.interfaces("xa"), ["lo", "eth0"]);
}

/// `host.docker.internal` names this computer inside a container, as on Docker Desktop: the
/// gateway of the container's network, where a server of the host listening on all
/// addresses answers.
#[test]
fn host_docker_internal_reaches_a_server_on_this_computer() {
    let lab = Lab::new("hdi");
    let (port, server) = berth_tests::http::serve_once("0.0.0.0:0", "the host\n");
    lab.b.ok(&[
        "run",
        "-d",
        "--name",
        "hdi",
        "--network",
        &lab.a,
        "busybox",
        "sleep",
        "60",
    ]);
    let hosts = lab.b.ok(&["exec", "hdi", "cat", "/etc/hosts"]);
    let nets = lab.networks_of("hdi");
    let gateway = nets[&lab.a]["Gateway"].as_str().unwrap_or_default().to_string();
    assert!(!gateway.is_empty(), "a gateway on {}: {nets:?}", lab.a);
    assert!(
        hosts.contains(&format!("{gateway}\thost.docker.internal")),
        "host.docker.internal is the network's gateway {gateway}:\n{hosts}"
    );
    let url = format!("http://host.docker.internal:{port}/");
    let r = lab.b.run(&["exec", "hdi", "timeout", "5", "wget", "-qO-", &url]);
    assert_eq!(r.stdout, "the host\n", "{}", r.stderr);
    server.join().expect("server");

    let none = lab
        .b
        .ok(&["run", "--rm", "--network", "none", "busybox", "cat", "/etc/hosts"]);
    assert!(
        !none.contains("host.docker.internal"),
        "no network, no host: {none}"
    );
}

/// `docker network create` with the options Compose and the SDKs send, through the docker
/// CLI v28: labels (and the label filter), `--internal` (no way out, but the members reach
/// each other), `--attachable`, `--subnet`/`--gateway`/`--ip-range` (addresses come from the
/// range), `--ip` for a fixed address, and a name with a space answered 400.
#[test]
fn network_create_options_labels_internal_and_static_addresses() {
    let lab = Lab::new("no");
    let b = &lab.b;
    let d = Daemon::start(b);
    let docker = |args: &[&str]| {
        let r = d.docker(b.docker_config(), args);
        assert_eq!(r.code, 0, "docker {args:?}: {}{}", r.stdout, r.stderr);
        r.stdout
    };
    let pid = std::process::id();
    let (inner, ranged) = (format!("inner{pid}"), format!("ranged{pid}"));
    // Labels unique to this run: networks are the machine's, other tests' are listed too.
    let (docker_course, other_course, key) = (
        format!("course{pid}=docker"),
        format!("course{pid}=other"),
        format!("label=course{pid}"),
    );
    let _gone = Cleanup(b, vec![inner.clone(), ranged.clone()]);
    docker(&[
        "network",
        "create",
        "--internal",
        "--attachable",
        "--label",
        &docker_course,
        "--label",
        "week=3",
        &inner,
    ]);
    docker(&[
        "network",
        "create",
        "--subnet",
        "172.31.0.0/16",
        "--gateway",
        "172.31.5.254",
        "--ip-range",
        "172.31.5.0/24",
        "--label",
        &other_course,
        &ranged,
    ]);
    let v: Value = serde_json::from_str(&docker(&["network", "inspect", &inner])).unwrap();
    let n = &v[0];
    assert_eq!(n["Internal"], true, "{n}");
    assert_eq!(n["Attachable"], true, "{n}");
    assert_eq!(n["Labels"][format!("course{pid}")], "docker", "{n}");
    assert!(n["Created"].as_str().unwrap().starts_with("20"), "{n}");
    let v: Value = serde_json::from_str(&docker(&["network", "inspect", &ranged])).unwrap();
    let ipam = &v[0]["IPAM"]["Config"][0];
    assert_eq!(ipam["Subnet"], "172.31.0.0/16", "{ipam}");
    assert_eq!(ipam["Gateway"], "172.31.5.254", "{ipam}");
    assert_eq!(ipam["IPRange"], "172.31.5.0/24", "{ipam}");

    let listed = docker(&[
        "network",
        "ls",
        "--filter",
        &format!("label={docker_course}"),
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(listed.split_whitespace().collect::<Vec<_>>(), [inner.as_str()]);
    let listed = docker(&["network", "ls", "--filter", &key, "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = listed.split_whitespace().collect();
    names.sort();
    let mut want = [inner.as_str(), ranged.as_str()];
    want.sort();
    assert_eq!(names, want);

    // Addresses from the range; a fixed one where asked; a taken one refused.
    lab.server("r1", &ranged);
    let r1 = lab.ip_on("r1", &ranged);
    assert!(
        r1.starts_with("172.31.5.") && r1 != "172.31.5.254",
        "{r1} is not from the range"
    );
    docker(&[
        "run",
        "-d",
        "--name",
        "r2",
        "--hostname",
        "r2-host",
        "--network",
        &ranged,
        "--ip",
        "172.31.9.9",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    assert_eq!(lab.ip_on("r2", &ranged), "172.31.9.9");
    let r = d.docker(
        b.docker_config(),
        &[
            "run",
            "-d",
            "--name",
            "r3",
            "--network",
            &ranged,
            "--ip",
            "172.31.9.9",
            "busybox",
            "true",
        ],
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Address already in use"), "{}", r.stderr);
    let r = d.docker(
        b.docker_config(),
        &["run", "--rm", "--ip", "10.66.0.99", "busybox", "true"],
    );
    assert_ne!(r.code, 0, "a fixed address on the default network");
    assert!(r.stderr.contains("user defined networks"), "{}", r.stderr);
    assert_eq!(lab.fetch("r1", "172.31.9.9").as_deref(), Some("r2-host"));

    // Internal: its members reach each other by name, nothing outside. "Outside" is a
    // server in a network namespace of its own, routed through the host, as the internet is:
    // a container on an ordinary network reaches it, one on the internal network does not.
    let outside = Outside::new(pid);
    lab.server("i1", &inner);
    lab.server("i2", &inner);
    lab.server("o1", &lab.a);
    assert_eq!(lab.fetch("i1", "i2").as_deref(), Some("i2-host"));
    assert_eq!(
        lab.fetch("o1", &outside.addr).as_deref(),
        Some("outside"),
        "the control"
    );
    assert_eq!(
        lab.fetch("i1", &outside.addr),
        None,
        "an internal network got out"
    );
    lab.b.ok(&["network", "connect", &lab.a, "i2"]);
    assert_eq!(
        lab.fetch_until("i2", &outside.addr, "outside").as_deref(),
        Some("outside")
    );
    assert_eq!(
        lab.fetch("i1", &outside.addr),
        None,
        "i1 got out through i2's network"
    );
    drop(outside);

    // docker's 400 for a name it cannot use.
    let r = d.request(
        "POST",
        "/v1.43/networks/create",
        Some(br#"{"Name": "has space"}"#),
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

/// Removes its containers' networks when the test ends, passed or not (network state is
/// the machine's, shared by every store).
/// IPv6 on a user network (`--ipv6`, `EnableIPv6`): two containers reach each other over
/// it, by address and by name, addresses are handed out lowest first or fixed with `--ip6`,
/// and inspect reports them as docker does; asked of the docker CLI and of `berth`.
#[test]
fn ipv6_between_two_containers() {
    let lab = Lab::new("v6");
    let b = &lab.b;
    let d = Daemon::start(b);
    let pid = std::process::id();
    let (v6net, auto) = (format!("v6n{pid}"), format!("v6auto{pid}"));
    let _gone = Cleanup(b, vec![v6net.clone(), auto.clone()]);
    let prefix = format!("fd00:b0:{:x}", pid & 0xffff);
    let subnet = format!("{prefix}::/64");
    let r = d.docker(
        b.docker_config(),
        &["network", "create", "--ipv6", "--subnet", &subnet, &v6net],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&b.ok(&["network", "inspect", &v6net])).unwrap();
    let n = &v[0];
    assert_eq!(n["EnableIPv6"], true, "{n}");
    let configs = n["IPAM"]["Config"].as_array().unwrap();
    assert!(
        configs
            .iter()
            .any(|c| c["Subnet"] == subnet.as_str() && c["Gateway"] == format!("{prefix}::1")),
        "{n}"
    );
    assert!(
        configs
            .iter()
            .any(|c| c["Subnet"].as_str().is_some_and(|s| s.starts_with("10."))),
        "an IPv4 subnet as well: {n}"
    );

    // A server and a client; the server gets the lowest free address.
    let serve = "mkdir -p /www && echo over-ipv6 > /www/index.html && exec httpd -f -p 8000 -h /www";
    b.ok(&[
        "run",
        "-d",
        "--name",
        "s6",
        "--network",
        &v6net,
        "busybox",
        "sh",
        "-c",
        serve,
    ]);
    let nets = lab.networks_of("s6");
    let ep = &nets[&v6net];
    assert_eq!(ep["GlobalIPv6Address"], format!("{prefix}::2"), "{ep}");
    assert_eq!(ep["GlobalIPv6PrefixLen"], 64, "{ep}");
    assert_eq!(ep["IPv6Gateway"], format!("{prefix}::1"), "{ep}");
    assert!(!ep["IPAddress"].as_str().unwrap_or_default().is_empty(), "{ep}");
    let r = d.docker(
        b.docker_config(),
        &[
            "run",
            "-d",
            "--name",
            "c6",
            "--network",
            &v6net,
            "--ip6",
            &format!("{prefix}::99"),
            "busybox",
            "sleep",
            "300",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let addrs = b.ok(&["exec", "c6", "ip", "-6", "addr", "show", "eth0"]);
    assert!(addrs.contains(&format!("{prefix}::99/64")), "{addrs}");
    let routes = b.ok(&["exec", "c6", "ip", "-6", "route"]);
    assert!(routes.contains(&format!("default via {prefix}::1")), "{routes}");

    // By address, at once (no duplicate address detection to wait out), and by name: the
    // server's name has its IPv6 address in the client's /etc/hosts too.
    let url = format!("http://[{prefix}::2]:8000/");
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let r = b.run(&["exec", "c6", "timeout", "5", "wget", "-qO-", &url]);
        if r.code == 0 || Instant::now() > deadline {
            break r.stdout;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(page.trim(), "over-ipv6");
    let hosts = b.ok(&["exec", "c6", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{prefix}::2\ts6")), "{hosts}");
    let net_list = b.ok(&["network", "inspect", &v6net]);
    assert!(net_list.contains(&format!("{prefix}::99/64")), "{net_list}");

    // Wrong asks say what to do.
    let r = d.docker(
        b.docker_config(),
        &[
            "run",
            "--rm",
            "--network",
            &v6net,
            "--ip6",
            &format!("{prefix}::99"),
            "busybox",
            "true",
        ],
    );
    assert!(
        r.code != 0 && r.stderr.contains("Address already in use"),
        "{}",
        r.stderr
    );
    let r = b.run(&[
        "run",
        "--rm",
        "--network",
        &lab.a,
        "--ip6",
        "fd00:1::5",
        "busybox",
        "true",
    ]);
    assert!(r.code != 0 && r.stderr.contains("--ipv6"), "{}", r.stderr);
    let r = b.run(&[
        "network",
        "create",
        "--subnet",
        "fd00:2::/64",
        &format!("nov6{pid}"),
    ]);
    assert!(r.code != 0 && r.stderr.contains("add --ipv6"), "{}", r.stderr);
    let r = b.run(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b0::/32",
        &format!("clash{pid}"),
    ]);
    assert!(r.code != 0 && r.stderr.contains("overlaps"), "{}", r.stderr);

    // Without an IPv6 subnet: a unique local /64 chosen for it.
    b.ok(&["network", "create", "--ipv6", &auto]);
    let v: Value = serde_json::from_str(&b.ok(&["network", "inspect", &auto])).unwrap();
    let chosen = v[0]["IPAM"]["Config"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["Subnet"].as_str())
        .find(|s| s.contains(':'))
        .map(String::from);
    assert!(
        chosen
            .as_deref()
            .is_some_and(|s| s.starts_with("fd") && s.ends_with("::/64")),
        "{v}"
    );
}

struct Cleanup<'a>(&'a Berth, Vec<String>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for id in self.0.run(&["ps", "-aq"]).stdout.split_whitespace() {
            let _ = self.0.run(&["rm", "-f", id]);
        }
        for n in &self.1 {
            let _ = self.0.run(&["network", "rm", n]);
        }
    }
}

/// A network namespace joined to the host by a veth pair, serving `/hostname` ("outside")
/// over HTTP on `addr`: a stand-in for a server beyond the host.
struct Outside {
    ns: String,
    host_end: String,
    addr: String,
    server: std::process::Child,
}

impl Outside {
    fn new(salt: u32) -> Outside {
        let ns = format!("berth-out{}", salt % 100_000);
        let host_end = format!("vout{}", salt % 100_000);
        let octet = 1 + salt % 250;
        let (host_ip, addr) = (format!("10.251.{octet}.1"), format!("10.251.{octet}.2"));
        let ip = |args: &[&str]| {
            let out = std::process::Command::new("ip")
                .args(args)
                .output()
                .expect("ip (iproute2)");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &ns])
            .output();
        ip(&["netns", "add", &ns]);
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        ip(&["addr", "add", &format!("{host_ip}/24"), "dev", &host_end]);
        ip(&["link", "set", &host_end, "up"]);
        ip(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        let www = std::env::temp_dir().join(format!("{ns}-www"));
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("hostname"), "outside\n").unwrap();
        let server = std::process::Command::new("ip")
            .args(["netns", "exec", &ns, "busybox", "httpd", "-f", "-p", "80", "-h"])
            .arg(&www)
            .spawn()
            .expect("busybox httpd (busybox-static)");
        std::thread::sleep(Duration::from_millis(200));
        Outside {
            ns,
            host_end,
            addr,
            server,
        }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_end])
            .output();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .output();
    }
}
