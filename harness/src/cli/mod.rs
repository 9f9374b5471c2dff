//! The subcommands of the `harness` binary, and what they share.

pub mod mcp_cmd;
pub mod render;
pub mod run_cmd;
pub mod serve_cmd;
pub mod sessions_cmd;
pub mod setup;
pub mod tools_cmd;
mod workspace_cmd;

use std::path::PathBuf;

/// Options every subcommand may use, resolved from the command line and environment.
#[derive(Clone, Debug)]
pub struct Globals {
    /// Where compiled components are cached.
    pub cache_dir: Option<PathBuf>,
    /// Extra tool components.
    pub tools_dir: Option<PathBuf>,
    /// The database file.
    pub db: PathBuf,
    /// Whether `db` is the default, so printed commands need no `--db`.
    pub db_is_default: bool,
    /// An explicit config file.
    pub config: Option<PathBuf>,
}

impl Globals {
    /// `harness` plus the options a printed follow-up command needs to reach the same database.
    pub fn command_prefix(&self) -> String {
        if self.db_is_default {
            "harness".into()
        } else {
            format!("harness --db {}", shell_quote(&self.db.display().to_string()))
        }
    }
}

/// A mistake in how the command was called (exit code 2), as opposed to a failure
/// while doing what it asked (exit code 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Returns early with a [`UsageError`].
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::cli::UsageError(format!($($arg)*))))
    };
}
pub(crate) use usage;

/// `println!` that returns the write error instead of panicking, so output piped
/// into `head` ends the command quietly (see `main`) rather than with a panic.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Writes one line to stdout.
pub fn write_line(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")
}

/// Whether `err` comes from writing to a closed pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The owner of new sessions: `--owner`, else `$USER`, else "local".
pub fn owner(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("USER").ok())
        .filter(|owner| !owner.trim().is_empty())
        .unwrap_or_else(|| "local".into())
}

/// Quotes `text` for a POSIX shell when it needs it.
pub fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:@+,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
