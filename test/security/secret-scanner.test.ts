/**
 * THE SECRET SCANNER. Real runs use a secret:// connection — an MCP server over HTTP and an OpenAPI API that both
 * need the token, with a tool that answers with it (raw, base64, URL-encoded) and one that fails quoting it — on a
 * real Outpost (SQLite) behind a real server on 127.0.0.1. Then everything the runs produced is scanned: every row of
 * every table of the database (the secrets table's ciphertext aside), every event, every log line (pino, at debug, to
 * a buffer), every API response body including the SSE stream. The secret must appear in none of them, in any form.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { sql } from "kysely";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventView, RunView } from "../../src/core/api.js";
import { isTerminal } from "../../src/core/api.js";
import { loadProject } from "../../src/definitions/index.js";
import { type ChatMessage, createScriptedClient, type ModelRequest } from "../../src/models/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { egressFor } from "../../src/security/egress.js";
import { Redactor, Vault, VaultSecrets } from "../../src/security/vault/index.js";
import { createServer, listen } from "../../src/server/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { until } from "../helpers/until.js";
import { type System, startBillingApi, startLedgerMcp } from "./secret-systems.js";

/** Characters that JSON, base64 and URL encoding each spell differently. */
const SECRET = `sk/live+${randomBytes(12).toString("hex")}=`;
const FORMS = {
  raw: SECRET,
  base64: Buffer.from(SECRET).toString("base64"),
  base64url: Buffer.from(SECRET).toString("base64url"),
  url: encodeURIComponent(SECRET),
  json: JSON.stringify(SECRET).slice(1, -1),
};
const ADMIN_KEY = `opk_${randomBytes(20).toString("hex")}`;

const logBuffer: string[] = [];
const apiBodies: { what: string; text: string }[] = [];
const events: EventView[] = [];
const used: [string, string][] = [];

let root: string;
let dataDir: string;
let ledger: System;
let billing: System & { spec: string };
let vaultStore: Store;
let outpost: Outpost;
let server: FastifyInstance;
let url: string;

const model = createScriptedClient("offline", (req: ModelRequest) => {
  const input = req.messages.find((m) => m.role === "user")?.content ?? "";
  const results = req.messages.filter((m: ChatMessage) => m.role === "tool");
  if (results.length > 0) return `result: ${results.at(-1)?.content}`;
  const m = /^call (\S+)$/.exec(input);
  return m ? { toolCalls: [{ name: m[1]!, arguments: "{}" }] } : `I was asked: ${input}`;
});

async function api(method: string, route: string, body?: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}${route}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  apiBodies.push({ what: `${method} ${route} → ${res.status}`, text });
  return { status: res.status, text };
}

async function runOverHttp(input: string): Promise<RunView> {
  const started = await api("POST", "/v1/runs", { agent: "clerk", input });
  expect(started.status).toBe(201);
  const id = (JSON.parse(started.text) as RunView).id;
  // The live stream, read to its end (it closes once the run has ended).
  const stream = await fetch(`${url}/v1/runs/${id}/stream`, {
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
    signal: AbortSignal.timeout(60_000),
  });
  apiBodies.push({ what: `SSE ${id}`, text: await stream.text() });
  const run = await until(`run ${id} to end`, async () => {
    const r = await outpost.getRun(id);
    return isTerminal(r.status) ? r : null;
  });
  await api("GET", `/v1/runs/${id}`);
  await api("GET", `/v1/runs/${id}/events`);
  return run;
}

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), "outpost-scanner-"));
  dataDir = path.join(root, ".outpost");
  ledger = await startLedgerMcp(SECRET);
  billing = await startBillingApi(SECRET, root);
  const files: Record<string, string> = {
    "outpost.yaml": [
      "version: 1",
      "workspace: acme",
      "models:",
      "  offline:",
      "    - provider: scripted",
      "defaults:",
      "  model: offline",
      "connections:",
      "  ledger:",
      `    mcp: { url: ${JSON.stringify(ledger.url)}, headers: { Authorization: "Bearer secret://ledger_token" } }`,
      "  billing:",
      `    openapi: { spec: ${JSON.stringify(billing.spec)} }`,
      "    auth: { type: bearer, token: secret://ledger_token }",
      "",
    ].join("\n"),
    "agents/clerk.yaml":
      "name: clerk\ndescription: Keeps the books.\ninstructions: Use the ledger and billing.\ntools: [ledger.*, billing.*]\n",
  };
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  const project = await loadProject(root);

  // The vault (its own connection to the same database), holding the secret before Outpost connects.
  vaultStore = await openStore({ dataDir });
  const vault = Vault.open(vaultStore.domain, { dataDir, env: {} });
  await vault.set("acme", "ledger_token", SECRET, "local");
  const redactor = new Redactor();
  const secrets = new VaultSecrets(vault, "acme", { redactor, onSecretUsed: (name, connection) => used.push([name, connection]) });

  const sink = new Writable({
    write(chunk, _encoding, done) {
      logBuffer.push(String(chunk));
      done();
    },
  });
  const logger = pino({ level: "debug", ...redactor.pinoOptions() }, sink);
  const env: NodeJS.ProcessEnv = { ...process.env, OUTPOST_ADMIN_KEY: ADMIN_KEY };
  delete env.OUTPOST_DATABASE_URL;
  outpost = await startOutpost({
    project,
    dataDir,
    env,
    logger,
    modelFor: () => model,
    pollMs: 50,
    onEvent: (e) => events.push(e),
    connectionSecurity: { secrets, egress: egressFor(project) },
  });
  outpost.security.vault = vault;
  server = await createServer(outpost, { version: "test", logger });
  url = await listen(server, { host: "127.0.0.1", port: 0 });
  await until("ledger and billing to be ready", () => (outpost.connections().every((c) => c.state === "ready") ? true : null));
}, 120_000);

