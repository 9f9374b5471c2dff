//! The OpenAPI 3.1 document, written by hand: the API is small, and a generator
//! would put derive attributes on every type and handler. A test checks that every
//! route of the router is documented and nothing else is.

use axum::Json;
use serde_json::{Value, json};

/// `GET /openapi.json`.
pub(super) async fn document() -> Json<Value> {
    Json(openapi())
}

/// A JSON response with this schema reference.
fn json_response(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn error(description: &str) -> Value {
    json_response(description, schema("Error"))
}

fn body(name: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema(name) } } })
}

/// The answers every session endpoint can give besides its own.
fn session_errors(mut responses: Value) -> Value {
    let common = [
        ("400", "Malformed request: invalid session id, bad query, bad JSON"),
        ("401", "Missing or invalid bearer token"),
        ("404", "No such session, or not the caller's"),
    ];
    for (code, text) in common {
        responses[code] = error(text);
    }
    responses
}

fn admin_errors(mut responses: Value) -> Value {
    responses["401"] = error("Missing or invalid token");
    responses["403"] = error("A user token, or the admin API is disabled");
    responses
}

fn id_param() -> Value {
    json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } })
}

fn at_param() -> Value {
    json!({ "name": "at", "in": "query", "required": false, "description": "Checkpoint step; the latest if absent",
            "schema": { "type": "integer", "minimum": 0 } })
}

