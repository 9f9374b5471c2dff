//! Tests of the file tools: read_file, write_file, edit_file, apply_patch, list_dir.
