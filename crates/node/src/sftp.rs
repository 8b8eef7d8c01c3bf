//! `NativeSftp`: the SFTP client of crates/core for lib/sftp.ts. Its calls settle through a
//! `done(err, value)` callback in the connection's pending set (pending.rs), not a napi promise.

use std::path::PathBuf;
use std::sync::Arc;

use ferrossh_core::sftp::{self, DirEntry, Sftp, Stat, TransferOptions};
use ferrossh_core::{BufferLimits, CancelToken, ChannelShared, Error};
use napi::bindgen_prelude::{Buffer, FnArgs, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;
use tokio::sync::Mutex;

use crate::cancel::NativeCancel;
use crate::client::NativeClient;
use crate::pending::Pending;
use crate::errors::{self, IntoNapi};

#[napi(object)]
pub struct NativeStat {
    pub size: Option<f64>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
    pub atime: Option<u32>,
    pub mtime: Option<u32>,
}

impl From<Stat> for NativeStat {
    fn from(s: Stat) -> Self {
        NativeStat { size: s.size.map(|v| v as f64), uid: s.uid, gid: s.gid, mode: s.mode, atime: s.atime, mtime: s.mtime }
    }
}

fn to_stat(s: NativeStat) -> napi::Result<Stat> {
    let size = match s.size {
        None => None,
        Some(v) if v.is_finite() && v >= 0.0 && v <= 9.007_199_254_740_991e15 => Some(v as u64),
        Some(_) => return Err(errors::to_napi(Error::config("size", "size must be a non-negative integer"))),
    };
    Ok(Stat { size, uid: s.uid, gid: s.gid, mode: s.mode, atime: s.atime, mtime: s.mtime })
}

#[napi(object)]
pub struct NativeDirEntry {
    pub name: String,
    pub longname: String,
    pub stat: NativeStat,
}

impl From<DirEntry> for NativeDirEntry {
    fn from(e: DirEntry) -> Self {
        NativeDirEntry { name: e.name, longname: e.longname, stat: e.stat.into() }
    }
}

#[napi(object)]
pub struct NativeFsStats {
    pub block_size: f64,
    pub fragment_size: f64,
    pub blocks: f64,
    pub blocks_free: f64,
    pub blocks_avail: f64,
    pub files: f64,
    pub files_free: f64,
    pub files_avail: f64,
    /// As a decimal string: file system ids use all 64 bits.
    pub fsid: String,
    pub flags: f64,
    pub name_max: f64,
}

#[napi(object)]
pub struct NativeSftpInfo {
    pub extensions: Vec<String>,
    pub max_read: u32,
    pub max_write: u32,
    pub max_open_handles: Option<f64>,
}

#[napi(object)]
pub struct NativeTransferOptions {
    pub concurrency: Option<u32>,
    pub chunk_size: Option<u32>,
    pub resume: Option<bool>,
    pub keep_partial: Option<bool>,
    pub mode: Option<u32>,
    pub fsync: Option<bool>,
    /// A destination that is a symlink is replaced, not written through (tree transfers:
    /// a link the transfer made from the server's listing must not lead a file elsewhere).
    pub replace_links: Option<bool>,
}

/// Weak: progress reports never keep the process alive.
type ProgressFn = ThreadsafeFunction<FnArgs<(f64, f64)>, (), FnArgs<(f64, f64)>, Status, false, true>;

fn transfer_options(o: Option<NativeTransferOptions>, progress: Option<ProgressFn>) -> napi::Result<TransferOptions> {
    let o = o.unwrap_or(NativeTransferOptions { concurrency: None, chunk_size: None, resume: None, keep_partial: None, mode: None, fsync: None, replace_links: None });
    if o.concurrency.is_some_and(|c| c == 0 || c > 256) {
        return Err(errors::to_napi(Error::config("concurrency", "concurrency must be between 1 and 256")));
    }
    if o.chunk_size.is_some_and(|c| c == 0) {
        return Err(errors::to_napi(Error::config("chunkSize", "chunkSize must be positive")));
    }
    let progress = progress.map(|f| {
        let f = Arc::new(f);
        Arc::new(move |done: u64, total: u64| {
            f.call((done as f64, total as f64).into(), ThreadsafeFunctionCallMode::NonBlocking);
        }) as sftp::Progress
    });
    Ok(TransferOptions {
        concurrency: o.concurrency.map(|c| c as usize),
        chunk_size: o.chunk_size,
        progress,
        resume: o.resume.unwrap_or(false),
        keep_partial: o.keep_partial.unwrap_or(false),
        mode: o.mode,
        fsync: o.fsync.unwrap_or(false),
        replace_links: o.replace_links.unwrap_or(false),
    })
}

/// The partial file a download to the local path `dest` (`remote` false) or an upload to the
/// remote path `dest` writes before renaming it into place.
#[napi]
pub fn sftp_partial_path(dest: String, remote: bool) -> String {
    sftp::partial_path(&dest, remote)
}

#[napi]
pub struct NativeSftp {
    inner: Arc<Sftp>,
    /// The connection's calls in flight: these, too, hold the process only while it is ref()'d.
    pending: Arc<Pending>,
}

#[napi]
impl NativeSftp {
    /// Starts the SFTP subsystem on `client`; `done(err, sftp)` hands it over.
    #[napi(ts_args_type = "client: NativeClient, cancel: NativeCancel | undefined | null, done: (err: Error | null, value?: NativeSftp) => void")]
    pub fn open(env: Env, client: &NativeClient, cancel: Option<&NativeCancel>, done: Function<'_, NativeSftp, ()>) -> napi::Result<()> {
        let token = cancel.map(|c| c.token.clone());
        let core = client.core_arc();
        let pending = Arc::clone(client.pending());
        client.pending().start(&env, done, async move {
            let s = Sftp::open(&core, token.as_ref()).await.js()?;
            Ok(NativeSftp { inner: Arc::new(s), pending })
        })
    }

    /// Ends the session: its channel closes.
    #[napi]
    pub fn close(&self) {
        self.inner.end();
    }

    #[napi(getter)]
    pub fn info(&self) -> NativeSftpInfo {
        let mut ext: Vec<String> = self.inner.extensions.all.keys().cloned().collect();
        ext.sort();
        NativeSftpInfo { extensions: ext, max_read: self.inner.limits.read, max_write: self.inner.limits.write, max_open_handles: self.inner.limits.open_handles.map(|v| v as f64) }
    }

    #[napi(ts_args_type = "path: string, done: (err: Error | null, value?: NativeStat) => void")]
    pub fn stat(&self, env: Env, path: String, done: Function<'_, NativeStat, ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.stat(&path).await.map(Into::into).js()
        })
    }
    #[napi(ts_args_type = "path: string, done: (err: Error | null, value?: NativeStat) => void")]
    pub fn lstat(&self, env: Env, path: String, done: Function<'_, NativeStat, ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.lstat(&path).await.map(Into::into).js()
        })
    }
    #[napi(ts_args_type = "path: string, stat: NativeStat, done: (err: Error | null, value?: undefined) => void")]
    pub fn setstat(&self, env: Env, path: String, stat: NativeStat, done: Function<'_, (), ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            let s = to_stat(stat)?;
            inner.setstat(&path, &s).await.js()
        })
    }
    #[napi(ts_args_type = "path: string, done: (err: Error | null, value?: string) => void")]
    pub fn realpath(&self, env: Env, path: String, done: Function<'_, String, ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.realpath(&path).await.js()
        })
    }
    #[napi(ts_args_type = "path: string, done: (err: Error | null, value?: string) => void")]
    pub fn readlink(&self, env: Env, path: String, done: Function<'_, String, ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.readlink(&path).await.js()
        })
    }
    #[napi(ts_args_type = "target: string, path: string, done: (err: Error | null, value?: undefined) => void")]
    pub fn symlink(&self, env: Env, target: String, path: String, done: Function<'_, (), ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.symlink(&target, &path).await.js()
        })
    }
    #[napi(ts_args_type = "path: string, mode: number | undefined | null, done: (err: Error | null, value?: undefined) => void")]
    pub fn mkdir(&self, env: Env, path: String, mode: Option<u32>, done: Function<'_, (), ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.mkdir(&path, mode).await.js()
        })
    }
    #[napi(ts_args_type = "path: string, done: (err: Error | null, value?: undefined) => void")]
    pub fn rmdir(&self, env: Env, path: String, done: Function<'_, (), ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.rmdir(&path).await.js()
        })
    }
    #[napi(ts_args_type = "path: string, done: (err: Error | null, value?: undefined) => void")]
    pub fn unlink(&self, env: Env, path: String, done: Function<'_, (), ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.unlink(&path).await.js()
        })
    }
    #[napi(ts_args_type = "from: string, to: string, done: (err: Error | null, value?: undefined) => void")]
    pub fn rename(&self, env: Env, from: String, to: String, done: Function<'_, (), ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.rename(&from, &to).await.js()
        })
    }
    #[napi(ts_args_type = "from: string, to: string, done: (err: Error | null, value?: undefined) => void")]
    pub fn hardlink(&self, env: Env, from: String, to: String, done: Function<'_, (), ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.hardlink(&from, &to).await.js()
        })
    }
    #[napi(ts_args_type = "from: string, to: string, exclusive: boolean, done: (err: Error | null, value?: undefined) => void")]
    pub fn copy_data(&self, env: Env, from: String, to: String, exclusive: bool, done: Function<'_, (), ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.copy_data(&from, &to, exclusive).await.js()
        })
    }
    #[napi(ts_args_type = "path: string, done: (err: Error | null, value?: NativeFsStats) => void")]
    pub fn statvfs(&self, env: Env, path: String, done: Function<'_, NativeFsStats, ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            let s = inner.statvfs(&path).await.js()?;
            Ok(NativeFsStats {
                block_size: s.block_size as f64,
                fragment_size: s.fragment_size as f64,
                blocks: s.blocks as f64,
                blocks_free: s.blocks_free as f64,
                blocks_avail: s.blocks_avail as f64,
                files: s.files as f64,
                files_free: s.files_free as f64,
                files_avail: s.files_avail as f64,
                fsid: s.fsid.to_string(),
                flags: s.flags as f64,
                name_max: s.name_max as f64,
            })
        })
    }
    #[napi(ts_args_type = "path: string, done: (err: Error | null, value?: string) => void")]
    pub fn expand_path(&self, env: Env, path: String, done: Function<'_, String, ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.expand_path(&path).await.js()
        })
    }
    #[napi(ts_args_type = "path: string, done: (err: Error | null, value?: Array<NativeDirEntry>) => void")]
    pub fn readdir(&self, env: Env, path: String, done: Function<'_, Vec<NativeDirEntry>, ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            Ok(inner.readdir(&path).await.js()?.into_iter().map(Into::into).collect())
        })
    }
    #[napi(ts_args_type = "path: string, done: (err: Error | null, value?: string) => void")]
    pub fn opendir(&self, env: Env, path: String, done: Function<'_, String, ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.opendir(&path).await.js()
        })
    }
    /// One batch of entries; null at the end.
    #[napi(ts_args_type = "handle: string, path: string, done: (err: Error | null, value?: Array<NativeDirEntry> | null) => void")]
    pub fn readdir_batch(&self, env: Env, handle: String, path: String, done: Function<'_, Option<Vec<NativeDirEntry>>, ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            Ok(inner.readdir_batch(&handle, &path).await.js()?.map(|v| v.into_iter().map(Into::into).collect()))
        })
    }
    #[napi(ts_args_type = "path: string, flags: string, mode: number | undefined | null, done: (err: Error | null, value?: string) => void")]
    pub fn open_file(&self, env: Env, path: String, flags: String, mode: Option<u32>, done: Function<'_, String, ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.open_file(&path, &flags, mode).await.js()
        })
    }
    #[napi(ts_args_type = "handle: string, done: (err: Error | null, value?: undefined) => void")]
    pub fn close_handle(&self, env: Env, handle: String, done: Function<'_, (), ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.close(&handle).await.js()
        })
    }
    /// Up to `length` bytes at `position`; empty at end of file.
    #[napi(ts_args_type = "handle: string, position: number, length: number, done: (err: Error | null, value?: Buffer) => void")]
    pub fn read(&self, env: Env, handle: String, position: f64, length: u32, done: Function<'_, Buffer, ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            Ok(inner.read(&handle, position as u64, length).await.js()?.into())
        })
    }
    #[napi(ts_args_type = "handle: string, position: number, data: Buffer, done: (err: Error | null, value?: undefined) => void")]
    pub fn write(&self, env: Env, handle: String, position: f64, data: Buffer, done: Function<'_, (), ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            let d = data.to_vec();
            inner.write(&handle, position as u64, &d).await.js()
        })
    }
    #[napi(ts_args_type = "handle: string, done: (err: Error | null, value?: NativeStat) => void")]
    pub fn fstat(&self, env: Env, handle: String, done: Function<'_, NativeStat, ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.fstat(&handle).await.map(Into::into).js()
        })
    }
    #[napi(ts_args_type = "handle: string, stat: NativeStat, done: (err: Error | null, value?: undefined) => void")]
    pub fn fsetstat(&self, env: Env, handle: String, stat: NativeStat, done: Function<'_, (), ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            let s = to_stat(stat)?;
            inner.fsetstat(&handle, &s).await.js()
        })
    }
    #[napi(ts_args_type = "handle: string, done: (err: Error | null, value?: undefined) => void")]
    pub fn fsync(&self, env: Env, handle: String, done: Function<'_, (), ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            inner.fsync(&handle).await.js()
        })
    }
    #[napi(ts_args_type = "path: string, max: number | undefined | null, cancel: NativeCancel | undefined | null, done: (err: Error | null, value?: Buffer) => void")]
    pub fn read_file(&self, env: Env, path: String, max: Option<f64>, cancel: Option<&NativeCancel>, done: Function<'_, Buffer, ()>) -> napi::Result<()> {
        let token = cancel.map(|c| c.token.clone());
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            Ok(sftp::read_file(&inner, &path, max.map(|m| m as u64), token.as_ref()).await.js()?.into())
        })
    }
    #[napi(ts_args_type = "path: string, data: Buffer, flags: string, mode: number | undefined | null, cancel: NativeCancel | undefined | null, done: (err: Error | null, value?: undefined) => void")]
    pub fn write_file(&self, env: Env, path: String, data: Buffer, flags: String, mode: Option<u32>, cancel: Option<&NativeCancel>, done: Function<'_, (), ()>) -> napi::Result<()> {
        let token = cancel.map(|c| c.token.clone());
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            let t = token.as_ref();
            let h = CancelToken::run(t, inner.open_file(&path, &flags, mode)).await.js()?;
            let d = data.to_vec();
            // an abort stops the writes; the handle is closed either way
            let r = CancelToken::run(t, async {
                let start = if flags.starts_with('a') { inner.fstat(&h).await.ok().and_then(|s| s.size).unwrap_or(0) } else { 0 };
                inner.write(&h, start, &d).await
            })
            .await;
            let c = inner.close(&h).await;
            r.js()?;
            c.js()
        })
    }

    /// Remote → local, path to path; `done` gets the bytes transferred.
    #[napi(ts_args_type = "remote: string, local: string, options: NativeTransferOptions | undefined | null, progress: ((done: number, total: number) => void) | undefined | null, cancel: NativeCancel | undefined | null, done: (err: Error | null, value?: number) => void")]
    pub fn download(&self, env: Env, remote: String, local: String, options: Option<NativeTransferOptions>, progress: Option<ProgressFn>, cancel: Option<&NativeCancel>, done: Function<'_, f64, ()>) -> napi::Result<()> {
        let o = transfer_options(options, progress)?;
        let token = cancel.map(|c| c.token.clone());
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            Ok(sftp::download(&inner, &remote, &PathBuf::from(local), &o, token.as_ref()).await.js()? as f64)
        })
    }

    /// Local → remote, path to path.
    #[napi(ts_args_type = "local: string, remote: string, options: NativeTransferOptions | undefined | null, progress: ((done: number, total: number) => void) | undefined | null, cancel: NativeCancel | undefined | null, done: (err: Error | null, value?: number) => void")]
    pub fn upload(&self, env: Env, local: String, remote: String, options: Option<NativeTransferOptions>, progress: Option<ProgressFn>, cancel: Option<&NativeCancel>, done: Function<'_, f64, ()>) -> napi::Result<()> {
        let o = transfer_options(options, progress)?;
        let token = cancel.map(|c| c.token.clone());
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            Ok(sftp::upload(&inner, &PathBuf::from(local), &remote, &o, token.as_ref()).await.js()? as f64)
        })
    }

    /// A pipelined read of [start, end) that JS drains like a channel.
    #[napi(ts_args_type = "path: string, start: number, end: number | undefined | null, concurrency: number | undefined | null, highWaterMark: number | undefined | null, done: (err: Error | null, value?: NativeBufferReader) => void")]
    pub fn read_stream(&self, env: Env, path: String, start: f64, end: Option<f64>, concurrency: Option<u32>, high_water_mark: Option<f64>, done: Function<'_, NativeBufferReader, ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        self.pending.start(&env, done, async move {
            let h = inner.open_file(&path, "r", None).await.js()?;
            let hwm = high_water_mark.filter(|h| h.is_finite() && *h >= 65536.0).map(|h| h as usize).unwrap_or(4 * 1024 * 1024);
            let limits = BufferLimits { high_water_mark: hwm, wake_bytes: (hwm / 4).clamp(32 * 1024, 1024 * 1024) };
            let conc = concurrency.unwrap_or(sftp::DEFAULT_CONCURRENCY as u32).clamp(1, 256) as usize;
            let (shared, stop) = sftp::read_stream(Arc::clone(&inner), h, start as u64, end.map(|e| e as u64), conc, inner.limits.read, limits);
            Ok(NativeBufferReader { shared, stop, reader: Default::default() })
        })
    }

    /// A pipelined writer: writes settle once queued (up to `concurrency` in flight).
    #[napi(ts_args_type = "path: string, flags: string, start: number | undefined | null, mode: number | undefined | null, concurrency: number | undefined | null, done: (err: Error | null, value?: NativeSftpWriter) => void")]
    pub fn write_stream(&self, env: Env, path: String, flags: String, start: Option<f64>, mode: Option<u32>, concurrency: Option<u32>, done: Function<'_, NativeSftpWriter, ()>) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        let pending = Arc::clone(&self.pending);
        self.pending.start(&env, done, async move {
            let h = inner.open_file(&path, &flags, mode).await.js()?;
            let offset = match start {
                Some(s) => s as u64,
                None if flags.starts_with('a') => inner.fstat(&h).await.ok().and_then(|s| s.size).unwrap_or(0),
                None => 0,
            };
            Ok(NativeSftpWriter {
                sftp: Arc::clone(&inner),
                pending,
                state: Arc::new(Mutex::new(WriterState { handle: Some(h), offset, inflight: std::collections::VecDeque::new() })),
                acks: Arc::new(std::sync::Mutex::new(Acks { start: offset, prefix: offset, done: Default::default() })),
                concurrency: concurrency.unwrap_or(sftp::DEFAULT_CONCURRENCY as u32).clamp(1, 256) as usize,
            })
        })
    }
}

