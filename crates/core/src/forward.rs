//! Port forwarding, with every forwarded byte copied in Rust: local (-L), dynamic (-D,
//! SOCKS 4/4a/5), remote (-R) to a TCP or Unix target, and the Unix-socket variants.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::quickack::QuickAck;
use tokio::task::JoinSet;

use crate::bridge::bridge;
use crate::cancel::CancelToken;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::transport::socks5_reply;

/// Where a forwarded connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp { host: String, port: u16 },
    Unix { path: String },
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Tcp { host, port } => format!("{host}:{port}"),
            Target::Unix { path } => path.clone(),
        }
    }
}

/// A running listener; dropping or `close()` stops it and every connection it carries.
pub struct ForwardHandle {
    stop: CancelToken,
    pub local_addr: Option<SocketAddr>,
    pub local_path: Option<PathBuf>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ForwardHandle {
    pub async fn close(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        if let Some(p) = &self.local_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for ForwardHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn forward_error(spec: &str, e: impl std::fmt::Display) -> Error {
    Error::Forward { spec: spec.to_string(), message: e.to_string() }
}

/// Opens the channel for one forwarded connection.
async fn open(client: &Client, target: &Target, origin: Option<SocketAddr>) -> Result<crate::channel::Channel> {
    match target {
        Target::Tcp { host, port } => {
            let (oa, op) = origin.map(|a| (a.ip().to_string(), a.port())).unwrap_or_else(|| ("127.0.0.1".into(), 0));
            client.open_direct_tcpip(host, *port, &oa, op).await
        }
        Target::Unix { path } => client.open_direct_streamlocal(path).await,
    }
}

/// Serves accepted connections until stopped; each is bridged in its own task, and all of
/// them end when the listener is stopped.
async fn serve<L, S, F, Fut>(stop: CancelToken, mut accept: L, handle: F)
where
    L: FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<(S, Option<SocketAddr>)>> + Send>>,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(S, Option<SocketAddr>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = accept() => match r {
                Ok((sock, peer)) => { conns.spawn(handle(sock, peer)); }
                // a failed accept (EMFILE, a reset in the backlog) must not end the listener
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

type Accepting<S> = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<(S, Option<SocketAddr>)>> + Send>>;

/// Accepts TCP connections for `serve`, with TCP_NODELAY (forwarded protocols are often
/// interactive).
fn tcp_acceptor(listener: TcpListener) -> impl FnMut() -> Accepting<TcpStream> {
    let listener = Arc::new(listener);
    move || {
        let l = Arc::clone(&listener);
        Box::pin(async move {
            let (s, a) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((s, Some(a)))
        })
    }
}

pub async fn bind_tcp(spec: &str, bind_host: &str, bind_port: u16) -> Result<TcpListener> {
    TcpListener::bind((bind_host.trim_matches(['[', ']']), bind_port)).await.map_err(|e| forward_error(spec, format!("cannot listen on {bind_host}:{bind_port}: {e}")))
}

/// One forwarded connection: a channel to `target`, bridged to it. A refused target closes
/// the connection (as ssh -L does).
async fn forward_one<S: crate::bridge::LocalStream>(client: Arc<Client>, target: Target, sock: S, origin: Option<SocketAddr>) {
    if let Ok(ch) = open(&client, &target, origin).await {
        let _ = bridge(ch, sock).await;
    }
}

/// -L: connections to the local listener go to `target` through the server.
pub async fn forward_local(client: Arc<Client>, listener: TcpListener, target: Target) -> Result<ForwardHandle> {
    let stop = CancelToken::new();
    let local_addr = listener.local_addr().ok();
    let s2 = stop.clone();
    let task = tokio::spawn(async move {
        let accept = tcp_acceptor(listener);
        serve(s2, accept, move |sock, peer| forward_one(Arc::clone(&client), target.clone(), QuickAck::new(sock), peer)).await
    });
    Ok(ForwardHandle { stop, local_addr, local_path: None, task: Some(task) })
}

/// -L with a local Unix socket listener.
#[cfg(unix)]
pub async fn forward_local_unix(client: Arc<Client>, path: PathBuf, target: Target, spec: &str) -> Result<ForwardHandle> {
    let listener = tokio::net::UnixListener::bind(&path).map_err(|e| forward_error(spec, format!("cannot listen on {}: {e}", path.display())))?;
    let stop = CancelToken::new();
    let listener = Arc::new(listener);
    let s2 = stop.clone();
    let task = tokio::spawn(async move {
        let accept = move || {
            let l = Arc::clone(&listener);
            Box::pin(async move {
                let (s, _) = l.accept().await?;
                Ok((s, None))
            }) as Accepting<tokio::net::UnixStream>
        };
        serve(s2, accept, move |sock, peer| forward_one(Arc::clone(&client), target.clone(), sock, peer)).await
    });
    Ok(ForwardHandle { stop, local_addr: None, local_path: Some(path), task: Some(task) })
}

/// -D: a SOCKS 4, 4a and 5 (CONNECT) server; each request becomes a direct-tcpip channel.
pub async fn forward_dynamic(client: Arc<Client>, listener: TcpListener) -> Result<ForwardHandle> {
    let stop = CancelToken::new();
    let local_addr = listener.local_addr().ok();
    let s2 = stop.clone();
    let task = tokio::spawn(async move {
        let accept = tcp_acceptor(listener);
        serve(s2, accept, move |sock, peer| {
            let client = Arc::clone(&client);
            async move {
                let _ = socks_session(client, sock, peer).await;
            }
        })
        .await
    });
    Ok(ForwardHandle { stop, local_addr, local_path: None, task: Some(task) })
}

async fn read_cstring<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<String> {
    let mut out = Vec::new();
    loop {
        let b = s.read_u8().await?;
        if b == 0 {
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        if out.len() >= 255 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "SOCKS4 string too long"));
        }
        out.push(b);
    }
}

/// One SOCKS client: parse its request (RFC 1928 / SOCKS4(a)), open the channel, reply, copy.
async fn socks_session(client: Arc<Client>, mut sock: TcpStream, peer: Option<SocketAddr>) -> std::io::Result<()> {
    let version = sock.read_u8().await?;
    let (target, reply_ok, reply_fail): (Target, Vec<u8>, Vec<u8>) = match version {
        4 => {
            let cmd = sock.read_u8().await?;
            let port = sock.read_u16().await?;
            let mut ip = [0u8; 4];
            sock.read_exact(&mut ip).await?;
            let _user = read_cstring(&mut sock).await?;
            let host = if ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 {
                read_cstring(&mut sock).await? // SOCKS4a: the proxy resolves the name
            } else {
                std::net::Ipv4Addr::from(ip).to_string()
            };
            if cmd != 1 {
                sock.write_all(&[0, 0x5b, 0, 0, 0, 0, 0, 0]).await?;
                return Ok(());
            }
            (Target::Tcp { host, port }, vec![0, 0x5a, 0, 0, 0, 0, 0, 0], vec![0, 0x5b, 0, 0, 0, 0, 0, 0])
        }
        5 => {
            let n = sock.read_u8().await?;
            let mut methods = vec![0u8; n as usize];
            sock.read_exact(&mut methods).await?;
            if !methods.contains(&0) {
                sock.write_all(&[5, 0xff]).await?;
                return Ok(());
            }
            sock.write_all(&[5, 0]).await?;
            let mut head = [0u8; 4];
            sock.read_exact(&mut head).await?;
            // RFC 1928 §4: the request repeats the version; ssh -D closes on anything but 5
            if head[0] != 5 {
                return Ok(());
            }
            let host = match head[3] {
                1 => {
                    let mut a = [0u8; 4];
                    sock.read_exact(&mut a).await?;
                    std::net::Ipv4Addr::from(a).to_string()
                }
                4 => {
                    let mut a = [0u8; 16];
                    sock.read_exact(&mut a).await?;
                    std::net::Ipv6Addr::from(a).to_string()
                }
                3 => {
                    let l = sock.read_u8().await?;
                    let mut name = vec![0u8; l as usize];
                    sock.read_exact(&mut name).await?;
                    String::from_utf8_lossy(&name).into_owned()
                }
                _ => {
                    sock.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
                    return Ok(());
                }
            };
            let port = sock.read_u16().await?;
            if head[1] != 1 {
                sock.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
                return Ok(());
            }
            (Target::Tcp { host, port }, vec![5, 0, 0, 1, 0, 0, 0, 0, 0, 0], vec![5, 5, 0, 1, 0, 0, 0, 0, 0, 0])
        }
        _ => return Ok(()),
    };
    match open(&client, &target, peer).await {
        Ok(ch) => {
            sock.write_all(&reply_ok).await?;
            let _ = bridge(ch, QuickAck::new(sock)).await;
        }
        Err(e) => {
            let mut reply = reply_fail;
            if version == 5 {
                // connect-failed from the server is "connection refused" to the SOCKS client
                reply[1] = if matches!(&e, Error::Channel { reason, .. } if reason == "connect-failed") { 5 } else { 1 };
                let _ = socks5_reply(reply[1]);
            }
            sock.write_all(&reply).await?;
        }
    }
    Ok(())
}

/// Connects a remote-forwarded connection to its local target and copies.
pub(crate) async fn serve_remote(ch: crate::channel::Channel, target: Target) {
    match target {
        Target::Tcp { host, port } => match TcpStream::connect((crate::client::bare_host(&host), port)).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                let _ = bridge(ch, QuickAck::new(s)).await;
            }
            Err(_) => {
                let _ = ch.close().await;
            }
        },
        #[cfg(unix)]
        Target::Unix { path } => match tokio::net::UnixStream::connect(&path).await {
            Ok(s) => {
                let _ = bridge(ch, s).await;
            }
            Err(_) => {
                let _ = ch.close().await;
            }
        },
        #[cfg(not(unix))]
        Target::Unix { .. } => {
            let _ = ch.close().await;
        }
    }
}
