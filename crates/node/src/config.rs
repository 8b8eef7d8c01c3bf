//! resolveConfig: OpenSSH client configuration for one host, as `ssh -G` resolves it.

use std::path::PathBuf;

use ferrossh_core::ssh_config::{self, ResolveOptions};
use ferrossh_core::Error;
use napi_derive::napi;

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
    let port = match port {
        None => None,
        Some(p) => Some(u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| errors::to_napi(Error::config("port", "port must be between 1 and 65535")))?),
    };
    let include_system = file.is_none();
    let opts = ResolveOptions { file: file.map(PathBuf::from), user: user.clone(), port, include_system, ..Default::default() };
    let to_err = |e: ssh_config::ConfigError| {
        errors::to_napi(Error::Config { option: Some("sshConfig".into()), file: e.file, line: e.line, message: e.message })
    };
    let resolved = ssh_config::resolve(&host, &opts).map_err(to_err)?;
    // what a configuration without any file gives: keys that differ were set by the files
    let empty = ResolveOptions { file: None, user, port, include_system: false, ..Default::default() };
    let defaults = ssh_config::resolve_str(&host, "", &empty).map_err(to_err)?;
    Ok(resolved
        .entries()
        .map(|(k, v)| NativeConfigEntry { key: k.to_string(), values: v.to_vec(), explicit: defaults.get_all(k) != v })
        .collect())
}
