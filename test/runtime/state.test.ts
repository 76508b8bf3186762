/** The fold: replaying a log gives the state decide() reads. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ev, type NewEvent, type RunEvent } from "../../src/core/events.js";
import type { AgentDefinition, ToolDefinition } from "../../src/definitions/types.js";
import { type Action, decide } from "../../src/runtime/decide.js";
import { apply, initialState, replay } from "../../src/runtime/state.js";

const RUN = "run_s";
const T0 = 1_750_000_000_000;
const log = (...list: [NewEvent, number][]): RunEvent[] => list.map(([e, at], i) => ({ ...e, seq: i + 1, at }) as RunEvent);
const usage = (i: number, o: number) => ({ input_tokens: i, output_tokens: o });

describe("replay", () => {
  it("folds a log into messages, usage, steps and the pending calls", () => {
    const s = replay(
      RUN,
      log(
        [ev("run.started", { agent: "support", input: "hi", session_id: "ses_1" }), T0],
        [ev("model.called", { step: 1, model: "fast" }), T0 + 1],
        [
          ev("model.responded", {
            step: 1,
            text: "looking",
            tool_calls: [{ id: "c1", name: "orders.lookup", arguments: '{"id":1}' }],
            usage: usage(100, 10),
            cost_usd: 0.5,
            model: "m",
            finish_reason: "tool-calls",
          }),
          T0 + 2,
        ],
        [ev("tool.called", { call_id: "c1", tool: "orders.lookup", arguments: { id: 1 }, idempotency_key: "k1" }), T0 + 3],
        [ev("tool.completed", { call_id: "c1", tool: "orders.lookup", output: "shipped", is_error: false }), T0 + 4],
      ),
    );
    expect(s).toMatchObject({
      agent: "support",
      input: "hi",
      sessionId: "ses_1",
      steps: 2,
      modelCalls: 1,
      inputTokens: 100,
      outputTokens: 10,
      costUsd: 0.5,
      lastSeq: 5,
    });
    expect(s.calls).toEqual([
      {
        id: "c1",
        name: "orders.lookup",
        argumentsText: '{"id":1}',
        key: "k1",
        intentCommitted: true,
        arguments: { id: 1 },
        result: { output: "shipped", isError: false },
        decisions: [],
      },
    ]);
    expect(s.messages).toEqual([
      { role: "user", content: "hi" },
      { role: "assistant", content: "looking", toolCalls: [{ id: "c1", name: "orders.lookup", arguments: '{"id":1}' }] },
      { role: "tool", toolCallId: "c1", toolName: "orders.lookup", content: "shipped" },
    ]);
  });

  it("replaying and applying one by one give the same state", () => {
    const events = log(
      [ev("run.started", { agent: "a", input: "x", session_id: "s" }), T0 - 500], // queued half a second
      [ev("model.called", { step: 1, model: "m" }), T0],
      [ev("event.received", { name: "n", payload: { a: 1 } }), T0 + 5],
      [ev("run.waiting", { for: { kind: "timer", until: "2030-01-01T00:00:00.000Z" } }), T0 + 10],
      [ev("run.resumed", { reason: "timer" }), T0 + 1000],
    );
    const s = initialState(RUN);
    for (const e of events) apply(s, e);
    expect(s).toEqual(replay(RUN, events));
    expect(s.activeMs).toBe(10);
    expect(s.activeSince).toBe(T0 + 1000);
    expect(s.waiting).toBeNull();
    expect(s.inbox).toEqual([{ name: "n", payload: { a: 1 } }]);
  });

  it("terminal events set the outcome", () => {
    const base: [NewEvent, number] = [ev("run.started", { agent: "a", input: "x", session_id: "s" }), T0];
    expect(replay(RUN, log(base, [ev("run.completed", { output: "y" }), T0])).terminal).toEqual({ status: "completed", output: "y" });
    expect(replay(RUN, log(base, [ev("run.cancelled", { reason: "r" }), T0])).terminal).toEqual({
      status: "cancelled",
      error: { code: "cancelled", message: "r" },
    });
  });

  // KNOWN BUG (reported, src/runtime/state.ts): calls are matched by the model's call id only.
  // Providers pass ids through unchanged and some (OpenAI-compatible local servers, scripted
  // scripts with explicit ids) repeat them within one response. Both calls then get the same
  // idempotency key, the second call's intent/result land on the first, and decide() re-runs
  // the second call forever (until max_steps). Remove `.fails` once calls are keyed by position.
  it("two calls with the same id in one response each run exactly once, with distinct keys", () => {
    const agent: AgentDefinition = {
      name: "a",
      description: "",
      instructions: "",
      model: "fast",
      tools: [{ name: "mail.send" }],
      limits: {
        maxSteps: 50,
        maxTokens: 1e9,
        maxUsd: 100,
        maxWallTimeMs: 1e9,
        maxModelErrors: 3,
        maxDelegations: 10,
        maxDepth: 3,
        maxHandoffs: 5,
        maxToolOutput: 16_000,
      },
      delegates: [],
      handoffs: [],
      fanOut: "all",
      file: "a.yaml",
    };
    const tool: ToolDefinition = { name: "mail.send", description: "", input: z.object({ to: z.string() }), handler: () => "sent" };
    const tools = new Map([[tool.name, tool]]);
    const events: RunEvent[] = log(
      [ev("run.started", { agent: "a", input: "x", session_id: "s" }), T0],
      [ev("model.called", { step: 1, model: "fast" }), T0],
      [
        ev("model.responded", {
          step: 1,
          text: "",
          tool_calls: [
            { id: "call_0", name: "mail.send", arguments: '{"to":"alice"}' },
            { id: "call_0", name: "mail.send", arguments: '{"to":"bob"}' },
          ],
          usage: usage(1, 1),
          cost_usd: 0,
          model: "m",
          finish_reason: "tool-calls",
        }),
        T0,
      ],
    );
    const executed: { to: string; key: string }[] = [];
    for (let i = 0; i < 10; i++) {
      const a: Action = decide({ agent, tools, now: T0 }, replay(RUN, events));
      if (a.kind !== "call_tool") break;
      executed.push({ to: (a.args as { to: string }).to, key: a.call.key });
      const more: NewEvent[] = [
        ...(a.intent ? [a.intent] : []),
        ev("tool.completed", { call_id: a.call.id, tool: a.call.name, output: "sent", is_error: false }),
      ];
      for (const e of more) events.push({ ...e, seq: events.length + 1, at: T0 } as RunEvent);
    }
    expect(executed.map((e) => e.to)).toEqual(["alice", "bob"]);
    expect(new Set(executed.map((e) => e.key)).size).toBe(2);
  });
});
