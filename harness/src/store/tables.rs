//! Table definitions and the byte layouts of their values.
//!
//! Keys put the session first so one session's events or checkpoints are one
//! contiguous range, in order. Fixed binary layouts are used where a value is
//! written every step (head, checkpoint, event time) so a commit neither parses nor
//! writes JSON it doesn't need; the rarely written metadata is JSON so it can gain
//! fields. Every decoder checks lengths and returns [`StoreError::CorruptRecord`]:
//! the bytes come from a file, and a damaged file must not panic the harness.

use redb::{TableDefinition, WriteTransaction};
use runtime::vfs::ObjectId;

use super::session::Status;
use super::{Result, StoreError};
use crate::conversation::Usage;

/// Session id → JSON [`super::session::MetaRecord`], written at creation (and on a title change).
pub(super) const SESSIONS: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new("sessions");
/// Session id → [`HeadRecord`], rewritten by every step (fixed size).
pub(super) const HEADS: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new("heads");
/// (status, session) → (), so resuming finds running sessions without a scan.
pub(super) const BY_STATUS: TableDefinition<(u8, &[u8; 16]), ()> = TableDefinition::new("sessions_by_status");
/// (owner, session) → (), so listing one user's sessions reads only theirs.
pub(super) const BY_OWNER: TableDefinition<(&str, &[u8; 16]), ()> = TableDefinition::new("sessions_by_owner");
/// (parent, fork) → (), so deleting a parent can see what depends on it.
pub(super) const FORKS: TableDefinition<(&[u8; 16], &[u8; 16]), ()> = TableDefinition::new("forks");
/// (session, seq) → commit time (u64 LE nanoseconds) followed by the event as JSON.
pub(super) const EVENTS: TableDefinition<(&[u8; 16], u64), &[u8]> = TableDefinition::new("events");
/// (session, step) → [`CheckpointRecord`].
pub(super) const CHECKPOINTS: TableDefinition<(&[u8; 16], u64), &[u8]> = TableDefinition::new("checkpoints");
/// Object id → encoded filesystem object of at most 2 KiB (see `objects.rs`).
pub(super) const OBJECTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("objects");
/// Object id → the first 65,496 bytes of a larger object, one per leaf.
pub(super) const BIG_OBJECTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("big_objects");
/// Object id → what a big object holds past its first 65,496 bytes.
pub(super) const OBJECT_TAILS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("object_tails");

/// User name → JSON [`super::users::UserRecord`] (creation time and token hash).
pub(super) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// blake3 hash of a user's API token → user name: authentication is one lookup by
/// hash, so the token itself is never stored nor compared byte by byte.
pub(super) const TOKENS: TableDefinition<&[u8; 32], &str> = TableDefinition::new("user_tokens");

/// Creates every table, so read transactions never meet a missing one.
pub(super) fn create_all(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(SESSIONS)?;
    txn.open_table(HEADS)?;
    txn.open_table(BY_STATUS)?;
    txn.open_table(BY_OWNER)?;
    txn.open_table(FORKS)?;
    txn.open_table(EVENTS)?;
    txn.open_table(CHECKPOINTS)?;
    txn.open_table(OBJECTS)?;
    txn.open_table(BIG_OBJECTS)?;
    txn.open_table(OBJECT_TAILS)?;
    txn.open_table(USERS)?;
    txn.open_table(TOKENS)?;
    Ok(())
}

/// Reads fixed-width fields off a stored value, failing instead of panicking.
struct Fields<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Fields<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let Some((head, rest)) = self.bytes.split_first_chunk::<N>() else {
            return Err(corrupt(self.what, "truncated"));
        };
        self.bytes = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take::<1>()?[0])
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    fn end(self) -> Result<()> {
        if self.bytes.is_empty() { Ok(()) } else { Err(corrupt(self.what, "trailing bytes")) }
    }
}

/// A [`StoreError::CorruptRecord`].
pub(super) fn corrupt(what: impl Into<String>, detail: impl ToString) -> StoreError {
    StoreError::CorruptRecord { what: what.into(), detail: detail.to_string() }
}

/// Layout version of [`HeadRecord`]; a new layout gets a new number.
const HEAD_V1: u8 = 1;

/// A session's mutable state: what a step reads and rewrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct HeadRecord {
    pub status: Status,
    /// The last event's seq; 0 before the first event.
    pub last_seq: u64,
    pub last_step: u64,
    pub root: ObjectId,
    pub usage: Usage,
}

impl HeadRecord {
    pub const LEN: usize = 2 + 8 + 8 + 32 + 4 * 8;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = HEAD_V1;
        out[1] = self.status.as_u8();
        let usage = &self.usage;
        let words = [
            self.last_seq,
            self.last_step,
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_creation_input_tokens,
            usage.cache_read_input_tokens,
        ];
        out[2..10].copy_from_slice(&words[0].to_le_bytes());
        out[10..18].copy_from_slice(&words[1].to_le_bytes());
        out[18..50].copy_from_slice(&self.root.0);
        for (slot, word) in out[50..].chunks_exact_mut(8).zip(&words[2..]) {
            slot.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<HeadRecord> {
        let mut fields = Fields { bytes, what: "session head" };
        let version = fields.u8()?;
        if version != HEAD_V1 {
            return Err(corrupt("session head", format!("unknown layout version {version}")));
        }
        let status = fields.u8()?;
        let status =
            Status::from_u8(status).ok_or_else(|| corrupt("session head", format!("unknown status {status}")))?;
        let last_seq = fields.u64()?;
        let last_step = fields.u64()?;
        let root = ObjectId(fields.take()?);
        let usage = Usage {
            input_tokens: fields.u64()?,
            output_tokens: fields.u64()?,
            cache_creation_input_tokens: fields.u64()?,
            cache_read_input_tokens: fields.u64()?,
        };
        fields.end()?;
        Ok(HeadRecord { status, last_seq, last_step, root, usage })
    }
}

/// One checkpoint: what a step's commit left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CheckpointRecord {
    pub last_seq: u64,
    pub time_nanos: u64,
    pub root: ObjectId,
}

impl CheckpointRecord {
    pub const LEN: usize = 8 + 8 + 32;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.last_seq.to_le_bytes());
        out[8..16].copy_from_slice(&self.time_nanos.to_le_bytes());
        out[16..].copy_from_slice(&self.root.0);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<CheckpointRecord> {
        let mut fields = Fields { bytes, what: "checkpoint" };
        let record =
            CheckpointRecord { last_seq: fields.u64()?, time_nanos: fields.u64()?, root: ObjectId(fields.take()?) };
        fields.end()?;
        Ok(record)
    }
}

/// Splits an event value into its commit time and JSON.
pub(super) fn decode_event(bytes: &[u8]) -> Result<(u64, &[u8])> {
    let Some((time, json)) = bytes.split_first_chunk::<8>() else {
        return Err(corrupt("event", "shorter than its timestamp"));
    };
    Ok((u64::from_le_bytes(*time), json))
}

/// The smallest and largest key of one session in a `(session, u64)` table.
pub(super) fn session_range(id: &[u8; 16]) -> std::ops::RangeInclusive<(&[u8; 16], u64)> {
    (id, 0)..=(id, u64::MAX)
}
