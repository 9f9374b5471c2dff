//! Outbound network for tools: `wasi:http` requests under a per-session allowlist,
//! with host-held secrets injected on the way out and redacted on the way back.
//!
//! - [`policy`]: the allowlist and the address guard against server-side request
//!   forgery;
//! - [`secrets`]: the host's secret store and the rules that inject secrets;
//! - [`redact`]: replacing every form of a secret with `[REDACTED:NAME]`;
//! - `outgoing`: the `wasi:http` send hook that ties them together, and `body`,
//!   the response body that enforces limits and redacts while the guest reads.
//!
//! A guest never holds a secret: it sends a request without credentials, the
//! host checks the policy, resolves the name itself, refuses non-public
//! addresses, adds the credential and connects; headers and body come back
//! through the redactor before the guest sees a byte.

mod body;
pub(crate) mod outgoing;
pub mod policy;
pub mod redact;
pub mod secrets;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use policy::Policy;
use redact::{RedactError, Redactor};
use secrets::{InjectionRule, SecretStore};
use wasmtime_wasi_http::WasiBody;

/// Limits on a tool's outgoing requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time to resolve the name and open the connection (TLS included).
    pub connect_timeout: Duration,
    /// Time from sending the request to the response head.
    pub first_byte_timeout: Duration,
    /// Time from the start of the request to the end of the response body.
    pub total_timeout: Duration,
    /// Bytes of response body, counted before redaction.
    pub max_response_bytes: u64,
    /// Requests one tool call may send.
    pub max_requests_per_call: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(60),
            max_response_bytes: 16 << 20,
            max_requests_per_call: 64,
        }
    }
}

/// Why a network configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// An injection rule names a secret the store doesn't hold.
    #[error("injection rule for {host} names secret `{secret}`, which is not configured")]
    MissingSecret {
        /// The rule's host.
        host: String,
        /// The secret's name.
        secret: String,
    },
    /// The redactor could not be built from the store.
    #[error(transparent)]
    Redactor(#[from] RedactError),
}

/// A session's outbound network: the allowlist (with per-tool overrides), the
/// secrets and injection rules, the redactor built from them, and the limits.
///
/// The default denies every request.
#[derive(Debug, Clone)]
pub struct Network {
    policy: Policy,
    tool_policies: HashMap<String, Policy>,
    /// A narrower allowlist every request must also pass (a session's own).
    within: Option<Policy>,
    rules: Vec<InjectionRule>,
    secrets: SecretStore,
    redactor: Arc<Redactor>,
    limits: HttpLimits,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            policy: Policy::default(),
            tool_policies: HashMap::new(),
            within: None,
            rules: Vec::new(),
            secrets: SecretStore::new(),
            redactor: Arc::new(Redactor::new(std::iter::empty()).expect("no secrets")),
            limits: HttpLimits::default(),
        }
    }
}

impl Network {
    /// A network allowing what `policy` allows, injecting `secrets` per `rules`.
    /// Every rule must name a secret the store holds.
    pub fn new(policy: Policy, secrets: SecretStore, rules: Vec<InjectionRule>) -> Result<Self, NetworkError> {
        if let Some(rule) = rules.iter().find(|rule| secrets.get(&rule.secret).is_none()) {
            return Err(NetworkError::MissingSecret { host: rule.host.clone(), secret: rule.secret.clone() });
        }
        let redactor = Arc::new(secrets.redactor()?);
        Ok(Network {
            policy,
            tool_policies: HashMap::new(),
            within: None,
            rules,
            secrets,
            redactor,
            limits: HttpLimits::default(),
        })
    }

    /// Gives tool `tool` its own policy instead of the session's.
    pub fn with_tool_policy(mut self, tool: &str, policy: Policy) -> Self {
        self.tool_policies.insert(tool.to_string(), policy);
        self
    }

    /// This network, where every request must also be allowed by `policy`: a
    /// session narrowing what the host allows. It never widens it: the host's
    /// policy (and a tool's override) still applies, and only the host's rules
    /// can make a non-public address reachable.
    pub fn within(&self, policy: Policy) -> Self {
        Network { within: Some(policy), ..self.clone() }
    }

    /// The narrower allowlist set by [`within`](Self::within), if any.
    pub fn narrowed_by(&self) -> Option<&Policy> {
        self.within.as_ref()
    }

    /// Replaces the request limits.
    pub fn with_limits(mut self, limits: HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The policy that governs `tool`.
    pub fn policy_for(&self, tool: &str) -> &Policy {
        self.tool_policies.get(tool).unwrap_or(&self.policy)
    }

    /// The redactor for every secret this network can inject: callers run tool
    /// output, logs and anything persisted through it too.
    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.redactor
    }

    /// The request limits.
    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    /// Sends `request` exactly as a call of `tool` would: policy, injection, the
    /// address guard, the limits and redaction. For hosts that fetch on a tool's
    /// behalf, and for measuring the path without a guest.
    pub async fn send(
        &self,
        tool: &str,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, wasmtime_wasi_http::Error> {
        let (response, connection) = outgoing::send(self, tool, request, None).await?;
        // The connection task must outlive this call: the body streams from it.
        tokio::spawn(Box::into_pin(connection));
        Ok(response)
    }
}
