//! Turning collected options into the resolved configuration: defaults for
//! what was not obtained, algorithm lists, and token expansion in the
//! keywords ssh expands.

use std::collections::BTreeMap;

use super::algorithms::assemble;
use super::expand::{tilde_expand, Tokens};
use super::forward::{Forward, ForwardKind};
use super::jump::JumpSetting;
use super::keywords::AlgClass;
use super::options::Options;
use super::resolve::Env;
use super::{ConfigError, ResolvedConfig};

/// Defaults `ssh -G` prints for keywords that were not set (OpenSSH 9.2).
const DEFAULTS: &[(&str, &str)] = &[
    ("addressfamily", "any"),
    ("batchmode", "no"),
    ("canonicalizefallbacklocal", "yes"),
    ("canonicalizehostname", "false"),
    ("canonicalizemaxdots", "1"),
    ("checkhostip", "no"),
    ("clearallforwardings", "no"),
    ("compression", "no"),
    ("connectionattempts", "1"),
    ("connecttimeout", "none"),
    ("controlmaster", "false"),
    ("controlpersist", "no"),
    ("exitonforwardfailure", "no"),
    ("fingerprinthash", "SHA256"),
    ("forwardagent", "no"),
    ("forwardx11", "no"),
    ("gatewayports", "no"),
    ("hashknownhosts", "no"),
    ("hostbasedauthentication", "no"),
    ("identitiesonly", "no"),
    ("kbdinteractiveauthentication", "yes"),
    ("loglevel", "INFO"),
    ("numberofpasswordprompts", "3"),
    ("passwordauthentication", "yes"),
    ("permitlocalcommand", "no"),
    ("pubkeyauthentication", "true"),
    ("requesttty", "auto"),
    ("serveralivecountmax", "3"),
    ("serveraliveinterval", "0"),
    ("stricthostkeychecking", "ask"),
    ("syslogfacility", "USER"),
    ("tcpkeepalive", "yes"),
];

/// ssh_config(5) IdentityFile: "The default is ~/.ssh/id_rsa,
/// ~/.ssh/id_ecdsa, ~/.ssh/id_ecdsa_sk, ~/.ssh/id_ed25519,
/// ~/.ssh/id_ed25519_sk and ~/.ssh/id_dsa" (9.2 also tries id_xmss).
const DEFAULT_IDENTITIES: &[&str] = &[
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
];

/// Keywords whose value "none" means "not set" (ssh clears them).
const CLEARED_BY_NONE: &[&str] = &[
    "localcommand",
    "remotecommand",
    "proxycommand",
    "controlpath",
    "revokedhostkeys",
    "pkcs11provider",
    "securitykeyprovider",
    "knownhostscommand",
];

const ALGORITHM_KEYS: &[(&str, AlgClass)] = &[
    ("ciphers", AlgClass::Cipher),
    ("macs", AlgClass::Mac),
    ("kexalgorithms", AlgClass::Kex),
    ("hostkeyalgorithms", AlgClass::Key),
    ("pubkeyacceptedalgorithms", AlgClass::Key),
    ("hostbasedacceptedalgorithms", AlgClass::Key),
    ("casignaturealgorithms", AlgClass::Signature),
];

fn error(message: String) -> ConfigError {
    ConfigError {
        message,
        file: None,
        line: None,
    }
}

