//! The binary encoding of filesystem objects, format version 1.
//!
//! An object's id is the blake3 hash of its encoding, so the encoding is canonical:
//! one tree has exactly one encoding, and equal subtrees share objects. Decoders take
//! bytes from a store and trust none of them: every length is bounds-checked before
//! use and anything malformed is an [`FsError::Io`], never a panic.
//!
//! Every object starts with one tag byte naming its type *and* format version; a
//! future version gets a new tag, and decoders reject tags they don't know.
//! `uv` is an unsigned LEB128 varint in its shortest form; an id is 32 raw bytes;
//! a `time` is `uv secs, uv nanos` with `nanos < 10^9`; `u64`/`u32` are little-endian.
//!
//! ```text
//! chunk  'C' (0x43)  bytes…                        1..=65536 bytes of file content
//! file   'F' (0x46)  id × ceil(size / 65536),      the chunk ids, in order
//!                    u64 size, u64 atime secs, u32 atime nanos,
//!                    u64 mtime secs, u32 mtime nanos     (a fixed 32-byte trailer)
//! dir    'D' (0x44)  time atime, time mtime,
//!                    uv bytes, uv nodes,            file bytes and node count below this dir
//!                    uv count, entry × count        sorted by name bytes, no duplicates
//! entry              uv name_len, name (UTF-8), u8 kind (0 file, 1 dir), id,
//!                    uv bytes,                      the file's size / the dir's `bytes`
//!                    [uv nodes]                     dirs only: the dir's `nodes`
//! ```
//!
//! The per-entry aggregates let a directory account for a child it hasn't loaded, so
//! restoring needs no tree walk and removing a lazily restored subtree loads nothing.
//! A file puts its chunk ids first and what changes on every write last, so appending
//! to a large file changes only the end of its encoding and a snapshot can resume a
//! saved blake3 state instead of rehashing every id (see `Vfs::snapshot`).

use std::sync::{Arc, OnceLock};

use super::path::valid_name;
use super::{FsError, NodeKind, ObjectId, Timestamp};

/// Bytes per file chunk; the last chunk of a file is shorter.
pub const CHUNK_SIZE: usize = 64 * 1024;

const TAG_CHUNK: u8 = b'C';
const TAG_FILE: u8 = b'F';
const TAG_DIR: u8 = b'D';
const KIND_FILE: u8 = 0;
const KIND_DIR: u8 = 1;
/// The smallest possible encoded entry; bounds `count` before anything is allocated.
const MIN_ENTRY_BYTES: usize = 1 + 1 + 1 + 32 + 1;

/// Number of chunks of a file of `size` bytes.
pub(super) fn chunk_count(size: u64) -> usize {
    usize::try_from(size.div_ceil(CHUNK_SIZE as u64)).unwrap_or(usize::MAX)
}

/// Length of chunk `index` of a file of `size` bytes.
pub(super) fn chunk_len(size: u64, index: usize) -> usize {
    let start = index as u64 * CHUNK_SIZE as u64;
    size.saturating_sub(start).min(CHUNK_SIZE as u64) as usize
}

/// The full-size chunk of zeroes: every sparse region shares this one allocation, and
/// its id is hashed once per process.
pub(super) fn zero_chunk() -> &'static (Arc<[u8]>, ObjectId) {
    static ZERO: OnceLock<(Arc<[u8]>, ObjectId)> = OnceLock::new();
    ZERO.get_or_init(|| {
        let mut bytes = vec![0u8; 1 + CHUNK_SIZE];
        bytes[0] = TAG_CHUNK;
        let id = ObjectId::of(&bytes);
        (bytes.into(), id)
    })
}

/// A chunk object of `len` bytes: zeroes overlaid with each `(offset, bytes)` part.
pub(super) fn build_chunk(len: usize, parts: &[(usize, &[u8])]) -> Arc<[u8]> {
    if len == CHUNK_SIZE && parts.iter().all(|(_, bytes)| bytes.is_empty()) {
        return zero_chunk().0.clone();
    }
    let mut bytes = vec![0u8; 1 + len];
    bytes[0] = TAG_CHUNK;
    for (at, part) in parts {
        bytes[1 + at..1 + at + part.len()].copy_from_slice(part);
    }
    bytes.into()
}

/// The content bytes of an encoded chunk.
pub(super) fn chunk_data(chunk: &[u8]) -> &[u8] {
    &chunk[1..]
}

