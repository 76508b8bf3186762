/**
 * Suite files (evals/*.yaml) checked against the Acme project: a good one loads into cases with what they inherit;
 * every mistake in a bad one is reported at once, naming the file, the line, the case and the field.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatIssue, loadProject } from "../../src/definitions/index.js";
import type { Project } from "../../src/definitions/types.js";
import { loadSuite, SuiteError } from "../../src/evals/index.js";

const ACME = path.resolve(import.meta.dirname, "../../examples/acme");
const dir = mkdtempSync(path.join(tmpdir(), "outpost-suites-"));
let project: Project;
let n = 0;

beforeAll(async () => {
  project = await loadProject(ACME);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(text: string): { file: string; shown: string } {
  const file = path.join(dir, `suite-${++n}.yaml`);
  writeFileSync(file, text);
  return { file, shown: path.relative(process.cwd(), file) };
}

/** The formatted problems of a suite that must not load. */
async function problems(text: string): Promise<{ lines: string[]; shown: string; error: SuiteError }> {
  const { file, shown } = write(text);
  const error = await loadSuite(project, file).then(
    () => {
      throw new Error("the suite loaded");
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SuiteError);
  const e = error as SuiteError;
  return { lines: e.issues.map((i) => formatIssue(i).replace(`${shown}:`, "")), shown, error: e };
}

describe("a suite", () => {
  it("loads: a team's lead takes the cases, which inherit the suite's approvals, timeout and expectations", async () => {
    writeFileSync(path.join(dir, "scorer.ts"), "export default () => true;\n");
    const { file } = write(`
team: finance
approvals: deny
timeout: 30s
expect:
  policy: compliant
  budget: { max_usd: 0.05, max_latency: 1m }
scorers: [{ custom: ./scorer.ts, options: { strict: true } }]
cases:
  - name: refund
    input: "Refund the shipping fee of order 105708"
    history:
      - { role: user, content: "hi" }
      - { role: assistant, content: "hello" }
    expect:
      output: { contains: "14.95", regex: 'RF-\\d+' }
      tools:
        calls: [{ tool: ledger.issue_refund, args: { amount: 14.95 }, times: 1 }]
        ordered: true
      state: [{ tool: ledger.find_invoice_for_order, args: { order_id: "105708" }, path: refunded, equals: 14.95 }]
      judge: { model: assistant, rubric: "Says the refund id." }
  - name: credit
    agent: invoicing
    approvals: approve
    input: "Check invoice INV-105171"
    expect:
      status: failed
      policy: { denied: [acme.no_large_payouts_on_tainted_runs] }
`);
    const suite = await loadSuite(project, file);
    expect(suite).toMatchObject({ name: path.basename(file, ".yaml"), agent: "refunds", team: "finance" });
    const [refund, credit] = suite.cases;
    expect(refund).toMatchObject({
      agent: "refunds",
      approvals: "deny",
      timeoutMs: 30_000,
      history: [
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
      ],
      custom: [{ name: "scorer", path: path.join(dir, "scorer.ts"), options: { strict: true } }],
    });
    expect(refund.expect).toEqual({
      status: "completed",
      output: { contains: ["14.95"], regex: "RF-\\d+" },
      tools: { calls: [{ tool: "ledger.issue_refund", args: { amount: 14.95 }, times: 1 }], ordered: true, notCalled: [] },
      state: [{ tool: "ledger.find_invoice_for_order", args: { order_id: "105708" }, path: "refunded", equals: 14.95 }],
      policy: { compliant: true },
      budget: { maxUsd: 0.05, maxLatencyMs: 60_000 },
      judge: { model: "assistant", rubric: "Says the refund id.", minScore: 0.7 },
    });
    expect(credit).toMatchObject({ agent: "invoicing", approvals: "approve" });
    expect(credit.expect).toMatchObject({
      status: "failed",
      policy: { denied: ["acme.no_large_payouts_on_tainted_runs"] },
      budget: { maxUsd: 0.05 },
    });
  });

  it("every Acme example suite loads", async () => {
    for (const name of ["refunds", "shipments", "support", "triage"]) {
      const suite = await loadSuite(project, path.join(ACME, "evals", `${name}.yaml`));
      expect(suite.file).toBe(`evals/${name}.yaml`);
      expect(suite.cases.length).toBeGreaterThanOrEqual(3);
    }
  });
});

describe("a malformed suite", () => {
  it("a YAML syntax error, with line and column", async () => {
    const { lines, error } = await problems("agent: refunds\ncases:\n  - name: a\n    input: [unclosed\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\d+:\d+ YAML syntax error: .* — check indentation, quotes and colons here$/);
    expect(error.message.split("\n")[0]).toMatch(/suite-\d+\.yaml has 1 problem:$/);
  });

  it("schema mistakes name the case and the field: unknown fields (did you mean), missing ones, wrong values", async () => {
    const { lines } = await problems(`
agent: refunds
cases:
  - name: refund
    input: "Refund it"
    expect:
      outptu: { contains: "x" }
  - name: credit
    approvals: maybe
  - input: "no name"
    timeout: soon
`);
    expect(lines).toEqual([
      '7 cases.refund.expect.outptu: unknown field "outptu" — did you mean "output"?',
      '8 cases.credit.input: missing required field "input"',
      '9 cases.credit.approvals: must be one of approve, deny (got "maybe")',
      '10 cases[2].name: missing required field "name"',
      '11 cases[2].timeout: "soon" is not a duration — use e.g. 90s, 10m, 1h',
    ]);
  });

  it("names checked against the project: agents, tools, connections, model aliases, scorer files", async () => {
    const { lines } = await problems(`
agent: refund
cases:
  - name: refund
    agent: invoicng
    input: "Refund it"
    expect:
      output: { regex: "RF-(" }
      tools:
        calls: [{ tool: ledger.issue_refnd }, { tool: ledger.issue_refund, agent: refundz }]
        not_called: [orders.lookup]
      state:
        - { tool: issue_refund, args: {}, equals: 1 }
        - { tool: ledger.get_account, args: {} }
      judge: { model: gpt, rubric: "fair" }
    scorers: [{ custom: ./missing.ts }]
  - name: refund
    input: "again"
`);
    expect(lines).toEqual([
      '2 agent: unknown agent "refund" — did you mean "refunds"?',
      '5 cases.refund.agent: unknown agent "invoicng" — did you mean "invoicing"?',
      "8 cases.refund.expect.output.regex: not a regular expression: /RF-(/: Unterminated group",
      '10 cases.refund.expect.tools.calls[0].tool: unknown tool "ledger.issue_refnd" — did you mean "ledger.issue_refund"?',
      '10 cases.refund.expect.tools.calls[1].agent: unknown agent "refundz" — did you mean "refunds"?',
      '11 cases.refund.expect.tools.not_called[0]: unknown tool "orders.lookup" — no agent of the project lists it',
      '13 cases.refund.expect.state[0].tool: "issue_refund" is not a business system\'s tool — name it <connection>.<tool>; connections are helpdesk, warehouse, ledger',
      "14 cases.refund.expect.state[1]: say what the result must be: equals (exactly) or matches (a subset), one of them",
      '15 cases.refund.expect.judge.model: unknown model alias "gpt" — aliases are assistant',
      "16 cases.refund.scorers[0].custom: no file ./missing.ts (relative to the suite's folder)",
      '17 cases.refund.name: case "refund" is defined twice — case names must be unique in a suite',
    ]);
  });

  it("a mistake in the suite's expect is reported once, where it is, not in every case", async () => {
    const { lines } = await problems(`
agent: refunds
team: finance
expect:
  tools: { not_called: [ledger.isue_refund] }
cases:
  - { name: a, input: "x" }
  - { name: b, input: "y" }
`);
    expect(lines).toEqual([
      "3 team: name either agent or team, not both",
      '5 expect.tools.not_called[0]: unknown tool "ledger.isue_refund" — did you mean "ledger.issue_refund"?',
    ]);
  });

  it("a suite with no agent, no cases, or that is not a mapping", async () => {
    expect((await problems("description: nothing\ncases: []\n")).lines).toEqual(["2 cases: must list at least 1 entry"]);
    expect((await problems("cases:\n  - { name: a, input: x }\n")).lines).toEqual([
      "1 missing the agent the cases talk to — add agent: NAME (or team: NAME, whose lead takes them)",
    ]);
    expect((await problems("- a\n- b\n")).lines[0]).toMatch(
      /^1 got a list — expected a mapping with the fields name, description, agent, team/,
    );
  });
});
