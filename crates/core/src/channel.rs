//! Per-channel state shared by the connection's event loop (which fills it from the
//! client `Handler` callbacks) and by readers (JavaScript through the binding, or Rust).
//!
//! russh gives each channel a 100-message queue and reopens the window when data
//! *arrives*; a full queue blocks the whole connection. So every byte is taken out of
//! the handler callback at once into the buffers here (the read half of the russh
//! channel is dropped), bounded by a high-water mark past which this channel — and,
//! because russh has one event loop, the connection — waits for the reader.
//! Readers are woken in coalesced batches: a wake is sent only to an *armed* reader
//! (one that found the buffer empty), and only once enough bytes are buffered, a short
//! packet marks the end of a burst, or the stream goes quiet.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use russh::client::Msg;
use russh::{ChannelWriteHalf, Sig};
use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit};

use crate::error::{Error, Result};

/// Stream indices: 0 = data (stdout), 1 = extended data (stderr).
pub const STDOUT: usize = 0;
pub const STDERR: usize = 1;

/// A packet shorter than this ends a burst: wake the reader at once so interactive
/// round trips are not delayed. Full packets are coalesced up to `wake_bytes`.
const SHORT_PACKET: usize = 32 * 1024;
/// A stream that goes quiet with bytes buffered (a burst that ended on a full packet)
/// is flushed to the reader after this long.
const QUIET_FLUSH: Duration = Duration::from_millis(1);
/// The same for a stream in a bulk transfer (its last batch filled up to `wake_bytes`).
/// A timer due within a millisecond or two is the one the kernel must program next each
/// time the runtime's thread goes idle, which it does thousands of times a second while a
/// transfer streams in; on a VM each such programming is an exit to the hypervisor, and a
/// 1 ms quiet timer cost ~9% of a 512 MiB download's CPU (0.53 s against 0.48 s, medians
/// of five fresh processes). A deadline beyond the scheduler tick costs nothing that
/// shows. The price: a bulk stream ending on a full packet, with its channel still open,
/// reaches the reader this much later (EOF flushes at once).
const QUIET_FLUSH_BULK: Duration = Duration::from_millis(20);

/// Called (from a tokio thread) when an armed reader has something to read.
pub trait Wake: Send + Sync {
    fn wake(&self, stream: usize);
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<u32>,
    pub signal: Option<String>,
    pub core_dumped: bool,
    pub message: Option<String>,
}

/// What a synchronous read found.
#[derive(Debug)]
pub enum ReadResult {
    Data(usize),
    /// Nothing buffered yet; the reader is now armed and will be woken.
    Pending,
    Eof,
    Failed(Error),
}

/// Largest buffer a Rust reader's batch keeps for reuse: batches are as large as what
/// arrived while the previous one was written out, rarely more than the window (2 MiB).
const SPARE_KEEP: usize = 4 * 1024 * 1024;

#[derive(Default)]
struct Buf {
    data: Vec<u8>,
    start: usize,
}

impl Buf {
    fn len(&self) -> usize {
        self.data.len() - self.start
    }
    fn push(&mut self, bytes: &[u8]) {
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        } else if self.start > 0 && self.start >= self.data.len() / 2 {
            self.data.drain(..self.start);
            self.start = 0;
        }
        self.data.extend_from_slice(bytes);
    }
    fn take_into(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len());
        out[..n].copy_from_slice(&self.data[self.start..self.start + n]);
        self.start += n;
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
        n
    }
    /// Puts bytes back in front (a lent buffer's surplus when the reader read elsewhere).
    fn unshift(&mut self, bytes: &[u8]) {
        let mut v = Vec::with_capacity(bytes.len() + self.len());
        v.extend_from_slice(bytes);
        v.extend_from_slice(&self.data[self.start..]);
        self.data = v;
        self.start = 0;
    }
    /// Moves everything queued into `into` (its old contents are dropped). Its memory
    /// becomes this buffer's, so a reader that keeps handing back the same Vec makes the two
    /// trade places instead of allocating (and faulting in) fresh memory for every batch.
    fn swap_into(&mut self, into: &mut Vec<u8>) {
        into.clear();
        if into.capacity() > SPARE_KEEP {
            *into = Vec::new();
        }
        if self.start == 0 {
            std::mem::swap(&mut self.data, into);
        } else {
            into.extend_from_slice(&self.data[self.start..]);
            self.data.clear();
        }
        self.start = 0;
    }
}

/// Memory a reader lends while it waits (a JavaScript Buffer it will not touch until its
/// next read): incoming bytes are copied straight into it instead of into `Buf` and then
/// again out of it.
pub trait LendBuf: Send {
    fn bytes(&mut self) -> &mut [u8];
}

impl<T: AsMut<[u8]> + Send> LendBuf for T {
    fn bytes(&mut self) -> &mut [u8] {
        self.as_mut()
    }
}

struct Lent {
    buf: Box<dyn LendBuf>,
    /// Address of the lent memory: a read with the same buffer finds its bytes in place.
    addr: usize,
    filled: usize,
}

struct State {
    bufs: [Buf; 2],
    /// Per stream, the armed reader's lent buffer; bytes arrive here first while `bufs` is empty.
    lent: [Option<Lent>; 2],
    armed: [bool; 2],
    /// Per stream: its last wake came from a full batch (`wake_bytes`), a bulk transfer.
    bulk: [bool; 2],
    eof: bool,
    closed: bool,
    broken: Option<Error>,
    exit: Option<ExitInfo>,
    /// A session channel (exec, shell, subsystem): its normal end is EOF or an exit status.
    session: bool,
    /// The peer sent EOF (`eof` is also set by our own close).
    peer_eof: bool,
    waker: Option<Arc<dyn Wake>>,
    /// Nobody will read any more: incoming bytes are dropped so the connection never waits.
    discard: bool,
    /// The connection is being closed by its owner: what arrives from now on is dropped, and
    /// nothing waits for a reader any more (what is buffered stays readable).
    closing: bool,
    /// Per stream: its reader is gone (a destroyed stdout, say), its bytes are dropped.
    dropped: [bool; 2],
    quiet_timer: bool,
    /// When an armed reader last got bytes that did not wake it: the quiet flush is due
    /// `quiet_period()` later.
    last_push: tokio::time::Instant,
    replies: VecDeque<oneshot::Sender<bool>>,
    permit: Option<OwnedSemaphorePermit>,
    /// A Rust-side reader (next_chunks) waits on `event` for data; JS readers use the waker.
    rust_reader: bool,
    /// A polled Rust reader (`ChannelStream`) waiting for data, EOF or the end.
    poll_waker: Option<std::task::Waker>,
}

impl State {
    /// Bytes waiting in `stream`, lent buffer included.
    fn queued(&self, stream: usize) -> usize {
        self.bufs[stream].len() + self.lent[stream].as_ref().map_or(0, |l| l.filled)
    }
    fn total(&self) -> usize {
        self.queued(0) + self.queued(1)
    }
    /// Armed streams with bytes waiting: what a quiet flush would wake.
    fn quiet_due(&self) -> Vec<usize> {
        (0..2).filter(|&s| self.armed[s] && self.queued(s) > 0).collect()
    }
    /// How long after the last packet the quiet flush comes: the bulk period only when every
    /// stream it would flush is in a bulk transfer.
    fn quiet_period(&self) -> Duration {
        let due = self.quiet_due();
        if !due.is_empty() && due.iter().all(|&s| self.bulk[s]) {
            QUIET_FLUSH_BULK
        } else {
            QUIET_FLUSH
        }
    }
    /// Appends incoming bytes: into the lent buffer while it has room and nothing is queued
    /// before it (order is kept), the rest into `bufs`.
    fn append(&mut self, stream: usize, data: &[u8]) {
        let mut rest = data;
        if self.bufs[stream].len() == 0 {
            if let Some(l) = &mut self.lent[stream] {
                let dst = l.buf.bytes();
                let k = (dst.len() - l.filled).min(rest.len());
                dst[l.filled..l.filled + k].copy_from_slice(&rest[..k]);
                l.filled += k;
                rest = &rest[k..];
            }
        }
        if !rest.is_empty() {
            self.bufs[stream].push(rest);
        }
    }
}

/// Moves what is queued for `stream` into `out`: the lent buffer's bytes first (already in
/// place when `out` is that memory), then the rest. The lent buffer is handed back.
fn take_queued(st: &mut State, stream: usize, out: &mut [u8]) -> usize {
    let mut n = 0;
    if let Some(mut l) = st.lent[stream].take() {
        if l.filled > 0 {
            if l.addr == out.as_ptr() as usize && l.filled <= out.len() {
                n = l.filled;
            } else {
                let src = l.buf.bytes();
                let k = l.filled.min(out.len());
                // the surplus is saved first: `out` may be a view into the lent memory itself,
                // and the copy below would overwrite it
                if k < l.filled {
                    let surplus = src[k..l.filled].to_vec();
                    st.bufs[stream].unshift(&surplus);
                }
                // SAFETY: both ranges are in bounds; `copy` allows the two to overlap
                unsafe { std::ptr::copy(src.as_ptr(), out.as_mut_ptr(), k) };
                n = k;
            }
        }
    }
    n + st.bufs[stream].take_into(&mut out[n..])
}

