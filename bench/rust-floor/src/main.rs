//! The zero-binding-overhead floor for `npm run bench`: a plain russh client (no napi, no JS)
//! running the same workloads as the JavaScript peers, on a single-threaded tokio runtime.
//!
//! Like ferrossh's data path (DESIGN.md, "Data path and runtime") it takes channel data inline in
//! the `Handler` callbacks and drops each channel's read half, so russh never queues or blocks on
//! a per-channel message queue. The gap between this binary and ferrossh is the binding's cost.
//!
//! Usage: ferrossh-rust-floor <workload> --host H --port P --user U --key PATH --host-key B64
//!        [--bytes N] [--count N] [--size N] [--chunk N] [--warmup N] [--cipher NAME]
//!        [--source-port N --sink "NODE SCRIPT"]
//! Workloads: connect, download, upload, roundtrip, concurrent, forward, jump. Prints one JSON
//! object.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::{self, Handle, Handler, Session};
use russh::keys::{load_secret_key, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelId, Disconnect};
use tokio::sync::Notify;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    workload: String,
    host: String,
    port: u16,
    user: String,
    key: String,
    host_key: String,
    cipher: String,
    bytes: u64,
    count: usize,
    size: usize,
    chunk: usize,
    warmup: usize,
    /// forward: the local byte source the forward connects to, and the sink program to run
    source_port: u16,
    sink: String,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut it = std::env::args().skip(1);
    let workload = it.next().ok_or("missing workload")?;
    let mut a = Args {
        workload,
        host: "127.0.0.1".into(),
        port: 22,
        user: String::new(),
        key: String::new(),
        host_key: String::new(),
        cipher: "aes128-gcm@openssh.com".into(),
        bytes: 0,
        count: 1,
        size: 64,
        chunk: 256 * 1024,
        warmup: 0,
        source_port: 0,
        sink: String::new(),
    };
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--host" => a.host = v,
            "--port" => a.port = v.parse()?,
            "--user" => a.user = v,
            "--key" => a.key = v,
            "--host-key" => a.host_key = v,
            "--cipher" => a.cipher = v,
            "--bytes" => a.bytes = v.parse()?,
            "--count" => a.count = v.parse()?,
            "--size" => a.size = v.parse()?,
            "--chunk" => a.chunk = v.parse()?,
            "--warmup" => a.warmup = v.parse()?,
            "--source-port" => a.source_port = v.parse()?,
            "--sink" => a.sink = v,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    Ok(a)
}

/// getrusage(2) declared by hand: libc is linked by std anyway, and a direct dependency on the
/// `libc` crate would change the workspace lock file for two numbers.
#[repr(C)]
#[derive(Default)]
struct Timeval {
    sec: i64,
    usec: i64,
}
#[repr(C)]
#[derive(Default)]
struct Rusage {
    utime: Timeval,
    stime: Timeval,
    maxrss: i64,
    rest: [i64; 13],
}
extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}

/// (CPU seconds user+system, peak RSS in KiB) of this process.
fn rusage() -> (f64, i64) {
    let mut r = Rusage::default();
    // SAFETY: `r` is a properly sized, writable rusage for RUSAGE_SELF (0) on 64-bit Linux.
    unsafe { getrusage(0, &mut r) };
    let t = |tv: &Timeval| tv.sec as f64 + tv.usec as f64 / 1e6;
    (t(&r.utime) + t(&r.stime), r.maxrss)
}

/// Resident set size right now in KiB (VmRSS), the baseline that peak RSS is compared with.
fn current_rss_kb() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// What the handler has seen on the connection's (single) channel; shared with the task that
/// drives the workload.
#[derive(Default)]
struct Shared {
    received: AtomicU64,
    want: AtomicU64,
    closed: AtomicBool,
    exit_status: AtomicU64,
    notify: Notify,
    /// forward: channel data goes straight from the handler into this socket
    forward_to: tokio::sync::Mutex<Option<tokio::net::tcp::OwnedWriteHalf>>,
}

