/**
 * Workflows on PostgreSQL with two processes sharing the database: eight runs of a workflow that loops over tool
 * steps, runs two branches side by side, waits for an approval decided through the other process, and emits an event
 * that starts a subscriber workflow. Every run completes, every step is applied once per key whichever process ran it,
 * and each emission starts its subscriber once.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createScriptedClient } from "../../src/models/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { localCaller } from "../../src/security/identity/index.js";
import { until } from "../helpers/until.js";
import { finish, project } from "../runtime/fixtures.js";
import { applied, tool, withWorkflows } from "../workflows/fixtures.js";
import { createTestDatabase } from "./database.js";

const db = await createTestDatabase("outpost_workflows");
const RUNS = 8;

describe.skipIf(!db.reachable)("workflows on PostgreSQL, two processes", () => {
  const open: Outpost[] = [];
  afterAll(async () => {
    await Promise.all(open.map((o) => o.close()));
    await db.drop();
  });

  it("runs every step once across both processes, approvals decided in either, subscribers started once", async () => {
    const p = withWorkflows(
      project([tool("post"), tool("note")]),
      {
        name: "close",
        steps: [
          { id: "each", for_each: "{{ input.entries }}", as: "entry", do: [{ id: "post", tool: "post", arguments: { i: "{{ entry }}" } }] },
          {
            id: "both",
            parallel: [[{ id: "left", tool: "post", arguments: { i: 100 } }], [{ id: "right", tool: "post", arguments: { i: 101 } }]],
          },
          { id: "ok", approval: { message: "Close {{ input.n }}?" } },
          { id: "tell", emit: { event: "ledger.closed", payload: { n: "{{ input.n }}" } } },
        ],
        output: "{{ $count(steps.each.output) }} posted",
      },
      { name: "archive", on_events: ["ledger.closed"], steps: [{ id: "file", tool: "note", arguments: { n: "{{ input.n }}" } }] },
    );
    const model = createScriptedClient("m", () => "unused");
    for (let i = 0; i < 2; i++) {
      open.push(
        await startOutpost({
          project: p,
          dataDir: mkdtempSync(join(tmpdir(), "outpost-pg-workflows-")),
          databaseUrl: db.url,
          modelFor: () => model,
          pollMs: 50,
        }),
      );
    }
    const [a, b] = open;
    const ids: string[] = [];
    for (let n = 0; n < RUNS; n++) {
      const o = n % 2 === 0 ? a : b;
      ids.push((await o.startWorkflowAs(localCaller("test"), "close", { input: { n, entries: [1, 2, 3, 4] } })).id);
    }
    const approvals = await until(
      "every run to wait for its approval",
      async () => {
        const pending = await a.listApprovals({ status: "pending" });
        return pending.length === RUNS ? pending : null;
      },
      60_000,
    );
    // Decided through the process that did not run it, most likely: the run resumes wherever it is claimed.
    for (const [i, ap] of approvals.entries()) await (i % 2 === 0 ? b : a).decideApproval(ap.id, { decision: "approve", by: "lead" });
    for (const id of ids) {
      const r = await finish(a, id, 60_000);
      expect(r.status, JSON.stringify(r.error)).toBe("completed");
      expect(r.output).toBe("4 posted");
    }
    const archives = await until(
      "each emission's subscriber to finish",
      async () => {
        const runs = (await b.listRuns({ agent: "workflow:archive", limit: 100 })).items;
        return runs.length === RUNS && runs.every((r) => r.status === "completed") ? runs : null;
      },
      60_000,
    );
    expect(archives).toHaveLength(RUNS);

    const posts = applied.filter((x) => x.tool === "post");
    expect(posts).toHaveLength(RUNS * 6);
    expect(new Set(posts.map((x) => x.key)).size).toBe(RUNS * 6);
    const notes = applied.filter((x) => x.tool === "note").map((x) => (x.input as { n: number }).n);
    expect(notes.sort((x, y) => x - y)).toEqual(Array.from({ length: RUNS }, (_, i) => i));
    for (const id of ids) {
      const events = await b.getEvents(id);
      for (const [i, e] of events.entries()) expect(e.seq).toBe(i + 1);
      const done = events.filter((e) => e.type === "step.completed").map((e) => e.data.path as string);
      expect(new Set(done).size).toBe(done.length);
    }
  }, 120_000);
});
