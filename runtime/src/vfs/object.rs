//! Object names, object sources and snapshots: the boundary to the durable store.
//!
//! The runtime never persists anything itself. A [`Snapshot`] hands the harness the
//! objects that are new, the harness writes them (redb) and later serves them back
//! through an [`ObjectSource`], which is all [`Vfs::restore`](super::Vfs::restore) needs.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};

/// The name of an object: the blake3 hash of its encoded bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Ord, PartialOrd)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    /// The id of an encoded object.
    pub fn of(encoded: &[u8]) -> ObjectId {
        ObjectId(*blake3::hash(encoded).as_bytes())
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Six bytes tell objects apart in logs and test failures without drowning them.
        write!(f, "ObjectId(")?;
        self.0[..6].iter().try_for_each(|byte| write!(f, "{byte:02x}"))?;
        write!(f, "…)")
    }
}

/// Why a string is not an [`ObjectId`].
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("an object id is exactly 64 hexadecimal digits")]
pub struct ParseObjectIdError;

impl FromStr for ObjectId {
    type Err = ParseObjectIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.as_bytes();
        if text.len() != 64 {
            return Err(ParseObjectIdError);
        }
        let mut id = [0u8; 32];
        for (byte, pair) in id.iter_mut().zip(text.chunks_exact(2)) {
            *byte = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
        }
        Ok(ObjectId(id))
    }
}

fn hex_digit(digit: u8) -> Result<u8, ParseObjectIdError> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        b'A'..=b'F' => Ok(digit - b'A' + 10),
        _ => Err(ParseObjectIdError),
    }
}

impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HexVisitor;
        impl serde::de::Visitor<'_> for HexVisitor {
            type Value = ObjectId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object id as 64 hexadecimal digits")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ObjectId, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(HexVisitor)
    }
}

/// Where a restored filesystem loads its objects from (redb in the harness).
pub trait ObjectSource: Send + Sync {
    /// The encoded object, or `None` if the source doesn't have it.
    fn load(&self, id: &ObjectId) -> std::io::Result<Option<Arc<[u8]>>>;
}

/// An in-memory object store, for tests, forks within one process and edge hosts.
#[derive(Default)]
pub struct MemoryObjects {
    objects: RwLock<HashMap<ObjectId, Arc<[u8]>>>,
}

impl MemoryObjects {
    /// Stores one object. The bytes are trusted to hash to `id` (loading verifies it).
    pub fn insert(&self, id: ObjectId, bytes: Arc<[u8]>) {
        self.objects.write().unwrap_or_else(PoisonError::into_inner).insert(id, bytes);
    }

    /// Stores every new object of a snapshot.
    pub fn insert_snapshot(&self, snapshot: &Snapshot) {
        let mut objects = self.objects.write().unwrap_or_else(PoisonError::into_inner);
        for (id, bytes) in &snapshot.new_objects {
            objects.insert(*id, bytes.clone());
        }
    }

    /// Number of stored objects.
    pub fn len(&self) -> usize {
        self.objects.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ObjectSource for MemoryObjects {
    fn load(&self, id: &ObjectId) -> std::io::Result<Option<Arc<[u8]>>> {
        Ok(self.objects.read().unwrap_or_else(PoisonError::into_inner).get(id).cloned())
    }
}

impl fmt::Debug for MemoryObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryObjects").field("len", &self.len()).finish()
    }
}

/// A committed state of the tree: its root and the objects the store doesn't have yet.
#[derive(Clone)]
pub struct Snapshot {
    /// The root directory object; restoring from it reproduces the tree.
    pub root: ObjectId,
    /// Objects created since the previous snapshot of this filesystem, each once.
    pub new_objects: Vec<(ObjectId, Arc<[u8]>)>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes: usize = self.new_objects.iter().map(|(_, bytes)| bytes.len()).sum();
        f.debug_struct("Snapshot")
            .field("root", &self.root)
            .field("new_objects", &self.new_objects.len())
            .field("new_bytes", &bytes)
            .finish()
    }
}
