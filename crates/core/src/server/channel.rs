//! A channel the server holds: the client's bytes land in a [`ChannelShared`] (the same
//! buffer, wake rules and high-water mark as the client side; stream 0 is the client's
//! data, stream 1 its extended data), and writes go out through russh's write half, waiting
//! for the client's window. Requests that arrive on a running session (window-change,
//! signal) and its end reach the embedder as [`ChannelEvent`]s.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use russh::server::{Handle, Msg};
use russh::{ChannelId, ChannelWriteHalf};

use super::conn::ConnEntry;
use crate::channel::{signal_from_name, ChannelShared};
use crate::error::{Error, Result};

/// Something that happened on a running channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    WindowChange { cols: u32, rows: u32, width_px: u32, height_px: u32 },
    /// Signal name without `SIG`.
    Signal(String),
    /// The channel is gone (closed by either side, or the connection ended).
    Closed,
}

/// Receives a channel's events (called from a tokio thread).
pub trait ChannelEvents: Send + Sync {
    fn event(&self, e: ChannelEvent);
}

/// Events that arrive before the embedder installed its sink wait here (a client resizes
/// right after `shell`); more than this many waiting means nobody is listening.
const MAX_QUEUED_EVENTS: usize = 64;

#[derive(Default)]
struct EventState {
    sink: Option<Arc<dyn ChannelEvents>>,
    queued: VecDeque<ChannelEvent>,
    closed: bool,
}

/// Per-channel state the connection's handler reaches by channel id: registered when the
/// channel opens (or, for channels the server opens, when the client confirms), before any
/// data can arrive for it.
pub(crate) struct ChannelSlot {
    pub(crate) shared: Arc<ChannelShared>,
    events: Mutex<EventState>,
    /// Set once: whoever finishes the channel first (our close, the client's, the connection's end).
    finished: AtomicBool,
}

impl ChannelSlot {
    pub(crate) fn new(shared: Arc<ChannelShared>) -> Arc<Self> {
        Arc::new(ChannelSlot { shared, events: Mutex::new(EventState::default()), finished: AtomicBool::new(false) })
    }

    fn events(&self) -> MutexGuard<'_, EventState> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn emit(&self, e: ChannelEvent) {
        let mut st = self.events();
        if st.closed {
            return;
        }
        if e == ChannelEvent::Closed {
            st.closed = true;
        }
        match st.sink.clone() {
            Some(sink) => {
                // a closed channel's sink is released: its callback must not keep JS objects alive
                if st.closed {
                    st.sink = None;
                }
                drop(st);
                sink.event(e);
            }
            None => {
                if st.queued.len() < MAX_QUEUED_EVENTS || e == ChannelEvent::Closed {
                    st.queued.push_back(e);
                }
            }
        }
    }

    fn set_sink(&self, sink: Option<Arc<dyn ChannelEvents>>) {
        let mut st = self.events();
        let queued: Vec<ChannelEvent> = st.queued.drain(..).collect();
        if !st.closed {
            st.sink = sink.clone();
        }
        drop(st);
        if let Some(s) = sink {
            for e in queued {
                s.event(e);
            }
        }
    }

    /// Marks the channel done (once): readers see the end, the embedder gets `Closed`, the
    /// connection forgets it. `broken` when the connection ended under it.
    pub(crate) fn finish(&self, conn: &ConnEntry, id: u32, broken: Option<Error>) {
        if self.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        match broken {
            Some(e) => self.shared.on_broken(e),
            None => self.shared.on_close(),
        }
        // the waker has delivered its last wake-up (queued on the JS side); drop our hold on it
        self.shared.set_waker(None);
        self.emit(ChannelEvent::Closed);
        conn.forget_channel(id);
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }
}

/// A server-side channel handed to the embedder (a session) or to a copy loop (forwarding).
pub struct ServerChannel {
    pub(crate) slot: Arc<ChannelSlot>,
    tx: ChannelWriteHalf<Msg>,
    handle: Handle,
    conn: Arc<ConnEntry>,
    id: ChannelId,
    eof_sent: AtomicBool,
    exit_sent: AtomicBool,
    /// Where Drop sends the CLOSE (Drop may run on a JS thread, outside the runtime).
    runtime: tokio::runtime::Handle,
}

impl ServerChannel {
    /// Opens an auth-agent channel to the client, as a server that forwards an agent would
    /// (tests: a client must refuse one it never asked for).
    #[cfg(test)]
    pub(crate) async fn open_agent_channel(&self) -> bool {
        self.handle.channel_open_agent().await.is_ok()
    }

