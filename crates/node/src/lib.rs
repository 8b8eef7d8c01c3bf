//! The napi-rs binding of ferrossh: converts JS values to `ferrossh_core` types and back.
//! No SSH decisions are made here.

mod cancel;
mod channel;
mod config;
mod client;
mod errors;
mod forward;
mod keys;
mod known_hosts;
mod options;
mod pending;
mod runtime;
mod server;
mod server_channel;
mod sftp;
mod sock;

use napi_derive::napi;

/// Every async call, session and channel runs on our runtime (see `runtime.rs`): one
/// dedicated thread with a current-thread scheduler unless FERROSSH_WORKER_THREADS asks for
/// a multi-thread one (2–16 workers, e.g. for processes that mostly forward).
#[napi_derive::module_init]
fn init() {
    runtime::install(worker_threads(std::env::var("FERROSSH_WORKER_THREADS").ok()));
}

/// 1 to 16 written plainly (no sign, zeros or blanks: the JavaScript side warns about any
/// other value with the same rule); anything else is one thread.
fn worker_threads(setting: Option<String>) -> usize {
    setting
        .filter(|s| !s.starts_with('0') && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| (1..=16).contains(n))
        .unwrap_or(1)
}

/// Which crypto backend this build of the binding uses.
#[napi]
pub fn crypto_backend() -> &'static str {
    if cfg!(feature = "aws-lc-rs") {
        "aws-lc-rs"
    } else {
        "ring"
    }
}

/// Algorithm names this build can negotiate, per list.
#[napi]
pub fn supported_algorithms() -> options::NativeAlgorithms {
    options::algorithms_to_js(ferrossh_core::algorithms::supported())
}

/// Refs (`keep`) or unrefs the threadsafe function that keeps Node alive while a client is
/// connected or a server listens; nothing once it has been released at close.
#[allow(deprecated)]
pub(crate) fn set_keep_alive_ref<T: 'static, R: napi::bindgen_prelude::FromNapiValue, A: 'static + napi::bindgen_prelude::JsValuesTupleIntoVec>(
    slot: &std::sync::Mutex<Option<napi::threadsafe_function::ThreadsafeFunction<T, R, A, napi::Status, false>>>,
    env: &napi::Env,
    keep: bool,
) -> napi::Result<()> {
    let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = guard.as_mut() {
        if keep {
            f.refer(env)?;
        } else {
            f.unref(env)?;
        }
    }
    Ok(())
}
