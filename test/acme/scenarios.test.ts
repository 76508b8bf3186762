/**
 * Acme's three demo scenarios end to end: the example project (examples/acme) run by the real runtime
 * (`startOutpost`, scripted model, SQLite in a fresh data folder) with its three business systems as
 * real MCP servers, behind the HTTP API through which a person in finance decides the refund.
 * Afterwards the systems' own databases (`systemsState`) must show exactly what each scenario should
 * leave behind, and the run trees must show who worked on it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import demo from "../../examples/acme/demo.js";
import { systemsState } from "../../examples/acme/systems/inspect.js";
import { DAMAGED_ORDER, INVOICE_DISPUTE, LATE_SHIPMENT } from "../../examples/acme/systems/scenarios.js";
import type { ApprovalView, EventView, RunTreeView, RunView } from "../../src/core/api.js";
import { isTerminal } from "../../src/core/api.js";
import { loadProject } from "../../src/definitions/index.js";
import type { Project } from "../../src/definitions/types.js";
import { until } from "../helpers/until.js";
import { http, type Stack, startStack, waitForRun } from "../server/helpers.js";

const ACME = path.resolve(import.meta.dirname, "../../examples/acme");
const FINANCE = "Dana Whitfield (finance)";

/** A person in finance: an operator key of the finance group, created by the admin. Decisions are recorded as `key:<id>`. */
async function financeOperator(stack: Stack): Promise<{ headers: Record<string, string>; id: string }> {
  const created = await http<{ id: string; key: string }>(stack.url, "POST", "/v1/keys", {
    body: { name: FINANCE, roles: ["operator"], groups: ["finance"] },
  });
  expect(created.status).toBe(201);
  return { headers: { authorization: `Bearer ${created.body.key}` }, id: `key:${created.body.id}` };
}

const inputOf = (name: string): string => {
  const s = demo.scenarios.find((x) => x.name === name);
  if (!s) throw new Error(`no scenario ${name} in examples/acme/demo.ts`);
  expect(s.agent).toBe("triage");
  return s.input;
};

/**
 * The example project, with more time for each system to start: its first start seeds its database,
 * which on a busy 2-core CI machine can take longer than the default connect timeout (10 s).
 */
async function acmeProject(): Promise<Project> {
  const project = await loadProject(ACME);
  for (const c of project.connections.values()) if (c.kind === "mcp") c.connectTimeoutMs = 90_000;
  return project;
}

/** An Outpost on the example project in a fresh data folder, behind the HTTP API, once its three systems are connected. */
async function startAcme(dataDir: string): Promise<Stack> {
  const stack = await startStack({ project: await acmeProject(), dataDir });
  await until(
    "the three systems to be connected",
    async () => (stack.outpost.connections().every((c) => c.state === "ready") ? true : null),
    120_000,
  );
  return stack;
}

const flatten = (t: RunTreeView): RunView[] => [t.run, ...t.children.flatMap(flatten)];

interface Played {
  root: RunView;
  tree: RunTreeView;
  runs: RunView[];
  events: Map<string, EventView[]>;
  /** Every tool.called of the tree, by tool name. */
  calls: string[];
}

async function collect(stack: Stack, rootId: string): Promise<Played> {
  const o = stack.outpost;
  const tree = await o.getRunTree(rootId);
  const runs = flatten(tree);
  const events = new Map<string, EventView[]>();
  for (const r of runs) events.set(r.id, await o.getEvents(r.id));
  const calls = [...events.values()].flat().flatMap((e) => (e.type === "tool.called" ? [String(e.data.tool)] : []));
  return { root: tree.run, tree, runs, events, calls };
}

async function finished(stack: Stack, id: string): Promise<RunView> {
  return waitForRun(
    (x) => stack.outpost.getRun(x),
    id,
    (r) => isTerminal(r.status),
    60_000,
  );
}

/** What the helpdesk holds for a ticket: the agent replies the customer got. */
function agentReplies(dataDir: string, ticketId: string): string[] {
  const db = new Database(path.join(dataDir, "acme", "helpdesk.db"), { readonly: true, fileMustExist: true });
  try {
    return (
      db.prepare("SELECT body FROM messages WHERE ticket_id = ? AND author = 'agent' ORDER BY id").all(ticketId) as { body: string }[]
    ).map((m) => m.body);
  } finally {
    db.close();
  }
}

