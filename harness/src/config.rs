//! The harness config file: TOML, completed from the environment.
//!
//! One file configures the CLI and the server, so both read it through
//! this module. Every section is optional and every table refuses keys it does
//! not know, so a typo is an error naming the file, line and key instead of a
//! setting silently ignored.
//!
//! ```toml
//! [provider]                 # harness::provider::ProviderConfig
//! kind = "anthropic"
//! model = "claude-sonnet-4-5"
//!
//! [agent]
//! system = "You are a careful engineer."
//! max_turns = 40
//! budget = { max_cost_usd = 2.0 }
//! models = ["claude-haiku-4-5"]  # others a session may choose at creation
//!
//! [prices."claude-sonnet-4-5"]   # USD per million tokens; none are built in
//! input = 3.0
//! output = 15.0
//!
//! [network]
//! allow = [{ host = "api.github.com" }]
//! inject = [{ secret = "GITHUB", host = "api.github.com", inject = { kind = "header", name = "authorization", format = "Bearer {secret}" } }]
//! secrets_file = "secrets.json"
//!
//! [network.tools.fetch]
//! allow = [{ host = "*.wikipedia.org", methods = ["GET"] }]
//!
//! [limits]
//! deadline_secs = 60
//! memory_mib = 512
//! ```
//!
//! Prices are never built in: they change, and a stale price would make the cost
//! budget lie. A model missing from `[prices]` costs nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use runtime::Limits;
use runtime::net::policy::{Policy, Rule, check_target};
use runtime::net::secrets::{ENV_PREFIX, InjectionRule, SecretStore, SecretValue};
use runtime::net::{Network, NetworkError};
use runtime::vfs::Quota;
use serde::Deserialize;

use crate::agent::{AgentConfig, Budget, PriceTable};
use crate::provider::ProviderConfig;

/// Why a config could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (a missing explicit `--config` file included).
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema; toml's message
    /// names the line, column and key.
    #[error("config file {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's error, with its location.
        source: toml::de::Error,
    },
    /// A value parses but makes no sense.
    #[error("config file {file}: `{key}`: {problem}")]
    Invalid {
        /// The file, or "(defaults)" when there is none.
        file: String,
        /// The key, as a dotted path.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The secrets file named by `network.secrets_file` is missing or malformed.
    #[error("secrets file {} (`network.secrets_file` in {file}): {problem}", path.display())]
    Secrets {
        /// The secrets file.
        path: PathBuf,
        /// The config file naming it.
        file: String,
        /// What went wrong.
        problem: String,
    },
    /// The network section could not be assembled (an injection rule naming an
    /// unknown secret, for instance).
    #[error("config file {file}: `network`: {source}")]
    Network {
        /// The config file.
        file: String,
        /// What the runtime refused.
        source: NetworkError,
    },
}

/// The whole config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How to reach a model.
    #[serde(default)]
    pub provider: Option<ProviderConfig>,
    /// How runs behave.
    #[serde(default)]
    pub agent: AgentSection,
    /// Model name → prices in USD per million tokens.
    #[serde(default)]
    pub prices: PriceTable,
    /// What tools may reach on the network, and the secrets injected on the way.
    #[serde(default)]
    pub network: NetworkSection,
    /// Per-call and per-session limits of the sandbox.
    #[serde(default)]
    pub limits: LimitsSection,
    /// The file this was read from; `None` for defaults.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// The `[agent]` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// The system prompt.
    pub system: Option<String>,
    /// Most model calls in one run (default 50).
    pub max_turns: Option<u32>,
    /// Most tokens of one answer (default 8192).
    pub max_answer_tokens: Option<u32>,
    /// What a session may spend.
    #[serde(default)]
    pub budget: Budget,
    /// Models a session may choose at creation besides the configured one
    /// (`"*"` allows any name the provider takes).
    #[serde(default)]
    pub models: Vec<String>,
}

/// The `[network]` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// Requests tools may make; empty denies every request.
    #[serde(default)]
    pub allow: Vec<Rule>,
    /// Secrets added to matching requests.
    #[serde(default)]
    pub inject: Vec<InjectionRule>,
    /// A JSON object `{"NAME": "value"}`, relative to the config file's directory;
    /// `HARNESS_SECRET_<NAME>` environment variables add to it and win.
    pub secrets_file: Option<PathBuf>,
    /// Tool name → its own allowlist, used instead of `allow` for that tool.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolNetwork>,
}

/// A `[network.tools.<tool>]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolNetwork {
    /// Requests this tool may make.
    #[serde(default)]
    pub allow: Vec<Rule>,
}

