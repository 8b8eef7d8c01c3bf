//! The client connection: TCP (or any stream), handshake with host key policy, the
//! authentication chain, and channel opening with a session limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use russh::client::{self, DisconnectReason, Handle, Session};
use russh::keys::PublicKeyOrCertificate;
use russh::{ChannelId, Disconnect, Sig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};

use crate::algorithms;
use crate::auth;
use crate::cancel::{Armed, CancelToken, KillSwitch};
use crate::channel::{signal_name, BufferLimits, Channel, ChannelShared, ExitInfo, STDERR, STDOUT};
use crate::error::{Error, Result};
use crate::host_key;
use crate::forward::Target;
use crate::options::{ConnectOptions, HostKeyInfo, HostKeyPolicy, Route, Trace};
use crate::transport::{self, ProxyCommand};

/// What was negotiated (client→server; the `*_server_to_client` fields where they differ).
#[derive(Debug, Clone, Default)]
pub struct Negotiated {
    pub kex: String,
    pub host_key: String,
    pub cipher: String,
    pub mac: String,
    pub mac_server_to_client: String,
    pub compression: String,
    pub compression_server_to_client: String,
}

type CloseCallback = Box<dyn FnOnce(Option<Error>) + Send>;

#[derive(Default)]
struct ConnState {
    closed: bool,
    user_closed: bool,
    error: Option<Error>,
    negotiated: Option<Negotiated>,
    host_key: Option<HostKeyInfo>,
    host_key_error: Option<Error>,
    banner: Option<String>,
    on_close: Vec<CloseCallback>,
}

/// State shared by the connection's event loop (the handler) and the `Client`.
pub struct ConnShared {
    pub(crate) trace: Option<Trace>,
    x11: X11Slot,
    /// -R forwards: (bind address, bound port) → where their connections go.
    remote_tcp: Mutex<Vec<(String, u32, Target, CancelToken)>>,
    remote_unix: Mutex<HashMap<String, (Target, CancelToken)>>,
    channels: Mutex<HashMap<u32, Arc<ChannelShared>>>,
    state: Mutex<ConnState>,
    closed: Notify,
    limits: BufferLimits,
    /// Agent forwarding was asked for on this connection: only then may the server open
    /// agent channels (OpenSSH's client refuses others as a break-in attempt). Without this,
    /// any server could have the local agent sign for it.
    agent_requested: std::sync::atomic::AtomicBool,
}

impl ConnShared {
    fn state(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn channels(&self) -> MutexGuard<'_, HashMap<u32, Arc<ChannelShared>>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn channel(&self, id: ChannelId) -> Option<Arc<ChannelShared>> {
        self.channels().get(&id.number()).cloned()
    }

    fn register(&self, id: ChannelId) -> Arc<ChannelShared> {
        let mut map = self.channels();
        Arc::clone(map.entry(id.number()).or_insert_with(|| ChannelShared::new(id.number(), self.limits)))
    }

    /// Takes an open channel: its read half is dropped (all its messages reach the shared
    /// state through the handler), its state registered.
    fn adopt(self: &Arc<Self>, channel: russh::Channel<client::Msg>) -> Channel {
        let id = channel.id();
        let (read_half, tx) = channel.split();
        drop(read_half);
        let shared = self.register(id);
        Channel { shared, tx: Arc::new(tx), conn: Arc::clone(self), runtime: tokio::runtime::Handle::current(), out: Default::default() }
    }

    pub(crate) fn forget_channel(&self, id: u32) {
        self.channels().remove(&id);
    }

    /// The error that ended the connection, or is ending it: a close() under way counts.
    pub(crate) fn ending_error(&self) -> Option<Error> {
        if self.state().user_closed {
            return Some(self.close_error().unwrap_or_else(closed_by_owner));
        }
        self.close_error()
    }

    /// The error that ended the connection, if it has ended.
    pub fn close_error(&self) -> Option<Error> {
        let st = self.state();
        if !st.closed {
            return None;
        }
        Some(st.error.clone().unwrap_or_else(|| if st.user_closed { closed_by_owner() } else { Error::disconnected("the connection was closed") }))
    }

    /// Marks the connection ended, fails every open channel and runs the close callbacks.
    fn finish(&self, err: Option<Error>) {
        let (callbacks, err) = {
            let mut st = self.state();
            if st.closed {
                return;
            }
            st.closed = true;
            let err = if st.user_closed { None } else { err.or_else(|| Some(Error::disconnected("the server closed the connection"))) };
            st.error = err.clone();
            (std::mem::take(&mut st.on_close), err)
        };
        Trace::emit(&self.trace, || match &err {
            Some(e) => format!("connection closed: {e}"),
            None => "connection closed".to_string(),
        });
        // what was cut short by the owner's own close() says so (reason 'closed'), as a call
        // made after it does, not 'connection-lost'
        let channel_err = err.clone().unwrap_or_else(closed_by_owner);
        let chans: Vec<Arc<ChannelShared>> = self.channels().values().cloned().collect();
        for c in chans {
            c.on_broken(channel_err.clone());
        }
        self.closed.notify_waiters();
        for cb in callbacks {
            cb(err.clone());
        }
    }
}

/// The error of a call cut short by the connection's own `close()`.
fn closed_by_owner() -> Error {
    Error::Disconnect { reason: "closed".into(), description: "the client was closed".into() }
}

/// The russh client handler: every message for our channels goes straight into their
/// shared state (never into russh's per-channel queues).
pub struct ClientHandler {
    shared: Arc<ConnShared>,
    policy: HostKeyPolicy,
    known_hosts: host_key::KnownHostsSnapshot,
    host: String,
    port: u16,
    /// The local agent socket that forwarded agent channels reach (`agentForward`).
    agent_socket: Option<std::path::PathBuf>,
    /// The connect attempt's kill switch: a host key check still waiting (a verify callback
    /// nobody answers) gives up when the attempt ends without a client.
    abandoned: KillSwitch,
}

