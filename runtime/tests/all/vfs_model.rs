//! Property tests: the VFS against a simple model.
