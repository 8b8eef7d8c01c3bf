//! Facts about the local machine that ssh takes from the C library: the
//! user's name, home directory and uid (getpwuid), the host name
//! (gethostname) and port names (getservbyname). Read here from the files
//! behind those calls so the crate needs nothing beyond std; every one can
//! be overridden through `ResolveOptions`.

use std::path::Path;

/// The local user as ssh sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalUser {
    pub name: String,
    pub home: String,
    pub uid: Option<u32>,
}

/// The effective uid of this process, where the platform exposes it
/// without libc (Linux: the owner of /proc/self).
pub(crate) fn current_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Looks the current user up: the password database entry for our uid
/// (which is what ssh uses for `~` and `%d`, even when $HOME differs), else
/// the usual environment variables.
pub(crate) fn current_user(uid: Option<u32>) -> LocalUser {
    if let Some(entry) = uid.and_then(|u| passwd_find(|e| e.uid == Some(u))) {
        return entry;
    }
    let env = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
    };
    LocalUser {
        name: env(&["USER", "LOGNAME", "USERNAME"]).unwrap_or_default(),
        home: env(&["HOME", "USERPROFILE"]).unwrap_or_default(),
        uid,
    }
}

/// Home directory of a named user, for `~user/` paths.
pub(crate) fn home_of(user: &str) -> Option<String> {
    passwd_find(|e| e.name == user).map(|e| e.home)
}

fn passwd_find(pred: impl Fn(&LocalUser) -> bool) -> Option<LocalUser> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().filter_map(parse_passwd_line).find(|e| pred(e))
}

fn parse_passwd_line(line: &str) -> Option<LocalUser> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 7 || line.starts_with('#') {
        return None;
    }
    Some(LocalUser {
        name: fields[0].to_string(),
        uid: fields[2].parse().ok(),
        home: fields[5].to_string(),
    })
}

/// The machine's host name (`%l`), as gethostname(2) reports it.
pub(crate) fn this_host() -> String {
    let from_file = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// Converts a port argument the way ssh's a2port does: a number from 0 to
/// 65535 or a TCP service name from the services database.
pub(crate) fn parse_port(s: &str) -> Option<u16> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    if s.is_empty() {
        return None;
    }
    service_port(Path::new("/etc/services"), s)
}

fn service_port(services: &Path, name: &str) -> Option<u16> {
    let text = std::fs::read_to_string(services).ok()?;
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let service = words.next()?;
        let (port, proto) = words.next()?.split_once('/')?;
        let names_match = service == name || words.any(|alias| alias == name);
        (proto == "tcp" && names_match)
            .then(|| port.parse().ok())
            .flatten()
    })
}
