/**
 * `outpost policy test | schema | replay` through the real CLI, and `outpost validate` on policies.
 * Replay reads `policy.decided` events committed through the real store API.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ev } from "../../src/core/events.js";
import { loadProject } from "../../src/definitions/index.js";
import { createPolicyEngine, delegateRequest, toolCallRequest } from "../../src/security/policy/index.js";
import type { PolicyRequest } from "../../src/security/types.js";
import { openStore } from "../../src/store/index.js";
import { removeDir, runCli, tempDir } from "./harness.js";

const REFUNDS_POLICY = `@id("refunds.over_500")
@approval("operator:finance")
permit (principal, action == Action::"tool.call", resource == Tool::"ledger.refund")
when { context has amount_cents && context.amount_cents > 50000 };

@id("no_interns_delegating")
forbid (principal == Agent::"intern", action == Action::"agent.delegate", resource);
`;

let root: string;
beforeAll(async () => {
  root = tempDir("outpost-policy-cli-");
  await writeFile(
    path.join(root, "outpost.yaml"),
    "version: 1\nworkspace: acme\nmodels:\n  cloud: { provider: scripted }\ndefaults: { model: cloud }\n",
  );
  await mkdir(path.join(root, "agents"));
  await writeFile(path.join(root, "agents/refunds.yaml"), "name: refunds\ninstructions: pay\nclearance: confidential\n");
  await writeFile(path.join(root, "agents/intern.yaml"), "name: intern\ninstructions: read\nclearance: public\n");
});
afterAll(() => removeDir(root));

async function setPolicies(text: string | null): Promise<void> {
  await mkdir(path.join(root, "policies"), { recursive: true });
  const file = path.join(root, "policies/refunds.cedar");
  if (text === null) await writeFile(file, "// none yet\n");
  else await writeFile(file, text);
}

const EXAMPLES = `- name: small refund
  agent: refunds
  action: tool.call
  resource: { id: ledger.refund, attributes: { classification: confidential } }
  context: { arguments: { order: A1, amount: 20 } }
  expect: allow
- name: big refund needs finance
  agent: refunds
  action: tool.call
  resource: { id: ledger.refund, attributes: { classification: confidential } }
  context: { arguments: { amount: 900 } }
  on_behalf_of: user:ann
  expect: approval:operator:finance
- name: interns do not delegate
  agent: intern
  action: agent.delegate
  resource: refunds
  expect: deny
`;

describe("outpost policy test", () => {
  it("prints a table and exits 0 when every example matches", async () => {
    await setPolicies(REFUNDS_POLICY);
    const file = path.join(root, "examples.yaml");
    await writeFile(file, EXAMPLES);
    const r = await runCli(["policy", "test", file, "--project", root]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ok\s+big refund needs finance\s+approval:operator:finance\s+approval:operator:finance\s+refunds.over_500/);
    expect(r.stdout).toMatch(/ok\s+interns do not delegate\s+deny\s+deny\s+no_interns_delegating/);
    expect(r.stdout).toMatch(/3 examples passed/);
  });

  it("exits 1 on a mismatch, naming the example's line", async () => {
    await setPolicies(REFUNDS_POLICY);
    const file = path.join(root, "wrong.yaml");
    await writeFile(file, EXAMPLES.replace("expect: approval:operator:finance", "expect: allow"));
    const r = await runCli(["policy", "test", file, "--project", root]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL\s+big refund needs finance/);
    expect(r.stderr).toContain("wrong.yaml:7 big refund needs finance: expected allow, got approval:operator:finance");
  });

  it("exits 2 on a malformed file, with file:line", async () => {
    await setPolicies(REFUNDS_POLICY);
    const file = path.join(root, "bad.yaml");
    await writeFile(file, "- name: x\n  agent: refunds\n  action: tool.kall\n  resource: a\n  expect: maybe\n");
    const r = await runCli(["policy", "test", file, "--project", root]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad.yaml:3 \[0\]\.action/);
    expect(r.stderr).toMatch(/bad.yaml:5 \[0\]\.expect: expect is "allow"/);
  });
});

describe("outpost validate and schema", () => {
  it("validate reports a policy that does not fit the schema at file:line, and exits 1", async () => {
    await setPolicies(`permit (principal, action == Action::"model.use", resource)\nwhen { resource.locaton == "local" };\n`);
    const r = await runCli(["validate", "--project", root]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /policies\/refunds.cedar:2:\d+: policy "policies\/refunds.cedar#1": attribute `locaton` on entity type `Model` not found/,
    );
  });

  it("policy schema prints the generated Cedar schema", async () => {
    await setPolicies(REFUNDS_POLICY);
    const r = await runCli(["policy", "schema", "--project", root]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/action "model.use" appliesTo \{\s+principal: \[Agent\],\s+resource: \[Model\]/);
  });
});

describe("outpost policy replay", () => {
  it("lists the recorded decisions the current policies would flip", async () => {
    const data = path.join(root, ".outpost");
    // Decisions recorded under the baseline alone, as the runtime records them.
    await setPolicies(null);
    const before = createPolicyEngine(await loadProject(root));
    const requests: PolicyRequest[] = [
      toolCallRequest({ agent: "refunds", tool: { name: "ledger.refund", classification: "confidential" }, args: { amount: 900 } }),
      toolCallRequest({ agent: "refunds", tool: { name: "ledger.refund", classification: "confidential" }, args: { amount: 20 } }),
      delegateRequest({ agent: "intern", target: "refunds" }),
      toolCallRequest({ agent: "intern", tool: { name: "ledger.refund", classification: "confidential" }, args: {} }),
    ];
    const store = await openStore({ dataDir: data });
    const runIds: string[] = [];
    try {
      for (const request of requests) {
        const { run } = await store.createRun({ workspace: "acme", agent: request.agent, input: "go" });
        const [claimed] = await store.claimRuns("test", 1, 60_000);
        if (!claimed) throw new Error("no run to claim");
        const decision = before.authorize(request);
        const recorded = ev("policy.decided", {
          request: {
            action: request.action,
            agent: request.agent,
            on_behalf_of: request.onBehalfOf,
            resource: request.resource,
            context: request.context,
          },
          effect: decision.effect,
          policies: decision.policies,
          approval: decision.approval,
          policies_sha256: before.hash,
        });
        const latest = await store.getRun("acme", run.id);
        await store.commit({
          runId: run.id,
          leaseToken: claimed.leaseToken,
          expectedSeq: latest?.lastSeq ?? 0,
          events: [recorded, ev("run.completed", { output: "done" })],
          patch: { status: "completed", steps: 1, inputTokens: 0, outputTokens: 0, costUsd: 0, output: "done", release: true },
        });
        runIds.push(run.id);
      }
    } finally {
      await store.close();
    }

    await setPolicies(REFUNDS_POLICY);
    const r = await runCli(["policy", "replay", "--since", "1d", "--project", root, "--data", data]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    const flip = (runId: string) => lines.find((l) => l.includes(runId));
    expect(flip(runIds[0] as string)).toMatch(
      /refunds\s+tool.call\s+Tool::"ledger.refund"\s+allow\s+approval:operator:finance\s+baseline.tool_call, refunds.over_500/,
    );
    expect(flip(runIds[1] as string)).toBeUndefined();
    expect(flip(runIds[2] as string)).toMatch(/intern\s+agent.delegate\s+Agent::"refunds"\s+allow\s+deny\s+no_interns_delegating/);
    expect(flip(runIds[3] as string)).toBeUndefined();
    expect(r.stdout).toMatch(/4 decisions since .* replayed; 2 would flip/);

    const none = await runCli(["policy", "replay", "--since", "0s", "--project", root, "--data", data]);
    expect(none.stdout).toMatch(/^0 decisions since .* replayed; 0 would flip/m);
  });
});
