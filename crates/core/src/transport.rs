//! Ways to reach the SSH server other than a direct TCP connection: a channel of another
//! connection (jump hosts), a proxy command's stdin/stdout, a SOCKS or HTTP CONNECT proxy.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::cancel::KillSwitch;
use crate::channel::Channel;
use crate::error::{Error, Result};

/// A byte stream the SSH handshake can run over.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

/// Turns a channel (direct-tcpip to the next hop, or an SFTP subsystem) into a stream: reads
/// come straight out of the channel's buffer and writes go straight to the channel, with no
/// copying task or pipe in between. Dropping it closes the channel.
pub fn channel_stream(ch: Channel) -> ChannelStream {
    ChannelStream { ch: Arc::new(ch), writing: None, eof: None }
}

type Pending = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

pub struct ChannelStream {
    ch: Arc<Channel>,
    /// The last write, still waiting for the peer's window (one at a time: write-behind). It
    /// runs as a task of its own: nobody may poll this stream again until there is more to send.
    writing: Option<tokio::task::JoinHandle<Result<()>>>,
    eof: Option<Pending>,
}

fn io_error(e: Error) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, e)
}

impl ChannelStream {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(f) = &mut self.writing {
            let r = ready!(Pin::new(f).poll(cx));
            self.writing = None;
            match r {
                Ok(r) => r.map_err(io_error)?,
                Err(e) => return Poll::Ready(Err(std::io::Error::other(e))),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for ChannelStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let n = ready!(self.ch.shared().poll_read_data(cx, buf.initialize_unfilled())).map_err(io_error)?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ChannelStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        ready!(me.poll_pending(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let ch = Arc::clone(&me.ch);
        let bytes = data.to_vec();
        me.writing = Some(tokio::spawn(async move { ch.write(bytes).await }));
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().poll_pending(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_pending(cx))?;
        let ch = Arc::clone(&me.ch);
        let f = me.eof.get_or_insert_with(|| Box::pin(async move { ch.eof().await }));
        ready!(f.as_mut().poll(cx)).map_err(io_error)?;
        Poll::Ready(Ok(()))
    }
}

/// A running proxy command: its stdin/stdout carry SSH; its stderr is kept (bounded) for errors.
pub struct ProxyCommand {
    pub child: Child,
    pub stderr: Arc<Mutex<Vec<u8>>>,
    pub command: String,
    /// Collects stderr; done once the command closed it.
    pub stderr_reader: Option<tokio::task::JoinHandle<()>>,
}

const STDERR_KEEP: usize = 16 * 1024;

/// Expands `%h %p %r %n %%` (ssh_config(5) TOKENS for ProxyCommand).
pub fn expand_proxy_command(template: &str, host: &str, port: u16, user: &str, original_host: &str) -> Result<String> {
    let mut out = String::new();
    let mut it = template.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('h') => out.push_str(host),
            Some('p') => out.push_str(&port.to_string()),
            Some('r') => out.push_str(user),
            Some('n') => out.push_str(original_host),
            Some('%') => out.push('%'),
            other => {
                return Err(Error::config(
                    "proxyCommand",
                    format!("unknown token %{} in proxy command (use %h %p %r %n %%)", other.map(String::from).unwrap_or_default()),
                ))
            }
        }
    }
    Ok(out)
}

pub fn spawn_proxy_command(command: &str) -> Result<(ProxyCommand, impl Transport)> {
    let mut cmd = if cfg!(windows) {
        let mut c = Command::new("cmd");
        c.arg("/C").arg(command);
        c
    } else {
        // ssh runs it through the user's shell with exec, so the shell does not linger
        let shell = std::env::var("SHELL").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "/bin/sh".into());
        let mut c = Command::new(shell);
        c.arg("-c").arg(format!("exec {command}"));
        c
    };
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| Error::Proxy {
        hop: None,
        host: None,
        command: Some(command.into()),
        stderr: None,
        message: format!("cannot start proxy command {:?}: {e}", program_of(command)),
        cause: None,
    })?;
    let missing = || Error::Protocol { message: "proxy command without pipes".into() };
    let stdin = child.stdin.take().ok_or_else(missing)?;
    let stdout = child.stdout.take().ok_or_else(missing)?;
    let stderr = child.stderr.take().ok_or_else(missing)?;
    let kept = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&kept);
    let reader = tokio::spawn(async move {
        let mut r = BufReader::new(stderr);
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let mut k = sink.lock().unwrap_or_else(|p| p.into_inner());
            let room = STDERR_KEEP.saturating_sub(k.len());
            k.extend_from_slice(&buf[..n.min(room)]);
        }
    });
    Ok((ProxyCommand { child, stderr: kept, command: command.into(), stderr_reader: Some(reader) }, crate::pipes::pipes(stdout, stdin)))
}

