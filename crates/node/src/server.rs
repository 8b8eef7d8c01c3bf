//! `NativeServer`: the embedded SSH server. Options convert to core's `ServerOptions`; the
//! three JS callbacks (authentication, session start, forwarding) are weak threadsafe
//! functions that core calls and awaits (each returns a Promise<boolean>). One ref'd
//! threadsafe function keeps Node alive while the server listens, until it is closed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrossh_core::server::{
    AuthAttemptKind, AuthRequest, ForwardKind, ForwardRequest, HostKeySource, PeerInfo, Server, ServerCallbacks, ServerChannel, ServerLimits,
    ServerOptions, SessionKind, SessionStart, SftpOptions,
};
use ferrossh_core::{Algorithms, BufferLimits, Error, Secret};
use napi::bindgen_prelude::{Buffer, FnArgs, Function, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, Status};
use napi_derive::napi;

use crate::errors::{self, IntoNapi};
use crate::options::NativeAlgorithms;
use crate::server_channel::{NativeKbdPrompter, NativeServerChannel};

#[napi(object)]
pub struct NativeServerOptions {
    /// Private key texts (any format parseKey reads).
    pub host_keys: Option<Vec<Buffer>>,
    pub host_key_files: Option<Vec<String>>,
    /// Passphrase for encrypted host keys.
    pub host_key_passphrase: Option<String>,
    /// Load from here, or generate an ed25519 key and save it here first.
    pub host_key_path: Option<String>,
    pub banner: Option<String>,
    pub password: bool,
    pub public_key: bool,
    pub keyboard_interactive: bool,
    pub none: bool,
    pub exec: bool,
    pub shell: bool,
    pub subsystems: Vec<String>,
    pub sftp_root: Option<String>,
    pub sftp_read_only: Option<bool>,
    pub forward_direct: bool,
    pub forward_remote: bool,
    pub accept_env: Option<Vec<String>>,
    pub max_auth_tries: Option<u32>,
    pub auth_timeout_ms: Option<f64>,
    pub max_connections: Option<u32>,
    pub max_startups: Option<u32>,
    pub max_channels: Option<u32>,
    pub keepalive_interval_ms: Option<f64>,
    pub callback_timeout_ms: Option<f64>,
    pub algorithms: Option<NativeAlgorithms>,
    pub high_water_mark: Option<f64>,
}

#[napi(object)]
pub struct NativeConnection {
    pub id: f64,
    pub remote_address: String,
    pub remote_port: u32,
    pub local_address: String,
    pub local_port: u32,
}

#[napi(object)]
pub struct NativeOfferedKey {
    pub algorithm: String,
    pub fingerprint: String,
    pub public_key: String,
}

#[napi(object)]
pub struct NativeAuthRequest {
    pub connection: NativeConnection,
    pub user: String,
    /// 'password' | 'publickey' | 'keyboard-interactive'
    pub method: String,
    pub password: Option<String>,
    pub key: Option<NativeOfferedKey>,
}

#[napi(object)]
pub struct NativeServerPty {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
    pub width: u32,
    pub height: u32,
    /// [opcode, value] pairs
    pub modes: Vec<Vec<u32>>,
}

#[napi(object)]
pub struct NativeSessionStart {
    pub connection: NativeConnection,
    pub user: String,
    /// 'exec' | 'shell' | 'subsystem'
    pub kind: String,
    pub command: Option<String>,
    pub subsystem: Option<String>,
    /// [name, value] pairs in the order the client sent them
    pub env: Vec<Vec<String>>,
    pub pty: Option<NativeServerPty>,
}

#[napi(object)]
pub struct NativeForwardRequest {
    pub connection: NativeConnection,
    pub user: String,
    /// 'direct' (direct-tcpip: connect to host:port) | 'remote' (tcpip-forward: listen on address:port)
    pub kind: String,
    pub host: Option<String>,
    pub address: Option<String>,
    pub port: u32,
    pub originator_address: Option<String>,
    pub originator_port: Option<u32>,
}

#[napi(object)]
pub struct NativeServerAddress {
    pub address: String,
    pub port: u32,
    pub family: String,
}

#[napi(object)]
pub struct NativeServerHostKey {
    pub algorithm: String,
    pub fingerprint: String,
    pub public_key: String,
}

