//! Recording: a provider wrapper that writes every answer into a cassette.
//!
//! The file is rewritten whole after each answer, through a temporary file and a
//! rename, so a crash leaves either the previous cassette or the new one, never half
//! of one. Secrets are redacted from the serialized text, which covers every place a
//! key could have been echoed: answers, request summaries, descriptions.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use runtime::net::redact::Redactor;
use tokio::sync::Mutex;

use super::cassette::{Cassette, Interaction, RequestSummary};
use super::{Provider, ProviderError, step_of};
use crate::conversation::{ModelAnswer, ModelRequest, StreamEvent};

/// Wraps a provider and records its answers into a cassette file.
pub struct Recorder {
    inner: Arc<dyn Provider>,
    path: PathBuf,
    redactor: Redactor,
    /// Held across the file write, so writes land in the order answers were recorded.
    cassette: Mutex<Cassette>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("inner", &self.inner.name()).field("path", &self.path).finish_non_exhaustive()
    }
}

fn cassette_error(path: &Path, problem: impl Into<String>) -> ProviderError {
    ProviderError::Cassette { path: path.to_path_buf(), problem: problem.into() }
}

impl Recorder {
    /// Records `inner`'s answers into `path`, continuing the cassette already there (a
    /// resumed session); `secrets` are (name, value) pairs replaced by
    /// `[REDACTED:NAME]` in the file. Empty values are skipped.
    pub fn new(
        inner: Arc<dyn Provider>,
        path: impl Into<PathBuf>,
        secrets: &[(&str, &str)],
    ) -> Result<Self, ProviderError> {
        let path = path.into();
        let cassette = match std::fs::read_to_string(&path) {
            Ok(text) => Cassette::parse(&path, &text)?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Cassette::new(format!("recorded from the {} provider", inner.name()))
            }
            Err(err) => return Err(cassette_error(&path, format!("cannot read it: {err}"))),
        };
        let redactor = Redactor::new(
            secrets.iter().filter(|(_, value)| !value.is_empty()).map(|(name, value)| (*name, value.as_bytes())),
        )
        .map_err(|err| ProviderError::Config(format!("cannot build the secret redactor: {err}")))?;
        Ok(Recorder { inner, path, redactor, cassette: Mutex::new(cassette) })
    }

    /// The cassette file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn gap_error(&self, step: usize, recorded: usize) -> ProviderError {
        cassette_error(
            &self.path,
            format!(
                "cannot record answer {} after only {recorded} recorded ones; \
                 start recording at the beginning of the session",
                step + 1
            ),
        )
    }
}

#[async_trait::async_trait]
impl Provider for Recorder {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn complete(
        &self,
        request: &ModelRequest,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<ModelAnswer, ProviderError> {
        let step = step_of(request);
        // Checked before the call too, so a gap costs no model call.
        let recorded = self.cassette.lock().await.interactions.len();
        if step > recorded {
            return Err(self.gap_error(step, recorded));
        }
        let answer = self.inner.complete(request, on_event).await?;
        let mut cassette = self.cassette.lock().await;
        if step > cassette.interactions.len() {
            return Err(self.gap_error(step, cassette.interactions.len()));
        }
        // A step asked again after a resume replaces the old answer; later ones
        // continued that old answer, so they go too.
        cassette.interactions.truncate(step);
        cassette.interactions.push(Interaction {
            request: Some(RequestSummary::of(request)),
            expect_last_user: None,
            answer: answer.clone(),
        });
        let text =
            cassette.to_json().map_err(|err| cassette_error(&self.path, format!("cannot serialize it: {err}")))?;
        let text = self.redactor.redact_str(&text);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, text.as_bytes()))
            .await
            .map_err(|err| cassette_error(&self.path, format!("the write task failed: {err}")))?
            .map_err(|err| cassette_error(&self.path, format!("cannot write it: {err}")))?;
        Ok(answer)
    }
}

/// Replaces `path` with `bytes` through a synced temporary file in the same directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(|| "cassette".into());
    let temp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), SEQUENCE.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