/// Limits for one channel's receive buffer.
#[derive(Debug, Clone, Copy)]
pub struct BufferLimits {
    /// Bytes buffered (both streams) past which the connection waits for the reader.
    pub high_water_mark: usize,
    /// Bytes buffered before an armed reader is woken in the middle of a burst.
    pub wake_bytes: usize,
}

impl Default for BufferLimits {
    fn default() -> Self {
        BufferLimits { high_water_mark: 4 * 1024 * 1024, wake_bytes: 1024 * 1024 }
    }
}

pub struct ChannelShared {
    pub id: u32,
    limits: Mutex<BufferLimits>,
    state: Mutex<State>,
    /// The reader drained below the high-water mark.
    space: Notify,
    /// Anything changed: data, EOF, exit, close, failure (for Rust-side waiters).
    event: Notify,
    /// A Rust consumer that takes stdout as it arrives, in the event loop, instead of
    /// having it buffered (the SFTP demultiplexer): one copy and one task wake fewer.
    tap: std::sync::OnceLock<Mutex<Tap>>,
}

/// See `ChannelShared::set_tap`.
pub(crate) type Tap = Box<dyn FnMut(&[u8]) + Send>;

impl ChannelShared {
    pub(crate) fn new(id: u32, limits: BufferLimits) -> Arc<Self> {
        Arc::new(ChannelShared {
            id,
            limits: Mutex::new(limits),
            state: Mutex::new(State {
                bufs: [Buf::default(), Buf::default()],
                lent: [None, None],
                dropped: [false, false],
                armed: [false, false],
                bulk: [false, false],
                eof: false,
                closed: false,
                broken: None,
                session: false,
                peer_eof: false,
                exit: None,
                waker: None,
                discard: false,
                closing: false,
                quiet_timer: false,
                last_push: tokio::time::Instant::now(),
                replies: VecDeque::new(),
                permit: None,
                rust_reader: false,
                poll_waker: None,
            }),
            space: Notify::new(),
            event: Notify::new(),
            tap: std::sync::OnceLock::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked while holding it; the
        // buffers themselves are still consistent (every mutation is a single step).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn limits(&self) -> BufferLimits {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_limits(&self, limits: BufferLimits) {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
        self.space.notify_waiters();
    }

    pub fn set_waker(&self, waker: Option<Arc<dyn Wake>>) {
        let mut st = self.lock();
        // a channel already closed or broken sends no more wakes (its reader finds the end on
        // its next read): a callback kept here would hold the reader alive for good
        st.waker = if st.closed || st.broken.is_some() { None } else { waker.clone() };
        // a reader armed before the waker was installed must not miss bytes already here
        let wake: Vec<usize> = (0..2).filter(|&s| st.armed[s] && (st.queued(s) > 0 || st.eof || st.closed || st.broken.is_some())).collect();
        let w = waker;
        for &s in &wake {
            st.armed[s] = false;
        }
        drop(st);
        if let Some(w) = w {
            for s in wake {
                w.wake(s);
            }
        }
    }

    /// Marks a session channel: a CLOSE from the server with neither EOF nor an exit status
    /// before it cut its output short (see `on_peer_close`).
    /// The peer's EOF has arrived.
    pub(crate) fn eof_seen(&self) -> bool {
        self.lock().peer_eof
    }


    pub(crate) fn mark_session(&self) {
        self.lock().session = true;
    }

    pub(crate) fn set_permit(&self, permit: OwnedSemaphorePermit) {
        let mut st = self.lock();
        if st.closed || st.broken.is_some() {
            return; // dropped at once: the slot is free again
        }
        st.permit = Some(permit);
    }

    /// From now on stdout goes to `tap` as it arrives (what was buffered first); the
    /// channel's end (EOF, close, failure) is still seen by `next_chunks_into`.
    pub(crate) fn set_tap(&self, mut tap: Tap) {
        let mut st = self.lock();
        let mut held = Vec::new();
        st.bufs[STDOUT].swap_into(&mut held);
        if !held.is_empty() {
            tap(&held);
        }
        let _ = self.tap.set(Mutex::new(tap));
        drop(st);
        self.space.notify_waiters();
    }

    /// Called by the event loop for CHANNEL_DATA / CHANNEL_EXTENDED_DATA.
    pub(crate) async fn push(self: &Arc<Self>, stream: usize, data: &[u8]) {
        if let Some(tap) = self.tap.get() {
            if stream == STDOUT {
                (tap.lock().unwrap_or_else(|p| p.into_inner()))(data);
            }
            return;
        }
        let limits = self.limits();
        let (wake, timer, over, notify) = {
            let mut st = self.lock();
            if st.discard || st.closed || st.closing || st.dropped[stream] {
                return;
            }
            if let Some(tap) = self.tap.get() {
                // installed since the check above: what was buffered went to it first
                drop(st);
                if stream == STDOUT {
                    (tap.lock().unwrap_or_else(|p| p.into_inner()))(data);
                }
                return;
            }
            st.append(stream, data);
            if let Some(w) = st.poll_waker.take() {
                w.wake();
            }
            let notify = st.rust_reader;
            let len = st.queued(stream);
            let over = st.total() > limits.high_water_mark;
            if st.armed[stream] && (len >= limits.wake_bytes || data.len() < SHORT_PACKET) {
                st.armed[stream] = false;
                st.bulk[stream] = len >= limits.wake_bytes;
                (st.waker.clone(), false, over, notify)
            } else if st.armed[stream] {
                st.last_push = tokio::time::Instant::now();
                let start = !st.quiet_timer;
                st.quiet_timer = true;
                (None, start, over, notify)
            } else {
                (None, false, over, notify)
            }
        };
        if let Some(w) = wake {
            w.wake(stream);
        }
        if timer {
            let me = Arc::clone(self);
            tokio::spawn(async move { me.quiet_flush().await });
        }
        if notify {
            self.event.notify_waiters();
        }
        // the common case (room left) costs no waiter setup per packet
        if over {
            self.wait_for_space().await;
        }
    }

    async fn quiet_flush(&self) {
        let mut due_at = {
            let st = self.lock();
            st.last_push + st.quiet_period()
        };
        loop {
            tokio::time::sleep_until(due_at).await;
            let mut st = self.lock();
            let due = st.quiet_due();
            if due.is_empty() {
                st.quiet_timer = false;
                return;
            }
            let next = st.last_push + st.quiet_period();
            if next > tokio::time::Instant::now() {
                // bytes came since: the burst goes on
                due_at = next;
                continue;
            }
            st.quiet_timer = false;
            for &s in &due {
                st.armed[s] = false;
                st.bulk[s] = false;
            }
            let w = st.waker.clone();
            drop(st);
            if let Some(w) = w {
                for s in due {
                    w.wake(s);
                }
            }
            return;
        }
    }

    async fn wait_for_space(&self) {
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // the mark as it is now: `set_limits` may have moved it while this waited
            let hwm = self.limits().high_water_mark;
            {
                let st = self.lock();
                let buffered = st.total();
                if buffered <= hwm || st.discard || st.closed || st.closing || st.broken.is_some() {
                    return;
                }
            }
            notified.await;
        }
    }

    fn wake_all(&self, st: &mut State) -> Option<(Arc<dyn Wake>, Vec<usize>)> {
        if let Some(w) = st.poll_waker.take() {
            w.wake();
        }
        let armed: Vec<usize> = (0..2).filter(|&s| st.armed[s]).collect();
        for &s in &armed {
            st.armed[s] = false;
        }
        st.waker.clone().map(|w| (w, armed))
    }

    fn notify_after(&self, wake: Option<(Arc<dyn Wake>, Vec<usize>)>) {
        if let Some((w, streams)) = wake {
            for s in streams {
                w.wake(s);
            }
        }
        self.event.notify_waiters();
        self.space.notify_waiters();
    }

    pub(crate) fn waker(&self) -> Option<Arc<dyn Wake>> {
        self.lock().waker.clone()
    }

    pub(crate) fn on_eof(&self) {
        let mut st = self.lock();
        st.eof = true;
        st.peer_eof = true;
        let wake = self.wake_all(&mut st);
        let exited = if st.exit.is_some() { st.waker.clone() } else { None };
        drop(st);
        self.notify_after(wake);
        if let Some(w) = exited {
            w.wake(EXITED);
        }
    }

    pub(crate) fn on_close(&self) {
        self.close_state(true);
    }

    /// The server closed the channel. A session channel closed before its EOF and with no
    /// exit status was cut short (the server aborted it): its readers get an error after what
    /// arrived, not a clean end that would pass for the complete output. Other channels keep
    /// a CLOSE as their end, as `ssh` does (servers built on Go's x/crypto/ssh end forwarded
    /// connections with CLOSE alone).
    pub(crate) fn on_peer_close(&self) {
        let cut = {
            let st = self.lock();
            st.session && !st.eof && !st.closed && st.exit.is_none() && st.broken.is_none()
        };
        if cut {
            self.lock().broken = Some(Error::channel("closed", "the server closed the channel before the end of its output (no EOF, no exit status)"));
        }
        self.close_state(!cut);
    }

    fn close_state(&self, eof: bool) {
        let mut st = self.lock();
        st.closed = true;
        st.eof |= eof;
        st.permit = None;
        st.replies.clear();
        let wake = self.wake_all(&mut st);
        // the wake callback references JS objects that reference this channel: releasing
        // it here lets the garbage collector take both
        let exited = st.waker.take();
        drop(st);
        self.notify_after(wake);
        if let Some(w) = exited {
            w.wake(EXITED);
        }
    }

    /// The connection ended before this channel closed.
    pub(crate) fn on_broken(&self, err: Error) {
        let mut st = self.lock();
        if !st.closed && st.broken.is_none() {
            st.broken = Some(err);
        }
        st.permit = None;
        st.replies.clear();
        let wake = self.wake_all(&mut st);
        let exited = st.waker.take();
        drop(st);
        self.notify_after(wake);
        if let Some(w) = exited {
            w.wake(EXITED);
        }
    }

    pub(crate) fn on_exit(&self, info: ExitInfo) {
        let mut st = self.lock();
        if st.exit.is_none() {
            st.exit = Some(info);
        }
        let w = if st.eof { st.waker.clone() } else { None };
        drop(st);
        self.event.notify_waiters();
        if let Some(w) = w {
            w.wake(EXITED);
        }
    }

    pub(crate) fn on_reply(&self, ok: bool) {
        let tx = self.lock().replies.pop_front();
        if let Some(tx) = tx {
            let _ = tx.send(ok);
        }
    }

    pub(crate) fn expect_reply(&self) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        self.lock().replies.push_back(tx);
        rx
    }

