//! What a session runs with: the options it is created with, and the agent's
//! tools, network and limits narrowed by its settings ([`SessionSettings`]) for
//! each run and each model request.

use std::collections::BTreeMap;
use std::sync::Arc;

use runtime::Toolbox;
use runtime::net::Network;

use super::{Agent, AgentError, Budget};
use crate::conversation::{Message, ModelRequest, ToolDef};
use crate::settings::{SessionSettings, tighter};
use crate::store::NewSession;

/// How a new session is set up.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// A title for listings.
    pub title: Option<String>,
    /// The model, if not the agent's own; it must be one [`AgentConfig::models`](super::AgentConfig::models) allows.
    pub model: Option<String>,
    /// What the session may use, narrowing the agent's configuration.
    pub settings: SessionSettings,
}

impl SessionOptions {
    /// Default options with a title.
    pub fn titled(title: impl Into<String>) -> SessionOptions {
        SessionOptions { title: Some(title.into()), ..SessionOptions::default() }
    }
}

/// What a run of one session works with: the agent's tools, network and limits
/// narrowed by the session's settings.
pub(super) struct Scope {
    pub(super) toolbox: Arc<Toolbox>,
    pub(super) tool_defs: Arc<[ToolDef]>,
    pub(super) network: Arc<Network>,
    /// The system prompt, redacted.
    pub(super) system: Option<String>,
    pub(super) max_turns: u32,
    pub(super) budget: Budget,
}

impl Agent {
    /// The record of a new session, once its options are checked.
    pub(super) fn new_session(&self, owner: &str, options: SessionOptions) -> Result<NewSession, AgentError> {
        let invalid = AgentError::InvalidSettings;
        options.settings.validate().map_err(invalid)?;
        let model = match options.model {
            None => self.model.clone(),
            Some(model) if model == self.model => model,
            Some(model) => {
                if model.trim().is_empty() || model.len() > 200 || model.contains(char::is_control) {
                    return Err(invalid(format!("{model:?} is not a model name")));
                }
                if !self.config.models.iter().any(|allowed| *allowed == model || allowed == "*") {
                    let mut allowed = vec![self.model.as_str()];
                    allowed.extend(self.config.models.iter().map(String::as_str));
                    return Err(invalid(format!(
                        "model `{model}` is not offered here; the models are: {}",
                        allowed.join(", ")
                    )));
                }
                model
            }
        };
        let toolbox = self.tools_for(&options.settings)?;
        let mut tool_versions = BTreeMap::new();
        for component in toolbox.components() {
            for spec in component.specs().filter(|spec| toolbox.spec(&spec.name).is_some()) {
                tool_versions.insert(spec.name.clone(), component.hash());
            }
        }
        Ok(NewSession {
            owner: owner.to_string(),
            provider: self.provider.name().to_string(),
            model,
            harness_version: env!("CARGO_PKG_VERSION").to_string(),
            tool_versions,
            title: options.title,
            settings: options.settings,
        })
    }

    /// The tools a session with `settings` offers: the agent's, or the part of
    /// them `settings` names.
    pub fn tools_for(&self, settings: &SessionSettings) -> Result<Arc<Toolbox>, AgentError> {
        let Some(tools) = &settings.tools else { return Ok(self.toolbox.clone()) };
        match self.toolbox.only(tools.iter().map(String::as_str)) {
            Ok(toolbox) => Ok(Arc::new(toolbox)),
            Err(unknown) => {
                let known: Vec<&str> = self.toolbox.specs().map(|spec| spec.name.as_str()).collect();
                Err(AgentError::InvalidSettings(format!(
                    "there is no tool named `{unknown}`; the tools are: {}",
                    known.join(", ")
                )))
            }
        }
    }

    /// What a run of a session with `settings` works with. A stored tool that is
    /// no longer installed is left out rather than failing the run.
    pub(super) fn scope(&self, settings: &SessionSettings) -> Scope {
        let (toolbox, tool_defs) = match &settings.tools {
            None => (self.toolbox.clone(), self.tool_defs.clone()),
            Some(tools) => {
                let present = tools.iter().map(String::as_str).filter(|tool| self.toolbox.spec(tool).is_some());
                let toolbox = Arc::new(self.toolbox.only(present).expect("only installed tools are named"));
                let defs = definitions(&toolbox);
                (toolbox, defs)
            }
        };
        let network = match &settings.network {
            None => self.network.clone(),
            Some(policy) => Arc::new(self.network.within(policy.clone())),
        };
        let configured = self.config.budget;
        let system = self.config.system.as_deref().map(|system| network.redactor().redact_str(system));
        Scope {
            toolbox,
            tool_defs,
            network,
            system,
            max_turns: tighter(Some(self.config.max_turns), settings.max_turns).unwrap_or(self.config.max_turns),
            budget: Budget {
                max_tokens: tighter(configured.max_tokens, settings.max_tokens),
                max_cost_usd: tighter(configured.max_cost_usd, settings.max_cost_usd),
            },
        }
    }
}

/// The provider request for the conversation so far, with every secret the
/// session's network knows redacted. What the log holds is redacted already
/// (user text when it is committed, tool output in the sandbox); this is the last
/// line, for what might slip through (a model repeating something).
/// The conversation is moved in, not copied (it grows with every turn), and only
/// what was added since the last request is checked: the messages from
/// `scanned` on, and the last one before (results are appended to it).
pub(super) fn request(
    model: &str,
    scope: &Scope,
    mut messages: Vec<Message>,
    scanned: &mut usize,
    max_tokens: u32,
) -> ModelRequest {
    let redactor = scope.network.redactor();
    if !redactor.is_empty() {
        let from = scanned.saturating_sub(1).min(messages.len());
        for message in &mut messages[from..] {
            if let Ok(text) = serde_json::to_string(message)
                && redactor.finds(text.as_bytes())
                && let Ok(clean) = serde_json::from_str(&redactor.redact_str(&text))
            {
                *message = clean;
            }
        }
    }
    *scanned = messages.len();
    ModelRequest {
        model: model.to_string(),
        system: scope.system.clone(),
        messages,
        tools: scope.tool_defs.clone(),
        max_tokens,
    }
}

/// The model's view of every tool in `toolbox`.
pub(super) fn definitions(toolbox: &Toolbox) -> Arc<[ToolDef]> {
    toolbox
        .specs()
        .map(|spec| ToolDef {
            name: spec.name.clone(),
            description: spec.description.clone(),
            input_schema: spec.input_schema.clone(),
        })
        .collect()
}
