/**
 * Acme's business systems (examples/acme/systems) as real MCP servers: each is spawned as a child
 * process and driven with the MCP SDK client over stdio, in a temporary data folder.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openHelpdesk } from "../../examples/acme/systems/helpdesk.js";
import { resetSystems, systemsState } from "../../examples/acme/systems/inspect.js";
import { openLedger } from "../../examples/acme/systems/ledger.js";
import {
  DAMAGED_ORDER,
  FIXTURE_CUSTOMER_IDS,
  FIXTURE_PRODUCTS,
  INVOICE_DISPUTE,
  LATE_SHIPMENT,
} from "../../examples/acme/systems/scenarios.js";
import { acmeData } from "../../examples/acme/systems/seed.js";
import type { OpenedDatabase, SystemName } from "../../examples/acme/systems/system.js";
import { openWarehouse } from "../../examples/acme/systems/warehouse.js";

const REPO = path.resolve(import.meta.dirname, "../..");
const SYSTEMS_DIR = path.join(REPO, "examples/acme/systems");
const SYSTEMS: SystemName[] = ["helpdesk", "warehouse", "ledger"];
const KEY = "outpost/idempotency_key";

const folders: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "acme-systems-"));
  folders.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

async function connect(system: SystemName, dbFile: string): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ["--import", "tsx", path.join(SYSTEMS_DIR, `${system}.ts`), "--db", dbFile],
    cwd: REPO,
    stderr: "pipe",
  });
  const client = new Client({ name: "acme-systems-test", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

interface Called {
  isError: boolean;
  text: string;
  data: any;
  meta: Record<string, unknown> | undefined;
}

async function call(client: Client, name: string, args: Record<string, unknown>, key?: string): Promise<Called> {
  const result = (await client.callTool({ name, arguments: args, ...(key ? { _meta: { [KEY]: key } } : {}) })) as CallToolResult;
  const first = result.content[0];
  return {
    isError: result.isError === true,
    text: first?.type === "text" ? first.text : "",
    data: result.structuredContent,
    meta: result._meta,
  };
}

async function ok(client: Client, name: string, args: Record<string, unknown>, key?: string): Promise<any> {
  const result = await call(client, name, args, key);
  if (result.isError) throw new Error(`${name} failed: ${result.text}`);
  expect(JSON.parse(result.text)).toEqual(result.data);
  return result.data;
}

async function fails(client: Client, name: string, args: Record<string, unknown>, code: string, message: RegExp): Promise<string> {
  const result = await call(client, name, args);
  expect(result.isError, `${name} should fail: ${result.text}`).toBe(true);
  expect(result.data.error.code).toBe(code);
  expect(result.text).toMatch(message);
  expect(result.text).not.toMatch(/\n\s+at /); // never a stack trace
  return result.text;
}

function readDb(file: string): Database.Database {
  return new Database(file, { readonly: true, fileMustExist: true });
}

function rows(file: string, sql: string, ...params: unknown[]): any[] {
  const db = readDb(file);
  try {
    return db.prepare(sql).all(...params);
  } finally {
    db.close();
  }
}

function contentHash(file: string): string {
  const db = readDb(file);
  try {
    const hash = createHash("sha256");
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>;
    for (const { name } of tables) {
      hash.update(`\n${name}\n`);
      for (const row of db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).iterate()) hash.update(JSON.stringify(row));
    }
    return hash.digest("hex");
  } finally {
    db.close();
  }
}

const OPENERS: Record<SystemName, (file: string) => OpenedDatabase> = {
  helpdesk: openHelpdesk,
  warehouse: openWarehouse,
  ledger: openLedger,
};

// Orders the write-tool tests may touch (never the scenario fixtures).
const data = acmeData();
const fixtureSkus = new Set(FIXTURE_PRODUCTS.map((p) => p.sku));
const fixtureCustomers = new Set(FIXTURE_CUSTOMER_IDS);
const ordinary = data.orders.filter((o) => !fixtureCustomers.has(o.customerId));
/** Delivered, shipping charged, and with a line of a product that is always in stock. */
const delivered = ordinary.findLast(
  (o) => o.status === "delivered" && o.shippingFeeCents > 0 && o.lines.some((l) => fixtureSkus.has(l.sku)),
)!;
const inTransit = ordinary.findLast((o) => o.shipment?.status === "in_transit")!;
const processing = ordinary.findLast((o) => o.status === "processing")!;

