//! The outbound network policy: an allowlist that denies by default, and the
//! address guard that keeps tools away from the host's own network.
//!
//! A request is allowed when some rule matches its scheme, host (exactly, or a
//! `*.` wildcard for subdomains), port, path prefix and method. Independently,
//! every address the host resolves for it must be public, unless a rule names
//! that address literally: loopback, private, link-local (the cloud metadata
//! endpoint 169.254.169.254 among them), shared (CGNAT), unspecified and
//! IPv4-mapped forms of those are refused. Every redirect hop is checked again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// One allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// `https` (the default) or `http`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// A host name (`api.example.com`), a wildcard for its subdomains
    /// (`*.example.com`), or a literal IP address.
    pub host: String,
    /// The port; `None` means the scheme's default port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Only paths starting with this prefix (`/` allows every path).
    #[serde(default = "default_path")]
    pub path_prefix: String,
    /// Allowed methods, upper case; empty allows every method.
    #[serde(default)]
    pub methods: Vec<String>,
}

fn default_scheme() -> String {
    "https".into()
}

fn default_path() -> String {
    "/".into()
}

/// An allowlist; the empty policy denies everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The rules, any of which may allow a request.
    #[serde(default)]
    pub allow: Vec<Rule>,
}

/// A request as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Lower-case scheme.
    pub scheme: &'a str,
    /// Host name or IP literal, without brackets.
    pub host: &'a str,
    /// Port, explicit or the scheme's default.
    pub port: u16,
    /// Path, starting with `/`.
    pub path: &'a str,
    /// Method, upper case.
    pub method: &'a str,
}

/// Why a request was refused; the message names the reason for the tool author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No rule allows this scheme, host, port, path and method.
    #[error("no network rule allows {method} {scheme}://{host}:{port}{path}")]
    NoRule { method: String, scheme: String, host: String, port: u16, path: String },
    /// The host resolved to an address tools may not reach.
    #[error("{host} resolves to {address}, a {class} address that tools may not reach")]
    Address { host: String, address: IpAddr, class: &'static str },
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

/// A rule field that can never match as written, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidRule {
    /// The field, e.g. `host` or `allow[2].scheme`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(field: &str, reason: String) -> InvalidRule {
    InvalidRule { field: field.to_string(), reason }
}

/// Checks a target pattern (of an allow or injection rule) for what serde can't:
/// a supported scheme, a host without paths or spaces, a path prefix from `/`.
pub fn check_target(scheme: &str, host: &str, path_prefix: &str) -> Result<(), InvalidRule> {
    if scheme != "https" && scheme != "http" {
        return Err(invalid("scheme", format!("{scheme:?} is neither \"https\" nor \"http\"")));
    }
    if host.trim().is_empty() || host.contains(|c: char| c == '/' || c.is_whitespace()) {
        return Err(invalid("host", format!("{host:?} is not a host name or IP address")));
    }
    if !path_prefix.starts_with('/') {
        return Err(invalid("path_prefix", format!("{path_prefix:?} must start with `/`")));
    }
    Ok(())
}

impl Rule {
    /// Checks that the rule can match: [`check_target`] and upper-case methods.
    pub fn validate(&self) -> Result<(), InvalidRule> {
        check_target(&self.scheme, &self.host, &self.path_prefix)?;
        if let Some(method) = self.methods.iter().find(|m| m.is_empty() || **m != m.to_ascii_uppercase()) {
            return Err(invalid("methods", format!("{method:?} is not an upper-case method")));
        }
        Ok(())
    }

    fn host_matches(&self, host: &str) -> bool {
        let (pattern, host) = (self.host.to_ascii_lowercase(), host.to_ascii_lowercase());
        match pattern.strip_prefix("*.") {
            // `*.example.com` covers subdomains, not example.com itself.
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => pattern == host,
        }
    }

    /// Whether this rule allows `target`.
    pub fn allows(&self, target: &Target<'_>) -> bool {
        self.scheme.eq_ignore_ascii_case(target.scheme)
            && self.host_matches(target.host)
            && self.port.or_else(|| default_port(&self.scheme.to_ascii_lowercase())) == Some(target.port)
            && path_within(target.path, &self.path_prefix)
            && (self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(target.method)))
    }
}

/// `/v1/x` is within `/v1` and `/v1/`, but `/v10` is not within `/v1`.
pub(crate) fn path_within(path: &str, prefix: &str) -> bool {
    if prefix.is_empty() || prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'),
        None => false,
    }
}

impl Policy {
    /// Checks every rule ([`Rule::validate`]); the field names the rule's index.
    pub fn validate(&self) -> Result<(), InvalidRule> {
        for (i, rule) in self.allow.iter().enumerate() {
            rule.validate().map_err(|err| InvalidRule { field: format!("allow[{i}].{}", err.field), ..err })?;
        }
        Ok(())
    }

