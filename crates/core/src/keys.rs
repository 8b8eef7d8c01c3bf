//! SSH keys: loading private keys in every format users bring (OpenSSH, PEM PKCS#1 and SEC1
//! including the legacy `Proc-Type: 4,ENCRYPTED` form, PKCS#8 plain and encrypted, PuTTY PPK v2
//! and v3), describing private or public keys (`parse_key`) and generating new ones the way
//! `ssh-keygen` does (`generate_key`).
//!
//! Everything here reads untrusted bytes: no input may panic, and every key-derivation cost a
//! file can ask for is bounded so that a hostile file cannot hang the caller or exhaust memory.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use russh::keys::ssh_encoding::{Decode, Encode};
use russh::keys::ssh_key::private::{
    EcdsaKeypair, Ed25519Keypair, KeypairData, RsaKeypair, RsaPrivateKey,
};
use russh::keys::ssh_key::public::{EcdsaPublicKey, KeyData};
use russh::keys::ssh_key::{self, Cipher, EcdsaCurve, HashAlg, Kdf, LineEnding, Mpint};
use russh::keys::{PrivateKey, PublicKey};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Why a key could not be loaded. Messages never contain key material or the passphrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the private key is encrypted: pass its passphrase to use it")]
    PassphraseRequired,
    #[error("wrong passphrase: it does not decrypt this private key")]
    WrongPassphrase,
    #[error("unsupported key: {0}")]
    Unsupported(String),
    #[error("malformed key: {0}")]
    Malformed(String),
}

/// What `parse_key` reports about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// SSH algorithm name: `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, …
    pub key_type: String,
    /// Key size as `ssh-keygen -l` prints it.
    pub bits: u32,
    /// `SHA256:…`, as `ssh-keygen -l -E sha256`.
    pub fingerprint: String,
    /// authorized_keys line: `type base64 [comment]`.
    pub public_key: String,
    pub comment: String,
    /// The private key is stored encrypted (always false for public keys).
    pub encrypted: bool,
}

/// The kind of key `generate_key` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ed25519,
    /// `bits` is 256, 384 or 521.
    Ecdsa {
        bits: u32,
    },
    /// `bits` is at least [`MIN_RSA_BITS`]; [`DEFAULT_RSA_BITS`] is what ssh-keygen picks.
    Rsa {
        bits: u32,
    },
}

/// ssh-keygen's default RSA size since OpenSSH 8.8.
pub const DEFAULT_RSA_BITS: u32 = 3072;
/// Below 2048 bits RSA no longer meets NIST SP 800-131A: generating such keys is refused
/// (loading existing ones is not).
pub const MIN_RSA_BITS: u32 = 2048;

/// A freshly generated key pair.
#[derive(Clone)]
pub struct GeneratedKey {
    /// OpenSSH private key file (`-----BEGIN OPENSSH PRIVATE KEY-----`).
    pub private_key: String,
    /// authorized_keys line.
    pub public_key: String,
    /// `SHA256:…`
    pub fingerprint: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key must not end up in logs through a stray `{:?}`.
        f.debug_struct("GeneratedKey")
            .field("public_key", &self.public_key)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

// Limits on what a file may ask of us. A real key file is a few kilobytes; the KDF limits sit
// well above what ssh-keygen, PuTTYgen and OpenSSL write (or let users pick in practice) while
// keeping the worst case to seconds and a few hundred MiB.
const MAX_INPUT_LEN: usize = 64 * 1024;
const MAX_RSA_BITS: u32 = 16384;
/// ssh-keygen writes 16 by default (`-a`); each round costs ~6 ms.
const MAX_BCRYPT_ROUNDS: u32 = 1024;
/// OpenSSL writes 2048; OWASP recommends 600 000 for PBKDF2-HMAC-SHA256.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// scrypt uses 128·N·r bytes: cap it at 256 MiB, and the total work at 8× that.
const MAX_SCRYPT_NR: u64 = 1 << 21;
const MAX_SCRYPT_NRP: u64 = 1 << 24;
/// PuTTYgen writes 8 MiB and tunes the passes to ~100 ms (about 30).
const MAX_ARGON2_MEMORY_KIB: u32 = 256 * 1024;
/// Memory (KiB) × passes: 512 passes at PuTTYgen's 8 MiB, a few seconds.
const MAX_ARGON2_WORK: u64 = 1 << 22;
const MAX_ARGON2_LANES: u32 = 64;

const SUPPORTED: &str = "ferrossh reads ed25519, ecdsa-sha2-nistp256/384/521 and ssh-rsa keys";

/// Loads a private key in any supported format, detected from its content.
pub fn load_private_key(data: &[u8], passphrase: Option<&str>) -> Result<PrivateKey, KeyError> {
    match parse(data, passphrase)? {
        Parsed::Private { key, .. } => Ok(*key),
        Parsed::Locked(_) => Err(KeyError::PassphraseRequired),
        Parsed::Public(_) => Err(KeyError::Unsupported(
            "this is a public key; authentication needs the private key file (without .pub)".into(),
        )),
    }
}

/// The public half of a private key file without decrypting it (OpenSSH and PPK files carry
/// it in the clear), or the key of a public key file. `None` for an encrypted PEM key, which
/// keeps its public half inside the encryption, and for anything unreadable.
pub fn public_half(data: &[u8]) -> Option<PublicKey> {
    match parse(data, None).ok()? {
        Parsed::Private { key, .. } => Some(key.public_key().clone()),
        Parsed::Locked(public) | Parsed::Public(public) => Some(public),
    }
}

/// Describes a private key (any format `load_private_key` reads) or a public key (authorized_keys
/// line, `.pub` file, RFC 4716 `---- BEGIN SSH2 PUBLIC KEY ----`). An encrypted OpenSSH or PPK
/// key given without its passphrase is still described from its public half.
pub fn parse_key(data: &[u8], passphrase: Option<&str>) -> Result<KeyInfo, KeyError> {
    Ok(match parse(data, passphrase)? {
        Parsed::Private { key, encrypted } => describe(key.public_key(), encrypted),
        Parsed::Locked(public) => describe(&public, true),
        Parsed::Public(public) => describe(&public, false),
    })
}

/// Generates a key pair like `ssh-keygen -t … -C comment [-N passphrase]`: OpenSSH format,
/// encrypted with aes256-ctr and bcrypt-pbkdf (16 rounds) when a non-empty passphrase is given.
pub fn generate_key(
    kind: KeyType,
    comment: &str,
    passphrase: Option<&str>,
) -> Result<GeneratedKey, KeyError> {
    let mut rng = russh::keys::key::safe_rng();
    let keypair = match kind {
        KeyType::Ed25519 => KeypairData::Ed25519(Ed25519Keypair::random(&mut rng)),
        KeyType::Ecdsa { bits } => {
            let curve = match bits {
                256 => EcdsaCurve::NistP256,
                384 => EcdsaCurve::NistP384,
                521 => EcdsaCurve::NistP521,
                _ => {
                    return Err(KeyError::Unsupported(format!(
                        "ECDSA keys are 256, 384 or 521 bits, not {bits}"
                    )))
                }
            };
            KeypairData::Ecdsa(EcdsaKeypair::random(&mut rng, curve).map_err(generation_failed)?)
        }
        KeyType::Rsa { bits } => {
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(KeyError::Unsupported(format!(
                    "RSA keys must be {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, not {bits}"
                )));
            }
            let bits = usize::try_from(bits).map_err(|_| generation_failed("RSA size"))?;
            let key = rsa::RsaPrivateKey::new(&mut rng, bits).map_err(generation_failed)?;
            KeypairData::Rsa(rsa_keypair(&key)?)
        }
    };
    let mut key = PrivateKey::new(keypair, comment).map_err(generation_failed)?;
    let public_key = public_key_line(key.public_key(), comment);
    let fingerprint = fingerprint(key.public_key());
    if let Some(passphrase) = passphrase.filter(|p| !p.is_empty()) {
        key = key
            .encrypt(&mut rng, passphrase)
            .map_err(generation_failed)?;
    }
    let private_key = key.to_openssh(LineEnding::LF).map_err(generation_failed)?;
    Ok(GeneratedKey {
        private_key: private_key.as_str().to_owned(),
        public_key,
        fingerprint,
    })
}

/// The OpenSSH form of an RSA key. ssh-key's own conversion computes the CRT coefficient with
/// `q.invert_mod(p)`, which asserts that both primes have the same number of 64-bit limbs: primes
/// on either side of a limb boundary (1025 and 1024 bits, as in every 2049-bit key) made it panic
/// and abort the process. The rsa crate's precomputed `1/q mod p`, computed with the widths
/// matched, is taken instead.
fn rsa_keypair(key: &rsa::RsaPrivateKey) -> Result<RsaKeypair, KeyError> {
    use rsa::traits::PrivateKeyParts;
    let inconsistent = || malformed("the RSA private key's numbers are inconsistent");
    let [p, q] = key.primes() else {
        return Err(KeyError::Unsupported(
            "multi-prime RSA keys (more than two primes) are not supported".into(),
        ));
    };
    let iqmp = key.qinv().ok_or_else(inconsistent)?.retrieve();
    let mpint = |n: &rsa::BoxedUint| Mpint::from_positive_bytes(&Zeroizing::new(n.to_be_bytes()));
    let public = ssh_key::public::RsaPublicKey::try_from(key.as_public_key())
        .map_err(|e| ssh_key_error("the RSA public key", e))?;
    let private = RsaPrivateKey::new(mpint(key.d()), mpint(&iqmp), mpint(p), mpint(q))
        .map_err(|_| inconsistent())?;
    RsaKeypair::new(public, private).map_err(|e| ssh_key_error("the RSA private key", e))
}

/// Signs `data` with `key` as an SSH signature (`hash` picks rsa-sha2-256/512 for RSA keys).
///
/// An RSA signature must be exactly as long as the modulus (RFC 8017 §8.2.1, RFC 8332 §3), and
/// OpenSSH refuses a longer one ("key bits do not match"). The rsa crate writes signatures at the
/// width of its 64-bit limbs, so for a modulus that is not a multiple of 64 bits (3000, 2100,
/// 2049…) they carry leading zero bytes: those are cut off here.
pub fn sign(
    key: &PrivateKey,
    hash: Option<HashAlg>,
    data: &[u8],
) -> Result<ssh_key::Signature, ssh_key::Error> {
    use russh::keys::signature::Signer;
    let KeypairData::Rsa(rsa) = key.key_data() else {
        return Ok(Signer::try_sign(key, data)?);
    };
    let signature = Signer::try_sign(&(rsa, hash), data)?;
    let len = usize::try_from(bit_length(rsa.public().n()).div_ceil(8)).unwrap_or(usize::MAX);
    let bytes = signature.as_bytes();
    let extra = bytes.len().saturating_sub(len);
    // the signature is below the modulus, so anything past its length is zeros
    if bytes[..extra].iter().any(|&b| b != 0) {
        return Err(ssh_key::Error::Crypto);
    }
    ssh_key::Signature::new(signature.algorithm(), &bytes[extra..])
}

/// The size of an RSA key's modulus in bits, as `ssh-keygen -l` prints it; `None` for other keys.
pub fn rsa_bits(key: &PublicKey) -> Option<u32> {
    match key.key_data() {
        KeyData::Rsa(k) => Some(bit_length(k.n())),
        _ => None,
    }
}

/// authorized_keys line for `key`: `type base64 [comment]`.
pub fn public_key_line(key: &PublicKey, comment: &str) -> String {
    // Encoding a key held in memory only fails on allocation; an empty blob is the least bad
    // answer for a function whose callers build display strings.
    let mut blob = Vec::new();
    if key.key_data().encode(&mut blob).is_err() {
        blob.clear();
    }
    let mut line = format!("{} {}", key.algorithm(), BASE64.encode(blob));
    // A line break inside the comment would split the authorized_keys entry in two.
    let comment: String = comment
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let comment = comment.trim();
    if !comment.is_empty() {
        line.push(' ');
        line.push_str(comment);
    }
    line
}

/// `SHA256:…` fingerprint, as `ssh-keygen -l -E sha256` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn generation_failed(e: impl std::fmt::Display) -> KeyError {
    KeyError::Unsupported(format!("key generation failed: {e}"))
}

fn describe(public: &PublicKey, encrypted: bool) -> KeyInfo {
    let comment = public.comment().as_str_lossy().to_string();
    KeyInfo {
        key_type: public.algorithm().to_string(),
        bits: key_bits(public.key_data()),
        fingerprint: fingerprint(public),
        public_key: public_key_line(public, &comment),
        comment,
        encrypted,
    }
}

fn key_bits(key: &KeyData) -> u32 {
    match key {
        KeyData::Ed25519(_) => 256,
        KeyData::Ecdsa(k) => match k.curve() {
            EcdsaCurve::NistP256 => 256,
            EcdsaCurve::NistP384 => 384,
            EcdsaCurve::NistP521 => 521,
        },
        KeyData::Rsa(k) => bit_length(k.n()),
        _ => 0,
    }
}

/// Bit length of a positive mpint, as OpenSSL's BN_num_bits (ssh-keygen reports 2047 for a
/// modulus whose top bit is clear, not the byte length × 8).
fn bit_length(n: &Mpint) -> u32 {
    let mut significant = n
        .as_positive_bytes()
        .unwrap_or_default()
        .iter()
        .skip_while(|&&b| b == 0);
    let Some(&top) = significant.next() else {
        return 0;
    };
    let rest = u32::try_from(significant.count()).unwrap_or(u32::MAX);
    rest.saturating_mul(8)
        .saturating_add(8 - top.leading_zeros())
}