/// X11 forwarding set up by a session request; forwarded connections use it.
type X11Slot = Arc<Mutex<Option<crate::x11::X11Target>>>;

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> std::result::Result<bool, Self::Error> {
        let presented = match host_key::describe(key) {
            Ok(p) => p,
            Err(e) => {
                self.shared.state().host_key_error = Some(e);
                return Ok(false);
            }
        };
        let info = host_key::info(&self.host, self.port, &presented);
        Trace::emit(&self.shared.trace, || format!("server host key: {} {}", presented.algorithm, presented.fingerprint));
        let verdict = tokio::select! {
            v = host_key::verify(&self.policy, &self.known_hosts, &self.host, self.port, &presented, &self.shared.trace) => v,
            _ = self.abandoned.fired() => {
                Trace::emit(&self.shared.trace, || "host key check abandoned: the connect attempt ended".to_string());
                return Err(russh::Error::Disconnect);
            }
        };
        Trace::emit(&self.shared.trace, || match &verdict {
            Ok(()) => format!("host key accepted ({:?} policy)", policy_name(&self.policy)),
            Err(e) => format!("host key refused: {e}"),
        });
        let mut st = self.shared.state();
        st.host_key = Some(info);
        match verdict {
            Ok(()) => Ok(true),
            Err(e) => {
                st.host_key_error = Some(e);
                Ok(false)
            }
        }
    }

    async fn kex_done(&mut self, _secret: Option<&[u8]>, names: &russh::Names, _s: &mut Session) -> std::result::Result<(), Self::Error> {
        let comp = |c: &russh::compression::Compression| format!("{c:?}");
        let n = Negotiated {
            kex: names.kex.as_ref().to_string(),
            host_key: names.key.as_str().to_string(),
            cipher: names.cipher.as_ref().to_string(),
            mac: names.client_mac.as_ref().to_string(),
            mac_server_to_client: names.server_mac.as_ref().to_string(),
            compression: compression_name(&comp(&names.client_compression)),
            compression_server_to_client: compression_name(&comp(&names.server_compression)),
        };
        Trace::emit(&self.shared.trace, || {
            format!("kex: {} host key: {} cipher: {} mac: {} compression: {}", n.kex, n.host_key, n.cipher, n.mac, n.compression)
        });
        self.shared.state().negotiated = Some(n);
        Ok(())
    }

    async fn auth_banner(&mut self, banner: &str, _s: &mut Session) -> std::result::Result<(), Self::Error> {
        self.shared.state().banner = Some(banner.to_string());
        Ok(())
    }

    async fn channel_open_confirmation(&mut self, id: ChannelId, _max: u32, _win: u32, _s: &mut Session) -> std::result::Result<(), Self::Error> {
        self.shared.register(id);
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: russh::Channel<client::Msg>,
        reply: client::ChannelOpenHandle,
        _s: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        let asked = self.shared.agent_requested.load(std::sync::atomic::Ordering::SeqCst);
        let Some(path) = self.agent_socket.clone().filter(|_| asked) else {
            Trace::emit(&self.shared.trace, || "refused an agent channel the server opened without a forwarding request".to_string());
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        };
        let ch = self.shared.adopt(channel);
        reply.accept().await;
        tokio::spawn(async move {
            match crate::agent_socket::connect(&path).await {
                Ok(sock) => {
                    let _ = crate::bridge::bridge(ch, sock).await;
                }
                Err(_) => {
                    let _ = ch.close().await;
                }
            }
        });
        Ok(())
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        connected_address: &str,
        connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _s: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        let target = {
            let fwds = self.shared.remote_tcp.lock().unwrap_or_else(|p| p.into_inner());
            // servers echo the bind address as requested; the port identifies the forward
            fwds.iter()
                .find(|(a, p, _, _)| *p == connected_port && a == connected_address)
                .or_else(|| fwds.iter().find(|(_, p, _, _)| *p == connected_port))
                .map(|(_, _, t, stop)| (t.clone(), stop.clone()))
        };
        let Some((target, stop)) = target else {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        };
        let ch = self.shared.adopt(channel);
        reply.accept().await;
        Trace::emit(&self.shared.trace, || format!("channel {}: forwarded connection to {} → {}", ch.shared().id, connected_port, target.describe()));
        // cancelling the forward ends its connections too
        tokio::spawn(async move { CancelToken::run(Some(&stop), async { crate::forward::serve_remote(ch, target).await; Ok(()) }).await });
        Ok(())
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        channel: russh::Channel<client::Msg>,
        socket_path: &str,
        reply: client::ChannelOpenHandle,
        _s: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        let target = self.shared.remote_unix.lock().unwrap_or_else(|p| p.into_inner()).get(socket_path).cloned();
        let Some((target, stop)) = target else {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        };
        let ch = self.shared.adopt(channel);
        reply.accept().await;
        tokio::spawn(async move { CancelToken::run(Some(&stop), async { crate::forward::serve_remote(ch, target).await; Ok(()) }).await });
        Ok(())
    }

    async fn server_channel_open_x11(
        &mut self,
        channel: russh::Channel<client::Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _s: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        let target = self.shared.x11.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(target) = target else {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        };
        if target.single_connection {
            *self.shared.x11.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        let ch = self.shared.adopt(channel);
        reply.accept().await;
        Trace::emit(&self.shared.trace, || format!("channel {}: x11 connection forwarded to {}", ch.shared().id, target.display));
        tokio::spawn(async move {
            let _ = crate::x11::serve(ch, target).await;
        });
        Ok(())
    }

    async fn data(&mut self, id: ChannelId, data: &[u8], _s: &mut Session) -> std::result::Result<(), Self::Error> {
        if let Some(c) = self.shared.channel(id) {
            c.push(STDOUT, data).await;
        }
        Ok(())
    }

    async fn extended_data(&mut self, id: ChannelId, ext: u32, data: &[u8], _s: &mut Session) -> std::result::Result<(), Self::Error> {
        // RFC 4254 §5.2 defines only code 1 (stderr); other codes are delivered there too
        let _ = ext;
        if let Some(c) = self.shared.channel(id) {
            c.push(STDERR, data).await;
        }
        Ok(())
    }

    async fn channel_eof(&mut self, id: ChannelId, _s: &mut Session) -> std::result::Result<(), Self::Error> {
        if let Some(c) = self.shared.channel(id) {
            c.on_eof();
        }
        Ok(())
    }

    async fn channel_close(&mut self, id: ChannelId, _s: &mut Session) -> std::result::Result<(), Self::Error> {
        if let Some(c) = self.shared.channel(id) {
            c.on_peer_close();
        }
        Ok(())
    }

    async fn channel_success(&mut self, id: ChannelId, _s: &mut Session) -> std::result::Result<(), Self::Error> {
        if let Some(c) = self.shared.channel(id) {
            c.on_reply(true);
        }
        Ok(())
    }

    async fn channel_failure(&mut self, id: ChannelId, _s: &mut Session) -> std::result::Result<(), Self::Error> {
        if let Some(c) = self.shared.channel(id) {
            c.on_reply(false);
        }
        Ok(())
    }

    async fn exit_status(&mut self, id: ChannelId, status: u32, _s: &mut Session) -> std::result::Result<(), Self::Error> {
        if let Some(c) = self.shared.channel(id) {
            c.on_exit(ExitInfo { code: Some(status), ..Default::default() });
        }
        Ok(())
    }

    async fn exit_signal(
        &mut self,
        id: ChannelId,
        signal: Sig,
        core_dumped: bool,
        message: &str,
        _lang: &str,
        _s: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        if let Some(c) = self.shared.channel(id) {
            c.on_exit(ExitInfo {
                code: None,
                signal: Some(signal_name(&signal)),
                core_dumped,
                message: if message.is_empty() { None } else { Some(message.to_string()) },
            });
        }
        Ok(())
    }

    async fn disconnected(&mut self, reason: DisconnectReason<Self::Error>) -> std::result::Result<(), Self::Error> {
        match reason {
            DisconnectReason::ReceivedDisconnect(info) => {
                let description = if info.message.is_empty() { format!("{:?}", info.reason_code) } else { info.message.clone() };
                self.shared.finish(Some(Error::Disconnect { reason: format!("{:?}", info.reason_code), description }));
                Ok(())
            }
            DisconnectReason::Error(e) => {
                self.shared.finish(Some(Error::from(e)));
                Ok(())
            }
        }
    }
}

