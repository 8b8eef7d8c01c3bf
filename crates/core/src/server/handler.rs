//! The russh server handler of one connection: authentication through the embedder's
//! callbacks (bounded by the connection's authentication deadline), session channels whose
//! bytes go straight into their slots (russh's per-channel queue is never used: its read
//! half is dropped at open), and dispatch of exec / shell / subsystem requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use russh::keys::PublicKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure, ChannelWriteHalf, Pty, Sig};

use super::channel::{ChannelEvent, ServerChannel};
use super::config::{glob_match, MAX_ENV_BYTES, MAX_ENV_VARS};
use super::conn::ConnEntry;
use super::kbd::{Conversation, Step};
use super::listener::ServerInner;
use super::{AuthAttemptKind, AuthRequest, OfferedKey, PtyInfo, SessionKind, SessionStart};
use crate::channel::{signal_name, STDERR, STDOUT};
use crate::error::Error;
use crate::options::Secret;

/// What a session channel set up before it started something.
struct SessionSetup {
    env: Vec<(String, String)>,
    env_bytes: usize,
    pty: Option<PtyInfo>,
    started: bool,
    /// The write half, until the session starts and it moves into its `ServerChannel`.
    tx: Option<ChannelWriteHalf<Msg>>,
}

pub(crate) struct ConnHandler {
    server: Arc<ServerInner>,
    conn: Arc<ConnEntry>,
    deadline: Instant,
    failures: u32,
    /// publickey decisions by fingerprint: the embedder is asked once per key, when it is
    /// offered; the verified request (after the signature check) reuses the answer.
    key_verdicts: HashMap<String, bool>,
    kbd: Option<Conversation>,
    user: String,
    sessions: HashMap<ChannelId, SessionSetup>,
}

fn reject_keep_methods(server: &ServerInner) -> Auth {
    // russh drops a method from the list after one failure unless told otherwise, which would
    // end OpenSSH's usual three password prompts after the first
    Auth::Reject { proceed_with_methods: Some(server.opts.methods()), partial_success: false }
}

fn describe_key(key: &PublicKey) -> OfferedKey {
    OfferedKey {
        algorithm: key.algorithm().as_str().to_string(),
        fingerprint: crate::keys::fingerprint(key),
        public_key: crate::keys::public_key_line(key, ""),
    }
}

impl ConnHandler {
    pub(crate) fn new(server: Arc<ServerInner>, conn: Arc<ConnEntry>) -> Self {
        let deadline = conn.started + server.opts.limits.auth_timeout;
        ConnHandler {
            server,
            conn,
            deadline,
            failures: 0,
            key_verdicts: HashMap::new(),
            kbd: None,
            user: String::new(),
            sessions: HashMap::new(),
        }
    }

    /// Asks the embedder about one attempt, no later than the authentication deadline.
    async fn ask(&self, user: &str, kind: AuthAttemptKind) -> bool {
        let req = AuthRequest { peer: Arc::clone(&self.conn.peer), user: user.to_string(), kind };
        // the authentication deadline, or the callback limit if that comes first
        let left = self.deadline.saturating_duration_since(Instant::now()).min(self.server.opts.limits.callback_timeout);
        match self.server.callbacks() {
            Some(cb) => self.conn.busy_while(tokio::time::timeout(left, cb.auth(req)), Ok(false)).await.unwrap_or(false),
            None => false,
        }
    }

    /// Counts a failure; at the limit the connection is cut (OpenSSH MaxAuthTries).
    fn failed(&mut self) -> Auth {
        self.failures += 1;
        if self.failures == self.server.opts.limits.max_auth_tries {
            // after this rejection has gone out (russh holds it for its constant delay)
            let conn = Arc::clone(&self.conn);
            tokio::spawn(async move {
                tokio::time::sleep(super::config::AUTH_REJECTION_TIME + std::time::Duration::from_millis(100)).await;
                // told why, as sshd tells it (reason 2, its words); cut if it lingers
                conn.disconnect_for(russh::Disconnect::ProtocolError, "Too many authentication failures", std::time::Duration::from_millis(500)).await;
            });
        }
        reject_keep_methods(&self.server)
    }

    /// No more tries: requests that still come in before the cut are refused unasked.
    fn exhausted(&self) -> bool {
        self.failures >= self.server.opts.limits.max_auth_tries
    }

    /// With `none`, every method succeeds: clients that never try "none" get in too.
    fn open_door(&mut self, user: &str) -> Option<Auth> {
        if !self.server.opts.none {
            return None;
        }
        self.user = user.to_string();
        Some(Auth::Accept)
    }

