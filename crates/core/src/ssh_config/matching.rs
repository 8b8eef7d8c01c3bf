//! `Match` blocks (ssh_config(5) "Match"): "The criteria for the Match
//! keyword are one or more criteria or a single token of all which always
//! matches." "The available criteria keywords are: canonical, final, exec,
//! host, originalhost, user, and localuser." "Criteria may be negated by
//! prepending an exclamation mark (!)."

use std::process::{Command, Stdio};

use super::expand::{percent_expand, Tokens};
use super::lexer::strdelim;
use super::options::Options;
use super::pattern::{match_hostname, match_pattern_list, ListMatch};
use super::resolve::Env;

/// What a Match line is evaluated against.
pub(crate) struct MatchContext<'a> {
    pub env: &'a Env,
    pub options: &'a Options,
    /// The host this pass matches `Host` lines against.
    pub host: &'a str,
    pub original_host: &'a str,
    pub final_pass: bool,
    /// Whether `exec` commands may run (not inside a never-matching Include).
    pub run_exec: bool,
}

/// The outcome of one Match line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MatchResult {
    pub matched: bool,
    /// The line used `final`, which asks for a second pass.
    pub wants_final: bool,
}

/// Evaluates the criteria after `Match`.
pub(crate) fn evaluate(criteria: &str, ctx: &MatchContext) -> Result<MatchResult, String> {
    let host = match_host(ctx)?;
    let mut result = true;
    let mut wants_final = false;
    let mut attributes = 0;
    let mut rest = Some(criteria);
    while let Some((token, after)) = rest.and_then(strdelim) {
        rest = after;
        if token.is_empty() || token.starts_with('#') {
            break;
        }
        let (negate, attrib) = match token.strip_prefix('!') {
            Some(a) => (true, a.to_ascii_lowercase()),
            None => (false, token.to_ascii_lowercase()),
        };
        if attrib == "all" {
            let next = rest.and_then(strdelim).map(|(t, _)| t);
            if attributes > 1 || next.is_some_and(|t| !t.is_empty() && !t.starts_with('#')) {
                return Err(format!(
                    "'{token}' cannot be combined with other Match attributes"
                ));
            }
            return Ok(MatchResult {
                matched: result && !negate,
                wants_final,
            });
        }
        attributes += 1;
        if attrib == "canonical" || attrib == "final" {
            wants_final |= attrib == "final";
            // Both are true only on the pass after canonicalisation.
            if ctx.final_pass == negate {
                result = false;
            }
            continue;
        }
        let arg = match rest.and_then(strdelim) {
            Some((a, after)) if !a.is_empty() && !a.starts_with('#') => {
                rest = after;
                a
            }
            _ => return Err(format!("missing Match criteria for {attrib}")),
        };
        let matched = match attrib.as_str() {
            "host" => match_hostname(&host, &arg) == ListMatch::Positive,
            "originalhost" => match_hostname(ctx.original_host, &arg) == ListMatch::Positive,
            "user" => match_pattern_list(&remote_user(ctx), &arg, false) == ListMatch::Positive,
            "localuser" => {
                match_pattern_list(&ctx.env.local_user, &arg, false) == ListMatch::Positive
            }
            "exec" if !result || !ctx.run_exec => continue,
            "exec" => run_exec(&arg, &host, ctx)?,
            _ => return Err(format!("unsupported Match attribute {attrib}")),
        };
        if matched == negate {
            result = false;
        }
    }
    if attributes == 0 {
        return Err("one or more attributes required for Match".to_string());
    }
    Ok(MatchResult {
        matched: result,
        wants_final,
    })
}

/// The host `Match host` compares: once HostName is set, its value (with
/// %h expanded) rather than the name given.
fn match_host(ctx: &MatchContext) -> Result<String, String> {
    match ctx.options.get("hostname") {
        Some(h) if ctx.final_pass => Ok(h.to_string()),
        Some(h) => percent_expand(h, &[('h', ctx.host)], false),
        None => Ok(ctx.host.to_string()),
    }
}

fn remote_user(ctx: &MatchContext) -> String {
    ctx.options
        .get("user")
        .map_or_else(|| ctx.env.local_user.clone(), str::to_string)
}

/// The `%` tokens available to `Match exec`, from the options so far.
fn exec_tokens(host: &str, ctx: &MatchContext) -> Tokens {
    Tokens {
        host: host.to_string(),
        original_host: ctx.original_host.to_string(),
        port: ctx.options.get("port").unwrap_or("22").to_string(),
        remote_user: remote_user(ctx),
        local_user: ctx.env.local_user.clone(),
        home: ctx.env.home.clone(),
        local_hostname: ctx.env.this_host.clone(),
        uid: ctx.env.uid_string(),
        key_alias: ctx.options.get("hostkeyalias").unwrap_or(host).to_string(),
    }
}

/// ssh_config(5) exec: "the specified command is executed under the user's
/// shell. If the command returns a zero exit status then the condition is
/// considered true." Output goes nowhere, like ssh's.
/// A cancelled `stop` kills the command (its whole process group) and fails the match.
fn run_exec(command: &str, host: &str, ctx: &MatchContext) -> Result<bool, String> {
    let command = exec_tokens(host, ctx).expand_all(command, false)?;
    let mut cmd = shell_command(&command);
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    // a group of its own lets a stop kill what the shell started too; not under a terminal,
    // where the command may prompt on it (a background group would be stopped by SIGTTIN)
    // and Ctrl-C must still reach it
    #[cfg(unix)]
    let grouped = ctx.env.stop.is_some() && std::fs::File::open("/dev/tty").is_err();
    #[cfg(not(unix))]
    let grouped = false;
    #[cfg(unix)]
    if grouped {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(|e| format!("match exec '{command}' error: {e}"))?;
    let status = match &ctx.env.stop {
        None => child.wait(),
        Some(stop) => {
            let mut pause = std::time::Duration::from_millis(1);
            loop {
                if let Some(s) = child.try_wait().map_err(|e| format!("match exec '{command}' error: {e}"))? {
                    break Ok(s);
                }
                if stop.is_cancelled() {
                    kill_tree(&mut child, grouped);
                    return Err(format!("match exec '{command}' was stopped: the connect was given up while it ran"));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(20));
            }
        }
    }
    .map_err(|e| format!("match exec '{command}' error: {e}"))?;
    match status.code() {
        Some(code) => Ok(code == 0),
        None => Err(format!("match exec '{command}' exited abnormally")),
    }
}

fn kill_tree(child: &mut std::process::Child, grouped: bool) {
    #[cfg(unix)]
    if let (true, Ok(pid)) = (grouped, i32::try_from(child.id())) {
        // the shell's children too: it leads its own process group
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(unix)]
fn shell_command(command: &str) -> Command {
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".to_string());
    let mut cmd = Command::new(shell);
    cmd.arg("-c").arg(command);
    cmd
}

#[cfg(not(unix))]
fn shell_command(command: &str) -> Command {
    let mut cmd = Command::new("cmd");
    cmd.arg("/C").arg(command);
    cmd
}
