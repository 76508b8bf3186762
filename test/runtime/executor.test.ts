/**
 * The executor against the real SQLite store: cancels that race with a model
 * call, tool failures and timeouts fed back to the model, shutdown handing
 * a run back, and the model's failures ending a run clearly.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { Project, ToolDefinition } from "../../src/definitions/types.js";
import { createScriptedClient, type ModelClient, ModelError, type ModelRequest } from "../../src/models/index.js";
import { startOutpost } from "../../src/runtime/index.js";
import { finish, outposts, project, start } from "./fixtures.js";

/** A model whose next answer the test releases by hand. */
function gatedModel(answers: Array<{ tool?: string; args?: unknown; text?: string }>) {
  let release: (() => void) | null = null;
  let entered: (() => void) | null = null;
  const enteredOnce = new Promise<void>((r) => {
    entered = r;
  });
  let turn = 0;
  const inner = createScriptedClient("m", (req: ModelRequest) => {
    const a = answers[Math.min(turn++, answers.length - 1)];
    void req;
    return a.tool ? { toolCalls: [{ name: a.tool, arguments: JSON.stringify(a.args ?? {}) }] } : (a.text ?? "done");
  });
  const client: ModelClient = {
    ...inner,
    alias: "m",
    provider: "scripted",
    modelId: "scripted",
    location: "local",
    price: inner.price,
    async generate(req) {
      entered?.();
      await new Promise<void>((r) => {
        release = r;
      });
      return inner.generate(req);
    },
  };
  return { client, entered: enteredOnce, release: () => release?.() };
}

afterEach(async () => {
  await Promise.all(outposts.splice(0).map((o) => o.close()));
});

