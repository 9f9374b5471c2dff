//! Session ids, metadata and status: creating, reading, listing and deleting sessions.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};
use runtime::vfs::{ObjectId, Quota, Snapshot, Vfs};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::log::{Prepared, Step, commit_in};
use super::objects::{ReadObjects, WriteObjects, put_snapshot};
use super::tables::{
    BY_OWNER, BY_STATUS, CHECKPOINTS, CheckpointRecord, EVENTS, FORKS, HEADS, HeadRecord, SESSIONS, corrupt,
    session_range,
};
use super::{Result, Store, StoreError, from_nanos, now_nanos};
use crate::conversation::Usage;
use crate::settings::SessionSettings;

/// A session's id: a UUID v7, printed in its usual hyphenated form. Ids begin with
/// their creation time (and one process makes them in order), so listings come out
/// oldest first; the rest is random, so ids can't be enumerated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Uuid);

impl SessionId {
    /// A fresh id.
    pub fn new() -> SessionId {
        SessionId(Uuid::now_v7())
    }

    /// The id's 16 bytes, as keys store them.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The id whose bytes these are.
    pub fn from_bytes(bytes: [u8; 16]) -> SessionId {
        SessionId(Uuid::from_bytes(bytes))
    }
}

impl Default for SessionId {
    fn default() -> Self {
        SessionId::new()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// Why a string is not a [`SessionId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a session id: expected a UUID such as 0193b5c4-7e1a-7c3d-9f00-1234567890ab ({reason})")]
pub struct ParseSessionIdError {
    /// The start of the rejected text (cut at 80 characters: it may come from anyone).
    pub input: String,
    /// What the UUID parser objected to.
    pub reason: String,
}

impl FromStr for SessionId {
    type Err = ParseSessionIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(text)
            .map(SessionId)
            .map_err(|err| ParseSessionIdError { input: text.chars().take(80).collect(), reason: err.to_string() })
    }
}

impl Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a session is in its life. The harness resumes every `Running` session at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for a user message.
    Idle,
    /// A run is in progress (or was, when the process died).
    Running,
    /// The last run ended normally.
    Finished,
    /// The last run failed.
    Failed,
    /// The last run was cancelled.
    Cancelled,
}

impl Status {
    /// Every status, in stored order.
    pub const ALL: [Status; 5] = [Status::Idle, Status::Running, Status::Finished, Status::Failed, Status::Cancelled];

    /// The stored byte; never renumber (it is in files and index keys).
    pub(super) fn as_u8(self) -> u8 {
        match self {
            Status::Idle => 0,
            Status::Running => 1,
            Status::Finished => 2,
            Status::Failed => 3,
            Status::Cancelled => 4,
        }
    }

    /// The status a stored byte names, if any.
    pub(super) fn from_u8(byte: u8) -> Option<Status> {
        Status::ALL.get(usize::from(byte)).copied()
    }
}

/// What a new session is made of.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewSession {
    /// The user the session belongs to.
    pub owner: String,
    /// The model provider's name (e.g. "anthropic").
    pub provider: String,
    /// The model's name as the provider knows it.
    pub model: String,
    /// The harness version that created the session.
    pub harness_version: String,
    /// Tool name → content hash of the component that offers it.
    pub tool_versions: BTreeMap<String, String>,
    /// A title for listings.
    pub title: Option<String>,
    /// What the session may use, narrowing the harness's configuration.
    pub settings: SessionSettings,
}

/// Where a fork branched off: its parent and the parent's checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkPoint {
    /// The parent session.
    pub session: SessionId,
    /// The parent's step the fork started from.
    pub step: u64,
    /// The parent's last event at that step: the fork's log inherits events up to it.
    pub seq: u64,
}

/// Where a session's log and filesystem are now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The last event's sequence number (events count from 1; 0 means none yet).
    pub last_seq: u64,
    /// The last committed step (0 is the session's initial checkpoint).
    pub last_step: u64,
    /// The filesystem root at the last step.
    pub root: ObjectId,
}

