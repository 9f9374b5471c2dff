//! Outbound HTTP for tools, over `wasi:http`.
//!
//! The host decides what a tool may reach (its network policy), adds credentials
//! to requests its rules cover, and redacts secrets from what comes back. So a
//! tool sends plain requests and never handles an API key; a request the host
//! refuses fails with [`Error`] carrying the host's reason.

use std::fmt;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{self as wasi, ErrorCode, Fields, HeaderError, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method, such as `GET` or `POST` (any token is accepted).
    pub method: String,
    /// An absolute `http` or `https` URL.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

/// A response, with its body read up to a limit.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, at most the `max_body` passed to [`send`].
    pub body: Vec<u8>,
    /// Whether the body went on past `max_body` and was cut.
    pub truncated: bool,
}

impl Response {
    /// The first value of header `name` (case-insensitive), as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The URL can't be sent (not absolute, not http(s), malformed).
    Url(String),
    /// A header can't be sent (bad syntax, or one the host reserves such as `host`).
    Header(String),
    /// The host or the network failed the request; the text says why.
    Http(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url(reason) => write!(f, "invalid URL: {reason}"),
            Error::Header(reason) => write!(f, "invalid header: {reason}"),
            Error::Http(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for Error {}

/// Sends `request` and reads at most `max_body` bytes of the response body.
pub fn send(request: &Request, max_body: usize) -> Result<Response, Error> {
    let url = url::Url::parse(&request.url).map_err(|err| Error::Url(format!("{}: {err}", request.url)))?;
    let scheme = match url.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(Error::Url(format!("scheme `{other}` is not supported; use http or https"))),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Url("user information (`user@host`) is not allowed; send credentials in headers".into()));
    }
    let host = url.host_str().ok_or_else(|| Error::Url(format!("{}: no host", request.url)))?;
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };

    let entries: Vec<(String, Vec<u8>)> =
        request.headers.iter().map(|(name, value)| (name.to_ascii_lowercase(), value.clone().into_bytes())).collect();
    let fields = Fields::from_list(&entries).map_err(|err| Error::Header(header_error(err, &entries)))?;
    let outgoing = OutgoingRequest::new(fields);
    outgoing.set_method(&method(&request.method)).map_err(|()| Error::Http(format!("invalid method `{}`", request.method)))?;
    outgoing.set_scheme(Some(&scheme)).map_err(|()| Error::Url("invalid scheme".into()))?;
    outgoing.set_authority(Some(&authority)).map_err(|()| Error::Url(format!("invalid host `{authority}`")))?;
    outgoing.set_path_with_query(Some(&path)).map_err(|()| Error::Url(format!("invalid path `{path}`")))?;
    let body = outgoing.body().map_err(|()| Error::Http("the request body is unavailable".into()))?;

    // Send first, then stream the body: the host reads it as it is written.
    let pending = outgoing_handler::handle(outgoing, None).map_err(|code| Error::Http(describe(&code)))?;
    write_body(&body, request.body.as_deref())?;
    OutgoingBody::finish(body, None).map_err(|code| Error::Http(describe(&code)))?;

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(Error::Http(describe(&code))),
        Some(Err(())) | None => return Err(Error::Http("the response was lost".into())),
    };
    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response.consume().map_err(|()| Error::Http("the response body is unavailable".into()))?;
    let (body, truncated) = read_body(&incoming, max_body)?;
    Ok(Response { status, headers, body, truncated })
}

fn method(name: &str) -> Method {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        _ => Method::Other(name.to_string()),
    }
}

fn write_body(body: &OutgoingBody, bytes: Option<&[u8]>) -> Result<(), Error> {
    let Some(bytes) = bytes.filter(|b| !b.is_empty()) else { return Ok(()) };
    let stream = body.write().map_err(|()| Error::Http("the request body is unavailable".into()))?;
    // `blocking-write-and-flush` takes at most 4096 bytes per call.
    for chunk in bytes.chunks(4096) {
        stream.blocking_write_and_flush(chunk).map_err(|err| Error::Http(stream_error(err)))?;
    }
    Ok(())
}

fn read_body(incoming: &wasi::IncomingBody, max: usize) -> Result<(Vec<u8>, bool), Error> {
    let stream = incoming.stream().map_err(|()| Error::Http("the response body is unavailable".into()))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                let room = max - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    return Ok((body, true));
                }
                body.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok((body, false)),
            Err(err) => return Err(Error::Http(stream_error(err))),
        }
    }
}

fn stream_error(err: StreamError) -> String {
    match err {
        StreamError::Closed => "the connection closed early".into(),
        StreamError::LastOperationFailed(err) => match wasi::http_error_code(&err) {
            Some(code) => describe(&code),
            None => err.to_debug_string(),
        },
    }
}

fn header_error(err: HeaderError, entries: &[(String, Vec<u8>)]) -> String {
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    match err {
        HeaderError::Forbidden => format!("one of {names:?} is a header the host sets itself"),
        HeaderError::InvalidSyntax => format!("one of {names:?} has an invalid name or value"),
        HeaderError::Immutable => "headers are immutable".into(),
    }
}

/// A sentence for an error code; the host's own reason when it gave one.
pub fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::InternalError(Some(reason)) => reason.clone(),
        ErrorCode::DnsError(payload) => match &payload.rcode {
            Some(reason) => format!("DNS lookup failed: {reason}"),
            None => "DNS lookup failed".into(),
        },
        ErrorCode::DnsTimeout => "DNS lookup timed out".into(),
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::ConnectionTimeout => "timed out connecting".into(),
        ErrorCode::ConnectionReadTimeout => "timed out waiting for the response".into(),
        ErrorCode::HttpResponseTimeout => "the response took longer than the host allows".into(),
        ErrorCode::HttpResponseBodySize(Some(limit)) => {
            format!("the response body is larger than the host allows ({limit} bytes)")
        }
        ErrorCode::HttpResponseBodySize(None) => "the response body is larger than the host allows".into(),
        ErrorCode::TlsCertificateError => "the server's TLS certificate is not valid".into(),
        ErrorCode::TlsProtocolError => "TLS handshake failed".into(),
        ErrorCode::HttpRequestDenied => "the host denied the request".into(),
        other => format!("request failed: {other:?}"),
    }
}
