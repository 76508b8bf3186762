/**
 * OpenAPI operations as tools, over real HTTP on 127.0.0.1: one node:http
 * server serves a 3.1 JSON document and the endpoints both test documents
 * describe (the 3.0 YAML one is a fixture file), and records every request.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { OpenApiConnection, ToolDefinition } from "../../src/definitions/types.js";
import { openApiSource } from "../../src/tools/openapi.js";
import type { ToolSource, ToolSourceDeps } from "../../src/tools/source.js";

const BILLING_SPEC = fileURLToPath(new URL("./fixtures/billing.openapi.yaml", import.meta.url));
const ECHO_SPEC = fileURLToPath(new URL("./fixtures/echo.openapi.yaml", import.meta.url));
const TOKEN = "tok-very-secret-123";
const HEADER_SECRET = "hdr-secret-456";
const API_KEY = "key-secret-789";
const PASSWORD = "pw-secret-000";
const SESSION = "session-secret-321";
const SPEC_TOKEN = "tok-secret-abc";
const BASIC_USER = "clerk-admin";
const BASIC_CREDENTIAL = Buffer.from(`${BASIC_USER}:${PASSWORD}`).toString("base64");
const SECRETS = [TOKEN, HEADER_SECRET, API_KEY, PASSWORD, SESSION, SPEC_TOKEN, BASIC_CREDENTIAL];

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const ORDERS_SPEC = {
  openapi: "3.1.0",
  info: { title: "Orders", version: "2" },
  servers: [{ url: "/api" }],
  paths: {
    "/orders/{id}": {
      get: {
        summary: "Get an order",
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "integer" } }],
        responses: { "200": { description: "The order" } },
      },
    },
    "/orders": {
      post: {
        operationId: "Orders.Create",
        requestBody: {
          content: { "application/json": { schema: { $ref: "#/components/schemas/OrderInput", description: "The new order" } } },
        },
        responses: { "201": { description: "Created" } },
      },
    },
    "/tree": {
      put: {
        operationId: "putTree",
        requestBody: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/Node" } } } },
        responses: { "204": { description: "Stored" } },
      },
    },
  },
  components: {
    schemas: {
      OrderInput: {
        type: "object",
        required: ["sku"],
        properties: { sku: { type: "string" }, note: { type: ["string", "null"] } },
      },
      Node: {
        type: "object",
        properties: { name: { type: "string" }, children: { type: "array", items: { $ref: "#/components/schemas/Node" } } },
      },
    },
  },
};

let server: Server;
let url: string;
let requests: Recorded[] = [];
let specAvailable = true;
/** What the server sent of its last /echo/huge answer, and whether the client hung up. */
let huge = { sent: 0, closed: false };
let tmp: string;
const logs: string[] = [];

const deps = (env: NodeJS.ProcessEnv = { BILLING_TOKEN: TOKEN, BILLING_HEADER_SECRET: HEADER_SECRET }): ToolSourceDeps => {
  const record = (obj: object, msg: string) => void logs.push(`${msg} ${JSON.stringify(obj)}`);
  return { env, dataDir: tmp, log: { info: record, warn: record, error: record } };
};

const billing = (overrides: Partial<OpenApiConnection> = {}): OpenApiConnection => ({
  kind: "openapi",
  name: "billing",
  spec: BILLING_SPEC,
  baseUrl: `${url}/billing`,
  headers: { "X-Client": "outpost", "X-Api-Secret": "${BILLING_HEADER_SECRET}" },
  auth: { type: "bearer", tokenEnv: "BILLING_TOKEN" },
  timeoutMs: 5_000,
  tools: {},
  file: "outpost.yaml",
  ...overrides,
});

const context = () => ({
  runId: "run_1",
  sessionId: "ses_1",
  agent: "clerk",
  workspace: "acme",
  rootRunId: "run_1",
  dataDir: tmp,
  signal: new AbortController().signal,
});

async function started(connection: OpenApiConnection, env?: NodeJS.ProcessEnv): Promise<ToolSource> {
  const source = openApiSource(connection, deps(env));
  await source.start();
  return source;
}

