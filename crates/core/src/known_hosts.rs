//! OpenSSH-compatible `known_hosts` files.
//!
//! Parsing, host matching and host key verdicts follow the "SSH_KNOWN_HOSTS FILE FORMAT"
//! section of sshd(8) and what OpenSSH's ssh(1) does with it (hostfile.c, match.c,
//! sshconnect.c). Keys are an algorithm name plus the public key blob of RFC 4253 §6.6, so
//! nothing here needs more cryptography than SHA-1/SHA-256 and HMAC.

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::alphabet;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, STANDARD_NO_PAD,
};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The port OpenSSH leaves out of known_hosts names.
pub const DEFAULT_PORT: u16 = 22;

/// hostfile.h HASH_MAGIC: the only hashed-name format OpenSSH reads or writes.
const HASH_MAGIC: &str = "|1|";
/// The salt and the HMAC-SHA1 of a hashed name are both SHA-1 sized (hostfile.c extract_salt).
const SHA1_LEN: usize = 20;
/// match.c gives up on a whole pattern list (no match) once one sub-pattern is this long.
const MAX_SUBPATTERN: usize = 1023;
/// Field separators of a known_hosts line: OpenSSH splits on spaces and tabs only.
const BLANKS: [char; 2] = [' ', '\t'];

/// OpenSSH decodes base64 with b64_pton, which does not insist on padding.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The optional marker that starts a line (sshd(8)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Marker {
    /// A host key.
    None,
    /// `@cert-authority`: a CA trusted to sign host certificates for the listed hosts.
    CertAuthority,
    /// `@revoked`: a key that must never be accepted for the listed hosts.
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostField {
    /// Comma-separated patterns, as written.
    Patterns(String),
    /// `|1|salt|hash`: HMAC-SHA1 of the host name, keyed with the salt.
    Hashed {
        salt: [u8; SHA1_LEN],
        hash: [u8; SHA1_LEN],
    },
}

/// One valid key line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub marker: Marker,
    /// The key type the blob itself names (`ssh-rsa` even when the line says `rsa-sha2-512`).
    pub key_type: String,
    pub key_blob: Vec<u8>,
    pub comment: Option<String>,
    /// 1-based line number in its file.
    pub line: usize,
    hosts: HostField,
}

/// A line that is not a valid entry; the rest of the file is still used, as ssh(1) does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseIssue {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHostsFile {
    pub path: Option<PathBuf>,
    pub entries: Vec<Entry>,
    pub issues: Vec<ParseIssue>,
}

/// Where an entry lives: its file (None for text parsed without a path) and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Option<PathBuf>,
    pub line: usize,
}

/// A key known for the host that is not the presented one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub key_type: String,
    pub fingerprint: String,
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A plain line lists exactly this key for this host.
    Match(Location),
    /// A `@revoked` line for this host lists this key.
    Revoked(Location),
    /// The host has plain lines with keys of the presented key's type, none of them this key.
    Changed { expected: Vec<Expected> },
    /// No line lists this key for this host. `other_types` holds the host's known keys of
    /// other types: ssh(1) reports the presented key as changed in that case, so a caller
    /// that accepts new keys on first use should refuse when `other_types` is not empty.
    Unknown { other_types: Vec<Expected> },
}

impl fmt::Display for ParseIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(path) => write!(f, "{}:{}", path.display(), self.line),
            None => write!(f, "line {}", self.line),
        }
    }
}

impl KnownHostsFile {
    /// Parses known_hosts text. Never fails: a malformed line becomes a [`ParseIssue`] and is
    /// skipped, as hostfile.c skips lines it cannot read.
    pub fn parse(text: &str, path: Option<&Path>) -> KnownHostsFile {
        let mut file = KnownHostsFile {
            path: path.map(Path::to_path_buf),
            ..Default::default()
        };
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            match parse_line(raw, line) {
                Ok(Some(entry)) => file.entries.push(entry),
                Ok(None) => {}
                Err(message) => file.issues.push(ParseIssue { line, message }),
            }
        }
        file
    }

    /// Reads and parses a file. A missing file is an empty one, as for ssh(1).
    pub fn load(path: &Path) -> io::Result<KnownHostsFile> {
        match crate::files::read_limited(path, crate::files::TEXT_FILE_LIMIT) {
            // Comments may be in any encoding; only hosts and keys need to be ASCII.
            Ok(bytes) => Ok(Self::parse(&String::from_utf8_lossy(&bytes), Some(path))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Self::parse("", Some(path))),
            Err(err) => Err(err),
        }
    }

    /// Entries whose host field matches `host` on `port`, whatever their marker, in file order.
    pub fn matching(&self, host: &str, port: u16) -> Vec<&Entry> {
        let name = lookup_name(host, port);
        self.entries
            .iter()
            .filter(|entry| entry.hosts.matches(&name))
            .collect()
    }
}

impl Entry {
    pub fn matches_host(&self, host: &str, port: u16) -> bool {
        self.hosts.matches(&lookup_name(host, port))
    }

    /// Whether the host field is a `|1|salt|hash` name rather than patterns.
    pub fn is_hashed(&self) -> bool {
        matches!(self.hosts, HostField::Hashed { .. })
    }

    /// The host patterns as written, or None for a hashed host field.
    pub fn host_patterns(&self) -> Option<&str> {
        match &self.hosts {
            HostField::Patterns(patterns) => Some(patterns),
            HostField::Hashed { .. } => None,
        }
    }

    pub fn fingerprint(&self) -> String {
        fingerprint_sha256(&self.key_blob)
    }
}

/// The name OpenSSH looks up and records for a host (misc.c put_host_port): the bare host on
/// port 22, `[host]:port` otherwise. An IPv6 literal is given without brackets.
pub fn host_name_for(host: &str, port: u16) -> String {
    if port == DEFAULT_PORT {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `SHA256:` and the unpadded base64 of the blob's SHA-256, as `ssh-keygen -l -E sha256` prints.
pub fn fingerprint_sha256(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// What the known_hosts files say about `key_blob` presented by `host` on `port`.
///
/// `key_type` may be the negotiated algorithm (`rsa-sha2-512`); the blob's own type wins.
/// A key unknown for `[host]:port` but listed for the bare host name is a match, as in ssh(1).
pub fn check(
    files: &[KnownHostsFile],
    host: &str,
    port: u16,
    key_type: &str,
    key_blob: &[u8],
) -> Verdict {
    let verdict = check_name(files, host, port, key_type, key_blob);
    if port == DEFAULT_PORT || !matches!(verdict, Verdict::Unknown { .. }) {
        return verdict;
    }
    // sshconnect.c "checking without port identifier": a key unknown for [host]:port is still
    // accepted when a plain line lists it for the bare host name.
    match check_name(files, host, DEFAULT_PORT, key_type, key_blob) {
        Verdict::Match(location) => Verdict::Match(location),
        _ => verdict,
    }
}

/// The `@revoked` line for this host that lists `key_blob`, if any. [`check`] already applies
/// it; a caller verifying a host certificate also checks the certificate blob itself here.
pub fn revoked(
    files: &[KnownHostsFile],
    host: &str,
    port: u16,
    key_blob: &[u8],
) -> Option<Location> {
    revoked_in(&hits(files, host, port), key_blob)
}

/// The `@cert-authority` line for this host that lists the CA key which signed the host's
/// certificate. A CA listed on a matching `@revoked` line is never trusted. The blob carries
/// its own type, so `_ca_key_type` only documents the call.
pub fn cert_authority_trusted(
    files: &[KnownHostsFile],
    host: &str,
    port: u16,
    _ca_key_type: &str,
    ca_blob: &[u8],
) -> Option<Location> {
    match trusted_ca(files, host, port, ca_blob) {
        CaTrust::Trusted(location) => Some(location),
        CaTrust::Revoked => None,
        // Same fallback to the bare host name as for plain keys (sshconnect.c check_host_key).
        CaTrust::Unknown if port != DEFAULT_PORT => {
            match trusted_ca(files, host, DEFAULT_PORT, ca_blob) {
                CaTrust::Trusted(location) => Some(location),
                _ => None,
            }
        }
        CaTrust::Unknown => None,
    }
}

/// Key types of the plain lines for this host, in file order without repeats. ssh(1)
/// (sshconnect2.c order_hostkeyalgs) offers these host key algorithms first, so a server with
/// several keys presents the one already known.
pub fn known_key_types(files: &[KnownHostsFile], host: &str, port: u16) -> Vec<String> {
    let mut types: Vec<String> = Vec::new();
    for hit in hits(files, host, port)
        .iter()
        .filter(|hit| hit.entry.marker == Marker::None)
    {
        if !types.contains(&hit.entry.key_type) {
            types.push(hit.entry.key_type.clone());
        }
    }
    types
}

/// Whether a `@cert-authority` line matches the host; ssh(1) then prefers certificate host
/// key algorithms. A line for the bare host name counts on any port, since
/// [`cert_authority_trusted`] trusts it there too: without asking for a certificate, the
/// server would present its plain key, which no line lists.
pub fn has_cert_authority(files: &[KnownHostsFile], host: &str, port: u16) -> bool {
    let listed = |port| {
        hits(files, host, port)
            .iter()
            .any(|hit| hit.entry.marker == Marker::CertAuthority)
    };
    listed(port) || (port != DEFAULT_PORT && listed(DEFAULT_PORT))
}

/// Whether ssh(1) would record this host name: sshconnect.c refuses names holding pattern or
/// marker characters, which would make the new line match other hosts.
pub fn is_recordable_host(host: &str) -> bool {
    !host.is_empty()
        && !host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "@?*#[]|'\"\\,!".contains(c))
}

/// A known_hosts line (without newline) for the key, the host name lowercased as ssh(1)
/// records it. `hashed` writes `|1|salt|hash` (HashKnownHosts) with a fresh random salt.
pub fn format_line(host: &str, port: u16, key_type: &str, key_blob: &[u8], hashed: bool) -> String {
    let name = lookup_name(host, port);
    let host_field = if hashed {
        let mut salt = [0u8; SHA1_LEN];
        rand::thread_rng().fill_bytes(&mut salt);
        hashed_name(&name, &salt)
    } else {
        name
    };
    // OpenSSH writes the key's own type, never a signature algorithm such as rsa-sha2-512.
    let key_type = blob_key_type(key_blob).unwrap_or(key_type);
    format!(
        "{host_field} {} {}",
        key_family(key_type),
        STANDARD.encode(key_blob)
    )
}

/// Appends one entry (trust on first use). Creates the directory (0700) and file (0600) when
/// missing, holds an exclusive lock while writing so concurrent appenders never interleave,
/// and starts on a new line when the file does not end with one (hostfile.c does the same).
/// Refuses text that is not exactly one valid known_hosts entry.
pub fn append_entry(path: &Path, line: &str) -> io::Result<()> {
    append(path, line, None)
}

/// [`append_entry`] for a caller that may stop waiting (a connect given up): while another
/// process holds the lock, `give_up` is asked every few milliseconds, and once it answers
/// true nothing is written and the error is `Interrupted`.
pub fn append_entry_unless(path: &Path, line: &str, give_up: &dyn Fn() -> bool) -> io::Result<()> {
    append(path, line, Some(give_up))
}

/// How often a waiting [`append_entry_unless`] retries the lock.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(10);

fn append(path: &Path, line: &str, give_up: Option<&dyn Fn() -> bool>) -> io::Result<()> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    if line.contains(['\n', '\r']) || !matches!(parse_line(line, 1), Ok(Some(_))) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to append text that is not a single valid known_hosts entry",
        ));
    }
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let mut file = open_private_append(path)?;
    match give_up {
        None => file.lock()?,
        Some(give_up) => lock_unless(&file, give_up)?,
    }
    // The lock is released when the file is closed, on success or error alike.
    append_locked(&mut file, line)
}

