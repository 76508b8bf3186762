/**
 * Acme's month-end close (examples/acme/workflows/month-end-close.yaml) on the real runtime and the real ledger (an
 * MCP server over its SQLite database): the month's refunds are reconciled, a refund whose credit note is for another
 * amount goes to the invoicing agent, whose typed answer is kept; the run waits for a finance operator's approval
 * holding nothing; approved, the period is closed once in the ledger. A second close of the same month fails at the
 * posting step, naming why, and the ledger still holds one closing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import { createScriptedClient, type ModelRequest } from "../../src/models/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { localCaller } from "../../src/security/identity/index.js";
import { addMismatchedRefund } from "../helpers/acme-ledger.js";
import { until } from "../helpers/until.js";
import { finish } from "../runtime/fixtures.js";

const ACME = path.resolve(import.meta.dirname, "../../examples/acme");
const MONTH = "2026-11";

/** The invoicing agent, asked by the workflow: first an answer that is not JSON, then a valid one. */
let asked = 0;
const model = createScriptedClient("offline", (req: ModelRequest) => {
  const task = String(req.messages.filter((m) => m.role === "user").at(-1)?.content ?? "");
  if (!task.includes("Month-end close")) return "Nothing to do.";
  asked++;
  if (!task.includes("could not be used")) return "RF-T1 looks wrong to me.";
  return JSON.stringify({ summary: "RF-T1 refunded 14.95 against a credit note of 10.00", refund_ids: ["RF-T1"] });
});

let outpost: Outpost;
let dataDir: string;
const ledger = () => new Database(path.join(dataDir, "acme", "ledger.db"));

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), "outpost-acme-close-"));
  const project = await loadProject(ACME);
  for (const c of project.connections.values()) if (c.kind === "mcp") c.connectTimeoutMs = 90_000;
  outpost = await startOutpost({ project, dataDir, modelFor: () => model, pollMs: 50 });
  await until("the systems to be connected", async () => (outpost.connections().every((c) => c.state === "ready") ? true : null), 120_000);
  // A refund of November whose credit note is for less: the mismatch the close must catch.
  const db = ledger();
  addMismatchedRefund(db, "T1");
  db.close();
}, 150_000);
afterAll(async () => {
  await outpost?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("Acme's month-end close", () => {
  it("reconciles, has the mismatch explained, waits for finance, and closes the period once", async () => {
    const run = await outpost.startWorkflowAs(localCaller("acme"), "month-end-close", { input: { month: MONTH } });
    await until(
      "the close to wait for the controller",
      async () => ((await outpost.getRun(run.id)).status === "waiting" ? true : null),
      30_000,
    );
    expect(asked).toBe(2); // the first answer was not JSON: asked again, within retries
    const [approval] = await outpost.listApprovals({ status: "pending" });
    expect(approval).toMatchObject({ run_id: run.id, tool: "workflow.approval", approver: { role: "operator", group: "finance" } });
    expect(String((approval.arguments as { message: string }).message)).toMatch(/Close 2026-11: 1 refunds, 14.95 USD, 1 mismatches/);

    const events = await outpost.getEvents(run.id);
    const explained = events.find((e) => e.type === "step.completed" && e.data.path === "explain");
    expect(explained?.data.output).toEqual({ summary: "RF-T1 refunded 14.95 against a credit note of 10.00", refund_ids: ["RF-T1"] });
    // Tool steps were decided by policy, with the workflow as principal (finance's team and clearance).
    const decisions = events
      .filter((e) => e.type === "policy.decided")
      .map((e) => (e.data.request as { resource: { id: string } }).resource.id);
    expect(decisions).toContain("ledger.reconcile_refunds");
    expect(events.filter((e) => e.type === "policy.decided").every((e) => e.data.effect === "allow")).toBe(true);
    expect(ledger().prepare("SELECT COUNT(*) AS n FROM closed_periods").get()).toEqual({ n: 0 });

    await outpost.decideApproval(approval.id, { decision: "approve", by: "controller" });
    const done = await finish(outpost, run.id, 30_000);
    expect(done.status, JSON.stringify(done.error)).toBe("completed");
    expect(JSON.parse(done.output as string)).toMatchObject({
      month: MONTH,
      refunds: 1,
      mismatches: 1,
      closing_id: expect.stringMatching(/^CLOSE-/),
    });
    const db = ledger();
    expect(db.prepare("SELECT month, refunds, refunds_cents FROM closed_periods").all()).toEqual([
      { month: MONTH, refunds: 1, refunds_cents: 1495 },
    ]);
    db.close();

    // What an auditor reads: the posting's decision with its data class, the approval asked (and until when), the
    // posting executed — each with the workflow as the actor.
    await outpost.audit.flush();
    const entries = await outpost.audit.list("acme", { runId: run.id });
    const posting = entries.find(
      (e) => e.kind === "policy.decision" && (e.data.resource as { id: string }).id === "ledger.post_closing_entries",
    );
    expect(posting).toMatchObject({
      actor: "agent:workflow:month-end-close",
      data: { effect: "allow", classification: "confidential", run_classification: "confidential", tainted: false },
    });
    expect(entries.find((e) => e.kind === "approval.requested")).toMatchObject({
      data: { tool: "workflow.approval", approver: { role: "operator", group: "finance" }, expires_at: expect.any(String) },
    });
    expect(entries.filter((e) => e.kind === "tool.executed").map((e) => e.data.tool)).toEqual(
      expect.arrayContaining(["ledger.reconcile_refunds", "ledger.post_closing_entries"]),
    );
  }, 60_000);

  it("refuses to close a month twice: the posting step fails, naming why, and the ledger keeps one closing", async () => {
    const run = await outpost.startWorkflowAs(localCaller("acme"), "month-end-close", { input: { month: MONTH } });
    await until("the second close to wait", async () => ((await outpost.getRun(run.id)).status === "waiting" ? true : null), 30_000);
    const pending = (await outpost.listApprovals({ status: "pending" })).find((a) => a.run_id === run.id);
    await outpost.decideApproval(pending?.id as string, { decision: "approve", by: "controller" });
    const done = await finish(outpost, run.id, 30_000);
    expect(done.status).toBe("failed");
    expect(done.error?.message).toMatch(/step post failed: .*already closed/);
    const db = ledger();
    expect(db.prepare("SELECT COUNT(*) AS n FROM closed_periods").get()).toEqual({ n: 1 });
    db.close();
    await expect(outpost.startWorkflowAs(localCaller("acme"), "month-end-close", { input: { month: "November" } })).rejects.toThrow(
      /month/,
    );
  }, 60_000);
});