describe("executor", () => {
  it("refuses a second embedded Outpost on the same data folder, in this process too", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "outpost-exec-data-"));
    const p = project([]);
    const model = createScriptedClient("m", { dialogues: [{ turns: [{ text: "hi" }] }] });
    const first = await startOutpost({ project: p, dataDir, modelFor: () => model });
    outposts.push(first);
    await expect(startOutpost({ project: p, dataDir, modelFor: () => model })).rejects.toMatchObject({ code: "conflict" });
    await first.close();
    const again = await startOutpost({ project: p, dataDir, modelFor: () => model });
    outposts.push(again);
    expect((await again.health()).status).toBe("ok");
  });

  it("a cancel that arrives through the store during a model call stops the run before the tool runs", async () => {
    let refunds = 0;
    const refund: ToolDefinition = {
      name: "pay.refund",
      description: "refund",
      input: z.object({}),
      handler: () => {
        refunds++;
        return "refunded";
      },
    };
    const gate = gatedModel([{ tool: "pay.refund" }, { text: "done" }]);
    const o = await start(project([refund]), gate.client);
    const run = await o.startRun({ agent: "clerk", input: "refund it" });
    await gate.entered;
    // As another API node would: straight to the store, no in-process signal.
    await o.store.applyExternal("test", { kind: "cancel", runId: run.id, reason: "customer withdrew" });
    gate.release();
    const done = await finish(o, run.id);
    expect(done.status).toBe("cancelled");
    expect(done.error?.message).toBe("customer withdrew");
    expect(refunds).toBe(0);
    const types = (await o.getEvents(run.id)).map((e) => e.type);
    expect(types).not.toContain("tool.completed");
    expect(types.at(-1)).toBe("run.cancelled");
  });

  it("a cancel that arrives with the commit that makes the run wait still ends it", async () => {
    const gate = gatedModel([{ tool: "wait.for_event", args: { name: "parcel.arrived" } }]);
    const o = await start(project([]), gate.client);
    const run = await o.startRun({ agent: "clerk", input: "wait for the parcel" });
    await gate.entered;
    await o.store.applyExternal("test", { kind: "cancel", runId: run.id, reason: "no longer needed" });
    gate.release();
    const done = await finish(o, run.id);
    expect(done.status).toBe("cancelled");
  });

  it("an external event delivered while a tool runs is merged into the log; the tool is not run again", async () => {
    let calls = 0;
    let entered: () => void = () => undefined;
    const inTool = new Promise<void>((r) => {
      entered = r;
    });
    let finishTool: () => void = () => undefined;
    const pay: ToolDefinition = {
      name: "pay.send",
      description: "pays",
      input: z.object({}),
      handler: async () => {
        calls++;
        entered();
        await new Promise<void>((r) => {
          finishTool = r;
        });
        return "paid";
      },
    };
    const script = createScriptedClient("m", {
      dialogues: [
        {
          turns: [
            { tool_calls: [{ name: "pay.send", args: {} }] },
            { tool_calls: [{ name: "wait.for_event", args: { name: "bank.confirmed" } }] },
            { text: "paid and confirmed: ${last_tool_result.payload.ref}" },
          ],
        },
      ],
    });
    const o = await start(project([pay]), script);
    const run = await o.startRun({ agent: "clerk", input: "pay" });
    await inTool;
    // Arrives before the run waits for it: buffered in the log, consumed by the later wait.
    await o.sendEvent(run.id, { name: "bank.confirmed", payload: { ref: "B-7" } });
    finishTool();
    const done = await finish(o, run.id);
    expect(done.status).toBe("completed");
    expect(done.output).toBe("paid and confirmed: B-7");
    expect(calls).toBe(1);
    const types = (await o.getEvents(run.id)).map((e) => e.type);
    expect(types.filter((t) => t === "tool.completed")).toHaveLength(2);
    expect(types.indexOf("event.received")).toBeLessThan(types.indexOf("tool.completed"));
    expect(types).not.toContain("run.waiting"); // the event was already there when the wait began
  });

  it("a tool that throws or times out gives the model an error result, and the run goes on", async () => {
    const flaky: ToolDefinition = {
      name: "crm.flaky",
      description: "fails",
      input: z.object({}),
      handler: () => {
        throw new Error("CRM is down for maintenance");
      },
    };
    const slow: ToolDefinition = {
      name: "crm.slow",
      description: "hangs",
      input: z.object({}),
      timeoutMs: 50,
      handler: () => new Promise(() => undefined),
    };
    const script = createScriptedClient("m", {
      dialogues: [
        { turns: [{ tool_calls: [{ name: "crm.flaky", args: {} }] }, { tool_calls: [{ name: "crm.slow", args: {} }] }, { text: "sorry" }] },
      ],
    });
    const o = await start(project([flaky, slow]), script);
    const run = await o.startRun({ agent: "clerk", input: "look it up" });
    const done = await finish(o, run.id);
    expect(done.status).toBe("completed");
    const results = (await o.getEvents(run.id)).filter((e) => e.type === "tool.completed").map((e) => e.data);
    expect(results[0]).toMatchObject({ is_error: true, output: "error: crm.flaky failed: CRM is down for maintenance" });
    expect(results[1]).toMatchObject({ is_error: true, output: "error: crm.slow did not finish within 50 ms" });
  });

  it("an agent whose model has no usable candidate fails its run with what to set", async () => {
    const p = project([]);
    p.models.set("m", {
      name: "m",
      candidates: [
        {
          provider: "openai",
          model: "gpt-x",
          requiresEnv: ["ACME_TEST_OPENAI_KEY"],
          location: "external",
          price: { inputPerMTok: 0, outputPerMTok: 0 },
          timeoutMs: 1000,
          maxRetries: 0,
        },
      ],
    });
    const o = await startOutpost({ project: p, dataDir: mkdtempSync(join(tmpdir(), "outpost-exec-data-")), env: {} });
    outposts.push(o);
    const run = await o.startRun({ agent: "clerk", input: "hi" });
    const done = await finish(o, run.id);
    expect(done.status).toBe("failed");
    expect(done.error?.code).toBe("model_unavailable");
    expect(done.error?.message).toContain("ACME_TEST_OPENAI_KEY");
  });

  it("a model that fails after its retries ends the run with the reason", async () => {
    const broken: ModelClient = {
      alias: "m",
      provider: "openai-compatible",
      modelId: "x",
      location: "local",
      price: { inputPerMTok: 0, outputPerMTok: 0 },
      generate: async () => {
        throw new ModelError('model "m" (openai-compatible x): 401 Unauthorized — check OUTPOST_LLM_API_KEY', "auth", false);
      },
    };
    const o = await start(project([]), broken);
    const run = await o.startRun({ agent: "clerk", input: "hi" });
    const done = await finish(o, run.id);
    expect(done.status).toBe("failed");
    expect(done.error).toEqual({
      code: "model_auth",
      message: 'model "m" (openai-compatible x): 401 Unauthorized — check OUTPOST_LLM_API_KEY',
    });
  });

  it("on shutdown a run in flight is handed back and finishes in the next process, its tool applied once", async () => {
    const applied = new Set<string>();
    let calls = 0;
    const book: ToolDefinition = {
      name: "hotel.book",
      description: "books",
      input: z.object({}),
      handler: ({ idempotencyKey }) => {
        calls++;
        applied.add(idempotencyKey);
        return "booked";
      },
    };
    const dataDir = mkdtempSync(join(tmpdir(), "outpost-exec-data-"));
    const gate = gatedModel([{ tool: "hotel.book" }, { text: "booked it" }]);
    const p = project([book]);
    const first = await startOutpost({ project: p, dataDir, modelFor: () => gate.client });
    const run = await first.startRun({ agent: "clerk", input: "book" });
    await gate.entered;
    await first.close(); // the model call is aborted; nothing more is committed
    expect((await startOutpostRead(p, dataDir, run.id)).status).toBe("running");

    const script = createScriptedClient("m", {
      dialogues: [{ turns: [{ tool_calls: [{ name: "hotel.book", args: {} }] }, { text: "booked it" }] }],
    });
    const second = await startOutpost({ project: p, dataDir, modelFor: () => script });
    outposts.push(second);
    const done = await finish(second, run.id);
    expect(done.status).toBe("completed");
    expect(calls).toBe(1);
    expect(applied.size).toBe(1);
  });
});

/** Reads a run through a short-lived Outpost that executes nothing. */
async function startOutpostRead(p: Project, dataDir: string, id: string) {
  const o = await startOutpost({ project: p, dataDir, concurrency: 0 });
  try {
    return await o.getRun(id);
  } finally {
    await o.close();
  }
}
