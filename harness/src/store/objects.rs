//! Filesystem objects: how they are laid out in redb, writing a snapshot's new
//! objects, and serving them back to a lazily restored [`Vfs`] through
//! [`ObjectSource`].
//!
//! redb gives a leaf holding a large value a page of the next power of two, and a
//! leaf whose entries exceed one 4 KiB page is split unless it holds a single entry.
//! A full file chunk is 64 KiB plus a tag byte, so stored plainly it would take a
//! 128 KiB page and double both the database and the bytes every commit writes.
//! Hence three tables: small objects together; larger ones alone in `BIG` (any two
//! of them exceed a page, so each leaf holds one), cut at [`PAGE_FIT`] so a full
//! chunk fills a 64 KiB page exactly; the few bytes past the cut in `TAILS`.

use std::collections::HashSet;
use std::sync::Arc;

use redb::{ReadTransaction, ReadableTable, Table, WriteTransaction};
use runtime::vfs::{ObjectId, ObjectSource, Quota, Snapshot, Vfs};

use super::tables::{BIG_OBJECTS, OBJECT_TAILS, OBJECTS};
use super::{Result, Store, StoreError};

/// Objects up to this size share leaves in `OBJECTS`; larger ones go to `BIG_OBJECTS`.
/// Half a page, so that two big values never fit one leaf.
const INLINE_MAX: usize = 2048;
/// The most value bytes a one-entry leaf with a 32-byte key holds in a 64 KiB page
/// (redb's leaf header and value length take 8 bytes).
const PAGE_FIT: usize = 64 * 1024 - 8 - 32;

/// The three object tables of one transaction.
pub(super) struct Objects<T> {
    small: T,
    big: T,
    tails: T,
}

/// Object tables of a read transaction.
pub(super) type ReadObjects = Objects<redb::ReadOnlyTable<&'static [u8; 32], &'static [u8]>>;
/// Object tables of a write transaction.
pub(super) type WriteObjects<'txn> = Objects<Table<'txn, &'static [u8; 32], &'static [u8]>>;

impl ReadObjects {
    pub fn open(txn: &ReadTransaction) -> Result<ReadObjects> {
        Ok(Objects {
            small: txn.open_table(OBJECTS)?,
            big: txn.open_table(BIG_OBJECTS)?,
            tails: txn.open_table(OBJECT_TAILS)?,
        })
    }
}

impl<'txn> WriteObjects<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<WriteObjects<'txn>> {
        Ok(Objects {
            small: txn.open_table(OBJECTS)?,
            big: txn.open_table(BIG_OBJECTS)?,
            tails: txn.open_table(OBJECT_TAILS)?,
        })
    }

    /// Stores an object unless present. Content-addressed: a present id already holds
    /// these bytes, and skipping the insert spares redb a copy-on-write of its page.
    pub fn insert(&mut self, id: &ObjectId, bytes: &[u8]) -> Result<()> {
        if bytes.len() <= INLINE_MAX {
            if self.small.get(&id.0)?.is_none() {
                self.small.insert(&id.0, bytes)?;
            }
        } else if self.big.get(&id.0)?.is_none() {
            let (head, tail) = bytes.split_at(bytes.len().min(PAGE_FIT));
            self.big.insert(&id.0, head)?;
            if !tail.is_empty() {
                self.tails.insert(&id.0, tail)?;
            }
        }
        Ok(())
    }

    /// Removes every object not in `keep`; returns (objects removed, bytes freed).
    pub fn sweep(&mut self, keep: &HashSet<ObjectId>) -> Result<(u64, u64)> {
        let (mut objects, mut bytes) = (0, 0);
        for (table, counted) in [(&mut self.small, true), (&mut self.big, true), (&mut self.tails, false)] {
            table.retain(|id, value| {
                let kept = keep.contains(&ObjectId(*id));
                if !kept {
                    objects += u64::from(counted);
                    bytes += value.len() as u64;
                }
                kept
            })?;
        }
        Ok((objects, bytes))
    }
}

impl<T: ReadableTable<&'static [u8; 32], &'static [u8]>> Objects<T> {
    /// An object's encoded bytes, if stored.
    pub fn get(&self, id: &ObjectId) -> Result<Option<Arc<[u8]>>> {
        if let Some(bytes) = self.small.get(&id.0)? {
            return Ok(Some(bytes.value().into()));
        }
        let Some(head) = self.big.get(&id.0)? else { return Ok(None) };
        let head = head.value();
        if head.len() < PAGE_FIT {
            return Ok(Some(head.into()));
        }
        match self.tails.get(&id.0)? {
            Some(tail) => Ok(Some([head, tail.value()].concat().into())),
            None => Ok(Some(head.into())),
        }
    }

    /// Whether an object is stored, without reading it.
    pub fn contains(&self, id: &ObjectId) -> Result<bool> {
        Ok(self.small.get(&id.0)?.is_some() || self.big.get(&id.0)?.is_some())
    }

    /// How many objects are stored.
    pub fn len(&self) -> Result<u64> {
        Ok(redb::ReadableTableMetadata::len(&self.small)? + redb::ReadableTableMetadata::len(&self.big)?)
    }
}

/// Writes the snapshot's objects the store doesn't have yet and checks its root is
/// stored, so no checkpoint can name a root that can't be restored.
pub(super) fn put_snapshot(objects: &mut WriteObjects<'_>, snapshot: &Snapshot) -> Result<()> {
    for (id, bytes) in &snapshot.new_objects {
        objects.insert(id, bytes)?;
    }
    let root_is_new = snapshot.new_objects.iter().any(|(id, _)| *id == snapshot.root);
    if !root_is_new && !objects.contains(&snapshot.root)? {
        return Err(StoreError::MissingRoot(snapshot.root));
    }
    Ok(())
}

impl Store {
    /// One object's encoded bytes, if stored.
    pub fn object(&self, id: &ObjectId) -> Result<Option<Arc<[u8]>>> {
        ReadObjects::open(&self.read()?)?.get(id)
    }

    /// The filesystem stored under `root`, loading objects lazily from this store.
    pub fn restore_root(&self, root: ObjectId, quota: Quota) -> Result<Vfs> {
        Ok(Vfs::restore(root, Arc::new(self.clone()), quota)?)
    }
}

impl ObjectSource for Store {
    fn load(&self, id: &ObjectId) -> std::io::Result<Option<Arc<[u8]>>> {
        self.object(id).map_err(std::io::Error::other)
    }
}
