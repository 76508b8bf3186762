/**
 * Benchmark helper: the smallest useful MCP server, one `echo` tool that
 * returns its text. `node --import tsx bench/mcp-echo-server.ts` speaks stdio;
 * with `--http` it serves Streamable HTTP on 127.0.0.1 (a free port, one MCP
 * session per client, the SDK's defaults: answers as SSE streams) and writes
 * `listening on port <n>` to stderr once it accepts connections.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";

function echoServer(): McpServer {
  const server = new McpServer({ name: "outpost-bench-echo", version: "1.0.0" });
  server.registerTool(
    "echo",
    { description: "Returns its text.", inputSchema: { text: z.string() }, annotations: { readOnlyHint: true } },
    async ({ text }) => ({ content: [{ type: "text" as const, text }] }),
  );
  return server;
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined;
}

if (process.argv.includes("--http")) {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const http = createServer((req, res) => {
    void (async () => {
      const parsed = req.method === "POST" ? await body(req) : undefined;
      const id = req.headers["mcp-session-id"];
      let transport = typeof id === "string" ? sessions.get(id) : undefined;
      if (!transport) {
        if (typeof id === "string") {
          res.writeHead(404).end();
          return;
        }
        const created = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (sid) => void sessions.set(sid, created),
        });
        created.onclose = () => {
          if (created.sessionId) sessions.delete(created.sessionId);
        };
        await echoServer().connect(created);
        transport = created;
      }
      await transport.handleRequest(req, res, parsed);
    })().catch((err) => {
      console.error(`echo server: ${(err as Error).message}`);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  http.listen(0, "127.0.0.1", () => console.error(`listening on port ${(http.address() as AddressInfo).port}`));
} else {
  await echoServer().connect(new StdioServerTransport());
}
