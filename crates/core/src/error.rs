//! One error type for the whole core, one variant per row of the error table in DESIGN.md.
//! The binding turns `kind()` into the JS `code` and the fields into properties; messages
//! say what happened and what to do, and never carry secrets.

use std::fmt;
use std::path::PathBuf;

/// Why a host key was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyReason {
    Unknown,
    Changed,
    Revoked,
    Rejected,
}

impl HostKeyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HostKeyReason::Unknown => "unknown",
            HostKeyReason::Changed => "changed",
            HostKeyReason::Revoked => "revoked",
            HostKeyReason::Rejected => "rejected",
        }
    }
}

/// One authentication method tried, and what the server said.
#[derive(Debug, Clone)]
pub struct AuthAttempt {
    pub method: String,
    /// e.g. "rejected", "partial", "wrong passphrase", "no agent", "unsupported by server"
    pub outcome: String,
    /// Which key or identity, when there is one (a fingerprint or a file name, never a secret).
    pub detail: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Error {
    Connect { address: String, cause: String, errno: Option<String> },
    HostKey {
        reason: HostKeyReason,
        host: String,
        port: u16,
        algorithm: String,
        fingerprint: String,
        expected: Vec<String>,
        file: Option<PathBuf>,
        line: Option<usize>,
        message: String,
    },
    Negotiation { list: String, ours: Vec<String>, theirs: Vec<String> },
    Auth { attempts: Vec<AuthAttempt>, allowed: Vec<String>, message: String },
    Timeout { phase: String, ms: u64 },
    Aborted,
    Channel { reason: String, message: String },
    Command { message: String },
    Disconnect { reason: String, description: String },
    Config { option: Option<String>, file: Option<PathBuf>, line: Option<usize>, message: String },
    Protocol { message: String },
    /// A jump host (`hop`, 0-based, and its `host`), a proxy command (with its stderr) or a proxy failed.
    Proxy { hop: Option<usize>, host: Option<String>, command: Option<String>, stderr: Option<String>, message: String, cause: Option<Box<Error>> },
    Forward { spec: String, message: String },
    /// An SFTP request failed: `code` is fs-style (ENOENT, EACCES, …), `status` the SFTP status.
    /// `reason`: for a call cut short by its connection's end, the DisconnectError reason
    /// (`closed`: your own close(); `connection-lost`).
    Sftp { code: String, status: u32, message: String, path: Option<String>, reason: Option<String> },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The stable JS error code (DESIGN.md, "Errors").
    pub fn code(&self) -> &'static str {
        match self {
            Error::Connect { .. } => "ERR_SSH_CONNECT",
            Error::HostKey { .. } => "ERR_SSH_HOST_KEY",
            Error::Negotiation { .. } => "ERR_SSH_NEGOTIATION",
            Error::Auth { .. } => "ERR_SSH_AUTH",
            Error::Timeout { .. } => "ERR_SSH_TIMEOUT",
            Error::Aborted => "ABORT_ERR",
            Error::Channel { .. } => "ERR_SSH_CHANNEL",
            Error::Command { .. } => "ERR_SSH_COMMAND",
            Error::Disconnect { .. } | Error::Protocol { .. } => "ERR_SSH_DISCONNECTED",
            Error::Config { .. } => "ERR_SSH_CONFIG",
            Error::Proxy { .. } => "ERR_SSH_PROXY",
            Error::Forward { .. } => "ERR_SSH_FORWARD",
            Error::Sftp { .. } => "ERR_SSH_SFTP",
        }
    }

    pub fn config(option: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Config { option: Some(option.into()), file: None, line: None, message: message.into() }
    }

    pub fn disconnected(description: impl Into<String>) -> Error {
        Error::Disconnect { reason: "connection-lost".into(), description: description.into() }
    }

    pub fn timeout(phase: &str, ms: u64) -> Error {
        Error::Timeout { phase: phase.into(), ms }
    }

