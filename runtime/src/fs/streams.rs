//! Input and output streams over a VFS file, as returned by `read-via-stream`,
//! `write-via-stream` and `append-via-stream`.
//!
//! The VFS is in memory, so every operation completes at once and the streams
//! are always ready. Errors travel as [`FsError`] inside the stream error so
//! `filesystem-error-code` can recover the precise code (quota, read-only, …).

use bytes::Bytes;
use wasmtime_wasi_io::poll::Pollable;
use wasmtime_wasi_io::streams::{InputStream, OutputStream, StreamError, StreamResult};

use super::Workspace;
use crate::vfs::{FsError, NodeId};

/// Largest read or write accepted in one stream operation, so one guest call
/// cannot make the host allocate without bound.
const MAX_TRANSFER: usize = 1 << 20;

fn failed(err: FsError) -> StreamError {
    StreamError::LastOperationFailed(wasmtime::Error::new(err))
}

/// The error for reading a descriptor not opened for reading (or writing one not
/// opened for writing). As with a real file under wasmtime-wasi, opening the
/// stream succeeds and the transfer fails; the guest sees a plain I/O error.
fn not_open_for(direction: &str) -> StreamError {
    StreamError::LastOperationFailed(wasmtime::format_err!("descriptor is not open for {direction}"))
}

/// Reads a file from an offset onwards.
pub(crate) struct FileReader {
    pub workspace: Workspace,
    pub node: NodeId,
    pub offset: u64,
    pub permitted: bool,
}

impl InputStream for FileReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if !self.permitted {
            return Err(not_open_for("reading"));
        }
        let data = self.workspace.lock().read(self.node, self.offset, size.min(MAX_TRANSFER)).map_err(failed)?;
        if data.is_empty() && size > 0 {
            return Err(StreamError::Closed);
        }
        self.offset += data.len() as u64;
        Ok(Bytes::from(data))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for FileReader {
    async fn ready(&mut self) {}
}

/// Where a [`FileWriter`] puts the next bytes.
pub(crate) enum WritePosition {
    /// At this offset, advancing with each write.
    At(u64),
    /// At the end of the file, wherever it is by then.
    Append,
}

/// Writes a file at an offset, or appends to it.
pub(crate) struct FileWriter {
    pub workspace: Workspace,
    pub node: NodeId,
    pub position: WritePosition,
    pub permitted: bool,
}

impl OutputStream for FileWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if !self.permitted {
            return Err(not_open_for("writing"));
        }
        let mut vfs = self.workspace.lock();
        match &mut self.position {
            WritePosition::At(offset) => {
                let written = vfs.write(self.node, *offset, &bytes).map_err(failed)?;
                *offset += written as u64;
            }
            WritePosition::Append => {
                vfs.append(self.node, &bytes).map_err(failed)?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_TRANSFER)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for FileWriter {
    async fn ready(&mut self) {}
}
