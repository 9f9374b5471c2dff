//! The response body a guest reads: capped in size and time, and redacted as it
//! streams, so no chunk reaches the guest before the redactor has seen it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use wasmtime_wasi_http::Error;

use super::redact::{Redactor, StreamRedactor};

/// A response body under the host's limits and redactor.
pub(super) struct GuardedBody {
    inner: Incoming,
    /// `None` when there are no secrets to look for, so bytes pass untouched.
    redactor: Option<StreamRedactor>,
    limit: u64,
    received: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// The second piece of a redacted chunk, sent on the next poll.
    queued: Bytes,
    done: bool,
}

impl GuardedBody {
    pub(super) fn new(
        inner: Incoming,
        redactor: Option<StreamRedactor>,
        limit: u64,
        deadline: tokio::time::Instant,
    ) -> Self {
        GuardedBody {
            inner,
            redactor,
            limit,
            received: 0,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            queued: Bytes::new(),
            done: false,
        }
    }

    fn fail(&mut self, err: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.done = true;
        Poll::Ready(Some(Err(err)))
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if !this.queued.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(std::mem::take(&mut this.queued)))));
        }
        if this.done {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return this.fail(Error::HttpResponseTimeout);
        }
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            None => {
                this.done = true;
                let tail = this.redactor.take().map(StreamRedactor::finish).unwrap_or_default();
                Poll::Ready((!tail.is_empty()).then(|| Ok(Frame::data(Bytes::from(tail)))))
            }
            Some(Err(err)) if err.is_timeout() => this.fail(Error::HttpResponseTimeout),
            Some(Err(err)) => this.fail(Error::Hyper(err)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    this.received += data.len() as u64;
                    if this.received > this.limit {
                        return this.fail(Error::HttpResponseBodySize(Some(this.limit)));
                    }
                    let data = match &mut this.redactor {
                        Some(redactor) => {
                            let [first, second] = redactor.push_bytes(data);
                            if first.is_empty() {
                                second
                            } else {
                                this.queued = second;
                                first
                            }
                        }
                        None => data,
                    };
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(mut trailers) => {
                        if let Some(redactor) = &this.redactor {
                            redact_headers(&mut trailers, redactor.redactor());
                        }
                        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                    }
                    // Neither data nor trailers: nothing a guest can read.
                    Err(_) => Poll::Ready(Some(Ok(Frame::data(Bytes::new())))),
                },
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.queued.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        // Redaction changes lengths, so only the unredacted hint is exact.
        match self.redactor {
            None => self.inner.size_hint(),
            Some(_) => SizeHint::default(),
        }
    }
}

/// Replaces secrets in header values; drops a header whose *name* holds one,
/// since a name can't carry the `[REDACTED:…]` marker.
pub(super) fn redact_headers(headers: &mut HeaderMap, redactor: &Redactor) {
    if redactor.is_empty() || !headers.iter().any(|(n, v)| redactor.finds(n.as_ref()) || redactor.finds(v.as_bytes())) {
        return;
    }
    let old = std::mem::take(headers);
    let mut name = None;
    for (next, value) in old {
        // `HeaderMap`'s iterator names a header once, before all its values.
        if next.is_some() {
            name = next;
        }
        let Some(name) = &name else { continue };
        if redactor.finds(name.as_ref()) {
            continue;
        }
        let value = if redactor.finds(value.as_bytes()) {
            match http::HeaderValue::from_bytes(&redactor.redact(value.as_bytes())) {
                Ok(value) => value,
                Err(_) => continue,
            }
        } else {
            value
        };
        headers.append(name.clone(), value);
    }
}
