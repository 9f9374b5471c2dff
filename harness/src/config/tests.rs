//! Parsing the config file: a full good file, and each way a file can be wrong.

use std::path::Path;

use super::*;
use crate::provider::ProviderKind;

const GOOD: &str = r#"
[provider]
kind = "anthropic"
model = "claude-sonnet-4-5"
retry = { max_attempts = 3 }

[agent]
system = "Be brief."
max_turns = 12
budget = { max_tokens = 100000, max_cost_usd = 1.5 }

[prices."claude-sonnet-4-5"]
input = 3.0
output = 15.0
cache_write = 3.75
cache_read = 0.3

[network]
allow = [{ host = "api.github.com", methods = ["GET"] }]
inject = [{ secret = "GITHUB", host = "api.github.com", inject = { kind = "header", name = "authorization", format = "Bearer {secret}" } }]
secrets_file = "secrets.json"

[network.tools.fetch]
allow = [{ host = "*.wikipedia.org", path_prefix = "/wiki/" }]

[limits]
deadline_secs = 5
tool_deadline_secs = { grep = 20 }
memory_mib = 64
workspace_mib = 10
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/harness/config.toml"), text)
}

#[test]
fn a_full_file_maps_onto_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, GOOD).unwrap();
    std::fs::write(dir.path().join("secrets.json"), r#"{"GITHUB": "ghp-from-file", "OTHER": "other-secret-value"}"#)
        .unwrap();
    let config = Config::from_file(&path).unwrap();

    let provider = config.provider.clone().unwrap();
    assert_eq!(provider.kind, ProviderKind::Anthropic);
    assert_eq!(provider.model.as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(provider.retry.max_attempts, 3);

    let agent = config.agent_config().unwrap();
    assert_eq!(agent.system.as_deref(), Some("Be brief."));
    assert_eq!(agent.max_turns, 12);
    assert_eq!(agent.max_answer_tokens, crate::provider::DEFAULT_MAX_TOKENS, "unset keeps the default");
    assert_eq!(agent.budget, Budget { max_tokens: Some(100_000), max_cost_usd: Some(1.5) });
    assert_eq!(agent.prices.0["claude-sonnet-4-5"].cache_read, 0.3);
    assert_eq!(agent.quota.max_bytes, 10 << 20);

    let limits = config.limits().unwrap();
    assert_eq!(limits.deadline, Duration::from_secs(5));
    assert_eq!(limits.deadline_for("grep"), Duration::from_secs(20));
    assert_eq!(limits.memory_bytes, 64 << 20);
    assert_eq!(limits.result_bytes, Limits::default().result_bytes);

    // The environment adds secrets and wins over the file.
    let env = [("HARNESS_SECRET_GITHUB".to_string(), "ghp-from-env".to_string()), ("PATH".into(), "/bin".into())];
    let setup = config.network_from(env).unwrap();
    let names: Vec<&str> = setup.secrets.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["GITHUB", "OTHER"]);
    assert_eq!(setup.secrets[0].1.expose(), "ghp-from-env");
    assert_eq!(setup.network.policy_for("grep").allow[0].host, "api.github.com");
    assert_eq!(setup.network.policy_for("fetch").allow[0].path_prefix, "/wiki/");
    assert_eq!(setup.network.redactor().redact_str("token ghp-from-env"), "token [REDACTED:GITHUB]");
}

#[test]
fn an_empty_file_is_the_defaults_and_ships_no_prices() {
    let config = parse("").unwrap();
    assert!(config.provider.is_none());
    assert!(config.prices.0.is_empty());
    let agent = config.agent_config().unwrap();
    assert_eq!(agent.max_turns, AgentConfig::default().max_turns);
    let setup = config.network_from(Vec::new()).unwrap();
    assert!(setup.secrets.is_empty());
    assert!(setup.network.policy_for("fetch").allow.is_empty(), "the default network denies everything");
}

#[test]
fn an_unknown_key_names_the_file_line_and_key() {
    let err = parse("[agent]\nmax_turns = 3\nmax_turn = 4\n").unwrap_err().to_string();
    assert!(err.contains("/etc/harness/config.toml"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("unknown field `max_turn`"), "{err}");

    let err = parse("[provider]\nkind = \"anthropic\"\nmodle = \"x\"\n").unwrap_err().to_string();
    assert!(err.contains("line 3") && err.contains("`modle`"), "{err}");

    let err = parse("[sandbox]\n").unwrap_err().to_string();
    assert!(err.contains("unknown field `sandbox`"), "{err}");
}

#[test]
fn bad_rules_are_refused_with_their_key() {
    let err = parse("[network]\nallow = [{ host = \"a.com\", hots = \"b\" }]\n").unwrap_err().to_string();
    assert!(err.contains("line 2") && err.contains("`hots`"), "{err}");

    let err = parse("[network]\nallow = [{ host = \"a.com\" }, { host = \"b.com\", scheme = \"ftp\" }]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`network.allow[1].scheme`") && err.contains("\"ftp\""), "{err}");

    let err = parse("[network.tools.fetch]\nallow = [{ host = \"a.com\", path_prefix = \"wiki\" }]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`network.tools.fetch.allow[0].path_prefix`"), "{err}");

    let err = parse("[network]\nallow = [{ host = \"a.com\", methods = [\"get\"] }]\n").unwrap_err().to_string();
    assert!(err.contains("`network.allow[0].methods`"), "{err}");

    let err = parse("[limits]\nmemory_mib = 0\n").unwrap_err().to_string();
    assert!(err.contains("`limits.memory_mib`: must be at least 1"), "{err}");

    let err = parse("[prices.m]\ninput = -1.0\noutput = 1.0\n").unwrap_err().to_string();
    assert!(err.contains("`prices.\"m\".input`"), "{err}");

    // An injection rule must name a secret that exists.
    let config = parse(
        "[network]\ninject = [{ secret = \"NOPE\", host = \"a.com\", inject = { kind = \"query\", param = \"k\" } }]\n",
    )
    .unwrap();
    let err = config.network_from(Vec::new()).unwrap_err().to_string();
    assert!(err.contains("`NOPE`") && err.contains("not configured"), "{err}");
}

#[test]
fn a_missing_or_malformed_secrets_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[network]\nsecrets_file = \"missing.json\"\n").unwrap();
    let config = Config::from_file(&path).unwrap();
    let err = config.network_from(Vec::new()).unwrap_err().to_string();
    assert!(err.contains(&dir.path().join("missing.json").display().to_string()), "{err}");
    assert!(err.contains("network.secrets_file") && err.contains("cannot read it"), "{err}");

    std::fs::write(dir.path().join("missing.json"), r#"{"A": 1}"#).unwrap();
    let err = config.network_from(Vec::new()).unwrap_err().to_string();
    assert!(err.contains("must be a JSON object of strings"), "{err}");
}

#[test]
fn a_missing_explicit_file_is_an_error() {
    let err = Config::load(Some(Path::new("/nonexistent/harness.toml"))).unwrap_err().to_string();
    assert!(err.contains("cannot read config file /nonexistent/harness.toml"), "{err}");
}
