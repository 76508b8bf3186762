/**
 * The MCP client against real servers: the third-party reference server
 * (`@modelcontextprotocol/server-everything`) over stdio and Streamable HTTP,
 * and our own misbehaving fixture (test/fixtures/mcp/fixture-server.ts) for
 * the failure cases. Real child processes, real HTTP on 127.0.0.1, no mocks.
 * Waiting is done by polling for a state, never by asserting on timings.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { McpConnection, ToolDefinition } from "../../src/definitions/types.js";
import { processAlive } from "../../src/runtime/data-dir-lock.js";
import { mcpSource, normalizeToolName } from "../../src/tools/mcp.js";
import type { ToolSource } from "../../src/tools/source.js";

const ROOT = resolve(fileURLToPath(new URL(".", import.meta.url)), "../..");
const FIXTURE = join(ROOT, "test/fixtures/mcp/fixture-server.ts");
const EVERYTHING = join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");
const SECRET = "s3cr3t-value-never-logged";
const dataDir = mkdtempSync(join(tmpdir(), "outpost-mcp-"));

interface LogLine {
  level: string;
  obj: object;
  msg: string;
}
function memoryLog() {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, obj, msg });
  return { lines, info: at("info"), warn: at("warn"), error: at("error"), debug: at("debug"), text: () => JSON.stringify(lines) };
}

type Transport = McpConnection["transport"];
const stdio = (args: string[], env: Record<string, string> = {}, command = process.execPath): Transport => ({
  type: "stdio",
  command,
  args,
  env,
  cwd: ROOT,
});
/** `marker` is an extra argument, to find the server's processes with `ps`. */
const fixtureTransport = (marker = "fixture") =>
  stdio(["--import", "tsx", FIXTURE, `--marker=${marker}`], { FIXTURE_SECRET: "${FIXTURE_SECRET}" });

/** Processes whose command line holds `--marker=<marker>`. */
function processesWith(marker: string): string[] {
  const out = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
  return out.split("\n").filter((line) => line.includes(`--marker=${marker}`));
}

function connection(name: string, transport: Transport, extra: Partial<McpConnection> = {}): McpConnection {
  return { kind: "mcp", name, transport, timeoutMs: 20_000, connectTimeoutMs: 20_000, tools: {}, file: "outpost.yaml", ...extra };
}

const open: ToolSource[] = [];
function source(conn: McpConnection, log = memoryLog()): ToolSource {
  const s = mcpSource(conn, { env: { ...process.env, FIXTURE_SECRET: SECRET }, dataDir, log });
  open.push(s);
  return s;
}

function tool(s: ToolSource, name: string): ToolDefinition {
  const def = s.tools().find((t) => t.name === name);
  if (!def) throw new Error(`no tool ${name}; the source has ${s.tools().map((t) => t.name)}`);
  return def;
}

async function call(
  s: ToolSource,
  name: string,
  input: unknown = {},
  key = "key-1",
  signal = new AbortController().signal,
): Promise<string> {
  const def = tool(s, name);
  const context = {
    runId: "run_1",
    sessionId: "ses_1",
    agent: "support",
    workspace: "acme",
    rootRunId: "run_1",
    dataDir,
    signal,
  };
  return (await def.handler({ input: def.input.parse(input), idempotencyKey: key, context })) as string;
}

/** Polls until `check` returns something truthy (errors count as "not yet"). */
async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 45_000): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What a promise settles with, as a value: its result or its error (so a rejection is never left unhandled). */
const outcome = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    (value) => value,
    (err) => err,
  );

const whoami = async (s: ToolSource) => JSON.parse(await call(s, "fixture.whoami")) as { pid: number; dataDir: string; secret: string };

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

