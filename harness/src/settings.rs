//! What one session may use: a subset of the harness's tools, a network policy
//! narrower than the host's, tighter limits. Chosen when the session is created
//! (over the API, by an MCP client), stored with it, and applied to every run.
//!
//! Settings only narrow: a session can't reach a host, call a tool or spend
//! beyond what the operator configured. Narrowing is enforced where each thing is
//! used (the toolbox, the network's send path, the loop's budget checks), so a
//! stored setting that became wider than the configuration (the operator
//! tightened it since) is still bounded by the configuration.

use std::collections::BTreeSet;

use runtime::net::policy::Policy;
use serde::{Deserialize, Serialize};

/// A session's own settings; the default narrows nothing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// The tools the session offers; every tool if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<BTreeSet<String>>,
    /// An allowlist every outbound request must also pass (in addition to the
    /// host's); the host's alone if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Policy>,
    /// Most model calls in one run, if fewer than the configured number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// Most tokens over the session, if fewer than the configured budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Most US dollars over the session, if less than the configured budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
}

impl SessionSettings {
    /// Checks what serde can't, naming the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(policy) = &self.network {
            policy.validate().map_err(|err| format!("network.{err}"))?;
        }
        if self.max_turns == Some(0) {
            return Err("max_turns must be at least 1".into());
        }
        if let Some(max) = self.max_cost_usd
            && !(max.is_finite() && max >= 0.0)
        {
            return Err("max_cost_usd must be a non-negative number of US dollars".into());
        }
        Ok(())
    }

    /// Whether every field is at its default.
    pub fn is_default(&self) -> bool {
        *self == SessionSettings::default()
    }
}

/// The smaller of a configured limit and a session's, either of which may be absent.
pub(crate) fn tighter<T: PartialOrd + Copy>(configured: Option<T>, session: Option<T>) -> Option<T> {
    match (configured, session) {
        (Some(a), Some(b)) => Some(if b < a { b } else { a }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tighter_takes_the_smaller_of_what_is_set() {
        assert_eq!(tighter(Some(5), Some(3)), Some(3));
        assert_eq!(tighter(Some(3), Some(5)), Some(3));
        assert_eq!(tighter(None, Some(5)), Some(5));
        assert_eq!(tighter(Some(5), None), Some(5));
        assert_eq!(tighter::<u32>(None, None), None);
    }

    #[test]
    fn invalid_settings_name_their_field() {
        let zero = SessionSettings { max_turns: Some(0), ..SessionSettings::default() };
        assert!(zero.validate().unwrap_err().contains("max_turns"));
        let cost = SessionSettings { max_cost_usd: Some(f64::NAN), ..SessionSettings::default() };
        assert!(cost.validate().unwrap_err().contains("max_cost_usd"));
        let policy: Policy = serde_json::from_str(r#"{"allow":[{"host":"a.example","scheme":"ftp"}]}"#).unwrap();
        let network = SessionSettings { network: Some(policy), ..SessionSettings::default() };
        assert_eq!(network.validate().unwrap_err(), r#"network.allow[0].scheme: "ftp" is neither "https" nor "http""#);
        assert!(SessionSettings::default().validate().is_ok());
    }
}