    /// The first rule allowing `target`, or why none does.
    pub fn check(&self, target: &Target<'_>) -> Result<&Rule, Denied> {
        self.allow.iter().find(|rule| rule.allows(target)).ok_or_else(|| Denied::NoRule {
            method: target.method.to_string(),
            scheme: target.scheme.to_string(),
            host: target.host.to_string(),
            port: target.port,
            path: target.path.to_string(),
        })
    }

    /// Checks one resolved address of `host`: refused if it is not public,
    /// unless a rule names exactly this address.
    pub fn check_address(&self, host: &str, address: IpAddr) -> Result<(), Denied> {
        let Some(class) = restricted_class(address) else { return Ok(()) };
        let named = self.allow.iter().any(|rule| rule.host.parse::<IpAddr>().ok() == Some(address));
        if named { Ok(()) } else { Err(Denied::Address { host: host.to_string(), address, class }) }
    }
}

/// The class of a non-public address, or `None` for a public one.
pub fn restricted_class(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_class(v4),
            None => v6_class(v6),
        },
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata)")
    } else if ip.is_private() {
        Some("private")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_broadcast() || ip.is_multicast() || a == 0 || a >= 240 {
        Some("reserved")
    } else {
        None
    }
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xfe00 == 0xfc00 {
        Some("private (unique local)")
    } else if ip.is_multicast() {
        Some("reserved")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(scheme: &'a str, host: &'a str, port: u16, path: &'a str, method: &'a str) -> Target<'a> {
        Target { scheme, host, port, path, method }
    }

    fn policy(json: &str) -> Policy {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_empty_policy_denies_everything() {
        let err = Policy::default().check(&target("https", "example.com", 443, "/", "GET")).unwrap_err();
        assert_eq!(err.to_string(), "no network rule allows GET https://example.com:443/");
    }

    #[test]
    fn rules_match_scheme_host_port_path_and_method() {
        let p = policy(
            r#"{"allow": [{"host": "api.example.com", "path_prefix": "/v1", "methods": ["GET", "POST"]},
                          {"host": "*.cdn.example.com"},
                          {"scheme": "http", "host": "127.0.0.1", "port": 8080}]}"#,
        );
        let ok = |t: Target<'_>| p.check(&t).is_ok();
        assert!(ok(target("https", "api.example.com", 443, "/v1/chat", "POST")));
        assert!(ok(target("https", "API.Example.com", 443, "/v1", "get")));
        assert!(!ok(target("https", "api.example.com", 443, "/v10", "GET")), "prefix is per segment");
        assert!(!ok(target("https", "api.example.com", 443, "/v1/x", "DELETE")), "method");
        assert!(!ok(target("http", "api.example.com", 80, "/v1/x", "GET")), "scheme");
        assert!(!ok(target("https", "api.example.com", 8443, "/v1/x", "GET")), "port");
        assert!(!ok(target("https", "evil-api.example.com", 443, "/v1/x", "GET")), "host");
        assert!(ok(target("https", "img.cdn.example.com", 443, "/a.png", "GET")));
        assert!(!ok(target("https", "cdn.example.com", 443, "/a.png", "GET")), "a wildcard covers subdomains only");
        assert!(!ok(target("https", "xcdn.example.com", 443, "/", "GET")));
        assert!(ok(target("http", "127.0.0.1", 8080, "/", "GET")));
    }

    #[test]
    fn unknown_fields_in_a_policy_are_refused() {
        let err = serde_json::from_str::<Policy>(r#"{"allow": [{"host": "a", "hots": "b"}]}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `hots`"), "{err}");
    }

    #[test]
    fn non_public_addresses_are_refused_unless_named() {
        let p = policy(r#"{"allow": [{"scheme": "http", "host": "127.0.0.1", "port": 8080}]}"#);
        for (address, class) in [
            ("169.254.169.254", "link-local (cloud metadata)"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("127.0.0.2", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("fd00::1", "private (unique local)"),
            ("::ffff:169.254.169.254", "link-local (cloud metadata)"),
            ("::ffff:127.0.0.1", "loopback"),
        ] {
            let ip: IpAddr = address.parse().unwrap();
            let err = p.check_address("somewhere.example", ip).unwrap_err();
            assert_eq!(err, Denied::Address { host: "somewhere.example".into(), address: ip, class }, "{address}");
        }
        assert!(p.check_address("localhost", "127.0.0.1".parse().unwrap()).is_ok(), "named explicitly");
        assert!(p.check_address("example.com", "93.184.216.34".parse().unwrap()).is_ok());
        assert!(p.check_address("example.com", "2606:2800:220:1::1".parse().unwrap()).is_ok());
    }
}
