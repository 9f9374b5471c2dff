//! Capped stdout/stderr capture.
//!
//! A guest that floods its output must neither exhaust host memory nor fail: the
//! first `cap` bytes are kept, the rest are counted and dropped, and the caller
//! renders a visible truncation marker.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

#[derive(Debug, Default)]
struct Buffer {
    kept: Vec<u8>,
    dropped: u64,
}

/// An output sink that keeps at most `cap` bytes; clones share one buffer.
#[derive(Debug, Clone)]
pub(crate) struct CappedOutput {
    cap: usize,
    buffer: Arc<Mutex<Buffer>>,
}

impl CappedOutput {
    pub fn new(cap: usize) -> Self {
        CappedOutput { cap, buffer: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A poisoned lock only means a writer panicked mid-append; the bytes are still valid.
        self.buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append(&self, bytes: &[u8]) {
        let mut buffer = self.lock();
        let room = self.cap.saturating_sub(buffer.kept.len());
        let take = room.min(bytes.len());
        buffer.kept.extend_from_slice(&bytes[..take]);
        buffer.dropped += (bytes.len() - take) as u64;
    }

    /// The captured text (lossy UTF-8) with a marker if anything was dropped.
    pub fn text(&self, stream: &str) -> String {
        let buffer = self.lock();
        let mut text = String::from_utf8_lossy(&buffer.kept).into_owned();
        if buffer.dropped > 0 {
            text.push_str(&truncation_marker(stream, buffer.dropped, self.cap));
        }
        text
    }
}

/// The marker appended to anything cut at a limit.
pub(crate) fn truncation_marker(what: &str, dropped: u64, cap: usize) -> String {
    format!("\n[{what} truncated: {dropped} more bytes omitted, limit {cap} bytes]")
}

/// Cuts `text` to at most `cap` bytes (on a character boundary) and marks the cut.
pub(crate) fn truncate(mut text: String, what: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text;
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let dropped = (text.len() - end) as u64;
    text.truncate(end);
    text.push_str(&truncation_marker(what, dropped, cap));
    text
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always accept: excess bytes are dropped, so a flooding guest still finishes.
        Ok(64 << 10)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_cap_and_marks_the_rest() {
        let out = CappedOutput::new(4);
        out.append(b"abc");
        out.append(b"defgh");
        assert_eq!(out.text("stdout"), "abcd\n[stdout truncated: 4 more bytes omitted, limit 4 bytes]");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let cut = truncate("héllo".to_string(), "result", 2);
        assert!(cut.starts_with("h\n[result truncated: 5 more bytes"), "{cut}");
        assert_eq!(truncate("short".to_string(), "result", 10), "short");
    }
}
