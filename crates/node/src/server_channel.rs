//! `NativeServerChannel`: a session channel of the embedded server as JS sees it. Reading
//! the client's input works like `NativeChannel` (synchronous `read()` into a reused Buffer,
//! woken when an armed read has something); writes go to the client's stdout or stderr;
//! window-change, signal and close arrive through an event callback.

use std::sync::Arc;

use ferrossh_core::server::{ChannelEvent, ChannelEvents, Prompter, ServerChannel};
use ferrossh_core::KbdPrompt;
use napi::bindgen_prelude::{Buffer, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;

use crate::channel::Reader;
use crate::errors::IntoNapi;
use crate::options::NativePrompt;

type EventFn = ThreadsafeFunction<NativeChannelEvent, (), NativeChannelEvent, Status, false, true>;

/// Something that happened on a running session: `kind` is 'resize', 'signal' or 'close'.
#[napi(object)]
pub struct NativeChannelEvent {
    pub kind: String,
    pub cols: Option<u32>,
    pub rows: Option<u32>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub signal: Option<String>,
}

struct JsEvents(EventFn);

impl ChannelEvents for JsEvents {
    fn event(&self, e: ChannelEvent) {
        let ev = match e {
            ChannelEvent::WindowChange { cols, rows, width_px, height_px } => NativeChannelEvent {
                kind: "resize".into(),
                cols: Some(cols),
                rows: Some(rows),
                width: Some(width_px),
                height: Some(height_px),
                signal: None,
            },
            ChannelEvent::Signal(name) => NativeChannelEvent { kind: "signal".into(), cols: None, rows: None, width: None, height: None, signal: Some(name) },
            ChannelEvent::Closed => NativeChannelEvent { kind: "close".into(), cols: None, rows: None, width: None, height: None, signal: None },
        };
        self.0.call(ev, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

#[napi]
pub struct NativeServerChannel {
    inner: Arc<ServerChannel>,
    reader: Reader,
}

impl NativeServerChannel {
    pub fn new(ch: Arc<ServerChannel>) -> Self {
        NativeServerChannel { inner: ch, reader: Reader::default() }
    }
}

fn gather(chunks: Vec<Buffer>) -> Vec<u8> {
    let total = chunks.iter().map(|c| c.len()).sum();
    let mut data = Vec::with_capacity(total);
    for c in &chunks {
        data.extend_from_slice(c);
    }
    data
}

#[napi]
impl NativeServerChannel {
    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// Installs the wake callback `(stream) => void` (0 = the client's data, 1 = its extended data).
    #[napi]
    pub fn set_waker(&self, cb: Function<u32, ()>) -> napi::Result<()> {
        self.inner.set_waker(Some(Reader::waker(cb)?));
        Ok(())
    }

    /// Installs the event callback; events that came before are delivered first.
    #[napi]
    pub fn set_event_handler(&self, cb: Function<NativeChannelEvent, ()>) -> napi::Result<()> {
        let tsfn: EventFn = cb.build_threadsafe_function().weak::<true>().callee_handled::<false>().build()?;
        self.inner.set_event_sink(Some(Arc::new(JsEvents(tsfn))));
        Ok(())
    }

    /// Copies buffered input into `buf`: > 0 bytes, 0 = nothing yet (armed), -1 = end, -2 =
    /// the connection failed first (see `takeError()`).
    #[napi]
    pub fn read(&self, stream: u32, buf: Buffer) -> i32 {
        self.reader.read(self.inner.shared(), stream, buf)
    }

    #[napi]
    pub fn take_error(&self) -> Option<String> {
        self.reader.take_error()
    }

    /// Sends to the client's stdout (0) or stderr (1), resolving when its window took it.
    #[napi]
    pub async fn write(&self, stream: u32, data: Buffer) -> napi::Result<()> {
        self.inner.write(stream, data.to_vec()).await.js()
    }

    /// Several chunks gathered into one copy (Writable._writev).
    #[napi]
    pub async fn write_many(&self, stream: u32, chunks: Vec<Buffer>) -> napi::Result<()> {
        let data = gather(chunks);
        self.inner.write(stream, data).await.js()
    }

    /// End of output (the client's input may still arrive).
    #[napi]
    pub async fn eof(&self) -> napi::Result<()> {
        self.inner.eof().await.js()
    }

    /// EOF, exit-status `code`, close.
    #[napi]
    pub async fn exit(&self, code: u32) -> napi::Result<()> {
        self.inner.exit(code).await.js()
    }

    /// EOF, exit-signal, close.
    #[napi]
    pub async fn exit_signal(&self, signal: String, core_dumped: Option<bool>, message: Option<String>) -> napi::Result<()> {
        self.inner.exit_signal(&signal, core_dumped.unwrap_or(false), message.as_deref().unwrap_or("")).await.js()
    }

    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        self.inner.close().await.js()
    }

    /// The reader is gone: drop incoming bytes so the connection never waits on us.
    #[napi]
    pub fn discard(&self) {
        self.inner.discard();
    }

    /// One stream's reader is gone (0 = the client's data, 1 = its extended data).
    #[napi]
    pub fn discard_stream(&self, stream: u32) {
        self.inner.discard_stream(stream as usize);
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// Asks a keyboard-interactive client questions for the server's callback.
#[napi]
pub struct NativeKbdPrompter {
    inner: Prompter,
}

impl NativeKbdPrompter {
    pub fn new(p: Prompter) -> Self {
        NativeKbdPrompter { inner: p }
    }
}

#[napi]
impl NativeKbdPrompter {
    /// The client's answers, or null when it went away or the round was refused.
    #[napi]
    pub async fn prompt(&self, name: String, instructions: String, prompts: Vec<NativePrompt>) -> Option<Vec<String>> {
        let prompts = prompts.into_iter().map(|p| KbdPrompt { prompt: p.prompt, echo: p.echo }).collect();
        let answers = self.inner.prompt(name, instructions, prompts).await?;
        Some(answers.iter().map(|s| s.expose().to_string()).collect())
    }
}
