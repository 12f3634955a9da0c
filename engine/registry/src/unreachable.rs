//! "The registry can't be reached", told apart by its real cause (DNS, refused, timed out,
//! no route, plain HTTP, TLS, proxy), in words a beginner can act on.
//!
//! The sentences are defined here once. The engine's message (what the CLI prints, what
//! the Engine API sends in docker's `{"message": …}`) is
//!
//! ```text
//! <what happened>. <what to do>. [code=registry-unreachable.<cause> registry=<name>[ proxy=<host:port>][ op=push][ mirrors=unreachable|lacked]] <low-level detail>
//! ```
//!
//! Front ends find the bracketed marker with [`Unreachable::parse`] (so a message that
//! crossed the Engine API still says which failure it was), show [`Unreachable::sentence`]
//! and build their own next step with [`Unreachable::next_step`] and their own [`Advice`]
//! (the CLI names `--registry-mirror`, the window links its Settings). The detail — the
//! resolver's or TLS library's words — is for a "details" view only.

use std::error::Error as _;
use std::fmt;

/// What kept the registry out of reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The name could not be looked up (no DNS, no internet, or a typo).
    Dns,
    /// Nothing listens at that address and port.
    Refused,
    /// No answer within the time limit.
    TimedOut,
    /// The registry answers in plain HTTP where HTTPS was spoken.
    PlainHttp,
    /// The secure connection failed: an untrusted or invalid certificate, usually.
    Tls,
    /// The HTTP(S) proxy from the environment did not pass the connection on.
    Proxy,
    /// This computer has no route to it (no network, or none that leads there).
    NoRoute,
    /// The connection failed some other way (reset, say).
    Network,
}

const CAUSES: [Cause; 8] = [
    Cause::Dns,
    Cause::Refused,
    Cause::TimedOut,
    Cause::PlainHttp,
    Cause::Tls,
    Cause::Proxy,
    Cause::NoRoute,
    Cause::Network,
];

/// The stable part of every code: `registry-unreachable.<cause>`.
pub const CODE_PREFIX: &str = "registry-unreachable.";

impl Cause {
    /// Stable name, used in the message's marker: `dns`, `refused`, `timeout`, …
    pub fn name(self) -> &'static str {
        match self {
            Cause::Dns => "dns",
            Cause::Refused => "refused",
            Cause::TimedOut => "timeout",
            Cause::PlainHttp => "plain-http",
            Cause::Tls => "tls",
            Cause::Proxy => "proxy",
            Cause::NoRoute => "no-route",
            Cause::Network => "network",
        }
    }

    fn from_name(name: &str) -> Option<Cause> {
        CAUSES.into_iter().find(|c| c.name() == name)
    }
}

/// How a front end says the two settings a next step may point at.
pub struct Advice<'a> {
    /// Completes "Check the internet connection, or …": how to set a registry mirror.
    pub mirror: &'a str,
    /// Completes "If you trust it, …": how to allow this registry over plain HTTP /
    /// unverified TLS (the front end names the registry itself if it wants to).
    pub insecure: &'a str,
}

/// A registry that could not be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// As the user wrote it ("127.0.0.1:5000", "registry.example.com"); "docker.io" for
    /// Docker Hub and its aliases.
    pub registry: String,
    pub cause: Cause,
    /// The proxy's host\[:port\] for [`Cause::Proxy`] (never its credentials).
    pub proxy: Option<String>,
    /// The low-level words ("failed to lookup address information: …").
    pub detail: String,
    /// Whether it happened during a push, where mirrors (read-only) do not help.
    pub pushing: bool,
    /// What the registry mirrors, tried first for Docker Hub, came to.
    pub mirrors: Mirrors,
}

/// What the mirrors tried before an unreachable Docker Hub came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mirrors {
    /// None configured (or not a pull from Docker Hub).
    #[default]
    None,
    /// They could not be reached either.
    Unreachable,
    /// They answered, but not with the image (not found, say).
    Lacked,
}

impl Mirrors {
    fn name(self) -> Option<&'static str> {
        match self {
            Mirrors::None => None,
            Mirrors::Unreachable => Some("unreachable"),
            Mirrors::Lacked => Some("lacked"),
        }
    }
}

