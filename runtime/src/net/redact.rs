//! Secret redaction: every form a secret can take on its way back to a guest, a
//! model or a log becomes `[REDACTED:NAME]`.
//!
//! A secret is matched raw, percent-encoded (upper- and lower-case hex), and
//! base64-encoded (standard and URL-safe alphabets) at each of the three byte
//! alignments it can have inside a larger encoded value — `Basic
//! base64(user:secret)` puts the secret at an arbitrary offset. A stream
//! redactor holds back just enough bytes between chunks that a secret split
//! across a chunk boundary is still caught.

use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use bytes::Bytes;

/// Encoded forms shorter than this are not matched: they would hit ordinary text.
const MIN_ENCODED_LEN: usize = 8;

/// Why a redactor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    /// A secret was empty, which would match everywhere.
    #[error("secret `{0}` is empty")]
    EmptySecret(String),
    /// The matcher could not be built.
    #[error("cannot build the secret matcher: {0}")]
    Matcher(String),
}

/// Replaces every known form of a set of secrets.
#[derive(Debug, Clone)]
pub struct Redactor {
    matcher: Option<AhoCorasick>,
    replacements: Vec<Vec<u8>>,
    longest: usize,
}

/// The forms of `value` that may appear in traffic or text.
fn forms(value: &[u8]) -> Vec<Vec<u8>> {
    let mut forms = vec![value.to_vec()];
    let encoded: String = percent_encoding::percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string();
    forms.push(encoded.clone().into_bytes());
    forms.push(lower_hex_escapes(&encoded).into_bytes());
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for align in 0..3usize {
            let mut padded = vec![0u8; align];
            padded.extend_from_slice(value);
            let text = engine.encode(&padded);
            // Characters whose six bits all come from the secret itself.
            let start = (8 * align).div_ceil(6);
            let end = (8 * padded.len()) / 6;
            if end > start && end - start >= MIN_ENCODED_LEN {
                forms.push(text.as_bytes()[start..end].to_vec());
            }
        }
    }
    forms.sort();
    forms.dedup();
    forms
}

fn lower_hex_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut chars = encoded.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            out.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
        }
    }
    out
}

impl Redactor {
    /// A redactor for `secrets`, given as (name, value) pairs.
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Result<Self, RedactError> {
        let mut patterns = Vec::new();
        let mut replacements = Vec::new();
        for (name, value) in secrets {
            if value.is_empty() {
                return Err(RedactError::EmptySecret(name.to_string()));
            }
            for form in forms(value) {
                patterns.push(form);
                replacements.push(format!("[REDACTED:{name}]").into_bytes());
            }
        }
        let longest = patterns.iter().map(Vec::len).max().unwrap_or(0);
        let matcher = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .map_err(|err| RedactError::Matcher(err.to_string()))?,
            )
        };
        Ok(Redactor { matcher, replacements, longest })
    }

    /// Whether `input` holds any form of a secret.
    pub fn finds(&self, input: &[u8]) -> bool {
        self.matcher.as_ref().is_some_and(|matcher| matcher.is_match(input))
    }

    /// Redacts a whole buffer.
    pub fn redact(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        self.redact_into(input, input.len(), &mut out);
        out
    }

    /// Redacts a string; a secret's bytes never split a character, so the result is UTF-8.
    pub fn redact_str(&self, input: &str) -> String {
        String::from_utf8(self.redact(input.as_bytes()))
            .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
    }

    /// A redactor for a body that arrives in chunks; it owns a handle so a
    /// response body can carry it across tasks.
    pub fn stream(self: &Arc<Self>) -> StreamRedactor {
        StreamRedactor { redactor: self.clone(), pending: Vec::new() }
    }

    /// Whether this redactor knows no secrets, so redacting is a copy.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// Redacts `input` up to `limit`: matches starting before `limit` are replaced,
    /// the rest of the input before `limit` is copied. Returns where it stopped,
    /// which is at least `limit` unless a match starting later was left alone.
    fn redact_into(&self, input: &[u8], limit: usize, out: &mut Vec<u8>) -> usize {
        let Some(matcher) = &self.matcher else {
            out.extend_from_slice(&input[..limit]);
            return limit;
        };
        let mut at = 0;
        for found in matcher.find_iter(input) {
            if found.start() >= limit {
                break;
            }
            out.extend_from_slice(&input[at..found.start()]);
            out.extend_from_slice(&self.replacements[found.pattern().as_usize()]);
            at = found.end();
        }
        if at < limit {
            out.extend_from_slice(&input[at..limit]);
            at = limit;
        }
        at
    }
}

/// Redacts a body chunk by chunk, holding back the tail that could still be the
/// start of a secret.
#[derive(Debug)]
pub struct StreamRedactor {
    redactor: Arc<Redactor>,
    pending: Vec<u8>,
}

