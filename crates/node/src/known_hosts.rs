//! The `KnownHosts` engine of crates/core exposed to lib/known-hosts.ts.

use std::path::{Path, PathBuf};

use base64::Engine;
use ferrossh_core::known_hosts::{self, KnownHostsFile, Marker, Verdict};
use ferrossh_core::Error;
use napi_derive::napi;

use crate::errors;

#[napi(object)]
pub struct NativeKnownHostsSource {
    /// The file name shown in results (none for text given directly).
    pub path: Option<String>,
    pub text: String,
}

#[napi(object)]
pub struct NativeKnownHostsEntry {
    /// '' | 'cert-authority' | 'revoked'
    pub marker: String,
    pub key_type: String,
    pub fingerprint: String,
    /// `type base64`
    pub public_key: String,
    pub file: Option<String>,
    pub line: u32,
    pub hashed: bool,
    /// The host patterns as written (none when hashed).
    pub hosts: Option<String>,
    pub comment: Option<String>,
}

#[napi(object)]
pub struct NativeKnownHostsIssue {
    pub file: Option<String>,
    pub line: u32,
    pub message: String,
}

#[napi(object)]
pub struct NativeExpected {
    pub key_type: String,
    pub fingerprint: String,
    pub file: Option<String>,
    pub line: u32,
}

#[napi(object)]
pub struct NativeKnownHostsCheck {
    /// 'match' | 'changed' | 'unknown' | 'revoked'
    pub status: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// Keys known for the host (changed: same type; unknown: other types).
    pub expected: Vec<NativeExpected>,
}

fn path_str(p: &Option<PathBuf>) -> Option<String> {
    p.as_ref().map(|p| p.display().to_string())
}

/// Splits `type base64` into the type and the decoded blob.
fn split_key(key: &str) -> napi::Result<(String, Vec<u8>)> {
    let bad = || errors::to_napi(Error::config("key", "expected a public key as 'type base64' (an authorized_keys or known_hosts key)"));
    let mut it = key.split_whitespace();
    let (Some(t), Some(b)) = (it.next(), it.next()) else { return Err(bad()) };
    let blob = base64::engine::general_purpose::STANDARD.decode(b).map_err(|_| bad())?;
    Ok((t.to_string(), blob))
}

fn port(p: u32) -> napi::Result<u16> {
    u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| errors::to_napi(Error::config("port", "port must be between 1 and 65535")))
}

#[napi]
pub struct NativeKnownHosts {
    files: Vec<KnownHostsFile>,
}

#[napi]
impl NativeKnownHosts {
    #[napi(constructor)]
    pub fn new(sources: Vec<NativeKnownHostsSource>) -> Self {
        let files = sources.iter().map(|s| KnownHostsFile::parse(&s.text, s.path.as_deref().map(Path::new))).collect();
        NativeKnownHosts { files }
    }

    #[napi]
    pub fn issues(&self) -> Vec<NativeKnownHostsIssue> {
        self.files
            .iter()
            .flat_map(|f| f.issues.iter().map(move |i| NativeKnownHostsIssue { file: path_str(&f.path), line: i.line as u32, message: i.message.clone() }))
            .collect()
    }

    /// Entries whose host field matches (any marker).
    #[napi]
    pub fn lookup(&self, host: String, port_number: u32) -> napi::Result<Vec<NativeKnownHostsEntry>> {
        let port = port(port_number)?;
        Ok(self
            .files
            .iter()
            .flat_map(|f| {
                f.matching(&host, port).into_iter().map(move |e| NativeKnownHostsEntry {
                    marker: match e.marker {
                        Marker::None => "",
                        Marker::CertAuthority => "cert-authority",
                        Marker::Revoked => "revoked",
                    }
                    .into(),
                    key_type: e.key_type.clone(),
                    fingerprint: e.fingerprint(),
                    public_key: format!("{} {}", e.key_type, base64::engine::general_purpose::STANDARD.encode(&e.key_blob)),
                    file: path_str(&f.path),
                    line: e.line as u32,
                    hashed: e.is_hashed(),
                    hosts: e.host_patterns().map(str::to_string),
                    comment: e.comment.clone(),
                })
            })
            .collect())
    }

    #[napi]
    pub fn check(&self, host: String, port_number: u32, key: String) -> napi::Result<NativeKnownHostsCheck> {
        let port = port(port_number)?;
        let (key_type, blob) = split_key(&key)?;
        let exp = |v: Vec<known_hosts::Expected>| {
            v.into_iter()
                .map(|e| NativeExpected { key_type: e.key_type, fingerprint: e.fingerprint, file: path_str(&e.location.file), line: e.location.line as u32 })
                .collect()
        };
        Ok(match known_hosts::check(&self.files, &host, port, &key_type, &blob) {
            Verdict::Match(l) => NativeKnownHostsCheck { status: "match".into(), file: path_str(&l.file), line: Some(l.line as u32), expected: vec![] },
            Verdict::Revoked(l) => NativeKnownHostsCheck { status: "revoked".into(), file: path_str(&l.file), line: Some(l.line as u32), expected: vec![] },
            Verdict::Changed { expected } => NativeKnownHostsCheck { status: "changed".into(), file: None, line: None, expected: exp(expected) },
            Verdict::Unknown { other_types } if !other_types.is_empty() => {
                NativeKnownHostsCheck { status: "changed".into(), file: None, line: None, expected: exp(other_types) }
            }
            Verdict::Unknown { .. } => NativeKnownHostsCheck { status: "unknown".into(), file: None, line: None, expected: vec![] },
        })
    }

    #[napi]
    pub fn known_key_types(&self, host: String, port_number: u32) -> napi::Result<Vec<String>> {
        Ok(known_hosts::known_key_types(&self.files, &host, port(port_number)?))
    }
}

/// A known_hosts line for `key` (`type base64`), hashed like `ssh-keygen -H` when asked.
#[napi]
pub fn known_hosts_line(host: String, port_number: u32, key: String, hashed: bool) -> napi::Result<String> {
    let (key_type, blob) = split_key(&key)?;
    if !known_hosts::is_recordable_host(&host) {
        return Err(errors::to_napi(Error::config("host", format!("{host:?} cannot be written to known_hosts"))));
    }
    Ok(known_hosts::format_line(&host, port(port_number)?, &key_type, &blob, hashed))
}

/// Appends a line under an exclusive lock, so concurrent writers never corrupt the file.
#[napi]
pub fn known_hosts_append(path: String, line: String) -> napi::Result<()> {
    known_hosts::append_entry(Path::new(&path), &line).map_err(|e| {
        errors::to_napi(Error::Config { option: Some("knownHosts".into()), file: Some(PathBuf::from(&path)), line: None, message: format!("cannot append to known_hosts: {e}") })
    })
}
