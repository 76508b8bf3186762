/**
 * A read-only look at Acme's three business systems: what agents changed since the seed, and
 * where each demo scenario stands. Used by the `outpost demo` summary and by tests.
 *
 *   import { systemsState } from "./examples/acme/systems/inspect.js";
 *   systemsState(".outpost/acme")   // the folder holding helpdesk.db, warehouse.db, ledger.db
 *
 * A database that does not exist yet (its server never started) reads as null.
 */
import { existsSync, rmSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { DAMAGED_ORDER, INVOICE_DISPUTE, LATE_SHIPMENT } from "./scenarios.js";
import type { SystemName } from "./system.js";

export const SYSTEMS: readonly SystemName[] = ["helpdesk", "warehouse", "ledger"];

export interface HelpdeskState {
  tickets: { open: number; pending: number; solved: number; total: number };
  /** Since the seed. */
  tickets_created: number;
  agent_replies: number;
  internal_notes: number;
}

export interface WarehouseState {
  reships: number;
  carrier_claims: number;
  delivery_estimate_updates: number;
  /** Since the seed. */
  reservations_made: number;
  purchase_orders_created: number;
}

export interface LedgerState {
  refunds: number;
  refunded_total: number;
  goodwill_credits: number;
  goodwill_total: number;
  corrected_invoices: number;
}

interface TicketState {
  ticket_status: string | null;
  /** The customer got an agent reply after their last message. */
  answered: boolean;
}

export interface DamagedOrderState extends TicketState {
  reships: Array<{ id: string; shipment_id: string; items: Array<{ sku: string; quantity: number }> }>;
  claims: Array<{ id: string; shipment_id: string; reason: string; amount: number; status: string }>;
  refunds: Array<{ id: string; amount: number }>;
  done: boolean;
}

export interface LateShipmentState extends TicketState {
  shipment_status: string | null;
  estimated_delivery: string | null;
  original_estimate: string;
  estimate_updates: number;
  goodwill_credits: Array<{ id: string; amount: number }>;
  goodwill_cap: number;
  done: boolean;
}

export interface InvoiceDisputeState extends TicketState {
  original_invoice_status: string | null;
  replaced_by: string | null;
  replacement_total: number | null;
  order_total: number;
  balance: number | null;
  done: boolean;
}

export interface SystemsState {
  dir: string;
  helpdesk: HelpdeskState | null;
  warehouse: WarehouseState | null;
  ledger: LedgerState | null;
  scenarios: {
    damaged_order: DamagedOrderState;
    late_shipment: LateShipmentState;
    invoice_dispute: InvoiceDisputeState;
  };
}

type Db = Database.Database;

/** The system's database, or null when it does not exist or is not seeded yet (its server is starting). */
function open(dbDir: string, system: SystemName): Db | null {
  const file = path.join(dbDir, `${system}.db`);
  if (!existsSync(file)) return null;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma("busy_timeout = 5000");
    if (db.prepare("SELECT value FROM meta WHERE key = 'seed_version'").get()) return db;
  } catch {
    // no meta table yet: the first open is still creating and seeding it
  }
  db.close();
  return null;
}

const cents = (n: number | null | undefined) => Math.round(n ?? 0) / 100;
const count = (db: Db, sql: string, ...params: unknown[]) => (db.prepare(sql).get(...params) as { n: number | null }).n ?? 0;

function seedRows(db: Db): Record<string, number> {
  const row = db.prepare("SELECT value FROM meta WHERE key = 'seed_rows'").get() as { value: string } | undefined;
  return row ? (JSON.parse(row.value) as Record<string, number>) : {};
}

function ticketState(db: Db | null, ticketId: string): TicketState {
  if (!db) return { ticket_status: null, answered: false };
  const ticket = db.prepare("SELECT status FROM tickets WHERE id = ?").get(ticketId) as { status: string } | undefined;
  const lastCustomer = count(db, "SELECT MAX(id) AS n FROM messages WHERE ticket_id = ? AND author = 'customer'", ticketId);
  const replies = count(
    db,
    "SELECT COUNT(*) AS n FROM messages WHERE ticket_id = ? AND author = 'agent' AND id > ?",
    ticketId,
    lastCustomer,
  );
  return { ticket_status: ticket?.status ?? null, answered: replies > 0 };
}

