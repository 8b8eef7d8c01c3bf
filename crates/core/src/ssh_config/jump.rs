//! ProxyJump: "Specifies one or more jump proxies as either
//! [user@]host[:port] or an ssh URI. Multiple proxies may be separated by
//! comma characters and will be visited sequentially." (ssh_config(5)).
//! "The special value none disables the use of ProxyJump."

use super::local::parse_port;

/// A ProxyJump setting as ssh keeps it: the last hop parsed, the earlier
/// hops kept as text (ssh hands them to the next `ssh -J`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JumpSetting {
    /// `ProxyJump none`
    Disabled,
    Hop(Jump),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Jump {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The hops before the last one, unparsed.
    pub extra: Option<String>,
}

/// Parses the raw ProxyJump argument; `None` if any hop is malformed.
/// A trailing comment is not part of the value.
pub(crate) fn parse(raw: &str) -> Option<JumpSetting> {
    if raw.eq_ignore_ascii_case("none") {
        return Some(JumpSetting::Disabled);
    }
    let spec = raw.split('#').next().unwrap_or("").trim_end();
    let mut hops = spec.rsplit(',');
    let last = parse_hop(hops.next()?)?;
    for hop in hops {
        parse_hop(hop)?;
    }
    let extra = spec.rfind(',').map(|i| spec[..i].to_string());
    Some(JumpSetting::Hop(Jump {
        user: last.0,
        host: last.1,
        port: last.2,
        extra,
    }))
}

type Hop = (Option<String>, String, Option<u16>);

fn parse_hop(s: &str) -> Option<Hop> {
    match s.strip_prefix("ssh://") {
        Some(uri) => parse_uri(uri),
        None => parse_user_host_port(s),
    }
}

/// `[user@]host[:port]`, the user being everything before the last '@'.
fn parse_user_host_port(s: &str) -> Option<Hop> {
    let (user, rest) = match s.rfind('@') {
        Some(0) => return None,
        Some(i) => (Some(s[..i].to_string()), &s[i + 1..]),
        None => (None, s),
    };
    let (host, port_text, _) = split_host(rest)?;
    let port = match port_text {
        Some(p) if !p.is_empty() => Some(parse_port(p).filter(|p| *p > 0)?),
        _ => None,
    };
    Some((user, host, port))
}

/// `ssh://[user[;params]@]host[:port]` (no path allowed), per
/// draft-ietf-secsh-scp-sftp-ssh-uri; the user may be %-encoded.
fn parse_uri(uri: &str) -> Option<Hop> {
    let (user, rest) = match uri.find('@') {
        Some(i) => {
            let user = uri[..i].split(';').next().unwrap_or("");
            if user.is_empty() {
                return None;
            }
            (Some(url_decode(user)?), &uri[i + 1..])
        }
        None => (None, uri),
    };
    let (host, tail, delim) = split_host(rest)?;
    if !valid_domain(&host) {
        return None;
    }
    let mut port = None;
    let mut path = tail;
    if delim == Some(':') {
        let t = tail.unwrap_or("");
        let (p, after) = match t.find('/') {
            Some(i) => (&t[..i], Some(&t[i + 1..])),
            None => (t, None),
        };
        port = Some(parse_port(p).filter(|p| *p > 0)?);
        path = after;
    }
    if path.is_some_and(|p| !p.is_empty()) {
        return None;
    }
    Some((user, host, port))
}

/// Splits `host[:rest]` or `[v6addr][:rest]`; returns the host without
/// brackets, what follows the delimiter, and the delimiter (':' or '/').
fn split_host(s: &str) -> Option<(String, Option<&str>, Option<char>)> {
    let end = if s.starts_with('[') {
        s.find(']')? + 1
    } else {
        s.find([':', '/']).unwrap_or(s.len())
    };
    let (host, after) = s.split_at(end);
    let (rest, delim) = match after.chars().next() {
        None => (None, None),
        Some(c @ (':' | '/')) => (Some(&after[1..]), Some(c)),
        Some(_) => return None,
    };
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => inner,
        None => host,
    };
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), rest, delim))
}

fn valid_domain(name: &str) -> bool {
    let b = name.as_bytes();
    let Some(first) = b.first() else { return false };
    if !first.is_ascii_alphanumeric() || name.contains("..") {
        return false;
    }
    b.iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
}

fn url_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

impl Jump {
    /// The value as `ssh -G` prints it: numeric hosts in brackets.
    pub(crate) fn render(&self) -> String {
        let numeric =
            self.host.contains(':') || self.host.bytes().all(|c| c.is_ascii_digit() || c == b'.');
        let mut out = String::new();
        if let Some(extra) = &self.extra {
            out.push_str(extra);
            out.push(',');
        }
        if let Some(user) = &self.user {
            out.push_str(user);
            out.push('@');
        }
        if numeric {
            out.push_str(&format!("[{}]", self.host));
        } else {
            out.push_str(&self.host);
        }
        if let Some(port) = self.port {
            out.push_str(&format!(":{port}"));
        }
        out
    }
}
