//! `GET /v1/sessions/{id}/events`: a session's events over Server-Sent Events.
//!
//! Each committed event is one SSE event with `id: <seq>` and JSON data
//! ([`EventRecord`]: the seq and the event). A client that reconnects sends the
//! last id it saw as `Last-Event-ID` (browsers do this themselves), or `?after=SEQ`,
//! and gets exactly what followed. Streamed model output goes out as SSE events
//! named `delta` without an id, so it never moves a client's resumption point.
//!
//! No gaps, no duplicates: the stream subscribes to the live channel *before* it
//! reads the backlog from the store, so an event committed in between is in one or
//! both; live events with a seq at or below the last one sent are dropped. A live
//! event further ahead than the next seq (the subscriber lagged, or a commit's
//! notification raced) makes the stream re-read the store from its last seq.
//!
//! The stream stays open across runs (keep-alive comments while idle) and ends when
//! the client goes or the server shuts down.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tracing::Instrument;

use super::ServerState;
use super::api::{Delta, EventRecord};
use super::auth::AuthUser;
use super::error::{ApiError, ApiPath, ApiQuery, blocking};
use super::hub::{Live, Subscription};
use super::sessions::resolve;
use crate::event::Event;
use crate::store::{LoggedEvent, SessionId, Store};

/// SSE events buffered for a slow client before the stream waits for it.
const BUFFER: usize = 64;

/// `?after=SEQ`: send events with a greater seq.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct After {
    after: Option<u64>,
}

/// `GET /v1/sessions/{id}/events`.
pub(super) async fn stream(
    State(state): State<ServerState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<After>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let after = match headers.get("last-event-id") {
        Some(value) => value.to_str().ok().and_then(|text| text.trim().parse::<u64>().ok()).ok_or_else(|| {
            ApiError::bad_request("the Last-Event-ID header must be the seq of an event (a whole number)")
        })?,
        None => query.after.unwrap_or(0),
    };
    let session = resolve(&state, &user, &id).await?;
    // Before the backlog is read: see the module docs.
    let subscription = state.inner.hub.subscribe(session.id);
    let store = state.inner.store.clone();
    let backlog = read_after(&store, session.id, after).await?;
    let (sender, receiver) = mpsc::channel(BUFFER);
    let pump = Pump { store, id: session.id, last: after, sender };
    let shutdown = state.inner.shutdown.clone();
    let span = tracing::info_span!("events", session = %session.id, after);
    tokio::spawn(
        async move {
            tokio::select! {
                () = pump.run(backlog, subscription) => {}
                () = shutdown.cancelled() => {}
            }
        }
        .instrument(span),
    );
    let events = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok(event), receiver))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(state.inner.config.keep_alive)))
}

/// The stored events after `after`.
async fn read_after(store: &Store, id: SessionId, after: u64) -> Result<Vec<LoggedEvent>, ApiError> {
    let store = store.clone();
    blocking(move || Ok(store.events_since(&id, after)?)).await
}

/// Moves one client's events from the store and the live channel to its response.
struct Pump {
    store: Store,
    id: SessionId,
    /// The last seq sent.
    last: u64,
    sender: mpsc::Sender<SseEvent>,
}

impl Pump {
    /// Sends `backlog`, then live events, until the client goes.
    async fn run(mut self, backlog: Vec<LoggedEvent>, mut live: Subscription) {
        if self.send_logged(backlog).await.is_err() {
            return;
        }
        loop {
            let next = tokio::select! {
                next = live.recv() => next,
                () = self.sender.closed() => return,
            };
            let sent = match next {
                Ok(Live::Committed(seq, _)) if seq <= self.last => Ok(()),
                Ok(Live::Committed(seq, event)) if seq == self.last + 1 => self.send(seq, &event).await,
                Ok(Live::Committed(..)) | Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up().await,
                Ok(Live::Stream(delta)) => match SseEvent::default().event("delta").json_data(Delta::from(&*delta)) {
                    Ok(event) => self.sender.send(event).await.map_err(|_| ()),
                    Err(_) => Ok(()),
                },
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if sent.is_err() {
                return;
            }
        }
    }

    /// Re-reads from the store everything after the last seq sent.
    async fn catch_up(&mut self) -> Result<(), ()> {
        tracing::debug!(after = self.last, "fell behind the live events; reading them from the store");
        match read_after(&self.store, self.id, self.last).await {
            Ok(missed) => self.send_logged(missed).await,
            // The session was deleted, say: nothing more will come.
            Err(_) => Err(()),
        }
    }

    async fn send_logged(&mut self, events: Vec<LoggedEvent>) -> Result<(), ()> {
        for logged in events {
            self.send(logged.seq, &logged.event).await?;
        }
        Ok(())
    }

    /// Sends one committed event; `Err` when the client is gone.
    async fn send(&mut self, seq: u64, event: &Event) -> Result<(), ()> {
        let record = EventRecord { seq, event: event.clone() };
        match SseEvent::default().id(seq.to_string()).json_data(&record) {
            Ok(sse) => self.sender.send(sse).await.map_err(|_| ())?,
            Err(err) => tracing::error!(seq, error = %err, "an event could not be encoded; skipped"),
        }
        self.last = seq;
        Ok(())
    }
}