const children: ChildProcess[] = [];
/** server-everything over Streamable HTTP, as its own process on `port`; resolves once it listens. */
async function startEverythingHttp(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [EVERYTHING, "streamableHttp"], {
    env: { PATH: process.env.PATH ?? "", PORT: String(port) },
    stdio: ["ignore", "ignore", "pipe"],
  });
  children.push(child);
  let stderr = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr?.on("data", (chunk) => {
      stderr += String(chunk);
      if (stderr.includes("listening on port")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`server-everything exited (${code}): ${stderr}`)));
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  await Promise.all(children.splice(0).map(stop));
  rmSync(join(dataDir, "refuse-start"), { force: true });
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe("tool names", () => {
  it("normalizes remote names to lowercase snake_case, or refuses", () => {
    expect(normalizeToolName("getTicket")).toBe("get_ticket");
    expect(normalizeToolName("get-ticket")).toBe("get_ticket");
    expect(normalizeToolName("HTTPStatus")).toBe("http_status");
    expect(normalizeToolName("getHTTPStatus")).toBe("get_http_status");
    expect(normalizeToolName("Ticket.Create v2")).toBe("ticket_create_v2");
    expect(normalizeToolName("créer_ticket")).toBe("creer_ticket");
    expect(normalizeToolName("__private")).toBe("private");
    expect(normalizeToolName("42")).toBeNull();
    expect(normalizeToolName("---")).toBeNull();
  });
});

describe("server-everything over stdio", { timeout: 60_000 }, () => {
  it("discovers its tools with normalized names, validates arguments and calls them", async () => {
    const s = source(connection("everything", stdio([EVERYTHING, "stdio"])));
    await s.start();
    expect(s.status()).toMatchObject({ state: "ready" });
    const names = s.tools().map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(["everything.echo", "everything.get_sum", "everything.get_tiny_image"]));
    for (const name of names) expect(name).toMatch(/^everything\.[a-z][a-z0-9_]*$/);
    expect(s.status().tools).toBe(names.length);

    const sum = tool(s, "everything.get_sum");
    expect(sum.sideEffects).toBe(false); // readOnlyHint
    expect(sum.timeoutMs).toBe(20_000);
    expect(sum.inputSchema).toMatchObject({ type: "object", properties: { a: { type: "number" }, b: { type: "number" } } });
    expect(sum.input.safeParse({ a: "two", b: 3 }).success).toBe(false);
    expect(sum.input.safeParse({ a: 2 }).success).toBe(false);
    expect(await call(s, "everything.get_sum", { a: 2, b: 3 })).toContain("5");
    expect(await call(s, "everything.echo", { message: "hello there" })).toContain("hello there");

    const image = await call(s, "everything.get_tiny_image");
    expect(image).toMatch(/\[image: image\/png, \d+ bytes\]/);
    expect(image.length).toBeLessThan(300); // summarized, no base64
  });

  it("honours include, exclude and per-tool settings", async () => {
    const s = source(
      connection("everything", stdio([EVERYTHING, "stdio"]), {
        include: ["echo", "get-sum", "get-tiny-image"],
        exclude: ["get-tiny-image"],
        tools: { "get-sum": { approval: "required", timeoutMs: 1234, sideEffects: true } },
        classification: "internal",
      }),
    );
    await s.start();
    expect(
      s
        .tools()
        .map((t) => t.name)
        .sort(),
    ).toEqual(["everything.echo", "everything.get_sum"]);
    expect(tool(s, "everything.get_sum")).toMatchObject({
      approval: "required",
      timeoutMs: 1234,
      sideEffects: true,
      classification: "internal",
    });
    const echo = tool(s, "everything.echo");
    expect(echo.approval).toBeUndefined();
    expect(echo.timeoutMs).toBe(20_000);
    expect(echo.classification).toBe("internal");
  });
});

