//! Tests of the search tools: glob, grep.
