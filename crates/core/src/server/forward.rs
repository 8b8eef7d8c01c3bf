//! Forwarding on the server side, each behind the embedder's authorisation hook:
//! direct-tcpip (the client asks us to connect somewhere: `ssh -L`, `-D`, `-W`) and
//! tcpip-forward (the client asks us to listen: `ssh -R`). The bytes never leave Rust.

use std::sync::Arc;
use std::time::Duration;

use russh::server::{ChannelOpenHandle, Handle, Msg};
use russh::ChannelOpenFailure;
use tokio::net::{TcpListener, TcpStream};

use super::channel::ServerChannel;
use super::conn::{ConnEntry, RemoteForward};
use super::listener::ServerInner;
use super::{ForwardKind, ForwardRequest};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// tcpip-forward listeners one connection may hold.
const MAX_REMOTE_FORWARDS: usize = 16;

/// Serves a direct-tcpip open: asks the hook, connects, then accepts the channel and copies.
/// Runs as its own task so neither the hook nor the connect holds up the connection.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn direct(
    server: Arc<ServerInner>,
    conn: Arc<ConnEntry>,
    user: String,
    channel: russh::Channel<Msg>,
    reply: ChannelOpenHandle,
    handle: Handle,
    host: String,
    port: u32,
    originator: (String, u32),
) {
    let id = channel.id().number();
    let (read_half, tx) = channel.split();
    // every message of the channel reaches its slot through the handler instead
    drop(read_half);
    let slot = conn.register(id);
    let req = ForwardRequest {
        peer: Arc::clone(&conn.peer),
        user,
        kind: ForwardKind::Direct { host: host.clone(), port, originator_address: originator.0, originator_port: originator.1 },
    };
    let allowed = server.ask_forward(req).await;
    if !allowed {
        reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
        slot.finish(&conn, id, None);
        return;
    }
    let Ok(port16) = u16::try_from(port) else {
        reply.reject(ChannelOpenFailure::ConnectFailed).await;
        slot.finish(&conn, id, None);
        return;
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port16))).await {
        Ok(Ok(s)) => s,
        _ => {
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            slot.finish(&conn, id, None);
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    reply.accept().await;
    let ch = ServerChannel::new(slot, tx, handle, conn);
    let _ = super::bridge::bridge(ch, crate::quickack::QuickAck::new(stream), None).await;
}

/// The addresses a tcpip-forward request names, as things to bind, as sshd reads them
/// (RFC 4254 §7.1): "" and "*" are every address of both families, "localhost" is loopback
/// of both (OpenSSH's `ssh -R port:…` sends it), a bracketed IPv6 literal loses its brackets.
fn bind_addresses(address: &str) -> Vec<&str> {
    match address {
        "" | "*" => vec!["0.0.0.0", "::"],
        "localhost" => vec!["127.0.0.1", "::1"],
        other => vec![other.strip_prefix('[').and_then(|a| a.strip_suffix(']')).unwrap_or(other)],
    }
}

/// A listener on `host:port`; an IPv6 one takes IPv6 only, so the same port can be bound for
/// IPv4 beside it.
async fn bind_one(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let sock = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
        if addr.is_ipv6() {
            sock.set_only_v6(true)?;
        }
        #[cfg(unix)]
        sock.set_reuse_address(true)?;
        sock.set_nonblocking(true)?;
        match sock.bind(&addr.into()).and_then(|_| sock.listen(128)) {
            Ok(()) => return TcpListener::from_std(std::net::TcpListener::from(sock)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address to listen on")))
}

/// Binds every address the request names, on one port: the first decides it (the one picked
/// when 0 was asked for), the others take the same one. As sshd, an address family that
/// cannot be bound (no IPv6 here) is left out as long as one was.
async fn bind_all(address: &str, port: u16) -> Option<Vec<TcpListener>> {
    let mut listeners: Vec<TcpListener> = Vec::new();
    for host in bind_addresses(address) {
        let want = listeners.first().and_then(|l| l.local_addr().ok()).map_or(port, |a| a.port());
        if let Ok(l) = bind_one(host, want).await {
            listeners.push(l);
        }
    }
    if listeners.is_empty() {
        None
    } else {
        Some(listeners)
    }
}

/// Serves a tcpip-forward request: asks the hook, binds, and starts accepting. Returns the
/// port bound (the requested one, or the one picked when 0 was asked for).
pub(crate) async fn remote(server: Arc<ServerInner>, conn: Arc<ConnEntry>, user: String, address: String, port: u32) -> Option<u32> {
    if conn.forwards.lock().unwrap_or_else(|p| p.into_inner()).len() >= MAX_REMOTE_FORWARDS {
        return None;
    }
    let port16 = u16::try_from(port).ok()?;
    let req = ForwardRequest { peer: Arc::clone(&conn.peer), user, kind: ForwardKind::Remote { address: address.clone(), port } };
    if !server.ask_forward(req).await {
        return None;
    }
    let handle = conn.handle()?;
    let listeners = bind_all(&address, port16).await?;
    let bound = listeners[0].local_addr().ok()?.port() as u32;
    let loops: Vec<_> = listeners.into_iter().map(|l| accept_loop(l, Arc::clone(&conn), handle.clone(), address.clone(), bound)).collect();
    // one task for them all: aborting it (cancel, the connection's end) drops the set, which
    // aborts each
    let task = tokio::spawn(async move {
        let mut set = tokio::task::JoinSet::new();
        for l in loops {
            set.spawn(l);
        }
        while set.join_next().await.is_some() {}
    });
    conn.forwards.lock().unwrap_or_else(|p| p.into_inner()).push(RemoteForward { address, port: bound, task });
    Some(bound)
}

pub(crate) fn cancel_remote(conn: &ConnEntry, address: &str, port: u32) -> bool {
    let mut fwds = conn.forwards.lock().unwrap_or_else(|p| p.into_inner());
    let before = fwds.len();
    fwds.retain(|f| {
        let hit = f.address == address && f.port == port;
        if hit {
            f.task.abort();
        }
        !hit
    });
    fwds.len() != before
}

async fn accept_loop(listener: TcpListener, conn: Arc<ConnEntry>, handle: Handle, address: String, port: u32) {
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                // out of file descriptors and the like: back off instead of spinning
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if conn.is_closed() {
            return;
        }
        let _ = sock.set_nodelay(true);
        let (conn, handle, address) = (Arc::clone(&conn), handle.clone(), address.clone());
        tokio::spawn(async move {
            let opened = handle.channel_open_forwarded_tcpip(address, port, peer.ip().to_string(), peer.port() as u32).await;
            let Ok(channel) = opened else { return };
            let id = channel.id().number();
            let (read_half, tx) = channel.split();
            drop(read_half);
            // registered by the handler when the client confirmed; made here if not
            let slot = conn.register(id);
            let ch = ServerChannel::new(slot, tx, handle, conn);
            let _ = super::bridge::bridge(ch, crate::quickack::QuickAck::new(sock), None).await;
        });
    }
}
