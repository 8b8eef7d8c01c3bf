//! A TCP stream that acknowledges every received segment at once (Linux TCP_QUICKACK).
//!
//! Right after authentication sshd sends two small packets back to back; with Nagle on its
//! side, the second waits for our ACK of the first, and Linux delays that ACK by ~40 ms when
//! nothing of ours is going out to carry it. Quick ACKs remove that stall from every
//! connect and from interactive round trips. The flag does not stick (the kernel clears it
//! after some segments), so it is set again after reads — after every short one, and at
//! most once a millisecond while bulk data streams in (where the kernel acknowledges every
//! other full segment anyway, and a system call per packet would only cost CPU).
//!
//! Reads go through a buffer: russh asks for each packet's length and then its body, two
//! system calls per packet when read straight from the socket. It starts small (an idle or
//! interactive connection keeps 4 KiB) and grows to 64 KiB once bulk data arrives.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

const BUF_SMALL: usize = 4 * 1024;
const BUF: usize = 64 * 1024;
/// A socket read shorter than this is a handshake or interactive message: acknowledge it now.
const SHORT_READ: usize = 4 * 1024;
const BULK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1);

pub struct QuickAck {
    stream: TcpStream,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    last_ack: Option<std::time::Instant>,
}

impl QuickAck {
    pub fn new(stream: TcpStream) -> Self {
        QuickAck { stream, buf: vec![0u8; BUF_SMALL].into_boxed_slice(), pos: 0, len: 0, last_ack: None }
    }

    fn after_read(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let due = n < SHORT_READ || self.last_ack.is_none_or(|t| t.elapsed() >= BULK_INTERVAL);
        if due {
            quickack(&self.stream);
            self.last_ack = Some(std::time::Instant::now());
        }
    }
}

#[cfg(target_os = "linux")]
fn quickack(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a c_int-sized option value; failure is harmless
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn quickack(_s: &TcpStream) {}

impl AsyncRead for QuickAck {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.pos == me.len {
            if out.remaining() >= me.buf.len() {
                // a large read goes straight to the caller; packets this large mean bulk data
                if me.buf.len() < BUF {
                    me.buf = vec![0u8; BUF].into_boxed_slice();
                    if out.remaining() < BUF {
                        return Pin::new(me).poll_read(cx, out);
                    }
                }
                let before = out.filled().len();
                let r = Pin::new(&mut me.stream).poll_read(cx, out);
                if matches!(r, Poll::Ready(Ok(()))) {
                    let n = out.filled().len() - before;
                    me.after_read(n);
                }
                return r;
            }
            let mut rb = ReadBuf::new(&mut me.buf);
            match Pin::new(&mut me.stream).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            let n = rb.filled().len();
            me.pos = 0;
            me.len = n;
            me.after_read(n);
            if n == 0 {
                return Poll::Ready(Ok(())); // end of stream
            }
        }
        let k = out.remaining().min(me.len - me.pos);
        out.put_slice(&me.buf[me.pos..me.pos + k]);
        me.pos += k;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, data)
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn buffered_reads_keep_every_byte_in_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            // small messages first, then bulk
            for chunk in sent.chunks(1000).take(20) {
                s.write_all(chunk).await.unwrap();
            }
            s.write_all(&sent[20_000..]).await.unwrap();
        });
        let mut q = QuickAck::new(TcpStream::connect(addr).await.unwrap());
        let mut got = Vec::with_capacity(data.len());
        // the pattern russh uses: a 16-byte head, then a body of up to ~35 KiB; sometimes more
        let sizes = [16usize, 3000, 16, 35_000, 16, 70_000, 5, 100];
        let mut i = 0;
        while got.len() < data.len() {
            let want = sizes[i % sizes.len()].min(data.len() - got.len());
            let mut buf = vec![0u8; want];
            q.read_exact(&mut buf).await.unwrap();
            got.extend_from_slice(&buf);
            i += 1;
        }
        writer.await.unwrap();
        assert!(got == data, "bytes differ");
        let mut end = [0u8; 1];
        assert_eq!(q.read(&mut end).await.unwrap(), 0, "end of stream");
    }
}
