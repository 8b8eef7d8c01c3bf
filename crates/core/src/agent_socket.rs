//! Connecting to a local SSH agent: a Unix socket (OpenSSH's `SSH_AUTH_SOCK`); on Windows,
//! OpenSSH's agent named pipe.

use std::path::Path;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Error, Result};

pub trait AgentStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AgentStream for T {}

#[cfg(unix)]
pub async fn connect(path: &Path) -> Result<Box<dyn AgentStream>> {
    tokio::net::UnixStream::connect(path)
        .await
        .map(|s| Box::new(s) as Box<dyn AgentStream>)
        .map_err(|e| Error::config("agent", format!("cannot reach the SSH agent at {}: {e}", path.display())))
}

#[cfg(windows)]
pub async fn connect(path: &Path) -> Result<Box<dyn AgentStream>> {
    use tokio::net::windows::named_pipe::ClientOptions;
    ClientOptions::new()
        .open(path)
        .map(|s| Box::new(s) as Box<dyn AgentStream>)
        .map_err(|e| Error::config("agent", format!("cannot reach the SSH agent at {}: {e}", path.display())))
}
