"""A scripted MCP client on the official Python SDK (`mcp`, see requirements.txt).

usage: python client.py SPEC_JSON

SPEC_JSON names the clients to connect and the steps to run on them, in order:

    {"clients": [
        {"transport": "stdio", "command": "...", "args": [...], "env": {...}, "mode": "session"},
        {"transport": "http", "url": "http://.../mcp", "headers": {...}, "mode": "2026-07-28"}],
     "steps": [
        {"client": 0, "op": "list"},
        {"client": 1, "op": "call", "name": "write_file", "arguments": {...}},
        {"op": "parallel", "steps": [{"client": 0, "op": "call", ...}, ...]}]}

`mode` is "session" for the low-level `ClientSession` with its `initialize` handshake
(2025-11-25), or a `Client(mode=...)`: "legacy", "auto" or "2026-07-28". Every client
stays connected until all steps ran, so steps of different clients interleave.

Prints one JSON document on stdout: for each client what it negotiated, and for each
step its result (tools/list or tools/call result, as the wire names them) or the
JSON-RPC error the server answered ({"error": {"code", "message"}}); a "parallel"
step sends its steps all at once and answers {"results": [...]} in their order. Anything else
that goes wrong is unexpected: the traceback goes to stderr and the exit code is 1.
"""

import asyncio
import json
import sys
from contextlib import AsyncExitStack

import httpx2
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


def dump(model):
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


async def connect(stack, spec):
    """A connected client (ClientSession or Client) and what it negotiated."""
    mode = spec.get("mode", "session")
    if spec["transport"] == "stdio":
        params = StdioServerParameters(command=spec["command"], args=spec["args"], env=spec.get("env"))
        # Client launches the process itself from the parameters.
        transport = stdio_client(params) if mode == "session" else params
    elif spec["transport"] == "http":
        http = await stack.enter_async_context(httpx2.AsyncClient(headers=spec.get("headers", {}), timeout=60))
        transport = streamable_http_client(spec["url"], http_client=http)
    else:
        raise ValueError(f"unknown transport {spec['transport']!r}")
    if mode == "session":
        read, write = await stack.enter_async_context(transport)
        session = await stack.enter_async_context(ClientSession(read, write))
        init = await session.initialize()
        info = {"mode": mode, "protocol_version": init.protocol_version, "server_info": dump(init.server_info)}
        return session, info
    client = await stack.enter_async_context(Client(transport, mode=mode))
    server_info = client.server_info
    info = {
        "mode": mode,
        "protocol_version": client.protocol_version,
        "server_info": dump(server_info) if server_info is not None else None,
    }
    return client, info


async def step(clients, spec):
    op = spec["op"]
    if op == "parallel":
        return {"results": list(await asyncio.gather(*(step(clients, inner) for inner in spec["steps"])))}
    client = clients[spec.get("client", 0)]
    try:
        if op == "list":
            return dump(await client.list_tools())
        if op == "call":
            return dump(await client.call_tool(spec["name"], spec.get("arguments")))
    except MCPError as err:
        return {"error": {"code": err.code, "message": err.message}}
    raise ValueError(f"unknown op {op!r}")


async def main(spec):
    out = {"clients": [], "steps": []}
    async with AsyncExitStack() as stack:
        clients = []
        for client_spec in spec["clients"]:
            client, info = await connect(stack, client_spec)
            clients.append(client)
            out["clients"].append(info)
        for step_spec in spec["steps"]:
            out["steps"].append(await step(clients, step_spec))
    return out


if __name__ == "__main__":
    result = asyncio.run(main(json.loads(sys.argv[1])))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