/// A session as stored: metadata, status, head and usage.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// The session's id.
    pub id: SessionId,
    /// The user it belongs to.
    pub owner: String,
    /// Where it is in its life.
    pub status: Status,
    /// The model provider's name.
    pub provider: String,
    /// The model's name.
    pub model: String,
    /// The harness version that created it.
    pub harness_version: String,
    /// Tool name → content hash.
    pub tool_versions: BTreeMap<String, String>,
    /// When it was created.
    pub created: SystemTime,
    /// Its title, if it has one.
    pub title: Option<String>,
    /// The session and step it was forked from, if it is a fork.
    pub parent: Option<ForkPoint>,
    /// Its last event, step and filesystem root.
    pub head: Head,
    /// Tokens used by this session's own steps (a fork starts from zero).
    pub usage: Usage,
    /// What it may use (a fork inherits its parent's).
    pub settings: SessionSettings,
}

/// The JSON metadata record: what is written once (and on a title change).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct MetaRecord {
    pub owner: String,
    pub provider: String,
    pub model: String,
    pub harness_version: String,
    #[serde(default)]
    pub tool_versions: BTreeMap<String, String>,
    pub created_nanos: u64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub parent: Option<ForkPoint>,
    #[serde(default, skip_serializing_if = "SessionSettings::is_default")]
    pub settings: SessionSettings,
}

impl MetaRecord {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("strings, numbers and maps with string keys always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<MetaRecord> {
        serde_json::from_slice(bytes).map_err(|err| corrupt("session metadata", err))
    }
}

/// Reads a session's head, or says the session doesn't exist.
pub(super) fn load_head(
    table: &impl ReadableTable<&'static [u8; 16], &'static [u8]>,
    id: &SessionId,
) -> Result<HeadRecord> {
    let guard = table.get(id.as_bytes())?.ok_or(StoreError::SessionNotFound(*id))?;
    HeadRecord::decode(guard.value())
}

/// Reads a session's metadata, or says the session doesn't exist.
pub(super) fn load_meta(
    table: &impl ReadableTable<&'static [u8; 16], &'static [u8]>,
    id: &SessionId,
) -> Result<MetaRecord> {
    let guard = table.get(id.as_bytes())?.ok_or(StoreError::SessionNotFound(*id))?;
    MetaRecord::decode(guard.value())
}

/// Writes a new session's metadata, head, checkpoint 0 and index entries.
pub(super) fn insert_session(
    txn: &WriteTransaction,
    id: &SessionId,
    meta: &MetaRecord,
    head: &HeadRecord,
) -> Result<()> {
    let key = id.as_bytes();
    txn.open_table(SESSIONS)?.insert(key, meta.encode().as_slice())?;
    txn.open_table(HEADS)?.insert(key, head.encode().as_slice())?;
    txn.open_table(BY_STATUS)?.insert((head.status.as_u8(), key), ())?;
    txn.open_table(BY_OWNER)?.insert((meta.owner.as_str(), key), ())?;
    let checkpoint = CheckpointRecord { last_seq: head.last_seq, time_nanos: meta.created_nanos, root: head.root };
    txn.open_table(CHECKPOINTS)?.insert((key, head.last_step), checkpoint.encode().as_slice())?;
    if let Some(parent) = &meta.parent {
        txn.open_table(FORKS)?.insert((parent.session.as_bytes(), key), ())?;
    }
    Ok(())
}

/// Moves a session between status index entries; the caller writes the head.
pub(super) fn reindex_status(txn: &WriteTransaction, id: &SessionId, from: Status, to: Status) -> Result<()> {
    if from != to {
        let mut index = txn.open_table(BY_STATUS)?;
        index.remove((from.as_u8(), id.as_bytes()))?;
        index.insert((to.as_u8(), id.as_bytes()), ())?;
    }
    Ok(())
}

