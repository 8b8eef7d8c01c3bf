//! Pipelined transfers: many reads or writes in flight, results delivered in order.
//! Downloads go to a temporary name and are renamed only when complete and of the
//! expected size; uploads the same on the server.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::wire::Wire;
use super::{sftp_error, Sftp, DEFAULT_CONCURRENCY};
use crate::cancel::CancelToken;
use crate::channel::{BufferLimits, ChannelShared, STDOUT};
use crate::error::{Error, Result};

/// Called with (bytes done, total) at most every PROGRESS_EVERY and once at the end.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

#[derive(Clone, Default)]
pub struct TransferOptions {
    pub concurrency: Option<usize>,
    pub chunk_size: Option<u32>,
    pub progress: Option<Progress>,
    /// Continue from the partial file a failed transfer left.
    pub resume: bool,
    /// Leave the partial file after a failure (it is removed otherwise).
    pub keep_partial: bool,
    pub mode: Option<u32>,
    /// Flush the finished file to disk before it is renamed into place (OpenSSH's `sftp -f`):
    /// the local file on download; on upload, fsync@openssh.com when the server offers it.
    pub fsync: bool,
    /// A destination that is a symlink is replaced instead of written through. Tree
    /// transfers set it: a link made from a hostile server's listing must not lead one of
    /// its files outside the destination.
    pub replace_links: bool,
}

/// The fs-style code of a local failure: from the OS's errno where there is one (a full disk
/// is ENOSPC, a directory in the way EISDIR, as fs says), else from its kind.
pub(crate) fn local_code(e: &std::io::Error) -> &'static str {
    #[cfg(unix)]
    if let Some(n) = e.raw_os_error() {
        let name = match n {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::EIO => "EIO",
            libc::ENXIO => "ENXIO",
            libc::EBADF => "EBADF",
            libc::EAGAIN => "EAGAIN",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EBUSY => "EBUSY",
            libc::EEXIST => "EEXIST",
            libc::EXDEV => "EXDEV",
            libc::ENODEV => "ENODEV",
            libc::ENOTDIR => "ENOTDIR",
            libc::EISDIR => "EISDIR",
            libc::EINVAL => "EINVAL",
            libc::ENFILE => "ENFILE",
            libc::EMFILE => "EMFILE",
            libc::ETXTBSY => "ETXTBSY",
            libc::EFBIG => "EFBIG",
            libc::ENOSPC => "ENOSPC",
            libc::ESPIPE => "ESPIPE",
            libc::EROFS => "EROFS",
            libc::EMLINK => "EMLINK",
            libc::EPIPE => "EPIPE",
            libc::ENAMETOOLONG => "ENAMETOOLONG",
            libc::ENOTEMPTY => "ENOTEMPTY",
            libc::ELOOP => "ELOOP",
            libc::EDQUOT => "EDQUOT",
            libc::ENOTSUP => "ENOTSUP",
            libc::ETIMEDOUT => "ETIMEDOUT",
            _ => "",
        };
        if !name.is_empty() {
            return name;
        }
    }
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => "ENOENT",
        K::PermissionDenied => "EACCES",
        K::AlreadyExists => "EEXIST",
        K::IsADirectory => "EISDIR",
        K::NotADirectory => "ENOTDIR",
        K::StorageFull => "ENOSPC",
        K::ReadOnlyFilesystem => "EROFS",
        K::DirectoryNotEmpty => "ENOTEMPTY",
        K::FileTooLarge => "EFBIG",
        K::QuotaExceeded => "EDQUOT",
        K::InvalidFilename => "ENAMETOOLONG",
        K::ResourceBusy => "EBUSY",
        K::CrossesDevices => "EXDEV",
        _ => "EIO",
    }
}

fn local_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    let code = local_code(&e);
    Error::Sftp { code: code.into(), status: 0, message: format!("{code}: {what} {}: {e}", path.display()), path: Some(path.display().to_string()), reason: None }
}

fn is_dir_error(path: &str, hint: &str) -> Error {
    Error::Sftp { code: "EISDIR".into(), status: 0, message: format!("EISDIR: '{path}' is a directory{hint}"), path: Some(path.into()), reason: None }
}

/// A failure of a request on a file's handle, told with the file's path (the server's
/// message names none).
pub(crate) fn with_path(e: Error, path: &str) -> Error {
    match e {
        Error::Sftp { code, status, message, path: None, reason } => {
            let message = match message.split_once(": ") {
                Some((c, rest)) => match rest.split_once(": ") {
                    Some((op, detail)) if !op.contains('\'') => format!("{c}: {op} '{path}': {detail}"),
                    _ => message,
                },
                None => message,
            };
            Error::Sftp { code, status, message, path: Some(path.into()), reason }
        }
        other => other,
    }
}

struct Reporter {
    cb: Option<Progress>,
    last: Instant,
    total: u64,
}