    /// Synchronous read: copies what is buffered into `out`.
    pub fn read_into(&self, stream: usize, out: &mut [u8]) -> ReadResult {
        let hwm = self.limits().high_water_mark;
        let mut st = self.lock();
        let before = st.total();
        let n = take_queued(&mut st, stream, out);
        self.finish_read(st, stream, n, before, hwm, None)
    }

    /// Synchronous read for the JavaScript side: like `read_into` (at most `max` bytes), but
    /// when nothing is buffered the reader lends `buf` — it promises not to touch that memory
    /// until its next read — and incoming bytes are copied straight into it, saving a copy.
    /// The next read with the same buffer finds them in place; with another, they are copied.
    pub fn read_or_lend(&self, stream: usize, mut buf: Box<dyn LendBuf>, max: usize) -> ReadResult {
        let hwm = self.limits().high_water_mark;
        let mut st = self.lock();
        let before = st.total();
        let n = {
            let out = buf.bytes();
            let max = max.min(out.len());
            take_queued(&mut st, stream, &mut out[..max])
        };
        self.finish_read(st, stream, n, before, hwm, Some(buf))
    }

    fn finish_read(&self, mut st: MutexGuard<'_, State>, stream: usize, n: usize, before: usize, hwm: usize, lend: Option<Box<dyn LendBuf>>) -> ReadResult {
        if n > 0 {
            drop(st);
            if before > hwm / 2 {
                self.space.notify_waiters();
            }
            return ReadResult::Data(n);
        }
        if st.eof {
            return ReadResult::Eof;
        }
        if let Some(e) = &st.broken {
            return ReadResult::Failed(e.clone());
        }
        if st.closed {
            return ReadResult::Eof;
        }
        st.armed[stream] = true;
        if let Some(mut buf) = lend.filter(|_| !st.discard) {
            let addr = buf.bytes().as_ptr() as usize;
            st.lent[stream] = Some(Lent { buf, addr, filled: 0 });
        }
        ReadResult::Pending
    }

    /// Poll-based read of the data stream for Rust readers (`ChannelStream`): Ok(0) at the
    /// end. Extended data is dropped (port forwards and subsystems carry none that matters).
    pub fn poll_read_data(&self, cx: &mut std::task::Context<'_>, out: &mut [u8]) -> std::task::Poll<Result<usize>> {
        use std::task::Poll;
        let hwm = self.limits().high_water_mark;
        let mut st = self.lock();
        let before = st.total();
        let dropped = st.bufs[STDERR].len();
        st.bufs[STDERR] = Buf::default();
        if dropped > 0 && before > hwm {
            // the event loop may wait for space that only stderr took
            self.space.notify_waiters();
        }
        let n = take_queued(&mut st, STDOUT, out);
        if n > 0 || out.is_empty() {
            drop(st);
            if before > hwm / 2 {
                self.space.notify_waiters();
            }
            return Poll::Ready(Ok(n));
        }
        if st.eof {
            return Poll::Ready(Ok(0));
        }
        if let Some(e) = &st.broken {
            return Poll::Ready(Err(e.clone()));
        }
        if st.closed {
            return Poll::Ready(Ok(0));
        }
        st.poll_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Bytes waiting in `stream`.
    pub fn buffered(&self, stream: usize) -> usize {
        self.lock().queued(stream)
    }

    /// Stop buffering one stream: its reader is gone, the other one may still read. Frees
    /// the connection if it waits on us.
    pub fn discard_stream(&self, stream: usize) {
        let s = if stream == STDOUT { STDOUT } else { STDERR };
        let mut st = self.lock();
        st.dropped[s] = true;
        st.bufs[s] = Buf::default();
        st.lent[s] = None;
        st.armed[s] = false;
        drop(st);
        self.space.notify_waiters();
    }

    /// Stop buffering: the reader is gone. Frees the connection if it waits on us.
    /// The connection's owner is closing it: a read paused at the high-water mark (which
    /// holds the whole connection) must not hold up the close, so nothing more is taken in.
    pub(crate) fn stop_for_close(&self) {
        self.lock().closing = true;
        self.space.notify_waiters();
    }

    pub fn discard(&self) {
        let mut st = self.lock();
        st.discard = true;
        st.bufs = [Buf::default(), Buf::default()];
        st.lent = [None, None];
        drop(st);
        self.space.notify_waiters();
    }

    pub fn exit_info(&self) -> Option<ExitInfo> {
        self.lock().exit.clone()
    }

    pub fn is_closed(&self) -> bool {
        let st = self.lock();
        st.closed || st.broken.is_some()
    }

    /// Waits until the remote command has exited (exit-status / exit-signal) or the
    /// channel has closed. A connection lost first is an error.
    pub async fn wait_exit(&self) -> Result<ExitInfo> {
        loop {
            let notified = self.event.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.poll_exit() {
                return r;
            }
            notified.await;
        }
    }

    /// The channel's end, once known: its exit status once the output has ended too (a
    /// server may send the status before the last of the output: everything the command
    /// wrote has arrived when this answers), an empty one if it closed without any, or the
    /// error that broke it; None until then (an `EXITED` wake follows).
    pub fn poll_exit(&self) -> Option<Result<ExitInfo>> {
        let st = self.lock();
        if let Some(info) = st.exit.as_ref().filter(|_| st.eof || st.closed) {
            return Some(Ok(info.clone()));
        }
        if let Some(e) = st.broken.as_ref().filter(|_| !st.eof) {
            return Some(Err(e.clone()));
        }
        if st.closed {
            return Some(Ok(ExitInfo::default()));
        }
        st.broken.as_ref().map(|e| Err(e.clone()))
    }

    /// Waits until the channel is closed (or the connection lost).
    pub async fn wait_closed(&self) {
        loop {
            let notified = self.event.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    /// Rust-side reader: waits for new bytes on either stream (or the end), and hands
    /// back everything buffered. `None` once both streams are finished.
    pub async fn next_chunks(&self) -> Result<Option<[Vec<u8>; 2]>> {
        let mut out = [Vec::new(), Vec::new()];
        Ok(self.next_chunks_into(&mut out).await?.then_some(out))
    }

    /// As `next_chunks`, into `out` (stdout, stderr), whose memory the channel keeps for the
    /// next batch: a copy loop that passes the same pair each time allocates nothing once warm.
    /// Ok(false) once both streams are finished.
    pub async fn next_chunks_into(&self, out: &mut [Vec<u8>; 2]) -> Result<bool> {
        loop {
            let notified = self.event.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                st.rust_reader = true;
                if st.bufs[0].len() > 0 || st.bufs[1].len() > 0 {
                    let [o, e] = out;
                    st.bufs[0].swap_into(o);
                    st.bufs[1].swap_into(e);
                    drop(st);
                    self.space.notify_waiters();
                    return Ok(true);
                }
                if st.eof {
                    return Ok(false);
                }
                if let Some(e) = &st.broken {
                    return Err(e.clone());
                }
                if st.closed {
                    return Ok(false);
                }
            }
            notified.await;
        }
    }

    pub(crate) fn broken_error(&self) -> Option<Error> {
        self.lock().broken.clone()
    }
}

/// The sending side of a channel, plus its shared receive state.
pub struct Channel {
    pub(crate) shared: Arc<ChannelShared>,
    pub(crate) tx: Arc<ChannelWriteHalf<Msg>>,
    pub(crate) conn: Arc<crate::client::ConnShared>,
    /// Where Drop sends the CLOSE (Drop may run on a thread without a runtime).
    pub(crate) runtime: tokio::runtime::Handle,
    /// Bytes JavaScript queued synchronously, sent in order by one writer task.
    pub(crate) out: Arc<OutQueue>,
}

/// Stream id a drain wake is sent with (0 and 1 are stdout and stderr).
pub const DRAIN: usize = 2;
/// Stream id of the wake sent when the last lent write buffer has been consumed.
pub const RELEASED: usize = 3;
/// Stream id of the wake sent when the channel's end is known: its exit status and the end of
/// its output arrived, or it closed or broke (see `ChannelShared::poll_exit`).
pub const EXITED: usize = 4;
/// Queued bytes past which `write_queued` asks the writer to wait for a drain wake.
const OUT_HIGH_WATER: usize = 1024 * 1024;

#[derive(Default)]
struct OutState {
    /// Copied bytes not yet sealed into a segment.
    data: Vec<u8>,
    /// Sealed batches and lent buffers, in the order they were written.
    segments: VecDeque<bytes::Bytes>,
    /// Bytes in `segments`.
    segment_bytes: usize,
    /// Lent buffers not yet released (see `Channel::write_lent`), and whom to tell when the
    /// last one is: held only while some are out, so it never outlives them.
    lent: usize,
    lent_waker: Option<Arc<dyn Wake>>,
    eof: bool,
    stop: bool,
    failed: Option<Error>,
    writer_running: bool,
    /// JavaScript was told to wait; wake it (DRAIN) when the queue falls below half.
    waiting: bool,
    done: bool,
    /// The writer's own handle on the wake callback: it outlives the channel's (released at
    /// close) so a writer waiting on a drain always hears the end.
    waker: Option<Arc<dyn Wake>>,
}

/// The outgoing queue of a channel: writes from JavaScript cost one lock and a notify, no
/// promise; the writer task sends whatever has gathered, waiting for the peer's window.
#[derive(Default)]
pub struct OutQueue {
    state: Mutex<OutState>,
    more: Notify,
    finished: Notify,
}

impl OutQueue {
    fn lock(&self) -> MutexGuard<'_, OutState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl OutState {
    fn queued(&self) -> usize {
        self.data.len() + self.segment_bytes
    }

    /// Everything queued, in order, for the writer (or to be dropped: lent buffers are then
    /// released).
    fn take_all(&mut self) -> VecDeque<bytes::Bytes> {
        let mut all = std::mem::take(&mut self.segments);
        self.segment_bytes = 0;
        if !self.data.is_empty() {
            all.push_back(bytes::Bytes::from_owner(Batch(std::mem::take(&mut self.data))));
        }
        all
    }
}

/// A buffer the caller lends to a write (JavaScript's own Buffer, sent without a copy): held
/// until russh has copied it into packets, then dropped; the last one out wakes the writer's
/// owner with `RELEASED`, so it may reuse or drop that memory.
struct LentWrite<T: AsRef<[u8]> + Send + 'static> {
    owner: Option<T>,
    /// Weak: the queue holds its segments, and they must not keep it alive.
    out: Weak<OutQueue>,
}

impl<T: AsRef<[u8]> + Send + 'static> AsRef<[u8]> for LentWrite<T> {
    fn as_ref(&self) -> &[u8] {
        self.owner.as_ref().map_or(&[], |o| o.as_ref())
    }
}