impl Unreachable {
    pub fn is_docker_hub(&self) -> bool {
        crate::credentials::is_docker_hub(&self.registry)
    }

    /// `registry-unreachable.dns`, …: what a front end may match on.
    pub fn code(&self) -> String {
        format!("{CODE_PREFIX}{}", self.cause.name())
    }

    fn who(&self) -> String {
        if self.is_docker_hub() {
            "Docker Hub".into()
        } else {
            format!("The registry {}", self.registry)
        }
    }

    /// What happened, in one sentence (ends with a full stop).
    pub fn sentence(&self) -> String {
        let who = self.who();
        match self.cause {
            Cause::Dns => format!("{who} can't be reached: its address could not be looked up."),
            Cause::Refused => format!("{who} can't be reached: nothing is listening at that address."),
            Cause::TimedOut => format!("{who} can't be reached: it did not answer in time."),
            Cause::PlainHttp => {
                format!("{who} can't be reached securely: it answers in plain HTTP, not HTTPS.")
            }
            Cause::Tls if self.detail.to_ascii_lowercase().contains("certificate") => {
                format!("{who} can't be reached securely: its HTTPS certificate was not accepted.")
            }
            Cause::Tls => format!("{who} can't be reached securely: the HTTPS connection failed."),
            Cause::Proxy => match &self.proxy {
                Some(p) => format!("{who} can't be reached: the proxy {p} did not pass the connection on."),
                None => format!("{who} can't be reached: the proxy did not pass the connection on."),
            },
            Cause::NoRoute => format!("{who} can't be reached: this computer has no network route to it."),
            Cause::Network => format!("{who} can't be reached: the connection failed."),
        }
    }

    /// What to do next, in one sentence, with the front end's way of naming the settings.
    pub fn next_step(&self, advice: &Advice) -> String {
        match self.cause {
            Cause::PlainHttp => format!("If you trust it, {}.", advice.insecure),
            Cause::Tls => format!(
                "Install its CA certificate on this computer, or, if you trust it, {}.",
                advice.insecure
            ),
            Cause::Proxy => {
                "Check the proxy setting (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), or unset it.".into()
            }
            _ if self.is_docker_hub() && self.mirrors == Mirrors::Unreachable => {
                "Check the internet connection, and the registry mirror's address: it failed too.".into()
            }
            _ if self.is_docker_hub() && self.mirrors == Mirrors::Lacked => {
                "Check the image name (the registry mirror does not have it), or the internet connection."
                    .into()
            }
            _ if self.is_docker_hub() && !self.pushing => {
                format!("Check the internet connection, or {}.", advice.mirror)
            }
            _ if self.is_docker_hub() => "Check the internet connection, then try again.".into(),
            Cause::Dns => "Check the registry name for typos, and the internet connection.".into(),
            Cause::Refused => "Check the host and port, and that the registry is running.".into(),
            Cause::TimedOut => "Check the internet connection and any firewall, then try again.".into(),
            Cause::NoRoute | Cause::Network => "Check the internet connection, then try again.".into(),
        }
    }

    /// Whether the next step points at a setting (a mirror, insecure registries): the
    /// window then offers a link to its Settings.
    pub fn needs_setting(&self) -> bool {
        match self.cause {
            Cause::PlainHttp | Cause::Tls => true,
            Cause::Proxy => false,
            _ => self.is_docker_hub() && !self.pushing && self.mirrors != Mirrors::Lacked,
        }
    }

    /// The engine's own advice: docker's daemon.json keys.
    pub fn engine_advice(&self) -> (String, String) {
        (
            "set a registry mirror (\"registry-mirrors\" in daemon.json)".to_string(),
            format!(
                "add \"{}\" to \"insecure-registries\" in daemon.json",
                self.registry
            ),
        )
    }