/// Checks a chunk loaded from a store before it is used as `len` bytes of a file.
pub(super) fn check_chunk(bytes: &[u8], len: usize) -> Result<(), FsError> {
    match bytes.split_first() {
        Some((&TAG_CHUNK, data)) if data.len() == len => Ok(()),
        Some((&TAG_CHUNK, data)) => {
            Err(corrupt("chunk", format!("holds {} bytes where the file needs {len}", data.len())))
        }
        Some((tag, _)) => Err(corrupt("chunk", format!("unexpected tag {tag:#04x}"))),
        None => Err(corrupt("chunk", "empty")),
    }
}

/// A decoded file object.
pub(super) struct FileObject {
    pub size: u64,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub chunks: Vec<ObjectId>,
}

/// Bytes of a file object's fixed trailer.
const FILE_TRAILER: usize = 8 + 8 + 4 + 8 + 4;

/// Encodes a file object; `chunks` must hold `chunk_count(size)` ids. The chunk id `i`
/// is at `file_id_offset(i)`.
pub(super) fn encode_file(
    size: u64,
    atime: Timestamp,
    mtime: Timestamp,
    chunks: impl ExactSizeIterator<Item = ObjectId>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 32 * chunks.len() + FILE_TRAILER);
    out.push(TAG_FILE);
    for id in chunks {
        out.extend_from_slice(&id.0);
    }
    out.extend_from_slice(&size.to_le_bytes());
    for time in [atime, mtime] {
        out.extend_from_slice(&time.secs.to_le_bytes());
        out.extend_from_slice(&time.nanos.to_le_bytes());
    }
    out
}

/// Where chunk id `index` starts in an encoded file object.
pub(super) fn file_id_offset(index: usize) -> usize {
    1 + 32 * index
}

/// Decodes and validates a file object.
pub(super) fn decode_file(bytes: &[u8]) -> Result<FileObject, FsError> {
    let mut r = Reader::new(bytes, "file");
    r.tag(TAG_FILE)?;
    let ids_len = r.remaining().checked_sub(FILE_TRAILER).ok_or_else(|| r.error("truncated"))?;
    let ids = r.take(ids_len as u64)?;
    let size = r.u64()?;
    let atime = r.fixed_time()?;
    let mtime = r.fixed_time()?;
    let count = size.div_ceil(CHUNK_SIZE as u64);
    if ids.len() % 32 != 0 || count != (ids.len() / 32) as u64 {
        return Err(r.error(format!("a file of {size} bytes needs {count} chunk ids")));
    }
    let chunks = ids.chunks_exact(32).map(|id| ObjectId(id.try_into().expect("32 bytes"))).collect();
    Ok(FileObject { size, atime, mtime, chunks })
}

/// The ids an encoded object refers to: a directory's entries, a file's chunks, nothing
/// for a chunk. A store walks these from its kept roots to find unreferenced objects.
pub fn children(bytes: &[u8]) -> Result<Vec<ObjectId>, FsError> {
    match bytes.first() {
        Some(&TAG_CHUNK) => Ok(Vec::new()),
        Some(&TAG_FILE) => Ok(decode_file(bytes)?.chunks),
        Some(&TAG_DIR) => Ok(decode_dir(bytes)?.entries.into_iter().map(|entry| entry.id).collect()),
        Some(other) => Err(FsError::Io(format!("unknown object tag {other:#04x}"))),
        None => Err(FsError::Io("empty object".into())),
    }
}

/// One entry of a directory object.
pub(super) struct EntryObject {
    pub name: String,
    pub kind: NodeKind,
    pub id: ObjectId,
    /// File bytes in the entry's subtree (a file's size).
    pub bytes: u64,
    /// Nodes below the entry (0 for a file).
    pub below: u64,
}

/// A decoded directory object.
pub(super) struct DirObject {
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub bytes: u64,
    pub below: u64,
    pub entries: Vec<EntryObject>,
}

/// Encodes a directory from its entries, which must be sorted by name.
pub(super) struct DirEncoder {
    out: Vec<u8>,
}

impl DirEncoder {
    pub fn new(atime: Timestamp, mtime: Timestamp, bytes: u64, below: u64, count: usize) -> Self {
        let mut out = Vec::with_capacity(32 + count * 48);
        out.push(TAG_DIR);
        put_time(&mut out, atime);
        put_time(&mut out, mtime);
        put_uv(&mut out, bytes);
        put_uv(&mut out, below);
        put_uv(&mut out, count as u64);
        DirEncoder { out }
    }

