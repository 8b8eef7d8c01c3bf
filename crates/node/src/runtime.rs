//! The runtime every native task of this binding runs on, plugged into napi-rs as its async
//! backend: each `#[napi] async fn`, russh's session tasks and our channel writers.
//!
//! By default it is a current-thread tokio runtime on one dedicated thread, which runs every
//! task and drives every socket and timer itself. Under load that thread goes idle and wakes
//! thousands of times a second, and a multi-thread runtime with one worker takes the
//! work-stealing scheduler's idle and wake-up steps each time: A/B on this binding (medians of
//! 5), a 256 MiB upload took 0.25 s of CPU with it and 0.22 s with this one, a round trip was a
//! few percent dearer, a download the same. `FERROSSH_WORKER_THREADS=N` (2–16) selects a
//! multi-thread runtime with N workers instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use napi::bindgen_prelude::{AsyncRuntime, AsyncRuntimeRejection, AsyncRuntimeTask};
use tokio::runtime::{Builder, Handle, Runtime};

/// Blocking-pool threads (name resolution and file I/O only): a few, not one per connect.
const MAX_BLOCKING_THREADS: usize = 8;
/// How long a stopping runtime waits for blocking work (a DNS lookup, a file read) to end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

enum Running {
    /// One thread sits in `Runtime::block_on` until told to stop; `handle` spawns onto it.
    Dedicated { handle: Handle, stop: tokio::sync::oneshot::Sender<()>, thread: std::thread::JoinHandle<()> },
    /// A multi-thread runtime: its workers run the tasks, no thread of ours needed.
    Pool(Runtime),
}

impl Running {
    fn handle(&self) -> &Handle {
        match self {
            Running::Dedicated { handle, .. } => handle,
            Running::Pool(rt) => rt.handle(),
        }
    }
}

/// The one runtime of this binding, whichever environment (main thread, worker) uses it.
static CORE: OnceLock<Core> = OnceLock::new();

/// Creates the runtime (not started yet) and plugs it into napi-rs as its async backend.
pub(crate) fn install(workers: usize) {
    napi::bindgen_prelude::register_async_runtime(Registered(CORE.get_or_init(|| Core::new(workers))));
}

/// Runs `fut` on our runtime, from any thread: what napi-rs's own `spawn` would send to its
/// built-in multi-thread runtime instead (extra threads, and a channel opened there would
/// wake across them).
pub(crate) fn spawn<F: Future<Output = ()> + Send + 'static>(fut: F) -> napi::Result<()> {
    let core = CORE.get().ok_or_else(|| napi::Error::from_reason("ferrossh's runtime is not installed"))?;
    drop(core.handle()?.spawn(fut));
    Ok(())
}

pub(crate) struct Core {
    workers: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: Option<Running>,
    /// Shut down and not started again: work is refused instead of starting a runtime that
    /// nothing would stop (napi calls `start` before a new environment cycle).
    stopped: bool,
}

impl Core {
    fn new(workers: usize) -> Self {
        Core { workers, state: Mutex::new(State::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn launch(&self) -> std::io::Result<Running> {
        if self.workers > 1 {
            let rt = Builder::new_multi_thread()
                .worker_threads(self.workers)
                .max_blocking_threads(MAX_BLOCKING_THREADS)
                .thread_name("ferrossh")
                .enable_all()
                .build()?;
            return Ok(Running::Pool(rt));
        }
        let rt = Builder::new_current_thread().max_blocking_threads(MAX_BLOCKING_THREADS).thread_name("ferrossh").enable_all().build()?;
        let handle = rt.handle().clone();
        let (stop, stop_signal) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("ferrossh".into()).spawn(move || {
            // every task spawned through `handle` runs here, while this waits for the stop
            rt.block_on(async move {
                let _ = stop_signal.await;
            });
            // what is still running (sessions of a process that is exiting) is dropped
            rt.shutdown_timeout(SHUTDOWN_GRACE);
        })?;
        Ok(Running::Dedicated { handle, stop, thread })
    }

    /// The running runtime's handle, starting it first if need be (work may come before the
    /// first `start`), but not once it has been shut down.
    fn handle(&self) -> napi::Result<Handle> {
        let mut st = self.lock();
        if st.stopped {
            return Err(napi::Error::from_reason("ferrossh's runtime has been shut down"));
        }
        if st.running.is_none() {
            st.running = Some(self.launch().map_err(|e| napi::Error::from_reason(format!("ferrossh could not start its runtime: {e}")))?);
        }
        st.running.as_ref().map(|r| r.handle().clone()).ok_or_else(|| napi::Error::from_reason("ferrossh's runtime is not running"))
    }
}

// SAFETY: `shutdown` returns only after the runtime's own thread has been joined (or, for the
// multi-thread pool, after `shutdown_timeout`, which joins its workers), so no task of this
// image runs afterwards; blocking work still running past the grace period is the one
// exception, as with napi-rs's own tokio runtime.
/// What napi-rs holds: the static runtime.
struct Registered(&'static Core);

unsafe impl AsyncRuntime for Registered {
    fn spawn(&self, task: AsyncRuntimeTask) -> std::result::Result<(), AsyncRuntimeRejection<AsyncRuntimeTask>> {
        match self.0.handle() {
            Ok(h) => {
                drop(h.spawn(task));
                Ok(())
            }
            Err(e) => Err(AsyncRuntimeRejection::new(task, e)),
        }
    }

    fn block_on(&self, future: Pin<&mut dyn Future<Output = ()>>) -> napi::Result<()> {
        if Handle::try_current().is_ok() {
            return Err(napi::Error::from_reason("block_on called from inside ferrossh's runtime"));
        }
        // the runtime's own thread drives sockets and timers meanwhile
        self.0.handle()?.block_on(future);
        Ok(())
    }

    fn start(&self) -> napi::Result<()> {
        self.0.lock().stopped = false;
        self.0.handle().map(drop)
    }

    fn shutdown(&self) -> napi::Result<()> {
        let running = {
            let mut st = self.0.lock();
            st.stopped = true;
            st.running.take()
        };
        match running {
            Some(Running::Dedicated { stop, thread, .. }) => {
                let _ = stop.send(());
                // never join ourselves (a shutdown reached from a task of this runtime)
                if thread.thread().id() != std::thread::current().id() {
                    let _ = thread.join();
                }
            }
            Some(Running::Pool(rt)) => rt.shutdown_timeout(SHUTDOWN_GRACE),
            None => {}
        }
        Ok(())
    }

    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send + 'static>) -> std::result::Result<(), AsyncRuntimeRejection<Box<dyn FnOnce() + Send + 'static>>> {
        match self.0.handle() {
            Ok(h) => {
                drop(h.spawn_blocking(work));
                Ok(())
            }
            Err(e) => Err(AsyncRuntimeRejection::new(work, e)),
        }
    }
}