/// The `[limits]` section; anything unset keeps the runtime's default.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Wall-clock deadline of one tool call, in seconds.
    pub deadline_secs: Option<u64>,
    /// Tool name → its own deadline in seconds.
    #[serde(default)]
    pub tool_deadline_secs: BTreeMap<String, u64>,
    /// Largest linear memory of one call, in MiB.
    pub memory_mib: Option<u64>,
    /// Result content kept per call, in KiB.
    pub result_kib: Option<u64>,
    /// Stdout kept per call, in KiB.
    pub stdout_kib: Option<u64>,
    /// Stderr kept per call, in KiB.
    pub stderr_kib: Option<u64>,
    /// Calls from the guest into the host per call.
    pub host_calls: Option<u64>,
    /// Total bytes of a session's workspace, in MiB.
    pub workspace_mib: Option<u64>,
    /// Files and directories in a session's workspace.
    pub workspace_files: Option<u64>,
    /// Largest single file in a workspace, in MiB.
    pub file_mib: Option<u64>,
}

/// A network built from the config, and the secrets it holds (a recorder must
/// redact them too).
#[derive(Debug)]
pub struct NetworkSetup {
    /// The network every session gets.
    pub network: Network,
    /// Every secret by name, from the secrets file and the environment.
    pub secrets: Vec<(String, SecretValue)>,
}

impl Config {
    /// `<config dir>/agent-harness/config.toml`, where the config lives unless told.
    pub fn default_path() -> Option<PathBuf> {
        dirs::config_dir().map(|dir| dir.join("agent-harness").join("config.toml"))
    }

