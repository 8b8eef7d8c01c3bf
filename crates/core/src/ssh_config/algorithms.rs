//! Algorithm lists (Ciphers, MACs, KexAlgorithms, HostKeyAlgorithms, …).
//!
//! ssh_config(5), e.g. Ciphers: "If the specified list begins with a '+'
//! character, then the specified ciphers will be appended to the default
//! set instead of replacing them. If the specified list begins with a '-'
//! character, then the specified ciphers (including wildcards) will be
//! removed from the default set instead of replacing them. If the specified
//! list begins with a '^' character, then the specified ciphers will be
//! placed at the head of the default set."

use super::keywords::AlgClass;
use super::pattern::{match_pattern_list, ListMatch};

/// The default and the supported names for one class of algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmList {
    /// What is used when the configuration says nothing, in order.
    pub default: Vec<String>,
    /// Every name the implementation accepts, in the order wildcards expand.
    pub supported: Vec<String>,
}

/// Defaults and supported names for every algorithm keyword. The resolver
/// is told these rather than knowing them, so the same parser serves both
/// OpenSSH's lists (for comparison with `ssh -G`) and the SSH stack in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmDefaults {
    pub ciphers: AlgorithmList,
    pub macs: AlgorithmList,
    pub kex: AlgorithmList,
    /// HostKeyAlgorithms, PubkeyAcceptedAlgorithms, HostbasedAcceptedAlgorithms.
    pub host_keys: AlgorithmList,
    /// CASignatureAlgorithms.
    pub ca_signatures: AlgorithmList,
}

fn list(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-512-cert-v01@openssh.com",
];

