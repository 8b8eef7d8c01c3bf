//! LocalForward, RemoteForward and DynamicForward specifications.
//!
//! ssh_config(5) LocalForward: "The first argument specifies the listener
//! and may be [bind_address:]port or a Unix domain socket path. The second
//! argument is the destination and may be host:hostport or a Unix domain
//! socket path". "IPv6 addresses can be specified by enclosing addresses in
//! square brackets." RemoteForward with a single argument is a dynamic
//! (SOCKS) forward on the server side.

use std::fmt;

use super::expand::check_dollar;
use super::local::parse_port;

/// Where a forwarding listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A TCP port, optionally bound to one address.
    Port { bind: Option<String>, port: u16 },
    /// A Unix domain socket.
    Path(String),
}

/// Where forwarded connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connect {
    /// Dynamic forwarding: the destination comes from the SOCKS request.
    Socks,
    Port {
        host: String,
        port: u16,
    },
    Path(String),
}

/// One forwarding from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub listen: Listen,
    pub connect: Connect,
}

/// Which keyword a specification came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardKind {
    Local,
    Remote,
    Dynamic,
}

/// One colon-separated field of a specification.
struct Field {
    text: String,
    is_path: bool,
}

/// Parses the joined specification (`listen:connect`, or just `listen` for
/// dynamic forwards). `None` if it is malformed.
/// `dynamic` is set for DynamicForward and for a RemoteForward given only
/// a listener.
pub(crate) fn parse(spec: &str, dynamic: bool, remote: bool) -> Option<Forward> {
    // ${VAR} is expanded first so a variable holding a path counts as a path.
    let spec = check_dollar(spec).ok()?;
    let fields = split_fields(spec.trim_start_matches(|c: char| c.is_ascii_whitespace()))?;
    let fwd = build(&fields, dynamic)?;
    valid_listen_port(&fwd, remote).then_some(fwd)
}

fn split_fields(mut s: &str) -> Option<Vec<Field>> {
    let mut fields = Vec::new();
    while !s.is_empty() {
        if fields.len() == 4 {
            return None;
        }
        let (field, rest) = next_field(s)?;
        fields.push(field);
        s = rest;
    }
    Some(fields)
}

/// A `[...]` field is taken literally; otherwise a backslash escapes the
/// next character and ':' ends the field. A '/' marks a socket path.
fn next_field(s: &str) -> Option<(Field, &str)> {
    if let Some(inner) = s.strip_prefix('[') {
        let close = inner.find(']')?;
        let text = &inner[..close];
        let after = &inner[close + 1..];
        let rest = match after.strip_prefix(':') {
            Some(r) => r,
            None if after.is_empty() => after,
            None => return None,
        };
        return Some((
            Field {
                text: text.to_string(),
                is_path: text.contains('/'),
            },
            rest,
        ));
    }
    let mut text = String::new();
    let mut is_path = false;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?.1),
            '/' => {
                is_path = true;
                text.push(c);
            }
            ':' => return Some((Field { text, is_path }, &s[i + 1..])),
            _ => text.push(c),
        }
    }
    Some((Field { text, is_path }, ""))
}

fn port_of(s: &str) -> Option<u16> {
    parse_port(s)
}

fn listen_port(bind: Option<&str>, port: &str) -> Option<Listen> {
    Some(Listen::Port {
        bind: bind.map(str::to_string),
        port: port_of(port)?,
    })
}

fn connect_port(host: &str, port: &str) -> Option<Connect> {
    let port = port_of(port).filter(|p| *p > 0)?;
    Some(Connect::Port {
        host: host.to_string(),
        port,
    })
}

fn build(f: &[Field], dynamic: bool) -> Option<Forward> {
    let path = |i: usize| f[i].is_path;
    let text = |i: usize| f[i].text.as_str();
    let (listen, connect) = match f.len() {
        1 if path(0) => (Listen::Path(text(0).to_string()), Connect::Socks),
        1 => (listen_port(None, text(0))?, Connect::Socks),
        2 if dynamic && !path(1) => (listen_port(Some(text(0)), text(1))?, Connect::Socks),
        2 if path(0) && path(1) => (
            Listen::Path(text(0).to_string()),
            Connect::Path(text(1).to_string()),
        ),
        2 if path(1) => (
            listen_port(None, text(0))?,
            Connect::Path(text(1).to_string()),
        ),
        3 if path(0) => (
            Listen::Path(text(0).to_string()),
            connect_port(text(1), text(2))?,
        ),
        3 if path(2) => (
            listen_port(Some(text(0)), text(1))?,
            Connect::Path(text(2).to_string()),
        ),
        3 => (listen_port(None, text(0))?, connect_port(text(1), text(2))?),
        4 => (
            listen_port(Some(text(0)), text(1))?,
            connect_port(text(2), text(3))?,
        ),
        _ => return None,
    };
    if dynamic && !matches!(connect, Connect::Socks) {
        return None;
    }
    if !dynamic && matches!(connect, Connect::Socks) {
        return None;
    }
    Some(Forward { listen, connect })
}

/// Port 0 ("allocate one") is only meaningful on the server side.
fn valid_listen_port(fwd: &Forward, remote: bool) -> bool {
    remote || !matches!(fwd.listen, Listen::Port { port: 0, .. })
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Path(p) => f.write_str(p),
            Listen::Port { bind: None, port } => write!(f, "{port}"),
            Listen::Port {
                bind: Some(b),
                port,
            } => write!(f, "[{b}]:{port}"),
        }
    }
}

impl fmt::Display for Connect {
    /// `[socks]:0` is how `ssh -G` shows a dynamic RemoteForward.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Connect::Socks => f.write_str("[socks]:0"),
            Connect::Port { host, port } => write!(f, "[{host}]:{port}"),
            Connect::Path(p) => f.write_str(p),
        }
    }
}

impl Forward {
    /// The value as `ssh -G` prints it for `kind` (dynamic forwards show
    /// only the listener).
    pub(crate) fn render(&self, kind: ForwardKind) -> String {
        match kind {
            ForwardKind::Dynamic => self.listen.to_string(),
            _ => format!("{} {}", self.listen, self.connect),
        }
    }

    /// Expands `%` tokens in socket paths, as ssh does before using them.
    pub(crate) fn map_paths(
        &self,
        f: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Forward, String> {
        let listen = match &self.listen {
            Listen::Path(p) => Listen::Path(f(p)?),
            other => other.clone(),
        };
        let connect = match &self.connect {
            Connect::Path(p) => Connect::Path(f(p)?),
            other => other.clone(),
        };
        Ok(Forward { listen, connect })
    }
}