pub(crate) fn finish(
    options: Options,
    env: &Env,
    host: &str,
    hostname: &str,
) -> Result<ResolvedConfig, ConfigError> {
    let mut values: BTreeMap<String, Vec<String>> = options
        .values
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    for (key, value) in DEFAULTS {
        values
            .entry(key.to_string())
            .or_insert_with(|| vec![value.to_string()]);
    }
    let user = options
        .get("user")
        .map_or_else(|| env.local_user.clone(), str::to_string);
    let port = options.get("port").unwrap_or("22").to_string();
    let key_alias = options.get("hostkeyalias").map(str::to_ascii_lowercase);
    let tokens = Tokens {
        host: hostname.to_string(),
        original_host: host.to_string(),
        port: port.clone(),
        remote_user: user.clone(),
        local_user: env.local_user.clone(),
        home: env.home.clone(),
        local_hostname: env.this_host.clone(),
        uid: env.uid_string(),
        key_alias: key_alias.clone().unwrap_or_else(|| host.to_string()),
    };
    values.insert("hostname".into(), vec![hostname.to_string()]);
    values.insert("user".into(), vec![user]);
    values.insert("port".into(), vec![port]);
    if let Some(alias) = key_alias {
        values.insert("hostkeyalias".into(), vec![alias]);
    }
    for key in CLEARED_BY_NONE {
        if values
            .get(*key)
            .and_then(|v| v.first())
            .is_some_and(|v| v.eq_ignore_ascii_case("none"))
        {
            values.remove(*key);
        }
    }
    set_jump(&mut values, &options, hostname)?;
    set_algorithms(&mut values, env)?;
    set_files(&mut values, &options, env, &tokens)?;
    set_paths(&mut values, env, &tokens)?;
    let forwards = finish_forwards(&options, &values, &tokens)?;
    for (key, kind, list) in [
        ("localforward", ForwardKind::Local, &forwards.0),
        ("remoteforward", ForwardKind::Remote, &forwards.1),
        ("dynamicforward", ForwardKind::Dynamic, &forwards.2),
    ] {
        if !list.is_empty() {
            values.insert(key.into(), list.iter().map(|f| f.render(kind)).collect());
        }
    }
    if !options.send_env.is_empty() {
        values.insert("sendenv".into(), options.send_env.clone());
    }
    Ok(ResolvedConfig {
        values,
        tokens,
        local_forwards: forwards.0,
        remote_forwards: forwards.1,
        dynamic_forwards: forwards.2,
    })
}

/// ProxyJump, unless `none`. Jumping through the destination itself (same
/// host, port and user) could only loop, so ssh refuses it.
fn set_jump(
    values: &mut BTreeMap<String, Vec<String>>,
    options: &Options,
    hostname: &str,
) -> Result<(), ConfigError> {
    let Some(JumpSetting::Hop(jump)) = &options.jump else {
        return Ok(());
    };
    let first = |key: &str| {
        values
            .get(key)
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default()
    };
    let jump_port = jump
        .port
        .map_or_else(|| "22".to_string(), |p| p.to_string());
    let jump_user = jump.user.clone().unwrap_or_else(|| first("user"));
    if jump.host == hostname && jump_port == first("port") && jump_user == first("user") {
        return Err(error(format!("jumphost loop via {}", jump.host)));
    }
    values.remove("proxycommand");
    values.insert("proxyjump".into(), vec![jump.render()]);
    Ok(())
}

fn set_algorithms(
    values: &mut BTreeMap<String, Vec<String>>,
    env: &Env,
) -> Result<(), ConfigError> {
    for (key, class) in ALGORITHM_KEYS {
        let spec = values.get(*key).and_then(|v| v.first()).cloned();
        let list = assemble(spec.as_deref(), env.algorithms.class(*class))
            .map_err(|m| error(format!("{key}: {m}")))?;
        values.insert(key.to_string(), vec![list.join(",")]);
    }
    Ok(())
}

/// IdentityFile and CertificateFile are expanded as ssh does when it loads
/// them: `~`, then `%` tokens and `${VAR}`. `IdentityFile none` loads nothing.
fn set_files(
    values: &mut BTreeMap<String, Vec<String>>,
    options: &Options,
    env: &Env,
    tokens: &Tokens,
) -> Result<(), ConfigError> {
    let identities: Vec<String> = if options.identity_files.is_empty() {
        DEFAULT_IDENTITIES.iter().map(|s| s.to_string()).collect()
    } else {
        options
            .identity_files
            .iter()
            .map(|(f, _)| f.clone())
            .collect()
    };
    let certificates: Vec<String> = options
        .certificate_files
        .iter()
        .map(|(f, _)| f.clone())
        .collect();
    for (key, files) in [
        ("identityfile", identities),
        ("certificatefile", certificates),
    ] {
        let expanded = files
            .iter()
            .filter(|f| !f.eq_ignore_ascii_case("none"))
            .map(|f| expand_path(f, env, tokens, true))
            .collect::<Result<Vec<_>, _>>()?;
        values.remove(key);
        if !expanded.is_empty() {
            values.insert(key.into(), expanded);
        }
    }
    Ok(())
}

