//! Connection calls that settle through a callback `(err, value)` instead of a napi promise.
//!
//! A `#[napi] async fn` keeps Node's event loop alive until it settles, whatever the
//! connection's `ref()`/`unref()` says: an `exec('sleep 1000')` on an unref()'d connection
//! would hold the process for as long as the command runs. A net.Socket's pending I/O follows
//! the socket's ref instead, and so do these calls: each one's threadsafe function is ref'd
//! while its connection is, and `set_ref` turns them all with the connection. A ref'd call
//! also outlives the connection's own handle, so a call that fails because the connection
//! ended still delivers its error before the process may exit.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::{Function, ToNapiValue};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};

/// Called once as `done(null, value)` or `done(err)`.
type Settle<T> = ThreadsafeFunction<T, (), T, Status, true>;

/// A pending call's callback, reachable from `set_ref` until the call settles.
trait Hold: Send + Sync {
    fn hold(&self, env: &Env, keep: bool);
}

struct Slot<T: ToNapiValue + Send + 'static>(Mutex<Option<Settle<T>>>);

impl<T: ToNapiValue + Send + 'static> Slot<T> {
    fn take(&self) -> Option<Settle<T>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl<T: ToNapiValue + Send + 'static> Hold for Slot<T> {
    // `refer`/`unref` are napi_ref/unref_threadsafe_function, what is meant here; the
    // deprecation points at reference counting by clones, which is not
    #[allow(deprecated)]
    fn hold(&self, env: &Env, keep: bool) {
        if let Some(f) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            // fails only while Node tears the function down, when holding no longer matters
            let _ = if keep { f.refer(env) } else { f.unref(env) };
        }
    }
}

#[derive(Default)]
struct State {
    unrefd: bool,
    next: u64,
    calls: HashMap<u64, Arc<dyn Hold>>,
}

/// One connection's calls in flight.
#[derive(Default)]
pub(crate) struct Pending {
    state: Mutex<State>,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `work` on the runtime and settles `done` with its result. Called on the
    /// JavaScript thread (it creates the threadsafe function there).
    #[allow(deprecated)] // see `hold`
    pub fn start<T, F>(self: &Arc<Self>, env: &Env, done: Function<'_, T, ()>, work: F) -> napi::Result<()>
    where
        T: ToNapiValue + Send + 'static,
        F: Future<Output = napi::Result<T>> + Send + 'static,
    {
        let mut f: Settle<T> = done.build_threadsafe_function::<T>().callee_handled::<true>().build()?;
        let mut st = self.lock();
        if st.unrefd {
            f.unref(env)?;
        }
        let slot = Arc::new(Slot(Mutex::new(Some(f))));
        let id = st.next;
        st.next += 1;
        st.calls.insert(id, Arc::clone(&slot) as Arc<dyn Hold>);
        drop(st);
        let me = Arc::clone(self);
        let spawned = crate::runtime::spawn(async move {
            let result = work.await;
            me.lock().calls.remove(&id);
            if let Some(f) = slot.take() {
                f.call(result, ThreadsafeFunctionCallMode::NonBlocking);
                // dropping `f` releases it once the call has been delivered
            }
        });
        if spawned.is_err() {
            // the runtime is gone (the environment is shutting down): the error is thrown
            // here, and the callback must not stay registered, ref'd, with nothing to call it
            self.lock().calls.remove(&id);
        }
        spawned
    }

    /// Holds the process for every pending call (`keep`) or for none, and so for later ones.
    pub fn set_ref(&self, env: &Env, keep: bool) {
        let mut st = self.lock();
        st.unrefd = !keep;
        for call in st.calls.values() {
            call.hold(env, keep);
        }
    }
}