/// A bounded buffer filled by a Rust task, drained synchronously by JS (same contract as
/// NativeChannel.read).
#[napi]
pub struct NativeBufferReader {
    shared: Arc<ChannelShared>,
    stop: ferrossh_core::CancelToken,
    reader: crate::channel::Reader,
}

#[napi]
impl NativeBufferReader {
    #[napi]
    pub fn set_waker(&self, cb: Function<u32, ()>) -> napi::Result<()> {
        self.shared.set_waker(Some(crate::channel::Reader::waker(cb)?));
        Ok(())
    }

    #[napi]
    pub fn read(&self, _stream: u32, buf: Buffer) -> i32 {
        self.reader.read(&self.shared, 0, buf)
    }

    #[napi]
    pub fn take_error(&self) -> Option<String> {
        self.reader.take_error()
    }

    /// Stops reading (the reader is gone).
    #[napi]
    pub fn close(&self) {
        self.shared.discard();
        self.stop.cancel();
    }
}

struct WriterState {
    handle: Option<String>,
    offset: u64,
    inflight: std::collections::VecDeque<tokio::task::JoinHandle<ferrossh_core::Result<()>>>,
}

/// What the server has confirmed: writes finish in any order, and only the unbroken run
/// from the start counts (a resume from there leaves no hole).
struct Acks {
    start: u64,
    /// The end of the confirmed run from `start`.
    prefix: u64,
    /// Confirmed writes past a gap: offset → end.
    done: std::collections::BTreeMap<u64, u64>,
}

