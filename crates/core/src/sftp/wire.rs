//! The SFTP session's byte stream, split by reply. Bulk reads and writes are sent from
//! here: a READ's payload is copied once, from the channel's buffer into the Vec the caller
//! gets, and a WRITE goes out as the one buffer the caller filled. Every other packet
//! passes on, whole, to russh-sftp, which keeps the rest of the protocol.
//!
//! Request ids from `OUR_IDS` up are ours; russh-sftp counts up from 1 and never gets there.
//!
//! Handles are binary: OpenSSH's are four bytes of a counter, so its 129th open handle holds
//! the byte 0x80. russh-sftp keeps a handle as a `String` decoded lossily, which would send
//! that handle back changed (the server then knows no such handle). So every HANDLE reply is
//! passed on with its handle spelt in hex, and every request on its way out carries the bytes
//! again: above this module a handle is always its hex spelling.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use russh_sftp::client::error::Error as SftpErr;
use russh_sftp::protocol::{Status, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot};

use crate::channel::Channel;

pub(crate) const OUR_IDS: u32 = 0x8000_0000;
/// The largest packet accepted from the server: OpenSSH's own limit (256 KiB) plus room for
/// a header. Past it the stream is garbage, and the session ends.
const MAX_PACKET: u32 = 256 * 1024 + 1024;
/// Small packets waiting together go out as one channel write, up to this much.
const COALESCE: usize = 64 * 1024;
/// Packets queued for the channel before a sender waits.
const OUT_QUEUE: usize = 64;

/// Spare bulk buffers (READ payloads, WRITE packets), shared by every session: a transfer
/// reuses memory already mapped instead of faulting in (and zeroing) fresh pages per request.
static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
const SPARE_MAX: usize = 16;
const SPARE_MIN_CAPACITY: usize = 16 * 1024;
const SPARE_MAX_CAPACITY: usize = 512 * 1024;

/// An empty buffer of at least `cap` bytes' capacity.
pub(crate) fn take_buffer(cap: usize) -> Vec<u8> {
    if (SPARE_MIN_CAPACITY..=SPARE_MAX_CAPACITY).contains(&cap) {
        let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = spare.iter().position(|v| v.capacity() >= cap) {
            return spare.swap_remove(i);
        }
    }
    Vec::with_capacity(cap)
}

/// Hands a spent buffer back for reuse.
pub(crate) fn give_buffer(mut v: Vec<u8>) {
    if !(SPARE_MIN_CAPACITY..=SPARE_MAX_CAPACITY).contains(&v.capacity()) {
        return;
    }
    v.clear();
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    if spare.len() < SPARE_MAX {
        spare.push(v);
    } else if let Some(small) = spare.iter_mut().min_by_key(|b| b.capacity()).filter(|b| b.capacity() < v.capacity()) {
        // small buffers (short reads) must not crowd out the bulk ones
        *small = v;
    }
}

/// A packet on its way into russh: its buffer comes back to `SPARE` once sent.
struct Spent(Vec<u8>);

