/** Acme ledger rows tests plant (examples/acme/systems/ledger.ts): what the month-end close must catch. */
import type Database from "better-sqlite3";

/**
 * A November refund of 14.95 on the ledger's first invoice whose credit note says 10.00: the mismatch the close's
 * reconciliation reports. `id` names both rows (CN-<id>, RF-<id>).
 */
export function addMismatchedRefund(db: Database.Database, id: string): void {
  const invoice = db.prepare("SELECT id, order_id, customer_id FROM invoices LIMIT 1").get() as {
    id: string;
    order_id: string;
    customer_id: string;
  };
  db.prepare("INSERT INTO credit_notes VALUES (?, ?, ?, 'refund', 1000, 'shipping fee', '2026-11-15T10:00:00Z')").run(
    `CN-${id}`,
    invoice.id,
    invoice.customer_id,
  );
  db.prepare("INSERT INTO refunds VALUES (?, ?, ?, ?, 1495, 'shipping fee', ?, '2026-11-15T10:00:00Z')").run(
    `RF-${id}`,
    invoice.order_id,
    invoice.id,
    invoice.customer_id,
    `CN-${id}`,
  );
}
