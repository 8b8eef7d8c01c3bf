//! Filesystem work behind the SFTP server's requests: status replies, attribute
//! conversion, opening without following a final symlink, positioned reads and writes,
//! statvfs, and directory listing through a checked directory handle.

use std::io;
use std::path::PathBuf;

use russh_sftp::protocol::{FileAttributes, OpenFlags, Status, StatusCode};
use russh_sftp::server::StatusReply;

use crate::server::root::{PathError, Root};

pub(crate) struct DirState {
    pub(crate) entries: std::fs::ReadDir,
    /// The directory as opened (Linux: the fd `entries` reads through stays valid with it).
    pub(crate) dir: PathBuf,
    pub(crate) _keep: Option<std::fs::File>,
}

pub(crate) fn reply(code: StatusCode, message: impl Into<String>) -> StatusReply {
    StatusReply::new(code).with_message(message)
}

pub(crate) fn io_reply(e: &io::Error) -> StatusReply {
    match e.kind() {
        io::ErrorKind::NotFound => reply(StatusCode::NoSuchFile, "No such file or directory"),
        io::ErrorKind::PermissionDenied => reply(StatusCode::PermissionDenied, "Permission denied"),
        io::ErrorKind::AlreadyExists => reply(StatusCode::Failure, "File exists"),
        io::ErrorKind::DirectoryNotEmpty => reply(StatusCode::Failure, "Directory not empty"),
        io::ErrorKind::NotADirectory => reply(StatusCode::NoSuchFile, "Not a directory"),
        io::ErrorKind::IsADirectory => reply(StatusCode::Failure, "Is a directory"),
        _ => reply(StatusCode::Failure, e.to_string()),
    }
}

pub(crate) fn path_reply(e: PathError) -> StatusReply {
    match e {
        PathError::Escape => reply(StatusCode::PermissionDenied, "Permission denied: the path leads outside the SFTP root"),
        PathError::Io(e) => io_reply(&e),
    }
}

pub(crate) fn read_only_reply() -> StatusReply {
    reply(StatusCode::PermissionDenied, "Permission denied: the SFTP server is read-only")
}

pub(crate) fn ok(id: u32) -> Status {
    Status { id, status_code: StatusCode::Ok, error_message: "Ok".into(), language_tag: "en-US".into() }
}

/// Runs blocking filesystem work off the runtime's worker.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, StatusReply> + Send + 'static) -> Result<T, StatusReply> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|_| Err(reply(StatusCode::Failure, "internal error")))
}

pub(crate) fn attrs_of(m: &std::fs::Metadata) -> FileAttributes {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        FileAttributes {
            size: Some(m.size()),
            uid: Some(m.uid()),
            gid: Some(m.gid()),
            // st_mode carries the file type bits SFTP clients read (S_IFDIR, S_IFLNK, …)
            permissions: Some(m.mode()),
            atime: Some(m.atime().clamp(0, u32::MAX as i64) as u32),
            mtime: Some(m.mtime().clamp(0, u32::MAX as i64) as u32),
            user: None,
            group: None,
        }
    }
    #[cfg(not(unix))]
    {
        let mut a = FileAttributes::from(m);
        if m.file_type().is_symlink() {
            a.permissions = Some(0o120777);
        }
        a
    }
}

pub(crate) fn open_options(flags: OpenFlags, mode: u32) -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.read(flags.contains(OpenFlags::READ));
    let write = flags.intersects(OpenFlags::WRITE | OpenFlags::APPEND);
    o.write(write);
    if flags.contains(OpenFlags::APPEND) {
        o.append(true);
    }
    if flags.contains(OpenFlags::CREATE) {
        if flags.contains(OpenFlags::EXCLUDE) {
            o.create_new(true);
        } else {
            o.create(true);
        }
    }
    if flags.contains(OpenFlags::TRUNCATE) {
        o.truncate(true);
    }
    if !flags.intersects(OpenFlags::READ | OpenFlags::WRITE | OpenFlags::APPEND) {
        o.read(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(mode & 0o7777);
        // the final component was checked; it must not become a symlink before the open.
        // O_NONBLOCK: opening a FIFO would otherwise wait for its other end forever, holding
        // one of the few blocking threads every SFTP request needs (see regular_file)
        o.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK);
    }
    #[cfg(not(unix))]
    let _ = mode;
    o
}

