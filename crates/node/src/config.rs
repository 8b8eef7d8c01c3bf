//! resolveConfig: OpenSSH client configuration for one host, as `ssh -G` resolves it.

use std::path::PathBuf;
use std::time::Duration;

use ferrossh_core::ssh_config::{self, ResolveOptions};
use ferrossh_core::{CancelToken, Error};
use napi_derive::napi;

use crate::cancel::NativeCancel;
use crate::errors;

#[napi(object)]
pub struct NativeConfigEntry {
    /// Lowercase keyword, as `ssh -G` prints it.
    pub key: String,
    pub values: Vec<String>,
    /// Set by a configuration file (not only a default).
    pub explicit: bool,
}

/// Resolves every keyword for `host`. `file` replaces ~/.ssh/config (like ssh -F, which
/// then also skips /etc/ssh/ssh_config).
#[napi]
pub fn resolve_config(host: String, file: Option<String>, user: Option<String>, port: Option<u32>) -> napi::Result<Vec<NativeConfigEntry>> {
    resolve_entries(host, file, user, port, None).map_err(errors::to_napi)
}

/// The same as `resolveConfig`, off the JavaScript thread (a `Match exec` command may take
/// its time): the signal, or `timeoutMs` (0 = none), kills a command still running and
/// rejects with AbortError / TimeoutError.
#[napi(ts_args_type = "host: string, file: string | undefined | null, user: string | undefined | null, port: number | undefined | null, cancel: NativeCancel | undefined | null, timeoutMs: number")]
pub async fn resolve_config_async(host: String, file: Option<String>, user: Option<String>, port: Option<u32>, cancel: Option<&NativeCancel>, timeout_ms: u32) -> napi::Result<Vec<NativeConfigEntry>> {
    let stop = CancelToken::new();
    let outer = cancel.map(|c| c.token.clone());
    let s2 = stop.clone();
    let mut work = tokio::task::spawn_blocking(move || resolve_entries(host, file, user, port, Some(s2)));
    let deadline = async {
        if timeout_ms == 0 {
            std::future::pending::<()>().await
        } else {
            tokio::time::sleep(Duration::from_millis(u64::from(timeout_ms))).await
        }
    };
    let aborted = async {
        match &outer {
            Some(t) => t.cancelled().await,
            None => std::future::pending::<()>().await,
        }
    };
    let r = tokio::select! {
        r = &mut work => r.unwrap_or_else(|e| Err(Error::config("sshConfig", format!("reading the configuration failed: {e}")))),
        _ = deadline => Err(Error::timeout("ssh_config", u64::from(timeout_ms))),
        _ = aborted => Err(Error::Aborted),
    };
    if r.is_err() {
        // a Match exec command still running is killed; the blocking thread then ends
        stop.cancel();
    }
    r.map_err(errors::to_napi)
}

fn resolve_entries(host: String, file: Option<String>, user: Option<String>, port: Option<u32>, stop: Option<CancelToken>) -> Result<Vec<NativeConfigEntry>, Error> {
    let port = match port {
        None => None,
        Some(p) => Some(u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| Error::config("port", "port must be between 1 and 65535"))?),
    };
    let include_system = file.is_none();
    let opts = ResolveOptions { file: file.map(PathBuf::from), user: user.clone(), port, include_system, stop, ..Default::default() };
    let to_err = |e: ssh_config::ConfigError| Error::Config { option: Some("sshConfig".into()), file: e.file, line: e.line, message: e.message };
    let resolved = ssh_config::resolve(&host, &opts).map_err(to_err)?;
    // what a configuration without any file gives: keys that differ were set by the files
    let empty = ResolveOptions { file: None, user, port, include_system: false, ..Default::default() };
    let defaults = ssh_config::resolve_str(&host, "", &empty).map_err(to_err)?;
    Ok(resolved
        .entries()
        .map(|(k, v)| NativeConfigEntry { key: k.to_string(), values: v.to_vec(), explicit: defaults.get_all(k) != v })
        .collect())
}
