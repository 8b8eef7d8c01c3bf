//! SFTP status codes (draft-ietf-secsh-filexfer-02 §7) as fs-style error codes. Version 3
//! has no EEXIST/ENOTEMPTY/ENOTDIR/EISDIR statuses (OpenSSH answers SSH_FX_FAILURE), so
//! `refine` looks at the path to tell them apart, as users of fs expect.

use russh_sftp::client::error::Error as SftpErr;
use russh_sftp::protocol::StatusCode;

use super::Sftp;
use crate::error::Error;

/// The longest name (one path component) Linux and the BSDs take.
const NAME_MAX: usize = 255;

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
            Error::Sftp { code: code.into(), status, message: format!("{code}: {op}{at}: {detail}"), path: path.map(str::to_string), reason: None }
        }
        SftpErr::Timeout => Error::Sftp { code: "ETIMEDOUT".into(), status: 0, message: format!("ETIMEDOUT: {op}{at}: the server did not answer"), path: path.map(str::to_string), reason: None },
        SftpErr::Limited(m) => Error::Sftp { code: "E2BIG".into(), status: 0, message: format!("E2BIG: {op}{at}: {m}"), path: path.map(str::to_string), reason: None },
        SftpErr::IO(m) | SftpErr::UnexpectedBehavior(m) => {
            let reason = super::ended_reason(&m).map(str::to_string);
            Error::Sftp { code: "ECONNRESET".into(), status: 7, message: format!("ECONNRESET: {op}{at}: the SFTP session ended ({m})"), path: path.map(str::to_string), reason }
        }
        SftpErr::UnexpectedPacket => Error::Sftp { code: "EPROTO".into(), status: 5, message: format!("EPROTO: {op}{at}: unexpected reply from the server"), path: path.map(str::to_string), reason: None },
    }
}

pub(crate) fn with_code(e: Error, code: &str, why: &str) -> Error {
    match e {
        Error::Sftp { status, path, message, reason, .. } => {
            let rest = message.split_once(": ").map(|x| x.1).unwrap_or(&message).to_string();
            Error::Sftp { code: code.into(), status, message: format!("{code}: {rest} ({why})"), path, reason }
        }
        other => other,
    }
}

/// Turns a generic failure into the fs code the situation means.
pub(crate) async fn refine(sftp: &Sftp, e: SftpErr, path: &str, op: &str) -> Error {
    let failure = matches!(&e, SftpErr::Status(s) if s.status_code == StatusCode::Failure);
    // OpenSSH reports ENOTDIR as "no such file"
    let missing = matches!(&e, SftpErr::Status(s) if s.status_code == StatusCode::NoSuchFile);
    let bad_message = matches!(&e, SftpErr::Status(s) if s.status_code == StatusCode::BadMessage);
    let base = sftp_error(e, Some(path), op);
    // a name longer than any file system takes (OpenSSH answers "bad message")
    if (bad_message || failure || missing) && path.split('/').any(|c| c.len() > NAME_MAX) {
        return with_code(base, "ENAMETOOLONG", &format!("a name is longer than {NAME_MAX} bytes"));
    }
    // a trailing slash asks for a directory: a file there is ENOTDIR, and a file created by
    // that name EISDIR, as open(2) says (OpenSSH answers "no such file" or "failure")
    let bare = path.trim_end_matches('/');
    if bare.len() < path.len() && !bare.is_empty() && (missing || failure) {
        match sftp.stat(bare).await {
            Ok(s) if !s.is_dir() => return with_code(base, "ENOTDIR", "not a directory"),
            Err(_) if failure && op == "open" => return with_code(base, "EISDIR", "a name ending in '/' can only be a directory"),
            _ => {}
        }
    }
    if missing && matches!(op, "rmdir" | "opendir") {
        return match sftp.lstat(path).await {
            Ok(s) if !s.is_dir() => with_code(base, "ENOTDIR", "not a directory"),
            _ => not_dir_on_the_way(sftp, base, path).await,
        };
    }
    if missing {
        return not_dir_on_the_way(sftp, base, path).await;
    }
    if op == "readlink" && (failure || bad_message) {
        return match sftp.lstat(path).await {
            Ok(s) if !s.is_symlink() => with_code(base, "EINVAL", "not a symbolic link"),
            _ => base,
        };
    }
    if !failure {
        return base;
    }
    let stat = sftp.lstat(path).await.ok();
    // a truncate or an open writes what a link leads to: a link to a directory is a directory
    // to them (and an existing name is no failure of an open without 'x': open_file sees to it)
    if matches!(op, "truncate" | "open") {
        let leads_to_dir = match &stat {
            Some(s) if s.is_symlink() => sftp.stat(path).await.is_ok_and(|s| s.is_dir()),
            Some(s) => s.is_dir(),
            None => false,
        };
        return if leads_to_dir { with_code(base, "EISDIR", "it is a directory") } else { base };
    }
    match op {
        "mkdir" if stat.is_some() => with_code(base, "EEXIST", "it already exists"),
        "rmdir" => match stat {
            Some(s) if !s.is_dir() => with_code(base, "ENOTDIR", "not a directory"),
            Some(_) => with_code(base, "ENOTEMPTY", "the directory is not empty"),
            None => base,
        },
        "unlink" if stat.as_ref().is_some_and(|s| s.is_dir()) => with_code(base, "EISDIR", "it is a directory"),
        _ => base,
    }
}

