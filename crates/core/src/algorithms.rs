//! Algorithm preferences: validation of user lists (names, or OpenSSH-style `+`/`-`/`^`
//! edits of the default list) and ferrossh's default order.

use std::borrow::Cow;

use russh::keys::Algorithm;
use russh::{cipher, compression, kex, mac, Preferred};

use crate::error::{Error, Result};
use crate::options::Algorithms;

/// True when the CPU has AES instructions: AES-GCM is then the fastest cipher.
pub fn cpu_has_aes() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

fn default_ciphers() -> Vec<cipher::Name> {
    let gcm = [cipher::AES_128_GCM, cipher::AES_256_GCM];
    let rest = [cipher::AES_128_CTR, cipher::AES_192_CTR, cipher::AES_256_CTR];
    let mut v = Vec::new();
    if cpu_has_aes() {
        v.extend(gcm);
        v.push(cipher::CHACHA20_POLY1305);
    } else {
        v.push(cipher::CHACHA20_POLY1305);
        v.extend(gcm);
    }
    v.extend(rest);
    v
}

/// Edits `defaults` by an OpenSSH-style spec: a plain list replaces it; a list starting
/// with `+` appends, `-` removes, `^` moves/puts first.
fn apply_spec(list: &str, spec: &[String], defaults: &[String], supported: &[&str]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let check = |name: &str| -> Result<()> {
        if supported.contains(&name) {
            Ok(())
        } else {
            Err(Error::config(
                format!("algorithms.{list}"),
                format!("unsupported {list} algorithm {name:?}; supported: {}", supported.join(", ")),
            ))
        }
    };
    let first = spec.first().map(String::as_str).unwrap_or("");
    let names = |s: &[String]| -> Vec<String> {
        s.iter()
            .flat_map(|x| x.split(','))
            .map(|x| x.trim().trim_start_matches(['+', '-', '^']).to_string())
            .filter(|x| !x.is_empty())
            .collect()
    };
    let given = names(spec);
    if given.is_empty() {
        return Err(Error::config(format!("algorithms.{list}"), format!("the {list} algorithm list is empty")));
    }
    match first.chars().next() {
        Some('+') => {
            out.extend(defaults.iter().cloned());
            for n in given {
                check(&n)?;
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        Some('-') => {
            for n in &given {
                check(n)?;
            }
            out.extend(defaults.iter().filter(|d| !given.contains(d)).cloned());
        }
        Some('^') => {
            for n in &given {
                check(n)?;
            }
            out.extend(given.iter().cloned());
            out.extend(defaults.iter().filter(|d| !given.contains(d)).cloned());
        }
        _ => {
            for n in given {
                check(&n)?;
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
    }
    if out.is_empty() {
        return Err(Error::config(format!("algorithms.{list}"), format!("no {list} algorithm left to offer")));
    }
    Ok(out)
}

fn strs<T: AsRef<str>>(v: &[T]) -> Vec<String> {
    v.iter().map(|n| n.as_ref().to_string()).collect()
}

fn host_key_names() -> Vec<String> {
    Preferred::DEFAULT.key.iter().map(|a| a.as_str().to_string()).collect()
}

/// Builds russh's preference lists. `known_host_key_types` (from known_hosts) are
/// moved to the front of the host key list, as OpenSSH does.
pub fn preferred(algos: &Algorithms, known_host_key_types: &[String]) -> Result<Preferred> {
    let mut p = Preferred::DEFAULT.clone();

    let kex_supported: Vec<&str> = kex::ALL_KEX_ALGORITHMS.iter().map(|n| n.as_ref()).filter(|n| *n != "none").collect();
    if let Some(spec) = &algos.kex {
        let defaults = strs(&Preferred::DEFAULT.kex.iter().filter(|n| !is_kex_extension(n.as_ref())).cloned().collect::<Vec<_>>());
        let names = apply_spec("kex", spec, &defaults, &kex_supported)?;
        let mut v: Vec<kex::Name> = names.iter().filter_map(|n| kex::Name::try_from(n.as_str()).ok()).collect();
        // the protocol extensions (ext-info, strict kex) ride along in the kex list
        v.extend(Preferred::DEFAULT.kex.iter().filter(|n| is_kex_extension(n.as_ref())).cloned());
        p.kex = Cow::Owned(v);
    }

    let cipher_supported: Vec<&str> = cipher::ALL_CIPHERS.iter().map(|n| n.as_ref()).filter(|n| *n != "none" && *n != "clear").collect();
    let cipher_defaults = strs(&default_ciphers());
    let cipher_names = match &algos.cipher {
        Some(spec) => apply_spec("cipher", spec, &cipher_defaults, &cipher_supported)?,
        None => cipher_defaults,
    };
    p.cipher = Cow::Owned(cipher_names.iter().filter_map(|n| cipher::Name::try_from(n.as_str()).ok()).collect());

    if let Some(spec) = &algos.mac {
        let supported: Vec<&str> = mac::ALL_MAC_ALGORITHMS.iter().map(|n| n.as_ref()).filter(|n| *n != "none").collect();
        let names = apply_spec("mac", spec, &strs(&Preferred::DEFAULT.mac), &supported)?;
        p.mac = Cow::Owned(names.iter().filter_map(|n| mac::Name::try_from(n.as_str()).ok()).collect());
    }

    if let Some(spec) = &algos.compression {
        let supported: Vec<&str> = compression::ALL_COMPRESSION_ALGORITHMS.iter().map(|n| n.as_ref()).collect();
        let names = apply_spec("compression", spec, &strs(&Preferred::DEFAULT.compression), &supported)?;
        p.compression = Cow::Owned(names.iter().filter_map(|n| compression::Name::try_from(n.as_str()).ok()).collect());
    }

    let hk_defaults = host_key_names();
    let hk_supported: Vec<&str> = hk_defaults.iter().map(String::as_str).collect();
    let mut hk = match &algos.host_key {
        Some(spec) => apply_spec("hostKey", spec, &hk_defaults, &hk_supported)?,
        None => hk_defaults.clone(),
    };
    promote_known(&mut hk, known_host_key_types);
    p.key = Cow::Owned(hk.iter().filter_map(|n| Algorithm::new(n).ok()).collect());
    Ok(p)
}

fn is_kex_extension(name: &str) -> bool {
    name.starts_with("ext-info-") || name.starts_with("kex-strict-")
}

/// Moves the algorithms matching known key types to the front, keeping their order.
fn promote_known(list: &mut Vec<String>, known: &[String]) {
    if known.is_empty() {
        return;
    }
    let matches = |alg: &str| {
        known.iter().any(|k| {
            k == alg || (k == "ssh-rsa" && (alg == "rsa-sha2-256" || alg == "rsa-sha2-512"))
        })
    };
    let (mut front, back): (Vec<String>, Vec<String>) = list.drain(..).partition(|a| matches(a));
    front.extend(back);
    *list = front;
}

/// Every algorithm name ferrossh can negotiate, per list (for docs and error messages).
pub fn supported() -> Algorithms {
    Algorithms {
        kex: Some(kex::ALL_KEX_ALGORITHMS.iter().map(|n| n.as_ref().to_string()).filter(|n| n != "none").collect()),
        cipher: Some(cipher::ALL_CIPHERS.iter().map(|n| n.as_ref().to_string()).filter(|n| n != "none" && n != "clear").collect()),
        mac: Some(mac::ALL_MAC_ALGORITHMS.iter().map(|n| n.as_ref().to_string()).filter(|n| n != "none").collect()),
        host_key: Some(host_key_names()),
        compression: Some(compression::ALL_COMPRESSION_ALGORITHMS.iter().map(|n| n.as_ref().to_string()).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_gcm_first_with_aes_instructions() {
        let p = preferred(&Algorithms::default(), &[]).unwrap();
        let first = p.cipher[0].as_ref().to_string();
        if cpu_has_aes() {
            assert_eq!(first, "aes128-gcm@openssh.com");
        } else {
            assert_eq!(first, "chacha20-poly1305@openssh.com");
        }
        assert_eq!(p.kex[0].as_ref(), "mlkem768x25519-sha256");
    }

    #[test]
    fn unknown_names_are_config_errors() {
        let a = Algorithms { cipher: Some(vec!["rot13".into()]), ..Default::default() };
        let e = preferred(&a, &[]).unwrap_err();
        assert_eq!(e.code(), "ERR_SSH_CONFIG");
        assert!(e.to_string().contains("rot13"));
        let a = Algorithms { kex: Some(vec![]), ..Default::default() };
        assert!(preferred(&a, &[]).is_err());
    }

    #[test]
    fn openssh_style_edits() {
        let d = vec!["a".to_string(), "b".into(), "c".into()];
        let sup = ["a", "b", "c", "d"];
        assert_eq!(apply_spec("x", &["+d".into()], &d, &sup).unwrap(), vec!["a", "b", "c", "d"]);
        assert_eq!(apply_spec("x", &["-b".into()], &d, &sup).unwrap(), vec!["a", "c"]);
        assert_eq!(apply_spec("x", &["^c".into()], &d, &sup).unwrap(), vec!["c", "a", "b"]);
        assert_eq!(apply_spec("x", &["d,a".into()], &d, &sup).unwrap(), vec!["d", "a"]);
    }

    #[test]
    fn known_host_key_types_go_first() {
        let p = preferred(&Algorithms::default(), &["ssh-rsa".to_string()]).unwrap();
        assert!(p.key[0].as_str().starts_with("rsa-sha2"), "{:?}", p.key);
    }
}
