import { describe, expect, it } from "vitest";
import { CONTEXT_LOOKUP } from "../../src/context/index.js";
import { formatIssue, loadProject } from "../../src/definitions/index.js";
import { BUILTIN_TOOL_NAMES } from "../../src/definitions/schemas.js";
import { MEMORY_TOOL_NAMES } from "../../src/memory/index.js";
import { builtinTools } from "../../src/tools/builtin.js";
import { ECHO_TOOL, issuesOf, writeProject } from "./fixtures.js";

const TOOLS = {
  "tools/echo.ts": ECHO_TOOL,
  "tools/orders.ts": `import { defineTool } from "outpost";
import { z } from "zod";

export const lookup = defineTool({
  name: "orders.lookup",
  description: "Finds an order.",
  input: z.object({ order_id: z.string() }),
  handler: ({ input }) => ({ id: input.order_id }),
});

export const refund = defineTool({
  name: "orders.refund",
  description: "Refunds an order.",
  input: z.object({ order_id: z.string() }),
  handler: () => ({ ok: true }),
});
`,
};

describe("agents/*.yaml", () => {
  it("loads an agent, merging its limits over the project defaults", async () => {
    const root = await writeProject({
      "outpost.yaml": `version: 1
workspace: test
models:
  assistant: { provider: scripted }
defaults:
  model: assistant
  limits: { max_steps: 30, max_usd: 2 }
`,
      ...TOOLS,
      "agents/triage.yaml": `name: triage
description: Sorts incoming requests.
instructions: Sort them.
tools:
  - text.echo
  - name: orders.refund
    approval: required
limits:
  max_steps: 5
  max_wall_time: 90s
`,
    });
    const project = await loadProject(root);
    const agent = project.agents.get("triage");
    expect(agent).toEqual({
      name: "triage",
      description: "Sorts incoming requests.",
      instructions: "Sort them.",
      model: "assistant",
      tools: [{ name: "text.echo" }, { name: "orders.refund", approval: "required" }],
      delegates: [],
      handoffs: [],
      fanOut: "all",
      clearance: "internal",
      memory: { recall: "auto", recallLimit: 5, recallTokens: 800 },
      context: { compaction: "auto", keepRecent: 8 },
      limits: {
        maxSteps: 5,
        maxTokens: 200_000,
        maxUsd: 2,
        maxWallTimeMs: 90_000,
        maxModelErrors: 3,
        maxDelegations: 10,
        maxDepth: 3,
        maxHandoffs: 5,
        maxToolOutput: 16_000,
      },
      file: "agents/triage.yaml",
    });
    expect(project.defaults).toEqual({
      model: "assistant",
      limits: {
        maxSteps: 30,
        maxTokens: 200_000,
        maxUsd: 2,
        maxWallTimeMs: 600_000,
        maxModelErrors: 3,
        maxDelegations: 10,
        maxDepth: 3,
        maxHandoffs: 5,
        maxToolOutput: 16_000,
      },
    });
  });

  it("suggests the closest tool name for an unknown tool", async () => {
    const issues = await issuesOf({
      ...TOOLS,
      "agents/triage.yaml": `name: triage
description: Sorts incoming requests.
instructions: |
  Sort them.
  Be quick.
tools:
  - text.echo
  - orders.refund
  - orders.lookp
`,
    });
    expect(issues.map(formatIssue)).toEqual(['agents/triage.yaml:9 tools[2]: unknown tool "orders.lookp" — did you mean "orders.lookup"?']);
  });

  it("lists the known tools when nothing is close", async () => {
    const issues = await issuesOf({
      ...TOOLS,
      "agents/a.yaml": "name: a\ninstructions: x\ntools: [weather.forecast]\n",
    });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file: "agents/a.yaml", line: 3, path: "tools[0]" });
    expect(issues[0].message).toBe(
      'unknown tool "weather.forecast" — define it in tools/*.ts with defineTool({ name: "weather.forecast", ... }) (known: context.lookup, memory.forget, memory.recall, memory.remember, orders.lookup, orders.refund, text.echo, wait.for_event, wait.until)',
    );
  });

  it("lets agents list the built-in waiting tools, and keeps their names for Outpost", async () => {
    const root = await writeProject({
      "agents/a.yaml": "name: a\ninstructions: x\ntools: [wait.until, wait.for_event]\n",
    });
    const project = await loadProject(root);
    expect(project.agents.get("a")?.tools.map((t) => t.name)).toEqual(["wait.until", "wait.for_event"]);
    // The validator and the runtime agree on the list: the waiting tools, memory's and business context's.
    const names = [...builtinTools.map((t) => t.name), ...MEMORY_TOOL_NAMES, CONTEXT_LOOKUP];
    expect([...BUILTIN_TOOL_NAMES]).toEqual(names);

    const issues = await issuesOf({
      "tools/wait.ts": `import { defineTool } from "outpost";
import { z } from "zod";
export default defineTool({ name: "wait.until", description: "mine", input: z.object({}), handler: () => "x" });
`,
    });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file: "tools/wait.ts", path: "name" });
    expect(issues[0].message).toBe('"wait.until" is a built-in tool of Outpost — choose another name');
  });

  it("names the known aliases for an unknown model alias", async () => {
    const issues = await issuesOf({
      "agents/support.yaml": "name: support\ndescription: Helps.\nmodel: fast\ninstructions: Help.\n",
    });
    expect(issues.map(formatIssue)).toEqual([
      'agents/support.yaml:3 model: unknown model alias "fast" — define it under models: in outpost.yaml (known: assistant)',
    ]);
  });

  it("asks for a model when neither the agent nor defaults name one", async () => {
    const issues = await issuesOf({
      "outpost.yaml": "version: 1\nworkspace: test\nmodels:\n  assistant: { provider: scripted }\n",
      "agents/a.yaml": "name: a\ninstructions: x\n",
    });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file: "agents/a.yaml", line: 1, path: "model" });
    expect(issues[0].message).toContain("add model: <alias> (known: assistant)");
  });

  it("reports a misspelt field, a missing field and a bad name together", async () => {
    const issues = await issuesOf({
      "agents/x.yaml": `name: Support Bot
description: Helps.
instrucions: Help people.
`,
    });
    expect(issues.map(formatIssue)).toEqual([
      'agents/x.yaml:1 name: agent names must be lowercase letters, digits, "-" or "_", starting with a letter (e.g. "support")',
      'agents/x.yaml:1 instructions: missing required field "instructions"',
      'agents/x.yaml:3 instrucions: unknown field "instrucions" — did you mean "instructions"?',
    ]);
  });

  it("explains wrong types in the tools list and limits", async () => {
    const issues = await issuesOf({
      ...TOOLS,
      "agents/a.yaml": `name: a
instructions: x
tools:
  - 42
  - name: text.echo
    approval: maybe
  - Orders.Lookup
limits:
  max_wall_time: 10 minutes
  max_usd: -1
`,
    });
    expect(issues.map(formatIssue)).toEqual([
      "agents/a.yaml:4 tools[0]: expected text or a mapping, got 42",
      'agents/a.yaml:6 tools[1].approval: must be one of required, none (got "maybe")',
      'agents/a.yaml:7 tools[2]: tool names are lowercase words of letters, digits and "_", joined by dots (e.g. "orders.lookup"), or "<connection>.*"',
      'agents/a.yaml:9 limits.max_wall_time: "10 minutes" is not a duration — use e.g. 90s, 10m, 1h',
      "agents/a.yaml:10 limits.max_usd: must be at least 0 (got -1)",
    ]);
  });

  it("rejects the same agent name in two files, pointing at the first", async () => {
    const issues = await issuesOf({
      "agents/a.yaml": "name: support\ninstructions: x\n",
      "agents/b.yaml": "# the same again\nname: support\ninstructions: y\n",
    });
    expect(issues.map(formatIssue)).toEqual([
      'agents/b.yaml:2 name: agent "support" is already defined in agents/a.yaml:1 — agent names must be unique; rename one',
    ]);
  });

  it("allows a file name that differs from the agent name", async () => {
    const root = await writeProject({ "agents/first.yaml": "name: support\ninstructions: x\n" });
    const project = await loadProject(root);
    expect([...project.agents.keys()]).toEqual(["support"]);
    expect(project.agents.get("support")?.file).toBe("agents/first.yaml");
  });

  it("rejects a tool listed twice", async () => {
    const issues = await issuesOf({
      ...TOOLS,
      "agents/a.yaml": "name: a\ninstructions: x\ntools:\n  - text.echo\n  - name: text.echo\n",
    });
    expect(issues.map(formatIssue)).toEqual(['agents/a.yaml:5 tools[1]: tool "text.echo" is listed twice — remove one']);
  });

  it("locates syntax errors in agent files and an empty agent file", async () => {
    const issues = await issuesOf({
      "agents/a.yaml": "name: a\ninstructions: x\n\ttools: []\n",
      "agents/b.yaml": "",
    });
    expect(issues.map((issue) => [issue.file, issue.line])).toEqual([
      ["agents/a.yaml", 3],
      ["agents/b.yaml", 1],
    ]);
    expect(issues[0].message).toMatch(/^YAML syntax error: /);
    expect(issues[1].message).toBe(
      "the file is empty — expected a mapping with the fields name, description, instructions, model, tools, delegates, handoffs, fan_out, limits, clearance, memory, context, on_events, emits, schedules, webhooks",
    );
  });
});
