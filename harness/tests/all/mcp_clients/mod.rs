//! The MCP server against official clients nobody here wrote: the Python SDK
//! (`mcp` from PyPI) over stdio and Streamable HTTP in both protocol revisions
//! (the `initialize` handshake of 2025-11-25 and the stateless 2026-07-28), and
//! the TypeScript SDK (`@modelcontextprotocol/sdk` from npm) over both transports.
//!
//! The clients are scripts in `harness/tests/mcp/` that connect, run the steps a
//! test gives them and print every result as JSON; the tests here check those
//! results, then what the harness made of the calls: sessions, their owners and
//! tools, the committed events and checkpoints, the files at the head, the live
//! event streams. The SDKs are installed once into `target/mcp-clients/` (pinned
//! in `requirements.txt`, `package.json` and `package-lock.json`); a failed
//! install fails the tests, it never skips them.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use harness::event::Event;
use harness::server::api::EventRecord;
use harness::store::{SessionId, Status, Store};
use reqwest::Method;
use runtime::vfs::Quota;
use serde_json::{Value, json};

use crate::cli_run::Home;
use crate::server_util::{Events, TestServer};

/// The built-in tools every unrestricted session offers.
const BUILTINS: [&str; 9] =
    ["apply_patch", "edit_file", "fetch", "glob", "grep", "list_dir", "read_file", "word_count", "write_file"];

/// The protocol revision with the `initialize` handshake.
const HANDSHAKE: &str = "2025-11-25";
/// The stateless revision.
const STATELESS: &str = "2026-07-28";

/// How long one client script may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(120);

mod checks;
mod http;
mod install;
mod script;
mod stdio;
mod typescript;

use checks::*;
use http::server_with_users;
use install::*;
use script::*;
