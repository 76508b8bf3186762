/**
 * Acme's nightly stock check (agents/inventory.yaml `schedules:`) on the real runtime, the real warehouse (an MCP
 * server over its SQLite database) and the scripted model playing scripts/inventory.yaml, under simulated time: at
 * 02:00 in Dallas the inventory agent lists what is below its reorder point and raises one purchase order per
 * supplier and centre; the one over $5,000 waits for an operator of finance (policies/logistics.cedar), and only
 * finance may approve it. The next night finds nothing low — what was ordered is incoming — and orders nothing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTerminal } from "../../src/core/api.js";
import { loadProject } from "../../src/definitions/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import type { Caller } from "../../src/security/types.js";
import { until } from "../helpers/until.js";

const ACME = path.resolve(import.meta.dirname, "../../examples/acme");
const TRIGGER = "schedule:inventory.nightly-stock-check";
const operator = (groups: string[]): Caller => ({
  workspace: "acme",
  id: `key:${groups.join("-") || "ops"}`,
  name: groups.length ? "Dana Whitfield (finance)" : "Sam (operations)",
  roles: ["operator"],
  groups,
  via: "api_key",
  keyId: groups.join("-") || "ops",
});

const now = { t: Date.parse("2026-12-07T07:00:00Z") }; // 01:00 in Dallas
let outpost: Outpost;
let dataDir: string;

interface PurchaseOrderRow {
  id: string;
  supplier: string;
  location: string;
  note: string;
  lines: string;
}
const newPurchaseOrders = (): PurchaseOrderRow[] => {
  const db = new Database(path.join(dataDir, "acme", "warehouse.db"), { readonly: true });
  try {
    return db
      .prepare(
        `SELECT po.id, po.supplier, po.location, po.note, group_concat(l.quantity || ' x ' || l.sku) AS lines
         FROM purchase_orders po JOIN purchase_order_lines l ON l.po_id = po.id
         WHERE po.note LIKE 'Nightly stock check%' GROUP BY po.id ORDER BY po.id`,
      )
      .all() as PurchaseOrderRow[];
  } finally {
    db.close();
  }
};
const inventoryRuns = async () => (await outpost.listRuns({ agent: "inventory" })).items;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), "outpost-acme-stock-"));
  const project = await loadProject(ACME);
  for (const c of project.connections.values()) if (c.kind === "mcp") c.connectTimeoutMs = 90_000;
  outpost = await startOutpost({ project, dataDir, clock: () => now.t, triggerTicks: false, pollMs: 50 });
  await until("the systems to be connected", async () => (outpost.connections().every((c) => c.state === "ready") ? true : null), 120_000);
}, 150_000);
afterAll(async () => {
  await outpost?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("Acme's nightly stock check", () => {
  it("raises the purchase orders that are due, the one over $5,000 after finance approves, and none twice", async () => {
    expect(await outpost.triggers.tick()).toBe(0); // the schedule starts from now
    now.t = Date.parse("2026-12-07T07:59:59Z");
    expect(await outpost.triggers.tick()).toBe(0);
    now.t = Date.parse("2026-12-07T08:00:01Z"); // 02:00 in Dallas (CST)
    expect(await outpost.triggers.tick()).toBe(1);

    const [run] = await inventoryRuns();
    await until("the check to wait for finance", async () => ((await outpost.getRun(run.id)).status === "waiting" ? true : null), 60_000);
    // Under $5,000: ordered at once. Over: asked of finance, nothing ordered yet.
    expect(newPurchaseOrders()).toMatchObject([{ supplier: "Ember Supply Co.", location: "CMH", lines: "20 x ACM-1002" }]);
    const [approval] = await outpost.listApprovals({ status: "pending" });
    expect(approval).toMatchObject({
      run_id: run.id,
      tool: "warehouse.create_purchase_order",
      approver: { role: "operator", group: "finance" },
      arguments: { location: "DFW", items: [{ sku: "ACM-1031", quantity: 30 }], total: 5609.7 },
    });

    await expect(outpost.as(operator([])).decideApproval(approval.id, { decision: "approve" })).rejects.toThrow(/finance/);
    await outpost.as(operator(["finance"])).decideApproval(approval.id, { decision: "approve", reason: "Q1 demand" });
    await until("the check to finish", async () => (isTerminal((await outpost.getRun(run.id)).status) ? true : null), 60_000);
    expect(await outpost.getRun(run.id)).toMatchObject({ status: "completed", output: expect.stringMatching(/on order/) });
    expect(newPurchaseOrders().map((p) => `${p.location} ${p.lines}`)).toEqual(["CMH 20 x ACM-1002", "DFW 30 x ACM-1031"]);

    // The next night: both lines are incoming now, so the check orders nothing.
    now.t = Date.parse("2026-12-08T08:00:01Z");
    expect(await outpost.triggers.tick()).toBe(1);
    await until("the second check to finish", async () => {
      const runs = await inventoryRuns();
      return runs.length === 2 && runs.every((r) => isTerminal(r.status)) ? runs : null;
    });
    expect(newPurchaseOrders()).toHaveLength(2);
    const firings = await outpost.triggers.firings(TRIGGER);
    expect(firings.map((f) => [f.key, f.status])).toEqual([
      ["2026-12-08T08:00:00.000Z", "started"],
      ["2026-12-07T08:00:00.000Z", "started"],
    ]);
    const second = firings[0].run_id ?? "";
    const calls = (await outpost.getEvents(second)).filter((e) => e.type === "tool.called").map((e) => e.data.tool);
    expect(calls).toEqual(["warehouse.list_low_stock"]);
    expect(await outpost.getRun(second)).toMatchObject({ status: "completed" });
  });
});
