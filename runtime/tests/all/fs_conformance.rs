//! Differential filesystem conformance: one guest script, real directory vs VFS.
