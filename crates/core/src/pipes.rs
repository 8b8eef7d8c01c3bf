//! A proxy command's stdout and stdin as one stream that keeps both moving on their own.
//!
//! russh's session loop finishes each write before it reads again. Over a socket that is fine:
//! the kernel buffers megabytes both ways and the far side never waits for us. A proxy command
//! (`nc %h %p`) is one process between two ~64 KiB pipes: while it blocks writing its stdout
//! (nobody reads, the loop is writing) it stops reading its stdin, the loop's write never
//! finishes, and the connection freezes for good once both directions carry bulk data. So one
//! task always reads stdout into a buffer the read side serves, and another drains queued writes
//! into stdin: a write returns as soon as it is queued and the loop goes back to reading.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Notify;

/// How much of the command's stdout is held before we stop reading it. While the session loop
/// waits on a write it neither reads nor reopens any channel window, so the server can have in
/// flight at most the window it holds for each open channel (2 MiB each, see client.rs) plus a
/// few small control packets. 64 MiB is 32 such windows moving bulk data at the same moment;
/// past that the pump waits, which can only stall the connection if the write queue below is
/// full at the same time.
pub const READ_AHEAD: usize = 64 * 1024 * 1024;
/// How much written data may be queued for the command's stdin before a write waits. What
/// russh sends is bounded the same way by the server's windows (OpenSSH opens 2 MiB per channel).
pub const WRITE_BEHIND: usize = 64 * 1024 * 1024;

const CHUNK: usize = 64 * 1024;

#[derive(Default)]
struct State {
    rx: VecDeque<Vec<u8>>,
    rx_off: usize,
    rx_len: usize,
    rx_end: bool,
    rx_err: Option<(io::ErrorKind, String)>,
    rx_waker: Option<Waker>,
    tx: VecDeque<Vec<u8>>,
    tx_len: usize,
    /// Set by shutdown: close stdin once the queue is written.
    tx_end: bool,
    /// stdin is closed (after tx_end) or failed.
    tx_done: bool,
    tx_err: Option<(io::ErrorKind, String)>,
    tx_waker: Option<Waker>,
}

