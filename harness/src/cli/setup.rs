//! Assembling an agent from the config file, the command line and the environment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use harness::agent::{Agent, AgentConfig, Clock};
use harness::config::{Config, NetworkSetup};
use harness::provider::{Cassette, Provider, ProviderConfig, ProviderKind};
use harness::store::Store;
use runtime::net::Network;
use runtime::vfs::Timestamp;
use runtime::{Limits, Runtime, RuntimeConfig, Toolbox};
use tokio_util::sync::CancellationToken;

use super::{Globals, usage};

/// A model API, as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// The Anthropic Messages API (ANTHROPIC_API_KEY).
    Anthropic,
    /// OpenAI Chat Completions or a compatible server (OPENAI_API_KEY, OPENAI_BASE_URL).
    Openai,
    /// Answers played from a cassette (`--replay`).
    Replay,
}

impl From<Kind> for ProviderKind {
    fn from(kind: Kind) -> ProviderKind {
        match kind {
            Kind::Anthropic => ProviderKind::Anthropic,
            Kind::Openai => ProviderKind::OpenAi,
            Kind::Replay => ProviderKind::Replay,
        }
    }
}

/// How `run` and `sessions resume` reach a model.
#[derive(Args, Clone, Debug, Default)]
pub struct AgentArgs {
    /// The model API (default: `[provider]` in the config, else anthropic if
    /// ANTHROPIC_API_KEY is set, else openai if OPENAI_API_KEY is set).
    #[arg(long, value_enum)]
    pub provider: Option<Kind>,
    /// The model (default: `model` in `[provider]`, else HARNESS_MODEL; a replay
    /// uses the cassette's recorded model).
    #[arg(long)]
    pub model: Option<String>,
    /// Play the model's answers from this cassette instead of calling an API; the
    /// tools still run for real. Implies `--provider replay`.
    #[arg(long, value_name = "CASSETTE", conflicts_with = "record")]
    pub replay: Option<PathBuf>,
    /// Also record every model answer into this cassette (API key and secrets redacted).
    #[arg(long, value_name = "CASSETTE")]
    pub record: Option<PathBuf>,
    /// Run tools under a fixed clock (Unix seconds), so separate runs of one script
    /// build identical filesystems; for tests and reproducible demos.
    #[arg(long, env = "HARNESS_FIXED_CLOCK", value_name = "SECS", hide = true)]
    pub fixed_clock: Option<u64>,
}

/// The provider to build and the model new sessions use.
#[derive(Debug)]
pub struct Choice {
    /// The provider's config, completed from the environment.
    pub provider: ProviderConfig,
    /// The model.
    pub model: String,
}