function tool(source: ToolSource, name: string): ToolDefinition {
  const found = source.tools().find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no tool ${name} among ${source.tools().map((t) => t.name)}`);
  return found;
}

/** Calls a tool as the run loop does: arguments validated first, then the handler. */
async function call(found: ToolDefinition, args: unknown, idempotencyKey = "run_1:call_1"): Promise<unknown> {
  return found.handler({ input: found.input.parse(args), context: context(), idempotencyKey });
}

async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error("expected the call to fail");
}

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "outpost-openapi-"));
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/openapi.json") {
      if (!specAvailable) return res.writeHead(503).end("starting up");
      return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(ORDERS_SPEC));
    }
    if (path === "/elsewhere.json") {
      // A document that sends its operations to another origin (localhost, not 127.0.0.1).
      const servers = [{ url: `http://localhost:${(server.address() as AddressInfo).port}/api` }];
      return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ...ORDERS_SPEC, servers }));
    }
    requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
    const json = (status: number, value: unknown, pretty = false) =>
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value, null, pretty ? 2 : 0));
    if (path.startsWith("/moved/")) return res.writeHead(307, { location: path.replace("/moved/", "/billing/") }).end();
    if (path.startsWith("/away/"))
      return res.writeHead(302, { location: `http://localhost:${(server.address() as AddressInfo).port}/billing/invoices` }).end();
    if (req.method === "GET" && path.startsWith("/billing/invoices/")) {
      return json(200, { id: decodeURIComponent(path.split("/")[3]), total: { amount: 1200, currency: "EUR" } }, true);
    }
    if (req.method === "POST" && path.endsWith("/refunds")) {
      const refund = JSON.parse(body);
      if (refund.amount.amount > 1000) {
        // A careless API that echoes the request's credentials back in its error.
        const echo = { error: "amount exceeds the invoice", authorization: req.headers.authorization, secret: req.headers["x-api-secret"] };
        return res.writeHead(422, { "content-type": "application/json" }).end(JSON.stringify(echo) + " ".padEnd(2_000, "x"));
      }
      return json(201, { id: "ref_1", status: "pending", ...refund });
    }
    if (req.method === "GET" && path === "/billing/invoices")
      return res.writeHead(200, { "content-type": "text/plain" }).end("no invoices");
    if (req.method === "DELETE" && path === "/billing/invoices") return res.writeHead(204).end();
    if (req.method === "GET" && path.startsWith("/api/orders/")) return json(200, { id: Number(path.split("/")[3]), status: "open" }, true);
    if (req.method === "POST" && path === "/api/orders") return json(201, { id: 8, ...JSON.parse(body) });
    if (req.method === "PUT" && path === "/api/tree") return res.writeHead(204).end();
    if (path === "/echo/whoami") return json(200, { you: req.headers.authorization ?? null, tenant: req.headers["x-tenant"] ?? null });
    if (path === "/echo/denied") {
      // Echoes the bare base64 credential, and the user name decoded from it.
      const credential = (req.headers.authorization ?? "").replace(/^Basic /, "");
      const user = Buffer.from(credential, "base64").toString().split(":")[0];
      const pad = "-".repeat(Number(new URL(req.url ?? "/", url).searchParams.get("pad") ?? 0));
      return res.writeHead(401, { "content-type": "text/plain" }).end(`${pad}bad credentials ${credential} (user ${user})`);
    }
    if (path === "/echo/huge") {
      // Streams `bytes` bytes, as fast as the client reads them, and stops when it hangs up.
      const total = Number(new URL(req.url ?? "/", url).searchParams.get("bytes"));
      const chunk = Buffer.alloc(64 * 1024, "x");
      huge = { sent: 0, closed: false };
      const current = huge;
      res.on("close", () => {
        current.closed = true;
      });
      res.writeHead(200, { "content-type": "text/plain" });
      const write = (): void => {
        while (current.sent < total && !res.destroyed) {
          const piece = chunk.subarray(0, Math.min(chunk.length, total - current.sent));
          current.sent += piece.length;
          if (!res.write(piece)) return void res.once("drain", write);
        }
        if (!res.destroyed) res.end();
      };
      return write();
    }
    if (req.method === "DELETE" && path.startsWith("/echo/users/")) return res.writeHead(204).end();
    res.writeHead(404, { "content-type": "text/plain" }).end(`no route ${req.method} ${path}`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(tmp, { recursive: true, force: true });
});