/// Rejects what russh cannot authenticate with, naming what to use instead.
fn check_supported(key: &KeyData) -> Result<(), KeyError> {
    match key {
        KeyData::Ed25519(_) | KeyData::Ecdsa(_) => Ok(()),
        KeyData::Rsa(k) => {
            let bits = bit_length(k.n());
            if bits > MAX_RSA_BITS {
                return Err(KeyError::Unsupported(format!(
                    "RSA keys larger than {MAX_RSA_BITS} bits are not supported ({bits} bits)"
                )));
            }
            Ok(())
        }
        other => {
            let name = other.algorithm().to_string();
            Err(KeyError::Unsupported(if name == "ssh-dss" {
                format!("DSA keys are insecure and disabled in OpenSSH; {SUPPORTED}")
            } else if name.starts_with("sk-") {
                format!("FIDO security-key ({name}) keys need the hardware token; {SUPPORTED}")
            } else if name.contains("-cert-") {
                format!("{name} is a certificate, not a key; pass the key itself")
            } else {
                format!("{name:?} keys are not supported; {SUPPORTED}")
            }))
        }
    }
}

enum Parsed {
    Private {
        key: Box<PrivateKey>,
        encrypted: bool,
    },
    /// An encrypted private key read without its passphrase: only its public half is known.
    Locked(PublicKey),
    Public(PublicKey),
}

fn parse(data: &[u8], passphrase: Option<&str>) -> Result<Parsed, KeyError> {
    if data.len() > MAX_INPUT_LEN {
        return Err(malformed(format!(
            "{} bytes is far larger than any key file (limit {MAX_INPUT_LEN})",
            data.len()
        )));
    }
    let text = std::str::from_utf8(data).map_err(|_| {
        malformed("not a text key file (binary DER keys are not read; convert them to PEM)")
    })?;
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(malformed("the key is empty"));
    }
    let parsed = if text.starts_with(ppk::HEADER) {
        ppk::parse(text, passphrase)?
    } else if text.starts_with("---- BEGIN ") {
        Parsed::Public(rfc4716_public_key(text)?)
    } else if let Some(block) = pem::find(text)? {
        pem_private_key(&block, passphrase)?
    } else {
        Parsed::Public(public_key_text(text)?)
    };
    let key_data = match &parsed {
        Parsed::Private { key, .. } => key.public_key().key_data(),
        Parsed::Locked(public) | Parsed::Public(public) => public.key_data(),
    };
    check_supported(key_data)?;
    if let Parsed::Private { key, .. } = &parsed {
        check_keypair(key.key_data())?;
    }
    Ok(parsed)
}

/// Confirms that the private half belongs to the public half. OpenSSH and PuTTY files store both
/// (a PuTTY MAC proves the file intact, not that its writer was consistent); a mismatch would
/// otherwise surface later as a baffling authentication failure.
fn check_keypair(keypair: &KeypairData) -> Result<(), KeyError> {
    let consistent = match keypair {
        KeypairData::Ed25519(k) => {
            Ed25519Keypair::from_seed(&k.private.to_bytes()).public == k.public
        }
        KeypairData::Ecdsa(k) => ecdsa_keypair(k.curve(), k.private_key_bytes())
            .is_some_and(|derived| EcdsaPublicKey::from(&derived) == EcdsaPublicKey::from(k)),
        KeypairData::Rsa(k) => rsa::RsaPrivateKey::try_from(k).is_ok(),
        _ => true,
    };
    if consistent {
        Ok(())
    } else {
        Err(malformed(
            "the private key does not match its public key: the file is corrupt",
        ))
    }
}

/// ECDSA key pair from a big-endian private scalar, left-padded to the field size as SEC1
/// encodes it.
fn ecdsa_keypair(curve: EcdsaCurve, scalar: &[u8]) -> Option<EcdsaKeypair> {
    let size = match curve {
        EcdsaCurve::NistP256 => 32,
        EcdsaCurve::NistP384 => 48,
        EcdsaCurve::NistP521 => 66,
    };
    let mut bytes = Zeroizing::new(vec![0u8; size]);
    let offset = size.checked_sub(scalar.len())?;
    bytes[offset..].copy_from_slice(scalar);
    Some(match curve {
        EcdsaCurve::NistP256 => {
            let sk = p256::SecretKey::from_slice(&bytes).ok()?;
            EcdsaKeypair::NistP256 {
                public: sk.public_key().into(),
                private: sk.into(),
            }
        }
        EcdsaCurve::NistP384 => {
            let sk = p384::SecretKey::from_slice(&bytes).ok()?;
            EcdsaKeypair::NistP384 {
                public: sk.public_key().into(),
                private: sk.into(),
            }
        }
        EcdsaCurve::NistP521 => {
            let sk = p521::SecretKey::from_slice(&bytes).ok()?;
            EcdsaKeypair::NistP521 {
                public: sk.public_key().into(),
                private: sk.into(),
            }
        }
    })
}

fn malformed(message: impl Into<String>) -> KeyError {
    KeyError::Malformed(message.into())
}

/// Maps a decoding failure of `what`. The ssh-key messages describe structure (lengths, labels
/// such as an unknown algorithm name), never secret bytes.
fn ssh_key_error(what: &str, e: ssh_key::Error) -> KeyError {
    match e {
        ssh_key::Error::AlgorithmUnknown | ssh_key::Error::AlgorithmUnsupported { .. } => {
            KeyError::Unsupported(format!("{what} uses an unknown algorithm; {SUPPORTED}"))
        }
        e => malformed(format!(
            "{what} could not be decoded ({})",
            printable(&e.to_string())
        )),
    }
}

fn pem_private_key(block: &pem::Block<'_>, passphrase: Option<&str>) -> Result<Parsed, KeyError> {
    let private = |key: Result<PrivateKey, KeyError>, encrypted| {
        key.map(|key| Parsed::Private {
            key: Box::new(key),
            encrypted,
        })
    };
    match block.label {
        "OPENSSH PRIVATE KEY" => openssh_private_key(&block.body, passphrase),
        "RSA PRIVATE KEY" => {
            let (der, encrypted) = pem::legacy_decrypt(block, passphrase)?;
            private(der::rsa_pkcs1(&der), encrypted)
        }
        "EC PRIVATE KEY" => {
            let (der, encrypted) = pem::legacy_decrypt(block, passphrase)?;
            private(der::pkcs8_or_sec1(&der, "SEC1 EC private key"), encrypted)
        }
        "PRIVATE KEY" => private(der::pkcs8(&block.body), false),
        "ENCRYPTED PRIVATE KEY" => {
            let der = der::pkcs8_decrypt(&block.body, passphrase)?;
            private(der::pkcs8(&der), true)
        }
        "DSA PRIVATE KEY" => Err(KeyError::Unsupported(format!(
            "DSA keys are insecure and disabled in OpenSSH; {SUPPORTED}"
        ))),
        "PUBLIC KEY" | "RSA PUBLIC KEY" => Err(KeyError::Unsupported(
            "PEM public keys are not read; convert with ssh-keygen -i -m PKCS8 -f key.pem".into(),
        )),
        label => Err(KeyError::Unsupported(format!(
            "a PEM \"{}\" block is not a private key format ferrossh reads (OpenSSH, PKCS#1, \
             SEC1, PKCS#8, PuTTY)",
            printable(label)
        ))),
    }
}

/// Quotes text from the input in an error message without letting it run on or carry controls.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(60)
        .collect()
}

/// `short_p256_key` for an encrypted key whose passphrase was right (AEAD ciphers aside).
fn decrypt_short_p256(key: &PrivateKey, passphrase: &str) -> Option<PrivateKey> {
    let cipher = key.cipher();
    if cipher.has_tag() {
        return None;
    }
    let (k, iv) = key.kdf().derive_key_and_iv(cipher, passphrase).ok()?;
    let mut section = Zeroizing::new(key.key_data().encrypted()?.to_vec());
    cipher.decrypt(&k, &iv, &mut section, None).ok()?;
    short_p256_key(&section, key.public_key())
}

/// The sections of an `openssh-key-v1` container holding one key: cipher name, public key blob
/// and the (maybe encrypted) private section.
fn openssh_container(body: &[u8]) -> Option<(String, Vec<u8>, Vec<u8>)> {
    let mut r = body.strip_prefix(b"openssh-key-v1\0")?;
    let cipher = String::decode(&mut r).ok()?;
    let _kdf = String::decode(&mut r).ok()?;
    let _kdf_options = Vec::<u8>::decode(&mut r).ok()?;
    if u32::decode(&mut r).ok()? != 1 {
        return None;
    }
    let public = Vec::<u8>::decode(&mut r).ok()?;
    let private = Vec::<u8>::decode(&mut r).ok()?;
    Some((cipher, public, private))
}

/// ssh-key refuses a NIST P-256 private scalar shorter than 32 bytes, and OpenSSH writes one for
/// about one key in 256 (an mpint drops leading zero bytes). Decodes such a plaintext private
/// section (check ints, the key, its comment, padding) here; None for anything else.
fn short_p256_key(section: &[u8], public: &PublicKey) -> Option<PrivateKey> {
    let mut r = section;
    if u32::decode(&mut r).ok()? != u32::decode(&mut r).ok()? {
        return None;
    }
    if String::decode(&mut r).ok()? != "ecdsa-sha2-nistp256" {
        return None;
    }
    let _curve = String::decode(&mut r).ok()?;
    let _point = Vec::<u8>::decode(&mut r).ok()?;
    let d = Zeroizing::new(Vec::<u8>::decode(&mut r).ok()?);
    let comment = String::decode(&mut r).ok()?;
    // padding 1, 2, 3, … to the cipher's block size
    if r.len() >= 16 || r.iter().enumerate().any(|(i, &b)| b as usize != i + 1) {
        return None;
    }
    let scalar = d.strip_prefix(&[0u8]).unwrap_or(&d);
    if scalar.len() >= 32 || d.first().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    let key = PrivateKey::new(KeypairData::Ecdsa(ecdsa_keypair(EcdsaCurve::NistP256, scalar)?), comment).ok()?;
    (key.public_key().key_data() == public.key_data()).then_some(key)
}

fn openssh_private_key(body: &[u8], passphrase: Option<&str>) -> Result<Parsed, KeyError> {
    let key = match PrivateKey::from_bytes(body) {
        Ok(key) => key,
        Err(e) => {
            let fixed = openssh_container(body)
                .filter(|(cipher, _, _)| cipher == "none")
                .and_then(|(_, public, section)| short_p256_key(&section, &PublicKey::from_bytes(&public).ok()?));
            return match fixed {
                Some(key) => Ok(Parsed::Private { key: Box::new(key), encrypted: false }),
                None => Err(ssh_key_error("the OpenSSH private key", e)),
            };
        }
    };
    if !key.is_encrypted() {
        return Ok(Parsed::Private {
            key: Box::new(key),
            encrypted: false,
        });
    }
    check_supported(key.public_key().key_data())?;
    // bcrypt-pbkdf cannot take an empty passphrase, and ssh-keygen never encrypts with one.
    let Some(passphrase) = passphrase.filter(|p| !p.is_empty()) else {
        return Ok(Parsed::Locked(key.public_key().clone()));
    };
    let cipher = key.cipher();
    let decryptable = matches!(
        cipher,
        Cipher::Aes128Cbc
            | Cipher::Aes192Cbc
            | Cipher::Aes256Cbc
            | Cipher::Aes128Ctr
            | Cipher::Aes192Ctr
            | Cipher::Aes256Ctr
            | Cipher::Aes128Gcm
            | Cipher::Aes256Gcm
            | Cipher::ChaCha20Poly1305
    );
    if !decryptable {
        return Err(KeyError::Unsupported(format!(
            "the private key is encrypted with {cipher}; re-encrypt it with ssh-keygen -p -f key \
             (which uses aes256-ctr)"
        )));
    }
    match key.kdf() {
        Kdf::Bcrypt { salt, rounds } if !salt.is_empty() && *rounds > 0 => {
            if *rounds > MAX_BCRYPT_ROUNDS {
                return Err(KeyError::Unsupported(format!(
                    "the key asks for {rounds} bcrypt rounds (limit {MAX_BCRYPT_ROUNDS}); \
                     re-encrypt it with ssh-keygen -p -a 100 -f key"
                )));
            }
        }
        _ => {
            return Err(malformed(
                "the OpenSSH key is encrypted but its KDF is invalid",
            ))
        }
    }
    match key.decrypt(passphrase) {
        Ok(key) => Ok(Parsed::Private {
            key: Box::new(key),
            encrypted: true,
        }),
        // The check integers (or the AEAD tag) after decryption do not match.
        Err(ssh_key::Error::Crypto) => Err(KeyError::WrongPassphrase),
        // Not quoting the decoder's message: it would describe decrypted bytes.
        Err(_) => match decrypt_short_p256(&key, passphrase) {
            Some(key) => Ok(Parsed::Private { key: Box::new(key), encrypted: true }),
            None => Err(malformed("the decrypted OpenSSH private key is invalid")),
        },
    }
}

/// The first whitespace-separated token that names a key type starts the key; anything before it
/// is authorized_keys options, anything after the base64 blob is the comment.
fn public_key_text(text: &str) -> Result<PublicKey, KeyError> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = lines.next().unwrap_or_default();
    if lines.next().is_some() {
        return Err(malformed(
            "more than one line of key data: pass a single key (one authorized_keys line)",
        ));
    }
    let unrecognised = || {
        malformed(
            "not a recognised key: expected an OpenSSH, PEM, PKCS#8 or PuTTY private key, or a \
             public key line such as \"ssh-ed25519 AAAA… comment\"",
        )
    };
    let tokens: Vec<(usize, &str)> = line
        .split_ascii_whitespace()
        .map(|t| (t.as_ptr() as usize - line.as_ptr() as usize, t))
        .collect();
    for pair in tokens.windows(2) {
        let [(_, name), (start, blob)] = pair else {
            continue;
        };
        if name.ends_with("-cert-v01@openssh.com") {
            return Err(KeyError::Unsupported(
                "this is an OpenSSH certificate, not a key; pass the key itself".into(),
            ));
        }
        if name.parse::<ssh_key::Algorithm>().is_err() {
            continue;
        }
        let Ok(bytes) = BASE64.decode(blob) else {
            return Err(malformed(format!(
                "the base64 after {} is corrupt",
                printable(name)
            )));
        };
        let mut key =
            PublicKey::from_bytes(&bytes).map_err(|e| ssh_key_error("the public key", e))?;
        if key.algorithm().as_str() != *name {
            return Err(malformed(format!(
                "the line says {} but the key inside is {}",
                printable(name),
                key.algorithm()
            )));
        }
        key.set_comment(line[start + blob.len()..].trim());
        return Ok(key);
    }
    // A bare base64 blob, as some tools print.
    match tokens.as_slice() {
        [(_, blob)] => match BASE64.decode(blob) {
            Ok(bytes) => {
                PublicKey::from_bytes(&bytes).map_err(|e| ssh_key_error("the public key", e))
            }
            Err(_) => Err(unrecognised()),
        },
        _ => Err(unrecognised()),
    }
}