impl Reporter {
    fn new(cb: Option<Progress>, total: u64) -> Self {
        Reporter { cb, last: Instant::now() - PROGRESS_EVERY, total }
    }
    fn tick(&mut self, done: u64) {
        if let Some(cb) = &self.cb {
            if self.last.elapsed() >= PROGRESS_EVERY {
                self.last = Instant::now();
                cb(done, self.total.max(done));
            }
        }
    }
    fn finish(&self, done: u64) {
        if let Some(cb) = &self.cb {
            cb(done, self.total.max(done));
        }
    }
}

/// A spawned request that is cancelled when its owner goes away (an aborted transfer must
/// not leave requests running).
pub(crate) struct Task<T>(JoinHandle<T>);

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Polls `fut` once right here, then lets a task finish it. An SFTP request goes out during
/// that first poll, so requests reach the server in call order whatever order the runtime
/// later runs tasks in (a file opened for appending takes writes in arrival order).
pub fn start_request<T: Send + 'static>(fut: impl std::future::Future<Output = T> + Send + 'static) -> JoinHandle<T> {
    let mut fut = Box::pin(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => tokio::spawn(async move { v }),
        std::task::Poll::Pending => tokio::spawn(fut),
    }
}

impl<T> Task<T> {
    async fn join(mut self) -> Result<T> {
        (&mut self.0).await.map_err(|_| Error::Protocol { message: "SFTP request task failed".into() })
    }
}

type Pending = Task<std::result::Result<Vec<u8>, russh_sftp::client::error::Error>>;

fn spawn_read(sftp: &Sftp, handle: &Arc<str>, offset: u64, len: u32) -> Pending {
    let (wire, handle, dead) = (Arc::clone(&sftp.wire), Arc::clone(handle), sftp.dead.clone());
    Task(start_request(async move { super::unless_dead(&dead, wire.read(&handle, offset, len)).await }))
}

/// Where read_ordered delivers, in file order.
pub(crate) trait Sink {
    async fn put(&mut self, data: Vec<u8>) -> Result<()>;
}

/// The local end of a download. Pieces gather to `LOCAL_BATCH` bytes; a blocking task
/// writes the batches in order, owning the buffers (no copy), while the next replies
/// arrive. Up to `LOCAL_QUEUE` batches wait for it, so a slow moment of the disk does not
/// stop the requests; the file grows in order, so a partial file is always a prefix.
pub(crate) struct LocalFile {
    file: Arc<std::fs::File>,
    batch: Vec<Vec<u8>>,
    batched: usize,
    queue: Option<tokio::sync::mpsc::Sender<Vec<Vec<u8>>>>,
    writer: Option<JoinHandle<std::io::Result<()>>>,
}

const LOCAL_BATCH: usize = 1024 * 1024;
const LOCAL_QUEUE: usize = 4;

impl LocalFile {
    fn new(file: std::fs::File) -> Self {
        LocalFile { file: Arc::new(file), batch: Vec::new(), batched: 0, queue: None, writer: None }
    }

    /// Stops taking batches and waits until every queued one is written (or the first
    /// write that failed).
    async fn settle(&mut self) -> std::io::Result<()> {
        self.queue = None;
        match self.writer.take() {
            Some(h) => h.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }

    async fn dispatch(&mut self) -> std::io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let pieces = std::mem::take(&mut self.batch);
        self.batched = 0;
        if self.queue.is_none() {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Vec<u8>>>(LOCAL_QUEUE);
            let file = Arc::clone(&self.file);
            self.queue = Some(tx);
            self.writer = Some(tokio::task::spawn_blocking(move || {
                use std::io::Write;
                while let Some(pieces) = rx.blocking_recv() {
                    let r = pieces.iter().try_for_each(|p| (&*file).write_all(p));
                    pieces.into_iter().for_each(super::wire::give_buffer);
                    r?;
                }
                Ok(())
            }));
        }
        let sent = match &self.queue {
            Some(q) => q.send(pieces).await.is_ok(),
            None => false,
        };
        if !sent {
            // the writer stopped: its error says why
            self.settle().await?;
            return Err(std::io::Error::other("the local writer stopped"));
        }
        Ok(())
    }

    async fn put(&mut self, data: Vec<u8>) -> std::io::Result<()> {
        self.batched += data.len();
        self.batch.push(data);
        if self.batched >= LOCAL_BATCH {
            self.dispatch().await?;
        }
        Ok(())
    }

    /// Everything given so far is in the file.
    async fn flush(&mut self) -> std::io::Result<()> {
        self.dispatch().await?;
        self.settle().await
    }
}

struct FileSink<'a> {
    file: &'a mut LocalFile,
    path: &'a Path,
    done: u64,
    rep: Reporter,
}

