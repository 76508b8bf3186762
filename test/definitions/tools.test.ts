import { writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { defineTool, formatIssue, loadProject } from "../../src/definitions/index.js";
import { ECHO_TOOL, issuesOf, writeProject } from "./fixtures.js";

const HEADER = 'import { defineTool } from "outpost";\nimport { z } from "zod";\n';

const tool = (name: string, extra = "") =>
  `defineTool({ name: "${name}", description: "${name}.", input: z.object({}), handler: () => "${name}"${extra} })`;

describe("tools/*.ts", () => {
  it("loads default, default-array and named exports, once each, from a folder outside the repo", async () => {
    const root = await writeProject({
      "tools/echo.ts": ECHO_TOOL,
      "tools/many.ts": `${HEADER}export default [${tool("a.one")}, ${tool("a.two")}];\nexport const three = ${tool("a.three")};\n`,
      "tools/same.ts": `${HEADER}export const shared = ${tool("b.shared")};\nexport default shared;\nexport const notATool = { name: "x" };\n`,
      "tools/_helpers.ts": "export const notScanned = 1;\n",
    });
    expect(root.startsWith(path.resolve("."))).toBe(false);
    const project = await loadProject(root);
    expect([...project.tools.keys()].sort()).toEqual(["a.one", "a.three", "a.two", "b.shared", "text.echo"]);
    expect(project.tools.get("a.three")?.file).toBe("tools/many.ts");

    const echo = project.tools.get("text.echo");
    expect(echo?.input.safeParse({ text: 1 }).success).toBe(false);
    const input = echo?.input.parse({ text: "hi" });
    const context = {
      runId: "r1",
      sessionId: "s1",
      agent: "a",
      workspace: "test",
      rootRunId: "r1",
      dataDir: root,
      signal: new AbortController().signal,
    };
    expect(await echo?.handler({ input, context, idempotencyKey: "k" })).toEqual({ text: "hi" });
  });

  it("loads ESM tool files too (package.json with type: module) and relative imports of helpers", async () => {
    const root = await writeProject({
      "package.json": '{ "type": "module" }\n',
      "tools/_shared.ts": 'export const GREETING = "hello";\n',
      "tools/greet.ts": `${HEADER}import { GREETING } from "./_shared.js";\nexport default defineTool({ name: "greet", description: "Greets.", input: z.object({}), handler: () => GREETING });\n`,
    });
    const project = await loadProject(root);
    const greet = project.tools.get("greet");
    expect(await greet?.handler({ input: {}, context: {} as never, idempotencyKey: "k" })).toBe("hello");
  });

  it("reports invalid tool definitions field by field, at the tool's line", async () => {
    const issues = await issuesOf({
      "tools/bad.ts": `${HEADER}
export const ok = ${tool("fine.tool")};

export const broken = defineTool({
  name: "Orders.Lookup",
  description: "Finds orders.",
  input: { type: "object" },
  handler: () => 1,
} as never);

export const noHandler = defineTool({
  name: "orders.refund",
  description: "Refunds.",
  input: z.object({}),
  execute: () => 1,
  classification: "secret",
} as never);
`,
    });
    expect(issues.map(formatIssue)).toEqual([
      'tools/bad.ts:7 name: "Orders.Lookup" is not a valid tool name — use lowercase words of letters, digits and "_", joined by dots (e.g. "orders.lookup")',
      'tools/bad.ts:7 input: tool "Orders.Lookup": input is not a zod schema — use input: z.object({ ... }) (import { z } from "zod")',
      'tools/bad.ts:14 handler: tool "orders.refund" has no handler — add handler: async ({ input, context, idempotencyKey }) => { ... }',
      'tools/bad.ts:14 classification: must be one of public, internal, confidential, restricted (got "secret")',
      'tools/bad.ts:14 execute: unknown field "execute" — remove it (known fields: name, description, input, handler, approval, sideEffects, classification, timeoutMs)',
    ]);
  });

  it("reports a default export that is not a tool, and a file with no tools", async () => {
    const issues = await issuesOf({
      "tools/a.ts": 'export default "orders.lookup";\n',
      "tools/b.ts": "export const helper = () => 1;\n",
    });
    expect(issues.map(formatIssue)).toEqual([
      "tools/a.ts:1 the default export is not a tool — use `export default defineTool({ ... })` or a list of tools",
      'tools/b.ts exports no tools — add `export default defineTool({ ... })` (put helper modules in files whose name starts with "_")',
    ]);
  });

  it("rejects the same tool name in two files", async () => {
    const issues = await issuesOf({
      "tools/a.ts": `${HEADER}export default ${tool("orders.lookup")};\n`,
      "tools/b.ts": `${HEADER}\n\nexport default ${tool("orders.lookup")};\n`,
    });
    expect(issues.map(formatIssue)).toEqual([
      'tools/b.ts:5 name: tool "orders.lookup" is already defined in tools/a.ts — tool names must be unique; rename one',
    ]);
  });

  it("reports files that fail to import with the error message (compile errors with line:column), but no stack", async () => {
    const issues = await issuesOf({
      "tools/throws.ts": `${HEADER}\nconst config = undefined as unknown as { url: string };\nexport default ${tool("x.y")}; console.log(config.url);\n`,
      "tools/syntax.ts": `${HEADER}export default defineTool({ name: "x.z", \n  description: "d" input: z.object({}) });\n`,
      "tools/missing.ts": `import { thing } from "no-such-package";\nexport default thing;\n`,
      "agents/a.yaml": "name: a\ninstructions: x\ntools: [x.y]\n",
    });
    const byFile = Object.fromEntries(issues.map((issue) => [issue.file, issue]));
    expect(Object.keys(byFile).sort()).toEqual(["tools/missing.ts", "tools/syntax.ts", "tools/throws.ts"]);

    expect(byFile["tools/throws.ts"].message).toMatch(/^failed to load: .*url/);

    expect(byFile["tools/syntax.ts"]).toMatchObject({ line: 4, column: 19 });
    expect(byFile["tools/syntax.ts"].message).toMatch(/^cannot be compiled: Expected "}" but found "input"/);

    expect(byFile["tools/missing.ts"].message).toMatch(/^failed to load: .*no-such-package/);
    for (const issue of issues) expect(issue.message).not.toMatch(/\n\s+at /);
  });

  it("ignores .d.ts files", async () => {
    const root = await writeProject({
      "tools/types.d.ts": "export declare const x: number;\n",
      "tools/echo.ts": ECHO_TOOL,
    });
    const project = await loadProject(root);
    expect([...project.tools.keys()]).toEqual(["text.echo"]);
  });

  it("picks up edits when a project is loaded again", async () => {
    const root = await writeProject({ "tools/v.ts": `${HEADER}export default ${tool("v.one")};\n` });
    expect([...(await loadProject(root)).tools.keys()]).toEqual(["v.one"]);
    await writeFile(path.join(root, "tools/v.ts"), `${HEADER}export default ${tool("v.two")};\n`);
    expect([...(await loadProject(root)).tools.keys()]).toEqual(["v.two"]);
  });
});

describe("defineTool", () => {
  it("returns its argument, marked so tools from another copy of Outpost are recognised", () => {
    const definition = { name: "a.b", description: "d", input: {} as never, handler: () => 1 };
    const defined = defineTool(definition);
    expect(defined).toBe(definition);
    expect((defined as unknown as Record<symbol, unknown>)[Symbol.for("outpost.tool")]).toBe(true);
    expect(Object.keys(defined)).toEqual(["name", "description", "input", "handler"]);
  });
});