impl Drop for ClientHandler {
    /// The event loop owns the handler: when it is dropped the connection is over.
    fn drop(&mut self) {
        self.shared.finish(None);
    }
}

fn policy_name(p: &HostKeyPolicy) -> &'static str {
    match p {
        HostKeyPolicy::KnownHosts { .. } => "known_hosts",
        HostKeyPolicy::Fingerprints(_) => "pinned fingerprint",
        HostKeyPolicy::Verify(_) => "verify callback",
        HostKeyPolicy::InsecureAcceptAny => "insecure-accept-any",
    }
}

fn compression_name(debug: &str) -> String {
    let d = debug.to_ascii_lowercase();
    if d.contains("zlib") {
        if d.contains("legacy") || d.contains("openssh") { "zlib@openssh.com".into() } else { "zlib".into() }
    } else {
        "none".into()
    }
}

/// What carries a connection besides its socket.
#[derive(Default)]
struct Guard {
    proxy_command: Option<ProxyCommand>,
    parent: Option<(Arc<Client>, bool)>,
}

/// A handshake over a proxy command failed: say so with the command's stderr, after a
/// moment for it to exit (a command that exits at once is the usual cause).
async fn proxy_command_error(pc: &mut ProxyCommand, e: Error) -> Error {
    // a command still running when the deadline passed: the ended session closes its stdin now,
    // and the exit that follows says nothing about why SSH never came up
    let outlived_deadline = matches!(e, Error::Timeout { .. }) && matches!(pc.child.try_wait(), Ok(None));
    let status = if outlived_deadline {
        None
    } else {
        tokio::time::timeout(Duration::from_millis(500), pc.child.wait()).await.ok().and_then(|r| r.ok())
    };
    let _ = pc.child.kill().await;
    // what it wrote is still in the pipe: let the reader take it (bounded)
    if let Some(reader) = pc.stderr_reader.take() {
        let _ = tokio::time::timeout(Duration::from_millis(500), reader).await;
    }
    let stderr = pc.stderr_text();
    let exit = match status {
        Some(s) => format!("exited with {s}"),
        None => "is still running".into(),
    };
    // the command line may carry secrets (the trace leaves it out too): the message names the
    // program only, and quotes the end of what it wrote
    let program = transport::program_of(&pc.command).to_string();
    let tail = {
        let t = stderr.trim_end();
        match t.char_indices().rev().nth(1023) {
            Some((i, _)) => format!("…{}", &t[i..]),
            None => t.to_string(),
        }
    };
    Error::Proxy {
        hop: None,
        host: None,
        command: Some(pc.command.clone()),
        stderr: if stderr.is_empty() { None } else { Some(stderr.clone()) },
        message: format!(
            "proxy command {program:?} {exit} before SSH was established: {e}{}",
            if tail.is_empty() { String::new() } else { format!("; its stderr: {tail}") }
        ),
        cause: Some(Box::new(e)),
    }
}

/// Options for `exec` when the whole output is collected in Rust.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub env: Vec<(String, String)>,
    pub pty: Option<crate::options::PtyOptions>,
    pub stdin: Option<Vec<u8>>,
    pub max_buffer: Option<usize>,
    pub timeout: Option<Duration>,
    /// None: the connection's default.
    pub agent_forward: Option<bool>,
    pub x11: Option<X11Options>,
}

#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: ExitInfo,
    /// maxBuffer was exceeded: output is cut at the limit and the channel was closed.
    pub truncated: bool,
}

/// Options for opening a session channel that is then read as streams.
#[derive(Debug, Clone, Default)]
pub struct SessionRequest {
    pub env: Vec<(String, String)>,
    pub pty: Option<crate::options::PtyOptions>,
    /// None: the connection's default.
    pub agent_forward: Option<bool>,
    /// Request X11 forwarding to this local display.
    pub x11: Option<X11Options>,
}

/// X11 forwarding request options.
#[derive(Clone, Default)]
pub struct X11Options {
    pub display: String,
    pub real_cookie: Vec<u8>,
    pub single_connection: bool,
    pub screen: Option<u32>,
}

impl std::fmt::Debug for X11Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "X11Options({}, cookie redacted)", self.display)
    }
}

/// An authenticated connection.
pub struct Client {
    /// Shared with the tasks that open channels (see `open_detached`).
    handle: Arc<Handle<ClientHandler>>,
    shared: Arc<ConnShared>,
    sessions: Arc<Semaphore>,
    host: String,
    port: u16,
    /// Request agent forwarding on every session (`agentForward: true` at connect).
    agent_forward_default: bool,
    agent_forward_possible: bool,
    /// The proxy command carrying this connection (killed when it closes).
    proxy_command: Mutex<Option<ProxyCommand>>,
    /// The jump host this connection runs through, and whether we close it too.
    parent: Option<(Arc<Client>, bool)>,
    /// The transport is not our own TCP socket (a jump host's channel, a proxy command, a
    /// proxy, a given stream): late channel-open replies get ACK nudges (`with_ack_nudges`).
    through_hop: bool,
}

/// How long a connect that failed after the key exchange waits for its disconnect to be
/// written before the session is cut.
const DISCONNECT_GRACE: Duration = Duration::from_millis(500);

/// A global request no server knows, sent without want-reply (RFC 4254 §4: ignored).
const ACK_NUDGE: &str = "nudge@ferrossh";
/// A hop's delayed ACK holds sshd back for up to 40 ms: nudges at 2, 6, 10 … 38 ms cover it.
const NUDGE_FIRST: Duration = Duration::from_millis(2);
const NUDGE_EVERY: Duration = Duration::from_millis(4);
const NUDGES_MAX: u32 = 10;

