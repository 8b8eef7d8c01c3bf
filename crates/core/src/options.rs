//! Connection options as core sees them: already validated and typed. The binding
//! converts the JS option object into this; `lib/` resolves defaults that read `~/.ssh`.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::channel::BufferLimits;

/// A string that must never be printed: passwords, passphrases.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where a private key comes from (the text itself is never kept beyond parsing).
#[derive(Clone)]
pub enum KeySource {
    Data(Arc<Vec<u8>>),
    Path(PathBuf),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Data(_) => f.write_str("KeySource::Data(<redacted>)"),
            KeySource::Path(p) => write!(f, "KeySource::Path({})", p.display()),
        }
    }
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What the host key callback is shown.
#[derive(Debug, Clone)]
pub struct HostKeyInfo {
    pub host: String,
    pub port: u16,
    pub algorithm: String,
    pub fingerprint: String,
    /// The key as an authorized_keys / known_hosts style `type base64` string.
    pub public_key: String,
}

pub trait HostKeyVerifier: Send + Sync {
    fn verify(&self, key: HostKeyInfo) -> BoxFuture<bool>;
}

#[derive(Clone)]
pub enum HostKeyPolicy {
    /// OpenSSH known_hosts files; `accept_new` appends unknown keys to the first file.
    /// `alias`: the name looked up in (and recorded to) the files instead of the host and
    /// port, like ssh's `HostKeyAlias`.
    KnownHosts { files: Vec<PathBuf>, accept_new: bool, hash: bool, alias: Option<String> },
    /// Pinned SHA256 fingerprints (any of them).
    Fingerprints(Vec<String>),
    Verify(Arc<dyn HostKeyVerifier>),
    InsecureAcceptAny,
}

impl fmt::Debug for HostKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostKeyPolicy::KnownHosts { files, accept_new, hash, alias } => {
                write!(f, "KnownHosts({files:?}, accept_new={accept_new}, hash={hash}, alias={alias:?})")
            }
            HostKeyPolicy::Fingerprints(v) => write!(f, "Fingerprints({v:?})"),
            HostKeyPolicy::Verify(_) => f.write_str("Verify(<callback>)"),
            HostKeyPolicy::InsecureAcceptAny => f.write_str("InsecureAcceptAny"),
        }
    }
}

/// Prompts of one keyboard-interactive round.
#[derive(Debug, Clone)]
pub struct KbdPrompt {
    pub prompt: String,
    pub echo: bool,
}

pub trait KeyboardInteractive: Send + Sync {
    fn respond(&self, name: String, instructions: String, prompts: Vec<KbdPrompt>) -> BoxFuture<Option<Vec<Secret>>>;
}

/// An OpenSSH user certificate. Wherever it is listed, it is presented with the key it
/// certifies, among all the keys and the agent's, as ssh pairs its CertificateFiles. A `found`
/// one (beside a key file, an ssh_config CertificateFile) that cannot be read or certifies
/// none of the keys is left out, as ssh leaves it; a given one is then a ConfigError.
#[derive(Clone, Debug)]
pub struct CertificateSource {
    pub source: KeySource,
    pub found: bool,
}

/// One way to authenticate. The chain tries them in order (see `auth.rs`).
#[derive(Clone)]
pub enum AuthMethod {
    /// A private key. An `optional` key was found rather than given (an ssh_config
    /// IdentityFile, a default `~/.ssh/id_*` file): one that cannot be read or parsed is a
    /// failed attempt, as ssh's "Load key: invalid format", not a ConfigError that stops the
    /// other methods.
    PublicKey { source: KeySource, passphrase: Option<Secret>, certificates: Vec<CertificateSource>, optional: bool },
    /// Every identity of an SSH agent, the copies of the keys listed as PublicKey methods
    /// first (a `.pub` file among those found names a key only the agent holds). With
    /// `identities_only` (ssh's IdentitiesOnly), only those copies and the certificates'.
    Agent { socket: PathBuf, certificates: Vec<CertificateSource>, identities_only: bool },
    Password(Secret),
    KeyboardInteractive(Arc<dyn KeyboardInteractive>),
}

