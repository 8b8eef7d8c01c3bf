//! The options collected while reading, with ssh_config(5)'s precedence:
//! "For each parameter, the first obtained value will be used." A few
//! keywords accumulate instead (IdentityFile, CertificateFile, the
//! forwardings, SendEnv).

use std::collections::BTreeMap;

use super::algorithms::{self, AlgorithmDefaults};
use super::expand::check_dollar;
use super::forward::{self, Forward};
use super::jump::{self, JumpSetting};
use super::keywords::{self, Kind};
use super::lexer::Line;
use super::local::parse_port;
use super::pattern::match_pattern;

/// ssh refuses more than this many IdentityFile or CertificateFile entries.
const MAX_FILES: usize = 100;

#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// First-obtained values, by canonical keyword.
    pub values: BTreeMap<&'static str, Vec<String>>,
    /// IdentityFile entries and whether each came from a user configuration
    /// (ssh only drops duplicates from the same kind of file).
    pub identity_files: Vec<(String, bool)>,
    pub certificate_files: Vec<(String, bool)>,
    pub local_forwards: Vec<Forward>,
    pub remote_forwards: Vec<Forward>,
    pub dynamic_forwards: Vec<Forward>,
    pub send_env: Vec<String>,
    pub jump: Option<JumpSetting>,
}

/// What a line is applied with.
pub(crate) struct Apply<'a> {
    pub active: bool,
    pub user_config: bool,
    pub algorithms: &'a AlgorithmDefaults,
}

impl Options {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    fn set_first(&mut self, key: &'static str, values: Vec<String>, active: bool) {
        if active && !self.values.contains_key(key) {
            self.values.insert(key, values);
        }
    }