type AuthArgs = FnArgs<(NativeAuthRequest, Option<NativeKbdPrompter>)>;
type SessionArgs = FnArgs<(NativeSessionStart, NativeServerChannel)>;
type AuthFn = ThreadsafeFunction<AuthArgs, Promise<bool>, AuthArgs, Status, false, true>;
type SessionFn = ThreadsafeFunction<SessionArgs, Promise<bool>, SessionArgs, Status, false, true>;
type ForwardFn = ThreadsafeFunction<NativeForwardRequest, Promise<bool>, NativeForwardRequest, Status, false, true>;
type KeepAliveFn = ThreadsafeFunction<(), (), (), Status, false>;
type ConnectionsFn = ThreadsafeFunction<(), (), (), Status, false, true>;

fn connection(p: &PeerInfo) -> NativeConnection {
    NativeConnection {
        id: p.id as f64,
        remote_address: p.remote.ip().to_string(),
        remote_port: p.remote.port() as u32,
        local_address: p.local.ip().to_string(),
        local_port: p.local.port() as u32,
    }
}

struct JsCallbacks {
    auth: Arc<AuthFn>,
    session: Arc<SessionFn>,
    forward: Arc<ForwardFn>,
    connections: ConnectionsFn,
}

/// A JS callback's Promise<boolean>; a throw, a rejection or anything but `true` is a refusal.
async fn verdict(call: napi::Result<Promise<bool>>) -> bool {
    match call {
        Ok(p) => p.await.unwrap_or(false),
        Err(_) => false,
    }
}

impl ServerCallbacks for JsCallbacks {
    fn auth(&self, req: AuthRequest) -> ferrossh_core::options::BoxFuture<bool> {
        let method = req.kind.method().to_string();
        let mut native = NativeAuthRequest { connection: connection(&req.peer), user: req.user, method, password: None, key: None };
        let mut prompter = None;
        match req.kind {
            AuthAttemptKind::Password(p) => native.password = Some(p.expose().to_string()),
            AuthAttemptKind::PublicKey(k) => {
                native.key = Some(NativeOfferedKey { algorithm: k.algorithm, fingerprint: k.fingerprint, public_key: k.public_key })
            }
            AuthAttemptKind::KeyboardInteractive(p) => prompter = Some(NativeKbdPrompter::new(p)),
        }
        let f = Arc::clone(&self.auth);
        Box::pin(async move { verdict(f.call_async_catch(FnArgs::from((native, prompter))).await).await })
    }

    fn session(&self, req: SessionStart, channel: Arc<ServerChannel>) -> ferrossh_core::options::BoxFuture<bool> {
        let (kind, command, subsystem) = match req.kind {
            SessionKind::Exec(c) => ("exec", Some(c), None),
            SessionKind::Shell => ("shell", None, None),
            SessionKind::Subsystem(s) => ("subsystem", None, Some(s)),
        };
        let native = NativeSessionStart {
            connection: connection(&req.peer),
            user: req.user,
            kind: kind.into(),
            command,
            subsystem,
            env: req.env.into_iter().map(|(k, v)| vec![k, v]).collect(),
            pty: req.pty.map(|p| NativeServerPty {
                term: p.term,
                cols: p.cols,
                rows: p.rows,
                width: p.width_px,
                height: p.height_px,
                modes: p.modes.into_iter().map(|(op, v)| vec![op as u32, v]).collect(),
            }),
        };
        let f = Arc::clone(&self.session);
        Box::pin(async move { verdict(f.call_async_catch(FnArgs::from((native, NativeServerChannel::new(channel)))).await).await })
    }

    fn connections_changed(&self) {
        self.connections.call((), napi::threadsafe_function::ThreadsafeFunctionCallMode::NonBlocking);
    }

    fn forward(&self, req: ForwardRequest) -> ferrossh_core::options::BoxFuture<bool> {
        let connection = connection(&req.peer);
        let native = match req.kind {
            ForwardKind::Direct { host, port, originator_address, originator_port } => NativeForwardRequest {
                connection,
                user: req.user,
                kind: "direct".into(),
                host: Some(host),
                address: None,
                port,
                originator_address: Some(originator_address),
                originator_port: Some(originator_port),
            },
            ForwardKind::Remote { address, port } => NativeForwardRequest {
                connection,
                user: req.user,
                kind: "remote".into(),
                host: None,
                address: Some(address),
                port,
                originator_address: None,
                originator_port: None,
            },
        };
        let f = Arc::clone(&self.forward);
        Box::pin(async move { verdict(f.call_async_catch(native).await).await })
    }
}

