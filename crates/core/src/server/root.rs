//! Confinement of SFTP paths to a root directory. The client sees the root as `/`:
//! absolute and relative paths are both taken from there, `..` may not climb above it, and
//! a path whose real location (symlinks resolved) is outside it is refused.
//!
//! Checking a path and then using it leaves a window in which a directory on the way could
//! be swapped for a symlink. On Linux the window is closed: files are opened without
//! following a final symlink and the opened file's real path is checked
//! (`/proc/self/fd`), and operations on names (remove, rename, mkdir, …) go through an
//! opened, checked parent directory (`/proc/self/fd/N/name`) rather than a path walk, as
//! do opens, hard links, `lstat` and `readlink`. Only a final symlink that is followed (to
//! open or stat what it points to) is resolved by path, and what that opens is checked before
//! anything is changed (a truncation waits for the check).

use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a path was not usable.
#[derive(Debug)]
pub(crate) enum PathError {
    /// It leads outside the root (`..` above it, or a symlink out of it).
    Escape,
    Io(io::Error),
}

impl From<io::Error> for PathError {
    fn from(e: io::Error) -> Self {
        PathError::Io(e)
    }
}

pub(crate) type PathResult<T> = std::result::Result<T, PathError>;

pub(crate) struct Root {
    real: PathBuf,
}

/// A directory opened and checked to be inside the root, through which one entry is named.
pub(crate) struct ParentDir {
    /// Kept open so `/proc/self/fd/N` stays this directory while it is used.
    _dir: Option<std::fs::File>,
    path: PathBuf,
}