impl ProxyCommand {
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner())).trim().to_string()
    }
}

/// A proxy given as a URL: `socks5://[user:pass@]host:port`, `socks5h://…`, `socks4://…`,
/// `socks4a://…`, `http://[user:pass@]host:port` (HTTP CONNECT).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    pub kind: ProxyKind,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyUrl({:?} {}:{}, credentials redacted)", self.kind, self.host, self.port)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Socks5,
    Socks4,
    Socks4a,
    Http,
}

/// RFC 3986 §2.1 percent-decoding of a proxy URL's user or password. A `%` not followed by two
/// hex digits is an error naming `what`, never quoting the text: it is a secret.
fn percent_decode(s: &str, what: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let hex = |j: usize| b.get(j).copied().filter(u8::is_ascii_hexdigit).and_then(|c| (c as char).to_digit(16));
        match (hex(i + 1), hex(i + 2)) {
            (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
            _ => {
                return Err(Error::config(
                    "proxy",
                    format!("the proxy URL's {what} has a '%' not followed by two hex digits (write a literal '%' as %25)"),
                ))
            }
        }
        i += 3;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

impl ProxyUrl {
    pub fn parse(url: &str) -> Result<ProxyUrl> {
        let bad = |why: &str| Error::config("proxy", format!("{why}: expected socks5://[user:pass@]host:port, socks4a://host:port or http://[user:pass@]host:port"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "socks5" | "socks5h" | "socks" => ProxyKind::Socks5,
            "socks4" => ProxyKind::Socks4,
            "socks4a" => ProxyKind::Socks4a,
            "http" => ProxyKind::Http,
            _ => return Err(bad("unsupported proxy scheme")),
        };
        let rest = rest.trim_end_matches('/');
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or_else(|| bad("unbalanced brackets"))?;
            (h.to_string(), p.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no proxy host"));
        }
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("bad port"))?,
            None => match kind {
                ProxyKind::Http => 80,
                _ => 1080,
            },
        };
        let (user, password) = match auth {
            Some(a) => match a.split_once(':') {
                Some((u, p)) => (Some(percent_decode(u, "user name")?), Some(percent_decode(p, "password")?)),
                None => (Some(percent_decode(a, "user name")?), None),
            },
            None => (None, None),
        };
        Ok(ProxyUrl { kind, host, port, user, password })
    }
}

fn proxy_err(p: &ProxyUrl, message: String) -> Error {
    Error::Proxy { hop: None, host: Some(format!("{}:{}", p.host, p.port)), command: None, stderr: None, message, cause: None }
}

/// Connects through the proxy to `host:port` and returns the tunnelled stream.
pub async fn connect_via_proxy(p: &ProxyUrl, host: &str, port: u16) -> Result<TcpStream> {
    let mut s = TcpStream::connect((p.host.as_str(), p.port))
        .await
        .map_err(|e| proxy_err(p, format!("cannot connect to the proxy {}:{}: {e}", p.host, p.port)))?;
    let _ = s.set_nodelay(true);
    let io = |e: std::io::Error| proxy_err(p, format!("proxy connection failed: {e}"));
    match p.kind {
        ProxyKind::Socks5 => socks5(&mut s, p, host, port).await?,
        ProxyKind::Socks4 | ProxyKind::Socks4a => socks4(&mut s, p, host, port).await?,
        ProxyKind::Http => http_connect(&mut s, p, host, port).await?,
    }
    s.flush().await.map_err(io)?;
    Ok(s)
}

async fn socks5(s: &mut TcpStream, p: &ProxyUrl, host: &str, port: u16) -> Result<()> {
    let io = |e: std::io::Error| proxy_err(p, format!("SOCKS5 proxy: {e}"));
    // RFC 1928 §3: offer "no auth", and username/password (RFC 1929) when we have them
    let methods: &[u8] = if p.user.is_some() { &[0x00, 0x02] } else { &[0x00] };
    let mut hello = vec![5u8, methods.len() as u8];
    hello.extend_from_slice(methods);
    s.write_all(&hello).await.map_err(io)?;
    let mut r = [0u8; 2];
    s.read_exact(&mut r).await.map_err(io)?;
    if r[0] != 5 {
        return Err(proxy_err(p, "not a SOCKS5 proxy".into()));
    }
    match r[1] {
        0x00 => {}
        0x02 => {
            let (u, pw) = (p.user.clone().unwrap_or_default(), p.password.clone().unwrap_or_default());
            if u.len() > 255 || pw.len() > 255 {
                return Err(Error::config("proxy", "SOCKS5 user name and password must be at most 255 bytes"));
            }
            let mut a = vec![1u8, u.len() as u8];
            a.extend_from_slice(u.as_bytes());
            a.push(pw.len() as u8);
            a.extend_from_slice(pw.as_bytes());
            s.write_all(&a).await.map_err(io)?;
            let mut ar = [0u8; 2];
            s.read_exact(&mut ar).await.map_err(io)?;
            if ar[1] != 0 {
                return Err(proxy_err(p, "the SOCKS5 proxy rejected the user name or password".into()));
            }
        }
        0xff => return Err(proxy_err(p, "the SOCKS5 proxy accepts none of our authentication methods (does it need a user name and password?)".into())),
        m => return Err(proxy_err(p, format!("the SOCKS5 proxy chose an unsupported method {m}"))),
    }
    let mut req = vec![5u8, 1, 0];
    push_socks5_addr(&mut req, host, port)?;
    s.write_all(&req).await.map_err(io)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.map_err(io)?;
    if head[1] != 0 {
        return Err(proxy_err(p, format!("the SOCKS5 proxy could not connect to {host}:{port} ({})", socks5_reply(head[1]))));
    }
    let skip = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l).await.map_err(io)?;
            l[0] as usize
        }
        _ => return Err(proxy_err(p, "malformed SOCKS5 reply".into())),
    };
    let mut rest = vec![0u8; skip + 2];
    s.read_exact(&mut rest).await.map_err(io)?;
    Ok(())
}

