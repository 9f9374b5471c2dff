//! The `wasi:filesystem` host traits, implemented over the VFS.
//!
//! Every function validates the descriptor's rights and the mount's mode before
//! touching the VFS, and the VFS validates before it mutates, so a refused
//! operation changes nothing. Invalid handles cannot reach these functions (the
//! component model checks them), so a missing table entry reads as
//! `bad-descriptor` rather than a trap.

use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream};

use super::bindings::{preopens, types};
use super::streams::{FileReader, FileWriter, WritePosition};
use super::{CallFs, Descriptor, DirStream, FsView};
use crate::vfs::{FsError, NodeId, NodeKind, OpenOptions, Stat, TimeChange, Timestamp};
use types::{
    Advice, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry, ErrorCode, Filesize, MetadataHashValue,
    NewTimestamp, OpenFlags, PathFlags,
};

type FsResult<T> = wasmtime::Result<Result<T, ErrorCode>>;

/// The WASI error code for a VFS error.
fn code(err: FsError) -> ErrorCode {
    match err {
        FsError::NotFound => ErrorCode::NoEntry,
        FsError::Exists => ErrorCode::Exist,
        FsError::NotDirectory => ErrorCode::NotDirectory,
        FsError::IsDirectory => ErrorCode::IsDirectory,
        FsError::NotEmpty => ErrorCode::NotEmpty,
        FsError::Invalid => ErrorCode::Invalid,
        FsError::NotPermitted => ErrorCode::NotPermitted,
        FsError::NameTooLong => ErrorCode::NameTooLong,
        FsError::InsufficientSpace => ErrorCode::InsufficientSpace,
        FsError::FileTooLarge => ErrorCode::FileTooLarge,
        FsError::Unsupported => ErrorCode::Unsupported,
        FsError::Busy => ErrorCode::Busy,
        FsError::BadDescriptor => ErrorCode::BadDescriptor,
        FsError::Io(_) => ErrorCode::Io,
    }
}

impl From<FsError> for ErrorCode {
    fn from(err: FsError) -> Self {
        code(err)
    }
}

fn datetime(t: Timestamp) -> Datetime {
    Datetime { seconds: t.secs, nanoseconds: t.nanos }
}

fn time_change(t: NewTimestamp) -> Result<TimeChange, ErrorCode> {
    Ok(match t {
        NewTimestamp::NoChange => TimeChange::Keep,
        NewTimestamp::Now => TimeChange::Now,
        NewTimestamp::Timestamp(d) if d.nanoseconds >= 1_000_000_000 => return Err(ErrorCode::Invalid),
        NewTimestamp::Timestamp(d) => TimeChange::Set(Timestamp { secs: d.seconds, nanos: d.nanoseconds }),
    })
}

fn descriptor_type(kind: NodeKind) -> DescriptorType {
    match kind {
        NodeKind::File => DescriptorType::RegularFile,
        NodeKind::Dir => DescriptorType::Directory,
    }
}

fn stat(stat: Stat) -> DescriptorStat {
    DescriptorStat {
        type_: descriptor_type(stat.kind),
        link_count: 1,
        size: stat.size,
        data_access_timestamp: Some(datetime(stat.atime)),
        data_modification_timestamp: Some(datetime(stat.mtime)),
        status_change_timestamp: Some(datetime(stat.mtime)),
    }
}