/// Awaits `open`, running `nudge()` each time it is still pending NUDGE_FIRST, then every
/// NUDGE_EVERY, after it started (NUDGES_MAX times at most; then it just waits).
async fn nudge_while_pending<T, N: std::future::Future<Output = ()>>(open: impl std::future::Future<Output = T>, mut nudge: impl FnMut() -> N) -> T {
    tokio::pin!(open);
    let mut wait = NUDGE_FIRST;
    for _ in 0..NUDGES_MAX {
        tokio::select! {
            r = &mut open => return r,
            _ = tokio::time::sleep(wait) => {
                nudge().await;
                wait = NUDGE_EVERY;
            }
        }
    }
    open.await
}

fn errno_name(e: &std::io::Error) -> Option<String> {
    use std::io::ErrorKind as K;
    // a name that does not resolve (getaddrinfo), as Node names it
    let text = e.to_string();
    if text.contains("Temporary failure in name resolution") {
        return Some("EAI_AGAIN".into());
    }
    if text.contains("failed to lookup address") || text.contains("No such host is known") {
        return Some("ENOTFOUND".into());
    }
    Some(
        match e.kind() {
            K::ConnectionRefused => "ECONNREFUSED",
            K::ConnectionReset => "ECONNRESET",
            K::TimedOut => "ETIMEDOUT",
            K::AddrNotAvailable => "EADDRNOTAVAIL",
            K::PermissionDenied => "EACCES",
            K::HostUnreachable => "EHOSTUNREACH",
            K::NetworkUnreachable => "ENETUNREACH",
            _ => return None,
        }
        .to_string(),
    )
}

/// `[::1]` → `::1`: people paste bracketed IPv6 literals from URLs and ssh_config.
pub(crate) fn bare_host(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

fn validate(opts: &ConnectOptions) -> Result<()> {
    if bare_host(&opts.host).is_empty() {
        return Err(Error::config("host", "host is required"));
    }
    if let Some(why) = crate::options::host_name_problem(bare_host(&opts.host)) {
        return Err(Error::config("host", format!("host {:?} {why}", opts.host)));
    }
    if let Route::ProxyCommand { original_host, .. } = &opts.route {
        if let Some(why) = crate::options::host_name_problem(bare_host(original_host)) {
            return Err(Error::config("host", format!("host {original_host:?} {why}")));
        }
    }
    if opts.port == 0 {
        return Err(Error::config("port", "port must be between 1 and 65535"));
    }
    if opts.username.is_empty() {
        return Err(Error::config("username", "username is required"));
    }
    if let Some(why) = crate::options::user_name_problem(&opts.username) {
        return Err(Error::config("username", format!("user name {:?} {why}", opts.username)));
    }
    if opts.max_sessions == 0 {
        return Err(Error::config("maxSessions", "maxSessions must be at least 1"));
    }
    Ok(())
}

/// `f`, failing with a TimeoutError for `phase` at the deadline. The future goes to the heap
/// at once: an `async fn` keeps its by-value arguments for its whole life, so wrapping a large
/// future would otherwise hold it twice in every connect in flight.
fn with_deadline<'a, T: 'a>(deadline: Option<Instant>, phase: &'a str, total: Option<Duration>, f: impl std::future::Future<Output = Result<T>> + Send + 'a) -> impl std::future::Future<Output = Result<T>> + Send + 'a {
    let f = Box::pin(f);
    async move { with_deadline_boxed(deadline, phase, total, f).await }
}

async fn with_deadline_boxed<T>(deadline: Option<Instant>, phase: &str, total: Option<Duration>, f: std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + '_>>) -> Result<T> {
    match deadline {
        None => f.await,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, f).await {
                Ok(r) => r,
                Err(_) => Err(Error::timeout(phase, total.map(|t| t.as_millis() as u64).unwrap_or(0))),
            }
        }
    }
}

impl Client {
    /// Connects over TCP, verifies the host key and authenticates.
    pub async fn connect(opts: ConnectOptions, cancel: Option<CancelToken>) -> Result<Client> {
        // boxed: see with_deadline
        CancelToken::run(cancel.as_ref(), Box::pin(Self::connect_inner(opts))).await
    }

