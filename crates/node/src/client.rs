//! `NativeClient`: one SSH connection. Keeps Node's event loop alive while connected
//! through a ref'd threadsafe function (its close callback), released when it ends.

use std::sync::{Arc, Mutex};

use ferrossh_core::{Client, ExecOptions, SessionRequest};
use napi::bindgen_prelude::{Buffer, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;

use crate::cancel::NativeCancel;
use crate::channel::NativeChannel;
use crate::errors::{self, IntoNapi};
use crate::pending::Pending;
use crate::options::{self, KbdFn, NativeConnectOptions, NativeHostKeyInfo, NativePty, VerifyFn};

type CloseFn = ThreadsafeFunction<Option<String>, (), Option<String>, Status, false>;
/// Weak: a trace callback must never keep the process alive.
type DebugFn = ThreadsafeFunction<String, (), String, Status, false, true>;

#[napi]
pub struct NativeClient {
    inner: Arc<Client>,
    keep_alive: Arc<Mutex<Option<CloseFn>>>,
    /// Calls in flight, held by the process only while the connection is (see pending.rs).
    pending: Arc<Pending>,
}

#[napi(object)]
pub struct NativeNegotiated {
    pub kex: String,
    pub host_key: String,
    pub cipher: String,
    pub mac: String,
    pub mac_server_to_client: String,
    pub compression: String,
    pub compression_server_to_client: String,
}

#[napi(object)]
pub struct NativeExecOptions {
    pub env: Option<Vec<Vec<String>>>,
    pub pty: Option<NativePty>,
    pub stdin: Option<Buffer>,
    pub max_buffer: Option<f64>,
    pub timeout_ms: Option<f64>,
    pub agent_forward: Option<bool>,
    pub x11: Option<NativeX11>,
}

#[napi(object)]
pub struct NativeExitInfo {
    pub code: Option<u32>,
    pub signal: Option<String>,
    pub core_dumped: bool,
    pub message: Option<String>,
}

impl From<ferrossh_core::ExitInfo> for NativeExitInfo {
    fn from(e: ferrossh_core::ExitInfo) -> Self {
        NativeExitInfo { code: e.code, signal: e.signal, core_dumped: e.core_dumped, message: e.message }
    }
}

#[napi(object)]
pub struct NativeExecOutput {
    pub stdout: Buffer,
    pub stderr: Buffer,
    pub exit: NativeExitInfo,
    pub truncated: bool,
}

#[napi(object)]
pub struct NativeSessionOptions {
    pub env: Option<Vec<Vec<String>>>,
    pub pty: Option<NativePty>,
    pub agent_forward: Option<bool>,
    pub x11: Option<NativeX11>,
}

#[napi(object)]
pub struct NativeX11 {
    /// `:N`, `host:N` or a socket path
    pub display: String,
    /// The local display's MIT-MAGIC-COOKIE-1 in hex (none: the X server needs no cookie)
    pub cookie: Option<String>,
    pub single: Option<bool>,
    pub screen: Option<u32>,
}

fn x11(o: Option<NativeX11>) -> napi::Result<Option<ferrossh_core::X11Options>> {
    let Some(o) = o else { return Ok(None) };
    let cookie = match o.cookie.as_deref() {
        None | Some("") => Vec::new(),
        Some(h) => decode_hex(h).ok_or_else(|| errors::to_napi(ferrossh_core::Error::config("x11.cookie", "x11.cookie must be an even number of hex digits")))?,
    };
    Ok(Some(ferrossh_core::X11Options { display: o.display, real_cookie: cookie, single_connection: o.single.unwrap_or(false), screen: o.screen }))
}

fn decode_hex(h: &str) -> Option<Vec<u8>> {
    if h.len() % 2 != 0 || h.len() > 512 {
        return None;
    }
    (0..h.len()).step_by(2).map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok()).collect()
}

