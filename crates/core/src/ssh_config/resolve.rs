//! The resolution driver: which files are read, and the second pass.
//!
//! ssh_config(5) Match final: "Requests that the configuration be re-parsed
//! after hostname canonicalization (see the CanonicalizeHostname option).
//! This may be useful to specify conditions that work with canonical host
//! names only." ssh also re-parses whenever CanonicalizeHostname is on.
//! Nothing obtained in the first pass is forgotten: the second pass only
//! fills in what is still unset.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::algorithms::AlgorithmDefaults;
use super::expand::percent_expand;
use super::finish::finish;
use super::local;
use super::options::Options;
use super::reader::{user_config_path, Flags, Reader};
use super::{ConfigError, ResolveOptions, ResolvedConfig};

/// The local facts and tables resolution depends on.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub home: String,
    pub local_user: String,
    pub uid: Option<u32>,
    pub this_host: String,
    pub algorithms: AlgorithmDefaults,
    /// Where relative Include paths of the system configuration point.
    pub system_dir: PathBuf,
    pub stop: Option<crate::CancelToken>,
}

impl Env {
    pub(crate) fn new(opts: &ResolveOptions) -> Env {
        let uid = opts.uid.or_else(local::current_uid);
        let needs_lookup = opts.home.is_none() || opts.local_user.is_none();
        let found = if needs_lookup {
            Some(local::current_user(uid))
        } else {
            None
        };
        let home = opts.home.as_ref().map(|h| h.to_string_lossy().into_owned());
        let user = opts.local_user.clone();
        Env {
            home: home
                .or_else(|| found.as_ref().map(|f| f.home.clone()))
                .unwrap_or_default(),
            local_user: user
                .or_else(|| found.as_ref().map(|f| f.name.clone()))
                .unwrap_or_default(),
            uid,
            this_host: opts.local_hostname.clone().unwrap_or_else(local::this_host),
            algorithms: opts.algorithms.clone().unwrap_or_default(),
            system_dir: system_file(opts)
                .parent()
                .map_or_else(|| PathBuf::from("/etc/ssh"), Path::to_path_buf),
            stop: opts.stop.clone(),
        }
    }

    /// `%i`: the local uid, or empty when it cannot be known.
    pub(crate) fn uid_string(&self) -> String {
        self.uid.map(|u| u.to_string()).unwrap_or_default()
    }
}

fn system_file(opts: &ResolveOptions) -> PathBuf {
    opts.system_file
        .clone()
        .unwrap_or_else(|| PathBuf::from("/etc/ssh/ssh_config"))
}

/// One configuration source, read at the start of each pass.
pub(crate) enum Source<'t> {
    /// A file that must exist (`-F`).
    Required(PathBuf),
    /// A file read if it exists (~/.ssh/config, /etc/ssh/ssh_config).
    Optional(PathBuf, Flags),
    /// Text standing in for the user configuration.
    Text(&'t str),
}

const USER: Flags = Flags {
    user_config: true,
    check_perm: false,
    never_match: false,
};

/// The sources `ssh` would read: `-F file`, or the user's file; then the
/// system file when asked for.
pub(crate) fn sources<'t>(
    opts: &ResolveOptions,
    env: &Env,
    text: Option<&'t str>,
) -> Vec<Source<'t>> {
    let mut out = Vec::new();
    match (text, &opts.file) {
        (Some(t), _) => out.push(Source::Text(t)),
        (None, Some(file)) => out.push(Source::Required(file.clone())),
        (None, None) => out.push(Source::Optional(
            user_config_path(&env.home),
            Flags {
                check_perm: true,
                ..USER
            },
        )),
    }
    if opts.include_system {
        out.push(Source::Optional(
            system_file(opts),
            Flags {
                user_config: false,
                ..USER
            },
        ));
    }
    out
}

