//! parseKey / generateKey.

use ferrossh_core::keys::{self, KeyError, KeyType};
use ferrossh_core::Error;
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use crate::errors;

#[napi(object)]
pub struct NativeKeyInfo {
    pub key_type: String,
    pub bits: u32,
    pub fingerprint: String,
    pub public_key: String,
    pub comment: String,
    pub encrypted: bool,
}

#[napi(object)]
pub struct NativeGeneratedKey {
    pub private_key: String,
    pub public_key: String,
    pub fingerprint: String,
}

fn key_error(e: KeyError) -> napi::Error {
    let option = match e {
        KeyError::PassphraseRequired | KeyError::WrongPassphrase => "passphrase",
        _ => "key",
    };
    errors::to_napi(Error::config(option, e.to_string()))
}

/// Public facts about a private or public key (never the secret part).
#[napi]
pub fn parse_key(data: Buffer, passphrase: Option<String>) -> napi::Result<NativeKeyInfo> {
    errors::catch_panic("key", "reading the key", || parse(&data, passphrase.as_deref()))
}

fn parse(data: &[u8], passphrase: Option<&str>) -> napi::Result<NativeKeyInfo> {
    let info = keys::parse_key(data, passphrase).map_err(key_error)?;
    Ok(NativeKeyInfo {
        key_type: info.key_type,
        bits: info.bits,
        fingerprint: info.fingerprint,
        public_key: info.public_key,
        comment: info.comment,
        encrypted: info.encrypted,
    })
}

/// A new key pair in OpenSSH format (encrypted when a passphrase is given).
#[napi]
pub fn generate_key(key_type: String, bits: Option<u32>, comment: Option<String>, passphrase: Option<String>) -> napi::Result<NativeGeneratedKey> {
    errors::catch_panic("bits", "generating the key", || generate(&key_type, bits, comment.as_deref(), passphrase.as_deref()))
}

fn generate(key_type: &str, bits: Option<u32>, comment: Option<&str>, passphrase: Option<&str>) -> napi::Result<NativeGeneratedKey> {
    let kind = match key_type {
        "ed25519" => {
            if bits.is_some() {
                return Err(errors::to_napi(Error::config("bits", "ed25519 keys have a fixed size: leave bits out")));
            }
            KeyType::Ed25519
        }
        "ecdsa" => KeyType::Ecdsa { bits: bits.unwrap_or(256) },
        "rsa" => KeyType::Rsa { bits: bits.unwrap_or(keys::DEFAULT_RSA_BITS) },
        other => return Err(errors::to_napi(Error::config("type", format!("unknown key type {other:?}: use ed25519, ecdsa or rsa")))),
    };
    let k = keys::generate_key(kind, comment.unwrap_or(""), passphrase).map_err(|e| match e {
        KeyError::Unsupported(m) | KeyError::Malformed(m) => errors::to_napi(Error::config("bits", m)),
        other => key_error(other),
    })?;
    Ok(NativeGeneratedKey { private_key: k.private_key, public_key: k.public_key, fingerprint: k.fingerprint })
}
