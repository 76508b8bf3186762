/**
 * Bounded context windows, in real runs (SQLite store, scripted model): every prompt a model is sent fits its
 * window — counted here independently, with the model's own tokenizer — over a 1,000-turn session and a
 * 1,000-call run; older turns are folded into a running summary recorded in the log; a tool output larger than
 * the window is stored as an artifact and never reaches a prompt whole; a prompt that cannot fit is never sent.
 */
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { EventView } from "../../src/core/api.js";
import type { AgentContextSettings, ToolDefinition } from "../../src/definitions/types.js";
import { type ChatMessage, createScriptedClient, type ModelRequest, type ScriptSource } from "../../src/models/index.js";
import { readsData } from "../../src/models/scripted/client.js";
import { MESSAGE_OVERHEAD } from "../../src/models/tokens.js";
import {
  type HistoryEntry,
  PromptMeter,
  planCompaction,
  truncateToTokens,
  unsummarised,
  windowShares,
} from "../../src/runtime/context-window.js";
import type { Outpost } from "../../src/runtime/index.js";
import { finish, outposts, project, start } from "./fixtures.js";

afterEach(async () => {
  await Promise.all(outposts.splice(0).map((o) => o.close()));
});

/** The prompt's tokens as the model's tokenizer (o200k) counts them: the messages, and the tool specs offered. */
function promptTokens(req: ModelRequest): number {
  let n = countTokens(JSON.stringify(req.tools));
  for (const m of req.messages) {
    n += MESSAGE_OVERHEAD + countTokens(m.content);
    if (m.role === "assistant" && m.toolCalls?.length) n += countTokens(JSON.stringify(m.toolCalls));
    if (m.role === "tool") n += countTokens(m.toolName);
  }
  return n;
}

const answerShare = (window: number) => Math.min(4_096, Math.floor(window / 4));

const counter = (log: number[]): ToolDefinition => ({
  name: "ledger.add",
  description: "Adds an amount to the ledger and returns the running total",
  input: z.object({ n: z.number().int() }),
  sideEffects: false,
  handler: ({ input }) => {
    log.push(input.n);
    return { added: input.n, note: `entry ${input.n} booked against account 4711 for the month-end reconciliation` };
  },
});

async function open(
  script: ScriptSource,
  window: number,
  options: { tools?: ToolDefinition[]; context?: Partial<AgentContextSettings>; instructions?: string; maxSteps?: number } = {},
) {
  const requests: ModelRequest[] = [];
  const p = project(options.tools ?? [], { maxSteps: options.maxSteps ?? 20, maxTokens: 100_000_000, maxUsd: 1_000 });
  const clerk = p.agents.get("clerk");
  if (!clerk) throw new Error("no clerk");
  if (options.instructions) clerk.instructions = options.instructions;
  clerk.context = { compaction: "auto", keepRecent: 8, ...options.context };
  const client = createScriptedClient(
    "m",
    typeof script === "function"
      ? (req) => {
          requests.push(req);
          return script(req);
        }
      : script,
    { contextWindow: window },
  );
  const recording: typeof client = {
    ...client,
    alias: client.alias,
    provider: client.provider,
    modelId: client.modelId,
    location: client.location,
    price: client.price,
    contextWindow: window,
    generate: (req) => {
      if (typeof script !== "function") requests.push(req);
      return client.generate(req);
    },
  };
  const o = await start(p, recording);
  return { o, requests };
}

const eventsOf = async (o: Outpost, runId: string, type: string): Promise<EventView[]> =>
  (await o.getEvents(runId)).filter((e) => e.type === type);