describe("an OpenAPI 3.0 YAML document", () => {
  it("becomes one tool per operation, named in snake_case, with a JSON Schema input", async () => {
    const source = await started(billing());
    expect(source.status()).toEqual({ state: "ready", tools: 4 });
    expect(
      source
        .tools()
        .map((t) => t.name)
        .sort(),
    ).toEqual(["billing.create_refund", "billing.delete_all_invoices", "billing.get_invoice", "billing.get_invoices"]);

    const getInvoice = tool(source, "billing.get_invoice");
    expect(getInvoice.description).toBe("Get an invoice\n\nReturns one invoice with its lines.");
    expect(getInvoice.sideEffects).toBe(false);
    expect(getInvoice.timeoutMs).toBe(5_000);
    expect(getInvoice.inputSchema).toEqual({
      type: "object",
      properties: {
        invoiceId: { type: "string", description: "The invoice id" },
        expand: { type: "array", items: { type: "string", enum: ["lines", "customer"] }, description: "Related objects to include" },
        "X-Tenant": { type: "string", description: "The tenant the invoice belongs to" },
      },
      required: ["invoiceId", "X-Tenant"],
      additionalProperties: false,
    });

    const createRefund = tool(source, "billing.create_refund");
    expect(createRefund.sideEffects).toBe(true);
    expect(createRefund.description).toBe("Refund an invoice");
    // $refs inlined; 3.0's nullable / boolean exclusiveMinimum / example rewritten; the read-only id left out;
    // the Idempotency-Key header is Outpost's to send, not the model's.
    expect(createRefund.inputSchema).toEqual({
      type: "object",
      properties: {
        invoiceId: { type: "string", description: "The invoice id" },
        body: {
          type: "object",
          description: "What to refund",
          required: ["amount"],
          properties: {
            amount: {
              type: "object",
              required: ["amount", "currency"],
              properties: { amount: { type: "integer", exclusiveMinimum: 0 }, currency: { type: "string", examples: ["EUR"] } },
            },
            reason: { type: ["string", "null"], enum: ["duplicate", "fraud", null] },
          },
        },
      },
      required: ["invoiceId", "body"],
      additionalProperties: false,
    });
    expect(tool(source, "billing.get_invoices").description).toBe("List invoices");
    expect(tool(source, "billing.delete_all_invoices").description).toBe("DELETE /invoices\n\n(Deprecated.)");
    await source.close();
    expect(source.status().state).toBe("closed");
    expect(source.tools()).toEqual([]);
  });

  it("keeps only the included operations, drops the excluded ones, and applies per-operation settings", async () => {
    const source = await started(
      billing({
        include: ["getInvoice", "createRefund", "get_invoices", "noSuchOperation"],
        exclude: ["getInvoice"],
        tools: { createRefund: { approval: "required", timeoutMs: 1_234 }, get_invoices: { sideEffects: true } },
        classification: "confidential",
      }),
    );
    expect(
      source
        .tools()
        .map((t) => t.name)
        .sort(),
    ).toEqual(["billing.create_refund", "billing.get_invoices"]);
    const refund = tool(source, "billing.create_refund");
    expect(refund).toMatchObject({ approval: "required", timeoutMs: 1_234, classification: "confidential" });
    expect(tool(source, "billing.get_invoices").sideEffects).toBe(true);
    expect(logs.some((line) => line.includes("noSuchOperation"))).toBe(true);
    await source.close();
  });

  it("validates the model's arguments against the schema", async () => {
    const source = await started(billing());
    const getInvoice = tool(source, "billing.get_invoice");
    expect(getInvoice.input.safeParse({ invoiceId: "inv_1", "X-Tenant": "acme" }).success).toBe(true);
    expect(getInvoice.input.safeParse({ invoiceId: "inv_1" }).success).toBe(false); // header required
    expect(getInvoice.input.safeParse({ invoiceId: 1, "X-Tenant": "acme" }).success).toBe(false);
    expect(getInvoice.input.safeParse({ invoiceId: "inv_1", "X-Tenant": "acme", expand: ["everything"] }).success).toBe(false);
    expect(getInvoice.input.safeParse({ invoiceId: "inv_1", "X-Tenant": "acme", surprise: true }).success).toBe(false);

    const refund = tool(source, "billing.create_refund");
    const body = (amount: number, reason: unknown = null) => ({
      invoiceId: "inv_1",
      body: { amount: { amount, currency: "EUR" }, reason },
    });
    expect(refund.input.safeParse(body(10)).success).toBe(true);
    expect(refund.input.safeParse(body(0)).success).toBe(false); // exclusiveMinimum
    expect(refund.input.safeParse(body(10, "whim")).success).toBe(false);
    expect(refund.input.safeParse({ invoiceId: "inv_1" }).success).toBe(false); // the body is required
    await source.close();
  });

  it("sends a GET with encoded path parameters, repeated query keys, headers and the bearer token, and no Idempotency-Key", async () => {
    const source = await started(billing());
    requests = [];
    const output = await call(tool(source, "billing.get_invoice"), {
      invoiceId: "INV/1 2",
      expand: ["lines", "customer"],
      "X-Tenant": "acme",
    });
    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request.method).toBe("GET");
    expect(request.url).toBe("/billing/invoices/INV%2F1%202?expand=lines&expand=customer");
    expect(request.headers).toMatchObject({
      authorization: `Bearer ${TOKEN}`,
      "x-tenant": "acme",
      "x-client": "outpost",
      "x-api-secret": HEADER_SECRET,
    });
    expect(request.headers["idempotency-key"]).toBeUndefined();
    // The server pretty-prints; the tool hands the model compact JSON.
    expect(output).toBe('{"id":"INV/1 2","total":{"amount":1200,"currency":"EUR"}}');

    expect(await call(tool(source, "billing.get_invoices"), { limit: 5 })).toBe("no invoices");
    expect(requests[1].url).toBe("/billing/invoices?limit=5");
    expect(await call(tool(source, "billing.delete_all_invoices"), {})).toBe("HTTP 204 No Content");
    expect(requests[2].method).toBe("DELETE");
    await expect(call(tool(source, "billing.get_invoice"), { invoiceId: "..", "X-Tenant": "acme" })).rejects.toThrow(/cannot be "\.\."/);
    await source.close();
  });

  it("sends a POST with the JSON body and the call's Idempotency-Key", async () => {
    const source = await started(billing());
    requests = [];
    const output = await call(
      tool(source, "billing.create_refund"),
      { invoiceId: "inv_1", body: { amount: { amount: 500, currency: "EUR" }, reason: "duplicate" } },
      "run_1:call_7",
    );
    const [request] = requests;
    expect(request.method).toBe("POST");
    expect(request.url).toBe("/billing/invoices/inv_1/refunds");
    expect(request.headers["content-type"]).toBe("application/json");
    expect(request.headers["idempotency-key"]).toBe("run_1:call_7");
    expect(JSON.parse(request.body)).toEqual({ amount: { amount: 500, currency: "EUR" }, reason: "duplicate" });
    expect(JSON.parse(output as string)).toEqual({
      id: "ref_1",
      status: "pending",
      amount: { amount: 500, currency: "EUR" },
      reason: "duplicate",
    });
    await source.close();
  });

  it("sends a custom auth header or basic auth, read from the environment at call time", async () => {
    const env: NodeJS.ProcessEnv = { BILLING_HEADER_SECRET: HEADER_SECRET };
    const keyed = await started(billing({ auth: { type: "header", header: "X-Api-Key", valueEnv: "BILLING_KEY" } }), env);
    const basic = await started(billing({ auth: { type: "basic", usernameEnv: "BILLING_USER", passwordEnv: "BILLING_PASSWORD" } }), env);
    // Set after start: credentials are read when a call is made.
    env.BILLING_KEY = API_KEY;
    env.BILLING_USER = "clerk";
    env.BILLING_PASSWORD = PASSWORD;
    requests = [];
    await call(tool(keyed, "billing.get_invoices"), {});
    await call(tool(basic, "billing.get_invoices"), {});
    expect(requests[0].headers["x-api-key"]).toBe(API_KEY);
    expect(requests[0].headers.authorization).toBeUndefined();
    expect(requests[1].headers.authorization).toBe(`Basic ${Buffer.from(`clerk:${PASSWORD}`).toString("base64")}`);
    await keyed.close();
    await basic.close();
  });

  it("turns a non-2xx response into an error quoting the start of the body, with echoed secrets redacted", async () => {
    const source = await started(billing());
    const message = await failure(
      call(tool(source, "billing.create_refund"), { invoiceId: "inv_1", body: { amount: { amount: 5000, currency: "EUR" } } }),
    );
    expect(message).toMatch(/^HTTP 422 Unprocessable Entity: \{"error":"amount exceeds the invoice"/);
    expect(message).toContain("[redacted]");
    expect(message.length).toBeLessThan(600);
    for (const secret of SECRETS) expect(message).not.toContain(secret);
    await source.close();
  });

  it("fails a call clearly, naming the variable and not calling the API, when a credential is missing", async () => {
    const source = await started(billing(), { BILLING_HEADER_SECRET: HEADER_SECRET });
    expect(source.status().state).toBe("ready");
    requests = [];
    const message = await failure(call(tool(source, "billing.get_invoices"), {}));
    expect(message).toBe('the environment variable BILLING_TOKEN is not set: it holds the bearer token for connection "billing"');
    const noHeader = await started(billing(), { BILLING_TOKEN: TOKEN });
    expect(await failure(call(tool(noHeader, "billing.get_invoices"), {}))).toContain(
      "environment variable BILLING_HEADER_SECRET is not set",
    );
    expect(requests).toHaveLength(0);
    await source.close();
    await noHeader.close();
  });

  it("follows a redirect on the same host but not one to another host", async () => {
    const moved = await started(billing({ baseUrl: `${url}/moved` }));
    expect(await call(tool(moved, "billing.get_invoices"), {})).toBe("no invoices");
    const away = await started(billing({ baseUrl: `${url}/away` }));
    const message = await failure(call(tool(away, "billing.get_invoices"), {}));
    expect(message).toMatch(/redirected to another host \(localhost:\d+\)/);
    await moved.close();
    await away.close();
  });
});