fn expand_path(
    path: &str,
    env: &Env,
    tokens: &Tokens,
    percent: bool,
) -> Result<String, ConfigError> {
    let path = tilde_expand(path, &env.home).map_err(error)?;
    if !percent {
        return Ok(path);
    }
    tokens.expand_all(&path, true).map_err(error)
}

/// Known-hosts files, ControlPath, IdentityAgent, ForwardAgent and
/// RemoteCommand, expanded as `ssh -G` shows them.
fn set_paths(
    values: &mut BTreeMap<String, Vec<String>>,
    env: &Env,
    tokens: &Tokens,
) -> Result<(), ConfigError> {
    let user_files = values
        .remove("userknownhostsfile")
        .unwrap_or_else(|| vec!["~/.ssh/known_hosts".into(), "~/.ssh/known_hosts2".into()]);
    let global_files = values.remove("globalknownhostsfile").unwrap_or_else(|| {
        vec![
            "/etc/ssh/ssh_known_hosts".into(),
            "/etc/ssh/ssh_known_hosts2".into(),
        ]
    });
    let user_files = expand_list(&user_files, env, tokens, true)?;
    let global_files = expand_list(&global_files, env, tokens, false)?;
    values.insert("userknownhostsfile".into(), user_files);
    values.insert("globalknownhostsfile".into(), global_files);
    for key in ["controlpath", "identityagent"] {
        if let Some(v) = values.get_mut(key).and_then(|v| v.first_mut()) {
            *v = expand_path(v, env, tokens, true)?;
        }
    }
    if let Some(v) = values.get_mut("forwardagent").and_then(|v| v.first_mut()) {
        if v != "yes" && v != "no" {
            *v = expand_path(v, env, tokens, true)?;
        }
    }
    if let Some(v) = values.get_mut("remotecommand").and_then(|v| v.first_mut()) {
        *v = tokens.expand_all(v, false).map_err(error)?;
    }
    Ok(())
}

fn expand_list(
    files: &[String],
    env: &Env,
    tokens: &Tokens,
    percent: bool,
) -> Result<Vec<String>, ConfigError> {
    if files
        .first()
        .is_some_and(|f| f.eq_ignore_ascii_case("none"))
    {
        return Ok(vec!["none".into()]);
    }
    files
        .iter()
        .map(|f| expand_path(f, env, tokens, percent))
        .collect()
}

type ForwardLists = (Vec<Forward>, Vec<Forward>, Vec<Forward>);

/// ssh_config(5) ClearAllForwardings: "Specifies that all local, remote,
/// and dynamic port forwardings specified in the configuration files or on
/// the command line be cleared." Socket paths get `%` tokens expanded.
fn finish_forwards(
    options: &Options,
    values: &BTreeMap<String, Vec<String>>,
    tokens: &Tokens,
) -> Result<ForwardLists, ConfigError> {
    if values
        .get("clearallforwardings")
        .and_then(|v| v.first())
        .is_some_and(|v| v == "yes")
    {
        return Ok((Vec::new(), Vec::new(), Vec::new()));
    }
    let expand = |list: &[Forward]| -> Result<Vec<Forward>, ConfigError> {
        list.iter()
            .map(|f| f.map_paths(|p| tokens.expand_all(p, false)).map_err(error))
            .collect()
    };
    Ok((
        expand(&options.local_forwards)?,
        expand(&options.remote_forwards)?,
        options.dynamic_forwards.clone(),
    ))
}
