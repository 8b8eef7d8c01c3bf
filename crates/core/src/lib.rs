//! ferrossh-core: the SSH logic of ferrossh on top of russh. No JavaScript here; the
//! napi binding in `crates/node` only adapts these types.

pub mod agent_socket;
pub mod algorithms;
mod auth;
pub mod bridge;
pub mod cancel;
pub mod channel;
mod civil;
pub mod client;
pub mod error;
pub mod files;
pub mod forward;
mod host_key;
pub mod keys;
pub mod known_hosts;
pub mod options;
mod pipes;
mod quickack;
pub mod server;
pub mod sftp;
pub mod ssh_config;
pub mod transport;
pub mod x11;

pub use cancel::CancelToken;
pub use channel::{BufferLimits, Channel, ChannelShared, ExitInfo, LendBuf, ReadResult, Wake, DRAIN, EXITED, RELEASED};
pub use client::{Client, ExecOptions, ExecOutput, Negotiated, SessionRequest, X11Options};
pub use error::{AuthAttempt, Error, HostKeyReason, Result};
pub use options::*;
