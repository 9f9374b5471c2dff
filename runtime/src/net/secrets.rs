//! Secrets held by the host, and the rules that inject them into outgoing requests.
//!
//! A guest never sees a secret: the host adds it to requests a rule matches
//! (a header such as `Authorization: Bearer …`, HTTP basic auth, or a query
//! parameter), and the [`Redactor`] built from the same store replaces it in
//! everything that flows back. Where a rule matches, a guest-supplied
//! `authorization`, `cookie` or `proxy-authorization` header is refused, so a
//! tool cannot smuggle its own credentials past the rule or probe the secret.

use std::collections::BTreeMap;

use base64::Engine as _;
use http::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::redact::{RedactError, Redactor};

/// A secret's value; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl SecretValue {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }

    /// The value, for injection only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Named secrets.
#[derive(Debug, Clone, Default)]
pub struct SecretStore {
    secrets: BTreeMap<String, SecretValue>,
}

/// Environment variables named `PREFIX<NAME>` become secret `NAME`.
pub const ENV_PREFIX: &str = "HARNESS_SECRET_";

impl SecretStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a secret.
    pub fn insert(&mut self, name: &str, value: SecretValue) {
        self.secrets.insert(name.to_string(), value);
    }

    /// Adds every `HARNESS_SECRET_<NAME>` variable of `vars` as secret `NAME`.
    pub fn extend_from_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        for (key, value) in vars {
            if let Some(name) = key.strip_prefix(ENV_PREFIX).filter(|name| !name.is_empty()) {
                self.insert(name, SecretValue::new(value));
            }
        }
    }

    /// Adds the secrets of a JSON object `{"NAME": "value", …}` (a config file's section).
    pub fn extend_from_json(&mut self, json: &str) -> Result<(), String> {
        let map: BTreeMap<String, String> =
            serde_json::from_str(json).map_err(|err| format!("secrets must be an object of strings: {err}"))?;
        for (name, value) in map {
            self.insert(&name, SecretValue::new(value));
        }
        Ok(())
    }

    /// The secret called `name`.
    pub fn get(&self, name: &str) -> Option<&SecretValue> {
        self.secrets.get(name)
    }

    /// A redactor for every secret in the store.
    pub fn redactor(&self) -> Result<Redactor, RedactError> {
        Redactor::new(self.secrets.iter().map(|(name, value)| (name.as_str(), value.expose().as_bytes())))
    }
}

/// How a secret is added to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Injection {
    /// A header whose value is `format` with `{secret}` replaced (e.g. `Bearer {secret}`).
    Header { name: String, format: String },
    /// HTTP basic auth with this user name and the secret as password.
    Basic { username: String },
    /// A query parameter.
    Query { param: String },
}

/// Injects one secret into requests to one host and path prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectionRule {
    /// The secret's name in the store.
    pub secret: String,
    /// The host (exact, case-insensitive).
    pub host: String,
    /// The scheme; `https` by default, so a secret never crosses plain HTTP unless
    /// the operator says so.
    #[serde(default = "https")]
    pub scheme: String,
    /// The port; `None` means the scheme's default port. A different port on the
    /// same host may be a different service, so it gets nothing.
    #[serde(default)]
    pub port: Option<u16>,
    /// Only paths starting with this prefix.
    #[serde(default = "root")]
    pub path_prefix: String,
    /// How the secret is added.
    pub inject: Injection,
}

fn root() -> String {
    "/".into()
}

fn https() -> String {
    "https".into()
}

/// Why a request could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectError {
    /// The guest set a credential header on a request a rule covers.
    #[error("the tool may not set the `{0}` header on requests to {1}: the host supplies credentials there")]
    GuestCredential(String, String),
    /// A rule names a secret the store does not hold.
    #[error("injection rule for {host} names secret `{secret}`, which is not configured")]
    MissingSecret { secret: String, host: String },
    /// The injected value is not a valid header or URI.
    #[error("cannot inject secret `{0}`: the result is not a valid header or URI")]
    Invalid(String),
}

