//! The durable store: one redb file holding every session's metadata, append-only
//! event log, checkpoints and filesystem objects.
//!
//! Why it is shaped this way:
//! - A step (the events of a model answer or a tool result, plus the filesystem delta)
//!   is committed in **one** write transaction ([`Store::commit_step`]), so after a
//!   crash the log, the checkpoint and the objects a root needs are either all there
//!   or none is.
//! - Commits must cost the same at turn 1,000 as at turn 10, so every per-session
//!   value that grows is split into append-only keys: events by `(session, seq)`,
//!   checkpoints by `(session, step)`. The only value rewritten per step is a fixed
//!   82-byte head record; the JSON metadata is written once.
//! - Objects are content-addressed and inserted only when absent, so forks and
//!   unchanged subtrees share them. A fork is a new session pointing at its parent's
//!   log prefix and root: it copies nothing.
//! - Growth is bounded by what is kept: [`Store::prune`] drops old checkpoint records
//!   and collects objects no kept checkpoint of any session reaches; redb reuses the
//!   freed pages.
//! - Nothing per session is held in memory: the store is a handle on the database.
//!
//! The API is synchronous (redb is); async callers run it on a blocking thread.

mod diff;
mod history;
mod log;
mod objects;
mod session;
mod tables;
mod users;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, DatabaseError, Durability, ReadTransaction, ReadableDatabase, StorageError, WriteTransaction};
use runtime::vfs::{FsError, ObjectId};

pub use diff::{Change, DiffEntry};
pub use history::{Checkpoint, PruneStats};
pub use log::{LoggedEvent, Step};
pub use session::{Counts, ForkPoint, Head, NewSession, ParseSessionIdError, Session, SessionId, Status};
pub use users::{TokenHash, User, UserError, new_token};

/// The first bytes of every redb file. Checked before redb sees a file, so a stray
/// file is reported as "not a database" instead of whatever redb makes of it.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file exists but is not a redb database.
    #[error("{} is not a harness database (it is not a redb file); move it away or choose another path", path.display())]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// Another process (or another handle in this one) has the database open.
    #[error("database {} is locked by another harness process; stop that process or use another file", path.display())]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// redb found the file damaged and could not repair it.
    #[error("database {} is corrupt: {detail}; restore it from a backup", path.display())]
    CorruptDatabase {
        /// The file.
        path: PathBuf,
        /// What redb reported.
        detail: String,
    },
    /// The file was written in a redb format this build can't open.
    #[error("database {} uses redb file format {version}, which this harness can't open; upgrade it with the harness that wrote it", path.display())]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// The file's format version.
        version: u8,
    },
    /// The file could not be opened or read at all.
    #[error("cannot open database {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// No session has this id (or it was deleted).
    #[error("session {0} not found")]
    SessionNotFound(SessionId),
    /// The session has no checkpoint for that step (never made, or pruned).
    #[error("session {session} has no checkpoint for step {step} (it was never committed or has been pruned)")]
    CheckpointNotFound {
        /// The session.
        session: SessionId,
        /// The step asked for.
        step: u64,
    },
    /// Deleting a session other sessions were forked from would break them.
    #[error("session {session} has forks ({}); delete them first", forks.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    HasForks {
        /// The session.
        session: SessionId,
        /// Its direct forks.
        forks: Vec<SessionId>,
    },
    /// A step's filesystem root is neither among its new objects nor stored already,
    /// so the snapshot was taken against objects this store never received.
    #[error("the step's filesystem root {0} is not in the store; snapshots must be committed in order")]
    MissingRoot(ObjectId),
    /// An object that a kept checkpoint reaches is missing or undecodable.
    #[error("object {id} reachable from a kept checkpoint is {problem}; nothing was collected")]
    BrokenObject {
        /// The object.
        id: ObjectId,
        /// "missing" or the decode error.
        problem: String,
    },
    /// A stored record doesn't decode: the file was damaged or written by something else.
    #[error("stored {what} is corrupt: {detail}")]
    CorruptRecord {
        /// Which record.
        what: String,
        /// Why it doesn't decode.
        detail: String,
    },
    /// An event could not be serialized (a non-string map key in tool input, for instance).
    #[error("cannot serialize an event: {0}")]
    Encode(#[source] serde_json::Error),
    /// A filesystem restored from the store failed.
    #[error("workspace filesystem: {0}")]
    Fs(#[from] FsError),
    /// redb failed (I/O, for instance).
    #[error("database error: {0}")]
    Database(#[from] redb::Error),
}

/// Shorthand for results of this module.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

macro_rules! from_redb {
    ($($error:ty),*) => {$(
        impl From<$error> for StoreError {
            fn from(err: $error) -> StoreError {
                StoreError::Database(err.into())
            }
        }
    )*};
}

from_redb!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// How a store is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Whether a commit is on disk when it returns (redb `Durability::Immediate`).
    /// Only tests that don't care about crashes should turn this off; redb also
    /// reuses pages freed by non-durable commits only after a durable one.
    pub durable: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { durable: true }
    }
}