fn assemble(id: SessionId, meta: MetaRecord, head: HeadRecord) -> Session {
    Session {
        id,
        owner: meta.owner,
        status: head.status,
        provider: meta.provider,
        model: meta.model,
        harness_version: meta.harness_version,
        tool_versions: meta.tool_versions,
        created: from_nanos(meta.created_nanos),
        title: meta.title,
        parent: meta.parent,
        settings: meta.settings,
        head: Head { last_seq: head.last_seq, last_step: head.last_step, root: head.root },
        usage: head.usage,
    }
}

/// The sessions with these ids, in this order.
fn sessions_in(txn: &redb::ReadTransaction, ids: Vec<SessionId>) -> Result<Vec<Session>> {
    let (metas, heads) = (txn.open_table(SESSIONS)?, txn.open_table(HEADS)?);
    ids.into_iter().map(|id| Ok(assemble(id, load_meta(&metas, &id)?, load_head(&heads, &id)?))).collect()
}

/// The root of an empty filesystem and the one object it needs.
fn empty_snapshot() -> Result<Snapshot> {
    Ok(Vfs::new(Quota::default()).snapshot()?)
}

impl Store {
    /// Creates a session in state `Idle` whose checkpoint 0 is `initial` (an empty
    /// filesystem if `None`), in one transaction.
    pub fn create_session(&self, new: NewSession, initial: Option<&Snapshot>) -> Result<Session> {
        self.create_session_with(new, initial, None)
    }

    /// [`create_session`](Self::create_session) and its first step in one
    /// transaction, so a crash never leaves a session that exists but never started.
    pub fn create_session_with(
        &self,
        new: NewSession,
        initial: Option<&Snapshot>,
        first: Option<&Step>,
    ) -> Result<Session> {
        let prepared = first.map(Prepared::of).transpose()?;
        let empty;
        let snapshot = match initial {
            Some(snapshot) => snapshot,
            None => {
                empty = empty_snapshot()?;
                &empty
            }
        };
        let id = SessionId::new();
        let meta = MetaRecord {
            owner: new.owner,
            provider: new.provider,
            model: new.model,
            harness_version: new.harness_version,
            tool_versions: new.tool_versions,
            created_nanos: now_nanos(),
            title: new.title,
            parent: None,
            settings: new.settings,
        };
        let head = HeadRecord {
            status: Status::Idle,
            last_seq: 0,
            last_step: 0,
            root: snapshot.root,
            usage: Usage::default(),
        };
        let head = self.write(|txn| {
            put_snapshot(&mut WriteObjects::open(txn)?, snapshot)?;
            insert_session(txn, &id, &meta, &head)?;
            if let (Some(step), Some(prepared)) = (first, &prepared) {
                commit_in(txn, &id, step, prepared)?;
                return load_head(&txn.open_table(HEADS)?, &id);
            }
            Ok(head)
        })?;
        Ok(assemble(id, meta, head))
    }

    /// The session with this id.
    pub fn session(&self, id: &SessionId) -> Result<Session> {
        let txn = self.read()?;
        let meta = load_meta(&txn.open_table(SESSIONS)?, id)?;
        let head = load_head(&txn.open_table(HEADS)?, id)?;
        Ok(assemble(*id, meta, head))
    }

    /// Every session, or one owner's, oldest first.
    pub fn list_sessions(&self, owner: Option<&str>) -> Result<Vec<Session>> {
        let txn = self.read()?;
        let ids: Vec<SessionId> = match owner {
            Some(owner) => {
                let index = txn.open_table(BY_OWNER)?;
                let range = index.range((owner, &[0u8; 16])..=(owner, &[0xffu8; 16]))?;
                range.map(|entry| Ok(SessionId::from_bytes(*entry?.0.value().1))).collect::<Result<_>>()?
            }
            None => {
                let sessions = txn.open_table(SESSIONS)?;
                sessions.iter()?.map(|entry| Ok(SessionId::from_bytes(*entry?.0.value()))).collect::<Result<_>>()?
            }
        };
        sessions_in(&txn, ids)
    }