impl Shared {
    /// Waits until `received >= want` or the channel closed.
    async fn wait_for(&self, want: u64) {
        self.want.store(want, Ordering::SeqCst);
        loop {
            let notified = self.notify.notified();
            if self.received.load(Ordering::SeqCst) >= want || self.closed.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    async fn wait_closed(&self) {
        loop {
            let notified = self.notify.notified();
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

struct Client {
    shared: Arc<Shared>,
    host_key: String,
}

impl Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Compare with the key from the fixture's known_hosts, as the other peers do.
        Ok(match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key
                .to_openssh()
                .map(|s| s.split_whitespace().nth(1) == Some(self.host_key.as_str()))
                .unwrap_or(false),
            PublicKeyOrCertificate::Certificate(_) => false,
        })
    }

    async fn data(
        &mut self,
        _ch: ChannelId,
        data: &[u8],
        _s: &mut Session,
    ) -> Result<(), Self::Error> {
        let total = self
            .shared
            .received
            .fetch_add(data.len() as u64, Ordering::SeqCst)
            + data.len() as u64;
        if total >= self.shared.want.load(Ordering::SeqCst) {
            self.shared.notify.notify_one();
        }
        if let Some(w) = self.shared.forward_to.lock().await.as_mut() {
            use tokio::io::AsyncWriteExt;
            w.write_all(data).await?;
        }
        Ok(())
    }

    async fn channel_eof(&mut self, _ch: ChannelId, _s: &mut Session) -> Result<(), Self::Error> {
        if let Some(mut w) = self.shared.forward_to.lock().await.take() {
            use tokio::io::AsyncWriteExt;
            let _ = w.shutdown().await;
        }
        Ok(())
    }

    async fn exit_status(
        &mut self,
        _ch: ChannelId,
        status: u32,
        _s: &mut Session,
    ) -> Result<(), Self::Error> {
        self.shared
            .exit_status
            .store(status as u64, Ordering::SeqCst);
        Ok(())
    }

    async fn channel_close(&mut self, _ch: ChannelId, _s: &mut Session) -> Result<(), Self::Error> {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.notify.notify_one();
        Ok(())
    }
}

struct Conn {
    handle: Handle<Client>,
    shared: Arc<Shared>,
}

fn config(a: &Args) -> Result<Arc<client::Config>, BoxError> {
    let cipher = russh::cipher::Name::try_from(a.cipher.as_str())
        .map_err(|_| format!("unknown cipher {}", a.cipher))?;
    Ok(Arc::new(client::Config {
        preferred: russh::Preferred {
            cipher: Cow::Owned(vec![cipher]),
            ..Default::default()
        },
        // Same socket setting as ferrossh's default (DESIGN.md: TCP_NODELAY on).
        nodelay: true,
        ..Default::default()
    }))
}

async fn connect(
    a: &Args,
    cfg: Arc<client::Config>,
    key: Arc<PrivateKey>,
) -> Result<Conn, BoxError> {
    let shared = Arc::new(Shared::default());
    let handler = Client {
        shared: shared.clone(),
        host_key: a.host_key.clone(),
    };
    let handle = client::connect(cfg, (a.host.as_str(), a.port), handler).await?;
    authenticate(a, handle, shared, key).await
}

/// The target of a one-hop jump: its handshake runs over a direct-tcpip channel of `hop`.
async fn connect_via(
    a: &Args,
    hop: &Conn,
    cfg: Arc<client::Config>,
    key: Arc<PrivateKey>,
) -> Result<Conn, BoxError> {
    let ch = hop
        .handle
        .channel_open_direct_tcpip(a.host.clone(), a.port as u32, "127.0.0.1", 0)
        .await?;
    let shared = Arc::new(Shared::default());
    let handler = Client {
        shared: shared.clone(),
        host_key: a.host_key.clone(),
    };
    let handle = client::connect_stream(cfg, ch.into_stream(), handler).await?;
    authenticate(a, handle, shared, key).await
}

async fn authenticate(
    a: &Args,
    mut handle: Handle<Client>,
    shared: Arc<Shared>,
    key: Arc<PrivateKey>,
) -> Result<Conn, BoxError> {
    let auth = handle
        .authenticate_publickey(a.user.clone(), PrivateKeyWithHashAlg::new(key, None))
        .await?;
    if !auth.success() {
        return Err("public key authentication failed".into());
    }
    Ok(Conn { handle, shared })
}

impl Conn {
    /// Opens a session channel and runs `cmd`; the read half is dropped (data arrives via the handler).
    async fn exec(&self, cmd: &str) -> Result<russh::ChannelWriteHalf<client::Msg>, BoxError> {
        self.shared.received.store(0, Ordering::SeqCst);
        self.shared.closed.store(false, Ordering::SeqCst);
        let ch = self.handle.channel_open_session().await?;
        ch.exec(false, cmd).await?;
        let (_read, write) = ch.split();
        Ok(write)
    }

    async fn close(self) -> Result<(), BoxError> {
        self.handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await?;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.handle).await;
        Ok(())
    }
}

/// Connect, authenticate and run `true` to completion; the caller closes the connection, so the
/// timed part ends where the JS peers' does (exit status received), before teardown.
async fn exec_true(
    a: &Args,
    cfg: Arc<client::Config>,
    key: Arc<PrivateKey>,
) -> Result<Conn, BoxError> {
    let c = connect(a, cfg, key).await?;
    let _w = c.exec("true").await?;
    c.shared.wait_closed().await;
    Ok(c)
}

fn json_nums(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
    format!("[{}]", items.join(","))
}

async fn run(a: Args) -> Result<String, BoxError> {
    let cfg = config(&a)?;
    let key = Arc::new(load_secret_key(&a.key, None)?);
    match a.workload.as_str() {
        "connect" => {
            let mut ms = Vec::with_capacity(a.count);
            for _ in 0..a.count {
                let t0 = Instant::now();
                let c = exec_true(&a, cfg.clone(), key.clone()).await?;
                ms.push(t0.elapsed().as_secs_f64() * 1e3);
                c.close().await?;
            }
            Ok(format!("{{\"latenciesMs\":{}}}", json_nums(&ms)))
        }
        "download" => {
            let c = connect(&a, cfg, key).await?;
            download(&a, c).await
        }
        "upload" => {
            let c = connect(&a, cfg, key).await?;
            upload(&a, c).await
        }
        "jump-upload" => {
            let hop = connect(&a, cfg.clone(), key.clone()).await?;
            let c = connect_via(&a, &hop, cfg, key).await?;
            let r = upload(&a, c).await;
            hop.close().await?;
            r
        }
        "jump-connect" => {
            // both handshakes, the second over a channel of the first, then `true` to its end
            let mut ms = Vec::with_capacity(a.count);
            for _ in 0..a.count {
                let t0 = Instant::now();
                let hop = connect(&a, cfg.clone(), key.clone()).await?;
                let c = connect_via(&a, &hop, cfg.clone(), key.clone()).await?;
                let _w = c.exec("true").await?;
                c.shared.wait_closed().await;
                ms.push(t0.elapsed().as_secs_f64() * 1e3);
                c.close().await?;
                hop.close().await?;
            }
            Ok(format!("{{\"latenciesMs\":{}}}", json_nums(&ms)))
        }
        "roundtrip" => {
            let c = connect(&a, cfg, key).await?;
            let msg = bytes_of(a.size);
            let w = c.exec("cat").await?;
            let mut expected = 0u64;
            // untimed warm-up, as for every peer: the remote cat has to start first
            for _ in 0..a.warmup {
                w.data_bytes(msg).await?;
                expected += a.size as u64;
                c.shared.wait_for(expected).await;
            }
            let mut us = Vec::with_capacity(a.count);
            let (cpu0, _) = rusage();
            for _ in 0..a.count {
                let t0 = Instant::now();
                w.data_bytes(msg).await?;
                expected += a.size as u64;
                c.shared.wait_for(expected).await;
                if c.shared.closed.load(Ordering::SeqCst) {
                    return Err("channel closed during round trips".into());
                }
                us.push(t0.elapsed().as_secs_f64() * 1e6);
            }
            let cpu = rusage().0 - cpu0;
            w.eof().await?;
            c.shared.wait_closed().await;
            c.close().await?;
            Ok(format!(
                "{{\"latenciesUs\":{},\"cpuS\":{cpu:.6}}}",
                json_nums(&us)
            ))
        }
        "forward" => {
            // -L with one connection: a listener, the sink connecting to it, a direct-tcpip
            // channel to the byte source; channel data is written to the socket from the handler
            let c = connect(&a, cfg, key).await?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let port = listener.local_addr()?.port();
            let mut sink_cmd = a.sink.split_whitespace();
            let program = sink_cmd.next().ok_or("forward needs --sink")?;
            let (cpu0, _) = rusage();
            let sink = tokio::process::Command::new(program)
                .args(sink_cmd)
                .arg(port.to_string())
                .arg(a.bytes.to_string())
                .stdout(std::process::Stdio::piped())
                .spawn()?;
            let (sock, _) = listener.accept().await?;
            sock.set_nodelay(true)?;
            let (_read, write) = sock.into_split();
            *c.shared.forward_to.lock().await = Some(write);
            let ch = c
                .handle
                .channel_open_direct_tcpip("127.0.0.1", a.source_port as u32, "127.0.0.1", 0)
                .await?;
            // the read half goes: data arrives through the handler, never queued
            let (read, _write) = ch.split();
            drop(read);
            let out = sink.wait_with_output().await?;
            let cpu = rusage().0 - cpu0;
            c.close().await?;
            let report = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !out.status.success() {
                return Err(format!("sink failed: {report}").into());
            }
            let field = |name: &str| {
                report
                    .split(&format!("\"{name}\":"))
                    .nth(1)
                    .and_then(|v| v.split([',', '}']).next())
                    .map(|v| v.trim().to_string())
                    .ok_or_else(|| format!("no {name} in the sink's report: {report}"))
            };
            Ok(format!(
                "{{\"bytes\":{},\"wallS\":{},\"cpuS\":{cpu:.6},\"sinkCpuS\":{}}}",
                field("bytes")?,
                field("wallS")?,
                field("cpuS")?
            ))
        }
        "jump" => {
            // both hops on the same sshd, as for the other peers: the target through the hop
            let hop = connect(&a, cfg.clone(), key.clone()).await?;
            let c = connect_via(&a, &hop, cfg, key).await?;
            let r = download(&a, c).await;
            hop.close().await?;
            r
        }
        "concurrent" => {
            // one connection first, as for the other peers: the baseline is taken after it
            let rss_cold = current_rss_kb();
            exec_true(&a, cfg.clone(), key.clone()).await?.close().await?;
            let rss_before = current_rss_kb();
            let (cpu0, _) = rusage();
            let t0 = Instant::now();
            let tasks: Vec<_> = (0..a.count)
                .map(|_| {
                    let (a2, cfg, key) = (clone_args(&a), cfg.clone(), key.clone());
                    tokio::spawn(async move { exec_true(&a2, cfg, key).await })
                })
                .collect();
            let mut conns = Vec::with_capacity(a.count);
            for t in tasks {
                conns.push(t.await??);
            }
            let wall = t0.elapsed().as_secs_f64();
            let (cpu1, rss_kb) = rusage();
            for c in conns {
                c.close().await?;
            }
            Ok(format!("{{\"wallS\":{wall:.6},\"maxRssKb\":{rss_kb},\"rssColdKb\":{rss_cold},\"rssBeforeKb\":{rss_before},\"cpuS\":{:.6}}}", cpu1 - cpu0))
        }
        other => Err(format!("unknown workload {other}").into()),
    }
}

/// `a.bytes` into `cat > /dev/null` on `c` in `a.chunk` writes, timed from the exec to the
/// channel's close; closes `c`.
async fn upload(a: &Args, c: Conn) -> Result<String, BoxError> {
    // One zeroed chunk for every write, handed over without a copy: the floor pays nothing on
    // the way in (the JS peers pay at least one copy).
    let chunk = bytes_of(a.chunk);
    let (cpu0, _) = rusage();
    let t0 = Instant::now();
    let w = c.exec("cat > /dev/null").await?;
    let mut left = a.bytes;
    while left > 0 {
        let n = left.min(a.chunk as u64) as usize;
        w.data_bytes(&chunk[..n]).await?;
        left -= n as u64;
    }
    w.eof().await?;
    c.shared.wait_closed().await;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = rusage().0 - cpu0;
    let status = c.shared.exit_status.load(Ordering::SeqCst);
    c.close().await?;
    if status != 0 {
        return Err(format!("remote cat exited with {status}").into());
    }
    Ok(format!("{{\"bytes\":{},\"wallS\":{wall:.6},\"cpuS\":{cpu:.6}}}", a.bytes))
}

/// `head -c bytes /dev/zero` on `c`, timed from the exec to the channel's close; closes `c`.
async fn download(a: &Args, c: Conn) -> Result<String, BoxError> {
    let (cpu0, _) = rusage();
    let t0 = Instant::now();
    let _w = c.exec(&format!("head -c {} /dev/zero", a.bytes)).await?;
    c.shared.wait_closed().await;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = rusage().0 - cpu0;
    let got = c.shared.received.load(Ordering::SeqCst);
    c.close().await?;
    if got != a.bytes {
        return Err(format!("received {got} bytes, expected {}", a.bytes).into());
    }
    Ok(format!("{{\"bytes\":{got},\"wallS\":{wall:.6},\"cpuS\":{cpu:.6}}}"))
}

/// A zeroed buffer that lives for the whole run: `&'static [u8]` becomes a `Bytes` without a copy.
fn bytes_of(n: usize) -> &'static [u8] {
    Box::leak(vec![0u8; n].into_boxed_slice())
}

fn clone_args(a: &Args) -> Args {
    Args {
        workload: a.workload.clone(),
        host: a.host.clone(),
        port: a.port,
        user: a.user.clone(),
        key: a.key.clone(),
        host_key: a.host_key.clone(),
        cipher: a.cipher.clone(),
        bytes: a.bytes,
        count: a.count,
        size: a.size,
        chunk: a.chunk,
        warmup: a.warmup,
        source_port: a.source_port,
        sink: a.sink.clone(),
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ferrossh-rust-floor: {e}");
            std::process::exit(2);
        }
    };
    // Single-threaded on purpose: the floor is what one core can do without any binding.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferrossh-rust-floor: runtime: {e}");
            std::process::exit(2);
        }
    };
    match rt.block_on(run(args)) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("ferrossh-rust-floor: {e}");
            std::process::exit(1);
        }
    }
}