impl Acks {
    fn confirm(&mut self, at: u64, end: u64) {
        self.done.insert(at, end);
        while let Some(e) = self.done.remove(&self.prefix) {
            self.prefix = e;
        }
    }
}

#[napi]
pub struct NativeSftpWriter {
    sftp: Arc<Sftp>,
    pending: Arc<Pending>,
    state: Arc<Mutex<WriterState>>,
    acks: Arc<std::sync::Mutex<Acks>>,
    concurrency: usize,
}

#[napi]
impl NativeSftpWriter {
    /// Queues `data` (split at the server's write limit); waits only while `concurrency`
    /// writes are in flight. An earlier write's failure is reported here.
    #[napi(ts_args_type = "data: Buffer, done: (err: Error | null, value?: undefined) => void")]
    pub fn write(&self, env: Env, data: Buffer, done: Function<'_, (), ()>) -> napi::Result<()> {
        let sftp = Arc::clone(&self.sftp);
        let state = Arc::clone(&self.state);
        let acks = Arc::clone(&self.acks);
        let concurrency = self.concurrency;
        self.pending.start(&env, done, async move {
            let bytes = data.to_vec();
            let chunk = sftp.limits.write as usize;
            let mut st = state.lock().await;
            let Some(handle) = st.handle.clone() else {
                return Err(errors::to_napi(Error::Sftp { code: "EBADF".into(), status: 0, message: "EBADF: write after close".into(), path: None, reason: None }));
            };
            for piece in bytes.chunks(chunk.max(1)) {
                while st.inflight.len() >= concurrency {
                    if let Some(t) = st.inflight.pop_front() {
                        t.await.map_err(|_| errors::to_napi(Error::Protocol { message: "write task failed".into() }))?.js()?;
                    }
                }
                let (s, h, at, p, acks) = (Arc::clone(&sftp), handle.clone(), st.offset, piece.to_vec(), Arc::clone(&acks));
                st.inflight.push_back(sftp::start_request(async move {
                    s.write(&h, at, &p).await?;
                    acks.lock().unwrap_or_else(|e| e.into_inner()).confirm(at, at + p.len() as u64);
                    Ok(())
                }));
                st.offset += piece.len() as u64;
            }
            Ok(())
        })
    }

    /// Bytes the server has confirmed, from the start without a gap (writes in flight, or
    /// lost with the connection, are not counted).
    #[napi]
    pub fn confirmed(&self) -> f64 {
        let a = self.acks.lock().unwrap_or_else(|e| e.into_inner());
        (a.prefix - a.start) as f64
    }

    /// Waits for every write and closes the file.
    #[napi(ts_args_type = "done: (err: Error | null, value?: undefined) => void")]
    pub fn close(&self, env: Env, done: Function<'_, (), ()>) -> napi::Result<()> {
        let sftp = Arc::clone(&self.sftp);
        let state = Arc::clone(&self.state);
        self.pending.start(&env, done, async move {
            let mut st = state.lock().await;
            let mut first_err = None;
            while let Some(t) = st.inflight.pop_front() {
                match t.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        first_err.get_or_insert(e);
                    }
                    Err(_) => {
                        first_err.get_or_insert(Error::Protocol { message: "write task failed".into() });
                    }
                }
            }
            if let Some(h) = st.handle.take() {
                if let Err(e) = sftp.close(&h).await {
                    first_err.get_or_insert(e);
                }
            }
            match first_err {
                Some(e) => Err(errors::to_napi(e)),
                None => Ok(()),
            }
        })
    }
}