/// A missing path one of whose parents is a file: ENOTDIR, as the kernel names it (OpenSSH
/// answers "no such file" for both). Stat and lstat are left as they are (an `exists()` of
/// a missing name costs no further requests).
async fn not_dir_on_the_way(sftp: &Sftp, base: Error, path: &str) -> Error {
    let mut p = path.trim_end_matches('/');
    for _ in 0..8 {
        let Some(i) = p.rfind('/') else { return base };
        p = &p[..i];
        if p.is_empty() {
            return base;
        }
        match sftp.lstat(p).await {
            Ok(s) if !s.is_dir() && !s.is_symlink() => return with_code(base, "ENOTDIR", &format!("'{p}' is not a directory")),
            Ok(_) => return base,
            Err(_) => {}
        }
    }
    base
}

/// rename, hardlink and symlink failures as fs names them, from what both ends are.
pub(crate) async fn refine_two(sftp: &Sftp, e: Error, op: &str, from: &str, to: &str) -> Error {
    let code = match &e {
        Error::Sftp { code, .. } => code.clone(),
        _ => return e,
    };
    if !matches!(code.as_str(), "EIO" | "ENOENT" | "EBADMSG") {
        return e;
    }
    let dest = sftp.lstat(to).await.ok();
    if op != "rename" {
        return match dest {
            Some(_) => with_code(e, "EEXIST", "the new name already exists"),
            None if code == "ENOENT" => not_dir_on_the_way(sftp, e, to).await,
            None => e,
        };
    }
    let Ok(src) = sftp.lstat(from).await else { return not_dir_on_the_way(sftp, e, from).await };
    let (f, t) = (from.trim_end_matches('/'), to.trim_end_matches('/'));
    match dest {
        _ if src.is_dir() && t.len() > f.len() && t.starts_with(f) && t.as_bytes()[f.len()] == b'/' => with_code(e, "EINVAL", "a directory cannot move into itself"),
        Some(d) if !src.is_dir() && d.is_dir() => with_code(e, "EISDIR", "the new name is a directory"),
        Some(d) if src.is_dir() && !d.is_dir() => with_code(e, "ENOTDIR", "the new name is not a directory"),
        Some(d) if src.is_dir() && d.is_dir() => with_code(e, "ENOTEMPTY", "the directory at the new name is not empty"),
        None if code == "ENOENT" => not_dir_on_the_way(sftp, e, to).await,
        _ => e,
    }
}

/// A failed read: on a directory's handle (opened for reading, as OpenSSH allows) it is
/// EISDIR, as read(2) says.
pub(crate) async fn read_failure(sftp: &Sftp, e: SftpErr, handle: &str) -> Error {
    let failure = matches!(&e, SftpErr::Status(s) if s.status_code == StatusCode::Failure);
    let path = sftp.path_of(handle);
    let base = sftp_error(e, path.as_deref(), "read");
    if failure && sftp.fstat(handle).await.is_ok_and(|s| s.is_dir()) {
        return with_code(base, "EISDIR", "it is a directory");
    }
    base
}
