//! The built-in SFTP server (protocol version 3 with the OpenSSH extensions clients use),
//! on russh-sftp's server side, serving one directory tree through [`Root`]: no request can
//! name, open, list or change anything outside it.

mod files;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use russh_sftp::protocol::{Attrs, Data, ExtendedReply, File, FileAttributes, Handle, Name, OpenFlags, Packet, Status, StatusCode, Version};
use russh_sftp::server::StatusReply;

use self::files::{
    apply_attrs, attrs_of, blocking, long_name, io_reply, make_symlink, ok, open_dir, open_options, path_reply, regular_file, read_at, read_only_reply, reply,
    setstat_path, statvfs_of, u64s, wire_strings, write_all_at, DirState,
};
use super::channel::ServerChannel;
use super::root::{PathError, Root};

/// Largest read answered and write accepted (what OpenSSH's sftp-server announces in
/// limits@openssh.com: a 256 KiB message minus room for the header).
const MAX_IO: u32 = 256 * 1024 - 1024;
const MAX_PACKET: u32 = 256 * 1024;
/// Open handles per session: a client cannot make us hold more files than this.
const MAX_HANDLES: usize = 256;
const READDIR_BATCH: usize = 128;

enum OpenHandle {
    File(Arc<std::fs::File>),
    Dir(Option<DirState>),
}

pub(crate) struct SftpServer {
    root: Arc<Root>,
    read_only: bool,
    handles: HashMap<String, OpenHandle>,
    next: u64,
}

/// Runs the SFTP server on a session channel until the channel ends.
pub(crate) fn serve(channel: Arc<ServerChannel>, root: Arc<Root>, read_only: bool) {
    let (ours, theirs) = tokio::io::duplex(MAX_PACKET as usize * 2);
    tokio::spawn(async move {
        let _ = super::bridge::bridge(channel, theirs, Some(0)).await;
    });
    let server = SftpServer { root, read_only, handles: HashMap::new(), next: 1 };
    let cfg = russh_sftp::server::Config { max_client_packet_len: MAX_PACKET + 64 };
    tokio::spawn(russh_sftp::server::run_with_config(ours, server, cfg));
}

impl SftpServer {
    fn file(&self, handle: &str) -> Result<Arc<std::fs::File>, StatusReply> {
        match self.handles.get(handle) {
            Some(OpenHandle::File(f)) => Ok(Arc::clone(f)),
            _ => Err(reply(StatusCode::Failure, "invalid handle")),
        }
    }

    fn add(&mut self, h: OpenHandle) -> Result<String, StatusReply> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(reply(StatusCode::Failure, "too many open handles"));
        }
        let name = self.next.to_string();
        self.next += 1;
        self.handles.insert(name.clone(), h);
        Ok(name)
    }

    fn writable(&self) -> Result<(), StatusReply> {
        if self.read_only {
            Err(read_only_reply())
        } else {
            Ok(())
        }
    }

    async fn rename_inner(&self, from: String, to: String, replace: bool) -> Result<(), StatusReply> {
        self.writable()?;
        let root = Arc::clone(&self.root);
        blocking(move || {
            let (pa, na) = root.parent(&from).map_err(path_reply)?;
            let (pb, nb) = root.parent(&to).map_err(path_reply)?;
            let (a, b) = (pa.entry(&na), pb.entry(&nb));
            // SSH_FXP_RENAME (draft-ietf-secsh-filexfer-02) fails when the target exists;
            // posix-rename@openssh.com replaces it
            if !replace && std::fs::symlink_metadata(&b).is_ok() {
                return Err(reply(StatusCode::Failure, "File exists"));
            }
            std::fs::rename(&a, &b).map_err(|e| io_reply(&e))
        })
        .await
    }

    async fn statvfs(&self, path: String) -> Result<Vec<u8>, StatusReply> {
        let root = Arc::clone(&self.root);
        blocking(move || {
            let real = root.resolve(&path, true).map_err(path_reply)?;
            statvfs_of(&real)
        })
        .await
    }
}