describe("server-everything over Streamable HTTP", { timeout: 60_000 }, () => {
  it("discovers and calls; a server that dies fails calls clearly, and the source reconnects when it is back", async () => {
    const port = await freePort();
    const server = await startEverythingHttp(port);
    const log = memoryLog();
    const s = source(
      connection("everything", { type: "http", url: `http://127.0.0.1:${port}/mcp`, headers: { "X-Outpost-Token": "${FIXTURE_SECRET}" } }),
      log,
    );
    await s.start();
    expect(s.status()).toMatchObject({ state: "ready" });
    expect(s.tools().map((t) => t.name)).toEqual(expect.arrayContaining(["everything.echo", "everything.get_sum"]));
    expect(tool(s, "everything.get_sum").input.safeParse({ a: 1 }).success).toBe(false);
    expect(await call(s, "everything.get_sum", { a: 20, b: 22 })).toContain("42");

    // Killed while a call is in flight: the call fails, clearly, without waiting for its timeout.
    const inFlight = outcome(call(s, "everything.trigger_long_running_operation", { duration: 60, steps: 60 }));
    await new Promise((r) => setTimeout(r, 300));
    await stop(server);
    expect(String(await inFlight)).toMatch(/^Error: everything: .* during the call; Outpost is reconnecting$/);
    await waitFor("the source to notice", () => s.status().state !== "ready");
    await expect(call(s, "everything.echo", { message: "anyone?" })).rejects.toThrow(/^everything is unavailable: .*; reconnecting/);
    expect(s.tools().length).toBeGreaterThan(0); // still listed while down

    await startEverythingHttp(port);
    await waitFor("the source to reconnect", () => s.status().state === "ready");
    expect(await call(s, "everything.echo", { message: "back again" })).toContain("back again");
    expect(log.text()).not.toContain(SECRET);
  });

  it("reports an HTTP 5xx or a refused connection as down, without the header secrets", async () => {
    const http: Server = createServer((_req, res) => {
      res.writeHead(503, { "content-type": "text/plain" });
      res.end("maintenance window");
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    const { port } = http.address() as AddressInfo;
    try {
      const log = memoryLog();
      const s = source(
        connection("helpdesk", {
          type: "http",
          url: `http://127.0.0.1:${port}/mcp`,
          headers: { Authorization: "Bearer ${FIXTURE_SECRET}" },
        }),
        log,
      );
      await s.start();
      expect(s.status()).toMatchObject({ state: "down", tools: 0 });
      expect(s.status().error).toMatch(/HTTP 503/);
      expect(s.status().error).toContain("maintenance window");
      expect(JSON.stringify(s.status()) + log.text()).not.toContain(SECRET);
    } finally {
      await new Promise((r) => http.close(r));
    }

    const refused = source(connection("helpdesk", { type: "http", url: `http://127.0.0.1:${await freePort()}/mcp`, headers: {} }));
    await refused.start();
    expect(refused.status()).toMatchObject({ state: "down" });
    expect(refused.status().error).toMatch(/connection refused/);
  });
});

describe("the fixture server", { timeout: 60_000 }, () => {
  it("passes the idempotency key in _meta, the environment and the data folder; names tools as promised", async () => {
    const log = memoryLog();
    const s = source(connection("fixture", fixtureTransport()), log);
    await s.start();
    expect(s.status()).toMatchObject({ state: "ready" });

    const echoed = JSON.parse(await call(s, "fixture.echo_meta", { text: "hi" }, "idem-7f3a"));
    expect(echoed.meta["outpost/idempotency_key"]).toBe("idem-7f3a");
    expect(echoed.args).toEqual({ text: "hi" });
    expect(await whoami(s)).toMatchObject({ dataDir, secret: SECRET });

    const names = s.tools().map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining(["fixture.echo_meta", "fixture.get_ticket", "fixture.http_status", "fixture.exit_mid_call"]),
    );
    expect(names.filter((n) => n === "fixture.get_ticket")).toHaveLength(1);
    expect(tool(s, "fixture.get_ticket")).toMatchObject({ description: "Gets a ticket.", sideEffects: false });
    expect(await call(s, "fixture.get_ticket", { id: 42 })).toBe("ticket 42: printer on fire");
    expect(tool(s, "fixture.get_ticket").input.safeParse({ id: "forty-two" }).success).toBe(false);
    expect(tool(s, "fixture.http_status").description).toBe("HTTP status");
    expect(tool(s, "fixture.echo_meta").sideEffects).toBe(true);
    const warnings = log.lines.filter((l) => l.level === "warn").map((l) => `${l.msg} ${JSON.stringify(l.obj)}`);
    expect(warnings.some((w) => w.includes("collides") && w.includes('"get-ticket"'))).toBe(true);
    expect(warnings.some((w) => w.includes('"42"'))).toBe(true);

    // The server's stderr reaches the log, with the secret it printed masked.
    await waitFor("the server's stderr in the log", () =>
      log.lines.some((l) => JSON.stringify(l.obj).includes("starting with secret ***")),
    );
    expect(log.text()).not.toContain(SECRET);
  });

  it("turns results into text: structured content, media summaries; isError becomes the server's message", async () => {
    const s = source(connection("fixture", fixtureTransport()));
    await s.start();
    expect(await call(s, "fixture.media")).toBe(
      [
        "here it is",
        "[image: image/png, 3000 bytes]",
        "[resource: file:///tickets/42.pdf]",
        "[resource: file:///tickets/42.bin, application/octet-stream, 10 bytes]",
      ].join("\n"),
    );
    expect(JSON.parse(await call(s, "fixture.structured"))).toEqual({ total: 3, currency: "EUR" });
    await expect(call(s, "fixture.fail")).rejects.toThrow(/^ticket 42 is locked by another agent$/);
    expect(s.status().state).toBe("ready");
  });

  it("times out a hung call with a clear message; later calls still work", async () => {
    const s = source(connection("fixture", fixtureTransport(), { tools: { hang: { timeoutMs: 300 } } }));
    await s.start();
    await expect(call(s, "fixture.hang")).rejects.toThrow(/^fixture\.hang did not answer within 300 ms$/);
    expect(s.status().state).toBe("ready");
    expect(JSON.parse(await call(s, "fixture.echo_meta", { text: "still here" })).args.text).toBe("still here");

    // A run cancelled mid-call: the call ends with the run's reason, the server stays up.
    const run = new AbortController();
    const cancelled = outcome(call(s, "fixture.hang", {}, "key-2", run.signal));
    run.abort(new Error("cancelled: operator stopped the run"));
    expect(String(await cancelled)).toBe("Error: cancelled: operator stopped the run");
    expect(s.status().state).toBe("ready");
    expect(await call(s, "fixture.get_ticket", { id: 7 })).toBe("ticket 7: printer on fire");
  });

  it("restarts a server that leaves call after call unanswered", async () => {
    const s = source(connection("fixture", fixtureTransport(), { tools: { hang: { timeoutMs: 200 } } }));
    await s.start();
    const before = (await whoami(s)).pid;
    for (let i = 0; i < 3; i++) await expect(call(s, "fixture.hang")).rejects.toThrow(/did not answer within 200 ms/);
    const after = await waitFor("a restarted server", async () => {
      const { pid } = await whoami(s);
      return pid !== before && pid;
    });
    expect(after).not.toBe(before);
    await waitFor("the hung process to be gone", () => !processAlive(before));
  });

  it("fails a call at once when the tool exits the server; reconnects; later calls work", async () => {
    const s = source(connection("fixture", fixtureTransport()));
    await s.start();
    const before = (await whoami(s)).pid;
    await expect(call(s, "fixture.exit_mid_call")).rejects.toThrow(
      /^fixture: the MCP server exited \(code 1\) during the call; Outpost is reconnecting$/,
    );
    await waitFor("the source to reconnect", () => s.status().state === "ready");
    expect((await whoami(s)).pid).not.toBe(before);
  });

  it("fails a call at once when the server is killed (kill -9); reconnects; later calls work", async () => {
    const s = source(connection("fixture", fixtureTransport(), { tools: { hang: { timeoutMs: 60_000 } } }));
    await s.start();
    const before = (await whoami(s)).pid;
    const inFlight = outcome(call(s, "fixture.hang"));
    process.kill(before, "SIGKILL");
    expect(String(await inFlight)).toBe("Error: fixture: the MCP server was killed by SIGKILL during the call; Outpost is reconnecting");
    await waitFor("the source to reconnect", () => s.status().state === "ready");
    const after = (await whoami(s)).pid;
    expect(after).not.toBe(before);
    expect(processAlive(before)).toBe(false);
  });

  it("fails calls fast while the server cannot start, keeps its tools listed, and recovers once it can", async () => {
    const s = source(connection("fixture", fixtureTransport()));
    await s.start();
    writeFileSync(join(dataDir, "refuse-start"), "");
    await expect(call(s, "fixture.exit_mid_call")).rejects.toThrow(/exited \(code 1\) during the call/);
    const down = await waitFor("a failed restart", () => (s.status().error?.includes("while starting") ? s.status() : undefined));
    expect(down.error).toBe("the MCP server exited (code 3) while starting: fixture: refusing to start (refuse-start flag file present)");
    expect(down.tools).toBeGreaterThan(0);
    await expect(call(s, "fixture.whoami")).rejects.toThrow(
      /^fixture is unavailable: the MCP server exited \(code 3\) while starting: .*; reconnecting (now|\(next attempt in \d+ (ms|s)\))$/,
    );

    rmSync(join(dataDir, "refuse-start"));
    await waitFor("the source to recover", () => s.status().state === "ready");
    expect((await whoami(s)).dataDir).toBe(dataDir);
  });

  it("refreshes its tools when the server says they changed", async () => {
    const s = source(connection("fixture", fixtureTransport()));
    await s.start();
    expect(s.tools().some((t) => t.name === "fixture.added_later")).toBe(false);
    expect(await call(s, "fixture.add_tool")).toBe("added");
    await waitFor("the new tool", () => s.tools().some((t) => t.name === "fixture.added_later"));
    expect(await call(s, "fixture.added_later")).toBe("late but here");
  });

  it("reports a server that cannot start, or an unset variable, as down; start() still resolves", async () => {
    const missing = source(connection("helpdesk", stdio([], {}, "outpost-no-such-command")));
    await missing.start();
    expect(missing.status()).toEqual({ state: "down", tools: 0, error: 'cannot start "outpost-no-such-command": command not found' });

    const unset = source(connection("helpdesk", stdio(["-e", ""], { TOKEN: "${OUTPOST_TEST_SURELY_UNSET}" })));
    await unset.start();
    expect(unset.status()).toEqual({
      state: "down",
      tools: 0,
      error: "environment variable OUTPOST_TEST_SURELY_UNSET is not set (connections.helpdesk.mcp.env.TOKEN refers to it)",
    });

    // Starts, then exits before it speaks MCP.
    const quits = source(connection("helpdesk", stdio(["-e", "console.error('no license found'); process.exit(2)"])));
    await quits.start();
    expect(quits.status()).toMatchObject({ state: "down", error: "the MCP server exited (code 2) while starting: no license found" });
  });

  it("close() stops the server, leaves no process behind, and later calls fail clearly", async () => {
    const marker = randomUUID();
    const s = source(connection("fixture", fixtureTransport(marker)));
    await s.start();
    const { pid } = await whoami(s);
    expect(processesWith(marker)).toHaveLength(1);
    const def = tool(s, "fixture.whoami");
    await s.close();
    expect(s.status().state).toBe("closed");
    expect(processAlive(pid)).toBe(false);
    expect(processesWith(marker)).toEqual([]);
    await s.close(); // idempotent
    await expect(call(s, def.name)).rejects.toThrow(/^fixture is closed/);
  });

  it("close() during a connect, or while retrying, leaves no process and no retry behind", async () => {
    const marker = randomUUID();
    const s = source(connection("fixture", fixtureTransport(marker)));
    const starting = s.start();
    await waitFor("the server process", () => processesWith(marker).length === 1);
    await s.close();
    await starting;
    expect(s.status().state).toBe("closed");
    expect(s.tools()).toEqual([]);
    expect(processesWith(marker)).toEqual([]);

    const retrying = source(connection("fixture", fixtureTransport(marker)));
    writeFileSync(join(dataDir, "refuse-start"), "");
    await retrying.start();
    expect(retrying.status().state).toBe("down");
    await retrying.close();
    rmSync(join(dataDir, "refuse-start"));
    expect(retrying.status().state).toBe("closed");
    expect(processesWith(marker)).toEqual([]);
  });
});

describe("a server that answers loosely", () => {
  it("reads the answer of a call it made, even when it does not match the tool's declared output schema (never 'refused' after the fact)", async () => {
    const s = source(connection("bank", stdio(["--import", "tsx", join(ROOT, "test/fixtures/mcp/loose-server.ts")])));
    await s.start();
    expect(s.status().state).toBe("ready");
    expect(await call(s, "bank.pay", { amount: 12 })).toBe("paid 12");
  });
});