/// Decides the provider and model: flags, then the config file, then the environment.
/// `fallback_model` is used before giving up (a resumed session's own model).
pub fn choose(
    config: &Config,
    args: &AgentArgs,
    fallback_model: Option<&str>,
    var: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Choice> {
    let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
    let kind = if args.replay.is_some() {
        if args.provider.is_some_and(|kind| kind != Kind::Replay) {
            usage!("--replay plays a cassette; it can't be combined with --provider anthropic or openai");
        }
        ProviderKind::Replay
    } else if let Some(kind) = args.provider {
        kind.into()
    } else if let Some(provider) = &config.provider {
        provider.kind
    } else if var("ANTHROPIC_API_KEY").is_some() {
        ProviderKind::Anthropic
    } else if var("OPENAI_API_KEY").is_some() {
        ProviderKind::OpenAi
    } else {
        usage!(
            "no model provider: set ANTHROPIC_API_KEY or OPENAI_API_KEY, add a [provider] section to {}, \
             or pass --replay CASSETTE to play a recorded session (try fixtures/cassettes/demo.json)",
            config_name(config)
        );
    };
    // The config's section only applies to the kind it describes.
    let mut provider = match &config.provider {
        Some(section) if section.kind == kind => section.clone(),
        _ => ProviderConfig::new(kind),
    };
    if let Some(cassette) = &args.replay {
        provider.cassette = Some(cassette.clone());
    }
    if args.record.is_some() {
        provider.record = args.record.clone();
    }
    if kind == ProviderKind::Replay && provider.cassette.is_none() {
        usage!("--provider replay needs --replay CASSETTE, the recorded session to play");
    }
    let recorded = || -> anyhow::Result<Option<String>> {
        match (kind, &provider.cassette) {
            (ProviderKind::Replay, Some(path)) => {
                let cassette = Cassette::load(path)?;
                Ok(cassette.interactions.first().map(|first| first.answer.model.clone()))
            }
            _ => Ok(None),
        }
    };
    let model = match args.model.clone().or_else(|| provider.model.clone()).or_else(|| var("HARNESS_MODEL")) {
        Some(model) => model,
        None => match fallback_model {
            Some(model) => model.to_string(),
            None => match recorded()? {
                Some(model) => model,
                None if kind == ProviderKind::Replay => "replay".into(),
                None => usage!("no model: pass --model NAME, set `model` in [provider] or set HARNESS_MODEL"),
            },
        },
    };
    provider.model = Some(model.clone());
    provider.fill_from(|name| var(name));
    Ok(Choice { provider, model })
}

fn config_name(config: &Config) -> String {
    match config.path.clone().or_else(Config::default_path) {
        Some(path) => format!("the config file ({})", path.display()),
        None => "the config file".into(),
    }
}

/// Everything an agent is made of except its provider and model: one per process.
pub struct Parts {
    runtime: Runtime,
    toolbox: Arc<Toolbox>,
    limits: Limits,
    network: NetworkSetup,
    store: Store,
    /// How runs behave.
    pub config: AgentConfig,
}

impl Parts {
    /// Loads the tools, opens the database and builds the network from `config`.
    pub async fn assemble(globals: &Globals, config: &Config, fixed_clock: Option<u64>) -> anyhow::Result<Parts> {
        let mut agent_config = config.agent_config()?;
        if let Some(secs) = fixed_clock {
            agent_config.clock = Clock::Fixed(Timestamp { secs, nanos: 0 });
        }
        let limits = config.limits()?;
        let network = config.network()?;
        let store = open_store(&globals.db)?;
        let runtime = Runtime::new(RuntimeConfig {
            max_instances: 64,
            cache_dir: globals.cache_dir.clone(),
            ..RuntimeConfig::default()
        })
        .context("cannot start the sandbox")?;
        let tools = harness::toolset::load(&runtime, globals.tools_dir.as_deref()).await;
        for rejected in &tools.rejected {
            eprintln!("warning: tool not loaded: {rejected}");
        }
        Ok(Parts { runtime, toolbox: Arc::new(tools.toolbox), limits, network, store, config: agent_config })
    }

    /// An agent running `model` on `provider`.
    pub fn agent(&self, provider: Arc<dyn Provider>, model: &str) -> Agent {
        Agent::new(
            self.runtime.clone(),
            self.toolbox.clone(),
            self.limits.clone(),
            Arc::new(self.network.network.clone()),
            self.store.clone(),
            provider,
            model.to_string(),
            self.config.clone(),
        )
    }

    /// The shared network, for redacting what the CLI stores itself (titles).
    pub fn network(&self) -> &Network {
        &self.network.network
    }

    /// Builds `provider`; a recorder redacts the network's secrets besides the API key.
    pub fn provider(&self, provider: &ProviderConfig) -> anyhow::Result<Arc<dyn Provider>> {
        let secrets: Vec<(&str, &str)> =
            self.network.secrets.iter().map(|(name, value)| (name.as_str(), value.expose())).collect();
        Ok(provider.build_with_secrets(&secrets)?)
    }
}

/// Opens the database, creating its directory first.
pub fn open_store(path: &Path) -> anyhow::Result<Store> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(Store::open(path)?)
}

/// A token cancelled by the first Ctrl-C; a second one quits at once, leaving the
/// session to be resumed by the next `run` or `sessions resume`.
pub fn cancel_on_ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ncancelling; press Ctrl-C again to quit at once (the session can be resumed)");
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string())
    }

    #[test]
    fn the_provider_comes_from_flags_then_config_then_keys() {
        let config = Config::default();
        let args = AgentArgs { model: Some("m".into()), ..AgentArgs::default() };
        let choice = choose(&config, &args, None, vars(&[("OPENAI_API_KEY", "k")])).unwrap();
        assert_eq!(choice.provider.kind, ProviderKind::OpenAi);
        let choice =
            choose(&config, &args, None, vars(&[("OPENAI_API_KEY", "k"), ("ANTHROPIC_API_KEY", "a")])).unwrap();
        assert_eq!(choice.provider.kind, ProviderKind::Anthropic);
        assert_eq!(choice.provider.api_key.as_ref().map(|key| key.expose()), Some("a"));

        let err = choose(&config, &args, None, vars(&[("ANTHROPIC_API_KEY", " ")])).unwrap_err().to_string();
        assert!(err.contains("ANTHROPIC_API_KEY") && err.contains("--replay"), "{err}");

        let args = AgentArgs::default();
        let err = choose(&config, &args, None, vars(&[("ANTHROPIC_API_KEY", "a")])).unwrap_err().to_string();
        assert!(err.contains("--model") && err.contains("HARNESS_MODEL"), "{err}");
        let choice = choose(&config, &args, None, vars(&[("ANTHROPIC_API_KEY", "a"), ("HARNESS_MODEL", "h")])).unwrap();
        assert_eq!(choice.model, "h");
        let choice = choose(&config, &args, Some("resumed"), vars(&[("ANTHROPIC_API_KEY", "a")])).unwrap();
        assert_eq!(choice.model, "resumed");
    }
}