impl Sink for FileSink<'_> {
    async fn put(&mut self, data: Vec<u8>) -> Result<()> {
        self.done += data.len() as u64;
        self.rep.tick(self.done);
        self.file.put(data).await.map_err(|e| local_error(self.path, "cannot write", e))
    }
}

struct VecSink<'a> {
    out: Vec<u8>,
    max: Option<u64>,
    path: &'a str,
}

impl Sink for VecSink<'_> {
    async fn put(&mut self, data: Vec<u8>) -> Result<()> {
        self.out.extend_from_slice(&data);
        super::wire::give_buffer(data);
        if self.max.is_some_and(|m| self.out.len() as u64 > m) {
            return Err(Error::Sftp { code: "EFBIG".into(), status: 0, message: format!("EFBIG: '{}' is larger than the limit", self.path), path: Some(self.path.into()), reason: None });
        }
        Ok(())
    }
}

struct BufferSink(Arc<ChannelShared>);

impl Sink for BufferSink {
    async fn put(&mut self, data: Vec<u8>) -> Result<()> {
        self.0.push(STDOUT, &data).await;
        super::wire::give_buffer(data);
        Ok(())
    }
}

/// Reads [start, end) (end None = to EOF) with `concurrency` reads in flight, handing each
/// piece to `sink` in file order. A short read (allowed anywhere by the protocol) is
/// completed by reading the gap before anything after it is delivered.
pub(crate) async fn read_ordered<S: Sink>(sftp: &Sftp, handle: &str, start: u64, end: Option<u64>, concurrency: usize, chunk: u32, sink: &mut S) -> Result<u64> {
    let chunk = chunk.clamp(1, sftp.limits.read);
    let handle: Arc<str> = Arc::from(handle);
    let mut queue: VecDeque<(u64, u32, Pending)> = VecDeque::new();
    let mut next = start;
    let mut eof = false;
    let mut done = 0u64;
    let schedule = |queue: &mut VecDeque<(u64, u32, Pending)>, next: &mut u64, eof: bool| {
        while !eof && queue.len() < concurrency.max(1) && end.is_none_or(|e| *next < e) {
            let len = end.map_or(chunk as u64, |e| (e - *next).min(chunk as u64)) as u32;
            queue.push_back((*next, len, spawn_read(sftp, &handle, *next, len)));
            // at the top of the offset space there is nothing more to ask for
            let Some(n) = next.checked_add(len as u64) else { break };
            *next = n;
        }
    };
    schedule(&mut queue, &mut next, eof);
    let result = async {
        while let Some((offset, len, task)) = queue.pop_front() {
            let data = match task.join().await? {
                Ok(d) => d,
                Err(e) => return Err(super::errors::read_failure(sftp, e, &handle).await),
            };
            if data.is_empty() {
                eof = true;
                break;
            }
            let got = data.len() as u32;
            done += got as u64;
            sink.put(data).await?;
            if got < len {
                queue.push_front((offset + got as u64, len - got, spawn_read(sftp, &handle, offset + got as u64, len - got)));
            }
            schedule(&mut queue, &mut next, eof);
        }
        Ok::<(), Error>(())
    }
    .await;
    drop(queue);
    result.map(|_| done)
}

/// Writes `data` at `offset` with up to `concurrency` writes in flight.
pub(crate) async fn write_all(sftp: &Sftp, handle: &str, offset: u64, data: &[u8], concurrency: usize) -> Result<()> {
    let chunk = sftp.limits.write as usize;
    let handle: Arc<str> = Arc::from(handle);
    let head = Wire::write_header_len(&handle);
    let mut inflight: VecDeque<Task<Result<()>>> = VecDeque::new();
    for (i, piece) in data.chunks(chunk.max(1)).enumerate() {
        if inflight.len() >= concurrency.max(1) {
            if let Some(t) = inflight.pop_front() {
                t.join().await??;
            }
        }
        let mut buf = super::wire::take_buffer(head + piece.len());
        buf.resize(head, 0);
        buf.extend_from_slice(piece);
        let (wire, h, dead) = (Arc::clone(&sftp.wire), Arc::clone(&handle), sftp.dead.clone());
        let at = offset + (i * chunk) as u64;
        inflight.push_back(Task(start_request(async move { super::unless_dead(&dead, wire.write_prepared(&h, at, buf)).await.map_err(|e| sftp_error(e, None, "write")) })));
    }
    for t in inflight {
        t.join().await??;
    }
    Ok(())
}

/// One read-ahead: the file back, the packet buffers filled, and whether the end was reached.
type ReadAhead = (std::fs::File, Vec<Vec<u8>>, bool);

/// The local end of an upload: reads ahead one batch of chunks in a blocking task, each
/// straight into the buffer its WRITE packet is sent from (`head` bytes left for the header).
struct LocalReader {
    file: Option<std::fs::File>,
    head: usize,
    chunk: usize,
    ready: VecDeque<Vec<u8>>,
    reading: Option<JoinHandle<std::io::Result<ReadAhead>>>,
    eof: bool,
}

