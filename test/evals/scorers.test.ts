/**
 * The scorers, each passing and failing, over records of real runs: test/fixtures/shop on the runtime (scripted
 * model, SQLite), with a policy that forbids ticket notes — a lookup, a refund a person approves, a note policy
 * denies. The judge goes through the model layer (an in-code scripted model); custom scorers are real TypeScript
 * modules loaded like the project's own. Then the comparison with a baseline.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EventView, isTerminal, type RunTreeView, type RunView } from "../../src/core/api.js";
import { loadProject } from "../../src/definitions/index.js";
import {
  type CaseRecord,
  type CaseResult,
  compareModels,
  compareWithBaseline,
  customScore,
  deepEqual,
  judgeCase,
  loadCustomScorers,
  recordCase,
  runCustomScorer,
  type SuiteResult,
  scoreBudget,
  scoreOutput,
  scorePolicy,
  scoreState,
  scoreStatus,
  scoreTools,
  subset,
  valueAt,
} from "../../src/evals/index.js";
import type { EvalCase, JudgeSpec, ToolExpectation } from "../../src/evals/suite.js";
import { createScriptedClient } from "../../src/models/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { SHOP } from "../cli/harness.js";

const root = mkdtempSync(path.join(tmpdir(), "outpost-scorers-"));
let outpost: Outpost;
let lookup: CaseRecord;
let refund: CaseRecord;
let note: CaseRecord;

const flatten = (t: RunTreeView): RunView[] => [t.run, ...t.children.flatMap(flatten)];

/** Runs one input to the end, approving what it asks, and records it as an eval case would be. */
async function recorded(name: string, input: string): Promise<CaseRecord> {
  const run = await outpost.startRun({ agent: "support", input });
  for (let i = 0; !isTerminal((await outpost.getRun(run.id)).status); i++) {
    if (i > 400) throw new Error(`${name} did not finish`);
    for (const a of await outpost.listApprovals({ status: "pending" }))
      await outpost.decideApproval(a.id, { decision: "approve", by: "tester" });
    await new Promise((r) => setTimeout(r, 25));
  }
  const runs = flatten(await outpost.getRunTree(run.id));
  const events = new Map<string, EventView[]>();
  for (const r of runs) events.set(r.id, await outpost.getEvents(r.id));
  return recordCase({ case: name, input, runs, events });
}

beforeAll(async () => {
  const project = await loadProject(SHOP);
  project.policies = [
    ...(project.policies ?? []),
    {
      file: "policies/no-notes.cedar",
      text: '@id("shop.no_notes")\nforbid (principal, action == Action::"tool.call", resource == Tool::"tickets.add_note");\n',
    },
  ];
  outpost = await startOutpost({ project, dataDir: path.join(root, "data"), triggerTicks: false });
  lookup = await recorded("lookup", "where is order 1042?");
  refund = await recorded("refund", "please refund order 1042");
  note = await recorded("note", "add a note to ticket 77: customer called back");
}, 60_000);

afterAll(async () => {
  await outpost?.close();
  rmSync(root, { recursive: true, force: true });
});

describe("the record of a run", () => {
  it("holds the calls the agent asked for with how each ended, the denials, approvals and usage", () => {
    expect(lookup.status).toBe("completed");
    expect(lookup.output).toBe("Order 1042 is shipped.");
    expect(lookup.tool_calls).toMatchObject([{ agent: "support", tool: "orders.lookup", arguments: { order_id: "1042" }, outcome: "ok" }]);
    expect(lookup.denials).toEqual([]);
    expect(lookup.usage.input_tokens).toBeGreaterThan(0);
    expect(lookup.models).toEqual(["scripted"]);
    expect(lookup.classification).toBe("confidential");

    expect(refund.tool_calls.map((c) => [c.tool, c.outcome])).toEqual([
      ["orders.lookup", "ok"],
      ["orders.refund", "ok"],
    ]);
    expect(refund.approvals).toEqual([{ tool: "orders.refund", decision: "approve" }]);

    expect(note.tool_calls).toMatchObject([{ tool: "tickets.add_note", outcome: "denied" }]);
    expect(note.denials).toEqual([
      { run_id: note.runs[0].id, agent: "support", action: "tool.call", resource: 'Tool::"tickets.add_note"', policies: ["shop.no_notes"] },
    ]);
  });
});

