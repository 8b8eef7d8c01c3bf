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
mod server;
mod server_channel;
mod sftp;
mod sock;

use napi_derive::napi;

/// napi-rs's default runtime has one worker per core; one worker measured best both
/// ways for the channel data path (DESIGN.md) and costs no cross-worker hops.
#[napi_derive::module_init]
fn init() {
    // FERROSSH_WORKER_THREADS overrides it (1–16), e.g. for processes that mostly forward
    let workers = std::env::var("FERROSSH_WORKER_THREADS").ok().and_then(|v| v.parse::<usize>().ok()).filter(|n| (1..=16).contains(n)).unwrap_or(1);
    if let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        // name resolution and file I/O only: a few threads, not one per concurrent connect
        .max_blocking_threads(8)
        .thread_name("ferrossh")
        .enable_all()
        .build()
    {
        napi::bindgen_prelude::create_custom_tokio_runtime(rt);
    }
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
