/**
 * The egress allowlist: unit rules, then real requests refused — an OpenAPI call to a host outside `egress.allow`,
 * a fetched document whose servers[] point elsewhere (no egress section), a redirect, and an MCP server over HTTP.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectFileShape } from "../../src/definitions/schemas.js";
import type { Connection, McpConnection, OpenApiConnection } from "../../src/definitions/types.js";
import { EgressAllowlist, type EgressBlocked, egressFor } from "../../src/security/egress.js";
import { mcpSource } from "../../src/tools/mcp.js";
import { openApiSource } from "../../src/tools/openapi.js";
import type { ToolSource } from "../../src/tools/source.js";
import { type System, startBillingApi, startLedgerMcp } from "./secret-systems.js";

const TOKEN = "egress-token-123456";
const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
const dir = mkdtempSync(join(tmpdir(), "outpost-egress-"));
const sources: ToolSource[] = [];
let billing: System & { spec: string };
let ledger: System;
let docServer: Server;
let docUrl: string;

beforeAll(async () => {
  billing = await startBillingApi(TOKEN, dir, "http://localhost:9/elsewhere");
  ledger = await startLedgerMcp(TOKEN);
  // A document served from one host whose servers[] send requests to another (the billing API).
  docServer = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        openapi: "3.1.0",
        info: { title: "Elsewhere", version: "1" },
        servers: [{ url: billing.url }],
        paths: { "/balance": { get: { operationId: "balance", responses: { 200: { description: "ok" } } } } },
      }),
    );
  });
  await new Promise<void>((resolve) => docServer.listen(0, "127.0.0.1", resolve));
  docUrl = `http://127.0.0.1:${(docServer.address() as AddressInfo).port}/openapi.json`;
});
afterAll(async () => {
  await Promise.all(sources.map((s) => s.close()));
  await billing.close();
  await ledger.close();
  docServer.closeAllConnections();
  await new Promise((resolve) => docServer.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const env = { BILLING_TOKEN: TOKEN };
function openapi(extra: Partial<OpenApiConnection>, egress: EgressAllowlist): ToolSource {
  const c: OpenApiConnection = {
    kind: "openapi",
    name: "billing",
    spec: billing.spec,
    headers: {},
    auth: { type: "bearer", tokenEnv: "BILLING_TOKEN" },
    timeoutMs: 10_000,
    tools: {},
    file: "outpost.yaml",
    ...extra,
  };
  const s = openApiSource(c, { env, dataDir: dir, log, egress });
  sources.push(s);
  return s;
}
async function call(s: ToolSource, name: string): Promise<string> {
  await s.start();
  const def = s.tools().find((t) => t.name === name);
  if (!def) throw new Error(`no tool ${name}: ${JSON.stringify(s.status())}`);
  const context = {
    runId: "r",
    sessionId: "s",
    agent: "a",
    workspace: "acme",
    rootRunId: "r",
    dataDir: dir,
    signal: new AbortController().signal,
  };
  return String(await def.handler({ input: {}, idempotencyKey: "k", context }));
}
const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error("expected a refusal");
    },
    (err: Error) => err.message,
  );

describe("EgressAllowlist rules", () => {
  const allow = new EgressAllowlist({ allow: ["api.example.com", "*.acme.internal", "127.0.0.1:8080", "[::1]:9000"] });
  it.each([
    ["https://api.example.com/v1", true],
    ["http://api.example.com:8443/v1", true], // a host without a port: any port
    ["https://API.Example.com/", true],
    ["https://evil.example.com/", false],
    ["https://api.example.com.evil.net/", false],
    ["https://ledger.acme.internal/", true],
    ["https://a.b.acme.internal/", true],
    ["https://acme.internal/", false], // *.domain is the subdomains, not the domain
    ["https://notacme.internal/", false],
    ["http://127.0.0.1:8080/x", true],
    ["http://127.0.0.1:8081/x", false],
    ["http://127.0.0.1/x", false],
    ["http://[::1]:9000/", true],
  ])("%s → %s", (url, allowed) => {
    expect(allow.allows(new URL(url))).toBe(allowed);
  });

  it("without an egress section allows the hosts the connections name, and only those", () => {
    const connections = new Map<string, Connection>([
      [
        "ledger",
        {
          kind: "mcp",
          name: "ledger",
          transport: { type: "http", url: "https://ledger.example.com/mcp", headers: {} },
          timeoutMs: 1,
          connectTimeoutMs: 1,
          tools: {},
          file: "outpost.yaml",
        },
      ],
      [
        "billing",
        {
          kind: "openapi",
          name: "billing",
          spec: "/x.yaml",
          baseUrl: "http://127.0.0.1:7000",
          headers: {},
          timeoutMs: 1,
          tools: {},
          file: "outpost.yaml",
        },
      ],
    ]);
    const guard = egressFor({ connections });
    expect(guard.allows(new URL("https://ledger.example.com/mcp"))).toBe(true);
    expect(guard.allows(new URL("http://127.0.0.1:7000/pay"))).toBe(true);
    expect(guard.allows(new URL("http://127.0.0.1:7001/pay"))).toBe(false);
    expect(guard.allows(new URL("http://127.0.0.1:7001/pay"), ["127.0.0.1:7001"])).toBe(true);
    // With an egress section, only its entries count.
    expect(egressFor({ connections, egress: { allow: ["other.example.com"] } }).allows(new URL("https://ledger.example.com/"))).toBe(false);
  });

  it("outpost.yaml's egress entries are checked by the schema", () => {
    expect(projectFileShape.egress.safeParse({ allow: ["api.example.com", "*.acme.internal", "127.0.0.1:8080"] }).success).toBe(true);
    const bad = projectFileShape.egress.safeParse({ allow: ["https://api.example.com/"] });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toContain("an egress entry is a host, host:port or *.domain");
  });
});

describe("refused requests", () => {
  it("an OpenAPI call to a host outside egress.allow fails, naming the host and how to allow it", async () => {
    const blocked: EgressBlocked[] = [];
    const s = openapi({}, new EgressAllowlist({ allow: ["api.example.com"], onBlocked: (b) => blocked.push(b) }));
    const host = new URL(billing.url).host;
    expect(await failure(call(s, "billing.balance"))).toBe(
      `connection billing may not reach ${host}: it is not in egress.allow of outpost.yaml`,
    );
    expect(blocked).toEqual([{ url: `${billing.url}/balance`, host, connection: "billing" }]);
    const seen = billing.seen.length;
    // Allowed once listed.
    const allowed = openapi({}, new EgressAllowlist({ allow: [host] }));
    expect(await call(allowed, "billing.balance")).toBe('{"balance":1200}');
    expect(billing.seen.length).toBe(seen + 1);
  });

  it("a redirect to a host that is not allowed is not followed", async () => {
    const s = openapi({}, new EgressAllowlist({ allow: [new URL(billing.url).host, "localhost"] }));
    expect(await failure(call(s, "billing.away"))).toBe("redirected to another host (localhost:9), which Outpost does not follow");
  });

  it("without an egress section, a fetched document whose servers[] point elsewhere is refused", async () => {
    const blocked: EgressBlocked[] = [];
    const guard = new EgressAllowlist({ onBlocked: (b) => blocked.push(b) });
    const s = openapi({ spec: docUrl, auth: undefined }, guard);
    const host = new URL(billing.url).host;
    expect(await failure(call(s, "billing.balance"))).toBe(
      `connection billing may not reach ${host}: without an egress section in outpost.yaml only the hosts the connections name may be reached`,
    );
    expect(blocked.map((b) => b.host)).toEqual([host]);
    // The same document with base_url naming the API: the operator said where requests go.
    const pinned = openapi({ spec: docUrl, baseUrl: billing.url }, guard);
    expect(await call(pinned, "billing.balance")).toBe('{"balance":1200}');
  });

  it("an MCP server over HTTP outside the allowlist is not connected to; the connection says why", async () => {
    const blocked: EgressBlocked[] = [];
    const c: McpConnection = {
      kind: "mcp",
      name: "ledger",
      transport: { type: "http", url: ledger.url, headers: { Authorization: `Bearer ${TOKEN}` } },
      timeoutMs: 5_000,
      connectTimeoutMs: 5_000,
      tools: {},
      file: "outpost.yaml",
    };
    const before = ledger.seen.length;
    const s = mcpSource(c, {
      env: {},
      dataDir: dir,
      log,
      egress: new EgressAllowlist({ allow: ["*.acme.internal"], onBlocked: (b) => blocked.push(b) }),
    });
    sources.push(s);
    await s.start();
    const host = new URL(ledger.url).host;
    expect(s.status()).toMatchObject({
      state: "down",
      error: `connection ledger may not reach ${host}: it is not in egress.allow of outpost.yaml`,
    });
    expect(ledger.seen.length).toBe(before);
    expect(blocked[0]).toMatchObject({ host, connection: "ledger" });
    await s.close();
    // Allowed: it connects.
    const ok = mcpSource(c, { env: {}, dataDir: dir, log, egress: new EgressAllowlist({ allow: [host] }) });
    sources.push(ok);
    await ok.start();
    expect(ok.status()).toMatchObject({ state: "ready" });
  });
});