impl StreamRedactor {
    /// The redactor this stream applies.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Takes the next chunk and returns what is now safe to pass on.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        // Any match starting before `safe` lies wholly inside the buffer, so it is
        // final; anything later may continue in the next chunk.
        let safe = self.pending.len().saturating_sub(self.redactor.longest.saturating_sub(1));
        let mut out = Vec::with_capacity(safe);
        let consumed = self.redactor.redact_into(&self.pending, safe, &mut out);
        self.pending.drain(..consumed);
        out
    }

    /// [`push`](Self::push) for shared buffers: when neither the chunk nor its
    /// seam with the held-back tail holds a secret — the common case — the chunk's
    /// bytes are passed on without a copy. Returns up to two pieces, in order.
    pub fn push_bytes(&mut self, chunk: Bytes) -> [Bytes; 2] {
        let longest = self.redactor.longest;
        let hold = longest.saturating_sub(1);
        let seam_clean = || {
            let mut seam = self.pending.clone();
            seam.extend_from_slice(&chunk[..longest.min(chunk.len())]);
            !self.redactor.finds(&seam)
        };
        // A short chunk can't prove a match starting in the held-back tail absent.
        let fast = chunk.len() >= longest && !self.redactor.finds(&chunk) && (self.pending.is_empty() || seam_clean());
        if !fast {
            return [Bytes::from(self.push(&chunk)), Bytes::new()];
        }
        let safe = chunk.len() - hold;
        let held = std::mem::replace(&mut self.pending, chunk[safe..].to_vec());
        [Bytes::from(held), chunk.slice(..safe)]
    }

    /// Ends the body and returns the rest.
    pub fn finish(self) -> Vec<u8> {
        self.redactor.redact(&self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "sk-live-7f3a9c0e51d24b6a";

    fn redactor() -> Arc<Redactor> {
        Arc::new(Redactor::new([("API_KEY", SECRET.as_bytes())]).unwrap())
    }

    #[test]
    fn raw_percent_and_base64_forms_are_redacted() {
        let r = redactor();
        assert_eq!(r.redact_str(&format!("key={SECRET}!")), "key=[REDACTED:API_KEY]!");
        let url = "sk%2Dlive%2D7f3a9c0e51d24b6a";
        assert_eq!(r.redact_str(&format!("?k={url}")), "?k=[REDACTED:API_KEY]");
        assert_eq!(r.redact_str(&format!("?k={}", url.replace("%2D", "%2d"))), "?k=[REDACTED:API_KEY]");
        for prefix in ["", "u:", "us:", "use:"] {
            let basic = STANDARD_NO_PAD.encode(format!("{prefix}{SECRET}"));
            let out = r.redact_str(&format!("Authorization: Basic {basic}"));
            assert!(out.contains("[REDACTED:API_KEY]"), "prefix {prefix:?}: {out}");
            assert!(!out.contains(&basic), "{out}");
        }
        let url_safe = URL_SAFE_NO_PAD.encode(SECRET);
        assert!(r.redact_str(&url_safe).contains("[REDACTED:API_KEY]"));
    }

    #[test]
    fn a_secret_split_across_chunks_is_caught() {
        let r = redactor();
        let body = format!("aaaa{SECRET}bbbb{SECRET}");
        for cut in 0..body.len() {
            let mut stream = r.stream();
            let mut out = stream.push(&body.as_bytes()[..cut]);
            out.extend(stream.push(&body.as_bytes()[cut..]));
            out.extend(stream.finish());
            assert_eq!(String::from_utf8(out).unwrap(), "aaaa[REDACTED:API_KEY]bbbb[REDACTED:API_KEY]", "cut at {cut}");
        }
    }

    #[test]
    fn empty_secrets_are_refused_and_no_secrets_pass_everything() {
        assert!(matches!(Redactor::new([("EMPTY", &b""[..])]), Err(RedactError::EmptySecret(_))));
        let none = Arc::new(Redactor::new(std::iter::empty()).unwrap());
        assert_eq!(none.redact(b"anything"), b"anything");
        let mut stream = none.stream();
        assert_eq!(stream.push(b"abc"), b"abc");
        assert_eq!(stream.finish(), b"");
    }

    proptest! {
        #[test]
        fn streaming_equals_whole_and_never_leaks(
            noise in proptest::collection::vec(any::<u8>(), 0..300),
            inserts in proptest::collection::vec(0usize..300, 0..4),
            cuts in proptest::collection::vec(1usize..64, 1..20),
        ) {
            let r = redactor();
            let mut body = noise.clone();
            for at in inserts {
                let at = at.min(body.len());
                body.splice(at..at, SECRET.bytes());
            }
            let whole = r.redact(&body);
            let mut stream = r.stream();
            let mut streamed = Vec::new();
            let mut rest = &body[..];
            for cut in cuts.iter().cycle().take(64) {
                if rest.is_empty() { break; }
                let (chunk, tail) = rest.split_at((*cut).min(rest.len()));
                streamed.extend(stream.push(chunk));
                rest = tail;
            }
            streamed.extend(stream.push(rest));
            streamed.extend(stream.finish());
            prop_assert_eq!(&streamed, &whole);

            let mut shared = r.stream();
            let mut out = Vec::new();
            let mut rest = Bytes::from(body.clone());
            for cut in cuts.iter().cycle().take(64) {
                if rest.is_empty() { break; }
                let chunk = rest.split_to((*cut).min(rest.len()));
                for piece in shared.push_bytes(chunk) {
                    out.extend_from_slice(&piece);
                }
            }
            for piece in shared.push_bytes(rest) {
                out.extend_from_slice(&piece);
            }
            out.extend(shared.finish());
            prop_assert_eq!(&out, &whole);
            prop_assert!(!whole.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
        }
    }
}