impl LocalReader {
    fn new(file: std::fs::File, head: usize, chunk: usize) -> Self {
        let mut r = LocalReader { file: Some(file), head, chunk, ready: VecDeque::new(), reading: None, eof: false };
        r.read_ahead();
        r
    }

    fn read_ahead(&mut self) {
        let Some(mut file) = self.file.take() else { return };
        let (head, chunk) = (self.head, self.chunk);
        let count = (LOCAL_BATCH / chunk).max(1);
        self.reading = Some(tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut out = Vec::with_capacity(count);
            for _ in 0..count {
                // read into the spare capacity: the buffer is never zeroed first
                let mut buf = super::wire::take_buffer(head + chunk);
                buf.resize(head, 0);
                let mut limited = (&mut file).take(chunk as u64);
                loop {
                    match limited.read_to_end(&mut buf) {
                        Ok(_) => break,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if buf.len() == head {
                    super::wire::give_buffer(buf);
                    return Ok((file, out, true));
                }
                out.push(buf);
            }
            Ok((file, out, false))
        }));
    }

    /// The next packet buffer, or None at the end of the file.
    async fn next(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.ready.is_empty() {
            if let Some(h) = self.reading.take() {
                let (file, got, eof) = h.await.map_err(std::io::Error::other)??;
                self.ready.extend(got);
                self.eof = eof;
                self.file = Some(file);
            }
            if !self.eof {
                self.read_ahead();
            }
        }
        Ok(self.ready.pop_front())
    }
}

/// What a transfer writes before renaming it into place: `<name>.ferrossh-partial`.
pub const PARTIAL_SUFFIX: &str = ".ferrossh-partial";
/// Where an upload without posix-rename moves the file it replaces meanwhile.
const ASIDE_SUFFIX: &str = ".ferrossh-old";
/// The longest file name most file systems and SFTP servers take, in bytes.
const NAME_MAX: usize = 255;

/// `name` + `suffix`, or, where that is longer than a file name may be, the longest prefix
/// of `name` that fits with `~`, a hash of the whole name and the suffix: a file with a
/// 250-byte name still gets its temporary file next to it, always the same one (so resume
/// finds it), and two long names with the same prefix do not share one.
fn sidecar(name: &[u8], suffix: &str) -> Vec<u8> {
    if name.len() + suffix.len() <= NAME_MAX {
        return [name, suffix.as_bytes()].concat();
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher
    let hash = name.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let tag = format!("~{hash:016x}");
    let mut keep = NAME_MAX - suffix.len() - tag.len();
    // a UTF-8 name is cut between characters, so the result is still valid UTF-8
    if let Ok(text) = std::str::from_utf8(name) {
        while !text.is_char_boundary(keep) {
            keep -= 1;
        }
    }
    [&name[..keep], tag.as_bytes(), suffix.as_bytes()].concat()
}

#[cfg(unix)]
fn sidecar_path(path: &Path, suffix: &str) -> PathBuf {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let name = path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    path.with_file_name(std::ffi::OsString::from_vec(sidecar(name, suffix)))
}
#[cfg(not(unix))]
fn sidecar_path(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default();
    match name.to_str() {
        Some(text) => path.with_file_name(String::from_utf8_lossy(&sidecar(text.as_bytes(), suffix)).into_owned()),
        None => {
            let mut n = name.to_os_string();
            n.push(suffix);
            path.with_file_name(n)
        }
    }
}

fn remote_sidecar(remote: &str, suffix: &str) -> String {
    let (dir, name) = remote.rfind('/').map_or(("", remote), |i| remote.split_at(i + 1));
    format!("{dir}{}", String::from_utf8_lossy(&sidecar(name.as_bytes(), suffix)))
}

/// The partial file of a transfer to `dest`: a local path, or a remote one (`remote`).
pub fn partial_path(dest: &str, remote: bool) -> String {
    if remote {
        remote_sidecar(dest, PARTIAL_SUFFIX)
    } else {
        sidecar_path(Path::new(dest), PARTIAL_SUFFIX).to_string_lossy().into_owned()
    }
}

/// The file a local destination that is a symlink names (its target, made absolute; followed
/// to the end when it exists), so a download replaces that file and keeps the link, as
/// `sftp get` and fs.writeFile do. None when `path` is no symlink.
fn through_local_link(path: &Path) -> Option<PathBuf> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_symlink() {
        return None;
    }
    if let Ok(real) = std::fs::canonicalize(path) {
        return Some(real);
    }
    // dangling: the file it would name, which the download creates
    let target = std::fs::read_link(path).ok()?;
    Some(path.parent().map_or_else(|| target.clone(), |p| p.join(&target)))
}

