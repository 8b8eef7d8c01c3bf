//! SFTP client (draft-ietf-secsh-filexfer-02, version 3, plus OpenSSH extensions) on
//! russh-sftp's raw session: every request is pipelined by us, so bulk transfers keep many
//! reads or writes in flight, and bytes of path-to-path transfers never leave Rust.

mod errors;
mod transfer;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use russh_sftp::client::rawsession::{Limits, RawSftpSession};
use russh_sftp::protocol::{FileAttributes, OpenFlags};

use crate::cancel::CancelToken;
use crate::client::Client;
use crate::error::{Error, Result};

pub use errors::sftp_error;
pub use transfer::{download, partial_path, read_file, read_stream, start_request, upload, Progress, TransferOptions, PARTIAL_SUFFIX};

/// SFTP messages are never built over this (OpenSSH refuses "Outbound message too long"
/// past 256 KiB), whatever the server's limits say.
const MAX_CHUNK: u64 = 255 * 1024;
/// Requests in flight by default: OpenSSH's sftp keeps 64 of 32 KiB; with 255 KiB chunks
/// 16 already fill a loopback link.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// How long a request may wait for its reply: transfers of large files wait on the
/// network, not on a clock.
const REQUEST_TIMEOUT_S: u64 = 300;

/// A file's attributes (SFTP v3: sizes and ids may be absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    pub size: Option<u64>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Permission and file type bits (st_mode).
    pub mode: Option<u32>,
    pub atime: Option<u32>,
    pub mtime: Option<u32>,
}

impl From<&FileAttributes> for Stat {
    fn from(a: &FileAttributes) -> Self {
        Stat { size: a.size, uid: a.uid, gid: a.gid, mode: a.permissions, atime: a.atime, mtime: a.mtime }
    }
}

impl Stat {
    pub fn to_attrs(&self) -> FileAttributes {
        let mut a = FileAttributes::empty();
        a.size = self.size;
        a.uid = self.uid;
        a.gid = self.gid;
        a.permissions = self.mode;
        a.atime = self.atime;
        a.mtime = self.mtime;
        a
    }
    pub fn is_dir(&self) -> bool {
        self.mode.is_some_and(|m| m & 0o170000 == 0o040000)
    }
    pub fn is_symlink(&self) -> bool {
        self.mode.is_some_and(|m| m & 0o170000 == 0o120000)
    }
}

#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: String,
    pub longname: String,
    pub stat: Stat,
}

/// What the server offers beyond version 3.
#[derive(Debug, Clone, Default)]
pub struct Extensions {
    pub posix_rename: bool,
    pub statvfs: bool,
    pub hardlink: bool,
    pub fsync: bool,
    pub limits: bool,
    pub expand_path: bool,
    pub home_directory: bool,
    pub copy_data: bool,
    pub all: HashMap<String, String>,
}

#[derive(Debug, Clone, Copy)]
pub struct SftpLimits {
    pub read: u32,
    pub write: u32,
    pub open_handles: Option<u64>,
}

pub struct Sftp {
    pub(crate) raw: Arc<RawSftpSession>,
    /// Bulk reads and writes, sent and answered past russh-sftp (see wire.rs).
    pub(crate) wire: Arc<wire::Wire>,
    /// Cancelled when the channel under the session ends: requests in flight then fail at
    /// once instead of waiting for their timeout.
    pub(crate) dead: Dead,
    pub extensions: Extensions,
    pub limits: SftpLimits,
    /// The path each open file handle was opened by, so a failed read or write can say which
    /// file it was (the server's status names none).
    paths: std::sync::Mutex<HashMap<String, String>>,
}

/// `statvfs@openssh.com`
#[derive(Debug, Clone)]
pub struct FsStats {
    pub block_size: u64,
    pub fragment_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_avail: u64,
    pub files: u64,
    pub files_free: u64,
    pub files_avail: u64,
    pub fsid: u64,
    pub flags: u64,
    pub name_max: u64,
}