/// RFC 4716 public key, as PuTTYgen and `ssh-keygen -e` write it.
fn rfc4716_public_key(text: &str) -> Result<PublicKey, KeyError> {
    let mut lines = text.lines().map(str::trim);
    match lines.next() {
        Some("---- BEGIN SSH2 PUBLIC KEY ----") => {}
        Some(l) if l.contains("PRIVATE KEY") => {
            return Err(KeyError::Unsupported(
                "ssh.com private keys are not read; convert with puttygen key -O private-openssh"
                    .into(),
            ))
        }
        _ => return Err(malformed("unrecognised \"---- BEGIN\" block")),
    }
    let mut comment = String::new();
    let mut body = String::new();
    let mut continued = false;
    let mut closed = false;
    for line in lines {
        if line == "---- END SSH2 PUBLIC KEY ----" {
            closed = true;
            break;
        }
        // Header lines ("Tag: value", continued by a trailing backslash) precede the body.
        if continued || (body.is_empty() && line.contains(':')) {
            if let Some(value) = line.strip_prefix("Comment:") {
                comment = value.trim().trim_matches('"').to_string();
            }
            continued = line.ends_with('\\');
            continue;
        }
        body.push_str(line);
    }
    if !closed {
        return Err(malformed(
            "the SSH2 public key block is truncated (no END line)",
        ));
    }
    let bytes = BASE64
        .decode(body)
        .map_err(|_| malformed("the base64 in the SSH2 public key block is corrupt"))?;
    let mut key = PublicKey::from_bytes(&bytes).map_err(|e| ssh_key_error("the public key", e))?;
    key.set_comment(comment);
    Ok(key)
}

/// PEM armor (RFC 7468, plus RFC 1421 headers for legacy encryption) and the OpenSSL legacy
/// `Proc-Type: 4,ENCRYPTED` scheme.
mod pem {
    use super::*;

    pub(super) struct Block<'a> {
        pub label: &'a str,
        pub headers: Vec<(&'a str, &'a str)>,
        pub body: Zeroizing<Vec<u8>>,
    }

    /// The first PEM block other than `EC PARAMETERS` (which `openssl ecparam -genkey` writes
    /// before the key), or `None` when the text holds no `-----BEGIN` line.
    pub(super) fn find(text: &str) -> Result<Option<Block<'_>>, KeyError> {
        let mut lines = text.lines().map(str::trim);
        while let Some(line) = lines.next() {
            let Some(label) = line
                .strip_prefix("-----BEGIN ")
                .and_then(|l| l.strip_suffix("-----"))
            else {
                continue;
            };
            let mut headers = Vec::new();
            let mut base64 = Zeroizing::new(String::new());
            let mut closed = false;
            for line in lines.by_ref() {
                if let Some(end) = line.strip_prefix("-----END ") {
                    if end.strip_suffix("-----") != Some(label) {
                        return Err(malformed(format!(
                            "the {} block ends with a different END line",
                            printable(label)
                        )));
                    }
                    closed = true;
                    break;
                }
                if base64.is_empty() {
                    if let Some((name, value)) = line.split_once(':') {
                        headers.push((name.trim(), value.trim()));
                        continue;
                    }
                }
                base64.push_str(line);
            }
            if !closed {
                return Err(malformed(format!(
                    "the {} block is truncated (no END line)",
                    printable(label)
                )));
            }
            if label == "EC PARAMETERS" {
                continue;
            }
            let body = BASE64.decode(base64.as_bytes()).map_err(|_| {
                malformed(format!(
                    "the base64 in the {} block is corrupt",
                    printable(label)
                ))
            })?;
            return Ok(Some(Block {
                label,
                headers,
                body: Zeroizing::new(body),
            }));
        }
        Ok(None)
    }

    impl Block<'_> {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        }
    }

    /// DER of a PKCS#1 or SEC1 block, decrypted when its headers say so; the flag tells whether
    /// it was encrypted.
    pub(super) fn legacy_decrypt(
        block: &Block<'_>,
        passphrase: Option<&str>,
    ) -> Result<(Zeroizing<Vec<u8>>, bool), KeyError> {
        let encrypted = block
            .header("Proc-Type")
            .is_some_and(|v| v.to_ascii_uppercase().contains("ENCRYPTED"));
        if !encrypted {
            return Ok((block.body.clone(), false));
        }
        let dek = block
            .header("DEK-Info")
            .ok_or_else(|| malformed("the encrypted PEM key has no DEK-Info header"))?;
        let (algorithm, iv) = dek
            .split_once(',')
            .ok_or_else(|| malformed("the DEK-Info header has no IV"))?;
        let cipher = match algorithm.trim().to_ascii_uppercase().as_str() {
            "AES-128-CBC" => Cipher::Aes128Cbc,
            "AES-192-CBC" => Cipher::Aes192Cbc,
            "AES-256-CBC" => Cipher::Aes256Cbc,
            other => {
                return Err(KeyError::Unsupported(format!(
                    "PEM keys encrypted with {} are not read; convert with ssh-keygen -p -f key \
                     (it rewrites the key in OpenSSH format)",
                    printable(other)
                )))
            }
        };
        let iv = decode_hex(iv.trim())
            .filter(|iv| iv.len() == 16)
            .ok_or_else(|| malformed("the DEK-Info IV is not 16 hex-encoded bytes"))?;
        let Some(passphrase) = passphrase else {
            return Err(KeyError::PassphraseRequired);
        };
        if block.body.is_empty() || !block.body.len().is_multiple_of(16) {
            return Err(malformed(
                "the encrypted PEM body is not a whole number of AES blocks",
            ));
        }
        let key_len = cipher.key_and_iv_size().map_or(16, |(k, _)| k);
        let key = evp_bytes_to_key(passphrase.as_bytes(), &iv[..8], key_len);
        let mut plain = block.body.clone();
        cipher
            .decrypt(&key, &iv, &mut plain, None)
            .map_err(|_| malformed("the encrypted PEM body could not be decrypted"))?;
        let len = unpad_pkcs7(&plain).ok_or(KeyError::WrongPassphrase)?;
        plain.truncate(len);
        // With a wrong key the padding still looks valid 1 time in 256; the DER structure does not.
        if !super::der::is_sequence(&plain) {
            return Err(KeyError::WrongPassphrase);
        }
        Ok((plain, true))
    }

    /// OpenSSL's EVP_BytesToKey with MD5 and one iteration, as PEM_read_bio_PrivateKey uses:
    /// D_i = MD5(D_{i-1} || passphrase || salt), concatenated until `len` bytes.
    fn evp_bytes_to_key(passphrase: &[u8], salt: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
        let mut key = Zeroizing::new(Vec::with_capacity(len + 16));
        let mut previous: Option<[u8; 16]> = None;
        while key.len() < len {
            let mut md5 = md5::Context::new();
            if let Some(previous) = &previous {
                md5.consume(previous);
            }
            md5.consume(passphrase);
            md5.consume(salt);
            let digest = md5.finalize().0;
            key.extend_from_slice(&digest);
            previous = Some(digest);
        }
        key.truncate(len);
        key
    }

    /// Plaintext length once PKCS#7 padding is removed, if the padding is well formed.
    fn unpad_pkcs7(data: &[u8]) -> Option<usize> {
        let &pad = data.last()?;
        let n = usize::from(pad);
        if n == 0 || n > 16 || n > data.len() {
            return None;
        }
        let (body, padding) = data.split_at(data.len() - n);
        padding.iter().all(|&b| b == pad).then_some(body.len())
    }

    pub(super) fn decode_hex(s: &str) -> Option<Vec<u8>> {
        if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect()
    }
}

/// DER private keys: PKCS#1 (RSA), SEC1 (EC) and PKCS#8, and PKCS#8 decryption (PBES2).
mod der {
    use super::*;
    use pkcs8::der::{asn1::AnyRef, Reader as _, SliceReader};
    use pkcs8::pkcs5;
    use pkcs8::spki::AlgorithmIdentifierRef;
    use rsa::pkcs1;

