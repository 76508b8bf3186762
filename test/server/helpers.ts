import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import type { RunView } from "../../src/core/api.js";
import { isTerminal } from "../../src/core/api.js";
import { loadProject } from "../../src/definitions/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { createServer, listen } from "../../src/server/index.js";
import { collectLogs } from "./logs.js";

export { collectLogs };

export const ACME = path.resolve(import.meta.dirname, "../../examples/acme");

export interface Stack {
  url: string;
  outpost: Outpost;
  server: FastifyInstance;
  logs: ReturnType<typeof collectLogs>;
  close(): Promise<void>;
}

/** The real runtime on the Acme example (SQLite in a temp folder) behind the HTTP server on 127.0.0.1:<free port>. */
export async function startStack(options: { bodyLimit?: number } = {}): Promise<Stack> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "outpost-server-test-"));
  const logs = collectLogs();
  const project = await loadProject(ACME);
  // Scripted model only: make sure no real provider is picked up from the environment.
  const env = { ...process.env };
  delete env.OPENAI_API_KEY;
  delete env.OUTPOST_LLM_BASE_URL;
  delete env.OUTPOST_DATABASE_URL;
  const outpost = await startOutpost({ project, dataDir, env, logger: logs.logger });
  const server = await createServer(outpost, {
    version: "test",
    logger: logs.logger,
    ...(options.bodyLimit ? { bodyLimit: options.bodyLimit } : {}),
  });
  const url = await listen(server, { host: "127.0.0.1", port: 0 });
  return {
    url,
    outpost,
    server,
    logs,
    async close() {
      await server.close(); // also closes the runtime
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface HttpResult<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** One HTTP request; `body` objects are sent as JSON, strings as they are. */
export async function http<T = any>(
  url: string,
  method: string,
  pathname: string,
  init: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<HttpResult<T>> {
  const isString = typeof init.body === "string";
  const res = await fetch(`${url}${pathname}`, {
    method,
    headers: {
      ...(init.body !== undefined && !isString ? { "content-type": "application/json" } : {}),
      ...init.headers,
    },
    ...(init.body !== undefined ? { body: isString ? (init.body as string) : JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, body: body as T, text };
}

/** Polls until `until(run)` holds (bounded, so a stuck run fails the test rather than hanging it). */
export async function waitForRun(
  get: (id: string) => Promise<RunView>,
  id: string,
  until: (run: RunView) => boolean,
  timeoutMs = 15_000,
): Promise<RunView> {
  const deadline = Date.now() + timeoutMs;
  let run = await get(id);
  while (!until(run)) {
    if (Date.now() > deadline) {
      throw new Error(`run ${id} did not reach the expected state; last: ${JSON.stringify(run)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
    run = await get(id);
  }
  return run;
}

export const terminal = (run: RunView) => isTerminal(run.status);
export const waiting = (run: RunView) => run.status === "waiting";
