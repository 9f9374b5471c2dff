//! Time travel and retention: checkpoints, restoring any of them, forking from one,
//! pruning old ones and collecting the objects nothing kept reaches.

use std::collections::HashSet;
use std::time::SystemTime;

use redb::{ReadableTable, WriteTransaction};
use runtime::vfs::{ObjectId, Quota, Vfs};

use super::objects::WriteObjects;
use super::session::{ForkPoint, MetaRecord, Session, SessionId, Status, insert_session, load_head, load_meta};
use super::tables::{CHECKPOINTS, CheckpointRecord, HEADS, HeadRecord, SESSIONS, session_range};
use super::{Result, Store, StoreError, from_nanos, now_nanos};
use crate::conversation::Usage;

/// The state a committed step left: a point a session can be restored or forked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The step's number: 0 for the session's initial state, then 1, 2, …
    pub step: u64,
    /// The last event the step left in the log (0 if none yet).
    pub last_seq: u64,
    /// The filesystem root after the step.
    pub root: ObjectId,
    /// When the step was committed.
    pub time: SystemTime,
}

impl Checkpoint {
    pub(super) fn from_record(step: u64, record: CheckpointRecord) -> Checkpoint {
        Checkpoint { step, last_seq: record.last_seq, root: record.root, time: from_nanos(record.time_nanos) }
    }
}

/// What [`Store::prune`] or [`Store::collect_garbage`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Checkpoint records dropped.
    pub checkpoints_removed: u64,
    /// Objects no kept checkpoint reached any more.
    pub objects_removed: u64,
    /// Encoded bytes of those objects.
    pub bytes_freed: u64,
}

impl Store {
    /// A session's checkpoints that are still kept, oldest first.
    pub fn checkpoints(&self, id: &SessionId) -> Result<Vec<Checkpoint>> {
        let txn = self.read()?;
        load_head(&txn.open_table(HEADS)?, id)?;
        let table = txn.open_table(CHECKPOINTS)?;
        table
            .range(session_range(id.as_bytes()))?
            .map(|entry| {
                let (key, value) = entry?;
                Ok(Checkpoint::from_record(key.value().1, CheckpointRecord::decode(value.value())?))
            })
            .collect()
    }

    /// One checkpoint of a session.
    pub fn checkpoint(&self, id: &SessionId, step: u64) -> Result<Checkpoint> {
        let txn = self.read()?;
        load_head(&txn.open_table(HEADS)?, id)?;
        let table = txn.open_table(CHECKPOINTS)?;
        find_checkpoint(&table, id, step)
    }

    /// The session's filesystem as it was after `step`, loading lazily from this store.
    pub fn restore(&self, id: &SessionId, step: u64, quota: Quota) -> Result<Vfs> {
        let checkpoint = self.checkpoint(id, step)?;
        self.restore_root(checkpoint.root, quota)
    }

    /// A new `Idle` session for `owner` that starts from `id`'s checkpoint `step`: its
    /// log is the parent's up to that step, its filesystem the parent's root then. It
    /// copies no events and no objects; its own steps count from 1 again and its
    /// usage from zero. Its checkpoint 0 names that root, so pruning the parent never
    /// collects what the fork needs.
    pub fn fork(&self, id: &SessionId, step: u64, owner: &str) -> Result<Session> {
        let fork = SessionId::new();
        self.write(|txn| {
            let parent = load_meta(&txn.open_table(SESSIONS)?, id)?;
            load_head(&txn.open_table(HEADS)?, id)?;
            let checkpoint = find_checkpoint(&txn.open_table(CHECKPOINTS)?, id, step)?;
            let meta = MetaRecord {
                owner: owner.to_owned(),
                created_nanos: now_nanos(),
                parent: Some(ForkPoint { session: *id, step, seq: checkpoint.last_seq }),
                ..parent
            };
            let head = HeadRecord {
                status: Status::Idle,
                last_seq: checkpoint.last_seq,
                last_step: 0,
                root: checkpoint.root,
                usage: Usage::default(),
            };
            insert_session(txn, &fork, &meta, &head)
        })?;
        self.session(&fork)
    }

    /// Keeps the last `keep_last` checkpoints of a session (at least one: the head) and
    /// drops older ones, then collects every object no kept checkpoint of any session
    /// reaches, in one transaction. Events are never pruned.
    pub fn prune(&self, id: &SessionId, keep_last: usize) -> Result<PruneStats> {
        self.write(|txn| {
            let head = load_head(&txn.open_table(HEADS)?, id)?;
            let keep = u64::try_from(keep_last.max(1)).unwrap_or(u64::MAX);
            let first_kept = head.last_step.saturating_add(1).saturating_sub(keep);
            let key = id.as_bytes();
            let mut removed = 0;
            txn.open_table(CHECKPOINTS)?.retain_in((key, 0)..(key, first_kept), |_, _| {
                removed += 1;
                false
            })?;
            let stats = collect(txn)?;
            Ok(PruneStats { checkpoints_removed: removed, ..stats })
        })
    }

    /// Collects every object no kept checkpoint of any session reaches (after
    /// [`Store::delete_session`], say), in one transaction.
    pub fn collect_garbage(&self) -> Result<PruneStats> {
        self.write(collect)
    }
}

/// A checkpoint record, or which one is missing.
fn find_checkpoint(
    table: &impl ReadableTable<(&'static [u8; 16], u64), &'static [u8]>,
    id: &SessionId,
    step: u64,
) -> Result<Checkpoint> {
    let value = table.get((id.as_bytes(), step))?.ok_or(StoreError::CheckpointNotFound { session: *id, step })?;
    Ok(Checkpoint::from_record(step, CheckpointRecord::decode(value.value())?))
}

/// Mark and sweep: marks everything reachable from every kept checkpoint root and
/// every head root, never descending into a subtree twice (forks and unchanged
/// subtrees share objects), then removes the rest. If a reachable object is missing
/// or undecodable the transaction fails and nothing is removed: what it referred to
/// can't be told apart from garbage.
fn collect(txn: &WriteTransaction) -> Result<PruneStats> {
    let mut marked = HashSet::new();
    let mut stack = Vec::new();
    for entry in txn.open_table(CHECKPOINTS)?.iter()? {
        let root = CheckpointRecord::decode(entry?.1.value())?.root;
        if marked.insert(root) {
            stack.push(root);
        }
    }
    for entry in txn.open_table(HEADS)?.iter()? {
        let root = HeadRecord::decode(entry?.1.value())?.root;
        if marked.insert(root) {
            stack.push(root);
        }
    }
    let mut objects = WriteObjects::open(txn)?;
    while let Some(id) = stack.pop() {
        let bytes = objects.get(&id)?.ok_or_else(|| StoreError::BrokenObject { id, problem: "missing".into() })?;
        let children = runtime::vfs::children(&bytes)
            .map_err(|err| StoreError::BrokenObject { id, problem: format!("undecodable ({err})") })?;
        stack.extend(children.into_iter().filter(|child| marked.insert(*child)));
    }
    let (objects_removed, bytes_freed) = objects.sweep(&marked)?;
    Ok(PruneStats { checkpoints_removed: 0, objects_removed, bytes_freed })
}
