//! Host key policy: strict known_hosts by default, trust-on-first-use, pinned
//! fingerprints, a callback, or an explicit opt-out.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::keys::{PublicKey, PublicKeyOrCertificate};

use crate::cancel::CancelToken;
use crate::error::{Error, HostKeyReason, Result};
use crate::known_hosts::{self, KnownHostsFile, Verdict};
use crate::options::{HostKeyInfo, HostKeyPolicy, Trace};

/// The presented key in the forms the policy needs.
pub(crate) struct Presented {
    pub algorithm: String,
    pub blob: Vec<u8>,
    pub fingerprint: String,
    pub certificate: Option<russh::keys::Certificate>,
}

pub(crate) fn describe(key: &PublicKeyOrCertificate) -> Result<Presented> {
    let (public, certificate): (PublicKey, _) = match key {
        PublicKeyOrCertificate::PublicKey { key, .. } => (key.clone(), None),
        PublicKeyOrCertificate::Certificate(cert) => (PublicKey::from(cert.public_key().clone()), Some(cert.clone())),
    };
    let blob = public
        .to_bytes()
        .map_err(|e| Error::Protocol { message: format!("cannot encode the server's host key: {e}") })?;
    Ok(Presented {
        algorithm: public.algorithm().as_str().to_string(),
        fingerprint: known_hosts::fingerprint_sha256(&blob),
        blob,
        certificate,
    })
}

pub(crate) fn info(host: &str, port: u16, p: &Presented) -> HostKeyInfo {
    use base64::Engine;
    HostKeyInfo {
        host: host.to_string(),
        port,
        algorithm: p.algorithm.clone(),
        fingerprint: p.fingerprint.clone(),
        public_key: format!("{} {}", p.algorithm, base64::engine::general_purpose::STANDARD.encode(&p.blob)),
    }
}

fn load_files(files: &[PathBuf]) -> Result<Vec<KnownHostsFile>> {
    files
        .iter()
        .map(|p| {
            KnownHostsFile::load(p).map_err(|e| Error::Config {
                option: Some("hostKey.knownHosts".into()),
                file: Some(p.clone()),
                line: None,
                message: format!("cannot read known_hosts file: {e}"),
            })
        })
        .collect()
}

/// A connect's known_hosts files, read and parsed once (for the algorithm order, the
/// certificate preference and the verdict), and a token cancelled when the connect is given up.
#[derive(Clone, Default)]
pub(crate) struct KnownHostsSnapshot {
    files: Arc<Vec<KnownHostsFile>>,
    given_up: CancelToken,
}

/// Cancels the snapshot's token when the connect's future ends, finished or dropped (a
/// timeout, an abort): an append still waiting for the file lock then stops, writing nothing.
pub(crate) struct GiveUpOnDrop(CancelToken);

impl Drop for GiveUpOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl KnownHostsSnapshot {
    /// Reads the policy's files on a blocking thread: a huge file, a FIFO or a stalled network
    /// home directory holds up this connect only (which its deadline and abort still end), not
    /// the runtime thread every connection shares.
    pub(crate) async fn load(policy: &HostKeyPolicy) -> Result<KnownHostsSnapshot> {
        let HostKeyPolicy::KnownHosts { files, .. } = policy else {
            return Ok(KnownHostsSnapshot::default());
        };
        let files = files.clone();
        let loaded = tokio::task::spawn_blocking(move || load_files(&files))
            .await
            .unwrap_or_else(|_| Err(Error::config("hostKey.knownHosts", "reading the known_hosts files stopped unexpectedly")))?;
        Ok(KnownHostsSnapshot { files: Arc::new(loaded), given_up: CancelToken::new() })
    }

    pub(crate) fn give_up_on_drop(&self) -> GiveUpOnDrop {
        GiveUpOnDrop(self.given_up.clone())
    }

