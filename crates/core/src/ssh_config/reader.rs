//! Reading configuration files: Host and Match blocks, Include.

use std::path::{Path, PathBuf};

use super::expand::tilde_expand;
use super::glob::glob;
use super::keywords::{self, Kind};
use super::lexer::{split_line, Line};
use super::matching::{self, MatchContext};
use super::options::{Apply, Options};
use super::pattern::match_pattern;
use super::resolve::Env;
use super::ConfigError;

/// ssh stops following Include after this many nested files.
const MAX_INCLUDE_DEPTH: usize = 16;

/// How a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flags {
    /// A user configuration (`~/.ssh/config` or `-F`), as opposed to the
    /// system-wide one: decides where relative Include paths point.
    pub user_config: bool,
    /// Refuse files writable by others (ssh checks ~/.ssh/config and every
    /// included file).
    pub check_perm: bool,
    /// Parsed only for errors: the Include line sat in a block that did not
    /// apply, so nothing in the file may apply either.
    pub never_match: bool,
}

/// One pass over the configuration for one host.
pub(crate) struct Reader<'a> {
    pub env: &'a Env,
    pub options: &'a mut Options,
    /// What `Host` patterns are matched against in this pass.
    pub host: String,
    pub original_host: String,
    pub final_pass: bool,
    /// Set when a `Match final` was seen.
    pub wants_final: bool,
}

/// Where one line came from, for error messages.
#[derive(Clone, Copy)]
struct At<'p> {
    file: Option<&'p Path>,
    line: usize,
}

impl At<'_> {
    fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            message: message.into(),
            file: self.file.map(Path::to_path_buf),
            line: Some(self.line),
        }
    }
}