describe("context windows: the parts of a prompt", () => {
  const t = (m: ChatMessage) => MESSAGE_OVERHEAD + countTokens(m.content);
  const entry = (message: ChatMessage, index: number, pinned = false): HistoryEntry => ({
    message,
    sessionSeq: null,
    index,
    ...(pinned ? { pinned } : {}),
  });

  it("folds the oldest turns, keeps the input and the latest turns, and never splits a tool call from its result", () => {
    const entries: HistoryEntry[] = [entry({ role: "user", content: "Reconcile the refunds of November." }, 0, true)];
    for (let i = 0; i < 40; i++) {
      entries.push(
        entry({ role: "assistant", content: "", toolCalls: [{ id: `c${i}`, name: "ledger.add", arguments: `{"n":${i}}` }] }, 1 + 2 * i),
      );
      entries.push(
        entry({ role: "tool", toolCallId: `c${i}`, toolName: "ledger.add", content: `booked entry ${i} of the month` }, 2 + 2 * i),
      );
    }
    const total = entries.reduce((n, e) => n + t(e.message), 0);
    const plan = planCompaction(entries, Math.floor(total / 2), 6, t, null);
    expect(plan).not.toBeNull();
    if (!plan) return;
    expect(plan.keep[0].pinned).toBe(true);
    expect(plan.keep[1].message.role).toBe("assistant"); // the first kept turn starts with its call
    expect(plan.keep.length).toBeGreaterThanOrEqual(6);
    const keptTokens = plan.keep.reduce((n, e) => n + t(e.message), 0);
    expect(keptTokens).toBeLessThanOrEqual(Math.floor(total / 4) + t(plan.keep[1].message) + t(plan.keep[2].message));
    expect(plan.fold.some((e) => e.pinned)).toBe(false);
    expect(plan.fold.length + plan.keep.length).toBe(entries.length);
    expect(plan.through).toEqual({ sessionSeq: null, messages: plan.fold[plan.fold.length - 1].index! + 1 });
    // What the summary then stands for is left out of later prompts; the input stays.
    const left = unsummarised(entries, plan.through);
    expect(left.map((e) => e.index)).toEqual(plan.keep.map((e) => e.index));
  });

  it("folds whole earlier runs of the session, never half of one", () => {
    const entries: HistoryEntry[] = [];
    for (let s = 1; s <= 10; s++) {
      entries.push({ message: { role: "user", content: `question ${s} about order ${1000 + s}` }, sessionSeq: s });
      entries.push({ message: { role: "assistant", content: `answer ${s}: order ${1000 + s} shipped on day ${s}` }, sessionSeq: s });
    }
    entries.push(entry({ role: "user", content: "and the last one?" }, 0, true));
    for (let share = 40; share < 200; share += 7) {
      const plan = planCompaction(entries, share, 2, t, null);
      if (!plan) continue;
      const seqs = new Set(plan.keep.filter((e) => e.sessionSeq !== null).map((e) => e.sessionSeq));
      for (const s of seqs) expect(plan.keep.filter((e) => e.sessionSeq === s)).toHaveLength(2);
      expect(plan.through.sessionSeq).toBe(Math.max(...plan.fold.map((e) => e.sessionSeq ?? 0)));
    }
  });

  it("has no room when the instructions and tools take the window", () => {
    const settings = { compaction: "auto", keepRecent: 8 } as const;
    expect(windowShares(4_096, 3_500, 0, settings)).toBeNull();
    const shares = windowShares(16_384, 1_000, 500, settings);
    expect(shares).not.toBeNull();
    if (!shares) return;
    expect(shares.answer + 1_000 + 500 + shares.summary + shares.history).toBeLessThanOrEqual(16_384);
    expect(windowShares(16_384, 1_000, 500, { ...settings, historyTokens: 2_000 })?.history).toBe(2_000);
  });

  it("cuts a summary that came back too long to its budget, by tokens", () => {
    const text = "The refund of order 105708 was approved by the controller on 3 November. ".repeat(200);
    const cut = truncateToTokens(text, 300, countTokens);
    expect(countTokens(cut)).toBeLessThanOrEqual(300);
    expect(countTokens(cut)).toBeGreaterThan(250);
    expect(truncateToTokens("short", 300, countTokens)).toBe("short");
  });

  it("counts only when the byte bound is over the limit, and the bound is never below the count", () => {
    const meter = new PromptMeter({ name: "o200k_base", count: countTokens });
    const messages: ChatMessage[] = [
      { role: "user", content: "Grüße aus Zürich — 東京への出荷は遅れています。" },
      { role: "assistant", content: "", toolCalls: [{ id: "a", name: "orders.get", arguments: '{"id":105708}' }] },
    ];
    const exact = messages.reduce((n, m) => n + meter.message(m), 0);
    const bound = messages.reduce((n, m) => n + PromptMeter.bound(m), 0);
    expect(bound).toBeGreaterThanOrEqual(exact);
    expect(meter.messages(messages, bound)).toBe(bound);
    expect(meter.messages(messages, bound - 1)).toBe(exact);
  });
});