    pub fn entry(&mut self, name: &str, kind: NodeKind, id: &ObjectId, bytes: u64, below: u64) {
        put_uv(&mut self.out, name.len() as u64);
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(match kind {
            NodeKind::File => KIND_FILE,
            NodeKind::Dir => KIND_DIR,
        });
        self.out.extend_from_slice(&id.0);
        put_uv(&mut self.out, bytes);
        if kind == NodeKind::Dir {
            put_uv(&mut self.out, below);
        }
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Decodes and validates a directory object, aggregates included.
pub(super) fn decode_dir(bytes: &[u8]) -> Result<DirObject, FsError> {
    let mut r = Reader::new(bytes, "directory");
    r.tag(TAG_DIR)?;
    let atime = r.time()?;
    let mtime = r.time()?;
    let total_bytes = r.uv()?;
    let total_below = r.uv()?;
    let count = r.uv()?;
    if count > (r.remaining() / MIN_ENTRY_BYTES) as u64 {
        return Err(r.error(format!("{count} entries can't fit in {} bytes", r.remaining())));
    }
    let mut entries: Vec<EntryObject> = Vec::with_capacity(count as usize);
    let (mut sum_bytes, mut sum_below) = (0u64, 0u64);
    for _ in 0..count {
        let len = r.uv()?;
        let name = std::str::from_utf8(r.take(len)?).map_err(|_| r.error("entry name is not UTF-8"))?;
        if !valid_name(name) {
            return Err(r.error(format!("invalid entry name {name:?}")));
        }
        if entries.last().is_some_and(|last| last.name.as_str() >= name) {
            return Err(r.error("entries are not strictly sorted by name"));
        }
        let kind = match r.u8()? {
            KIND_FILE => NodeKind::File,
            KIND_DIR => NodeKind::Dir,
            other => return Err(r.error(format!("unknown entry kind {other}"))),
        };
        let id = r.id()?;
        let bytes = r.uv()?;
        let below = if kind == NodeKind::Dir { r.uv()? } else { 0 };
        sum_bytes = sum_bytes.checked_add(bytes).ok_or_else(|| r.error("byte total overflows"))?;
        sum_below = below
            .checked_add(1)
            .and_then(|nodes| sum_below.checked_add(nodes))
            .ok_or_else(|| r.error("node total overflows"))?;
        entries.push(EntryObject { name: name.to_owned(), kind, id, bytes, below });
    }
    r.end()?;
    if (sum_bytes, sum_below) != (total_bytes, total_below) {
        return Err(corrupt("directory", "its totals don't match its entries"));
    }
    Ok(DirObject { atime, mtime, bytes: total_bytes, below: total_below, entries })
}

fn put_uv(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_time(out: &mut Vec<u8>, time: Timestamp) {
    put_uv(out, time.secs);
    put_uv(out, u64::from(time.nanos));
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> FsError {
    FsError::Io(format!("corrupt {what} object: {detail}"))
}

/// A bounds-checked cursor over untrusted bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, what }
    }

    fn error(&self, detail: impl std::fmt::Display) -> FsError {
        corrupt(self.what, detail)
    }

    fn remaining(&self) -> usize {
        self.bytes.len()
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], FsError> {
        match usize::try_from(len) {
            Ok(len) if len <= self.bytes.len() => {
                let (head, tail) = self.bytes.split_at(len);
                self.bytes = tail;
                Ok(head)
            }
            _ => Err(self.error("truncated")),
        }
    }

    fn u8(&mut self) -> Result<u8, FsError> {
        Ok(self.take(1)?[0])
    }

    fn tag(&mut self, expected: u8) -> Result<(), FsError> {
        match self.u8()? {
            tag if tag == expected => Ok(()),
            tag => Err(self.error(format!("unexpected tag {tag:#04x}"))),
        }
    }

    fn uv(&mut self) -> Result<u64, FsError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            if shift == 63 && byte > 1 {
                return Err(self.error("varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    return Err(self.error("varint is not in its shortest form"));
                }
                return Ok(value);
            }
        }
        Err(self.error("varint overflows 64 bits"))
    }

    fn id(&mut self) -> Result<ObjectId, FsError> {
        let bytes = self.take(32)?;
        let mut id = [0u8; 32];
        id.copy_from_slice(bytes);
        Ok(ObjectId(id))
    }

    fn u64(&mut self) -> Result<u64, FsError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn fixed_time(&mut self) -> Result<Timestamp, FsError> {
        let secs = self.u64()?;
        match u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) {
            nanos if nanos < 1_000_000_000 => Ok(Timestamp { secs, nanos }),
            _ => Err(self.error("timestamp nanoseconds out of range")),
        }
    }

    fn time(&mut self) -> Result<Timestamp, FsError> {
        let secs = self.uv()?;
        match u32::try_from(self.uv()?) {
            Ok(nanos) if nanos < 1_000_000_000 => Ok(Timestamp { secs, nanos }),
            _ => Err(self.error("timestamp nanoseconds out of range")),
        }
    }

    fn end(self) -> Result<(), FsError> {
        match self.bytes.len() {
            0 => Ok(()),
            extra => Err(self.error(format!("{extra} trailing bytes"))),
        }
    }
}
