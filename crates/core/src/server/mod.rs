//! An embedded SSH server on russh's server side: host keys, authentication through
//! callbacks, session channels (exec, shell, subsystems) handed to the embedder with the
//! same JS-drained receive buffers the client uses, a built-in SFTP server confined to a
//! root directory, forwarding behind authorisation hooks, and limits that keep a hostile
//! peer (or a crowd of them) from starving well-behaved clients.
//!
//! The embedder (the napi binding) implements [`ServerCallbacks`]; every decision it makes
//! arrives as a future that core bounds with a timeout, so a callback that never answers is
//! a refusal, not a stuck connection.

mod bridge;
mod channel;
mod config;
mod conn;
mod forward;
mod handler;
mod kbd;
mod listener;
mod root;
mod sftp;

use std::net::SocketAddr;
use std::sync::Arc;

pub use channel::{ChannelEvent, ChannelEvents, ServerChannel};
pub use config::{HostKeySource, ServerLimits, ServerOptions, SftpOptions};
pub use kbd::{PromptRound, Prompter};
pub use listener::Server;

use crate::options::{BoxFuture, Secret};

/// Who is connected: the same for every request of one connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Server-wide connection number, increasing from 1.
    pub id: u64,
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

/// A public key a client offered for authentication.
#[derive(Debug, Clone)]
pub struct OfferedKey {
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, …
    pub algorithm: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// authorized_keys style `type base64`, to compare with a stored line.
    pub public_key: String,
}

/// What is being tried.
pub enum AuthAttemptKind {
    Password(Secret),
    PublicKey(OfferedKey),
    /// The embedder asks its questions through the prompter, as many rounds as it likes.
    KeyboardInteractive(Prompter),
}

impl AuthAttemptKind {
    pub fn method(&self) -> &'static str {
        match self {
            AuthAttemptKind::Password(_) => "password",
            AuthAttemptKind::PublicKey(_) => "publickey",
            AuthAttemptKind::KeyboardInteractive(_) => "keyboard-interactive",
        }
    }
}

/// One authentication attempt for the embedder to decide.
pub struct AuthRequest {
    pub peer: Arc<PeerInfo>,
    pub user: String,
    pub kind: AuthAttemptKind,
}

/// A pseudo-terminal the client asked for (RFC 4254 §6.2): the same fields a client sends.
pub type PtyInfo = crate::options::PtyOptions;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionKind {
    Exec(String),
    Shell,
    Subsystem(String),
}

/// A session channel that asked to start something, with what it set up first.
#[derive(Debug, Clone)]
pub struct SessionStart {
    pub peer: Arc<PeerInfo>,
    pub user: String,
    pub kind: SessionKind,
    pub env: Vec<(String, String)>,
    pub pty: Option<PtyInfo>,
}

/// A forwarding request for the embedder's authorisation hook.
#[derive(Debug, Clone)]
pub enum ForwardKind {
    /// direct-tcpip (`ssh -L`, `-D`, `-W`): the client wants the server to connect here.
    Direct { host: String, port: u32, originator_address: String, originator_port: u32 },
    /// tcpip-forward (`ssh -R`): the client wants the server to listen here.
    Remote { address: String, port: u32 },
}

#[derive(Debug, Clone)]
pub struct ForwardRequest {
    pub peer: Arc<PeerInfo>,
    pub user: String,
    pub kind: ForwardKind,
}

/// The embedder's decisions. Each returns a future; core bounds it with a timeout and
/// treats a timeout like `false`.
pub trait ServerCallbacks: Send + Sync + 'static {
    /// Accept (true) or refuse an authentication attempt.
    fn auth(&self, req: AuthRequest) -> BoxFuture<bool>;
    /// Start a session: true once the embedder took the channel (the request is then
    /// answered with success); false refuses the request.
    fn session(&self, req: SessionStart, channel: Arc<ServerChannel>) -> BoxFuture<bool>;
    /// Authorise a forwarding request.
    fn forward(&self, req: ForwardRequest) -> BoxFuture<bool>;
    /// The number of live connections went from 0 to 1 or back ([`Server::live_connections`]
    /// says which): an embedder keeps its process alive while there are any, as a
    /// `net.Server`'s sockets do.
    fn connections_changed(&self) {}
}

/// A host key the server presents.
#[derive(Debug, Clone)]
pub struct HostKeyDescription {
    pub algorithm: String,
    pub fingerprint: String,
    pub public_key: String,
}