    /// Reads `explicit` (which must exist), or else the default file if there is
    /// one, or else the defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        match explicit {
            Some(path) => Config::from_file(path),
            None => match Config::default_path() {
                Some(path) if path.is_file() => Config::from_file(&path),
                _ => Ok(Config::default()),
            },
        }
    }

    /// Reads and checks the file at `path`.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::parse(path, &text)
    }

    /// Parses and checks config text; `path` names it in errors and anchors the
    /// relative paths it holds.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut config: Config =
            toml::from_str(text).map_err(|source| ConfigError::Parse { path: path.to_path_buf(), source })?;
        config.path = Some(path.to_path_buf());
        config.validate()?;
        Ok(config)
    }

    /// The file's name for messages.
    fn file(&self) -> String {
        self.path.as_ref().map_or_else(|| "(defaults)".into(), |path| path.display().to_string())
    }

    fn invalid(&self, key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { file: self.file(), key: key.into(), problem: problem.into() }
    }

    /// Checks what serde can't: values in range, rules that can match something.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.agent.max_turns == Some(0) {
            return Err(self.invalid("agent.max_turns", "must be at least 1"));
        }
        if self.agent.max_answer_tokens == Some(0) {
            return Err(self.invalid("agent.max_answer_tokens", "must be at least 1"));
        }
        if let Some(max) = self.agent.budget.max_cost_usd
            && !(max.is_finite() && max >= 0.0)
        {
            return Err(self.invalid("agent.budget.max_cost_usd", "must be a non-negative number of US dollars"));
        }
        for (model, price) in &self.prices.0 {
            let fields = [
                ("input", price.input),
                ("output", price.output),
                ("cache_write", price.cache_write),
                ("cache_read", price.cache_read),
            ];
            if let Some((field, _)) = fields.iter().find(|(_, value)| !(value.is_finite() && *value >= 0.0)) {
                return Err(self.invalid(format!("prices.\"{model}\".{field}"), "must be a non-negative USD price"));
            }
        }
        self.check_rules("network.allow", &self.network.allow)?;
        for (tool, policy) in &self.network.tools {
            self.check_rules(&format!("network.tools.{tool}.allow"), &policy.allow)?;
        }
        for (i, rule) in self.network.inject.iter().enumerate() {
            check_target(&rule.scheme, &rule.host, &rule.path_prefix)
                .map_err(|err| self.invalid(format!("network.inject[{i}].{}", err.field), err.reason))?;
        }
        self.limits()?;
        self.quota()?;
        Ok(())
    }

    fn check_rules(&self, key: &str, rules: &[Rule]) -> Result<(), ConfigError> {
        for (i, rule) in rules.iter().enumerate() {
            rule.validate().map_err(|err| self.invalid(format!("{key}[{i}].{}", err.field), err.reason))?;
        }
        Ok(())
    }

    /// The agent settings: `[agent]`, the prices and the workspace quota.
    pub fn agent_config(&self) -> Result<AgentConfig, ConfigError> {
        let defaults = AgentConfig::default();
        Ok(AgentConfig {
            system: self.agent.system.clone(),
            max_turns: self.agent.max_turns.unwrap_or(defaults.max_turns),
            max_answer_tokens: self.agent.max_answer_tokens.unwrap_or(defaults.max_answer_tokens),
            budget: self.agent.budget,
            prices: self.prices.clone(),
            quota: self.quota()?,
            models: self.agent.models.clone(),
            ..defaults
        })
    }

    /// The runtime's per-call limits, `[limits]` over the defaults.
    pub fn limits(&self) -> Result<Limits, ConfigError> {
        let section = &self.limits;
        let mut limits = Limits::default();
        if let Some(secs) = section.deadline_secs {
            limits.deadline = self.seconds("limits.deadline_secs", secs)?;
        }
        for (tool, secs) in &section.tool_deadline_secs {
            let deadline = self.seconds(&format!("limits.tool_deadline_secs.{tool}"), *secs)?;
            limits.tool_deadlines.insert(tool.clone(), deadline);
        }
        if let Some(mib) = section.memory_mib {
            limits.memory_bytes = self.scaled("limits.memory_mib", mib, 20)?;
        }
        if let Some(kib) = section.result_kib {
            limits.result_bytes = self.scaled("limits.result_kib", kib, 10)?;
        }
        if let Some(kib) = section.stdout_kib {
            limits.stdout_bytes = self.scaled("limits.stdout_kib", kib, 10)?;
        }
        if let Some(kib) = section.stderr_kib {
            limits.stderr_bytes = self.scaled("limits.stderr_kib", kib, 10)?;
        }
        if let Some(calls) = section.host_calls {
            limits.host_calls = self.positive("limits.host_calls", calls)?;
        }
        Ok(limits)
    }

    /// The workspace quota of every session, `[limits]` over the defaults.
    pub fn quota(&self) -> Result<Quota, ConfigError> {
        let section = &self.limits;
        let mut quota = Quota::default();
        if let Some(mib) = section.workspace_mib {
            quota.max_bytes = self.scaled("limits.workspace_mib", mib, 20)? as u64;
        }
        if let Some(files) = section.workspace_files {
            quota.max_files = self.positive("limits.workspace_files", files)?;
        }
        if let Some(mib) = section.file_mib {
            quota.max_file_size = self.scaled("limits.file_mib", mib, 20)? as u64;
        }
        Ok(quota)
    }

    fn positive(&self, key: &str, value: u64) -> Result<u64, ConfigError> {
        if value == 0 { Err(self.invalid(key, "must be at least 1")) } else { Ok(value) }
    }

    fn seconds(&self, key: &str, secs: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.positive(key, secs)?))
    }

    /// `value << shift` as a byte count, refusing 0 and overflow.
    fn scaled(&self, key: &str, value: u64, shift: u32) -> Result<usize, ConfigError> {
        self.positive(key, value)?
            .checked_mul(1 << shift)
            .and_then(|bytes| usize::try_from(bytes).ok())
            .ok_or_else(|| self.invalid(key, "is too large"))
    }

    /// The network of every session, with secrets from the secrets file and the
    /// process environment (`HARNESS_SECRET_<NAME>`).
    pub fn network(&self) -> Result<NetworkSetup, ConfigError> {
        // `vars()` panics on a variable that is not Unicode; such a variable can't be a
        // secret we were told about, so it is skipped.
        let vars =
            std::env::vars_os().filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)));
        self.network_from(vars)
    }

    /// Like [`network`](Self::network), reading the environment from `vars`.
    pub fn network_from(&self, vars: impl IntoIterator<Item = (String, String)>) -> Result<NetworkSetup, ConfigError> {
        let section = &self.network;
        let mut named: BTreeMap<String, SecretValue> = BTreeMap::new();
        if let Some(file) = &section.secrets_file {
            let path = match (&self.path, file.is_relative()) {
                (Some(config), true) => config.parent().unwrap_or(Path::new(".")).join(file),
                _ => file.clone(),
            };
            let secrets_error =
                |problem: String| ConfigError::Secrets { path: path.clone(), file: self.file(), problem };
            let text = std::fs::read_to_string(&path).map_err(|err| secrets_error(format!("cannot read it: {err}")))?;
            let map: BTreeMap<String, String> = serde_json::from_str(&text)
                .map_err(|err| secrets_error(format!("must be a JSON object of strings: {err}")))?;
            named.extend(map.into_iter().map(|(name, value)| (name, SecretValue::new(value))));
        }
        // Kept by name (the store can't list them) so a recorder can redact them too.
        for (key, value) in vars {
            if let Some(name) = key.strip_prefix(ENV_PREFIX).filter(|name| !name.is_empty()) {
                named.insert(name.to_string(), SecretValue::new(value));
            }
        }
        let mut store = SecretStore::new();
        for (name, value) in &named {
            store.insert(name, value.clone());
        }
        let policy = Policy { allow: section.allow.clone() };
        let network_error = |source| ConfigError::Network { file: self.file(), source };
        let mut network = Network::new(policy, store, section.inject.clone()).map_err(network_error)?;
        for (tool, tool_policy) in &section.tools {
            network = network.with_tool_policy(tool, Policy { allow: tool_policy.allow.clone() });
        }
        Ok(NetworkSetup { network, secrets: named.into_iter().collect() })
    }
}

#[cfg(test)]
mod tests;