fn lock_unless(file: &File, give_up: &dyn Fn() -> bool) -> io::Result<()> {
    loop {
        if give_up() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "given up before the known_hosts file could be locked"));
        }
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => std::thread::sleep(LOCK_RETRY),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn open_private_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn append_locked(file: &mut File, line: &str) -> io::Result<()> {
    let mut record = String::with_capacity(line.len() + 2);
    if !ends_with_newline(file)? {
        record.push('\n');
    }
    record.push_str(line);
    record.push('\n');
    // One write call: with O_APPEND the line lands in one piece, so ssh(1), which takes no
    // lock, reads whole lines (hostfile.c also writes each new entry in one go).
    file.write_all(record.as_bytes())
}

fn ends_with_newline(file: &mut File) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

// ---- verdicts ----

/// One entry matching the looked-up host, with the file it came from.
struct Hit<'a> {
    file: &'a KnownHostsFile,
    entry: &'a Entry,
}

impl Hit<'_> {
    fn location(&self) -> Location {
        Location {
            file: self.file.path.clone(),
            line: self.entry.line,
        }
    }

    fn expected(&self) -> Expected {
        Expected {
            key_type: self.entry.key_type.clone(),
            fingerprint: self.entry.fingerprint(),
            location: self.location(),
        }
    }
}

enum CaTrust {
    Trusted(Location),
    Revoked,
    Unknown,
}

/// ssh(1) lowercases the host name before every lookup, and hashed names are HMACs of that
/// lowercase form (ssh-keygen -H lowercases too).
fn lookup_name(host: &str, port: u16) -> String {
    host_name_for(&host.to_ascii_lowercase(), port)
}

/// Entries of all files matching the host, in file then line order (hostfile.c load_hostkeys
/// keeps only matching lines, so markers only apply to the hosts they name).
fn hits<'a>(files: &'a [KnownHostsFile], host: &str, port: u16) -> Vec<Hit<'a>> {
    let name = lookup_name(host, port);
    let mut found = Vec::new();
    for file in files {
        for entry in file
            .entries
            .iter()
            .filter(|entry| entry.hosts.matches(&name))
        {
            found.push(Hit { file, entry });
        }
    }
    found
}