/** The agents of a node's child runs, sorted: siblings started in the same step have no guaranteed order. */
const childAgents = (t: RunTreeView) => t.children.map((c) => c.run.agent).sort();
function childOf(t: RunTreeView, agent: string): RunTreeView {
  const found = t.children.filter((c) => c.run.agent === agent);
  expect(found, `one ${agent} child of ${t.run.agent}`).toHaveLength(1);
  return found[0];
}

const typesOf = (events: EventView[]) => events.map((e) => e.type);
const indexOf = (events: EventView[], match: (e: EventView) => boolean) => events.findIndex(match);

/** The root was handled by triage, which handed the case to support (recorded as run.handed_off). */
function expectHandoff(p: Played): void {
  expect(p.root.agent).toBe("triage");
  expect(p.root.depth).toBe(0);
  const handed = (p.events.get(p.root.id) ?? []).filter((e) => e.type === "run.handed_off");
  expect(handed).toHaveLength(1);
  expect(handed[0].data).toMatchObject({ from: "triage", to: "support" });
}

/** Starts a scenario and waits until its refunds child run waits for a person's decision on the refund. */
async function untilRefundWaits(stack: Stack, input: string): Promise<{ root: RunView; refunds: RunView; approval: ApprovalView }> {
  const root = await stack.outpost.startRun({ agent: "triage", input });
  const refunds = await until("the refunds run to wait for an approval", async () => {
    const tree = await stack.outpost.getRunTree(root.id);
    const r = flatten(tree).find((x) => x.agent === "refunds");
    if (r && isTerminal(r.status)) throw new Error(`the refunds run ended without waiting for an approval: ${JSON.stringify(r)}`);
    return r?.status === "waiting" ? r : null;
  });
  const pending = await http<ApprovalView[]>(stack.url, "GET", "/v1/approvals?status=pending");
  expect(pending.status).toBe(200);
  const mine = pending.body.filter((a) => a.run_id === refunds.id);
  expect(mine).toHaveLength(1);
  return { root, refunds, approval: mine[0] };
}

