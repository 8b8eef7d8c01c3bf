//! Cancellation for AbortSignal: the binding flips the token, the operation in flight
//! stops at its next await and reports `Error::Aborted`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::error::{Error, Result};

#[derive(Clone, Default)]
pub struct CancelToken(Arc<Inner>);

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CancelToken").field(&self.is_cancelled()).finish()
    }
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    pub async fn cancelled(&self) {
        loop {
            let n = self.0.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            n.await;
        }
    }

    /// Runs `f` unless/until the token is cancelled.
    pub async fn run<T>(token: Option<&CancelToken>, f: impl Future<Output = Result<T>>) -> Result<T> {
        match token {
            None => f.await,
            Some(t) => {
                if t.is_cancelled() {
                    return Err(Error::Aborted);
                }
                tokio::select! {
                    r = f => r,
                    _ = t.cancelled() => Err(Error::Aborted),
                }
            }
        }
    }
}

/// Ends what a connect attempt left running unless the attempt succeeded. russh runs the
/// session in a task of its own from the server's version line on: that task owns the socket
/// and the handler (and through it a host key verifier that may be waiting on a prompt), and
/// it outlives a connect future that timed out, was aborted or failed. Armed for the whole
/// connect; fired when the attempt ends without a client (see `Armed`), disarmed when it
/// succeeds. Once fired, the session's stream fails every read and write and the host key
/// check gives up, so the task ends, its socket closes and the verifier is released.
#[derive(Clone, Default)]
pub(crate) struct KillSwitch(Arc<Switch>);

#[derive(Default)]
struct Switch {
    state: AtomicU8,
    notify: Notify,
}

const ARMED: u8 = 0;
const FIRED: u8 = 1;
const DISARMED: u8 = 2;

impl KillSwitch {
    /// Fires unless already disarmed.
    pub(crate) fn fire(&self) {
        if self.0.state.compare_exchange(ARMED, FIRED, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            self.0.notify.notify_waiters();
        }
    }

    /// Disarms unless already fired; true when it is disarmed.
    pub(crate) fn disarm(&self) -> bool {
        match self.0.state.compare_exchange(ARMED, DISARMED, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => true,
            Err(now) => now == DISARMED,
        }
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.0.state.load(Ordering::SeqCst) == FIRED
    }

    pub(crate) fn is_disarmed(&self) -> bool {
        self.0.state.load(Ordering::SeqCst) == DISARMED
    }

    /// Resolves once fired; never after a disarm.
    pub(crate) async fn fired(&self) {
        loop {
            let n = self.0.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.is_fired() {
                return;
            }
            n.await;
        }
    }
}

/// Fires its switch when dropped undisarmed: every way out of a connect but success (an
/// error returned, a deadline, an abort dropping the future) ends the session task with it.
pub(crate) struct Armed(KillSwitch);

impl Armed {
    pub(crate) fn new(switch: KillSwitch) -> Self {
        Armed(switch)
    }

    /// The connect succeeded: the session lives on with the client. (Only this guard's drop
    /// fires the switch, so nothing can have fired it before.)
    pub(crate) fn disarm(self) {
        self.0.disarm();
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        self.0.fire();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancel_interrupts_a_pending_future() {
        let t = CancelToken::new();
        let t2 = t.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            t2.cancel();
        });
        let r: Result<()> = CancelToken::run(Some(&t), std::future::pending()).await;
        assert!(matches!(r, Err(Error::Aborted)));
        let r: Result<u8> = CancelToken::run(Some(&t), async { Ok(1) }).await;
        assert!(matches!(r, Err(Error::Aborted)), "already cancelled");
    }

    #[tokio::test]
    async fn a_kill_switch_fires_when_its_guard_is_dropped_and_never_after_a_disarm() {
        let switch = KillSwitch::default();
        let waiter = tokio::spawn({
            let s = switch.clone();
            async move { s.fired().await }
        });
        drop(Armed::new(switch.clone()));
        assert!(switch.is_fired());
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.expect("fired() resolved").expect("task");
        assert!(!switch.disarm(), "a fired switch stays fired");

        let kept = KillSwitch::default();
        Armed::new(kept.clone()).disarm();
        assert!(kept.is_disarmed() && !kept.is_fired());
        kept.fire();
        assert!(!kept.is_fired(), "a disarmed switch does not fire");
    }
}
