/**
 * The HTTP API and the CLI against a real server (Acme, scripted
 * model, SQLite in a temp folder). Each test pins a defect found in review.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import { startOutpost } from "../../src/runtime/index.js";
import { runCli } from "../cli/harness.js";
import { http, SHOP, type Stack, startStack, terminal, waitForRun } from "../server/helpers.js";

let stack: Stack;
let url: string;

beforeAll(async () => {
  stack = await startStack();
  url = stack.url;
});
afterAll(async () => {
  await stack?.close();
});

const start = async (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  http(url, "POST", "/v1/runs", { body, headers });

describe("HTTP API", () => {
  it("GET /v1/runs with a cursor that is not a run id is a 400, not a silently empty page", async () => {
    await start({ agent: "support", input: "Where is order 1042?" });
    const res = await http(url, "GET", "/v1/runs?cursor=garbage");
    // Once: 200 {"items":[],"next_cursor":null} — looks like "there are no runs".
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.message).toMatch(/cursor/);
  });

  it("an Idempotency-Key reused with a different session_id is refused (409), not answered with the other run", async () => {
    const first = await start({ agent: "support", input: "Where is order 1042?" });
    const other = await start({ agent: "support", input: "hello" });
    const key = `retry-${Date.now()}`;
    const a = await start(
      { agent: "support", input: "Where is order 1042?", session_id: first.body.session_id },
      { "idempotency-key": key },
    );
    expect(a.status, a.text).toBe(201);
    const b = await start(
      { agent: "support", input: "Where is order 1042?", session_id: other.body.session_id },
      { "idempotency-key": key },
    );
    // Once: 201 with run `a`, which lives in another session than the one asked for.
    expect(b.status, b.text).toBe(409);
  });
});

describe("CLI against a server", () => {
  it("`outpost runs ls --limit 500` works: the help promises 1 to 1000", async () => {
    // Once: `error: query.limit: must be <= 200`, `hint: check the query parameters against
    // GET /openapi.json`, exit 1 — the CLI passes its own limit straight to the API's 1..200.
    const res = await runCli(["runs", "ls", "--limit", "500", "--server", url]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
  });

  it("`outpost runs show` does not pass terminal control sequences from a run's input to the terminal", async () => {
    const spoof = "hi\u001b[2K\r\u001b[32mAPPROVED by admin\u001b[0m";
    const run = await start({ agent: "support", input: spoof });
    await waitForRun((id) => stack.outpost.getRun(id), run.body.id, terminal);
    const res = await runCli(["runs", "show", run.body.id, "--server", url]);
    expect(res.code).toBe(0);
    expect(res.stdout).not.toContain("\u001b"); // NO_COLOR is set by the harness: any ESC came from the input
  });
});

describe("CLI up", () => {
  it("`outpost up --host <bad address>` says which option is wrong, without pointing at a stack trace", async () => {
    const data = await mkdtemp(path.join(tmpdir(), "outpost-hostile-"));
    try {
      const res = await runCli(["up", "--project", SHOP, "--data", data, "--port", "0", "--host", "999.1.1.1"]);
      // Once: `error: getaddrinfo ENOTFOUND 999.1.1.1` + `(run with OUTPOST_DEBUG=1 for a stack trace)`.
      expect(res.code).not.toBe(0);
      expect(res.stderr).toContain("--host");
      expect(res.stderr).not.toContain("OUTPOST_DEBUG");
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  });
});

describe("run errors", () => {
  it('a model failure names the model once, not `model "assistant" failed: model "assistant" (…)`', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "outpost-hostile-"));
    const env: NodeJS.ProcessEnv = { ...process.env, OUTPOST_LLM_BASE_URL: "http://127.0.0.1:9/v1", OPENAI_API_KEY: "" };
    delete env.OUTPOST_DATABASE_URL;
    const outpost = await startOutpost({ project: await loadProject(SHOP, { env }), dataDir, env, pollMs: 50 });
    try {
      const run = await outpost.startRun({ agent: "support", input: "Where is order 1042?" });
      const done = await waitForRun((id) => outpost.getRun(id), run.id, terminal, 25_000);
      expect(done.status).toBe("failed");
      expect(done.error?.message.match(/model "assistant"/g)?.length, done.error?.message).toBe(1);
    } finally {
      await outpost.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