impl AuthMethod {
    pub fn name(&self) -> &'static str {
        match self {
            AuthMethod::PublicKey { .. } => "publickey",
            AuthMethod::Agent { .. } => "agent",
            AuthMethod::Password(_) => "password",
            AuthMethod::KeyboardInteractive(_) => "keyboard-interactive",
        }
    }
}

impl fmt::Debug for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthMethod::PublicKey { source, .. } => write!(f, "PublicKey({source:?})"),
            AuthMethod::Agent { socket, .. } => write!(f, "Agent({})", socket.display()),
            AuthMethod::Password(_) => f.write_str("Password(<redacted>)"),
            AuthMethod::KeyboardInteractive(_) => f.write_str("KeyboardInteractive(<callback>)"),
        }
    }
}

/// Algorithm preferences; `None` keeps ferrossh's default order for that list.
#[derive(Debug, Clone, Default)]
pub struct Algorithms {
    pub kex: Option<Vec<String>>,
    pub cipher: Option<Vec<String>>,
    pub mac: Option<Vec<String>>,
    pub host_key: Option<Vec<String>>,
    pub compression: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct PtyOptions {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
    pub width_px: u32,
    pub height_px: u32,
    /// RFC 4254 §8 opcode/value pairs.
    pub modes: Vec<(u8, u32)>,
}

impl Default for PtyOptions {
    fn default() -> Self {
        PtyOptions { term: "xterm-256color".into(), cols: 80, rows: 24, width_px: 0, height_px: 0, modes: Vec::new() }
    }
}

/// Receives trace lines (like `ssh -v`); secrets never reach it.
#[derive(Clone)]
pub struct Trace(pub Arc<dyn Fn(String) + Send + Sync>);

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Trace(<callback>)")
    }
}

impl Trace {
    pub fn emit(t: &Option<Trace>, line: impl FnOnce() -> String) {
        if let Some(t) = t {
            (t.0)(line());
        }
    }
}

