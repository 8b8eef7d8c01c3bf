//! Copies bytes between a channel and a local stream (a Unix or TCP socket) entirely in
//! Rust: port, agent and X11 forwarding. Each direction ends with EOF on the other side; the
//! channel is closed when both are done. When the channel's data does not end with EOF (the
//! connection was lost, the channel failed), a TCP peer is reset instead of given a FIN, so
//! it sees an error rather than a clean end of what may be a truncated stream.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::channel::Channel;
use crate::error::{Error, Result};

const CHUNK: usize = 64 * 1024;

/// A local stream a bridge copies to and from.
pub trait LocalStream: AsyncRead + AsyncWrite + Unpin {
    /// A second handle on the socket through which its close can be made abortive, where the
    /// stream can say so: a TCP socket is then closed with a reset. A Unix socket has no such
    /// signal; it is closed as usual.
    fn reset_handle(&self) -> Option<socket2::Socket> {
        None
    }
}

pub(crate) fn tcp_reset_handle(s: &tokio::net::TcpStream) -> Option<socket2::Socket> {
    socket2::SockRef::from(s).try_clone().ok()
}

/// Resets the socket when dropped armed: with SO_LINGER 0, its last close sends RST and drops
/// what is unsent. Held across the copy so that a bridge dropped half-way (its forward
/// closed, its connection lost) resets its peer too.
pub(crate) struct ResetGuard(Option<socket2::Socket>);

impl ResetGuard {
    pub(crate) fn new<S: LocalStream>(s: &S) -> Self {
        ResetGuard(s.reset_handle())
    }
    /// The stream ended cleanly: close it as usual.
    pub(crate) fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for ResetGuard {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            let _ = s.set_linger(Some(std::time::Duration::ZERO));
        }
    }
}

impl LocalStream for tokio::net::TcpStream {
    fn reset_handle(&self) -> Option<socket2::Socket> {
        tcp_reset_handle(self)
    }
}
#[cfg(unix)]
impl LocalStream for tokio::net::UnixStream {}
impl LocalStream for tokio::io::DuplexStream {}
impl LocalStream for Box<dyn crate::agent_socket::AgentStream> {}

/// Bytes copied (channel → stream, stream → channel).
pub async fn bridge<S>(ch: Channel, stream: S) -> Result<(u64, u64)>
where
    S: LocalStream,
{
    let mut reset = ResetGuard::new(&stream);
    let (mut rd, mut wr) = tokio::io::split(stream);
    let shared = std::sync::Arc::clone(ch.shared());
    // set once the channel's data has ended cleanly and all of it reached the stream
    let mut down_clean = false;
    let result = {
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
            // a clean end is a FIN; a failure is told by the reset below
            if r.is_ok() {
                let _ = wr.shutdown().await;
                down_clean = true;
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
        tokio::select! {
            d = &mut down => match d {
                Ok(d) => up.await.map(|u| (d, u)),
                Err(e) => Err(e),
            },
            u = &mut up => match u {
                Ok(u) => down.await.map(|d| (d, u)),
                Err(e) => Err(e),
            },
        }
    };
    if down_clean {
        reset.disarm();
    }
    drop((rd, wr, reset));
    let _ = ch.close().await;
    result
}