fn ms(option: &str, v: Option<f64>, max: f64) -> Result<Option<Duration>, Error> {
    match v {
        None => Ok(None),
        Some(x) if x.is_finite() && x > 0.0 && x <= max => Ok(Some(Duration::from_millis(x as u64))),
        Some(x) => Err(Error::config(option, format!("{option} must be a positive number of milliseconds up to {max}, got {x}"))),
    }
}

fn count(option: &str, v: Option<u32>, default: usize, max: u32) -> Result<usize, Error> {
    match v {
        None => Ok(default),
        Some(n) if n >= 1 && n <= max => Ok(n as usize),
        Some(n) => Err(Error::config(option, format!("{option} must be between 1 and {max}, got {n}"))),
    }
}

fn server_options(o: NativeServerOptions) -> Result<ServerOptions, Error> {
    let pass = o.host_key_passphrase.map(Secret::new);
    let mut host_keys: Vec<HostKeySource> = o.host_keys.unwrap_or_default().into_iter().map(|b| HostKeySource::Data(Arc::new(b.to_vec()), pass.clone())).collect();
    host_keys.extend(o.host_key_files.unwrap_or_default().into_iter().map(|p| HostKeySource::Path(PathBuf::from(p), pass.clone())));
    let d = ServerLimits::default();
    let limits = ServerLimits {
        max_auth_tries: count("limits.maxAuthTries", o.max_auth_tries, d.max_auth_tries as usize, 100)? as u32,
        auth_timeout: ms("limits.authTimeout", o.auth_timeout_ms, 3_600_000.0)?.unwrap_or(d.auth_timeout),
        max_connections: count("limits.maxConnections", o.max_connections, d.max_connections, 1_000_000)?,
        max_startups: count("limits.maxStartups", o.max_startups, d.max_startups, 1_000_000)?,
        max_channels: count("limits.maxChannels", o.max_channels, d.max_channels, 10_000)?,
        keepalive_interval: ms("limits.keepaliveInterval", o.keepalive_interval_ms, 86_400_000.0)?,
        callback_timeout: ms("limits.callbackTimeout", o.callback_timeout_ms, 3_600_000.0)?.unwrap_or(d.callback_timeout),
    };
    let mut buffer = BufferLimits::default();
    if let Some(h) = o.high_water_mark {
        if !(h.is_finite() && (65536.0..=1024.0 * 1024.0 * 1024.0).contains(&h)) {
            return Err(Error::config("highWaterMark", "highWaterMark must be between 64 KiB and 1 GiB"));
        }
        let hwm = h as usize;
        buffer = BufferLimits { high_water_mark: hwm, wake_bytes: (hwm / 4).clamp(32 * 1024, 1024 * 1024) };
    }
    Ok(ServerOptions {
        host_keys,
        host_key_path: o.host_key_path.map(PathBuf::from),
        banner: o.banner,
        password: o.password,
        public_key: o.public_key,
        keyboard_interactive: o.keyboard_interactive,
        none: o.none,
        exec: o.exec,
        shell: o.shell,
        subsystems: o.subsystems,
        sftp: o.sftp_root.map(|root| SftpOptions { root: PathBuf::from(root), read_only: o.sftp_read_only.unwrap_or(false) }),
        forward_direct: o.forward_direct,
        forward_remote: o.forward_remote,
        accept_env: o.accept_env,
        limits,
        algorithms: o.algorithms.map(|a| Algorithms { kex: a.kex, cipher: a.cipher, mac: a.mac, host_key: a.host_key, compression: a.compression }).unwrap_or_default(),
        buffer,
    })
}

#[napi]
pub struct NativeServer {
    inner: Arc<Server>,
    keep_alive: Arc<Mutex<Option<KeepAliveFn>>>,
}