impl<T: AsRef<[u8]> + Send + 'static> Drop for LentWrite<T> {
    fn drop(&mut self) {
        // the memory goes back first: whoever hears the wake finds it released
        drop(self.owner.take());
        let Some(out) = self.out.upgrade() else { return };
        let wake = {
            let mut st = out.lock();
            st.lent = st.lent.saturating_sub(1);
            if st.lent == 0 { st.lent_waker.take() } else { None }
        };
        if let Some(w) = wake {
            w.wake(RELEASED);
        }
    }
}

/// Spare write-queue buffers, shared by every channel: a queue that has been sent reuses
/// memory that is already mapped instead of faulting in fresh pages for every batch.
static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
const SPARE_MAX: usize = 4;
const SPARE_CAPACITY_MAX: usize = 4 * OUT_HIGH_WATER;

fn spare_buffer() -> Vec<u8> {
    SPARE.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default()
}

/// A sent batch: russh slices it into packets and drops it once written; its memory goes
/// back to `SPARE`.
struct Batch(Vec<u8>);

impl AsRef<[u8]> for Batch {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        let mut v = std::mem::take(&mut self.0);
        if v.capacity() == 0 || v.capacity() > SPARE_CAPACITY_MAX {
            return;
        }
        v.clear();
        let mut spare = SPARE.lock().unwrap_or_else(|p| p.into_inner());
        if spare.len() < SPARE_MAX {
            spare.push(v);
        }
    }
}

fn drain_wake(out: &OutQueue) {
    let w = out.lock().waker.clone();
    if let Some(w) = w {
        w.wake(DRAIN);
    }
}

