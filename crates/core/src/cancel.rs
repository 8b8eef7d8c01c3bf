//! Cancellation for AbortSignal: the binding flips the token, the operation in flight
//! stops at its next await and reports `Error::Aborted`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
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
}