#[napi]
impl NativeServer {
    /// Checks the options and loads the host keys (a ConfigError when they are wrong). The
    /// callbacks return Promise<boolean>; `keepAlive` is never called: it holds the event
    /// loop while the server listens (see `setRef`).
    #[napi(
        constructor,
        ts_args_type = "options: NativeServerOptions, onAuth: (req: NativeAuthRequest, prompter: NativeKbdPrompter | null) => Promise<boolean>, onSession: (req: NativeSessionStart, channel: NativeServerChannel) => Promise<boolean>, onForward: (req: NativeForwardRequest) => Promise<boolean>, keepAlive: () => void, onConnections: () => void"
    )]
    #[allow(deprecated)]
    pub fn new(
        env: Env,
        options: NativeServerOptions,
        on_auth: Function<AuthArgs, Promise<bool>>,
        on_session: Function<SessionArgs, Promise<bool>>,
        on_forward: Function<NativeForwardRequest, Promise<bool>>,
        keep_alive: Function<(), ()>,
        on_connections: Function<(), ()>,
    ) -> napi::Result<Self> {
        let opts = server_options(options).js()?;
        let callbacks = JsCallbacks {
            auth: Arc::new(on_auth.build_threadsafe_function().weak::<true>().callee_handled::<false>().build()?),
            session: Arc::new(on_session.build_threadsafe_function().weak::<true>().callee_handled::<false>().build()?),
            forward: Arc::new(on_forward.build_threadsafe_function().weak::<true>().callee_handled::<false>().build()?),
            connections: on_connections.build_threadsafe_function().weak::<true>().callee_handled::<false>().build()?,
        };
        // the host keys are read here, on the JavaScript thread
        let server = errors::catch_panic("hostKeys", "loading the host keys", || Server::new(opts, Arc::new(callbacks)).js())?;
        let mut ka: KeepAliveFn = keep_alive.build_threadsafe_function().callee_handled::<false>().build()?;
        // nothing to keep alive for until listen()
        ka.unref(&env)?;
        Ok(NativeServer { inner: Arc::new(server), keep_alive: Arc::new(Mutex::new(Some(ka))) })
    }

    /// Binds and starts accepting.
    #[napi]
    pub async fn listen(&self, host: String, port: u32) -> napi::Result<NativeServerAddress> {
        let port = u16::try_from(port).map_err(|_| errors::to_napi(Error::config("port", format!("port must be between 0 and 65535, got {port}"))))?;
        let addr = self.inner.listen(&host, port).await.js()?;
        Ok(address(addr))
    }

    /// Keep (true) or stop keeping (false) the process alive while listening.
    #[napi]
    pub fn set_ref(&self, env: Env, keep: bool) -> napi::Result<()> {
        crate::set_keep_alive_ref(&self.keep_alive, &env, keep)
    }

    #[napi(getter)]
    pub fn address(&self) -> Option<NativeServerAddress> {
        self.inner.local_addr().map(address)
    }

    #[napi(getter)]
    pub fn connections(&self) -> u32 {
        self.inner.connection_count() as u32
    }

    /// Connections still served (`onConnections` is called when this goes from 0 to 1 or back).
    #[napi(getter)]
    pub fn live_connections(&self) -> u32 {
        self.inner.live_connections() as u32
    }

    #[napi(getter)]
    pub fn host_keys(&self) -> Vec<NativeServerHostKey> {
        self.inner
            .host_keys()
            .iter()
            .map(|k| NativeServerHostKey { algorithm: k.algorithm.clone(), fingerprint: k.fingerprint.clone(), public_key: k.public_key.clone() })
            .collect()
    }

    /// Graceful shutdown (see core `Server::close`); afterwards nothing holds the event loop
    /// or any JS callback.
    #[napi]
    pub async fn close(&self, timeout_ms: f64) -> napi::Result<()> {
        let t = if timeout_ms.is_finite() && timeout_ms >= 0.0 { Duration::from_millis(timeout_ms.min(86_400_000.0) as u64) } else { Duration::ZERO };
        self.inner.close(t).await;
        // dropping the threadsafe function releases its hold on the event loop
        let ka = self.keep_alive.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(ka);
        Ok(())
    }
}

fn address(a: std::net::SocketAddr) -> NativeServerAddress {
    NativeServerAddress { address: a.ip().to_string(), port: a.port() as u32, family: if a.is_ipv4() { "IPv4".into() } else { "IPv6".into() } }
}