describe("an OpenAPI 3.1 JSON document served over HTTP", () => {
  const orders = (overrides: Partial<OpenApiConnection> = {}): OpenApiConnection => ({
    kind: "openapi",
    name: "orders",
    spec: `${url}/openapi.json`,
    headers: {},
    timeoutMs: 5_000,
    tools: {},
    file: "outpost.yaml",
    ...overrides,
  });

  it("is read from its URL, with the relative server URL resolved against it", async () => {
    const source = await started(orders());
    expect(source.status()).toEqual({ state: "ready", tools: 3 });
    expect(
      source
        .tools()
        .map((t) => t.name)
        .sort(),
    ).toEqual(["orders.get_orders_by_id", "orders.orders_create", "orders.put_tree"]);

    const create = tool(source, "orders.orders_create");
    expect(create.inputSchema).toEqual({
      type: "object",
      properties: {
        body: {
          type: "object",
          required: ["sku"],
          properties: { sku: { type: "string" }, note: { type: ["string", "null"] } },
          description: "The new order",
        },
      },
      additionalProperties: false,
    });
    // A recursive schema is cut after one level, so the model sees finite JSON.
    const tree = tool(source, "orders.put_tree").inputSchema as any;
    expect(tree.properties.body.properties.children.items).toEqual({ description: "(recursive: #/components/schemas/Node, not expanded)" });
    expect(tree.required).toEqual(["body"]);

    requests = [];
    expect(await call(tool(source, "orders.get_orders_by_id"), { id: 7 })).toBe('{"id":7,"status":"open"}');
    expect(await call(create, { body: { sku: "A-1", note: null } }, "k-2")).toBe('{"id":8,"sku":"A-1","note":null}');
    expect(await call(tool(source, "orders.put_tree"), { body: { name: "root", children: [{ name: "leaf" }] } })).toBe(
      "HTTP 204 No Content",
    );
    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual(["GET /api/orders/7", "POST /api/orders", "PUT /api/tree"]);
    expect(requests[1].headers["idempotency-key"]).toBe("k-2");
    expect(requests[1].headers.authorization).toBeUndefined();
    await source.close();
  });

  it("is down with a clear error while its server is unreachable, and never throws from start()", async () => {
    const port = await closedPort();
    const source = await started(orders({ spec: `http://127.0.0.1:${port}/openapi.json` }));
    expect(source.status()).toEqual({
      state: "down",
      tools: 0,
      error: `cannot fetch OpenAPI document http://127.0.0.1:${port}/openapi.json: cannot reach 127.0.0.1:${port}: ECONNREFUSED`,
    });
    expect(source.tools()).toEqual([]);
    await source.close();
  });

  it("is retried in the background until the document can be fetched", async () => {
    specAvailable = false;
    const source = await started(orders());
    try {
      expect(source.status()).toMatchObject({
        state: "down",
        error: `cannot fetch OpenAPI document ${url}/openapi.json: HTTP 503 Service Unavailable`,
      });
      specAvailable = true;
      await vi.waitFor(() => expect(source.status()).toEqual({ state: "ready", tools: 3 }), { timeout: 10_000, interval: 50 });
    } finally {
      specAvailable = true;
      await source.close();
    }
  });

  it("names a spec URL as written, never with the value of a ${VAR} in it, in its status and its log", async () => {
    const env = { SPEC_TOKEN };
    const missing = await started(orders({ spec: `${url}/missing.json?access_token=\${SPEC_TOKEN}` }), env);
    expect(missing.status()).toEqual({
      state: "down",
      tools: 0,
      error: `cannot fetch OpenAPI document ${url}/missing.json?access_token=\${SPEC_TOKEN}: HTTP 404 Not Found`,
    });
    await missing.close();
    // Other settings' variables are redacted wherever a message would quote them.
    const badBase = await started(
      orders({ spec: `${url}/openapi.json?access_token=\${SPEC_TOKEN}`, baseUrl: "ftp://files/${SPEC_TOKEN}" }),
      env,
    );
    expect(badBase.status()).toMatchObject({ state: "down", error: 'base_url "ftp://files/[redacted]" is not an http(s) URL' });
    await badBase.close();
    const found = await started(orders({ spec: `${url}/openapi.json?access_token=\${SPEC_TOKEN}` }), env);
    expect(found.status()).toEqual({ state: "ready", tools: 3 });
    await found.close();
    for (const line of logs) expect(line).not.toContain(SPEC_TOKEN);
  });

  it("refuses a document that would send the credentials to another origin than its own, unless base_url says where", async () => {
    const spec = `${url}/elsewhere.json`;
    const port = (server.address() as AddressInfo).port;
    const refused = `OpenAPI document ${spec} sends its requests to http://localhost:${port}, not to the origin it was fetched from, and the connection's credentials would go with them: set base_url on the connection to say where requests go (e.g. base_url: http://localhost:${port}/api)`;
    const bearer = { type: "bearer", tokenEnv: "BILLING_TOKEN" } as const;
    const withAuth = await started(orders({ spec, auth: bearer }));
    expect(withAuth.status()).toEqual({ state: "down", tools: 0, error: refused });
    await withAuth.close();
    const withSecretHeader = await started(orders({ spec, headers: { "X-Api-Secret": "${BILLING_HEADER_SECRET}" } }));
    expect(withSecretHeader.status()).toEqual({ state: "down", tools: 0, error: refused });
    await withSecretHeader.close();

    // Nothing secret to carry: the document may say where its API is.
    const anonymous = await started(orders({ spec, headers: { "X-Client": "outpost" } }));
    expect(anonymous.status()).toEqual({ state: "ready", tools: 3 });
    await anonymous.close();
    // base_url given: the operator decided.
    const based = await started(orders({ spec, auth: bearer, baseUrl: `${url}/api` }));
    expect(based.status()).toEqual({ state: "ready", tools: 3 });
    requests = [];
    expect(await call(tool(based, "orders.get_orders_by_id"), { id: 7 })).toBe('{"id":7,"status":"open"}');
    expect(requests[0].headers.authorization).toBe(`Bearer ${TOKEN}`);
    await based.close();
  });

  it("fails a call clearly when the API's server is down", async () => {
    const port = await closedPort();
    const source = await started(billing({ baseUrl: `http://127.0.0.1:${port}/billing` }));
    const message = await failure(call(tool(source, "billing.get_invoices"), {}));
    expect(message).toBe(`cannot reach 127.0.0.1:${port}: ECONNREFUSED`);
    await source.close();
  });
});