describe("context windows in runs", () => {
  it("keeps every prompt of a 1,000-turn session within the window, folding older turns into a summary", async () => {
    const window = 2_048;
    const { o, requests } = await open((req) => {
      if (req.purpose === "compaction") return scriptedSummary(req);
      const input = [...req.messages].reverse().find((m) => m.role === "user")?.content ?? "";
      return `Noted: ${input} The parcel is with the carrier and the customer has been told when it will arrive.`;
    }, window);
    const first = await o.startRun({ agent: "clerk", input: "Turn 1: order 100001 for customer 1001 left the warehouse." });
    await finish(o, first.id);
    const session = first.session_id;
    const runs = [first.id];
    for (let i = 2; i <= 1_000; i++) {
      const r = await o.startRun({
        agent: "clerk",
        session_id: session,
        input: `Turn ${i}: order ${100_000 + i} for customer ${1_000 + (i % 97)} left the warehouse.`,
      });
      const done = await finish(o, r.id);
      expect(done?.status).toBe("completed");
      runs.push(r.id);
    }
    const turns = requests.filter((r) => r.purpose !== "compaction");
    expect(turns).toHaveLength(1_000);
    const limit = window - answerShare(window);
    for (const req of requests) expect(promptTokens(req)).toBeLessThanOrEqual(limit);
    // Compaction happened, more than once, and each summary stands for later runs than the one before.
    const compactions = (await Promise.all(runs.map((id) => eventsOf(o, id, "context.compacted")))).flat();
    expect(compactions.length).toBeGreaterThan(5);
    const through = compactions.map((e) => (e.data as { through: { session_seq: number } }).through.session_seq);
    expect(through).toEqual([...through].sort((a, b) => a - b));
    expect(through[through.length - 1]).toBeGreaterThan(900);
    // The latest turns are word for word; the summary is in the system message.
    const last = turns[turns.length - 1];
    expect(last.messages[0].content).toContain("Summary of the earlier conversation");
    expect(last.messages.some((m) => m.role === "assistant" && m.content.includes("Turn 999:"))).toBe(true);
    // model.called records what was counted, and it agrees with the independent count.
    const called = await eventsOf(o, runs[runs.length - 1], "model.called");
    const recorded = (called[0].data as { prompt_tokens: number; context_window: number }).prompt_tokens;
    expect((called[0].data as { context_window: number }).context_window).toBe(window);
    expect(Math.abs(recorded - promptTokens(last))).toBeLessThanOrEqual(Math.max(8, recorded * 0.02));
  }, 180_000);

  it("keeps a 1,000-call run within the window and stays on its script across compactions", async () => {
    const window = 4_096;
    const booked: number[] = [];
    const { o, requests } = await open(
      (req) => {
        if (req.purpose === "compaction") return scriptedSummary(req);
        // Which call this is, from what the model can see: turns shown plus turns folded into the summary.
        const shown = req.messages.filter((m) => m.role === "assistant").length;
        const n = shown + (req.omittedTurns ?? 0);
        return n < 1_000 ? { toolCalls: [{ name: "ledger.add", arguments: { n: n + 1 } }] } : "All 1000 entries are booked.";
      },
      window,
      { tools: [counter(booked)], maxSteps: 2_100 },
    );
    const r = await o.startRun({ agent: "clerk", input: "Book the 1000 entries of the month, one call each." });
    const done = await finish(o, r.id, 120_000);
    expect(done?.status).toBe("completed");
    expect(done?.output).toBe("All 1000 entries are booked.");
    // Every entry once, in order: the model's view of its own progress survived every compaction.
    expect(booked).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 1));
    const limit = window - answerShare(window);
    for (const req of requests) expect(promptTokens(req)).toBeLessThanOrEqual(limit);
    const compactions = await eventsOf(o, r.id, "context.compacted");
    expect(compactions.length).toBeGreaterThan(3);
    // The input is pinned: still the first user message of the last prompt, word for word.
    const last = requests.filter((q) => q.purpose !== "compaction").at(-1) as ModelRequest;
    expect(last.messages.find((m) => m.role === "user")?.content).toBe("Book the 1000 entries of the month, one call each.");
  }, 180_000);

  it("keeps a YAML-scripted agent on its script when its turns are folded away", async () => {
    const booked: number[] = [];
    const turns = Array.from({ length: 40 }, (_, i) => ({ tool_calls: [{ name: "ledger.add", args: { n: i + 1 } }] }));
    const { o, requests } = await open({ dialogues: [{ turns: [...turns, { text: "Booked all forty." }] }] }, 2_048, {
      tools: [counter(booked)],
      maxSteps: 100,
      context: { keepRecent: 4 },
    });
    const r = await o.startRun({ agent: "clerk", input: "Book forty entries." });
    const done = await finish(o, r.id, 60_000);
    expect(done?.status).toBe("completed");
    expect(done?.output).toBe("Booked all forty.");
    expect(booked).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect((await eventsOf(o, r.id, "context.compacted")).length).toBeGreaterThan(0);
    // The built-in summariser wrote the summaries (a YAML script has none): extractive, within budget.
    const summaries = requests.filter((q) => q.purpose === "compaction");
    expect(summaries.length).toBeGreaterThan(0);
    for (const req of requests) expect(promptTokens(req)).toBeLessThanOrEqual(2_048 - answerShare(2_048));
  }, 60_000);

  it("stores a tool output larger than the window as an artifact; no prompt ever holds it whole", async () => {
    const huge = Array.from({ length: 4_000 }, (_, i) => `line ${i}: order ${200_000 + i} delivered to depot ${i % 13}`).join("\n");
    const dump: ToolDefinition = {
      name: "warehouse.dump",
      description: "Every delivery of the year",
      input: z.object({}),
      sideEffects: false,
      handler: () => huge,
    };
    const window = 8_192;
    const { o, requests } = await open(
      (req) => {
        if (req.purpose === "compaction") return scriptedSummary(req);
        return req.messages.some((m) => m.role === "tool")
          ? "The year's deliveries are in the artifact."
          : { toolCalls: [{ name: "warehouse.dump", arguments: {} }] };
      },
      window,
      { tools: [dump] },
    );
    expect(huge.length).toBeGreaterThan(150_000);
    const r = await o.startRun({ agent: "clerk", input: "Show me the year's deliveries." });
    expect((await finish(o, r.id))?.status).toBe("completed");
    const completed = (await eventsOf(o, r.id, "tool.completed"))[0].data as { output: string };
    const id = /artifact (art_[0-9a-f]+)/.exec(completed.output)?.[1];
    expect(id).toBeDefined();
    expect(countTokens(completed.output)).toBeLessThanOrEqual(window / 4);
    const artifact = await o.store.getArtifact("test", id as string);
    expect(artifact?.content).toBe(huge);
    for (const req of requests) {
      expect(promptTokens(req)).toBeLessThanOrEqual(window - answerShare(window));
      for (const m of req.messages) expect(m.content.includes(huge.slice(100_000, 100_200))).toBe(false);
    }
  });

  it("bounds a tool result by the window even when it is within max_tool_output", async () => {
    const text = "x".repeat(20) + " ".concat("Zürich Köln 東京 ".repeat(1_000));
    const tool: ToolDefinition = { name: "notes.read", description: "notes", input: z.object({}), sideEffects: false, handler: () => text };
    const { o } = await open(
      (req) => (req.messages.some((m) => m.role === "tool") ? "read" : { toolCalls: [{ name: "notes.read", arguments: {} }] }),
      4_096,
      { tools: [tool], context: { toolResultTokens: 500 } },
    );
    const r = await o.startRun({ agent: "clerk", input: "read the notes" });
    expect((await finish(o, r.id))?.status).toBe("completed");
    const out = ((await eventsOf(o, r.id, "tool.completed"))[0].data as { output: string }).output;
    expect(text.length).toBeLessThan(16_000);
    expect(countTokens(out)).toBeLessThanOrEqual(500);
    expect(out).toMatch(/artifact art_/);
  });

  it("never sends a prompt that cannot fit: instructions past the window fail the run, saying what to change", async () => {
    const { o, requests } = await open(() => "never", 2_048, { instructions: "Always be thorough. ".repeat(600) });
    const r = await o.startRun({ agent: "clerk", input: "hello" });
    const done = await finish(o, r.id);
    expect(done?.status).toBe("failed");
    expect(done?.error?.code).toBe("context_overflow");
    expect(done?.error?.message).toMatch(/instructions and tools take \d+ tokens/);
    expect(done?.error?.message).toMatch(/context_window/);
    expect(requests).toHaveLength(0);
  });

  it("with compaction off, fails when history outgrows the window instead of summarising", async () => {
    const { o, requests } = await open(
      (req) =>
        req.messages.filter((m) => m.role === "tool").length < 60 ? { toolCalls: [{ name: "ledger.add", arguments: { n: 1 } }] } : "done",
      2_048,
      { tools: [counter([])], maxSteps: 200, context: { compaction: "off" } },
    );
    const r = await o.startRun({ agent: "clerk", input: "book" });
    const done = await finish(o, r.id, 30_000);
    expect(done?.status).toBe("failed");
    expect(done?.error?.code).toBe("context_overflow");
    expect(done?.error?.message).toMatch(/compaction: off/);
    expect(requests.every((q) => q.purpose !== "compaction")).toBe(true);
    for (const req of requests) expect(promptTokens(req)).toBeLessThanOrEqual(2_048 - answerShare(2_048));
  });

  it("a later run of the session starts from the summary an earlier run wrote", async () => {
    const window = 2_048;
    const script = (req: ModelRequest) =>
      req.purpose === "compaction" ? scriptedSummary(req) : `Noted ${[...req.messages].reverse().find((m) => m.role === "user")?.content}`;
    const { o, requests } = await open(script, window);
    const first = await o.startRun({ agent: "clerk", input: "Customer 1042 prefers refunds to store credit, always." });
    await finish(o, first.id);
    let compactedIn: string | null = null;
    for (let i = 0; i < 200 && !compactedIn; i++) {
      const r = await o.startRun({
        agent: "clerk",
        session_id: first.session_id,
        input: `Filler turn ${i} about parcel ${i} at the depot.`,
      });
      await finish(o, r.id);
      if ((await eventsOf(o, r.id, "context.compacted")).length > 0) compactedIn = r.id;
    }
    expect(compactedIn).not.toBeNull();
    const next = await o.startRun({ agent: "clerk", session_id: first.session_id, input: "What does customer 1042 prefer?" });
    await finish(o, next.id);
    // The next run wrote no summary of its own: it inherited the earlier one, which carries the first turn.
    expect(await eventsOf(o, next.id, "context.compacted")).toHaveLength(0);
    const prompt = requests.at(-1) as ModelRequest;
    expect(prompt.messages[0].content).toContain("Summary of the earlier conversation");
    expect(prompt.messages[0].content).toContain("Customer 1042 prefers refunds");
    expect(prompt.messages.slice(1).some((m) => m.content.includes("Customer 1042 prefers refunds"))).toBe(false);
    expect(promptTokens(prompt)).toBeLessThanOrEqual(window - answerShare(window));
  }, 120_000);
});

/** A test's summariser, as the built-in scripted one: the first words of each folded turn, the earliest line kept
 * and the middle dropped when over budget. */
function scriptedSummary(req: ModelRequest): string {
  const asked = req.messages[req.messages.length - 1].content;
  const lines = asked
    .split("\n")
    .filter((l) => l.startsWith("["))
    .map((l) => readsData(l).slice(0, 80));
  const max = req.maxOutputTokens ?? 500;
  while (lines.length > 2 && Buffer.byteLength(lines.join("\n")) > max) lines.splice(1, 1);
  return lines.join("\n").slice(0, max);
}
