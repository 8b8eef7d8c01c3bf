//! X11 forwarding (RFC 4254 §6.3). The server gets a fake MIT-MAGIC-COOKIE-1; each
//! forwarded connection's setup packet must carry it, and it is replaced by the real
//! cookie of the local display before anything reaches the X server (as OpenSSH does),
//! so the server never learns the real one.

use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::channel::Channel;
use crate::error::{Error, Result};

pub const AUTH_PROTOCOL: &str = "MIT-MAGIC-COOKIE-1";

/// Where forwarded X11 connections go, and the cookies.
#[derive(Clone)]
pub struct X11Target {
    /// `:N` (Unix socket /tmp/.X11-unix/XN), `host:N` (TCP 6000+N), or a socket path.
    pub display: String,
    /// The local display's cookie (empty: the X server takes connections without one).
    pub real_cookie: Vec<u8>,
    /// The cookie the server was given.
    pub fake_cookie: Vec<u8>,
    pub single_connection: bool,
    pub screen: u32,
}

impl std::fmt::Debug for X11Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "X11Target({}, cookies redacted)", self.display)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn random_cookie() -> Vec<u8> {
    use rand::RngCore;
    let mut c = vec![0u8; 16];
    rand::thread_rng().fill_bytes(&mut c);
    c
}

/// A display name split into where to connect.
#[derive(Debug, PartialEq, Eq)]
pub enum DisplayAddr {
    Unix(PathBuf),
    Tcp(String, u16),
}

