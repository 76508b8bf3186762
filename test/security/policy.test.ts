import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadProject, type Project, validateProject } from "../../src/definitions/index.js";
import {
  checkPolicies,
  connectorUseRequest,
  createPolicyEngine,
  delegateRequest,
  memoryRequest,
  modelUseRequest,
  policySchemaText,
  toolCallRequest,
} from "../../src/security/policy/index.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A real project folder: outpost.yaml, agents, a tool and policies. */
async function project(policies: Record<string, string> = {}, settings = ""): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), "outpost-policy-"));
  dirs.push(root);
  await writeFile(
    path.join(root, "outpost.yaml"),
    `version: 1
workspace: acme
models:
  cloud: { provider: scripted, location: external }
  local: { provider: scripted, location: local }
defaults: { model: cloud }
${settings}`,
  );
  await mkdir(path.join(root, "agents"));
  await writeFile(path.join(root, "agents/support.yaml"), "name: support\ninstructions: help\ntools: [ledger.refund]\n");
  await writeFile(
    path.join(root, "agents/refunds.yaml"),
    "name: refunds\ninstructions: pay\nclearance: restricted\ntools: [ledger.refund]\n",
  );
  await writeFile(path.join(root, "agents/intern.yaml"), "name: intern\ninstructions: read\nclearance: public\n");
  await mkdir(path.join(root, "tools"));
  await writeFile(
    path.join(root, "tools/ledger.ts"),
    `import { z } from "zod";
import { defineTool } from "${path.resolve("src/definitions/index.js")}";
export default defineTool({ name: "ledger.refund", description: "refund", classification: "confidential",
  input: z.object({ order: z.string(), amount: z.number() }), handler: () => "ok" });
`,
  );
  if (Object.keys(policies).length > 0) await mkdir(path.join(root, "policies"));
  for (const [file, text] of Object.entries(policies)) await writeFile(path.join(root, "policies", file), text);
  return root;
}

const refundTool = { name: "ledger.refund", classification: "confidential" as const, sideEffects: true };

describe("baseline", async () => {
  const p = await loadProject(await project());
  const engine = createPolicyEngine(p);

  it("lets an agent call tools up to its clearance, and no further", () => {
    const low = engine.authorize(toolCallRequest({ agent: "support", tool: refundTool, args: { amount: 10 } }));
    expect(low).toMatchObject({ effect: "deny", policies: [], approval: null });
    const high = engine.authorize(toolCallRequest({ agent: "refunds", tool: refundTool, args: { amount: 10 } }));
    expect(high).toMatchObject({ effect: "allow", policies: ["baseline.tool_call"], approval: null, errors: [] });
    // A tool without classification counts as internal: fine for internal clearance, not for public.
    const plain = { name: "orders.lookup" };
    expect(engine.authorize(toolCallRequest({ agent: "support", tool: plain, args: {} })).effect).toBe("allow");
    expect(engine.authorize(toolCallRequest({ agent: "intern", tool: plain, args: {} })).effect).toBe("deny");
  });

  it("applies clearance to memory and connectors", () => {
    const ask = (action: "memory.read" | "memory.write", scope: string, classification: "internal" | "restricted" = "internal") =>
      engine.authorize(memoryRequest({ agent: "support", action, scope, classification })).effect;
    expect(ask("memory.read", "agent/support")).toBe("allow");
    expect(ask("memory.write", "agent/support")).toBe("allow");
    expect(ask("memory.read", "agent/support", "restricted")).toBe("deny");
    // Another agent's or a team it is not in: denied; the workspace's is for reading.
    expect(ask("memory.read", "agent/refunds")).toBe("deny");
    expect(ask("memory.read", "team/finance")).toBe("deny");
    expect(ask("memory.read", "workspace")).toBe("allow");
    expect(ask("memory.write", "workspace")).toBe("deny");
    const connector = (agent: string) =>
      engine.authorize(connectorUseRequest({ agent, connection: { name: "crm", kind: "mcp", classification: "restricted" } })).effect;
    expect(connector("support")).toBe("deny");
    expect(connector("refunds")).toBe("allow");
  });

  it("permits delegation and handoff", () => {
    expect(engine.authorize(delegateRequest({ agent: "support", target: "refunds" })).policies).toEqual(["baseline.collaboration"]);
  });

  it("keeps restricted runs on local models", () => {
    const use = (alias: string, runClassification: "confidential" | "restricted") => {
      const candidate = p.models.get(alias)?.candidates[0];
      if (!candidate) throw new Error(alias);
      return engine.authorize(modelUseRequest({ agent: "refunds", alias, candidate, runClassification })).effect;
    };
    expect(use("cloud", "confidential")).toBe("allow");
    expect(use("cloud", "restricted")).toBe("deny");
    expect(use("local", "restricted")).toBe("allow");
  });

  it("denies what no policy permits when the baseline is off", async () => {
    const off = await loadProject(await project({}, "policies: { baseline: false }\n"));
    const decision = createPolicyEngine(off).authorize(delegateRequest({ agent: "support", target: "refunds" }));
    expect(decision).toEqual({ effect: "deny", policies: [], approval: null, errors: [] });
  });
});

