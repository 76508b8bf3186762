/**
 * A call whose outcome is unknown (its system went away while it had the call) is never reported to the
 * model as failed: it is retried with the same idempotency key — at once a few times, then after visible
 * waits that hold nothing — and the run fails with tool_outcome_unknown only after the last wait.
 */
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { ToolDefinition } from "../../src/definitions/types.js";
import { createScriptedClient } from "../../src/models/index.js";
import { ToolOutcomeUnknown } from "../../src/tools/source.js";
import { finish, outposts, project, start } from "./fixtures.js";

afterEach(async () => {
  await Promise.all(outposts.splice(0).map((o) => o.close()));
});

const retry = { delaysMs: [5, 5], firstWaitMs: 50, maxWaits: 2 };

/** A payment system that loses its answer `failures` times, then answers; it records every key it saw. */
function flakyBank(failures: number, sideEffects = true) {
  const keys: string[] = [];
  const tool: ToolDefinition = {
    name: "bank.pay",
    description: "pay",
    input: z.object({ amount: z.number() }),
    sideEffects,
    handler: ({ input, idempotencyKey }) => {
      keys.push(idempotencyKey);
      if (keys.length <= failures)
        throw new ToolOutcomeUnknown("bank: the MCP server exited (code 1) during the call; Outpost is reconnecting");
      return `paid ${input.amount}`;
    },
  };
  return { tool, keys };
}

const model = () =>
  createScriptedClient("m", {
    dialogues: [{ turns: [{ tool_calls: [{ name: "bank.pay", args: { amount: 40 } }] }, { text: "done: ${last_tool_result}" }] }],
  });

describe("calls whose outcome is unknown", () => {
  it("are retried with the same key — at once, then after a wait — and the model sees only the result", async () => {
    const bank = flakyBank(4); // 3 attempts at once fail, one wait, then the 4th retry fails again, then it answers
    const o = await start(project([bank.tool]), model(), { outcomeRetry: retry, pollMs: 20 });
    const run = await finish(o, (await o.startRun({ agent: "clerk", input: "pay 40" })).id);
    expect(run.status).toBe("completed");
    expect(new Set(bank.keys).size).toBe(1); // one key, every attempt
    expect(bank.keys.length).toBe(5);
    const events = await o.getEvents(run.id);
    expect(events.filter((e) => e.type === "tool.called")).toHaveLength(1);
    expect(events.filter((e) => e.type === "tool.completed").map((e) => e.data)).toEqual([
      { call_id: expect.any(String), tool: "bank.pay", output: "paid 40", is_error: false, classification: "internal" },
    ]);
    const wait = events.find((e) => e.type === "run.waiting");
    expect(wait?.data).toMatchObject({ for: { kind: "timer", retry: "bank.pay" } });
    expect(events.some((e) => e.type === "run.resumed" && e.data.reason === "retrying bank.pay")).toBe(true);
  });

  it("end the run as tool_outcome_unknown after the last wait, naming the key to check — never as a tool error the model could redo", async () => {
    const bank = flakyBank(1_000);
    const o = await start(project([bank.tool]), model(), { outcomeRetry: retry, pollMs: 20 });
    const run = await finish(o, (await o.startRun({ agent: "clerk", input: "pay 40" })).id, 20_000);
    expect(run.status).toBe("failed");
    expect(run.error?.code).toBe("tool_outcome_unknown");
    expect(run.error?.message).toContain(`idempotency key ${bank.keys[0]}`);
    expect(new Set(bank.keys).size).toBe(1);
    const events = await o.getEvents(run.id);
    expect(events.filter((e) => e.type === "tool.completed")).toEqual([]);
    expect(events.filter((e) => e.type === "run.waiting")).toHaveLength(2);
  });

  it("on a read-only tool are simply reported: nothing could have been applied twice", async () => {
    const bank = flakyBank(1, false);
    const o = await start(project([bank.tool]), model(), { outcomeRetry: retry, pollMs: 20 });
    const run = await finish(o, (await o.startRun({ agent: "clerk", input: "pay 40" })).id);
    expect(run.status).toBe("completed");
    expect(bank.keys).toHaveLength(1);
    const done = (await o.getEvents(run.id)).find((e) => e.type === "tool.completed");
    expect(done?.data).toMatchObject({ is_error: true, output: expect.stringContaining("during the call") });
  });
});