    fn verdict(&mut self, ok: bool, user: &str) -> Auth {
        if ok {
            self.user = user.to_string();
            Auth::Accept
        } else {
            self.failed()
        }
    }

    /// Hands a started session to the embedder (or the built-in SFTP server) and answers the
    /// request with its verdict.
    async fn start(&mut self, id: ChannelId, kind: SessionKind, session: &mut Session) -> Result<(), russh::Error> {
        let ok = self.start_inner(id, kind, session).await;
        if ok {
            session.channel_success(id)
        } else {
            session.channel_failure(id)
        }
    }

    async fn start_inner(&mut self, id: ChannelId, kind: SessionKind, session: &mut Session) -> bool {
        let Some(setup) = self.sessions.get_mut(&id) else { return false };
        if setup.started || self.server.is_closing() {
            return false;
        }
        let Some(slot) = self.conn.slot(id.number()) else { return false };
        let opts = &self.server.opts;
        let wanted = match &kind {
            SessionKind::Exec(_) => opts.exec,
            SessionKind::Shell => opts.shell,
            SessionKind::Subsystem(name) => opts.subsystems.iter().any(|s| s == name) || (name == "sftp" && self.server.sftp_root.is_some()),
        };
        if !wanted {
            return false;
        }
        let Some(tx) = setup.tx.take() else { return false };
        setup.started = true;
        let start = SessionStart {
            peer: Arc::clone(&self.conn.peer),
            user: self.user.clone(),
            kind: kind.clone(),
            env: std::mem::take(&mut setup.env),
            pty: setup.pty.clone(),
        };
        let channel = ServerChannel::new(slot, tx, session.handle(), Arc::clone(&self.conn));
        // the built-in SFTP server, unless the embedder serves a subsystem named sftp itself
        if let (SessionKind::Subsystem(name), Some(root)) = (&kind, &self.server.sftp_root) {
            if name == "sftp" && !opts.subsystems.iter().any(|s| s == name) {
                super::sftp::serve(channel, Arc::clone(root), opts.sftp.as_ref().map(|s| s.read_only).unwrap_or(false));
                return true;
            }
        }
        let Some(cb) = self.server.callbacks() else { return false };
        let timeout = self.server.opts.limits.callback_timeout;
        let ok = self.conn.unless_killed(tokio::time::timeout(timeout, cb.session(start, Arc::clone(&channel))), Ok(false)).await.unwrap_or(false);
        if !ok {
            // refused: the embedder does not hold it; the client decides whether to close
            channel.discard();
        }
        ok
    }
}

impl russh::server::Handler for ConnHandler {
    type Error = russh::Error;