/// The document.
pub fn openapi() -> Value {
    let user = json!([{ "bearer": [] }]);
    let admin = json!([{ "admin": [] }]);
    let created = |name| json_response("Created", schema(name));
    let file_responses = session_errors(json!({
        "200": {
            "description": "A file's bytes, or a directory's listing (told apart by Content-Type)",
            "headers": { "X-Harness-Step": { "description": "The checkpoint read", "schema": { "type": "integer" } } },
            "content": {
                "application/octet-stream": { "schema": { "type": "string", "format": "binary" } },
                "application/json": { "schema": schema("DirListing") }
            }
        }
    }));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "harness",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Agent sessions over HTTP. Every error answers {\"error\": \"message\"}."
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "A user token" },
                "admin": { "type": "http", "scheme": "bearer", "description": "The admin token" }
            },
            "schemas": schemas()
        },
        "paths": {
            "/mcp": {
                "post": {
                    "summary": "Model Context Protocol, Streamable HTTP transport (JSON-RPC; revisions 2025-11-25 \
                        and the stateless 2026-07-28). The tools run in the caller's sessions; the optional \
                        `Harness-Session` header names one of the caller's sessions to attach to",
                    "security": user,
                    "parameters": [{ "name": "Harness-Session", "in": "header", "required": false,
                        "schema": { "type": "string", "format": "uuid" } }],
                    "responses": { "200": { "description": "A JSON-RPC response, as JSON or an event stream" },
                        "202": { "description": "A notification or response was accepted" },
                        "401": error("No token, or a bad one") }
                },
                "get": {
                    "summary": "MCP: the server-to-client event stream of an MCP session (2025-11-25)",
                    "security": user,
                    "responses": { "200": { "description": "An event stream" }, "401": error("No token, or a bad one") }
                },
                "delete": {
                    "summary": "MCP: end an MCP session (its harness session stays)",
                    "security": user,
                    "responses": { "202": { "description": "Ended" }, "401": error("No token, or a bad one") }
                }
            },
            "/openapi.json": { "get": {
                "summary": "This document (no token needed)", "security": [],
                "responses": { "200": json_response("The OpenAPI document", json!({ "type": "object" })) }
            }},
            "/metrics": { "get": {
                "summary": "Prometheus metrics", "security": admin,
                "responses": admin_errors(json!({ "200": { "description": "Prometheus text format",
                    "content": { "text/plain": { "schema": { "type": "string" } } } } }))
            }},
            "/admin/users": {
                "post": {
                    "summary": "Add a user; the answer holds their token, shown once", "security": admin,
                    "requestBody": body("NewUser"),
                    "responses": admin_errors(json!({ "201": created("CreatedUser"),
                        "400": error("Invalid name or body"), "409": error("The user exists") }))
                },
                "get": {
                    "summary": "List users", "security": admin,
                    "responses": admin_errors(json!({ "200": json_response("Users",
                        json!({ "type": "array", "items": schema("UserInfo") })) }))
                }
            },
            "/admin/users/{name}": { "delete": {
                "summary": "Remove a user (their sessions stay)", "security": admin,
                "parameters": [{ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": admin_errors(json!({ "204": { "description": "Removed" }, "404": error("No such user") }))
            }},
            "/v1/sessions": {
                "post": {
                    "summary": "Create a session: initial files, model, tools, network policy and limits are optional", "security": user,
                    "requestBody": body("CreateSession"),
                    "responses": session_errors(json!({ "201": created("Session"),
                        "413": error("Body or initial files too large"),
                        "415": error("Not JSON"), "422": error("Wrong types or unknown fields") }))
                },
                "get": {
                    "summary": "List the caller's sessions, oldest first", "security": user,
                    "responses": session_errors(json!({ "200": json_response("Sessions",
                        json!({ "type": "array", "items": schema("Session") })) }))
                }
            },
            "/v1/sessions/{id}": {
                "get": {
                    "summary": "Status, head and usage", "security": user, "parameters": [id_param()],
                    "responses": session_errors(json!({ "200": json_response("The session", schema("Session")) }))
                },
                "delete": {
                    "summary": "Delete a session", "security": user, "parameters": [id_param()],
                    "responses": session_errors(json!({ "204": { "description": "Deleted" },
                        "409": error("A run is in progress, or the session has forks") }))
                }
            },
            "/v1/sessions/{id}/messages": { "post": {
                "summary": "Post a user message; the run continues in the background",
                "security": user, "parameters": [id_param()], "requestBody": body("PostMessage"),
                "responses": session_errors(json!({ "202": json_response("Committed; the run started",
                    schema("MessageAccepted")), "409": error("A run is in progress"),
                    "413": error("Body too large"), "422": error("Wrong types or unknown fields"),
                    "503": error("The server is shutting down") }))
            }},
            "/v1/sessions/{id}/cancel": { "post": {
                "summary": "Cancel the run in progress, if any", "security": user, "parameters": [id_param()],
                "responses": session_errors(json!({ "200": json_response("Whether a run was cancelled",
                    schema("CancelAnswer")) }))
            }},
            "/v1/sessions/{id}/fork": { "post": {
                "summary": "Fork at a checkpoint into a new session", "security": user,
                "parameters": [id_param()], "requestBody": body("ForkRequest"),
                "responses": session_errors(json!({ "201": created("Session"),
                    "422": error("Wrong types or unknown fields") }))
            }},
            "/v1/sessions/{id}/events": { "get": {
                "summary": "The session's events as Server-Sent Events",
                "description": "Each committed event is an SSE event with `id: <seq>` and an EventRecord as data; \
                    streamed model output comes as events named `delta` (a Delta, no id). Resume with the \
                    Last-Event-ID header or ?after=SEQ. Keep-alive comments while idle.",
                "security": user,
                "parameters": [id_param(),
                    { "name": "after", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0 },
                      "description": "Send events with a greater seq (Last-Event-ID wins)" },
                    { "name": "Last-Event-ID", "in": "header", "required": false, "schema": { "type": "integer" } }],
                "responses": session_errors(json!({ "200": { "description": "An event stream",
                    "content": { "text/event-stream": { "schema": schema("EventRecord") } } } }))
            }},
            "/v1/sessions/{id}/checkpoints": { "get": {
                "summary": "The kept checkpoints, oldest first", "security": user, "parameters": [id_param()],
                "responses": session_errors(json!({ "200": json_response("Checkpoints",
                    json!({ "type": "array", "items": schema("Checkpoint") })) }))
            }},
            "/v1/sessions/{id}/files": { "get": {
                "summary": "The workspace root's listing at a checkpoint", "security": user,
                "parameters": [id_param(), at_param()],
                "responses": file_responses.clone()
            }},
            "/v1/sessions/{id}/files/{path}": { "get": {
                "summary": "A file's bytes or a directory's listing at a checkpoint",
                "description": "`path` may contain slashes.",
                "security": user,
                "parameters": [id_param(), at_param(),
                    { "name": "path", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": file_responses
            }}
        }
    })
}

