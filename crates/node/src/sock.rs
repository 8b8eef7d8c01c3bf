//! `sock`: SSH over any connected JS Duplex. JS pushes what the Duplex reads; what SSH
//! writes comes back through a callback for JS to write to the Duplex.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Buffer, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

/// Weak: the connection's own close callback is what keeps Node alive.
type OutFn = ThreadsafeFunction<Option<Buffer>, (), Option<Buffer>, Status, false, true>;

#[napi]
pub struct NativeSocketBridge {
    pub(crate) ssh_side: Arc<Mutex<Option<DuplexStream>>>,
    input: mpsc::UnboundedSender<Option<Vec<u8>>>,
}

#[napi]
impl NativeSocketBridge {
    /// `on_output(chunk)` receives what SSH sends (null at the end).
    #[napi(constructor)]
    pub fn new(on_output: Function<Option<Buffer>, ()>) -> napi::Result<Self> {
        let out: OutFn = on_output.build_threadsafe_function().weak::<true>().callee_handled::<false>().build()?;
        let (ssh_side, ours) = tokio::io::duplex(256 * 1024);
        let (mut rd, mut wr) = tokio::io::split(ours);
        let (tx, mut rx) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
        // on our runtime, beside the session that reads and writes `ssh_side`
        crate::runtime::spawn(async move {
            while let Some(Some(chunk)) = rx.recv().await {
                if wr.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = wr.shutdown().await;
        })?;
        crate::runtime::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        out.call(Some(buf[..n].to_vec().into()), ThreadsafeFunctionCallMode::NonBlocking);
                    }
                }
            }
            out.call(None, ThreadsafeFunctionCallMode::NonBlocking);
        })?;
        Ok(NativeSocketBridge { ssh_side: Arc::new(Mutex::new(Some(ssh_side))), input: tx })
    }

    /// Bytes the Duplex produced.
    #[napi]
    pub fn push(&self, data: Buffer) {
        let _ = self.input.send(Some(data.to_vec()));
    }

    /// The Duplex ended.
    #[napi]
    pub fn end(&self) {
        let _ = self.input.send(None);
    }
}