    async fn connect_inner(opts: ConnectOptions) -> Result<Client> {
        validate(&opts)?;
        let deadline = opts.connect_timeout.map(|t| Instant::now() + t);
        // reading and decrypting keys (bcrypt with many rounds takes seconds) runs off the
        // runtime's thread, which every other connection shares, and under the deadline and
        // the abort like every other step
        let auth_methods = opts.auth.clone();
        let methods = with_deadline(deadline, "auth", opts.connect_timeout, async move {
            tokio::task::spawn_blocking(move || auth::prepare(&auth_methods))
                .await
                .unwrap_or_else(|_| Err(Error::config("privateKey", "reading the private key stopped unexpectedly")))
        })
        .await?;
        let host = bare_host(&opts.host).to_string();
        // bad algorithm names are a ConfigError before any packet is sent
        algorithms::preferred(&opts.algorithms, &[])?;
        match opts.route.clone() {
            Route::Direct => {}
            Route::Proxy(p) => {
                Trace::emit(&opts.trace, || format!("connecting to {host}:{} through proxy {}:{}", opts.port, p.host, p.port));
                let stream = with_deadline(deadline, "connect", opts.connect_timeout, transport::connect_via_proxy(&p, &host, opts.port)).await?;
                return Self::handshake(opts, stream, methods, deadline, Guard::default(), true).await;
            }
            Route::ProxyCommand { template, original_host } => {
                let command = transport::expand_proxy_command(&template, &host, opts.port, &opts.username, &original_host)?;
                // its command line can carry secrets (a token in an environment assignment): not traced
                Trace::emit(&opts.trace, || "running the proxy command".to_string());
                let (mut pc, stream) = transport::spawn_proxy_command(&command)?;
                let r = Self::handshake(opts, stream, methods, deadline, Guard::default(), true).await;
                return match r {
                    Ok(c) => {
                        *c.proxy_command.lock().unwrap_or_else(|p| p.into_inner()) = Some(pc);
                        Ok(c)
                    }
                    Err(e) => Err(proxy_command_error(&mut pc, e).await),
                };
            }
            Route::Stream(slot) => {
                let stream = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                let stream = stream.ok_or_else(|| Error::config("sock", "this stream was already used for a connection"))?;
                return Self::handshake(opts, stream, methods, deadline, Guard::default(), true).await;
            }
            Route::Via { parent, owned } => {
                Trace::emit(&opts.trace, || format!("connecting to {host}:{} through {}:{}", opts.port, parent.host(), parent.port()));
                let ch = with_deadline(deadline, "connect", opts.connect_timeout, parent.open_direct_tcpip(&host, opts.port, "127.0.0.1", 0)).await?;
                let stream = transport::channel_stream(ch);
                let guard = Guard { proxy_command: None, parent: Some((Arc::clone(&parent), owned)) };
                return Self::handshake(opts, stream, methods, deadline, guard, true).await;
            }
        }
        let address = if host.contains(':') { format!("[{host}]:{}", opts.port) } else { format!("{host}:{}", opts.port) };
        Trace::emit(&opts.trace, || format!("connecting to {address}"));
        let stream = with_deadline(deadline, "connect", opts.connect_timeout, async {
            // an address needs no resolver (getaddrinfo runs on a blocking thread per call)
            let r = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => TcpStream::connect(std::net::SocketAddr::new(ip, opts.port)).await,
                Err(_) => TcpStream::connect((host.as_str(), opts.port)).await,
            };
            r.map_err(|e| Error::Connect {
                address: address.clone(),
                cause: e.to_string(),
                errno: errno_name(&e),
            })
        })
        .await?;
        if opts.nodelay {
            let _ = stream.set_nodelay(true);
        }
        Trace::emit(&opts.trace, || match stream.peer_addr() {
            Ok(a) => format!("connection established to {a}"),
            Err(_) => "connection established".into(),
        });
        Self::handshake(opts, crate::quickack::QuickAck::new(stream), methods, deadline, Guard::default(), false).await
    }

    /// Runs SSH over an already connected stream (proxies, jump hosts, tests).
    pub async fn connect_stream<S>(opts: ConnectOptions, stream: S, cancel: Option<CancelToken>) -> Result<Client>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        CancelToken::run(cancel.as_ref(), async move {
            validate(&opts)?;
            let methods = auth::prepare(&opts.auth)?;
            let deadline = opts.connect_timeout.map(|t| Instant::now() + t);
            Self::handshake(opts, stream, methods, deadline, Guard::default(), true).await
        })
        .await
    }

    async fn handshake<S>(opts: ConnectOptions, stream: S, methods: Vec<auth::Prepared>, deadline: Option<Instant>, guard: Guard, through_hop: bool) -> Result<Client>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let host = bare_host(&opts.host).to_string();
        // read once, off the runtime's thread and under the deadline (and the abort)
        let known_hosts = with_deadline(deadline, "handshake", opts.connect_timeout, host_key::KnownHostsSnapshot::load(&opts.host_key)).await?;
        let _give_up = known_hosts.give_up_on_drop();
        let known = known_hosts.known_algorithms(&opts.host_key, &host, opts.port);
        let mut preferred = algorithms::preferred(&opts.algorithms, &known)?;
        if known_hosts.has_cert_authority(&opts.host_key, &host, opts.port) {
            // a @cert-authority line for this host: ask for host certificates first
            preferred.host_key_certificates = preferred.key.clone();
        }
        let config = client::Config {
            preferred,
            keepalive_interval: opts.keepalive_interval,
            keepalive_max: opts.keepalive_count_max,
            nodelay: opts.nodelay,
            // OpenSSH's own channel window. A larger one measured slower on every path, up to
            // 2.5x on a port forward (sshd then buffers more than it can move per turn), and
            // russh reopens it as data arrives anyway (our buffers bound memory, not the window).
            window_size: 2 * 1024 * 1024,
            inactivity_timeout: None,
            ..Default::default()
        };
        // from here on russh's session task owns the stream: every way out of this function but
        // success (an error, the deadline, an abort dropping it) must end that task too
        let switch = KillSwitch::default();
        let armed = Armed::new(switch.clone());
        let shared = Arc::new(ConnShared {
            trace: opts.trace.clone(),
            x11: Arc::new(Mutex::new(None)),
            remote_tcp: Mutex::new(Vec::new()),
            remote_unix: Mutex::new(HashMap::new()),
            channels: Mutex::new(HashMap::new()),
            state: Mutex::new(ConnState::default()),
            closed: Notify::new(),
            limits: opts.buffer,
            agent_requested: std::sync::atomic::AtomicBool::new(false),
        });
        let handler = ClientHandler {
            shared: Arc::clone(&shared),
            policy: opts.host_key.clone(),
            known_hosts,
            host: host.clone(),
            port: opts.port,
            agent_socket: opts.agent_forward.clone(),
            abandoned: switch.clone(),
        };
        let stream = transport::Killable::new(transport::VersionCheck::new(stream), switch);
        let mut handle = with_deadline(deadline, "handshake", opts.connect_timeout, async {
            client::connect_stream(Arc::new(config), stream, handler).await.map_err(|e| {
                if let Some(hk) = shared.state().host_key_error.take() {
                    return hk;
                }
                match e {
                    russh::Error::UnknownKey => Error::Protocol { message: "the server's host key was not accepted".into() },
                    other => Error::from(other),
                }
            })
        })
        .await?;
        let target = if opts.port == 22 { host.clone() } else { format!("{host}:{}", opts.port) };
        let authed = with_deadline(deadline, "auth", opts.connect_timeout, auth::authenticate(&mut handle, &opts.username, methods, &target, &opts.trace)).await;
        if let Err(e) = authed {
            // a server that ends the connection during authentication (MaxAuthTries, a cut)
            // makes russh report the method in flight as failed: the disconnect is the answer
            if matches!(e, Error::Auth { .. }) {
                if handle.is_closed() || shared.close_error().is_some() {
                    return Err(shared.close_error().unwrap_or_else(|| Error::disconnected("the server closed the connection during authentication")));
                }
            }
            // the session sends the disconnect and ends by itself; one that cannot (a server that
            // stopped reading) is ended by the kill switch when `armed` goes
            let polite = async {
                let _ = handle.disconnect(Disconnect::ByApplication, "", "").await;
                let _ = (&mut handle).await;
            };
            let _ = tokio::time::timeout(DISCONNECT_GRACE, polite).await;
            return Err(e);
        }
        armed.disarm();
        Ok(Client {
            handle: Arc::new(handle),
            shared,
            sessions: Arc::new(Semaphore::new(opts.max_sessions)),
            host,
            port: opts.port,
            agent_forward_default: opts.agent_forward.is_some() && opts.agent_forward_all,
            agent_forward_possible: opts.agent_forward.is_some(),
            proxy_command: Mutex::new(guard.proxy_command),
            parent: guard.parent,
            through_hop,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn negotiated(&self) -> Option<Negotiated> {
        self.shared.state().negotiated.clone()
    }

    pub fn host_key(&self) -> Option<HostKeyInfo> {
        self.shared.state().host_key.clone()
    }

    pub fn banner(&self) -> Option<String> {
        self.shared.state().banner.clone()
    }

    pub fn is_closed(&self) -> bool {
        self.shared.state().closed
    }

    pub fn close_error(&self) -> Option<Error> {
        self.shared.close_error()
    }

    /// The connection's shared state, for what outlives a borrow of the client.
    pub(crate) fn conn_shared(&self) -> Arc<ConnShared> {
        Arc::clone(&self.shared)
    }

    /// Runs `f` once when the connection ends (at once if it already has), with the
    /// error that ended it, or None after `close()`.
    pub fn on_close(&self, f: impl FnOnce(Option<Error>) + Send + 'static) {
        let mut st = self.shared.state();
        if st.closed {
            let err = st.error.clone();
            drop(st);
            f(err);
        } else {
            st.on_close.push(Box::new(f));
        }
    }

    /// Waits until the connection has ended.
    pub async fn closed(&self) {
        loop {
            let n = self.shared.closed.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.is_closed() {
                return;
            }
            n.await;
        }
    }

    /// Ends the connection politely and waits (briefly) for the event loop to finish.
    pub async fn close(&self) {
        {
            let mut st = self.shared.state();
            if st.closed {
                return;
            }
            st.user_closed = true;
        }
        // a stream paused at its high-water mark holds the event loop, and with it the
        // disconnect (queued behind channel writes that wait for it): release it first
        let chans: Vec<Arc<ChannelShared>> = self.shared.channels().values().cloned().collect();
        for c in chans {
            c.stop_for_close();
        }
        // bounded as a whole: a server that never answers (or a loop still stuck) ends here
        let polite = async {
            let _ = self.handle.disconnect(Disconnect::ByApplication, "", "en").await;
            self.closed().await;
        };
        if tokio::time::timeout(Duration::from_secs(3), polite).await.is_err() {
            self.shared.finish(None);
        }
        self.release_transport().await;
    }

    /// Ends what carried this connection: the proxy command, a jump host we opened.
    async fn release_transport(&self) {
        let pc = self.proxy_command.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut pc) = pc {
            let _ = pc.child.kill().await;
        }
        if let Some((parent, true)) = &self.parent {
            Box::pin(parent.close()).await;
        }
    }

    /// Opens a direct-tcpip channel (RFC 4254 §7.2): the server connects to host:port.
    /// These do not count against maxSessions (OpenSSH limits only sessions).
    pub async fn open_direct_tcpip(&self, host: &str, port: u16, originator: &str, originator_port: u16) -> Result<Channel> {
        // RFC 4254 §7.2 carries the address itself: sshd would look up "[::1]" as a name
        let host = bare_host(host);
        if let Some(e) = self.close_error() {
            return Err(e);
        }
        // sshd drops the whole connection over a NUL in a string: refuse it here, for this open only
        if host.contains('\0') || originator.contains('\0') {
            return Err(Error::config("host", format!("{:?} is not a host name (it contains NUL)", host)));
        }
        let ch = self
            .with_ack_nudges(self.open_detached({
                let (host, originator) = (host.to_string(), originator.to_string());
                move |h| async move { h.channel_open_direct_tcpip(host, port as u32, originator, originator_port as u32).await }
            }))
            .await
            .map_err(|e| match e {
                russh::Error::ChannelOpenFailure(r) => {
                    let reason = crate::error::channel_open_failure_name(&r);
                    Error::channel(reason, format!("the server could not open a connection to {host}:{port} ({reason})"))
                }
                other => self.close_error().unwrap_or_else(|| Error::from(other)),
            })?;
        Trace::emit(&self.shared.trace, || format!("channel {}: direct-tcpip to {host}:{port}", ch.shared.id));
        Ok(ch)
    }

    /// Opens a direct-streamlocal channel: the server connects to a Unix socket.
    pub async fn open_direct_streamlocal(&self, path: &str) -> Result<Channel> {
        if let Some(e) = self.close_error() {
            return Err(e);
        }
        if path.contains('\0') {
            return Err(Error::config("path", format!("{path:?} is not a socket path (it contains NUL)")));
        }
        let ch = self
            .with_ack_nudges(self.open_detached({
                let path = path.to_string();
                move |h| async move { h.channel_open_direct_streamlocal(path).await }
            }))
            .await
            .map_err(|e| match e {
            russh::Error::ChannelOpenFailure(r) => {
                let reason = crate::error::channel_open_failure_name(&r);
                Error::channel(reason, format!("the server could not open a connection to {path} ({reason})"))
            }
            other => self.close_error().unwrap_or_else(|| Error::from(other)),
        })?;
        Ok(ch)
    }

    /// -R: asks the server to listen on bind_address:port (0 = any port) and send its
    /// connections to `target`. Returns the port the server bound.
    pub async fn forward_remote(&self, bind_address: &str, port: u16, target: Target) -> Result<u16> {
        let spec = format!("{bind_address}:{port} → {}", target.describe());
        // the request carries the bare literal: `[::1]` → `::1`
        let bind_address = bare_host(bind_address);
        // a fixed port is recorded before the request: sshd can send the first connections
        // before its reply has been read, and they would be refused as unknown
        let token = CancelToken::new();
        let early = port != 0;
        if early {
            self.shared.remote_tcp.lock().unwrap_or_else(|p| p.into_inner()).push((bind_address.to_string(), port as u32, target.clone(), token.clone()));
        }
        let asked = self.handle.tcpip_forward(bind_address, port as u32).await.map_err(|e| match e {
            russh::Error::RequestDenied => Error::Forward {
                spec: spec.clone(),
                message: "the server refused to listen there (AllowTcpForwarding, GatewayPorts, a port in use or below 1024?)".into(),
            },
            other => self.close_error().unwrap_or_else(|| Error::from(other)),
        });
        let bound = match asked {
            Ok(b) => b,
            Err(e) => {
                // only this request's entry goes: it is the one whose token is cancelled
                token.cancel();
                self.shared.remote_tcp.lock().unwrap_or_else(|p| p.into_inner()).retain(|(.., t)| !t.is_cancelled());
                return Err(e);
            }
        };
        let bound = if bound == 0 { port as u32 } else { bound };
        if !early {
            self.shared.remote_tcp.lock().unwrap_or_else(|p| p.into_inner()).push((bind_address.to_string(), bound, target, token));
        }
        Ok(bound as u16)
    }

    pub async fn cancel_forward_remote(&self, bind_address: &str, port: u16) -> Result<()> {
        // the request carries the bare literal: `[::1]` → `::1`
        let bind_address = bare_host(bind_address);
        self.shared.remote_tcp.lock().unwrap_or_else(|p| p.into_inner()).retain(|(a, p, _, stop)| {
            let this = a == bind_address && *p == port as u32;
            if this {
                stop.cancel();
            }
            !this
        });
        if self.is_closed() {
            return Ok(());
        }
        self.handle.cancel_tcpip_forward(bind_address, port as u32).await.map_err(Error::from)
    }

    /// -R with a remote Unix socket (streamlocal-forward@openssh.com).
    pub async fn forward_remote_unix(&self, path: &str, target: Target) -> Result<()> {
        // recorded before the request, as for a fixed TCP port (unless that path is forwarded
        // already: the server refuses the second, and the first must stay)
        let spec = format!("{path} → {}", target.describe());
        let early = {
            let mut map = self.shared.remote_unix.lock().unwrap_or_else(|p| p.into_inner());
            let free = !map.contains_key(path);
            if free {
                map.insert(path.to_string(), (target.clone(), CancelToken::new()));
            }
            free
        };
        let asked = self.handle.streamlocal_forward(path).await.map_err(|e| match e {
            russh::Error::RequestDenied => Error::Forward {
                spec: spec.clone(),
                message: "the server refused to listen on that socket (AllowStreamLocalForwarding, an existing file?)".into(),
            },
            other => self.close_error().unwrap_or_else(|| Error::from(other)),
        });
        if let Err(e) = asked {
            if early {
                self.shared.remote_unix.lock().unwrap_or_else(|p| p.into_inner()).remove(path);
            }
            return Err(e);
        }
        if !early {
            self.shared.remote_unix.lock().unwrap_or_else(|p| p.into_inner()).insert(path.to_string(), (target, CancelToken::new()));
        }
        Ok(())
    }

    pub async fn cancel_forward_remote_unix(&self, path: &str) -> Result<()> {
        if let Some((_, stop)) = self.shared.remote_unix.lock().unwrap_or_else(|p| p.into_inner()).remove(path) {
            stop.cancel();
        }
        if self.is_closed() {
            return Ok(());
        }
        self.handle.cancel_streamlocal_forward(path).await.map_err(Error::from)
    }

    /// Awaits the reply to a channel open. Through a hop, sshd's reply can wait behind its
    /// previous small packet (Nagle) until the hop's socket ACKs that one, which it delays
    /// by up to 40 ms when it has nothing to send back: after authentication sshd sends
    /// `hostkeys-00@openssh.com` and SSH_MSG_DEBUG lines (russh answers neither), and only
    /// turns Nagle off when the first session starts. So while the reply is late, a global
    /// request that wants no reply gives the hop something to send, and the ACK rides on it:
    /// the first command through a jump host no longer starts ~40 ms late. On our own TCP
    /// socket TCP_QUICKACK does the same, and no nudge is sent.
    async fn with_ack_nudges<T>(&self, open: impl std::future::Future<Output = T>) -> T {
        if !self.through_hop {
            return open.await;
        }
        nudge_while_pending(open, || async {
            let _ = self.handle.send_global_request(ACK_NUDGE, &[], false).await;
        })
        .await
    }

    /// Opens a session channel, waiting for a free slot under maxSessions, and retrying
    /// an open refused as administratively prohibited: OpenSSH frees a slot only once
    /// it has processed the close of an earlier channel.
    pub async fn open_session(&self, cancel: Option<&CancelToken>) -> Result<Channel> {
        CancelToken::run(cancel, self.open_session_inner()).await
    }

    async fn open_session_inner(&self) -> Result<Channel> {
        if let Some(e) = self.close_error() {
            return Err(e);
        }
        let permit = Arc::clone(&self.sessions)
            .acquire_owned()
            .await
            .map_err(|_| Error::disconnected("the connection was closed"))?;
        // OpenSSH refuses a session open past MaxSessions (as administratively prohibited,
        // or connect-failed in some versions) until it has processed an earlier close.
        let mut delay = Duration::from_millis(2);
        let give_up = Instant::now() + Duration::from_secs(10);
        let ch = loop {
            match self.with_ack_nudges(self.open_detached(|h| async move { h.channel_open_session().await })).await {
                Ok(ch) => break ch,
                Err(russh::Error::ChannelOpenFailure(
                    russh::ChannelOpenFailure::AdministrativelyProhibited
                    | russh::ChannelOpenFailure::ConnectFailed
                    | russh::ChannelOpenFailure::ResourceShortage,
                )) if Instant::now() < give_up => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(200));
                }
                Err(e) => return Err(self.close_error().unwrap_or_else(|| Error::from(e))),
            }
        };
        Trace::emit(&self.shared.trace, || format!("channel {}: session opened", ch.shared.id));
        ch.shared.mark_session();
        ch.shared.set_permit(permit);
        Ok(ch)
    }

    /// Runs one channel open in a task of its own and adopts the channel there. A caller
    /// that stops waiting (an abort, a timeout) leaves the task to finish, and the channel
    /// it opened is then dropped, which closes it: russh keeps a channel whose opener went
    /// away, and nobody would read it (its bytes would fill the buffer and stop the whole
    /// connection) or ever close it (it would hold a session slot on the server).
    fn open_detached<F, Fut>(&self, open: F) -> impl std::future::Future<Output = std::result::Result<Channel, russh::Error>>
    where
        F: FnOnce(Arc<Handle<ClientHandler>>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<russh::Channel<client::Msg>, russh::Error>> + Send + 'static,
    {
        let conn = Arc::clone(&self.shared);
        let opening = open(Arc::clone(&self.handle));
        let task = tokio::spawn(async move { opening.await.map(|ch| conn.adopt(ch)) });
        async move { task.await.unwrap_or(Err(russh::Error::Disconnect)) }
    }

    /// Opens a session and starts `command` (or a shell when None) with env and pty.
    pub async fn start(&self, command: Option<&str>, req: &SessionRequest, cancel: Option<&CancelToken>) -> Result<Channel> {
        let ch = self.open_session(cancel).await?;
        let setup = async {
            for (k, v) in &req.env {
                ch.set_env(k, v).await?;
            }
            if req.agent_forward == Some(true) && !self.agent_forward_possible {
                return Err(Error::config("agentForward", "agent forwarding needs a local agent: set SSH_AUTH_SOCK or pass agentForward with the agent socket at connect"));
            }
            // OpenSSH accepts one agent forwarding request per connection ("requested
            // twice" is refused) and then offers the agent to every later session as well.
            if req.agent_forward.unwrap_or(self.agent_forward_default)
                && self.agent_forward_possible
                && !self.shared.agent_requested.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                if let Err(e) = ch.agent_forward().await {
                    self.shared.agent_requested.store(false, std::sync::atomic::Ordering::SeqCst);
                    return Err(e);
                }
            }
            if let Some(pty) = &req.pty {
                ch.request_pty(pty).await?;
            }
            if let Some(x) = &req.x11 {
                let (_, display_screen) = crate::x11::parse_display(&x.display)?;
                let target = crate::x11::X11Target {
                    display: x.display.clone(),
                    real_cookie: x.real_cookie.clone(),
                    fake_cookie: crate::x11::random_cookie(),
                    single_connection: x.single_connection,
                    screen: x.screen.unwrap_or(display_screen),
                };
                ch.request_x11(&target).await?;
                *self.shared.x11.lock().unwrap_or_else(|p| p.into_inner()) = Some(target);
            }
            // the command itself may hold secrets: only its size is traced
            Trace::emit(&self.shared.trace, || match command {
                Some(c) => format!("channel {}: exec ({} bytes){}", ch.shared.id, c.len(), if req.pty.is_some() { " with pty" } else { "" }),
                None => format!("channel {}: shell", ch.shared.id),
            });
            match command {
                Some(c) => ch.exec(c).await,
                None => ch.shell().await,
            }
        };
        match CancelToken::run(cancel, setup).await {
            Ok(()) => Ok(ch),
            Err(e) => {
                let _ = ch.close().await;
                Err(e)
            }
        }
    }

    /// Opens a session for a subsystem (sftp, netconf, …).
    pub async fn subsystem(&self, name: &str, cancel: Option<&CancelToken>) -> Result<Channel> {
        let ch = self.open_session(cancel).await?;
        match CancelToken::run(cancel, ch.subsystem(name)).await {
            Ok(()) => Ok(ch),
            Err(e) => {
                let _ = ch.close().await;
                Err(e)
            }
        }
    }

    /// Runs a command to completion, collecting its output in Rust.
    pub async fn exec(&self, command: &str, opts: ExecOptions, cancel: Option<&CancelToken>) -> Result<ExecOutput> {
        let req = SessionRequest { env: opts.env.clone(), pty: opts.pty.clone(), agent_forward: opts.agent_forward, x11: opts.x11.clone() };
        // like child_process's timeout, from the call on: a wait for a maxSessions slot or a
        // slow open counts (start() closes a channel it gives up on)
        let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
        let ch = match deadline {
            Some(d) => match tokio::time::timeout_at(d, self.start(Some(command), &req, cancel)).await {
                Ok(r) => r?,
                Err(_) => return Err(Error::timeout("exec", opts.timeout.unwrap_or_default().as_millis() as u64)),
            },
            None => self.start(Some(command), &req, cancel).await?,
        };
        let run = collect(&ch, opts.stdin, opts.max_buffer);
        let run = async {
            match opts.timeout {
                Some(t) => match tokio::time::timeout_at(deadline.unwrap_or_else(|| tokio::time::Instant::now() + t), run).await {
                    Ok(r) => r,
                    Err(_) => Err(Error::timeout("exec", t.as_millis() as u64)),
                },
                None => run.await,
            }
        };
        let out = CancelToken::run(cancel, run).await;
        if out.is_err() || out.as_ref().map(|o| o.truncated).unwrap_or(false) {
            // like child_process's timeout: TERM first, so the server frees the session now
            // instead of when the command ends by itself
            let _ = ch.signal("TERM").await;
            let _ = ch.close().await;
        }
        out
    }
}