fn env_pairs(env: Option<Vec<Vec<String>>>) -> napi::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for pair in env.unwrap_or_default() {
        match <[String; 2]>::try_from(pair) {
            Ok([k, v]) => {
                if k.is_empty() || k.contains('=') || k.contains('\0') {
                    return Err(errors::to_napi(ferrossh_core::Error::config("env", format!("invalid environment variable name {k:?}"))));
                }
                out.push((k, v));
            }
            Err(_) => return Err(errors::to_napi(ferrossh_core::Error::config("env", "env entries must be [name, value]"))),
        }
    }
    Ok(out)
}

fn session_request(o: Option<NativeSessionOptions>) -> napi::Result<SessionRequest> {
    let Some(o) = o else { return Ok(SessionRequest::default()) };
    Ok(SessionRequest {
        env: env_pairs(o.env)?,
        pty: o.pty.map(options::pty).transpose().js()?,
        agent_forward: o.agent_forward,
        x11: x11(o.x11)?,
    })
}

impl NativeClient {
    pub(crate) fn core_arc(&self) -> Arc<Client> {
        Arc::clone(&self.inner)
    }

    /// Calls in flight on this connection, for other objects' calls to join.
    pub(crate) fn pending(&self) -> &Arc<Pending> {
        &self.pending
    }
}

