//! Copies bytes between a channel and a local stream (a Unix or TCP socket) entirely in
//! Rust: agent forwarding now, port forwarding later. Each direction ends with EOF on the
//! other side; the channel is closed when both are done.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::channel::Channel;
use crate::error::{Error, Result};

const CHUNK: usize = 64 * 1024;

/// Bytes copied (channel → stream, stream → channel).
pub async fn bridge<S>(ch: Channel, stream: S) -> Result<(u64, u64)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
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
        // the local side learns the end either way: EOF, or the channel's failure
        let _ = wr.shutdown().await;
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
    let _ = ch.close().await;
    result
}
