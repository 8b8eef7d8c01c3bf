//! The authentication chain: every configured method is tried in order; the server's
//! "methods that can continue" list steers it, partial success (RFC 4252 §5.1) goes on
//! to the next method, and the final error lists every attempt and what the server allows.

use std::sync::Arc;

use std::path::PathBuf;

use russh::client::{AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{Certificate, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::MethodKind;

use crate::client::ClientHandler;
use crate::error::{AuthAttempt, Error, Result};
use crate::keys::{self, KeyError};
use crate::options::{AuthMethod, KbdPrompt, KeySource, KeyboardInteractive, Secret, Trace};

/// A method ready to run: keys are loaded (and decrypted) before the network is touched.
pub(crate) enum Prepared {
    PublicKey { key: Arc<PrivateKey>, label: String, certificate: Option<Certificate> },
    Agent { socket: PathBuf, share: AgentShare },
    /// A key that could not be used, and the outcome its attempt reports.
    BadKey { label: String, outcome: String },
    Password(Secret),
    KeyboardInteractive(Arc<dyn KeyboardInteractive>),
}

/// What the agent is asked for, decided from the other methods, as ssh decides it from its
/// identity list.
#[derive(Clone, Default)]
pub(crate) struct AgentShare {
    /// Certificates no key loaded here certifies; the flag says the certificate was given, so
    /// an agent without its key is worth reporting.
    certificates: Vec<(Certificate, bool)>,
    /// The public halves of the keys listed (key files, `.pub` files): their agent copies go first.
    listed: Vec<Listed>,
    /// IdentitiesOnly: nothing but the listed keys' copies and the certificates.
    only: bool,
    /// Keys loaded here and tried plain: offering the agent's copy again would only use up
    /// one of the server's MaxAuthTries.
    loaded: Vec<PublicKey>,
}

#[derive(Clone)]
struct Listed {
    key: PublicKey,
    label: String,
    /// a `.pub` file: the agent is the only one who can sign for it
    public_only: bool,
}

/// Agent identities tried at most: OpenSSH servers drop the connection after MaxAuthTries
/// (default 6) failures, and the other configured methods need their turn too.
const MAX_AGENT_IDENTITIES: usize = 5;

fn certificate_option(source: &KeySource) -> &'static str {
    match source {
        KeySource::Path(_) => "certificatePath",
        KeySource::Data(_) => "certificate",
    }
}

fn load_certificate(source: &KeySource) -> Result<Certificate> {
    let option = certificate_option(source);
    let file = match source {
        KeySource::Path(p) => Some(p.clone()),
        KeySource::Data(_) => None,
    };
    let data = match source {
        KeySource::Data(d) => d.as_ref().clone(),
        KeySource::Path(p) => crate::files::read_limited(p, crate::files::KEY_FILE_LIMIT).map_err(|e| Error::Config {
            option: Some(option.into()),
            file: file.clone(),
            line: None,
            message: format!("cannot read certificate {}: {e}", p.display()),
        })?,
    };
    let text = String::from_utf8(data).map_err(|_| Error::Config {
        option: Some(option.into()),
        file: file.clone(),
        line: None,
        message: format!("{option}: not an OpenSSH certificate (not text)"),
    })?;
    Certificate::from_openssh(text.trim()).map_err(|e| Error::Config {
        option: Some(option.into()),
        file,
        line: None,
        message: format!("{option}: not an OpenSSH user certificate ({e}); expected the contents of a *-cert.pub file"),
    })
}

fn key_label(source: &KeySource) -> String {
    match source {
        KeySource::Path(p) => p.display().to_string(),
        KeySource::Data(_) => "privateKey".to_string(),
    }
}

/// Every certificate listed anywhere, once: ssh pairs each CertificateFile with whichever
/// identity it certifies, a key file's or the agent's.
struct Pooled {
    cert: Certificate,
    /// given in the options rather than found, so it must certify one of the keys
    given: bool,
    source: KeySource,
    /// certifies one of the keys here, loaded or not
    fits: bool,
    /// presented with a key loaded here: the agent has nothing to sign for it
    used: bool,
}

impl Pooled {
    fn certifies(&self, key: &PublicKey) -> bool {
        self.cert.public_key() == key.key_data()
    }
}

fn certificate_pool(methods: &[AuthMethod]) -> Result<Vec<Pooled>> {
    let mut pool: Vec<Pooled> = Vec::new();
    let lists = methods.iter().filter_map(|m| match m {
        AuthMethod::PublicKey { certificates, .. } | AuthMethod::Agent { certificates, .. } => Some(certificates),
        _ => None,
    });
    for c in lists.flatten() {
        let cert = match load_certificate(&c.source) {
            Ok(cert) => cert,
            // ssh skips a certificate file it cannot load and uses the key without it
            Err(_) if c.found => continue,
            Err(e) => return Err(e),
        };
        match pool.iter_mut().find(|p| p.cert == cert) {
            Some(p) if !c.found && !p.given => {
                p.given = true;
                p.source = c.source.clone();
            }
            Some(_) => {}
            None => pool.push(Pooled { cert, given: !c.found, source: c.source.clone(), fits: false, used: false }),
        }
    }
    Ok(pool)
}

/// Loads every key and pairs each certificate with the key it certifies. A key the caller
/// gave that cannot be read or parsed, or a certificate given for none of the keys, is a
/// ConfigError now; a key that needs another passphrase, or an optional key (see
/// [`AuthMethod::PublicKey`]) that cannot be loaded, is kept as a failed attempt so the
/// other methods run.
pub(crate) fn prepare(methods: &[AuthMethod]) -> Result<Vec<Prepared>> {
    let mut pool = certificate_pool(methods)?;
    let mut out = Vec::new();
    let mut given_keys = Vec::new();
    let mut share = AgentShare::default();
    let agent = methods.iter().any(|m| matches!(m, AuthMethod::Agent { .. }));
    for m in methods {
        match m {
            AuthMethod::Agent { socket, identities_only, .. } => {
                out.push(Prepared::Agent { socket: socket.clone(), share: AgentShare { only: *identities_only, ..AgentShare::default() } })
            }
            AuthMethod::PublicKey { source, passphrase, optional, .. } => {
                if !optional {
                    given_keys.push(key_label(source));
                }
                let key = KeyToPrepare { source, passphrase: passphrase.as_ref(), optional: *optional, agent };
                prepare_key(&key, &mut pool, &mut share, &mut out)?;
            }
            AuthMethod::Password(p) => out.push(Prepared::Password(p.clone())),
            AuthMethod::KeyboardInteractive(cb) => out.push(Prepared::KeyboardInteractive(Arc::clone(cb))),
        }
    }
    // certificates given with keys must be for them (of several, one fitting is enough: the
    // others are left out as ssh leaves out a CertificateFile of a key it lacks); given
    // alone, they are for the agent's keys
    let misfit = (!given_keys.is_empty() || !agent) && !pool.iter().any(|p| p.given && p.fits);
    if let Some(p) = pool.iter().find(|p| p.given && !p.fits && misfit) {
        let option = certificate_option(&p.source);
        let fingerprint = keys::fingerprint(&PublicKey::from(p.cert.public_key().clone()));
        let keys = if given_keys.is_empty() { "no key was given and no agent is configured".to_string() } else { format!("none of the keys given: {}", given_keys.join(", ")) };
        return Err(Error::Config {
            option: Some(option.into()),
            file: match &p.source {
                KeySource::Path(f) => Some(f.clone()),
                KeySource::Data(_) => None,
            },
            line: None,
            message: format!("{option}: the certificate {:?} is for another key ({fingerprint}) than the ones here ({keys}); give the private key it certifies", p.cert.key_id()),
        });
    }
    share.certificates = pool.into_iter().filter(|p| !p.used).map(|p| (p.cert, p.given)).collect();
    for p in out.iter_mut() {
        if let Prepared::Agent { share: own, .. } = p {
            *own = AgentShare { only: own.only, ..share.clone() };
        }
    }
    Ok(out)
}

struct KeyToPrepare<'a> {
    source: &'a KeySource,
    passphrase: Option<&'a Secret>,
    optional: bool,
    /// an agent method is configured, which may sign for a key that is not loaded here
    agent: bool,
}