    /// Every session in `status`, oldest first; at start the harness resumes the `Running` ones.
    pub fn sessions_with_status(&self, status: Status) -> Result<Vec<Session>> {
        let txn = self.read()?;
        let index = txn.open_table(BY_STATUS)?;
        let code = status.as_u8();
        let ids = index
            .range((code, &[0u8; 16])..=(code, &[0xffu8; 16]))?
            .map(|entry| Ok(SessionId::from_bytes(*entry?.0.value().1)))
            .collect::<Result<Vec<_>>>()?;
        sessions_in(&txn, ids)
    }

    /// Sets a session's status (without committing a step).
    pub fn set_status(&self, id: &SessionId, status: Status) -> Result<()> {
        self.write(|txn| {
            let mut heads = txn.open_table(HEADS)?;
            let mut head = load_head(&heads, id)?;
            reindex_status(txn, id, head.status, status)?;
            head.status = status;
            heads.insert(id.as_bytes(), head.encode().as_slice())?;
            Ok(())
        })
    }

    /// Sets or clears a session's title.
    pub fn set_title(&self, id: &SessionId, title: Option<String>) -> Result<()> {
        self.write(|txn| {
            let mut metas = txn.open_table(SESSIONS)?;
            let mut meta = load_meta(&metas, id)?;
            meta.title = title;
            metas.insert(id.as_bytes(), meta.encode().as_slice())?;
            Ok(())
        })
    }

    /// Deletes a session: metadata, events and checkpoints. Refused while other
    /// sessions are forked from it, since forks read its log prefix; delete the forks
    /// first. Objects only it used are collected by the next [`Store::prune`] or
    /// [`Store::collect_garbage`].
    pub fn delete_session(&self, id: &SessionId) -> Result<()> {
        self.write(|txn| {
            let key = id.as_bytes();
            let meta = load_meta(&txn.open_table(SESSIONS)?, id)?;
            let head = load_head(&txn.open_table(HEADS)?, id)?;
            let forks = txn.open_table(FORKS)?;
            let children = forks
                .range((key, &[0u8; 16])..=(key, &[0xffu8; 16]))?
                .map(|entry| Ok(SessionId::from_bytes(*entry?.0.value().1)))
                .collect::<Result<Vec<_>>>()?;
            drop(forks);
            if !children.is_empty() {
                return Err(StoreError::HasForks { session: *id, forks: children });
            }
            txn.open_table(SESSIONS)?.remove(key)?;
            txn.open_table(HEADS)?.remove(key)?;
            txn.open_table(BY_STATUS)?.remove((head.status.as_u8(), key))?;
            txn.open_table(BY_OWNER)?.remove((meta.owner.as_str(), key))?;
            if let Some(parent) = &meta.parent {
                txn.open_table(FORKS)?.remove((parent.session.as_bytes(), key))?;
            }
            txn.open_table(EVENTS)?.retain_in(session_range(key), |_, _| false)?;
            txn.open_table(CHECKPOINTS)?.retain_in(session_range(key), |_, _| false)?;
            Ok(())
        })
    }

    /// Number of sessions, events and objects stored: what a fork must not grow.
    pub fn counts(&self) -> Result<Counts> {
        let txn = self.read()?;
        Ok(Counts {
            sessions: txn.open_table(SESSIONS)?.len()?,
            events: txn.open_table(EVENTS)?.len()?,
            checkpoints: txn.open_table(CHECKPOINTS)?.len()?,
            objects: ReadObjects::open(&txn)?.len()?,
        })
    }
}

/// How many records of each kind the store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Sessions, forks included.
    pub sessions: u64,
    /// Events over all sessions (inherited events are not copied, so not counted twice).
    pub events: u64,
    /// Checkpoint records over all sessions.
    pub checkpoints: u64,
    /// Filesystem objects.
    pub objects: u64,
}