/// Refuses what `open` opened unless it is a regular file, and clears the `O_NONBLOCK` it was
/// opened with. A FIFO, a socket or a device can make a read or write wait for ever (a FIFO
/// has no offsets to read at anyway), and each such wait would hold a blocking thread.
pub(crate) fn regular_file(f: std::fs::File) -> Result<std::fs::File, StatusReply> {
    let m = f.metadata().map_err(|e| io_reply(&e))?;
    if !m.is_file() {
        return Err(reply(StatusCode::Failure, "not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let fd = f.as_raw_fd();
        // SAFETY: fcntl on a descriptor this function owns (through `f`), with no pointers
        let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        // SAFETY: as above
        if fl < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK) } < 0 {
            return Err(io_reply(&io::Error::last_os_error()));
        }
    }
    Ok(f)
}

pub(crate) fn apply_attrs(file: &std::fs::File, attrs: &FileAttributes) -> io::Result<()> {
    if let Some(size) = attrs.size {
        file.set_len(size)?;
    }
    #[cfg(unix)]
    {
        if let Some(mode) = attrs.permissions {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
        }
        if attrs.uid.is_some() || attrs.gid.is_some() {
            std::os::unix::fs::fchown(file, attrs.uid, attrs.gid)?;
        }
    }
    if attrs.atime.is_some() || attrs.mtime.is_some() {
        let at = |t: u32| std::time::UNIX_EPOCH + std::time::Duration::from_secs(t as u64);
        let mut times = std::fs::FileTimes::new();
        if let Some(a) = attrs.atime {
            times = times.set_accessed(at(a));
        }
        if let Some(m) = attrs.mtime {
            times = times.set_modified(at(m));
        }
        file.set_times(times)?;
    }
    Ok(())
}

/// Changes a path's attributes (SETSTAT) through a descriptor opened without following a
/// final symlink. Where it can (Linux), a change that is not a truncation goes through an
/// `O_PATH` descriptor, which needs no permission to read or write the file: as with
/// OpenSSH's sftp-server, the owner of a mode-000 file can chmod it back.
pub(crate) fn setstat_path(root: &Root, path: &str, attrs: &FileAttributes) -> Result<(), StatusReply> {
    #[cfg(target_os = "linux")]
    if attrs.size.is_none() {
        let real = root.resolve(path, true).map_err(path_reply)?;
        let mut o = std::fs::OpenOptions::new();
        o.read(true);
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC);
        let f = o.open(&real).map_err(|e| io_reply(&e))?;
        root.verify_open(&f).map_err(path_reply)?;
        // the path was resolved to no symlink; one now is a swap since, and its /proc link
        // would lead the changes to wherever it points
        if f.metadata().map_err(|e| io_reply(&e))?.file_type().is_symlink() {
            return Err(io_reply(&io::Error::from_raw_os_error(libc::ELOOP)));
        }
        match apply_attrs_by_path(&f, attrs) {
            // no /proc (a minimal container): by a descriptor opened to read, as elsewhere
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            r => return r.map_err(|e| io_reply(&e)),
        }
    }
    let f = open_for_attrs(root, path, attrs)?;
    apply_attrs(&f, attrs).map_err(|e| io_reply(&e))
}