fn schemas() -> Value {
    let string = json!({ "type": "string" });
    let integer = json!({ "type": "integer", "minimum": 0 });
    let object = |required: Value, properties: Value| json!({ "type": "object", "required": required, "properties": properties });
    json!({
        "Error": object(json!(["error"]), json!({ "error": string })),
        "NewUser": { "type": "object", "required": ["name"], "additionalProperties": false,
            "properties": { "name": { "type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$" } } },
        "CreatedUser": object(json!(["name", "token"]), json!({ "name": string, "token": string })),
        "UserInfo": object(json!(["name", "created_ms"]), json!({ "name": string, "created_ms": integer })),
        "CreateSession": { "type": "object", "additionalProperties": false, "properties": {
            "title": { "type": ["string", "null"] },
            "files": { "type": "object", "additionalProperties": { "type": "string" },
                       "description": "Relative path → UTF-8 content" },
            "model": { "type": ["string", "null"],
                       "description": "The server's default, or one of the models it is configured to offer" },
            "tools": { "type": ["array", "null"], "items": string, "uniqueItems": true,
                       "description": "Tool names the session offers; all of the server's if absent" },
            "network": { "$ref": "#/components/schemas/NetworkPolicy" },
            "max_turns": { "type": ["integer", "null"], "minimum": 1, "description": "Below the server's, if set" },
            "max_tokens": { "type": ["integer", "null"], "minimum": 0, "description": "Below the server's budget, if set" },
            "max_cost_usd": { "type": ["number", "null"], "minimum": 0, "description": "Below the server's budget, if set" } } },
        "NetworkPolicy": { "type": ["object", "null"], "additionalProperties": false,
            "description": "An allowlist each outbound request must pass on top of the server's: it narrows, never widens",
            "properties": { "allow": { "type": "array", "items": { "type": "object", "required": ["host"],
                "additionalProperties": false, "properties": {
                    "scheme": { "enum": ["https", "http"], "default": "https" },
                    "host": { "type": "string", "description": "A name, `*.` wildcard for subdomains, or an IP address" },
                    "port": { "type": ["integer", "null"], "minimum": 1, "maximum": 65535 },
                    "path_prefix": { "type": "string", "default": "/" },
                    "methods": { "type": "array", "items": string, "description": "Upper case; empty allows all" } } } } } },
        "PostMessage": { "type": "object", "required": ["text"], "additionalProperties": false,
            "properties": { "text": { "type": "string", "minLength": 1 } } },
        "MessageAccepted": object(json!(["session", "seq"]), json!({ "session": string, "seq": integer })),
        "ForkRequest": { "type": "object", "additionalProperties": false,
            "properties": { "at": { "type": ["integer", "null"], "minimum": 0 } } },
        "CancelAnswer": object(json!(["cancelled"]), json!({ "cancelled": { "type": "boolean" } })),
        "Usage": object(json!(["input_tokens", "output_tokens"]), json!({
            "input_tokens": integer, "output_tokens": integer,
            "cache_creation_input_tokens": integer, "cache_read_input_tokens": integer })),
        "Session": object(
            json!(["id", "status", "running", "provider", "model", "created_ms", "last_seq", "last_step", "usage"]),
            json!({
                "id": { "type": "string", "format": "uuid" },
                "title": { "type": ["string", "null"] },
                "status": { "enum": ["idle", "running", "finished", "failed", "cancelled"] },
                "running": { "type": "boolean", "description": "A run is in progress in this server now" },
                "provider": string, "model": string, "created_ms": integer,
                "parent": { "type": ["object", "null"], "properties": {
                    "session": string, "step": integer, "seq": integer } },
                "last_seq": integer, "last_step": integer, "usage": { "$ref": "#/components/schemas/Usage" },
                "tools": { "type": "array", "items": string, "description": "Present when the session narrows the tools" },
                "network": { "$ref": "#/components/schemas/NetworkPolicy" },
                "max_turns": integer, "max_tokens": integer, "max_cost_usd": { "type": "number" }
            })),
        "Checkpoint": object(json!(["step", "last_seq", "root", "time_ms"]), json!({
            "step": integer, "last_seq": integer, "root": string, "time_ms": integer })),
        "DirListing": object(json!(["path", "step", "entries"]), json!({
            "path": string, "step": integer,
            "entries": { "type": "array", "items": object(json!(["name", "kind", "size"]), json!({
                "name": string, "kind": { "enum": ["file", "dir"] }, "size": integer })) } })),
        "EventRecord": {
            "type": "object", "required": ["seq", "event"],
            "description": "The seq, then the event's fields; `event` names its kind: user_message {text}, \
                model_answer {content, stop_reason, usage, model}, tool_started {call_id, name}, \
                tool_result {call_id, name, content, is_error}, client_tool_call {call_id, name, input, content, is_error} \
                (a call made over MCP, outside any run), error {message}, run_ended {reason}",
            "properties": {
                "seq": integer,
                "event": { "enum": ["user_message", "model_answer", "tool_started", "tool_result", "client_tool_call",
                    "error", "run_ended"] }
            }
        },
        "Delta": { "type": "object", "required": ["type"], "properties": {
            "type": { "enum": ["text", "tool_use_start", "tool_input_delta"] },
            "text": string, "id": string, "name": string, "partial_json": string } }
    })
}
