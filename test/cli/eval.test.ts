/**
 * `outpost eval` through the real CLI, on a copy of Acme (its systems as MCP child processes, the scripted model):
 * a run with no baseline (exit 0), accepting it, a script change that makes a case regress (exit 3), a comparison
 * of two model aliases, and the mistakes: usage (exit 2) and a malformed suite (exit 1), never a stack trace.
 */
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, removeDir, runCli, tempDir } from "./harness.js";

const root = tempDir("outpost-eval-cli-");
const acme = path.join(root, "acme");
const data = path.join(root, "data");
const flags = ["--project", acme, "--data", data];

beforeAll(() => {
  cpSync(path.join(REPO, "examples/acme"), acme, { recursive: true, filter: (f) => !f.includes(`${path.sep}.outpost`) });
  // The systems' imports resolve from the copy as from the checkout, as ES modules.
  symlinkSync(path.join(REPO, "node_modules"), path.join(acme, "node_modules"));
  writeFileSync(path.join(acme, "package.json"), '{ "type": "module" }\n');
  // A second alias to compare with: the same scripts, at a price.
  const settings = readFileSync(path.join(acme, "outpost.yaml"), "utf8");
  writeFileSync(
    path.join(acme, "outpost.yaml"),
    settings.replace(
      "\ndefaults:",
      "\n  priced:\n    - provider: scripted\n      model: scripted-priced\n      price: { input_per_mtok: 2, output_per_mtok: 8 }\n\ndefaults:",
    ),
  );
  // Two of the refunds suite's cases: one round at --concurrency 2.
  writeFileSync(
    path.join(acme, "evals", "gate.yaml"),
    `agent: refunds
cases:
  - name: shipping_fee_refund
    input: "Refund the shipping fee of order 105708: the monitor arrived damaged."
    expect:
      state: [{ tool: ledger.find_invoice_for_order, args: { order_id: "105708" }, path: refunded, equals: 14.95 }]
  - name: goodwill
    input: "Give a goodwill credit for the late delivery of order 105781, within policy."
    expect:
      tools: { calls: [{ tool: ledger.issue_goodwill_credit, args: { amount: 15 } }] }
`,
  );
  mkdirSync(path.join(acme, "evals", "broken"));
});
afterAll(() => removeDir(root));