fn partial_name(path: &Path) -> PathBuf {
    sidecar_path(path, PARTIAL_SUFFIX)
}

/// Remote file → local file. The bytes never leave Rust.
pub async fn download(sftp: &Sftp, remote: &str, local: &Path, opts: &TransferOptions, cancel: Option<&CancelToken>) -> Result<u64> {
    let through = if opts.replace_links { None } else { through_local_link(local) };
    let local = through.as_deref().unwrap_or(local);
    let handle = sftp.open_file(remote, "r", None).await?;
    // the local file lives out here: when the transfer is aborted, a write it had started
    // still lands before this returns, so the partial file no longer changes afterwards
    let mut file = None;
    let result = CancelToken::run(cancel, download_inner(sftp, &handle, remote, local, opts, &mut file)).await;
    if let Some(f) = file.as_mut() {
        let _ = f.settle().await;
    }
    drop(file);
    let _ = sftp.close(&handle).await;
    let partial = partial_name(local);
    match result {
        Ok(n) => Ok(n),
        Err(e) => {
            if !opts.keep_partial && !opts.resume {
                let _ = tokio::fs::remove_file(&partial).await;
            }
            Err(e)
        }
    }
}

async fn download_inner(sftp: &Sftp, handle: &str, remote: &str, local: &Path, opts: &TransferOptions, slot: &mut Option<LocalFile>) -> Result<u64> {
    let st = sftp.fstat(handle).await.map_err(|e| with_path(e, remote))?;
    if st.is_dir() {
        return Err(is_dir_error(remote, " (use downloadDir)"));
    }
    let total = st.size;
    // what is at the destination now: a directory fails at once (not after the whole file);
    // a device or FIFO is written into, as fs.writeFile and sftp get do (a rename would put a
    // plain file in its place); an existing file keeps its permission bits, as sftp get and
    // rsync leave them
    // (a link a tree transfer replaces is no file of its own: what it names is not looked at)
    let existing = match opts.replace_links {
        true => tokio::fs::symlink_metadata(local).await.ok().filter(|m| !m.file_type().is_symlink()),
        false => tokio::fs::metadata(local).await.ok(),
    };
    if existing.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(is_dir_error(&local.display().to_string(), ""));
    }
    if existing.as_ref().is_some_and(|m| !m.is_file()) {
        return download_into(sftp, handle, remote, local, total, opts, slot).await;
    }
    let partial = partial_name(local);
    let start = if opts.resume { tokio::fs::metadata(&partial).await.map(|m| m.len()).unwrap_or(0) } else { 0 };
    // a partial file longer than the remote file is not a prefix of it (the file shrank, or
    // it is some other file): start over
    let start = if total.is_some_and(|t| start > t) { 0 } else { start };
    if let Some(dir) = local.parent().filter(|d| !d.as_os_str().is_empty()) {
        match tokio::fs::metadata(dir).await {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(local_error(dir, "not a local directory", std::io::Error::from(std::io::ErrorKind::NotADirectory))),
            Err(e) => return Err(local_error(dir, "no such local directory", e)),
        }
    }
    let mut open = tokio::fs::OpenOptions::new();
    open.create(true).write(true).truncate(start == 0);
    // a new file gets the remote file's permission bits (and the umask), as OpenSSH's sftp
    // get creates it: a private file stays private, an executable stays executable
    #[cfg(unix)]
    let mode = st.mode.map_or(0o666, |m| m & 0o777) | 0o200;
    #[cfg(unix)]
    open.mode(mode);
    let mut file = open.open(&partial).await.map_err(|e| local_error(&partial, "cannot write", e))?;
    #[cfg(unix)]
    if let Some(m) = &existing {
        use std::os::unix::fs::PermissionsExt;
        let keep = std::fs::Permissions::from_mode(m.permissions().mode() & 0o7777);
        file.set_permissions(keep).await.map_err(|e| local_error(&partial, "cannot set the mode of", e))?;
    }
    if start > 0 {
        file.set_len(start).await.map_err(|e| local_error(&partial, "cannot resume", e))?;
        use tokio::io::AsyncSeekExt;
        file.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| local_error(&partial, "cannot resume", e))?;
    }
    let file = slot.insert(LocalFile::new(file.into_std().await));
    let mut sink = FileSink { file, path: &partial, done: start, rep: Reporter::new(opts.progress.clone(), total.unwrap_or(0)) };
    let concurrency = opts.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    let chunk = opts.chunk_size.unwrap_or(sftp.limits.read);
    read_ordered(sftp, handle, start, None, concurrency, chunk, &mut sink).await.map_err(|e| with_path(e, remote))?;
    sink.file.flush().await.map_err(|e| local_error(&partial, "cannot write", e))?;
    if opts.fsync {
        let f = Arc::clone(&sink.file.file);
        tokio::task::spawn_blocking(move || f.sync_all()).await.map_err(std::io::Error::other).and_then(|r| r).map_err(|e| local_error(&partial, "cannot sync", e))?;
    }
    let done = sink.done;
    let rep = sink.rep;
    // fewer bytes than the file's size: the transfer or the file was cut short. More is a file
    // that grew while it was read (a log) or whose size says nothing (/proc): read to its end.
    if let Some(t) = total {
        if done < t {
            return Err(Error::Sftp {
                code: "EIO".into(),
                status: 0,
                message: format!("EIO: download of '{remote}' stopped at {done} of {t} bytes"),
                path: Some(remote.into()), reason: None,
            });
        }
    }
    tokio::fs::rename(&partial, local).await.map_err(|e| local_error(local, "cannot rename into", e))?;
    rep.finish(done);
    Ok(done)
}

