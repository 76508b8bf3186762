/**
 * A suite run over Acme for real: the runtime on SQLite, the three business systems as MCP child processes, the
 * scripted model. Each case gets fresh copies of the systems (two cases issuing the same refund each find exactly
 * one), nothing reaches the project's own data folder, and nothing is left behind. Then the baseline gate: the
 * result is accepted, a script changes so that one case regresses, and the next run says so.
 */
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import type { Project } from "../../src/definitions/types.js";
import {
  acceptResult,
  compareWithBaseline,
  latestResult,
  loadSuite,
  readBaseline,
  runSuite,
  type Suite,
  type SuiteResult,
  saveResult,
} from "../../src/evals/index.js";
import { startOutpost } from "../../src/runtime/index.js";

const ACME = path.resolve(import.meta.dirname, "../../examples/acme");
const root = mkdtempSync(path.join(tmpdir(), "outpost-eval-run-"));
/** The project's own data folder, with its systems seeded: a suite run must leave it as it is. */
const realData = path.join(root, "real-data");
/** Where runSuite makes its throwaway folders (TMPDIR for the duration of the test). */
const scratch = path.join(root, "scratch");
const savedTmp = process.env.TMPDIR;

const SUITE = `
agent: refunds
expect: { policy: compliant }
cases:
  - name: refund_a
    input: "Refund the shipping fee of order 105708: the monitor arrived damaged."
    expect:
      tools: { calls: [{ tool: ledger.issue_refund, args: { amount: 14.95 }, times: 1 }] }
      state: [{ tool: ledger.find_invoice_for_order, args: { order_id: "105708" }, path: refunded, equals: 14.95 }]
  # The same refund again: on a system shared with refund_a the ledger would hold 29.90.
  - name: refund_b
    input: "Refund the shipping fee of order 105708: the monitor arrived damaged."
    history:
      - { role: user, content: "Hello, this is Maria Lopez." }
      - { role: assistant, content: "Hello Maria, how can I help?" }
    expect:
      state: [{ tool: ledger.find_invoice_for_order, args: { order_id: "105708" }, path: refunded, equals: 14.95 }]
    scorers: [{ custom: ./saw-history.ts }]
  - name: goodwill
    input: "Give a goodwill credit for the late delivery of order 105781, within policy."
    expect:
      tools: { calls: [{ tool: ledger.issue_goodwill_credit, args: { order_id: "105781", amount: 15 } }] }
      state: [{ tool: ledger.find_invoice_for_order, args: { order_id: "105781" }, path: goodwill_credited, equals: 15 }]
`;

const SAW_HISTORY = `
import type { CustomScorer } from "outpost";
// The agent was given the conversation before the input.
const scorer: CustomScorer = (record) => {
  const started = record.events.find((e) => e.type === "run.started");
  const turns = (started?.data.context as unknown[] | undefined)?.length ?? 0;
  return { pass: turns === 2, detail: \`\${turns} earlier turns\` };
};
export default scorer;
`;

let project: Project;
let suite: Suite;

/** Each database file of the systems in a data folder, by name, with its SHA-256. */
function systemsDigest(dataDir: string): Record<string, string> {
  const dir = path.join(dataDir, "acme");
  return Object.fromEntries(
    readdirSync(dir)
      .sort()
      .map((f) => [
        f,
        createHash("sha256")
          .update(readFileSync(path.join(dir, f)))
          .digest("hex"),
      ]),
  );
}

beforeAll(async () => {
  project = await loadProject(ACME);
  for (const c of project.connections.values()) if (c.kind === "mcp") c.connectTimeoutMs = 90_000;
  // The project's data folder as `outpost up` leaves it: its systems seeded.
  const outpost = await startOutpost({ project, dataDir: realData, concurrency: 0, triggerTicks: false });
  expect(outpost.connections().map((c) => c.state)).toEqual(["ready", "ready", "ready"]);
  await outpost.close();
  const suites = path.join(root, "evals");
  mkdirSync(suites);
  writeFileSync(path.join(suites, "refunds.yaml"), SUITE);
  writeFileSync(path.join(suites, "saw-history.ts"), SAW_HISTORY);
  suite = await loadSuite(project, path.join(suites, "refunds.yaml"));
  mkdirSync(scratch);
  process.env.TMPDIR = scratch;
}, 120_000);

