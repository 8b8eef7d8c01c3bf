//! Server options as core sees them, host key loading (given, generated, or generated once
//! and persisted) and the russh configuration built from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::server::Config;
use russh::{MethodKind, MethodSet, SshId};

use super::HostKeyDescription;
use crate::channel::BufferLimits;
use crate::error::{Error, Result};
use crate::keys;
use crate::options::{Algorithms, Secret};

/// A host key: its text (any format `keys::load_private_key` reads) or a file.
#[derive(Clone)]
pub enum HostKeySource {
    Data(Arc<Vec<u8>>, Option<Secret>),
    Path(PathBuf, Option<Secret>),
}

impl std::fmt::Debug for HostKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostKeySource::Data(..) => f.write_str("HostKeySource::Data(<redacted>)"),
            HostKeySource::Path(p, _) => write!(f, "HostKeySource::Path({})", p.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SftpOptions {
    /// Every path the client names is inside this directory.
    pub root: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Failed authentication attempts per connection before it is dropped (OpenSSH MaxAuthTries).
    pub max_auth_tries: u32,
    /// A connection not authenticated by then is dropped (OpenSSH LoginGraceTime).
    pub auth_timeout: Duration,
    /// Connections at once, authenticated or not.
    pub max_connections: usize,
    /// Unauthenticated connections that may sit silent; past it the silent ones are dropped
    /// (a flood cannot lock well-behaved clients out).
    pub max_startups: usize,
    /// Open channels per connection (OpenSSH MaxSessions counts sessions only; we count every
    /// channel, forwarded ones included, to bound memory per connection).
    pub max_channels: usize,
    pub keepalive_interval: Option<Duration>,
    /// How long an embedder callback may take before it counts as a refusal.
    pub callback_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_auth_tries: 6,
            auth_timeout: Duration::from_secs(120),
            max_connections: 1000,
            max_startups: 64,
            max_channels: 64,
            keepalive_interval: None,
            callback_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    pub host_keys: Vec<HostKeySource>,
    /// Load the host key from here, or generate an ed25519 key and save it here first.
    pub host_key_path: Option<PathBuf>,
    pub banner: Option<String>,
    pub password: bool,
    pub public_key: bool,
    pub keyboard_interactive: bool,
    /// Let anyone in without authentication (demos, tests).
    pub none: bool,
    pub exec: bool,
    pub shell: bool,
    /// Subsystem names the embedder serves.
    pub subsystems: Vec<String>,
    pub sftp: Option<SftpOptions>,
    pub forward_direct: bool,
    pub forward_remote: bool,
    /// Environment variable names (glob patterns) passed on; None passes every one.
    pub accept_env: Option<Vec<String>>,
    pub limits: ServerLimits,
    pub algorithms: Algorithms,
    pub buffer: BufferLimits,
}

/// Limits on what one client can make us keep for a session's environment.
pub(crate) const MAX_ENV_VARS: usize = 64;
pub(crate) const MAX_ENV_BYTES: usize = 64 * 1024;

impl ServerOptions {
    pub(crate) fn validate(&self) -> Result<()> {
        let l = &self.limits;
        if l.max_connections == 0 {
            return Err(Error::config("limits.maxConnections", "limits.maxConnections must be at least 1"));
        }
        if l.max_startups == 0 {
            return Err(Error::config("limits.maxStartups", "limits.maxStartups must be at least 1"));
        }
        if l.max_auth_tries == 0 {
            return Err(Error::config("limits.maxAuthTries", "limits.maxAuthTries must be at least 1"));
        }
        if l.auth_timeout.is_zero() {
            return Err(Error::config("limits.authTimeout", "limits.authTimeout must be a positive number of milliseconds"));
        }
        if !(self.password || self.public_key || self.keyboard_interactive || self.none) {
            return Err(Error::config("auth", "no authentication method: give auth.password, auth.publicKey, auth.keyboardInteractive or auth.none"));
        }
        for name in &self.subsystems {
            if name.is_empty() || name.len() > 256 {
                return Err(Error::config("subsystem", format!("invalid subsystem name {name:?}")));
            }
        }
        if let Some(banner) = &self.banner {
            if banner.len() > 64 * 1024 {
                return Err(Error::config("banner", "banner is longer than 64 KiB"));
            }
        }
        Ok(())
    }

    pub(crate) fn methods(&self) -> MethodSet {
        let mut kinds = Vec::new();
        if self.none {
            // every method succeeds: offer them all to clients that skip the "none" probe
            return MethodSet::from(&[MethodKind::PublicKey, MethodKind::KeyboardInteractive, MethodKind::Password][..]);
        }
        if self.public_key {
            kinds.push(MethodKind::PublicKey);
        }
        if self.keyboard_interactive {
            kinds.push(MethodKind::KeyboardInteractive);
        }
        if self.password {
            kinds.push(MethodKind::Password);
        }
        MethodSet::from(&kinds[..])
    }
}

/// Loads or makes every host key.
pub(crate) fn load_host_keys(opts: &ServerOptions) -> Result<Vec<PrivateKey>> {
    let mut out = Vec::new();
    for (i, src) in opts.host_keys.iter().enumerate() {
        let (data, pass, what) = match src {
            HostKeySource::Data(d, p) => (d.as_ref().clone(), p.clone(), format!("hostKeys[{i}]")),
            HostKeySource::Path(path, p) => {
                let d = crate::files::read_limited(path, crate::files::KEY_FILE_LIMIT).map_err(|e| host_key_error(&format!("hostKeys[{i}]"), &format!("cannot read {}: {e}", path.display())))?;
                (d, p.clone(), format!("hostKeys[{i}] ({})", path.display()))
            }
        };
        let key = keys::load_private_key(&data, pass.as_ref().map(Secret::expose)).map_err(|e| host_key_error(&what, &e.to_string()))?;
        check_signable(&key, &what)?;
        out.push(key);
    }
    if let Some(path) = &opts.host_key_path {
        let key = load_or_create(path)?;
        check_signable(&key, &format!("hostKeyPath ({})", path.display()))?;
        out.push(key);
    }
    if out.is_empty() {
        let mut rng = russh::keys::key::safe_rng();
        let key = PrivateKey::random(&mut rng, russh::keys::Algorithm::Ed25519).map_err(|e| host_key_error("hostKeys", &format!("cannot generate a host key: {e}")))?;
        out.push(key);
    }
    Ok(out)
}

/// russh signs the key exchange with the host key itself, through the rsa crate, which writes
/// RSA signatures at the width of its 64-bit limbs. RFC 8332 wants them exactly as long as the
/// modulus and OpenSSH's ssh drops the connection over a longer one ("key bits do not match"),
/// so a modulus whose byte length is not a multiple of 8 (3000 or 2100 bits, say) cannot serve.
fn check_signable(key: &PrivateKey, what: &str) -> Result<()> {
    match keys::rsa_bits(key.public_key()) {
        Some(bits) if bits.div_ceil(8) % 8 != 0 => Err(host_key_error(
            what,
            &format!(
                "a {bits}-bit RSA host key cannot be served: the embedded server signs with RSA host keys \
                 only when the modulus is a multiple of 64 bits (2048, 3072, 4096), and SSH clients \
                 reject its signatures otherwise; use an ed25519 key or ssh-keygen -t rsa -b 3072"
            ),
        )),
        _ => Ok(()),
    }
}

fn host_key_error(option: &str, message: &str) -> Error {
    Error::config(option.to_string(), format!("{option}: {message}"))
}

/// The key at `path`, or a new ed25519 key written there (mode 0600, never over an existing
/// file) with its `.pub` beside it, as `ssh-keygen` lays them out.
///
/// Several processes may start on the same new path at once (a cluster's workers): the key is
/// written whole to a temporary file beside it and linked into place, which fails if the name
/// exists, so the path never holds a partial key (not even after a crash) and every process
/// that loses the race reads the winner's key.
fn load_or_create(path: &Path) -> Result<PrivateKey> {
    if let Some(key) = load_existing(path)? {
        return Ok(key);
    }
    let generated = keys::generate_key(keys::KeyType::Ed25519, "ferrossh host key", None).map_err(|e| host_key_error("hostKeyPath", &e.to_string()))?;
    if !publish(path, generated.private_key.as_bytes(), true)? {
        return load_existing(path)?.ok_or_else(|| host_key_error("hostKeyPath", &format!("{} was created by another process and removed again", path.display())));
    }
    let pub_path = PathBuf::from(format!("{}.pub", path.display()));
    // the public half is a convenience; the server works without it
    let _ = publish(&pub_path, format!("{}\n", generated.public_key).as_bytes(), false);
    keys::load_private_key(generated.private_key.as_bytes(), None).map_err(|e| host_key_error("hostKeyPath", &e.to_string()))
}

/// The key already at `path`; None when there is no file.
fn load_existing(path: &Path) -> Result<Option<PrivateKey>> {
    match crate::files::read_limited(path, crate::files::KEY_FILE_LIMIT) {
        Ok(data) => keys::load_private_key(&data, None).map(Some).map_err(|e| host_key_error("hostKeyPath", &format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(host_key_error("hostKeyPath", &format!("cannot read {}: {e}", path.display()))),
    }
}

/// Puts `data` at `path` only if nothing is there: Ok(false) when another file got there first.
fn publish(path: &Path, data: &[u8], private: bool) -> Result<bool> {
    let cannot = |what: &str, e: std::io::Error| host_key_error("hostKeyPath", &format!("cannot {what} {}: {e}", path.display()));
    let tmp = write_temp(path, data, private).map_err(|e| cannot("create", e))?;
    // link(2) fails with EEXIST instead of replacing: the first complete file wins
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_parent(path);
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // a file system without hard links: exclusive creation still never overwrites
        Err(_) => match write_new(path, data, private) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(cannot("create", e)),
        },
    }
}

/// A new file beside `path` holding `data`, flushed to disk.
fn write_temp(path: &Path, data: &[u8], private: bool) -> std::io::Result<PathBuf> {
    use rand::RngCore;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.{:016x}.tmp", std::process::id(), rand::thread_rng().next_u64()));
    match write_new(&tmp, data, private) {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_new(path: &Path, data: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = o.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// The new name survives a crash only once its directory is on disk too.
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

pub(crate) fn describe(key: &PrivateKey) -> HostKeyDescription {
    let public = key.public_key();
    let line = keys::public_key_line(public, "");
    HostKeyDescription { algorithm: public.algorithm().as_str().to_string(), fingerprint: keys::fingerprint(public), public_key: line }
}

/// Shared auth failures are answered after this long at the least, so timing does not tell
/// a client which users or keys exist.
pub(crate) const AUTH_REJECTION_TIME: Duration = Duration::from_millis(250);

pub(crate) fn russh_config(opts: &ServerOptions, keys: Vec<PrivateKey>) -> Result<Config> {
    let preferred = crate::algorithms::preferred(&opts.algorithms, &[])?;
    Ok(Config {
        server_id: SshId::Standard(format!("SSH-2.0-ferrossh_{}", env!("CARGO_PKG_VERSION")).into()),
        methods: opts.methods(),
        auth_rejection_time: AUTH_REJECTION_TIME,
        // OpenSSH probes with "none" first: answering it slowly only delays honest clients
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys,
        // the handler enforces the limit itself (russh would also count the "none" probe)
        max_auth_attempts: 0,
        // authentication time is bounded by the listener; an authenticated session may idle
        inactivity_timeout: None,
        keepalive_interval: opts.limits.keepalive_interval,
        keepalive_max: 3,
        window_size: 8 * 1024 * 1024,
        maximum_packet_size: 32768,
        nodelay: true,
        preferred,
        ..Default::default()
    })
}

/// `*` and `?` glob, as sshd's AcceptEnv. Iterative, with one backtrack point (the last
/// `*`): O(pattern × name) however many stars, where naive recursion is exponential in them
/// and a client picks the name.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut i, mut j) = (0, 0);
    // after the last `*` seen: the pattern index past it, and the name index it matched up to
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        match p.get(i) {
            Some(b'*') => {
                star = Some((i + 1, j));
                i += 1;
            }
            Some(&c) if c == b'?' || c == n[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                // let that `*` take one more byte and try again from there
                Some((si, sj)) => {
                    star = Some((si, sj + 1));
                    i = si;
                    j = sj + 1;
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_accept_env() {
        assert!(glob_match("LC_*", "LC_ALL"));
        assert!(glob_match("LANG", "LANG"));
        assert!(!glob_match("LANG", "LANGUAGE"));
        assert!(glob_match("A?C", "ABC"));
        assert!(!glob_match("LC_*", "XLC_ALL"));
        assert!(glob_match("*", ""));
        assert!(glob_match("X*_*_*Y", "XA_B_CY"));
        assert!(glob_match("*a*b", "xxaxxb"));
        assert!(!glob_match("*a*b", "xxaxxbc"));
        assert!(glob_match("a**", "a"));
        assert!(!glob_match("a?", "a"));
    }

    #[test]
    fn a_long_name_against_many_stars_is_quick() {
        let name = format!("X{}", "_".repeat(60_000));
        let t = std::time::Instant::now();
        assert!(!glob_match("X*_*_*_*_*Y", &name));
        assert!(t.elapsed() < std::time::Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[test]
    fn generated_key_is_persisted_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host_ed25519");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(describe(&a).fingerprint, describe(&b).fingerprint);
        assert!(dir.path().join("host_ed25519.pub").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn concurrent_creators_all_end_with_the_one_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = Arc::new(dir.path().join("host_ed25519"));
            let start = Arc::new(std::sync::Barrier::new(8));
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let (path, start) = (Arc::clone(&path), Arc::clone(&start));
                    std::thread::spawn(move || {
                        start.wait();
                        load_or_create(&path).map(|k| describe(&k).fingerprint).map_err(|e| e.to_string())
                    })
                })
                .collect();
            let prints: Vec<_> = threads.into_iter().map(|t| t.join().unwrap().unwrap()).collect();
            assert!(prints.iter().all(|p| p == &prints[0]), "{prints:?}");
            assert_eq!(describe(&load_or_create(&path).unwrap()).fingerprint, prints[0]);
            // nothing but the key and its .pub is left behind
            let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            names.sort();
            assert_eq!(names, ["host_ed25519", "host_ed25519.pub"]);
            let public = std::fs::read_to_string(dir.path().join("host_ed25519.pub")).unwrap();
            assert!(public.starts_with(&describe(&load_or_create(&path).unwrap()).public_key), "{public}");
        }
    }

    #[test]
    fn bad_host_key_is_a_config_error() {
        let opts = ServerOptions { host_keys: vec![HostKeySource::Data(Arc::new(b"nope".to_vec()), None)], password: true, ..Default::default() };
        let e = load_host_keys(&opts).unwrap_err();
        assert_eq!(e.code(), "ERR_SSH_CONFIG");
        assert!(e.to_string().contains("hostKeys[0]"), "{e}");
    }

    #[test]
    fn rsa_host_keys_whose_signatures_russh_would_pad_are_refused() {
        let with = |bits| {
            let key = keys::generate_key(keys::KeyType::Rsa { bits }, "", None).unwrap();
            let opts = ServerOptions { host_keys: vec![HostKeySource::Data(Arc::new(key.private_key.into_bytes()), None)], password: true, ..Default::default() };
            load_host_keys(&opts)
        };
        for bits in [2100, 2049] {
            let e = with(bits).unwrap_err();
            assert_eq!(e.code(), "ERR_SSH_CONFIG");
            assert!(e.to_string().contains(&format!("hostKeys[0]: a {bits}-bit RSA host key cannot be served")), "{e}");
        }
        assert_eq!(with(2048).unwrap().len(), 1);
    }

    #[test]
    fn ephemeral_key_when_none_given() {
        let opts = ServerOptions { password: true, ..Default::default() };
        let keys = load_host_keys(&opts).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(describe(&keys[0]).algorithm, "ssh-ed25519");
    }
}
