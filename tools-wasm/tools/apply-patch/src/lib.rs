//! `apply_patch`: applies a Codex-style multi-file patch, all or nothing.
//!
//! Every operation is checked and every new file content computed in memory before
//! the first write; a write that still fails (quota) rolls back the ones before it.

mod hunks;
mod parse;

use std::collections::HashMap;
use std::fs;
use std::io;

use schemars::JsonSchema;
use serde::Deserialize;
use tool_sdk::workspace::{WsPath, describe_io};
use tool_sdk::{Tool, export_tools};

use parse::Op;

const DESCRIPTION: &str = "\
Applies a patch that adds, updates, moves and deletes workspace files, all or nothing: every operation is \
checked first, and if any fails nothing is changed and the error names the file and the hunk. Format:
*** Begin Patch
*** Add File: path/new.txt
+first line of the new file
+second line
*** Update File: path/old.txt
*** Move to: path/renamed.txt
@@ fn some_function(
 context line
-removed line
+added line
 context line
*** Delete File: path/gone.txt
*** End Patch
Rules: `*** Add File:` creates a file that must not exist; every one of its lines starts with `+`. \
`*** Delete File:` removes an existing file. `*** Update File:` changes an existing file, optionally renamed \
by a `*** Move to:` line right after it (the target must not exist). An update has one or more hunks, each \
starting with `@@` (optionally followed by the text of a line the hunk comes after, like a function \
signature, to say where it applies; no line numbers). Each hunk line starts with a space (unchanged context), \
`-` (removed) or `+` (added); give about 3 context lines before and after each change. The context and `-` \
lines must appear in the file in that order: hunks are searched for from the end of the previous hunk, \
exactly first and then ignoring trailing whitespace. Put `*** End of File` after a hunk that must match \
the end of the file. A hunk with only `+` lines inserts after its `@@` line, or at the end of the file \
without one. Paths are relative to /workspace or absolute under it. \
Output: one line per operation: `A path` (added), `M path` (modified), `D path` (deleted), \
`R old -> new` (moved).";

/// Input of `apply_patch`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ApplyPatchInput {
    /// The whole patch, from `*** Begin Patch` to `*** End Patch`, in the format given in the tool description.
    patch: String,
}

/// What a path holds, on disk or after the operations planned so far.
enum Node {
    Absent,
    Dir,
    File(Vec<u8>),
}

/// The planned end state of every touched path, layered over the workspace.
#[derive(Default)]
struct Plan {
    /// New content per touched path; `None` removes it.
    planned: HashMap<WsPath, Option<Vec<u8>>>,
    /// Disk content of each touched path before the patch, for writing and rolling back.
    original: HashMap<WsPath, Option<Vec<u8>>>,
    /// Touched paths in the order the patch first touches them.
    order: Vec<WsPath>,
}

impl Plan {
    fn node(&self, path: &WsPath) -> Result<Node, String> {
        if let Some(planned) = self.planned.get(path) {
            return Ok(planned.clone().map_or(Node::Absent, Node::File));
        }
        if self.planned.iter().any(|(other, content)| content.is_some() && is_below(other, path)) {
            return Ok(Node::Dir);
        }
        match fs::metadata(path.full()) {
            Ok(metadata) if metadata.is_dir() => Ok(Node::Dir),
            Ok(_) => fs::read(path.full())
                .map(Node::File)
                .map_err(|err| format!("cannot read `{}`: {}", path.shown(), describe_io(&err))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Node::Absent),
            Err(err) if err.kind() == io::ErrorKind::NotADirectory => {
                Err(format!("`{}` cannot exist: a parent of it is a file", path.shown()))
            }
            Err(err) => Err(format!("cannot read `{}`: {}", path.shown(), describe_io(&err))),
        }
    }

    /// Checks that `path` can be created: absent, with no file among its parents.
    fn check_creatable(&self, path: &WsPath, what: &str) -> Result<(), String> {
        for parent in parents(path) {
            if let Node::File(_) = self.node(&parent)? {
                return Err(format!("{what}: cannot create `{}` because `{}` is a file", path.shown(), parent.shown()));
            }
        }
        match self.node(path)? {
            Node::Absent => Ok(()),
            Node::Dir => Err(format!("{what}: `{}` is a directory", path.shown())),
            Node::File(_) => Err(format!(
                "{what}: `{}` already exists; use `*** Update File:` to change it, or delete it first",
                path.shown()
            )),
        }
    }

    fn set(&mut self, path: &WsPath, content: Option<Vec<u8>>) -> Result<(), String> {
        if !self.original.contains_key(path) {
            let original = match self.node(path)? {
                Node::File(bytes) => Some(bytes),
                Node::Absent | Node::Dir => None,
            };
            self.original.insert(path.clone(), original);
            self.order.push(path.clone());
        }
        self.planned.insert(path.clone(), content);
        Ok(())
    }