/** Counts of what changed in each system and the state of the three scenario fixtures. */
export function systemsState(dbDir: string): SystemsState {
  const helpdesk = open(dbDir, "helpdesk");
  const warehouse = open(dbDir, "warehouse");
  const ledger = open(dbDir, "ledger");
  try {
    return {
      dir: dbDir,
      helpdesk: helpdesk && helpdeskState(helpdesk),
      warehouse: warehouse && warehouseState(warehouse),
      ledger: ledger && ledgerState(ledger),
      scenarios: {
        damaged_order: damagedOrder(helpdesk, warehouse, ledger),
        late_shipment: lateShipment(helpdesk, warehouse, ledger),
        invoice_dispute: invoiceDispute(helpdesk, ledger),
      },
    };
  } finally {
    helpdesk?.close();
    warehouse?.close();
    ledger?.close();
  }
}

function helpdeskState(db: Db): HelpdeskState {
  const seeded = seedRows(db);
  const byStatus = (status: string) => count(db, "SELECT COUNT(*) AS n FROM tickets WHERE status = ?", status);
  const firstNew = seeded.messages ?? 0;
  return {
    tickets: {
      open: byStatus("open"),
      pending: byStatus("pending"),
      solved: byStatus("solved"),
      total: count(db, "SELECT COUNT(*) AS n FROM tickets"),
    },
    tickets_created: count(db, "SELECT COUNT(*) AS n FROM tickets") - (seeded.tickets ?? 0),
    agent_replies: count(db, "SELECT COUNT(*) AS n FROM messages WHERE author = 'agent' AND id > ?", firstNew),
    internal_notes: count(db, "SELECT COUNT(*) AS n FROM messages WHERE author = 'internal' AND id > ?", firstNew),
  };
}

function warehouseState(db: Db): WarehouseState {
  const seeded = seedRows(db);
  return {
    reships: count(db, "SELECT COUNT(*) AS n FROM reships"),
    carrier_claims: count(db, "SELECT COUNT(*) AS n FROM claims"),
    delivery_estimate_updates: count(db, "SELECT COUNT(*) AS n FROM delivery_estimates"),
    reservations_made: count(db, "SELECT COUNT(*) AS n FROM reservations") - (seeded.reservations ?? 0),
    purchase_orders_created: count(db, "SELECT COUNT(*) AS n FROM purchase_orders") - (seeded.purchase_orders ?? 0),
  };
}

function ledgerState(db: Db): LedgerState {
  return {
    refunds: count(db, "SELECT COUNT(*) AS n FROM refunds"),
    refunded_total: cents(count(db, "SELECT SUM(amount_cents) AS n FROM refunds")),
    goodwill_credits: count(db, "SELECT COUNT(*) AS n FROM goodwill_credits"),
    goodwill_total: cents(count(db, "SELECT SUM(amount_cents) AS n FROM goodwill_credits")),
    corrected_invoices: count(db, "SELECT COUNT(*) AS n FROM invoices WHERE replaces IS NOT NULL"),
  };
}

function damagedOrder(helpdesk: Db | null, warehouse: Db | null, ledger: Db | null): DamagedOrderState {
  const f = DAMAGED_ORDER;
  const ticket = ticketState(helpdesk, f.ticketId);
  const reships = warehouse
    ? (
        warehouse.prepare("SELECT id, shipment_id FROM reships WHERE order_id = ? ORDER BY id").all(f.orderId) as Array<{
          id: string;
          shipment_id: string;
        }>
      ).map((r) => ({
        ...r,
        items: warehouse.prepare("SELECT sku, quantity FROM reship_lines WHERE reship_id = ? ORDER BY sku").all(r.id) as Array<{
          sku: string;
          quantity: number;
        }>,
      }))
    : [];
  const claims = warehouse
    ? (
        warehouse
          .prepare("SELECT id, shipment_id, reason, amount_cents, status FROM claims WHERE order_id = ? ORDER BY id")
          .all(f.orderId) as Array<{
          id: string;
          shipment_id: string;
          reason: string;
          amount_cents: number;
          status: string;
        }>
      ).map(({ amount_cents, ...c }) => ({ ...c, amount: cents(amount_cents) }))
    : [];
  const refunds = ledger
    ? (
        ledger.prepare("SELECT id, amount_cents FROM refunds WHERE order_id = ? ORDER BY id").all(f.orderId) as Array<{
          id: string;
          amount_cents: number;
        }>
      ).map((r) => ({
        id: r.id,
        amount: cents(r.amount_cents),
      }))
    : [];
  const done =
    ticket.answered &&
    ticket.ticket_status !== "open" &&
    reships.length === 1 &&
    reships[0].items.some((i) => i.sku === f.damagedSku) &&
    claims.filter((c) => c.shipment_id === f.shipmentId).length === 1 &&
    claims.length === 1 &&
    refunds.length === 1 &&
    refunds[0].amount === f.shippingFee;
  return { ...ticket, reships, claims, refunds, done };
}

