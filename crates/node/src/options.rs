//! JS option objects → core options. lib/ has already applied defaults, the auth order
//! and ~/.ssh lookups; this only checks types and ranges and converts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferrossh_core::{
    Algorithms, AuthMethod, BufferLimits, CertificateSource, ConnectOptions, Error, HostKeyInfo, HostKeyPolicy, HostKeyVerifier,
    KbdPrompt, KeySource, KeyboardInteractive, PtyOptions, Secret,
};
use napi::bindgen_prelude::{Buffer, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use napi_derive::napi;

#[napi(object)]
#[derive(Default)]
pub struct NativeAlgorithms {
    pub kex: Option<Vec<String>>,
    pub cipher: Option<Vec<String>>,
    pub mac: Option<Vec<String>>,
    pub host_key: Option<Vec<String>>,
    pub compression: Option<Vec<String>>,
}

pub fn algorithms_to_js(a: Algorithms) -> NativeAlgorithms {
    NativeAlgorithms { kex: a.kex, cipher: a.cipher, mac: a.mac, host_key: a.host_key, compression: a.compression }
}

/// One authentication method, in the order lib/ wants them tried.
#[napi(object)]
pub struct NativeAuthMethod {
    /// 'publickey' | 'password' | 'keyboard-interactive'
    pub kind: String,
    pub private_key: Option<Buffer>,
    pub private_key_path: Option<String>,
    pub passphrase: Option<String>,
    pub password: Option<String>,
    /// 'agent': the agent socket
    pub agent_socket: Option<String>,
    /// OpenSSH user certificates (text) and certificate files given, for 'publickey' and
    /// 'agent': each is presented with the key it certifies, one of the method list's keys or
    /// the agent's
    pub certificates: Option<Vec<Buffer>>,
    pub certificate_paths: Option<Vec<String>>,
    /// Certificate files found (beside a key file, ssh_config CertificateFile): one that
    /// cannot be read or certifies none of the keys is left out
    pub found_certificate_paths: Option<Vec<String>>,
    /// 'agent': offer only the agent's copies of the method list's keys (ssh's IdentitiesOnly)
    pub identities_only: Option<bool>,
    /// 'publickey': the key was found (ssh_config IdentityFile, default ~/.ssh/id_*), not
    /// given; one that cannot be loaded is a failed attempt instead of a ConfigError
    pub optional: Option<bool>,
}

#[napi(object)]
pub struct NativeConnectOptions {
    pub host: String,
    pub port: u32,
    pub username: String,
    pub auth: Vec<NativeAuthMethod>,
    /// 'knownHosts' | 'fingerprint' | 'verify' | 'insecure'
    pub host_key_mode: String,
    pub known_hosts: Option<Vec<String>>,
    pub accept_new: Option<bool>,
    pub hash_known_hosts: Option<bool>,
    /// The name known_hosts is searched (and written) under instead of host and port.
    pub host_key_alias: Option<String>,
    pub fingerprints: Option<Vec<String>>,
    pub algorithms: Option<NativeAlgorithms>,
    pub connect_timeout_ms: Option<f64>,
    pub keepalive_interval_ms: Option<f64>,
    pub keepalive_count_max: Option<u32>,
    pub max_sessions: Option<u32>,
    pub high_water_mark: Option<f64>,
    /// Local agent socket reachable by forwarded agent channels.
    pub agent_socket: Option<String>,
    /// Request agent forwarding on every session.
    pub agent_forward_all: Option<bool>,
    /// `socks5://…`, `socks4://…`, `socks4a://…`, `http://…`
    pub proxy: Option<String>,
    /// Run through the shell; `%h %p %r %n %%` expanded.
    pub proxy_command: Option<String>,
    /// The name the user gave (for %n), before HostName.
    pub original_host: Option<String>,
}

#[napi(object)]
#[derive(Clone)]
pub struct NativeHostKeyInfo {
    pub host: String,
    pub port: u32,
    pub algorithm: String,
    pub fingerprint: String,
    pub public_key: String,
}

impl From<HostKeyInfo> for NativeHostKeyInfo {
    fn from(h: HostKeyInfo) -> Self {
        NativeHostKeyInfo { host: h.host, port: h.port as u32, algorithm: h.algorithm, fingerprint: h.fingerprint, public_key: h.public_key }
    }
}

#[napi(object)]
pub struct NativePrompt {
    pub prompt: String,
    pub echo: bool,
}

#[napi(object)]
pub struct NativeKbdRequest {
    pub name: String,
    pub instructions: String,
    pub prompts: Vec<NativePrompt>,
}

pub type VerifyFn = ThreadsafeFunction<NativeHostKeyInfo, Promise<bool>, NativeHostKeyInfo, Status, false>;
pub type KbdFn = ThreadsafeFunction<NativeKbdRequest, Promise<Option<Vec<String>>>, NativeKbdRequest, Status, false>;

struct JsVerifier(Arc<VerifyFn>);

impl HostKeyVerifier for JsVerifier {
    fn verify(&self, key: HostKeyInfo) -> ferrossh_core::options::BoxFuture<bool> {
        let f = Arc::clone(&self.0);
        Box::pin(async move {
            match f.call_async_catch(key.into()).await {
                Ok(promise) => promise.await.unwrap_or(false),
                Err(_) => false,
            }
        })
    }
}

struct JsKbd(Arc<KbdFn>);

impl KeyboardInteractive for JsKbd {
    fn respond(&self, name: String, instructions: String, prompts: Vec<KbdPrompt>) -> ferrossh_core::options::BoxFuture<Option<Vec<Secret>>> {
        let f = Arc::clone(&self.0);
        let req = NativeKbdRequest {
            name,
            instructions,
            prompts: prompts.into_iter().map(|p| NativePrompt { prompt: p.prompt, echo: p.echo }).collect(),
        };
        Box::pin(async move {
            match f.call_async_catch(req).await {
                Ok(promise) => promise.await.ok().flatten().map(|v| v.into_iter().map(Secret::new).collect()),
                Err(_) => None,
            }
        })
    }
}

fn ms(option: &str, v: Option<f64>) -> Result<Option<Duration>, Error> {
    match v {
        None => Ok(None),
        // a fraction is rounded up: 0 alone means none, and 0.5 must not become it (or a 0 ms timer)
        Some(x) if x.is_finite() && x >= 0.0 && x <= 2_147_483_647.0 => Ok(if x == 0.0 { None } else { Some(Duration::from_millis(x.ceil() as u64)) }),
        Some(x) => Err(Error::config(option, format!("{option} must be a number of milliseconds between 0 and 2147483647, got {x}"))),
    }
}

fn auth_method(m: NativeAuthMethod, kbd: &Option<Arc<KbdFn>>) -> Result<AuthMethod, Error> {
    let passphrase = m.passphrase.map(Secret::new);
    let given = m.certificates.unwrap_or_default().into_iter().map(|d| CertificateSource { source: KeySource::Data(Arc::new(d.to_vec())), found: false });
    let paths = m.certificate_paths.unwrap_or_default().into_iter().map(|p| CertificateSource { source: KeySource::Path(PathBuf::from(p)), found: false });
    let found = m.found_certificate_paths.unwrap_or_default().into_iter().map(|p| CertificateSource { source: KeySource::Path(PathBuf::from(p)), found: true });
    let certificates: Vec<CertificateSource> = given.chain(paths).chain(found).collect();
    match m.kind.as_str() {
        "agent" => match m.agent_socket {
            Some(socket) if !socket.is_empty() => Ok(AuthMethod::Agent { socket: PathBuf::from(socket), certificates, identities_only: m.identities_only.unwrap_or(false) }),
            _ => Err(Error::config("agent", "agent authentication needs the agent socket (SSH_AUTH_SOCK)")),
        },
        "publickey" => {
            let source = match (m.private_key, m.private_key_path) {
                (Some(data), _) => KeySource::Data(Arc::new(data.to_vec())),
                (None, Some(path)) => KeySource::Path(PathBuf::from(path)),
                (None, None) => return Err(Error::config("privateKey", "a publickey method needs privateKey or privateKeyPath")),
            };
            Ok(AuthMethod::PublicKey { source, passphrase, certificates, optional: m.optional.unwrap_or(false) })
        }
        "password" => match m.password {
            Some(p) => Ok(AuthMethod::Password(Secret::new(p))),
            None => Err(Error::config("password", "password method without a password")),
        },
        "keyboard-interactive" => match kbd {
            Some(f) => Ok(AuthMethod::KeyboardInteractive(Arc::new(JsKbd(Arc::clone(f))))),
            None => Err(Error::config("keyboardInteractive", "keyboardInteractive must be a function")),
        },
        other => Err(Error::config("authOrder", format!("unknown authentication method {other:?}"))),
    }
}

pub fn connect_options(o: NativeConnectOptions, verify: Option<VerifyFn>, kbd: Option<KbdFn>) -> Result<ConnectOptions, Error> {
    if o.port == 0 || o.port > 65535 {
        return Err(Error::config("port", format!("port must be between 1 and 65535, got {}", o.port)));
    }
    let mut c = ConnectOptions::new(o.host, o.username);
    c.port = o.port as u16;
    let kbd = kbd.map(Arc::new);
    c.auth = o.auth.into_iter().map(|m| auth_method(m, &kbd)).collect::<Result<_, _>>()?;
    c.host_key = match o.host_key_mode.as_str() {
        "knownHosts" => HostKeyPolicy::KnownHosts {
            files: o.known_hosts.unwrap_or_default().into_iter().map(PathBuf::from).collect(),
            accept_new: o.accept_new.unwrap_or(false),
            hash: o.hash_known_hosts.unwrap_or(false),
            alias: o.host_key_alias,
        },
        "fingerprint" => {
            let f = o.fingerprints.unwrap_or_default();
            if f.is_empty() {
                return Err(Error::config("hostKey.fingerprint", "at least one fingerprint is required"));
            }
            HostKeyPolicy::Fingerprints(f)
        }
        "verify" => match verify {
            Some(v) => HostKeyPolicy::Verify(Arc::new(JsVerifier(Arc::new(v)))),
            None => return Err(Error::config("hostKey.verify", "hostKey.verify must be a function")),
        },
        "insecure" => HostKeyPolicy::InsecureAcceptAny,
        other => return Err(Error::config("hostKey", format!("unknown host key mode {other:?}"))),
    };
    if let Some(a) = o.algorithms {
        c.algorithms = Algorithms { kex: a.kex, cipher: a.cipher, mac: a.mac, host_key: a.host_key, compression: a.compression };
    }
    c.connect_timeout = ms("connectTimeout", o.connect_timeout_ms)?;
    c.keepalive_interval = ms("keepaliveInterval", o.keepalive_interval_ms)?;
    if let Some(n) = o.keepalive_count_max {
        if n == 0 {
            return Err(Error::config("keepaliveCountMax", "keepaliveCountMax must be at least 1"));
        }
        c.keepalive_count_max = n as usize;
    }
    if let Some(n) = o.max_sessions {
        if n == 0 || n > 1000 {
            return Err(Error::config("maxSessions", format!("maxSessions must be between 1 and 1000, got {n}")));
        }
        c.max_sessions = n as usize;
    }
    if let Some(h) = o.high_water_mark {
        if !(h.is_finite() && h >= 65536.0 && h <= 1024.0 * 1024.0 * 1024.0) {
            return Err(Error::config("highWaterMark", "highWaterMark must be between 64 KiB and 1 GiB"));
        }
        let hwm = h as usize;
        c.buffer = BufferLimits { high_water_mark: hwm, wake_bytes: (hwm / 4).clamp(32 * 1024, 1024 * 1024) };
    }
    c.route = match (o.proxy, o.proxy_command) {
        (Some(_), Some(_)) => return Err(Error::config("proxy", "give either proxy or proxyCommand, not both")),
        (Some(url), None) => ferrossh_core::Route::Proxy(ferrossh_core::transport::ProxyUrl::parse(&url)?),
        (None, Some(cmd)) if cmd.trim().is_empty() => return Err(Error::config("proxyCommand", "proxyCommand is empty")),
        (None, Some(cmd)) => ferrossh_core::Route::ProxyCommand { template: cmd, original_host: o.original_host.clone().unwrap_or_else(|| c.host.clone()) },
        (None, None) => ferrossh_core::Route::Direct,
    };
    c.agent_forward = o.agent_socket.filter(|p| !p.is_empty()).map(PathBuf::from);
    c.agent_forward_all = o.agent_forward_all.unwrap_or(false);
    Ok(c)
}

#[napi(object)]
pub struct NativePty {
    pub term: Option<String>,
    pub cols: Option<u32>,
    pub rows: Option<u32>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// [opcode, value] pairs (RFC 4254 §8)
    pub modes: Option<Vec<Vec<u32>>>,
}

pub fn pty(p: NativePty) -> Result<PtyOptions, Error> {
    let d = PtyOptions::default();
    let mut modes = Vec::new();
    for m in p.modes.unwrap_or_default() {
        match m.as_slice() {
            [op, v] if *op > 0 && *op < 160 => modes.push((*op as u8, *v)),
            _ => return Err(Error::config("pty.modes", "each terminal mode must be [opcode (1-159), value]")),
        }
    }
    let term = p.term.unwrap_or(d.term);
    if term.is_empty() || term.len() > 256 || term.chars().any(|c| c.is_control()) {
        return Err(Error::config("pty.term", "pty.term must be a short terminal name such as xterm-256color"));
    }
    Ok(PtyOptions {
        term,
        cols: p.cols.unwrap_or(d.cols),
        rows: p.rows.unwrap_or(d.rows),
        width_px: p.width.unwrap_or(0),
        height_px: p.height.unwrap_or(0),
        modes,
    })
}