async fn run_writer(out: Arc<OutQueue>, tx: Arc<ChannelWriteHalf<Msg>>, shared: Arc<ChannelShared>, conn: Arc<crate::client::ConnShared>) {
    loop {
        let notified = out.more.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (mut sending, eof, stop) = {
            let mut st = out.lock();
            (st.take_all(), st.eof, st.stop)
        };
        if stop {
            break;
        }
        if !sending.is_empty() {
            // each segment is handed over whole: russh splits it into packets without another
            // copy here. russh waits for window space with no regard for the channel closing,
            // so that is watched here: a closed channel's window never opens again.
            let mut failed = None;
            while let Some(seg) = sending.pop_front() {
                // held until the failure is on record, so a lent buffer's release wake never
                // comes before it
                let keep = seg.clone();
                let r = tokio::select! {
                    r = tx.data_bytes(seg) => r.map_err(Some),
                    _ = shared.wait_closed() => Err(None),
                };
                if let Err(e) = r {
                    failed = Some((e, keep));
                    break;
                }
            }
            if let Some((e, keep)) = failed {
                let err = shared.broken_error().or_else(|| conn.close_error()).unwrap_or_else(|| match e {
                    Some(russh::Error::SendError) | None => Error::channel("closed", "the channel closed before all of its input was sent"),
                    Some(other) => other.into(),
                });
                let rest = {
                    let mut st = out.lock();
                    st.failed = Some(err);
                    st.done = true;
                    st.take_all()
                };
                drop((keep, sending, rest));
                drain_wake(&out);
                out.lock().waker = None;
                out.finished.notify_waiters();
                return;
            }
            let wake = {
                let mut st = out.lock();
                let w = st.waiting && st.queued() < OUT_HIGH_WATER / 2;
                if w {
                    st.waiting = false;
                }
                w
            };
            if wake {
                drain_wake(&out);
            }
            continue;
        }
        if eof {
            // EOF on a channel the server closed is moot; on one the connection broke under,
            // it was never sent, and the caller hears why
            let r = if shared.is_closed() {
                match shared.broken_error() {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            } else {
                tx.eof().await.map_err(Error::from)
            };
            let mut st = out.lock();
            if let Err(e) = r {
                st.failed = Some(shared.broken_error().or_else(|| conn.close_error()).unwrap_or(e));
            }
            st.done = true;
            st.waker = None;
            drop(st);
            out.finished.notify_waiters();
            return;
        }
        // nothing to send: wait for more, or for the channel's end, after which no write can
        // come (the writer would otherwise hold the wake callback, and through it the
        // JavaScript objects, until the process exits)
        tokio::select! {
            _ = notified => {}
            _ = shared.wait_closed() => {
                let wake = {
                    let mut st = out.lock();
                    if !st.segments.is_empty() || !st.data.is_empty() || st.eof || st.stop {
                        continue; // queued meanwhile: the loop above sends it or fails
                    }
                    st.done = true;
                    // an end() still to come hears why nothing more can be sent
                    st.failed = shared.broken_error().or_else(|| conn.close_error());
                    st.waker.take()
                };
                drop(wake);
                out.finished.notify_waiters();
                return;
            }
        }
    }
    // stopped: what is still queued is never sent, and lent buffers go back now
    let rest = {
        let mut st = out.lock();
        st.done = true;
        st.waker = None;
        st.take_all()
    };
    drop(rest);
    out.finished.notify_waiters();
}

impl Channel {
    pub fn shared(&self) -> &Arc<ChannelShared> {
        &self.shared
    }

    /// Queues bytes without waiting. Ok(true): keep writing; Ok(false): the queue is full,
    /// wait for a DRAIN wake; Err: the channel failed (nothing more will be sent).
    pub fn write_queued(&self, data: &[u8]) -> Result<bool> {
        let mut st = self.out.lock();
        self.check_writable(&st)?;
        if st.data.capacity() == 0 {
            st.data = spare_buffer();
        }
        st.data.extend_from_slice(data);
        Ok(self.queued_more(st))
    }

    /// Queues a buffer the caller lends without a copy: it is dropped once russh has copied
    /// it into packets (or the channel ends first), and when the last lent buffer is gone the
    /// waker hears `RELEASED`. The caller must leave the memory alone until then. Returns
    /// like `write_queued`; on Err the buffer is dropped at once.
    pub fn write_lent<T: AsRef<[u8]> + Send + 'static>(&self, buf: T) -> Result<bool> {
        let mut st = self.out.lock();
        if let Err(e) = self.check_writable(&st) {
            drop(st);
            return Err(e);
        }
        let lent = LentWrite { owner: Some(buf), out: Arc::downgrade(&self.out) };
        if st.lent == 0 {
            st.lent_waker = self.shared.waker();
        }
        st.lent += 1;
        if !st.data.is_empty() {
            let d = std::mem::take(&mut st.data);
            st.segment_bytes += d.len();
            st.segments.push_back(bytes::Bytes::from_owner(Batch(d)));
        }
        let piece = bytes::Bytes::from_owner(lent);
        st.segment_bytes += piece.len();
        st.segments.push_back(piece);
        Ok(self.queued_more(st))
    }

    /// Lent write buffers not yet released.
    pub fn lent_outstanding(&self) -> usize {
        self.out.lock().lent
    }

    /// Why queued input could not be sent, once the writer has given up.
    pub fn write_failed(&self) -> Option<Error> {
        self.out.lock().failed.clone()
    }

    fn check_writable(&self, st: &OutState) -> Result<()> {
        if let Some(e) = &st.failed {
            return Err(e.clone());
        }
        if st.eof || st.stop || self.shared.is_closed() {
            return Err(self.shared.broken_error().unwrap_or_else(|| Error::channel("closed", "write after the channel closed")));
        }
        Ok(())
    }

    /// After bytes were queued: starts the writer if it is not running and wakes it; true
    /// while the queue is below its high-water mark.
    fn queued_more(&self, mut st: MutexGuard<'_, OutState>) -> bool {
        let below = st.queued() < OUT_HIGH_WATER;
        if !below {
            st.waiting = true;
        }
        let start = !st.writer_running;
        st.writer_running = true;
        if start {
            st.waker = self.shared.waker();
        }
        drop(st);
        if start {
            let (out, tx, shared, conn) = (Arc::clone(&self.out), Arc::clone(&self.tx), Arc::clone(&self.shared), Arc::clone(&self.conn));
            self.runtime.spawn(run_writer(out, tx, shared, conn));
        }
        self.out.more.notify_one();
        below
    }

    /// Sends everything queued, then EOF; resolves when done.
    pub async fn finish_queued(&self) -> Result<()> {
        let start = {
            let mut st = self.out.lock();
            st.eof = true;
            let start = !st.writer_running;
            st.writer_running = true;
            start
        };
        if start {
            let (out, tx, shared, conn) = (Arc::clone(&self.out), Arc::clone(&self.tx), Arc::clone(&self.shared), Arc::clone(&self.conn));
            self.runtime.spawn(run_writer(out, tx, shared, conn));
        }
        self.out.more.notify_one();
        loop {
            let n = self.out.finished.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            {
                let st = self.out.lock();
                if st.done {
                    return match &st.failed {
                        Some(e) => Err(e.clone()),
                        None => Ok(()),
                    };
                }
            }
            n.await;
        }
    }

    fn send_error(&self, e: russh::Error) -> Error {
        self.shared
            .broken_error()
            .or_else(|| self.conn.close_error())
            .unwrap_or_else(|| match e {
                russh::Error::SendError => Error::channel("closed", "the channel is closed"),
                other => other.into(),
            })
    }

    /// Sends bytes, waiting for the peer's window (RFC 4254 §5.2).
    pub async fn write(&self, data: impl Into<bytes::Bytes>) -> Result<()> {
        if self.shared.is_closed() {
            return Err(self.shared.broken_error().unwrap_or_else(|| Error::channel("closed", "write after the channel closed")));
        }
        // russh's wait for window space does not end when the channel closes: watch for that
        tokio::select! {
            r = self.tx.data_bytes(data) => r.map_err(|e| self.send_error(e)),
            _ = self.shared.wait_closed() => Err(self.shared.broken_error().unwrap_or_else(|| Error::channel("closed", "the channel closed before all of its input was sent"))),
        }
    }

    pub async fn eof(&self) -> Result<()> {
        if self.shared.is_closed() {
            return Ok(());
        }
        self.tx.eof().await.map_err(|e| self.send_error(e))
    }

    pub async fn close(&self) -> Result<()> {
        // a channel that has already ended keeps its output: every byte is here, and nothing
        // waits on the reader any more
        if self.shared.is_closed() {
            return Ok(());
        }
        self.shared.discard();
        let sent = self.tx.close().await.map_err(|e| self.send_error(e));
        // russh forgets a channel once we send CLOSE, and does not report the server's
        // answer: the channel (and its session slot) is closed from here on. A server that
        // is slower to free the slot is covered by the retry in `open_session`.
        self.shared.on_close();
        sent
    }

    pub async fn signal(&self, name: &str) -> Result<()> {
        let sig = signal_from_name(name)?;
        self.tx.signal(sig).await.map_err(|e| self.send_error(e))
    }

    pub async fn window_change(&self, cols: u32, rows: u32, width_px: u32, height_px: u32) -> Result<()> {
        self.tx.window_change(cols, rows, width_px, height_px).await.map_err(|e| self.send_error(e))
    }

    async fn await_reply(&self, rx: oneshot::Receiver<bool>, what: &str) -> Result<()> {
        match rx.await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::channel("request-failed", format!("the server refused the {what} request"))),
            Err(_) => Err(self.shared.broken_error().or_else(|| self.conn.close_error()).unwrap_or_else(|| {
                Error::channel("closed", format!("the channel closed before the server answered the {what} request"))
            })),
        }
    }

    pub async fn set_env(&self, name: &str, value: &str) -> Result<()> {
        // Like OpenSSH's client: no reply requested; sshd silently ignores names outside AcceptEnv.
        self.tx.set_env(false, name, value).await.map_err(|e| self.send_error(e))
    }

    pub async fn request_pty(&self, pty: &crate::options::PtyOptions) -> Result<()> {
        let rx = self.shared.expect_reply();
        let modes: Vec<(russh::Pty, u32)> = pty.modes.iter().filter_map(|&(op, v)| russh::Pty::from_u8(op).map(|p| (p, v))).collect();
        self.tx
            .request_pty(true, &pty.term, pty.cols, pty.rows, pty.width_px, pty.height_px, &modes)
            .await
            .map_err(|e| self.send_error(e))?;
        self.await_reply(rx, "pty").await
    }

    pub async fn exec(&self, command: &str) -> Result<()> {
        let rx = self.shared.expect_reply();
        self.tx.exec(true, command.as_bytes()).await.map_err(|e| self.send_error(e))?;
        self.await_reply(rx, "exec").await
    }

    pub async fn shell(&self) -> Result<()> {
        let rx = self.shared.expect_reply();
        self.tx.request_shell(true).await.map_err(|e| self.send_error(e))?;
        self.await_reply(rx, "shell").await
    }

    pub async fn subsystem(&self, name: &str) -> Result<()> {
        let rx = self.shared.expect_reply();
        self.tx.request_subsystem(true, name).await.map_err(|e| self.send_error(e))?;
        self.await_reply(rx, "subsystem").await
    }

    pub(crate) async fn request_x11(&self, t: &crate::x11::X11Target) -> Result<()> {
        let rx = self.shared.expect_reply();
        self.tx
            .request_x11(true, t.single_connection, crate::x11::AUTH_PROTOCOL, crate::x11::hex(&t.fake_cookie), t.screen)
            .await
            .map_err(|e| self.send_error(e))?;
        self.await_reply(rx, "x11 forwarding").await
    }

    pub async fn agent_forward(&self) -> Result<()> {
        let rx = self.shared.expect_reply();
        self.tx.agent_forward(true).await.map_err(|e| self.send_error(e))?;
        self.await_reply(rx, "agent forwarding").await
    }
}

impl Drop for Channel {
    /// The owner is gone: a channel still open is closed in the background.
    fn drop(&mut self) {
        let rest = {
            let mut st = self.out.lock();
            st.stop = true;
            // a writer that never ran would leave these for good
            if st.writer_running { VecDeque::new() } else { st.take_all() }
        };
        drop(rest);
        self.out.more.notify_one();
        self.shared.discard();
        if self.shared.is_closed() {
            self.conn.forget_channel(self.shared.id);
            return;
        }
        let (tx, shared, conn) = (Arc::clone(&self.tx), Arc::clone(&self.shared), Arc::clone(&self.conn));
        self.runtime.spawn(async move {
            let _ = tx.close().await;
            shared.on_close();
            conn.forget_channel(shared.id);
        });
    }
}

/// Signal names as in RFC 4254 §6.10 (without the "SIG" prefix).
pub fn signal_from_name(name: &str) -> Result<Sig> {
    let bare = name.strip_prefix("SIG").unwrap_or(name);
    Ok(match bare {
        "ABRT" => Sig::ABRT,
        "ALRM" => Sig::ALRM,
        "FPE" => Sig::FPE,
        "HUP" => Sig::HUP,
        "ILL" => Sig::ILL,
        "INT" => Sig::INT,
        "KILL" => Sig::KILL,
        "PIPE" => Sig::PIPE,
        "QUIT" => Sig::QUIT,
        "SEGV" => Sig::SEGV,
        "TERM" => Sig::TERM,
        "USR1" => Sig::USR1,
        "USR2" => Sig::Custom("USR2".into()),
        _ => return Err(Error::config("signal", format!("unknown signal {name:?}: use a name such as TERM, INT, KILL or HUP"))),
    })
}

