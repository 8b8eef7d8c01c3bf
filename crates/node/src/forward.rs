//! Forwarding listeners as JS objects; the copying stays in crates/core.

use std::sync::Arc;

use ferrossh_core::forward::{self, ForwardHandle, Target};
use ferrossh_core::{Client, Error};
use napi_derive::napi;
use tokio::sync::Mutex;

use crate::errors::{self, IntoNapi};

#[napi(object)]
pub struct NativeTarget {
    pub host: Option<String>,
    pub port: Option<u32>,
    pub path: Option<String>,
}

#[napi(object)]
pub struct NativeLocalForward {
    /// TCP listener (with bind_port) or, with bind_path, a Unix socket listener.
    pub bind_host: Option<String>,
    pub bind_port: Option<u32>,
    pub bind_path: Option<String>,
    pub target: NativeTarget,
}

pub fn port(option: &str, p: u32) -> napi::Result<u16> {
    u16::try_from(p)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| errors::to_napi(Error::config(option, format!("{option} must be between 1 and 65535, got {p}"))))
}

fn bind_port(option: &str, p: u32) -> napi::Result<u16> {
    u16::try_from(p).map_err(|_| errors::to_napi(Error::config(option, format!("{option} must be between 0 and 65535, got {p}"))))
}

pub fn target(t: NativeTarget) -> napi::Result<Target> {
    match (t.host, t.port, t.path) {
        (Some(host), Some(p), None) if !host.is_empty() => Ok(Target::Tcp { host, port: port("port", p)? }),
        (None, None, Some(path)) if !path.is_empty() => Ok(Target::Unix { path }),
        _ => Err(errors::to_napi(Error::config("target", "a forwarding target is either { host, port } or { path }"))),
    }
}

#[napi]
pub struct NativeForward {
    handle: Arc<Mutex<ForwardHandle>>,
    local_port: Option<u32>,
    local_address: Option<String>,
    local_path: Option<String>,
}

#[napi]
impl NativeForward {
    #[napi(getter)]
    pub fn local_port(&self) -> Option<u32> {
        self.local_port
    }

    #[napi(getter)]
    pub fn local_address(&self) -> Option<String> {
        self.local_address.clone()
    }

    #[napi(getter)]
    pub fn local_path(&self) -> Option<String> {
        self.local_path.clone()
    }

    /// Stops listening and ends every connection the forward carries.
    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        self.handle.lock().await.close().await;
        Ok(())
    }
}

fn wrap(h: ForwardHandle) -> NativeForward {
    NativeForward {
        local_port: h.local_addr.map(|a| a.port() as u32),
        local_address: h.local_addr.map(|a| a.ip().to_string()),
        local_path: h.local_path.as_ref().map(|p| p.display().to_string()),
        handle: Arc::new(Mutex::new(h)),
    }
}

pub async fn local(client: Arc<Client>, spec: NativeLocalForward) -> napi::Result<NativeForward> {
    let t = target(spec.target)?;
    if let Some(path) = spec.bind_path {
        #[cfg(unix)]
        {
            let label = format!("{path} → {}", t.describe());
            return forward::forward_local_unix(client, path.into(), t, &label).await.map(wrap).js();
        }
        #[cfg(not(unix))]
        {
            let _ = (client, path);
            return Err(errors::to_napi(Error::config("localPath", "Unix-socket listeners are not available on this platform")));
        }
    }
    let host = spec.bind_host.unwrap_or_else(|| "127.0.0.1".into());
    let p = bind_port("localPort", spec.bind_port.unwrap_or(0))?;
    let label = format!("{host}:{p} → {}", t.describe());
    let listener = forward::bind_tcp(&label, &host, p).await.js()?;
    forward::forward_local(client, listener, t).await.map(wrap).js()
}

pub async fn dynamic(client: Arc<Client>, bind_host: String, p: u32) -> napi::Result<NativeForward> {
    let p = bind_port("localPort", p)?;
    let label = format!("{bind_host}:{p} (SOCKS)");
    let listener = forward::bind_tcp(&label, &bind_host, p).await.js()?;
    forward::forward_dynamic(client, listener).await.map(wrap).js()
}