describe("Acme's scenarios, played in sequence on one Outpost", { timeout: 180_000 }, () => {
  let stack: Stack;
  let dataDir: string;
  const acme = () => systemsState(path.join(dataDir, "acme"));

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), "outpost-acme-scenarios-"));
    stack = await startAcme(dataDir);
  }, 240_000);

  afterAll(async () => {
    await stack?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("starts from the seed: nothing shipped, claimed, refunded, credited or corrected", () => {
    const s = acme();
    expect(s.warehouse).toMatchObject({ reships: 0, carrier_claims: 0, delivery_estimate_updates: 0 });
    expect(s.ledger).toMatchObject({ refunds: 0, goodwill_credits: 0, corrected_invoices: 0 });
    expect(s.helpdesk?.agent_replies).toBe(0);
    for (const sc of Object.values(s.scenarios)) expect(sc.done).toBe(false);
  });

  it("keeps Acme's refund policy, shipping policy and carrier terms as knowledge, carrier terms for logistics only", async () => {
    const docs = await stack.outpost.memory.documents("acme");
    expect(docs.map((d) => [d.scope, d.name])).toEqual([
      ["team/logistics", "carrier-terms.md"],
      ["workspace", "refund-policy.md"],
      ["workspace", "shipping-policy.md"],
    ]);
    for (const d of docs) expect(d.chunks).toBeGreaterThan(1);
    const hits = await stack.outpost.memory.recall({
      workspace: "acme",
      text: "who approves a refund over $500",
      scopes: ["workspace", "team/customer-service"],
      limit: 3,
    });
    expect(hits[0]?.item.source).toMatchObject({
      kind: "knowledge",
      file: "refund-policy.md",
      heading: "Acme refund policy › Who approves a refund",
    });
    expect(hits.every((h) => h.item.scope !== "team/logistics")).toBe(true);
  });

  it("damaged order: the refund waits for finance's approval, then a reship, a claim, a 14.95 refund and one reply", async () => {
    const { root, refunds, approval } = await untilRefundWaits(stack, inputOf(DAMAGED_ORDER.name));

    // Waiting for a person: the refunds run holds the refund, and the ledger has not moved.
    expect(refunds).toMatchObject({ status: "waiting", depth: 1, parent_run_id: root.id, root_run_id: root.id });
    expect(refunds.waiting_for).toMatchObject({ kind: "approval", approval_id: approval.id });
    expect(approval).toMatchObject({ agent: "refunds", tool: "ledger.issue_refund", status: "pending", decided_by: null });
    expect(approval.arguments).toMatchObject({ order_id: DAMAGED_ORDER.orderId, amount: DAMAGED_ORDER.shippingFee });
    const before = acme();
    expect(before.scenarios.damaged_order.refunds).toEqual([]);
    expect(before.ledger?.refunds).toBe(0);
    const refundEvents = await stack.outpost.getEvents(refunds.id);
    // Before its first model call the refunds agent recalled from the refund policy (knowledge in the workspace scope).
    const policyChunks = (await stack.outpost.memory.list({ workspace: "acme", scopes: ["workspace"], kind: "knowledge", limit: 100 }))
      .filter((i) => i.source.file === "refund-policy.md")
      .map((i) => i.id);
    const recalled = refundEvents.find((e) => e.type === "memory.recalled");
    expect(((recalled?.data.items ?? []) as { id: string }[]).some((i) => policyChunks.includes(i.id))).toBe(true);
    expect(refundEvents.some((e) => e.type === "approval.requested" && e.data.tool === "ledger.issue_refund")).toBe(true);
    expect(refundEvents.some((e) => e.type === "tool.called" && e.data.tool === "ledger.issue_refund")).toBe(false);
    expect(isTerminal((await stack.outpost.getRun(root.id)).status)).toBe(false);

    // Governance: every action of the tree was put to policy; support never reached the ledger; the refund
    // (14.95, under $500) asked any operator (outpost.yaml), not finance's group.
    const decisions = refundEvents.filter((e) => e.type === "policy.decided");
    expect(decisions.map((e) => (e.data.request as { action: string }).action)).toEqual(
      expect.arrayContaining(["connector.use", "tool.call"]),
    );
    const refundDecision = decisions.find((e) => (e.data.request as { resource: { id: string } }).resource.id === "ledger.issue_refund");
    expect(refundDecision?.data).toMatchObject({ effect: "allow", approval: null });
    const asked = refundEvents.find((e) => e.type === "approval.requested");
    expect(asked?.data.approver).toEqual({ role: "operator", group: null });

    // A person in finance approves it through the API, with their own key.
    const finance = await financeOperator(stack);
    const decided = await http<ApprovalView>(stack.url, "POST", `/v1/approvals/${approval.id}`, {
      body: { decision: "approve", reason: "Shipping fee back for a monitor that arrived broken." },
      headers: finance.headers,
    });
    expect(decided.status).toBe(200);
    expect(decided.body).toMatchObject({ id: approval.id, status: "approved", decided_by: finance.id });

    const done = await finished(stack, root.id);
    expect(done.status).toBe("completed");
    expect(done.output).toContain(DAMAGED_ORDER.orderId);

    // The business systems: exactly what the scenario should leave behind.
    const s = acme().scenarios.damaged_order;
    expect(s.done).toBe(true);
    expect(s.reships).toHaveLength(1);
    expect(s.reships[0].items).toEqual([{ sku: DAMAGED_ORDER.damagedSku, quantity: 1 }]);
    expect(s.claims).toHaveLength(1);
    expect(s.claims[0]).toMatchObject({ shipment_id: DAMAGED_ORDER.shipmentId, reason: "damaged", amount: DAMAGED_ORDER.damagedItemPrice });
    expect(s.refunds).toHaveLength(1);
    expect(s.refunds[0].amount).toBe(DAMAGED_ORDER.shippingFee);
    expect(s).toMatchObject({ answered: true, ticket_status: "solved" });
    expect(agentReplies(dataDir, DAMAGED_ORDER.ticketId)).toHaveLength(1);

    // Who worked on it: triage → support (handoff), support delegated to shipments and refunds, shipments asked inventory.
    const p = await collect(stack, root.id);
    expectHandoff(p);
    expect(p.runs.every((r) => r.status === "completed")).toBe(true);
    expect(childAgents(p.tree)).toEqual(["refunds", "shipments"]);
    for (const c of p.tree.children) expect(c.run).toMatchObject({ depth: 1, parent_run_id: root.id, root_run_id: root.id });
    const shipments = childOf(p.tree, "shipments");
    expect(childAgents(shipments)).toEqual(["inventory"]);
    expect(shipments.children[0].run).toMatchObject({ depth: 2, parent_run_id: shipments.run.id, root_run_id: root.id });
    expect(shipments.children[0].children).toEqual([]);
    expect(childOf(p.tree, "refunds").children).toEqual([]);
    expect(childOf(p.tree, "refunds").run.id).toBe(refunds.id);
    expect(p.calls.filter((t) => t === "helpdesk.reply_to_customer")).toHaveLength(1);
    expect(p.calls.filter((t) => t === "ledger.issue_refund")).toHaveLength(1);

    // The refund ran only after the decision: requested → decided → called → completed.
    const ev = p.events.get(refunds.id) ?? [];
    const requested = indexOf(ev, (e) => e.type === "approval.requested");
    const decidedAt = indexOf(ev, (e) => e.type === "approval.decided");
    const called = indexOf(ev, (e) => e.type === "tool.called" && e.data.tool === "ledger.issue_refund");
    const completed = indexOf(ev, (e) => e.type === "tool.completed" && e.data.tool === "ledger.issue_refund");
    expect(requested).toBeGreaterThanOrEqual(0);
    expect(decidedAt).toBeGreaterThan(requested);
    expect(called).toBeGreaterThan(decidedAt);
    expect(completed).toBeGreaterThan(called);
    expect(ev[decidedAt].data).toMatchObject({ approval_id: approval.id, decision: "approve", by: finance.id });
    expect(ev[completed].data.is_error).toBe(false);
    expect((await stack.outpost.getRun(refunds.id)).output).toContain(s.refunds[0].id);
  });

  it("late shipment: a later delivery estimate, one goodwill credit within policy, one reply, no approval needed", async () => {
    const root = await stack.outpost.startRun({ agent: "triage", input: inputOf(LATE_SHIPMENT.name) });
    const done = await finished(stack, root.id);
    expect(done.status).toBe("completed");

    const s = acme().scenarios.late_shipment;
    expect(s.done).toBe(true);
    expect(s.estimated_delivery).not.toBeNull();
    expect(String(s.estimated_delivery) > LATE_SHIPMENT.originalEstimate).toBe(true);
    expect(s.estimate_updates).toBe(1);
    expect(s.goodwill_credits).toHaveLength(1);
    expect(s.goodwill_credits[0].amount).toBeGreaterThan(0);
    expect(s.goodwill_credits[0].amount).toBeLessThanOrEqual(LATE_SHIPMENT.goodwillCap);
    expect(s.goodwill_cap).toBe(25.34);
    expect(s.answered).toBe(true);
    expect(agentReplies(dataDir, LATE_SHIPMENT.ticketId)).toHaveLength(1);

    const p = await collect(stack, root.id);
    expectHandoff(p);
    expect(p.runs.every((r) => r.status === "completed")).toBe(true);
    expect(childAgents(p.tree)).toEqual(["refunds", "shipments"]);
    for (const c of p.tree.children) {
      expect(c.run).toMatchObject({ depth: 1, parent_run_id: root.id });
      expect(c.children).toEqual([]); // no stock question for a delayed parcel
    }
    expect(p.calls.filter((t) => t === "helpdesk.reply_to_customer")).toHaveLength(1);
    expect([...p.events.values()].flat().some((e) => e.type === "approval.requested")).toBe(false);
    const ids = new Set(p.runs.map((r) => r.id));
    expect((await stack.outpost.listApprovals()).filter((a) => ids.has(a.run_id))).toEqual([]);
  });

  it("invoice dispute: INV-105171 credited and replaced by INV-105171-R1 at 267.99, balance 0.00, one reply", async () => {
    const root = await stack.outpost.startRun({ agent: "triage", input: inputOf(INVOICE_DISPUTE.name) });
    const done = await finished(stack, root.id);
    expect(done.status).toBe("completed");

    const s = acme().scenarios.invoice_dispute;
    expect(s.done).toBe(true);
    expect(s).toMatchObject({
      original_invoice_status: "credited",
      replaced_by: `${INVOICE_DISPUTE.invoiceId}-R1`,
      replacement_total: 267.99,
      balance: 0,
      answered: true,
    });
    expect(agentReplies(dataDir, INVOICE_DISPUTE.ticketId)).toHaveLength(1);

    const p = await collect(stack, root.id);
    expectHandoff(p);
    expect(p.tree.children.map((c) => c.run.agent)).toEqual(["invoicing"]);
    expect(p.tree.children[0].run).toMatchObject({ depth: 1, parent_run_id: root.id, status: "completed" });
    expect(p.tree.children[0].children).toEqual([]);
    expect(p.calls.filter((t) => t === "ledger.issue_corrected_invoice")).toHaveLength(1);
    expect(p.calls.filter((t) => t === "helpdesk.reply_to_customer")).toHaveLength(1);
  });

  it("afterwards every scenario is done, and nothing else in the systems changed", () => {
    const s = acme();
    expect(Object.values(s.scenarios).map((x) => x.done)).toEqual([true, true, true]);
    expect(s.warehouse).toMatchObject({ reships: 1, carrier_claims: 1, delivery_estimate_updates: 1, purchase_orders_created: 0 });
    expect(s.ledger).toMatchObject({ refunds: 1, refunded_total: 14.95, goodwill_credits: 1, corrected_invoices: 1 });
    expect(s.helpdesk).toMatchObject({ agent_replies: 3, tickets_created: 0 });
  });
});