    /// A DER SEQUENCE spanning exactly `data`: what every private key structure is, and what
    /// bytes decrypted with a wrong key almost never are.
    pub(super) fn is_sequence(data: &[u8]) -> bool {
        let [0x30, first, rest @ ..] = data else {
            return false;
        };
        if *first < 0x80 {
            return usize::from(*first) == rest.len();
        }
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return false;
        }
        let (len, content) = rest.split_at(n);
        len.iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
            == content.len()
    }

    pub(super) fn rsa_pkcs1(der: &[u8]) -> Result<PrivateKey, KeyError> {
        let key = pkcs1::RsaPrivateKey::try_from(der)
            .map_err(|_| malformed("the PKCS#1 RSA private key is not valid DER"))?;
        // Checked before the arithmetic of key validation, whose cost grows with the modulus.
        let modulus_bytes = key.modulus.as_bytes().len();
        if modulus_bytes > (MAX_RSA_BITS as usize) / 8 + 1 {
            return Err(KeyError::Unsupported(format!(
                "RSA keys larger than {MAX_RSA_BITS} bits are not supported"
            )));
        }
        let key = rsa::RsaPrivateKey::try_from(key)
            .map_err(|_| malformed("the RSA private key's numbers are inconsistent"))?;
        PrivateKey::new(KeypairData::Rsa(rsa_keypair(&key)?), "")
            .map_err(|e| ssh_key_error("the RSA private key", e))
    }

    pub(super) fn pkcs8(der: &[u8]) -> Result<PrivateKey, KeyError> {
        let info = pkcs8::PrivateKeyInfoRef::try_from(der)
            .map_err(|_| malformed("the PKCS#8 private key is not valid DER"))?;
        if info.algorithm.oid.as_bytes() == pkcs1::ALGORITHM_OID.as_bytes() {
            return rsa_pkcs1(info.private_key.as_bytes());
        }
        pkcs8_or_sec1(der, "PKCS#8 private key")
    }

    /// Ed25519 and EC keys, in PKCS#8 or SEC1, through russh's decoder (which also reads SEC1
    /// keys carrying explicit curve parameters).
    pub(super) fn pkcs8_or_sec1(der: &[u8], what: &str) -> Result<PrivateKey, KeyError> {
        russh::keys::pkcs8::decode_pkcs8(der, None).map_err(|e| match e {
            russh::keys::Error::UnknownAlgorithm(oid) => KeyError::Unsupported(format!(
                "the {what} uses algorithm or curve {oid}; {SUPPORTED}"
            )),
            e => malformed(format!(
                "the {what} could not be decoded ({})",
                printable(&e.to_string())
            )),
        })
    }

    /// Decrypts an `ENCRYPTED PRIVATE KEY` (PKCS#8 EncryptedPrivateKeyInfo) to PrivateKeyInfo DER.
    pub(super) fn pkcs8_decrypt(
        der: &[u8],
        passphrase: Option<&str>,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let Ok(info) = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der) else {
            // The pkcs5 crate fails to parse schemes it does not implement (PBES1, 3DES, …).
            return Err(if is_encrypted_key_info(der) {
                unsupported_scheme(&unsupported_scheme_part(der))
            } else {
                malformed("the encrypted PKCS#8 key is not valid DER")
            });
        };
        let scheme = &info.encryption_algorithm;
        check_pbes_cost(scheme)?;
        let Some(passphrase) = passphrase else {
            return Err(KeyError::PassphraseRequired);
        };
        match scheme
            .decrypt(passphrase, info.encrypted_data.as_bytes())
            .map(Zeroizing::new)
        {
            Ok(plain) if is_sequence(&plain) => Ok(plain),
            // With a wrong key the CBC padding still looks valid 1 time in 256.
            Ok(_) => Err(KeyError::WrongPassphrase),
            Err(pkcs5::Error::DecryptFailed) => Err(KeyError::WrongPassphrase),
            Err(pkcs5::Error::UnsupportedAlgorithm { oid }) => {
                Err(unsupported_scheme(&scheme_part(&oid.to_string())))
            }
            Err(e) => Err(malformed(format!(
                "the encrypted PKCS#8 key is invalid ({})",
                printable(&e.to_string())
            ))),
        }
    }

    const PKCS8_REENCRYPT: &str =
        "re-encrypt it with openssl pkcs8 -topk8 -v2 aes-256-cbc, or convert it with ssh-keygen -p";

    fn unsupported_scheme(part: &str) -> KeyError {
        KeyError::Unsupported(format!(
            "the PKCS#8 key is encrypted with {part}, which ferrossh does not read (it reads \
             PBES2 with PBKDF2 or scrypt and AES); {PKCS8_REENCRYPT}"
        ))
    }

    /// Names an algorithm of a PKCS#8 encryption scheme by its role and OpenSSL's name.
    fn scheme_part(oid: &str) -> String {
        let (role, name) = match oid {
            "1.2.840.113549.1.5.13" => ("the scheme", "PBES2"),
            "1.2.840.113549.1.5.1" => ("the PBES1 scheme", "pbeWithMD2AndDES-CBC"),
            "1.2.840.113549.1.5.3" => ("the PBES1 scheme", "pbeWithMD5AndDES-CBC"),
            "1.2.840.113549.1.5.4" => ("the PBES1 scheme", "pbeWithMD2AndRC2-CBC"),
            "1.2.840.113549.1.5.6" => ("the PBES1 scheme", "pbeWithMD5AndRC2-CBC"),
            "1.2.840.113549.1.5.10" => ("the PBES1 scheme", "pbeWithSHA1AndDES-CBC"),
            "1.2.840.113549.1.5.11" => ("the PBES1 scheme", "pbeWithSHA1AndRC2-CBC"),
            "1.2.840.113549.1.12.1.1" => ("the PKCS#12 scheme", "pbeWithSHA1And128BitRC4"),
            "1.2.840.113549.1.12.1.2" => ("the PKCS#12 scheme", "pbeWithSHA1And40BitRC4"),
            "1.2.840.113549.1.12.1.3" => ("the PKCS#12 scheme", "pbeWithSHA1And3-KeyTripleDES-CBC"),
            "1.2.840.113549.1.12.1.4" => ("the PKCS#12 scheme", "pbeWithSHA1And2-KeyTripleDES-CBC"),
            "1.2.840.113549.1.12.1.5" => ("the PKCS#12 scheme", "pbeWithSHA1And128BitRC2-CBC"),
            "1.2.840.113549.1.12.1.6" => ("the PKCS#12 scheme", "pbeWithSHA1And40BitRC2-CBC"),
            "1.2.840.113549.1.5.12" => ("the key derivation", "PBKDF2"),
            "1.3.6.1.4.1.11591.4.11" => ("the key derivation", "scrypt"),
            "1.2.840.113549.2.7" => ("the PBKDF2 PRF", "hmacWithSHA1"),
            "1.2.840.113549.2.8" => ("the PBKDF2 PRF", "hmacWithSHA224"),
            "1.2.840.113549.2.9" => ("the PBKDF2 PRF", "hmacWithSHA256"),
            "1.2.840.113549.2.10" => ("the PBKDF2 PRF", "hmacWithSHA384"),
            "1.2.840.113549.2.11" => ("the PBKDF2 PRF", "hmacWithSHA512"),
            "1.2.840.113549.2.12" => ("the PBKDF2 PRF", "hmacWithSHA512-224"),
            "1.2.840.113549.2.13" => ("the PBKDF2 PRF", "hmacWithSHA512-256"),
            "1.2.643.7.1.1.4.1" | "1.2.643.7.1.1.4.2" => {
                ("the PBKDF2 PRF", "GOST R 34.11-2012 HMAC")
            }
            "2.16.840.1.101.3.4.1.2" => ("the cipher", "aes-128-cbc"),
            "2.16.840.1.101.3.4.1.22" => ("the cipher", "aes-192-cbc"),
            "2.16.840.1.101.3.4.1.42" => ("the cipher", "aes-256-cbc"),
            "2.16.840.1.101.3.4.1.6" => ("the cipher", "aes-128-gcm"),
            "2.16.840.1.101.3.4.1.26" => ("the cipher", "aes-192-gcm"),
            "2.16.840.1.101.3.4.1.46" => ("the cipher", "aes-256-gcm"),
            "1.2.840.113549.3.7" => ("the cipher", "des-ede3-cbc"),
            "1.3.14.3.2.7" => ("the cipher", "des-cbc"),
            "1.2.840.113549.3.2" => ("the cipher", "rc2-cbc"),
            "1.2.392.200011.61.1.1.1.2" => ("the cipher", "camellia-128-cbc"),
            "1.2.392.200011.61.1.1.1.3" => ("the cipher", "camellia-192-cbc"),
            "1.2.392.200011.61.1.1.1.4" => ("the cipher", "camellia-256-cbc"),
            "1.2.410.200046.1.1.2" => ("the cipher", "aria-128-cbc"),
            "1.2.410.200046.1.1.7" => ("the cipher", "aria-192-cbc"),
            "1.2.410.200046.1.1.12" => ("the cipher", "aria-256-cbc"),
            "1.2.410.200004.1.4" => ("the cipher", "seed-cbc"),
            "1.2.156.10197.1.104.2" => ("the cipher", "sm4-cbc"),
            _ => return format!("the algorithm {oid}"),
        };
        format!("{role} {name} ({oid})")
    }

    /// The part of an EncryptedPrivateKeyInfo's scheme that the pkcs5 crate could not take: the
    /// scheme itself when it is not PBES2, else PBES2's key derivation, its PRF or its cipher.
    fn unsupported_scheme_part(der: &[u8]) -> String {
        use pkcs8::der::Decode as _;
        const PBES2: &str = "1.2.840.113549.1.5.13";
        const PBKDF2: &str = "1.2.840.113549.1.5.12";
        const SCRYPT: &str = "1.3.6.1.4.1.11591.4.11";
        const PRFS: [&str; 5] = [
            "1.2.840.113549.2.7",
            "1.2.840.113549.2.8",
            "1.2.840.113549.2.9",
            "1.2.840.113549.2.10",
            "1.2.840.113549.2.11",
        ];
        const CIPHERS: [&str; 5] = [
            "2.16.840.1.101.3.4.1.2",
            "2.16.840.1.101.3.4.1.22",
            "2.16.840.1.101.3.4.1.42",
            "2.16.840.1.101.3.4.1.6",
            "2.16.840.1.101.3.4.1.46",
        ];
        let unknown = || "a scheme whose parameters could not be decoded".to_string();
        let Some(scheme) = outer_algorithm(der) else {
            return unknown();
        };
        let scheme_oid = scheme.oid.to_string();
        if scheme_oid != PBES2 {
            return scheme_part(&scheme_oid);
        }
        let Some([kdf, cipher]) = scheme.parameters.and_then(|p| {
            let mut r = SliceReader::new(p.value()).ok()?;
            let kdf = AlgorithmIdentifierRef::decode(&mut r).ok()?;
            let cipher = AlgorithmIdentifierRef::decode(&mut r).ok()?;
            Some([kdf, cipher])
        }) else {
            return unknown();
        };
        let kdf_oid = kdf.oid.to_string();
        if kdf_oid != PBKDF2 && kdf_oid != SCRYPT {
            return scheme_part(&kdf_oid);
        }
        if kdf_oid == PBKDF2 {
            if let Some(prf) = kdf.parameters.and_then(|p| pbkdf2_prf(p.value())) {
                if !PRFS.contains(&prf.as_str()) {
                    return scheme_part(&prf);
                }
            }
        }
        let cipher_oid = cipher.oid.to_string();
        if !CIPHERS.contains(&cipher_oid.as_str()) {
            return scheme_part(&cipher_oid);
        }
        unknown()
    }

    fn outer_algorithm(der: &[u8]) -> Option<AlgorithmIdentifierRef<'_>> {
        use pkcs8::der::Decode as _;
        let mut reader = SliceReader::new(der).ok()?;
        let outer = AnyRef::decode(&mut reader).ok()?;
        let mut inner = SliceReader::new(outer.value()).ok()?;
        AlgorithmIdentifierRef::decode(&mut inner).ok()
    }

    /// PBKDF2-params (RFC 8018 A.2): salt, iterationCount, keyLength OPTIONAL, prf DEFAULT
    /// hmacWithSHA1. `None` when the PRF is left at its default.
    fn pbkdf2_prf(params: &[u8]) -> Option<String> {
        use pkcs8::der::{Decode as _, Tag, Tagged as _};
        let mut r = SliceReader::new(params).ok()?;
        // the salt, which may itself be an AlgorithmIdentifier (otherSource)
        AnyRef::decode(&mut r).ok()?;
        while !r.is_finished() {
            let item = AnyRef::decode(&mut r).ok()?;
            if item.tag() == Tag::Sequence {
                if let Ok(prf) = item.decode_as::<AlgorithmIdentifierRef<'_>>() {
                    return Some(prf.oid.to_string());
                }
            }
        }
        None
    }

    /// EncryptedPrivateKeyInfo's outer shape: SEQUENCE { AlgorithmIdentifier, OCTET STRING }.
    fn is_encrypted_key_info(der: &[u8]) -> bool {
        use pkcs8::der::asn1::OctetStringRef;
        use pkcs8::der::{Decode, Reader, SliceReader};
        let Ok(mut reader) = SliceReader::new(der) else {
            return false;
        };
        let shape = reader.sequence(|seq| {
            pkcs8::AlgorithmIdentifierRef::decode(seq)?;
            <&OctetStringRef>::decode(seq)?;
            Ok::<(), pkcs8::der::Error>(())
        });
        shape.is_ok() && reader.is_finished()
    }

    /// Refuses KDF parameters that would take minutes or gigabytes, and the ones the pkcs5 crate
    /// cannot handle safely (an scrypt N that is not a power of two above 1).
    fn check_pbes_cost(scheme: &pkcs5::EncryptionScheme) -> Result<(), KeyError> {
        let Some(params) = scheme.pbes2() else {
            return Ok(());
        };
        if let Some(pbkdf2) = params.kdf.pbkdf2() {
            if pbkdf2.iteration_count > MAX_PBKDF2_ITERATIONS {
                return Err(KeyError::Unsupported(format!(
                    "the key asks for {} PBKDF2 iterations (limit {MAX_PBKDF2_ITERATIONS})",
                    pbkdf2.iteration_count
                )));
            }
        }
        if let Some(scrypt) = params.kdf.scrypt() {
            let n = scrypt.cost_parameter;
            if n < 2 || !n.is_power_of_two() {
                return Err(malformed(
                    "the scrypt cost parameter N is not a power of two",
                ));
            }
            let nr = n.saturating_mul(u64::from(scrypt.block_size));
            let nrp = nr.saturating_mul(u64::from(scrypt.parallelization));
            if nr > MAX_SCRYPT_NR || nrp > MAX_SCRYPT_NRP {
                return Err(KeyError::Unsupported(
                    "the key's scrypt parameters exceed the memory and time limits".into(),
                ));
            }
        }
        Ok(())
    }
}

/// PuTTY private key files, versions 2 and 3 (PuTTY manual, appendix C).
mod ppk {
    use super::*;

    pub(super) const HEADER: &str = "PuTTY-User-Key-File-";
    const V2_MAC_KEY_PREFIX: &[u8] = b"putty-private-key-file-mac-key";
    /// PuTTY writes 64 base64 characters a line; the input limit bounds the count too, but an
    /// absurd count should read as malformed rather than truncated.
    const MAX_LINES: usize = 2048;