impl FsView<'_> {
    fn fs(&self) -> Result<&CallFs, ErrorCode> {
        self.fs.ok_or(ErrorCode::BadDescriptor)
    }

    fn descriptor(&self, fd: &Resource<Descriptor>) -> Result<&Descriptor, ErrorCode> {
        self.table.get(fd).map_err(|_| ErrorCode::BadDescriptor)
    }

    fn file(&self, fd: &Resource<Descriptor>) -> Result<&Descriptor, ErrorCode> {
        let descriptor = self.descriptor(fd)?;
        match descriptor.kind {
            NodeKind::File => Ok(descriptor),
            NodeKind::Dir => Err(ErrorCode::IsDirectory),
        }
    }

    fn dir(&self, fd: &Resource<Descriptor>) -> Result<NodeId, ErrorCode> {
        let descriptor = self.descriptor(fd)?;
        match descriptor.kind {
            NodeKind::Dir => Ok(descriptor.node),
            NodeKind::File => Err(ErrorCode::NotDirectory),
        }
    }

    /// A directory the caller may change, on a writable mount.
    fn mutable_dir(&self, fd: &Resource<Descriptor>) -> Result<NodeId, ErrorCode> {
        self.writable()?;
        let node = self.dir(fd)?;
        if !self.descriptor(fd)?.mutate_dir {
            return Err(ErrorCode::NotPermitted);
        }
        Ok(node)
    }

    /// Refuses any change on a read-only mount.
    fn writable(&self) -> Result<(), ErrorCode> {
        if self.fs()?.read_only { Err(ErrorCode::ReadOnly) } else { Ok(()) }
    }

    fn run<T>(&self, f: impl FnOnce(&mut crate::vfs::Vfs) -> Result<T, FsError>) -> Result<T, ErrorCode> {
        let fs = self.fs()?;
        let mut vfs = fs.workspace.lock();
        f(&mut vfs).map_err(code)
    }
}

/// Runs `body` and wraps its outcome the way the generated traits expect.
fn answer<T>(body: impl FnOnce() -> Result<T, ErrorCode>) -> FsResult<T> {
    Ok(body())
}

impl types::Host for FsView<'_> {
    fn filesystem_error_code(&mut self, err: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        let err = self.table.get(&err)?;
        Ok(err.downcast_ref::<FsError>().cloned().map(code))
    }
}

