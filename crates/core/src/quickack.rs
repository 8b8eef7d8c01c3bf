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
//!
//! While bulk data streams in, the reader would otherwise wake for every segment or two: it
//! decrypts faster than a server sends, drains the socket and sleeps, some 20 000 times per
//! GiB, and on a virtual machine each sleep and wake costs more than the bytes it brings.
//! So after a run of large reads the socket's receive low-water mark (Linux SO_RCVLOWAT) is
//! raised and the reader wakes once a larger batch is queued. The kernel still wakes it early
//! when its receive window is nearly used up or at the end of the stream; when less than the
//! mark arrives (the end of a burst, an interactive reply), a short timer puts the mark back
//! to one byte, which wakes the reader for what is queued. Small messages never raise it, so
//! round trips are not delayed.

use std::future::Future;
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
/// A read larger than this is bulk data (more than one full-size SSH packet was queued: an
/// interactive reply, however large, is one packet); this many of them in a row raise the mark.
const LARGE_READ: usize = 34 * 1024;
const LARGE_READS: u32 = 4;
/// A raise that paid off for fewer batches than this before the timer ended a wait was a
/// reply-sized burst, not a stream: each such one doubles the run of large reads the next
/// raise needs (request/response traffic would otherwise wait for the timer at the end of
/// every reply), up to 4 << 6 = 256 reads. A raise that served a stream resets it.
const STREAM_BATCHES: u32 = 8;
const MAX_MISSES: u8 = 6;
/// The receive low-water mark while bulk data streams in.
const LOWAT: usize = 256 * 1024;
/// How long a reader waits for the mark before it takes what is queued.
/// (tokio's timer counts in whole milliseconds, so the wait ends 1–2 ms later.)
const LOWAT_WAIT: std::time::Duration = std::time::Duration::from_micros(1000);

pub struct QuickAck {
    stream: TcpStream,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    last_ack: Option<std::time::Instant>,
    /// Large reads in a row; at LARGE_READS << misses the low-water mark goes up.
    large_reads: u32,
    /// Raises in a row that served a reply-sized burst rather than a stream.
    misses: u8,
    /// Batches that reached the mark since it was raised.
    batches: u32,
    /// Bytes read since the reader last waited.
    batch: usize,
    /// The socket's low-water mark is LOWAT (else one byte).
    lowat: bool,
    /// Ends a wait for the mark; armed while a read waits with the mark raised.
    idle: Option<Pin<Box<tokio::time::Sleep>>>,
    idle_armed: bool,
    /// How often the mark went up (for tests and traces).
    raises: u32,
}

impl QuickAck {
    pub fn new(stream: TcpStream) -> Self {
        QuickAck {
            stream,
            buf: vec![0u8; BUF_SMALL].into_boxed_slice(),
            pos: 0,
            len: 0,
            last_ack: None,
            large_reads: 0,
            misses: 0,
            batches: 0,
            batch: 0,
            lowat: false,
            idle: None,
            idle_armed: false,
            raises: 0,
        }
    }

