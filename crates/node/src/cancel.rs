use ferrossh_core::CancelToken;
use napi_derive::napi;

/// Native side of an AbortSignal: lib/ calls `cancel()` from the signal's 'abort' event.
#[napi]
pub struct NativeCancel {
    pub(crate) token: CancelToken,
}

#[napi]
impl NativeCancel {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        NativeCancel { token: CancelToken::new() }
    }

    #[napi]
    pub fn cancel(&self) {
        self.token.cancel();
    }
}