describe("a document that cannot be used", () => {
  async function downWith(text: string | undefined, overrides: Partial<OpenApiConnection> = {}): Promise<string> {
    const file = join(tmp, `doc-${Math.random().toString(36).slice(2)}.yaml`);
    if (text !== undefined) await writeFile(file, text);
    const source = await started(billing({ spec: file, ...overrides }));
    const status = source.status();
    expect(status.state).toBe("down");
    expect(source.tools()).toEqual([]);
    await source.close();
    return status.error!.replace(file, "<file>");
  }

  it("leaves the source down, saying what is wrong and where", async () => {
    expect(await downWith(undefined)).toBe("cannot read OpenAPI document <file>: file not found");
    expect(await downWith("openapi: 3.0.0\npaths: [unclosed\n")).toMatch(
      /^OpenAPI document <file> is neither valid YAML nor JSON: .*line 3/,
    );
    expect(await downWith('{"swagger": "2.0", "paths": {}}')).toBe(
      "OpenAPI document <file> is Swagger 2.0, which is not supported: convert it to OpenAPI 3",
    );
    expect(await downWith("title: not an api\n")).toBe("OpenAPI document <file> is not OpenAPI 3.x: it has no `openapi` field");
    expect(
      await downWith("openapi: 3.0.0\npaths:\n  /things:\n    get:\n      parameters:\n        - $ref: '#/components/parameters/Nope'\n"),
    ).toBe(
      'OpenAPI document <file>, at #/paths/~1things/get/parameters/0: $ref "#/components/parameters/Nope" points to nothing: the document has no #/components/parameters/Nope',
    );
    expect(await downWith("openapi: 3.0.0\nservers: [{url: /v1}]\npaths:\n  /things:\n    get: {}\n", { baseUrl: undefined })).toBe(
      'OpenAPI document <file> gives no absolute server URL (servers[0].url is "/v1"): set base_url on the connection',
    );
    expect(await downWith("openapi: 3.0.0\npaths: {}\n", { baseUrl: "https://${BILLING_HOST}/api" })).toBe(
      "base_url uses ${BILLING_HOST}, but the environment variable BILLING_HOST is not set",
    );
  });
});

