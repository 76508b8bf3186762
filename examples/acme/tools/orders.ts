import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { defineTool } from "outpost";
import { z } from "zod";
import { appendOnce, readLedger } from "./_ledger.js";

interface Order {
  id: string;
  customer: string;
  status: "processing" | "shipped" | "delivered" | "lost" | "cancelled";
  items: Array<{ sku: string; name: string; quantity: number; price: number }>;
  total: number;
  currency: string;
  carrier: string | null;
  tracking: string | null;
}

interface Refund {
  refund_id: string;
  order_id: string;
  amount: number;
  currency: string;
  reason: string;
  idempotency_key: string;
  at: string;
}

const ORDERS_FILE = new URL("../data/orders.json", import.meta.url);
const REFUNDABLE = new Set<Order["status"]>(["shipped", "delivered", "lost"]);

async function findOrder(orderId: string): Promise<Order | undefined> {
  const orders = JSON.parse(await readFile(ORDERS_FILE, "utf8")) as Order[];
  const id = orderId.trim().replace(/^#/, "");
  return orders.find((order) => order.id === id);
}

const orderId = z.string().min(1).describe('Order number, e.g. "1042"');

export const lookup = defineTool({
  name: "orders.lookup",
  description: "Look up an Acme order by its number: customer, status, items, total, carrier and tracking number.",
  input: z.object({ order_id: orderId }),
  sideEffects: false,
  classification: "confidential",
  handler: async ({ input }) => {
    const order = await findOrder(input.order_id);
    if (!order) return { found: false, id: input.order_id, status: "not found" };
    return { found: true, ...order };
  },
});

export const refund = defineTool({
  name: "orders.refund",
  description:
    "Refund the full total of a shipped, delivered or lost order to the customer's original payment method. " +
    "A person approves every call.",
  input: z.object({
    order_id: orderId,
    reason: z.string().min(1).describe("Why the customer is refunded, in a few words"),
  }),
  approval: "required",
  classification: "confidential",
  handler: async ({ input, context, idempotencyKey }) => {
    const order = await findOrder(input.order_id);
    if (!order) throw new Error(`order ${input.order_id} does not exist`);
    if (!REFUNDABLE.has(order.status)) {
      throw new Error(`order ${order.id} is ${order.status}; only shipped, delivered or lost orders can be refunded`);
    }
    const ledger = path.join(context.dataDir, "acme", "refunds.jsonl");
    // A retry of this very call carries the same key: appendOnce returns the first result.
    // A different call for an already refunded order is refused.
    const earlier = (await readLedger<Refund>(ledger)).find(
      (entry) => entry.order_id === order.id && entry.idempotency_key !== idempotencyKey,
    );
    if (earlier) throw new Error(`order ${order.id} was already refunded (${earlier.refund_id} on ${earlier.at})`);
    const { entry, duplicate } = await appendOnce<Refund>(ledger, {
      refund_id: `R-${createHash("sha256").update(idempotencyKey).digest("hex").slice(0, 8)}`,
      order_id: order.id,
      amount: order.total,
      currency: order.currency,
      reason: input.reason,
      idempotency_key: idempotencyKey,
      at: new Date().toISOString(),
    });
    return { refunded: true, duplicate, ...entry };
  },
});