async fn collect(ch: &Channel, stdin: Option<Vec<u8>>, max_buffer: Option<usize>) -> Result<ExecOutput> {
    let writer = async {
        if let Some(data) = stdin {
            if !data.is_empty() {
                ch.write(data).await?;
            }
        }
        ch.eof().await
    };
    let reader = async {
        let mut out = ExecOutput::default();
        let limit = max_buffer.unwrap_or(usize::MAX);
        while let Some([o, e]) = ch.shared.next_chunks().await? {
            out.stdout.extend_from_slice(&o);
            out.stderr.extend_from_slice(&e);
            if out.stdout.len() > limit || out.stderr.len() > limit {
                out.stdout.truncate(limit);
                out.stderr.truncate(limit);
                out.truncated = true;
                out.exit = ch.shared.exit_info().unwrap_or_default();
                return Ok::<ExecOutput, Error>(out);
            }
        }
        out.exit = ch.shared.wait_exit().await?;
        Ok(out)
    };
    // stdin errors after the command exited (it stopped reading) do not matter
    let (w, r) = tokio::join!(writer, reader);
    let out = r?;
    if let Err(e) = w {
        if out.exit == ExitInfo::default() && !out.truncated {
            return Err(e);
        }
    }
    Ok(out)
}


#[cfg(test)]
mod tests {