impl AsRef<[u8]> for Spent {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Spent {
    fn drop(&mut self) {
        give_buffer(std::mem::take(&mut self.0));
    }
}

const FXP_CLOSE: u8 = 4;
const FXP_READ: u8 = 5;
const FXP_WRITE: u8 = 6;
const FXP_FSTAT: u8 = 8;
const FXP_FSETSTAT: u8 = 10;
const FXP_READDIR: u8 = 12;
const FXP_STATUS: u8 = 101;
const FXP_HANDLE: u8 = 102;
const FXP_DATA: u8 = 103;
const FXP_EXTENDED: u8 = 200;

/// A server's handle as the rest of the client spells it (lower-case hex, never lossy).
pub(crate) fn handle_token(raw: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(raw.len() * 2);
    for b in raw {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// The server's bytes behind a handle token. Anything that is not a token goes out as it is
/// (the server then answers that it knows no such handle).
pub(crate) fn handle_bytes(token: &str) -> std::borrow::Cow<'_, [u8]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let t = token.as_bytes();
    if t.len() % 2 != 0 {
        return std::borrow::Cow::Borrowed(t);
    }
    let mut out = Vec::with_capacity(t.len() / 2);
    for pair in t.chunks_exact(2) {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(h), Some(l)) => out.push(h << 4 | l),
            _ => return std::borrow::Cow::Borrowed(t),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The string at `at` in `p`: (start of its bytes, its length), when it fits.
fn string_at(p: &[u8], at: usize) -> Option<(usize, usize)> {
    let n = be32(p.get(at..at + 4)?) as usize;
    let start = at + 4;
    (p.len() - start >= n).then_some((start, n))
}

/// `p` with the string at `at` replaced by `with`, and the packet length fixed up.
fn replace_string(p: &[u8], at: usize, len: usize, with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len() + with.len());
    out.extend_from_slice(&p[..at]);
    put_string(&mut out, with);
    out.extend_from_slice(&p[at + 4 + len..]);
    let n = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&n.to_be_bytes());
    out
}

/// A HANDLE reply as russh-sftp gets it: the handle spelt as its token.
fn token_in_reply(p: Vec<u8>) -> Vec<u8> {
    if p.get(4) != Some(&FXP_HANDLE) {
        return p;
    }
    match string_at(&p, 9) {
        Some((start, n)) => {
            let token = handle_token(&p[start..start + n]);
            replace_string(&p, 9, n, token.as_bytes())
        }
        None => p,
    }
}

/// A request from russh-sftp as the server gets it: each handle in it back to its bytes.
/// Handles are the first field of CLOSE, READ, WRITE, FSTAT, FSETSTAT and READDIR, and of
/// the handle extensions after their name (copy-data has two).
fn bytes_in_request(p: &[u8]) -> Option<Vec<u8>> {
    let kind = *p.get(4)?;
    let (first, two) = match kind {
        FXP_CLOSE | FXP_READ | FXP_WRITE | FXP_FSTAT | FXP_FSETSTAT | FXP_READDIR => (9, false),
        FXP_EXTENDED => {
            let (start, n) = string_at(p, 9)?;
            match &p[start..start + n] {
                b"fsync@openssh.com" | b"fstatvfs@openssh.com" => (start + n, false),
                b"copy-data" => (start + n, true),
                _ => return None,
            }
        }
        _ => return None,
    };
    let swap = |p: &[u8], at: usize| -> Option<(Vec<u8>, usize)> {
        let (start, n) = string_at(p, at)?;
        let raw = handle_bytes(std::str::from_utf8(&p[start..start + n]).ok()?).into_owned();
        Some((replace_string(p, at, n, &raw), raw.len()))
    };
    let (out, len) = swap(p, first)?;
    if !two {
        return Some(out);
    }
    // copy-data: the read-from handle, its offset and length, then the write-to handle
    Some(swap(&out, first + 4 + len + 16).map_or(out, |(o, _)| o))
}

enum Out {
    Packet(Vec<u8>),
    Eof,
}

enum Reply {
    Data(Vec<u8>),
    Status(Status),
}

struct Slot {
    /// The most a DATA reply may carry (0 for a WRITE, which expects a STATUS only).
    max: u32,
    tx: oneshot::Sender<std::result::Result<Reply, SftpErr>>,
}

#[derive(Default)]
struct Pending {
    slots: HashMap<u32, Slot>,
    /// Why the session ended, once it has: later requests fail with it at once.
    ended: Option<String>,
}

pub(crate) struct Wire {
    out: mpsc::Sender<Out>,
    pending: Arc<Mutex<Pending>>,
    next_id: AtomicU32,
    timeout: Duration,
}

fn lock(p: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

fn ended(why: &str) -> SftpErr {
    SftpErr::IO(why.to_string())
}

/// Takes the slot back if the request is dropped before its reply (an aborted transfer):
/// the late reply is then skipped.
struct Forget<'a> {
    pending: &'a Mutex<Pending>,
    id: u32,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.pending).slots.remove(&self.id);
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

impl Wire {
    /// Starts the reader and writer tasks on `ch`. The returned stream is russh-sftp's view.
    pub(crate) fn start(ch: Channel, timeout: Duration) -> (Arc<Wire>, WireStream) {
        let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
        let (to_russh, from_wire) = mpsc::unbounded_channel();
        let pending = Arc::new(Mutex::new(Pending::default()));
        let shared = Arc::clone(ch.shared());
        tokio::spawn(run_writer(ch, out_rx));
        // replies are split right in the event loop, as they arrive
        let demux = Arc::new(Mutex::new(Demux { pending: Arc::clone(&pending), to_russh: Some(to_russh), head: [0; 13], have: 0, state: State::Head, failed: false }));
        let tap = Arc::clone(&demux);
        shared.set_tap(Box::new(move |data| {
            let mut d = tap.lock().unwrap_or_else(|e| e.into_inner());
            if d.failed {
                return;
            }
            if let Err(why) = d.feed(data) {
                d.fail(&why);
            }
        }));
        tokio::spawn(async move {
            // the tap takes every byte; this only waits for the channel's end
            let mut bufs = [Vec::new(), Vec::new()];
            let why = loop {
                match shared.next_chunks_into(&mut bufs).await {
                    Ok(true) => bufs.iter_mut().for_each(Vec::clear),
                    Ok(false) => break "the SFTP channel closed".to_string(),
                    Err(e) => break format!("the SSH connection was lost: {e}"),
                }
            };
            demux.lock().unwrap_or_else(|e| e.into_inner()).fail(&why);
        });
        let wire = Arc::new(Wire { out: out_tx.clone(), pending, next_id: AtomicU32::new(OUR_IDS), timeout });
        (wire, WireStream { out: out_tx, reserving: None, from_wire, cur: Bytes::new(), eof_sent: false })
    }