    pub fn channel(reason: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Channel { reason: reason.into(), message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect { address, cause, .. } => write!(f, "cannot connect to {address}: {cause}"),
            Error::HostKey { message, .. } => f.write_str(message),
            Error::Negotiation { list, ours, theirs } => write!(
                f,
                "no common {list} algorithm: we offered [{}], the server offered [{}]",
                ours.join(", "),
                theirs.join(", ")
            ),
            Error::Auth { message, .. } => f.write_str(message),
            Error::Timeout { phase, ms: 0 } if phase == "keepalive" => {
                f.write_str("keepalive timed out: the server stopped answering keepalives (keepaliveCountMax of them, keepaliveInterval apart)")
            }
            Error::Timeout { phase, ms: 0 } => write!(f, "{phase} timed out"),
            Error::Timeout { phase, ms } => write!(f, "{phase} timed out after {ms} ms"),
            Error::Aborted => f.write_str("The operation was aborted"),
            Error::Channel { message, .. } => f.write_str(message),
            Error::Command { message } => f.write_str(message),
            Error::Disconnect { description, .. } => write!(f, "connection closed: {description}"),
            Error::Config { option, file, line, message } => {
                match (file, line) {
                    (Some(file), Some(line)) => write!(f, "{}:{line}: ", file.display())?,
                    (Some(file), None) => write!(f, "{}: ", file.display())?,
                    _ => {}
                }
                match option {
                    Some(option) if !message.contains(option.as_str()) => write!(f, "{option}: {message}"),
                    _ => f.write_str(message),
                }
            }
            Error::Protocol { message } => write!(f, "protocol error: {message}"),
            Error::Proxy { message, .. } => f.write_str(message),
            Error::Forward { spec, message } => write!(f, "forwarding {spec}: {message}"),
            Error::Sftp { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

/// Maps russh's error into ours. Errors that carry more context (host key, auth,
/// negotiation) are built where that context exists; this is the fallback.
impl From<russh::Error> for Error {
    fn from(e: russh::Error) -> Error {
        use russh::Error as R;
        match e {
            R::NoCommonAlgo { kind, ours, theirs } => Error::Negotiation {
                list: algorithm_kind_name(&format!("{kind:?}")),
                ours,
                theirs,
            },
            R::ChannelOpenFailure(reason) => {
                let reason = channel_open_failure_name(&reason);
                Error::channel(reason, format!("the server refused to open the channel ({reason})"))
            }
            R::KeepaliveTimeout => Error::Timeout { phase: "keepalive".into(), ms: 0 },
            R::InactivityTimeout => Error::Timeout { phase: "idle".into(), ms: 0 },
            R::ConnectionTimeout => Error::Timeout { phase: "connect".into(), ms: 0 },
            // our own error carried through russh's stream (a jump hop's channel closing): as it is
            R::IO(io) => match io.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
                Some(ours) => ours.clone(),
                None => Error::disconnected(io.to_string()),
            },
            R::Disconnect | R::HUP | R::SendError => Error::disconnected("the connection was closed"),
            R::PacketAuth | R::DecryptionError => {
                Error::disconnected("packet authentication failed (corrupted or tampered stream)")
            }
            other => Error::Protocol { message: other.to_string() },
        }
    }
}

fn algorithm_kind_name(debug: &str) -> String {
    match debug {
        "Kex" => "kex",
        "Key" => "hostKey",
        "Cipher" => "cipher",
        "Mac" => "mac",
        "Compression" => "compression",
        _ => "algorithm",
    }
    .to_string()
}

pub(crate) fn channel_open_failure_name(reason: &russh::ChannelOpenFailure) -> &'static str {
    match reason {
        russh::ChannelOpenFailure::AdministrativelyProhibited => "administratively-prohibited",
        russh::ChannelOpenFailure::ConnectFailed => "connect-failed",
        russh::ChannelOpenFailure::UnknownChannelType => "unknown-channel-type",
        russh::ChannelOpenFailure::ResourceShortage => "resource-shortage",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_design_table() {
        let cases: Vec<(Error, &str)> = vec![
            (Error::Connect { address: "a:1".into(), cause: "x".into(), errno: None }, "ERR_SSH_CONNECT"),
            (Error::timeout("connect", 5), "ERR_SSH_TIMEOUT"),
            (Error::Aborted, "ABORT_ERR"),
            (Error::channel("connect-failed", "m"), "ERR_SSH_CHANNEL"),
            (Error::disconnected("gone"), "ERR_SSH_DISCONNECTED"),
            (Error::config("port", "bad"), "ERR_SSH_CONFIG"),
            (Error::Negotiation { list: "kex".into(), ours: vec![], theirs: vec![] }, "ERR_SSH_NEGOTIATION"),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code, "{e}");
        }
    }

    #[test]
    fn config_message_names_file_and_line() {
        let e = Error::Config {
            option: Some("IdentityFile".into()),
            file: Some("/tmp/cfg".into()),
            line: Some(3),
            message: "missing argument".into(),
        };
        assert_eq!(e.to_string(), "/tmp/cfg:3: IdentityFile: missing argument");
    }

    #[test]
    fn negotiation_lists_both_sides() {
        let e: Error = russh::Error::NoCommonAlgo {
            kind: russh::AlgorithmKind::Cipher,
            ours: vec!["aes128-gcm@openssh.com".into()],
            theirs: vec!["aes256-ctr".into()],
        }
        .into();
        assert_eq!(e.code(), "ERR_SSH_NEGOTIATION");
        assert!(e.to_string().contains("cipher"));
        assert!(e.to_string().contains("aes256-ctr"));
    }
}
