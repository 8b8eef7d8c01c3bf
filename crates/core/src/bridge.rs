//! Copies bytes between a channel and a local stream (a Unix or TCP socket) entirely in
//! Rust: agent forwarding now, port forwarding later. Each direction ends with EOF on the
//! other side; the channel is closed when both are done.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::channel::Channel;
use crate::error::{Error, Result};

const CHUNK: usize = 64 * 1024;

/// Bytes copied (channel → stream, stream → channel). `reset`: a handle on a TCP stream, which
/// is reset rather than closed with a FIN when the copy fails (the channel or the connection
/// broke), so its peer sees an error instead of what looks like the complete data.
pub async fn bridge<S>(ch: Channel, stream: S, reset: Option<socket2::Socket>) -> Result<(u64, u64)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    // declared after the halves, so dropped before them: a copy that does not finish (it
    // failed, or its task was aborted because the forward or the connection ended) resets
    let mut reset = ResetOnDrop(reset);
    let shared = std::sync::Arc::clone(ch.shared());
    let down = async {
        let mut n = 0u64;
        let r = async {
            let mut batch = [Vec::new(), Vec::new()];
            while shared.next_chunks_into(&mut batch).await? {
                n += batch[0].len() as u64;
                wr.write_all(&batch[0]).await.map_err(|e| Error::disconnected(format!("local socket: {e}")))?;
            }
            Ok::<(), Error>(())
        }
        .await;
        // ended by our own close or the connection, not by the server: cut short
        let r = match r {
            Ok(()) if !shared.ended_by_peer() => Err(Error::disconnected("the channel ended before the server's EOF")),
            other => other,
        };
        // a complete stream ends with EOF; a failed one is reset below, never ended cleanly
        if r.is_ok() {
            let _ = wr.shutdown().await;
        }
        r.map(|_| n)
    };
    let up = async {
        let mut n = 0u64;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let got = rd.read(&mut buf).await.map_err(|e| Error::disconnected(format!("local socket: {e}")))?;
            if got == 0 {
                ch.eof().await?;
                return Ok::<u64, Error>(n);
            }
            n += got as u64;
            ch.write(buf[..got].to_vec()).await?;
        }
    };
    tokio::pin!(down);
    tokio::pin!(up);
    // a failure on either side ends both directions; a clean EOF waits for the other side
    let result = tokio::select! {
        d = &mut down => match d {
            Ok(d) => up.await.map(|u| (d, u)),
            Err(e) => Err(e),
        },
        u = &mut up => match u {
            Ok(u) => down.await.map(|d| (d, u)),
            Err(e) => Err(e),
        },
    };
    if result.is_ok() {
        reset.0 = None;
    }
    let _ = ch.close().await;
    result
}

/// Makes a TCP stream's close a reset (SO_LINGER 0) when dropped armed: its peer then reads
/// ECONNRESET instead of a FIN that would pass for the complete data.
pub(crate) struct ResetOnDrop(pub(crate) Option<socket2::Socket>);

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if let Some(sock) = self.0.take() {
            let _ = sock.set_linger(Some(std::time::Duration::ZERO));
        }
    }
}