    struct File<'a> {
        version: u8,
        algorithm: &'a str,
        encryption: &'a str,
        comment: &'a str,
        public: Vec<u8>,
        private: Zeroizing<Vec<u8>>,
        mac: Vec<u8>,
        argon2: Argon2Fields<'a>,
    }

    #[derive(Default)]
    struct Argon2Fields<'a> {
        flavour: Option<&'a str>,
        memory: Option<&'a str>,
        passes: Option<&'a str>,
        parallelism: Option<&'a str>,
        salt: Option<&'a str>,
    }

    pub(super) fn parse(text: &str, passphrase: Option<&str>) -> Result<Parsed, KeyError> {
        let file = read(text)?;
        let mut public = PublicKey::from_bytes(&file.public)
            .map_err(|e| ssh_key_error("the PuTTY public key", e))?;
        if public.algorithm().as_str() != file.algorithm {
            return Err(malformed(
                "the PuTTY key's header and public key disagree on its type",
            ));
        }
        check_supported(public.key_data())?;
        public.set_comment(file.comment);
        let encrypted = match file.encryption {
            "none" => false,
            "aes256-cbc" => true,
            other => {
                return Err(KeyError::Unsupported(format!(
                    "PuTTY key encryption {:?} is not supported",
                    printable(other)
                )))
            }
        };
        let passphrase = match passphrase {
            _ if !encrypted => "",
            Some(p) => p,
            None => return Ok(Parsed::Locked(public)),
        };
        let keys = derive_keys(&file, encrypted, passphrase)?;
        let mut private = file.private.clone();
        if let Some((cipher_key, iv)) = &keys.cipher {
            if private.is_empty() || !private.len().is_multiple_of(16) {
                return Err(malformed(
                    "the PuTTY private blob is not a whole number of AES blocks",
                ));
            }
            Cipher::Aes256Cbc
                .decrypt(cipher_key, iv, &mut private, None)
                .map_err(|_| malformed("the PuTTY private blob could not be decrypted"))?;
        }
        if !mac_matches(&file, &keys.mac, &private) {
            return Err(if encrypted {
                KeyError::WrongPassphrase
            } else {
                malformed("the PuTTY key file is corrupt or was edited (its MAC does not match)")
            });
        }
        let keypair = keypair(public.key_data(), &private)?;
        let key = PrivateKey::new(keypair, file.comment)
            .map_err(|e| ssh_key_error("the PuTTY private key", e))?;
        Ok(Parsed::Private {
            key: Box::new(key),
            encrypted,
        })
    }

    fn read(text: &str) -> Result<File<'_>, KeyError> {
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default().trim_end();
        let (version, algorithm) = header
            .strip_prefix(HEADER)
            .and_then(|h| h.split_once(':'))
            .ok_or_else(|| malformed("the PuTTY key header is invalid"))?;
        let version = match version {
            "2" => 2,
            "3" => 3,
            "1" => {
                return Err(KeyError::Unsupported(
                    "PuTTY key format 1 (SSH-1 era) is not read; re-save the key in a current \
                     PuTTYgen"
                        .into(),
                ))
            }
            _ => {
                return Err(KeyError::Unsupported(
                    "unknown PuTTY key format version".into(),
                ))
            }
        };
        let mut encryption = None;
        let mut comment = "";
        let mut public = None;
        let mut private = None;
        let mut mac = None;
        let mut argon2 = Argon2Fields::default();
        while let Some(line) = lines.next() {
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| malformed("the PuTTY key has a line that is not \"Name: value\""))?;
            let value = value.strip_prefix(' ').unwrap_or(value);
            match name {
                "Encryption" => encryption = Some(value),
                "Comment" => comment = value,
                "Public-Lines" => public = Some(read_base64(&mut lines, value)?),
                "Private-Lines" => private = Some(Zeroizing::new(read_base64(&mut lines, value)?)),
                "Private-MAC" => mac = Some(value),
                "Key-Derivation" => argon2.flavour = Some(value),
                "Argon2-Memory" => argon2.memory = Some(value),
                "Argon2-Passes" => argon2.passes = Some(value),
                "Argon2-Parallelism" => argon2.parallelism = Some(value),
                "Argon2-Salt" => argon2.salt = Some(value),
                _ => return Err(malformed("the PuTTY key has an unknown field")),
            }
        }
        let missing = |field: &str| malformed(format!("the PuTTY key has no {field} field"));
        let mac = pem::decode_hex(mac.ok_or_else(|| missing("Private-MAC"))?)
            .ok_or_else(|| malformed("the PuTTY key's Private-MAC is not hex"))?;
        Ok(File {
            version,
            algorithm: algorithm.trim(),
            encryption: encryption.ok_or_else(|| missing("Encryption"))?,
            comment,
            public: public.ok_or_else(|| missing("Public-Lines"))?,
            private: private.ok_or_else(|| missing("Private-Lines"))?,
            mac,
            argon2,
        })
    }

    fn read_base64<'a>(
        lines: &mut impl Iterator<Item = &'a str>,
        count: &str,
    ) -> Result<Vec<u8>, KeyError> {
        let count: usize = count
            .trim()
            .parse()
            .ok()
            .filter(|&n| n <= MAX_LINES)
            .ok_or_else(|| malformed("the PuTTY key has an invalid line count"))?;
        let mut base64 = Zeroizing::new(String::new());
        for _ in 0..count {
            let line = lines
                .next()
                .ok_or_else(|| malformed("the PuTTY key is truncated"))?;
            base64.push_str(line.trim());
        }
        BASE64
            .decode(base64.as_bytes())
            .map_err(|_| malformed("the base64 in the PuTTY key is corrupt"))
    }

    struct Keys {
        /// AES-256 key and IV, for encrypted files.
        cipher: Option<(Zeroizing<Vec<u8>>, [u8; 16])>,
        mac: Zeroizing<Vec<u8>>,
    }

    fn derive_keys(file: &File<'_>, encrypted: bool, passphrase: &str) -> Result<Keys, KeyError> {
        let passphrase = passphrase.as_bytes();
        if file.version == 2 {
            // v2: key = SHA-1(0,0,0,0 || pass) || SHA-1(0,0,0,1 || pass), truncated to 32 bytes,
            // IV zero; MAC key = SHA-1("putty-private-key-file-mac-key" || pass).
            let mut mac_hash = Sha1::new();
            mac_hash.update(V2_MAC_KEY_PREFIX);
            mac_hash.update(passphrase);
            let mac = Zeroizing::new(mac_hash.finalize().to_vec());
            if !encrypted {
                return Ok(Keys { cipher: None, mac });
            }
            let mut key = Zeroizing::new(Vec::with_capacity(40));
            for counter in [0u32, 1] {
                let mut hash = Sha1::new();
                hash.update(counter.to_be_bytes());
                hash.update(passphrase);
                key.extend_from_slice(&hash.finalize());
            }
            key.truncate(32);
            return Ok(Keys {
                cipher: Some((key, [0; 16])),
                mac,
            });
        }
        // v3: no passphrase means an empty MAC key; otherwise Argon2 yields key, IV and MAC key.
        if !encrypted {
            return Ok(Keys {
                cipher: None,
                mac: Zeroizing::new(Vec::new()),
            });
        }
        let mut out = Zeroizing::new([0u8; 80]);
        argon2(&file.argon2)?
            .hash_password_into(passphrase, &argon2_salt(&file.argon2)?, out.as_mut())
            .map_err(|e| {
                malformed(format!(
                    "the PuTTY key's Argon2 parameters are invalid ({e})"
                ))
            })?;
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&out[32..48]);
        Ok(Keys {
            cipher: Some((Zeroizing::new(out[..32].to_vec()), iv)),
            mac: Zeroizing::new(out[48..].to_vec()),
        })
    }

    fn argon2(fields: &Argon2Fields<'_>) -> Result<argon2::Argon2<'static>, KeyError> {
        let flavour = match fields.flavour {
            Some("Argon2id") => argon2::Algorithm::Argon2id,
            Some("Argon2i") => argon2::Algorithm::Argon2i,
            Some("Argon2d") => argon2::Algorithm::Argon2d,
            Some(_) => {
                return Err(KeyError::Unsupported(
                    "the PuTTY key uses an unknown key derivation function".into(),
                ))
            }
            None => {
                return Err(malformed(
                    "the encrypted PuTTY key has no Key-Derivation field",
                ))
            }
        };
        let number = |value: Option<&str>, field: &str| {
            value
                .and_then(|v| v.trim().parse::<u32>().ok())
                .ok_or_else(|| malformed(format!("the PuTTY key's {field} is missing or invalid")))
        };
        let memory = number(fields.memory, "Argon2-Memory")?;
        let passes = number(fields.passes, "Argon2-Passes")?;
        let lanes = number(fields.parallelism, "Argon2-Parallelism")?;
        if memory > MAX_ARGON2_MEMORY_KIB
            || u64::from(memory) * u64::from(passes) > MAX_ARGON2_WORK
            || lanes > MAX_ARGON2_LANES
        {
            return Err(KeyError::Unsupported(format!(
                "the PuTTY key's Argon2 cost ({memory} KiB, {passes} passes, {lanes} lanes) \
                 exceeds the limits; re-save it with PuTTYgen's default parameters"
            )));
        }
        let params = argon2::Params::new(memory, passes, lanes, Some(80)).map_err(|e| {
            malformed(format!(
                "the PuTTY key's Argon2 parameters are invalid ({e})"
            ))
        })?;
        Ok(argon2::Argon2::new(flavour, argon2::Version::V0x13, params))
    }

    fn argon2_salt(fields: &Argon2Fields<'_>) -> Result<Vec<u8>, KeyError> {
        fields
            .salt
            .and_then(|s| pem::decode_hex(s.trim()))
            .ok_or_else(|| malformed("the PuTTY key's Argon2-Salt is missing or not hex"))
    }

    /// The MAC covers algorithm, encryption, comment, public blob and decrypted private blob,
    /// each as an SSH string.
    fn mac_matches(file: &File<'_>, key: &[u8], private: &[u8]) -> bool {
        let mut data = Zeroizing::new(Vec::new());
        for field in [
            file.algorithm.as_bytes(),
            file.encryption.as_bytes(),
            file.comment.as_bytes(),
            &file.public,
            private,
        ] {
            let Ok(len) = u32::try_from(field.len()) else {
                return false;
            };
            data.extend_from_slice(&len.to_be_bytes());
            data.extend_from_slice(field);
        }
        if file.version == 2 {
            let Ok(mut mac) = <Hmac<Sha1> as Mac>::new_from_slice(key) else {
                return false;
            };
            mac.update(&data);
            mac.verify_slice(&file.mac).is_ok()
        } else {
            let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
                return false;
            };
            mac.update(&data);
            mac.verify_slice(&file.mac).is_ok()
        }
    }

    /// The key pair from the public key and the private blob (PuTTY's own encoding of the
    /// private half); `check_keypair` then confirms the halves agree.
    pub(super) fn keypair(public: &KeyData, private: &[u8]) -> Result<KeypairData, KeyError> {
        let reader = &mut &*private;
        let corrupt = |what: &str| malformed(format!("the PuTTY {what} private key is invalid"));
        match public {
            KeyData::Rsa(public) => {
                let mut next = || Mpint::decode(reader).map_err(|_| corrupt("RSA"));
                let (d, p, q, iqmp) = (next()?, next()?, next()?, next()?);
                let private = RsaPrivateKey::new(d, iqmp, p, q).map_err(|_| corrupt("RSA"))?;
                let keypair =
                    RsaKeypair::new(public.clone(), private).map_err(|_| corrupt("RSA"))?;
                Ok(KeypairData::Rsa(keypair))
            }
            KeyData::Ed25519(public) => {
                // PuTTY stores the seed as a little-endian integer; versions before 0.75 dropped
                // its trailing zero bytes, so pad back to 32.
                let bytes =
                    Zeroizing::new(Vec::<u8>::decode(reader).map_err(|_| corrupt("Ed25519"))?);
                let (seed_bytes, excess) = bytes.split_at(bytes.len().min(32));
                if excess.iter().any(|&b| b != 0) {
                    return Err(corrupt("Ed25519"));
                }
                let mut seed = Zeroizing::new([0u8; 32]);
                seed[..seed_bytes.len()].copy_from_slice(seed_bytes);
                let keypair = Ed25519Keypair::from_seed(&seed);
                Ok(KeypairData::Ed25519(Ed25519Keypair {
                    public: *public,
                    ..keypair
                }))
            }
            KeyData::Ecdsa(public) => {
                let d = Mpint::decode(reader).map_err(|_| corrupt("ECDSA"))?;
                let scalar = d.as_positive_bytes().ok_or_else(|| corrupt("ECDSA"))?;
                let keypair =
                    ecdsa_keypair(public.curve(), scalar).ok_or_else(|| corrupt("ECDSA"))?;
                // Keep the stored public point so that a mismatch is caught by check_keypair.
                Ok(KeypairData::Ecdsa(match (keypair, public) {
                    (EcdsaKeypair::NistP256 { private, .. }, EcdsaPublicKey::NistP256(public)) => {
                        EcdsaKeypair::NistP256 {
                            public: *public,
                            private,
                        }
                    }
                    (EcdsaKeypair::NistP384 { private, .. }, EcdsaPublicKey::NistP384(public)) => {
                        EcdsaKeypair::NistP384 {
                            public: *public,
                            private,
                        }
                    }
                    (EcdsaKeypair::NistP521 { private, .. }, EcdsaPublicKey::NistP521(public)) => {
                        EcdsaKeypair::NistP521 {
                            public: *public,
                            private,
                        }
                    }
                    _ => return Err(corrupt("ECDSA")),
                }))
            }
            _ => Err(KeyError::Unsupported(SUPPORTED.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Keys come from the real tools (ssh-keygen, puttygen, openssl) in a temporary directory, so
    //! each format is checked against what users actually have on disk; a tool that is missing
    //! skips its cases with a note. The PPK fixtures below are throwaway keys so that the PuTTY
    //! code is exercised everywhere.
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::{Duration, Instant};

    const PASS: &str = "correct horse battery";

    const FIXTURE_PUBLIC: &str = "ssh-ed25519 \
        AAAAC3NzaC1lZDI1NTE5AAAAIBghlUiA4YHjcfGuM8s/nbesI9Mi/nV+V7q42VAeOF8L fixture key";
    const FIXTURE_FINGERPRINT: &str = "SHA256:/6QZft4XYRLOXd8Z2V62+q6vV/dcSLi0zacXItZP+Xg";
    const FIXTURE_PASS: &str = "fixture pass";
    const FIXTURE_PPK_V2: &str = "PuTTY-User-Key-File-2: ssh-ed25519
Encryption: aes256-cbc
Comment: fixture key
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIBghlUiA4YHjcfGuM8s/nbesI9Mi/nV+V7q42VAe
OF8L
Private-Lines: 1
nzVUXgDQLKWFMCCdGbBMWALg9nAwo4VKyNoM/116zK2GHCMvrq0ipRUF9Db3x7UF
Private-MAC: add4b20b8f248abf99748b9bd204fddfec97fa03
";
    const FIXTURE_PPK_V3: &str = "PuTTY-User-Key-File-3: ssh-ed25519
Encryption: aes256-cbc
Comment: fixture key
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIBghlUiA4YHjcfGuM8s/nbesI9Mi/nV+V7q42VAe
OF8L
Key-Derivation: Argon2id
Argon2-Memory: 64
Argon2-Passes: 2
Argon2-Parallelism: 1
Argon2-Salt: 03281df4591c84645f501a31a5850ff8
Private-Lines: 1
wUYHru1q2v0uOVKi03/+yUk2s+g/tqLJlqnCL+g9Zbh5QwBpEyuoFH4l6RJNDA0v
Private-MAC: 3bae2b8ddf40c6073c5195431d16cc44d90520daed52bef18c38eb721b6df012
";

    // ---- helpers ------------------------------------------------------------------------------

    fn have(tool: &str) -> bool {
        let found = Command::new(tool).arg("--version").output().is_ok();
        if !found {
            eprintln!("{tool} not found: skipping its cases");
        }
        found
    }

    fn run(cmd: &mut Command) -> String {
        let out = cmd.output().expect("spawn");
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }

    fn ssh_keygen_fingerprint(public: &Path) -> String {
        let out = run(Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(public));
        out.split_whitespace()
            .nth(1)
            .expect("fingerprint field")
            .to_string()
    }

    /// `type base64` of a public key line, without options or comment.
    fn key_fields(line: &str) -> String {
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn read(path: &Path) -> Vec<u8> {
        std::fs::read(path).expect("read")
    }

    #[derive(Clone, Copy, Debug)]
    enum Kind {
        Ed25519,
        Ecdsa(u32),
        Rsa,
    }

    const KINDS: [Kind; 5] = [
        Kind::Ed25519,
        Kind::Ecdsa(256),
        Kind::Ecdsa(384),
        Kind::Ecdsa(521),
        Kind::Rsa,
    ];

    impl Kind {
        fn keygen_args(self) -> Vec<String> {
            match self {
                Kind::Ed25519 => vec!["-t".into(), "ed25519".into()],
                Kind::Ecdsa(bits) => {
                    vec!["-t".into(), "ecdsa".into(), "-b".into(), bits.to_string()]
                }
                Kind::Rsa => vec!["-t".into(), "rsa".into(), "-b".into(), "2048".into()],
            }
        }
        fn expected(self) -> (&'static str, u32) {
            match self {
                Kind::Ed25519 => ("ssh-ed25519", 256),
                Kind::Ecdsa(256) => ("ecdsa-sha2-nistp256", 256),
                Kind::Ecdsa(384) => ("ecdsa-sha2-nistp384", 384),
                Kind::Ecdsa(_) => ("ecdsa-sha2-nistp521", 521),
                Kind::Rsa => ("ssh-rsa", 2048),
            }
        }
    }

    /// `ssh-keygen -t … -m format [-N PASS]` into `dir`; returns the private key path.
    fn ssh_keygen(dir: &Path, kind: Kind, format: &str, encrypted: bool) -> PathBuf {
        let path = dir.join(format!("{kind:?}-{format}-{encrypted}").replace(['(', ')'], ""));
        let mut cmd = Command::new("ssh-keygen");
        cmd.arg("-q")
            .args(kind.keygen_args())
            .args(["-C", "test comment"]);
        if format != "OpenSSH" {
            cmd.args(["-m", format]);
        }
        cmd.args(["-N", if encrypted { PASS } else { "" }])
            .arg("-f")
            .arg(&path);
        run(&mut cmd);
        path
    }

    fn is_rejection(r: &Result<impl Sized, KeyError>) -> bool {
        matches!(r, Err(KeyError::Malformed(_) | KeyError::Unsupported(_)))
    }

    /// Everything a well-formed private key file must satisfy; `public` is the matching `.pub`.
    fn check_private_key(
        data: &[u8],
        encrypted: bool,
        public: &Path,
        kind: Kind,
        openssh_like: bool,
    ) {
        let expected_fp = ssh_keygen_fingerprint(public);
        let public_line = String::from_utf8(read(public)).expect("utf8");
        let pass = encrypted.then_some(PASS);

        let key = load_private_key(data, pass).expect("loads");
        assert_eq!(fingerprint(key.public_key()), expected_fp);

        let info = parse_key(data, pass).expect("parses");
        let (key_type, bits) = kind.expected();
        assert_eq!(info.key_type, key_type);
        assert_eq!(info.bits, bits);
        assert_eq!(info.fingerprint, expected_fp);
        assert_eq!(info.encrypted, encrypted);
        assert_eq!(key_fields(&info.public_key), key_fields(&public_line));
        if openssh_like {
            assert_eq!(info.comment, "test comment");
            assert_eq!(info.public_key, public_line.trim());
        }

        if encrypted {
            assert_eq!(
                load_private_key(data, Some("wrong passphrase")).err(),
                Some(KeyError::WrongPassphrase)
            );
            assert_eq!(
                parse_key(data, Some("wrong passphrase")).err(),
                Some(KeyError::WrongPassphrase)
            );
            assert_eq!(
                load_private_key(data, None).err(),
                Some(KeyError::PassphraseRequired)
            );
            match parse_key(data, None) {
                // OpenSSH and PPK files keep the public half in the clear.
                Ok(info) => {
                    assert!(openssh_like, "only OpenSSH/PPK expose the public key");
                    assert!(info.encrypted);
                    assert_eq!(info.fingerprint, expected_fp);
                }
                Err(e) => {
                    assert!(!openssh_like, "OpenSSH/PPK should describe the locked key");
                    assert_eq!(e, KeyError::PassphraseRequired);
                }
            }
        } else {
            // A passphrase given for a plain key is not an error.
            assert!(load_private_key(data, Some("unused")).is_ok());
        }

        // Cut in half: the END line (or the PPK MAC) is gone.
        let half = &data[..data.len() / 2];
        assert!(
            is_rejection(&load_private_key(half, pass)),
            "truncated key accepted"
        );
        // A character that is not base64 inside the body.
        let mut garbled = data.to_vec();
        let middle = garbled.len() / 2;
        let at = (middle..garbled.len())
            .find(|&i| garbled[i].is_ascii_alphanumeric())
            .expect("base64 in the body");
        garbled[at] = b'*';
        assert!(
            is_rejection(&load_private_key(&garbled, pass)),
            "garbled key accepted"
        );
    }

    // ---- formats written by ssh-keygen ---------------------------------------------------------

    /// The private scalar's length in an unencrypted OpenSSH P-256 key file.
    fn p256_scalar_len(file: &[u8]) -> usize {
        let text = String::from_utf8_lossy(file);
        let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let body = BASE64.decode(b64.trim()).expect("base64");
        let (_, _, section) = openssh_container(&body).expect("container");
        let mut r = &section[8..];
        for _ in 0..3 {
            let _ = Vec::<u8>::decode(&mut r).expect("field");
        }
        Vec::<u8>::decode(&mut r).expect("scalar").len()
    }

    #[test]
    fn ssh_keygen_p256_keys_with_a_short_scalar_load() {
        if !have("ssh-keygen") {
            return;
        }
        // one P-256 key in 256 has a private scalar with a leading zero byte, which OpenSSH
        // writes as a 31-byte mpint
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        let pubpath = dir.path().join("k.pub");
        let mut found = false;
        for _ in 0..4000 {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(&pubpath);
            run(Command::new("ssh-keygen").args(["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-C", "short", "-f"]).arg(&path));
            if p256_scalar_len(&read(&path)) < 32 {
                found = true;
                break;
            }
        }
        assert!(found, "no key with a short scalar in 4000 tries");
        let expected_fp = ssh_keygen_fingerprint(&pubpath);
        let key = load_private_key(&read(&path), None).expect("plain key loads");
        assert_eq!(fingerprint(key.public_key()), expected_fp);
        assert_eq!(key.comment().as_str_lossy(), "short");
        // the same key encrypted by ssh-keygen (aes256-ctr, bcrypt)
        run(Command::new("ssh-keygen").args(["-q", "-p", "-N", PASS, "-a", "4", "-f"]).arg(&path));
        let data = read(&path);
        let key = load_private_key(&data, Some(PASS)).expect("encrypted key loads");
        assert_eq!(fingerprint(key.public_key()), expected_fp);
        assert!(matches!(load_private_key(&data, Some("wrong passphrase")), Err(KeyError::WrongPassphrase)));
        let info = parse_key(&data, Some(PASS)).expect("parses");
        assert_eq!(info.key_type, "ecdsa-sha2-nistp256");
    }

    #[test]
    fn ssh_keygen_formats() {
        if !have("ssh-keygen") {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut checked = 0;
        for kind in KINDS {
            for format in ["OpenSSH", "PEM", "PKCS8"] {
                // ssh-keygen writes ed25519 keys in OpenSSH format whatever -m says.
                if matches!(kind, Kind::Ed25519) && format != "OpenSSH" {
                    continue;
                }
                for encrypted in [false, true] {
                    let path = ssh_keygen(dir.path(), kind, format, encrypted);
                    let data = read(&path);
                    let text = String::from_utf8_lossy(&data);
                    let expected_label = match (format, kind) {
                        ("OpenSSH", _) => "OPENSSH PRIVATE KEY",
                        ("PEM", Kind::Rsa) => "RSA PRIVATE KEY",
                        ("PEM", _) => "EC PRIVATE KEY",
                        (_, _) if encrypted => "ENCRYPTED PRIVATE KEY",
                        _ => "BEGIN PRIVATE KEY",
                    };
                    assert!(
                        text.contains(expected_label),
                        "{kind:?} {format}: {text:.40}"
                    );
                    let public = PathBuf::from(format!("{}.pub", path.display()));
                    check_private_key(&data, encrypted, &public, kind, format == "OpenSSH");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 26);
    }

    #[test]
    fn public_key_files_and_lines() {
        if !have("ssh-keygen") {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        for kind in KINDS {
            let path = ssh_keygen(dir.path(), kind, "OpenSSH", false);
            let public = PathBuf::from(format!("{}.pub", path.display()));
            let line = String::from_utf8(read(&public)).expect("utf8");
            let expected_fp = ssh_keygen_fingerprint(&public);

            let info = parse_key(line.as_bytes(), None).expect(".pub parses");
            assert_eq!(info.fingerprint, expected_fp);
            assert_eq!(info.comment, "test comment");
            assert_eq!(info.public_key, line.trim());
            assert_eq!((info.key_type.as_str(), info.bits), kind.expected());
            assert!(!info.encrypted);

            // authorized_keys options in front, comment with spaces, CRLF.
            let with_options = format!("from=\"10.0.0.1,host name\",no-pty {}\r\n", line.trim());
            let info = parse_key(with_options.as_bytes(), None).expect("options line parses");
            assert_eq!(info.fingerprint, expected_fp);
            assert_eq!(info.comment, "test comment");

            // RFC 4716, as `ssh-keygen -e` writes it.
            let rfc4716 = run(Command::new("ssh-keygen").args(["-e", "-f"]).arg(&public));
            let info = parse_key(rfc4716.as_bytes(), None).expect("RFC 4716 parses");
            assert_eq!(info.fingerprint, expected_fp);

            // A public key cannot authenticate.
            assert!(matches!(
                load_private_key(line.as_bytes(), None),
                Err(KeyError::Unsupported(_))
            ));
        }
    }

    #[test]
    fn public_key_rejections() {
        let (_, blob) = FIXTURE_PUBLIC.split_once(' ').expect("line");
        let blob = blob.split_whitespace().next().expect("blob");
        // Name and blob disagree.
        let lie = format!("ssh-rsa {blob} c");
        assert!(matches!(
            parse_key(lie.as_bytes(), None),
            Err(KeyError::Malformed(_))
        ));
        // Two keys where one is expected.
        let two = format!("{FIXTURE_PUBLIC}\n{FIXTURE_PUBLIC}\n");
        assert!(matches!(
            parse_key(two.as_bytes(), None),
            Err(KeyError::Malformed(_))
        ));
        // Certificates and DSA keys are named as such.
        let cert = format!("ssh-ed25519-cert-v01@openssh.com {blob}");
        assert!(matches!(
            parse_key(cert.as_bytes(), None),
            Err(KeyError::Unsupported(_))
        ));
        let dsa = "ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2NWPq/xfW6MPbLm1Vs14E7gB00b/JmYLdrmVClpJ+f6AR7ECLCT7up1/63xhv4O1fnxqimFQ8E+4P208UewwI1VBNaFpEy9nXzrith1yrv8iIDGZ3RSAHHAAAAFQCXYFCPFSMLzLKSuYKi64QL8Fgc9QAAAIEA9+GghdabPd7LvKtcNrhXuXmUr7v6OuqC+VdMCz0HgmdRWVeOutRZT+ZxBxCBgLRJFnEj6EwoFhO3zwkyjMim4TwWeotUfI0o4KOuHiuzpnWRbqN/C/ohNWLx+2J6ASQ7zKTxvqhRkImog9/hWuWfBpKLZl6Ae1UlZAFMO/7PSSoAAACBAPkIg2BVhd3FT1t3Aiu3tddBoEVjuS2cD0/c48Wk2PNgR+vWSp1YPGcz9h0d/PeNSlIaxz0yD5djpmPdiXtvDVfPEeWwo+vyWwG5XYVD3Hwt1hy6nb7y/zAjCMSYgHGa7MK3CYIv7UZDvpwrSCR9Hb34ys2mDzaewnPyOIUA2gzu c";
        assert!(matches!(
            parse_key(dsa.as_bytes(), None),
            Err(KeyError::Unsupported(_))
        ));
        for junk in [
            "",
            "   \n",
            "hello world",
            "ssh-ed25519 !!!!",
            "ssh-ed25519",
            "# only a comment\n",
        ] {
            assert!(
                is_rejection(&parse_key(junk.as_bytes(), None)),
                "{junk:?} accepted"
            );
        }
        assert!(is_rejection(&parse_key(&[0xff, 0xfe, 0x00, 0x30], None)));
        assert!(is_rejection(&parse_key(
            &vec![b'A'; MAX_INPUT_LEN + 1],
            None
        )));
    }

    // ---- PuTTY ---------------------------------------------------------------------------------

    #[test]
    fn ppk_fixtures() {
        let expected_line = FIXTURE_PUBLIC;
        for ppk in [FIXTURE_PPK_V2, FIXTURE_PPK_V3] {
            let data = ppk.as_bytes();
            let key = load_private_key(data, Some(FIXTURE_PASS)).expect("decrypts");
            assert_eq!(fingerprint(key.public_key()), FIXTURE_FINGERPRINT);
            assert_eq!(key.comment().as_str_lossy(), "fixture key");

            let locked = parse_key(data, None).expect("public half readable");
            assert_eq!(locked.fingerprint, FIXTURE_FINGERPRINT);
            assert_eq!(locked.public_key, expected_line);
            assert_eq!(locked.comment, "fixture key");
            assert!(locked.encrypted);

            assert_eq!(
                load_private_key(data, None).err(),
                Some(KeyError::PassphraseRequired)
            );
            assert_eq!(
                load_private_key(data, Some("nope")).err(),
                Some(KeyError::WrongPassphrase)
            );
            // An edited comment breaks the MAC; with encryption that reads as a wrong passphrase.
            let edited = ppk.replace("Comment: fixture key", "Comment: other");
            assert_eq!(
                load_private_key(edited.as_bytes(), Some(FIXTURE_PASS)).err(),
                Some(KeyError::WrongPassphrase)
            );
            // CRLF line endings, as files saved on Windows have.
            let crlf = ppk.replace('\n', "\r\n");
            assert!(load_private_key(crlf.as_bytes(), Some(FIXTURE_PASS)).is_ok());
            for cut in [10, ppk.len() / 2, ppk.len() - 20] {
                let r = load_private_key(&data[..cut], Some(FIXTURE_PASS));
                assert!(
                    is_rejection(&r) || r == Err(KeyError::WrongPassphrase),
                    "cut at {cut}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn ppk_argon2_cost_is_bounded() {
        for (field, value) in [
            ("Argon2-Memory: 64", "Argon2-Memory: 4000000000"),
            ("Argon2-Passes: 2", "Argon2-Passes: 4000000000"),
            ("Argon2-Parallelism: 1", "Argon2-Parallelism: 1000"),
        ] {
            let hostile = FIXTURE_PPK_V3.replace(field, value);
            let started = Instant::now();
            let r = load_private_key(hostile.as_bytes(), Some(FIXTURE_PASS));
            assert!(matches!(r, Err(KeyError::Unsupported(_))), "{value}: {r:?}");
            assert!(started.elapsed() < Duration::from_secs(1));
        }
        let zero = FIXTURE_PPK_V3.replace("Argon2-Passes: 2", "Argon2-Passes: 0");
        assert!(matches!(
            load_private_key(zero.as_bytes(), Some(FIXTURE_PASS)),
            Err(KeyError::Malformed(_))
        ));
        let v1 = FIXTURE_PPK_V2.replace("File-2", "File-1");
        assert!(matches!(
            load_private_key(v1.as_bytes(), None),
            Err(KeyError::Unsupported(_))
        ));
    }

    #[test]
    fn ppk_short_ed25519_seed_is_little_endian() {
        // Older PuTTY wrote the seed as a little-endian integer without its trailing zero bytes.
        let mut seed = [7u8; 32];
        seed[31] = 0;
        seed[30] = 0;
        let expected = Ed25519Keypair::from_seed(&seed);
        let mut blob = Vec::new();
        seed[..30].to_vec().encode(&mut blob).expect("encode");
        let public = KeyData::Ed25519(expected.public);
        let KeypairData::Ed25519(decoded) = ppk::keypair(&public, &blob).expect("decodes") else {
            panic!("not ed25519");
        };
        assert_eq!(decoded.private.to_bytes(), seed);
        // The same bytes read big-endian would give another key, which the public check catches.
        let mut wrong = Vec::new();
        [0u8, 0]
            .iter()
            .chain(&seed[..30])
            .copied()
            .collect::<Vec<_>>()
            .encode(&mut wrong)
            .expect("encode");
        let decoded = ppk::keypair(&public, &wrong).expect("decodes");
        assert!(matches!(
            check_keypair(&decoded),
            Err(KeyError::Malformed(_))
        ));
    }

    #[test]
    fn puttygen_formats() {
        if !have("ssh-keygen") || !have("puttygen") {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let pass_file = dir.path().join("pass");
        std::fs::write(&pass_file, PASS).expect("write");
        let mut checked = 0;
        for kind in KINDS {
            let source = ssh_keygen(dir.path(), kind, "OpenSSH", false);
            let public = PathBuf::from(format!("{}.pub", source.display()));
            let reference = load_private_key(&read(&source), None).expect("OpenSSH loads");
            for (params, encrypted) in [
                ("version=2", false),
                ("version=2", true),
                ("version=3", false),
                ("version=3,kdf=argon2id,memory=1024,passes=2", true),
                ("version=3,kdf=argon2i,memory=512,passes=1", true),
                (
                    "version=3,kdf=argon2d,memory=512,passes=1,parallelism=2",
                    true,
                ),
            ] {
                let out = dir.path().join(
                    format!("{kind:?}-{params}-{encrypted}.ppk").replace(['(', ')', ',', '='], "_"),
                );
                let mut cmd = Command::new("puttygen");
                cmd.arg(&source)
                    .args(["-O", "private", "-o"])
                    .arg(&out)
                    .args(["--ppk-param", params]);
                if encrypted {
                    cmd.arg("--new-passphrase").arg(&pass_file);
                }
                run(&mut cmd);
                let data = read(&out);
                check_private_key(&data, encrypted, &public, kind, true);
                // The private half must be the very key ssh-keygen wrote, not just its public part.
                let key = load_private_key(&data, encrypted.then_some(PASS)).expect("loads");
                assert_eq!(key.key_data(), reference.key_data(), "{kind:?} {params}");
                if !encrypted {
                    let text = String::from_utf8(data).expect("utf8");
                    let edited = text.replace("Comment: test comment", "Comment: test comment!");
                    assert!(matches!(
                        load_private_key(edited.as_bytes(), None),
                        Err(KeyError::Malformed(_))
                    ));
                }
                checked += 1;
            }
            // RFC 4716 public key, as PuTTYgen exports it.
            let exported = run(Command::new("puttygen").arg(&source).args(["-O", "public"]));
            let info = parse_key(exported.as_bytes(), None).expect("RFC 4716 parses");
            assert_eq!(info.fingerprint, ssh_keygen_fingerprint(&public));
            assert_eq!(info.comment, "test comment");
        }
        assert_eq!(checked, 30);
    }

    // ---- formats written by OpenSSL ------------------------------------------------------------

    fn openssl(args: &[&str]) {
        run(Command::new("openssl").args(args));
    }

    #[test]
    fn openssl_formats() {
        if !have("ssh-keygen") {
            return;
        }
        // The flags below (-traditional, -scrypt, ed25519) are OpenSSL 3's; LibreSSL differs.
        let version = Command::new("openssl").arg("version").output();
        if !version.is_ok_and(|v| String::from_utf8_lossy(&v.stdout).starts_with("OpenSSL 3")) {
            eprintln!("OpenSSL 3 not found: skipping its cases");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let pass_arg = format!("pass:{PASS}");

        // Ed25519 in PKCS#8: ssh-keygen cannot write it, so derive the reference from the raw
        // public key OpenSSL prints.
        openssl(&["genpkey", "-algorithm", "ed25519", "-out", &p("ed.pem")]);
        openssl(&[
            "pkey",
            "-in",
            &p("ed.pem"),
            "-pubout",
            "-outform",
            "DER",
            "-out",
            &p("ed.pub.der"),
        ]);
        let spki = read(Path::new(&p("ed.pub.der")));
        let mut blob = Vec::new();
        "ssh-ed25519".encode(&mut blob).expect("encode");
        spki[spki.len() - 32..]
            .to_vec()
            .encode(&mut blob)
            .expect("encode");
        std::fs::write(
            p("ed.pub"),
            format!("ssh-ed25519 {}\n", BASE64.encode(&blob)),
        )
        .expect("write");
        openssl(&[
            "pkcs8",
            "-topk8",
            "-in",
            &p("ed.pem"),
            "-passout",
            &pass_arg,
            "-out",
            &p("ed.enc.pem"),
        ]);
        openssl(&[
            "pkcs8",
            "-topk8",
            "-scrypt",
            "-in",
            &p("ed.pem"),
            "-passout",
            &pass_arg,
            "-out",
            &p("ed.scrypt.pem"),
        ]);
        let public = PathBuf::from(p("ed.pub"));
        check_private_key(
            &read(Path::new(&p("ed.pem"))),
            false,
            &public,
            Kind::Ed25519,
            false,
        );
        check_private_key(
            &read(Path::new(&p("ed.enc.pem"))),
            true,
            &public,
            Kind::Ed25519,
            false,
        );
        check_private_key(
            &read(Path::new(&p("ed.scrypt.pem"))),
            true,
            &public,
            Kind::Ed25519,
            false,
        );

        // `openssl ecparam -genkey` puts an EC PARAMETERS block before the key.
        openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-out",
            &p("ec.pem"),
        ]);
        let ec = read(Path::new(&p("ec.pem")));
        assert!(String::from_utf8_lossy(&ec).contains("EC PARAMETERS"));
        let key = load_private_key(&ec, None).expect("SEC1 after parameters loads");
        assert_eq!(key.algorithm().as_str(), "ecdsa-sha2-nistp256");

        // Legacy PEM encryption with AES-256 (ssh-keygen only writes AES-128), and 3DES, which
        // is refused by name.
        openssl(&["genrsa", "-traditional", "-out", &p("rsa.pem"), "2048"]);
        let public_line = run(Command::new("ssh-keygen").args(["-y", "-f", &p("rsa.pem")]));
        std::fs::write(p("rsa.pub"), public_line).expect("write");
        openssl(&[
            "rsa",
            "-traditional",
            "-aes256",
            "-in",
            &p("rsa.pem"),
            "-passout",
            &pass_arg,
            "-out",
            &p("rsa.aes256.pem"),
        ]);
        let data = read(Path::new(&p("rsa.aes256.pem")));
        assert!(String::from_utf8_lossy(&data).contains("AES-256-CBC"));
        check_private_key(&data, true, Path::new(&p("rsa.pub")), Kind::Rsa, false);
        openssl(&[
            "rsa",
            "-traditional",
            "-des3",
            "-in",
            &p("rsa.pem"),
            "-passout",
            &pass_arg,
            "-out",
            &p("rsa.3des.pem"),
        ]);
        let r = load_private_key(&read(Path::new(&p("rsa.3des.pem"))), Some(PASS));
        assert!(matches!(r, Err(KeyError::Unsupported(_))), "{r:?}");

        // PBKDF2 with hmacWithSHA1, the PRF OpenSSL 1.0 and Java write by default
        openssl(&[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-v2prf",
            "hmacWithSHA1",
            "-in",
            &p("rsa.pem"),
            "-passout",
            &pass_arg,
            "-out",
            &p("rsa.sha1prf.pem"),
        ]);
        let data = read(Path::new(&p("rsa.sha1prf.pem")));
        check_private_key(&data, true, Path::new(&p("rsa.pub")), Kind::Rsa, false);

        // PKCS#8 schemes outside PBES2-with-AES are named as unsupported, not as corrupt, by
        // the part that is not read.
        for (name, args) in [
            ("v1", vec!["-v1", "PBE-SHA1-3DES"]),
            ("des3", vec!["-v2", "des3"]),
            ("camellia", vec!["-v2", "camellia-256-cbc"]),
            (
                "sha512-224",
                vec!["-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA512-224"],
            ),
        ] {
            let expected = match name {
                "v1" => {
                    "the PKCS#12 scheme pbeWithSHA1And3-KeyTripleDES-CBC (1.2.840.113549.1.12.1.3)"
                }
                "des3" => "the cipher des-ede3-cbc (1.2.840.113549.3.7)",
                "camellia" => "the cipher camellia-256-cbc (1.2.392.200011.61.1.1.1.4)",
                _ => "the PBKDF2 PRF hmacWithSHA512-224 (1.2.840.113549.2.12)",
            };
            let out = p(&format!("ec.{name}.pem"));
            let written = Command::new("openssl")
                .args([
                    "pkcs8",
                    "-topk8",
                    "-in",
                    &p("ec.pem"),
                    "-passout",
                    &pass_arg,
                    "-out",
                    &out,
                ])
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success());
            if written {
                let r = load_private_key(&read(Path::new(&out)), Some(PASS));
                let Err(KeyError::Unsupported(message)) = r else {
                    panic!("{name}: {r:?}")
                };
                assert!(
                    message.contains(&format!(
                        "encrypted with {expected}, which ferrossh does not read"
                    )),
                    "{name}: {message}"
                );
            }
        }
    }

    #[test]
    fn pkcs8_scrypt_with_zero_cost_is_rejected_not_a_panic() {
        use pkcs8::der::Encode as _;
        use pkcs8::pkcs5::{self, pbes2};
        let salt = [1u8; 16];
        let mut params = pbes2::Parameters::generate_scrypt_aes256cbc(
            pkcs5::scrypt::Params::new(14, 8, 1).expect("params"),
            &salt,
            [2u8; 16],
        )
        .expect("params");
        if let pbes2::Kdf::Scrypt(scrypt) = &mut params.kdf {
            scrypt.cost_parameter = 0;
        }
        let data = [0u8; 32];
        let info = pkcs8::EncryptedPrivateKeyInfoRef {
            encryption_algorithm: pkcs5::EncryptionScheme::Pbes2(params),
            encrypted_data: pkcs8::der::asn1::OctetStringRef::new(&data).expect("octets"),
        };
        let der = info.to_der().expect("der");
        let pem = format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{}\n-----END ENCRYPTED PRIVATE KEY-----\n",
            BASE64.encode(der)
        );
        let r = load_private_key(pem.as_bytes(), Some(PASS));
        assert!(matches!(r, Err(KeyError::Malformed(_))), "{r:?}");
    }

    #[test]
    fn openssh_bcrypt_rounds_are_bounded() {
        let key = generate_key(KeyType::Ed25519, "c", Some(PASS)).expect("generates");
        let text = key.private_key;
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut bytes = BASE64.decode(body).expect("base64");
        // kdfoptions: string salt (16 bytes), uint32 rounds; find the 16 rounds after the salt.
        let at = bytes
            .windows(8)
            .position(|w| w == [0, 0, 0, 24, 0, 0, 0, 16])
            .expect("kdfoptions")
            + 8
            + 16;
        assert_eq!(bytes[at..at + 4], 16u32.to_be_bytes());
        bytes[at..at + 4].copy_from_slice(&1_000_000u32.to_be_bytes());
        let hostile = format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            BASE64.encode(&bytes)
        );
        let started = Instant::now();
        let r = load_private_key(hostile.as_bytes(), Some(PASS));
        assert!(matches!(r, Err(KeyError::Unsupported(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        // The public half stays readable without running the KDF.
        assert!(
            parse_key(hostile.as_bytes(), None)
                .expect("locked info")
                .encrypted
        );
    }

    // ---- generation ----------------------------------------------------------------------------

    #[test]
    fn generated_keys_are_what_ssh_keygen_expects() {
        let tool = have("ssh-keygen");
        let dir = tempfile::tempdir().expect("tempdir");
        let kinds = [
            (KeyType::Ed25519, Kind::Ed25519),
            (KeyType::Ecdsa { bits: 256 }, Kind::Ecdsa(256)),
            (KeyType::Ecdsa { bits: 384 }, Kind::Ecdsa(384)),
            (KeyType::Ecdsa { bits: 521 }, Kind::Ecdsa(521)),
            (KeyType::Rsa { bits: 2048 }, Kind::Rsa),
        ];
        for (kind, test_kind) in kinds {
            for passphrase in [None, Some(PASS)] {
                let generated =
                    generate_key(kind, "made by ferrossh", passphrase).expect("generates");
                assert!(generated
                    .private_key
                    .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
                assert!(generated.public_key.ends_with(" made by ferrossh"));
                assert!(!format!("{generated:?}").contains("PRIVATE"));

                let info = parse_key(generated.private_key.as_bytes(), passphrase).expect("parses");
                assert_eq!(info.fingerprint, generated.fingerprint);
                assert_eq!(info.public_key, generated.public_key);
                assert_eq!((info.key_type.as_str(), info.bits), test_kind.expected());
                assert_eq!(info.encrypted, passphrase.is_some());
                if passphrase.is_some() {
                    assert_eq!(
                        load_private_key(generated.private_key.as_bytes(), Some("wrong")).err(),
                        Some(KeyError::WrongPassphrase)
                    );
                }

                if !tool {
                    continue;
                }
                let path = dir
                    .path()
                    .join(format!("gen-{test_kind:?}-{}", passphrase.is_some()));
                std::fs::write(&path, &generated.private_key).expect("write");
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .expect("chmod");
                }
                let mut cmd = Command::new("ssh-keygen");
                cmd.arg("-y")
                    .arg("-P")
                    .arg(passphrase.unwrap_or(""))
                    .arg("-f")
                    .arg(&path);
                let printed = run(&mut cmd);
                assert_eq!(key_fields(&printed), key_fields(&generated.public_key));
                let public = dir
                    .path()
                    .join(format!("gen-{test_kind:?}-{}.pub", passphrase.is_some()));
                std::fs::write(&public, &generated.public_key).expect("write");
                assert_eq!(ssh_keygen_fingerprint(&public), generated.fingerprint);
            }
        }
        if tool {
            // Encrypted like ssh-keygen does by default.
            let generated = generate_key(KeyType::Ed25519, "c", Some(PASS)).expect("generates");
            let body: String = generated
                .private_key
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect();
            let bytes = BASE64.decode(body).expect("base64");
            let text = String::from_utf8_lossy(&bytes);
            assert!(text.contains("aes256-ctr") && text.contains("bcrypt"));
        }
    }

    #[test]
    fn generation_rejects_bad_sizes() {
        for kind in [
            KeyType::Ecdsa { bits: 255 },
            KeyType::Rsa { bits: 1024 },
            KeyType::Rsa {
                bits: MAX_RSA_BITS + 1,
            },
        ] {
            assert!(matches!(
                generate_key(kind, "", None),
                Err(KeyError::Unsupported(_))
            ));
        }
        // An empty passphrase means no encryption, as with ssh-keygen -N "".
        let key = generate_key(KeyType::Ed25519, "", Some("")).expect("generates");
        assert!(
            !parse_key(key.private_key.as_bytes(), None)
                .expect("parses")
                .encrypted
        );
        assert!(!key.public_key.ends_with(' '));
    }

    fn rsa_modulus_len(key: &PrivateKey) -> usize {
        let bits = rsa_bits(key.public_key()).expect("an RSA key");
        usize::try_from(bits.div_ceil(8)).expect("fits")
    }

    fn assert_signs_at_modulus_length(key: &PrivateKey) {
        use russh::keys::signature::Verifier as _;
        let KeypairData::Rsa(rsa) = key.key_data() else {
            panic!("an RSA key")
        };
        for hash in [HashAlg::Sha256, HashAlg::Sha512] {
            let signature = sign(key, Some(hash), b"exchange hash").expect("signs");
            assert_eq!(signature.as_bytes().len(), rsa_modulus_len(key));
            rsa.public()
                .verify(b"exchange hash", &signature)
                .expect("verifies");
        }
    }

    #[test]
    fn rsa_signatures_are_as_long_as_the_modulus() {
        // RFC 8332: whatever the modulus size, and OpenSSH refuses longer ones
        for bits in [2048, 2056, 2100, 3000] {
            let generated = generate_key(KeyType::Rsa { bits }, "", None).expect("generates");
            let key = load_private_key(generated.private_key.as_bytes(), None).expect("loads");
            assert_eq!(rsa_bits(key.public_key()), Some(bits));
            assert_signs_at_modulus_length(&key);
        }
    }

    #[test]
    fn rsa_keys_whose_primes_differ_in_limb_count() {
        // a 2049-bit key has primes of 1025 and 1024 bits: 17 and 16 64-bit limbs
        let generated = generate_key(KeyType::Rsa { bits: 2049 }, "", None).expect("generates");
        let key = load_private_key(generated.private_key.as_bytes(), None).expect("loads");
        assert_eq!(
            parse_key(generated.private_key.as_bytes(), None)
                .expect("parses")
                .bits,
            2049
        );
        assert_signs_at_modulus_length(&key);
        if !have("openssl") || !have("ssh-keygen") {
            return;
        }
        // a PKCS#1 file with such primes, as Go's crypto/rsa writes for 2049 bits, and one
        // with a 2048-bit modulus from primes of 1025 and 1023 bits
        for (p_bits, q_bits, n_bits) in [(1025, 1024, 2049), (1025, 1023, 2048)] {
            let pem = pkcs1_from_primes(p_bits, q_bits, n_bits);
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("k1.pem");
            std::fs::write(&path, &pem).expect("write");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .expect("chmod");
            }
            let public_line = run(Command::new("ssh-keygen").arg("-y").arg("-f").arg(&path));
            let key = load_private_key(pem.as_bytes(), None).expect("loads");
            assert_eq!(
                key_fields(&public_key_line(key.public_key(), "")),
                key_fields(&public_line)
            );
            assert_eq!(
                parse_key(pem.as_bytes(), None).expect("parses").bits,
                n_bits
            );
            assert_signs_at_modulus_length(&key);
        }
    }

    /// A PKCS#1 PEM RSA key made of two primes of the given sizes (from `openssl prime`)
    /// whose modulus has `n_bits` bits. OpenSSL cannot be asked for such a key itself.
    pub(crate) fn pkcs1_from_primes(p_bits: u32, q_bits: u32, n_bits: u32) -> String {
        use pkcs8::der::{asn1::UintRef, Encode as _};
        use rsa::traits::{PrivateKeyParts, PublicKeyParts};
        let prime = |bits: u32| {
            let hex = run(Command::new("openssl").args([
                "prime",
                "-generate",
                "-hex",
                "-bits",
                &bits.to_string(),
            ]));
            let hex = hex.trim();
            let hex = if hex.len() % 2 == 1 {
                format!("0{hex}")
            } else {
                hex.to_string()
            };
            rsa::BoxedUint::from_be_slice_vartime(&pem::decode_hex(&hex).expect("hex"))
        };
        let key = loop {
            let key = rsa::RsaPrivateKey::from_p_q(
                prime(p_bits),
                prime(q_bits),
                rsa::BoxedUint::from(65537u32),
            )
            .expect("a key");
            if key.n().as_ref().bit_width_vartime() == n_bits {
                break key;
            }
        };
        let bytes = |n: &rsa::BoxedUint| n.to_be_bytes().to_vec();
        let values = [
            bytes(key.n().as_ref()),
            bytes(key.e()),
            bytes(key.d()),
            bytes(&key.primes()[0]),
            bytes(&key.primes()[1]),
            bytes(key.dp().expect("precomputed")),
            bytes(key.dq().expect("precomputed")),
            bytes(&key.qinv().expect("precomputed").retrieve()),
        ];
        let u = |i: usize| UintRef::new(&values[i]).expect("uint");
        let der = rsa::pkcs1::RsaPrivateKey {
            modulus: u(0),
            public_exponent: u(1),
            private_exponent: u(2),
            prime1: u(3),
            prime2: u(4),
            exponent1: u(5),
            exponent2: u(6),
            coefficient: u(7),
            other_prime_infos: None,
        }
        .to_der()
        .expect("der");
        let body = BASE64.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect();
        format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn error_messages_hold_no_secrets() {
        let generated = generate_key(KeyType::Ed25519, "c", Some(PASS)).expect("generates");
        let err = load_private_key(generated.private_key.as_bytes(), Some("hunter2 secret"))
            .expect_err("wrong");
        assert!(!err.to_string().contains("hunter2"));
        let messages = [
            KeyError::PassphraseRequired.to_string(),
            KeyError::WrongPassphrase.to_string(),
        ];
        assert!(messages.iter().all(|m| m.contains("passphrase")));
    }

    #[test]
    fn mismatched_halves_are_malformed() {
        // An OpenSSH file whose private scalar belongs to another key than its public point.
        let mut rng = russh::keys::key::safe_rng();
        let a = EcdsaKeypair::random(&mut rng, EcdsaCurve::NistP256).expect("key");
        let b = EcdsaKeypair::random(&mut rng, EcdsaCurve::NistP256).expect("key");
        let (EcdsaKeypair::NistP256 { public, .. }, EcdsaKeypair::NistP256 { private, .. }) =
            (a, b)
        else {
            panic!("P-256 expected");
        };
        let mixed = EcdsaKeypair::NistP256 { public, private };
        let key = PrivateKey::new(KeypairData::Ecdsa(mixed), "mixed").expect("key");
        let text = key.to_openssh(LineEnding::LF).expect("encode");
        let r = load_private_key(text.as_bytes(), None);
        assert!(matches!(r, Err(KeyError::Malformed(_))), "{r:?}");
    }

    #[test]
    fn der_sequence_shape() {
        assert!(der::is_sequence(&[0x30, 0x00]));
        assert!(der::is_sequence(&[0x30, 0x02, 0x05, 0x00]));
        let long: Vec<u8> = [0x30, 0x81, 0x80].into_iter().chain([0u8; 0x80]).collect();
        assert!(der::is_sequence(&long));
        assert!(!der::is_sequence(&long[..long.len() - 1]));
        assert!(!der::is_sequence(&[0x30, 0x80]));
        assert!(!der::is_sequence(&[0x31, 0x00]));
        assert!(!der::is_sequence(&[0x30, 0x85, 0, 0, 0, 0, 0]));
        assert!(!der::is_sequence(&[]));
    }

    #[test]
    fn public_key_line_keeps_one_line() {
        let key = PublicKey::from_openssh(FIXTURE_PUBLIC).expect("parses");
        let line = public_key_line(&key, "two\nlines\r");
        assert!(!line.contains('\n') && !line.contains('\r'));
        assert!(line.ends_with(" two lines"));
        assert_eq!(public_key_line(&key, ""), key_fields(FIXTURE_PUBLIC));
        assert_eq!(fingerprint(&key), FIXTURE_FINGERPRINT);
    }

    // ---- robustness ----------------------------------------------------------------------------

    /// xorshift64*: deterministic, so a failure reproduces.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Re-wraps a mutated binary body in the armor of `text`, so mutations reach the decoders
    /// behind the base64.
    fn rearmor(text: &str, body: &[u8]) -> Option<String> {
        let begin = text.lines().find(|l| l.starts_with("-----BEGIN"))?;
        let end = text.lines().find(|l| l.starts_with("-----END"))?;
        let headers: Vec<&str> = text.lines().filter(|l| l.contains(": ")).collect();
        let mut out = format!("{begin}\n");
        for h in &headers {
            out.push_str(h);
            out.push('\n');
        }
        if !headers.is_empty() {
            out.push('\n');
        }
        out.push_str(&BASE64.encode(body));
        out.push('\n');
        out.push_str(end);
        Some(out)
    }

    fn corpus() -> Vec<String> {
        let mut corpus = vec![
            FIXTURE_PPK_V2.to_string(),
            FIXTURE_PPK_V3.to_string(),
            FIXTURE_PUBLIC.to_string(),
        ];
        for kind in [
            KeyType::Ed25519,
            KeyType::Ecdsa { bits: 384 },
            KeyType::Rsa { bits: 2048 },
        ] {
            let key = generate_key(kind, "fuzz", None).expect("generates");
            corpus.push(key.private_key);
            corpus.push(key.public_key);
        }
        corpus.push(
            generate_key(KeyType::Ed25519, "fuzz", Some(PASS))
                .expect("generates")
                .private_key,
        );
        if Command::new("ssh-keygen").arg("--version").output().is_ok() {
            let dir = tempfile::tempdir().expect("tempdir");
            for (kind, format) in [
                (Kind::Rsa, "PEM"),
                (Kind::Ecdsa(256), "PEM"),
                (Kind::Ecdsa(256), "PKCS8"),
                (Kind::Rsa, "PKCS8"),
            ] {
                for encrypted in [false, true] {
                    let path = ssh_keygen(dir.path(), kind, format, encrypted);
                    corpus.push(String::from_utf8(read(&path)).expect("utf8"));
                }
            }
        }
        corpus
    }

    const RANDOM_CASES: usize = 3000;
    const MUTATED_CASES: usize = 5000;

    #[test]
    fn fuzz_never_panics_and_always_returns_quickly() {
        let corpus = corpus();
        let mut rng = Rng(0x5eed_f00d_cafe_b0ba);
        let mut slowest = Duration::ZERO;
        let mut cases = 0usize;
        let mut try_input = |data: &[u8], passphrase: Option<&str>| {
            let started = Instant::now();
            let _ = load_private_key(data, passphrase);
            let _ = parse_key(data, passphrase);
            slowest = slowest.max(started.elapsed());
            cases += 1;
        };
        // Random bytes and random printable text.
        for _ in 0..RANDOM_CASES {
            let len = rng.below(600);
            let printable = rng.below(2) == 0;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    let b = rng.next() as u8;
                    if printable {
                        b' ' + b % 95
                    } else {
                        b
                    }
                })
                .collect();
            try_input(&data, None);
        }
        for _ in 0..MUTATED_CASES {
            let text = &corpus[rng.below(corpus.len())];
            // Passphrases only rarely, as they run the real KDFs.
            let passphrase = (rng.below(50) == 0).then_some(PASS);
            let mut data = text.as_bytes().to_vec();
            match rng.below(4) {
                0 => data.truncate(rng.below(data.len())),
                1 => {
                    for _ in 0..=rng.below(4) {
                        let at = rng.below(data.len());
                        data[at] = rng.next() as u8;
                    }
                }
                _ => {
                    // Mutate the decoded body: truncations, flips and length-field damage.
                    let body: String = text
                        .lines()
                        .filter(|l| !l.starts_with("-----") && !l.contains(": ") && !l.is_empty())
                        .collect();
                    let Ok(mut bytes) = BASE64.decode(body) else {
                        continue;
                    };
                    if bytes.is_empty() {
                        continue;
                    }
                    if rng.below(3) == 0 {
                        bytes.truncate(rng.below(bytes.len()));
                    } else {
                        for _ in 0..=rng.below(3) {
                            let at = rng.below(bytes.len());
                            bytes[at] = if rng.below(2) == 0 {
                                rng.next() as u8
                            } else {
                                0xff
                            };
                        }
                    }
                    let Some(rearmored) = rearmor(text, &bytes) else {
                        continue;
                    };
                    data = rearmored.into_bytes();
                }
            }
            try_input(&data, passphrase);
        }
        eprintln!("{cases} fuzz cases, slowest {slowest:?}");
        assert!(
            slowest < Duration::from_secs(5),
            "slowest case took {slowest:?}"
        );
    }
}
