//! keyboard-interactive (RFC 4256) as a conversation: the embedder's callback runs as a task
//! and asks questions through a [`Prompter`]; each question becomes an INFO_REQUEST, each
//! client answer resolves the question, and the callback's verdict ends the exchange.

use std::borrow::Cow;
use std::time::Instant;

use russh::server::Auth;
use tokio::sync::{mpsc, oneshot};

use crate::options::{KbdPrompt, Secret};

/// Rounds and prompts one conversation may have: a client cannot make us keep more.
const MAX_ROUNDS: usize = 16;
const MAX_PROMPTS: usize = 32;
const MAX_TEXT: usize = 4096;

/// One question round: the client's answers come back on `reply`.
pub struct PromptRound {
    pub name: String,
    pub instructions: String,
    pub prompts: Vec<KbdPrompt>,
    reply: oneshot::Sender<Vec<Secret>>,
}

/// Handed to the embedder's keyboard-interactive callback.
#[derive(Clone)]
pub struct Prompter {
    tx: mpsc::Sender<PromptRound>,
}

impl Prompter {
    /// Asks the client; None when it went away, gave up, or the round was invalid.
    pub async fn prompt(&self, name: String, instructions: String, prompts: Vec<KbdPrompt>) -> Option<Vec<Secret>> {
        if prompts.len() > MAX_PROMPTS {
            return None;
        }
        let clip = |s: String| if s.len() > MAX_TEXT { s.chars().take(MAX_TEXT / 4).collect() } else { s };
        let prompts = prompts.into_iter().map(|p| KbdPrompt { prompt: clip(p.prompt), echo: p.echo }).collect();
        let (reply, rx) = oneshot::channel();
        self.tx.send(PromptRound { name: clip(name), instructions: clip(instructions), prompts, reply }).await.ok()?;
        rx.await.ok()
    }
}

/// The handler's side of a running conversation.
pub(crate) struct Conversation {
    rounds: mpsc::Receiver<PromptRound>,
    verdict: oneshot::Receiver<bool>,
    waiting: Option<oneshot::Sender<Vec<Secret>>>,
    asked: usize,
    expected: usize,
}

/// What the handler should answer the client.
pub(crate) enum Step {
    Ask(Auth),
    Done(bool),
}

impl Conversation {
    /// Starts the embedder's callback with a prompter; `run` gets the prompter and returns
    /// the verdict future.
    pub(crate) fn start<F>(run: F) -> Conversation
    where
        F: FnOnce(Prompter) -> crate::options::BoxFuture<bool>,
    {
        let (tx, rounds) = mpsc::channel(1);
        let (vtx, verdict) = oneshot::channel();
        let fut = run(Prompter { tx });
        tokio::spawn(async move {
            let ok = fut.await;
            let _ = vtx.send(ok);
        });
        Conversation { rounds, verdict, waiting: None, asked: 0, expected: 0 }
    }

    /// Delivers the client's answers to the question waiting for them.
    pub(crate) fn answer(&mut self, answers: Vec<Secret>) -> bool {
        match self.waiting.take() {
            Some(tx) if answers.len() == self.expected => tx.send(answers).is_ok(),
            _ => false,
        }
    }

    /// Waits for the callback's next question or its verdict, until `deadline`.
    pub(crate) async fn next(&mut self, deadline: Instant) -> Step {
        let left = deadline.saturating_duration_since(Instant::now());
        let step = tokio::time::timeout(left, async {
            tokio::select! {
                biased;
                v = &mut self.verdict => Step::Done(v.unwrap_or(false)),
                r = self.rounds.recv() => match r {
                    Some(round) => self.ask(round),
                    // the callback dropped its prompter and is finishing
                    None => Step::Done((&mut self.verdict).await.unwrap_or(false)),
                },
            }
        })
        .await;
        step.unwrap_or(Step::Done(false))
    }

    fn ask(&mut self, round: PromptRound) -> Step {
        self.asked += 1;
        if self.asked > MAX_ROUNDS {
            return Step::Done(false);
        }
        self.expected = round.prompts.len();
        self.waiting = Some(round.reply);
        let prompts: Vec<(Cow<'static, str>, bool)> = round.prompts.into_iter().map(|p| (Cow::Owned(p.prompt), p.echo)).collect();
        Step::Ask(Auth::Partial { name: Cow::Owned(round.name), instructions: Cow::Owned(round.instructions), prompts: Cow::Owned(prompts) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn two_rounds_then_verdict() {
        let mut conv = Conversation::start(|p: Prompter| {
            Box::pin(async move {
                let a = p.prompt("n".into(), "i".into(), vec![KbdPrompt { prompt: "Password: ".into(), echo: false }]).await;
                let b = p.prompt(String::new(), String::new(), vec![KbdPrompt { prompt: "Code: ".into(), echo: true }]).await;
                matches!((a, b), (Some(a), Some(b)) if a[0].expose() == "pw" && b[0].expose() == "42")
            })
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        assert!(matches!(conv.next(deadline).await, Step::Ask(Auth::Partial { .. })));
        assert!(conv.answer(vec![Secret::new("pw")]));
        assert!(matches!(conv.next(deadline).await, Step::Ask(_)));
        assert!(!conv.answer(vec![]), "wrong number of answers is refused");
    }

    #[tokio::test]
    async fn silent_callback_times_out_as_refusal() {
        let mut conv = Conversation::start(|_p| Box::pin(std::future::pending::<bool>()));
        let step = conv.next(Instant::now() + Duration::from_millis(20)).await;
        assert!(matches!(step, Step::Done(false)));
    }
}