struct Shared {
    state: Mutex<State>,
    /// The reader drained below READ_AHEAD.
    rx_space: Notify,
    /// Something was queued for stdin, or shutdown was asked for.
    tx_ready: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Pipes {
    shared: Arc<Shared>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Pipes {
    fn drop(&mut self) {
        self.reader.abort();
        // what was queued (a last disconnect message) still reaches the command, then its stdin
        // closes; a command that reads no more is killed with the connection, ending the write
        self.shared.lock().tx_end = true;
        self.shared.tx_ready.notify_one();
    }
}

/// Joins `stdout` and `stdin` into a stream whose two directions never wait for each other.
pub fn pipes<R, W>(mut stdout: R, mut stdin: W) -> Pipes
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let shared = Arc::new(Shared { state: Mutex::new(State::default()), rx_space: Notify::new(), tx_ready: Notify::new() });
    let s = Arc::clone(&shared);
    let reader = tokio::spawn(async move {
        loop {
            while s.lock().rx_len >= READ_AHEAD {
                s.rx_space.notified().await;
            }
            let mut buf = vec![0u8; CHUNK];
            let r = stdout.read(&mut buf).await;
            let mut st = s.lock();
            match r {
                Ok(0) => st.rx_end = true,
                Ok(n) => {
                    buf.truncate(n);
                    st.rx_len += n;
                    st.rx.push_back(buf);
                }
                Err(e) => st.rx_err = Some((e.kind(), e.to_string())),
            }
            let over = st.rx_end || st.rx_err.is_some();
            if let Some(w) = st.rx_waker.take() {
                w.wake();
            }
            if over {
                return;
            }
        }
    });
    let s = Arc::clone(&shared);
    tokio::spawn(async move {
        loop {
            let (batch, end) = {
                let mut st = s.lock();
                (std::mem::take(&mut st.tx), st.tx_end)
            };
            if batch.is_empty() {
                if end {
                    let r = stdin.shutdown().await;
                    let mut st = s.lock();
                    st.tx_done = true;
                    if let Err(e) = r {
                        st.tx_err = Some((e.kind(), e.to_string()));
                    }
                    if let Some(w) = st.tx_waker.take() {
                        w.wake();
                    }
                    return;
                }
                s.tx_ready.notified().await;
                continue;
            }
            for chunk in batch {
                let r = stdin.write_all(&chunk).await;
                let mut st = s.lock();
                st.tx_len -= chunk.len();
                if let Err(e) = r {
                    st.tx_err = Some((e.kind(), e.to_string()));
                    st.tx_done = true;
                }
                if let Some(w) = st.tx_waker.take() {
                    w.wake();
                }
                if st.tx_done {
                    return;
                }
            }
        }
    });
    Pipes { shared, reader }
}

impl AsyncRead for Pipes {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut st = self.shared.lock();
        if st.rx_len == 0 {
            if let Some((kind, msg)) = st.rx_err.take() {
                return Poll::Ready(Err(io::Error::new(kind, msg)));
            }
            if st.rx_end {
                return Poll::Ready(Ok(()));
            }
            st.rx_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let was_full = st.rx_len >= READ_AHEAD;
        while buf.remaining() > 0 {
            let off = st.rx_off;
            let Some(front) = st.rx.front() else { break };
            let n = (front.len() - off).min(buf.remaining());
            buf.put_slice(&front[off..off + n]);
            let done = off + n == front.len();
            st.rx_len -= n;
            if done {
                st.rx.pop_front();
                st.rx_off = 0;
            } else {
                st.rx_off = off + n;
            }
        }
        if was_full && st.rx_len < READ_AHEAD {
            self.shared.rx_space.notify_one();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Pipes {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut st = self.shared.lock();
        if let Some((kind, msg)) = &st.tx_err {
            return Poll::Ready(Err(io::Error::new(*kind, msg.clone())));
        }
        if st.tx_end || st.tx_done {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the proxy command's stdin is closed")));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if st.tx_len >= WRITE_BEHIND {
            st.tx_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        st.tx_len += data.len();
        st.tx.push_back(data.to_vec());
        drop(st);
        self.shared.tx_ready.notify_one();
        Poll::Ready(Ok(data.len()))
    }

    /// Queued bytes count as flushed: waiting for the command to read them is the wait that
    /// froze the connection. A failed write shows here or on the next write.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let st = self.shared.lock();
        match &st.tx_err {
            Some((kind, msg)) => Poll::Ready(Err(io::Error::new(*kind, msg.clone()))),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = self.shared.lock();
        if st.tx_done {
            return match st.tx_err.take() {
                Some((kind, msg)) => Poll::Ready(Err(io::Error::new(kind, msg))),
                None => Poll::Ready(Ok(())),
            };
        }
        st.tx_end = true;
        st.tx_waker = Some(cx.waker().clone());
        drop(st);
        self.shared.tx_ready.notify_one();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for `nc`: copies its stdin to its stdout through ~64 KiB pipes, and while a
    /// write to its stdout waits, it reads nothing.
    #[tokio::test]
    async fn both_directions_move_while_neither_side_reads_before_its_write_is_done() {
        let (cmd_stdin, our_stdin) = tokio::io::duplex(64 * 1024);
        let (our_stdout, cmd_stdout) = tokio::io::duplex(64 * 1024);
        let (mut cmd_in, _) = tokio::io::split(cmd_stdin);
        let (_, mut cmd_out) = tokio::io::split(cmd_stdout);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = cmd_in.read(&mut buf).await.unwrap_or(0);
                if n == 0 || cmd_out.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
        let (_, w) = tokio::io::split(our_stdin);
        let (r, _) = tokio::io::split(our_stdout);
        let mut p = pipes(r, w);
        // like russh's loop: one whole write, then a read, over and over
        let total = 8 * 1024 * 1024;
        let block = vec![7u8; 1024 * 1024];
        let mut got = 0usize;
        let mut buf = vec![0u8; 256 * 1024];
        let run = async {
            for _ in 0..total / block.len() {
                p.write_all(&block).await.unwrap();
                p.flush().await.unwrap();
                got += p.read(&mut buf).await.unwrap();
            }
            p.shutdown().await.unwrap();
            loop {
                let n = p.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got += n;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), run).await.expect("the pipes froze");
        assert_eq!(got, total);
    }

    #[tokio::test]
    async fn what_was_queued_still_reaches_the_command_after_the_stream_is_dropped() {
        let (cmd_stdin, our_stdin) = tokio::io::duplex(1024);
        let (our_stdout, _cmd_stdout) = tokio::io::duplex(1024);
        let mut p = pipes(our_stdout, our_stdin);
        p.write_all(&[1u8; 64 * 1024]).await.unwrap();
        drop(p);
        let mut got = Vec::new();
        let mut cmd_stdin = cmd_stdin;
        tokio::time::timeout(std::time::Duration::from_secs(5), cmd_stdin.read_to_end(&mut got)).await.expect("stdin never closed").unwrap();
        assert_eq!(got.len(), 64 * 1024);
    }
}