afterAll(async () => {
  await server?.close();
  await vaultStore?.close();
  await ledger?.close();
  await billing?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("the secret scanner", () => {
  it("runs that use a secret:// connection leave the secret nowhere", async () => {
    const outcomes: Record<string, RunView> = {};
    for (const tool of ["ledger.balance", "ledger.leak", "ledger.fail", "billing.balance", "billing.echo", "billing.fail"]) {
      outcomes[tool] = await runOverHttp(`call ${tool}`);
    }
    // The secret really was used: both systems received it, and answered.
    expect(ledger.seen).toContain(`Bearer ${SECRET}`);
    expect(billing.seen).toContain(`Bearer ${SECRET}`);
    expect(used).toContainEqual(["ledger_token", "ledger"]);
    expect(used).toContainEqual(["ledger_token", "billing"]);
    expect(outcomes["ledger.balance"]!.output).toContain("balance: 1200 EUR");
    expect(outcomes["billing.balance"]!.output).toContain('{"balance":1200}');
    // What leaked is shown masked: the tools echoed it, the scanner must see the mask instead.
    expect(outcomes["ledger.leak"]!.output).toContain("[secret:ledger_token]");
    expect(outcomes["ledger.fail"]!.output).toContain("the ledger rejected credential [secret:ledger_token]");
    expect(outcomes["billing.fail"]!.output).toMatch(/HTTP 500/);

    // More API surface: secrets (names only), connections, run lists, an error.
    const put = await api("PUT", "/v1/secrets/ledger_token", { value: SECRET });
    expect(put.status).toBe(200);
    const listed = await api("GET", "/v1/secrets");
    expect(JSON.parse(listed.text).secrets.map((s: { name: string }) => s.name)).toEqual(["ledger_token"]);
    await api("GET", "/v1/connections");
    await api("GET", "/v1/runs");
    await api("PUT", "/v1/secrets/bad%20name", { value: SECRET }); // refused: the message must not quote the value
    await api("GET", "/v1/approvals");

    // Every table of the database, row by row (the secrets table's ciphertext aside: that is the point of it).
    const db = vaultStore.domain.db;
    const tables = await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(db);
    expect(tables.rows.map((t) => t.name)).toEqual(expect.arrayContaining(["runs", "events", "secrets"]));
    const dump: string[] = [];
    for (const { name } of tables.rows) {
      const rows = await sql<Record<string, unknown>>`select * from ${sql.table(name)}`.execute(db);
      for (const row of rows.rows) {
        if (name === "secrets") delete row.ciphertext;
        dump.push(
          `${name}: ${JSON.stringify(row, (_k, v) => (Buffer.isBuffer(v) ? v.toString("utf8") : typeof v === "bigint" ? String(v) : v))}`,
        );
      }
    }
    expect(dump.some((line) => line.startsWith("events:"))).toBe(true);

    const everything: { where: string; text: string }[] = [
      ...dump.map((text) => ({ where: "database", text })),
      ...events.map((e) => ({ where: `event ${e.type}`, text: JSON.stringify(e) })),
      ...logBuffer.map((text) => ({ where: "log", text })),
      ...apiBodies.map((b) => ({ where: b.what, text: b.text })),
    ];
    expect(logBuffer.length).toBeGreaterThan(0);
    expect(events.some((e) => e.type === "tool.completed")).toBe(true);
    const found = everything.flatMap(({ where, text }) =>
      Object.entries(FORMS)
        .filter(([, form]) => text.includes(form))
        .map(([form]) => `${form} form in ${where}: ${text.slice(0, 200)}`),
    );
    expect(found).toEqual([]);
    // And the masks are there where the secret would have been.
    expect(everything.some(({ text }) => text.includes("[secret:ledger_token]"))).toBe(true);
  }, 180_000);
});