describe("status", () => {
  it("passes on the expected end and fails on another, saying how the run ended", () => {
    expect(scoreStatus("completed", lookup)).toMatchObject({ scorer: "status", pass: true, score: 1 });
    const failed = scoreStatus("failed", lookup);
    expect(failed).toMatchObject({ pass: false, score: 0, detail: "expected failed, the run completed" });
  });
});

describe("output", () => {
  it("exact, contains (any case), not_contains, regex", () => {
    expect(scoreOutput({ exact: "  Order 1042 is shipped.\n" }, lookup).pass).toBe(true);
    expect(scoreOutput({ exact: "Order 1042 is delivered." }, lookup)).toMatchObject({
      pass: false,
      detail: 'expected exactly "Order 1042 is delivered.", got "Order 1042 is shipped."',
    });
    expect(scoreOutput({ contains: ["ORDER 1042", "shipped"] }, lookup)).toMatchObject({ pass: true, score: 1 });
    const half = scoreOutput({ contains: ["1042", "tracking"] }, lookup);
    expect(half).toMatchObject({ pass: false, score: 0.5, detail: 'does not contain "tracking": "Order 1042 is shipped."' });
    expect(scoreOutput({ notContains: ["refund"] }, lookup).pass).toBe(true);
    expect(scoreOutput({ notContains: ["SHIPPED"] }, lookup).pass).toBe(false);
    expect(scoreOutput({ regex: "^Order \\d+ is (shipped|delivered)\\.$" }, lookup).pass).toBe(true);
    expect(scoreOutput({ regex: "^Refund" }, lookup)).toMatchObject({
      pass: false,
      detail: 'does not match /^Refund/: "Order 1042 is shipped."',
    });
  });

  it("json_schema: the answer (fenced or not) parsed and checked; text that is not JSON fails", () => {
    const schema = { type: "object", required: ["status"], properties: { status: { enum: ["shipped", "delivered"] } } };
    const json = { ...lookup, output: '```json\n{"status": "shipped"}\n```' };
    expect(scoreOutput({ jsonSchema: schema }, json).pass).toBe(true);
    const wrong = scoreOutput({ jsonSchema: schema }, { ...lookup, output: '{"status": "lost"}' });
    expect(wrong.pass).toBe(false);
    expect(wrong.detail).toMatch(/^does not match the JSON Schema: status: /);
    expect(scoreOutput({ jsonSchema: schema }, lookup).detail).toBe('the answer is not JSON: "Order 1042 is shipped."');
  });

  it("fails every check when the run gave no answer", () => {
    expect(scoreOutput({ contains: ["x"] }, { ...lookup, output: null, status: "failed" })).toMatchObject({
      pass: false,
      detail: "the run failed without an answer",
    });
  });
});

describe("tools", () => {
  const tools = (t: Partial<ToolExpectation>): ToolExpectation => ({ calls: [], ordered: false, notCalled: [], ...t });

  it("expected calls with argument subsets, a count, and the agent that made them", () => {
    const ok = scoreTools(tools({ calls: [{ tool: "orders.refund", args: { order_id: "1042" }, times: 1, agent: "support" }] }), refund);
    expect(ok).toMatchObject({ pass: true, score: 1 });
    const wrongArgs = scoreTools(tools({ calls: [{ tool: "orders.lookup", args: { order_id: "1043" } }] }), lookup);
    expect(wrongArgs.pass).toBe(false);
    expect(wrongArgs.detail).toBe(
      'expected orders.lookup {"order_id":"1043"}, never called like that (called: support: {"order_id":"1042"})',
    );
    expect(scoreTools(tools({ calls: [{ tool: "orders.lookup", times: 2 }] }), refund).detail).toMatch(
      /^expected orders.lookup 2 times, called once/,
    );
    expect(scoreTools(tools({ calls: [{ tool: "orders.lookup", agent: "billing" }] }), lookup).pass).toBe(false);
  });

  it("in order or not, and tools that must not be called", () => {
    const calls = [{ tool: "orders.lookup" }, { tool: "orders.refund" }];
    expect(scoreTools(tools({ calls, ordered: true }), refund).pass).toBe(true);
    const reversed = scoreTools(tools({ calls: [...calls].reverse(), ordered: true }), refund);
    expect(reversed).toMatchObject({ pass: false, score: 2 / 3 });
    expect(reversed.detail).toMatch(
      /not in the expected order \(orders\.refund → orders\.lookup\): the calls were orders\.lookup → orders\.refund/,
    );
    expect(scoreTools(tools({ calls: [...calls].reverse() }), refund).pass).toBe(true);
    expect(scoreTools(tools({ notCalled: ["orders.refund"] }), lookup).pass).toBe(true);
    expect(scoreTools(tools({ notCalled: ["orders.refund"] }), refund)).toMatchObject({
      pass: false,
      detail: "orders.refund was called once",
    });
  });
});

