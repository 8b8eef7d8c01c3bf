//! The two ends of the forward workload, kept out of the way of what they measure: on a
//! 2-core machine the byte source and the sink share the cores with sshd and the forwarder,
//! so each costs as little CPU as a blocking loop over 1 MiB buffers can.
//!
//! `byte-pump source <bytes>`: listens on 127.0.0.1 (an ephemeral port, printed as the first
//!   line of stdout), writes <bytes> to every connection, then closes it; runs until killed.
//! `byte-pump sink <port> <bytes>`: connects to 127.0.0.1:<port>, reads until EOF and prints
//!   `{"bytes":…,"wallS":…,"cpuS":…}` (wall from connect() to EOF); exits 1 on a short count.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Instant;

const BUF: usize = 1 << 20;

#[repr(C)]
struct Timeval {
    sec: i64,
    usec: i64,
}

#[repr(C)]
struct Rusage {
    utime: Timeval,
    stime: Timeval,
    rest: [i64; 14],
}

extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}

fn cpu_seconds() -> f64 {
    let mut u = Rusage { utime: Timeval { sec: 0, usec: 0 }, stime: Timeval { sec: 0, usec: 0 }, rest: [0; 14] };
    // SAFETY: getrusage writes one struct rusage, which Rusage matches on 64-bit Linux
    if unsafe { getrusage(0, &mut u) } != 0 {
        return 0.0;
    }
    let t = |v: &Timeval| v.sec as f64 + v.usec as f64 / 1e6;
    t(&u.utime) + t(&u.stime)
}

fn number(arg: Option<String>, what: &str) -> Result<u64, String> {
    arg.ok_or(format!("missing {what}"))?.parse().map_err(|e| format!("bad {what}: {e}"))
}

fn source(bytes: u64) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("{port}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let block = vec![0x5au8; BUF];
    for conn in listener.incoming() {
        let Ok(mut sock) = conn else { continue };
        let block = block.clone();
        // one thread per connection: a forwarder torn down mid-transfer just ends its thread
        std::thread::spawn(move || {
            let _ = sock.set_nodelay(true);
            let mut left = bytes;
            while left > 0 {
                let n = left.min(BUF as u64) as usize;
                if sock.write_all(&block[..n]).is_err() {
                    return;
                }
                left -= n as u64;
            }
            let _ = sock.shutdown(Shutdown::Write);
            // wait for the peer's close so the last bytes are not reset away
            let mut scratch = [0u8; 512];
            while matches!(sock.read(&mut scratch), Ok(n) if n > 0) {}
        });
    }
    Ok(())
}

fn sink(port: u64, expected: u64) -> Result<(), String> {
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut sock = TcpStream::connect(("127.0.0.1", port as u16)).map_err(|e| format!("sink: {e}"))?;
    let mut buf = vec![0u8; BUF];
    let mut n = 0u64;
    loop {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("sink: {e}")),
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    if n != expected {
        return Err(format!("sink: received {n} bytes, expected {expected}"));
    }
    println!("{{\"bytes\":{n},\"wallS\":{wall:.6},\"cpuS\":{cpu:.6}}}");
    Ok(())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let result = match args.next().as_deref() {
        Some("source") => number(args.next(), "byte count").and_then(source),
        Some("sink") => number(args.next(), "port").and_then(|p| number(args.next(), "byte count").and_then(|b| sink(p, b))),
        _ => Err("usage: byte-pump source <bytes> | byte-pump sink <port> <bytes>".into()),
    };
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
