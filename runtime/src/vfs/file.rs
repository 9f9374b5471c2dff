//! File contents: reads, writes, appends and size changes over 64 KiB chunks.
//!
//! A change rebuilds only the chunks it touches; the others stay shared (`Arc`) with
//! earlier snapshots and forks. A chunk that is completely overwritten is never
//! loaded. All loads happen before the first mutation, so a failing object store
//! leaves the file as it was. Growth is sparse: whole zero chunks share one
//! allocation and one precomputed id.

use std::sync::Arc;

use super::codec::{CHUNK_SIZE, build_chunk, chunk_count, chunk_data, chunk_len};
use super::tree::{Body, Chunk, FileBody};
use super::{FsError, NodeId, NodeKind, Vfs};

const CHUNK: u64 = CHUNK_SIZE as u64;

impl Vfs {
    /// Up to `len` bytes at `offset`: short at the end of the file, empty past it.
    pub fn read(&mut self, file: NodeId, offset: u64, len: usize) -> Result<Vec<u8>, FsError> {
        let size = self.file_size(file)?;
        if offset >= size || len == 0 {
            return Ok(Vec::new());
        }
        let end = size.min(offset.saturating_add(len as u64));
        self.ensure_loaded(file)?;
        let chunks = (offset / CHUNK) as usize..=((end - 1) / CHUNK) as usize;
        for index in chunks.clone() {
            self.load_chunk(file, index)?;
        }
        let body = self.file_body(file);
        let mut out = Vec::with_capacity((end - offset) as usize);
        for index in chunks {
            let start = index as u64 * CHUNK;
            let data = chunk_data(body.chunks[index].data.as_ref().expect("loaded above"));
            let from = offset.saturating_sub(start) as usize;
            let to = (end - start).min(data.len() as u64) as usize;
            out.extend_from_slice(&data[from..to]);
        }
        Ok(out)
    }

    /// Writes `data` at `offset`, zero-filling any gap past the end; returns `data.len()`.
    /// An empty write changes nothing, not even the mtime (as on Linux).
    pub fn write(&mut self, file: NodeId, offset: u64, data: &[u8]) -> Result<usize, FsError> {
        let size = self.file_size(file)?;
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset.checked_add(data.len() as u64).ok_or(FsError::FileTooLarge)?;
        self.check_growth(size, end)?;
        self.ensure_loaded(file)?;
        self.rewrite(file, size.max(end), offset, data)?;
        Ok(data.len())
    }

    /// Writes `data` at the end of the file; returns the new size.
    pub fn append(&mut self, file: NodeId, data: &[u8]) -> Result<u64, FsError> {
        let size = self.file_size(file)?;
        self.write(file, size, data)?;
        self.file_size(file)
    }

    /// Cuts or zero-extends the file to `size` bytes.
    pub fn set_size(&mut self, file: NodeId, size: u64) -> Result<(), FsError> {
        let old = self.file_size(file)?;
        self.check_growth(old, size)?;
        self.ensure_loaded(file)?;
        self.truncate_to(file, size)
    }

    /// Sets the size of a loaded file whose quotas were checked, and its mtime.
    pub(super) fn truncate_to(&mut self, file: NodeId, size: u64) -> Result<(), FsError> {
        self.ensure_loaded(file)?;
        let old = self.file_size(file)?;
        if size > old {
            return self.rewrite(file, size, size, &[]);
        }
        let keep = chunk_count(size);
        let tail = chunk_len(size, keep.saturating_sub(1));
        let partial = keep > 0 && tail < CHUNK_SIZE && size < old;
        if partial {
            self.load_chunk(file, keep - 1)?;
        }
        let now = self.now;
        let body = self.file_body_mut(file);
        body.chunks.truncate(keep);
        if partial {
            let chunk = &mut body.chunks[keep - 1];
            let old_data = chunk.data.as_ref().expect("loaded above");
            let cut = build_chunk(tail, &[(0, &chunk_data(old_data)[..tail])]);
            *chunk = Chunk { id: None, data: Some(cut) };
        }
        body.mtime = now;
        self.touched(file, i128::from(size) - i128::from(old), 0);
        Ok(())
    }

