/**
 * The runtime end to end on PostgreSQL: the Acme support agent looks up an
 * order, asks for a refund, waits for approval across a restart, completes.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { createTestDatabase } from "./database.js";

const db = await createTestDatabase("outpost_rt");
const url = db.url;

describe.skipIf(!db.reachable)("runtime on PostgreSQL", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "outpost-pg-rt-"));
  let outpost: Outpost;
  const start = async () => startOutpost({ project: await loadProject("test/fixtures/shop"), dataDir, databaseUrl: url, pollMs: 100 });

  beforeAll(async () => {
    outpost = await start();
  });
  afterAll(async () => {
    await outpost?.close();
    await db.drop();
  });

  const finish = async (id: string) => {
    for await (const e of outpost.streamEvents(id)) void e;
    return outpost.getRun(id);
  };

  it("runs an agent to completion with every step in the log", async () => {
    expect(outpost.storeKind).toBe("postgres");
    const run = await outpost.startRun({ agent: "support", input: "Where is order 1042?" });
    const done = await finish(run.id);
    expect(done.status).toBe("completed");
    expect(done.output).toContain("1042");
    const types = (await outpost.getEvents(run.id)).map((e) => e.type);
    expect(types[0]).toBe("run.started");
    expect(types).toContain("tool.called");
    expect(types.at(-1)).toBe("run.completed");
  });

  it("waits for an approval across a restart, then completes once", async () => {
    const run = await outpost.startRun({ agent: "support", input: "Please refund order 1042" });
    for await (const e of outpost.streamEvents(run.id)) if (e.type === "run.waiting") break;
    await outpost.close();
    outpost = await start();
    const waiting = await outpost.getRun(run.id);
    expect(waiting.status).toBe("waiting");
    const [approval] = (await outpost.listApprovals({ status: "pending" })).filter((a) => a.run_id === run.id);
    expect(approval.tool).toBe("orders.refund");
    await outpost.decideApproval(approval.id, { decision: "approve", reason: "ok", by: "test" });
    const done = await finish(run.id);
    expect(done.status).toBe("completed");
    const refunds = readFileSync(join(dataDir, "acme", "refunds.jsonl"), "utf8")
      .trim()
      .split("\n");
    expect(refunds.filter((l) => l.includes(run.id))).toHaveLength(1);
    await expect(outpost.decideApproval(approval.id, { decision: "deny" })).rejects.toMatchObject({ code: "conflict" });
  });
});