/// A download into what is no regular file (a device, a FIFO): opened and written as it is,
/// no partial file, no rename.
async fn download_into(sftp: &Sftp, handle: &str, remote: &str, local: &Path, total: Option<u64>, opts: &TransferOptions, slot: &mut Option<LocalFile>) -> Result<u64> {
    let file = tokio::fs::OpenOptions::new().write(true).truncate(true).open(local).await.map_err(|e| local_error(local, "cannot write", e))?;
    let file = slot.insert(LocalFile::new(file.into_std().await));
    let mut sink = FileSink { file, path: local, done: 0, rep: Reporter::new(opts.progress.clone(), total.unwrap_or(0)) };
    let concurrency = opts.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    let chunk = opts.chunk_size.unwrap_or(sftp.limits.read);
    read_ordered(sftp, handle, 0, None, concurrency, chunk, &mut sink).await.map_err(|e| with_path(e, remote))?;
    sink.file.flush().await.map_err(|e| local_error(local, "cannot write", e))?;
    sink.rep.finish(sink.done);
    Ok(sink.done)
}

/// Local file → remote file, written under a temporary name and renamed when complete.
pub async fn upload(sftp: &Sftp, local: &Path, remote: &str, opts: &TransferOptions, cancel: Option<&CancelToken>) -> Result<u64> {
    // a destination that is a symlink is written through, as `sftp put` and fs.writeFile do:
    // the file it names is replaced, the link stays
    let found = sftp.lstat(remote).await.ok();
    let through = match &found {
        Some(s) if s.is_symlink() && !opts.replace_links => match sftp.realpath(remote).await {
            Ok(real) => Some(real),
            // dangling (the server's realpath may refuse it): the file it names, which the
            // upload creates
            Err(_) => sftp.readlink(remote).await.ok().map(|t| {
                match remote.rfind('/') {
                    _ if t.starts_with('/') => t,
                    Some(0) => format!("/{t}"),
                    Some(i) => format!("{}/{t}", &remote[..i]),
                    None => t,
                }
            }),
        },
        _ => None,
    };
    // what is at the destination: the file a link names, or the name itself (a link a tree
    // transfer replaces is no file of its own)
    let existing = match &through {
        Some(real) => sftp.stat(real).await.ok(),
        None => found.filter(|s| !s.is_symlink()),
    };
    let remote = through.as_deref().unwrap_or(remote);
    if existing.as_ref().is_some_and(|s| s.is_dir()) {
        // refused before any byte is sent, not at the rename after all of them
        return Err(is_dir_error(remote, ""));
    }
    let partial = remote_sidecar(remote, PARTIAL_SUFFIX);
    let r = upload_inner(sftp, local, remote, &partial, existing.as_ref(), opts, cancel).await;
    if r.is_err() && !opts.keep_partial && !opts.resume {
        let _ = sftp.unlink(&partial).await;
    }
    r
}