    fn after_read(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.idle_armed = false;
        self.batch = self.batch.saturating_add(n);
        if n > LARGE_READ {
            self.large_reads = self.large_reads.saturating_add(1);
            let need = LARGE_READS << self.misses;
            // checked once per run of `need`: the buffer check is a system call
            if !self.lowat && self.large_reads % need == 0 && receive_buffer(&self.stream) >= 4 * LOWAT {
                self.lowat = set_lowat(&self.stream, LOWAT);
                self.raises += u32::from(self.lowat);
                self.batches = 0;
            }
        } else {
            self.large_reads = 0;
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

/// Sets SO_RCVLOWAT; true when the kernel took it. Lowering it wakes a waiting reader at once
/// when enough is queued (Linux checks on every change).
#[cfg(target_os = "linux")]
fn set_lowat(s: &TcpStream, bytes: usize) -> bool {
    use std::os::fd::AsRawFd;
    let v = bytes as libc::c_int;
    // SAFETY: a valid socket descriptor and a c_int-sized option value
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

#[cfg(not(target_os = "linux"))]
fn set_lowat(_s: &TcpStream, _bytes: usize) -> bool {
    false
}

/// The socket's receive buffer (SO_RCVBUF), 0 when unknown. The mark is raised only once the
/// kernel has grown the buffer well past it: some kernels otherwise cap the TCP window at the
/// mark when they grow the buffer for it.
#[cfg(target_os = "linux")]
fn receive_buffer(s: &TcpStream) -> usize {
    use std::os::fd::AsRawFd;
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket descriptor, a c_int-sized value and its length
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &mut v as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if r == 0 { usize::try_from(v).unwrap_or(0) } else { 0 }
}

#[cfg(not(target_os = "linux"))]
fn receive_buffer(_s: &TcpStream) -> usize {
    0
}

impl QuickAck {
    /// The socket has nothing to read. With the mark raised, the wait is bounded: when the
    /// timer fires first, the mark goes back to one byte and the read is tried again (the
    /// kernel signals readable for whatever is queued).
    fn poll_stream(&mut self, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.stream).poll_read(cx, out);
        if !r.is_pending() {
            return r;
        }
        if self.lowat && self.batch >= LOWAT {
            self.batches = self.batches.saturating_add(1);
        }
        self.batch = 0;
        if !self.lowat {
            return r;
        }
        let idle = self.idle.get_or_insert_with(|| Box::pin(tokio::time::sleep(LOWAT_WAIT)));
        if !self.idle_armed {
            idle.as_mut().reset(tokio::time::Instant::now() + LOWAT_WAIT);
            self.idle_armed = true;
        }
        if idle.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.idle_armed = false;
        self.large_reads = 0;
        self.misses = if self.batches >= STREAM_BATCHES { 0 } else { (self.misses + 1).min(MAX_MISSES) };
        if set_lowat(&self.stream, 1) {
            self.lowat = false;
        }
        Pin::new(&mut self.stream).poll_read(cx, out)
    }
}

impl crate::bridge::LocalStream for QuickAck {
    fn reset_handle(&self) -> Option<socket2::Socket> {
        crate::bridge::tcp_reset_handle(&self.stream)
    }
}

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
                let r = me.poll_stream(cx, out);
                if matches!(r, Poll::Ready(Ok(()))) {
                    let n = out.filled().len() - before;
                    me.after_read(n);
                }
                return r;
            }
            let mut buf = std::mem::take(&mut me.buf);
            let mut rb = ReadBuf::new(&mut buf);
            let r = me.poll_stream(cx, &mut rb);
            let n = rb.filled().len();
            me.buf = buf;
            match r {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
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

    /// Bulk data raises the receive low-water mark; a short message after the burst, less than
    /// the mark, still arrives (the timer lowers the mark) while the connection stays open.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_short_message_after_bulk_data_arrives() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        const BULK: usize = 64 * 1024 * 1024;
        let writer = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let block = vec![7u8; 1024 * 1024];
            for _ in 0..BULK / block.len() {
                s.write_all(&block).await.unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            s.write_all(b"0123456789").await.unwrap();
            // the stream stays open: an end of stream would wake the reader by itself
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), done_rx).await;
        });
        let mut q = QuickAck::new(TcpStream::connect(addr).await.unwrap());
        let mut got = 0usize;
        let mut buf = vec![0u8; 35_000];
        while got < BULK {
            let want = buf.len().min(BULK - got);
            q.read_exact(&mut buf[..want]).await.unwrap();
            got += want;
        }
        assert!(q.raises > 0, "the mark was never raised during {BULK} bytes of bulk data");
        let mut tail = [0u8; 10];
        let r = tokio::time::timeout(std::time::Duration::from_secs(3), q.read_exact(&mut tail)).await;
        assert!(r.is_ok(), "the short message after the burst did not arrive");
        assert_eq!(&tail, b"0123456789");
        done_tx.send(()).unwrap();
        writer.await.unwrap();
    }

    /// Replies shorter than the mark, one per request, after bulk data: the timer ends the
    /// reader's wait on a few of them, and then the mark stays down instead of going up (and
    /// delaying the reply by the timer) on every other one.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn replies_under_the_mark_stop_raising_it() {
        replies_stop_raising_the_mark(100 * 1024).await;
    }

    /// The same for replies a little over the mark: each would wait for the timer at its end.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn replies_over_the_mark_stop_raising_it() {
        replies_stop_raising_the_mark(300 * 1024).await;
    }

    #[cfg(target_os = "linux")]
    async fn replies_stop_raising_the_mark(reply: usize) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        const BULK: usize = 32 * 1024 * 1024;
        const REQUESTS: usize = 60;
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let block = vec![7u8; 1024 * 1024];
            for _ in 0..BULK / block.len() {
                s.write_all(&block).await.unwrap();
            }
            let reply = vec![9u8; reply];
            let mut req = [0u8; 1];
            for _ in 0..REQUESTS {
                s.read_exact(&mut req).await.unwrap();
                s.write_all(&reply).await.unwrap();
            }
        });
        let mut q = QuickAck::new(TcpStream::connect(addr).await.unwrap());
        let mut buf = vec![0u8; 35_000];
        let mut got = 0usize;
        while got < BULK {
            let want = buf.len().min(BULK - got);
            q.read_exact(&mut buf[..want]).await.unwrap();
            got += want;
        }
        assert!(q.raises > 0, "bulk data never raised the mark");
        let before = q.raises;
        for _ in 0..REQUESTS {
            q.write_all(b"?").await.unwrap();
            let mut left = reply;
            while left > 0 {
                let want = buf.len().min(left);
                let r = tokio::time::timeout(std::time::Duration::from_secs(3), q.read_exact(&mut buf[..want])).await;
                assert!(r.is_ok(), "a reply did not arrive");
                left -= want;
            }
        }
        let raised = q.raises - before;
        assert!(raised <= 10, "the mark went up {raised} times in {REQUESTS} replies of {reply} bytes");
        server.await.unwrap();
    }
}