    /// Finds the marker an engine message carries and reads the failure back. `None` for
    /// messages about anything else.
    pub fn parse(message: &str) -> Option<Unreachable> {
        let start = message.find(&format!("[code={CODE_PREFIX}"))?;
        let rest = &message[start + 1..];
        let end = rest.find(']')?;
        let (fields, detail) = (&rest[..end], rest[end + 1..].trim());
        let mut cause = None;
        let mut registry = None;
        let mut proxy = None;
        let mut pushing = false;
        let mut mirrors = Mirrors::None;
        for field in fields.split_whitespace() {
            match field.split_once('=') {
                Some(("code", c)) => cause = c.strip_prefix(CODE_PREFIX).and_then(Cause::from_name),
                Some(("registry", r)) => registry = Some(r.to_string()),
                Some(("proxy", p)) => proxy = Some(p.to_string()),
                Some(("op", op)) => pushing = op == "push",
                Some(("mirrors", m)) => {
                    mirrors = [Mirrors::Unreachable, Mirrors::Lacked]
                        .into_iter()
                        .find(|s| s.name() == Some(m))
                        .unwrap_or_default()
                }
                _ => {}
            }
        }
        Some(Unreachable {
            registry: registry?,
            cause: cause?,
            proxy,
            detail: detail.to_string(),
            pushing,
            mirrors,
        })
    }

    /// Classifies a reqwest error that happened while sending a request to `registry`;
    /// `None` when it was not a failure to reach it (a body cut short, say).
    pub(crate) fn classify(registry: &str, e: &reqwest::Error) -> Option<Unreachable> {
        // The sources only: the top message names the URL, and a host may well read "tls".
        let chain = e.source().map(chain_text).unwrap_or_default();
        let lower = chain.to_ascii_lowercase();
        let make = |cause, proxy| Unreachable {
            registry: registry.to_string(),
            cause,
            proxy,
            detail: root_cause(e),
            pushing: false,
            mirrors: Mirrors::None,
        };
        // rustls reading an HTTP answer as a TLS record.
        if chain.contains("InvalidContentType") || lower.contains("corrupt message") {
            return Some(make(Cause::PlainHttp, None));
        }
        if !(e.is_connect() || e.is_timeout() || e.is_request()) {
            return None;
        }
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            return Some(make(Cause::Tls, None));
        }
        let proxy = e.url().and_then(proxy_for);
        if let Some(p) = proxy {
            if e.is_connect() || e.is_timeout() || lower.contains("tunnel") {
                return Some(make(Cause::Proxy, Some(p)));
            }
        }
        if e.is_timeout() || io_kind(e) == Some(std::io::ErrorKind::TimedOut) {
            return Some(make(Cause::TimedOut, None));
        }
        if io_kind(e) == Some(std::io::ErrorKind::ConnectionRefused) {
            return Some(make(Cause::Refused, None));
        }
        if lower.contains("dns error") || lower.contains("failed to lookup address") {
            return Some(make(Cause::Dns, None));
        }
        if matches!(
            io_kind(e),
            Some(std::io::ErrorKind::NetworkUnreachable | std::io::ErrorKind::HostUnreachable)
        ) {
            return Some(make(Cause::NoRoute, None));
        }
        Some(make(Cause::Network, None))
    }
}

/// The engine's message: sentence, next step, marker, detail.
impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mirror, insecure) = self.engine_advice();
        let next = self.next_step(&Advice {
            mirror: &mirror,
            insecure: &insecure,
        });
        write!(
            f,
            "{} {next} [code={} registry={}",
            self.sentence(),
            self.code(),
            self.registry
        )?;
        if let Some(p) = &self.proxy {
            write!(f, " proxy={p}")?;
        }
        if self.pushing {
            write!(f, " op=push")?;
        }
        if let Some(m) = self.mirrors.name() {
            write!(f, " mirrors={m}")?;
        }
        write!(f, "] {}", self.detail)
    }
}

/// The proxy the environment sets for `url` (reqwest's own rules: `HTTPS_PROXY`,
/// `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), as host\[:port\].
fn proxy_for(url: &url::Url) -> Option<String> {
    let uri: http::Uri = url.as_str().parse().ok()?;
    let intercept = hyper_util::client::proxy::matcher::Matcher::from_system().intercept(&uri)?;
    let proxy = intercept.uri();
    let host = proxy.host()?;
    Some(match proxy.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
}

fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// The innermost message of an error chain ("connection refused"), without the layers of
/// "error sending request for url …" that wrap it.
pub(crate) fn root_cause(e: &reqwest::Error) -> String {
    let mut last = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        last = s.to_string();
        cur = s.source();
    }
    // io::Error messages carry "(os error 111)"; keep just the words.
    match last.find(" (os error") {
        Some(i) => last[..i].to_ascii_lowercase(),
        None => last,
    }
}