#[napi]
impl NativeClient {
    /// Connects and authenticates. `on_close` is called once when the connection ends
    /// (with a serialized error, or null after close()); until then it keeps Node alive.
    #[napi(
        ts_args_type = "options: NativeConnectOptions, onClose: (err: string | null) => void, verify?: (key: NativeHostKeyInfo) => Promise<boolean>, keyboardInteractive?: (req: NativeKbdRequest) => Promise<string[] | null>, cancel?: NativeCancel, debug?: (line: string) => void, via?: NativeClient, viaOwned?: boolean, sock?: NativeSocketBridge"
    )]
    pub async fn connect(
        options: NativeConnectOptions,
        on_close: CloseFn,
        verify: Option<VerifyFn>,
        keyboard_interactive: Option<KbdFn>,
        cancel: Option<&NativeCancel>,
        debug: Option<DebugFn>,
        via: Option<&NativeClient>,
        via_owned: Option<bool>,
        sock: Option<&crate::sock::NativeSocketBridge>,
    ) -> napi::Result<NativeClient> {
        let mut opts = options::connect_options(options, verify, keyboard_interactive).js()?;
        if let Some(parent) = via {
            if !matches!(opts.route, ferrossh_core::Route::Direct) {
                return Err(errors::to_napi(ferrossh_core::Error::config("proxyJump", "a jump host cannot be combined with proxy or proxyCommand")));
            }
            opts.route = ferrossh_core::Route::Via { parent: Arc::clone(&parent.inner), owned: via_owned.unwrap_or(false) };
        }
        if let Some(s) = sock {
            if !matches!(opts.route, ferrossh_core::Route::Direct) {
                return Err(errors::to_napi(ferrossh_core::Error::config("sock", "sock cannot be combined with proxyJump, proxy or proxyCommand")));
            }
            opts.route = ferrossh_core::Route::Stream(Arc::clone(&s.ssh_side));
        }
        if let Some(f) = debug {
            let f = Arc::new(f);
            opts.trace = Some(ferrossh_core::Trace(Arc::new(move |line: String| {
                f.call(line, ThreadsafeFunctionCallMode::NonBlocking);
            })));
        }
        let token = cancel.map(|c| c.token.clone());
        let client = Arc::new(Client::connect(opts, token).await.js()?);
        let keep_alive = Arc::new(Mutex::new(Some(on_close)));
        let ka = Arc::clone(&keep_alive);
        client.on_close(move |err| {
            let f = ka.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(f) = f {
                f.call(err.as_ref().map(errors::to_string), ThreadsafeFunctionCallMode::NonBlocking);
                // dropping `f` releases the threadsafe function: Node may exit now
            }
        });
        Ok(NativeClient { inner: client, keep_alive, pending: Arc::default() })
    }

    /// Stop (false) or resume (true) keeping the process alive while connected.
    #[napi]
    pub fn set_ref(&self, env: Env, keep: bool) -> napi::Result<()> {
        self.pending.set_ref(&env, keep);
        crate::set_keep_alive_ref(&self.keep_alive, &env, keep)
    }

    #[napi(getter)]
    pub fn algorithms(&self) -> Option<NativeNegotiated> {
        self.inner.negotiated().map(|n| NativeNegotiated {
            kex: n.kex,
            host_key: n.host_key,
            cipher: n.cipher,
            mac: n.mac,
            mac_server_to_client: n.mac_server_to_client,
            compression: n.compression,
            compression_server_to_client: n.compression_server_to_client,
        })
    }

    #[napi(getter)]
    pub fn host_key(&self) -> Option<NativeHostKeyInfo> {
        self.inner.host_key().map(Into::into)
    }

    #[napi(getter)]
    pub fn banner(&self) -> Option<String> {
        self.inner.banner()
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Runs `command` and collects its output; `done(err, out)` settles it.
    #[napi(ts_args_type = "command: string, options: NativeExecOptions | undefined | null, cancel: NativeCancel | undefined | null, done: (err: Error | null, out?: NativeExecOutput) => void")]
    pub fn exec(&self, env: Env, command: String, options: Option<NativeExecOptions>, cancel: Option<&NativeCancel>, done: Function<'_, NativeExecOutput, ()>) -> napi::Result<()> {
        let mut opts = ExecOptions::default();
        if let Some(o) = options {
            opts.env = env_pairs(o.env)?;
            opts.pty = o.pty.map(options::pty).transpose().js()?;
            opts.stdin = o.stdin.map(|b| b.to_vec());
            opts.max_buffer = o.max_buffer.filter(|m| m.is_finite() && *m >= 0.0).map(|m| m as usize);
            opts.agent_forward = o.agent_forward;
            opts.x11 = x11(o.x11)?;
            opts.timeout = o.timeout_ms.filter(|t| t.is_finite() && *t > 0.0).map(|t| std::time::Duration::from_millis(t as u64));
        }
        let token = cancel.map(|c| c.token.clone());
        let client = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            let out = client.exec(&command, opts, token.as_ref()).await.js()?;
            Ok(NativeExecOutput { stdout: out.stdout.into(), stderr: out.stderr.into(), exit: out.exit.into(), truncated: out.truncated })
        })
    }

    /// Starts `command` (a shell when null); `done(err, channel)` hands over its channel.
    #[napi(ts_args_type = "command: string | undefined | null, options: NativeSessionOptions | undefined | null, cancel: NativeCancel | undefined | null, done: (err: Error | null, channel?: NativeChannel) => void")]
    pub fn start(&self, env: Env, command: Option<String>, options: Option<NativeSessionOptions>, cancel: Option<&NativeCancel>, done: Function<'_, NativeChannel, ()>) -> napi::Result<()> {
        let req = session_request(options)?;
        let token = cancel.map(|c| c.token.clone());
        let client = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            let ch = client.start(command.as_deref(), &req, token.as_ref()).await.js()?;
            Ok(NativeChannel::new(ch))
        })
    }

    #[napi(ts_args_type = "name: string, cancel: NativeCancel | undefined | null, done: (err: Error | null, channel?: NativeChannel) => void")]
    pub fn subsystem(&self, env: Env, name: String, cancel: Option<&NativeCancel>, done: Function<'_, NativeChannel, ()>) -> napi::Result<()> {
        let token = cancel.map(|c| c.token.clone());
        let client = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            let ch = client.subsystem(&name, token.as_ref()).await.js()?;
            Ok(NativeChannel::new(ch))
        })
    }

    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        self.inner.close().await;
        Ok(())
    }

    /// A direct-tcpip channel to host:port, as a stream.
    #[napi(ts_args_type = "host: string, port: number, cancel: NativeCancel | undefined | null, done: (err: Error | null, channel?: NativeChannel) => void")]
    pub fn open_tcp(&self, env: Env, host: String, port: u32, cancel: Option<&NativeCancel>, done: Function<'_, NativeChannel, ()>) -> napi::Result<()> {
        let port = crate::forward::port("port", port)?;
        let token = cancel.map(|c| c.token.clone());
        let client = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            let ch = ferrossh_core::CancelToken::run(token.as_ref(), client.open_direct_tcpip(&host, port, "127.0.0.1", 0)).await.js()?;
            Ok(NativeChannel::new(ch))
        })
    }

    /// A direct-streamlocal channel to a Unix socket on the server, as a stream.
    #[napi(ts_args_type = "path: string, cancel: NativeCancel | undefined | null, done: (err: Error | null, channel?: NativeChannel) => void")]
    pub fn open_unix(&self, env: Env, path: String, cancel: Option<&NativeCancel>, done: Function<'_, NativeChannel, ()>) -> napi::Result<()> {
        let token = cancel.map(|c| c.token.clone());
        let client = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            let ch = ferrossh_core::CancelToken::run(token.as_ref(), client.open_direct_streamlocal(&path)).await.js()?;
            Ok(NativeChannel::new(ch))
        })
    }

    // Forward set-up and tear-down settle through `done` as well: see `exec`.
    #[napi(ts_args_type = "spec: NativeLocalForward, done: (err: Error | null, value?: NativeForward) => void")]
    pub fn forward_local(&self, env: Env, spec: crate::forward::NativeLocalForward, done: Function<'_, crate::forward::NativeForward, ()>) -> napi::Result<()> {
        let client = Arc::clone(&self.inner);
        self.pending.start(&env, done, crate::forward::local(client, spec))
    }

    #[napi(ts_args_type = "bindHost: string, bindPort: number, done: (err: Error | null, value?: NativeForward) => void")]
    pub fn forward_dynamic(&self, env: Env, bind_host: String, bind_port: u32, done: Function<'_, crate::forward::NativeForward, ()>) -> napi::Result<()> {
        let client = Arc::clone(&self.inner);
        self.pending.start(&env, done, crate::forward::dynamic(client, bind_host, bind_port))
    }

    /// -R: `done` gets the port the server bound.
    #[napi(ts_args_type = "bindAddress: string, port: number, target: NativeTarget, done: (err: Error | null, value?: number) => void")]
    pub fn forward_remote(&self, env: Env, bind_address: String, port: u32, target: crate::forward::NativeTarget, done: Function<'_, u32, ()>) -> napi::Result<()> {
        let port = if port == 0 { 0 } else { crate::forward::port("remotePort", port)? };
        let t = crate::forward::target(target)?;
        let client = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move { Ok(client.forward_remote(&bind_address, port, t).await.js()? as u32) })
    }

    #[napi(ts_args_type = "bindAddress: string, port: number, done: (err: Error | null) => void")]
    pub fn cancel_forward_remote(&self, env: Env, bind_address: String, port: u32, done: Function<'_, (), ()>) -> napi::Result<()> {
        let port = crate::forward::port("remotePort", port)?;
        let client = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move { client.cancel_forward_remote(&bind_address, port).await.js() })
    }

    #[napi(ts_args_type = "path: string, target: NativeTarget, done: (err: Error | null) => void")]
    pub fn forward_remote_unix(&self, env: Env, path: String, target: crate::forward::NativeTarget, done: Function<'_, (), ()>) -> napi::Result<()> {
        let t = crate::forward::target(target)?;
        let client = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move { client.forward_remote_unix(&path, t).await.js() })
    }

    #[napi(ts_args_type = "path: string, done: (err: Error | null) => void")]
    pub fn cancel_forward_remote_unix(&self, env: Env, path: String, done: Function<'_, (), ()>) -> napi::Result<()> {
        let client = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move { client.cancel_forward_remote_unix(&path).await.js() })
    }
}

#[allow(dead_code)]
fn _assert_fn_types(_f: Function<'_, Option<String>, ()>) {}
