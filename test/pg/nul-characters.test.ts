/**
 * PostgreSQL: text with a NUL character (U+0000), which SQLite
 * stores and PostgreSQL refuses. Skipped when PostgreSQL is unreachable
 * (OUTPOST_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test).
 * Each test pins a defect found in review.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import { createScriptedClient } from "../../src/models/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { createServer, listen } from "../../src/server/index.js";
import { authorizeFetchTo, TEST_ADMIN_KEY } from "../helpers/auth.js";
import { http, SHOP, terminal, waitForRun } from "../server/helpers.js";
import { createTestDatabase } from "./database.js";

const db = await createTestDatabase("outpost_nul");
const databaseUrl = db.url;

describe.skipIf(!db.reachable)("NUL characters on PostgreSQL", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "outpost-nul-pg-"));
  let outpost: Outpost;
  let server: Awaited<ReturnType<typeof createServer>>;
  let url: string;

  beforeAll(async () => {
    const project = await loadProject(SHOP);
    // "nul" answers with a NUL in the text (a real LLM or a copy-pasted input can carry one).
    const nulModel = createScriptedClient("assistant", () => ({ text: "before\u0000after" }));
    outpost = await startOutpost({
      project,
      dataDir,
      databaseUrl,
      pollMs: 50,
      leaseMs: 2_000,
      env: { ...process.env, OPENAI_API_KEY: "", OUTPOST_LLM_BASE_URL: "", OUTPOST_ADMIN_KEY: TEST_ADMIN_KEY },
      modelFor: () => nulModel,
    });
    server = await createServer(outpost, { version: "test" });
    url = await listen(server, { host: "127.0.0.1", port: 0 });
    authorizeFetchTo(url);
  });
  afterAll(async () => {
    await server?.close(); // closes the runtime too
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("POST /v1/runs with a NUL in input is a 4xx naming the field, not a 500 internal error", async () => {
    // Once: 500 {"error":{"code":"internal",…}} and the server log holds a DatabaseError
    // "invalid byte sequence for encoding UTF8: 0x00". SQLite accepts the same request (201).
    const res = await http(url, "POST", "/v1/runs", { body: { agent: "support", input: "order\u00001042" } });
    expect(res.status, res.text).toBeGreaterThanOrEqual(400);
    expect(res.status, res.text).toBeLessThan(500);
  });

  it("GET /v1/runs/{id} with a NUL in the id is a 404 (or 400), not a 500", async () => {
    const res = await http(url, "GET", "/v1/runs/run_x%00y");
    expect(res.status, res.text).toBeLessThan(500);
  });

  it("a model answer containing NUL does not leave the run stuck in `running`, calling the model again every lease", async () => {
    // Once: committing run.completed fails ("invalid byte sequence"), the scheduler logs an
    // error, the lease expires, the model is called again, forever; the run never ends.
    const run = await outpost.startRun({ agent: "support", input: "hello" });
    const done = await waitForRun((id) => outpost.getRun(id), run.id, terminal, 8_000);
    expect(["completed", "failed"]).toContain(done.status);
  });
});