describe("Acme business systems over MCP", () => {
  let dir: string;
  const clients = {} as Record<SystemName, Client>;
  const db = (system: SystemName) => path.join(dir, `${system}.db`);
  const seededHashes = {} as Record<SystemName, string>;

  beforeAll(async () => {
    dir = tempDir();
    await Promise.all(
      SYSTEMS.map(async (system) => {
        clients[system] = await connect(system, db(system));
        seededHashes[system] = contentHash(db(system));
      }),
    );
  });

  afterAll(async () => {
    await Promise.all(SYSTEMS.map((system) => clients[system]?.close()));
  });

  it("lists each system's tools, with descriptions, described inputs and read-only hints", async () => {
    const expected: Record<SystemName, { read: string[]; write: string[] }> = {
      helpdesk: {
        read: ["find_customer", "get_customer", "get_ticket", "list_tickets"],
        write: ["create_ticket", "add_note", "reply_to_customer", "triage_ticket", "set_ticket_status"],
      },
      warehouse: {
        read: ["get_order", "list_orders", "track_shipment", "search_products", "get_stock", "list_low_stock"],
        write: ["reserve_stock", "create_reship", "file_carrier_claim", "update_delivery_estimate", "create_purchase_order"],
      },
      ledger: {
        read: ["get_account", "get_invoice", "find_invoice_for_order", "list_payments", "reconcile_refunds"],
        write: ["issue_refund", "issue_goodwill_credit", "issue_corrected_invoice", "post_closing_entries", "reopen_period"],
      },
    };
    for (const system of SYSTEMS) {
      const { tools } = await clients[system].listTools();
      expect(tools.map((t) => t.name).sort()).toEqual([...expected[system].read, ...expected[system].write].sort());
      for (const tool of tools) {
        expect(tool.description?.length, tool.name).toBeGreaterThan(40);
        expect(tool.inputSchema.type).toBe("object");
        for (const [field, schema] of Object.entries(tool.inputSchema.properties ?? {})) {
          expect((schema as { description?: string }).description, `${system}.${tool.name}.${field}`).toBeTruthy();
        }
        const readOnly = expected[system].read.includes(tool.name);
        expect(tool.annotations?.readOnlyHint, tool.name).toBe(readOnly);
        if (!readOnly) expect(tool.description).toContain(KEY);
      }
    }
  });

  it("seeds ≥1,000 customers, ≥5,000 orders and ≥200 products, the same in all three systems", () => {
    const [customers] = rows(db("helpdesk"), "SELECT COUNT(*) AS n FROM customers");
    const [orders] = rows(db("warehouse"), "SELECT COUNT(*) AS n FROM orders");
    const [products] = rows(db("warehouse"), "SELECT COUNT(*) AS n FROM products");
    expect(customers.n).toBeGreaterThanOrEqual(1000);
    expect(orders.n).toBeGreaterThanOrEqual(5000);
    expect(products.n).toBeGreaterThanOrEqual(200);

    const helpdeskCustomers = rows(db("helpdesk"), "SELECT id, name, email FROM customers ORDER BY id");
    const ledgerCustomers = rows(db("ledger"), "SELECT customer_id AS id, name, email FROM accounts ORDER BY customer_id");
    expect(ledgerCustomers).toEqual(helpdeskCustomers);

    const warehouseOrders = rows(db("warehouse"), "SELECT id, customer_id, total_cents FROM orders ORDER BY id");
    const ledgerOrders = rows(db("ledger"), "SELECT id, customer_id, total_cents FROM orders ORDER BY id");
    expect(ledgerOrders).toEqual(warehouseOrders);
    const paid = rows(
      db("ledger"),
      "SELECT order_id AS id, customer_id, SUM(amount_cents) AS total_cents FROM payments GROUP BY order_id ORDER BY order_id",
    );
    expect(paid).toEqual(warehouseOrders);
    // Every invoice bills its order, except a handful of deliberately wrong ones (the dispute among them).
    const wrong = rows(
      db("ledger"),
      "SELECT i.id FROM invoices i JOIN orders o ON o.id = i.order_id WHERE i.total_cents != o.total_cents ORDER BY i.id",
    ).map((r) => r.id);
    expect(wrong).toContain(INVOICE_DISPUTE.invoiceId);
    expect(wrong.length).toBeGreaterThan(1);
    expect(wrong.length).toBeLessThan(20);
    // Tickets are about real customers and orders.
    const [orphans] = rows(db("helpdesk"), "SELECT COUNT(*) AS n FROM tickets WHERE customer_id NOT IN (SELECT id FROM customers)");
    expect(orphans.n).toBe(0);
    const ticketOrders = rows(db("helpdesk"), "SELECT DISTINCT order_id, customer_id FROM tickets WHERE order_id IS NOT NULL");
    const orderCustomer = new Map(warehouseOrders.map((o) => [o.id, o.customer_id]));
    for (const t of ticketOrders) expect(orderCustomer.get(t.order_id)).toBe(t.customer_id);
  });

  it("seeds deterministically: two fresh databases have the same content", () => {
    for (const system of SYSTEMS) {
      const a = path.join(tempDir(), `${system}.db`);
      const b = path.join(tempDir(), `${system}.db`);
      const first = OPENERS[system](a);
      expect(first.seeded).toBe(true);
      first.db.close();
      OPENERS[system](b).db.close();
      const again = OPENERS[system](a); // a second open finds the seed and leaves it alone
      expect(again.seeded).toBe(false);
      again.db.close();
      expect(contentHash(a), system).toBe(contentHash(b));
      expect(contentHash(a), `${system}: the server's seed`).toBe(seededHashes[system]);
    }
  });

  it("reads: customers, tickets, orders, tracking, stock, invoices, payments", async () => {
    const { helpdesk, warehouse, ledger } = clients;
    const found = await ok(helpdesk, "find_customer", { query: "maria.lopez@example.com" });
    expect(found.customers[0]).toMatchObject({ id: DAMAGED_ORDER.customerId, name: "Maria Lopez" });
    const customer = await ok(helpdesk, "get_customer", { customer_id: "10042" });
    expect(customer.recent_tickets.map((t: { id: string }) => t.id)).toContain(DAMAGED_ORDER.ticketId);
    const ticket = await ok(helpdesk, "get_ticket", { ticket_id: DAMAGED_ORDER.ticketId });
    expect(ticket).toMatchObject({ status: "open", order_id: DAMAGED_ORDER.orderId, customer: { id: DAMAGED_ORDER.customerId } });
    expect(ticket.messages[0]).toMatchObject({ author: "customer" });
    const open = await ok(helpdesk, "list_tickets", { status: "open", limit: 5 });
    expect(open.tickets).toHaveLength(5);
    expect(open.total).toBeGreaterThan(5);

    const order = await ok(warehouse, "get_order", { order_id: `#${DAMAGED_ORDER.orderId}` });
    expect(order).toMatchObject({ customer_id: DAMAGED_ORDER.customerId, status: "delivered", shipping_fee: 14.95, total: 363.94 });
    expect(order.shipments).toEqual([expect.objectContaining({ id: DAMAGED_ORDER.shipmentId, carrier: "UPS", status: "delivered" })]);
    const orders = await ok(warehouse, "list_orders", { customer_id: DAMAGED_ORDER.customerId });
    expect(orders.orders.map((o: { id: string }) => o.id)).toContain(DAMAGED_ORDER.orderId);
    const tracking = await ok(warehouse, "track_shipment", { shipment_id: LATE_SHIPMENT.trackingNumber });
    expect(tracking.shipments[0]).toMatchObject({ id: LATE_SHIPMENT.shipmentId, status: "delayed", estimated_delivery: "2026-10-31" });
    expect(tracking.shipments[0].events.at(-1)).toMatchObject({ status: "delayed", location: "Memphis, TN" });
    const byOrder = await ok(warehouse, "track_shipment", { order_id: processing.id });
    expect(byOrder.shipments).toEqual([]);
    const products = await ok(warehouse, "search_products", { query: "4k monitor" });
    expect(products.products.map((p: { sku: string }) => p.sku)).toContain(DAMAGED_ORDER.damagedSku);
    const stock = await ok(warehouse, "get_stock", { sku: "acm-1004" });
    expect(stock.locations).toHaveLength(3);
    expect(stock.total_available).toBeGreaterThan(10);

    const account = await ok(ledger, "get_account", { customer_id: INVOICE_DISPUTE.customerId });
    expect(account).toMatchObject({ balance: 19.99, store_credit: 0 });
    expect(account.open_invoices).toEqual([expect.objectContaining({ id: INVOICE_DISPUTE.invoiceId, amount_due: 19.99 })]);
    const invoice = await ok(ledger, "get_invoice", { invoice_id: INVOICE_DISPUTE.invoiceId });
    expect(invoice.lines.filter((l: { sku: string }) => l.sku === INVOICE_DISPUTE.duplicatedSku)).toHaveLength(2);
    expect(invoice).toMatchObject({ total: 287.98, amount_paid: 267.99, status: "open" });
    const forOrder = await ok(ledger, "find_invoice_for_order", { order_id: DAMAGED_ORDER.orderId });
    expect(forOrder).toMatchObject({ order_total: 363.94, shipping_fee: 14.95, paid: 363.94, refunded: 0 });
    expect(forOrder.invoice.lines.at(-1)).toMatchObject({ sku: "SHIPPING", amount: 14.95 });
    const payments = await ok(ledger, "list_payments", { order_id: DAMAGED_ORDER.orderId });
    expect(payments.entries).toEqual([expect.objectContaining({ type: "payment", amount: 363.94 })]);
  });

  it("unknown ids and bad input are errors that say what is wrong", async () => {
    const { helpdesk, warehouse, ledger } = clients;
    await fails(helpdesk, "get_ticket", { ticket_id: "T-1" }, "unknown_ticket", /Unknown ticket "T-1"/);
    await fails(helpdesk, "create_ticket", { customer_id: "C-99999", subject: "x", message: "y" }, "unknown_customer", /Unknown customer/);
    await fails(warehouse, "get_order", { order_id: "999999" }, "unknown_order", /Unknown order "999999"/);
    await fails(ledger, "issue_refund", { order_id: "999999", amount: 5, reason: "test" }, "unknown_order", /Unknown order/);
    await fails(ledger, "get_invoice", { invoice_id: "INV-1" }, "unknown_invoice", /Unknown invoice/);
    const invalid = await call(ledger, "issue_refund", { order_id: delivered.id, amount: "lots", reason: "test" });
    expect(invalid.isError).toBe(true);
    expect(invalid.text).toMatch(/amount/);
    await fails(ledger, "issue_refund", { order_id: delivered.id, amount: 1.234, reason: "test" }, "invalid_amount", /two decimals/);
  });

  it("helpdesk writes: create a ticket, add a note, reply, set the status", async () => {
    const { helpdesk } = clients;
    const created = await ok(
      helpdesk,
      "create_ticket",
      { customer_id: delivered.customerId, subject: "Cable stopped working", message: "My cable stopped working.", order_id: delivered.id },
      "hd-create-1",
    );
    const id = created.ticket.id;
    expect(created.ticket).toMatchObject({ status: "open", customer_id: delivered.customerId, order_id: delivered.id });
    expect(id).toMatch(/^T-\d+$/);
    await fails(helpdesk, "set_ticket_status", { ticket_id: id, status: "solved" }, "not_answered", /cannot be solved yet/);
    const note = await ok(helpdesk, "add_note", { ticket_id: id, note: "Checked the order: delivered." });
    expect(note.note).toMatchObject({ author: "internal" });
    const reply = await ok(helpdesk, "reply_to_customer", { ticket_id: id, message: "We are sending a new cable." });
    expect(reply).toMatchObject({ previous_status: "open", status: "pending", reply: { author: "agent" } });
    const solved = await ok(helpdesk, "set_ticket_status", { ticket_id: id, status: "solved", note: "Replacement sent." });
    expect(solved).toMatchObject({ previous_status: "pending", status: "solved", changed: true });
    const ticket = await ok(helpdesk, "get_ticket", { ticket_id: id });
    expect(ticket.messages.map((m: { author: string }) => m.author)).toEqual(["customer", "internal", "agent", "internal"]);
    expect(ticket.status).toBe("solved");
  });

  it("warehouse writes: reserve stock, reship, claim, new estimate, purchase order — and their rules", async () => {
    const { warehouse } = clients;
    const line = delivered.lines.find((l) => fixtureSkus.has(l.sku))!;

    const reserved = await ok(warehouse, "reserve_stock", { sku: line.sku, quantity: 2, reason: "hold for a VIP", order_id: delivered.id });
    expect(reserved.reservation_id).toMatch(/^RSV-\d+$/);
    const soldOut = rows(db("warehouse"), "SELECT sku FROM stock GROUP BY sku HAVING SUM(on_hand - reserved) = 0 ORDER BY sku LIMIT 1")[0]
      .sku;
    await fails(
      warehouse,
      "reserve_stock",
      { sku: soldOut, quantity: 1, reason: "test" },
      "out_of_stock",
      new RegExp(`Not enough stock of ${soldOut}`),
    );

    await fails(
      warehouse,
      "create_reship",
      { order_id: processing.id, items: [{ sku: processing.lines[0].sku, quantity: 1 }], reason: "test" },
      "not_shipped",
      /not shipped yet/,
    );
    const notInOrder = data.products.find((p) => !delivered.lines.some((l) => l.sku === p.sku))!.sku;
    await fails(
      warehouse,
      "create_reship",
      { order_id: delivered.id, items: [{ sku: notInOrder, quantity: 1 }], reason: "test" },
      "not_in_order",
      /is not in order/,
    );
    await fails(
      warehouse,
      "create_reship",
      { order_id: delivered.id, items: [{ sku: line.sku, quantity: line.quantity + 1 }], reason: "test" },
      "reship_exceeds_order",
      /at most/,
    );
    const reship = await ok(warehouse, "create_reship", {
      order_id: delivered.id,
      items: [{ sku: line.sku, quantity: line.quantity }],
      reason: "arrived broken",
    });
    expect(reship.reship).toMatchObject({
      order_id: delivered.id,
      original_shipment_id: `SHP-${delivered.id}`,
      items: [{ sku: line.sku, quantity: line.quantity }],
    });
    expect(reship.shipment).toMatchObject({ id: `SHP-${delivered.id}-R1`, kind: "reship", status: "label_created" });
    await fails(
      warehouse,
      "create_reship",
      { order_id: delivered.id, items: [{ sku: line.sku, quantity: 1 }], reason: "again" },
      "reship_exceeds_order",
      /already reshipped/,
    );

    const shipment = `SHP-${delivered.id}`;
    await fails(
      warehouse,
      "file_carrier_claim",
      { shipment_id: shipment, reason: "damaged", amount: delivered.totalCents / 100 + 1, description: "crushed box" },
      "claim_too_large",
      /declared value/,
    );
    await fails(
      warehouse,
      "file_carrier_claim",
      { shipment_id: shipment, reason: "lost", amount: 5, description: "never came" },
      "already_delivered",
      /cannot be claimed as lost/,
    );
    await fails(
      warehouse,
      "file_carrier_claim",
      { shipment_id: inTransit.shipment!.id, reason: "damaged", amount: 5, description: "dented box" },
      "not_delivered",
      /needs a delivered shipment/,
    );
    const claim = await ok(warehouse, "file_carrier_claim", {
      shipment_id: shipment,
      reason: "damaged",
      amount: line.unitPriceCents / 100,
      description: "crushed box",
    });
    expect(claim.claim).toMatchObject({ shipment_id: shipment, status: "filed", amount: line.unitPriceCents / 100 });
    await fails(
      warehouse,
      "file_carrier_claim",
      { shipment_id: shipment, reason: "damaged", amount: 1, description: "again" },
      "claim_exists",
      /already has claim/,
    );

    await fails(
      warehouse,
      "update_delivery_estimate",
      { shipment_id: shipment, estimated_delivery: "2026-11-20", reason: "test" },
      "already_delivered",
      /already delivered/,
    );
    await fails(
      warehouse,
      "update_delivery_estimate",
      { shipment_id: inTransit.shipment!.id, estimated_delivery: "2026-02-30", reason: "test" },
      "invalid_date",
      /not a date/,
    );
    const estimate = await ok(warehouse, "update_delivery_estimate", {
      shipment_id: inTransit.shipment!.id,
      estimated_delivery: "2026-11-09",
      reason: "carrier backlog",
    });
    expect(estimate).toMatchObject({
      changed: true,
      previous_estimate: inTransit.shipment!.estimatedDelivery,
      shipment: { estimated_delivery: "2026-11-09" },
    });
    const tracked = await ok(warehouse, "track_shipment", { shipment_id: inTransit.shipment!.id });
    expect(tracked.shipments[0].events.at(-1)).toMatchObject({ status: "estimate_updated" });

    const [a, b] = [data.products[0], data.products.find((p) => p.supplier !== data.products[0].supplier)!];
    await fails(
      warehouse,
      "create_purchase_order",
      {
        location: "CMH",
        items: [
          { sku: a.sku, quantity: 10 },
          { sku: b.sku, quantity: 10 },
        ],
        total: 10_000,
      },
      "mixed_suppliers",
      /one supplier/,
    );
    const po = await ok(warehouse, "create_purchase_order", {
      location: "CMH",
      items: [{ sku: a.sku, quantity: 40 }],
      total: (a.costCents * 40) / 100,
      note: "restock",
    });
    expect(po.purchase_order).toMatchObject({
      id: "PO-2031",
      supplier: a.supplier,
      status: "ordered",
      lines: [{ sku: a.sku, quantity: 40 }],
    });
    const stock = await ok(warehouse, "get_stock", { sku: a.sku });
    expect(stock.incoming).toContainEqual(expect.objectContaining({ id: "PO-2031", quantity: 40, location: "CMH" }));

    // Below the reorder point: two lines as seeded, one purchase order each (supplier and centre).
    const low = await ok(warehouse, "list_low_stock", {});
    expect(low).toMatchObject({ reorder_points_checked: 16, below_reorder_point: 2 });
    expect(low.purchase_orders).toMatchObject([
      { supplier: "Ember Supply Co.", location: "CMH", items: [{ sku: "ACM-1002", quantity: 20 }], total: 1946.8 },
      { supplier: "Nimbus Supply Co.", location: "DFW", items: [{ sku: "ACM-1031", quantity: 30 }], total: 5609.7 },
    ]);
    expect(low.purchase_orders[1].lines[0]).toMatchObject({ available: 7, incoming: 0, reorder_point: 10, unit_cost: 186.99 });
    const [ember, nimbus] = low.purchase_orders as Array<{ location: string; items: unknown[]; total: number }>;
    await fails(
      warehouse,
      "create_purchase_order",
      { location: nimbus.location, items: nimbus.items, total: 4999 },
      "total_understated",
      /cost 5609\.70 USD, more than the total of 4999\.00/,
    );
    await ok(warehouse, "create_purchase_order", { location: ember.location, items: ember.items, total: ember.total });
    // Ordered is incoming: the line is no longer low.
    const after = await ok(warehouse, "list_low_stock", { location: "CMH" });
    expect(after).toMatchObject({ reorder_points_checked: 5, below_reorder_point: 0, purchase_orders: [] });
  });

  it("ledger writes: refunds up to what was paid, goodwill within policy, corrected invoices", async () => {
    const { ledger } = clients;
    const total = delivered.totalCents / 100;
    await fails(
      ledger,
      "issue_refund",
      { order_id: delivered.id, amount: total + 0.01, reason: "too much" },
      "refund_too_large",
      /at most/,
    );
    const refund = await ok(ledger, "issue_refund", { order_id: delivered.id, amount: 5, reason: "partial" });
    expect(refund.refund).toMatchObject({ order_id: delivered.id, amount: 5 });
    const remaining = Math.round((total - 5) * 100) / 100;
    expect(refund.refundable_remaining).toBe(remaining);
    const tooMuch = await fails(
      ledger,
      "issue_refund",
      { invoice_id: `INV-${delivered.id}`, amount: total, reason: "too much" },
      "refund_too_large",
      /already refunded/,
    );
    expect(tooMuch).toContain(`at most ${remaining.toFixed(2)}`);

    // Goodwill: 15% of the order total, at most 50.00, across all credits for the order.
    const big = ordinary.find((o) => o.totalCents > 50000 && o.status === "delivered")!;
    await fails(ledger, "issue_goodwill_credit", { order_id: big.id, amount: 50.01, reason: "sorry" }, "above_policy", /at most 50\.00/);
    const credit = await ok(ledger, "issue_goodwill_credit", { order_id: big.id, amount: 30, reason: "sorry" });
    expect(credit).toMatchObject({ policy_cap: 50, remaining_under_policy: 20, account: { store_credit: 30 } });
    await fails(
      ledger,
      "issue_goodwill_credit",
      { order_id: big.id, amount: 20.01, reason: "sorry again" },
      "above_policy",
      /30\.00 was already credited/,
    );
    const small = ordinary.find((o) => o.totalCents > 2000 && o.totalCents < 5000)!;
    const smallCap = Math.floor((small.totalCents * 15) / 100) / 100;
    await fails(
      ledger,
      "issue_goodwill_credit",
      { order_id: small.id, amount: smallCap + 0.01, reason: "sorry" },
      "above_policy",
      /15% of the order total/,
    );
    await fails(
      ledger,
      "issue_goodwill_credit",
      { order_id: small.id, customer_id: "C-10001", amount: 1, reason: "sorry" },
      "mismatch",
      /belongs to/,
    );

    // Correcting an invoice that was already partly refunded: the replacement carries the payment and the refund.
    const invoice = await ok(ledger, "find_invoice_for_order", { order_id: delivered.id });
    const lines = invoice.invoice.lines.map((l: any) => ({ sku: l.sku, quantity: l.quantity, unit_price: l.unit_price }));
    await fails(
      ledger,
      "issue_corrected_invoice",
      { invoice_id: invoice.invoice.id, lines, reason: "nothing" },
      "no_change",
      /nothing to correct/,
    );
    const withoutShipping = lines.filter((l: { sku: string }) => l.sku !== "SHIPPING");
    const fee = delivered.shippingFeeCents / 100;
    const corrected = await ok(ledger, "issue_corrected_invoice", {
      invoice_id: invoice.invoice.id,
      lines: withoutShipping,
      reason: "shipping waived",
    });
    expect(corrected.original_invoice).toMatchObject({ id: `INV-${delivered.id}`, status: "credited", amount_due: 0 });
    expect(corrected.replacement_invoice).toMatchObject({ id: `INV-${delivered.id}-R1`, replaces: `INV-${delivered.id}` });
    expect(corrected.replacement_invoice.total).toBeCloseTo(total - fee, 2);
    // Paid in full, refunded 5.00, now billed `fee` less: Acme owes the customer fee − 5.00.
    expect(corrected.replacement_invoice.amount_due).toBeCloseTo(5 - fee, 2);
    await fails(
      ledger,
      "issue_corrected_invoice",
      { invoice_id: `INV-${delivered.id}`, lines, reason: "again" },
      "already_corrected",
      /replaced by INV-/,
    );
  });

  it("writes are idempotent by _meta key: a repeat returns the first answer and writes nothing", async () => {
    const { helpdesk, warehouse, ledger } = clients;
    const count = (system: SystemName, sql: string, ...params: unknown[]) => rows(db(system), sql, ...params)[0].n as number;

    // helpdesk: the same create_ticket twice with one key → one ticket.
    const args = { customer_id: "C-10007", subject: "Idempotent?", message: "Hello twice" };
    const tickets = count("helpdesk", "SELECT COUNT(*) AS n FROM tickets");
    const first = await call(helpdesk, "create_ticket", args, "idem-ticket");
    const second = await call(helpdesk, "create_ticket", args, "idem-ticket");
    expect(second.text).toBe(first.text);
    expect(second.meta?.["outpost/replayed"]).toBe(true);
    expect(count("helpdesk", "SELECT COUNT(*) AS n FROM tickets")).toBe(tickets + 1);
    // The same key for other arguments or another tool is refused.
    await expect(call(helpdesk, "create_ticket", { ...args, message: "different" }, "idem-ticket")).resolves.toMatchObject({
      isError: true,
    });
    const other = await call(helpdesk, "add_note", { ticket_id: first.data.ticket.id, note: "x" }, "idem-ticket");
    expect(other.isError).toBe(true);
    expect(other.text).toMatch(/already used for create_ticket/);
    // Without a key there is no de-duplication.
    await ok(helpdesk, "add_note", { ticket_id: first.data.ticket.id, note: "same" });
    await ok(helpdesk, "add_note", { ticket_id: first.data.ticket.id, note: "same" });
    expect(count("helpdesk", "SELECT COUNT(*) AS n FROM messages WHERE ticket_id = ? AND body = 'same'", first.data.ticket.id)).toBe(2);

    // warehouse: a reserve_stock retry holds stock once.
    const sku = FIXTURE_PRODUCTS[1].sku;
    const reserved = () => count("warehouse", "SELECT SUM(reserved) AS n FROM stock WHERE sku = ?", sku);
    const before = reserved();
    const r1 = await call(warehouse, "reserve_stock", { sku, quantity: 3, reason: "retry test" }, "idem-reserve");
    const r2 = await call(warehouse, "reserve_stock", { sku, quantity: 3, reason: "retry test" }, "idem-reserve");
    expect(r2.text).toBe(r1.text);
    expect(reserved()).toBe(before + 3);

    // ledger: a refund retry pays once.
    const order = ordinary.find((o) => o.status === "delivered" && o.id !== delivered.id)!;
    const f1 = await call(ledger, "issue_refund", { order_id: order.id, amount: 1.5, reason: "retry test" }, "idem-refund");
    const f2 = await call(ledger, "issue_refund", { order_id: order.id, amount: 1.5, reason: "retry test" }, "idem-refund");
    expect(f1.isError).toBe(false);
    expect(f2.text).toBe(f1.text);
    expect(count("ledger", "SELECT COUNT(*) AS n FROM refunds WHERE order_id = ?", order.id)).toBe(1);
    expect(count("ledger", "SELECT COUNT(*) AS n FROM idempotency WHERE key = 'idem-refund'")).toBe(1);
  });

  it("damaged order: reply, one reship, one carrier claim, a refund of exactly the shipping fee", async () => {
    const { helpdesk, warehouse, ledger } = clients;
    const f = DAMAGED_ORDER;
    expect(systemsState(dir).scenarios.damaged_order).toMatchObject({ ticket_status: "open", answered: false, done: false });
    const ticket = await ok(helpdesk, "get_ticket", { ticket_id: f.ticketId });
    const order = await ok(warehouse, "get_order", { order_id: ticket.order_id });
    const run = async () => {
      await ok(
        warehouse,
        "create_reship",
        { order_id: order.id, items: [{ sku: f.damagedSku, quantity: 1 }], reason: "screen cracked in transit" },
        "dmg-1",
      );
      await ok(
        warehouse,
        "file_carrier_claim",
        {
          shipment_id: order.shipments[0].id,
          reason: "damaged",
          amount: f.damagedItemPrice,
          description: "monitor screen cracked, box dented",
        },
        "dmg-2",
      );
      await ok(
        ledger,
        "issue_refund",
        { order_id: order.id, amount: order.shipping_fee, reason: "express shipping refunded: item arrived damaged" },
        "dmg-3",
      );
      await ok(
        helpdesk,
        "reply_to_customer",
        { ticket_id: f.ticketId, message: "Sorry! A new monitor is on its way and we refunded the shipping fee.", status: "solved" },
        "dmg-4",
      );
    };
    await run();
    await run(); // a retry of every step (same keys) changes nothing
    const state = systemsState(dir).scenarios.damaged_order;
    expect(state).toMatchObject({
      ticket_status: "solved",
      answered: true,
      reships: [{ items: [{ sku: f.damagedSku, quantity: 1 }] }],
      claims: [{ shipment_id: f.shipmentId, reason: "damaged", amount: 329 }],
      refunds: [{ amount: f.expected.refundAmount }],
      done: true,
    });
    const account = await ok(ledger, "get_account", { customer_id: f.customerId });
    expect(account.balance).toBe(0);
  });

  it("late shipment: a new estimate, a goodwill credit within policy, a reply", async () => {
    const { helpdesk, warehouse, ledger } = clients;
    const f = LATE_SHIPMENT;
    const tracking = await ok(warehouse, "track_shipment", { order_id: f.orderId });
    expect(tracking.shipments[0]).toMatchObject({ status: "delayed", estimated_delivery: f.originalEstimate });
    await ok(
      warehouse,
      "update_delivery_estimate",
      { shipment_id: f.shipmentId, estimated_delivery: "2026-11-05", reason: "weather delay at the Memphis hub" },
      "late-1",
    );
    await fails(
      ledger,
      "issue_goodwill_credit",
      { order_id: f.orderId, amount: 30, reason: "sorry for the delay" },
      "above_policy",
      /at most 25\.34/,
    );
    expect(systemsState(dir).scenarios.late_shipment.done).toBe(false);
    await ok(ledger, "issue_goodwill_credit", { order_id: f.orderId, amount: 20, reason: "sorry for the delay" }, "late-2");
    await ok(
      helpdesk,
      "reply_to_customer",
      { ticket_id: f.ticketId, message: "FedEx now expects delivery on Nov 5; we added 20.00 store credit." },
      "late-3",
    );
    const state = systemsState(dir).scenarios.late_shipment;
    expect(state).toMatchObject({
      ticket_status: "pending",
      answered: true,
      estimated_delivery: "2026-11-05",
      estimate_updates: 1,
      goodwill_credits: [{ amount: 20 }],
      done: true,
    });
  });

  it("invoice dispute: a corrected invoice matching the order, the original credited, balance 0.00", async () => {
    const { helpdesk, warehouse, ledger } = clients;
    const f = INVOICE_DISPUTE;
    const billed = await ok(ledger, "find_invoice_for_order", { order_id: f.orderId });
    expect(billed.invoice.amount_due).toBe(f.overcharge);
    const order = await ok(warehouse, "get_order", { order_id: f.orderId });
    const lines = order.lines.map((l: any) => ({ sku: l.sku, quantity: l.quantity, unit_price: l.unit_price }));
    const corrected = await ok(
      ledger,
      "issue_corrected_invoice",
      { invoice_id: f.invoiceId, lines, reason: "USB-C cable billed twice" },
      "inv-1",
    );
    expect(corrected).toMatchObject({
      original_invoice: { id: f.invoiceId, status: "credited" },
      replacement_invoice: { id: `${f.invoiceId}-R1`, total: f.orderTotal, amount_due: 0, status: "paid" },
      matches_order_total: true,
      account: { balance: 0 },
    });
    await ok(
      helpdesk,
      "reply_to_customer",
      { ticket_id: f.ticketId, message: "You were right: here is the corrected invoice.", status: "solved" },
      "inv-2",
    );
    expect(systemsState(dir).scenarios.invoice_dispute).toMatchObject({
      original_invoice_status: "credited",
      replaced_by: `${f.invoiceId}-R1`,
      replacement_total: f.orderTotal,
      balance: 0,
      done: true,
    });
  });

  it("summarises every system, and the ledger's balances still add up", () => {
    const state = systemsState(dir);
    expect(state.helpdesk?.tickets.total).toBe(
      (state.helpdesk?.tickets.open ?? 0) + (state.helpdesk?.tickets.pending ?? 0) + (state.helpdesk?.tickets.solved ?? 0),
    );
    expect(state.helpdesk?.tickets_created).toBe(2);
    expect(state.warehouse).toMatchObject({ reships: 2, carrier_claims: 2, delivery_estimate_updates: 2, purchase_orders_created: 2 });
    expect(state.ledger).toMatchObject({ refunds: 3, goodwill_credits: 2, corrected_invoices: 2 });
    expect(Object.values(state.scenarios).every((s) => s.done)).toBe(true);
    const drift = rows(
      db("ledger"),
      `SELECT a.customer_id FROM accounts a WHERE a.balance_cents !=
         COALESCE((SELECT SUM(total_cents) FROM invoices WHERE customer_id = a.customer_id), 0)
       - COALESCE((SELECT SUM(amount_cents) FROM credit_notes WHERE customer_id = a.customer_id), 0)
       - COALESCE((SELECT SUM(amount_cents) FROM payments WHERE customer_id = a.customer_id), 0)
       + COALESCE((SELECT SUM(amount_cents) FROM refunds WHERE customer_id = a.customer_id), 0)`,
    );
    expect(drift).toEqual([]);
  });
});