pub fn parse_display(display: &str) -> Result<(DisplayAddr, u32)> {
    let bad = || Error::config("x11.display", format!("cannot use X display {display:?}: expected :N, :N.S, host:N or a socket path"));
    if display.starts_with('/') {
        return Ok((DisplayAddr::Unix(PathBuf::from(display)), 0));
    }
    let (host, rest) = display.rsplit_once(':').ok_or_else(bad)?;
    let (num, screen) = match rest.split_once('.') {
        Some((n, s)) => (n, s.parse::<u32>().map_err(|_| bad())?),
        None => (rest, 0),
    };
    let n: u16 = num.parse().map_err(|_| bad())?;
    if host.is_empty() || host == "unix" {
        Ok((DisplayAddr::Unix(PathBuf::from(format!("/tmp/.X11-unix/X{n}"))), screen))
    } else {
        let port = 6000u16.checked_add(n).ok_or_else(bad)?;
        Ok((DisplayAddr::Tcp(host.trim_matches(['[', ']']).to_string(), port), screen))
    }
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parses an X11 connection setup header (X11 protocol, "Connection Setup") and, when
/// complete, returns the rewritten packet and how many input bytes it covered.
pub fn rewrite_setup(buf: &[u8], fake: &[u8], real: &[u8]) -> Result<Option<(Vec<u8>, usize)>> {
    if buf.len() < 12 {
        return Ok(None);
    }
    let le = match buf[0] {
        b'l' => true,
        b'B' => false,
        _ => return Err(Error::channel("x11-refused", "X11 connection with a malformed setup packet")),
    };
    let u16_at = |i: usize| if le { u16::from_le_bytes([buf[i], buf[i + 1]]) } else { u16::from_be_bytes([buf[i], buf[i + 1]]) } as usize;
    let name_len = u16_at(6);
    let data_len = u16_at(8);
    let total = 12 + pad4(name_len) + pad4(data_len);
    if buf.len() < total {
        return Ok(None);
    }
    let name = &buf[12..12 + name_len];
    let data_start = 12 + pad4(name_len);
    let data = &buf[data_start..data_start + data_len];
    if name != AUTH_PROTOCOL.as_bytes() || data != fake {
        return Err(Error::channel("x11-refused", "X11 connection with the wrong authentication cookie"));
    }
    let mut out = Vec::with_capacity(12 + pad4(AUTH_PROTOCOL.len()) + pad4(real.len()));
    out.extend_from_slice(&buf[..6]);
    let put = |out: &mut Vec<u8>, v: u16| out.extend_from_slice(&if le { v.to_le_bytes() } else { v.to_be_bytes() });
    if real.is_empty() {
        put(&mut out, 0);
        put(&mut out, 0);
        out.extend_from_slice(&buf[10..12]);
    } else {
        put(&mut out, AUTH_PROTOCOL.len() as u16);
        put(&mut out, real.len() as u16);
        out.extend_from_slice(&buf[10..12]);
        out.extend_from_slice(AUTH_PROTOCOL.as_bytes());
        out.resize(12 + pad4(AUTH_PROTOCOL.len()), 0);
        out.extend_from_slice(real);
        out.resize(12 + pad4(AUTH_PROTOCOL.len()) + pad4(real.len()), 0);
    }
    Ok(Some((out, total)))
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}
impl crate::bridge::LocalStream for Box<dyn Stream> {}

async fn connect_display(addr: &DisplayAddr) -> Result<Box<dyn Stream>> {
    let err = |e: std::io::Error| Error::channel("connect-failed", format!("cannot reach the local X display: {e}"));
    match addr {
        #[cfg(unix)]
        DisplayAddr::Unix(p) => Ok(Box::new(tokio::net::UnixStream::connect(p).await.map_err(err)?)),
        #[cfg(not(unix))]
        DisplayAddr::Unix(_) => Err(Error::channel("connect-failed", "Unix-socket X displays are not available here")),
        DisplayAddr::Tcp(h, p) => Ok(Box::new(tokio::net::TcpStream::connect((h.as_str(), *p)).await.map_err(err)?)),
    }
}

/// Serves one forwarded X11 connection: checks and replaces the cookie, then copies bytes.
pub async fn serve(ch: Channel, target: X11Target) -> Result<()> {
    let (addr, _) = parse_display(&target.display)?;
    let mut pending = Vec::new();
    let (setup, rest) = loop {
        match ch.shared().next_chunks().await? {
            Some([out, _]) => pending.extend_from_slice(&out),
            None => {
                let _ = ch.close().await;
                return Ok(());
            }
        }
        if pending.len() > 64 * 1024 {
            let _ = ch.close().await;
            return Err(Error::channel("x11-refused", "X11 setup packet too large"));
        }
        match rewrite_setup(&pending, &target.fake_cookie, &target.real_cookie) {
            Ok(Some((setup, used))) => break (setup, pending.split_off(used)),
            Ok(None) => continue,
            Err(e) => {
                let _ = ch.close().await;
                return Err(e);
            }
        }
    };
    let mut display = match connect_display(&addr).await {
        Ok(d) => d,
        Err(e) => {
            let _ = ch.close().await;
            return Err(e);
        }
    };
    let io = |e: std::io::Error| Error::disconnected(format!("X display: {e}"));
    display.write_all(&setup).await.map_err(io)?;
    display.write_all(&rest).await.map_err(io)?;
    crate::bridge::bridge(ch, display).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(le: bool, name: &[u8], data: &[u8]) -> Vec<u8> {
        let mut v = vec![if le { b'l' } else { b'B' }, 0];
        let put = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&if le { x.to_le_bytes() } else { x.to_be_bytes() });
        put(&mut v, 11);
        put(&mut v, 0);
        put(&mut v, name.len() as u16);
        put(&mut v, data.len() as u16);
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(name);
        v.resize(12 + pad4(name.len()), 0);
        v.extend_from_slice(data);
        v.resize(12 + pad4(name.len()) + pad4(data.len()), 0);
        v
    }

    #[test]
    fn replaces_the_fake_cookie_in_both_byte_orders() {
        let (fake, real) = (vec![1u8; 16], vec![2u8; 16]);
        for le in [true, false] {
            let mut pkt = setup(le, AUTH_PROTOCOL.as_bytes(), &fake);
            pkt.extend_from_slice(b"after");
            assert!(rewrite_setup(&pkt[..20], &fake, &real).unwrap().is_none(), "incomplete header waits");
            let (out, used) = rewrite_setup(&pkt, &fake, &real).unwrap().unwrap();
            assert_eq!(out, setup(le, AUTH_PROTOCOL.as_bytes(), &real));
            assert_eq!(&pkt[used..], b"after");
        }
    }

    #[test]
    fn refuses_a_wrong_cookie_and_garbage() {
        let pkt = setup(true, AUTH_PROTOCOL.as_bytes(), &[9u8; 16]);
        assert!(rewrite_setup(&pkt, &[1u8; 16], &[2u8; 16]).is_err());
        assert!(rewrite_setup(b"garbage-garbage-garbage", &[1u8; 16], &[]).is_err());
    }

    #[test]
    fn empty_real_cookie_sends_no_auth() {
        let fake = vec![1u8; 16];
        let (out, _) = rewrite_setup(&setup(true, AUTH_PROTOCOL.as_bytes(), &fake), &fake, &[]).unwrap().unwrap();
        assert_eq!(out, setup(true, b"", b""));
    }

    #[test]
    fn display_names() {
        assert_eq!(parse_display(":0").unwrap(), (DisplayAddr::Unix("/tmp/.X11-unix/X0".into()), 0));
        assert_eq!(parse_display(":12.1").unwrap(), (DisplayAddr::Unix("/tmp/.X11-unix/X12".into()), 1));
        assert_eq!(parse_display("localhost:10.0").unwrap(), (DisplayAddr::Tcp("localhost".into(), 6010), 0));
        assert_eq!(parse_display("/tmp/x.sock").unwrap().0, DisplayAddr::Unix("/tmp/x.sock".into()));
        for bad in ["", "nocolon", ":x", ":70000", ":1.y"] {
            assert!(parse_display(bad).is_err(), "{bad}");
        }
    }
}