async fn upload_inner(sftp: &Sftp, local: &Path, remote: &str, partial: &str, existing: Option<&super::Stat>, opts: &TransferOptions, cancel: Option<&CancelToken>) -> Result<u64> {
    let mut file = tokio::fs::File::open(local).await.map_err(|e| local_error(local, "cannot read", e))?;
    let meta = file.metadata().await.map_err(|e| local_error(local, "cannot read", e))?;
    if meta.is_dir() {
        return Err(Error::Sftp { code: "EISDIR".into(), status: 0, message: format!("EISDIR: {} is a directory (use uploadDir)", local.display()), path: Some(local.display().to_string()), reason: None });
    }
    let total = meta.len();
    // a device or FIFO is written into as it is, as sftp put does: a rename would put a plain
    // file in its place
    let special = existing.is_some_and(|s| s.mode.is_some_and(|m| m & 0o170000 != 0o100000 && m & 0o170000 != 0));
    let partial = if special { remote } else { partial };
    // a remote partial file longer than the source is not a prefix of it: start over (as a
    // download does) instead of failing the size check on every later attempt
    let start = if opts.resume && !special { sftp.stat(partial).await.ok().and_then(|s| s.size).filter(|&s| s <= total).unwrap_or(0) } else { 0 };
    // a new file gets the local file's permission bits unless told otherwise, as OpenSSH's
    // sftp put does; an existing one keeps its own (a private file stays private)
    let kept = existing.and_then(|s| s.mode).map(|m| m & 0o7777).filter(|_| opts.mode.is_none() && !special);
    let mode = opts.mode.or(kept).unwrap_or_else(|| local_mode(&meta));
    let handle = CancelToken::run(cancel, sftp.open_file(partial, if start > 0 { "r+" } else { "w" }, if special { None } else { Some(mode) })).await?;
    if let Some(m) = kept {
        // exactly those bits, whatever the server's umask makes of a new file's; a server that
        // takes no fsetstat (or refuses it) keeps what the open asked for, less its umask
        let set = super::Stat { mode: Some(m), ..Default::default() };
        let _ = sftp.fsetstat(&handle, &set).await;
    }
    let r = CancelToken::run(cancel, async {
        if start > 0 {
            use tokio::io::AsyncSeekExt;
            file.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| local_error(local, "cannot resume", e))?;
        }
        let chunk = opts.chunk_size.unwrap_or(sftp.limits.write).clamp(1, sftp.limits.write) as usize;
        let concurrency = opts.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1);
        let h: Arc<str> = Arc::from(handle.as_str());
        let dest: Arc<str> = Arc::from(remote);
        let mut inflight: VecDeque<Task<Result<()>>> = VecDeque::new();
        let mut offset = start;
        let mut rep = Reporter::new(opts.progress.clone(), total);
        let mut reader = LocalReader::new(file.try_clone().await.map_err(|e| local_error(local, "cannot read", e))?.into_std().await, Wire::write_header_len(&h), chunk);
        while let Some(buf) = reader.next().await.map_err(|e| local_error(local, "cannot read", e))? {
            let filled = buf.len() - Wire::write_header_len(&h);
            if inflight.len() >= concurrency {
                if let Some(t) = inflight.pop_front() {
                    t.join().await??;
                }
            }
            let (wire, hh, at, dead) = (Arc::clone(&sftp.wire), Arc::clone(&h), offset, sftp.dead.clone());
            let at_path = Arc::clone(&dest);
            inflight.push_back(Task(start_request(async move { super::unless_dead(&dead, wire.write_prepared(&hh, at, buf)).await.map_err(|e| sftp_error(e, Some(&at_path), "write")) })));
            offset += filled as u64;
            rep.tick(offset);
        }
        for t in inflight {
            t.join().await??;
        }
        if opts.fsync && sftp.extensions.fsync && !special {
            sftp.fsync(&handle).await.map_err(|e| with_path(e, remote))?;
        }
        if offset < total {
            // it shrank while it was read; one that grew was read to its end
            return Err(Error::Sftp { code: "EIO".into(), status: 0, message: format!("EIO: {} changed size during the upload", local.display()), path: Some(local.display().to_string()), reason: None });
        }
        rep.finish(offset);
        Ok(offset)
    })
    .await;
    // closed on every path, abort included: the server must not keep the file open
    let closed = sftp.close(&handle).await;
    let n = r?;
    closed.map_err(|e| with_path(e, remote))?;
    if special {
        return Ok(n);
    }
    let size = sftp.stat(partial).await?.size;
    if size.is_some_and(|s| s != n) {
        return Err(Error::Sftp { code: "EIO".into(), status: 0, message: format!("EIO: upload to '{remote}' has {} of {n} bytes", size.unwrap_or(0)), path: Some(remote.into()), reason: None });
    }
    if sftp.extensions.posix_rename {
        sftp.rename(partial, remote).await?;
    } else {
        replace_without_posix_rename(sftp, partial, remote).await?;
    }
    Ok(n)
}

#[cfg(unix)]
fn local_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}
#[cfg(not(unix))]
fn local_mode(_meta: &std::fs::Metadata) -> u32 {
    0o644
}

/// A plain SFTP rename refuses an existing target. The target is moved aside first, never
/// removed before the new file is in its place: if a rename fails, what was there is put back.
async fn replace_without_posix_rename(sftp: &Sftp, partial: &str, remote: &str) -> Result<()> {
    let Err(first) = sftp.rename(partial, remote).await else { return Ok(()) };
    if sftp.lstat(remote).await.is_err() {
        return Err(first); // nothing in the way: the rename failed for its own reason
    }
    let aside = remote_sidecar(remote, ASIDE_SUFFIX);
    if sftp.rename(remote, &aside).await.is_err() {
        return Err(first);
    }
    match sftp.rename(partial, remote).await {
        Ok(()) => {
            let _ = sftp.unlink(&aside).await;
            Ok(())
        }
        Err(e) => {
            let _ = sftp.rename(&aside, remote).await;
            Err(e)
        }
    }
}