describe("the server process", () => {
  /** `node --import tsx <system>.ts`; tsx is found from the working directory unless given as a file URL. */
  function start(system: SystemName, options: { cwd: string; env: NodeJS.ProcessEnv; tsx?: string }) {
    const child = spawn(process.execPath, ["--import", options.tsx ?? "tsx", path.join(SYSTEMS_DIR, `${system}.ts`)], {
      cwd: options.cwd,
      env: options.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const ready = new Promise<void>((resolve, reject) => {
      child.stderr.on("data", () => stderr.includes("ready") && resolve());
      child.on("exit", (code) => reject(new Error(`exited with ${code} before it was ready: ${stderr}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    return { child, ready, exited, output: () => ({ stdout, stderr }) };
  }
  const env = (extra: NodeJS.ProcessEnv) => ({ PATH: process.env.PATH, HOME: process.env.HOME, ...extra });

  let running: ChildProcess | undefined;
  afterAll(() => {
    if (running && running.exitCode === null) running.kill("SIGKILL");
  });

  it("keeps its database under $OUTPOST_DATA_DIR/acme, logs to stderr only, and exits when stdin closes or on SIGTERM", async () => {
    const data = tempDir();
    const cwd = path.join(REPO, "examples/acme");
    const first = start("helpdesk", { cwd, env: env({ OUTPOST_DATA_DIR: data }) });
    running = first.child;
    await first.ready;
    expect(existsSync(path.join(data, "acme", "helpdesk.db"))).toBe(true);
    expect(first.output().stdout).toBe("");
    expect(first.output().stderr).toMatch(/\[acme-helpdesk\] ready: 9 tools/);
    first.child.stdin.end();
    expect(await first.exited).toBe(0);

    const second = start("helpdesk", { cwd, env: env({ OUTPOST_DATA_DIR: data }) });
    running = second.child;
    await second.ready;
    expect(second.output().stderr).not.toMatch(/seeded/); // the seed is kept
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);

    expect(systemsState(path.join(data, "acme")).helpdesk?.tickets.total).toBeGreaterThan(1000);
    expect(systemsState(path.join(data, "acme")).ledger).toBeNull();
    resetSystems(path.join(data, "acme"));
    expect(existsSync(path.join(data, "acme", "helpdesk.db"))).toBe(false);
  });

  it("falls back to ./.outpost/acme in the working directory", async () => {
    const cwd = tempDir();
    const server = start("ledger", { cwd, env: env({}), tsx: pathToFileURL(path.join(REPO, "node_modules/tsx/dist/loader.mjs")).href });
    running = server.child;
    await server.ready;
    expect(existsSync(path.join(cwd, ".outpost", "acme", "ledger.db"))).toBe(true);
    server.child.stdin.end();
    expect(await server.exited).toBe(0);
  });
});