/// The public key in `<path>.pub`, for a key file that keeps its own encrypted (PEM).
fn public_beside(source: &KeySource) -> Option<PublicKey> {
    let KeySource::Path(p) = source else { return None };
    let mut name = p.clone().into_os_string();
    name.push(".pub");
    let data = crate::files::read_limited(std::path::Path::new(&name), crate::files::KEY_FILE_LIMIT).ok()?;
    keys::public_half(&data)
}

fn prepare_key(k: &KeyToPrepare<'_>, pool: &mut [Pooled], share: &mut AgentShare, out: &mut Vec<Prepared>) -> Result<()> {
    let (source, optional) = (k.source, k.optional);
    let label = key_label(source);
    let (option, file) = match source {
        KeySource::Path(p) => ("privateKeyPath", Some(p.clone())),
        KeySource::Data(_) => ("privateKey", None),
    };
    // a found key that cannot be loaded is skipped as ssh skips it; a given one is a mistake to report
    let unusable = |out: &mut Vec<Prepared>, label: String, outcome: String, message: String| {
        if optional {
            out.push(Prepared::BadKey { label, outcome });
            Ok(())
        } else {
            Err(Error::Config { option: Some(option.into()), file: file.clone(), line: None, message })
        }
    };
    let data = match source {
        KeySource::Data(d) => d.as_ref().clone(),
        KeySource::Path(p) => match crate::files::read_limited(p, crate::files::KEY_FILE_LIMIT) {
            Ok(data) => data,
            Err(e) => return unusable(out, label, format!("cannot read the key: {e}"), format!("cannot read private key {}: {e}", p.display())),
        },
    };
    let key = match keys::load_private_key(&data, k.passphrase.map(Secret::expose)) {
        Ok(key) => key,
        Err(e) => {
            // a key that stays locked still tells which certificates are its own, and which
            // agent key is its copy (the agent may sign for both)
            let in_file = keys::public_half(&data);
            let public = in_file.clone().or_else(|| public_beside(source));
            if let Some(public) = &public {
                pool.iter_mut().filter(|p| p.certifies(public)).for_each(|p| p.fits = true);
                share.listed.push(Listed { key: public.clone(), label: label.clone(), public_only: false });
            }
            return match e {
                KeyError::WrongPassphrase => {
                    out.push(Prepared::BadKey { label, outcome: "wrong passphrase".into() });
                    Ok(())
                }
                KeyError::PassphraseRequired => {
                    out.push(Prepared::BadKey { label, outcome: "key is encrypted and no passphrase was given".into() });
                    Ok(())
                }
                // a found `.pub` file names the agent's copy of the key, as with ssh (a hardware
                // token's or a password manager's agent holds the private half)
                _ if optional && in_file.is_some() => {
                    if let Some(l) = share.listed.last_mut() {
                        l.public_only = true;
                    }
                    if !k.agent {
                        out.push(Prepared::BadKey { label, outcome: "not loaded: a public key, and no agent is configured to sign with it".into() });
                    }
                    Ok(())
                }
                e => unusable(out, label, format!("not loaded: {e}"), format!("{option}: {e}")),
            };
        }
    };
    let key = Arc::new(key);
    share.listed.push(Listed { key: key.public_key().clone(), label: label.clone(), public_only: false });
    let mut certified = false;
    for p in pool.iter_mut().filter(|p| p.certifies(key.public_key())) {
        p.fits = true;
        p.used = true;
        certified = true;
        out.push(Prepared::PublicKey { key: Arc::clone(&key), label: label.clone(), certificate: Some(p.cert.clone()) });
    }
    if !certified {
        share.loaded.push(key.public_key().clone());
        out.push(Prepared::PublicKey { key, label, certificate: None });
    }
    Ok(())
}

