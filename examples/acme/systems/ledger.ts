/**
 * Acme's ledger (billing) as an MCP server over stdio: customer accounts, invoices, payments,
 * refunds, goodwill credits, credit notes and corrected invoices.
 *
 *   node --import tsx examples/acme/systems/ledger.ts [--db <path>]
 *
 * Database: --db, else $OUTPOST_DATA_DIR/acme/ledger.db, else ./.outpost/acme/ledger.db.
 *
 * Money model (amounts in USD, stored in cents):
 * - an account's balance is what the customer owes Acme (negative: Acme owes the customer):
 *   invoices add to it, payments and credit notes take from it, refunds paid out add back;
 * - a refund pays money back against an order's invoice and comes with a credit note of the same
 *   amount, so it leaves the balance unchanged; it cannot exceed what was paid for the order
 *   minus earlier refunds;
 * - a goodwill credit adds store credit (spendable on future orders); it never touches the balance;
 * - a corrected invoice credits what is left of the original (a credit note), issues a
 *   replacement, and moves the order's payments and refunds to the replacement.
 */
import { z } from "zod";
import { acmeData } from "./seed.js";
import {
  BusinessError,
  type Db,
  isMain,
  money,
  nextId,
  normalizeNumber,
  normalizePrefixed,
  now,
  type OpenedDatabase,
  openSystemDatabase,
  page,
  runSystem,
  type SystemTools,
  toCents,
} from "./system.js";

/** Goodwill policy: per order, at most this percentage of the order total… */
export const GOODWILL_MAX_PERCENT = 15;
/** …and at most this much (cents). */
export const GOODWILL_MAX_CENTS = 5000;