/// Open flags from an fs-style flag string ("r", "r+", "w", "wx", "w+", "a", "ax", "a+").
pub fn open_flags(flags: &str) -> Result<OpenFlags> {
    let f = match flags {
        "r" => OpenFlags::READ,
        "r+" | "rs+" => OpenFlags::READ | OpenFlags::WRITE,
        "w" => OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
        "wx" | "xw" => OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE,
        "w+" => OpenFlags::READ | OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
        "wx+" | "xw+" => OpenFlags::READ | OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE,
        "a" => OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::APPEND,
        "ax" | "xa" => OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::APPEND | OpenFlags::EXCLUDE,
        "a+" => OpenFlags::READ | OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::APPEND,
        "ax+" | "xa+" => OpenFlags::READ | OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::APPEND | OpenFlags::EXCLUDE,
        other => return Err(Error::config("flags", format!("unknown open flags {other:?}: use r, r+, w, wx, w+, a, ax or a+"))),
    };
    Ok(f)
}

/// Why a session ended with its connection, as its failed calls say it.
const ENDED_CLOSED: &str = "the connection was closed";
const ENDED_LOST: &str = "the SSH connection was lost";

/// The DisconnectError reason behind a session that ended with its connection: what its
/// failed calls carry as `reason`, so your own close() is told from a lost connection.
pub(crate) fn ended_reason(why: &str) -> Option<&'static str> {
    match why {
        ENDED_CLOSED => Some("closed"),
        ENDED_LOST => Some("connection-lost"),
        _ => None,
    }
}

/// The end of the channel under a session, and why it ended: the SFTP channel alone (closed,
/// or its server process gone) or the whole connection.
#[derive(Clone, Default)]
pub(crate) struct Dead {
    token: CancelToken,
    why: Arc<std::sync::OnceLock<String>>,
    channel: Option<Arc<crate::channel::ChannelShared>>,
    conn: Option<Arc<crate::client::ConnShared>>,
}

impl Dead {
    fn new(channel: Arc<crate::channel::ChannelShared>, conn: Arc<crate::client::ConnShared>) -> Dead {
        Dead { channel: Some(channel), conn: Some(conn), ..Dead::default() }
    }

    fn end(&self, why: String) {
        let _ = self.why.set(why);
        self.token.cancel();
    }

    /// Why the channel ended, once it has (or its connection has): read from the channel and
    /// the connection when the session noticed before the task that records it ran.
    fn why_now(&self) -> Option<String> {
        if let Some(w) = self.why.get() {
            return Some(w.clone());
        }
        let conn_ending = self.conn.as_ref().is_some_and(|c| c.ending_error().is_some());
        self.channel.as_ref().filter(|c| c.is_closed() || conn_ending).map(|c| ended_why(c, self.conn.as_deref()))
    }
}

/// A channel that ended with its connection says so; one that closed alone (sftp.close(),
/// the server's sftp process gone) leaves the connection usable.
/// A channel closed as part of the connection's own close() (before the connection ended)
/// counts as ended with it.
fn ended_why(shared: &crate::channel::ChannelShared, conn: Option<&crate::client::ConnShared>) -> String {
    match shared.broken_error().or_else(|| conn.and_then(|c| c.ending_error())) {
        Some(Error::Disconnect { reason, .. }) if reason == "closed" => ENDED_CLOSED.to_string(),
        Some(_) => ENDED_LOST.to_string(),
        None => "the SFTP channel closed".to_string(),
    }
}

/// `f`, or the session's end as soon as it has ended. A failure of the stream under the
/// session is told as the channel's end, whichever of the two noticed first.
pub(crate) async fn unless_dead<T>(dead: &Dead, f: impl std::future::Future<Output = std::result::Result<T, russh_sftp::client::error::Error>>) -> std::result::Result<T, russh_sftp::client::error::Error> {
    use russh_sftp::client::error::Error as E;
    tokio::select! {
        r = f => match r {
            Err(E::IO(m) | E::UnexpectedBehavior(m)) => Err(E::IO(dead.why_now().unwrap_or(m))),
            r => r,
        },
        _ = dead.token.cancelled() => Err(E::IO(dead.why_now().unwrap_or_else(|| "the SFTP channel closed".into()))),
    }
}

