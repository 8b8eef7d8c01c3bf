//! `~`, `%` and `${}` expansion (ssh_config(5) "TOKENS" and "ENVIRONMENT
//! VARIABLES").

use super::local;
use super::sha1::sha1_hex;

/// The values of the `%` tokens for one resolved connection.
///
/// ssh_config(5): %C hash of %l%h%p%r, %d local home, %h remote host name,
/// %i local uid, %k host key alias or original host, %L local host name
/// up to the first '.', %l local host name, %n original host name, %p
/// remote port, %r remote user, %u local user, %% a literal '%'.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tokens {
    /// `%h`: the host to connect to, after HostName.
    pub host: String,
    /// `%n`: the host name as given.
    pub original_host: String,
    /// `%p`
    pub port: String,
    /// `%r`
    pub remote_user: String,
    /// `%u`
    pub local_user: String,
    /// `%d`
    pub home: String,
    /// `%l`
    pub local_hostname: String,
    /// `%i`
    pub uid: String,
    /// `%k`
    pub key_alias: String,
}

impl Tokens {
    /// `%L`: the local host name up to its first dot.
    pub fn short_local_hostname(&self) -> &str {
        self.local_hostname.split('.').next().unwrap_or("")
    }

    /// `%C`: ssh's connection hash, SHA-1 over %l%h%p%r in hex.
    pub fn connection_hash(&self) -> String {
        let joined = format!(
            "{}{}{}{}",
            self.local_hostname, self.host, self.port, self.remote_user
        );
        sha1_hex(joined.as_bytes())
    }

    /// Expands every token the given keyword accepts (`allowed` lists the
    /// token letters, e.g. `"hnpr"` for ProxyCommand) and `%%`.
    pub fn expand(&self, s: &str, allowed: &str) -> Result<String, String> {
        let all = self.pairs();
        let pairs: Vec<(char, &str)> = all
            .iter()
            .filter(|(c, _)| allowed.contains(*c))
            .map(|(c, v)| (*c, v.as_str()))
            .collect();
        percent_expand(s, &pairs, false)
    }

    /// Expands a ProxyCommand the way ssh does before running it: %h, %n,
    /// %p, %r and %% only (ssh_config(5) ProxyCommand).
    pub fn expand_proxy_command(&self, command: &str) -> Result<String, String> {
        self.expand(command, "hnpr")
    }

    /// The tokens ssh substitutes in most keywords, with their values.
    pub(crate) fn pairs(&self) -> [(char, String); 11] {
        [
            ('C', self.connection_hash()),
            ('L', self.short_local_hostname().to_string()),
            ('i', self.uid.clone()),
            ('k', self.key_alias.clone()),
            ('l', self.local_hostname.clone()),
            ('n', self.original_host.clone()),
            ('p', self.port.clone()),
            ('d', self.home.clone()),
            ('h', self.host.clone()),
            ('r', self.remote_user.clone()),
            ('u', self.local_user.clone()),
        ]
    }

    /// Expands all default tokens, and `${VAR}` when `dollar` is set.
    pub(crate) fn expand_all(&self, s: &str, dollar: bool) -> Result<String, String> {
        let all = self.pairs();
        let pairs: Vec<(char, &str)> = all.iter().map(|(c, v)| (*c, v.as_str())).collect();
        percent_expand(s, &pairs, dollar)
    }
}

/// Replaces `%x` tokens from `keys` (and `%%`), plus `${VAR}` from the
/// environment when `dollar` is set. An unknown token, a dangling `%` or an
/// unset variable is an error, as in ssh.
pub(crate) fn percent_expand(
    s: &str,
    keys: &[(char, &str)],
    dollar: bool,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if dollar && rest.starts_with("${") {
            let (value, after) = expand_env(&rest[2..])?;
            out.push_str(&value);
            rest = after;
            continue;
        }
        rest = &rest[c.len_utf8()..];
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(t) = rest.chars().next() else {
            return Err(format!("invalid format in \"{s}\": '%' at end"));
        };
        rest = &rest[t.len_utf8()..];
        if t == '%' {
            out.push('%');
            continue;
        }
        match keys.iter().find(|(k, _)| *k == t) {
            Some((_, v)) => out.push_str(v),
            None => return Err(format!("unknown token %{t} in \"{s}\"")),
        }
    }
    Ok(out)
}

/// Reads `NAME}` off `s` and returns the variable's value and what follows.
fn expand_env(s: &str) -> Result<(String, &str), String> {
    let end = s
        .find('}')
        .ok_or_else(|| format!("environment variable '{s}' missing closing '}}'"))?;
    let name = &s[..end];
    if name.is_empty() {
        return Err("zero-length environment variable".to_string());
    }
    let value = std::env::var(name).map_err(|_| format!("env var ${{{name}}} has no value"))?;
    Ok((value, &s[end + 1..]))
}

/// Validates `${}` references without expanding them (ssh checks them
/// when IdentityAgent or a forwarding is read).
pub(crate) fn check_dollar(s: &str) -> Result<String, String> {
    percent_expand(&s.replace('%', "%%"), &[], true)
}

/// `~` expansion for file names: `~` and `~/…` are the home directory,
/// `~user/…` another user's. Anything else is returned unchanged.
pub(crate) fn tilde_expand(path: &str, home: &str) -> Result<String, String> {
    let Some(after) = path.strip_prefix('~') else {
        return Ok(path.to_string());
    };
    let (user, tail) = match after.find('/') {
        Some(i) => (&after[..i], after[i..].trim_start_matches('/')),
        None => (after, ""),
    };
    let dir = if user.is_empty() {
        home.to_string()
    } else {
        local::home_of(user).ok_or_else(|| format!("no such user {user}"))?
    };
    let sep = if dir.ends_with('/') { "" } else { "/" };
    Ok(format!("{dir}{sep}{tail}"))
}