fn revoked_in(hits: &[Hit<'_>], key_blob: &[u8]) -> Option<Location> {
    hits.iter()
        .find(|hit| hit.entry.marker == Marker::Revoked && hit.entry.key_blob == key_blob)
        .map(Hit::location)
}

fn check_name(
    files: &[KnownHostsFile],
    host: &str,
    port: u16,
    key_type: &str,
    key_blob: &[u8],
) -> Verdict {
    let hits = hits(files, host, port);
    // hostfile.c check_key_not_revoked runs last and overrides any other outcome.
    if let Some(location) = revoked_in(&hits, key_blob) {
        return Verdict::Revoked(location);
    }
    let plain: Vec<&Hit<'_>> = hits
        .iter()
        .filter(|hit| hit.entry.marker == Marker::None)
        .collect();
    if let Some(hit) = plain.iter().find(|hit| hit.entry.key_blob == key_blob) {
        return Verdict::Match(hit.location());
    }
    let family = key_family(blob_key_type(key_blob).unwrap_or(key_type));
    let (same, other): (Vec<&Hit<'_>>, Vec<&Hit<'_>>) = plain
        .into_iter()
        .partition(|hit| key_family(&hit.entry.key_type) == family);
    if !same.is_empty() {
        return Verdict::Changed {
            expected: same.into_iter().map(Hit::expected).collect(),
        };
    }
    Verdict::Unknown {
        other_types: other.into_iter().map(Hit::expected).collect(),
    }
}

fn trusted_ca(files: &[KnownHostsFile], host: &str, port: u16, ca_blob: &[u8]) -> CaTrust {
    let hits = hits(files, host, port);
    if revoked_in(&hits, ca_blob).is_some() {
        return CaTrust::Revoked;
    }
    hits.iter()
        .find(|hit| hit.entry.marker == Marker::CertAuthority && hit.entry.key_blob == ca_blob)
        .map_or(CaTrust::Unknown, |hit| CaTrust::Trusted(hit.location()))
}

/// One key type per RSA key whatever signature algorithm (RFC 8332) it was negotiated
/// under; OpenSSH's key type table maps the rsa-sha2 names to KEY_RSA the same way.
fn key_family(key_type: &str) -> &str {
    match key_type {
        "rsa-sha2-256" | "rsa-sha2-512" => "ssh-rsa",
        "rsa-sha2-256-cert-v01@openssh.com" | "rsa-sha2-512-cert-v01@openssh.com" => {
            "ssh-rsa-cert-v01@openssh.com"
        }
        other => other,
    }
}

// ---- host matching ----

impl HostField {
    fn parse(text: &str) -> Result<HostField, String> {
        if !text.starts_with('|') {
            return Ok(HostField::Patterns(text.to_owned()));
        }
        let invalid = || {
            format!(
                "invalid hashed host field \"{}\" (expected |1|salt|hash)",
                excerpt(text)
            )
        };
        let rest = text.strip_prefix(HASH_MAGIC).ok_or_else(invalid)?;
        let (salt, hash) = rest.split_once('|').ok_or_else(invalid)?;
        Ok(HostField::Hashed {
            salt: decode_sha1_sized(salt).ok_or_else(invalid)?,
            hash: decode_sha1_sized(hash).ok_or_else(invalid)?,
        })
    }

    /// `name` is already lowercased and in `[host]:port` form when the port is not 22.
    fn matches(&self, name: &str) -> bool {
        match self {
            HostField::Patterns(list) => match_pattern_list(name, list),
            HostField::Hashed { salt, hash } => hmac_sha1(salt, name).verify_slice(hash).is_ok(),
        }
    }
}

fn decode_sha1_sized(text: &str) -> Option<[u8; SHA1_LEN]> {
    LENIENT_BASE64.decode(text).ok()?.try_into().ok()
}

fn hmac_sha1(salt: &[u8; SHA1_LEN], name: &str) -> Hmac<Sha1> {
    // RFC 2104 zero-pads a key shorter than the block, so padding the salt ourselves gives the
    // same MAC through the infallible fixed-size constructor.
    let mut key = hmac::digest::Key::<Hmac<Sha1>>::default();
    key[..SHA1_LEN].copy_from_slice(salt);
    let mut mac = <Hmac<Sha1> as Mac>::new(&key);
    mac.update(name.as_bytes());
    mac
}

fn hashed_name(name: &str, salt: &[u8; SHA1_LEN]) -> String {
    let hash = hmac_sha1(salt, name).finalize().into_bytes();
    format!(
        "{HASH_MAGIC}{}|{}",
        STANDARD.encode(salt),
        STANDARD.encode(hash)
    )
}

/// match.c match_hostname: comma-separated patterns compared case-insensitively; the line
/// matches when some pattern does and no `!pattern` does (a negation vetoes the whole line).
fn match_pattern_list(name: &str, list: &str) -> bool {
    let mut positive = false;
    for sub in sub_patterns(list) {
        let (negated, pattern) = match sub.strip_prefix('!') {
            Some(pattern) => (true, pattern),
            None => (false, sub),
        };
        if pattern.len() >= MAX_SUBPATTERN {
            return false;
        }
        if glob_match(name.as_bytes(), pattern.as_bytes()) {
            if negated {
                return false;
            }
            positive = true;
        }
    }
    positive
}

/// Sub-patterns the way match.c walks the list: a trailing comma ends it without adding an
/// empty pattern.
fn sub_patterns(list: &str) -> impl Iterator<Item = &str> {
    let list = list.strip_suffix(',').unwrap_or(list);
    list.split(',').filter(move |_| !list.is_empty())
}

/// match.c match_pattern: `*` matches any run of bytes, `?` any one byte, everything else
/// itself (pattern bytes are lowercased; `text` already is). Backtracks only to the last `*`,
/// so it runs in O(text × pattern) whatever the input.
fn glob_match(text: &[u8], pattern: &[u8]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while let Some(&byte) = text.get(t) {
        match pattern.get(p) {
            Some(b'*') => {
                last_star = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(&c) if c == b'?' || c.to_ascii_lowercase() == byte => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        let Some((after_star, star_t)) = last_star else {
            return false;
        };
        p = after_star;
        t = star_t + 1;
        last_star = Some((after_star, t));
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

// ---- line parsing ----

fn parse_line(raw: &str, line: usize) -> Result<Option<Entry>, String> {
    // Editors on Windows leave a CR before each LF; it is never part of a field.
    let text = skip_blanks(raw.strip_suffix('\r').unwrap_or(raw));
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let (marker, text) = parse_marker(text)?;
    let (host_text, text) = split_field(text);
    let text = skip_blanks(text);
    if text.is_empty() || text.starts_with('#') {
        return Err(format!(
            "nothing after host field \"{}\": expected a key type and key",
            excerpt(host_text)
        ));
    }
    let hosts = HostField::parse(host_text)?;
    let (type_field, text) = split_field(text);
    let text = skip_blanks(text);
    if text.is_empty() {
        return Err(format!(
            "no key data after key type \"{}\"",
            excerpt(type_field)
        ));
    }
    let (key_data, text) = split_field(text);
    let (key_type, key_blob) = parse_key(type_field, key_data)?;
    let comment = text.trim_matches(BLANKS);
    let comment = (!comment.is_empty()).then(|| comment.to_owned());
    Ok(Some(Entry {
        marker,
        key_type,
        key_blob,
        comment,
        line,
        hosts,
    }))
}

/// hostfile.c check_markers: at most one marker, followed by blanks.
fn parse_marker(text: &str) -> Result<(Marker, &str), String> {
    if !text.starts_with('@') {
        return Ok((Marker::None, text));
    }
    let (word, rest) = split_field(text);
    let marker = match word {
        "@cert-authority" => Marker::CertAuthority,
        "@revoked" => Marker::Revoked,
        _ => {
            return Err(format!(
                "unknown marker \"{}\" (expected @cert-authority or @revoked)",
                excerpt(word)
            ));
        }
    };
    let rest = skip_blanks(rest);
    if rest.is_empty() {
        return Err(format!(
            "nothing after marker {word}: expected hosts, key type and key"
        ));
    }
    if rest.starts_with('@') {
        return Err("more than one marker on the line".to_owned());
    }
    Ok((marker, rest))
}

/// sshkey.c sshkey_read: the key data must decode, name the key type of the line (ECDSA
/// also the same curve) and hold nothing after the key.
fn parse_key(type_field: &str, key_data: &str) -> Result<(String, Vec<u8>), String> {
    if !type_field.is_empty()
        && type_field.len() < 8
        && type_field.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(
            "SSH protocol 1 RSA key: not supported (OpenSSH removed protocol 1)".to_owned(),
        );
    }
    let blob = LENIENT_BASE64
        .decode(key_data)
        .map_err(|_| format!("key data for {} is not valid base64", excerpt(type_field)))?;
    let mut reader = BlobReader { rest: &blob };
    let embedded = reader
        .string()
        .and_then(|name| std::str::from_utf8(name).ok())
        .ok_or_else(|| {
            format!(
                "key data for {} does not start with a key type",
                excerpt(type_field)
            )
        })?;
    let key_type = key_family(embedded).to_owned();
    if key_type != key_family(type_field) {
        return Err(format!(
            "line says key type {} but the key data holds {}",
            excerpt(type_field),
            excerpt(embedded)
        ));
    }
    check_key_body(&key_type, &mut reader)?;
    Ok((key_type, blob))
}

/// Public key layouts of RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4 and OpenSSH's PROTOCOL.u2f.
/// Types not listed (certificates, newer algorithms) are kept unchecked so they still match.
fn check_key_body(key_type: &str, reader: &mut BlobReader<'_>) -> Result<(), String> {
    let well_formed = match key_type {
        "ssh-ed25519" => reader.fixed(32),
        "sk-ssh-ed25519@openssh.com" => reader.fixed(32) && reader.strings(1),
        "ssh-rsa" => reader.strings(2),
        "ssh-dss" => reader.strings(4),
        _ => match ecdsa_curve(key_type) {
            Some((curve, point_len, security_key)) => {
                let named = reader.string();
                if named.is_some_and(|named| named != curve.as_bytes()) {
                    return Err(format!(
                        "ECDSA curve in the key data does not match key type {key_type}"
                    ));
                }
                named.is_some()
                    && reader.ec_point(point_len)
                    && (!security_key || reader.strings(1))
            }
            None => return Ok(()),
        },
    };
    if !well_formed || !reader.rest.is_empty() {
        return Err(format!("key data for {key_type} is malformed"));
    }
    Ok(())
}

/// Curve name, uncompressed point length and whether it is a FIDO security key type.
fn ecdsa_curve(key_type: &str) -> Option<(&'static str, usize, bool)> {
    match key_type {
        "ecdsa-sha2-nistp256" => Some(("nistp256", 65, false)),
        "ecdsa-sha2-nistp384" => Some(("nistp384", 97, false)),
        "ecdsa-sha2-nistp521" => Some(("nistp521", 133, false)),
        "sk-ecdsa-sha2-nistp256@openssh.com" => Some(("nistp256", 65, true)),
        _ => None,
    }
}

/// The type a public key blob names in its first string.
fn blob_key_type(blob: &[u8]) -> Option<&str> {
    BlobReader { rest: blob }
        .string()
        .and_then(|name| std::str::from_utf8(name).ok())
}

/// Reads SSH wire strings (RFC 4251 §5: u32 big-endian length, then the bytes).
struct BlobReader<'a> {
    rest: &'a [u8],
}

impl<'a> BlobReader<'a> {
    fn string(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.rest.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (value, rest) = rest.split_at(len);
        self.rest = rest;
        Some(value)
    }

    fn strings(&mut self, count: usize) -> bool {
        (0..count).all(|_| self.string().is_some())
    }

    fn fixed(&mut self, len: usize) -> bool {
        self.string().is_some_and(|value| value.len() == len)
    }

    /// SEC 1 §2.3.3 uncompressed point, the only form OpenSSH accepts.
    fn ec_point(&mut self, len: usize) -> bool {
        self.string()
            .is_some_and(|point| point.len() == len && point.first() == Some(&4))
    }
}

fn skip_blanks(text: &str) -> &str {
    text.trim_start_matches(BLANKS)
}

/// Splits off the next field: everything up to the first space or tab.
fn split_field(text: &str) -> (&str, &str) {
    text.split_at(text.find(BLANKS).unwrap_or(text.len()))
}

/// A short quotable prefix of untrusted text for messages, with control characters replaced
/// so a crafted file cannot put terminal escapes into an error (OpenSSH sanitises the same way).
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    let mut quoted: String = text
        .chars()
        .take(MAX_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        quoted.push('…');
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeSet;
    use std::process::{Command, Stdio};
    use std::{env, fs, thread};

    // ---- keys: structurally valid blobs, distinct per seed ----

    #[derive(Clone, Debug)]
    struct Key {
        kind: String,
        blob: Vec<u8>,
    }

    impl Key {
        fn text(&self) -> String {
            format!("{} {}", self.kind, STANDARD.encode(&self.blob))
        }
    }

    fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(bytes);
    }

    fn blob_of(parts: &[&[u8]]) -> Vec<u8> {
        let mut blob = Vec::new();
        for part in parts {
            put_string(&mut blob, part);
        }
        blob
    }

    fn ed25519(seed: u8) -> Key {
        Key {
            kind: "ssh-ed25519".into(),
            blob: blob_of(&[b"ssh-ed25519", &[seed; 32]]),
        }
    }

    fn rsa(seed: u8) -> Key {
        let mut modulus = vec![0u8];
        modulus.extend_from_slice(&[seed | 0x80; 256]);
        Key {
            kind: "ssh-rsa".into(),
            blob: blob_of(&[b"ssh-rsa", &[1, 0, 1], &modulus]),
        }
    }

    fn ecdsa(curve: &str, seed: u8) -> Key {
        let kind = format!("ecdsa-sha2-{curve}");
        let len = match curve {
            "nistp256" => 65,
            "nistp384" => 97,
            _ => 133,
        };
        let mut point = vec![4u8];
        point.resize(len, seed);
        Key {
            blob: blob_of(&[kind.as_bytes(), curve.as_bytes(), &point]),
            kind,
        }
    }

    fn line(hosts: &str, key: &Key) -> String {
        format!("{hosts} {}", key.text())
    }

    fn parse(text: &str) -> KnownHostsFile {
        KnownHostsFile::parse(text, None)
    }

    fn matching_lines(file: &KnownHostsFile, host: &str, port: u16) -> Vec<usize> {
        file.matching(host, port)
            .iter()
            .map(|entry| entry.line)
            .collect()
    }

    fn at(line: usize) -> Location {
        Location { file: None, line }
    }

    fn expected(key: &Key, line: usize) -> Expected {
        Expected {
            key_type: key.kind.clone(),
            fingerprint: fingerprint_sha256(&key.blob),
            location: at(line),
        }
    }

    // ---- names, fingerprints, formatting ----

    #[test]
    fn host_name_for_follows_put_host_port() {
        assert_eq!(host_name_for("example.com", 22), "example.com");
        assert_eq!(host_name_for("example.com", 2222), "[example.com]:2222");
        assert_eq!(host_name_for("192.0.2.1", 22), "192.0.2.1");
        assert_eq!(host_name_for("::1", 22), "::1");
        assert_eq!(host_name_for("2001:db8::1", 2222), "[2001:db8::1]:2222");
    }

    #[test]
    fn fingerprint_is_ssh_keygen_sha256() {
        let blob = LENIENT_BASE64
            .decode("AAAAC3NzaC1lZDI1NTE5AAAAIG5vsLE0CmZQe2BhPpA2Hvkin/obRIuQDFCTZktFb4VG")
            .unwrap();
        assert_eq!(
            fingerprint_sha256(&blob),
            "SHA256:hObrvOjzWUE94GHWVMPz8h7FgGxwdki+E1vXqSW076c"
        );
    }

    #[test]
    fn format_line_writes_lowercase_name_and_key_type_of_blob() {
        let key = rsa(1);
        let text = format_line("Example.COM", 2222, "rsa-sha2-512", &key.blob, false);
        assert_eq!(text, format!("[example.com]:2222 {}", key.text()));
        assert_eq!(
            format_line("h", 22, "ssh-ed25519", &ed25519(1).blob, false),
            line("h", &ed25519(1))
        );
    }

    #[test]
    fn format_line_hashed_uses_fresh_salt_and_matches_only_its_host() {
        let key = ed25519(3);
        let first = format_line("Db.Example.com", 2222, &key.kind, &key.blob, true);
        let second = format_line("db.example.com", 2222, &key.kind, &key.blob, true);
        assert!(first.starts_with("|1|"));
        assert_ne!(first, second);
        let file = parse(&format!("{first}\n{second}\n"));
        assert!(file.issues.is_empty(), "{:?}", file.issues);
        assert!(file.entries.iter().all(Entry::is_hashed));
        assert_eq!(matching_lines(&file, "db.example.com", 2222), vec![1, 2]);
        assert_eq!(matching_lines(&file, "DB.EXAMPLE.COM", 2222), vec![1, 2]);
        assert!(matching_lines(&file, "db.example.com", 22).is_empty());
        assert!(matching_lines(&file, "other.example.com", 2222).is_empty());
    }

    #[test]
    fn hashed_names_match_reference_hmac() {
        let key = ed25519(1).text();
        let text = format!(
            "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|nnUK16ANsXd3hL31YfAkGOluSjU= {key}\n\
             |1|AAECAwQFBgcICQoLDA0ODxAREhM=|Wgcx+Fm+LmaWwC7rQ80eIf2uHe0= {key}\n"
        );
        let file = parse(&text);
        assert_eq!(matching_lines(&file, "example.com", 22), vec![1]);
        assert_eq!(matching_lines(&file, "example.com", 2222), vec![2]);
        assert_eq!(
            hashed_name("example.com", &std::array::from_fn(|i| i as u8)),
            text.split(' ').next().unwrap()
        );
        assert_eq!(file.entries[0].host_patterns(), None);
    }

    #[test]
    fn is_recordable_host_refuses_pattern_characters() {
        assert!(is_recordable_host("db-1.example.com"));
        assert!(is_recordable_host("2001:db8::1"));
        for bad in [
            "",
            "a b",
            "a,b",
            "*.example.com",
            "h?",
            "!h",
            "[h]",
            "|1|x",
            "a@b",
            "h#",
            "a\nb",
        ] {
            assert!(!is_recordable_host(bad), "{bad:?}");
        }
    }

    // ---- parsing ----

    #[test]
    fn parses_fields_skipping_comments_blank_lines_and_blanks() {
        let key = ed25519(1);
        let text = format!(
            "# a comment\n\n  \t \n\t example.com\t  {}  \tmy  comment \t\r\n  # indented comment\n",
            key.text()
        );
        let file = parse(&text);
        assert!(file.issues.is_empty(), "{:?}", file.issues);
        assert_eq!(file.entries.len(), 1);
        let entry = &file.entries[0];
        assert_eq!(entry.line, 4);
        assert_eq!(entry.marker, Marker::None);
        assert_eq!(entry.key_type, "ssh-ed25519");
        assert_eq!(entry.key_blob, key.blob);
        assert_eq!(entry.comment.as_deref(), Some("my  comment"));
        assert_eq!(entry.host_patterns(), Some("example.com"));
        assert_eq!(parse(&line("h", &key)).entries[0].comment, None);
    }

    #[test]
    fn parses_markers() {
        let text = format!(
            "@cert-authority\t*.example.com {}\n@revoked  * {} revoked key\n",
            ed25519(1).text(),
            rsa(2).text()
        );
        let file = parse(&text);
        assert!(file.issues.is_empty(), "{:?}", file.issues);
        assert_eq!(file.entries[0].marker, Marker::CertAuthority);
        assert_eq!(file.entries[1].marker, Marker::Revoked);
        assert_eq!(file.entries[1].comment.as_deref(), Some("revoked key"));
    }

    #[test]
    fn rsa_signature_names_are_the_ssh_rsa_key_type() {
        let key = rsa(1);
        let text = format!("h rsa-sha2-512 {}\n", STANDARD.encode(&key.blob));
        let file = parse(&text);
        assert!(file.issues.is_empty(), "{:?}", file.issues);
        assert_eq!(file.entries[0].key_type, "ssh-rsa");
    }

    #[test]
    fn unpadded_base64_is_accepted_like_b64_pton() {
        let key = ecdsa("nistp256", 1);
        let unpadded = STANDARD_NO_PAD.encode(&key.blob);
        let file = parse(&format!("h {} {unpadded}", key.kind));
        assert!(file.issues.is_empty(), "{:?}", file.issues);
        assert_eq!(file.entries[0].key_blob, key.blob);
    }

    #[test]
    fn malformed_lines_become_issues_and_the_rest_still_works() {
        let ed = ed25519(1);
        let b64 = |blob: &[u8]| STANDARD.encode(blob);
        let mut trailing = ed.blob.clone();
        trailing.push(0);
        let wrong_curve = blob_of(&[b"ecdsa-sha2-nistp256", b"nistp384", &[4; 65]]);
        let cases: Vec<(String, &str)> = vec![
            ("onlyhost".into(), "nothing after host field"),
            ("host   ".into(), "nothing after host field"),
            ("host # comment".into(), "nothing after host field"),
            ("host ssh-ed25519".into(), "no key data after key type"),
            ("host ssh-ed25519 \t".into(), "no key data after key type"),
            ("host ssh-ed25519 !!!notbase64".into(), "not valid base64"),
            (
                format!("host ssh-ed25519 {}", b64(&rsa(1).blob)),
                "line says key type ssh-ed25519 but the key data holds ssh-rsa",
            ),
            (
                format!(
                    "host ecdsa-sha2-nistp256 {}",
                    b64(&ecdsa("nistp384", 1).blob)
                ),
                "line says key type",
            ),
            (
                format!("host ecdsa-sha2-nistp256 {}", b64(&wrong_curve)),
                "ECDSA curve",
            ),
            (
                format!("host ssh-ed25519 {}", b64(&ed.blob[..ed.blob.len() - 5])),
                "malformed",
            ),
            (format!("host ssh-ed25519 {}", b64(&trailing)), "malformed"),
            (
                format!("host ssh-ed25519 {}", b64(b"abc")),
                "does not start with a key type",
            ),
            (
                format!("host ssh-rsa {}", b64(&blob_of(&[b"ssh-rsa", &[1, 0, 1]]))),
                "malformed",
            ),
            (
                format!("@bogus host {}", ed.text()),
                "unknown marker \"@bogus\"",
            ),
            (
                format!("@revoked @cert-authority host {}", ed.text()),
                "more than one marker",
            ),
            ("@revoked".into(), "nothing after marker"),
            ("@revoked  \t".into(), "nothing after marker"),
            (
                format!("|1|bad host {}", ed.text()),
                "invalid hashed host field",
            ),
            (
                format!(
                    "|2|AAECAwQFBgcICQoLDA0ODxAREhM=|nnUK16ANsXd3hL31YfAkGOluSjU= {}",
                    ed.text()
                ),
                "invalid hashed",
            ),
            (
                format!("|1|AAECAwQFBgcICQoLDA0ODxAREhM=|AAEC {}", ed.text()),
                "invalid hashed",
            ),
            (
                format!("|1|AAEC|nnUK16ANsXd3hL31YfAkGOluSjU= {}", ed.text()),
                "invalid hashed",
            ),
            ("host 1024 35 1234567".into(), "SSH protocol 1"),
        ];
        let mut text = line("good.example.com", &ed) + "\n";
        for (bad, _) in &cases {
            text.push_str(bad);
            text.push('\n');
        }
        text.push_str(&line("after.example.com", &ed));
        let file = parse(&text);
        assert_eq!(file.issues.len(), cases.len(), "{:#?}", file.issues);
        for (index, ((bad, wanted), issue)) in cases.iter().zip(&file.issues).enumerate() {
            assert_eq!(issue.line, index + 2, "{bad}");
            assert!(issue.message.contains(wanted), "{bad}: {}", issue.message);
        }
        assert_eq!(matching_lines(&file, "good.example.com", 22), vec![1]);
        assert_eq!(
            matching_lines(&file, "after.example.com", 22),
            vec![cases.len() + 2]
        );
        assert_eq!(
            file.issues[0].to_string(),
            "line 2: nothing after host field \"onlyhost\": expected a key type and key"
        );
    }

    #[test]
    fn issue_messages_quote_a_short_sanitised_excerpt() {
        let long_host = "é".repeat(500);
        let file = parse(&long_host);
        assert!(
            file.issues[0].message.chars().count() < 120,
            "{}",
            file.issues[0].message
        );
        let file = parse("@\u{1b}[31mred host key");
        assert_eq!(
            file.issues[0].message,
            "unknown marker \"@?[31mred\" (expected @cert-authority or @revoked)"
        );
    }

    #[test]
    fn load_treats_a_missing_file_as_empty_and_tolerates_bad_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope/known_hosts");
        let file = KnownHostsFile::load(&missing).unwrap();
        assert!(file.entries.is_empty() && file.issues.is_empty());
        assert_eq!(file.path.as_deref(), Some(missing.as_path()));

        let path = dir.path().join("known_hosts");
        let mut bytes = line("example.com", &ed25519(1)).into_bytes();
        bytes.extend_from_slice(b" caf\xe9\n");
        fs::write(&path, bytes).unwrap();
        let file = KnownHostsFile::load(&path).unwrap();
        assert!(file.issues.is_empty(), "{:?}", file.issues);
        assert_eq!(matching_lines(&file, "example.com", 22), vec![1]);
        assert!(KnownHostsFile::load(dir.path()).is_err());
    }

    // ---- host matching ----

    #[test]
    fn wildcards_match_like_match_pattern() {
        let file = parse(&line("*.example.com,host-??,*", &ed25519(1)));
        let only = parse(&line("*.example.com,host-??", &ed25519(1)));
        for host in ["a.example.com", "a.b.example.com", "host-01", "HOST-ab"] {
            assert_eq!(matching_lines(&only, host, 22), vec![1], "{host}");
        }
        for host in [
            "example.com",
            "aexample.com",
            "host-1",
            "host-001",
            "a.example.com.evil",
        ] {
            assert!(matching_lines(&only, host, 22).is_empty(), "{host}");
        }
        // A bare `*` also matches [host]:port names: patterns compare against the text.
        assert_eq!(matching_lines(&file, "anything", 2222), vec![1]);
    }

    #[test]
    fn glob_backtracking_stays_fast() {
        let text = "a".repeat(5000);
        assert!(!glob_match(text.as_bytes(), b"*a*a*a*a*a*a*a*b"));
        assert!(glob_match(text.as_bytes(), b"*a*a*a*a*a*a*a*a"));
        assert!(glob_match(b"", b"***"));
        assert!(!glob_match(b"", b"?"));
        assert!(glob_match(b"abc", b"a*?"));
    }

    #[test]
    fn negation_vetoes_the_whole_line() {
        for hosts in [
            "*.example.com,!bad.example.com",
            "!bad.example.com,*.example.com",
        ] {
            let file = parse(&line(hosts, &ed25519(1)));
            assert_eq!(
                matching_lines(&file, "good.example.com", 22),
                vec![1],
                "{hosts}"
            );
            assert!(
                matching_lines(&file, "bad.example.com", 22).is_empty(),
                "{hosts}"
            );
        }
        let only_negated = parse(&line("!bad.example.com", &ed25519(1)));
        assert!(matching_lines(&only_negated, "good.example.com", 22).is_empty());
        let negated_wildcard = parse(&line("db*,!db3*", &ed25519(1)));
        assert_eq!(matching_lines(&negated_wildcard, "db1", 22), vec![1]);
        assert!(matching_lines(&negated_wildcard, "db3.example.com", 22).is_empty());
    }

    #[test]
    fn host_names_match_case_insensitively() {
        let file = parse(&line("Mixed.Case.COM,[DB.example.com]:2222", &ed25519(1)));
        assert_eq!(matching_lines(&file, "mixed.case.com", 22), vec![1]);
        assert_eq!(matching_lines(&file, "MIXED.case.Com", 22), vec![1]);
        assert_eq!(matching_lines(&file, "db.EXAMPLE.com", 2222), vec![1]);
        assert!(file.entries[0].matches_host("MIXED.CASE.COM", 22));
    }

    #[test]
    fn ports_need_the_bracketed_form() {
        let text = [
            line("example.com", &ed25519(1)),
            line("[example.com]:2222", &ed25519(2)),
            line("[*.example.org]:2222,[*.example.org]:2200", &ed25519(3)),
            line("[::1]:2222,::1", &ed25519(4)),
            line("[10.0.0.?]:22", &ed25519(5)),
        ]
        .join("\n");
        let file = parse(&text);
        assert_eq!(matching_lines(&file, "example.com", 22), vec![1]);
        assert_eq!(matching_lines(&file, "example.com", 2222), vec![2]);
        assert!(matching_lines(&file, "example.com", 2200).is_empty());
        assert_eq!(matching_lines(&file, "x.example.org", 2222), vec![3]);
        assert_eq!(matching_lines(&file, "x.example.org", 2200), vec![3]);
        assert!(matching_lines(&file, "x.example.org", 22).is_empty());
        assert_eq!(matching_lines(&file, "::1", 2222), vec![4]);
        assert_eq!(matching_lines(&file, "::1", 22), vec![4]);
        // Port 22 is never written with brackets, so this line can match nothing.
        assert!(matching_lines(&file, "10.0.0.5", 22).is_empty());
    }

    #[test]
    fn over_long_sub_pattern_makes_the_list_match_nothing() {
        let long = "a".repeat(MAX_SUBPATTERN);
        let file = parse(&line(&format!("example.com,{long}"), &ed25519(1)));
        assert!(matching_lines(&file, "example.com", 22).is_empty());
        let fits = "a".repeat(MAX_SUBPATTERN - 1);
        assert_eq!(
            matching_lines(&parse(&line(&fits, &ed25519(1))), &fits, 22),
            vec![1]
        );
    }

    #[test]
    fn trailing_comma_adds_no_empty_pattern() {
        let file = parse(&line("example.com,", &ed25519(1)));
        assert_eq!(matching_lines(&file, "example.com", 22), vec![1]);
        assert!(!match_pattern_list("", "a,"));
        assert!(match_pattern_list("", "a,,"));
    }

    // ---- verdicts ----

    #[test]
    fn match_changed_and_unknown_follow_key_types() {
        let (ed, rsa_key) = (ed25519(1), rsa(1));
        let file = parse(&[line("example.com", &ed), line("example.com", &rsa_key)].join("\n"));
        let files = [file];
        assert_eq!(
            check(&files, "example.com", 22, "ssh-rsa", &rsa_key.blob),
            Verdict::Match(at(2))
        );
        assert_eq!(
            check(&files, "Example.com", 22, "rsa-sha2-512", &rsa_key.blob),
            Verdict::Match(at(2))
        );
        assert_eq!(
            check(&files, "example.com", 22, "ssh-ed25519", &ed.blob),
            Verdict::Match(at(1))
        );

        let ec = ecdsa("nistp256", 1);
        assert_eq!(
            check(&files, "example.com", 22, &ec.kind, &ec.blob),
            Verdict::Unknown {
                other_types: vec![expected(&ed, 1), expected(&rsa_key, 2)]
            }
        );
        assert_eq!(
            check(&files, "example.com", 22, "ssh-ed25519", &ed25519(9).blob),
            Verdict::Changed {
                expected: vec![expected(&ed, 1)]
            }
        );
        assert_eq!(
            check(&files, "example.com", 22, "rsa-sha2-256", &rsa(9).blob),
            Verdict::Changed {
                expected: vec![expected(&rsa_key, 2)]
            }
        );
        assert_eq!(
            check(&files, "unknown.example.com", 22, "ssh-ed25519", &ed.blob),
            Verdict::Unknown {
                other_types: vec![]
            }
        );
    }

    #[test]
    fn ecdsa_curves_are_distinct_key_types() {
        let p384 = ecdsa("nistp384", 1);
        let files = [parse(&line("h", &p384))];
        let p256 = ecdsa("nistp256", 1);
        assert_eq!(
            check(&files, "h", 22, &p256.kind, &p256.blob),
            Verdict::Unknown {
                other_types: vec![expected(&p384, 1)]
            }
        );
        let other384 = ecdsa("nistp384", 2);
        assert!(matches!(
            check(&files, "h", 22, &other384.kind, &other384.blob),
            Verdict::Changed { .. }
        ));
    }

    #[test]
    fn several_keys_of_one_type_are_all_accepted_and_all_expected() {
        let (a, b) = (ed25519(1), ed25519(2));
        let files = [parse(&[line("h", &a), line("h,other", &b)].join("\n"))];
        assert_eq!(
            check(&files, "h", 22, &b.kind, &b.blob),
            Verdict::Match(at(2))
        );
        assert_eq!(
            check(&files, "h", 22, "ssh-ed25519", &ed25519(3).blob),
            Verdict::Changed {
                expected: vec![expected(&a, 1), expected(&b, 2)]
            }
        );
    }

    #[test]
    fn revoked_wins_over_a_matching_line() {
        let key = ed25519(1);
        let text = [line("example.com", &key), line("@revoked *", &key)].join("\n");
        let files = [parse(&text)];
        assert_eq!(
            check(&files, "example.com", 22, &key.kind, &key.blob),
            Verdict::Revoked(at(2))
        );
        assert_eq!(
            check(&files, "elsewhere", 2222, &key.kind, &key.blob),
            Verdict::Revoked(at(2))
        );
        assert_eq!(revoked(&files, "elsewhere", 22, &key.blob), Some(at(2)));
        assert_eq!(revoked(&files, "elsewhere", 22, &ed25519(2).blob), None);
    }

    #[test]
    fn revoked_lines_apply_to_the_hosts_they_name() {
        // hostfile.c loads only lines matching the host, markers included (ssh 9.x accepts this key).
        let key = ed25519(1);
        let files = [parse(
            &[
                line("@revoked other.example.com", &key),
                line("example.com", &key),
            ]
            .join("\n"),
        )];
        assert_eq!(
            check(&files, "example.com", 22, &key.kind, &key.blob),
            Verdict::Match(at(2))
        );
        assert_eq!(
            check(&files, "other.example.com", 22, &key.kind, &key.blob),
            Verdict::Revoked(at(1))
        );
    }

    #[test]
    fn marker_lines_are_not_known_host_keys() {
        let key = ed25519(1);
        let files = [parse(&line("@cert-authority example.com", &key))];
        assert_eq!(
            check(&files, "example.com", 22, &key.kind, &key.blob),
            Verdict::Unknown {
                other_types: vec![]
            }
        );
    }

    #[test]
    fn bare_host_line_vouches_for_other_ports_but_never_reports_them_changed() {
        let (key, other) = (ed25519(1), ed25519(2));
        let files = [parse(&line("example.com", &key))];
        assert_eq!(
            check(&files, "example.com", 2222, &key.kind, &key.blob),
            Verdict::Match(at(1))
        );
        assert_eq!(
            check(&files, "example.com", 2222, &other.kind, &other.blob),
            Verdict::Unknown {
                other_types: vec![]
            }
        );
        let with_port = [parse(
            &[
                line("example.com", &key),
                line("[example.com]:2222", &other),
            ]
            .join("\n"),
        )];
        assert_eq!(
            check(&with_port, "example.com", 2222, &key.kind, &key.blob),
            Verdict::Changed {
                expected: vec![expected(&other, 2)]
            }
        );
    }

    #[test]
    fn locations_name_the_file_across_several_files() {
        let (a, b) = (ed25519(1), ed25519(2));
        let user = KnownHostsFile::parse(
            &format!("# user\n{}", line("h", &a)),
            Some(Path::new("/u/known_hosts")),
        );
        let global =
            KnownHostsFile::parse(&line("h", &b), Some(Path::new("/etc/ssh/ssh_known_hosts")));
        let files = [user, global];
        let user_loc = Location {
            file: Some("/u/known_hosts".into()),
            line: 2,
        };
        let global_loc = Location {
            file: Some("/etc/ssh/ssh_known_hosts".into()),
            line: 1,
        };
        assert_eq!(
            check(&files, "h", 22, &b.kind, &b.blob),
            Verdict::Match(global_loc.clone())
        );
        let Verdict::Changed { expected } = check(&files, "h", 22, "ssh-ed25519", &ed25519(3).blob)
        else {
            panic!("expected a changed verdict");
        };
        let locations: Vec<Location> = expected.into_iter().map(|e| e.location).collect();
        assert_eq!(locations, vec![user_loc.clone(), global_loc]);
        assert_eq!(user_loc.to_string(), "/u/known_hosts:2");
        assert_eq!(at(7).to_string(), "line 7");
    }

    #[test]
    fn cert_authority_needs_a_matching_unrevoked_ca_line() {
        let (ca, other_ca) = (ed25519(7), ed25519(8));
        let files = [parse(
            &[
                line("@cert-authority *.example.com", &ca),
                line("plain.example.com", &other_ca),
            ]
            .join("\n"),
        )];
        assert_eq!(
            cert_authority_trusted(&files, "db.example.com", 22, &ca.kind, &ca.blob),
            Some(at(1))
        );
        assert_eq!(
            cert_authority_trusted(&files, "db.example.org", 22, &ca.kind, &ca.blob),
            None
        );
        assert_eq!(
            cert_authority_trusted(&files, "db.example.com", 22, &other_ca.kind, &other_ca.blob),
            None
        );
        // A plain host key line is not a CA.
        assert_eq!(
            cert_authority_trusted(
                &files,
                "plain.example.com",
                22,
                &other_ca.kind,
                &other_ca.blob
            ),
            None
        );
        // [db.example.com]:2222 is unknown, so the bare name is consulted as for plain keys.
        assert_eq!(
            cert_authority_trusted(&files, "db.example.com", 2222, &ca.kind, &ca.blob),
            Some(at(1))
        );
        assert!(has_cert_authority(&files, "db.example.com", 22));
        // ... and so certificates are asked for there
        assert!(has_cert_authority(&files, "db.example.com", 2222));
        assert!(!has_cert_authority(&files, "db.example.org", 2222));
        let port_only = [parse(&line("@cert-authority [db.example.com]:2222", &ca))];
        assert!(has_cert_authority(&port_only, "db.example.com", 2222));
        assert!(!has_cert_authority(&port_only, "db.example.com", 22));

        let revoked_files = [parse(
            &[
                line("@cert-authority *.example.com", &ca),
                line("@revoked *", &ca),
            ]
            .join("\n"),
        )];
        assert_eq!(
            cert_authority_trusted(&revoked_files, "db.example.com", 22, &ca.kind, &ca.blob),
            None
        );
        assert_eq!(
            cert_authority_trusted(&revoked_files, "db.example.com", 2222, &ca.kind, &ca.blob),
            None
        );
    }

    #[test]
    fn known_key_types_lists_plain_lines_in_order_without_repeats() {
        let text = [
            line("h", &ed25519(1)),
            line("h", &rsa(1)),
            line("@cert-authority h", &ecdsa("nistp256", 1)),
            line("@revoked h", &ecdsa("nistp521", 1)),
            line("h,x", &ed25519(2)),
            line("[h]:2222", &ecdsa("nistp384", 1)),
        ]
        .join("\n");
        let files = [parse(&text), parse(&line("*", &ecdsa("nistp256", 2)))];
        assert_eq!(
            known_key_types(&files, "h", 22),
            ["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256"]
        );
        assert_eq!(
            known_key_types(&files, "h", 2222),
            ["ecdsa-sha2-nistp384", "ecdsa-sha2-nistp256"]
        );
        assert_eq!(
            known_key_types(&files[..1], "nobody", 22),
            Vec::<String>::new()
        );
    }

    // ---- appending ----

    #[test]
    fn append_creates_private_dir_and_file_and_completes_the_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home/.ssh/known_hosts");
        let first = format_line("a.example.com", 22, "ssh-ed25519", &ed25519(1).blob, false);
        append_entry(&path, &first).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(path.parent().unwrap()), 0o700);
            assert_eq!(mode(&path), 0o600);
        }
        fs::write(&path, format!("{first}\n# edited by hand, no newline")).unwrap();
        let second = format_line("b.example.com", 2222, "ssh-rsa", &rsa(1).blob, true);
        append_entry(&path, &format!("{second}\n")).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("{first}\n# edited by hand, no newline\n{second}\n")
        );
        let file = KnownHostsFile::load(&path).unwrap();
        assert_eq!(matching_lines(&file, "b.example.com", 2222), vec![3]);
    }

    #[test]
    fn append_refuses_anything_but_one_valid_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let good = line("a", &ed25519(1));
        for bad in [
            format!("{good}\n{good}"),
            format!("{good}\r"),
            "not a known_hosts line".to_owned(),
            "# only a comment".to_owned(),
            String::new(),
            format!("a,b {}", "ssh-ed25519 AAAA"),
        ] {
            let err = append_entry(&path, &bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert!(!path.exists());
    }

    #[test]
    fn append_unless_gives_up_while_the_lock_is_held_and_writes_nothing() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let entry = line("a", &ed25519(1));
        // a lock on another open file description blocks this one, as another process's would
        let holder = File::create(&path).unwrap();
        holder.lock().unwrap();
        let give_up = AtomicBool::new(false);
        let started = std::time::Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(100));
                give_up.store(true, Ordering::SeqCst);
            });
            let err = append_entry_unless(&path, &entry, &|| give_up.load(Ordering::SeqCst)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::Interrupted);
        });
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        drop(holder);
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
        append_entry_unless(&path, &entry, &|| false).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{entry}\n"));
    }

    const APPEND_PATH_ENV: &str = "KNOWN_HOSTS_TEST_APPEND_PATH";
    const APPEND_WRITER_ENV: &str = "KNOWN_HOSTS_TEST_APPEND_WRITER";
    const APPENDS_PER_WRITER: usize = 40;

    /// Long lines (a few KiB) so a torn or interleaved write would show.
    fn writer_line(writer: &str, index: usize) -> String {
        let host = format!("{writer}-{index}.append.test");
        let entry = format_line(
            &host,
            2222,
            "ssh-ed25519",
            &ed25519(index as u8).blob,
            index.is_multiple_of(2),
        );
        format!("{entry} {}", "c".repeat(1000 + index * 97))
    }

    fn write_lines(path: &Path, writer: &str) {
        for index in 0..APPENDS_PER_WRITER {
            append_entry(path, &writer_line(writer, index)).unwrap();
        }
    }

    /// Does the appending when started by the multi-process test; a normal run returns at once.
    #[test]
    fn append_worker() {
        let (Some(path), Ok(writer)) = (env::var_os(APPEND_PATH_ENV), env::var(APPEND_WRITER_ENV))
        else {
            return;
        };
        write_lines(Path::new(&path), &writer);
    }

    #[test]
    fn concurrent_appends_from_processes_and_threads_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ssh/known_hosts");
        let exe = env::current_exe().unwrap();
        // libtest names tests by module path without the crate name.
        let module = module_path!()
            .split_once("::")
            .map_or(module_path!(), |(_, rest)| rest);
        let test_name = format!("{module}::append_worker");
        let processes: Vec<String> = (0..4).map(|n| format!("process{n}")).collect();
        let children: Vec<_> = processes
            .iter()
            .map(|writer| {
                Command::new(&exe)
                    .args([test_name.as_str(), "--exact", "--test-threads=1"])
                    .env(APPEND_PATH_ENV, &path)
                    .env(APPEND_WRITER_ENV, writer)
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let threads: Vec<String> = (0..4).map(|n| format!("thread{n}")).collect();
        let handles: Vec<_> = threads
            .iter()
            .cloned()
            .map(|writer| {
                let path = path.clone();
                thread::spawn(move || write_lines(&path, &writer))
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success());
            assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
        }

        let text = fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'));
        let file = KnownHostsFile::load(&path).unwrap();
        assert!(file.issues.is_empty(), "{:?}", file.issues);
        let writers = processes.iter().chain(&threads);
        assert_eq!(file.entries.len(), 8 * APPENDS_PER_WRITER);
        for writer in writers {
            for index in 0..APPENDS_PER_WRITER {
                let found = file.matching(&format!("{writer}-{index}.append.test"), 2222);
                assert_eq!(found.len(), 1, "{writer}-{index}");
                assert_eq!(found[0].key_blob, ed25519(index as u8).blob);
                assert_eq!(
                    found[0].comment.as_ref().map(String::len),
                    Some(1000 + index * 97)
                );
            }
        }
    }

    // ---- robustness ----

    #[test]
    fn parse_never_panics_on_random_and_truncated_lines() {
        let mut rng = StdRng::seed_from_u64(0x6b6e_6f77_6e5f_686f);
        let valid = [
            line("example.com,192.0.2.1", &ed25519(1)) + " comment é",
            line("@cert-authority *.example.com", &rsa(2)),
            line("@revoked [h]:2222", &ecdsa("nistp521", 3)),
            format_line(
                "hashed.example.com",
                2222,
                "ssh-ed25519",
                &ed25519(4).blob,
                true,
            ),
            line("!bad,*", &ecdsa("nistp256", 5)),
        ];
        let fragments = [
            "@cert-authority",
            "@revoked",
            "@",
            "|1|",
            "|",
            "*",
            "?",
            "!",
            ",",
            "[",
            "]",
            ":2222",
            " ",
            "\t",
            "#",
            "\r",
            "ssh-ed25519",
            "ssh-rsa",
            "rsa-sha2-512",
            "ecdsa-sha2-nistp256",
            "nistp256",
            "sk-ssh-ed25519@openssh.com",
            "AAAA",
            "AAAAC3NzaC1lZDI1NTE5",
            "=",
            "==",
            "é",
            "\u{0}",
            "1024",
            "host",
        ];
        let key_types = [
            "ssh-ed25519",
            "ssh-rsa",
            "ssh-dss",
            "ecdsa-sha2-nistp384",
            "sk-ecdsa-sha2-nistp256@openssh.com",
        ];
        let mut lines: Vec<String> = Vec::new();
        for text in &valid {
            lines.extend(
                (0..=text.len())
                    .filter(|&end| text.is_char_boundary(end))
                    .map(|end| text[..end].to_owned()),
            );
        }
        for _ in 0..4000 {
            let mut text = String::new();
            for _ in 0..rng.gen_range(0..14) {
                match rng.gen_range(0..4) {
                    0 => {
                        let bytes: Vec<u8> = (0..rng.gen_range(0..12)).map(|_| rng.gen()).collect();
                        text.push_str(&String::from_utf8_lossy(&bytes));
                    }
                    1 => {
                        // A blob that starts like a real key then runs into random lengths and bytes.
                        let mut blob = Vec::new();
                        put_string(
                            &mut blob,
                            key_types[rng.gen_range(0..key_types.len())].as_bytes(),
                        );
                        blob.extend((0..rng.gen_range(0..80)).map(|_| rng.gen::<u8>()));
                        text.push_str(&STANDARD.encode(blob));
                    }
                    _ => text.push_str(fragments[rng.gen_range(0..fragments.len())]),
                }
            }
            lines.push(text);
        }
        for _ in 0..2000 {
            let mut bytes = valid[rng.gen_range(0..valid.len())].clone().into_bytes();
            let at = rng.gen_range(0..bytes.len());
            bytes[at] = rng.gen();
            bytes.truncate(rng.gen_range(at..=bytes.len()));
            lines.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        let probe = ed25519(1);
        for text in &lines {
            let file = parse(text);
            assert!(
                file.entries.len() + file.issues.len() <= text.split('\n').count(),
                "{text:?}"
            );
            let files = [file];
            for (host, port) in [
                ("example.com", 22),
                ("h", 2222),
                ("hashed.example.com", 2222),
                ("", 22),
            ] {
                let _ = files[0].matching(host, port);
                let _ = check(&files, host, port, &probe.kind, &probe.blob);
                let _ = cert_authority_trusted(&files, host, port, &probe.kind, &probe.blob);
            }
        }
        let all = parse(&lines.join("\n"));
        assert!(
            all.entries.len() + all.issues.len()
                <= lines.iter().map(|text| text.split('\n').count()).sum()
        );
        assert!(!all.entries.is_empty() && !all.issues.is_empty());
    }

    // ---- agreement with OpenSSH's own tools ----

    /// Generates a key with ssh-keygen; None when ssh-keygen is not installed.
    fn generate_key(dir: &Path, name: &str, args: &[&str]) -> Option<Key> {
        let path = dir.join(name);
        let status = Command::new("ssh-keygen")
            .args(args)
            .args(["-q", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .stdin(Stdio::null())
            .status()
            .ok()?;
        assert!(status.success(), "ssh-keygen {args:?} failed");
        let public = fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
        let mut fields = public.split_whitespace();
        let kind = fields.next().unwrap().to_owned();
        let blob = STANDARD.decode(fields.next().unwrap()).unwrap();
        Some(Key { kind, blob })
    }

    /// Line numbers `ssh-keygen -F name -f file` reports ("# Host name found: line N ...").
    fn ssh_keygen_found(file: &Path, name: &str) -> BTreeSet<usize> {
        let output = Command::new("ssh-keygen")
            .arg("-F")
            .arg(name)
            .arg("-f")
            .arg(file)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|text| text.starts_with("# Host "))
            .filter_map(|text| text.split(" found: line ").nth(1))
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .collect()
    }

    #[test]
    fn fingerprints_agree_with_ssh_keygen() {
        let dir = tempfile::tempdir().unwrap();
        for (name, args) in [
            ("ed", &["-t", "ed25519"][..]),
            ("ec", &["-t", "ecdsa", "-b", "521"]),
            ("rsa", &["-t", "rsa", "-b", "2048"]),
        ] {
            let Some(key) = generate_key(dir.path(), name, args) else {
                eprintln!("ssh-keygen not installed; skipping");
                return;
            };
            let output = Command::new("ssh-keygen")
                .args(["-l", "-E", "sha256", "-f"])
                .arg(dir.path().join(format!("{name}.pub")))
                .output()
                .unwrap();
            let printed = String::from_utf8_lossy(&output.stdout);
            assert_eq!(
                printed.split_whitespace().nth(1),
                Some(fingerprint_sha256(&key.blob).as_str()),
                "{name}"
            );
        }
    }

    #[test]
    fn matching_agrees_with_ssh_keygen_find() {
        let dir = tempfile::tempdir().unwrap();
        let specs: [(&str, &[&str]); 8] = [
            ("ed1", &["-t", "ed25519"]),
            ("ed2", &["-t", "ed25519"]),
            ("ed3", &["-t", "ed25519"]),
            ("rsa1", &["-t", "rsa", "-b", "2048"]),
            ("rsa2", &["-t", "rsa", "-b", "2048"]),
            ("ec1", &["-t", "ecdsa"]),
            ("ec2", &["-t", "ecdsa"]),
            ("ec384", &["-t", "ecdsa", "-b", "384"]),
        ];
        let mut keys = std::collections::HashMap::new();
        for (name, args) in specs {
            let Some(key) = generate_key(dir.path(), name, args) else {
                eprintln!("ssh-keygen not installed; skipping");
                return;
            };
            keys.insert(name, key.text());
        }
        let valid = [
            "# corpus of known_hosts forms".to_owned(),
            format!("example.com,192.0.2.1 {}", keys["ed1"]),
            format!("example.com {}", keys["rsa1"]),
            format!("*.example.com,!bad.example.com {}", keys["ec1"]),
            format!("[example.com]:2222 {}", keys["ed2"]),
            format!("[*.example.org]:2222,[*.example.org]:2200 {}", keys["ed3"]),
            format!("@cert-authority *.example.net {}", keys["ed3"]),
            format!("@revoked * {}", keys["rsa2"]),
            format!("host-?? {}", keys["ec384"]),
            String::new(),
            format!(
                "\t  spaced.example.com\t {}   comment with  spaces",
                keys["ec2"]
            ),
            format!("Mixed.Case.COM {}", keys["ed1"]),
            format!("[::1]:2222,::1 {}", keys["ed2"]),
            format!("!neg.example.com,*.neg.example.com {}", keys["ed1"]),
            format!("db*,!db3 {}", keys["rsa1"]),
            format!("[10.0.0.?]:22 {}", keys["ed1"]),
            format!(
                "*.example.com,!*.internal.example.com,10.*.*.* {}",
                keys["ed3"]
            ),
            format!("@cert-authority [*]:2222 {}", keys["ec1"]),
            format!(
                "a.b.example.com,c.example.com,d.example.com {}",
                keys["ed2"]
            ),
            format!("example.com,example.com {}", keys["ec2"]),
        ];
        // Lines ssh-keygen -F also skips without decoding keys (it reads types, not blobs).
        let malformed = [
            "broken.example.com ssh-ed25519".to_owned(),
            format!("@bogus example.com {}", keys["ed1"]),
            "example.com # no key".to_owned(),
            "@revoked".to_owned(),
            "example.com".to_owned(),
            format!("|1|notbase64|x {}", keys["ed1"]),
        ];
        let plain_path = dir.path().join("plain");
        fs::write(
            &plain_path,
            format!("{}\n{}\n", valid.join("\n"), malformed.join("\n")),
        )
        .unwrap();

        // ssh-keygen -H refuses files with invalid lines, so hash the valid part first.
        let hashed_path = dir.path().join("hashed");
        fs::write(&hashed_path, format!("{}\n", valid.join("\n"))).unwrap();
        let hashed = Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&hashed_path)
            .output()
            .unwrap();
        assert!(
            hashed.status.success(),
            "{}",
            String::from_utf8_lossy(&hashed.stderr)
        );
        let mut hashed_text = fs::read_to_string(&hashed_path).unwrap();
        assert!(hashed_text.contains("|1|"));
        hashed_text.push_str(&format!("{}\n", malformed.join("\n")));
        fs::write(&hashed_path, hashed_text).unwrap();

        let mut queries: Vec<(String, u16)> = [
            ("example.com", 22),
            ("example.com", 2222),
            ("example.com", 2200),
            ("www.example.com", 22),
            ("bad.example.com", 22),
            ("a.b.example.com", 22),
            ("c.example.com", 22),
            ("d.example.com", 2222),
            ("x.example.org", 2222),
            ("x.example.org", 2200),
            ("x.example.org", 22),
            ("foo.example.net", 22),
            ("foo.example.net", 2222),
            ("host-01", 22),
            ("host-1", 22),
            ("host-001", 22),
            ("host-ab", 2222),
            ("spaced.example.com", 22),
            ("mixed.case.com", 22),
            ("::1", 2222),
            ("::1", 22),
            ("::2", 2222),
            ("neg.example.com", 22),
            ("a.neg.example.com", 22),
            ("db1", 22),
            ("db3", 22),
            ("db", 22),
            ("db3x", 22),
            ("10.0.0.5", 22),
            ("10.1.2.3", 22),
            ("192.0.2.1", 22),
            ("192.0.2.1", 2222),
            ("a.internal.example.com", 22),
            ("broken.example.com", 22),
            ("unknown.test", 22),
            ("unknown.test", 2222),
        ]
        .iter()
        .map(|&(host, port)| (host.to_owned(), port))
        .collect();
        for prefix in ["", "www.", "a.b.", "bad.", "x.", "a.internal."] {
            for base in [
                "example.com",
                "example.org",
                "example.net",
                "neg.example.com",
            ] {
                for port in [22, 2222, 2200] {
                    queries.push((format!("{prefix}{base}"), port));
                }
            }
        }

        for path in [&plain_path, &hashed_path] {
            let file = KnownHostsFile::load(path).unwrap();
            assert_eq!(file.issues.len(), malformed.len(), "{:#?}", file.issues);
            let mut found_somewhere = 0;
            for (host, port) in &queries {
                let ours: BTreeSet<usize> =
                    matching_lines(&file, host, *port).into_iter().collect();
                let theirs = ssh_keygen_found(path, &host_name_for(host, *port));
                assert_eq!(
                    ours,
                    theirs,
                    "{} in {}",
                    host_name_for(host, *port),
                    path.display()
                );
                found_somewhere += usize::from(ours.len() > 1);
            }
            // Every name matches `@revoked *`; most should match more than that.
            assert!(
                found_somewhere > 40,
                "only {found_somewhere} names matched host lines"
            );
        }
    }
}