describe("outpost eval", () => {
  it("run: exit 0 without a baseline when every case passes; accept; exit 3 once a case regresses", async () => {
    const first = await runCli(["eval", "run", "gate", ...flags, "--concurrency", "2"]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^Eval gate — agent refunds, 2 cases, each agent on its own model$/m);
    expect(first.stdout).toMatch(/CASE\s+RESULT\s+SCORE\s+COST\s+TOKENS\s+LATENCY\s+WHY/);
    expect(first.stdout).toMatch(/^shipping_fee_refund\s+✓ pass\s+1\.00\s+\$0\.00\s+[\d,]+\s+[\d.]+ s$/m);
    expect(first.stdout).toContain("2 cases: 2 passed (100%)");
    expect(first.stdout).toContain("✓ no baseline yet: 2/2 passed");
    expect(first.stdout).toMatch(/make it the baseline: (npx )?outpost eval accept gate --project \S+ --data \S+/);
    // Not a terminal: one plain line per finished case.
    const lines = first.stderr.trim().split("\n");
    expect(lines.map((l) => l.slice(0, 5))).toEqual(["[1/2]", "[2/2]"]);
    expect(lines.map((l) => /^\[\d\/2\] ✓ (\S+) [\d.]+ s$/.exec(l)?.[1]).sort()).toEqual(["goodwill", "shipping_fee_refund"]);

    const accept = await runCli(["eval", "accept", "gate", ...flags]);
    expect(accept.code, accept.stderr).toBe(0);
    expect(accept.stdout).toMatch(/^✓ baseline of gate: \S+\.json \(2\/2 passed\)$/m);

    const ls = await runCli(["eval", "ls", ...flags]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^gate\s+agent refunds\s+2\s+2\/2 passed · \d+s ago\s+2\/2 passed · \d+s ago$/m);
    expect(ls.stdout).toMatch(/^triage\s+team customer-service \(triage\)\s+3\s+-\s+-$/m);

    // The refunds agent now credits 20.00 for a late delivery: the goodwill case regresses.
    const script = path.join(acme, "scripts", "refunds.yaml");
    writeFileSync(script, readFileSync(script, "utf8").replace("amount: 15.00", "amount: 20.00"));
    const second = await runCli(["eval", "run", "gate", ...flags, "--json"]);
    expect(second.code, second.stderr).toBe(3);
    const report = JSON.parse(second.stdout);
    expect(report.comparison).toMatchObject({ gate_passed: false, regressions: [{ case: "goodwill" }] });
    expect(report.comparison.regressions[0].detail).toContain("expected ledger.issue_goodwill_credit");
    expect(report.result.totals).toMatchObject({ cases: 2, passed: 1 });
    expect(readFileSync(report.file, "utf8")).toContain('"suite": "gate"');
  }, 120_000);

  it("compare: the same cases under each model alias, with pass rate, cost and latency", async () => {
    const r = await runCli(["eval", "compare", "refunds", "--models", "assistant,priced", "--case", "shipping_fee_refund", ...flags]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Eval refunds under 2 models — agent refunds, 1 case\n");
    expect(r.stdout).toMatch(/MODEL\s+PASSED\s+PASS RATE\s+COST\s+TOKENS\s+LATENCY/);
    expect(r.stdout).toMatch(/^assistant\s+1\/1\s+100%\s+\$0\.00\s+[\d,]+\s+[\d.]+ s$/m);
    expect(r.stdout).toMatch(/^priced\s+1\/1\s+100%\s+\$0\.0[1-9]\s+[\d,]+\s+[\d.]+ s$/m);
  }, 90_000);

  it("usage mistakes exit 2 and say how to fix them; a malformed suite exits 1 naming file, line, case and field", async () => {
    const mistakes: [string[], RegExp][] = [
      [["eval", "run", "refund", ...flags], /^error: no suite "refund" in \S+\nhint: did you mean "refunds"\?$/],
      [
        ["eval", "run", "refunds", "--concurrency", "many", ...flags],
        /^error: --concurrency must be a whole number from 1 to 64, not "many"$/,
      ],
      [
        ["eval", "run", "refunds", "--model", "big", ...flags],
        /^error: --model: unknown model alias "big"\nhint: the aliases of outpost\.yaml: assistant, priced$/,
      ],
      [
        ["eval", "run", "refunds", "--case", "nope", ...flags],
        /^error: suite refunds has no case nope\nhint: its cases: shipping_fee_refund, /,
      ],
      [
        ["eval", "run", "refunds", "--accept", "--case", "shipping_fee_refund", ...flags],
        /^error: --accept takes a run of the whole suite/,
      ],
      [["eval", "compare", "refunds", ...flags], /error: required option '--models <aliases>' not specified/],
      [["eval", "run", "refunds", "--project", root], /^error: no Outpost project in \S+ \(no outpost\.yaml\)/],
    ];
    for (const [args, message] of mistakes) {
      const r = await runCli(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr.trim()).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }

    const broken = path.join(acme, "evals", "broken", "suite.yaml");
    writeFileSync(
      broken,
      "agent: refunds\ncases:\n  - name: late\n    input: hi\n    expect:\n      tools:\n        calls: [{ tool: ledger.issue_goodwill_credt }]\n",
    );
    const r = await runCli(["eval", "run", broken, ...flags]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: evals/broken/suite.yaml has 1 problem:");
    expect(r.stderr).toContain(
      'evals/broken/suite.yaml:7 cases.late.expect.tools.calls[0].tool: unknown tool "ledger.issue_goodwill_credt" — did you mean "ledger.issue_goodwill_credit"?',
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});