describe("a refund finance denies", { timeout: 180_000 }, () => {
  let stack: Stack;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), "outpost-acme-denied-"));
    stack = await startAcme(dataDir);
  }, 240_000);

  afterAll(async () => {
    await stack?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("is never paid; the refunds run fails with the reason, and support still answers the customer once", async () => {
    const { root, refunds, approval } = await untilRefundWaits(stack, inputOf(DAMAGED_ORDER.name));
    const reason = "Express shipping was used as promised; no refund.";
    const finance = await financeOperator(stack);
    const decided = await http<ApprovalView>(stack.url, "POST", `/v1/approvals/${approval.id}`, {
      body: { decision: "deny", reason },
      headers: finance.headers,
    });
    expect(decided.status).toBe(200);
    expect(decided.body).toMatchObject({ status: "denied", decided_by: finance.id, reason });

    const done = await finished(stack, root.id);
    const s = systemsState(path.join(dataDir, "acme"));
    expect(s.scenarios.damaged_order.refunds).toEqual([]);
    expect(s.ledger?.refunds).toBe(0);

    // The refunds run fails closed, saying who denied what and why; the tool never ran.
    const refundsRun = await stack.outpost.getRun(refunds.id);
    expect(refundsRun.status).toBe("failed");
    expect(refundsRun.error).toEqual({
      code: "approval_denied",
      message: `ledger.issue_refund was denied by ${finance.id}: ${reason}`,
    });
    const refundEvents = await stack.outpost.getEvents(refunds.id);
    expect(refundEvents.some((e) => e.type === "tool.called" && e.data.tool === "ledger.issue_refund")).toBe(false);
    expect(typesOf(refundEvents).at(-1)).toBe("run.failed");

    // Support is told (as an error result of delegate.refunds), the rest of the case goes on, and it answers once.
    expect(done.status).toBe("completed");
    const p = await collect(stack, root.id);
    expectHandoff(p);
    const delegated = (p.events.get(root.id) ?? []).find((e) => e.type === "tool.completed" && e.data.tool === "delegate.refunds");
    expect(delegated?.data.is_error).toBe(true);
    expect(String(delegated?.data.output)).toBe(
      `error: refunds did not finish (run ${refunds.id} failed): approval_denied: ledger.issue_refund was denied by ${finance.id}: ${reason}`,
    );
    const shipped = (p.events.get(root.id) ?? []).find((e) => e.type === "tool.completed" && e.data.tool === "delegate.shipments");
    expect(shipped?.data.is_error).toBe(false);
    expect(s.scenarios.damaged_order.reships).toHaveLength(1);
    expect(s.scenarios.damaged_order.claims).toHaveLength(1);
    expect(s.scenarios.damaged_order.answered).toBe(true);
    expect(s.scenarios.damaged_order.done).toBe(false); // no refund: not the expected end state
    expect(agentReplies(dataDir, DAMAGED_ORDER.ticketId)).toHaveLength(1);
    expect(p.calls.filter((t) => t === "helpdesk.reply_to_customer")).toHaveLength(1);
  });
});
