//! Copies bytes between a server channel and a local stream (a forwarded TCP connection, the
//! SFTP server's end of a pipe) entirely in Rust. Each direction ends with EOF on the other
//! side; the channel is closed when both are done, or at once when reading the stream fails
//! (a reset: the client hears of it, as sshd tells it) or the channel goes away (the stream
//! is closed then, not whenever its idle peer next sends something).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::channel::ServerChannel;
use crate::error::{Error, Result};

const CHUNK: usize = 64 * 1024;

/// `exit_status`: sent when both directions are done (a subsystem's clients, `scp` among
/// them, treat a session that ends without one as failed).
pub(crate) async fn bridge<S>(ch: Arc<ServerChannel>, stream: S, exit_status: Option<u32>) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let shared = Arc::clone(ch.shared());
    let down = async {
        // the channel's input ends (EOF, close, or the connection lost): so does the stream's
        let mut batch = [Vec::new(), Vec::new()];
        while let Ok(true) = shared.next_chunks_into(&mut batch).await {
            if wr.write_all(&batch[0]).await.is_err() {
                // nobody reads any more: drop what still comes so the connection never waits
                shared.discard();
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    let up = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let got = tokio::select! {
                r = rd.read(&mut buf) => r.map_err(|e| Error::disconnected(format!("local socket: {e}")))?,
                _ = ch.closed() => return Ok(()),
            };
            if got == 0 {
                return ch.eof().await;
            }
            ch.write(0, buf[..got].to_vec()).await?;
        }
    };
    tokio::pin!(down, up);
    // a clean end of one direction waits for the other (half-close); a failure ends both
    let u = tokio::select! {
        _ = &mut down => up.await,
        u = &mut up => match u {
            Ok(()) => {
                // the other way may still carry the client's input; once the channel is gone
                // it is dropped too, even when blocked writing to a peer that stopped reading
                tokio::select! {
                    _ = &mut down => {}
                    _ = ch.closed() => {}
                }
                Ok(())
            }
            Err(e) => Err(e),
        },
    };
    match exit_status {
        Some(code) => {
            let _ = ch.exit(code).await;
        }
        None => {
            let _ = ch.close().await;
        }
    }
    u
}