/// How the SSH server is reached.
#[derive(Clone, Default)]
pub enum Route {
    #[default]
    Direct,
    /// `socks5://…`, `socks4a://…`, `http://…` (CONNECT)
    Proxy(crate::transport::ProxyUrl),
    /// A command whose stdin/stdout carry the connection (`%h %p %r %n %%` expanded).
    ProxyCommand { template: String, original_host: String },
    /// A direct-tcpip channel of another connection (a jump host). `owned`: closing this
    /// connection closes that one too.
    Via { parent: Arc<crate::client::Client>, owned: bool },
    /// An already connected stream supplied by the caller (taken once).
    Stream(Arc<std::sync::Mutex<Option<tokio::io::DuplexStream>>>),
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Direct => f.write_str("Direct"),
            Route::Proxy(p) => write!(f, "Proxy({p:?})"),
            Route::ProxyCommand { template, .. } => write!(f, "ProxyCommand({template:?})"),
            Route::Via { parent, owned } => write!(f, "Via({}:{}, owned={owned})", parent.host(), parent.port()),
            Route::Stream(_) => f.write_str("Stream"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub auth: Vec<AuthMethod>,
    pub host_key: HostKeyPolicy,
    pub algorithms: Algorithms,
    pub connect_timeout: Option<Duration>,
    pub keepalive_interval: Option<Duration>,
    pub keepalive_count_max: usize,
    pub max_sessions: usize,
    pub buffer: BufferLimits,
    pub nodelay: bool,
    /// Local agent socket for agent forwarding; None disables it.
    pub agent_forward: Option<PathBuf>,
    /// Request agent forwarding on every session, not only those that ask.
    pub agent_forward_all: bool,
    pub trace: Option<Trace>,
    pub route: Route,
}

impl ConnectOptions {
    pub fn new(host: impl Into<String>, username: impl Into<String>) -> Self {
        ConnectOptions {
            host: host.into(),
            port: 22,
            username: username.into(),
            auth: Vec::new(),
            host_key: HostKeyPolicy::KnownHosts { files: Vec::new(), accept_new: false, hash: false, alias: None },
            algorithms: Algorithms::default(),
            connect_timeout: Some(Duration::from_secs(20)),
            keepalive_interval: None,
            keepalive_count_max: 3,
            max_sessions: 10,
            buffer: BufferLimits::default(),
            nodelay: true,
            agent_forward: None,
            agent_forward_all: false,
            trace: None,
            route: Route::Direct,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let m = AuthMethod::Password(Secret::new("hunter2"));
        assert!(!format!("{m:?}").contains("hunter2"));
        let k = AuthMethod::PublicKey {
            source: KeySource::Data(Arc::new(b"-----BEGIN OPENSSH PRIVATE KEY-----".to_vec())),
            passphrase: Some(Secret::new("pp")),
            certificates: Vec::new(),
            optional: false,
        };
        let s = format!("{k:?}");
        assert!(!s.contains("BEGIN") && !s.contains("pp)"), "{s}");
    }
}

/// Why `host` cannot name a server, if it cannot: the characters OpenSSH's `ssh` refuses in a
/// host name (a leading `-`, whitespace, control characters and the shell's metacharacters),
/// because a host name reaches a shell through `%h` in a ProxyCommand or `Match exec`. No
/// real host name or address contains them.
pub fn host_name_problem(host: &str) -> Option<&'static str> {
    if host.starts_with('-') {
        return Some("starts with '-'");
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("contains whitespace or control characters");
    }
    if host.contains(['\'', '`', '"', '$', '\\', ';', '&', '<', '>', '|', '(', ')', '{', '}', ',']) {
        return Some("contains characters a shell would act on ('`\"$\\;&<>|(){},)");
    }
    None
}

/// Why `user` cannot be a remote user name, if it cannot: what OpenSSH's `ssh` refuses (a
/// leading `-`, control characters, the shell's quoting and command characters, a `-`
/// after whitespace, a trailing `\`), because `%r` reaches a shell the same way.
pub fn user_name_problem(user: &str) -> Option<&'static str> {
    if user.starts_with('-') {
        return Some("starts with '-'");
    }
    if user.chars().any(|c| c.is_control()) {
        return Some("contains control characters");
    }
    if user.contains(['\'', '`', '"', ';', '&', '<', '>', '|', '(', ')', '{', '}']) {
        return Some("contains characters a shell would act on ('`\";&<>|(){})");
    }
    let b = user.as_bytes();
    if b.windows(2).any(|w| (w[0] as char).is_ascii_whitespace() && w[1] == b'-') {
        return Some("has a '-' after whitespace");
    }
    if user.ends_with('\\') {
        return Some("ends with '\\'");
    }
    None
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn host_names_that_would_reach_a_shell_are_refused_as_ssh_refuses_them() {
        for ok in ["example.com", "10.0.0.1", "::1", "fe80::1%eth0", "host_name", "xn--bcher-kva.example", "a.b-c"] {
            assert_eq!(host_name_problem(ok), None, "{ok}");
        }
        for bad in ["-oProxyCommand=x", "$(touch x)", "a;b", "a|b", "a`b`", "a'b", "a\"b", "a\\b", "a&b", "a<b", "a>b", "a(b)", "a{b}", "a,b", "a b", "a\nb", "a\0b"] {
            assert!(host_name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn user_names_that_would_reach_a_shell_are_refused_as_ssh_refuses_them() {
        for ok in ["deploy", "first.last", "DOMAIN\\user", "user@realm", "x$", "with space", "a-b"] {
            assert_eq!(user_name_problem(ok), None, "{ok}");
        }
        for bad in ["-oProxyCommand=x", "$(x)".replace('$', "`").as_str(), "a;b", "a|b", "a'b", "a\"b", "a&b", "a<b", "a>b", "a(b", "a{b", "x -oFoo", "trailing\\", "a\tb\n"] {
            assert!(user_name_problem(bad).is_some(), "{bad:?}");
        }
    }
}