    async fn authentication_banner(&mut self) -> Result<Option<String>, Self::Error> {
        Ok(self.server.opts.banner.clone())
    }

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        if self.server.opts.none {
            self.user = user.to_string();
            return Ok(Auth::Accept);
        }
        // the probe OpenSSH sends first is not a failed attempt
        Ok(reject_keep_methods(&self.server))
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if let Some(open) = self.open_door(user) {
            return Ok(open);
        }
        if !self.server.opts.password || self.exhausted() {
            return Ok(self.failed());
        }
        let ok = self.ask(user, AuthAttemptKind::Password(Secret::new(password))).await;
        Ok(self.verdict(ok, user))
    }

    async fn auth_publickey_offered(&mut self, user: &str, offer: PublicKeyOffer<'_>) -> Result<Auth, Self::Error> {
        if self.server.opts.none {
            return Ok(Auth::Accept);
        }
        if !self.server.opts.public_key || self.exhausted() {
            return Ok(reject_keep_methods(&self.server));
        }
        let key = describe_key(offer.public_key);
        let fp = format!("{user}\0{}", key.fingerprint);
        let ok = match self.key_verdicts.get(&fp) {
            Some(v) => *v,
            None => {
                let v = self.ask(user, AuthAttemptKind::PublicKey(key)).await;
                // a client may offer many keys; remember a bounded number of answers
                if self.key_verdicts.len() < 64 {
                    self.key_verdicts.insert(fp, v);
                }
                v
            }
        };
        // a key refused counts as a failed attempt, as sshd counts it: a client cannot probe
        // any number of keys within one connection
        Ok(if ok { Auth::Accept } else { self.failed() })
    }

    async fn auth_publickey(&mut self, user: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        if let Some(open) = self.open_door(user) {
            return Ok(open);
        }
        if !self.server.opts.public_key || self.exhausted() {
            return Ok(self.failed());
        }
        let described = describe_key(key.public_key);
        let fp = format!("{user}\0{}", described.fingerprint);
        let ok = match self.key_verdicts.get(&fp) {
            Some(v) => *v,
            None => self.ask(user, AuthAttemptKind::PublicKey(described)).await,
        };
        Ok(self.verdict(ok, user))
    }

    async fn auth_keyboard_interactive<'a>(&'a mut self, user: &str, _submethods: &str, response: Option<Response<'a>>) -> Result<Auth, Self::Error> {
        if let Some(open) = self.open_door(user) {
            return Ok(open);
        }
        if !self.server.opts.keyboard_interactive || self.exhausted() {
            self.kbd = None;
            return Ok(self.failed());
        }
        match response {
            None => {
                let Some(cb) = self.server.callbacks() else { return Ok(self.failed()) };
                let (peer, u) = (Arc::clone(&self.conn.peer), user.to_string());
                self.kbd = Some(Conversation::start(move |prompter| cb.auth(AuthRequest { peer, user: u, kind: AuthAttemptKind::KeyboardInteractive(prompter) })));
            }
            Some(resp) => {
                let answers: Vec<Secret> = resp.map(|b| Secret::new(String::from_utf8_lossy(&b).into_owned())).collect();
                let delivered = self.kbd.as_mut().map(|c| c.answer(answers)).unwrap_or(false);
                if !delivered {
                    self.kbd = None;
                    return Ok(self.failed());
                }
            }
        }
        // the callback's turn (its next question or its verdict) is a callback like any other:
        // bounded by the callback limit as well as the authentication deadline
        let deadline = self.deadline.min(Instant::now() + self.server.opts.limits.callback_timeout);
        let step = match self.kbd.as_mut() {
            Some(c) => self.conn.busy_while(c.next(deadline), Step::Done(false)).await,
            None => Step::Done(false),
        };
        Ok(match step {
            Step::Ask(partial) => partial,
            Step::Done(ok) => {
                self.kbd = None;
                self.verdict(ok, user)
            }
        })
    }

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        self.kbd = None;
        self.key_verdicts.clear();
        self.conn.set_authenticated(session.handle());
        Ok(())
    }

    async fn channel_open_session(&mut self, channel: Channel<Msg>, reply: ChannelOpenHandle, _s: &mut Session) -> Result<(), Self::Error> {
        if self.server.is_closing() || self.conn.channel_count() >= self.server.opts.limits.max_channels {
            reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        }
        let id = channel.id();
        let (read_half, tx) = channel.split();
        // Dropping the read half makes russh skip its per-channel queue entirely.
        drop(read_half);
        self.conn.register(id.number());
        self.sessions.insert(id, SessionSetup { env: Vec::new(), env_bytes: 0, pty: None, started: false, tx: Some(tx) });
        reply.accept().await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if !self.server.opts.forward_direct || self.server.is_closing() || self.conn.channel_count() >= self.server.opts.limits.max_channels {
            reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        }
        // registered now: the client sends nothing before the (later) confirmation
        self.conn.register(channel.id().number());
        tokio::spawn(super::forward::direct(
            Arc::clone(&self.server),
            Arc::clone(&self.conn),
            self.user.clone(),
            channel,
            reply,
            session.handle(),
            host.to_string(),
            port,
            (originator_address.to_string(), originator_port),
        ));
        Ok(())
    }

    async fn channel_open_confirmation(&mut self, id: ChannelId, _max: u32, _win: u32, _s: &mut Session) -> Result<(), Self::Error> {
        // a channel we opened (forwarded-tcpip): its slot must exist before its first data
        self.conn.register(id.number());
        Ok(())
    }

    async fn data(&mut self, id: ChannelId, data: &[u8], _s: &mut Session) -> Result<(), Self::Error> {
        if let Some(slot) = self.conn.slot(id.number()) {
            // a full buffer waits for its reader; a kill (close(), say) must still end it
            self.conn.unless_killed(slot.shared.push(STDOUT, data), ()).await;
        }
        Ok(())
    }

    async fn extended_data(&mut self, id: ChannelId, _code: u32, data: &[u8], _s: &mut Session) -> Result<(), Self::Error> {
        if let Some(slot) = self.conn.slot(id.number()) {
            // a full buffer waits for its reader; a kill (close(), say) must still end it
            self.conn.unless_killed(slot.shared.push(STDERR, data), ()).await;
        }
        Ok(())
    }

    async fn channel_eof(&mut self, id: ChannelId, _s: &mut Session) -> Result<(), Self::Error> {
        if let Some(slot) = self.conn.slot(id.number()) {
            slot.shared.on_eof();
        }
        Ok(())
    }

    async fn channel_close(&mut self, id: ChannelId, _s: &mut Session) -> Result<(), Self::Error> {
        let session = self.sessions.remove(&id).is_some();
        if let Some(slot) = self.conn.slot(id.number()) {
            // a session the client closed before its EOF was cut short: its input errors
            // after what arrived instead of ending as if complete (forwarded connections
            // keep CLOSE as their end: Go's x/crypto/ssh clients send no EOF before it)
            let cut = (session && !slot.shared.eof_seen()).then(|| Error::channel("closed", "the client closed the channel before the end of its input (no EOF)"));
            slot.finish(&self.conn, id.number(), cut);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        id: ChannelId,
        term: &str,
        cols: u32,
        rows: u32,
        width_px: u32,
        height_px: u32,
        modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let ok = match self.sessions.get_mut(&id) {
            Some(s) if !s.started && s.pty.is_none() && term.len() <= 256 => {
                let modes = modes.iter().map(|(p, v)| (*p as u8, *v)).collect();
                s.pty = Some(PtyInfo { term: term.to_string(), cols, rows, width_px, height_px, modes });
                true
            }
            _ => false,
        };
        if ok {
            session.channel_success(id)
        } else {
            session.channel_failure(id)
        }
    }

    async fn env_request(&mut self, id: ChannelId, name: &str, value: &str, session: &mut Session) -> Result<(), Self::Error> {
        // the size limits first: a name past them is refused without matching it
        let accept = name.len() + value.len() <= MAX_ENV_BYTES
            && match &self.server.opts.accept_env {
                None => true,
                Some(patterns) => patterns.iter().any(|p| glob_match(p, name)),
            };
        let ok = match self.sessions.get_mut(&id) {
            Some(s) if accept && !s.started && !name.is_empty() => {
                let size = name.len() + value.len();
                if s.env.len() < MAX_ENV_VARS && s.env_bytes + size <= MAX_ENV_BYTES {
                    s.env_bytes += size;
                    s.env.retain(|(k, _)| k != name);
                    s.env.push((name.to_string(), value.to_string()));
                    true
                } else {
                    false
                }
            }
            _ => false,
        };
        if ok {
            session.channel_success(id)
        } else {
            session.channel_failure(id)
        }
    }

    async fn exec_request(&mut self, id: ChannelId, data: &[u8], session: &mut Session) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        self.start(id, SessionKind::Exec(command), session).await
    }

    async fn shell_request(&mut self, id: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        self.start(id, SessionKind::Shell, session).await
    }

    async fn subsystem_request(&mut self, id: ChannelId, name: &str, session: &mut Session) -> Result<(), Self::Error> {
        self.start(id, SessionKind::Subsystem(name.to_string()), session).await
    }

    async fn window_change_request(&mut self, id: ChannelId, cols: u32, rows: u32, width_px: u32, height_px: u32, _s: &mut Session) -> Result<(), Self::Error> {
        if let Some(s) = self.sessions.get_mut(&id) {
            if let Some(p) = s.pty.as_mut() {
                (p.cols, p.rows, p.width_px, p.height_px) = (cols, rows, width_px, height_px);
            }
        }
        if let Some(slot) = self.conn.slot(id.number()) {
            slot.emit(ChannelEvent::WindowChange { cols, rows, width_px, height_px });
        }
        Ok(())
    }

    async fn signal(&mut self, id: ChannelId, signal: Sig, _s: &mut Session) -> Result<(), Self::Error> {
        if let Some(slot) = self.conn.slot(id.number()) {
            slot.emit(ChannelEvent::Signal(signal_name(&signal)));
        }
        Ok(())
    }

    async fn tcpip_forward(&mut self, address: &str, port: &mut u32, _s: &mut Session) -> Result<bool, Self::Error> {
        if !self.server.opts.forward_remote || self.server.is_closing() {
            return Ok(false);
        }
        // russh answers a global request only when this returns, so the session loop (every
        // other channel of this connection) waits on the hook meanwhile; a kill ends the wait
        let asked = super::forward::remote(Arc::clone(&self.server), Arc::clone(&self.conn), self.user.clone(), address.to_string(), *port);
        match self.conn.unless_killed(asked, None).await {
            Some(bound) => {
                *port = bound;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn cancel_tcpip_forward(&mut self, address: &str, port: u32, _s: &mut Session) -> Result<bool, Self::Error> {
        Ok(super::forward::cancel_remote(&self.conn, address, port))
    }
}

impl Drop for ConnHandler {
    /// The session task owns the handler: when it is dropped the connection is over.
    fn drop(&mut self) {
        self.kbd = None;
        self.sessions.clear();
        self.conn.finish(Error::disconnected("the client disconnected"));
    }
}