impl types::HostDescriptor for FsView<'_> {
    fn read_via_stream(&mut self, fd: Resource<Descriptor>, offset: Filesize) -> FsResult<Resource<DynInputStream>> {
        let opened = (|| {
            let file = self.file(&fd)?;
            Ok(FileReader { workspace: self.fs()?.workspace.clone(), node: file.node, offset, permitted: file.read })
        })();
        match opened {
            Ok(reader) => Ok(Ok(self.table.push(Box::new(reader) as DynInputStream)?)),
            Err(code) => Ok(Err(code)),
        }
    }

    fn write_via_stream(&mut self, fd: Resource<Descriptor>, offset: Filesize) -> FsResult<Resource<DynOutputStream>> {
        self.writer(fd, WritePosition::At(offset))
    }

    fn append_via_stream(&mut self, fd: Resource<Descriptor>) -> FsResult<Resource<DynOutputStream>> {
        self.writer(fd, WritePosition::Append)
    }

    fn advise(&mut self, fd: Resource<Descriptor>, _: Filesize, _: Filesize, _: Advice) -> FsResult<()> {
        answer(|| self.file(&fd).map(|_| ()))
    }

    fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        answer(|| self.descriptor(&fd).map(|_| ()))
    }

    fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorFlags> {
        answer(|| {
            let d = self.descriptor(&fd)?;
            let mut flags = DescriptorFlags::empty();
            for (flag, on) in [
                (DescriptorFlags::READ, d.read),
                (DescriptorFlags::WRITE, d.write),
                (DescriptorFlags::MUTATE_DIRECTORY, d.mutate_dir),
            ] {
                if on {
                    flags |= flag;
                }
            }
            Ok(flags)
        })
    }

    fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorType> {
        answer(|| Ok(descriptor_type(self.descriptor(&fd)?.kind)))
    }

    fn set_size(&mut self, fd: Resource<Descriptor>, size: Filesize) -> FsResult<()> {
        answer(|| {
            let file = self.file(&fd)?;
            // Like ftruncate(2) on a descriptor not open for writing.
            if !file.write {
                return Err(ErrorCode::Invalid);
            }
            let node = file.node;
            self.writable()?;
            self.run(|vfs| vfs.set_size(node, size))
        })
    }

    fn set_times(&mut self, fd: Resource<Descriptor>, atime: NewTimestamp, mtime: NewTimestamp) -> FsResult<()> {
        answer(|| {
            self.writable()?;
            let node = self.descriptor(&fd)?.node;
            let (atime, mtime) = (time_change(atime)?, time_change(mtime)?);
            self.run(|vfs| vfs.set_times(node, atime, mtime))
        })
    }

    fn read(&mut self, fd: Resource<Descriptor>, len: Filesize, offset: Filesize) -> FsResult<(Vec<u8>, bool)> {
        answer(|| {
            let file = self.file(&fd)?;
            if !file.read {
                return Err(ErrorCode::BadDescriptor);
            }
            let node = file.node;
            let want = usize::try_from(len).unwrap_or(usize::MAX).min(1 << 20);
            let data = self.run(|vfs| vfs.read(node, offset, want))?;
            let eof = data.len() < want;
            Ok((data, eof))
        })
    }

    fn write(&mut self, fd: Resource<Descriptor>, buffer: Vec<u8>, offset: Filesize) -> FsResult<Filesize> {
        answer(|| {
            let file = self.file(&fd)?;
            if !file.write {
                return Err(ErrorCode::BadDescriptor);
            }
            let node = file.node;
            self.run(|vfs| vfs.write(node, offset, &buffer)).map(|n| n as Filesize)
        })
    }

    fn read_directory(&mut self, fd: Resource<Descriptor>) -> FsResult<Resource<DirStream>> {
        let listed = (|| {
            let dir = self.dir(&fd)?;
            self.run(|vfs| vfs.read_dir(dir))
        })();
        match listed {
            Ok(entries) => Ok(Ok(self.table.push(DirStream { entries: entries.into_iter() })?)),
            Err(code) => Ok(Err(code)),
        }
    }

    fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        answer(|| self.descriptor(&fd).map(|_| ()))
    }

    fn create_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        answer(|| {
            let dir = self.mutable_dir(&fd)?;
            self.run(|vfs| vfs.create_dir_at(dir, &path)).map(|_| ())
        })
    }

    fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorStat> {
        answer(|| {
            let node = self.descriptor(&fd)?.node;
            self.run(|vfs| vfs.stat(node)).map(stat)
        })
    }

    fn stat_at(&mut self, fd: Resource<Descriptor>, _: PathFlags, path: String) -> FsResult<DescriptorStat> {
        answer(|| {
            let dir = self.dir(&fd)?;
            self.run(|vfs| vfs.stat_at(dir, &path)).map(stat)
        })
    }

    fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        _: PathFlags,
        path: String,
        atime: NewTimestamp,
        mtime: NewTimestamp,
    ) -> FsResult<()> {
        answer(|| {
            self.writable()?;
            let dir = self.dir(&fd)?;
            let (atime, mtime) = (time_change(atime)?, time_change(mtime)?);
            self.run(|vfs| vfs.set_times_at(dir, &path, atime, mtime))
        })
    }

    fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        _: PathFlags,
        _: String,
        _: Resource<Descriptor>,
        _: String,
    ) -> FsResult<()> {
        // Hard links would give a node two parents; the VFS refuses them by design.
        answer(|| {
            self.mutable_dir(&fd)?;
            Err(ErrorCode::Unsupported)
        })
    }

    fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        _: PathFlags,
        path: String,
        open: OpenFlags,
        flags: DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        let opened = (|| {
            let parent = self.descriptor(&fd)?;
            if parent.kind != NodeKind::Dir {
                return Err(ErrorCode::NotDirectory);
            }
            let (parent_node, parent_mutates) = (parent.node, parent.mutate_dir);
            let read_only = self.fs()?.read_only;
            let creates = open.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE);
            if read_only && (creates || flags.contains(DescriptorFlags::WRITE)) {
                return Err(ErrorCode::ReadOnly);
            }
            if open.contains(OpenFlags::CREATE) && !parent_mutates {
                return Err(ErrorCode::NotPermitted);
            }
            let options = OpenOptions {
                create: open.contains(OpenFlags::CREATE),
                exclusive: open.contains(OpenFlags::EXCLUSIVE),
                truncate: open.contains(OpenFlags::TRUNCATE),
                directory: open.contains(OpenFlags::DIRECTORY),
            };
            let (node, kind) = self.run(|vfs| {
                let node = vfs.open_at(parent_node, &path, options)?;
                let kind = vfs.kind(node)?;
                if kind == NodeKind::Dir && flags.contains(DescriptorFlags::WRITE) {
                    return Err(FsError::IsDirectory);
                }
                vfs.hold(node);
                Ok((node, kind))
            })?;
            Ok(Descriptor {
                node,
                kind,
                read: flags.contains(DescriptorFlags::READ),
                write: flags.contains(DescriptorFlags::WRITE),
                mutate_dir: kind == NodeKind::Dir && parent_mutates && !read_only,
                workspace: self.fs()?.workspace.clone(),
            })
        })();
        match opened {
            Ok(descriptor) => Ok(Ok(self.table.push(descriptor)?)),
            Err(code) => Ok(Err(code)),
        }
    }

    fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        // Nothing in the VFS is a symlink: an existing path is "not a link".
        answer(|| {
            let dir = self.dir(&fd)?;
            self.run(|vfs| vfs.lookup(dir, &path))?;
            Err(ErrorCode::Invalid)
        })
    }

    fn remove_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        answer(|| {
            let dir = self.mutable_dir(&fd)?;
            self.run(|vfs| vfs.remove_dir_at(dir, &path))
        })
    }

    fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        answer(|| {
            let from = self.mutable_dir(&fd)?;
            let to = self.mutable_dir(&new_fd)?;
            self.run(|vfs| vfs.rename_at(from, &old_path, to, &new_path))
        })
    }

    fn symlink_at(&mut self, fd: Resource<Descriptor>, _: String, _: String) -> FsResult<()> {
        // Symlinks are refused so that no path can ever resolve outside the root.
        answer(|| {
            self.mutable_dir(&fd)?;
            Err(ErrorCode::Unsupported)
        })
    }

    fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        answer(|| {
            let dir = self.mutable_dir(&fd)?;
            self.run(|vfs| vfs.unlink_file_at(dir, &path))
        })
    }

    fn is_same_object(&mut self, a: Resource<Descriptor>, b: Resource<Descriptor>) -> wasmtime::Result<bool> {
        let a = self.table.get(&a)?.node;
        let b = self.table.get(&b)?.node;
        Ok(a == b)
    }

    fn metadata_hash(&mut self, fd: Resource<Descriptor>) -> FsResult<MetadataHashValue> {
        answer(|| {
            let node = self.descriptor(&fd)?.node;
            self.run(|vfs| vfs.stat(node))?;
            Ok(MetadataHashValue { lower: node.as_u64(), upper: self.fs()?.workspace.identity })
        })
    }

    fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        _: PathFlags,
        path: String,
    ) -> FsResult<MetadataHashValue> {
        answer(|| {
            let dir = self.dir(&fd)?;
            let node = self.run(|vfs| vfs.lookup(dir, &path))?;
            Ok(MetadataHashValue { lower: node.as_u64(), upper: self.fs()?.workspace.identity })
        })
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        self.table.delete(fd)?;
        Ok(())
    }
}