/// `apply_attrs` for an `O_PATH` descriptor, which fchmod and futimens refuse: the mode and
/// times go through its `/proc/self/fd` link (the very file opened, not the path again), the
/// owner through `fchownat(AT_EMPTY_PATH)`.
#[cfg(target_os = "linux")]
fn apply_attrs_by_path(f: &std::fs::File, attrs: &FileAttributes) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let fd = f.as_raw_fd();
    let link = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).map_err(io::Error::other)?;
    let check = |r: libc::c_int| if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) };
    if !std::path::Path::new("/proc/self/fd").is_dir() {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    }
    if let Some(mode) = attrs.permissions {
        // SAFETY: `link` is a NUL-terminated path
        check(unsafe { libc::chmod(link.as_ptr(), (mode & 0o7777) as libc::mode_t) })?;
    }
    if attrs.uid.is_some() || attrs.gid.is_some() {
        // -1: leave that one as it is
        let (uid, gid) = (attrs.uid.unwrap_or(u32::MAX), attrs.gid.unwrap_or(u32::MAX));
        // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH names `fd` itself
        check(unsafe { libc::fchownat(fd, c"".as_ptr(), uid, gid, libc::AT_EMPTY_PATH) })?;
    }
    if attrs.atime.is_some() || attrs.mtime.is_some() {
        let ts = |t: Option<u32>| match t {
            Some(s) => libc::timespec { tv_sec: s as libc::time_t, tv_nsec: 0 },
            None => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
        };
        let times = [ts(attrs.atime), ts(attrs.mtime)];
        // SAFETY: `link` is NUL-terminated and `times` holds the two entries utimensat reads
        check(unsafe { libc::utimensat(libc::AT_FDCWD, link.as_ptr(), times.as_ptr(), 0) })?;
    }
    Ok(())
}

/// Opens an existing object for changing its attributes without following a final symlink.
pub(crate) fn open_for_attrs(root: &Root, path: &str, attrs: &FileAttributes) -> Result<std::fs::File, StatusReply> {
    let real = root.resolve(path, true).map_err(path_reply)?;
    let mut o = std::fs::OpenOptions::new();
    if attrs.size.is_some() {
        o.write(true);
    } else {
        o.read(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: a FIFO must not hang the request
        o.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK);
    }
    let f = o.open(&real).map_err(|e| io_reply(&e))?;
    root.verify_open(&f).map_err(path_reply)?;
    Ok(f)
}

#[cfg(unix)]
pub(crate) fn read_at(f: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, offset)
}
#[cfg(windows)]
pub(crate) fn read_at(f: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, offset)
}
#[cfg(unix)]
pub(crate) fn write_all_at(f: &std::fs::File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
}
#[cfg(windows)]
pub(crate) fn write_all_at(f: &std::fs::File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(f, buf, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// SSH wire strings in an extended request's data.
pub(crate) fn wire_strings(data: &[u8], count: usize) -> Option<Vec<String>> {
    let mut out = Vec::with_capacity(count);
    let mut rest = data;
    for _ in 0..count {
        let len_bytes: [u8; 4] = rest.get(..4)?.try_into().ok()?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let s = rest.get(4..4usize.checked_add(len)?)?;
        out.push(String::from_utf8(s.to_vec()).ok()?);
        rest = &rest[4 + len..];
    }
    Some(out)
}

pub(crate) fn u64s(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

#[cfg(unix)]
pub(crate) fn statvfs_of(path: &std::path::Path) -> Result<Vec<u8>, StatusReply> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| reply(StatusCode::Failure, "invalid path"))?;
    // SAFETY: `c` is a valid NUL-terminated string and `st` a properly sized out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(io_reply(&io::Error::last_os_error()));
    }
    #[allow(clippy::unnecessary_cast)]
    Ok(u64s(&[
        st.f_bsize as u64,
        st.f_frsize as u64,
        st.f_blocks as u64,
        st.f_bfree as u64,
        st.f_bavail as u64,
        st.f_files as u64,
        st.f_ffree as u64,
        st.f_favail as u64,
        st.f_fsid as u64,
        st.f_flag as u64,
        st.f_namemax as u64,
    ]))
}

#[cfg(not(unix))]
pub(crate) fn statvfs_of(_path: &std::path::Path) -> Result<Vec<u8>, StatusReply> {
    Err(reply(StatusCode::OpUnsupported, "statvfs is not available on this platform"))
}