    /// Host key algorithms known for this host, to be offered first (as OpenSSH does) so
    /// that a known host never fails because the server preferred another key type.
    pub(crate) fn known_algorithms(&self, policy: &HostKeyPolicy, host: &str, port: u16) -> Vec<String> {
        match policy {
            HostKeyPolicy::KnownHosts { alias, .. } => {
                let (host, port) = lookup_name(alias, host, port);
                known_hosts::known_key_types(&self.files, host, port)
            }
            _ => Vec::new(),
        }
    }

    pub(crate) fn has_cert_authority(&self, policy: &HostKeyPolicy, host: &str, port: u16) -> bool {
        match policy {
            HostKeyPolicy::KnownHosts { alias, .. } => {
                let (host, port) = lookup_name(alias, host, port);
                known_hosts::has_cert_authority(&self.files, host, port)
            }
            _ => false,
        }
    }
}

/// The name and port a known_hosts policy looks up: its alias stands for the host as given
/// and carries no port, as ssh's `HostKeyAlias` does.
fn lookup_name<'a>(alias: &'a Option<String>, host: &'a str, port: u16) -> (&'a str, u16) {
    match alias {
        Some(a) => (a.as_str(), 22),
        None => (host, port),
    }
}

fn host_label(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

fn host_key_error(reason: HostKeyReason, host: &str, port: u16, p: &Presented, message: String) -> Error {
    Error::HostKey {
        reason,
        host: host.to_string(),
        port,
        algorithm: p.algorithm.clone(),
        fingerprint: p.fingerprint.clone(),
        expected: Vec::new(),
        file: None,
        line: None,
        message,
    }
}

/// Applies the policy. Ok(()) means trusted.
pub(crate) async fn verify(policy: &HostKeyPolicy, known: &KnownHostsSnapshot, host: &str, port: u16, p: &Presented, trace: &Option<Trace>) -> Result<()> {
    match policy {
        HostKeyPolicy::InsecureAcceptAny => Ok(()),
        HostKeyPolicy::Fingerprints(pins) => {
            if pins.iter().any(|f| fingerprint_matches(f, &p.fingerprint)) {
                return Ok(());
            }
            let mut e = host_key_error(
                HostKeyReason::Rejected,
                host,
                port,
                p,
                format!(
                    "host key for {} is {} {}, which is not a pinned fingerprint ({})",
                    host_label(host, port),
                    p.algorithm,
                    p.fingerprint,
                    pins.join(", ")
                ),
            );
            if let Error::HostKey { expected, .. } = &mut e {
                *expected = pins.clone();
            }
            Err(e)
        }
        HostKeyPolicy::Verify(cb) => {
            if cb.verify(info(host, port, p)).await {
                Ok(())
            } else {
                Err(host_key_error(
                    HostKeyReason::Rejected,
                    host,
                    port,
                    p,
                    format!("host key {} {} for {} was rejected by the verify callback", p.algorithm, p.fingerprint, host_label(host, port)),
                ))
            }
        }
        HostKeyPolicy::KnownHosts { files, accept_new, hash, alias } => {
            let (host, port) = lookup_name(alias, host, port);
            verify_known_hosts(known, files, *accept_new, *hash, host, port, p, trace).await
        }
    }
}

fn fingerprint_matches(pin: &str, actual: &str) -> bool {
    let pin = pin.trim();
    // accept the bare base64 and a padded form too: people copy fingerprints from many places
    let norm = |s: &str| s.strip_prefix("SHA256:").unwrap_or(s).trim_end_matches('=').to_string();
    norm(pin) == norm(actual)
}

#[allow(clippy::too_many_arguments)]
async fn verify_known_hosts(known: &KnownHostsSnapshot, files: &[PathBuf], accept_new: bool, hash: bool, host: &str, port: u16, p: &Presented, trace: &Option<Trace>) -> Result<()> {
    let Some(cert) = &p.certificate else {
        return verify_plain_key(known, files, accept_new, hash, host, port, p).await;
    };
    let why = match verify_host_certificate(&known.files, host, port, cert) {
        CertCheck::Trusted => return Ok(()),
        // as OpenSSH ("No matching CA found. Retry with plain key"): no CA is trusted for
        // this host, so the certified key stands on its own, checked below like any key
        CertCheck::NoAuthority => return verify_plain_key(known, files, accept_new, hash, host, port, p).await,
        CertCheck::Refused(why) => {
            return Err(host_key_error(
                HostKeyReason::Rejected,
                host,
                port,
                p,
                format!("the host certificate of {} is refused: {why}", host_label(host, port)),
            ))
        }
        CertCheck::Invalid(why) => why,
    };
    // OpenSSH refuses the certificate and retries with its plain key, which known_hosts may list
    Trace::emit(trace, || format!("host certificate not trusted: {why}; checking its plain key"));
    verify_plain_key(known, files, accept_new, hash, host, port, p).await.map_err(|mut e| {
        if let Error::HostKey { message, .. } = &mut e {
            *message = format!("the host certificate of {} was not trusted ({why}), so its plain key was checked: {message}", host_label(host, port));
        }
        e
    })
}

async fn verify_plain_key(known: &KnownHostsSnapshot, files: &[PathBuf], accept_new: bool, hash: bool, host: &str, port: u16, p: &Presented) -> Result<()> {
    let label = host_label(host, port);
    match known_hosts::check(&known.files, host, port, &p.algorithm, &p.blob) {
        Verdict::Match(_) => Ok(()),
        Verdict::Revoked(loc) => Err(Error::HostKey {
            reason: HostKeyReason::Revoked,
            host: host.into(),
            port,
            algorithm: p.algorithm.clone(),
            fingerprint: p.fingerprint.clone(),
            expected: Vec::new(),
            file: loc.file.clone(),
            line: Some(loc.line),
            message: format!(
                "host key {} {} for {label} is marked @revoked ({}:{})",
                p.algorithm,
                p.fingerprint,
                loc.file.as_ref().map(|f| f.display().to_string()).unwrap_or_default(),
                loc.line
            ),
        }),
        Verdict::Changed { expected } => {
            let first = expected.first();
            let file = first.and_then(|e| e.location.file.clone());
            let line = first.map(|e| e.location.line);
            let were = expected
                .iter()
                .map(|e| format!("{} line {} has {}", e.location.file.as_ref().map(|f| f.display().to_string()).unwrap_or_default(), e.location.line, e.fingerprint))
                .collect::<Vec<_>>()
                .join("; ");
            Err(Error::HostKey {
                reason: HostKeyReason::Changed,
                host: host.into(),
                port,
                algorithm: p.algorithm.clone(),
                fingerprint: p.fingerprint.clone(),
                expected: expected.iter().map(|e| e.fingerprint.clone()).collect(),
                file,
                line,
                message: format!(
                    "REMOTE HOST IDENTIFICATION HAS CHANGED: host key for {label} changed ({were}, server presented {} {}); if the change is expected, remove the old line with ssh-keygen -R '{label}'",
                    p.algorithm, p.fingerprint
                ),
            })
        }
        Verdict::Unknown { other_types } if !other_types.is_empty() => {
            // OpenSSH treats a host known only with other key types as changed: trusting a
            // new key type on first use would let an attacker pick a type we never saw.
            let first = other_types.first();
            Err(Error::HostKey {
                reason: HostKeyReason::Changed,
                host: host.into(),
                port,
                algorithm: p.algorithm.clone(),
                fingerprint: p.fingerprint.clone(),
                expected: other_types.iter().map(|e| e.fingerprint.clone()).collect(),
                file: first.and_then(|e| e.location.file.clone()),
                line: first.map(|e| e.location.line),
                message: format!(
                    "host key for {label} changed: the server presented {} {}, but known_hosts only has {}; if the server really has a new key, remove the old lines with ssh-keygen -R '{label}'",
                    p.algorithm,
                    p.fingerprint,
                    other_types
                        .iter()
                        .map(|e| format!("{} {} ({})", e.key_type, e.fingerprint, e.location))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
        }
        Verdict::Unknown { other_types } => {
            if accept_new && known_hosts::is_recordable_host(host) {
                if let Some(target) = files.first() {
                    let line = known_hosts::format_line(host, port, &p.algorithm, &p.blob, hash);
                    append_off_thread(target, line, &known.given_up).await.map_err(|e| Error::Config {
                        option: Some("hostKey.knownHosts".into()),
                        file: Some(target.clone()),
                        line: None,
                        message: format!("cannot add the new host key: {e}"),
                    })?;
                    return Ok(());
                }
            }
            let searched = files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ");
            let others = if other_types.is_empty() {
                String::new()
            } else {
                format!(
                    " (known keys of other types: {})",
                    other_types.iter().map(|e| format!("{} {}", e.key_type, e.fingerprint)).collect::<Vec<_>>().join(", ")
                )
            };
            Err(Error::HostKey {
                reason: HostKeyReason::Unknown,
                host: host.into(),
                port,
                algorithm: p.algorithm.clone(),
                fingerprint: p.fingerprint.clone(),
                expected: other_types.iter().map(|e| e.fingerprint.clone()).collect(),
                file: None,
                line: None,
                message: format!(
                    "host key for {label} is not known ({} {}; searched {}){others}; verify the fingerprint and add it with ssh-keyscan, or pass hostKey: {{ knownHosts, acceptNew: true }} or a pinned fingerprint",
                    p.algorithm,
                    p.fingerprint,
                    if searched.is_empty() { "no files".to_string() } else { searched }
                ),
            })
        }
    }
}

/// Trust on first use writes on a blocking thread: opening the file and waiting for another
/// writer's lock must not hold up the runtime thread. A connect given up stops the wait.
async fn append_off_thread(target: &Path, line: String, given_up: &CancelToken) -> std::io::Result<()> {
    let (target, stop) = (target.to_path_buf(), given_up.clone());
    let work = tokio::task::spawn_blocking(move || known_hosts::append_entry_unless(&target, &line, &|| stop.is_cancelled()));
    tokio::select! {
        r = work => r.unwrap_or_else(|_| Err(std::io::Error::other("the append stopped unexpectedly"))),
        _ = given_up.cancelled() => Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "the connect was given up")),
    }
}

enum CertCheck {
    Trusted,
    /// No @cert-authority line for the host names its CA: the plain key is checked instead.
    NoAuthority,
    /// From a trusted CA but not valid for this host now (why): OpenSSH's check_host_cert
    /// refuses it and retries with the plain key, and so do we.
    Invalid(String),
    /// Revoked (the CA or the key), or a signature that does not verify (why): refused outright.
    Refused(String),
}

/// OpenSSH's default CASignatureAlgorithms (myproposal.h SSH_ALLOWED_CA_SIGALGS): a CA's
/// signature made with ssh-rsa (SHA-1) or ssh-dss is not trusted.
const CA_SIGNATURE_ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

/// A host certificate is trusted when a @cert-authority line for the host names its CA and it
/// passes what OpenSSH's check_host_cert checks: a host certificate, valid now, listing the
/// host among its principals (exactly; the name is lowercased first, as ssh lowercases it),
/// with no critical options, signed with an allowed CA signature algorithm.
fn verify_host_certificate(files: &[KnownHostsFile], host: &str, port: u16, cert: &russh::keys::Certificate) -> CertCheck {
    let ca = PublicKey::from(cert.signature_key().clone());
    let (Ok(ca_blob), Ok(key_blob)) = (ca.to_bytes(), PublicKey::from(cert.public_key().clone()).to_bytes()) else {
        return CertCheck::Refused("its keys cannot be encoded".into());
    };
    // a revoked CA or a revoked certified key is never trusted, nor its plain key (as OpenSSH)
    for (what, blob) in [("its CA key", &ca_blob), ("its certified key", &key_blob)] {
        if let Some(loc) = known_hosts::revoked(files, host, port, blob) {
            return CertCheck::Refused(format!("{what} is marked @revoked ({loc})"));
        }
    }
    if known_hosts::cert_authority_trusted(files, host, port, ca.algorithm().as_str(), &ca_blob).is_none() {
        return CertCheck::NoAuthority;
    }
    match certificate_problem(cert, &ca, host) {
        None => CertCheck::Trusted,
        Some(Problem::Signature) => CertCheck::Refused("its signature does not verify with the CA key it names".into()),
        Some(Problem::Invalid(why)) => CertCheck::Invalid(why),
    }
}

enum Problem {
    Signature,
    Invalid(String),
}

/// Why OpenSSH's check_host_cert (sshkey_cert_check_authority, then the critical options,
/// then the CA signature algorithm) would refuse the certificate, in its order.
fn certificate_problem(cert: &russh::keys::Certificate, ca: &PublicKey, host: &str) -> Option<Problem> {
    use russh::keys::ssh_key::certificate::CertType;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let ca_fp = ca.fingerprint(russh::keys::HashAlg::Sha256);
    if cert.validate_at(now, [&ca_fp]).is_err() {
        // validate_at checks the signature and the validity period together
        return Some(if now < cert.valid_after() {
            Problem::Invalid(format!("it is not valid before {}", utc(cert.valid_after())))
        } else if now >= cert.valid_before() {
            Problem::Invalid(format!("it expired at {}", utc(cert.valid_before())))
        } else {
            Problem::Signature
        });
    }
    if cert.cert_type() != CertType::Host {
        return Some(Problem::Invalid("it is a user certificate, not a host certificate".into()));
    }
    let principals = cert.valid_principals();
    let name = host.to_ascii_lowercase();
    if !principals.is_empty() && !principals.contains(&name) {
        return Some(Problem::Invalid(format!("it is issued for {}, not for {name:?} (principals are compared exactly)", quoted_list(principals.iter()))));
    }
    // PROTOCOL.certkeys: an unrecognised critical option must be refused, and host
    // certificates define none
    let critical = cert.critical_options();
    if !critical.is_empty() {
        return Some(Problem::Invalid(format!("it carries the critical option(s) {}, which no host certificate may have", quoted_list(critical.keys()))));
    }
    let signed_with = cert.signature().algorithm();
    if !CA_SIGNATURE_ALGORITHMS.contains(&signed_with.as_str()) {
        let name = signed_with.as_str();
        let sha1 = if name == "ssh-rsa" { " (SHA-1)" } else { "" };
        return Some(Problem::Invalid(format!("its CA signed it with {name}{sha1}, which OpenSSH's default CASignatureAlgorithms does not allow")));
    }
    None
}

/// `YYYY-MM-DD HH:MM:SS UTC` for a certificate time.
fn utc(secs: u64) -> String {
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let (year, month, day) = crate::civil::from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rest / 3600, rest / 60 % 60, rest % 60)
}

/// Names from a certificate (the server chose them), quoted and bounded for a message.
fn quoted_list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    const SHOWN: usize = 8;
    let names: Vec<&String> = names.collect();
    let mut out: Vec<String> = names
        .iter()
        .take(SHOWN)
        .map(|n| {
            let short: String = n.chars().take(64).collect();
            format!("{short:?}")
        })
        .collect();
    if names.len() > SHOWN {
        out.push(format!("and {} more", names.len() - SHOWN));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_times_read_as_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn pinned_fingerprint_forms() {
        assert!(fingerprint_matches("SHA256:abcDEF", "SHA256:abcDEF"));
        assert!(fingerprint_matches("abcDEF", "SHA256:abcDEF"));
        assert!(fingerprint_matches("SHA256:abcDEF=", "SHA256:abcDEF"));
        assert!(!fingerprint_matches("SHA256:abcDEG", "SHA256:abcDEF"));
    }
}
