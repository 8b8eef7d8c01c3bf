//! One connection as the listener and the handler share it: who it is, whether it has
//! authenticated, how far it got (bytes received, for choosing whom to drop under a flood),
//! its channels, its remote-forward listeners, and a way to cut it that works at any stage
//! (russh's own disconnect waits behind a key exchange a stalled peer never finishes).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    bytes_in: Arc<AtomicU64>,
    /// Ends the session at any stage: the socket's reads and writes fail from then on.
    kill: Arc<KillSwitch>,
    disconnecting: AtomicBool,
    handle: Mutex<Option<Handle>>,
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
            bytes_in: Arc::new(AtomicU64::new(0)),
            kill: Arc::new(KillSwitch::default()),
            disconnecting: AtomicBool::new(false),
            handle: Mutex::new(None),
            channels: Mutex::new(HashMap::new()),
            forwards: Mutex::new(Vec::new()),
            changed,
            limits,
        })
    }

    /// The accepted socket wrapped so this entry can count and cut it.
    pub(crate) fn wrap<S>(&self, inner: S) -> CountingStream<S> {
        CountingStream { inner, read: Arc::clone(&self.bytes_in), kill: Arc::clone(&self.kill) }
    }

    /// Bytes received so far: a peer that stalls or dribbles has few.
    pub(crate) fn progress(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
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

    /// Cuts the connection now, whatever state it is in.
    pub(crate) fn kill(&self) {
        self.kill.trigger();
    }

    /// Asks the client to go (SSH_MSG_DISCONNECT), then cuts the socket if it is still there
    /// after `grace`. Only the first call does anything.
    pub(crate) async fn disconnect(self: &Arc<Self>, description: &str, grace: std::time::Duration) {
        if self.disconnecting.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(h) = self.handle() {
            let _ = tokio::time::timeout(grace, h.disconnect(Disconnect::ByApplication, description.to_string(), String::new())).await;
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
        self.kill();
        self.changed.notify_waiters();
    }
}

/// Makes a socket fail from the outside, waking the task that waits on it.
#[derive(Default)]
pub(crate) struct KillSwitch {
    killed: AtomicBool,
    /// The tasks waiting to read and to write (a peer that stops reading blocks a write).
    wakers: Mutex<[Option<Waker>; 2]>,
}

impl KillSwitch {
    fn trigger(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *lock(&self.wakers));
        for w in wakers.into_iter().flatten() {
            w.wake();
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

/// The accepted socket, counting what the client sends and failing once killed.
pub(crate) struct CountingStream<S> {
    inner: S,
    read: Arc<AtomicU64>,
    kill: Arc<KillSwitch>,
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        self.kill.check()?;
        self.kill.park(0, cx);
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            self.read.fetch_add(n as u64, Ordering::Relaxed);
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
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