/// Resolves `host` against the sources.
pub(crate) fn run(
    host: &str,
    sources: &[Source],
    env: &Env,
    opts: &ResolveOptions,
) -> Result<ResolvedConfig, ConfigError> {
    // as ssh refuses them on its command line: the host and user reach a shell through `%h`
    // and `%r` in `Match exec` (run while reading) and in the ProxyCommand
    if let Some(why) = crate::options::host_name_problem(host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)) {
        return Err(ConfigError { message: format!("host {host:?} {why}"), file: None, line: None });
    }
    if let Some(why) = opts.user.as_deref().and_then(crate::options::user_name_problem) {
        return Err(ConfigError { message: format!("user name {:?} {why}", opts.user.as_deref().unwrap_or_default()), file: None, line: None });
    }
    let mut options = Options::default();
    if let Some(user) = &opts.user {
        options.values.insert("user", vec![user.clone()]);
    }
    if let Some(port) = opts.port {
        options.values.insert("port", vec![port.to_string()]);
    }
    let wants_final = read_pass(&mut options, env, sources, host, host, false)?;
    let hostname = effective_hostname(&options, host)?;
    let canonicalize = options
        .get("canonicalizehostname")
        .is_some_and(|v| v != "false");
    if wants_final || canonicalize {
        options.values.insert("hostname", vec![hostname.clone()]);
        read_pass(&mut options, env, sources, &hostname, host, true)?;
    }
    finish(options, env, host, &hostname)
}

/// Reads every source once; returns whether `Match final` was seen.
fn read_pass(
    options: &mut Options,
    env: &Env,
    sources: &[Source],
    host: &str,
    original: &str,
    final_pass: bool,
) -> Result<bool, ConfigError> {
    let mut reader = Reader {
        env,
        options,
        host: host.to_string(),
        original_host: original.to_string(),
        final_pass,
        wants_final: false,
    };
    for source in sources {
        // Each file starts outside any Host or Match block.
        let mut active = true;
        match source {
            Source::Text(text) => reader.read_text(text, None, USER, &mut active, 0)?,
            Source::Optional(path, flags) => {
                reader.read_file(path, *flags, &mut active, 0)?;
            }
            Source::Required(path) => {
                if !reader.read_file(path, USER, &mut active, 0)? {
                    let message = "can't open user config file: not found".to_string();
                    return Err(ConfigError {
                        message,
                        file: Some(path.clone()),
                        line: None,
                    });
                }
            }
        }
    }
    Ok(reader.wants_final)
}

/// ssh_config(5) Hostname: "Specifies the real host name to log into."
/// "Hostname accepts the tokens %% and %h." Names are lowercased; numeric
/// addresses are written in their canonical form instead.
fn effective_hostname(options: &Options, host: &str) -> Result<String, ConfigError> {
    let name = match options.get("hostname") {
        Some(h) => percent_expand(h, &[('h', host)], false).map_err(|message| ConfigError {
            message,
            file: None,
            line: None,
        })?,
        None => host.to_string(),
    };
    Ok(normalize_host(&name))
}

fn normalize_host(name: &str) -> String {
    if let Some(addr) = parse_address(name) {
        let canonical = addr.to_string();
        return if canonical.eq_ignore_ascii_case(name) {
            name.to_string()
        } else {
            canonical
        };
    }
    // Names that can only be addresses keep their case (ssh's is_addr_fast).
    let looks_numeric =
        name.contains(['%', ':']) || name.bytes().all(|c| c.is_ascii_digit() || c == b'.');
    if looks_numeric {
        name.to_string()
    } else {
        name.to_ascii_lowercase()
    }
}

/// A numeric address as getaddrinfo(AI_NUMERICHOST) reads it, including
/// the inet_aton forms such as `127.1` or `0x7f.0.0.1`.
fn parse_address(name: &str) -> Option<IpAddr> {
    if let Ok(addr) = name.parse::<IpAddr>() {
        return Some(addr);
    }
    let parts: Vec<u32> = name
        .split('.')
        .map(parse_aton_part)
        .collect::<Option<_>>()?;
    let value = match parts.as_slice() {
        [a] => *a,
        [a, b] if *a < 256 && *b < (1 << 24) => (a << 24) | b,
        [a, b, c] if *a < 256 && *b < 256 && *c < (1 << 16) => (a << 24) | (b << 16) | c,
        [a, b, c, d] if [a, b, c, d].iter().all(|p| **p < 256) => {
            (a << 24) | (b << 16) | (c << 8) | d
        }
        _ => return None,
    };
    Some(IpAddr::V4(Ipv4Addr::from(value)))
}

fn parse_aton_part(p: &str) -> Option<u32> {
    if let Some(hex) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    if p.len() > 1 && p.starts_with('0') {
        return u32::from_str_radix(&p[1..], 8).ok();
    }
    p.parse()
        .ok()
        .filter(|_| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}