impl russh_sftp::server::Handler for SftpServer {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        reply(StatusCode::OpUnsupported, "Operation unsupported")
    }

    async fn init(&mut self, _version: u32, _extensions: HashMap<String, String>) -> Result<Version, Self::Error> {
        let mut v = Version::new();
        for (name, ver) in [("posix-rename@openssh.com", "1"), ("hardlink@openssh.com", "1"), ("fsync@openssh.com", "1"), ("limits@openssh.com", "1")] {
            v.extensions.insert(name.into(), ver.into());
        }
        if cfg!(unix) {
            v.extensions.insert("statvfs@openssh.com".into(), "2".into());
        }
        Ok(v)
    }

    async fn open(&mut self, id: u32, filename: String, pflags: OpenFlags, attrs: FileAttributes) -> Result<Handle, Self::Error> {
        let writes = pflags.intersects(OpenFlags::WRITE | OpenFlags::APPEND | OpenFlags::CREATE | OpenFlags::TRUNCATE);
        if writes {
            self.writable()?;
        }
        let root = Arc::clone(&self.root);
        let mode = attrs.permissions.unwrap_or(0o644);
        let file = blocking(move || {
            // truncated only once the opened file is known to be inside the root
            let flags = pflags - OpenFlags::TRUNCATE;
            let anchored = root.anchored(&filename).map_err(path_reply)?;
            let f = match open_options(flags, mode).open(&anchored.path) {
                Ok(f) => f,
                // the last component is a symlink: followed by path, to a file that exists
                // (creating through a symlink could land anywhere)
                Err(e) if is_final_symlink(&e) => {
                    let real = root.resolve(&filename, true).map_err(path_reply)?;
                    open_options(flags - (OpenFlags::CREATE | OpenFlags::EXCLUDE), mode).open(&real).map_err(|e| io_reply(&e))?
                }
                Err(e) => return Err(io_reply(&e)),
            };
            root.verify_open(&f).map_err(path_reply)?;
            let f = regular_file(f)?;
            if pflags.contains(OpenFlags::TRUNCATE) {
                f.set_len(0).map_err(|e| io_reply(&e))?;
            }
            Ok(f)
        })
        .await?;
        let handle = self.add(OpenHandle::File(Arc::new(file)))?;
        Ok(Handle { id, handle })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle) {
            Some(_) => Ok(ok(id)),
            None => Err(reply(StatusCode::Failure, "invalid handle")),
        }
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Result<Data, Self::Error> {
        let f = self.file(&handle)?;
        let len = len.min(MAX_IO) as usize;
        let data = blocking(move || {
            let mut buf = vec![0u8; len];
            let mut got = 0;
            while got < len {
                match read_at(&f, &mut buf[got..], offset + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_reply(&e)),
                }
            }
            buf.truncate(got);
            Ok(buf)
        })
        .await?;
        if data.is_empty() && len > 0 {
            return Err(reply(StatusCode::Eof, "End of file"));
        }
        Ok(Data { id, data })
    }

    async fn write(&mut self, id: u32, handle: String, offset: u64, data: Vec<u8>) -> Result<Status, Self::Error> {
        self.writable()?;
        let f = self.file(&handle)?;
        blocking(move || write_all_at(&f, &data, offset).map_err(|e| io_reply(&e))).await?;
        Ok(ok(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let root = Arc::clone(&self.root);
        let attrs = blocking(move || {
            let at = root.anchored(&path).map_err(path_reply)?;
            std::fs::symlink_metadata(&at.path).map(|m| attrs_of(&m)).map_err(|e| io_reply(&e))
        })
        .await?;
        Ok(Attrs { id, attrs })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let f = self.file(&handle)?;
        let attrs = blocking(move || f.metadata().map(|m| attrs_of(&m)).map_err(|e| io_reply(&e))).await?;
        Ok(Attrs { id, attrs })
    }

    async fn setstat(&mut self, id: u32, path: String, attrs: FileAttributes) -> Result<Status, Self::Error> {
        self.writable()?;
        let root = Arc::clone(&self.root);
        blocking(move || setstat_path(&root, &path, &attrs)).await?;
        Ok(ok(id))
    }

    async fn fsetstat(&mut self, id: u32, handle: String, attrs: FileAttributes) -> Result<Status, Self::Error> {
        self.writable()?;
        let f = self.file(&handle)?;
        blocking(move || apply_attrs(&f, &attrs).map_err(|e| io_reply(&e))).await?;
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let root = Arc::clone(&self.root);
        let state = blocking(move || {
            let real = root.resolve(&path, true).map_err(path_reply)?;
            open_dir(&root, real)
        })
        .await?;
        let handle = self.add(OpenHandle::Dir(Some(state)))?;
        Ok(Handle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        let Some(OpenHandle::Dir(slot)) = self.handles.get_mut(&handle) else {
            return Err(reply(StatusCode::Failure, "invalid handle"));
        };
        let Some(mut state) = slot.take() else {
            return Err(reply(StatusCode::Failure, "directory handle busy"));
        };
        let (state, files) = blocking(move || {
            let mut files = Vec::new();
            while files.len() < READDIR_BATCH {
                let Some(entry) = state.entries.next() else { break };
                let Ok(entry) = entry else { continue };
                // the entry's own name (bytes), not the shown one: a name that is not UTF-8
                // is listed (lossily), not left out
                let Ok(meta) = std::fs::symlink_metadata(state.dir.join(entry.file_name())) else { continue };
                let name = entry.file_name().to_string_lossy().into_owned();
                files.push(File { longname: long_name(&name, &meta), filename: name, attrs: attrs_of(&meta) });
            }
            Ok((state, files))
        })
        .await?;
        if let Some(OpenHandle::Dir(slot)) = self.handles.get_mut(&handle) {
            *slot = Some(state);
        }
        if files.is_empty() {
            return Err(reply(StatusCode::Eof, "End of directory"));
        }
        Ok(Name { id, files })
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        self.writable()?;
        let root = Arc::clone(&self.root);
        blocking(move || {
            let (dir, name) = root.parent(&filename).map_err(path_reply)?;
            std::fs::remove_file(dir.entry(&name)).map_err(|e| io_reply(&e))
        })
        .await?;
        Ok(ok(id))
    }

    async fn mkdir(&mut self, id: u32, path: String, attrs: FileAttributes) -> Result<Status, Self::Error> {
        self.writable()?;
        let root = Arc::clone(&self.root);
        blocking(move || {
            let (dir, name) = root.parent(&path).map_err(path_reply)?;
            let mut b = std::fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(attrs.permissions.unwrap_or(0o755) & 0o7777);
            }
            #[cfg(not(unix))]
            let _ = &attrs;
            b.create(dir.entry(&name)).map_err(|e| io_reply(&e))
        })
        .await?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Self::Error> {
        self.writable()?;
        let root = Arc::clone(&self.root);
        blocking(move || {
            let (dir, name) = root.parent(&path).map_err(path_reply)?;
            std::fs::remove_dir(dir.entry(&name)).map_err(|e| io_reply(&e))
        })
        .await?;
        Ok(ok(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let root = Arc::clone(&self.root);
        let shown = blocking(move || {
            let comps = root.components(&path).map_err(path_reply)?;
            match root.resolve(&path, true) {
                Ok(real) if real.exists() => Ok(root.to_virtual(&real).unwrap_or_else(|| Root::virtual_of(&comps))),
                Ok(_) => Ok(Root::virtual_of(&comps)),
                Err(PathError::Escape) => Err(path_reply(PathError::Escape)),
                // a path that does not exist yet still has a name (OpenSSH answers it too)
                Err(PathError::Io(_)) => Ok(Root::virtual_of(&comps)),
            }
        })
        .await?;
        Ok(Name { id, files: vec![File::dummy(shown)] })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let root = Arc::clone(&self.root);
        let attrs = blocking(move || {
            let real = root.resolve(&path, true).map_err(path_reply)?;
            std::fs::metadata(&real).map(|m| attrs_of(&m)).map_err(|e| io_reply(&e))
        })
        .await?;
        Ok(Attrs { id, attrs })
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> Result<Status, Self::Error> {
        self.rename_inner(oldpath, newpath, false).await?;
        Ok(ok(id))
    }

    async fn readlink(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let root = Arc::clone(&self.root);
        let target = blocking(move || {
            let at = root.anchored(&path).map_err(path_reply)?;
            let t = std::fs::read_link(&at.path).map_err(|e| io_reply(&e))?;
            Ok(root.shown_target(&t))
        })
        .await?;
        Ok(Name { id, files: vec![File::dummy(target)] })
    }

    /// OpenSSH sends SSH_FXP_SYMLINK with the target first and the link second (the reverse
    /// of the draft), and every common client follows it; so does sftp-server, and so do we.
    async fn symlink(&mut self, id: u32, linkpath: String, targetpath: String) -> Result<Status, Self::Error> {
        self.writable()?;
        let (target, link) = (linkpath, targetpath);
        let root = Arc::clone(&self.root);
        blocking(move || {
            let stored = root.symlink_target(&link, &target).map_err(path_reply)?;
            let (dir, name) = root.parent(&link).map_err(path_reply)?;
            make_symlink(&stored, &dir.entry(&name)).map_err(|e| io_reply(&e))
        })
        .await?;
        Ok(ok(id))
    }

    async fn extended(&mut self, id: u32, request: String, data: Vec<u8>) -> Result<Packet, Self::Error> {
        let bad = || reply(StatusCode::BadMessage, "malformed extended request");
        match request.as_str() {
            "posix-rename@openssh.com" => {
                let s = wire_strings(&data, 2).ok_or_else(bad)?;
                let [from, to]: [String; 2] = s.try_into().map_err(|_| bad())?;
                self.rename_inner(from, to, true).await?;
                Ok(Packet::Status(ok(id)))
            }
            "hardlink@openssh.com" => {
                self.writable()?;
                let s = wire_strings(&data, 2).ok_or_else(bad)?;
                let [from, to]: [String; 2] = s.try_into().map_err(|_| bad())?;
                let root = Arc::clone(&self.root);
                blocking(move || {
                    let src = root.anchored(&from).map_err(path_reply)?;
                    if std::fs::symlink_metadata(&src.path).map(|m| m.is_dir()).unwrap_or(false) {
                        return Err(reply(StatusCode::Failure, "cannot hard-link a directory"));
                    }
                    let (dir, name) = root.parent(&to).map_err(path_reply)?;
                    std::fs::hard_link(&src.path, dir.entry(&name)).map_err(|e| io_reply(&e))
                })
                .await?;
                Ok(Packet::Status(ok(id)))
            }
            "fsync@openssh.com" => {
                let s = wire_strings(&data, 1).ok_or_else(bad)?;
                let f = self.file(&s[0])?;
                blocking(move || f.sync_all().map_err(|e| io_reply(&e))).await?;
                Ok(Packet::Status(ok(id)))
            }
            "statvfs@openssh.com" => {
                let s = wire_strings(&data, 1).ok_or_else(bad)?;
                let path = s.into_iter().next().ok_or_else(bad)?;
                let data = self.statvfs(path).await?;
                Ok(Packet::ExtendedReply(ExtendedReply { id, data }))
            }
            "limits@openssh.com" => {
                let data = u64s(&[MAX_PACKET as u64, MAX_IO as u64, MAX_IO as u64, MAX_HANDLES as u64]);
                Ok(Packet::ExtendedReply(ExtendedReply { id, data }))
            }
            _ => Err(self.unimplemented()),
        }
    }
}

/// An open with `O_NOFOLLOW` found a symlink as the last component.
fn is_final_symlink(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}
