//! Live events per session: a broadcast channel that a run's observer publishes to
//! and event streams subscribe to.
//!
//! A channel exists only while someone listens: publishing to a session nobody
//! watches costs one map lookup. Subscribers that fall behind lose live events
//! (`Lagged`); they notice and re-read what they missed from the store, which holds
//! every committed event, so a slow client never stalls a run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

use crate::conversation::StreamEvent;
use crate::event::Event;
use crate::store::SessionId;

/// Live events buffered per subscriber before it counts as lagging.
const CAPACITY: usize = 256;

/// One live event of a session.
#[derive(Clone, Debug)]
pub enum Live {
    /// A committed event with its sequence number.
    Committed(u64, Arc<Event>),
    /// Part of a model answer as it streams in (display only; not in the log).
    Stream(Arc<StreamEvent>),
}

/// The live channels, by session.
#[derive(Default)]
pub struct Hub {
    channels: Mutex<HashMap<SessionId, broadcast::Sender<Live>>>,
}

impl Hub {
    /// Sends `events` (the first with seq `first_seq`) to the session's subscribers.
    pub fn committed(&self, id: &SessionId, first_seq: u64, events: &[Event]) {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = channels.get(id) {
            for (seq, event) in (first_seq..).zip(events) {
                // An error only means every receiver is gone; nothing to do.
                let _ = sender.send(Live::Committed(seq, Arc::new(event.clone())));
            }
        }
    }

    /// Sends streamed model output to the session's subscribers.
    pub fn stream(&self, id: &SessionId, event: &StreamEvent) {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = channels.get(id) {
            let _ = sender.send(Live::Stream(Arc::new(event.clone())));
        }
    }

    /// Starts receiving the session's live events.
    pub fn subscribe(self: &Arc<Self>, id: SessionId) -> Subscription {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = channels.entry(id).or_insert_with(|| broadcast::channel(CAPACITY).0);
        Subscription { receiver: Some(sender.subscribe()), hub: self.clone(), id }
    }

    /// How many sessions have a channel now (tests check it shrinks back).
    pub fn channels(&self) -> usize {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// A receiver of one session's live events; the channel goes when its last one does.
pub struct Subscription {
    receiver: Option<broadcast::Receiver<Live>>,
    hub: Arc<Hub>,
    id: SessionId,
}

impl Subscription {
    /// The next live event; `Err(Lagged)` if some were missed.
    pub async fn recv(&mut self) -> Result<Live, broadcast::error::RecvError> {
        match &mut self.receiver {
            Some(receiver) => receiver.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = self.hub.channels.lock().unwrap_or_else(PoisonError::into_inner);
        // Dropped under the lock, so a concurrent subscribe can't be counted as gone.
        self.receiver = None;
        if channels.get(&self.id).is_some_and(|sender| sender.receiver_count() == 0) {
            channels.remove(&self.id);
        }
    }
}
