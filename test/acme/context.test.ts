/**
 * Business context in Acme (examples/acme/context/*.yaml): real runtime, real MCP systems, real Acme policies. Support
 * (customer service) and refunds (finance) see the same order, the second from the first's lookup; a lookup is
 * decided as its tool's call, so support cannot look up an invoice (the ledger is finance's) and refunds cannot look
 * up a customer (restricted personal data, above its clearance); a customer looked up makes the run restricted; an
 * erasure of the customer removes the cached entity.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAMAGED_ORDER } from "../../examples/acme/systems/scenarios.js";
import type { EventView } from "../../src/core/api.js";
import { loadProject } from "../../src/definitions/index.js";
import { createScriptedClient, type ModelRequest } from "../../src/models/index.js";
import { readsData } from "../../src/models/scripted/client.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { localCaller } from "../../src/security/identity/index.js";
import { memoryApi } from "../../src/server/routes/memory.js";
import { until } from "../helpers/until.js";
import { finish } from "../runtime/fixtures.js";

const ACME = path.resolve(import.meta.dirname, "../../examples/acme");

/** A run's input is the lookup to make, as JSON; the model makes it, then answers with what it got. */
const model = createScriptedClient("offline", (req: ModelRequest) => {
  const tool = req.messages.filter((m) => m.role === "tool").at(-1);
  if (tool) return `got: ${readsData(tool.content)}`;
  const input = req.messages.find((m) => m.role === "user")?.content ?? "{}";
  return { toolCalls: [{ name: "context.lookup", arguments: input }] };
});

let outpost: Outpost;
let dataDir: string;
beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), "outpost-acme-context-"));
  const project = await loadProject(ACME);
  for (const c of project.connections.values()) if (c.kind === "mcp") c.connectTimeoutMs = 90_000;
  outpost = await startOutpost({ project, dataDir, modelFor: () => model, pollMs: 50 });
  await until(
    "the three systems to be connected",
    async () => (outpost.connections().every((c) => c.state === "ready") ? true : null),
    120_000,
  );
}, 150_000);
afterAll(async () => {
  await outpost?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function lookup(agent: string, args: Record<string, unknown>) {
  const started = await outpost.startRun({ agent, input: JSON.stringify(args) });
  const run = await finish(outpost, started.id);
  const events = await outpost.getEvents(started.id);
  const completed = events.find((e) => e.type === "tool.completed");
  const output = readsData(String(completed?.data.output ?? ""));
  // The lookup's decisions (recall and model choice are decided too).
  const decisions = events.filter(
    (e) => e.type === "policy.decided" && ["connector.use", "tool.call"].includes(String((e.data.request as { action: string }).action)),
  );
  return { run, events, completed, output, decisions };
}

const requested = (decisions: EventView[]) =>
  decisions.map((e) => {
    const r = (e.data as { request: { action: string; resource: { id: string } }; effect: string }).request;
    return `${r.action} ${r.resource.id}: ${(e.data as { effect: string }).effect}`;
  });

describe("Acme's business context", () => {
  it("gives support and refunds the same order: fetched by the first, shared with the second, with its source and age", async () => {
    const first = await lookup("support", { type: "order", id: DAMAGED_ORDER.orderId });
    expect(requested(first.decisions)).toEqual(["connector.use warehouse: allow", "tool.call warehouse.get_order: allow"]);
    expect(first.completed?.data.is_error).toBe(false);
    const seen = JSON.parse(first.output);
    expect(seen).toMatchObject({ subject: `order:${DAMAGED_ORDER.orderId}`, source: { tool: "warehouse.get_order", cached: false } });
    expect(JSON.stringify(seen.data)).toContain(DAMAGED_ORDER.shipmentId);

    const second = await lookup("refunds", { type: "order", id: DAMAGED_ORDER.orderId });
    const shared = JSON.parse(second.output);
    expect(shared.source).toMatchObject({ cached: true, fetched_by: `agent:support (run ${first.run.id})` });
    expect(shared.data).toEqual(seen.data);

    // A person sees what both were served: the same copy, from the first run, fresh for the order type's 2 minutes.
    const view = await memoryApi(outpost.memory, localCaller("acme"), outpost.context).getContext("order", DAMAGED_ORDER.orderId);
    expect(view).toMatchObject({ subject: `order:${DAMAGED_ORDER.orderId}`, data: seen.data, expired: false });
    expect(view.source).toMatchObject({ tool: "warehouse.get_order", run_id: first.run.id, fetched_at: seen.source.fetched_at });
    expect(Date.parse(view.fresh_until as string) - Date.parse(view.source.fetched_at)).toBe(120_000);
  });

  it("decides a lookup as the call of its tool: support may not look up an invoice, refunds may not look up a customer", async () => {
    const invoice = await lookup("support", { type: "invoice", id: DAMAGED_ORDER.invoiceId });
    expect(requested(invoice.decisions)[0]).toBe("connector.use ledger: deny");
    expect(invoice.completed?.data.is_error).toBe(true);
    expect(invoice.output).toContain("acme.customer_service_no_ledger");
    expect(invoice.events.some((e) => e.type === "tool.called")).toBe(false);

    const customer = await lookup("refunds", { type: "customer", id: DAMAGED_ORDER.customerId });
    expect(requested(customer.decisions)).toContain("tool.call helpdesk.get_customer: deny");
    expect(customer.completed?.data.is_error).toBe(true);

    const unknown = await lookup("refunds", { type: "parcel", id: "1" });
    expect(unknown.output).toBe('error: unknown entity type "parcel" — known: customer, invoice, order');
    expect(unknown.decisions).toEqual([]);
  });

  it("makes a run that looked up a customer restricted, and forgets the customer on erasure", async () => {
    const r = await lookup("support", { type: "customer", id: DAMAGED_ORDER.customerId });
    expect(JSON.parse(r.output).data).toMatchObject({ name: DAMAGED_ORDER.customerName });
    expect(r.completed?.data.classification).toBe("restricted");
    const erased = await outpost.memory.eraseSubject("acme", `customer:${DAMAGED_ORDER.customerId}`, "key:test");
    expect(erased.contextEntities).toBe(1);
    const again = await lookup("support", { type: "customer", id: DAMAGED_ORDER.customerId });
    expect(JSON.parse(again.output).source.cached).toBe(false);
  });
});