fn method_name(p: &Prepared) -> &'static str {
    match p {
        Prepared::PublicKey { .. } | Prepared::BadKey { .. } | Prepared::Agent { .. } => "publickey",
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
    // In order, each method once; after a partial success the server's list has changed, so
    // the methods tried before it get another turn, as OpenSSH's client starts its list again
    // (AuthenticationMethods password,publickey with a key tried first logs in). A method that
    // earned a partial success, or a key that cannot be opened, is done for good.
    let n = methods.len();
    let mut done = vec![false; n];
    let mut tried = vec![false; n];
    let mut noted = vec![false; n];
    while let Some(i) = (0..n).find(|&i| !done[i] && !tried[i]) {
        tried[i] = true;
        let m = &methods[i];
        let name = method_name(m);
        if !chain.allows(name) {
            if !noted[i] {
                noted[i] = true;
                chain.record(name, "not allowed by the server", None);
            }
            continue;
        }
        let before = chain.attempts.len();
        let ok = match m {
            Prepared::BadKey { label, outcome } => {
                chain.record(name, outcome, Some(label.clone()));
                false
            }
            Prepared::PublicKey { key, label, certificate: None } => {
                let hash = rsa_hash(handle, key.algorithm().is_rsa()).await?;
                let detail = Some(format!("{} {}", keys::fingerprint(key.public_key()), label));
                let r = if key.algorithm().is_rsa() {
                    // russh's own signing would send RSA signatures longer than the modulus
                    // (see keys::sign)
                    let mut signer = LocalSigner(Arc::clone(key));
                    handle.authenticate_publickey_with(user, key.public_key().clone(), hash, &mut signer).await.map_err(signer_error)?
                } else {
                    handle.authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::clone(key), hash)).await.map_err(Error::from)?
                };
                chain.result(r, name, detail)
            }
            Prepared::PublicKey { key, label, certificate: Some(cert) } => {
                let detail = Some(format!("certificate {:?} for {} {}", cert.key_id(), keys::fingerprint(key.public_key()), label));
                // rsa-sha2 certificate names need the hash chosen like for plain keys
                // (russh's OpenSSH-certificate method would offer the SHA-1 name)
                let hash = rsa_hash(handle, key.algorithm().is_rsa()).await?;
                let mut signer = LocalSigner(Arc::clone(key));
                let r = handle.authenticate_certificate_with(user, cert.clone(), hash, &mut signer).await.map_err(|e| Error::Protocol { message: format!("signing failed: {e}") })?;
                chain.result(r, name, detail)
            }
            Prepared::Agent { socket, share } => agent_auth(handle, user, socket, share, &mut chain).await?,
            Prepared::Password(p) => {
                let r = handle.authenticate_password(user, p.expose()).await.map_err(Error::from)?;
                chain.result(r, name, None)
            }
            Prepared::KeyboardInteractive(cb) => keyboard_interactive(handle, user, cb.as_ref(), &mut chain).await?,
        };
        if ok {
            return Ok(());
        }
        if matches!(m, Prepared::BadKey { .. }) {
            done[i] = true;
        } else if chain.attempts[before..].iter().any(|a| a.outcome == "partial success") {
            done[i] = true;
            tried.iter_mut().for_each(|t| *t = false);
        }
    }
    Err(auth_error(&chain, user, target, "all configured authentication methods failed"))
}