pub(crate) fn open_dir(root: &Root, real: PathBuf) -> Result<DirState, StatusReply> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&real)
            .map_err(|e| io_reply(&e))?;
        root.verify_open(&f).map_err(path_reply)?;
        let dir = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
        match std::fs::read_dir(&dir) {
            Ok(entries) => Ok(DirState { entries, dir, _keep: Some(f) }),
            // no /proc: fall back to the checked real path
            Err(_) => {
                let entries = std::fs::read_dir(&real).map_err(|e| io_reply(&e))?;
                Ok(DirState { entries, dir: real, _keep: None })
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = root;
        let entries = std::fs::read_dir(&real).map_err(|e| io_reply(&e))?;
        Ok(DirState { entries, dir: real, _keep: None })
    }
}

#[cfg(unix)]
pub(crate) fn make_symlink(target: &std::path::Path, link: &std::path::Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
pub(crate) fn make_symlink(target: &std::path::Path, link: &std::path::Path) -> io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_strings_are_parsed_without_panics() {
        let mut d = Vec::new();
        for s in ["a", "bc"] {
            d.extend_from_slice(&(s.len() as u32).to_be_bytes());
            d.extend_from_slice(s.as_bytes());
        }
        assert_eq!(wire_strings(&d, 2).unwrap(), vec!["a", "bc"]);
        assert!(wire_strings(&d[..5], 2).is_none());
        assert!(wire_strings(&[0xff, 0xff, 0xff, 0xff], 1).is_none());
    }
}

/// A directory entry as `ls -l` shows it, the way OpenSSH's sftp-server writes the long name
/// (its `sftp` prints it for `ls -l`): the type and permission letters, links, owner, group,
/// size, modification time (UTC; the hour for the last six months, else the year), name.
pub(crate) fn long_name(name: &str, m: &std::fs::Metadata) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = m.mode();
        let kind = match mode & 0o170000 {
            0o040000 => 'd',
            0o120000 => 'l',
            0o010000 => 'p',
            0o140000 => 's',
            0o020000 => 'c',
            0o060000 => 'b',
            _ => '-',
        };
        let bit = |b: u32, c: char| if mode & b != 0 { c } else { '-' };
        let exec = |x: u32, special: u32, on: char, off: char| match (mode & x != 0, mode & special != 0) {
            (true, true) => on,
            (false, true) => off,
            (true, false) => 'x',
            (false, false) => '-',
        };
        let perms: String = [
            kind,
            bit(0o400, 'r'),
            bit(0o200, 'w'),
            exec(0o100, 0o4000, 's', 'S'),
            bit(0o040, 'r'),
            bit(0o020, 'w'),
            exec(0o010, 0o2000, 's', 'S'),
            bit(0o004, 'r'),
            bit(0o002, 'w'),
            exec(0o001, 0o1000, 't', 'T'),
        ]
        .iter()
        .collect();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        format!("{perms} {:>3} {:<8} {:<8} {:>8} {} {name}", m.nlink(), m.uid(), m.gid(), m.size(), ls_time(m.mtime(), now))
    }
    #[cfg(not(unix))]
    {
        russh_sftp::protocol::File::new(name, attrs_of(m)).longname
    }
}

/// `Mmm dd HH:MM` within six months of `now`, `Mmm dd  YYYY` otherwise (UTC).
#[cfg_attr(not(unix), allow(dead_code))]
fn ls_time(t: i64, now: i64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (year, month, day) = crate::civil::from_days(days);
    let mon = MONTHS[(month - 1) as usize];
    const SIX_MONTHS: i64 = 365 * 86_400 / 2;
    if (now - t).abs() < SIX_MONTHS {
        format!("{mon} {day:>2} {:02}:{:02}", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{mon} {day:>2}  {year}")
    }
}

#[cfg(test)]
mod long_name_tests {
    use super::ls_time;

    #[test]
    fn times_read_as_ls_prints_them() {
        // 2026-12-04 19:22:00 UTC
        let t = 1_796_412_120;
        assert_eq!(ls_time(t, t + 60), "Dec  4 19:22");
        assert_eq!(ls_time(0, t), "Jan  1  1970");
        assert_eq!(ls_time(951_782_400, t), "Feb 29  2000");
    }
}