    /// Writes the plan; on a failure restores what was already written.
    fn commit(&self) -> Result<(), String> {
        for (done, path) in self.order.iter().enumerate() {
            let target = &self.planned[path];
            if *target == self.original[path] {
                continue;
            }
            if let Err(err) = put(path, target.as_deref()) {
                let mut message = format!(
                    "apply_patch failed while writing `{}`: {}; the files already written were restored, \
                     so nothing changed",
                    path.shown(),
                    describe_io(&err)
                );
                for path in self.order[..done].iter().rev() {
                    if let Err(err) = put(path, self.original[path].as_deref()) {
                        message.push_str(&format!(
                            "; except that restoring `{}` failed too ({}), so check it",
                            path.shown(),
                            describe_io(&err)
                        ));
                    }
                }
                return Err(message);
            }
        }
        Ok(())
    }
}

/// The proper ancestors of `path` below the workspace root, outermost first.
fn parents(path: &WsPath) -> Vec<WsPath> {
    let shown = path.shown();
    shown.match_indices('/').filter_map(|(end, _)| WsPath::resolve(&shown[..end]).ok()).collect()
}

/// Whether `path` lies strictly inside `dir`.
fn is_below(path: &WsPath, dir: &WsPath) -> bool {
    path.shown().strip_prefix(&dir.shown()).is_some_and(|rest| rest.starts_with('/'))
}

/// Makes `path` hold `content`, or removes it for `None`.
fn put(path: &WsPath, content: Option<&[u8]>) -> io::Result<()> {
    let full = path.full();
    match content {
        Some(bytes) => {
            if let Some(parent) = full.parent().filter(|parent| !parent.is_dir()) {
                fs::create_dir_all(parent)?;
            }
            tool_sdk::workspace::write_atomic(&full, bytes)
        }
        None => match fs::remove_file(&full) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        },
    }
}

fn apply_patch(input: ApplyPatchInput) -> Result<String, String> {
    let fail = |err: String| format!("{err}\nThe patch was not applied; no file was changed.");
    let ops = parse::parse(&input.patch).map_err(|err| fail(format!("invalid patch: {err}")))?;
    let mut plan = Plan::default();
    let mut summary = Vec::new();
    for op in &ops {
        match op {
            Op::Add { path, content } => {
                plan.check_creatable(path, &format!("`*** Add File: {}`", path.shown())).map_err(fail)?;
                plan.set(path, Some(content.clone().into_bytes())).map_err(fail)?;
                summary.push(format!("A {}", path.shown()));
            }
            Op::Delete { path } => {
                let what = format!("`*** Delete File: {}`", path.shown());
                match plan.node(path).map_err(fail)? {
                    Node::File(_) => {}
                    Node::Absent => return Err(fail(format!("{what}: the file does not exist"))),
                    Node::Dir => return Err(fail(format!("{what}: it is a directory; only files can be deleted"))),
                }
                plan.set(path, None).map_err(fail)?;
                summary.push(format!("D {}", path.shown()));
            }
            Op::Update { path, move_to, hunks } => {
                let what = format!("`*** Update File: {}`", path.shown());
                let bytes = match plan.node(path).map_err(fail)? {
                    Node::File(bytes) => bytes,
                    Node::Absent => {
                        return Err(fail(format!(
                            "{what}: the file does not exist (use `*** Add File:` to create it)"
                        )));
                    }
                    Node::Dir => return Err(fail(format!("{what}: it is a directory"))),
                };
                let text = String::from_utf8(bytes)
                    .map_err(|_| fail(format!("{what}: the file is not UTF-8 text, so it cannot be patched")))?;
                let updated = hunks::apply(&text, hunks, &path.shown()).map_err(fail)?;
                match move_to.as_ref().filter(|target| *target != path) {
                    Some(target) => {
                        plan.check_creatable(target, &format!("{what} `*** Move to: {}`", target.shown()))
                            .map_err(fail)?;
                        plan.set(path, None).map_err(fail)?;
                        plan.set(target, Some(updated.into_bytes())).map_err(fail)?;
                        summary.push(format!("R {} -> {}", path.shown(), target.shown()));
                    }
                    None => {
                        plan.set(path, Some(updated.into_bytes())).map_err(fail)?;
                        summary.push(format!("M {}", path.shown()));
                    }
                }
            }
        }
    }
    plan.commit()?;
    Ok(format!(
        "Applied the patch ({} operation{}):\n{}",
        summary.len(),
        if summary.len() == 1 { "" } else { "s" },
        summary.join("\n")
    ))
}

export_tools!(Tool::new("apply_patch", DESCRIPTION, apply_patch));
