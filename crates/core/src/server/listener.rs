//! The listening server: accepts connections under the connection limits, runs one russh
//! session per connection with an authentication deadline, and shuts down gracefully
//! (sessions may finish until a timeout, then every connection is closed).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::config::{self, ServerOptions};
use super::conn::ConnEntry;
use super::handler::ConnHandler;
use super::root::Root;
use super::{ForwardRequest, HostKeyDescription, PeerInfo, ServerCallbacks};
use crate::error::{Error, Result};

/// An unauthenticated connection silent this long may be dropped for a newcomer.
const STALE: Duration = Duration::from_secs(1);

/// How long a client told to disconnect may take before its socket is cut.
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);

pub(crate) struct ServerInner {
    pub(crate) opts: ServerOptions,
    callbacks: Mutex<Option<Arc<dyn ServerCallbacks>>>,
    pub(crate) sftp_root: Option<Arc<Root>>,
    config: Arc<russh::server::Config>,
    conns: Mutex<HashMap<u64, Arc<ConnEntry>>>,
    closing: AtomicBool,
    changed: Arc<Notify>,
    next_id: AtomicU64,
    /// Connections whose session is still being served.
    live: AtomicUsize,
}

impl ServerInner {
    fn conns(&self) -> MutexGuard<'_, HashMap<u64, Arc<ConnEntry>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The embedder's callbacks, until the server has closed.
    pub(crate) fn callbacks(&self) -> Option<Arc<dyn ServerCallbacks>> {
        self.callbacks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    pub(crate) async fn ask_forward(&self, req: ForwardRequest) -> bool {
        let Some(cb) = self.callbacks() else { return false };
        tokio::time::timeout(self.opts.limits.callback_timeout, cb.forward(req)).await.unwrap_or(false)
    }

    /// Makes room for one more connection: true when it may be admitted. At the connection
    /// limit an unauthenticated connection that has been silent for a while (the longest
    /// first) is dropped for the newcomer: a stalled peer rather than one in the middle of its
    /// handshake, whose silences last a round trip. With none such, the newcomer is turned away.
    fn admit(&self) -> bool {
        let mut conns = self.conns();
        if conns.len() < self.opts.limits.max_connections {
            return true;
        }
        let now = Instant::now();
        let victim = conns
            .values()
            .filter(|c| !c.is_authenticated() && c.idle(now) >= STALE)
            .max_by_key(|c| c.idle(now))
            .map(|c| c.peer.id);
        match victim.and_then(|id| conns.remove(&id)) {
            Some(v) => {
                v.kill();
                true
            }
            None => false,
        }
    }

    /// Keeps unauthenticated connections within `max_startups`: past it, those silent for a
    /// while are dropped, longest silent first. A burst is let in (an honest client in it gets
    /// through in milliseconds); what stalls in it is gone a moment later.
    fn reap(&self) {
        let mut conns = self.conns();
        let limit = self.opts.limits.max_startups;
        let unauth = conns.values().filter(|c| !c.is_authenticated()).count();
        if unauth <= limit {
            return;
        }
        let now = Instant::now();
        let mut stale: Vec<(Duration, u64)> = conns
            .values()
            .filter(|c| !c.is_authenticated())
            .map(|c| (c.idle(now), c.peer.id))
            .filter(|(idle, _)| *idle >= STALE)
            .collect();
        stale.sort_unstable_by_key(|(idle, _)| std::cmp::Reverse(*idle));
        for (_, id) in stale.into_iter().take(unauth - limit) {
            if let Some(c) = conns.remove(&id) {
                c.kill();
            }
        }
    }

    fn over_startups(&self) -> bool {
        self.conns().values().filter(|c| !c.is_authenticated()).count() > self.opts.limits.max_startups
    }

    fn snapshot(&self) -> Vec<Arc<ConnEntry>> {
        self.conns().values().cloned().collect()
    }
}

/// A server: made from options (checked, host keys loaded), then listening until closed.
pub struct Server {
    inner: Arc<ServerInner>,
    host_keys: Vec<HostKeyDescription>,
    local: Mutex<Option<SocketAddr>>,
    accept: Mutex<Option<JoinHandle<()>>>,
    /// true once closed: every connection gone and the callbacks released.
    closed: watch::Sender<bool>,
    close_started: AtomicBool,
}

fn listen_error(address: &str, e: &std::io::Error) -> Error {
    use std::io::ErrorKind as K;
    let errno = match e.kind() {
        K::AddrInUse => Some("EADDRINUSE"),
        K::AddrNotAvailable => Some("EADDRNOTAVAIL"),
        K::PermissionDenied => Some("EACCES"),
        _ => None,
    };
    Error::Connect { address: address.to_string(), cause: format!("cannot listen: {e}"), errno: errno.map(String::from) }
}

impl Server {
    /// Checks the options and loads (or makes) the host keys; nothing listens yet.
    pub fn new(opts: ServerOptions, callbacks: Arc<dyn ServerCallbacks>) -> Result<Server> {
        opts.validate()?;
        let sftp_root = match &opts.sftp {
            Some(s) => Some(Arc::new(Root::new(&s.root).map_err(|e| Error::config("sftp.root", format!("sftp.root {}: {e}", s.root.display())))?)),
            None => None,
        };
        let keys = config::load_host_keys(&opts)?;
        let host_keys = keys.iter().map(config::describe).collect();
        let config = Arc::new(config::russh_config(&opts, keys)?);
        let (closed, _) = watch::channel(false);
        Ok(Server {
            inner: Arc::new(ServerInner {
                opts,
                callbacks: Mutex::new(Some(callbacks)),
                sftp_root,
                config,
                conns: Mutex::new(HashMap::new()),
                closing: AtomicBool::new(false),
                changed: Arc::new(Notify::new()),
                next_id: AtomicU64::new(1),
                live: AtomicUsize::new(0),
            }),
            host_keys,
            local: Mutex::new(None),
            accept: Mutex::new(None),
            closed,
            close_started: AtomicBool::new(false),
        })
    }

