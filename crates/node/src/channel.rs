//! `NativeChannel`: the JS side drains the channel's buffers with a synchronous
//! `read()` into a Buffer it reuses; a weak threadsafe function wakes it when an armed
//! read has something (DESIGN.md, "Data path and runtime").

use std::sync::{Arc, Mutex};

use ferrossh_core::{Channel, ChannelShared, ReadResult, Wake};
use napi::bindgen_prelude::{Buffer, BufferSlice, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;

use crate::client::NativeExitInfo;
use crate::errors::{self, IntoNapi};

type WakeFn = ThreadsafeFunction<u32, (), u32, Status, false, true>;

struct JsWake(WakeFn);

impl Wake for JsWake {
    fn wake(&self, stream: usize) {
        self.0.call(stream as u32, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

/// `read()` results below zero.
pub const READ_EOF: i32 = -1;
pub const READ_ERROR: i32 = -2;

/// What every JS-drained buffer (client channel, server session, SFTP read stream) needs on
/// the binding side: the weak wake callback, the synchronous read, the error behind a -2.
#[derive(Default)]
pub(crate) struct Reader {
    last_error: std::sync::Mutex<Option<String>>,
}

impl Reader {
    /// A weak threadsafe function: a wake never keeps the process alive.
    pub fn waker(cb: Function<u32, ()>) -> napi::Result<Arc<dyn Wake>> {
        let tsfn: WakeFn = cb.build_threadsafe_function().weak::<true>().callee_handled::<false>().build()?;
        Ok(Arc::new(JsWake(tsfn)))
    }

    /// > 0 bytes copied, 0 = nothing yet (armed: a wake follows), -1 = end, -2 = failed.
    /// While armed the channel holds `buf` (a reference keeps it alive) and copies incoming
    /// bytes straight into it: the JS side leaves that Buffer alone until its next read,
    /// which must pass the same Buffer to find them in place.
    pub fn read(&self, shared: &ChannelShared, stream: u32, buf: Buffer) -> i32 {
        let s = if stream == 0 { 0 } else { 1 };
        // a JS Buffer is at most 2^31-1 here (the return type), more than any wake batch
        let max = buf.len().min(i32::MAX as usize);
        match shared.read_or_lend(s, Box::new(buf), max) {
            ReadResult::Data(n) => n as i32,
            ReadResult::Pending => 0,
            ReadResult::Eof => READ_EOF,
            ReadResult::Failed(e) => self.fail(&e),
        }
    }

    pub fn fail(&self, e: &ferrossh_core::Error) -> i32 {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(errors::to_string(e));
        READ_ERROR
    }

    pub fn take_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

#[napi]
pub struct NativeChannel {
    inner: Arc<Channel>,
    reader: Reader,
    /// Lent write buffers russh is done with, kept for `reclaim()` to drop their references
    /// on the JavaScript thread.
    released: Arc<Mutex<Vec<Buffer>>>,
}

impl NativeChannel {
    pub fn new(ch: Channel) -> Self {
        NativeChannel { inner: Arc::new(ch), reader: Reader::default(), released: Arc::default() }
    }
}

/// A JavaScript Buffer lent to a write: its memory is sent as is; when russh is done with
/// it, it joins `released` (dropped off the JavaScript thread it would need a round trip
/// there of its own; napi-rs makes that safe should `released` itself go first).
struct LentBuffer {
    buf: Option<Buffer>,
    released: Arc<Mutex<Vec<Buffer>>>,
}

impl AsRef<[u8]> for LentBuffer {
    fn as_ref(&self) -> &[u8] {
        self.buf.as_deref().unwrap_or(&[])
    }
}

impl Drop for LentBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.released.lock().unwrap_or_else(|p| p.into_inner()).push(b);
        }
    }
}

#[napi]
impl NativeChannel {
    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.inner.shared().id
    }

    /// Installs the wake callback `(stream) => void` (0 = stdout, 1 = stderr).
    #[napi]
    pub fn set_waker(&self, cb: Function<u32, ()>) -> napi::Result<()> {
        self.inner.shared().set_waker(Some(Reader::waker(cb)?));
        Ok(())
    }

    /// Copies buffered bytes of `stream` into `buf`: > 0 bytes copied, 0 = nothing yet
    /// (the reader is armed and will be woken), -1 = end of stream, -2 = the connection
    /// failed first (see `takeError()`).
    #[napi]
    pub fn read(&self, stream: u32, buf: Buffer) -> i32 {
        self.reader.read(self.inner.shared(), stream, buf)
    }

    /// The serialized error behind the last -2 from `read()`.
    #[napi]
    pub fn take_error(&self) -> Option<String> {
        self.reader.take_error()
    }

    #[napi]
    pub fn buffered(&self, stream: u32) -> u32 {
        self.inner.shared().buffered(if stream == 0 { 0 } else { 1 }) as u32
    }

    /// Queues bytes without waiting: 1 = keep writing, 0 = queue full (a wake with stream 2
    /// comes when it drains), -2 = the channel failed (see `takeError()`).
    #[napi]
    pub fn write_queued(&self, data: BufferSlice) -> i32 {
        match self.inner.write_queued(&data) {
            Ok(true) => 1,
            Ok(false) => 0,
            Err(e) => self.reader.fail(&e),
        }
    }

    /// Queues `data` without copying it: the channel reads that memory until it has been
    /// packetized, and the caller must not change it until a wake with stream 3 says every
    /// lent buffer is released (`reclaim()` returns 0). Returns like `writeQueued`.
    #[napi]
    pub fn write_lent(&self, data: Buffer) -> i32 {
        let lent = LentBuffer { buf: Some(data), released: Arc::clone(&self.released) };
        match self.inner.write_lent(lent) {
            Ok(true) => 1,
            Ok(false) => 0,
            Err(e) => self.reader.fail(&e),
        }
    }

    /// Drops the references of released lent buffers. Returns how many are still lent; once
    /// none is, 0, or -2 when queued input could not be sent (see `takeError()`).
    #[napi]
    pub fn reclaim(&self) -> i32 {
        let done = std::mem::take(&mut *self.released.lock().unwrap_or_else(|p| p.into_inner()));
        drop(done);
        match self.inner.lent_outstanding() {
            0 => self.inner.write_failed().map_or(0, |e| self.reader.fail(&e)),
            n => n.min(i32::MAX as usize) as i32,
        }
    }

    /// Sends what is queued, then EOF.
    #[napi]
    pub async fn finish_queued(&self) -> napi::Result<()> {
        self.inner.finish_queued().await.js()
    }

    /// Sends one chunk (copied once), resolving when the peer's window took it.
    #[napi]
    pub async fn write(&self, data: Buffer) -> napi::Result<()> {
        self.inner.write(data.to_vec()).await.js()
    }

    /// Sends several chunks gathered into one copy (Writable._writev).
    #[napi]
    pub async fn write_many(&self, chunks: Vec<Buffer>) -> napi::Result<()> {
        let total = chunks.iter().map(|c| c.len()).sum();
        let mut data = Vec::with_capacity(total);
        for c in &chunks {
            data.extend_from_slice(c);
        }
        drop(chunks);
        self.inner.write(data).await.js()
    }

    #[napi]
    pub async fn eof(&self) -> napi::Result<()> {
        self.inner.eof().await.js()
    }

    #[napi]
    pub async fn signal(&self, name: String) -> napi::Result<()> {
        self.inner.signal(&name).await.js()
    }

    #[napi]
    pub async fn resize(&self, cols: u32, rows: u32, width: Option<u32>, height: Option<u32>) -> napi::Result<()> {
        self.inner.window_change(cols, rows, width.unwrap_or(0), height.unwrap_or(0)).await.js()
    }

    /// The exit status/signal once it and the end of the output have arrived (an empty one
    /// if the channel closed without any), null until then: a wake with stream 4 says when
    /// to look again. Throws if the connection broke first. Nothing here keeps the process
    /// alive.
    #[napi]
    pub fn poll_exit(&self) -> napi::Result<Option<NativeExitInfo>> {
        self.inner.shared().poll_exit().transpose().map(|o| o.map(Into::into)).js()
    }

    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        self.inner.close().await.js()
    }

    /// The reader is gone: drop incoming bytes so the connection never waits on us.
    #[napi]
    pub fn discard(&self) {
        self.inner.shared().discard();
    }

    /// One stream's reader is gone (0 = stdout, 1 = stderr): its bytes are dropped from now
    /// on, the other stream still delivers.
    #[napi]
    pub fn discard_stream(&self, stream: u32) {
        self.inner.shared().discard_stream(stream as usize);
    }
}

#[allow(dead_code)]
fn _status(_s: Status) {}