fn signer_error(e: russh::AgentAuthError) -> Error {
    match e {
        russh::AgentAuthError::Send(_) => Error::from(russh::Error::SendError),
        russh::AgentAuthError::Key(e) => Error::Protocol { message: format!("signing failed: {e}") },
    }
}

/// Signs with a private key held here.
struct LocalSigner(Arc<PrivateKey>);

impl russh::Signer for LocalSigner {
    type Error = russh::AgentAuthError;

    async fn auth_sign(&mut self, _id: &AgentIdentity, hash: Option<HashAlg>, data: Vec<u8>) -> std::result::Result<Vec<u8>, Self::Error> {
        let sig = keys::sign(&self.0, hash, &data).map_err(|e| russh::AgentAuthError::Key(russh::keys::Error::from(e)))?;
        use russh::keys::ssh_encoding::Encode;
        let mut blob = Vec::new();
        sig.encode(&mut blob).map_err(|e| russh::AgentAuthError::Key(russh::keys::Error::from(russh::keys::ssh_key::Error::from(e))))?;
        // like an agent's answer: the signed data followed by the signature as an SSH string
        let mut out = data;
        out.extend_from_slice(&(blob.len() as u32).to_be_bytes());
        out.extend_from_slice(&blob);
        Ok(out)
    }
}

/// An agent signs with the plain key, never with a certificate (OpenSSH's agent finds keys
/// by their exact type): the certificate only names the key in the request.
struct CertAgent<'a, S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send>(&'a mut AgentClient<S>);

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> russh::Signer for CertAgent<'_, S> {
    type Error = russh::AgentAuthError;

    async fn auth_sign(&mut self, id: &AgentIdentity, hash: Option<HashAlg>, data: Vec<u8>) -> std::result::Result<Vec<u8>, Self::Error> {
        let plain = match id {
            AgentIdentity::Certificate { certificate, comment } => {
                AgentIdentity::PublicKey { key: PublicKey::from(certificate.public_key().clone()), comment: comment.clone() }
            }
            other => other.clone(),
        };
        self.0.sign_request(&plain, hash, data).await.map_err(Into::into)
    }
}

async fn rsa_hash(handle: &Handle<ClientHandler>, is_rsa: bool) -> Result<Option<HashAlg>> {
    if !is_rsa {
        return Ok(None);
    }
    // servers without server-sig-algs (RFC 8308) still take rsa-sha2-256 in practice
    Ok(handle.best_supported_rsa_hash().await.map_err(Error::from)?.flatten().or(Some(HashAlg::Sha256)))
}

