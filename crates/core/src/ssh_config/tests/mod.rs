//! Unit tests, one file per concern. The comparison with OpenSSH itself
//! lives in `tests/ssh_config_vs_ssh_g.rs`.

mod errors;
mod include;
mod lexing;
mod matching;
mod resolving;
mod tokens;
mod values;

use std::path::PathBuf;

use super::{resolve_str, ConfigError, ResolveOptions, ResolvedConfig};

/// Options that make resolution independent of the machine running tests.
pub(super) fn opts() -> ResolveOptions {
    ResolveOptions {
        home: Some(PathBuf::from("/home/tester")),
        local_user: Some("tester".into()),
        local_hostname: Some("box.example.org".into()),
        uid: Some(1000),
        include_system: false,
        ..ResolveOptions::default()
    }
}

pub(super) fn resolve(host: &str, text: &str) -> ResolvedConfig {
    match resolve_str(host, text, &opts()) {
        Ok(cfg) => cfg,
        Err(e) => panic!("resolving {host} failed: {e}"),
    }
}

pub(super) fn resolve_err(host: &str, text: &str) -> ConfigError {
    match resolve_str(host, text, &opts()) {
        Ok(cfg) => panic!("expected an error, got {cfg:?}"),
        Err(e) => e,
    }
}

pub(super) fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}
