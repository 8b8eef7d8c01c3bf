//! Reading the files we parse (keys, certificates, known_hosts, ssh_config) with a bound:
//! a path that names something endless (`/dev/zero`, a huge file by mistake) is refused once
//! past the limit instead of filling memory.

use std::io::{self, Read};
use std::path::Path;

/// Key and certificate files: OpenSSH's own limit (`MAX_KEY_FILE_SIZE`).
pub const KEY_FILE_LIMIT: u64 = 1024 * 1024;
/// known_hosts and ssh_config files: far beyond any real one (a 64 MiB known_hosts holds
/// hundreds of thousands of hosts).
pub const TEXT_FILE_LIMIT: u64 = 64 * 1024 * 1024;

/// The whole of `path`, or an `InvalidData` error once it is longer than `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let hint = file.metadata().map(|m| m.len().min(limit)).unwrap_or(0);
    let mut out = Vec::with_capacity(hint as usize);
    file.take(limit + 1).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("longer than {} bytes, far more than such a file holds", limit)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_past_the_limit_is_refused_and_one_at_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![b'x'; 100]).unwrap();
        assert_eq!(read_limited(&p, 100).unwrap().len(), 100);
        let e = read_limited(&p, 99).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("longer than 99 bytes"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_device_is_refused() {
        let e = read_limited(Path::new("/dev/zero"), 4096).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