/// Tries the agent's identities: the certificates for its keys first, then its copies of the
/// keys listed, then (unless IdentitiesOnly) the others.
async fn agent_auth(handle: &mut Handle<ClientHandler>, user: &str, socket: &std::path::Path, share: &AgentShare, chain: &mut Chain) -> Result<bool> {
    let label = format!("agent {}", socket.display());
    let stream = match crate::agent_socket::connect(socket).await {
        Ok(s) => s,
        Err(_) => {
            chain.record("publickey", "agent not running (cannot connect to its socket)", Some(label));
            return Ok(false);
        }
    };
    let mut agent = AgentClient::connect(stream);
    let identities = match agent.request_identities().await {
        Ok(ids) => ids,
        Err(e) => {
            chain.record("publickey", &format!("agent did not list its keys ({e})"), Some(label));
            return Ok(false);
        }
    };
    let holds = |key: &PublicKey| identities.iter().any(|i| matches!(i, AgentIdentity::PublicKey { key: k, .. } if k.key_data() == key.key_data()));
    // a `.pub` identity file the agent cannot sign for is skipped, as ssh skips it
    for l in share.listed.iter().filter(|l| l.public_only && !holds(&l.key)) {
        chain.record("publickey", "not loaded: the agent does not hold this key", Some(l.label.clone()));
    }
    if identities.is_empty() {
        if !share.only {
            chain.record("publickey", "agent has no keys", Some(label));
        }
        return Ok(false);
    }
    let mut tries: Vec<(Option<Certificate>, PublicKey)> = Vec::new();
    for (cert, given) in &share.certificates {
        let key = PublicKey::from(cert.public_key().clone());
        if holds(&key) {
            tries.push((Some(cert.clone()), key));
        } else if *given {
            chain.record("publickey", "the agent does not hold the key of the certificate", Some(label.clone()));
        }
    }
    let rank = |key: &PublicKey| share.listed.iter().position(|l| l.key.key_data() == key.key_data());
    let mut own: Vec<(Option<usize>, Option<Certificate>, PublicKey)> = Vec::new();
    for id in &identities {
        match id {
            AgentIdentity::PublicKey { key, .. } if !share.loaded.iter().any(|k| k.key_data() == key.key_data()) => own.push((rank(key), None, key.clone())),
            AgentIdentity::Certificate { certificate, .. } if !share.certificates.iter().any(|(c, _)| c == certificate) => {
                let key = PublicKey::from(certificate.public_key().clone());
                own.push((rank(&key), Some(certificate.clone()), key))
            }
            _ => {}
        }
    }
    // the copies of the keys listed first, in their order, as ssh prefers them
    own.sort_by_key(|(r, ..)| r.unwrap_or(usize::MAX));
    tries.extend(own.into_iter().filter(|(r, ..)| r.is_some() || !share.only).map(|(_, c, k)| (c, k)));
    for (cert, key) in tries.into_iter().take(MAX_AGENT_IDENTITIES) {
        if !chain.allows("publickey") {
            break;
        }
        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await?;
        let detail = Some(format!("{}{} from {label}", if cert.is_some() { "certificate for " } else { "" }, keys::fingerprint(&key)));
        let r = match cert {
            Some(c) => handle.authenticate_certificate_with(user, c, hash, &mut CertAgent(&mut agent)).await,
            None => handle.authenticate_publickey_with(user, key, hash, &mut agent).await,
        };
        match r {
            Ok(r) => {
                if chain.result(r, "publickey", detail) {
                    return Ok(true);
                }
            }
            Err(e) => chain.record("publickey", &format!("agent refused to sign ({e})"), detail),
        }
    }
    Ok(false)
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
                        // the server waits for this round's answer before anything else: give
                        // empty answers (the count must match, or OpenSSH drops the connection)
                        // and let it refuse, so the next method can run
                        let mut r = handle
                            .authenticate_keyboard_interactive_respond(vec![String::new(); n])
                            .await
                            .map_err(Error::from)?;
                        for _ in 0..MAX_ROUNDS {
                            match r {
                                KeyboardInteractiveAuthResponse::Success => return Ok(true),
                                KeyboardInteractiveAuthResponse::Failure { remaining_methods, .. } => {
                                    chain.allowed = Some(remaining_methods.iter().map(kind_name).collect());
                                    return Ok(false);
                                }
                                KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                                    r = handle
                                        .authenticate_keyboard_interactive_respond(vec![String::new(); prompts.len()])
                                        .await
                                        .map_err(Error::from)?;
                                }
                            }
                        }
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
