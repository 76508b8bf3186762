/**
 * Event streams on any API node (PostgreSQL). Two API-only nodes behind real HTTP and one worker share a
 * database. A client follows a run over SSE on one node while it is started, approved and executed through
 * the other node and the worker: it sees every event, in order, to the end, and the stream equals the log.
 * The nodes' fallback poll is set beyond the test's waits, so what the client saw came by the commits'
 * notifications (NOTIFY outpost_events), not by polling.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { createClient } from "../../src/client/index.js";
import type { EventView } from "../../src/core/api.js";
import type { ToolDefinition } from "../../src/definitions/types.js";
import { createScriptedClient } from "../../src/models/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { createServer, listen } from "../../src/server/index.js";
import { approverKeyOf, TEST_ADMIN_KEY } from "../helpers/auth.js";
import { until } from "../helpers/until.js";
import { newDataDir, project } from "../runtime/fixtures.js";
import { createTestDatabase, listenersOn, terminateBackend } from "./database.js";

const db = await createTestDatabase("outpost_streams");
const POLL_MS = 120_000;

const refund: ToolDefinition = {
  name: "refund",
  description: "Refund an order.",
  input: z.object({ order: z.string() }),
  approval: "required",
  handler: async ({ input }) => ({ refunded: input.order }),
};

describe.skipIf(!db.reachable)("SSE on any API node (PostgreSQL)", () => {
  const closers: (() => Promise<unknown>)[] = [];
  // Each test's nodes are gone before the next starts: the second counts the connections listening for commits.
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  });
  afterAll(() => db.drop());

  /** Two API-only nodes and a worker on one database; a refund run started through node one, followed on node two. */
  async function cluster() {
    const model = createScriptedClient("m", (req) =>
      req.messages.some((m) => m.role === "tool") ? "Refunded." : { toolCalls: [{ name: "refund", arguments: { order: "42" } }] },
    );
    const env = { ...process.env, OUTPOST_ADMIN_KEY: TEST_ADMIN_KEY };
    const common = { project: project([refund]), databaseUrl: db.url, env, modelFor: () => model, streamPollMs: POLL_MS };
    const node = async (): Promise<{ outpost: Outpost; url: string }> => {
      const outpost = await startOutpost({ ...common, dataDir: newDataDir(), concurrency: 0 });
      const server = await createServer(outpost, { version: "test" });
      closers.push(() => server.close());
      return { outpost, url: await listen(server, { host: "127.0.0.1", port: 0 }) };
    };
    const [one, two] = [await node(), await node()];
    const worker = await startOutpost({ ...common, dataDir: newDataDir(), pollMs: 200 });
    closers.push(() => worker.close());
    // The requester may not approve their own request: an operator does, through node one.
    await one.outpost.security.identities.store.adoptKey("test", approverKeyOf(TEST_ADMIN_KEY), {
      name: "operator",
      roles: ["operator"],
      createdBy: "test",
    });
    const viaOne = createClient(one.url, { apiKey: TEST_ADMIN_KEY });
    const operator = createClient(one.url, { apiKey: approverKeyOf(TEST_ADMIN_KEY) });
    const viaTwo = createClient(two.url, { apiKey: TEST_ADMIN_KEY });

    const run = await viaOne.startRun({ agent: "clerk", input: "refund order 42" });
    const seen: EventView[] = [];
    const following = (async () => {
      for await (const e of viaTwo.streamEvents(run.id)) seen.push(e);
    })();
    await until(
      "the refund to ask for approval, seen on node two",
      async () => (seen.some((e) => e.type === "approval.requested") ? true : null),
      15_000,
    );
    const approve = async () => {
      const [approval] = await operator.listApprovals({ status: "pending" });
      await operator.decideApproval(approval.id, { decision: "approve" });
    };
    const ended = () =>
      Promise.race([following, new Promise((_, reject) => setTimeout(() => reject(new Error("the stream did not end")), 20_000))]);
    return { run, seen, approve, ended, log: () => viaOne.getEvents(run.id) };
  }

  it("a client on one node follows a run started, approved and executed elsewhere, by notification", async () => {
    const c = await cluster();
    await c.approve();
    await c.ended();

    expect(c.seen.at(-1)?.type).toBe("run.completed");
    const log = await c.log();
    expect(c.seen.map((e) => [e.seq, e.type])).toEqual(log.map((e) => [e.seq, e.type]));
    expect(c.seen.map((e) => e.type)).toEqual(expect.arrayContaining(["approval.decided", "tool.completed"]));
  }, 90_000);

  it("what was committed while the node's LISTEN connection was down reaches its streams once it is back", async () => {
    const c = await cluster();
    // Node two's connection dies (a restart, a failover) and the run finishes before it listens again (a second
    // later): no notification of those commits reaches it, and its poll is minutes away. Only node two streams, so
    // only it listens for commits.
    const [pid, ...others] = await listenersOn(db.url, "outpost_events");
    expect(others).toEqual([]);
    expect(pid).toBeDefined();
    await terminateBackend(db.url, pid);
    await c.approve();
    await c.ended();

    expect(c.seen.at(-1)?.type).toBe("run.completed");
    expect(c.seen.map((e) => [e.seq, e.type])).toEqual((await c.log()).map((e) => [e.seq, e.type]));
    expect(await listenersOn(db.url, "outpost_events")).not.toContain(pid); // it was a new connection that heard
  }, 90_000);
});
