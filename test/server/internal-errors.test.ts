/**
 * What the server does when the runtime itself misbehaves — paths the real
 * runtime cannot be made to take on purpose, so a stand-in api throws here.
 */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../src/client/index.js";
import type { EventView, OutpostApi, RunView } from "../../src/core/api.js";
import { OutpostError } from "../../src/core/errors.js";
import { createServer, listen } from "../../src/server/index.js";
import { authorizeFetchTo, testAuthenticator } from "../helpers/auth.js";
import { collectLogs } from "./logs.js";

const run: RunView = {
  id: "run_1",
  workspace: "w",
  agent: "a",
  session_id: "s",
  status: "running",
  input: "hi",
  output: null,
  error: null,
  usage: { input_tokens: 0, output_tokens: 0, cost_usd: 0 },
  steps: 0,
  waiting_for: null,
  parent_run_id: null,
  root_run_id: "run_1",
  depth: 0,
  created_at: "2025-01-01T00:00:00.000Z",
  updated_at: "2025-01-01T00:00:00.000Z",
  completed_at: null,
};

const boom = () => {
  throw new Error("SECRET database password in /var/lib/outpost at line 42");
};

let streamReleased = false;
const api = {
  health: async () => boom(),
  getRun: async (id: string) => {
    if (id === "run_1" || id === "run_stall" || id === "run_fail") return { ...run, id };
    throw new OutpostError("not_found", `run "${id}" does not exist`, "list runs with GET /v1/runs");
  },
  listRuns: async () => ({ items: [{ ...run, secret_extra: { kept: true } }], next_cursor: null }),
  async *streamEvents(runId: string, options?: { after?: number; signal?: AbortSignal }): AsyncGenerator<EventView> {
    if (runId === "run_fail") {
      yield { run_id: runId, seq: 1, type: "run.started", data: {}, at: run.created_at };
      throw new Error("store exploded");
    }
    // run_stall: one event, then wait (ignoring nothing: it honours the signal).
    yield {
      run_id: runId,
      seq: (options?.after ?? 0) + 1,
      type: "run.started",
      data: { nested: { deep: [1, { x: null }] } },
      at: run.created_at,
    };
    await new Promise<void>((resolve) => options?.signal?.addEventListener("abort", () => resolve(), { once: true }));
    streamReleased = true;
  },
} as unknown as OutpostApi;

let server: FastifyInstance;
let url: string;
const logs = collectLogs();

beforeAll(async () => {
  server = await createServer(api, { version: "test", logger: logs.logger, authenticator: testAuthenticator });
  url = await listen(server, { host: "127.0.0.1", port: 0 });
  authorizeFetchTo(url);
});
afterAll(async () => {
  await server?.close();
});

describe("unexpected runtime errors", () => {
  it("answer 500 internal with the request id, log the error, and never leak its message", async () => {
    const res = await fetch(`${url}/v1/health`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain("SECRET");
    expect(text).not.toContain("at ");
    const body = JSON.parse(text);
    const requestId = res.headers.get("request-id");
    expect(requestId).toBeTruthy();
    expect(body).toEqual({
      error: { code: "internal", message: "internal error", hint: `see the server log (request id ${requestId})` },
    });
    expect(logs.lines.some((l) => l.level >= 50 && JSON.stringify(l).includes("SECRET"))).toBe(true);
  });

  it("the client rethrows the envelope as OutpostError(internal)", async () => {
    const client = createClient(url);
    await expect(client.health()).rejects.toMatchObject({ code: "internal", message: "internal error" });
  });

  it("response serialization keeps fields the schema does not name", async () => {
    const res = await fetch(`${url}/v1/runs`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { items: Record<string, unknown>[] };
    expect(body.items[0].secret_extra).toEqual({ kept: true });
  });

  it("a stream whose runtime iterator fails sends an error event and ends", async () => {
    const res = await fetch(`${url}/v1/runs/run_fail/stream`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain("id: 1\nevent: run.started\n");
    expect(text).toMatch(/event: error\ndata: \{"error":\{"code":"internal"/);
    expect(text).not.toContain("store exploded");
    expect(text).not.toContain("event: end");
    const client = createClient(url);
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const e of client.streamEvents("run_fail")) seen.push(e.seq);
      })(),
    ).rejects.toMatchObject({ code: "internal" });
    expect(seen).toEqual([1]);
  });

  it("free-form event data is streamed in full", async () => {
    const client = createClient(url);
    const controller = new AbortController();
    for await (const e of client.streamEvents("run_stall", { signal: controller.signal })) {
      expect(e.data).toEqual({ nested: { deep: [1, { x: null }] } });
      break;
    }
  });

  it("sends heartbeat comments while a stream is idle", async () => {
    const beating = await createServer(api, { version: "test", logger: logs.logger, sseHeartbeatMs: 10, authenticator: testAuthenticator });
    const beatingUrl = await listen(beating, { host: "127.0.0.1", port: 0 });
    authorizeFetchTo(beatingUrl);
    try {
      const controller = new AbortController();
      const res = await fetch(`${beatingUrl}/v1/runs/run_stall/stream`, { signal: controller.signal });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      let text = "";
      while (!text.includes(": heartbeat\n\n")) {
        const chunk = await reader.read();
        if (chunk.done) throw new Error(`the stream ended before a heartbeat: ${text}`);
        text += new TextDecoder().decode(chunk.value);
      }
      expect(text).toContain("id: 1\nevent: run.started\n");
      controller.abort();
    } finally {
      await beating.close();
    }
  });

  it("closing the server ends open streams and releases the runtime iterator", async () => {
    streamReleased = false;
    const res = await fetch(`${url}/v1/runs/run_stall/stream`);
    const reader = res.body!.getReader();
    const first = await reader.read(); // headers + retry line at least
    expect(first.done).toBe(false);
    const closed = server.close();
    // Drain to the end: the server must end the response itself.
    let done = false;
    while (!done) done = (await reader.read()).done;
    await closed;
    expect(streamReleased).toBe(true);
  });
});
