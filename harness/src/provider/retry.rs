//! When and how long to wait before asking again.
//!
//! Exponential backoff with jitter, so many sessions hit by the same outage don't
//! come back in lockstep; a server's `retry-after` (or OpenAI's `retry-after-ms`)
//! replaces the backoff because the server knows best, capped so a hostile or
//! confused server can't park a session for hours.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

use super::ProviderError;

/// How a provider retries a failed model call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in total, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// The backoff before the second attempt, in milliseconds; it doubles after each.
    pub base_delay_ms: u64,
    /// The longest wait between attempts, in milliseconds, `retry-after` included.
    pub max_delay_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig { max_attempts: 5, base_delay_ms: 500, max_delay_ms: 30_000 }
    }
}

impl RetryConfig {
    /// Decides what follows a failed attempt number `attempt` (1-based): the wait before
    /// the next one, or the error to give the caller.
    pub(crate) fn after_failure(
        &self,
        provider: &str,
        attempt: u32,
        err: ProviderError,
    ) -> Result<Duration, ProviderError> {
        if !err.is_retryable() {
            return Err(err);
        }
        if attempt >= self.max_attempts {
            if self.max_attempts <= 1 {
                return Err(err);
            }
            return Err(ProviderError::RetriesExhausted {
                provider: provider.to_string(),
                attempts: attempt,
                last: Box::new(err),
            });
        }
        let max = Duration::from_millis(self.max_delay_ms);
        let delay = match err.retry_after() {
            Some(asked) => asked.min(max),
            None => self.backoff(attempt),
        };
        tracing::warn!(
            provider,
            attempt,
            max_attempts = self.max_attempts,
            delay_ms = delay.as_millis() as u64,
            error = %err,
            "model request failed; retrying"
        );
        Ok(delay)
    }

    /// Exponential backoff after attempt `attempt`, with "equal jitter": at least half
    /// the exponential delay, so a retry never comes back almost at once.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(32);
        let full = self.base_delay_ms.saturating_mul(1u64 << exponent).min(self.max_delay_ms);
        let half = full / 2;
        Duration::from_millis(half + fastrand::u64(0..=full - half))
    }
}

/// The wait a response asks for: `retry-after-ms` (OpenAI), else `retry-after` as
/// seconds or as an HTTP date relative to `now`.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim);
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let value = header("retry-after")?;
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_accepts_seconds_milliseconds_and_http_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(retry_after(&headers(&[("retry-after", "3")]), now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&headers(&[("retry-after", "0.5")]), now), Some(Duration::from_millis(500)));
        let both = headers(&[("retry-after", "3"), ("retry-after-ms", "250")]);
        assert_eq!(retry_after(&both, now), Some(Duration::from_millis(250)));
        let date = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:07 GMT")]);
        assert_eq!(retry_after(&date, now), Some(Duration::from_secs(7)));
        let past = headers(&[("retry-after", "Wed, 21 Oct 2015 07:27:00 GMT")]);
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_the_cap() {
        let config = RetryConfig { max_attempts: 10, base_delay_ms: 100, max_delay_ms: 1_000 };
        for _ in 0..100 {
            let first = config.backoff(1).as_millis();
            assert!((50..=100).contains(&first), "{first}");
            let third = config.backoff(3).as_millis();
            assert!((200..=400).contains(&third), "{third}");
            let late = config.backoff(40).as_millis();
            assert!((500..=1_000).contains(&late), "{late}");
        }
    }

    #[test]
    fn only_retryable_errors_are_retried_and_the_last_attempt_says_how_many() {
        let config = RetryConfig { max_attempts: 3, base_delay_ms: 1, max_delay_ms: 5 };
        let cut = || ProviderError::StreamEnded { provider: "p".into(), detail: "cut".into() };
        assert!(config.after_failure("p", 1, cut()).is_ok());
        let err = config.after_failure("p", 3, cut()).unwrap_err();
        assert!(matches!(err, ProviderError::RetriesExhausted { attempts: 3, .. }), "{err}");
        assert!(err.to_string().contains("3 attempts") && err.to_string().contains("cut"), "{err}");
        let bad = ProviderError::Api {
            provider: "p".into(),
            status: Some(400),
            kind: "invalid_request_error".into(),
            message: "no".into(),
            retry_after: Some(Duration::from_secs(1)),
        };
        assert!(matches!(config.after_failure("p", 1, bad), Err(ProviderError::Api { .. })));
        let slow = ProviderError::Api {
            provider: "p".into(),
            status: Some(429),
            kind: "rate_limit_error".into(),
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(config.after_failure("p", 1, slow).unwrap(), Duration::from_millis(5), "capped by max_delay_ms");
    }
}
