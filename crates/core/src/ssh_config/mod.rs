//! OpenSSH client configuration (ssh_config(5)): parsing and resolution of
//! the options that apply to one host, with the results `ssh -G` shows.
//!
//! ```no_run
//! use ferrossh_core::ssh_config::{resolve, ResolveOptions};
//!
//! let cfg = resolve("db.internal", &ResolveOptions::default())?;
//! println!("{}@{}:{}", cfg.user(), cfg.hostname(), cfg.port());
//! for key in cfg.get_all("identityfile") {
//!     println!("try {key}");
//! }
//! # Ok::<(), ferrossh_core::ssh_config::ConfigError>(())
//! ```
//!
//! Values are stored under lowercase keyword names, normalised the way
//! `ssh -G` prints them (flags as yes/no, times in seconds, algorithm lists
//! fully assembled). Paths that ssh expands before use (IdentityFile,
//! CertificateFile, UserKnownHostsFile, ControlPath, IdentityAgent) are
//! returned expanded; ProxyCommand and LocalCommand are returned as written
//! because their tokens depend on the connection (see [`Tokens`]).

mod algorithms;
mod expand;
mod finish;
mod forward;
mod glob;
mod jump;
mod keywords;
mod lexer;
mod local;
mod matching;
mod options;
mod pattern;
mod reader;
mod resolve;
mod sha1;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use algorithms::{AlgorithmDefaults, AlgorithmList};
pub use expand::Tokens;
pub use forward::{Connect, Forward, Listen};

/// How to resolve: which files, and the facts ssh would take from the
/// command line and the system.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// A configuration file to read instead of `~/.ssh/config`, like
    /// `ssh -F`. It must exist. `None` reads `~/.ssh/config` if present.
    pub file: Option<PathBuf>,
    /// The remote user given explicitly (`ssh -l`); wins over `User`.
    pub user: Option<String>,
    /// The port given explicitly (`ssh -p`); wins over `Port`.
    pub port: Option<u16>,
    /// Home directory for `~` and `%d`; default: the password database
    /// entry of the current user, then `$HOME`.
    pub home: Option<PathBuf>,
    /// Local user name for `%u` and `Match localuser`.
    pub local_user: Option<String>,
    /// Also read the system-wide file after the user's. ssh does so unless
    /// `-F` is given.
    pub include_system: bool,
    /// The system-wide file; default `/etc/ssh/ssh_config`.
    pub system_file: Option<PathBuf>,
    /// Local host name for `%l`, `%L` and `%C`; default: the kernel's.
    pub local_hostname: Option<String>,
    /// Local uid for `%i` and the ownership check on included files.
    pub uid: Option<u32>,
    /// Default and supported algorithms; default: OpenSSH 9.2's.
    pub algorithms: Option<AlgorithmDefaults>,
    /// Once cancelled, a running `Match exec` command is killed and resolution fails (a
    /// connect that timed out or was aborted meanwhile).
    pub stop: Option<crate::CancelToken>,
}

impl Default for ResolveOptions {
    /// Resolves as a plain `ssh host` would: user then system configuration.
    fn default() -> Self {
        ResolveOptions {
            file: None,
            user: None,
            port: None,
            home: None,
            local_user: None,
            include_system: true,
            system_file: None,
            local_hostname: None,
            uid: None,
            algorithms: None,
            stop: None,
        }
    }
}

/// A configuration that cannot be used, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub message: String,
    pub file: Option<PathBuf>,
    /// 1-based line number.
    pub line: Option<usize>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: {}", file.display(), self.message),
            (Some(file), None) => write!(f, "{}: {}", file.display(), self.message),
            (None, Some(line)) => write!(f, "line {line}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every option that applies to one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedConfig {
    values: BTreeMap<String, Vec<String>>,
    tokens: Tokens,
    local_forwards: Vec<Forward>,
    remote_forwards: Vec<Forward>,
    dynamic_forwards: Vec<Forward>,
}

impl ResolvedConfig {
    /// The first value of a keyword (any case), if it has one.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.get_all(key).first().map(String::as_str)
    }

    /// All values of a keyword: one per entry for the accumulating keywords
    /// (IdentityFile, CertificateFile, the forwardings, SendEnv, SetEnv),
    /// one per file for UserKnownHostsFile and GlobalKnownHostsFile.
    pub fn get_all(&self, key: &str) -> &[String] {
        let key = key.to_ascii_lowercase();
        self.values.get(&key).map_or(&[], Vec::as_slice)
    }

    /// The host to connect to (HostName, or the name given).
    pub fn hostname(&self) -> String {
        self.get("hostname").unwrap_or_default().to_string()
    }

    /// The remote user (`-l`, then User, then the local user).
    pub fn user(&self) -> String {
        self.get("user").unwrap_or_default().to_string()
    }

    /// The remote port (`-p`, then Port, then 22).
    pub fn port(&self) -> u16 {
        self.get("port").and_then(|p| p.parse().ok()).unwrap_or(22)
    }

    /// Every keyword with its values, sorted by keyword.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The `%` token values for this connection, for expanding
    /// ProxyCommand and LocalCommand when they are used.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// LocalForward entries, in order.
    pub fn local_forwards(&self) -> &[Forward] {
        &self.local_forwards
    }

    /// RemoteForward entries; a [`Connect::Socks`] one is a dynamic remote forward.
    pub fn remote_forwards(&self) -> &[Forward] {
        &self.remote_forwards
    }

    /// DynamicForward entries (always [`Connect::Socks`]).
    pub fn dynamic_forwards(&self) -> &[Forward] {
        &self.dynamic_forwards
    }
}

/// Resolves the configuration for `host` from the files `opts` names.
pub fn resolve(host: &str, opts: &ResolveOptions) -> Result<ResolvedConfig, ConfigError> {
    let env = resolve::Env::new(opts);
    let sources = resolve::sources(opts, &env, None);
    resolve::run(host, &sources, &env, opts)
}

/// Resolves `host` with `text` as the user configuration (instead of
/// `opts.file` or `~/.ssh/config`). Errors in `text` carry no file name.
pub fn resolve_str(
    host: &str,
    text: &str,
    opts: &ResolveOptions,
) -> Result<ResolvedConfig, ConfigError> {
    let env = resolve::Env::new(opts);
    let sources = resolve::sources(opts, &env, Some(text));
    resolve::run(host, &sources, &env, opts)
}