export const LEDGER_SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  customer_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  currency TEXT NOT NULL DEFAULT 'USD',
  balance_cents INTEGER NOT NULL DEFAULT 0,
  store_credit_cents INTEGER NOT NULL DEFAULT 0 CHECK (store_credit_cents >= 0)
);
CREATE TABLE IF NOT EXISTS orders (
  id TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL REFERENCES accounts (customer_id),
  placed_at TEXT NOT NULL,
  total_cents INTEGER NOT NULL,
  shipping_fee_cents INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS invoices (
  id TEXT PRIMARY KEY,
  order_id TEXT NOT NULL REFERENCES orders (id),
  customer_id TEXT NOT NULL REFERENCES accounts (customer_id),
  status TEXT NOT NULL CHECK (status IN ('open', 'paid', 'credited')),
  issued_at TEXT NOT NULL,
  total_cents INTEGER NOT NULL,
  replaces TEXT REFERENCES invoices (id),
  replaced_by TEXT REFERENCES invoices (id),
  note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS invoices_order ON invoices (order_id);
CREATE INDEX IF NOT EXISTS invoices_customer ON invoices (customer_id, issued_at);
CREATE TABLE IF NOT EXISTS invoice_lines (
  invoice_id TEXT NOT NULL REFERENCES invoices (id),
  line_no INTEGER NOT NULL,
  sku TEXT NOT NULL,
  description TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  unit_price_cents INTEGER NOT NULL,
  PRIMARY KEY (invoice_id, line_no)
);
CREATE TABLE IF NOT EXISTS payments (
  id TEXT PRIMARY KEY,
  order_id TEXT NOT NULL REFERENCES orders (id),
  invoice_id TEXT NOT NULL REFERENCES invoices (id),
  customer_id TEXT NOT NULL,
  method TEXT NOT NULL,
  amount_cents INTEGER NOT NULL,
  received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_order ON payments (order_id);
CREATE INDEX IF NOT EXISTS payments_customer ON payments (customer_id, received_at);
CREATE TABLE IF NOT EXISTS credit_notes (
  id TEXT PRIMARY KEY,
  invoice_id TEXT NOT NULL REFERENCES invoices (id),
  customer_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('refund', 'correction')),
  amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
  reason TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS credit_notes_invoice ON credit_notes (invoice_id);
CREATE TABLE IF NOT EXISTS refunds (
  id TEXT PRIMARY KEY,
  order_id TEXT NOT NULL REFERENCES orders (id),
  invoice_id TEXT NOT NULL REFERENCES invoices (id),
  customer_id TEXT NOT NULL,
  amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
  reason TEXT NOT NULL,
  credit_note_id TEXT NOT NULL REFERENCES credit_notes (id),
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refunds_order ON refunds (order_id);
CREATE TABLE IF NOT EXISTS closed_periods (
  month TEXT PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  refunds INTEGER NOT NULL,
  refunds_cents INTEGER NOT NULL,
  note TEXT NOT NULL,
  closed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS goodwill_credits (
  id TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL REFERENCES accounts (customer_id),
  order_id TEXT NOT NULL REFERENCES orders (id),
  amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
  reason TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS goodwill_order ON goodwill_credits (order_id);
`;

export function seedLedger(db: Db): void {
  const data = acmeData();
  const balances = new Map<string, number>();
  const add = (customer: string, cents: number) => balances.set(customer, (balances.get(customer) ?? 0) + cents);
  for (const i of data.invoices) add(i.customerId, i.totalCents);
  for (const p of data.payments) add(p.customerId, -p.amountCents);
  const account = db.prepare("INSERT INTO accounts VALUES (?, ?, ?, 'USD', ?, 0)");
  for (const c of data.customers) account.run(c.id, c.name, c.email, balances.get(c.id) ?? 0);
  const order = db.prepare("INSERT INTO orders VALUES (?, ?, ?, ?, ?)");
  for (const o of data.orders) order.run(o.id, o.customerId, o.placedAt, o.totalCents, o.shippingFeeCents);
  const paid = new Map<string, number>();
  for (const p of data.payments) paid.set(p.invoiceId, (paid.get(p.invoiceId) ?? 0) + p.amountCents);
  const invoice = db.prepare("INSERT INTO invoices VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, '')");
  const line = db.prepare("INSERT INTO invoice_lines VALUES (?, ?, ?, ?, ?, ?)");
  for (const i of data.invoices) {
    invoice.run(i.id, i.orderId, i.customerId, (paid.get(i.id) ?? 0) >= i.totalCents ? "paid" : "open", i.issuedAt, i.totalCents);
    for (const [n, l] of i.lines.entries()) line.run(i.id, n + 1, l.sku, l.description, l.quantity, l.unitPriceCents);
  }
  const payment = db.prepare("INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?, ?)");
  for (const p of data.payments) payment.run(p.id, p.orderId, p.invoiceId, p.customerId, p.method, p.amountCents, p.receivedAt);
}

export function openLedger(file: string): OpenedDatabase {
  return openSystemDatabase("ledger", file, LEDGER_SCHEMA, seedLedger);
}

// ---------------------------------------------------------------------------------------------

interface AccountRow {
  customer_id: string;
  name: string;
  email: string;
  currency: string;
  balance_cents: number;
  store_credit_cents: number;
}
interface OrderRow {
  id: string;
  customer_id: string;
  placed_at: string;
  total_cents: number;
  shipping_fee_cents: number;
}
interface InvoiceRow {
  id: string;
  order_id: string;
  customer_id: string;
  status: "open" | "paid" | "credited";
  issued_at: string;
  total_cents: number;
  replaces: string | null;
  replaced_by: string | null;
  note: string;
}
interface LineRow {
  invoice_id: string;
  line_no: number;
  sku: string;
  description: string;
  quantity: number;
  unit_price_cents: number;
}

const customerId = z.string().min(1).describe('The customer id, e.g. "C-10042".');
const invoiceId = z.string().min(1).describe('The invoice id, e.g. "INV-105171".');
const orderId = z.string().min(1).describe('The order number, e.g. "105708".');
const amount = (what: string) => z.number().positive().describe(what);
const reason = (what: string) => z.string().trim().min(3).max(2000).describe(what);

export function registerLedgerTools(tools: SystemTools): void {
  const db = tools.db;
  const q = {
    account: db.prepare("SELECT * FROM accounts WHERE customer_id = ?"),
    order: db.prepare("SELECT * FROM orders WHERE id = ?"),
    invoice: db.prepare("SELECT * FROM invoices WHERE id = ?"),
    invoicesOfOrder: db.prepare("SELECT * FROM invoices WHERE order_id = ? ORDER BY issued_at, id"),
    lines: db.prepare("SELECT * FROM invoice_lines WHERE invoice_id = ? ORDER BY line_no"),
    paidOnInvoice: db.prepare("SELECT COALESCE(SUM(amount_cents), 0) AS n FROM payments WHERE invoice_id = ?"),
    refundedOnInvoice: db.prepare("SELECT COALESCE(SUM(amount_cents), 0) AS n FROM refunds WHERE invoice_id = ?"),
    creditedOnInvoice: db.prepare("SELECT COALESCE(SUM(amount_cents), 0) AS n FROM credit_notes WHERE invoice_id = ?"),
    paidOnOrder: db.prepare("SELECT COALESCE(SUM(amount_cents), 0) AS n FROM payments WHERE order_id = ?"),
    refundedOnOrder: db.prepare("SELECT COALESCE(SUM(amount_cents), 0) AS n FROM refunds WHERE order_id = ?"),
    goodwillOnOrder: db.prepare("SELECT COALESCE(SUM(amount_cents), 0) AS n FROM goodwill_credits WHERE order_id = ?"),
    creditNotes: db.prepare("SELECT id, kind, amount_cents, reason, created_at FROM credit_notes WHERE invoice_id = ? ORDER BY id"),
    payments: db.prepare("SELECT id, method, amount_cents, received_at FROM payments WHERE invoice_id = ? ORDER BY received_at, id"),
    refunds: db.prepare("SELECT id, amount_cents, reason, credit_note_id, created_at FROM refunds WHERE invoice_id = ? ORDER BY id"),
    addToBalance: db.prepare("UPDATE accounts SET balance_cents = balance_cents + ? WHERE customer_id = ?"),
    setStatus: db.prepare("UPDATE invoices SET status = ? WHERE id = ?"),
  };
  const sum = (statement: { get(...args: unknown[]): unknown }, id: string) => (statement.get(id) as { n: number }).n;
  const usd = (cents: number) => money(cents).toFixed(2);

  const getAccount = (value: string): AccountRow => {
    const row = q.account.get(normalizePrefixed(value, "C-")) as AccountRow | undefined;
    if (!row) throw new BusinessError("unknown_customer", `Unknown customer "${value}": no account has that id (ids look like C-10042).`);
    return row;
  };
  const getOrder = (value: string): OrderRow => {
    const row = q.order.get(normalizeNumber(value)) as OrderRow | undefined;
    if (!row)
      throw new BusinessError(
        "unknown_order",
        `Unknown order "${value}": the ledger has no order with that number (order numbers look like 105708).`,
      );
    return row;
  };
  const getInvoice = (value: string): InvoiceRow => {
    const v = value.trim().toUpperCase();
    const row = q.invoice.get(/^\d+$/.test(v) ? `INV-${v}` : v) as InvoiceRow | undefined;
    if (!row) throw new BusinessError("unknown_invoice", `Unknown invoice "${value}": no invoice has that id (ids look like INV-105171).`);
    return row;
  };
  /** The invoice that currently bills an order (the last one not credited). */
  const currentInvoice = (order: string): InvoiceRow => {
    const all = q.invoicesOfOrder.all(order) as InvoiceRow[];
    const current = all.filter((i) => i.status !== "credited").at(-1);
    if (!current) throw new BusinessError("no_invoice", `Order ${order} has no invoice in force.`);
    return current;
  };
  const amounts = (i: InvoiceRow) => {
    const paid = sum(q.paidOnInvoice, i.id) - sum(q.refundedOnInvoice, i.id);
    const credited = sum(q.creditedOnInvoice, i.id);
    return { paid, credited, due: i.total_cents - credited - paid };
  };
  const settleStatus = (i: InvoiceRow) => {
    if (i.status === "credited") return;
    q.setStatus.run(amounts(i).due > 0 ? "open" : "paid", i.id);
  };
  const invoiceSummary = (i: InvoiceRow) => {
    const a = amounts(i);
    return {
      id: i.id,
      order_id: i.order_id,
      status: i.status,
      issued_at: i.issued_at,
      total: money(i.total_cents),
      amount_paid: money(a.paid),
      amount_credited: money(a.credited),
      amount_due: money(a.due),
    };
  };
  const invoiceView = (i: InvoiceRow) => ({
    ...invoiceSummary(i),
    customer_id: i.customer_id,
    currency: "USD",
    lines: (q.lines.all(i.id) as LineRow[]).map((l) => ({
      sku: l.sku,
      description: l.description,
      quantity: l.quantity,
      unit_price: money(l.unit_price_cents),
      amount: money(l.quantity * l.unit_price_cents),
    })),
    replaces: i.replaces,
    replaced_by: i.replaced_by,
    note: i.note || undefined,
    payments: (q.payments.all(i.id) as Array<{ id: string; method: string; amount_cents: number; received_at: string }>).map((p) => ({
      id: p.id,
      method: p.method,
      amount: money(p.amount_cents),
      received_at: p.received_at,
    })),
    refunds: (
      q.refunds.all(i.id) as Array<{ id: string; amount_cents: number; reason: string; credit_note_id: string; created_at: string }>
    ).map((r) => ({
      id: r.id,
      amount: money(r.amount_cents),
      reason: r.reason,
      credit_note_id: r.credit_note_id,
      created_at: r.created_at,
    })),
    credit_notes: (
      q.creditNotes.all(i.id) as Array<{ id: string; kind: string; amount_cents: number; reason: string; created_at: string }>
    ).map((c) => ({
      id: c.id,
      kind: c.kind,
      amount: money(c.amount_cents),
      reason: c.reason,
      created_at: c.created_at,
    })),
  });
  const accountView = (a: AccountRow) => ({
    customer_id: a.customer_id,
    name: a.name,
    email: a.email,
    currency: a.currency,
    balance: money(a.balance_cents),
    store_credit: money(a.store_credit_cents),
  });
  const addCreditNote = (invoice: InvoiceRow, kind: "refund" | "correction", cents: number, why: string): string => {
    const id = nextId(db, "credit_notes", "id", "CN-");
    db.prepare("INSERT INTO credit_notes VALUES (?, ?, ?, ?, ?, ?, ?)").run(id, invoice.id, invoice.customer_id, kind, cents, why, now());
    q.addToBalance.run(-cents, invoice.customer_id);
    return id;
  };

  tools.read(
    "get_account",
    {
      title: "Get a customer's account",
      description:
        "A customer's account: balance (what they owe Acme; negative means Acme owes them), store credit, open invoices with amounts due, their 10 most recent invoices and goodwill credits.",
      input: { customer_id: customerId },
    },
    ({ customer_id }) => {
      const a = getAccount(customer_id);
      const open = db
        .prepare("SELECT * FROM invoices WHERE customer_id = ? AND status = 'open' ORDER BY issued_at")
        .all(a.customer_id) as InvoiceRow[];
      const recent = db
        .prepare("SELECT * FROM invoices WHERE customer_id = ? ORDER BY issued_at DESC, id DESC LIMIT 10")
        .all(a.customer_id) as InvoiceRow[];
      const credits = db
        .prepare("SELECT * FROM goodwill_credits WHERE customer_id = ? ORDER BY id DESC LIMIT 10")
        .all(a.customer_id) as Array<{
        id: string;
        order_id: string;
        amount_cents: number;
        reason: string;
        created_at: string;
      }>;
      return {
        ...accountView(a),
        open_invoices: open.map(invoiceSummary),
        recent_invoices: recent.map(invoiceSummary),
        goodwill_credits: credits.map((c) => ({
          id: c.id,
          order_id: c.order_id,
          amount: money(c.amount_cents),
          reason: c.reason,
          created_at: c.created_at,
        })),
      };
    },
  );

  tools.read(
    "get_invoice",
    {
      title: "Get an invoice",
      description:
        "An invoice with its lines, total, amounts paid, credited and due, status (open, paid, credited), the invoice it replaces or is replaced by, and its payments, refunds and credit notes.",
      input: { invoice_id: invoiceId },
    },
    ({ invoice_id }) => invoiceView(getInvoice(invoice_id)),
  );

  tools.read(
    "find_invoice_for_order",
    {
      title: "Find the invoice for an order",
      description:
        "The invoice currently in force for an order (full detail), the order total as charged at checkout, what was paid and refunded for it, and every invoice ever issued for it (including credited ones).",
      input: { order_id: orderId },
    },
    ({ order_id }) => {
      const o = getOrder(order_id);
      return {
        order_id: o.id,
        customer_id: o.customer_id,
        order_total: money(o.total_cents),
        shipping_fee: money(o.shipping_fee_cents),
        paid: money(sum(q.paidOnOrder, o.id)),
        refunded: money(sum(q.refundedOnOrder, o.id)),
        goodwill_credited: money(sum(q.goodwillOnOrder, o.id)),
        invoice: invoiceView(currentInvoice(o.id)),
        all_invoices: (q.invoicesOfOrder.all(o.id) as InvoiceRow[]).map(invoiceSummary),
      };
    },
  );

  tools.read(
    "list_payments",
    {
      title: "List payments and refunds",
      description: "Payments received and refunds paid out, newest first, for a customer or an order (give one of them).",
      input: {
        customer_id: customerId.optional(),
        order_id: orderId.optional(),
        ...page,
      },
    },
    ({ customer_id, order_id, limit, offset }) => {
      if (!customer_id && !order_id) throw new BusinessError("missing_reference", "Give customer_id or order_id.");
      const [column, value] = order_id ? ["order_id", getOrder(order_id).id] : ["customer_id", getAccount(customer_id!).customer_id];
      const rows = db
        .prepare(
          `SELECT * FROM (
             SELECT 'payment' AS type, id, order_id, invoice_id, amount_cents, method AS detail, received_at AS at FROM payments WHERE ${column} = ?
             UNION ALL
             SELECT 'refund' AS type, id, order_id, invoice_id, amount_cents, reason AS detail, created_at AS at FROM refunds WHERE ${column} = ?
           ) ORDER BY at DESC, id DESC LIMIT ? OFFSET ?`,
        )
        .all(value, value, limit, offset) as Array<{
        type: string;
        id: string;
        order_id: string;
        invoice_id: string;
        amount_cents: number;
        detail: string;
        at: string;
      }>;
      return {
        [column]: value,
        offset,
        entries: rows.map((r) => ({
          type: r.type,
          id: r.id,
          order_id: r.order_id,
          invoice_id: r.invoice_id,
          amount: money(r.amount_cents),
          ...(r.type === "payment" ? { method: r.detail } : { reason: r.detail }),
          at: r.at,
        })),
      };
    },
  );

  tools.write(
    "issue_refund",
    {
      title: "Issue a refund",
      description:
        "Pay money back to the customer's original payment method for an order (with a credit note on its invoice). The amount cannot exceed what was paid for the order minus earlier refunds. The balance does not change; to fix a wrongly billed invoice, use issue_corrected_invoice instead.",
      input: {
        order_id: orderId.optional().describe('The order to refund, e.g. "105708" (or give invoice_id).'),
        invoice_id: invoiceId.optional().describe("Or: the invoice to refund against."),
        amount: amount("The amount in USD, e.g. 14.95."),
        reason: reason('Why, e.g. "shipping fee refunded: item arrived damaged".'),
      },
    },
    ({ order_id, invoice_id, amount: value, reason: why }) => {
      if (!order_id && !invoice_id) throw new BusinessError("missing_reference", "Give order_id or invoice_id.");
      const cents = toCents(value);
      let invoice = invoice_id ? getInvoice(invoice_id) : currentInvoice(getOrder(order_id!).id);
      if (order_id && invoice.order_id !== getOrder(order_id).id) {
        throw new BusinessError("mismatch", `Invoice ${invoice.id} is for order ${invoice.order_id}, not ${normalizeNumber(order_id)}.`);
      }
      if (invoice.status === "credited") invoice = currentInvoice(invoice.order_id);
      const paid = sum(q.paidOnOrder, invoice.order_id);
      const refunded = sum(q.refundedOnOrder, invoice.order_id);
      if (cents > paid - refunded) {
        throw new BusinessError(
          "refund_too_large",
          `A refund of ${usd(cents)} for order ${invoice.order_id} is more than can be refunded: ${usd(paid)} was paid and ${usd(refunded)} already refunded, so at most ${usd(paid - refunded)} remains.`,
        );
      }
      const creditNote = addCreditNote(invoice, "refund", cents, why);
      const id = nextId(db, "refunds", "id", "RF-");
      db.prepare("INSERT INTO refunds VALUES (?, ?, ?, ?, ?, ?, ?, ?)").run(
        id,
        invoice.order_id,
        invoice.id,
        invoice.customer_id,
        cents,
        why,
        creditNote,
        now(),
      );
      q.addToBalance.run(cents, invoice.customer_id);
      settleStatus(invoice);
      return {
        refund: {
          id,
          order_id: invoice.order_id,
          invoice_id: invoice.id,
          amount: money(cents),
          reason: why,
          credit_note_id: creditNote,
          method: "original payment method",
        },
        refundable_remaining: money(paid - refunded - cents),
        account: accountView(getAccount(invoice.customer_id)),
      };
    },
  );

  tools.write(
    "issue_goodwill_credit",
    {
      title: "Issue a goodwill credit",
      description: `Give a customer store credit as an apology about an order (e.g. a late delivery). Policy, per order: at most ${GOODWILL_MAX_PERCENT}% of the order total and at most ${usd(GOODWILL_MAX_CENTS)} in all. Adds to store credit; does not change the balance.`,
      input: {
        order_id: orderId,
        amount: amount("The credit in USD, e.g. 15.00."),
        reason: reason('Why, e.g. "apology for the delayed delivery".'),
        customer_id: customerId.optional().describe("The customer, to double-check: must be the order's customer."),
      },
    },
    ({ order_id, amount: value, reason: why, customer_id }) => {
      const o = getOrder(order_id);
      if (customer_id && normalizePrefixed(customer_id, "C-") !== o.customer_id) {
        throw new BusinessError("mismatch", `Order ${o.id} belongs to ${o.customer_id}, not ${customer_id}.`);
      }
      const cents = toCents(value);
      const cap = Math.min(Math.floor((o.total_cents * GOODWILL_MAX_PERCENT) / 100), GOODWILL_MAX_CENTS);
      const earlier = sum(q.goodwillOnOrder, o.id);
      if (cents + earlier > cap) {
        throw new BusinessError(
          "above_policy",
          `A goodwill credit of ${usd(cents)} for order ${o.id} is above policy: at most ${GOODWILL_MAX_PERCENT}% of the order total ${usd(o.total_cents)} and at most ${usd(GOODWILL_MAX_CENTS)} per order, i.e. ${usd(cap)}; ${usd(earlier)} was already credited, so at most ${usd(Math.max(0, cap - earlier))}.`,
        );
      }
      const id = nextId(db, "goodwill_credits", "id", "GW-");
      db.prepare("INSERT INTO goodwill_credits VALUES (?, ?, ?, ?, ?, ?)").run(id, o.customer_id, o.id, cents, why, now());
      db.prepare("UPDATE accounts SET store_credit_cents = store_credit_cents + ? WHERE customer_id = ?").run(cents, o.customer_id);
      return {
        goodwill_credit: { id, customer_id: o.customer_id, order_id: o.id, amount: money(cents), reason: why },
        policy_cap: money(cap),
        remaining_under_policy: money(cap - earlier - cents),
        account: accountView(getAccount(o.customer_id)),
      };
    },
  );

  tools.write(
    "issue_corrected_invoice",
    {
      title: "Issue a corrected invoice",
      description:
        "Correct a wrongly billed invoice: credits what is left of the original with a credit note (its status becomes credited), issues a replacement invoice with the given lines, and moves the order's payments and refunds to the replacement. Give the full correct list of lines (compare with the order in the warehouse).",
      input: {
        invoice_id: invoiceId,
        lines: z
          .array(
            z.object({
              sku: z.string().min(1).describe('The SKU, or "SHIPPING" for the shipping fee.'),
              description: z.string().max(200).optional().describe("The line's text; default: as on the original invoice."),
              quantity: z.number().int().min(1).max(10_000).describe("How many."),
              unit_price: z.number().min(0).describe("The unit price in USD."),
            }),
          )
          .min(1)
          .max(100)
          .describe("Every line of the corrected invoice, including shipping if it was charged."),
        reason: reason('What was wrong, e.g. "USB-C cable billed twice".'),
      },
    },
    ({ invoice_id, lines, reason: why }) => {
      const original = getInvoice(invoice_id);
      if (original.status === "credited") {
        throw new BusinessError(
          "already_corrected",
          `Invoice ${original.id} was already credited${original.replaced_by ? ` and replaced by ${original.replaced_by}` : ""}; correct ${original.replaced_by ?? "the invoice in force"} instead.`,
        );
      }
      const originalLines = q.lines.all(original.id) as LineRow[];
      const corrected = lines.map((l) => {
        const skuValue = l.sku.trim().toUpperCase();
        const unit = l.unit_price === 0 ? 0 : toCents(l.unit_price, `unit_price of ${skuValue}`);
        return {
          sku: skuValue,
          description: l.description?.trim() || originalLines.find((o) => o.sku === skuValue)?.description || skuValue,
          quantity: l.quantity,
          unit_price_cents: unit,
        };
      });
      const key = (ls: Array<{ sku: string; quantity: number; unit_price_cents: number }>) =>
        ls
          .map((l) => `${l.sku}|${l.quantity}|${l.unit_price_cents}`)
          .sort()
          .join(";");
      if (key(corrected) === key(originalLines)) {
        throw new BusinessError("no_change", `The corrected lines are the same as invoice ${original.id}'s: there is nothing to correct.`);
      }
      const order = getOrder(original.order_id);
      const remaining = original.total_cents - amounts(original).credited;
      const creditNote = remaining > 0 ? addCreditNote(original, "correction", remaining, why) : null;
      const base = original.id.replace(/-R\d+$/, "");
      const corrections = (db.prepare("SELECT COUNT(*) AS n FROM invoices WHERE id LIKE ?").get(`${base}-R%`) as { n: number }).n;
      const replacementId = `${base}-R${corrections + 1}`;
      const total = corrected.reduce((s, l) => s + l.quantity * l.unit_price_cents, 0);
      db.prepare("INSERT INTO invoices VALUES (?, ?, ?, 'open', ?, ?, ?, NULL, ?)").run(
        replacementId,
        original.order_id,
        original.customer_id,
        now(),
        total,
        original.id,
        `Replaces ${original.id}: ${why}`,
      );
      const addLine = db.prepare("INSERT INTO invoice_lines VALUES (?, ?, ?, ?, ?, ?)");
      for (const [n, l] of corrected.entries()) addLine.run(replacementId, n + 1, l.sku, l.description, l.quantity, l.unit_price_cents);
      q.addToBalance.run(total, original.customer_id);
      db.prepare("UPDATE invoices SET status = 'credited', replaced_by = ? WHERE id = ?").run(replacementId, original.id);
      db.prepare("UPDATE payments SET invoice_id = ? WHERE invoice_id = ?").run(replacementId, original.id);
      db.prepare("UPDATE refunds SET invoice_id = ? WHERE invoice_id = ?").run(replacementId, original.id);
      const replacement = getInvoice(replacementId);
      settleStatus(replacement);
      return {
        credit_note: creditNote ? { id: creditNote, invoice_id: original.id, amount: money(remaining), reason: why } : null,
        original_invoice: invoiceSummary(getInvoice(original.id)),
        replacement_invoice: invoiceView(getInvoice(replacementId)),
        order_total: money(order.total_cents),
        matches_order_total: total === order.total_cents,
        account: accountView(getAccount(original.customer_id)),
      };
    },
  );
}

const month = z
  .string()
  .regex(/^\d{4}-(0[1-9]|1[0-2])$/, "a month as YYYY-MM")
  .describe('The accounting month, e.g. "2026-11".');

/** Month-end close: reconcile the month's refunds against their credit notes, close the period, reopen it. */
export function registerClosingTools(tools: SystemTools): void {
  const db = tools.db;
  const closed = db.prepare("SELECT * FROM closed_periods WHERE month = ?");
  tools.read(
    "reconcile_refunds",
    {
      title: "Reconcile a month's refunds",
      description:
        "Every refund paid out in the month against the ledger: its credit note must exist, be a refund, be on the refund's invoice and be for the same amount. Lists the mismatches.",
      input: { month },
    },
    ({ month: m }) => {
      const rows = db
        .prepare(
          `SELECT r.id, r.order_id, r.invoice_id, r.amount_cents, c.id AS note_id, c.kind, c.invoice_id AS note_invoice, c.amount_cents AS note_cents
           FROM refunds r LEFT JOIN credit_notes c ON c.id = r.credit_note_id
           WHERE r.created_at LIKE ? ORDER BY r.id`,
        )
        .all(`${m}-%`) as Array<{
        id: string;
        order_id: string;
        invoice_id: string;
        amount_cents: number;
        note_id: string | null;
        kind: string | null;
        note_invoice: string | null;
        note_cents: number | null;
      }>;
      const mismatches = rows.flatMap((r) => {
        const problem =
          r.note_id === null
            ? "no credit note"
            : r.kind !== "refund"
              ? `credit note ${r.note_id} is a ${r.kind}`
              : r.note_cents !== r.amount_cents
                ? `credit note ${r.note_id} is for ${money(r.note_cents ?? 0)}, the refund for ${money(r.amount_cents)}`
                : null;
        return problem ? [{ refund_id: r.id, order_id: r.order_id, invoice_id: r.invoice_id, amount: money(r.amount_cents), problem }] : [];
      });
      const total = rows.reduce((a, r) => a + r.amount_cents, 0);
      return {
        month: m,
        refunds: rows.length,
        refunds_total: money(total),
        refunds_total_cents: total,
        mismatches,
        closed: closed.get(m) !== undefined,
      };
    },
  );
  tools.write(
    "post_closing_entries",
    {
      title: "Close an accounting month",
      description:
        "Posts the month's closing entries (its refunds total) and closes the period. A closed month cannot be closed again; reopen_period undoes it.",
      input: {
        month,
        refunds: z.number().int().min(0).describe("How many refunds were reconciled."),
        refunds_total_cents: z.number().int().min(0).describe("Their total, in cents (from reconcile_refunds)."),
        note: reason("What the controller approved."),
      },
    },
    ({ month: m, refunds, refunds_total_cents, note }) => {
      if (closed.get(m)) throw new BusinessError("period_closed", `${m} is already closed.`);
      const id = nextId(db, "closed_periods", "id", "CLOSE-");
      db.prepare("INSERT INTO closed_periods VALUES (?, ?, ?, ?, ?, ?)").run(m, id, refunds, refunds_total_cents, note, now());
      return { closing_id: id, month: m, refunds, refunds_total: money(refunds_total_cents) };
    },
  );
  tools.write(
    "reopen_period",
    {
      title: "Reopen a closed month",
      description: "Reverses a month's closing entries: the period is open again.",
      input: { month, reason: reason("Why it is reopened.") },
    },
    ({ month: m }) => {
      const row = closed.get(m) as { id: string } | undefined;
      if (!row) return { month: m, reopened: false, note: `${m} was not closed` };
      db.prepare("DELETE FROM closed_periods WHERE month = ?").run(m);
      return { month: m, reopened: true, reversed: row.id };
    },
  );
}

export const LEDGER_INSTRUCTIONS =
  "Acme's ledger: customer accounts, invoices, payments, refunds, goodwill credits and corrected invoices. Amounts are in USD. " +
  "An account's balance is what the customer owes Acme (negative: Acme owes them).";

if (isMain(import.meta.url)) {
  await runSystem({
    system: "ledger",
    version: "1.0.0",
    instructions: LEDGER_INSTRUCTIONS,
    open: openLedger,
    register: (tools) => {
      registerLedgerTools(tools);
      registerClosingTools(tools);
    },
  });
}