    /// Applies one line of an ordinary keyword (not Host, Match, Include).
    pub(crate) fn apply(
        &mut self,
        key: &'static str,
        kind: Kind,
        line: &Line,
        ctx: &Apply,
    ) -> Result<(), String> {
        let args = &line.args;
        let first = args.first().map(String::as_str);
        check_arity(kind, line)?;
        match kind {
            Kind::Flag => {
                let v = first
                    .and_then(keywords::flag)
                    .ok_or_else(|| unsupported(first))?;
                self.set_first(key, vec![v.to_string()], ctx.active);
            }
            Kind::Choice(table) => {
                let v = first
                    .and_then(|a| keywords::choice(table, a))
                    .ok_or_else(|| unsupported(first))?;
                self.set_first(key, vec![v.to_string()], ctx.active);
            }
            Kind::Time => {
                let arg = non_empty(first).ok_or("missing time value")?;
                if arg != "none" {
                    let secs = parse_time(arg).ok_or("invalid time value")?;
                    self.set_first(key, vec![secs.to_string()], ctx.active);
                }
            }
            Kind::Int => {
                let arg = non_empty(first).ok_or("integer value missing")?;
                let n: i32 = arg
                    .parse()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or("integer value invalid")?;
                self.set_first(key, vec![n.to_string()], ctx.active);
            }
            Kind::Str | Kind::Args(_) => {
                non_empty(first).ok_or("missing argument")?;
                self.set_first(key, args.clone(), ctx.active);
            }
            Kind::Port => {
                let arg = non_empty(first).ok_or("missing argument")?;
                let port = parse_port(arg)
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("bad port '{arg}'"))?;
                self.set_first(key, vec![port.to_string()], ctx.active);
            }
            Kind::Command => self.set_first(key, vec![command_text(line.rest)], ctx.active),
            Kind::ProxyCommand => self.proxy_command(line, ctx.active),
            Kind::ProxyJump => self.proxy_jump(line, ctx.active)?,
            Kind::List => self.list(key, args, ctx.active)?,
            Kind::Algorithms(class) => {
                let arg = non_empty(first).ok_or("missing argument")?;
                if !algorithms::validate(arg, class, ctx.algorithms.class(class)) {
                    return Err(format!("bad {key} specification '{arg}'"));
                }
                self.set_first(key, vec![arg.to_string()], ctx.active);
            }
            Kind::IdentityFile | Kind::CertificateFile => self.add_file(kind, first, ctx)?,
            Kind::LocalForward | Kind::RemoteForward | Kind::DynamicForward => {
                self.forward(kind, args, ctx.active)?
            }
            Kind::SendEnv => self.send_env(args, ctx.active)?,
            Kind::SetEnv => self.set_env(args, ctx.active)?,
            Kind::ForwardAgent => self.forward_agent(first, ctx.active)?,
            Kind::IdentityAgent => self.identity_agent(first, ctx.active)?,
            Kind::Host | Kind::Match | Kind::Include | Kind::Ignored => {}
        }
        Ok(())
    }

    fn proxy_command(&mut self, line: &Line, active: bool) {
        self.set_first("proxycommand", vec![command_text(line.rest)], active);
    }

    /// ProxyJump and ProxyCommand exclude each other: whichever is obtained
    /// first wins (a jump host stands in for the command). `ProxyJump none`
    /// only stops later ProxyJump lines, as in OpenSSH 10.3 (and the
    /// distributions that carry its fix).
    fn proxy_jump(&mut self, line: &Line, active: bool) -> Result<(), String> {
        let raw = command_text(line.rest);
        let setting = jump::parse(&raw).ok_or_else(|| format!("invalid ProxyJump \"{raw}\""))?;
        if !active || self.jump.is_some() {
            return Ok(());
        }
        match setting {
            JumpSetting::Disabled => self.jump = Some(setting),
            JumpSetting::Hop(_) if !self.values.contains_key("proxycommand") => {
                self.values.insert("proxycommand", vec!["none".to_string()]);
                self.jump = Some(setting);
            }
            JumpSetting::Hop(_) => {}
        }
        Ok(())
    }

    /// Lists where the first line wins as a whole (UserKnownHostsFile, …).
    fn list(&mut self, key: &'static str, args: &[String], active: bool) -> Result<(), String> {
        if args.is_empty() {
            return Err("missing argument".to_string());
        }
        for (i, arg) in args.iter().enumerate() {
            if arg.is_empty() {
                return Err(format!("keyword {key} empty argument"));
            }
            let special = arg.eq_ignore_ascii_case("none")
                || (key == "permitremoteopen" && arg.eq_ignore_ascii_case("any"));
            if special && (i > 0 || args.len() > 1) {
                return Err(format!(
                    "keyword {key} \"{arg}\" argument must appear alone"
                ));
            }
        }
        self.set_first(key, args.to_vec(), active);
        Ok(())
    }

    fn add_file(&mut self, kind: Kind, first: Option<&str>, ctx: &Apply) -> Result<(), String> {
        let arg = non_empty(first).ok_or("missing argument")?;
        if !ctx.active {
            return Ok(());
        }
        let files = if kind == Kind::IdentityFile {
            &mut self.identity_files
        } else {
            &mut self.certificate_files
        };
        if files.len() >= MAX_FILES {
            return Err(format!("too many files specified (max {MAX_FILES})"));
        }
        let entry = (arg.to_string(), ctx.user_config);
        if !files.contains(&entry) {
            files.push(entry);
        }
        Ok(())
    }

    fn forward(&mut self, kind: Kind, args: &[String], active: bool) -> Result<(), String> {
        let listen = non_empty(args.first().map(String::as_str)).ok_or("missing argument")?;
        let target = non_empty(args.get(1).map(String::as_str));
        let remote = kind == Kind::RemoteForward;
        let dynamic = kind == Kind::DynamicForward || (remote && target.is_none());
        if kind == Kind::LocalForward && target.is_none() {
            return Err("missing target argument".to_string());
        }
        let spec = match target {
            Some(t) if !dynamic => format!("{listen}:{t}"),
            _ => listen.to_string(),
        };
        let fwd = forward::parse(&spec, dynamic, remote).ok_or("bad forwarding specification")?;
        if !active {
            return Ok(());
        }
        let list = match kind {
            Kind::LocalForward => &mut self.local_forwards,
            Kind::RemoteForward => &mut self.remote_forwards,
            _ => &mut self.dynamic_forwards,
        };
        if !list.contains(&fwd) {
            list.push(fwd);
        }
        Ok(())
    }

    /// ssh_config(5) SendEnv: "It is possible to clear previously set
    /// SendEnv variable names by prefixing patterns with -."
    fn send_env(&mut self, args: &[String], active: bool) -> Result<(), String> {
        for arg in args {
            if arg.is_empty() || arg.contains('=') {
                return Err("invalid environment name".to_string());
            }
            if !active {
                continue;
            }
            match arg.strip_prefix('-') {
                Some(pattern) => self.send_env.retain(|name| !match_pattern(name, pattern)),
                None => self.send_env.push(arg.clone()),
            }
        }
        Ok(())
    }

    /// SetEnv: the first line that applies wins as a whole; a name repeated
    /// within it keeps its first value.
    fn set_env(&mut self, args: &[String], active: bool) -> Result<(), String> {
        if args.iter().any(|a| !a.contains('=')) {
            return Err("invalid SetEnv".to_string());
        }
        if !active || self.values.contains_key("setenv") {
            return Ok(());
        }
        let mut out: Vec<String> = Vec::new();
        for arg in args {
            let name = arg.split('=').next().unwrap_or("");
            if !out.iter().any(|o| o.split('=').next() == Some(name)) {
                out.push(arg.clone());
            }
        }
        self.values.insert("setenv", out);
        Ok(())
    }

    /// ForwardAgent takes a flag or an agent socket path.
    fn forward_agent(&mut self, first: Option<&str>, active: bool) -> Result<(), String> {
        let arg = non_empty(first).ok_or("missing argument")?;
        match keywords::flag(arg) {
            Some(v) => self.set_first("forwardagent", vec![v.to_string()], active),
            None => {
                check_agent_path(arg)?;
                self.set_first("forwardagent", vec![arg.to_string()], active);
            }
        }
        Ok(())
    }

    fn identity_agent(&mut self, first: Option<&str>, active: bool) -> Result<(), String> {
        let arg = non_empty(first).ok_or("missing argument")?;
        check_agent_path(arg)?;
        self.set_first("identityagent", vec![arg.to_string()], active);
        Ok(())
    }
}