/// A pipelined read of [start, end) into a bounded buffer that JavaScript drains like a
/// channel; the task waits when the reader stops (high-water mark).
pub fn read_stream(sftp: Arc<Sftp>, handle: String, start: u64, end: Option<u64>, concurrency: usize, chunk: u32, limits: BufferLimits) -> (Arc<ChannelShared>, CancelToken) {
    let shared = ChannelShared::new(0, limits);
    let out = Arc::clone(&shared);
    let stop = CancelToken::new();
    let stop2 = stop.clone();
    tokio::spawn(async move {
        let r = CancelToken::run(Some(&stop2), read_ordered(&sftp, &handle, start, end, concurrency, chunk, &mut BufferSink(Arc::clone(&out)))).await;
        // the handle is closed however the stream ends, a reader that went away included
        let _ = sftp.close(&handle).await;
        match r {
            Ok(_) => out.on_eof(),
            Err(e) => out.on_broken(e),
        }
    });
    (shared, stop)
}

/// Remote file → memory.
/// A whole file; a cancel (AbortSignal) stops the reads, and the handle is closed either way.
pub async fn read_file(sftp: &Sftp, path: &str, max: Option<u64>, token: Option<&CancelToken>) -> Result<Vec<u8>> {
    let handle = CancelToken::run(token, sftp.open_file(path, "r", None)).await?;
    let mut sink = VecSink { out: Vec::new(), max, path };
    let r = CancelToken::run(token, read_ordered(sftp, &handle, 0, None, DEFAULT_CONCURRENCY, sftp.limits.read, &mut sink)).await;
    let r = match r {
        Err(Error::Sftp { code, status, message, path: None, reason }) => {
            if sftp.stat(path).await.is_ok_and(|s| s.is_dir()) {
                Err(Error::Sftp { code: "EISDIR".into(), status, message: format!("EISDIR: read '{path}': it is a directory"), path: Some(path.into()), reason: None })
            } else {
                Err(Error::Sftp { code, status, message: message.replacen(": read:", &format!(": read '{path}':"), 1), path: Some(path.into()), reason })
            }
        }
        other => other,
    };
    let _ = sftp.close(&handle).await;
    r.map(|_| sink.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_name_gets_the_plain_suffix() {
        assert_eq!(partial_path("/d/x.tar", true), "/d/x.tar.ferrossh-partial");
        assert_eq!(partial_path("x", true), "x.ferrossh-partial");
        assert_eq!(partial_path("/d/x.tar", false), "/d/x.tar.ferrossh-partial");
        let fits = "n".repeat(NAME_MAX - PARTIAL_SUFFIX.len());
        assert_eq!(partial_path(&format!("/d/{fits}"), true), format!("/d/{fits}.ferrossh-partial"));
    }

    #[test]
    fn a_long_name_is_shortened_to_fit_stably_and_distinctly() {
        for len in [NAME_MAX - PARTIAL_SUFFIX.len() + 1, 250, 255] {
            let a = format!("{}a", "n".repeat(len - 1));
            let b = format!("{}b", "n".repeat(len - 1));
            let pa = partial_path(&format!("/d/{a}"), true);
            let pb = partial_path(&format!("/d/{b}"), true);
            let name = pa.strip_prefix("/d/").unwrap();
            assert_eq!(name.len(), NAME_MAX, "{len}");
            assert!(name.ends_with(PARTIAL_SUFFIX));
            assert!(name.starts_with(&"n".repeat(200)));
            assert_ne!(pa, pb, "two names with one prefix share no partial file");
            assert_eq!(pa, partial_path(&format!("/d/{a}"), true), "the same name always gets the same one");
            assert_eq!(pa, partial_path(&format!("/d/{a}"), false), "local and remote agree");
        }
    }

    #[test]
    fn a_long_utf8_name_is_cut_between_characters() {
        let name = "é".repeat(127); // 254 bytes
        let p = partial_path(&name, true);
        assert!(p.len() <= NAME_MAX);
        assert!(p.ends_with(PARTIAL_SUFFIX));
        assert!(p.starts_with("éé"));
        assert!(!p.contains('\u{fffd}'));
    }

    #[cfg(unix)]
    #[test]
    fn a_long_non_utf8_local_name_is_kept_as_bytes() {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let mut raw = vec![0xff_u8; 250];
        raw.push(b'x');
        let path = Path::new("/d").join(std::ffi::OsString::from_vec(raw.clone()));
        let p = partial_name(&path);
        let n = p.file_name().unwrap().as_bytes();
        assert_eq!(n.len(), NAME_MAX);
        assert!(n.starts_with(&raw[..200]));
        assert!(n.ends_with(PARTIAL_SUFFIX.as_bytes()));
    }
}
