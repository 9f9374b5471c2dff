//! The event log: committing a step, and reading a session's events back, a fork's
//! inherited prefix included.

use std::collections::HashSet;
use std::time::SystemTime;

use redb::ReadableTable;
use runtime::vfs::Snapshot;

use super::history::Checkpoint;
use super::objects::{WriteObjects, put_snapshot};
use super::session::{SessionId, Status, load_head, load_meta, reindex_status};
use super::tables::{CHECKPOINTS, CheckpointRecord, EVENTS, HEADS, SESSIONS, corrupt, decode_event};
use super::{Result, Store, StoreError, from_nanos, now_nanos};
use crate::conversation::Usage;
use crate::event::Event;

/// What one step commits, all in one transaction.
#[derive(Clone, Debug, Default)]
pub struct Step {
    /// Events to append, in order. Model answers' usage is added to the session's totals.
    pub events: Vec<Event>,
    /// The filesystem after the step; `None` when the step didn't change it.
    pub snapshot: Option<Snapshot>,
    /// A status to set with the step (e.g. `Finished` with the last event of a run).
    pub status: Option<Status>,
}

/// One event of a session's log.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedEvent {
    /// Its place in the log, from 1, contiguous across a fork's inherited prefix.
    pub seq: u64,
    /// When the step holding it was committed (kept beside the event, not in it, so
    /// two runs' events compare equal whatever their timing).
    pub time: SystemTime,
    /// The event.
    pub event: Event,
}

impl Store {
    /// Commits one step: appends its events, stores its new objects and root, records
    /// a checkpoint, applies the status change and updates the head and usage, in one
    /// durable write transaction. Seq and step numbers come from the stored head.
    /// On any error nothing is written.
    pub fn commit_step(&self, id: &SessionId, step: &Step) -> Result<Checkpoint> {
        // Serialize before the transaction: it holds redb's single writer lock.
        let prepared = Prepared::of(step)?;
        self.write(|txn| commit_in(txn, id, step, &prepared))
    }

    /// A session's whole log, oldest first, a fork's inherited prefix included.
    pub fn events(&self, id: &SessionId) -> Result<Vec<LoggedEvent>> {
        self.events_since(id, 0)
    }

    /// The events with a seq greater than `after`, oldest first: what a client that
    /// has seen up to `after` is missing.
    pub fn events_since(&self, id: &SessionId, after: u64) -> Result<Vec<LoggedEvent>> {
        let txn = self.read()?;
        let segments = lineage(&txn.open_table(SESSIONS)?, id)?;
        // Reading the head makes a session without one (half deleted) an error, not empty.
        load_head(&txn.open_table(HEADS)?, id)?;
        let events = txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        for Segment { session, after: lower, upto } in segments {
            let Some(first) = lower.max(after).checked_add(1) else { continue };
            if first > upto {
                continue;
            }
            for entry in events.range((session.as_bytes(), first)..=(session.as_bytes(), upto))? {
                let (key, value) = entry?;
                let seq = key.value().1;
                let (time, json) = decode_event(value.value())?;
                let event = serde_json::from_slice(json)
                    .map_err(|err| corrupt(format!("event {seq} of session {session}"), err))?;
                out.push(LoggedEvent { seq, time: from_nanos(time), event });
            }
        }
        Ok(out)
    }
}

/// The part of a log one session of a fork chain holds: seqs in `after+1..=upto`.
struct Segment {
    session: SessionId,
    after: u64,
    upto: u64,
}

/// The sessions whose events make up `id`'s log, root ancestor first.
fn lineage(metas: &impl ReadableTable<&'static [u8; 16], &'static [u8]>, id: &SessionId) -> Result<Vec<Segment>> {
    let mut segments = Vec::new();
    let mut seen = HashSet::new();
    let (mut session, mut upto) = (*id, u64::MAX);
    loop {
        if !seen.insert(session) {
            return Err(corrupt(format!("fork chain of session {id}"), "it loops"));
        }
        let parent = load_meta(metas, &session)?.parent;
        segments.push(Segment { session, after: parent.map_or(0, |p| p.seq), upto });
        let Some(parent) = parent else { break };
        (session, upto) = (parent.session, parent.seq);
    }
    segments.reverse();
    Ok(segments)
}

/// A step's events serialized and its usage summed, ready for a transaction.
pub(super) struct Prepared {
    time_nanos: u64,
    values: Vec<Vec<u8>>,
    usage: Usage,
}

impl Prepared {
    /// Prepares `step`, stamped now.
    pub(super) fn of(step: &Step) -> Result<Prepared> {
        let time_nanos = now_nanos();
        let values = step
            .events
            .iter()
            .map(|event| {
                let mut value = time_nanos.to_le_bytes().to_vec();
                serde_json::to_writer(&mut value, event).map_err(StoreError::Encode)?;
                Ok(value)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut usage = Usage::default();
        for event in &step.events {
            if let Event::ModelAnswer(answer) = event {
                usage += answer.usage;
            }
        }
        Ok(Prepared { time_nanos, values, usage })
    }
}

/// Appends a prepared step to session `id` inside `txn`.
pub(super) fn commit_in(
    txn: &redb::WriteTransaction,
    id: &SessionId,
    step: &Step,
    prepared: &Prepared,
) -> Result<Checkpoint> {
    let mut heads = txn.open_table(HEADS)?;
    let mut head = load_head(&heads, id)?;
    if let Some(snapshot) = &step.snapshot {
        put_snapshot(&mut WriteObjects::open(txn)?, snapshot)?;
        head.root = snapshot.root;
    }
    let key = id.as_bytes();
    let mut events = txn.open_table(EVENTS)?;
    for value in &prepared.values {
        head.last_seq = head.last_seq.checked_add(1).ok_or_else(|| corrupt("session head", "seq overflow"))?;
        events.insert((key, head.last_seq), value.as_slice())?;
    }
    head.last_step = head.last_step.checked_add(1).ok_or_else(|| corrupt("session head", "step overflow"))?;
    let record = CheckpointRecord { last_seq: head.last_seq, time_nanos: prepared.time_nanos, root: head.root };
    txn.open_table(CHECKPOINTS)?.insert((key, head.last_step), record.encode().as_slice())?;
    if let Some(status) = step.status {
        reindex_status(txn, id, head.status, status)?;
        head.status = status;
    }
    head.usage += prepared.usage;
    heads.insert(key, head.encode().as_slice())?;
    Ok(Checkpoint::from_record(head.last_step, record))
}
