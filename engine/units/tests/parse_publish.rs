use std::net::IpAddr;

use berth_units::{parse_publish, PortSpec, Proto};

fn spec(ip: &str, host: u16, container: u16, proto: Proto) -> PortSpec {
    PortSpec {
        host_ip: ip.parse::<IpAddr>().unwrap(),
        host_port: host,
        container_port: container,
        proto,
    }
}

#[test]
fn valid_specs() {
    let any = "0.0.0.0";
    let table: Vec<(&str, Vec<PortSpec>)> = vec![
        ("80", vec![spec(any, 0, 80, Proto::Tcp)]),
        ("8080:80", vec![spec(any, 8080, 80, Proto::Tcp)]),
        ("127.0.0.1:8080:80", vec![spec("127.0.0.1", 8080, 80, Proto::Tcp)]),
        ("127.0.0.1::80", vec![spec("127.0.0.1", 0, 80, Proto::Tcp)]),
        ("8080:80/udp", vec![spec(any, 8080, 80, Proto::Udp)]),
        ("8080:80/tcp", vec![spec(any, 8080, 80, Proto::Tcp)]),
        ("53/udp", vec![spec(any, 0, 53, Proto::Udp)]),
        ("[::1]:8080:80", vec![spec("::1", 8080, 80, Proto::Tcp)]),
        ("[::]::80/udp", vec![spec("::", 0, 80, Proto::Udp)]),
        (
            "8000-8001:80-81",
            vec![spec(any, 8000, 80, Proto::Tcp), spec(any, 8001, 81, Proto::Tcp)],
        ),
        (
            "80-81",
            vec![spec(any, 0, 80, Proto::Tcp), spec(any, 0, 81, Proto::Tcp)],
        ),
        (
            "10.0.0.1:9000-9002:7000-7002/udp",
            vec![
                spec("10.0.0.1", 9000, 7000, Proto::Udp),
                spec("10.0.0.1", 9001, 7001, Proto::Udp),
                spec("10.0.0.1", 9002, 7002, Proto::Udp),
            ],
        ),
        ("65535:65535", vec![spec(any, 65535, 65535, Proto::Tcp)]),
    ];
    for (input, want) in table {
        assert_eq!(
            parse_publish(input).unwrap_or_else(|e| panic!("{input}: {e}")),
            want,
            "{input}"
        );
    }
}

#[test]
fn invalid_specs() {
    let table = [
        ("80800:80", "port 80800 is above 65535"),
        ("8080:80800", "port 80800 is above 65535"),
        ("99999999999999999999:80", "is above 65535"),
        ("", "empty"),
        ("8080:", "the container port is missing"),
        ("127.0.0.1:8080", "'127.0.0.1' is not a port number"),
        ("abc:80", "'abc' is not a port number"),
        ("8080:80/sctp", "protocol 'sctp' is not supported"),
        ("0:80", "the host port must not be 0"),
        ("8080:0", "the container port must not be 0"),
        ("300.1.1.1:80:80", "'300.1.1.1' is not an IP address"),
        ("8001-8000:80-81", "ends before it starts"),
        ("8000-8002:80-81", "differ in length"),
        ("1:2:3:4", "too many ':'"),
        ("[::1:8080:80", "not closed"),
        ("-80", "the container port is missing"),
    ];
    for (input, want) in table {
        let err = parse_publish(input).expect_err(input).to_string();
        assert!(err.contains(want), "{input}: got '{err}', want '{want}'");
        assert!(
            err.starts_with(&format!("invalid port spec '{input}': ")),
            "{err}"
        );
    }
}
