//! The authentication chain: every configured method is tried in order; the server's
//! "methods that can continue" list steers it, partial success (RFC 4252 §5.1) goes on
//! to the next method, and the final error lists every attempt and what the server allows.

use std::sync::Arc;

use russh::client::{AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use russh::MethodKind;

use crate::client::ClientHandler;
use crate::error::{AuthAttempt, Error, Result};
use crate::keys::{self, KeyError};
use crate::options::{AuthMethod, KbdPrompt, KeySource, KeyboardInteractive, Secret, Trace};

/// A method ready to run: keys are loaded (and decrypted) before the network is touched.
pub(crate) enum Prepared {
    PublicKey { key: Arc<PrivateKey>, label: String },
    BadKey { label: String, error: KeyError },
    Password(Secret),
    KeyboardInteractive(Arc<dyn KeyboardInteractive>),
}

fn key_label(source: &KeySource) -> String {
    match source {
        KeySource::Path(p) => p.display().to_string(),
        KeySource::Data(_) => "privateKey".to_string(),
    }
}

/// Loads every key. A key that cannot be read or parsed is a ConfigError now; a key
/// that needs another passphrase is kept as a failed attempt so the other methods run.
pub(crate) fn prepare(methods: &[AuthMethod]) -> Result<Vec<Prepared>> {
    let mut out = Vec::new();
    for m in methods {
        out.push(match m {
            AuthMethod::PublicKey { source, passphrase } => {
                let label = key_label(source);
                let option = match source {
                    KeySource::Path(_) => "privateKeyPath",
                    KeySource::Data(_) => "privateKey",
                };
                let data = match source {
                    KeySource::Data(d) => d.as_ref().clone(),
                    KeySource::Path(p) => std::fs::read(p).map_err(|e| Error::Config {
                        option: Some(option.into()),
                        file: Some(p.clone()),
                        line: None,
                        message: format!("cannot read private key {}: {e}", p.display()),
                    })?,
                };
                match keys::load_private_key(&data, passphrase.as_ref().map(Secret::expose)) {
                    Ok(key) => Prepared::PublicKey { key: Arc::new(key), label },
                    Err(e @ (KeyError::WrongPassphrase | KeyError::PassphraseRequired)) => Prepared::BadKey { label, error: e },
                    Err(e) => {
                        return Err(Error::Config {
                            option: Some(option.into()),
                            file: match source {
                                KeySource::Path(p) => Some(p.clone()),
                                KeySource::Data(_) => None,
                            },
                            line: None,
                            message: format!("{option}: {e}"),
                        })
                    }
                }
            }
            AuthMethod::Password(p) => Prepared::Password(p.clone()),
            AuthMethod::KeyboardInteractive(cb) => Prepared::KeyboardInteractive(Arc::clone(cb)),
        });
    }
    Ok(out)
}

fn method_name(p: &Prepared) -> &'static str {
    match p {
        Prepared::PublicKey { .. } | Prepared::BadKey { .. } => "publickey",
        Prepared::Password(_) => "password",
        Prepared::KeyboardInteractive(_) => "keyboard-interactive",
    }
}

fn kind_name(k: &MethodKind) -> String {
    String::from(k)
}

struct Chain {
    attempts: Vec<AuthAttempt>,
    allowed: Option<Vec<String>>,
    trace: Option<Trace>,
}

impl Chain {
    fn record(&mut self, method: &str, outcome: &str, detail: Option<String>) {
        Trace::emit(&self.trace, || match &detail {
            Some(d) => format!("auth {method} ({d}): {outcome}"),
            None => format!("auth {method}: {outcome}"),
        });
        self.attempts.push(AuthAttempt { method: method.into(), outcome: outcome.into(), detail });
    }

    /// Returns true on success; updates the allowed list on failure.
    fn result(&mut self, r: AuthResult, method: &str, detail: Option<String>) -> bool {
        match r {
            AuthResult::Success => {
                self.record(method, "accepted", detail);
                true
            }
            AuthResult::Failure { remaining_methods, partial_success } => {
                self.record(method, if partial_success { "partial success" } else { "rejected" }, detail);
                self.allowed = Some(remaining_methods.iter().map(kind_name).collect());
                if let Some(a) = &self.allowed {
                    Trace::emit(&self.trace, || format!("server allows: {}", a.join(", ")));
                }
                false
            }
        }
    }

    fn allows(&self, method: &str) -> bool {
        self.allowed.as_ref().is_none_or(|a| a.iter().any(|m| m == method))
    }
}