/// ssh_config(5) IdentityAgent: "If the string "SSH_AUTH_SOCK" is specified,
/// the location of the socket will be read from the SSH_AUTH_SOCK
/// environment variable", and `$NAME` must name a variable.
fn check_agent_path(arg: &str) -> Result<(), String> {
    check_dollar(arg).map_err(|e| format!("invalid environment expansion {arg}: {e}"))?;
    if let Some(name) = arg.strip_prefix('$').filter(|n| !n.starts_with('{')) {
        let valid =
            !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !valid {
            return Err(format!("invalid environment name {arg}"));
        }
    }
    Ok(())
}

/// Rejects lines with more arguments than their keyword takes.
fn check_arity(kind: Kind, line: &Line) -> Result<(), String> {
    let max = match kind {
        Kind::Args(n) => n,
        Kind::LocalForward | Kind::RemoteForward => 2,
        Kind::List | Kind::SendEnv | Kind::SetEnv | Kind::Command | Kind::ProxyCommand => {
            return Ok(())
        }
        Kind::ProxyJump | Kind::Ignored | Kind::Host | Kind::Match | Kind::Include => return Ok(()),
        _ => 1,
    };
    if line.args.len() > max {
        return Err(format!(
            "keyword {} extra arguments at end of line",
            line.keyword
        ));
    }
    Ok(())
}

/// The rest of the line as commands take it: no leading whitespace or '='.
fn command_text(rest: &str) -> String {
    rest.trim_start_matches([' ', '\t', '\r', '\n', '='])
        .to_string()
}

fn non_empty(arg: Option<&str>) -> Option<&str> {
    arg.filter(|a| !a.is_empty())
}

fn unsupported(arg: Option<&str>) -> String {
    match arg {
        Some(a) => format!("unsupported option \"{a}\""),
        None => "missing argument".to_string(),
    }
}

/// A time interval as ssh_config(5) "TIME FORMATS" describes: a sequence of
/// numbers each optionally followed by s, m, h, d or w.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: i64 = rest[..digits].parse().ok()?;
        let (mult, used) = match rest.as_bytes().get(digits).map(u8::to_ascii_lowercase) {
            None => (1, 0),
            Some(b's') => (1, 1),
            Some(b'm') => (60, 1),
            Some(b'h') => (3600, 1),
            Some(b'd') => (86_400, 1),
            Some(b'w') => (604_800, 1),
            Some(_) => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
        if total > i64::from(i32::MAX) {
            return None;
        }
        rest = &rest[digits + used..];
    }
    Some(total)
}