/// A handle on the database; cheap to clone, safe to share between threads.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    path: Arc<Path>,
    durability: Durability,
}

impl Store {
    /// Opens the database at `path` with durable commits, creating it if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, StoreOptions::default())
    }

    /// Opens the database at `path`, creating the file and its tables if needed.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref();
        if !path.exists() {
            create_atomically(path)?;
        }
        check_magic(path)?;
        let db = Database::builder().create(path).map_err(|err| open_error(path, err))?;
        let store = Store {
            db: Arc::new(db),
            path: path.into(),
            durability: if options.durable { Durability::Immediate } else { Durability::None },
        };
        store.write(tables::create_all)?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `body` in one write transaction and commits it if `body` succeeds; on an
    /// error the transaction is dropped, which aborts it, so nothing is written.
    fn write<T>(&self, body: impl FnOnce(&WriteTransaction) -> Result<T>) -> Result<T> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(self.durability).map_err(|err| StoreError::Database(err.into()))?;
        let value = body(&txn)?;
        txn.commit()?;
        Ok(value)
    }

    /// A read transaction: a consistent view of the last commit.
    fn read(&self) -> Result<ReadTransaction> {
        Ok(self.db.begin_read()?)
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).field("durability", &self.durability).finish()
    }
}

/// Refuses a non-empty file that doesn't start like a redb file.
fn check_magic(path: &Path) -> Result<()> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(StoreError::Open { path: path.into(), source }),
    };
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    (&mut file)
        .take(REDB_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(|source| StoreError::Open { path: path.into(), source })?;
    if head.is_empty() || head == REDB_MAGIC { Ok(()) } else { Err(StoreError::NotADatabase { path: path.into() }) }
}

/// Creates a new database beside `path` and renames it into place, so a process
/// killed while creating it leaves a stray temporary file, never a half-made
/// database at `path` (redb writes its magic number last, and a file without it
/// can't be opened again).
fn create_atomically(path: &Path) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.creating-{}", std::process::id()));
    let created = Database::builder().create(&temp).map_err(|err| open_error(&temp, err)).and_then(|db| {
        let store = Store { db: Arc::new(db), path: temp.as_path().into(), durability: Durability::Immediate };
        store.write(tables::create_all)
    });
    let renamed = created.and_then(|()| {
        // Another process may have created it meanwhile; theirs wins, ours is dropped.
        if path.exists() {
            return Ok(());
        }
        std::fs::rename(&temp, path).map_err(|source| StoreError::Open { path: path.into(), source })
    });
    let _ = std::fs::remove_file(&temp);
    renamed
}

/// Names the file and says what to do for each way redb can refuse to open it.
fn open_error(path: &Path, err: DatabaseError) -> StoreError {
    let path = path.to_path_buf();
    match err {
        DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { path },
        DatabaseError::UpgradeRequired(version) => StoreError::Incompatible { path, version },
        DatabaseError::Storage(StorageError::Corrupted(detail)) => StoreError::CorruptDatabase { path, detail },
        DatabaseError::Storage(StorageError::Io(source)) => StoreError::Open { path, source },
        other => StoreError::Database(other.into()),
    }
}

/// Now, in nanoseconds since the Unix epoch (0 for a clock set before it).
fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

/// A stored time back as a [`SystemTime`].
fn from_nanos(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}