    pub(crate) fn new(slot: Arc<ChannelSlot>, tx: ChannelWriteHalf<Msg>, handle: Handle, conn: Arc<ConnEntry>) -> Arc<Self> {
        let id = tx.id();
        Arc::new(ServerChannel {
            slot,
            tx,
            handle,
            conn,
            id,
            eof_sent: AtomicBool::new(false),
            exit_sent: AtomicBool::new(false),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    pub fn id(&self) -> u32 {
        self.id.number()
    }

    pub fn shared(&self) -> &Arc<ChannelShared> {
        &self.slot.shared
    }

    /// Installs the reader's wake-up. A channel already finished does not keep it: the
    /// reader finds the end on its next read, and a kept callback would hold the reader alive.
    pub fn set_waker(&self, waker: Option<Arc<dyn crate::channel::Wake>>) {
        self.slot.shared.set_waker(waker);
        if self.slot.is_finished() {
            self.slot.shared.set_waker(None);
        }
    }

    /// Installs (or removes) the receiver of this channel's events; events that arrived
    /// before are delivered to it first.
    pub fn set_event_sink(&self, sink: Option<Arc<dyn ChannelEvents>>) {
        self.slot.set_sink(sink);
    }

    fn closed_error(&self) -> Error {
        self.slot.shared.broken_error().unwrap_or_else(|| Error::channel("closed", "the client closed the channel"))
    }

    /// Sends to the client's stdout (`stream` 0) or stderr (1), waiting for its window
    /// (RFC 4254 §5.2). A channel that closes meanwhile ends the wait with an error.
    pub async fn write(&self, stream: u32, data: Vec<u8>) -> Result<()> {
        if self.slot.is_finished() || self.slot.shared.is_closed() {
            return Err(self.closed_error());
        }
        if self.eof_sent.load(Ordering::SeqCst) {
            return Err(Error::channel("closed", "write after end of output"));
        }
        let send = async {
            if stream == 0 {
                self.tx.data_bytes(data).await
            } else {
                self.tx.extended_data_bytes(1, data).await
            }
        };
        tokio::select! {
            r = send => r.map_err(|_| self.closed_error()),
            _ = self.slot.shared.wait_closed() => Err(self.closed_error()),
        }
    }

    /// End of output (RFC 4254 §5.3); the client's input may still arrive.
    pub async fn eof(&self) -> Result<()> {
        if self.slot.is_finished() || self.eof_sent.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.tx.eof().await.map_err(|_| self.closed_error())
    }

    /// Ends the session with an exit status: `exit-status`, EOF, CLOSE. The status goes
    /// first, as OpenSSH's sshd sends it: a client may answer EOF with its CLOSE at once (an
    /// OpenSSH ControlMaster does), and a status after that is lost.
    pub async fn exit(&self, code: u32) -> Result<()> {
        if self.slot.is_finished() || self.exit_sent.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let _ = self.tx.exit_status(code).await;
        let _ = self.eof().await;
        self.close().await
    }

    /// Ends the session as killed by `signal` (RFC 4254 §6.10 `exit-signal`).
    pub async fn exit_signal(&self, signal: &str, core_dumped: bool, message: &str) -> Result<()> {
        let sig = signal_from_name(signal)?;
        if self.slot.is_finished() || self.exit_sent.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let _ = self.handle.exit_signal_request(self.id, sig, core_dumped, message.to_string(), String::new()).await;
        let _ = self.eof().await;
        self.close().await
    }

    /// Closes the channel. russh forgets a channel once we send CLOSE (the client's answering
    /// CLOSE never reaches the handler), so it is finished here.
    pub async fn close(&self) -> Result<()> {
        if self.slot.is_finished() {
            return Ok(());
        }
        let r = self.tx.close().await.map_err(|_| self.closed_error());
        self.slot.finish(&self.conn, self.id.number(), None);
        r
    }

    /// The reader is gone: incoming bytes are dropped so the connection never waits on it.
    pub fn discard(&self) {
        self.slot.shared.discard();
    }

    /// One stream's reader is gone: its bytes are dropped, the other stream still delivers.
    pub fn discard_stream(&self, stream: usize) {
        self.slot.shared.discard_stream(stream);
    }

    pub fn is_closed(&self) -> bool {
        self.slot.is_finished() || self.slot.shared.is_closed()
    }

    /// Waits until the channel is finished (closed or its connection gone).
    pub async fn closed(&self) {
        self.slot.shared.wait_closed().await
    }
}

impl Drop for ServerChannel {
    /// Nobody holds the channel any more: close it in the background so the client sees the
    /// end and the connection's slot is freed.
    fn drop(&mut self) {
        if self.slot.is_finished() {
            return;
        }
        self.slot.shared.discard();
        let (handle, slot, conn, id) = (self.handle.clone(), Arc::clone(&self.slot), Arc::clone(&self.conn), self.id);
        self.runtime.spawn(async move {
            let _ = handle.close(id).await;
            slot.finish(&conn, id.number(), None);
        });
    }
}
