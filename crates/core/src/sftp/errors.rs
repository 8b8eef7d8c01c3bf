//! SFTP status codes (draft-ietf-secsh-filexfer-02 §7) as fs-style error codes. Version 3
//! has no EEXIST/ENOTEMPTY/ENOTDIR/EISDIR statuses (OpenSSH answers SSH_FX_FAILURE), so
//! `refine` looks at the path to tell them apart, as users of fs expect.

use russh_sftp::client::error::Error as SftpErr;
use russh_sftp::protocol::StatusCode;

use super::Sftp;
use crate::error::Error;

fn code_for(status: &StatusCode) -> (&'static str, u32) {
    match status {
        StatusCode::Ok => ("OK", 0),
        StatusCode::Eof => ("EOF", 1),
        StatusCode::NoSuchFile => ("ENOENT", 2),
        StatusCode::PermissionDenied => ("EACCES", 3),
        StatusCode::Failure => ("EIO", 4),
        StatusCode::BadMessage => ("EBADMSG", 5),
        StatusCode::NoConnection => ("ENOTCONN", 6),
        StatusCode::ConnectionLost => ("ECONNRESET", 7),
        StatusCode::OpUnsupported => ("ENOSYS", 8),
    }
}

pub fn sftp_error(e: SftpErr, path: Option<&str>, op: &str) -> Error {
    let at = path.map(|p| format!(" '{p}'")).unwrap_or_default();
    match e {
        SftpErr::Status(s) => {
            let (code, status) = code_for(&s.status_code);
            let detail = if s.error_message.is_empty() { s.status_code.to_string() } else { s.error_message.clone() };
            Error::Sftp { code: code.into(), status, message: format!("{code}: {op}{at}: {detail}"), path: path.map(str::to_string) }
        }
        SftpErr::Timeout => Error::Sftp { code: "ETIMEDOUT".into(), status: 0, message: format!("ETIMEDOUT: {op}{at}: the server did not answer"), path: path.map(str::to_string) },
        SftpErr::Limited(m) => Error::Sftp { code: "E2BIG".into(), status: 0, message: format!("E2BIG: {op}{at}: {m}"), path: path.map(str::to_string) },
        SftpErr::IO(m) | SftpErr::UnexpectedBehavior(m) => {
            Error::Sftp { code: "ECONNRESET".into(), status: 7, message: format!("ECONNRESET: {op}{at}: the SFTP session ended ({m})"), path: path.map(str::to_string) }
        }
        SftpErr::UnexpectedPacket => Error::Sftp { code: "EPROTO".into(), status: 5, message: format!("EPROTO: {op}{at}: unexpected reply from the server"), path: path.map(str::to_string) },
    }
}

fn with_code(e: Error, code: &str, why: &str) -> Error {
    match e {
        Error::Sftp { status, path, message, .. } => {
            let rest = message.split_once(": ").map(|x| x.1).unwrap_or(&message).to_string();
            Error::Sftp { code: code.into(), status, message: format!("{code}: {rest} ({why})"), path }
        }
        other => other,
    }
}

/// Turns a generic failure into the fs code the situation means.
pub(crate) async fn refine(sftp: &Sftp, e: SftpErr, path: &str, op: &str) -> Error {
    let failure = matches!(&e, SftpErr::Status(s) if s.status_code == StatusCode::Failure);
    // OpenSSH reports ENOTDIR as "no such file"
    let missing = matches!(&e, SftpErr::Status(s) if s.status_code == StatusCode::NoSuchFile);
    let base = sftp_error(e, Some(path), op);
    if missing && matches!(op, "rmdir" | "opendir") {
        return match sftp.lstat(path).await {
            Ok(s) if !s.is_dir() => with_code(base, "ENOTDIR", "not a directory"),
            _ => base,
        };
    }
    if !failure {
        return base;
    }
    let stat = sftp.lstat(path).await.ok();
    match op {
        "mkdir" if stat.is_some() => with_code(base, "EEXIST", "it already exists"),
        "rmdir" => match stat {
            Some(s) if !s.is_dir() => with_code(base, "ENOTDIR", "not a directory"),
            Some(_) => with_code(base, "ENOTEMPTY", "the directory is not empty"),
            None => base,
        },
        "unlink" if stat.as_ref().is_some_and(|s| s.is_dir()) => with_code(base, "EISDIR", "it is a directory"),
        "open" if stat.as_ref().is_some_and(|s| s.is_dir()) => with_code(base, "EISDIR", "it is a directory"),
        "open" if stat.is_some() => with_code(base, "EEXIST", "it already exists"),
        _ => base,
    }
}
