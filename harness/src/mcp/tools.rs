//! Our tools as MCP sees them: name, description, input schema and annotations,
//! each taken from what the tool declares.

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, MetaObject, Tool, ToolAnnotations};
use runtime::Toolbox;

use crate::agent::ClientCallResult;
use crate::store::SessionId;

/// Every tool of `toolbox` as an MCP tool.
pub(super) fn list(toolbox: &Toolbox) -> Vec<Tool> {
    toolbox.specs().filter_map(|spec| describe(toolbox, &spec.name)).collect()
}

/// Tool `name` of `toolbox` as an MCP tool, if it has one.
///
/// The hints come from what the tool declares. `openWorldHint`: the component
/// imports `wasi:http`, so it can reach beyond its session (where the network
/// policy allows). `readOnlyHint`: it declares it never writes files and can't
/// reach the network either (a request may change the world: `fetch` can POST).
/// `destructiveHint`: anything not read-only may overwrite or delete.
/// `idempotentHint`: the tool's own flag.
pub(super) fn describe(toolbox: &Toolbox, name: &str) -> Option<Tool> {
    let spec = toolbox.spec(name)?;
    let open_world = toolbox.component(name).is_some_and(|component| component.uses_network());
    let read_only = spec.read_only && !open_world;
    let schema: JsonObject = match &spec.input_schema {
        serde_json::Value::Object(map) => map.clone(),
        // A loaded tool's schema is an object (checked at load); never empty-handed anyway.
        _ => JsonObject::from_iter([("type".to_string(), serde_json::Value::from("object"))]),
    };
    let annotations = ToolAnnotations::new()
        .read_only(read_only)
        .destructive(!read_only)
        .idempotent(spec.idempotent)
        .open_world(open_world);
    Some(Tool::new(spec.name.clone(), spec.description.clone(), Arc::new(schema)).with_annotations(annotations))
}

/// The MCP result of a recorded call, naming the session and the event in `_meta`
/// so a client can find the step again (and attach to the session later).
pub(super) fn result(session: &SessionId, call: ClientCallResult) -> CallToolResult {
    let content = vec![ContentBlock::text(call.content)];
    let mut result = if call.is_error { CallToolResult::error(content) } else { CallToolResult::success(content) };
    let mut meta = MetaObject::new();
    meta.0.insert("harness/session".into(), session.to_string().into());
    meta.0.insert("harness/seq".into(), call.seq.into());
    result.meta = Some(meta);
    result
}
