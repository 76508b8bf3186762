/**
 * LISTEN/NOTIFY on PostgreSQL: an API-only process (no workers) and a worker process that polls only once a minute
 * share the database. A run started through the API process is taken by the worker at once, woken by the database's
 * notification, not by its poll; so is a run resumed by an approval decided there. When the worker's LISTEN
 * connection is killed (a restart, a failover), it connects again and is woken as before.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { ToolDefinition } from "../../src/definitions/types.js";
import { createScriptedClient } from "../../src/models/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { until } from "../helpers/until.js";
import { finish, project } from "../runtime/fixtures.js";
import { createTestDatabase, listenersOn, terminateBackend } from "./database.js";

const db = await createTestDatabase("outpost_notify");
/** Far beyond every wait below: a run these tests see finish was woken by a notification. */
const POLL_MS = 120_000;

const refund: ToolDefinition = {
  name: "refund",
  description: "Refund an order.",
  input: z.object({ order: z.string() }),
  approval: "required",
  handler: async ({ input }) => ({ refunded: input.order }),
};

describe.skipIf(!db.reachable)("LISTEN/NOTIFY wakes idle workers on PostgreSQL", () => {
  const open: Outpost[] = [];
  afterAll(async () => {
    await Promise.all(open.map((o) => o.close()));
    await db.drop();
  });

  it("a run started, or approved, through another process is taken at once; a lost LISTEN connection comes back", async () => {
    const model = createScriptedClient("m", (req) => {
      const input = String(req.messages.find((m) => m.role === "user")?.content);
      if (!input.startsWith("refund")) return "Noted.";
      return req.messages.some((m) => m.role === "tool") ? "Refunded." : { toolCalls: [{ name: "refund", arguments: { order: "42" } }] };
    });
    const p = project([refund]);
    const common = { project: p, databaseUrl: db.url, modelFor: () => model };
    const api = await startOutpost({ ...common, dataDir: mkdtempSync(join(tmpdir(), "outpost-pg-api-")), concurrency: 0 });
    open.push(api);
    const worker = await startOutpost({ ...common, dataDir: mkdtempSync(join(tmpdir(), "outpost-pg-worker-")), pollMs: POLL_MS });
    open.push(worker);
    // The worker's first look (at start) is behind it: from now on only a notification (or a poll, minutes away) wakes it.
    await until("the worker to listen", async () => ((await listenersOn(db.url, "outpost_work")).length > 0 ? true : null), 10_000);

    const first = await api.startRun({ agent: "clerk", input: "note this" });
    expect((await finish(api, first.id, 15_000)).output).toBe("Noted.");

    const asked = await api.startRun({ agent: "clerk", input: "refund order 42" });
    await until("the refund to wait for approval", async () => ((await api.getRun(asked.id)).status === "waiting" ? true : null), 15_000);
    const [approval] = await api.listApprovals({ status: "pending" });
    await api.decideApproval(approval.id, { decision: "approve", by: "lead" });
    expect((await finish(api, asked.id, 15_000)).output).toBe("Refunded.");

    // The LISTEN connection dies (as in a server restart); the worker connects again and is woken as before.
    const [pid] = await listenersOn(db.url, "outpost_work");
    await terminateBackend(db.url, pid);
    await until("the worker to listen again", async () => {
      const now = await listenersOn(db.url, "outpost_work");
      return now.length > 0 && !now.includes(pid) ? true : null;
    });
    const after = await api.startRun({ agent: "clerk", input: "note that" });
    expect((await finish(api, after.id, 15_000)).output).toBe("Noted.");
  }, 90_000);
});
