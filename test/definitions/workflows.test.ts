/**
 * workflows/*.yaml and workflows/*.ts: read into one normalized definition, and each mistake named with file:line
 * (YAML) and how to fix it — an unknown tool or agent, a step id used twice, an expression that does not parse, a
 * duration or approver that cannot be read, a TypeScript export that is not a workflow.
 */
import { describe, expect, it } from "vitest";
import { formatIssue, loadProject } from "../../src/definitions/index.js";
import { issuesOf, MINIMAL_SETTINGS, writeProject } from "./fixtures.js";

const clerk = "name: clerk\ninstructions: Work.\n";

describe("workflow definitions", () => {
  it("reads YAML and TypeScript workflows into the same shape", async () => {
    const root = await writeProject({
      "outpost.yaml": MINIMAL_SETTINGS,
      "agents/clerk.yaml": clerk,
      "workflows/flow.yaml": `name: flow
steps:
  - id: ask
    agent: clerk
    task: "Check {{ input.id }}"
  - id: gate
    wait: { for: 90s }
`,
      "workflows/typed.ts": `import { defineWorkflow } from "outpost";
export default defineWorkflow({ name: "typed", steps: [{ id: "ask", agent: "clerk", task: "Hi" }, { id: "gate", wait: { for: "90s" } }] });
`,
    });
    const p = await loadProject(root);
    expect([...(p.workflows?.keys() ?? [])].sort()).toEqual(["flow", "typed"]);
    const flow = p.workflows?.get("flow");
    expect(flow?.steps).toEqual([
      { kind: "agent", id: "ask", agent: "clerk", task: "Check {{ input.id }}", outputSchema: null, retries: 2 },
      { kind: "sleep", id: "gate", forMs: 90_000, until: null },
    ]);
    expect(p.workflows?.get("typed")?.steps.map((s) => s.kind)).toEqual(["agent", "sleep"]);
    expect(flow?.file).toBe("workflows/flow.yaml");
  });

  it("names each mistake with its line", async () => {
    const issues = await issuesOf({
      "outpost.yaml": MINIMAL_SETTINGS,
      "agents/clerk.yaml": clerk,
      "workflows/bad.yaml": `name: bad
steps:
  - id: one
    tool: ledger.nope
  - id: one
    agent: clerck
    task: x
  - id: three
    for_each: "{{ input.items[ }}"
    do:
      - id: four
        wait: { for: soon }
`,
    });
    const text = issues.map(formatIssue);
    expect(text).toEqual([
      'workflows/bad.yaml:9 steps[2].for_each: for_each: "input.items[" is not a valid expression: Expected "]" before end of expression (at character 14)',
      'workflows/bad.yaml:12 steps[2].do[0].wait.for: "soon" is not a duration — use e.g. 90s, 10m, 1h',
    ]);
  });

  it("checks what the steps name against the project", async () => {
    const issues = await issuesOf({
      "outpost.yaml": MINIMAL_SETTINGS,
      "agents/clerk.yaml": clerk,
      "workflows/bad.yaml": `name: bad
team: nobody
steps:
  - id: one
    tool: ledger.nope
  - id: one
    agent: clerck
    task: x
`,
    });
    expect(issues.map(formatIssue)).toEqual([
      'workflows/bad.yaml:2 team: unknown team "nobody" — define it in teams/',
      'workflows/bad.yaml:5 steps[0].tool: unknown tool "ledger.nope" — tools are none',
      'workflows/bad.yaml:6 steps[1].id: step id "one" is used twice — ids name results (steps.one.output), make them unique',
      'workflows/bad.yaml:7 steps[1].agent: unknown agent "clerck" — did you mean "clerk"?',
    ]);
  });
});