impl FsView<'_> {
    fn writer(&mut self, fd: Resource<Descriptor>, position: WritePosition) -> FsResult<Resource<DynOutputStream>> {
        let opened = (|| {
            let file = self.file(&fd)?;
            let workspace = self.fs()?.workspace.clone();
            Ok(FileWriter { workspace, node: file.node, position, permitted: file.write })
        })();
        match opened {
            Ok(writer) => Ok(Ok(self.table.push(Box::new(writer) as DynOutputStream)?)),
            Err(code) => Ok(Err(code)),
        }
    }
}

impl types::HostDirectoryEntryStream for FsView<'_> {
    fn read_directory_entry(&mut self, stream: Resource<DirStream>) -> FsResult<Option<DirectoryEntry>> {
        let stream = self.table.get_mut(&stream)?;
        Ok(Ok(stream
            .entries
            .next()
            .map(|entry| DirectoryEntry { type_: descriptor_type(entry.kind), name: entry.name })))
    }

    fn drop(&mut self, stream: Resource<DirStream>) -> wasmtime::Result<()> {
        self.table.delete(stream)?;
        Ok(())
    }
}

impl preopens::Host for FsView<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let Some(fs) = self.fs else { return Ok(Vec::new()) };
        let root = {
            let mut vfs = fs.workspace.lock();
            let root = vfs.root();
            vfs.hold(root);
            root
        };
        let mount = fs.workspace.mount().to_string();
        let descriptor = Descriptor {
            node: root,
            kind: NodeKind::Dir,
            read: true,
            write: false,
            mutate_dir: !fs.read_only,
            workspace: fs.workspace.clone(),
        };
        Ok(vec![(self.table.push(descriptor)?, mount)])
    }
}