    fn next_id(&self) -> u32 {
        // wraps within our half of the id space
        OUR_IDS | self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers the reply slot, then queues the packet (in the first poll, when the queue has
    /// room: requests go out in call order), then waits for the reply.
    async fn request(&self, id: u32, max: u32, packet: Vec<u8>) -> std::result::Result<Reply, SftpErr> {
        let (tx, rx) = oneshot::channel();
        {
            let mut p = lock(&self.pending);
            if let Some(why) = &p.ended {
                return Err(ended(why));
            }
            p.slots.insert(id, Slot { max, tx });
        }
        let _forget = Forget { pending: &self.pending, id };
        let sent = match self.out.try_send(Out::Packet(packet)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(p)) => self.out.send(p).await.map_err(|_| ()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
        };
        if sent.is_err() {
            return Err(ended("the SFTP channel is closed"));
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ended("the SFTP session ended")),
            Err(_) => Err(SftpErr::Timeout),
        }
    }

    /// SSH_FXP_READ: up to `len` bytes at `offset`, or an empty Vec at end of file.
    pub(crate) async fn read(&self, handle: &str, offset: u64, len: u32) -> std::result::Result<Vec<u8>, SftpErr> {
        let id = self.next_id();
        let handle = handle_bytes(handle);
        let mut p = Vec::with_capacity(4 + 1 + 4 + 4 + handle.len() + 8 + 4);
        p.extend_from_slice(&[0; 4]);
        p.push(FXP_READ);
        p.extend_from_slice(&id.to_be_bytes());
        put_string(&mut p, &handle);
        p.extend_from_slice(&offset.to_be_bytes());
        p.extend_from_slice(&len.to_be_bytes());
        let n = (p.len() - 4) as u32;
        p[..4].copy_from_slice(&n.to_be_bytes());
        match self.request(id, len, p).await? {
            Reply::Data(d) => Ok(d),
            Reply::Status(s) if s.status_code == StatusCode::Eof => Ok(Vec::new()),
            Reply::Status(s) if s.status_code == StatusCode::Ok => Err(SftpErr::UnexpectedPacket),
            Reply::Status(s) => Err(SftpErr::Status(s)),
        }
    }

    /// A buffer to fill with a WRITE's data: `write_header_len` bytes of header come first.
    pub(crate) fn write_header_len(handle: &str) -> usize {
        4 + 1 + 4 + 4 + handle_bytes(handle).len() + 8 + 4
    }

    /// SSH_FXP_WRITE of `buf[write_header_len(handle)..]` at `offset`; the header part of
    /// `buf` is filled in here, so the data is never copied on its way to the channel.
    pub(crate) async fn write_prepared(&self, handle: &str, offset: u64, mut buf: Vec<u8>) -> std::result::Result<(), SftpErr> {
        let head = Self::write_header_len(handle);
        debug_assert!(buf.len() >= head);
        let id = self.next_id();
        let data_len = (buf.len() - head) as u32;
        let mut h = Vec::with_capacity(head);
        h.extend_from_slice(&((buf.len() - 4) as u32).to_be_bytes());
        h.push(FXP_WRITE);
        h.extend_from_slice(&id.to_be_bytes());
        put_string(&mut h, &handle_bytes(handle));
        h.extend_from_slice(&offset.to_be_bytes());
        h.extend_from_slice(&data_len.to_be_bytes());
        buf[..head].copy_from_slice(&h);
        match self.request(id, 0, buf).await? {
            Reply::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
            Reply::Status(s) => Err(SftpErr::Status(s)),
            Reply::Data(_) => Err(SftpErr::UnexpectedPacket),
        }
    }
}

async fn run_writer(ch: Channel, mut rx: mpsc::Receiver<Out>) {
    let mut held: Option<Out> = None;
    loop {
        let first = match held.take() {
            Some(o) => o,
            None => match rx.recv().await {
                Some(o) => o,
                None => break,
            },
        };
        match first {
            Out::Eof => {
                let _ = ch.eof().await;
                break;
            }
            Out::Packet(mut p) => {
                while p.len() < COALESCE {
                    match rx.try_recv() {
                        Ok(Out::Packet(q)) if p.len() + q.len() <= COALESCE => p.extend_from_slice(&q),
                        Ok(other) => {
                            held = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if ch.write(Bytes::from_owner(Spent(p))).await.is_err() {
                    break;
                }
            }
        }
    }
    // the channel closes when `ch` drops here, after everything queued before went out
}

enum Dest {
    /// A packet for russh-sftp, header included.
    Russh,
    /// The rest of a STATUS for one of our requests (None: nobody waits for it any more).
    Status(u32, Option<Slot>),
    /// The payload of a DATA for one of our requests, then `trailing` bytes to skip.
    Data(Option<Slot>, usize),
    Skip,
}

enum State {
    Head,
    Body { buf: Vec<u8>, need: usize, dest: Dest },
}

struct Demux {
    pending: Arc<Mutex<Pending>>,
    to_russh: Option<mpsc::UnboundedSender<Bytes>>,
    head: [u8; 13],
    have: usize,
    state: State,
    /// The stream went wrong or ended: nothing more is read.
    failed: bool,
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn status_code(n: u32) -> StatusCode {
    match n {
        0 => StatusCode::Ok,
        1 => StatusCode::Eof,
        2 => StatusCode::NoSuchFile,
        3 => StatusCode::PermissionDenied,
        5 => StatusCode::BadMessage,
        6 => StatusCode::NoConnection,
        7 => StatusCode::ConnectionLost,
        8 => StatusCode::OpUnsupported,
        _ => StatusCode::Failure,
    }
}

/// STATUS after its id: code, then (optional in version 3) message and language.
fn parse_status(id: u32, b: &[u8]) -> Option<Status> {
    if b.len() < 4 {
        return None;
    }
    let code = status_code(be32(b));
    let mut message = String::new();
    if b.len() >= 8 {
        let n = be32(&b[4..]) as usize;
        let text = b.get(8..8 + n)?;
        message = String::from_utf8_lossy(text).into_owned();
    }
    Some(Status { id, status_code: code, error_message: message, language_tag: String::new() })
}

impl Demux {
    /// The session is over: russh-sftp sees the end of its stream, and every request
    /// waiting here (and any sent later) fails with `why`.
    fn fail(&mut self, why: &str) {
        if self.failed {
            return;
        }
        self.failed = true;
        self.to_russh = None;
        let slots = {
            let mut p = lock(&self.pending);
            p.ended = Some(why.to_string());
            std::mem::take(&mut p.slots)
        };
        for (_, s) in slots {
            let _ = s.tx.send(Err(ended(why)));
        }
    }

    fn feed(&mut self, mut input: &[u8]) -> std::result::Result<(), String> {
        while !input.is_empty() {
            match &mut self.state {
                State::Head => {
                    let want = if self.have >= 9 { 13 } else { 9 };
                    let n = (want - self.have).min(input.len());
                    self.head[self.have..self.have + n].copy_from_slice(&input[..n]);
                    self.have += n;
                    input = &input[n..];
                    if self.have == want {
                        self.start_body()?;
                    }
                }
                State::Body { buf, need, dest } => {
                    let n = (*need).min(input.len());
                    if !matches!(dest, Dest::Skip | Dest::Data(None, _)) {
                        buf.extend_from_slice(&input[..n]);
                    }
                    *need -= n;
                    input = &input[n..];
                    if *need == 0 {
                        if let State::Body { buf, dest, .. } = std::mem::replace(&mut self.state, State::Head) {
                            self.finish(buf, dest);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The header is in: decide where the body goes.
    fn start_body(&mut self) -> std::result::Result<(), String> {
        let len = be32(&self.head);
        let (kind, id) = (self.head[4], be32(&self.head[5..]));
        if !(5..=MAX_PACKET).contains(&len) {
            return Err(format!("the SFTP server sent a packet of {len} bytes (the limit is {MAX_PACKET})"));
        }
        let rest = (len - 5) as usize;
        let ours = id >= OUR_IDS && (kind == FXP_DATA || kind == FXP_STATUS);
        if ours && kind == FXP_DATA && self.have == 9 {
            if rest < 4 {
                return Err("the SFTP server sent a DATA packet without a length".into());
            }
            return Ok(()); // four more header bytes: the data length
        }
        self.have = 0;
        let state = if !ours {
            let mut buf = Vec::with_capacity(4 + len as usize);
            buf.extend_from_slice(&self.head[..9]);
            State::Body { buf, need: rest, dest: Dest::Russh }
        } else if kind == FXP_STATUS {
            let slot = lock(&self.pending).slots.remove(&id);
            State::Body { buf: Vec::with_capacity(rest.min(4096)), need: rest, dest: Dest::Status(id, slot) }
        } else {
            let data_len = be32(&self.head[9..]) as usize;
            if data_len > rest - 4 {
                return Err(format!("the SFTP server sent a DATA packet claiming {data_len} bytes in {}", rest - 4));
            }
            let mut slot = lock(&self.pending).slots.remove(&id);
            if let Some(s) = slot.take_if(|s| data_len > s.max as usize) {
                let _ = s.tx.send(Err(SftpErr::UnexpectedPacket));
            }
            let buf = if slot.is_some() { take_buffer(data_len) } else { Vec::new() };
            State::Body { buf, need: data_len, dest: Dest::Data(slot, rest - 4 - data_len) }
        };
        self.state = state;
        if let State::Body { need: 0, .. } = self.state {
            if let State::Body { buf, dest, .. } = std::mem::replace(&mut self.state, State::Head) {
                self.finish(buf, dest);
            }
        }
        Ok(())
    }

    fn finish(&mut self, buf: Vec<u8>, dest: Dest) {
        match dest {
            Dest::Russh => {
                if let Some(tx) = &self.to_russh {
                    let _ = tx.send(Bytes::from(token_in_reply(buf)));
                }
            }
            Dest::Status(id, slot) => {
                if let Some(s) = slot {
                    let r = parse_status(id, &buf).map(Reply::Status).ok_or(SftpErr::UnexpectedPacket);
                    let _ = s.tx.send(r);
                }
            }
            Dest::Data(slot, trailing) => {
                if let Some(s) = slot {
                    let _ = s.tx.send(Ok(Reply::Data(buf)));
                }
                if trailing > 0 {
                    self.state = State::Body { buf: Vec::new(), need: trailing, dest: Dest::Skip };
                }
            }
            Dest::Skip => {}
        }
    }
}

/// Waiting for room in the outgoing queue.
type Reserving = Pin<Box<dyn std::future::Future<Output = std::result::Result<mpsc::OwnedPermit<Out>, mpsc::error::SendError<()>>> + Send>>;

/// russh-sftp's end of the stream: whole packets from the demultiplexer in, packets out
/// through the same queue as ours (each write is one whole packet: russh-sftp writes a
/// packet with one `write_all`, and this stream always takes all of it).
pub(crate) struct WireStream {
    out: mpsc::Sender<Out>,
    reserving: Option<Reserving>,
    from_wire: mpsc::UnboundedReceiver<Bytes>,
    cur: Bytes,
    eof_sent: bool,
}

fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the SFTP channel is closed")
}

impl WireStream {
    fn poll_permit(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<mpsc::OwnedPermit<Out>>> {
        let out = &self.out;
        let reserving = self.reserving.get_or_insert_with(|| Box::pin(out.clone().reserve_owned()));
        let r = ready!(reserving.as_mut().poll(cx));
        self.reserving = None;
        Poll::Ready(r.map_err(|_| closed()))
    }
}

impl AsyncRead for WireStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        while me.cur.is_empty() {
            match ready!(me.from_wire.poll_recv(cx)) {
                Some(b) => me.cur = b,
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = me.cur.len().min(buf.remaining());
        buf.put_slice(&me.cur.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for WireStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let permit = ready!(me.poll_permit(cx))?;
        permit.send(Out::Packet(bytes_in_request(data).unwrap_or_else(|| data.to_vec())));
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        if me.eof_sent {
            return Poll::Ready(Ok(()));
        }
        let permit = ready!(me.poll_permit(cx))?;
        permit.send(Out::Eof);
        me.eof_sent = true;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demux() -> (Demux, mpsc::UnboundedReceiver<Bytes>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Demux { pending: Arc::new(Mutex::new(Pending::default())), to_russh: Some(tx), head: [0; 13], have: 0, state: State::Head, failed: false }, rx)
    }

    fn expect(d: &Demux, id: u32, max: u32) -> oneshot::Receiver<std::result::Result<Reply, SftpErr>> {
        let (tx, rx) = oneshot::channel();
        lock(&d.pending).slots.insert(id, Slot { max, tx });
        rx
    }

    fn packet(kind: u8, id: u32, body: &[u8]) -> Vec<u8> {
        let mut p = ((body.len() + 5) as u32).to_be_bytes().to_vec();
        p.push(kind);
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(body);
        p
    }

    fn data(id: u32, payload: &[u8]) -> Vec<u8> {
        let mut body = (payload.len() as u32).to_be_bytes().to_vec();
        body.extend_from_slice(payload);
        packet(FXP_DATA, id, &body)
    }

    fn status(id: u32, code: u32, msg: &str) -> Vec<u8> {
        let mut body = code.to_be_bytes().to_vec();
        put_string(&mut body, msg.as_bytes());
        put_string(&mut body, b"");
        packet(FXP_STATUS, id, &body)
    }

    #[test]
    fn binary_handles_go_back_to_the_server_unchanged() {
        // OpenSSH's handle 128, and one with every awkward byte
        for raw in [&b"\x00\x00\x00\x80"[..], &b"\xff\x00\xc3\x28 h"[..], b""] {
            let (mut d, mut to_russh) = demux();
            let mut body = Vec::new();
            put_string(&mut body, raw);
            d.feed(&packet(FXP_HANDLE, 7, &body)).unwrap();
            let got = to_russh.try_recv().unwrap();
            let (start, n) = string_at(&got, 9).unwrap();
            let token = std::str::from_utf8(&got[start..start + n]).unwrap().to_string();
            assert_eq!(token, handle_token(raw));
            assert_eq!(be32(&got) as usize, got.len() - 4, "the packet length follows the handle");
            // what russh-sftp sends with that token carries the server's bytes again
            let mut close = Vec::new();
            put_string(&mut close, token.as_bytes());
            let out = bytes_in_request(&packet(FXP_CLOSE, 8, &close)).unwrap();
            assert_eq!(out, packet(FXP_CLOSE, 8, &{ let mut b = Vec::new(); put_string(&mut b, raw); b }));
            assert_eq!(Wire::write_header_len(&token), 4 + 1 + 4 + 4 + raw.len() + 8 + 4);
        }
        // copy-data names two handles, with an offset and a length between them
        let (a, b) = (&b"\x00\x00\x00\x81"[..], &b"\x00\x00\x00\x82"[..]);
        let ext = |h1: &[u8], h2: &[u8]| {
            let mut body = Vec::new();
            put_string(&mut body, b"copy-data");
            put_string(&mut body, h1);
            body.extend_from_slice(&[1; 16]);
            put_string(&mut body, h2);
            body.extend_from_slice(&[2; 8]);
            packet(FXP_EXTENDED, 9, &body)
        };
        let sent = ext(handle_token(a).as_bytes(), handle_token(b).as_bytes());
        assert_eq!(bytes_in_request(&sent).unwrap(), ext(a, b));
        // requests without handles pass as they are
        let mut open = Vec::new();
        put_string(&mut open, b"00000080");
        assert!(bytes_in_request(&packet(3, 10, &open)).is_none());
        assert_eq!(&*handle_bytes("not hex!"), b"not hex!");
    }

    /// The tests that touch the process-wide pool of spare buffers take turns.
    static POOL_TESTS: Mutex<()> = Mutex::new(());

    #[test]
    fn spare_buffers_keep_the_largest() {
        let _turn = POOL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let mut small: Vec<Vec<u8>> = (0..SPARE_MAX).map(|_| Vec::with_capacity(SPARE_MIN_CAPACITY)).collect();
        for v in small.drain(..) {
            give_buffer(v);
        }
        give_buffer(Vec::with_capacity(300 * 1024));
        let big = take_buffer(255 * 1024);
        assert!(big.capacity() >= 255 * 1024, "a bulk buffer replaced a small one in a full pool");
        assert!(big.is_empty());
    }

    #[test]
    fn splits_replies_at_any_boundary() {
        let _turn = POOL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let payload: Vec<u8> = (0..70_000u32).map(|i| (i * 7) as u8).collect();
        let theirs = packet(104, 3, b"\x00\x00\x00\x01name"); // a NAME for russh-sftp
        let mut stream = data(OUR_IDS | 1, &payload);
        stream.extend_from_slice(&theirs);
        stream.extend_from_slice(&status(OUR_IDS | 2, 1, "End of file"));
        stream.extend_from_slice(&data(OUR_IDS | 9, b"nobody waits")); // skipped
        stream.extend_from_slice(&status(OUR_IDS | 3, 3, "Permission denied"));
        for step in [1, 2, 3, 5, 9, 12, 13, 4096, stream.len()] {
            let (mut d, mut to_russh) = demux();
            let (mut a, mut b, mut c) = (expect(&d, OUR_IDS | 1, 255 * 1024), expect(&d, OUR_IDS | 2, 100), expect(&d, OUR_IDS | 3, 100));
            for piece in stream.chunks(step) {
                d.feed(piece).unwrap();
            }
            assert!(matches!(d.state, State::Head) && d.have == 0, "step {step}: ends between packets");
            match a.try_recv() {
                Ok(Ok(Reply::Data(got))) => assert_eq!(got, payload, "step {step}"),
                _ => panic!("step {step}: no data"),
            }
            match b.try_recv() {
                Ok(Ok(Reply::Status(s))) => assert_eq!((s.status_code, s.error_message.as_str()), (StatusCode::Eof, "End of file")),
                _ => panic!("step {step}: no EOF status"),
            }
            match c.try_recv() {
                Ok(Ok(Reply::Status(s))) => assert_eq!(s.status_code, StatusCode::PermissionDenied),
                _ => panic!("step {step}: no status"),
            }
            assert_eq!(to_russh.try_recv().unwrap().as_ref(), &theirs[..], "step {step}: russh-sftp gets its packet whole");
            assert!(to_russh.try_recv().is_err(), "step {step}: and nothing else");
        }
    }

    #[test]
    fn garbage_ends_the_session_with_a_reason() {
        let (mut d, _rx) = demux();
        let huge = [0xff, 0xff, 0xff, 0xf0, FXP_DATA, 0x80, 0, 0, 1];
        let e = d.feed(&huge).unwrap_err();
        assert!(e.contains("4294967280 bytes"), "{e}");

        let (mut d, _rx) = demux();
        assert!(d.feed(&[0, 0, 0, 2, 101, 0, 0, 0, 0]).unwrap_err().contains("packet of 2 bytes"));

        // a DATA whose length runs past its packet
        let (mut d, _rx) = demux();
        let mut p = packet(FXP_DATA, OUR_IDS | 1, &1000u32.to_be_bytes());
        p.extend_from_slice(&[0; 10]);
        assert!(d.feed(&p).unwrap_err().contains("claiming 1000 bytes"));

        // a DATA without even a length
        let (mut d, _rx) = demux();
        assert!(d.feed(&packet(FXP_DATA, OUR_IDS | 1, &[1, 2])).unwrap_err().contains("without a length"));
    }

    #[test]
    fn a_reply_larger_than_asked_fails_that_request_only() {
        let (mut d, mut to_russh) = demux();
        let mut big = expect(&d, OUR_IDS | 1, 4);
        let mut next = expect(&d, OUR_IDS | 2, 4);
        let mut s = data(OUR_IDS | 1, b"too long");
        s.extend_from_slice(&data(OUR_IDS | 2, b"ok"));
        d.feed(&s).unwrap();
        assert!(matches!(big.try_recv(), Ok(Err(SftpErr::UnexpectedPacket))));
        assert!(matches!(next.try_recv(), Ok(Ok(Reply::Data(v))) if v == b"ok"));
        assert!(to_russh.try_recv().is_err());
    }

    #[test]
    fn a_short_status_is_an_unexpected_packet() {
        let (mut d, _rx) = demux();
        let mut r = expect(&d, OUR_IDS | 5, 4);
        d.feed(&packet(FXP_STATUS, OUR_IDS | 5, &[0, 0])).unwrap();
        assert!(matches!(r.try_recv(), Ok(Err(SftpErr::UnexpectedPacket))));
        // a status without its message (allowed in version 3) still parses
        let mut r = expect(&d, OUR_IDS | 6, 4);
        d.feed(&packet(FXP_STATUS, OUR_IDS | 6, &4u32.to_be_bytes())).unwrap();
        assert!(matches!(r.try_recv(), Ok(Ok(Reply::Status(s))) if s.status_code == StatusCode::Failure));
    }
}
