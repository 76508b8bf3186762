/**
 * MCP tool call overhead: one small server (bench/mcp-echo-server.ts, a lone
 * `echo` tool) called over stdio and over Streamable HTTP by
 *   (a) the MCP SDK's bare `Client` (its own stdio / Streamable HTTP transports),
 *   (b) the handler of the tool Outpost's `mcpSource(...)` makes of it,
 *   (c) a whole Outpost run step: a scripted agent calls the tool 20 times, one
 *       call per turn, then answers; a call is timed from one committed
 *       `tool.completed` to the next (model turn + intent commit + call + result
 *       commit). The same agent calling an in-process tool gives the run step
 *       without MCP.
 * (a) and (b) time each call alone, one at a time. Every client stays
 * connected for the whole measurement (one server process per stdio client;
 * one HTTP server process shared by the HTTP clients, one MCP session each), and
 * the modes take turns batch by batch so drift on a noisy machine hits all of
 * them alike.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { McpConnection, ToolDefinition } from "../src/definitions/types.js";
import { createScriptedClient, type ScriptObject } from "../src/models/index.js";
import { mcpSource } from "../src/tools/mcp.js";
import type { ToolSource } from "../src/tools/source.js";
import { median, openDriver, quantile, tempDir } from "./driver.js";
import { benchAgent, benchProject } from "./workload.js";

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, "..");
const SERVER_ARGS = ["--import", "tsx", join(here, "mcp-echo-server.ts")];
/** Calls per run in (c). */
export const RUN_CALLS = 20;
const ARGS = { text: "ping" };

export interface CallStats {
  mode: string;
  /** Every call's time, in µs. */
  samples: number[];
  /** The median of each batch, in µs. */
  batchMedians: number[];
}

export interface McpResult {
  callsPerBatch: number;
  runsPerBatch: number;
  batches: number;
  stats: CallStats[];
  /** Node's MaxListenersExceededWarning about abort listeners on one AbortSignal, counted by the mode that was running. */
  listenerWarnings: Record<string, number>;
}

/** Counts Node's warnings that an AbortSignal collected too many abort listeners (instead of printing each),
 * by whatever `label()` says is running; other warnings are printed as usual. */
function countListenerWarnings(label: () => string): { counts: Record<string, number>; restore(): void } {
  const counts: Record<string, number> = {};
  const saved = process.listeners("warning");
  process.removeAllListeners("warning"); // among them Node's own, which prints every warning to stderr
  const listener = (w: Error) => {
    if (w.name === "MaxListenersExceededWarning" && w.message.includes("abort listeners")) counts[label()] = (counts[label()] ?? 0) + 1;
    else for (const l of saved) l(w);
  };
  process.on("warning", listener);
  return {
    counts,
    restore() {
      process.off("warning", listener);
      for (const l of saved) process.on("warning", l);
    },
  };
}

/** The echo server over Streamable HTTP, as its own process; resolves once it listens. */
async function startHttpServer(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [...SERVER_ARGS, "--http"], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const port = await new Promise<number>((ok, fail) => {
    child.stderr?.on("data", (chunk) => {
      stderr += String(chunk);
      const m = /listening on port (\d+)/.exec(stderr);
      if (m) ok(Number(m[1]));
    });
    child.once("exit", (code) => fail(new Error(`the echo server exited (${code}): ${stderr}`)));
  });
  return { url: `http://127.0.0.1:${port}/mcp`, child };
}

async function bareClient(
  transport: StdioClientTransport | StreamableHTTPClientTransport,
): Promise<{ call: () => Promise<unknown>; close: () => Promise<void> }> {
  const client = new Client({ name: "outpost-bench", version: "1.0.0" });
  await client.connect(transport);
  await client.listTools(); // as a client would, to know the tool (and what it returns)
  return { call: () => client.callTool({ name: "echo", arguments: ARGS }), close: () => client.close() };
}

function connection(name: string, transport: McpConnection["transport"]): McpConnection {
  return { kind: "mcp", name, transport, timeoutMs: 30_000, connectTimeoutMs: 30_000, tools: {}, file: "outpost.yaml" };
}
const stdio = (): McpConnection["transport"] => ({ type: "stdio", command: process.execPath, args: SERVER_ARGS, env: {}, cwd: ROOT });
const http = (url: string): McpConnection["transport"] => ({ type: "http", url, headers: {} });

const quiet = {
  info: () => undefined,
  warn: (o: object, m: string) => console.error(m, o),
  error: (o: object, m: string) => console.error(m, o),
};

async function sourceClient(conn: McpConnection, dataDir: string): Promise<{ call: () => Promise<unknown>; close: () => Promise<void> }> {
  const source: ToolSource = mcpSource(conn, { env: process.env, dataDir, log: quiet });
  await source.start();
  const tool = source.tools().find((t) => t.name === `${conn.name}.echo`) as ToolDefinition | undefined;
  if (!tool) throw new Error(`${conn.name}: ${JSON.stringify(source.status())}`);
  const context = {
    runId: "run_bench",
    sessionId: "ses_bench",
    agent: "bench",
    workspace: "bench",
    rootRunId: "run_bench",
    dataDir,
    signal: new AbortController().signal,
  };
  let n = 0;
  // What the executor hands the handler: the arguments it validated, a fresh idempotency key per call.
  return { call: async () => tool.handler({ input: ARGS, idempotencyKey: `key-${++n}`, context }), close: () => source.close() };
}

