// A scripted MCP client on the official TypeScript SDK (@modelcontextprotocol/sdk,
// pinned in package.json): the same SPEC_JSON and output as client.py.
//
// usage: node client.mjs SPEC_JSON
//
// The tests copy this file next to the installed node_modules and run it there.
// SDK 1.x speaks the handshake revisions only, so every client's mode is "session"
// (initialize, 2025-11-25). Each step's result is the tools/list or tools/call result
// as it came over the wire, or {"error": {"code", "message"}} for a JSON-RPC error
// ({"results": [...]} for a "parallel" step, whose steps are sent all at once).
// Anything else is unexpected: the error goes to stderr and the exit code is 1.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";

async function connect(spec) {
  const mode = spec.mode ?? "session";
  if (mode !== "session") throw new Error(`SDK 1.x has no mode ${JSON.stringify(mode)}`);
  let transport;
  if (spec.transport === "stdio") {
    transport = new StdioClientTransport({ command: spec.command, args: spec.args, env: spec.env, stderr: "inherit" });
  } else if (spec.transport === "http") {
    transport = new StreamableHTTPClientTransport(new URL(spec.url), {
      requestInit: { headers: spec.headers ?? {} },
    });
  } else {
    throw new Error(`unknown transport ${JSON.stringify(spec.transport)}`);
  }
  // The client hands the negotiated version to the transport (HTTP ones put it in a header).
  const info = { mode, protocol_version: null, server_info: null };
  const setProtocolVersion = transport.setProtocolVersion?.bind(transport);
  transport.setProtocolVersion = (version) => {
    info.protocol_version = version;
    setProtocolVersion?.(version);
  };
  const client = new Client({ name: "harness-tests-ts", version: "1.0.0" });
  await client.connect(transport);
  info.server_info = client.getServerVersion() ?? null;
  return { client, info };
}

async function step(clients, spec) {
  if (spec.op === "parallel") return { results: await Promise.all(spec.steps.map((inner) => step(clients, inner))) };
  const client = clients[spec.client ?? 0];
  try {
    if (spec.op === "list") return await client.listTools();
    if (spec.op === "call") return await client.callTool({ name: spec.name, arguments: spec.arguments ?? {} });
  } catch (err) {
    if (err instanceof McpError) return { error: { code: err.code, message: stripPrefix(err) } };
    throw err;
  }
  throw new Error(`unknown op ${JSON.stringify(spec.op)}`);
}

// McpError prefixes the server's message with "MCP error CODE: ".
function stripPrefix(err) {
  const prefix = `MCP error ${err.code}: `;
  return err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
}

async function main(spec) {
  const out = { clients: [], steps: [] };
  const clients = [];
  try {
    for (const clientSpec of spec.clients) {
      const { client, info } = await connect(clientSpec);
      clients.push(client);
      out.clients.push(info);
    }
    for (const stepSpec of spec.steps) {
      out.steps.push(await step(clients, stepSpec));
    }
  } finally {
    for (const client of clients.reverse()) await client.close();
  }
  return out;
}

try {
  const out = await main(JSON.parse(process.argv[2]));
  process.stdout.write(JSON.stringify(out) + "\n");
} catch (err) {
  console.error(err);
  process.exitCode = 1;
}
