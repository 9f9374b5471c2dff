//! The `wasi:http` send hook: every request a tool makes passes through here.
//!
//! In order: the request is checked against the tool's policy; credentials are
//! injected (a guest credential header where a rule applies is refused); the host
//! resolves the name itself and keeps only addresses the policy permits, then
//! connects to one of those — never re-resolving, so a DNS answer can't change
//! between check and connect. The response head is redacted and the body comes
//! back through [`GuardedBody`], which caps its size and time and redacts it.
//! A guest sees a denial as `internal-error` with a message naming the reason.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::Network;
use super::body::{GuardedBody, redact_headers};
use super::policy::Target;
use super::secrets::inject;

/// The send result `wasi:http` expects: the response and a future that reports
/// errors of the connection after the head arrived.
type Sent = Result<(Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>;

/// Per-call `wasi:http` hooks: which network, for which tool, and how many
/// requests the call has made.
pub(crate) struct NetHooks {
    network: Arc<Network>,
    tool: Arc<str>,
    requests: u32,
}

impl NetHooks {
    /// Hooks for one call of `tool`.
    pub(crate) fn new(network: Arc<Network>, tool: &str) -> Self {
        NetHooks { network, tool: Arc::from(tool), requests: 0 }
    }

    /// Hooks that refuse every request, for runs outside a session (`describe`).
    pub(crate) fn offline() -> Self {
        static OFFLINE: OnceLock<(Arc<Network>, Arc<str>)> = OnceLock::new();
        let (network, tool) = OFFLINE.get_or_init(|| (Arc::new(Network::default()), Arc::from("")));
        NetHooks { network: network.clone(), tool: tool.clone(), requests: 0 }
    }
}

impl WasiHttpHooks for NetHooks {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        self.requests += 1;
        let (network, tool, count) = (self.network.clone(), self.tool.clone(), self.requests);
        Box::new(async move {
            let max = network.limits.max_requests_per_call;
            if count > max {
                return Err(refused(format!("a tool call may send at most {max} requests")));
            }
            send(&network, &tool, request, options).await
        })
    }
}

/// An error the guest reads as the reason its request was refused.
fn refused(reason: impl std::fmt::Display) -> Error {
    Error::InternalError(Some(format!("request refused by the host: {reason}")))
}

/// The parts of a request URI the policy judges.
struct Parsed {
    scheme: String,
    host: String,
    port: u16,
}

fn parse_target(uri: &Uri) -> Result<Parsed, Error> {
    let authority = uri.authority().ok_or_else(|| refused("the URL has no host"))?;
    // `user@host` makes a URL read as one host while naming another.
    if authority.as_str().contains('@') {
        return Err(refused("URLs with user information (`user@host`) are not allowed"));
    }
    let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        other => return Err(refused(format!("scheme `{other}` is not supported"))),
    };
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    Ok(Parsed { scheme, host, port: authority.port_u16().unwrap_or(default_port) })
}

pub(super) async fn send(
    network: &Network,
    tool: &str,
    request: Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Sent {
    let (mut parts, body) = request.into_parts();
    let target = parse_target(&parts.uri)?;
    let policy = network.policy_for(tool);
    let path = parts.uri.path().to_string();
    let method = parts.method.as_str().to_ascii_uppercase();
    let checked =
        Target { scheme: &target.scheme, host: &target.host, port: target.port, path: &path, method: &method };
    policy.check(&checked).map_err(|denied| {
        tracing::info!(tool, %denied, "outbound request denied");
        refused(denied)
    })?;
    if let Some(within) = network.narrowed_by() {
        within.check(&checked).map_err(|denied| {
            tracing::info!(tool, %denied, "outbound request denied by the session's policy");
            refused(format!("{denied} in this session's network policy"))
        })?;
    }
    // Logged before injection, so a query-parameter secret never reaches the log.
    tracing::debug!(tool, %method, scheme = %target.scheme, host = %target.host, port = target.port, %path, "outbound request");
    inject(&network.rules, &network.secrets, &mut parts).map_err(refused)?;

    let limits = network.limits;
    let started = Instant::now();
    let shorter = |guest: Option<Duration>, host: Duration| guest.map_or(host, |guest| guest.min(host));
    let connect_timeout = shorter(options.and_then(|o| o.connect_timeout), limits.connect_timeout);
    let first_byte_timeout = shorter(options.and_then(|o| o.first_byte_timeout), limits.first_byte_timeout);

    let addresses = resolve(&target.host, target.port, connect_timeout).await?;
    let mut allowed = Vec::with_capacity(addresses.len());
    let mut first_denial = None;
    for address in addresses {
        match policy.check_address(&target.host, address.ip()) {
            Ok(()) => allowed.push(address),
            Err(denied) => {
                first_denial.get_or_insert(denied);
            }
        }
    }
    if allowed.is_empty() {
        return Err(match first_denial {
            Some(denied) => {
                tracing::info!(tool, %denied, "outbound request denied");
                refused(denied)
            }
            None => Error::DnsError { rcode: Some(format!("{} has no addresses", target.host)), info_code: None },
        });
    }
    let stream = timeout(connect_timeout, connect(&allowed)).await.map_err(|_| Error::ConnectionTimeout)??;
    let stream: Box<dyn Stream> = if target.scheme == "https" {
        Box::new(timeout(connect_timeout, tls(&target.host, stream)).await.map_err(|_| Error::ConnectionTimeout)??)
    } else {
        Box::new(stream)
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let connection = AbortOnDrop(tokio::spawn(connection));

    // The request line carries only the path: the authority is in `Host`.
    parts.uri = parts.uri.path_and_query().map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
    let response = timeout(first_byte_timeout, sender.send_request(Request::from_parts(parts, body)))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    let (mut head, incoming) = response.into_parts();
    redact_headers(&mut head.headers, network.redactor());
    let declared = head.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_response_bytes) {
        return Err(Error::HttpResponseBodySize(Some(limits.max_response_bytes)));
    }
    let redactor = (!network.redactor().is_empty()).then(|| network.redactor().stream());
    let body = GuardedBody::new(incoming, redactor, limits.max_response_bytes, started + limits.total_timeout);
    let finished: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async move {
        let mut connection = connection;
        match (&mut connection.0).await {
            Ok(result) => result.map_err(Error::Hyper),
            Err(_) => Ok(()),
        }
    });
    Ok((Response::from_parts(head, body.boxed_unsync()), finished))
}

/// Resolves `host` on the host (a literal address resolves to itself).
async fn resolve(host: &str, port: u16, limit: Duration) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match timeout(limit, tokio::net::lookup_host((host, port))).await {
        Err(_) => Err(Error::DnsTimeout),
        Ok(Err(err)) => Err(Error::DnsError { rcode: Some(format!("cannot resolve {host}: {err}")), info_code: None }),
        Ok(Ok(addresses)) => Ok(addresses.collect()),
    }
}

/// Connects to the first address that accepts.
async fn connect(addresses: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(err) => last = Some(err),
        }
    }
    Err(last.map_or(Error::ConnectionRefused, Error::Connect))
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// TLS with the web's root certificates; the host name (not the address) is
/// what the certificate must match.
async fn tls(host: &str, stream: TcpStream) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map(|builder| Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|err| err.to_string())
    });
    let config = config.as_ref().map_err(|err| Error::InternalError(Some(format!("TLS setup failed: {err}"))))?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string())?;
    tokio_rustls::TlsConnector::from(config.clone()).connect(name, stream).await.map_err(Error::Tls)
}

/// Stops the connection task when the response is dropped early.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