fn ssh_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Sftp {
    /// Starts the `sftp` subsystem on a new session channel.
    pub async fn open(client: &Client, cancel: Option<&CancelToken>) -> Result<Sftp> {
        let ch = client.subsystem("sftp", cancel).await?;
        let dead = Dead::new(Arc::clone(ch.shared()), client.conn_shared());
        {
            let (shared, dead, conn) = (Arc::clone(ch.shared()), dead.clone(), client.conn_shared());
            tokio::spawn(async move {
                shared.wait_closed().await;
                dead.end(ended_why(&shared, Some(&conn)));
            });
        }
        let (wire, stream) = wire::Wire::start(ch, std::time::Duration::from_secs(REQUEST_TIMEOUT_S));
        let mut raw = RawSftpSession::new(stream);
        raw.set_timeout(REQUEST_TIMEOUT_S);
        let version = CancelToken::run(cancel, async { raw.init().await.map_err(|e| sftp_error(e, None, "init")) }).await?;
        let has = |name: &str| version.extensions.contains_key(name);
        let extensions = Extensions {
            posix_rename: has("posix-rename@openssh.com"),
            statvfs: has("statvfs@openssh.com"),
            hardlink: has("hardlink@openssh.com"),
            fsync: has("fsync@openssh.com"),
            limits: has("limits@openssh.com"),
            expand_path: has("expand-path@openssh.com"),
            home_directory: has("home-directory"),
            copy_data: has("copy-data"),
            all: version.extensions.clone(),
        };
        let mut limits = SftpLimits { read: MAX_CHUNK as u32, write: MAX_CHUNK as u32, open_handles: None };
        if extensions.limits {
            if let Ok(l) = raw.limits().await {
                let clamp = |v: u64| if v == 0 { MAX_CHUNK } else { v.min(MAX_CHUNK) } as u32;
                limits = SftpLimits { read: clamp(l.max_read_len), write: clamp(l.max_write_len), open_handles: (l.max_open_handles > 0).then_some(l.max_open_handles) };
                raw.set_limits(Limits::from(l));
            }
        }
        Ok(Sftp { raw: Arc::new(raw), wire, dead, extensions, limits, paths: Default::default() })
    }

    /// Runs a request unless (or until) the session's channel is gone.
    pub(crate) async fn alive<T>(&self, f: impl std::future::Future<Output = std::result::Result<T, russh_sftp::client::error::Error>>) -> std::result::Result<T, russh_sftp::client::error::Error> {
        unless_dead(&self.dead, f).await
    }

    pub async fn stat(&self, path: &str) -> Result<Stat> {
        self.alive(self.raw.stat(path)).await.map(|a| Stat::from(&a.attrs)).map_err(|e| sftp_error(e, Some(path), "stat"))
    }

    pub async fn lstat(&self, path: &str) -> Result<Stat> {
        self.alive(self.raw.lstat(path)).await.map(|a| Stat::from(&a.attrs)).map_err(|e| sftp_error(e, Some(path), "lstat"))
    }

    pub async fn setstat(&self, path: &str, stat: &Stat) -> Result<()> {
        match self.alive(self.raw.setstat(path, stat.to_attrs())).await {
            Ok(_) => Ok(()),
            // a size is a truncate: on a directory that is EISDIR; other attribute changes
            // fail for their own reasons (a read-only mount), left as the server said
            Err(e) => Err(errors::refine(self, e, path, if stat.size.is_some() { "truncate" } else { "setstat" }).await),
        }
    }

    pub async fn realpath(&self, path: &str) -> Result<String> {
        let n = self.alive(self.raw.realpath(path)).await.map_err(|e| sftp_error(e, Some(path), "realpath"))?;
        n.files.into_iter().next().map(|f| f.filename).ok_or_else(|| Error::Protocol { message: "empty realpath reply".into() })
    }

    pub async fn readlink(&self, path: &str) -> Result<String> {
        let n = match self.alive(self.raw.readlink(path)).await {
            Ok(n) => n,
            Err(e) => return Err(errors::refine(self, e, path, "readlink").await),
        };
        n.files.into_iter().next().map(|f| f.filename).ok_or_else(|| Error::Protocol { message: "empty readlink reply".into() })
    }

    /// `symlink(target, path)` in fs order. OpenSSH's server takes SSH_FXP_SYMLINK's two
    /// paths in the reverse of the draft's order, and so does every client talking to it.
    pub async fn symlink(&self, target: &str, path: &str) -> Result<()> {
        match self.alive(self.raw.symlink(target, path)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(errors::refine_two(self, sftp_error(e, Some(path), "symlink"), "symlink", target, path).await),
        }
    }

    pub async fn mkdir(&self, path: &str, mode: Option<u32>) -> Result<()> {
        let mut a = FileAttributes::empty();
        a.permissions = mode;
        match self.alive(self.raw.mkdir(path, a)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(errors::refine(self, e, path, "mkdir").await),
        }
    }

    pub async fn rmdir(&self, path: &str) -> Result<()> {
        match self.alive(self.raw.rmdir(path)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(errors::refine(self, e, path, "rmdir").await),
        }
    }

    pub async fn unlink(&self, path: &str) -> Result<()> {
        match self.alive(self.raw.remove(path)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(errors::refine(self, e, path, "unlink").await),
        }
    }

    /// Replaces the destination like fs.rename: posix-rename@openssh.com when offered,
    /// otherwise a plain SFTP rename (which refuses an existing destination).
    pub async fn rename(&self, from: &str, to: &str) -> Result<()> {
        if self.extensions.posix_rename {
            let mut data = Vec::new();
            ssh_string(&mut data, from);
            ssh_string(&mut data, to);
            return match self.extended_status("posix-rename@openssh.com", data, from).await {
                Err(e) => Err(errors::refine_two(self, e, "rename", from, to).await),
                ok => ok,
            };
        }
        match self.alive(self.raw.rename(from, to)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(errors::refine_two(self, sftp_error(e, Some(from), "rename"), "rename", from, to).await),
        }
    }

    async fn extended_status(&self, request: &str, data: Vec<u8>, path: &str) -> Result<()> {
        use russh_sftp::protocol::{Packet, StatusCode};
        match self.alive(self.raw.extended(request, data)).await {
            Ok(Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
            Ok(Packet::Status(s)) => Err(sftp_error(russh_sftp::client::error::Error::Status(s), Some(path), request)),
            Ok(_) => Ok(()),
            Err(e) => Err(sftp_error(e, Some(path), request)),
        }
    }

    fn need(&self, has: bool, name: &str) -> Result<()> {
        if has {
            Ok(())
        } else {
            Err(Error::Sftp { code: "ENOSYS".into(), status: 8, message: format!("the server does not offer the {name} extension"), path: None, reason: None })
        }
    }

    pub async fn hardlink(&self, from: &str, to: &str) -> Result<()> {
        self.need(self.extensions.hardlink, "hardlink@openssh.com")?;
        match self.alive(self.raw.hardlink(from, to)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(errors::refine_two(self, sftp_error(e, Some(from), "hardlink"), "hardlink", from, to).await),
        }
    }

    pub async fn statvfs(&self, path: &str) -> Result<FsStats> {
        self.need(self.extensions.statvfs, "statvfs@openssh.com")?;
        let s = self.alive(self.raw.statvfs(path)).await.map_err(|e| sftp_error(e, Some(path), "statvfs"))?;
        Ok(FsStats {
            block_size: s.block_size,
            fragment_size: s.fragment_size,
            blocks: s.blocks,
            blocks_free: s.blocks_free,
            blocks_avail: s.blocks_avail,
            files: s.inodes,
            files_free: s.inodes_free,
            files_avail: s.inodes_avail,
            fsid: s.fs_id,
            flags: s.flags,
            name_max: s.name_max,
        })
    }

    /// `~` and `~user` paths (expand-path@openssh.com, else realpath of ".").
    pub async fn expand_path(&self, path: &str) -> Result<String> {
        if self.extensions.expand_path {
            let n = self.alive(self.raw.expand_path(path)).await.map_err(|e| sftp_error(e, Some(path), "expand-path"))?;
            return n.files.into_iter().next().map(|f| f.filename).ok_or_else(|| Error::Protocol { message: "empty expand-path reply".into() });
        }
        if path == "~" || path.is_empty() {
            return self.realpath(".").await;
        }
        match path.strip_prefix("~/") {
            Some(rest) => Ok(format!("{}/{rest}", self.realpath(".").await?.trim_end_matches('/'))),
            None => Ok(path.to_string()),
        }
    }

    pub async fn readdir(&self, path: &str) -> Result<Vec<DirEntry>> {
        let h = self.opendir(path).await?;
        let mut out = Vec::new();
        loop {
            match self.readdir_batch(&h, path).await {
                Ok(Some(mut batch)) => out.append(&mut batch),
                Ok(None) => break,
                Err(e) => {
                    let _ = self.close(&h).await;
                    return Err(e);
                }
            }
        }
        self.close(&h).await?;
        Ok(out)
    }

    pub async fn opendir(&self, path: &str) -> Result<String> {
        match self.alive(self.raw.opendir(path)).await {
            Ok(h) => Ok(h.handle),
            Err(e) => Err(errors::refine(self, e, path, "opendir").await),
        }
    }

    /// One SSH_FXP_READDIR round; None at the end. `.` and `..` are left out, as fs does.
    pub async fn readdir_batch(&self, handle: &str, path: &str) -> Result<Option<Vec<DirEntry>>> {
        use russh_sftp::protocol::StatusCode;
        match self.alive(self.raw.readdir(handle)).await {
            Ok(name) => Ok(Some(
                name.files
                    .into_iter()
                    .filter(|f| !f.filename.is_empty() && f.filename != "." && f.filename != "..")
                    .map(|f| DirEntry { stat: Stat::from(&f.attrs), name: f.filename, longname: f.longname })
                    .collect(),
            )),
            Err(russh_sftp::client::error::Error::Status(s)) if s.status_code == StatusCode::Eof => Ok(None),
            Err(e) => Err(sftp_error(e, Some(path), "readdir")),
        }
    }

    pub async fn open_file(&self, path: &str, flags: &str, mode: Option<u32>) -> Result<String> {
        let mut a = FileAttributes::empty();
        a.permissions = mode;
        match self.alive(self.raw.open(path, open_flags(flags)?, a)).await {
            Ok(h) => {
                self.paths.lock().unwrap_or_else(|e| e.into_inner()).insert(h.handle.clone(), path.to_string());
                Ok(h.handle)
            }
            Err(e) => {
                let e = errors::refine(self, e, path, "open").await;
                // an exclusive create of any existing name (a directory, a link, dangling too)
                // is EEXIST, as open(2) says; without 'x' an existing name is no failure
                let exists = match &e {
                    Error::Sftp { code, .. } if flags.contains('x') => code == "EISDIR" || (code == "EIO" && self.lstat(path).await.is_ok()),
                    _ => false,
                };
                match e {
                    Error::Sftp { status, .. } if exists => Err(Error::Sftp { code: "EEXIST".into(), status, message: format!("EEXIST: open '{path}': it already exists"), path: Some(path.to_string()), reason: None }),
                    other => Err(other),
                }
            }
        }
    }

    pub async fn close(&self, handle: &str) -> Result<()> {
        let path = self.paths.lock().unwrap_or_else(|e| e.into_inner()).remove(handle);
        self.alive(self.raw.close(handle)).await.map(|_| ()).map_err(|e| sftp_error(e, path.as_deref(), "close"))
    }

    /// The path a file handle was opened by (None for one this session did not open).
    pub(crate) fn path_of(&self, handle: &str) -> Option<String> {
        self.paths.lock().unwrap_or_else(|e| e.into_inner()).get(handle).cloned()
    }

    /// Reads up to `len` bytes at `offset`; an empty result means end of file.
    pub async fn read(&self, handle: &str, offset: u64, len: u32) -> Result<Vec<u8>> {
        match self.alive(self.wire.read(handle, offset, len.min(self.limits.read))).await {
            Ok(d) => Ok(d),
            Err(e) => Err(errors::read_failure(self, e, handle).await),
        }
    }

    /// Writes all of `data` at `offset` (split at the server's write limit, pipelined).
    pub async fn write(&self, handle: &str, offset: u64, data: &[u8]) -> Result<()> {
        let r = transfer::write_all(self, handle, offset, data, DEFAULT_CONCURRENCY).await;
        match (r, self.path_of(handle)) {
            (Err(e), Some(p)) => Err(transfer::with_path(e, &p)),
            (r, _) => r,
        }
    }

    pub async fn fstat(&self, handle: &str) -> Result<Stat> {
        self.alive(self.raw.fstat(handle)).await.map(|a| Stat::from(&a.attrs)).map_err(|e| sftp_error(e, None, "fstat"))
    }

    pub async fn fsetstat(&self, handle: &str, stat: &Stat) -> Result<()> {
        self.alive(self.raw.fsetstat(handle, stat.to_attrs())).await.map(|_| ()).map_err(|e| sftp_error(e, None, "fsetstat"))
    }

    pub async fn fsync(&self, handle: &str) -> Result<()> {
        self.need(self.extensions.fsync, "fsync@openssh.com")?;
        self.alive(self.raw.fsync(handle)).await.map(|_| ()).map_err(|e| sftp_error(e, None, "fsync"))
    }

    /// Server-side copy (`copy-data`): no byte crosses the network. `exclusive` refuses an
    /// existing destination (fs's COPYFILE_EXCL).
    pub async fn copy_data(&self, from: &str, to: &str, exclusive: bool) -> Result<()> {
        self.need(self.extensions.copy_data, "copy-data")?;
        // a file copied onto itself stays as it is (as fs.copyFile leaves it): opening the
        // destination for writing would empty the source first
        if let (Ok(a), Ok(b)) = (self.realpath(from).await, self.realpath(to).await) {
            if a == b {
                self.stat(from).await?;
                if exclusive {
                    return Err(Error::Sftp { code: "EEXIST".into(), status: 4, message: format!("EEXIST: copyfile '{from}' -> '{to}': the destination exists"), path: Some(to.to_string()), reason: None });
                }
                return Ok(());
            }
        }
        let src = self.open_file(from, "r", None).await?;
        // a new file gets the source's permission bits, as fs.copyFile and cp give it
        let (mode, is_dir) = match self.fstat(&src).await {
            Ok(st) => (st.mode.map(|m| m & 0o7777), st.is_dir()),
            Err(_) => (None, false),
        };
        // OpenSSH opens a directory for reading: its copy would fail as a bare "failure", after
        // the destination was created; fs.copyFile refuses it first, with EISDIR
        if is_dir {
            let _ = self.close(&src).await;
            return Err(Error::Sftp { code: "EISDIR".into(), status: 4, message: format!("EISDIR: copyfile '{from}' -> '{to}': the source is a directory"), path: Some(from.to_string()), reason: None });
        }
        let dst = match self.open_file(to, if exclusive { "wx" } else { "w" }, mode).await {
            Ok(h) => h,
            Err(e) => {
                let _ = self.close(&src).await;
                return Err(e);
            }
        };
        let mut data = Vec::new();
        ssh_string(&mut data, &src);
        data.extend_from_slice(&0u64.to_be_bytes());
        data.extend_from_slice(&0u64.to_be_bytes()); // 0 = to the end of the file
        ssh_string(&mut data, &dst);
        data.extend_from_slice(&0u64.to_be_bytes());
        let r = self.extended_status("copy-data", data, from).await;
        let _ = self.close(&src).await;
        let _ = self.close(&dst).await;
        r
    }

    /// Ends the session; requests in flight fail.
    pub fn end(&self) {
        let _ = self.raw.close_session();
    }
}