impl ParentDir {
    /// The entry `name` in this directory, as a path the OS resolves through the opened
    /// directory itself (Linux) or through its checked real path.
    pub(crate) fn entry(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

/// The client's path named through the opened, checked directory that holds its last
/// component (on Linux `/proc/self/fd/N/name`): no directory on the way can be swapped for a
/// symlink between the check and the use. The last component itself is not followed.
pub(crate) struct Anchored {
    _dir: Option<ParentDir>,
    pub(crate) path: PathBuf,
}

impl Root {
    /// See `Anchored`; the root itself is its real path.
    pub(crate) fn anchored(&self, p: &str) -> PathResult<Anchored> {
        if self.components(p)?.is_empty() {
            return Ok(Anchored { _dir: None, path: self.real.clone() });
        }
        let (dir, name) = self.parent(p)?;
        let path = dir.entry(&name);
        Ok(Anchored { _dir: Some(dir), path })
    }

    pub(crate) fn new(path: &Path) -> io::Result<Root> {
        let real = std::fs::canonicalize(path)?;
        if !std::fs::metadata(&real)?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a directory", real.display())));
        }
        Ok(Root { real })
    }

    /// The client's path as components below the root, `.` and `..` applied lexically; a
    /// `..` at the root stays there, as `/..` is `/` (a chrooted sftp-server answers so).
    pub(crate) fn components(&self, p: &str) -> PathResult<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for part in p.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    out.pop();
                }
                name => {
                    if name.contains('\0') || (cfg!(windows) && (name.contains('\\') || name.contains(':'))) {
                        return Err(PathError::Escape);
                    }
                    out.push(name.to_string());
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn virtual_of(components: &[String]) -> String {
        format!("/{}", components.join("/"))
    }

    fn check(&self, real: &Path) -> PathResult<()> {
        if real.starts_with(&self.real) {
            Ok(())
        } else {
            Err(PathError::Escape)
        }
    }

    /// The virtual (client-visible) path of a real path inside the root.
    pub(crate) fn to_virtual(&self, real: &Path) -> Option<String> {
        let rest = real.strip_prefix(&self.real).ok()?;
        let parts: Vec<String> = rest.components().filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        }).collect();
        Some(Self::virtual_of(&parts))
    }

    /// The real path of the client's path. Every directory on the way is resolved and must
    /// stay inside the root; with `follow` the last component is resolved too (a symlink to
    /// outside is refused; a missing last component is returned as is). A dangling symlink
    /// is a missing file (NotFound), as for stat(2): nothing created goes through this path
    /// (creating opens name their file with O_NOFOLLOW, see `anchored`).
    pub(crate) fn resolve(&self, p: &str, follow: bool) -> PathResult<PathBuf> {
        let comps = self.components(p)?;
        let Some((name, dirs)) = comps.split_last() else {
            return Ok(self.real.clone());
        };
        let parent = self.resolve_dir(dirs)?;
        let candidate = parent.join(name);
        if !follow {
            return Ok(candidate);
        }
        match std::fs::canonicalize(&candidate) {
            Ok(real) => {
                self.check(&real)?;
                Ok(real)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match std::fs::symlink_metadata(&candidate) {
                Ok(m) if m.file_type().is_symlink() => Err(PathError::Io(io::Error::new(io::ErrorKind::NotFound, "a symlink to nothing"))),
                _ => Ok(candidate),
            },
            Err(e) => Err(e.into()),
        }
    }

    fn resolve_dir(&self, dirs: &[String]) -> PathResult<PathBuf> {
        let mut p = self.real.clone();
        for d in dirs {
            p.push(d);
        }
        let real = std::fs::canonicalize(&p)?;
        self.check(&real)?;
        Ok(real)
    }

    /// Opens the directory holding the last component of `p` (resolved and checked) and
    /// returns it with that component's name. The root itself has no name to operate on.
    pub(crate) fn parent(&self, p: &str) -> PathResult<(ParentDir, String)> {
        let comps = self.components(p)?;
        let Some((name, dirs)) = comps.split_last() else {
            return Err(PathError::Io(io::Error::new(io::ErrorKind::PermissionDenied, "the root directory itself cannot be changed")));
        };
        let real = self.resolve_dir(dirs)?;
        Ok((self.open_checked_dir(real)?, name.clone()))
    }

    #[cfg(target_os = "linux")]
    fn open_checked_dir(&self, real: PathBuf) -> PathResult<ParentDir> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&real)?;
        self.verify_open(&dir)?;
        let path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        Ok(ParentDir { _dir: Some(dir), path })
    }

    #[cfg(not(target_os = "linux"))]
    fn open_checked_dir(&self, real: PathBuf) -> PathResult<ParentDir> {
        Ok(ParentDir { _dir: None, path: real })
    }

    /// After opening: is the opened object really inside the root?
    #[cfg(target_os = "linux")]
    pub(crate) fn verify_open(&self, f: &std::fs::File) -> PathResult<()> {
        use std::os::unix::io::AsRawFd;
        match std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())) {
            Ok(real) => self.check(&real),
            // no /proc (a minimal container): the checks before opening still hold
            Err(_) => Ok(()),
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn verify_open(&self, _f: &std::fs::File) -> PathResult<()> {
        Ok(())
    }

    /// A symlink target as the client gave it, made safe to store: it must lead to a place
    /// inside the root from the directory the link really lands in, directory symlinks on the
    /// way (in the link's path and in the target) resolved as the OS will resolve them (a
    /// lexical check is fooled by `deep -> .`: `deep/leak -> ../x` lands beside `deep`).
    /// Relative targets are stored as given; absolute ones are taken from the root and
    /// stored as real paths (so the OS resolves them inside it).
    pub(crate) fn symlink_target(&self, link: &str, target: &str) -> PathResult<PathBuf> {
        if target.is_empty() {
            return Err(PathError::Io(io::Error::new(io::ErrorKind::InvalidInput, "empty symlink target")));
        }
        if target.starts_with('/') {
            return self.walk(self.real.clone(), target);
        }
        let comps = self.components(link)?;
        let Some((_, dirs)) = comps.split_last() else {
            return Err(PathError::Io(io::Error::new(io::ErrorKind::PermissionDenied, "the root directory itself cannot be changed")));
        };
        self.walk(self.resolve_dir(dirs)?, target)?;
        Ok(PathBuf::from(target))
    }

    /// Where `path` leads from the real directory `from`, as the OS would walk it: `..` goes
    /// to the real parent, a name that exists is resolved (and must stay inside), a name that
    /// does not is taken as is. A symlink that leads nowhere cannot be checked and is refused.
    fn walk(&self, from: PathBuf, path: &str) -> PathResult<PathBuf> {
        let mut cur = from;
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if cur == self.real || !cur.pop() {
                        return Err(PathError::Escape);
                    }
                }
                name => {
                    if name.contains('\0') || (cfg!(windows) && (name.contains('\\') || name.contains(':'))) {
                        return Err(PathError::Escape);
                    }
                    cur.push(name);
                    match std::fs::canonicalize(&cur) {
                        Ok(real) => cur = real,
                        Err(_) if std::fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_symlink()) => return Err(PathError::Escape),
                        Err(_) => {}
                    }
                }
            }
            self.check(&cur)?;
        }
        Ok(cur)
    }

    /// A stored symlink target as the client should see it.
    pub(crate) fn shown_target(&self, stored: &Path) -> String {
        if stored.is_absolute() {
            return self.to_virtual(stored).unwrap_or_else(|| stored.to_string_lossy().into_owned());
        }
        stored.to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        std::fs::create_dir(dir.path().join("root/sub")).unwrap();
        std::fs::write(dir.path().join("root/sub/f"), b"x").unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        let root = Root::new(&dir.path().join("root")).unwrap();
        (dir, root)
    }

    #[test]
    fn dotdot_above_root_stays_at_the_root() {
        let (d, root) = setup();
        let real_root = std::fs::canonicalize(d.path().join("root")).unwrap();
        // the name inside the root (missing there), never the file beside the root
        assert_eq!(root.resolve("../secret", true).unwrap(), real_root.join("secret"));
        assert_eq!(root.resolve("/sub/../../secret", true).unwrap(), real_root.join("secret"));
        assert_eq!(root.resolve("/..", true).unwrap(), real_root);
        assert_eq!(root.resolve("/../../sub/f", true).unwrap(), real_root.join("sub/f"));
        assert!(root.resolve("/sub/../sub/f", true).is_ok());
    }

    #[test]
    fn absolute_paths_start_at_the_root() {
        let (d, root) = setup();
        let p = root.resolve("/sub/f", true).unwrap();
        assert_eq!(p, std::fs::canonicalize(d.path().join("root/sub/f")).unwrap());
        assert!(matches!(root.resolve(&format!("{}/secret", d.path().display()), true), Err(PathError::Io(_))));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let (d, root) = setup();
        std::os::unix::fs::symlink(d.path().join("secret"), d.path().join("root/out")).unwrap();
        std::os::unix::fs::symlink(d.path(), d.path().join("root/outdir")).unwrap();
        std::os::unix::fs::symlink("/nonexistent-ferrossh", d.path().join("root/dangling")).unwrap();
        assert!(matches!(root.resolve("/out", true), Err(PathError::Escape)));
        assert!(matches!(root.resolve("/outdir/secret", true), Err(PathError::Escape)));
        assert!(matches!(root.resolve("/outdir/new", true), Err(PathError::Escape)));
        assert!(matches!(root.resolve("/dangling", true), Err(PathError::Io(e)) if e.kind() == io::ErrorKind::NotFound));
        // the link itself (lstat, remove) is inside
        assert!(root.resolve("/out", false).is_ok());
    }

    #[test]
    fn symlink_targets_are_confined() {
        let (_d, root) = setup();
        assert!(matches!(root.symlink_target("/sub/l", "../../x"), Err(PathError::Escape)));
        assert!(root.symlink_target("/sub/l", "../sub/f").is_ok());
        let abs = root.symlink_target("/l", "/sub/f").unwrap();
        assert_eq!(root.shown_target(&abs), "/sub/f");
    }

    #[cfg(unix)]
    #[test]
    fn symlink_targets_are_checked_from_where_the_link_really_lands() {
        let (_d, root) = setup();
        let real = |p: &str| root.resolve(p, false).unwrap();
        std::os::unix::fs::symlink(".", real("/deep")).unwrap();
        std::os::unix::fs::symlink("..", real("/sub/up")).unwrap();
        // /deep/leak is /leak: ../secret from there is outside
        assert!(matches!(root.symlink_target("/deep/leak", "../secret"), Err(PathError::Escape)));
        assert!(matches!(root.symlink_target("/deep/deep/leak", ".."), Err(PathError::Escape)));
        // through a directory link in the target: sub/up/.. is the root's parent
        assert!(matches!(root.symlink_target("/l", "sub/up/../secret"), Err(PathError::Escape)));
        assert!(matches!(root.symlink_target("/l", "/sub/up/../secret"), Err(PathError::Escape)));
        assert!(matches!(root.symlink_target("/l", "deep/../secret"), Err(PathError::Escape)));
        assert!(root.symlink_target("/deep/sub/l", "../sub/f").is_ok());
        assert!(root.symlink_target("/sub/l", "up/sub/f").is_ok());
        assert!(root.symlink_target("/sub/l", "missing/../f").is_ok());
    }

    #[test]
    fn virtual_paths_round_trip() {
        let (_d, root) = setup();
        let p = root.resolve("sub/./f", true).unwrap();
        assert_eq!(root.to_virtual(&p).unwrap(), "/sub/f");
        assert_eq!(Root::virtual_of(&root.components("/a/b/../c").unwrap()), "/a/c");
    }
}
