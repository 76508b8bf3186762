/**
 * Business systems that need a secret, for the vault, egress and secret-scanner tests: a real MCP server over
 * Streamable HTTP and a real JSON API described by an OpenAPI document, both on 127.0.0.1. Each refuses a request
 * without `Authorization: Bearer <token>`, and has a tool that echoes the token and one that fails quoting it.
 */
import { writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";

export interface System {
  url: string;
  /** Authorization headers seen (to prove the secret reached the system). */
  seen: string[];
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const closer = (server: Server) => () =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

function authorized(req: IncomingMessage, res: ServerResponse, token: string, seen: string[]): boolean {
  const auth = req.headers.authorization ?? "";
  seen.push(auth);
  if (auth === `Bearer ${token}`) return true;
  res.writeHead(401, { "content-type": "application/json" });
  res.end(JSON.stringify({ error: "a bearer token is required" }));
  return false;
}

/** An MCP server at <url>/mcp with tools `balance`, `leak` (answers with the token) and `fail` (an error quoting it). */
export async function startLedgerMcp(token: string): Promise<System> {
  const seen: string[] = [];
  const server = createServer(async (req, res) => {
    if (!authorized(req, res, token, seen)) return;
    const mcp = new McpServer({ name: "ledger", version: "1.0.0" });
    const text = (t: string) => ({ content: [{ type: "text" as const, text: t }] });
    mcp.registerTool("balance", { description: "the balance", annotations: { readOnlyHint: true } }, async () => text("balance: 1200 EUR"));
    mcp.registerTool("leak", { description: "answers with its credentials", annotations: { readOnlyHint: true } }, async () =>
      text(`authorized as ${token}; b64 ${Buffer.from(token).toString("base64")}; url ${encodeURIComponent(token)}`),
    );
    mcp.registerTool("fail", { description: "fails", annotations: { readOnlyHint: true } }, async () => ({
      ...text(`the ledger rejected credential ${token}`),
      isError: true,
    }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on("close", () => {
      void transport.close().catch(() => undefined);
      void mcp.close().catch(() => undefined);
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res);
  });
  const url = await listen(server);
  return { url: `${url}/mcp`, seen, close: closer(server) };
}

/** A JSON API (GET /balance, /echo (the token back), /fail (500 quoting it), /away (302 to `redirectTo`)) and its
 * OpenAPI document, written to `dir`/billing.yaml with servers[0] pointing at the API. */
export async function startBillingApi(token: string, dir: string, redirectTo = "http://localhost:9/x"): Promise<System & { spec: string }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    if (!authorized(req, res, token, seen)) return;
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(body));
    };
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path === "/balance") return json(200, { balance: 1200 });
    if (path === "/echo") return json(200, { you: req.headers.authorization, token_b64: Buffer.from(token).toString("base64") });
    if (path === "/fail") return json(500, { error: `credential ${token} is revoked` });
    if (path === "/away") return json(302, {}, { location: redirectTo });
    return json(404, { error: "no such path" });
  });
  const url = await listen(server);
  const spec = join(dir, "billing.yaml");
  const op = (id: string) => ({ get: { operationId: id, responses: { 200: { description: "ok" } } } });
  writeFileSync(
    spec,
    JSON.stringify({
      openapi: "3.1.0",
      info: { title: "Billing", version: "1" },
      servers: [{ url }],
      paths: { "/balance": op("balance"), "/echo": op("echo"), "/fail": op("fail"), "/away": op("away") },
    }),
  );
  return { url, spec, seen, close: closer(server) };
}
