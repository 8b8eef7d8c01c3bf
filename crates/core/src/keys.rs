//! Placeholder key loader (OpenSSH / PKCS#8 via russh); replaced by the full module.
use std::fmt;
#[derive(Debug, Clone)]
pub enum KeyError { PassphraseRequired, WrongPassphrase, Unsupported(String), Malformed(String) }
impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::PassphraseRequired => f.write_str("the private key is encrypted and no passphrase was given"),
            KeyError::WrongPassphrase => f.write_str("wrong passphrase for the private key"),
            KeyError::Unsupported(s) => write!(f, "unsupported private key: {s}"),
            KeyError::Malformed(s) => write!(f, "malformed private key: {s}"),
        }
    }
}
pub fn load_private_key(data: &[u8], passphrase: Option<&str>) -> Result<russh::keys::PrivateKey, KeyError> {
    let text = std::str::from_utf8(data).map_err(|_| KeyError::Malformed("not text".into()))?;
    russh::keys::decode_secret_key(text, passphrase).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => KeyError::PassphraseRequired,
        other => KeyError::Malformed(other.to_string()),
    })
}
pub fn fingerprint(key: &russh::keys::PublicKey) -> String {
    key.fingerprint(russh::keys::HashAlg::Sha256).to_string()
}
