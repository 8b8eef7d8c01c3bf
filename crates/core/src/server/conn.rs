//! One connection as the listener and the handler share it: who it is, whether it has
//! authenticated, how far it got (bytes received, for choosing whom to drop under a flood),
//! its channels, its remote-forward listeners, and a way to cut it that works at any stage
//! (russh's own disconnect waits behind a key exchange a stalled peer never finishes).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use russh::server::Handle;
use russh::Disconnect;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::channel::ChannelSlot;
use super::PeerInfo;
use crate::channel::{BufferLimits, ChannelShared};
use crate::error::Error;

/// A tcpip-forward listener a client asked for.
pub(crate) struct RemoteForward {
    pub(crate) address: String,
    pub(crate) port: u32,
    pub(crate) task: JoinHandle<()>,
}

pub(crate) struct ConnEntry {
    pub(crate) peer: Arc<PeerInfo>,
    pub(crate) started: Instant,
    authenticated: AtomicBool,
    closed: AtomicBool,
    /// Milliseconds after `started` at which the client last sent something.
    last_active: Arc<AtomicU64>,
    /// Embedder callbacks in flight: the client waits on us then, it is not idle.
    busy: AtomicUsize,
    /// Ends the session at any stage: the socket's reads and writes fail from then on.
    kill: Arc<KillSwitch>,
    /// A second handle on the accepted socket: a kill shuts it down from outside, so the
    /// client is cut even while the session task waits on something else than its socket.
    socket: Mutex<Option<socket2::Socket>>,
    disconnecting: AtomicBool,
    handle: Mutex<Option<Handle>>,
    /// The session's handle from its start, authenticated or not: only to tell the client why
    /// it is being dropped.
    early_handle: Mutex<Option<Handle>>,
    channels: Mutex<HashMap<u32, Arc<ChannelSlot>>>,
    pub(crate) forwards: Mutex<Vec<RemoteForward>>,
    /// Told whenever a channel or the connection ends (graceful shutdown watches it).
    changed: Arc<Notify>,
    limits: BufferLimits,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ConnEntry {
    pub(crate) fn new(peer: PeerInfo, changed: Arc<Notify>, limits: BufferLimits) -> Arc<Self> {
        Arc::new(ConnEntry {
            peer: Arc::new(peer),
            started: Instant::now(),
            authenticated: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            last_active: Arc::new(AtomicU64::new(0)),
            busy: AtomicUsize::new(0),
            kill: Arc::new(KillSwitch::default()),
            socket: Mutex::new(None),
            disconnecting: AtomicBool::new(false),
            handle: Mutex::new(None),
            early_handle: Mutex::new(None),
            channels: Mutex::new(HashMap::new()),
            forwards: Mutex::new(Vec::new()),
            changed,
            limits,
        })
    }

    /// The accepted socket wrapped so this entry can count and cut it.
    pub(crate) fn wrap<S>(&self, inner: S) -> CountingStream<S> {
        CountingStream { inner, started: self.started, last_active: Arc::clone(&self.last_active), kill: Arc::clone(&self.kill) }
    }

    /// How long the client has sent nothing: a peer that stalls goes idle at once, one in
    /// the middle of its handshake only for a round trip (or an auth callback).
    pub(crate) fn idle(&self, now: Instant) -> std::time::Duration {
        if self.busy.load(Ordering::SeqCst) > 0 {
            return std::time::Duration::ZERO;
        }
        let last = self.started + std::time::Duration::from_millis(self.last_active.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }

    /// Runs `f` (an embedder callback) with the connection counted as active meanwhile; if
    /// the connection is killed first (the server closing, say), gives up on it with `dead`:
    /// the session loop waits on the callback, so only then does it see its socket gone.
    pub(crate) async fn busy_while<T>(&self, f: impl std::future::Future<Output = T>, dead: T) -> T {
        self.busy.fetch_add(1, Ordering::SeqCst);
        let out = self.unless_killed(f, dead).await;
        self.busy.fetch_sub(1, Ordering::SeqCst);
        let ms = self.started.elapsed().as_millis().min(u64::MAX as u128) as u64;
        self.last_active.store(ms, Ordering::Relaxed);
        out
    }

    pub(crate) fn set_session_handle(&self, handle: Handle) {
        *lock(&self.early_handle) = Some(handle);
    }

    pub(crate) fn set_authenticated(&self, handle: Handle) {
        *lock(&self.handle) = Some(handle);
        self.authenticated.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    pub(crate) fn is_authenticated(&self) -> bool {
        self.authenticated.load(Ordering::SeqCst)
    }

    pub(crate) fn handle(&self) -> Option<Handle> {
        lock(&self.handle).clone()
    }

    /// The slot for channel `id`, made on first use.
    pub(crate) fn register(&self, id: u32) -> Arc<ChannelSlot> {
        let mut map = lock(&self.channels);
        Arc::clone(map.entry(id).or_insert_with(|| ChannelSlot::new(ChannelShared::new(id, self.limits))))
    }

    pub(crate) fn slot(&self, id: u32) -> Option<Arc<ChannelSlot>> {
        lock(&self.channels).get(&id).cloned()
    }

    pub(crate) fn forget_channel(&self, id: u32) {
        lock(&self.channels).remove(&id);
        self.changed.notify_waiters();
    }

    pub(crate) fn channel_count(&self) -> usize {
        lock(&self.channels).len()
    }

    /// Keeps a duplicate of the accepted socket for [`kill`](Self::kill) to shut down.
    pub(crate) fn hold_socket(&self, socket: socket2::Socket) {
        *lock(&self.socket) = Some(socket);
    }

    /// Cuts the connection now, whatever state it is in.
    pub(crate) fn kill(&self) {
        self.kill.trigger();
        if let Some(s) = lock(&self.socket).as_ref() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// `f`, or `dead` as soon as the connection is killed.
    pub(crate) async fn unless_killed<T>(&self, f: impl std::future::Future<Output = T>, dead: T) -> T {
        tokio::select! {
            biased;
            _ = self.kill.killed() => dead,
            v = f => v,
        }
    }

    /// Asks the client to go (SSH_MSG_DISCONNECT), then cuts the socket if it is still there
    /// after `grace`. Only the first call does anything.
    pub(crate) async fn disconnect(self: &Arc<Self>, description: &str, grace: std::time::Duration) {
        self.disconnect_for(Disconnect::ByApplication, description, grace).await
    }

    /// [`disconnect`](Self::disconnect) with the given reason code.
    pub(crate) async fn disconnect_for(self: &Arc<Self>, reason: Disconnect, description: &str, grace: std::time::Duration) {
        if self.disconnecting.swap(true, Ordering::SeqCst) {
            return;
        }
        let handle = self.handle().or_else(|| lock(&self.early_handle).clone());
        if let Some(h) = handle {
            let _ = tokio::time::timeout(grace, h.disconnect(reason, description.to_string(), String::new())).await;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if !me.is_closed() {
                me.kill();
            }
        });
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The session is over: every channel fails with `err`, listeners stop, the socket closes.
    pub(crate) fn finish(&self, err: Error) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let slots: Vec<(u32, Arc<ChannelSlot>)> = lock(&self.channels).iter().map(|(k, v)| (*k, Arc::clone(v))).collect();
        for (id, slot) in slots {
            slot.finish(self, id, Some(err.clone()));
        }
        for f in lock(&self.forwards).drain(..) {
            f.task.abort();
        }
        *lock(&self.handle) = None;
        *lock(&self.early_handle) = None;
        self.kill();
        *lock(&self.socket) = None;
        self.changed.notify_waiters();
    }
}

/// Makes a socket fail from the outside, waking the task that waits on it.
#[derive(Default)]
pub(crate) struct KillSwitch {
    killed: AtomicBool,
    /// The tasks waiting to read and to write (a peer that stops reading blocks a write).
    wakers: Mutex<[Option<Waker>; 2]>,
    /// Callbacks the session loop waits on (`killed()`).
    notify: tokio::sync::Notify,
}

impl KillSwitch {
    fn trigger(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *lock(&self.wakers));
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
        self.notify.notify_waiters();
    }

    async fn killed(&self) {
        loop {
            let n = self.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.killed.load(Ordering::SeqCst) {
                return;
            }
            n.await;
        }
    }

    fn check(&self) -> std::io::Result<()> {
        if self.killed.load(Ordering::SeqCst) {
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "connection dropped by the server"))
        } else {
            Ok(())
        }
    }

    fn park(&self, which: usize, cx: &Context<'_>) {
        let mut wakers = lock(&self.wakers);
        let slot = &mut wakers[which];
        match slot.as_ref() {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
    }
}

/// The accepted socket, noting when the client last sent something and failing once killed.
pub(crate) struct CountingStream<S> {
    inner: S,
    started: Instant,
    last_active: Arc<AtomicU64>,
    kill: Arc<KillSwitch>,
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        // parked before the check: a kill in between still finds the waker
        self.kill.park(0, cx);
        self.kill.check()?;
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let ms = self.started.elapsed().as_millis().min(u64::MAX as u128) as u64;
            self.last_active.store(ms, Ordering::Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.kill.check()?;
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if r.is_pending() {
            self.kill.park(1, cx);
            self.kill.check()?;
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.kill.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        self.kill.check()?;
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if r.is_pending() {
            self.kill.park(1, cx);
            self.kill.check()?;
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
