//! The conversation and the run's position, rebuilt from a session's event log.
//!
//! The log is the only state a run has: after a crash, reading it back says
//! exactly what is committed and what is left — a model call to make, tool calls
//! without results, or nothing.

use std::collections::HashSet;
use std::time::SystemTime;

use serde_json::Value;

use crate::conversation::{Block, Message, ModelAnswer, Role, StopReason};
use crate::event::{EndReason, Event};
use crate::store::LoggedEvent;

/// A tool call of the last answer that has no result yet.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PendingCall {
    /// The model's id for the call.
    pub id: String,
    /// The tool's name, as the model gave it.
    pub name: String,
    /// The input, as the model gave it.
    pub input: Value,
    /// Whether a `ToolStarted` was committed: the call may have run.
    pub started: bool,
}

/// What a run does next.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Next {
    /// The last run ended; nothing to do until a user message arrives.
    Idle,
    /// Ask the model.
    Model,
    /// Run these calls of the last answer, in order.
    Tools(Vec<PendingCall>),
    /// The last answer ended the turn but its end isn't committed yet.
    End,
}

/// The conversation so far, and where the open run stands.
#[derive(Debug, Default)]
pub(crate) struct Transcript {
    /// Messages for the model, oldest first.
    pub messages: Vec<Message>,
    /// Model answers since the last user message.
    pub turns_in_run: u32,
    /// Whether a run is open (a user message without a `RunEnded` after it).
    open: bool,
    /// The last answer, its commit time, its calls still without a result, and
    /// which of those have a `ToolStarted`.
    last_answer: Option<(ModelAnswer, SystemTime)>,
    unanswered: Vec<String>,
    started: HashSet<String>,
    /// How the last run ended.
    last_end: Option<EndReason>,
}

impl Transcript {
    /// Rebuilds the transcript from a whole log.
    pub fn from_log(events: &[LoggedEvent]) -> Transcript {
        let mut transcript = Transcript::default();
        for logged in events {
            transcript.apply(&logged.event, logged.time);
        }
        transcript
    }

    /// Adds one committed event.
    pub fn apply(&mut self, event: &Event, time: SystemTime) {
        match event {
            Event::UserMessage { text } => {
                self.push_user(Block::Text { text: text.clone() });
                self.open = true;
                self.turns_in_run = 0;
                self.last_answer = None;
                self.unanswered.clear();
            }
            Event::ModelAnswer(answer) => {
                self.messages.push(Message { role: Role::Assistant, content: answer.content.clone() });
                self.turns_in_run += 1;
                self.unanswered = answer.tool_calls().map(|(id, _, _)| id.to_string()).collect();
                self.started.clear();
                self.last_answer = Some((answer.clone(), time));
            }
            Event::ToolStarted { call_id, .. } => {
                self.started.insert(call_id.clone());
            }
            Event::ToolResult { call_id, content, is_error, .. } => {
                self.push_user(Block::ToolResult {
                    tool_use_id: call_id.clone(),
                    content: content.clone(),
                    is_error: *is_error,
                });
                self.unanswered.retain(|id| id != call_id);
            }
            Event::Error { .. } | Event::ClientToolCall { .. } => {}
            Event::RunEnded { reason } => {
                self.open = false;
                self.last_end = Some(reason.clone());
            }
        }
    }

    /// Tool results and user text share one user message, results first, as the
    /// providers require.
    fn push_user(&mut self, block: Block) {
        match self.messages.last_mut() {
            Some(last) if last.role == Role::User => last.content.push(block),
            _ => self.messages.push(Message { role: Role::User, content: vec![block] }),
        }
    }

    /// What the run does next.
    pub fn next(&self) -> Next {
        if !self.open {
            return Next::Idle;
        }
        let Some((answer, _)) = &self.last_answer else { return Next::Model };
        if !self.unanswered.is_empty() {
            let calls = answer
                .tool_calls()
                .filter(|(id, _, _)| self.unanswered.iter().any(|u| u == id))
                .map(|(id, name, input)| PendingCall {
                    id: id.to_string(),
                    name: name.to_string(),
                    input: input.clone(),
                    started: self.started.contains(id),
                })
                .collect();
            return Next::Tools(calls);
        }
        let had_calls = answer.tool_calls().next().is_some();
        if had_calls || answer.stop_reason == StopReason::PauseTurn { Next::Model } else { Next::End }
    }

    /// When the last answer was committed: the clock its tool calls run under, so a
    /// re-run after a crash stamps files exactly as the first run did.
    pub fn answer_time(&self) -> Option<SystemTime> {
        self.last_answer.as_ref().map(|(_, time)| *time)
    }

    /// How the last run ended, if one did.
    pub fn last_end(&self) -> Option<&EndReason> {
        self.last_end.as_ref()
    }
}