    /// Makes a loaded file `new_size` bytes (at least its size) with `data` at `offset`;
    /// everything between the old end and `new_size` not covered by `data` is zero.
    fn rewrite(&mut self, file: NodeId, new_size: u64, offset: u64, data: &[u8]) -> Result<(), FsError> {
        let old_size = self.file_size(file)?;
        let end = offset + data.len() as u64;
        let old_count = chunk_count(old_size);
        let grows = new_size > old_size;
        let lo = match (data.is_empty(), grows) {
            (false, true) => (offset / CHUNK).min(old_size / CHUNK),
            (false, false) => offset / CHUNK,
            (true, _) => old_size / CHUNK,
        } as usize;
        let hi = if grows { chunk_count(new_size) - 1 } else { ((end - 1) / CHUNK) as usize };
        // Where `data` lands in chunk `index`, and whether the chunk's old bytes are needed.
        let plan = |index: usize| {
            let start = index as u64 * CHUNK;
            let new_len = chunk_len(new_size, index);
            let old_len = if index < old_count { chunk_len(old_size, index) } else { 0 };
            let from = offset.saturating_sub(start).min(new_len as u64) as usize;
            let to = end.saturating_sub(start).min(new_len as u64) as usize;
            let keeps_old = old_len > 0 && !(from == 0 && to >= old_len && from < to);
            let (from, src) = if from < to {
                let at = (start + from as u64 - offset) as usize;
                (from, &data[at..at + (to - from)])
            } else {
                (0, &data[..0])
            };
            (new_len, old_len, from, src, keeps_old)
        };
        for index in lo..=hi {
            if plan(index).4 {
                self.load_chunk(file, index)?;
            }
        }
        let now = self.now;
        let body = self.file_body_mut(file);
        for index in lo..=hi {
            let (new_len, old_len, from, src, keeps_old) = plan(index);
            let encoded = if keeps_old {
                let mut bytes = body.chunks[index].data.take().expect("loaded above");
                // Nobody else holds this chunk (no snapshot, no fork): change it in place.
                if bytes.len() == 1 + new_len
                    && let Some(buf) = Arc::get_mut(&mut bytes)
                {
                    buf[1 + from..][..src.len()].copy_from_slice(src);
                } else {
                    bytes = build_chunk(new_len, &[(0, &chunk_data(&bytes)[..old_len]), (from, src)]);
                }
                bytes
            } else {
                build_chunk(new_len, &[(from, src)])
            };
            let chunk = Chunk { id: None, data: Some(encoded) };
            if index < body.chunks.len() {
                body.chunks[index] = chunk;
            } else {
                body.chunks.push(chunk);
            }
        }
        body.mtime = now;
        self.touched(file, i128::from(new_size) - i128::from(old_size), 0);
        Ok(())
    }

    /// Refuses growth from `old` to `new` bytes past the file-size or byte quota.
    fn check_growth(&self, old: u64, new: u64) -> Result<(), FsError> {
        if new <= old {
            return Ok(());
        }
        if new > self.quota.max_file_size {
            return Err(FsError::FileTooLarge);
        }
        if self.usage().bytes.saturating_add(self.orphan_bytes).saturating_add(new - old) > self.quota.max_bytes {
            return Err(FsError::InsufficientSpace);
        }
        Ok(())
    }

    /// The size of a file; `IsDirectory` for a directory. Never loads anything.
    fn file_size(&self, file: NodeId) -> Result<u64, FsError> {
        let node = self.node(file)?;
        match node.kind {
            NodeKind::File => Ok(node.bytes),
            NodeKind::Dir => Err(FsError::IsDirectory),
        }
    }

    fn file_body(&self, file: NodeId) -> &FileBody {
        match &self.nodes[&file].body {
            Body::File(body) => body,
            _ => unreachable!("a loaded file"),
        }
    }

    fn file_body_mut(&mut self, file: NodeId) -> &mut FileBody {
        match &mut self.nodes.get_mut(&file).expect("a live file").body {
            Body::File(body) => body,
            _ => unreachable!("a loaded file"),
        }
    }
}
