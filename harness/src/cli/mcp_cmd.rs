//! `harness mcp`: the sandboxed tools for one MCP client over stdin/stdout.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use harness::config::Config;
use harness::conversation::{ModelAnswer, ModelRequest, StreamEvent};
use harness::mcp::{McpOptions, serve_stdio};
use harness::provider::{Provider, ProviderError};
use harness::settings::SessionSettings;
use harness::store::SessionId;
use runtime::net::policy::{Policy, Rule};

use super::setup::Parts;
use super::{Globals, UsageError, owner};

/// Options of `harness mcp`.
#[derive(Args, Debug)]
pub struct McpArgs {
    /// Work in this existing session instead of creating one at the first tool call.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// The owner of the session created (default: $USER).
    #[arg(long)]
    pub owner: Option<String>,
    /// Offer only these tools (comma-separated names) in the session created.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub tools: Option<Vec<String>>,
    /// Let the session created reach only these hosts over HTTPS (repeatable), on
    /// top of the configured network policy, which still applies.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
}

/// Serves MCP on stdio until the client closes stdin. Logs go to stderr: stdout
/// belongs to the protocol.
pub async fn run(globals: &Globals, args: McpArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(globals.config.as_deref())?;
    let session = args
        .session
        .as_deref()
        .map(|id| id.parse::<SessionId>().map_err(|_| UsageError(format!("--session {id:?} is not a session id"))))
        .transpose()?;
    let mut settings = SessionSettings {
        tools: args.tools.map(|names| names.into_iter().map(|name| name.trim().to_string()).collect::<BTreeSet<_>>()),
        ..SessionSettings::default()
    };
    if !args.allow_hosts.is_empty() {
        let rules = args
            .allow_hosts
            .iter()
            .map(|host| serde_json::from_value::<Rule>(serde_json::json!({ "host": host })))
            .collect::<Result<Vec<_>, _>>()
            .context("--allow-host")?;
        settings.network = Some(Policy { allow: rules });
    }
    settings.validate().map_err(|why| UsageError(why.to_string()))?;
    let parts = Parts::assemble(globals, &config, None).await?;
    let agent = Arc::new(parts.agent(Arc::new(NoModel), "none"));
    if let Some(id) = &session {
        // Said now rather than at the first call, where the client would only see an error.
        agent.attach(id).with_context(|| format!("cannot attach to session {id}"))?;
    }
    agent.tools_for(&settings).map_err(|err| UsageError(err.to_string()))?;
    eprintln!("harness: serving MCP on stdio (database {})", globals.db.display());
    let options = McpOptions { settings, owner: owner(args.owner), session };
    serve_stdio(agent, options).await.context("the MCP connection failed")?;
    Ok(ExitCode::SUCCESS)
}

/// The provider of a process that only serves tools: it has no model to call.
struct NoModel;

#[async_trait::async_trait]
impl Provider for NoModel {
    fn name(&self) -> &str {
        "none"
    }
    async fn complete(
        &self,
        _request: &ModelRequest,
        _on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<ModelAnswer, ProviderError> {
        Err(ProviderError::Api {
            provider: "none".into(),
            status: None,
            kind: "no_model".into(),
            message: "this process serves tools over MCP and calls no model".into(),
            retry_after: None,
        })
    }
}