pub fn signal_name(sig: &Sig) -> String {
    match sig {
        Sig::ABRT => "ABRT".into(),
        Sig::ALRM => "ALRM".into(),
        Sig::FPE => "FPE".into(),
        Sig::HUP => "HUP".into(),
        Sig::ILL => "ILL".into(),
        Sig::INT => "INT".into(),
        Sig::KILL => "KILL".into(),
        Sig::PIPE => "PIPE".into(),
        Sig::QUIT => "QUIT".into(),
        Sig::SEGV => "SEGV".into(),
        Sig::TERM => "TERM".into(),
        Sig::USR1 => "USR1".into(),
        // a vendor name stays whole: OpenSSH reports a signal outside RFC 4254 (BUS, SYS,
        // XCPU, …) as "SIG@openssh.com", which is no "SIG" prefix to strip
        Sig::Custom(s) if s.contains('@') => s.to_string(),
        Sig::Custom(s) => s.strip_prefix("SIG").unwrap_or(s).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buf_keeps_order_across_partial_reads() {
        let mut b = Buf::default();
        b.push(b"hello ");
        let mut out = [0u8; 3];
        assert_eq!(b.take_into(&mut out), 3);
        assert_eq!(&out, b"hel");
        b.push(b"world");
        let mut rest = [0u8; 64];
        let n = b.take_into(&mut rest);
        assert_eq!(&rest[..n], b"lo world");
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn signal_names_round_trip() {
        for n in ["TERM", "INT", "KILL", "HUP", "USR1", "USR2"] {
            let s = signal_from_name(n).unwrap();
            assert_eq!(signal_name(&s), n);
        }
        assert_eq!(signal_name(&signal_from_name("SIGTERM").unwrap()), "TERM");
        assert!(signal_from_name("NOPE").is_err());
    }

    #[tokio::test]
    async fn armed_reader_is_woken_on_short_packet_only() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl Wake for Count {
            fn wake(&self, _s: usize) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let ch = ChannelShared::new(1, BufferLimits::default());
        let w = Arc::new(Count(Default::default()));
        ch.set_waker(Some(w.clone()));
        let mut out = vec![0u8; 1 << 20];
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Pending));
        ch.push(STDOUT, &vec![1u8; SHORT_PACKET]).await; // full packet: coalesce
        assert_eq!(w.0.load(std::sync::atomic::Ordering::SeqCst), 0);
        ch.push(STDOUT, b"tail").await; // short packet: end of burst
        assert_eq!(w.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        match ch.read_into(STDOUT, &mut out) {
            ReadResult::Data(n) => assert_eq!(n, SHORT_PACKET + 4),
            other => panic!("{other:?}"),
        }
        ch.on_eof();
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Eof));
    }

    #[tokio::test]
    async fn quiet_stream_is_flushed() {
        struct Flag(tokio::sync::Notify);
        impl Wake for Flag {
            fn wake(&self, _s: usize) {
                self.0.notify_one();
            }
        }
        let ch = ChannelShared::new(2, BufferLimits::default());
        let w = Arc::new(Flag(Notify::new()));
        ch.set_waker(Some(w.clone()));
        let mut out = vec![0u8; 64];
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Pending));
        ch.push(STDOUT, &vec![7u8; SHORT_PACKET]).await;
        tokio::time::timeout(Duration::from_secs(2), w.0.notified()).await.expect("flushed after quiet period");
    }

    /// Counts wakes and notes when the last came (in the test's paused clock).
    struct Woken(Mutex<Vec<tokio::time::Instant>>, Notify);
    impl Wake for Woken {
        fn wake(&self, _s: usize) {
            self.0.lock().unwrap().push(tokio::time::Instant::now());
            self.1.notify_one();
        }
    }

    /// How long after its last full packet an armed reader's quiet flush comes.
    async fn quiet_flush_delay(ch: &Arc<ChannelShared>, w: &Woken, packets: usize) -> Duration {
        let mut out = vec![0u8; 4 << 20];
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Pending));
        for _ in 0..packets {
            ch.push(STDOUT, &vec![7u8; SHORT_PACKET]).await;
        }
        let last = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(5), w.1.notified()).await.expect("flushed after a quiet period");
        let at = *w.0.lock().unwrap().last().unwrap();
        match ch.read_into(STDOUT, &mut out) {
            ReadResult::Data(n) => assert_eq!(n, packets * SHORT_PACKET, "every byte is flushed"),
            other => panic!("{other:?}"),
        }
        at - last
    }

    /// Fills one batch: the reader is woken at once, and the stream counts as a bulk transfer.
    async fn full_batch(ch: &Arc<ChannelShared>, w: &Woken, wake_bytes: usize) {
        let mut out = vec![0u8; 4 << 20];
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Pending));
        let woken = w.0.lock().unwrap().len();
        for _ in 0..wake_bytes / SHORT_PACKET {
            ch.push(STDOUT, &vec![1u8; SHORT_PACKET]).await;
        }
        assert_eq!(w.0.lock().unwrap().len(), woken + 1, "the full batch woke the reader");
        tokio::time::timeout(Duration::from_secs(1), w.1.notified()).await.expect("its wake is there");
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Data(n) if n == wake_bytes));
    }

    #[tokio::test(start_paused = true)]
    async fn a_bulk_stream_waits_longer_before_its_quiet_flush_and_the_end_of_a_burst_ends_that() {
        let limits = BufferLimits { high_water_mark: 4 << 20, wake_bytes: 256 * 1024 };
        let ch = ChannelShared::new(6, limits);
        let w = Arc::new(Woken(Mutex::new(Vec::new()), Notify::new()));
        ch.set_waker(Some(w.clone()));
        let mut out = vec![0u8; 4 << 20];
        // a stream that has not filled a batch: the short quiet period
        assert_eq!(quiet_flush_delay(&ch, &w, 2).await, QUIET_FLUSH);
        // after a full batch, a tail ending on a full packet is flushed a bulk period later
        full_batch(&ch, &w, limits.wake_bytes).await;
        assert_eq!(quiet_flush_delay(&ch, &w, 3).await, QUIET_FLUSH_BULK);
        // that flush ended the burst: the next one starts with the short period again
        assert_eq!(quiet_flush_delay(&ch, &w, 1).await, QUIET_FLUSH);
        // packets that keep coming push a bulk flush back: it comes a period after the last
        full_batch(&ch, &w, limits.wake_bytes).await;
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Pending));
        let gap = QUIET_FLUSH_BULK * 3 / 4;
        let woken = w.0.lock().unwrap().len();
        for _ in 0..4 {
            ch.push(STDOUT, &vec![2u8; SHORT_PACKET]).await;
            tokio::time::sleep(gap).await;
        }
        assert_eq!(w.0.lock().unwrap().len(), woken, "no flush while packets keep coming");
        let since = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(5), w.1.notified()).await.expect("flushed");
        let at = *w.0.lock().unwrap().last().unwrap();
        assert_eq!(at - since, QUIET_FLUSH_BULK - gap, "a period after the last packet");
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Data(n) if n == 4 * SHORT_PACKET));
        // a short packet also ends a bulk burst: it wakes at once, and the short period is back
        full_batch(&ch, &w, limits.wake_bytes).await;
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Pending));
        ch.push(STDOUT, b"end of burst").await;
        tokio::time::timeout(Duration::from_secs(1), w.1.notified()).await.expect("woken at once");
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Data(12)));
        assert_eq!(quiet_flush_delay(&ch, &w, 1).await, QUIET_FLUSH);
        ch.on_eof();
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Eof));
    }

    #[tokio::test]
    async fn a_tap_gets_buffered_bytes_first_then_every_push_and_the_end_still_shows() {
        let ch = ChannelShared::new(4, BufferLimits::default());
        ch.push(STDOUT, b"before ").await;
        ch.push(STDERR, b"ignored").await;
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = Arc::clone(&got);
        ch.set_tap(Box::new(move |d| g.lock().unwrap().extend_from_slice(d)));
        ch.push(STDOUT, b"after").await;
        ch.push(STDERR, b" (stderr)").await;
        assert_eq!(&got.lock().unwrap()[..], b"before after");
        assert_eq!(ch.buffered(STDOUT), 0, "nothing is left in the buffer");
        ch.on_eof();
        let mut bufs = [Vec::new(), Vec::new()];
        // stderr buffered before the tap is still there; after it, the end
        assert!(ch.next_chunks_into(&mut bufs).await.unwrap());
        assert_eq!(&bufs[1][..], b"ignored");
        assert!(!ch.next_chunks_into(&mut bufs).await.unwrap());
    }

    #[tokio::test]
    async fn broken_connection_fails_reader_after_buffered_bytes() {
        let ch = ChannelShared::new(3, BufferLimits::default());
        ch.push(STDOUT, b"abc").await;
        ch.on_broken(Error::disconnected("cut"));
        let mut out = [0u8; 8];
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Data(3)));
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Failed(_)));
        assert!(ch.wait_exit().await.is_err());
    }

    /// A session channel the server closes with neither EOF nor an exit status was cut short:
    /// its reader gets the bytes that came, then an error. With EOF, or an exit status, or on
    /// a forwarded connection's channel, CLOSE is the end.
    #[tokio::test]
    async fn session_closed_before_eof_fails_its_reader() {
        let mut out = [0u8; 8];
        let cut = ChannelShared::new(3, BufferLimits::default());
        cut.mark_session();
        cut.push(STDOUT, b"abc").await;
        cut.on_peer_close();
        assert!(matches!(cut.read_into(STDOUT, &mut out), ReadResult::Data(3)));
        assert!(matches!(cut.read_into(STDOUT, &mut out), ReadResult::Failed(Error::Channel { .. })));
        assert!(cut.wait_exit().await.is_err(), "no exit status and no EOF: not a clean exit");

        let ended = ChannelShared::new(4, BufferLimits::default());
        ended.mark_session();
        ended.on_eof();
        ended.on_peer_close();
        assert!(matches!(ended.read_into(STDOUT, &mut out), ReadResult::Eof));

        let exited = ChannelShared::new(5, BufferLimits::default());
        exited.mark_session();
        exited.on_exit(ExitInfo { code: Some(0), ..Default::default() });
        exited.on_peer_close();
        assert!(matches!(exited.read_into(STDOUT, &mut out), ReadResult::Eof));
        assert_eq!(exited.wait_exit().await.unwrap().code, Some(0));

        let forward = ChannelShared::new(6, BufferLimits::default());
        forward.on_peer_close();
        assert!(matches!(forward.read_into(STDOUT, &mut out), ReadResult::Eof));
    }

    #[tokio::test]
    async fn writer_waits_at_high_water_mark_until_drained() {
        let limits = BufferLimits { high_water_mark: 64 * 1024, wake_bytes: 16 * 1024 };
        let ch = ChannelShared::new(4, limits);
        let c2 = Arc::clone(&ch);
        let filler = tokio::spawn(async move {
            for _ in 0..8 {
                c2.push(STDOUT, &vec![0u8; 32 * 1024]).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!filler.is_finished(), "push must wait above the high-water mark");
        assert!(ch.buffered(STDOUT) <= limits.high_water_mark + 32 * 1024);
        let mut out = vec![0u8; 1 << 20];
        while !filler.is_finished() {
            let _ = ch.read_into(STDOUT, &mut out);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        filler.await.unwrap();
    }

    #[tokio::test]
    async fn rust_reader_batches_trade_memory_and_keep_order() {
        let ch = ChannelShared::new(5, BufferLimits::default());
        let mut batch = [Vec::new(), Vec::new()];
        let mut got = Vec::new();
        for i in 0..6u8 {
            ch.push(STDOUT, &vec![i; 40 * 1024]).await;
            ch.push(STDERR, &[i]).await;
            assert!(ch.next_chunks_into(&mut batch).await.unwrap());
            assert_eq!(batch[1], vec![i]);
            got.extend_from_slice(&batch[0]);
            if i > 0 {
                // the reader's previous batch became the channel's buffer: the next bytes
                // land in memory that is already there
                assert!(ch.lock().bufs[STDOUT].data.capacity() >= 40 * 1024);
            }
        }
        let want: Vec<u8> = (0..6u8).flat_map(|i| vec![i; 40 * 1024]).collect();
        assert_eq!(got, want);
        ch.on_eof();
        assert!(!ch.next_chunks_into(&mut batch).await.unwrap());
    }

    /// A handle on memory owned by the test, as a JS Buffer is a handle on its ArrayBuffer.
    struct Handle(*mut u8, usize);
    unsafe impl Send for Handle {}
    impl LendBuf for Handle {
        fn bytes(&mut self) -> &mut [u8] {
            unsafe { std::slice::from_raw_parts_mut(self.0, self.1) }
        }
    }

    #[tokio::test]
    async fn lent_buffer_receives_bytes_in_place_and_keeps_order() {
        let ch = ChannelShared::new(5, BufferLimits::default());
        let mut mem = vec![0u8; 8];
        let at = mem.as_mut_ptr();
        let h = || Box::new(Handle(at, 8));
        let mem = |_: ()| unsafe { std::slice::from_raw_parts_mut(at, 8) };
        assert!(matches!(ch.read_or_lend(STDOUT, h(), 8), ReadResult::Pending));
        ch.push(STDOUT, b"abcdef").await; // lands in the lent memory
        ch.push(STDOUT, b"ghijk").await; // 2 fit, the rest queues behind them
        assert_eq!(ch.buffered(STDOUT), 11);
        assert_eq!(&mem(())[..8], b"abcdefgh");
        match ch.read_or_lend(STDOUT, h(), 8) {
            ReadResult::Data(n) => assert_eq!(n, 8),
            other => panic!("{other:?}"),
        }
        mem(()).fill(0);
        match ch.read_or_lend(STDOUT, h(), 8) {
            ReadResult::Data(n) => assert_eq!(&mem(())[..n], b"ijk"),
            other => panic!("{other:?}"),
        }
        assert_eq!(ch.buffered(STDOUT), 0);
    }

    #[tokio::test]
    async fn lent_bytes_reach_another_buffer_and_eof_follows_them() {
        let ch = ChannelShared::new(6, BufferLimits::default());
        let lent = vec![0u8; 16];
        assert!(matches!(ch.read_or_lend(STDOUT, Box::new(Handle(lent.as_ptr() as *mut u8, 16)), 16), ReadResult::Pending));
        ch.push(STDOUT, b"0123456789").await;
        ch.push(STDOUT, b"abc").await;
        ch.on_eof();
        ch.on_close();
        // a smaller, different buffer: the lent bytes are copied, the surplus stays first in line
        let mut small = [0u8; 4];
        assert!(matches!(ch.read_into(STDOUT, &mut small), ReadResult::Data(4)));
        assert_eq!(&small, b"0123");
        let mut rest = [0u8; 64];
        match ch.read_into(STDOUT, &mut rest) {
            ReadResult::Data(n) => assert_eq!(&rest[..n], b"456789abc"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(ch.read_into(STDOUT, &mut rest), ReadResult::Eof));
    }

    #[tokio::test]
    async fn discard_forgets_the_lent_buffer() {
        let ch = ChannelShared::new(7, BufferLimits::default());
        let lent = vec![0u8; 4];
        assert!(matches!(ch.read_or_lend(STDERR, Box::new(Handle(lent.as_ptr() as *mut u8, 4)), 4), ReadResult::Pending));
        ch.discard();
        ch.push(STDERR, b"zz").await;
        assert_eq!(lent, [0u8; 4]);
        assert_eq!(ch.buffered(STDERR), 0);
    }

    #[tokio::test]
    async fn sent_batches_return_their_memory() {
        let before = SPARE.lock().unwrap().len();
        drop(Batch(Vec::with_capacity(1024)));
        let after = SPARE.lock().unwrap().len();
        assert!(after == before + 1 || after == SPARE_MAX);
        drop(Batch(Vec::with_capacity(SPARE_CAPACITY_MAX + 1)));
        assert!(SPARE.lock().unwrap().iter().all(|v| v.capacity() <= SPARE_CAPACITY_MAX && v.is_empty()));
        let v = spare_buffer();
        assert!(v.is_empty());
    }
}

#[cfg(test)]
mod lifecycle_tests {
    //! The ends of a channel's life: readers that go away, callbacks installed late, writers
    //! and opens that outlive their caller.
    use super::*;
    use crate::options::BoxFuture;
    use crate::server::{AuthRequest, ForwardRequest, Server, ServerCallbacks, ServerChannel, ServerOptions, SessionStart};
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(&self, _s: usize) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    struct NoWake;
    impl std::task::Wake for NoWake {
        fn wake(self: Arc<Self>) {}
    }

    fn small() -> BufferLimits {
        BufferLimits { high_water_mark: 64 * 1024, wake_bytes: 32 * 1024 }
    }

    /// A push over the mark waits; returns its task.
    async fn blocked_push(ch: &Arc<ChannelShared>, stream: usize) -> tokio::task::JoinHandle<()> {
        let c = Arc::clone(ch);
        let t = tokio::spawn(async move {
            for _ in 0..3 {
                c.push(stream, &[7u8; 32 * 1024]).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!t.is_finished(), "the third push waits above the mark");
        t
    }

    #[tokio::test]
    async fn a_polled_reader_dropping_stderr_frees_the_connection() {
        let ch = ChannelShared::new(1, small());
        let push = blocked_push(&ch, STDERR).await;
        let waker = std::task::Waker::from(Arc::new(NoWake));
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(ch.poll_read_data(&mut cx, &mut [0u8; 1024]).is_pending());
        tokio::time::timeout(Duration::from_secs(2), push).await.expect("the push goes on once stderr is dropped").unwrap();
    }

    #[tokio::test]
    async fn one_stream_discarded_the_other_still_delivers() {
        let ch = ChannelShared::new(2, small());
        let push = blocked_push(&ch, STDOUT).await;
        ch.discard_stream(STDOUT);
        tokio::time::timeout(Duration::from_secs(2), push).await.expect("discarding stdout frees the connection").unwrap();
        ch.push(STDOUT, b"dropped").await;
        ch.push(STDERR, b"kept").await;
        assert_eq!(ch.buffered(STDOUT), 0);
        let mut out = [0u8; 16];
        assert!(matches!(ch.read_into(STDERR, &mut out), ReadResult::Data(4)));
        assert_eq!(&out[..4], b"kept");
    }

    #[tokio::test]
    async fn a_channel_closed_before_its_callback_came_keeps_none_and_still_delivers() {
        let ch = ChannelShared::new(3, BufferLimits::default());
        ch.push(STDOUT, b"out").await;
        ch.on_eof();
        ch.on_close();
        let w = Arc::new(Count(AtomicUsize::new(0)));
        ch.set_waker(Some(w.clone()));
        assert_eq!(Arc::strong_count(&w), 1, "nothing holds the callback");
        let mut out = [0u8; 8];
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Data(3)));
        assert!(matches!(ch.read_into(STDOUT, &mut out), ReadResult::Eof));
    }

    #[tokio::test]
    async fn raising_the_mark_frees_a_push_that_waits_on_the_old_one() {
        let ch = ChannelShared::new(4, small());
        let push = blocked_push(&ch, STDOUT).await;
        ch.set_limits(BufferLimits { high_water_mark: 1 << 20, wake_bytes: 256 * 1024 });
        tokio::time::timeout(Duration::from_secs(2), push).await.expect("96 KiB is under the new mark").unwrap();
        assert_eq!(ch.buffered(STDOUT), 96 * 1024);
    }

    /// Memory handed to the channel as a lent read buffer, by address (as a JS Buffer is).
    struct Raw(*mut u8, usize);
    // SAFETY: the test keeps the memory alive and touches it only between reads
    unsafe impl Send for Raw {}
    impl LendBuf for Raw {
        fn bytes(&mut self) -> &mut [u8] {
            // SAFETY: the test's Vec outlives every use
            unsafe { std::slice::from_raw_parts_mut(self.0, self.1) }
        }
    }

    #[tokio::test]
    async fn a_read_into_a_view_of_the_lent_buffer_keeps_every_byte_in_order() {
        let ch = ChannelShared::new(5, BufferLimits::default());
        let mut mem = vec![0u8; 16];
        let at = mem.as_mut_ptr();
        assert!(matches!(ch.read_or_lend(STDOUT, Box::new(Raw(at, 16)), 16), ReadResult::Pending));
        ch.push(STDOUT, b"0123456789").await;
        // the next read passes a shorter view 2 bytes into the same memory
        // SAFETY: in bounds of `mem`
        let view = Box::new(Raw(unsafe { at.add(2) }, 4));
        assert!(matches!(ch.read_or_lend(STDOUT, view, 4), ReadResult::Data(4)));
        // SAFETY: in bounds of `mem`
        let mut all = unsafe { std::slice::from_raw_parts(at.add(2), 4) }.to_vec();
        let mut rest = [0u8; 16];
        let ReadResult::Data(n) = ch.read_into(STDOUT, &mut rest) else { panic!("the rest is queued") };
        all.extend_from_slice(&rest[..n]);
        drop(mem);
        assert_eq!(&all[..], b"0123456789");
    }

    struct Srv {
        channel: Mutex<Option<Arc<ServerChannel>>>,
        forward_delay: Duration,
    }
    impl ServerCallbacks for Srv {
        fn auth(&self, _req: AuthRequest) -> BoxFuture<bool> {
            Box::pin(async { true })
        }
        fn session(&self, _req: SessionStart, channel: Arc<ServerChannel>) -> BoxFuture<bool> {
            let mine = self.channel.lock().unwrap().replace(Arc::clone(&channel)).is_none();
            if !mine {
                // later sessions answer at once
                tokio::spawn(async move {
                    let _ = channel.write(0, b"ok".to_vec()).await;
                    let _ = channel.exit(0).await;
                });
            }
            Box::pin(async { true })
        }
        fn forward(&self, _req: ForwardRequest) -> BoxFuture<bool> {
            let d = self.forward_delay;
            Box::pin(async move {
                tokio::time::sleep(d).await;
                true
            })
        }
    }

    async fn server_and_client(forward_delay: Duration) -> (Server, Arc<Srv>, crate::client::Client, std::path::PathBuf) {
        server_and_client_with(forward_delay, None).await
    }

    async fn server_and_client_with(forward_delay: Duration, agent: Option<std::path::PathBuf>) -> (Server, Arc<Srv>, crate::client::Client, std::path::PathBuf) {
        static N: AtomicUsize = AtomicUsize::new(0);
        let key = std::env::temp_dir().join(format!("ferrossh-lifecycle-key-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let cb = Arc::new(Srv { channel: Mutex::new(None), forward_delay });
        let opts = ServerOptions { host_key_path: Some(key.clone()), none: true, exec: true, forward_direct: true, ..Default::default() };
        let srv = Server::new(opts, cb.clone()).unwrap();
        let addr = srv.listen("127.0.0.1", 0).await.unwrap();
        let mut co = crate::options::ConnectOptions::new("127.0.0.1", "u");
        co.port = addr.port();
        co.host_key = crate::options::HostKeyPolicy::InsecureAcceptAny;
        co.agent_forward = agent;
        let client = crate::client::Client::connect(co, None).await.unwrap();
        (srv, cb, client, key)
    }

    fn remove_key(key: &std::path::Path) {
        let _ = std::fs::remove_file(key);
        let _ = std::fs::remove_file(key.with_extension("pub"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_cannot_open_an_agent_channel_nobody_asked_for() {
        // a local agent is there (the client could forward it), but no session asked to
        let sock = std::env::temp_dir().join(format!("ferrossh-lifecycle-agent-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&sock);
        let agent = tokio::net::UnixListener::bind(&sock).unwrap();
        let (_srv, cb, client, key) = server_and_client_with(Duration::ZERO, Some(sock.clone())).await;
        let _held = client.start(Some("hold"), &crate::client::SessionRequest::default(), None).await.unwrap();
        let server_side = cb.channel.lock().unwrap().clone().unwrap();
        assert!(!server_side.open_agent_channel().await, "the client refuses the channel");
        assert!(tokio::time::timeout(Duration::from_millis(300), agent.accept()).await.is_err(), "and never reaches the agent");
        let _ = std::fs::remove_file(&sock);
        remove_key(&key);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_ends_with_its_channel_and_lets_go_of_the_callback() {
        let (_srv, cb, client, key) = server_and_client(Duration::ZERO).await;
        let ch = client.start(Some("cat"), &crate::client::SessionRequest::default(), None).await.unwrap();
        let w = Arc::new(Count(AtomicUsize::new(0)));
        ch.shared().set_waker(Some(w.clone()));
        assert!(ch.write_queued(b"input without an end").unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let server_side = cb.channel.lock().unwrap().clone().unwrap();
        server_side.exit(0).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), ch.shared().wait_closed()).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while !(ch.out.lock().done && Arc::strong_count(&w) == 1) {
            assert!(tokio::time::Instant::now() < deadline, "writer done: {}, callback refs: {}", ch.out.lock().done, Arc::strong_count(&w));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(ch.write_queued(b"more").is_err(), "a write after the end fails");
        remove_key(&key);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_open_given_up_before_its_reply_is_closed_and_the_connection_goes_on() {
        // the server takes 300 ms to allow a direct-tcpip open; the caller gives up at 100 ms,
        // and the target starts sending 8 MiB as soon as the server connects to it
        let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = target.local_addr().unwrap().port();
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<usize>();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = target.accept().await.unwrap();
            let mut sent = 0;
            for _ in 0..128 {
                if s.write_all(&[b'x'; 64 * 1024]).await.is_err() {
                    break;
                }
                sent += 64 * 1024;
            }
            // the client closes the channel it never wanted: the server then closes this
            let _ = s.read(&mut [0u8; 1]).await;
            let _ = closed_tx.send(sent);
        });
        let (_srv, _cb, client, key) = server_and_client(Duration::from_millis(300)).await;
        // the first session is the server's to keep; later ones answer "ok"
        let _held = client.start(Some("hold"), &crate::client::SessionRequest::default(), None).await.unwrap();
        let token = crate::CancelToken::new();
        let t = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            t.cancel();
        });
        let r = crate::CancelToken::run(Some(&token), client.open_direct_tcpip("127.0.0.1", port, "127.0.0.1", 0)).await;
        assert!(matches!(r, Err(Error::Aborted)), "the open was given up");
        tokio::time::timeout(Duration::from_secs(10), closed_rx).await.expect("the abandoned channel is closed").unwrap();
        let out = tokio::time::timeout(Duration::from_secs(5), client.exec("x", Default::default(), None))
            .await
            .expect("the connection still works")
            .unwrap();
        assert_eq!(out.stdout, b"ok");
        remove_key(&key);
    }
}