describe("policy", () => {
  it("compliant: no action the agent attempted was denied", () => {
    // The lookup's log holds policy decisions too (allows): only denials count.
    expect(lookup.events.some((e) => e.type === "policy.decided")).toBe(true);
    expect(scorePolicy({ compliant: true }, lookup).pass).toBe(true);
    expect(scorePolicy({ compliant: true }, note)).toMatchObject({
      pass: false,
      detail: 'policy denied support: tool.call Tool::"tickets.add_note" (shop.no_notes)',
    });
  });

  it("denied: the expected policy refused, and nothing else did", () => {
    expect(scorePolicy({ denied: ["shop.no_notes"] }, note).pass).toBe(true);
    expect(scorePolicy({ denied: ["shop.no_notes"] }, lookup)).toMatchObject({
      pass: false,
      detail: "expected a denial by shop.no_notes, there was none",
    });
    expect(scorePolicy({ denied: ["shop.other"] }, note).detail).toMatch(/also denied support: tool\.call Tool::"tickets\.add_note"/);
  });
});

describe("budget", () => {
  it("cost, tokens and latency within their limits, or over", () => {
    expect(scoreBudget({ maxUsd: 0, maxTokens: 1_000_000, maxLatencyMs: 60_000 }, refund)).toMatchObject({ pass: true, score: 1 });
    // The refund waited for its approval: it took some milliseconds.
    expect(refund.latency_ms).toBeGreaterThan(0);
    const over = scoreBudget({ maxUsd: 1, maxTokens: 10, maxLatencyMs: refund.latency_ms - 1 }, refund);
    expect(over).toMatchObject({ pass: false, score: 1 / 3 });
    expect(over.detail).toMatch(/^usage \d+ tokens over the budget of 10 tokens; latency [\d.]+ s over the budget of [\d.]+ s$/);
  });
});

