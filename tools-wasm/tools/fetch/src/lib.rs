//! `fetch`: one HTTP request (and its redirects) through the host's network policy.
//!
//! The tool only speaks `wasi:http`. What it may reach, and which credentials are
//! added, is the host's decision; a refusal comes back as an error naming the
//! host's reason, so the model can tell "not allowed" from "not found".

use std::collections::BTreeMap;
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::Deserialize;
use tool_sdk::http::{self, Request, Response};
use tool_sdk::{Tool, export_tools};

/// Body bytes shown when the model gives no `max_bytes`.
const DEFAULT_MAX_BYTES: usize = 100 * 1024;
/// The most body bytes shown, below the host's 256 KiB result cap.
const MAX_BYTES: usize = 200 * 1024;
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;
/// Response headers worth showing a model.
const SHOWN_HEADERS: [&str; 8] =
    ["content-type", "content-length", "location", "last-modified", "etag", "retry-after", "www-authenticate", "link"];

const DESCRIPTION: &str = "\
Sends one HTTP(S) request and returns the response: a first line `HTTP <status>`, then selected headers \
(content-type, content-length, location, last-modified, etag, retry-after, www-authenticate, link) as `name: value` \
lines, a blank line, and the body as text. \
`method` is any HTTP method (default GET); `headers` is an object of header names to values; `body` is sent as is \
(set a content-type header for it). Redirects (301, 302, 303, 307, 308) are followed up to 5 times unless \
`follow_redirects` is false; each hop is listed before the final response, and a 303 (or a 301/302 after a POST) \
continues as GET without the body. \
The body is shown up to `max_bytes` bytes (default 102400, at most 204800) and ends with a `[… truncated …]` note \
when cut; a binary body (not UTF-8) is described, not shown. \
Which hosts are reachable is decided by the host's network policy, and credentials for APIs it knows are added by \
the host: never put API keys in the request, and don't set authorization or cookie headers for hosts the host \
authenticates. A refused request fails with the host's reason. Non-2xx statuses are returned as normal results.";

/// Input of `fetch`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FetchInput {
    /// Absolute http:// or https:// URL.
    url: String,
    /// HTTP method, such as GET, POST, PUT, PATCH, DELETE or HEAD. Defaults to GET.
    method: Option<String>,
    /// Request headers, as an object of names to values.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Request body, sent as UTF-8 text.
    body: Option<String>,
    /// Whether to follow redirects (default true).
    follow_redirects: Option<bool>,
    /// Most body bytes to return (default 102400, at most 204800).
    #[schemars(range(min = 1, max = 204800))]
    max_bytes: Option<usize>,
}

fn fetch(input: FetchInput) -> Result<String, String> {
    let max_bytes = input.max_bytes.unwrap_or(DEFAULT_MAX_BYTES).clamp(1, MAX_BYTES);
    let follow = input.follow_redirects.unwrap_or(true);
    let method = input.method.unwrap_or_else(|| "GET".into());
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
        return Err(format!("`{method}` is not a valid HTTP method"));
    }
    let mut request = Request {
        method: method.to_ascii_uppercase(),
        url: input.url,
        headers: input.headers.into_iter().collect(),
        body: input.body.map(String::into_bytes),
    };
    let mut out = String::new();
    for hop in 0..=MAX_REDIRECTS {
        let response = http::send(&request, max_bytes).map_err(|err| fail(&out, &request, err))?;
        let location = response.header("location");
        let redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308) && follow;
        match (redirect, location) {
            (true, Some(location)) if hop < MAX_REDIRECTS => {
                let next = url::Url::parse(&request.url)
                    .and_then(|base| base.join(&location))
                    .map_err(|err| format!("{out}redirect to an invalid location `{location}`: {err}"))?;
                let _ = writeln!(out, "[redirect {} {} → {next}]", response.status, request.url);
                let downgrade = response.status == 303 || (matches!(response.status, 301 | 302) && request.method == "POST");
                if downgrade {
                    request.method = "GET".into();
                    request.body = None;
                    request.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
                }
                request.url = next.to_string();
            }
            (true, Some(_)) => return Err(format!("{out}stopped after {MAX_REDIRECTS} redirects")),
            _ => {
                render(&mut out, &response, max_bytes);
                return Ok(out);
            }
        }
    }
    unreachable!("the loop returns by its last hop")
}

fn fail(out: &str, request: &Request, err: http::Error) -> String {
    format!("{out}{} {} failed: {err}", request.method, request.url)
}

fn render(out: &mut String, response: &Response, max_bytes: usize) {
    let _ = writeln!(out, "HTTP {}", response.status);
    for name in SHOWN_HEADERS {
        if let Some(value) = response.header(name) {
            let _ = writeln!(out, "{name}: {value}");
        }
    }
    out.push('\n');
    match std::str::from_utf8(&response.body) {
        Ok(text) => out.push_str(text),
        // A cut may split a character: show the valid prefix of a text body.
        Err(err) if response.truncated && err.error_len().is_none() => {
            out.push_str(std::str::from_utf8(&response.body[..err.valid_up_to()]).unwrap_or_default())
        }
        Err(_) => {
            let kind = response.header("content-type").unwrap_or_else(|| "unknown type".into());
            let _ = write!(out, "[binary body ({kind}), {} bytes{} not shown]", response.body.len(), more(response));
            return;
        }
    }
    if response.truncated {
        let _ = write!(out, "\n[… truncated: showed the first {max_bytes} bytes of a longer body; raise max_bytes (at most {MAX_BYTES}) to see more]");
    }
}

fn more(response: &Response) -> &'static str {
    if response.truncated { " or more" } else { "" }
}

export_tools!(Tool::new("fetch", DESCRIPTION, fetch).read_only());