    pub fn host_keys(&self) -> &[HostKeyDescription] {
        &self.host_keys
    }

    /// Binds and starts accepting; returns the address bound (port 0 picks one).
    pub async fn listen(&self, host: &str, port: u16) -> Result<SocketAddr> {
        let address = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        if self.close_started.load(Ordering::SeqCst) {
            return Err(Error::config("listen", "the server was closed; create a new one"));
        }
        if self.local.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            return Err(Error::config("listen", "the server is already listening"));
        }
        let listener = TcpListener::bind((host, port)).await.map_err(|e| listen_error(&address, &e))?;
        let local = listener.local_addr().map_err(|e| listen_error(&address, &e))?;
        *self.local.lock().unwrap_or_else(|p| p.into_inner()) = Some(local);
        let task = tokio::spawn(accept_loop(Arc::clone(&self.inner), listener, local));
        *self.accept.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(local)
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connections open now (authenticated or not).
    pub fn connection_count(&self) -> usize {
        self.inner.conns().len()
    }

    /// Connections whose socket is still served (a dropped one until its task has ended).
    pub fn live_connections(&self) -> usize {
        self.inner.live.load(Ordering::SeqCst)
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Stops accepting; connections still authenticating are dropped, authenticated ones may
    /// finish their sessions (each is asked to disconnect once it has no channel open) until
    /// `timeout`, when every one left is disconnected. Resolves when all are gone and the
    /// embedder's callbacks are released. Calling it again waits for the same end.
    pub async fn close(&self, timeout: Duration) {
        if self.close_started.swap(true, Ordering::SeqCst) {
            let mut rx = self.closed.subscribe();
            let _ = rx.wait_for(|c| *c).await;
            return;
        }
        self.inner.closing.store(true, Ordering::SeqCst);
        if let Some(task) = self.accept.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
        let deadline = Instant::now() + timeout;
        let mut forced = false;
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let conns = self.inner.snapshot();
            if conns.is_empty() {
                break;
            }
            let now = Instant::now();
            if now >= deadline && !forced {
                forced = true;
            }
            for c in conns {
                if !c.is_authenticated() {
                    c.kill();
                } else if forced || c.channel_count() == 0 {
                    let c2 = Arc::clone(&c);
                    tokio::spawn(async move { c2.disconnect("the server is shutting down", DISCONNECT_GRACE).await });
                }
            }
            if forced && now >= deadline + DISCONNECT_GRACE * 3 {
                // a session task stuck in an embedder callback; its socket is shut down already
                break;
            }
            let wait = if forced { DISCONNECT_GRACE } else { deadline.saturating_duration_since(now).min(Duration::from_millis(250)) };
            let _ = tokio::time::timeout(wait.max(Duration::from_millis(10)), changed).await;
        }
        // release the embedder's callbacks (and with them the JS functions they hold)
        *self.inner.callbacks.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let _ = self.closed.send(true);
    }
}

async fn accept_loop(inner: Arc<ServerInner>, listener: TcpListener, local: SocketAddr) {
    let mut reaper = tokio::time::interval(STALE / 4);
    reaper.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = reaper.tick() => {
                if inner.over_startups() {
                    inner.reap();
                }
                continue;
            }
        };
        let (sock, peer) = match accepted {
            Ok(x) => x,
            Err(_) => {
                // out of file descriptors and the like: back off instead of spinning
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if inner.is_closing() || !inner.admit() {
            drop(sock);
            continue;
        }
        let _ = sock.set_nodelay(true);
        let id = inner.next_id.fetch_add(1, Ordering::SeqCst);
        let entry = ConnEntry::new(PeerInfo { id, remote: peer, local }, Arc::clone(&inner.changed), inner.opts.buffer);
        inner.conns().insert(id, Arc::clone(&entry));
        inner.reap();
        if inner.live.fetch_add(1, Ordering::SeqCst) == 0 {
            if let Some(cb) = inner.callbacks() {
                cb.connections_changed();
            }
        }
        tokio::spawn(serve(Arc::clone(&inner), entry, sock));
    }
}

async fn serve(inner: Arc<ServerInner>, entry: Arc<ConnEntry>, sock: TcpStream) {
    let deadline = entry.started + inner.opts.limits.auth_timeout;
    let watchdog = {
        let entry = Arc::clone(&entry);
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline.into()).await;
            if !entry.is_authenticated() {
                entry.kill();
            }
        })
    };
    if let Ok(dup) = socket2::SockRef::from(&sock).try_clone() {
        entry.hold_socket(dup);
    }
    let handler = ConnHandler::new(Arc::clone(&inner), Arc::clone(&entry));
    let stream = entry.wrap(crate::quickack::QuickAck::new(sock));
    if let Ok(session) = russh::server::run_stream(Arc::clone(&inner.config), stream, handler).await {
        entry.set_session_handle(session.handle());
        let _ = session.await;
    }
    watchdog.abort();
    entry.finish(Error::disconnected("the connection ended"));
    inner.conns().remove(&entry.peer.id);
    if inner.live.fetch_sub(1, Ordering::SeqCst) == 1 {
        if let Some(cb) = inner.callbacks() {
            cb.connections_changed();
        }
    }
    inner.changed.notify_waiters();
}
