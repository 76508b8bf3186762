/**
 * `outpost workflows ls | start` on the local store: the project's workflows listed with their steps; a start runs the
 * workflow in this process and shows each step live, ending with its output (exit 0), or stops at an approval with
 * the commands to decide it; an input that is not JSON, or that the workflow's schema refuses, and an unknown
 * workflow each get a precise message and exit 2 or 1, starting nothing.
 */
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { removeDir, runCli, SHOP, tempDir } from "./harness.js";

const dir = tempDir();
const project = path.join(dir, "shop");
cpSync(SHOP, project, { recursive: true });
mkdirSync(path.join(project, "workflows"));
writeFileSync(
  path.join(project, "workflows", "order-check.yaml"),
  `name: order-check
description: Looks an order up and notes it; over $100 a person confirms first.
clearance: confidential
input: { type: object, required: [order_id], properties: { order_id: { type: string } } }
steps:
  - id: order
    tool: orders.lookup
    arguments: { order_id: "{{ input.order_id }}" }
  - id: big
    if: "steps.order.output.total > 100"
    then:
      - id: confirm
        approval: { message: "Order {{ input.order_id }} is over $100" }
output: { id: "{{ steps.order.output.id }}", status: "{{ steps.order.output.status }}" }
`,
);
// Orders are confidential: a workflow of the default clearance (internal) may not read them.
writeFileSync(
  path.join(project, "workflows", "order-peek.yaml"),
  "name: order-peek\nsteps:\n  - { id: order, tool: orders.lookup, arguments: { order_id: '1041' } }\n",
);
const data = path.join(dir, "data");
const local = ["--project", project, "--data", data];
afterAll(() => removeDir(dir));

describe("outpost workflows", { timeout: 90_000 }, () => {
  it("lists the project's workflows with their steps", async () => {
    const r = await runCli(["workflows", "ls", ...local]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/order-check\s+-\s+tool, branch\s+[0-9a-f]{12}\s+workflows\/order-check\.yaml/);
    const json = JSON.parse((await runCli(["workflows", "ls", "--json", ...local])).stdout);
    expect(json.find((w: { name: string }) => w.name === "order-check")).toMatchObject({
      steps: [
        { id: "order", kind: "tool", target: "orders.lookup" },
        { id: "big", kind: "branch" },
      ],
    });
  });

  it("starts a workflow and shows its steps to the end", async () => {
    const r = await runCli(["workflows", "start", "order-check", "--input", '{"order_id": "1041"}', ...local]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/▸ {2}step order tool/);
    expect(r.stdout).toMatch(/▸ {2}step big branch/);
    expect(r.stdout).toContain('{"id":"1041","status":"processing"}');
    expect(r.stdout).toMatch(/✓ completed/);
  });

  it("fails a step policy refuses, saying when the workflow's clearance is why", async () => {
    const r = await runCli(["workflows", "start", "order-peek", ...local]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      "policy denied orders.lookup: no policy permits it — the tool's data is confidential, above the workflow's clearance internal; raise clearance: in workflows/order-peek.yaml",
    );
  });

  it("stops at an approval, naming the commands that decide it", async () => {
    const r = await runCli(["workflows", "start", "order-check", "--input", '{"order_id": "1042"}', ...local]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/waiting for approval (apr_\w+)/);
    expect(r.stdout).toMatch(/approve: npx outpost approvals approve apr_\w+/);
    expect(r.stdout).toMatch(/follow it: npx outpost runs tail run_\w+/);
  });

  it("refuses an input that is not JSON, one the schema refuses, and an unknown workflow", async () => {
    const notJson = await runCli(["workflows", "start", "order-check", "--input", "{order: 1}", ...local]);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toMatch(/^error: --input is not JSON: .*\nhint: e\.g\. --input '\{"month": "2026-11"\}'/);
    const refused = await runCli(["workflows", "start", "order-check", "--input", '{"order": "1041"}', ...local]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/order_id/);
    expect(refused.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const unknown = await runCli(["workflows", "start", "nope", ...local]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^error: workflow "nope" does not exist/);
    expect(unknown.stderr).toContain("known workflows: order-check, order-peek");
  });
});