function lateShipment(helpdesk: Db | null, warehouse: Db | null, ledger: Db | null): LateShipmentState {
  const f = LATE_SHIPMENT;
  const ticket = ticketState(helpdesk, f.ticketId);
  const shipment = warehouse?.prepare("SELECT status, estimated_delivery FROM shipments WHERE id = ?").get(f.shipmentId) as
    | { status: string; estimated_delivery: string }
    | undefined;
  const updates = warehouse ? count(warehouse, "SELECT COUNT(*) AS n FROM delivery_estimates WHERE shipment_id = ?", f.shipmentId) : 0;
  const credits = ledger
    ? (
        ledger.prepare("SELECT id, amount_cents FROM goodwill_credits WHERE order_id = ? ORDER BY id").all(f.orderId) as Array<{
          id: string;
          amount_cents: number;
        }>
      ).map((c) => ({ id: c.id, amount: cents(c.amount_cents) }))
    : [];
  const creditedCents = credits.reduce((sum, c) => sum + Math.round(c.amount * 100), 0);
  const estimate = shipment?.estimated_delivery ?? null;
  const done =
    ticket.answered &&
    estimate !== null &&
    estimate > f.originalEstimate &&
    credits.length === 1 &&
    creditedCents > 0 &&
    creditedCents <= Math.round(f.goodwillCap * 100);
  return {
    ...ticket,
    shipment_status: shipment?.status ?? null,
    estimated_delivery: estimate,
    original_estimate: f.originalEstimate,
    estimate_updates: updates,
    goodwill_credits: credits,
    goodwill_cap: f.goodwillCap,
    done,
  };
}

function invoiceDispute(helpdesk: Db | null, ledger: Db | null): InvoiceDisputeState {
  const f = INVOICE_DISPUTE;
  const ticket = ticketState(helpdesk, f.ticketId);
  const original = ledger?.prepare("SELECT status, replaced_by FROM invoices WHERE id = ?").get(f.invoiceId) as
    | { status: string; replaced_by: string | null }
    | undefined;
  const replacement = original?.replaced_by
    ? (ledger?.prepare("SELECT total_cents FROM invoices WHERE id = ?").get(original.replaced_by) as { total_cents: number } | undefined)
    : undefined;
  const account = ledger?.prepare("SELECT balance_cents FROM accounts WHERE customer_id = ?").get(f.customerId) as
    | { balance_cents: number }
    | undefined;
  const balance = account ? cents(account.balance_cents) : null;
  const replacementTotal = replacement ? cents(replacement.total_cents) : null;
  const done = ticket.answered && original?.status === "credited" && replacementTotal === f.orderTotal && balance === f.expected.balance;
  return {
    ...ticket,
    original_invoice_status: original?.status ?? null,
    replaced_by: original?.replaced_by ?? null,
    replacement_total: replacementTotal,
    order_total: f.orderTotal,
    balance,
    done,
  };
}

/** Deletes the three databases (and their WAL files) so the next start seeds afresh. Stop the servers first. */
export function resetSystems(dbDir: string): void {
  for (const system of SYSTEMS) {
    for (const suffix of ["", "-wal", "-shm"]) rmSync(path.join(dbDir, `${system}.db${suffix}`), { force: true });
  }
}
