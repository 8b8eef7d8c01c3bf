//! Copies bytes between a server channel and a local stream (a forwarded TCP connection, the
//! SFTP server's end of a pipe) entirely in Rust. Each direction ends with EOF on the other
//! side; the channel is closed when both are done, or at once when reading the stream fails
//! (a reset: the client hears of it, as sshd tells it) or the channel goes away (the stream
//! is closed then, not whenever its idle peer next sends something). When the channel's
//! input does not end cleanly (the connection was lost), a TCP peer is reset, not given a FIN.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::channel::ServerChannel;
use crate::error::{Error, Result};

const CHUNK: usize = 64 * 1024;

/// `exit_status`: sent when both directions are done (a subsystem's clients, `scp` among
/// them, treat a session that ends without one as failed).
pub(crate) async fn bridge<S>(ch: Arc<ServerChannel>, stream: S, exit_status: Option<u32>) -> Result<()>
where
    S: crate::bridge::LocalStream,
{
    let mut reset = crate::bridge::ResetGuard::new(&stream);
    let (mut rd, mut wr) = tokio::io::split(stream);
    let shared = Arc::clone(ch.shared());
    // set once the channel's input has ended cleanly (EOF or close) or was let go
    let mut down_done = false;
    let u = {
        let down = async {
            // the channel's input ends (EOF or close): so does the stream's, with a FIN
            let mut batch = [Vec::new(), Vec::new()];
            loop {
                match shared.next_chunks_into(&mut batch).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    // the peer must not take a truncated stream for a whole one: reset below
                    Err(_) => return,
                }
                if wr.write_all(&batch[0]).await.is_err() {
                    // nobody reads any more: drop what still comes so the connection never waits
                    shared.discard();
                    break;
                }
            }
            let _ = wr.shutdown().await;
            down_done = true;
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
        tokio::select! {
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
        }
    };
    // the connection ended under a stream still coming in: its peer hears a reset
    if down_done || shared.broken_error().is_none() {
        reset.disarm();
    }
    drop((rd, wr, reset));
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