describe("project policies", () => {
  it("a forbid beats every permit", async () => {
    const p = await loadProject(
      await project({
        "ledger.cedar": `@id("support.no_ledger")
forbid (principal == Agent::"refunds", action == Action::"tool.call", resource)
when { resource.connection == "" && context has amount_cents && context.amount_cents > 100000 };`,
      }),
    );
    const engine = createPolicyEngine(p);
    const big = engine.authorize(toolCallRequest({ agent: "refunds", tool: refundTool, args: { amount: 1000.01 } }));
    expect(big).toMatchObject({ effect: "deny", policies: ["support.no_ledger"] });
    const small = engine.authorize(toolCallRequest({ agent: "refunds", tool: refundTool, args: { amount: 999.99 } }));
    expect(small).toMatchObject({ effect: "allow", policies: ["baseline.tool_call"] });
  });

  it("@approval on a satisfied permit asks for that person; all such policies are named", async () => {
    const p = await loadProject(
      await project({
        "refunds.cedar": `@id("refunds.over_500")
@approval("operator:finance")
permit (principal, action == Action::"tool.call", resource == Tool::"ledger.refund")
when { context has amount_cents && context.amount_cents > 50000 };

@approval("operator")
permit (principal, action == Action::"tool.call", resource) when { context.tainted };
`,
      }),
    );
    const engine = createPolicyEngine(p);
    const ask = (amount: number, tainted = false) =>
      engine.authorize(toolCallRequest({ agent: "refunds", tool: refundTool, args: { order: "A1", amount }, tainted }));
    expect(ask(100)).toMatchObject({ effect: "allow", approval: null });
    expect(ask(900)).toMatchObject({
      effect: "allow",
      approval: { role: "operator", group: "finance", policies: ["refunds.over_500"] },
    });
    const both = ask(900, true);
    expect(both.approval).toEqual({ role: "operator", group: "finance", policies: ["policies/refunds.cedar#2", "refunds.over_500"] });
    expect(ask(10, true).approval).toEqual({ role: "operator", group: null, policies: ["policies/refunds.cedar#2"] });
  });

  it("a policy that fails to evaluate is reported and does not count", async () => {
    const p = await loadProject(
      await project(
        { "bad.cedar": `permit (principal, action, resource) when { context.amount_cents > 5 };` },
        "policies: { baseline: false }\n",
      ),
    );
    const decision = createPolicyEngine(p).authorize(delegateRequest({ agent: "support", target: "refunds" }));
    expect(decision.effect).toBe("deny");
    expect(decision.errors.join()).toMatch(/policies\/bad.cedar#1: .*amount_cents/);
  });

  it("reports a syntax error with file:line:column through outpost validate's path", async () => {
    const root = await project({
      "broken.cedar": `// refunds\n\npermit (principal, action, resource)\nwhen { context.amount_cents > };\n`,
    });
    const result = await validateProject(root);
    expect(result.ok).toBe(false);
    const issue = result.issues.find((i) => i.file === "policies/broken.cedar");
    expect(issue).toMatchObject({ line: 4, column: 31 });
    expect(issue?.message).toMatch(/unexpected token/);
  });

  it("rejects a bad @approval and duplicate ids with their lines", async () => {
    const p = await loadProject(
      await project({
        "a.cedar": `@id("x")\npermit (principal, action, resource);\n\n@id("x")\n@approval("boss")\npermit (principal, action, resource);\n`,
      }),
    );
    expect(() => createPolicyEngine(p)).toThrow(/a.cedar:4 policy id "x" is already used[\s\S]*a.cedar:5 policy "x": @approval\("boss"\)/);
  });
});

describe("attribute trimming never drops what a policy reads", () => {
  const forbidding = async (text: string) => createPolicyEngine(await loadProject(await project({ "f.cedar": text })));
  const refund = (engine: ReturnType<typeof createPolicyEngine>, args: Record<string, unknown>) =>
    engine.authorize(toolCallRequest({ agent: "refunds", tool: refundTool, args })).effect;

  it('reads arguments through context["arguments"]', async () => {
    const engine = await forbidding(
      `forbid (principal, action, resource) when { context has arguments && context["arguments"] has order && context["arguments"]["order"] == "A1" };`,
    );
    expect(refund(engine, { order: "A1", amount: 1 })).toBe("deny");
    expect(refund(engine, { order: "B2", amount: 1 })).toBe("allow");
  });

  it("reads arguments through a has path", async () => {
    const engine = await forbidding(`forbid (principal, action, resource) when { context has arguments.override };`);
    expect(refund(engine, { order: "A1", amount: 1, override: true })).toBe("deny");
  });

  it("a // inside a string is not a comment", async () => {
    const engine = await forbidding(
      `forbid (principal, action, resource) when { resource.connection != "https://x" && context.arguments has order && context.arguments.order == "A1" };`,
    );
    expect(refund(engine, { order: "A1", amount: 1 })).toBe("deny");
  });

  it("a delegation to oneself carries the attributes policies read of the resource", async () => {
    const engine = await forbidding(
      `forbid (principal, action == Action::"agent.delegate", resource) when { resource.clearance == "restricted" };`,
    );
    expect(engine.authorize(delegateRequest({ agent: "refunds", target: "refunds" })).effect).toBe("deny");
  });
});

describe("schema", () => {
  it("the baseline validates in strict mode", async () => {
    const p = await loadProject(await project());
    expect(checkPolicies(p)).toEqual({ errors: [], warnings: [] });
  });

  it("reports misspelt attributes and unguarded optional ones as errors, unknown arguments as warnings", async () => {
    const p: Project = await loadProject(
      await project({
        "checks.cedar": `permit (principal, action == Action::"tool.call", resource)
when { resource.clasification_level > 1 };

permit (principal, action == Action::"tool.call", resource)
when { context.amount_cents > 1 };

permit (principal, action == Action::"tool.call", resource)
when { context.arguments has amount && context.arguments.amount > 5 && context.arguments has iban && context.arguments.iban == "x" };
`,
      }),
    );
    const { errors, warnings } = checkPolicies(p);
    expect(errors.map((e) => [e.file, e.line])).toEqual([
      ["policies/checks.cedar", 2],
      ["policies/checks.cedar", 5],
    ]);
    expect(errors[0]?.message).toMatch(
      /policy "policies\/checks.cedar#1": attribute `clasification_level`.*did you mean `classification_level`/,
    );
    expect(errors[1]?.message).toMatch(/context has amount_cents/);
    // `amount` is an argument of ledger.refund (typed Long); `iban` is no project tool's.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ file: "policies/checks.cedar", line: 7 });
    // Guarded by `has`, an argument no project tool has makes the policy "impossible" for the validator.
    expect(warnings[0]?.message).toMatch(/impossible.*connection's tool/);
  });

  it("prints the generated schema in Cedar syntax", async () => {
    const text = policySchemaText(await loadProject(await project()));
    expect(text).toMatch(/entity Agent = \{[\s\S]*clearance_level: Long/);
    expect(text).toMatch(/action "tool.call" appliesTo[\s\S]*amount_cents\?: Long[\s\S]*amount\?: Long/);
  });
});