pub(crate) async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    methods: Vec<Prepared>,
    target: &str,
    trace: &Option<Trace>,
) -> Result<()> {
    let mut chain = Chain { attempts: Vec::new(), allowed: None, trace: trace.clone() };
    if methods.is_empty() {
        // Some servers (and our own, configured so) let "none" in; otherwise say what to configure.
        let r = handle.authenticate_none(user).await.map_err(Error::from)?;
        if chain.result(r, "none", None) {
            return Ok(());
        }
        return Err(auth_error(&chain, user, target, "no authentication method was configured (give privateKey, privateKeyPath, password, agent or keyboardInteractive)"));
    }
    for m in &methods {
        let name = method_name(m);
        if !chain.allows(name) {
            chain.record(name, "not allowed by the server", None);
            continue;
        }
        let ok = match m {
            Prepared::BadKey { label, error } => {
                let outcome = match error {
                    KeyError::WrongPassphrase => "wrong passphrase",
                    _ => "key is encrypted and no passphrase was given",
                };
                chain.record(name, outcome, Some(label.clone()));
                false
            }
            Prepared::PublicKey { key, label } => {
                let hash = if key.algorithm().is_rsa() {
                    handle.best_supported_rsa_hash().await.map_err(Error::from)?.flatten()
                } else {
                    None
                };
                let detail = Some(format!("{} {}", keys::fingerprint(key.public_key()), label));
                let r = handle
                    .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::clone(key), hash))
                    .await
                    .map_err(Error::from)?;
                chain.result(r, name, detail)
            }
            Prepared::Password(p) => {
                let r = handle.authenticate_password(user, p.expose()).await.map_err(Error::from)?;
                chain.result(r, name, None)
            }
            Prepared::KeyboardInteractive(cb) => keyboard_interactive(handle, user, cb.as_ref(), &mut chain).await?,
        };
        if ok {
            return Ok(());
        }
    }
    Err(auth_error(&chain, user, target, "all configured authentication methods failed"))
}

/// Runs rounds of prompts (RFC 4256) until the server decides. Bounded so a server that
/// keeps asking cannot loop forever.
async fn keyboard_interactive(handle: &mut Handle<ClientHandler>, user: &str, cb: &dyn KeyboardInteractive, chain: &mut Chain) -> Result<bool> {
    const MAX_ROUNDS: usize = 32;
    let mut reply = handle.authenticate_keyboard_interactive_start(user, None).await.map_err(Error::from)?;
    for _ in 0..MAX_ROUNDS {
        match reply {
            KeyboardInteractiveAuthResponse::Success => {
                chain.record("keyboard-interactive", "accepted", None);
                return Ok(true);
            }
            KeyboardInteractiveAuthResponse::Failure { remaining_methods, partial_success } => {
                chain.record("keyboard-interactive", if partial_success { "partial success" } else { "rejected" }, None);
                chain.allowed = Some(remaining_methods.iter().map(kind_name).collect());
                return Ok(false);
            }
            KeyboardInteractiveAuthResponse::InfoRequest { name, instructions, prompts } => {
                let prompts: Vec<KbdPrompt> = prompts.into_iter().map(|p| KbdPrompt { prompt: p.prompt, echo: p.echo }).collect();
                let n = prompts.len();
                let answers = match cb.respond(name, instructions, prompts).await {
                    Some(a) if a.len() == n => a,
                    Some(a) => {
                        return Err(Error::config(
                            "keyboardInteractive",
                            format!("the callback returned {} answers for {n} prompts", a.len()),
                        ))
                    }
                    None => {
                        chain.record("keyboard-interactive", "cancelled by the callback", None);
                        return Ok(false);
                    }
                };
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers.iter().map(|s| s.expose().to_string()).collect())
                    .await
                    .map_err(Error::from)?;
            }
        }
    }
    chain.record("keyboard-interactive", "too many prompt rounds", None);
    Ok(false)
}

fn auth_error(chain: &Chain, user: &str, target: &str, why: &str) -> Error {
    let tried = chain
        .attempts
        .iter()
        .map(|a| match &a.detail {
            Some(d) => format!("{} ({d}): {}", a.method, a.outcome),
            None => format!("{}: {}", a.method, a.outcome),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let allowed = chain.allowed.clone().unwrap_or_default();
    let mut message = format!("authentication failed for {user}@{target}: {why}");
    if !tried.is_empty() {
        message.push_str(&format!(" [{tried}]"));
    }
    if !allowed.is_empty() {
        message.push_str(&format!("; the server allows: {}", allowed.join(", ")));
    }
    Error::Auth { attempts: chain.attempts.clone(), allowed, message }
}