const DEFAULT_KEYS: &[&str] = &[
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

impl AlgorithmDefaults {
    /// OpenSSH 9.2p1 built with OpenSSL (`ssh -Q cipher|mac|kex|HostKeyAlgorithms`
    /// and `ssh -G -F /dev/null host`).
    pub fn openssh_9_2() -> Self {
        let cipher_all = [
            "3des-cbc",
            "aes128-cbc",
            "aes192-cbc",
            "aes256-cbc",
            "aes128-ctr",
            "aes192-ctr",
            "aes256-ctr",
            "aes128-gcm@openssh.com",
            "aes256-gcm@openssh.com",
            "chacha20-poly1305@openssh.com",
        ];
        let cipher_default = [
            "chacha20-poly1305@openssh.com",
            "aes128-ctr",
            "aes192-ctr",
            "aes256-ctr",
            "aes128-gcm@openssh.com",
            "aes256-gcm@openssh.com",
        ];
        let mac_all = [
            "hmac-sha1",
            "hmac-sha1-96",
            "hmac-sha2-256",
            "hmac-sha2-512",
            "hmac-md5",
            "hmac-md5-96",
            "umac-64@openssh.com",
            "umac-128@openssh.com",
            "hmac-sha1-etm@openssh.com",
            "hmac-sha1-96-etm@openssh.com",
            "hmac-sha2-256-etm@openssh.com",
            "hmac-sha2-512-etm@openssh.com",
            "hmac-md5-etm@openssh.com",
            "hmac-md5-96-etm@openssh.com",
            "umac-64-etm@openssh.com",
            "umac-128-etm@openssh.com",
        ];
        let mac_default = [
            "umac-64-etm@openssh.com",
            "umac-128-etm@openssh.com",
            "hmac-sha2-256-etm@openssh.com",
            "hmac-sha2-512-etm@openssh.com",
            "hmac-sha1-etm@openssh.com",
            "umac-64@openssh.com",
            "umac-128@openssh.com",
            "hmac-sha2-256",
            "hmac-sha2-512",
            "hmac-sha1",
        ];
        let kex_all = [
            "diffie-hellman-group1-sha1",
            "diffie-hellman-group14-sha1",
            "diffie-hellman-group14-sha256",
            "diffie-hellman-group16-sha512",
            "diffie-hellman-group18-sha512",
            "diffie-hellman-group-exchange-sha1",
            "diffie-hellman-group-exchange-sha256",
            "ecdh-sha2-nistp256",
            "ecdh-sha2-nistp384",
            "ecdh-sha2-nistp521",
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "sntrup761x25519-sha512",
            "sntrup761x25519-sha512@openssh.com",
        ];
        let kex_default = [
            "sntrup761x25519-sha512",
            "sntrup761x25519-sha512@openssh.com",
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "ecdh-sha2-nistp256",
            "ecdh-sha2-nistp384",
            "ecdh-sha2-nistp521",
            "diffie-hellman-group-exchange-sha256",
            "diffie-hellman-group16-sha512",
            "diffie-hellman-group18-sha512",
            "diffie-hellman-group14-sha256",
        ];
        let plain_keys: Vec<&str> = KEY_TYPES
            .iter()
            .copied()
            .filter(|k| !k.contains("-cert-"))
            .collect();
        let sig_default: Vec<&str> = DEFAULT_KEYS
            .iter()
            .copied()
            .filter(|k| !k.contains("-cert-"))
            .collect();
        AlgorithmDefaults {
            ciphers: AlgorithmList {
                default: list(&cipher_default),
                supported: list(&cipher_all),
            },
            macs: AlgorithmList {
                default: list(&mac_default),
                supported: list(&mac_all),
            },
            kex: AlgorithmList {
                default: list(&kex_default),
                supported: list(&kex_all),
            },
            host_keys: AlgorithmList {
                default: list(DEFAULT_KEYS),
                supported: list(KEY_TYPES),
            },
            ca_signatures: AlgorithmList {
                default: list(&sig_default),
                supported: list(&plain_keys),
            },
        }
    }

    pub(crate) fn class(&self, class: AlgClass) -> &AlgorithmList {
        match class {
            AlgClass::Cipher => &self.ciphers,
            AlgClass::Mac => &self.macs,
            AlgClass::Kex => &self.kex,
            AlgClass::Key => &self.host_keys,
            AlgClass::Signature => &self.ca_signatures,
        }
    }
}

impl Default for AlgorithmDefaults {
    fn default() -> Self {
        Self::openssh_9_2()
    }
}

/// Checks a configured list when it is read: every name must be supported.
/// Removal lists (`-`) may hold any pattern; key type lists may use
/// wildcards that match at least one supported type.
pub(crate) fn validate(spec: &str, class: AlgClass, table: &AlgorithmList) -> bool {
    if spec.starts_with('-') {
        return true;
    }
    let names = spec.strip_prefix(['+', '^']).unwrap_or(spec);
    if names.is_empty() {
        return false;
    }
    names.split(',').all(|name| {
        if table.supported.iter().any(|s| s == name) {
            return true;
        }
        class == AlgClass::Key
            && table
                .supported
                .iter()
                .any(|s| match_pattern_list(s, name, false) != ListMatch::None)
    })
}

/// Builds the effective list from the configured spec (or `None`) and the
/// defaults, as ssh does after reading the configuration.
pub(crate) fn assemble(spec: Option<&str>, table: &AlgorithmList) -> Result<Vec<String>, String> {
    let Some(spec) = spec.filter(|s| !s.is_empty()) else {
        return Ok(table.default.clone());
    };
    if let Some(removed) = spec.strip_prefix('-') {
        return Ok(table
            .default
            .iter()
            .filter(|name| match_pattern_list(name, removed, false) != ListMatch::Positive)
            .cloned()
            .collect());
    }
    let combined = if let Some(added) = spec.strip_prefix('+') {
        concat_unique(&table.default, added.split(','))
    } else if let Some(first) = spec.strip_prefix('^') {
        let head: Vec<String> = concat_unique(&[], first.split(','));
        concat_unique(&head, table.default.iter().map(String::as_str))
    } else {
        concat_unique(&[], spec.split(','))
    };
    let mut out: Vec<String> = Vec::new();
    for pattern in &combined {
        if pattern.starts_with('!') {
            return Err(format!(
                "negated algorithm pattern {pattern} is not allowed here"
            ));
        }
        let matching = table
            .supported
            .iter()
            .filter(|s| match_pattern_list(s, pattern, false) == ListMatch::Positive);
        out = concat_unique(&out, matching.map(String::as_str));
    }
    if out.is_empty() {
        return Err(format!("algorithm list \"{spec}\" leaves nothing to use"));
    }
    Ok(out)
}

/// Appends the names from `more` that are not in `base` yet.
fn concat_unique<'a>(base: &[String], more: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out = base.to_vec();
    for name in more {
        if !name.is_empty() && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}