impl Reader<'_> {
    /// Reads a file; `Ok(false)` if it does not exist.
    pub(crate) fn read_file(
        &mut self,
        path: &Path,
        flags: Flags,
        active: &mut bool,
        depth: usize,
    ) -> Result<bool, ConfigError> {
        let text = match read_config_text(path, flags, self.env.uid) {
            Ok(Some(text)) => text,
            Ok(None) => return Ok(false),
            Err(message) => {
                return Err(ConfigError {
                    message,
                    file: Some(path.to_path_buf()),
                    line: None,
                })
            }
        };
        self.read_text(&text, Some(path), flags, active, depth)?;
        Ok(true)
    }

    /// Reads configuration text; `file` names it in errors.
    pub(crate) fn read_text(
        &mut self,
        text: &str,
        file: Option<&Path>,
        flags: Flags,
        active: &mut bool,
        depth: usize,
    ) -> Result<(), ConfigError> {
        // Editors on Windows save UTF-8 with a byte order mark; left in, it would make the
        // first keyword unknown (and skipped), so a leading `Host` line would be lost and its
        // settings would apply to every host.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (i, raw) in text.lines().enumerate() {
            let at = At { file, line: i + 1 };
            let line = split_line(raw).map_err(|e| at.error(e.to_string()))?;
            if let Some(line) = line {
                self.process(&line, at, flags, active, depth)?;
            }
        }
        Ok(())
    }

    fn process(
        &mut self,
        line: &Line,
        at: At,
        flags: Flags,
        active: &mut bool,
        depth: usize,
    ) -> Result<(), ConfigError> {
        // Keywords this version does not know are skipped rather than
        // refused, so newer or vendor-specific options do not break reading.
        let Some((key, kind)) = keywords::lookup(&line.keyword) else {
            return Ok(());
        };
        match kind {
            Kind::Host => self.host_line(line, at, flags, active),
            Kind::Match => self.match_line(line, at, flags, active),
            Kind::Include => self.include(line, at, flags, active, depth),
            _ => {
                // ssh applies SyslogFacility wherever it appears, even in a
                // block that does not match.
                let applies = *active || key == "syslogfacility";
                let ctx = Apply {
                    active: applies,
                    user_config: flags.user_config,
                    algorithms: &self.env.algorithms,
                };
                self.options
                    .apply(key, kind, line, &ctx)
                    .map_err(|m| at.error(m))
            }
        }
    }

    /// ssh_config(5) Host: "If more than one pattern is provided, they
    /// should be separated by whitespace." "A pattern entry may be negated
    /// by prefixing it with an exclamation mark ('!'). If a negated entry is
    /// matched, then the Host entry is ignored, regardless of whether any
    /// other patterns on the line match."
    fn host_line(
        &mut self,
        line: &Line,
        at: At,
        flags: Flags,
        active: &mut bool,
    ) -> Result<(), ConfigError> {
        *active = false;
        for arg in &line.args {
            if arg.is_empty() {
                return Err(at.error("keyword host empty argument"));
            }
            if flags.never_match {
                break;
            }
            let (negated, pattern) = match arg.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, arg.as_str()),
            };
            if match_pattern(&self.host, pattern) {
                if negated {
                    *active = false;
                    break;
                }
                *active = true;
            }
        }
        Ok(())
    }

    fn match_line(
        &mut self,
        line: &Line,
        at: At,
        flags: Flags,
        active: &mut bool,
    ) -> Result<(), ConfigError> {
        let ctx = MatchContext {
            env: self.env,
            options: self.options,
            host: &self.host,
            original_host: &self.original_host,
            final_pass: self.final_pass,
            run_exec: !flags.never_match,
        };
        let result = matching::evaluate(line.rest, &ctx).map_err(|m| at.error(m))?;
        self.wants_final |= result.wants_final;
        *active = result.matched && !flags.never_match;
        Ok(())
    }

    /// ssh_config(5) Include: "Multiple pathnames may be specified and each
    /// pathname may contain glob(7) wildcards and, for user configurations,
    /// shell-like '~' references to user home directories. Wildcards will be
    /// expanded and processed in lexical order. Files without absolute paths
    /// are assumed to be in ~/.ssh if included in a user configuration file
    /// or /etc/ssh if included from the system configuration file. Include
    /// directive may appear inside a Match or Host block to perform
    /// conditional inclusion."
    fn include(
        &mut self,
        line: &Line,
        at: At,
        flags: Flags,
        active: &mut bool,
        depth: usize,
    ) -> Result<(), ConfigError> {
        for arg in &line.args {
            if arg.is_empty() {
                return Err(at.error("keyword include empty argument"));
            }
            if arg.starts_with('~') && !flags.user_config {
                return Err(at.error(format!("bad include path {arg}")));
            }
            let pattern = self.include_pattern(arg, flags);
            let was_active = *active;
            for path in glob(&pattern) {
                if depth + 1 > MAX_INCLUDE_DEPTH {
                    return Err(at.error(format!(
                        "too many recursive configuration includes at {}",
                        path.display()
                    )));
                }
                let nested = Flags {
                    check_perm: true,
                    never_match: flags.never_match || !was_active,
                    ..flags
                };
                self.read_file(&path, nested, active, depth + 1)?;
                // A Host or Match inside the included file ends there.
                *active = was_active;
            }
        }
        Ok(())
    }

    fn include_pattern(&self, arg: &str, flags: Flags) -> String {
        let anchored =
            if arg.starts_with('/') || arg.starts_with('~') || Path::new(arg).is_absolute() {
                arg.to_string()
            } else if flags.user_config {
                format!("~/.ssh/{arg}")
            } else {
                format!("{}/{arg}", self.env.system_dir.display())
            };
        // glob(3) with GLOB_TILDE leaves an unknown ~user alone.
        tilde_expand(&anchored, &self.env.home).unwrap_or(anchored)
    }
}

/// Reads a configuration file's text; `Ok(None)` when it does not exist.
/// A directory reads as empty, as it does for ssh.
fn read_config_text(path: &Path, flags: Flags, uid: Option<u32>) -> Result<Option<String>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("can't open config file: {e}")),
    };
    if flags.check_perm {
        check_permissions(&meta, uid).map_err(|m| format!("{m} on {}", path.display()))?;
    }
    if meta.is_dir() {
        return Ok(Some(String::new()));
    }
    let bytes = crate::files::read_limited(path, crate::files::TEXT_FILE_LIMIT).map_err(|e| format!("can't open config file: {e}"))?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// ssh refuses configuration that someone else could have written: the file
/// must belong to the user or root and not be group or world writable.
#[cfg(unix)]
fn check_permissions(meta: &std::fs::Metadata, uid: Option<u32>) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let foreign_owner = uid.is_some_and(|u| meta.uid() != 0 && meta.uid() != u);
    if foreign_owner || meta.mode() & 0o022 != 0 {
        return Err("bad owner or permissions".to_string());
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_meta: &std::fs::Metadata, _uid: Option<u32>) -> Result<(), String> {
    Ok(())
}

/// The paths a user or system configuration reads by default.
pub(crate) fn user_config_path(home: &str) -> PathBuf {
    Path::new(home).join(".ssh").join("config")
}