async function timeCalls(call: () => Promise<unknown>, count: number, into: number[]): Promise<number[]> {
  const batch: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await call();
    batch.push((performance.now() - t0) * 1000);
  }
  into.push(...batch);
  return batch;
}

export async function mcpOverhead(quick: boolean): Promise<McpResult> {
  const callsPerBatch = quick ? 150 : 400;
  const runsPerBatch = quick ? 4 : 10;
  const batches = quick ? 3 : 7;
  const sourceDir = tempDir("mcp");
  let current = "setup";
  const warnings = countListenerWarnings(() => current);
  const server = await startHttpServer();
  const closers: (() => Promise<void>)[] = [];
  try {
    const direct: { mode: string; call: () => Promise<unknown> }[] = [];
    const open = async (mode: string, client: Promise<{ call: () => Promise<unknown>; close: () => Promise<void> }>) => {
      const c = await client;
      closers.push(c.close);
      direct.push({ mode, call: c.call });
    };
    await open(
      "SDK Client, stdio",
      bareClient(new StdioClientTransport({ command: process.execPath, args: SERVER_ARGS, cwd: ROOT, stderr: "ignore" })),
    );
    await open("SDK Client, Streamable HTTP", bareClient(new StreamableHTTPClientTransport(new URL(server.url))));
    await open("mcpSource tool handler, stdio", sourceClient(connection("echo_stdio", stdio()), sourceDir));
    await open("mcpSource tool handler, Streamable HTTP", sourceClient(connection("echo_http", http(server.url)), sourceDir));

    // (c): one Outpost with both connections (its own stdio server process; a session of its own on the HTTP one).
    const steps = [
      { mode: "Outpost run step, in-process tool (no MCP)", agent: "step_local", tool: "counter.add", args: { n: 1 } },
      { mode: "Outpost run step, MCP over stdio", agent: "step_stdio", tool: "echo_stdio.echo", args: ARGS },
      { mode: "Outpost run step, MCP over Streamable HTTP", agent: "step_http", tool: "echo_http.echo", args: ARGS },
    ];
    const scripts = Object.fromEntries(
      steps.map((s) => [
        s.agent,
        {
          dialogues: [
            { turns: [...Array.from({ length: RUN_CALLS }, () => ({ tool_calls: [{ name: s.tool, args: s.args }] })), { text: "done" }] },
          ],
        },
      ]),
    ) as Record<string, ScriptObject>;
    const project = benchProject(
      steps.map((s) => benchAgent(s.agent, [s.tool])),
      [connection("echo_stdio", stdio()), connection("echo_http", http(server.url))],
    );
    let lastCompleted = new Map<string, number>();
    let sink: number[] | null = null;
    const driver = await openDriver(project, createScriptedClient("scripted", scripts), (e) => {
      if (e.type !== "tool.completed") return;
      const now = performance.now();
      const before = lastCompleted.get(e.run_id);
      lastCompleted.set(e.run_id, now);
      if (before !== undefined) sink?.push((now - before) * 1000);
    });
    closers.push(async () => {
      await driver.close();
      driver.remove();
    });
    for (const c of driver.outpost.connections()) if (c.state !== "ready") throw new Error(`${c.name}: ${c.state} ${c.error ?? ""}`);

    const stats: CallStats[] = [...direct.map((d) => d.mode), ...steps.map((s) => s.mode)].map((mode) => ({
      mode,
      samples: [],
      batchMedians: [],
    }));
    const statsOf = (mode: string) => stats.find((s) => s.mode === mode) as CallStats;
    const runSteps = async (agent: string, runs: number, into: number[]): Promise<number[]> => {
      const batch: number[] = [];
      sink = batch;
      lastCompleted = new Map();
      for (let i = 0; i < runs; i++) await driver.run(agent);
      sink = null;
      into.push(...batch);
      return batch;
    };

    // Warm-up: the first thousand or so calls of each path run several times slower (JIT, connection pools).
    for (const d of direct) {
      current = d.mode;
      await timeCalls(d.call, quick ? 400 : 2000, []);
    }
    for (const s of steps) {
      current = s.mode;
      await runSteps(s.agent, quick ? 8 : 40, []);
    }

    for (let b = 0; b < batches; b++) {
      // Rotate the order, so that no mode always follows the same one.
      for (let k = 0; k < direct.length; k++) {
        const d = direct[(b + k) % direct.length];
        const st = statsOf(d.mode);
        current = d.mode;
        st.batchMedians.push(median(await timeCalls(d.call, callsPerBatch, st.samples)));
      }
      for (let k = 0; k < steps.length; k++) {
        const s = steps[(b + k) % steps.length];
        const st = statsOf(s.mode);
        current = s.mode;
        st.batchMedians.push(median(await runSteps(s.agent, runsPerBatch, st.samples)));
      }
    }
    current = "closing";
    return { callsPerBatch, runsPerBatch, batches, stats, listenerWarnings: warnings.counts };
  } finally {
    for (const close of closers.reverse()) await close().catch((err) => console.error(err));
    server.child.kill("SIGKILL");
    rmSync(sourceDir, { recursive: true, force: true });
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    warnings.restore();
  }
}

export const p95 = (values: number[]) => quantile(values, 0.95);