pub(crate) fn push_socks5_addr(req: &mut Vec<u8>, host: &str, port: u16) -> Result<()> {
    let bare = host.trim_matches(['[', ']']);
    match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => {
            req.push(1);
            req.extend_from_slice(&a.octets());
        }
        Ok(std::net::IpAddr::V6(a)) => {
            req.push(4);
            req.extend_from_slice(&a.octets());
        }
        Err(_) => {
            if bare.len() > 255 {
                return Err(Error::config("host", "host name longer than 255 bytes"));
            }
            req.push(3);
            req.push(bare.len() as u8);
            req.extend_from_slice(bare.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    Ok(())
}

pub(crate) fn socks5_reply(code: u8) -> &'static str {
    match code {
        1 => "general failure",
        2 => "not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown error",
    }
}

async fn socks4(s: &mut TcpStream, p: &ProxyUrl, host: &str, port: u16) -> Result<()> {
    let io = |e: std::io::Error| proxy_err(p, format!("SOCKS4 proxy: {e}"));
    let mut req = vec![4u8, 1];
    req.extend_from_slice(&port.to_be_bytes());
    let v4 = host.parse::<std::net::Ipv4Addr>().ok();
    match (v4, p.kind) {
        (Some(a), _) => req.extend_from_slice(&a.octets()),
        (None, ProxyKind::Socks4a) => req.extend_from_slice(&[0, 0, 0, 1]),
        (None, _) => {
            let a = tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| proxy_err(p, format!("cannot resolve {host} for SOCKS4 (use socks4a:// to let the proxy resolve it): {e}")))?
                .find_map(|a| match a.ip() {
                    std::net::IpAddr::V4(v) => Some(v),
                    _ => None,
                })
                .ok_or_else(|| proxy_err(p, format!("{host} has no IPv4 address for SOCKS4")))?;
            req.extend_from_slice(&a.octets());
        }
    }
    req.extend_from_slice(p.user.as_deref().unwrap_or("").as_bytes());
    req.push(0);
    if v4.is_none() && p.kind == ProxyKind::Socks4a {
        req.extend_from_slice(host.as_bytes());
        req.push(0);
    }
    s.write_all(&req).await.map_err(io)?;
    let mut r = [0u8; 8];
    s.read_exact(&mut r).await.map_err(io)?;
    if r[1] != 0x5a {
        return Err(proxy_err(p, format!("the SOCKS4 proxy refused the connection to {host}:{port} (code {:#x})", r[1])));
    }
    Ok(())
}