afterAll(() => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  rmSync(root, { recursive: true, force: true });
});

describe("outpost eval run, over Acme", () => {
  let first: SuiteResult;

  it("runs every case on its own fresh copy of the systems, and leaves the project's data folder as it was", async () => {
    const before = systemsDigest(realData);
    expect(Object.keys(before)).toEqual(["helpdesk.db", "ledger.db", "warehouse.db"]);
    const finished: string[] = [];
    first = await runSuite({
      project,
      suite,
      concurrency: 2,
      onCase: ({ done, total, result }) => finished.push(`${done}/${total} ${result.name}`),
    });

    expect(first.cases.map((c) => [c.name, c.pass])).toEqual([
      ["refund_a", true],
      ["refund_b", true],
      ["goodwill", true],
    ]);
    expect(first.cases[1].scores.map((s) => s.scorer)).toEqual(["status", "policy", "state", "custom:saw-history"]);
    expect(first.cases[1].scores[3].detail).toBe("2 earlier turns");
    expect(first.totals).toMatchObject({ cases: 3, passed: 3, pass_rate: 1 });
    expect(first.cases.every((c) => c.input_tokens > 0 && c.models.includes("scripted"))).toBe(true);
    expect(finished.map((f) => f.split(" ")[0])).toEqual(["1/3", "2/3", "3/3"]);
    expect(first).toMatchObject({ suite: "refunds", agent: "refunds", workspace: "acme", model: null, partial: false, warnings: [] });
    expect(first.definition_sha256).toMatch(/^[0-9a-f]{64}$/);

    // Untouched, to the byte: no refund reached the project's own ledger.
    expect(systemsDigest(realData)).toEqual(before);
    const ledger = new Database(path.join(realData, "acme", "ledger.db"), { readonly: true });
    expect(ledger.prepare("SELECT COUNT(*) AS n FROM refunds").get()).toEqual({ n: 0 });
    ledger.close();
    // The seeded folder and every case's copy are gone (tsx keeps its compile cache there: not ours).
    expect(readdirSync(scratch).filter((f) => f.startsWith("outpost-eval-"))).toEqual([]);
  }, 120_000);

  it("stores the result, accepts it as the baseline, and sees the regression when a case breaks", async () => {
    const file = await saveResult(realData, first);
    expect(path.dirname(file)).toBe(path.join(realData, "evals", "refunds"));
    expect(compareWithBaseline(first, await readBaseline(realData, "refunds"))).toMatchObject({ baseline: null, gate_passed: true });
    await acceptResult(realData, file);
    const baseline = await readBaseline(realData, "refunds");
    expect(baseline?.accepted?.from).toBe(path.basename(file));

    // The refunds agent now gives 20.00 for a late delivery (still within policy, but not what the case expects).
    const scripts = path.join(root, "scripts");
    cpSync(project.scriptsDir, scripts, { recursive: true });
    const refunds = path.join(scripts, "refunds.yaml");
    const script = readFileSync(refunds, "utf8");
    expect(script).toContain("amount: 15.00");
    writeFileSync(refunds, script.replace("amount: 15.00", "amount: 20.00"));

    const second = await runSuite({ project: { ...project, scriptsDir: scripts }, suite, concurrency: 2 });
    await saveResult(realData, second);
    const goodwill = second.cases.find((c) => c.name === "goodwill");
    expect(goodwill?.pass).toBe(false);
    expect(goodwill?.scores.filter((s) => !s.pass).map((s) => s.scorer)).toEqual(["tools", "state"]);

    const comparison = compareWithBaseline(second, baseline);
    expect(comparison.gate_passed).toBe(false);
    expect(comparison.regressions.map((r) => r.case)).toEqual(["goodwill"]);
    expect(comparison.regressions[0].detail).toContain(
      'state: ledger.find_invoice_for_order {"order_id":"105781"} → goodwill_credited: expected 15, found 20',
    );
    expect(comparison.summary).toBe(
      "regression: 1 case passed in the baseline and fails now; pass rate 67% is below the baseline's 100% (2/3 passed)",
    );
    expect((await latestResult(realData, "refunds"))?.result.totals.passed).toBe(2);
  }, 120_000);
});