describe("end state", () => {
  const result = {
    refunded: 14.95,
    invoice: {
      lines: [
        { sku: "A", quantity: 1 },
        { sku: "B", quantity: 2 },
      ],
    },
  };

  it("equals at a path, or matches a subset (lists in any order)", () => {
    const checks = [
      { tool: "ledger.find", args: { order_id: "1" }, path: "refunded", equals: 14.95 },
      { tool: "ledger.find", args: {}, matches: { invoice: { lines: [{ sku: "B" }] } } },
      { tool: "ledger.find", args: {}, path: "invoice.lines.1.quantity", equals: 2 },
    ];
    expect(
      scoreState(
        checks,
        checks.map(() => ({ ok: true as const, value: result })),
      ),
    ).toMatchObject({ pass: true, score: 1 });
  });

  it("fails on another value, a missing path or a tool that failed, saying what it found", () => {
    const checks = [
      { tool: "ledger.find", args: { order_id: "1" }, path: "refunded", equals: 0 },
      { tool: "ledger.find", args: {}, path: "credits", equals: 0 },
      { tool: "ledger.find", args: {}, matches: { invoice: { lines: [{ sku: "C" }] } } },
      { tool: "ledger.find", args: {}, equals: {} },
    ];
    const readings = [
      ...checks.slice(0, 3).map(() => ({ ok: true as const, value: result })),
      { ok: false as const, error: "ledger is down" },
    ];
    const s = scoreState(checks, readings);
    expect(s).toMatchObject({ pass: false, score: 0 });
    const details = s.detail.split("; ");
    expect(details[0]).toBe('ledger.find {"order_id":"1"} → refunded: expected 0, found 14.95');
    expect(details[1]).toMatch(/^ledger\.find \{\} → credits: the result has no credits/);
    expect(details[2]).toMatch(/expected to match \{"invoice":\{"lines":\[\{"sku":"C"\}\]\}\}/);
    expect(details[3]).toBe("ledger.find {}: ledger is down");
  });

  it("subset, equality and paths on JSON", () => {
    expect(subset({ a: [1, 2] }, { a: [2, 3, 1], b: 0 })).toBe(true);
    expect(subset({ a: [1, 1] }, { a: [1, 2] })).toBe(false);
    expect(subset({ a: "1" }, { a: 1 })).toBe(false);
    expect(deepEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toBe(true);
    expect(deepEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(valueAt({ a: [{ b: null }] }, "a.0.b")).toEqual({ found: true, value: null });
    expect(valueAt({ a: [] }, "a.0")).toEqual({ found: false });
  });
});

describe("judge", () => {
  const spec: JudgeSpec = { model: "judge", rubric: "Says where the order is.", minScore: 0.7 };
  // A scripted judge: it reads the answer at the end of the prompt, as a real one would read the whole of it.
  const judge = createScriptedClient("judge", (request) => {
    const prompt = request.messages.at(-1)?.content ?? "";
    expect(request.agent).toBe("eval.judge");
    expect(prompt).toMatch(/^Rubric:\nSays where the order is\.\n\nInput:\n[\s\S]*\n\nTools called:\n[\s\S]*\n\nAnswer:\n/);
    return /Answer:\n.*shipped/.test(prompt)
      ? '{"score": 0.9, "reason": "It says the order shipped."}'
      : '{"score": 0.2, "reason": "No whereabouts."}';
  });

  it("passes at or above the bar, fails below it, with the judge's reason", async () => {
    expect(await judgeCase(spec, lookup, judge)).toEqual({
      scorer: "judge",
      pass: true,
      score: 0.9,
      detail: "0.90 ≥ 0.7: It says the order shipped.",
    });
    expect(await judgeCase(spec, refund, judge)).toEqual({
      scorer: "judge",
      pass: false,
      score: 0.2,
      detail: "0.20 < 0.7: No whereabouts.",
    });
  });

  it("fails on an answer that is not a verdict, and does not send restricted data to an external model", async () => {
    const rambling = createScriptedClient("judge", () => "Looks fine to me!");
    expect(await judgeCase(spec, lookup, rambling)).toMatchObject({
      pass: false,
      detail: 'the judge did not answer {"score", "reason"}: "Looks fine to me!"',
    });
    const external = createScriptedClient("judge", () => '{"score": 1}', { location: "external" });
    expect(await judgeCase(spec, { ...lookup, classification: "restricted" }, external)).toMatchObject({
      pass: false,
      detail: 'the run touched restricted data and judge model "judge" is external: use an alias with location: local',
    });
  });
});

describe("custom scorers", () => {
  const evalCase = { name: "lookup" } as EvalCase;

  it("a TypeScript module's default export scores the record; one that throws fails the case, saying so", async () => {
    const file = path.join(root, "mentions-order.ts");
    writeFileSync(
      file,
      `import type { CustomScorer } from "outpost";
const scorer = ((record, { options }) => {
  const wanted: string = (options as { order: string }).order;
  const found = (record.output ?? "").includes(wanted);
  return { pass: found, score: found ? 1 : 0, detail: found ? "mentions " + wanted : "no " + wanted };
}) satisfies CustomScorer;
export default scorer;
`,
    );
    const thrower = path.join(root, "thrower.ts");
    writeFileSync(thrower, 'export default () => { throw new Error("no idea"); };\n');
    const loaded = await loadCustomScorers([
      { name: "mentions", path: file },
      { name: "thrower", path: thrower },
    ]);
    const run = (options: unknown) => runCustomScorer({ name: "mentions", path: file, options }, loaded.get(file)!, lookup, evalCase);
    expect(await run({ order: "1042" })).toEqual({ scorer: "custom:mentions", pass: true, score: 1, detail: "mentions 1042" });
    expect(await run({ order: "1043" })).toEqual({ scorer: "custom:mentions", pass: false, score: 0, detail: "no 1043" });
    expect(await runCustomScorer({ name: "thrower", path: thrower }, loaded.get(thrower)!, lookup, evalCase)).toEqual({
      scorer: "custom:thrower",
      pass: false,
      score: 0,
      detail: "threw: no idea",
    });
  });

  it("a module without a default function stops the suite; a return that is not a score fails", async () => {
    const file = path.join(root, "not-a-scorer.ts");
    writeFileSync(file, "export const x = 1;\n");
    await expect(loadCustomScorers([{ name: "x", path: file }])).rejects.toThrow(/must export a function by default/);
    expect(customScore("x", true)).toMatchObject({ pass: true, score: 1 });
    expect(customScore("x", { score: 1 })).toMatchObject({
      pass: false,
      detail: 'returned {"score":1}; a scorer returns { pass, score?, detail? }',
    });
  });
});

describe("comparison with a baseline", () => {
  const caseResult = (name: string, pass: boolean): CaseResult => ({
    name,
    agent: "a",
    pass,
    score: pass ? 1 : 0,
    status: "completed",
    output: "",
    error: null,
    cost_usd: 0,
    input_tokens: 10,
    output_tokens: 5,
    latency_ms: 100,
    models: ["scripted"],
    scores: [{ scorer: "output", pass, score: pass ? 1 : 0, detail: pass ? "ok" : 'does not contain "x"' }],
  });
  const result = (cases: CaseResult[], model: string | null = null): SuiteResult => {
    const passed = cases.filter((c) => c.pass).length;
    return {
      version: 1,
      suite: "s",
      file: "evals/s.yaml",
      workspace: "w",
      agent: "a",
      model,
      definition_sha256: "d",
      policies_sha256: "p",
      partial: false,
      started_at: "2026-01-01T00:00:00.000Z",
      finished_at: "2026-01-01T00:00:01.000Z",
      totals: {
        cases: cases.length,
        passed,
        pass_rate: passed / cases.length,
        cost_usd: 0.01,
        input_tokens: 10,
        output_tokens: 5,
        latency_ms: 100,
      },
      cases,
      warnings: [],
    };
  };

  it("without a baseline, the gate passes only when every case did", () => {
    expect(compareWithBaseline(result([caseResult("a", true)]), null)).toMatchObject({ gate_passed: true, baseline: null });
    expect(compareWithBaseline(result([caseResult("a", true), caseResult("b", false)]), null)).toMatchObject({
      gate_passed: false,
      summary: "no baseline yet, and 1 of 2 cases failed: b",
    });
  });

  it("a case that passed in the baseline and fails now is a regression; failures the baseline accepted are not", () => {
    const baseline = result([caseResult("a", true), caseResult("b", false), caseResult("c", true)]);
    const same = compareWithBaseline(result([caseResult("a", true), caseResult("b", false), caseResult("c", true)]), baseline);
    expect(same).toMatchObject({ gate_passed: true, regressions: [] });
    const worse = compareWithBaseline(result([caseResult("a", true), caseResult("b", true), caseResult("c", false)]), baseline);
    expect(worse).toMatchObject({ gate_passed: false, regressions: [{ case: "c", detail: 'output: does not contain "x"' }], fixed: ["b"] });
    expect(worse.summary).toBe("regression: 1 case passed in the baseline and fails now (2/3 passed)");
  });

  it("a pass rate below the baseline's is a regression, even with no case regressing (a new case that fails)", () => {
    const baseline = result([caseResult("a", true)]);
    const c = compareWithBaseline(result([caseResult("a", true), caseResult("new", false)], "fast"), baseline);
    expect(c).toMatchObject({ gate_passed: false, regressions: [], added: ["new"], pass_rate: { now: 0.5, baseline: 1 } });
    expect(c.summary).toBe("regression: pass rate 50% is below the baseline's 100% (1/2 passed)");
    expect(c.notes).toEqual(["the baseline ran on each agent's own model, this run on fast"]);
  });

  it("a run of some cases is compared with the same cases of the baseline", () => {
    const baseline = result([caseResult("a", true), caseResult("b", false)]);
    expect(compareWithBaseline(result([caseResult("a", true)]), baseline)).toMatchObject({
      gate_passed: true,
      removed: ["b"],
      pass_rate: { baseline: 1 },
    });
  });

  it("models side by side", () => {
    expect(compareModels([result([caseResult("a", true)], "big"), result([caseResult("a", false)], "small")])).toEqual([
      { model: "big", cases: 1, passed: 1, pass_rate: 1, cost_usd: 0.01, tokens: 15, latency_ms: 100 },
      { model: "small", cases: 1, passed: 0, pass_rate: 0, cost_usd: 0.01, tokens: 15, latency_ms: 100 },
    ]);
  });
});