describe("edge cases", () => {
  it("takes an undeclared {name} in a path as a required string, and names an operation without operationId by method and path", async () => {
    const file = join(tmp, "undeclared.yaml");
    await writeFile(file, "openapi: 3.0.0\npaths:\n  /invoices/{invoiceId}:\n    get: {}\n");
    const source = await started(billing({ spec: file }));
    const found = tool(source, "billing.get_invoices_by_invoice_id");
    expect(found.inputSchema).toEqual({
      type: "object",
      properties: { invoiceId: { type: "string" } },
      required: ["invoiceId"],
      additionalProperties: false,
    });
    requests = [];
    await call(found, { invoiceId: "inv 9" });
    expect(requests[0].url).toBe("/billing/invoices/inv%209");
    await source.close();
  });

  it("refuses a header value that HTTP cannot carry without quoting it", async () => {
    const source = await started(billing(), { BILLING_TOKEN: TOKEN, BILLING_HEADER_SECRET: `${HEADER_SECRET}\nX-Evil: 1` });
    const message = await failure(call(tool(source, "billing.get_invoices"), {}));
    expect(message).toContain('header X-Api-Secret of connection "billing" cannot be sent');
    expect(message).not.toContain(HEADER_SECRET);
    await source.close();
  });
});

describe("what the operator pins, and what comes back", () => {
  const echo = (overrides: Partial<OpenApiConnection> = {}): OpenApiConnection => ({
    kind: "openapi",
    name: "echo",
    spec: ECHO_SPEC,
    baseUrl: `${url}/echo`,
    headers: {},
    timeoutMs: 5_000,
    tools: {},
    file: "outpost.yaml",
    ...overrides,
  });

  it("never lets the model replace a header the connection sets: such parameters are not offered, and a configured Cookie is kept whole", async () => {
    const source = await started(
      echo({
        headers: { "x-tenant": "${TENANT}", Cookie: "session=${SESSION}" },
        auth: { type: "header", header: "X-Api-Key", valueEnv: "ECHO_KEY" },
      }),
      { TENANT: "acme", SESSION, ECHO_KEY: API_KEY },
    );
    const whoami = tool(source, "echo.whoami");
    // X-Tenant and x-api-key are the connection's (case aside); with a Cookie configured, no cookie parameter is offered.
    expect(whoami.inputSchema).toEqual({
      type: "object",
      properties: { "X-Trace": { type: "string" } },
      additionalProperties: false,
    });
    expect(whoami.input.safeParse({ "X-Tenant": "other-tenant" }).success).toBe(false);
    requests = [];
    // Even handed them past validation, the handler sends the operator's values.
    await whoami.handler({
      input: { "X-Tenant": "other-tenant", sid: "x", "x-api-key": "mine", "X-Trace": "t-1" },
      context: context(),
      idempotencyKey: "k-1",
    });
    expect(requests[0].headers).toMatchObject({
      "x-tenant": "acme",
      cookie: `session=${SESSION}`,
      "x-api-key": API_KEY,
      "x-trace": "t-1",
    });
    await source.close();

    // A connection that pins none of them leaves them to the model.
    const open = await started(echo(), {});
    const free = tool(open, "echo.whoami");
    expect(Object.keys((free.inputSchema as { properties: object }).properties)).toEqual(["X-Tenant", "x-api-key", "X-Trace", "sid"]);
    requests = [];
    await call(free, { "X-Tenant": "globex", sid: "x" });
    expect(requests[0].headers).toMatchObject({ "x-tenant": "globex", cookie: "sid=x" });
    await open.close();
  });

  it("refuses an empty path parameter before sending anything (it would address the collection)", async () => {
    const source = await started(echo(), {});
    const remove = tool(source, "echo.delete_user");
    requests = [];
    expect(await failure(call(remove, { id: "" }))).toBe('the path parameter "id" cannot be empty');
    expect(requests).toHaveLength(0);
    expect(await call(remove, { id: "u 1" })).toBe("HTTP 204 No Content");
    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual(["DELETE /echo/users/u%201"]);
    await source.close();
  });

  it("redacts secrets from successful answers too, and a basic-auth credential in any form", async () => {
    const bearer = await started(echo({ auth: { type: "bearer", tokenEnv: "ECHO_TOKEN" } }), { ECHO_TOKEN: TOKEN });
    expect(await call(tool(bearer, "echo.whoami"), {})).toBe('{"you":"[redacted]","tenant":null}');
    await bearer.close();

    const basic = await started(echo({ auth: { type: "basic", usernameEnv: "ECHO_USER", passwordEnv: "ECHO_PASSWORD" } }), {
      ECHO_USER: BASIC_USER,
      ECHO_PASSWORD: PASSWORD,
    });
    expect(await failure(call(tool(basic, "echo.denied"), {}))).toBe("HTTP 401 Unauthorized: bad credentials [redacted] (user [redacted])");
    expect(await call(tool(basic, "echo.whoami"), {})).toBe('{"you":"[redacted]","tenant":null}');
    // A secret across the end of the quoted part is redacted before the quote is cut: no part of it shows.
    const cut = await failure(call(tool(basic, "echo.denied"), { pad: 480 }));
    expect(cut).toBe(`HTTP 401 Unauthorized: ${"-".repeat(480)}bad credentials [red…`);
    expect(cut).not.toContain(BASIC_CREDENTIAL.slice(0, 4));
    await basic.close();
  });

  it("reads at most 10 MB of an answer: a larger one fails the call, and is not read to its end", async () => {
    const source = await started(echo(), {});
    const read = tool(source, "echo.huge");
    const port = (server.address() as AddressInfo).port;
    expect(await failure(call(read, { bytes: 300 * 1024 * 1024 }))).toBe(
      `GET 127.0.0.1:${port}/echo/huge answered more than 10 MB (HTTP 200); Outpost reads at most 10 MB of a response: ask for less (a filter, a smaller page, fewer fields)`,
    );
    await vi.waitFor(() => expect(huge.closed).toBe(true), { timeout: 5_000, interval: 20 });
    expect(huge.sent).toBeLessThan(64 * 1024 * 1024);
    // Up to the cap is fine.
    const output = await call(read, { bytes: 10 * 1024 * 1024 });
    expect((output as string).length).toBe(10 * 1024 * 1024);
    await source.close();
  });
});

it("never writes a secret into a log line", () => {
  expect(logs.length).toBeGreaterThan(0);
  for (const line of logs) for (const secret of SECRETS) expect(line).not.toContain(secret);
});
