/**
 * Cancel must not be lost: once the store has recorded a cancel, no further side effect may start.
 */
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { ToolDefinition } from "../../src/definitions/types.js";
import { createScriptedClient } from "../../src/models/index.js";
import { startOutpost } from "../../src/runtime/index.js";
import { finish, newDataDir, outposts, project } from "./fixtures.js";

afterEach(async () => {
  await Promise.all(outposts.splice(0).map((o) => o.close()));
});

describe("cancel across a takeover", () => {
  it("a cancel recorded while a worker held the run is honoured by the next owner before it re-runs the tool", async () => {
    let calls = 0;
    let entered: () => void = () => undefined;
    const inTool = new Promise<void>((r) => {
      entered = r;
    });
    const refund: ToolDefinition = {
      name: "pay.refund",
      description: "refund",
      input: z.object({}),
      handler: async ({ context }) => {
        calls++;
        if (calls > 1) return "refunded";
        entered();
        // Honours its signal (as tools should): a shutdown aborts it before it commits anything.
        await new Promise<void>((_, reject) => context.signal.addEventListener("abort", () => reject(context.signal.reason)));
        return "refunded";
      },
    };
    const script = createScriptedClient("m", {
      dialogues: [{ turns: [{ tool_calls: [{ name: "pay.refund", args: {} }] }, { text: "done" }] }],
    });
    const p = project([refund]);
    const dataDir = newDataDir();
    const first = await startOutpost({ project: p, dataDir, modelFor: () => script });
    const run = await first.startRun({ agent: "clerk", input: "refund it" });
    await inTool;
    // Another API node asks to cancel: the run is leased, so the store records cancel_requested.
    const r = await first.store.applyExternal("test", { kind: "cancel", runId: run.id, reason: "customer withdrew" });
    expect(r.run.cancelRequested).toBe("customer withdrew");
    await first.close(); // graceful shutdown: the tool is aborted, the run handed back
    expect(calls).toBe(1);

    const second = await startOutpost({ project: p, dataDir, modelFor: () => script });
    outposts.push(second);
    const done = await finish(second, run.id);
    expect(done.status).toBe("cancelled");
    // Today the next owner runs the refund again before it learns of the cancel at its next commit.
    expect(calls).toBe(1);
  });
});
