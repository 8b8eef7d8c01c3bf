//! Errors cross into JavaScript as data: a JSON object behind a marker in the message,
//! turned into the right `SshError` subclass by lib/errors.ts (one mapping, one place).

use ferrossh_core::Error;
use serde_json::{json, Map, Value};

/// Prefix that tells lib/errors.ts the message is a serialized core error.
pub const MARKER: &str = "\u{1}ferrossh:";

fn path_value(p: &Option<std::path::PathBuf>) -> Value {
    p.as_ref().map(|p| Value::String(p.display().to_string())).unwrap_or(Value::Null)
}

pub fn to_json(e: &Error) -> Value {
    let mut o = Map::new();
    o.insert("code".into(), json!(e.code()));
    o.insert("message".into(), json!(e.to_string()));
    match e {
        Error::Connect { address, cause, errno } => {
            o.insert("address".into(), json!(address));
            o.insert("cause".into(), json!(cause));
            o.insert("errno".into(), json!(errno));
        }
        Error::HostKey { reason, host, port, algorithm, fingerprint, expected, file, line, .. } => {
            o.insert("reason".into(), json!(reason.as_str()));
            o.insert("host".into(), json!(host));
            o.insert("port".into(), json!(port));
            o.insert("algorithm".into(), json!(algorithm));
            o.insert("fingerprint".into(), json!(fingerprint));
            o.insert("expected".into(), json!(expected));
            o.insert("file".into(), path_value(file));
            o.insert("line".into(), json!(line));
        }
        Error::Negotiation { list, ours, theirs } => {
            o.insert("list".into(), json!(list));
            o.insert("ours".into(), json!(ours));
            o.insert("theirs".into(), json!(theirs));
        }
        Error::Auth { attempts, allowed, .. } => {
            let a: Vec<Value> = attempts
                .iter()
                .map(|a| json!({ "method": a.method, "outcome": a.outcome, "detail": a.detail }))
                .collect();
            o.insert("attempts".into(), Value::Array(a));
            o.insert("allowed".into(), json!(allowed));
        }
        Error::Timeout { phase, ms } => {
            o.insert("phase".into(), json!(phase));
            o.insert("timeoutMs".into(), json!(ms));
        }
        Error::Channel { reason, .. } => {
            o.insert("reason".into(), json!(reason));
        }
        Error::Disconnect { reason, description } => {
            o.insert("reason".into(), json!(reason));
            o.insert("description".into(), json!(description));
        }
        Error::Config { option, file, line, .. } => {
            o.insert("option".into(), json!(option));
            o.insert("file".into(), path_value(file));
            o.insert("line".into(), json!(line));
        }
        Error::Proxy { hop, host, command, stderr, cause, .. } => {
            o.insert("hop".into(), json!(hop));
            o.insert("host".into(), json!(host));
            o.insert("command".into(), json!(command));
            o.insert("stderr".into(), json!(stderr));
            if let Some(c) = cause {
                o.insert("cause".into(), to_json(c));
            }
        }
        Error::Sftp { code, status, path, reason, .. } => {
            o.insert("code".into(), json!(code));
            o.insert("sftp".into(), json!(true));
            o.insert("status".into(), json!(status));
            o.insert("path".into(), json!(path));
            if let Some(r) = reason {
                o.insert("reason".into(), json!(r));
            }
        }
        Error::Forward { spec, .. } => {
            o.insert("spec".into(), json!(spec));
        }
        // a protocol error ends the connection: a DisconnectError, with the fields it promises
        Error::Protocol { message } => {
            o.insert("reason".into(), json!("protocol-error"));
            o.insert("description".into(), json!(message));
        }
        Error::Aborted | Error::Command { .. } => {}
    }
    Value::Object(o)
}

pub fn to_napi(e: Error) -> napi::Error {
    napi::Error::new(napi::Status::GenericFailure, format!("{MARKER}{}", to_json(&e)))
}

pub fn to_string(e: &Error) -> String {
    format!("{MARKER}{}", to_json(e))
}


pub trait IntoNapi<T> {
    fn js(self) -> napi::Result<T>;
}

impl<T> IntoNapi<T> for ferrossh_core::Result<T> {
    fn js(self) -> napi::Result<T> {
        self.map_err(to_napi)
    }
}

/// Runs a synchronous entry point, turning a panic into a ConfigError for `option`. A panic that
/// unwinds into napi aborts the whole process (in Electron, the app): key arithmetic in the
/// crypto crates asserts on inputs it did not expect, and such a key must fail the one call.
pub fn catch_panic<T>(option: &str, what: &str, f: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(to_napi(Error::config(option, format!("{what} failed on an internal error in the key code; this key cannot be used by ferrossh"))))
    })
}