    #[test]
    fn a_name_that_does_not_resolve_is_enotfound_as_node_names_it() {
        let e = std::io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(errno_name(&e).as_deref(), Some("ENOTFOUND"));
        assert_eq!(errno_name(&std::io::Error::from(std::io::ErrorKind::ConnectionRefused)).as_deref(), Some("ECONNREFUSED"));
    }

    #[test]
    fn our_error_carried_through_russh_comes_out_as_it_went_in() {
        let ours = Error::disconnected("the jump host's channel closed");
        let through: Error = russh::Error::IO(std::io::Error::other(ours.clone())).into();
        assert_eq!(through.to_string(), ours.to_string());
    }
    use super::*;

    async fn nudges_until(reply_after: Duration) -> (u32, &'static str) {
        let sent = std::cell::Cell::new(0);
        let r = nudge_while_pending(
            async {
                tokio::time::sleep(reply_after).await;
                "reply"
            },
            || async { sent.set(sent.get() + 1) },
        )
        .await;
        (sent.get(), r)
    }

    #[tokio::test(start_paused = true)]
    async fn late_replies_get_ack_nudges_and_prompt_ones_none() {
        // a reply within 2 ms: nothing extra on the wire
        assert_eq!(nudges_until(Duration::from_millis(1)).await, (0, "reply"));
        // 25 ms late: nudged at 2, 6, 10, 14, 18 and 22 ms
        assert_eq!(nudges_until(Duration::from_millis(25)).await, (6, "reply"));
        // never before the hop's delayed ACK would have fired anyway: ten at most
        assert_eq!(nudges_until(Duration::from_secs(5)).await, (NUDGES_MAX, "reply"));
    }

    /// Every connection in flight holds its connect future: large state machines are boxed
    /// where they are wrapped (with_deadline, cancellation) instead of being held twice.
    #[test]
    fn the_connect_future_stays_small() {
        let opts = ConnectOptions::new("127.0.0.1", "u");
        let outer = std::mem::size_of_val(&Client::connect(opts.clone(), None));
        let inner = std::mem::size_of_val(&Client::connect_inner(opts.clone()));
        let (a, _b) = tokio::io::duplex(16);
        let handshake = std::mem::size_of_val(&Client::handshake(opts, a, Vec::new(), None, Guard::default(), false));
        assert!(outer <= 2048, "connect future is {outer} bytes");
        assert!(inner <= 16 * 1024 && handshake <= 16 * 1024, "connect_inner {inner}, handshake {handshake} bytes");
    }
}