const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

impl InjectionRule {
    fn matches(&self, parts: &http::request::Parts) -> bool {
        let uri = &parts.uri;
        let scheme = uri.scheme_str().unwrap_or_default();
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        };
        let port = uri.port_u16().or(default_port);
        let wanted_port = self.port.or(default_port);
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        scheme.eq_ignore_ascii_case(&self.scheme)
            && port.is_some()
            && port == wanted_port
            && host.eq_ignore_ascii_case(self.host.trim_start_matches('[').trim_end_matches(']'))
            && super::policy::path_within(uri.path(), &self.path_prefix)
    }
}

/// Applies the first matching rule to `parts`: refuses guest credential headers,
/// then adds the secret. A request no rule matches is left alone.
pub fn inject(
    rules: &[InjectionRule],
    store: &SecretStore,
    parts: &mut http::request::Parts,
) -> Result<(), InjectError> {
    let Some(rule) = rules.iter().find(|rule| rule.matches(parts)) else { return Ok(()) };
    if let Some(header) = CREDENTIAL_HEADERS.iter().find(|h| parts.headers.contains_key(**h)) {
        return Err(InjectError::GuestCredential(header.to_string(), rule.host.clone()));
    }
    let secret = store
        .get(&rule.secret)
        .ok_or_else(|| InjectError::MissingSecret { secret: rule.secret.clone(), host: rule.host.clone() })?;
    let invalid = || InjectError::Invalid(rule.secret.clone());
    match &rule.inject {
        Injection::Header { name, format } => {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let mut value =
                HeaderValue::from_str(&format.replace("{secret}", secret.expose())).map_err(|_| invalid())?;
            value.set_sensitive(true);
            parts.headers.insert(name, value);
        }
        Injection::Basic { username } => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", secret.expose()));
            let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).map_err(|_| invalid())?;
            value.set_sensitive(true);
            parts.headers.insert(http::header::AUTHORIZATION, value);
        }
        Injection::Query { param } => {
            let encode =
                |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
            let pair = format!("{}={}", encode(param), encode(secret.expose()));
            let path_and_query = match parts.uri.query() {
                Some(query) => format!("{}?{query}&{pair}", parts.uri.path()),
                None => format!("{}?{pair}", parts.uri.path()),
            };
            let mut uri = parts.uri.clone().into_parts();
            uri.path_and_query = Some(path_and_query.parse().map_err(|_| invalid())?);
            parts.uri = http::Uri::from_parts(uri).map_err(|_| invalid())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "canary-9d41e0b7c3";

    fn store() -> SecretStore {
        let mut store = SecretStore::new();
        store.extend_from_env([
            (format!("{ENV_PREFIX}API"), CANARY.to_string()),
            ("UNRELATED".to_string(), "x".to_string()),
            (ENV_PREFIX.to_string(), "nameless".to_string()),
        ]);
        store
    }

    fn parts(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = http::Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn rule(inject: Injection) -> Vec<InjectionRule> {
        vec![InjectionRule {
            secret: "API".into(),
            host: "api.example.com".into(),
            scheme: "https".into(),
            port: None,
            path_prefix: "/v1".into(),
            inject,
        }]
    }

    #[test]
    fn values_never_show_in_debug_output() {
        let store = store();
        assert_eq!(store.get("API").unwrap().expose(), CANARY);
        assert!(store.get("UNRELATED").is_none() && store.get("").is_none());
        assert!(!format!("{store:?}").contains(CANARY));
    }

    #[test]
    fn header_basic_and_query_injection() {
        let store = store();
        let mut p = parts("https://api.example.com/v1/x", &[]);
        inject(
            &rule(Injection::Header { name: "authorization".into(), format: "Bearer {secret}".into() }),
            &store,
            &mut p,
        )
        .unwrap();
        assert_eq!(p.headers["authorization"], format!("Bearer {CANARY}").as_str());
        assert!(p.headers["authorization"].is_sensitive());

        let mut p = parts("https://api.example.com/v1/x", &[]);
        inject(&rule(Injection::Basic { username: "bot".into() }), &store, &mut p).unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode(format!("bot:{CANARY}"));
        assert_eq!(p.headers["authorization"], format!("Basic {expected}").as_str());

        let mut p = parts("https://api.example.com/v1/x?a=1", &[]);
        inject(&rule(Injection::Query { param: "key".into() }), &store, &mut p).unwrap();
        assert_eq!(p.uri.to_string(), format!("https://api.example.com/v1/x?a=1&key={}", CANARY.replace('-', "%2D")));
    }

    #[test]
    fn unmatched_requests_are_untouched_and_guest_credentials_refused_where_a_rule_matches() {
        let store = store();
        let rules = rule(Injection::Header { name: "x-api-key".into(), format: "{secret}".into() });
        let mut other = parts("https://other.example.com/v1/x", &[("authorization", "mine")]);
        inject(&rules, &store, &mut other).unwrap();
        assert_eq!(other.headers["authorization"], "mine", "no rule: the guest's own header passes");
        let mut outside = parts("https://api.example.com/v2/x", &[]);
        inject(&rules, &store, &mut outside).unwrap();
        assert!(outside.headers.get("x-api-key").is_none(), "path outside the rule's prefix");
        for header in ["authorization", "Cookie", "proxy-authorization"] {
            let mut p = parts("https://api.example.com/v1/x", &[(header, "guess")]);
            let err = inject(&rules, &store, &mut p).unwrap_err();
            assert_eq!(err, InjectError::GuestCredential(header.to_ascii_lowercase(), "api.example.com".into()));
        }
    }

    #[test]
    fn injection_needs_the_rule_scheme_and_port_and_respects_path_boundaries() {
        let store = store();
        let rules = rule(Injection::Header { name: "x-api-key".into(), format: "{secret}".into() });
        for uri in [
            "http://api.example.com/v1/x",
            "https://api.example.com:8443/v1/x",
            "https://api.example.com/v10/x",
            "https://api.example.com./v1/x",
        ] {
            let mut p = parts(uri, &[]);
            inject(&rules, &store, &mut p).unwrap();
            assert!(p.headers.get("x-api-key").is_none(), "{uri} must not get the secret");
        }
        for uri in ["https://API.example.com:443/v1", "https://api.example.com/v1?q=1"] {
            let mut p = parts(uri, &[]);
            inject(&rules, &store, &mut p).unwrap();
            assert_eq!(p.headers["x-api-key"], CANARY, "{uri}");
        }
    }

    #[test]
    fn a_missing_secret_is_a_clear_error_and_the_redactor_covers_the_store() {
        let rules = vec![InjectionRule {
            secret: "NOPE".into(),
            host: "api.example.com".into(),
            scheme: "https".into(),
            port: None,
            path_prefix: "/".into(),
            inject: Injection::Query { param: "k".into() },
        }];
        let err = inject(&rules, &store(), &mut parts("https://api.example.com/", &[])).unwrap_err();
        assert_eq!(err.to_string(), "injection rule for api.example.com names secret `NOPE`, which is not configured");
        let redactor = store().redactor().unwrap();
        assert_eq!(redactor.redact_str(&format!("echo: {CANARY}")), "echo: [REDACTED:API]");
    }

    #[test]
    fn rules_and_secrets_parse_from_config() {
        let rules: Vec<InjectionRule> = serde_json::from_str(
            r#"[{"secret": "API", "host": "api.example.com", "inject": {"kind": "header", "name": "authorization", "format": "Bearer {secret}"}}]"#,
        )
        .unwrap();
        assert_eq!(rules[0].path_prefix, "/");
        let mut store = SecretStore::new();
        assert!(store.extend_from_json(r#"{"API": 5}"#).unwrap_err().contains("object of strings"));
        store.extend_from_json(r#"{"API": "v"}"#).unwrap();
        assert_eq!(store.get("API").unwrap().expose(), "v");
    }
}