async fn http_connect(s: &mut TcpStream, p: &ProxyUrl, host: &str, port: u16) -> Result<()> {
    use base64::Engine;
    let io = |e: std::io::Error| proxy_err(p, format!("HTTP proxy: {e}"));
    let target = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(u) = &p.user {
        let cred = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{}", p.password.as_deref().unwrap_or("")));
        req.push_str(&format!("Proxy-Authorization: Basic {cred}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.map_err(io)?;
    // read the response head byte by byte-ish: nothing after it may be consumed (it is SSH)
    let mut r = BufReader::with_capacity(1, &mut *s);
    let mut status = String::new();
    let mut total = 0usize;
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).await.map_err(io)?;
        total += n;
        if n == 0 {
            return Err(proxy_err(p, "the HTTP proxy closed the connection during CONNECT".into()));
        }
        if total > 16 * 1024 {
            return Err(proxy_err(p, "the HTTP proxy's response head is too long".into()));
        }
        if status.is_empty() {
            status = line.trim().to_string();
            continue;
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if !code.starts_with('2') {
        let hint = match (code, p.user.is_some()) {
            ("407", false) => " (the proxy needs a user name and password: http://user:pass@host:port)",
            ("407", true) => " (the proxy refused the user name or password given)",
            _ => "",
        };
        // the status line as text a terminal shows safely
        let shown: String = status.chars().take(200).map(|c| if c.is_control() { '?' } else { c }).collect();
        return Err(proxy_err(p, format!("the HTTP proxy refused CONNECT {target}: {shown}{hint}")));
    }
    Ok(())
}

/// The program a proxy command line runs, for messages: the first word that is no
/// `NAME=value` assignment and no `exec`/`env` (the rest of the line may carry secrets).
pub(crate) fn program_of(command: &str) -> &str {
    command
        .split_whitespace()
        .find(|w| !(w.contains('=') && !w.starts_with('=')) && *w != "exec" && *w != "env")
        .unwrap_or("")
}

/// The server's stream, watched until its SSH version line: a server that speaks another
/// protocol version (`SSH-1.5-…`) is refused at once, as OpenSSH's client refuses it ("Protocol
/// major versions differ"), instead of waiting out the handshake timeout (russh takes such a
/// line for one more line before the banner). After the version line it only passes bytes on.
pub(crate) struct VersionCheck<S> {
    inner: S,
    line: Vec<u8>,
    seen: bool,
}

impl<S> VersionCheck<S> {
    pub(crate) fn new(inner: S) -> Self {
        VersionCheck { inner, line: Vec::new(), seen: false }
    }

    fn look(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        for &b in bytes {
            if b != b'\n' {
                if self.line.len() < 256 {
                    self.line.push(b);
                }
                continue;
            }
            if self.line.starts_with(b"SSH-") {
                if !(self.line.starts_with(b"SSH-2.0-") || self.line.starts_with(b"SSH-1.99-")) {
                    let shown: String = String::from_utf8_lossy(&self.line).trim_end().chars().map(|c| if c.is_control() { '?' } else { c }).collect();
                    let e = Error::Protocol { message: format!("the server speaks another SSH protocol version ({shown:?}); only SSH 2.0 is supported") };
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
                }
                self.seen = true;
                return Ok(());
            }
            self.line.clear();
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for VersionCheck<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.seen {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let got = buf.filled()[before..].to_vec();
        Poll::Ready(this.look(&got))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for VersionCheck<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

type Stop = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The session's stream during a connect: once the attempt's kill switch fires, every read,
/// write, flush and shutdown fails at once, waking a read or write that waits on a silent or
/// stalled server, so russh's session task ends and drops the socket. A disarmed switch (the
/// connect succeeded) leaves only a flag check per call. Each direction waits on the switch
/// with its own waker: the read and write halves russh splits the stream into poll apart.
pub(crate) struct Killable<S> {
    inner: S,
    switch: KillSwitch,
    read_stop: Option<Stop>,
    write_stop: Option<Stop>,
}

impl<S> Killable<S> {
    pub(crate) fn new(inner: S, switch: KillSwitch) -> Self {
        Killable { inner, switch, read_stop: None, write_stop: None }
    }
}

/// Ready(Err) once the switch has fired, registering `cx` to be woken when it does.
fn poll_killed(switch: &KillSwitch, stop: &mut Option<Stop>, cx: &mut Context<'_>) -> Poll<std::io::Error> {
    if switch.is_disarmed() {
        *stop = None;
        return Poll::Pending;
    }
    let f = stop.get_or_insert_with(|| {
        let s = switch.clone();
        Box::pin(async move { s.fired().await })
    });
    match f.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "the connect attempt ended")),
        Poll::Pending => Poll::Pending,
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Killable<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Poll::Ready(e) = poll_killed(&this.switch, &mut this.read_stop, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Killable<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if let Poll::Ready(e) = poll_killed(&this.switch, &mut this.write_stop, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if let Poll::Ready(e) = poll_killed(&this.switch, &mut this.write_stop, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Poll::Ready(e) = poll_killed(&this.switch, &mut this.write_stop, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        // a shutdown after the kill would wait on the peer (a jump host's channel EOF): dropping
        // the stream is what closes it
        if let Poll::Ready(e) = poll_killed(&this.switch, &mut this.write_stop, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_proxy_command_is_named_by_its_program_never_its_assignments() {
        assert_eq!(program_of("TOKEN=s3cr3t corp-proxy %h %p"), "corp-proxy");
        assert_eq!(program_of("exec env A=1 B=2 nc %h %p"), "nc");
        assert_eq!(program_of("ssh -W %h:%p -o User=me bastion"), "ssh");
        assert_eq!(program_of("  "), "");
    }
    use super::*;

    #[test]
    fn proxy_urls() {
        let p = ProxyUrl::parse("socks5://al%40ice:p%3Ass@proxy.local:1081").unwrap();
        assert_eq!((p.kind, p.host.as_str(), p.port), (ProxyKind::Socks5, "proxy.local", 1081));
        assert_eq!((p.user.as_deref(), p.password.as_deref()), (Some("al@ice"), Some("p:ss")));
        assert!(!format!("{p:?}").contains("p:ss"));
        assert_eq!(ProxyUrl::parse("http://[::1]:3128").unwrap().host, "::1");
        assert_eq!(ProxyUrl::parse("socks4a://h").unwrap().port, 1080);
        for bad in ["socks5://alice:s3cret%\u{20ac}uro@127.0.0.1:1080", "socks5://al%\u{20ac}ice:pw@h", "http://u:s3cret%4@h", "http://u:s3cret%zz@h", "http://u:s3cret%@h"] {
            let e = ProxyUrl::parse(bad).expect_err(bad).to_string();
            assert!(!e.contains("s3cret") && !e.contains("uro") && !e.contains("ice"), "{e}");
        }
        assert_eq!(ProxyUrl::parse("http://u:100%25@h").unwrap().password.as_deref(), Some("100%"));
        for bad in ["proxy:1080", "ftp://h:1", "socks5://:1080", "socks5://h:0", "socks5://h:99999", "http://[::1:80"] {
            assert!(ProxyUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proxy_command_tokens() {
        assert_eq!(expand_proxy_command("nc %h %p # %r %n %%", "db", 2222, "ops", "db-alias").unwrap(), "nc db 2222 # ops db-alias %");
        assert!(expand_proxy_command("nc %x", "h", 22, "u", "h").is_err());
        assert!(expand_proxy_command("nc %", "h", 22, "u", "h").is_err());
    }

    #[test]
    fn socks5_addresses() {
        let mut v = Vec::new();
        push_socks5_addr(&mut v, "10.1.2.3", 22).unwrap();
        assert_eq!(v, [1, 10, 1, 2, 3, 0, 22]);
        v.clear();
        push_socks5_addr(&mut v, "::1", 22).unwrap();
        assert_eq!(v[0], 4);
        v.clear();
        push_socks5_addr(&mut v, "db", 22).unwrap();
        assert_eq!(v, [3, 2, b'd', b'b', 0, 22]);
    }

    #[tokio::test]
    async fn a_fired_kill_switch_wakes_a_read_waiting_on_a_silent_peer() {
        let (ours, _silent_peer) = tokio::io::duplex(64);
        let switch = KillSwitch::default();
        let mut s = Killable::new(ours, switch.clone());
        let read = tokio::spawn(async move {
            let mut b = [0u8; 8];
            s.read(&mut b).await
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!read.is_finished());
        switch.fire();
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), read).await.expect("the read woke").expect("task");
        assert_eq!(r.map_err(|e| e.kind()).err(), Some(std::io::ErrorKind::ConnectionAborted));
    }

    #[tokio::test]
    async fn a_disarmed_kill_switch_passes_bytes_through() {
        let (ours, mut peer) = tokio::io::duplex(64);
        let switch = KillSwitch::default();
        let mut s = Killable::new(ours, switch.clone());
        assert!(switch.disarm());
        switch.fire();
        s.write_all(b"SSH-2.0-x\r\n").await.unwrap();
        let mut b = [0u8; 11];
        peer.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"SSH-2.0-x\r\n");
        peer.write_all(b"ok").await.unwrap();
        let mut r = [0u8; 2];
        s.read_exact(&mut r).await.unwrap();
        assert_eq!(&r, b"ok");
    }
}
