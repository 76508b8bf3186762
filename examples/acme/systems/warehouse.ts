/**
 * Acme's warehouse as an MCP server over stdio: products, stock per fulfilment centre with
 * reservations, orders, shipments and their tracking, reships, carrier claims, purchase orders.
 *
 *   node --import tsx examples/acme/systems/warehouse.ts [--db <path>]
 *
 * Database: --db, else $OUTPOST_DATA_DIR/acme/warehouse.db, else ./.outpost/acme/warehouse.db.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { acmeData, isoDay } from "./seed.js";
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

export const WAREHOUSE_SCHEMA = `
CREATE TABLE IF NOT EXISTS products (
  sku TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  category TEXT NOT NULL,
  price_cents INTEGER NOT NULL,
  cost_cents INTEGER NOT NULL,
  weight_grams INTEGER NOT NULL,
  supplier TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS locations (id TEXT PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stock (
  sku TEXT NOT NULL REFERENCES products (sku),
  location TEXT NOT NULL REFERENCES locations (id),
  on_hand INTEGER NOT NULL CHECK (on_hand >= 0),
  reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
  PRIMARY KEY (sku, location)
);
CREATE TABLE IF NOT EXISTS reservations (
  id TEXT PRIMARY KEY,
  sku TEXT NOT NULL,
  location TEXT NOT NULL,
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  order_id TEXT,
  reason TEXT NOT NULL,
  created_at TEXT NOT NULL,
  FOREIGN KEY (sku, location) REFERENCES stock (sku, location)
);
CREATE TABLE IF NOT EXISTS orders (
  id TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL,
  ship_to_name TEXT NOT NULL,
  ship_to_city TEXT NOT NULL,
  ship_to_state TEXT NOT NULL,
  ship_to_postal_code TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('processing', 'shipped', 'delivered')),
  shipping_method TEXT NOT NULL,
  placed_at TEXT NOT NULL,
  subtotal_cents INTEGER NOT NULL,
  shipping_fee_cents INTEGER NOT NULL,
  total_cents INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_customer ON orders (customer_id, placed_at);
CREATE TABLE IF NOT EXISTS order_lines (
  order_id TEXT NOT NULL REFERENCES orders (id),
  line_no INTEGER NOT NULL,
  sku TEXT NOT NULL REFERENCES products (sku),
  name TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  unit_price_cents INTEGER NOT NULL,
  PRIMARY KEY (order_id, line_no)
);
CREATE TABLE IF NOT EXISTS shipments (
  id TEXT PRIMARY KEY,
  order_id TEXT NOT NULL REFERENCES orders (id),
  kind TEXT NOT NULL CHECK (kind IN ('original', 'reship')),
  carrier TEXT NOT NULL,
  service TEXT NOT NULL,
  tracking_number TEXT NOT NULL UNIQUE,
  from_location TEXT NOT NULL REFERENCES locations (id),
  status TEXT NOT NULL CHECK (status IN ('label_created', 'in_transit', 'delayed', 'delivered')),
  shipped_at TEXT NOT NULL,
  estimated_delivery TEXT NOT NULL,
  delivered_at TEXT,
  declared_value_cents INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS shipments_order ON shipments (order_id);
CREATE TABLE IF NOT EXISTS shipment_events (
  id INTEGER PRIMARY KEY,
  shipment_id TEXT NOT NULL REFERENCES shipments (id),
  at TEXT NOT NULL,
  status TEXT NOT NULL,
  location TEXT NOT NULL,
  description TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS shipment_events_shipment ON shipment_events (shipment_id, at);
CREATE TABLE IF NOT EXISTS delivery_estimates (
  id INTEGER PRIMARY KEY,
  shipment_id TEXT NOT NULL REFERENCES shipments (id),
  previous TEXT NOT NULL,
  estimate TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reships (
  id TEXT PRIMARY KEY,
  order_id TEXT NOT NULL REFERENCES orders (id),
  original_shipment_id TEXT REFERENCES shipments (id),
  shipment_id TEXT NOT NULL REFERENCES shipments (id),
  reason TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reship_lines (
  reship_id TEXT NOT NULL REFERENCES reships (id),
  sku TEXT NOT NULL,
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (reship_id, sku)
);
CREATE TABLE IF NOT EXISTS claims (
  id TEXT PRIMARY KEY,
  shipment_id TEXT NOT NULL REFERENCES shipments (id),
  order_id TEXT NOT NULL,
  carrier TEXT NOT NULL,
  reason TEXT NOT NULL CHECK (reason IN ('damaged', 'lost', 'late')),
  description TEXT NOT NULL,
  amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
  status TEXT NOT NULL CHECK (status IN ('filed', 'approved', 'rejected')),
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_shipment ON claims (shipment_id);
CREATE TABLE IF NOT EXISTS purchase_orders (
  id TEXT PRIMARY KEY,
  supplier TEXT NOT NULL,
  location TEXT NOT NULL REFERENCES locations (id),
  status TEXT NOT NULL CHECK (status IN ('ordered', 'received')),
  created_at TEXT NOT NULL,
  expected_at TEXT NOT NULL,
  note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS reorder_points (
  sku TEXT NOT NULL REFERENCES products (sku),
  location TEXT NOT NULL REFERENCES locations (id),
  minimum INTEGER NOT NULL CHECK (minimum > 0),
  order_quantity INTEGER NOT NULL CHECK (order_quantity > 0),
  PRIMARY KEY (sku, location)
);
CREATE TABLE IF NOT EXISTS purchase_order_lines (
  po_id TEXT NOT NULL REFERENCES purchase_orders (id),
  sku TEXT NOT NULL REFERENCES products (sku),
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  unit_cost_cents INTEGER NOT NULL,
  PRIMARY KEY (po_id, sku)
);
`;

export function seedWarehouse(db: Db): void {
  const data = acmeData();
  const customers = new Map(data.customers.map((c) => [c.id, c]));
  const product = db.prepare("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?)");
  for (const p of data.products) product.run(p.sku, p.name, p.category, p.priceCents, p.costCents, p.weightGrams, p.supplier);
  const location = db.prepare("INSERT INTO locations VALUES (?, ?, ?)");
  for (const l of data.locations) location.run(l.id, l.name, l.city);
  const held = new Map<string, number>();
  for (const r of data.reservations) held.set(`${r.sku}@${r.location}`, (held.get(`${r.sku}@${r.location}`) ?? 0) + r.quantity);
  const stock = db.prepare("INSERT INTO stock VALUES (?, ?, ?, ?)");
  for (const s of data.stock) stock.run(s.sku, s.location, s.onHand, held.get(`${s.sku}@${s.location}`) ?? 0);
  const reservation = db.prepare("INSERT INTO reservations VALUES (?, ?, ?, ?, ?, ?, ?)");
  data.reservations.forEach((r, i) => {
    reservation.run(`RSV-${String(i + 1).padStart(5, "0")}`, r.sku, r.location, r.quantity, r.orderId, `order ${r.orderId}`, r.createdAt);
  });
  const order = db.prepare("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  const line = db.prepare("INSERT INTO order_lines VALUES (?, ?, ?, ?, ?, ?)");
  const shipment = db.prepare("INSERT INTO shipments VALUES (?, ?, 'original', ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  const event = db.prepare("INSERT INTO shipment_events (shipment_id, at, status, location, description) VALUES (?, ?, ?, ?, ?)");
  for (const o of data.orders) {
    const c = customers.get(o.customerId)!;
    order.run(
      o.id,
      o.customerId,
      c.name,
      c.city,
      c.state,
      c.postalCode,
      o.status,
      o.shippingMethod,
      o.placedAt,
      o.subtotalCents,
      o.shippingFeeCents,
      o.totalCents,
    );
    for (const [i, l] of o.lines.entries()) line.run(o.id, i + 1, l.sku, l.name, l.quantity, l.unitPriceCents);
    const s = o.shipment;
    if (!s) continue;
    shipment.run(
      s.id,
      o.id,
      s.carrier,
      s.service,
      s.trackingNumber,
      s.fromLocation,
      s.status,
      s.shippedAt,
      s.estimatedDelivery,
      s.deliveredAt,
      o.totalCents,
    );
    for (const e of s.events) event.run(s.id, e.at, e.status, e.location, e.description);
  }
  const po = db.prepare("INSERT INTO purchase_orders VALUES (?, ?, ?, ?, ?, ?, '')");
  const poLine = db.prepare("INSERT INTO purchase_order_lines VALUES (?, ?, ?, ?)");
  for (const p of data.purchaseOrders) {
    po.run(p.id, p.supplier, p.location, p.status, p.createdAt, p.expectedAt);
    for (const l of p.lines) poLine.run(p.id, l.sku, l.quantity, l.unitCostCents);
  }
  const reorder = db.prepare("INSERT INTO reorder_points VALUES (?, ?, ?, ?)");
  for (const r of data.reorderPoints) reorder.run(r.sku, r.location, r.minimum, r.orderQuantity);
}

export function openWarehouse(file: string): OpenedDatabase {
  return openSystemDatabase("warehouse", file, WAREHOUSE_SCHEMA, seedWarehouse);
}

// ---------------------------------------------------------------------------------------------

interface ProductRow {
  sku: string;
  name: string;
  category: string;
  price_cents: number;
  cost_cents: number;
  weight_grams: number;
  supplier: string;
}
interface StockRow {
  sku: string;
  location: string;
  on_hand: number;
  reserved: number;
}
interface OrderRow {
  id: string;
  customer_id: string;
  ship_to_name: string;
  ship_to_city: string;
  ship_to_state: string;
  ship_to_postal_code: string;
  status: string;
  shipping_method: string;
  placed_at: string;
  subtotal_cents: number;
  shipping_fee_cents: number;
  total_cents: number;
}
interface LineRow {
  order_id: string;
  line_no: number;
  sku: string;
  name: string;
  quantity: number;
  unit_price_cents: number;
}
interface ShipmentRow {
  id: string;
  order_id: string;
  kind: "original" | "reship";
  carrier: string;
  service: string;
  tracking_number: string;
  from_location: string;
  status: string;
  shipped_at: string;
  estimated_delivery: string;
  delivered_at: string | null;
  declared_value_cents: number;
}
interface ClaimRow {
  id: string;
  shipment_id: string;
  order_id: string;
  carrier: string;
  reason: string;
  description: string;
  amount_cents: number;
  status: string;
  created_at: string;
}

const DAY = 86_400_000;
const orderId = z.string().min(1).describe('The order number, e.g. "105708".');
const shipmentId = z.string().min(1).describe('The shipment id, e.g. "SHP-105708".');
const sku = z.string().min(1).describe('The product SKU, e.g. "ACM-1004".');
const quantity = z.number().int().min(1).max(10_000).describe("How many units.");
const items = (what: string) => z.array(z.object({ sku, quantity })).min(1).max(50).describe(what);
const reasonText = (what: string) => z.string().trim().min(3).max(2000).describe(what);

function trackingFor(carrier: string, seed: string): string {
  const digits = BigInt(`0x${createHash("sha256").update(seed).digest("hex").slice(0, 24)}`)
    .toString()
    .padStart(22, "0");
  if (carrier === "UPS") return `1ZA4F92E03${digits.slice(0, 8)}`;
  if (carrier === "FedEx") return digits.slice(0, 12);
  return `9400${digits.slice(0, 18)}`;
}

export function registerWarehouseTools(tools: SystemTools): void {
  const db = tools.db;
  const q = {
    product: db.prepare("SELECT * FROM products WHERE sku = ?"),
    stock: db.prepare("SELECT * FROM stock WHERE sku = ? ORDER BY location"),
    order: db.prepare("SELECT * FROM orders WHERE id = ?"),
    lines: db.prepare("SELECT * FROM order_lines WHERE order_id = ? ORDER BY line_no"),
    shipment: db.prepare("SELECT * FROM shipments WHERE id = ?"),
    shipmentByTracking: db.prepare("SELECT * FROM shipments WHERE tracking_number = ?"),
    shipmentsOfOrder: db.prepare("SELECT * FROM shipments WHERE order_id = ? ORDER BY kind, id"),
    events: db.prepare("SELECT at, status, location, description FROM shipment_events WHERE shipment_id = ? ORDER BY at, id"),
    addEvent: db.prepare("INSERT INTO shipment_events (shipment_id, at, status, location, description) VALUES (?, ?, ?, ?, ?)"),
    reshipsOfOrder: db.prepare("SELECT * FROM reships WHERE order_id = ? ORDER BY id"),
    reshipLines: db.prepare("SELECT sku, quantity FROM reship_lines WHERE reship_id = ? ORDER BY sku"),
    claimsOfOrder: db.prepare("SELECT * FROM claims WHERE order_id = ? ORDER BY id"),
    reserve: db.prepare("UPDATE stock SET reserved = reserved + ? WHERE sku = ? AND location = ?"),
    addReservation: db.prepare("INSERT INTO reservations VALUES (?, ?, ?, ?, ?, ?, ?)"),
    incoming: db.prepare(
      `SELECT po.id, po.location, po.expected_at, l.quantity FROM purchase_order_lines l JOIN purchase_orders po ON po.id = l.po_id
       WHERE l.sku = ? AND po.status = 'ordered' ORDER BY po.expected_at, po.id`,
    ),
  };

  const getProduct = (value: string): ProductRow => {
    const row = q.product.get(value.trim().toUpperCase()) as ProductRow | undefined;
    if (!row)
      throw new BusinessError(
        "unknown_product",
        `Unknown product "${value}": no product has that SKU (SKUs look like ACM-1004; search_products finds them).`,
      );
    return row;
  };
  const getOrder = (value: string): OrderRow => {
    const row = q.order.get(normalizeNumber(value)) as OrderRow | undefined;
    if (!row)
      throw new BusinessError("unknown_order", `Unknown order "${value}": no order has that number (order numbers look like 105708).`);
    return row;
  };
  const getShipment = (value: string): ShipmentRow => {
    const v = value.trim();
    const row = (q.shipment.get(normalizePrefixed(v, "SHP-")) ?? q.shipmentByTracking.get(v)) as ShipmentRow | undefined;
    if (!row)
      throw new BusinessError(
        "unknown_shipment",
        `Unknown shipment "${value}": no shipment has that id or tracking number (ids look like SHP-105708).`,
      );
    return row;
  };
  const lineView = (l: LineRow) => ({
    sku: l.sku,
    name: l.name,
    quantity: l.quantity,
    unit_price: money(l.unit_price_cents),
    amount: money(l.quantity * l.unit_price_cents),
  });
  const shipmentView = (s: ShipmentRow) => ({
    id: s.id,
    order_id: s.order_id,
    kind: s.kind,
    carrier: s.carrier,
    service: s.service,
    tracking_number: s.tracking_number,
    status: s.status,
    shipped_from: s.from_location,
    shipped_at: s.shipped_at,
    estimated_delivery: s.estimated_delivery,
    delivered_at: s.delivered_at,
    declared_value: money(s.declared_value_cents),
  });
  const claimView = (c: ClaimRow) => ({
    id: c.id,
    shipment_id: c.shipment_id,
    order_id: c.order_id,
    carrier: c.carrier,
    reason: c.reason,
    description: c.description,
    amount: money(c.amount_cents),
    status: c.status,
    created_at: c.created_at,
  });
  const reshipView = (r: {
    id: string;
    order_id: string;
    original_shipment_id: string | null;
    shipment_id: string;
    reason: string;
    created_at: string;
  }) => ({
    id: r.id,
    order_id: r.order_id,
    original_shipment_id: r.original_shipment_id,
    shipment_id: r.shipment_id,
    reason: r.reason,
    items: q.reshipLines.all(r.id),
    created_at: r.created_at,
  });
  const orderView = (o: OrderRow) => ({
    id: o.id,
    customer_id: o.customer_id,
    status: o.status,
    placed_at: o.placed_at,
    ship_to: { name: o.ship_to_name, city: o.ship_to_city, state: o.ship_to_state, postal_code: o.ship_to_postal_code },
    shipping_method: o.shipping_method,
    currency: "USD",
    lines: (q.lines.all(o.id) as LineRow[]).map(lineView),
    subtotal: money(o.subtotal_cents),
    shipping_fee: money(o.shipping_fee_cents),
    total: money(o.total_cents),
    shipments: (q.shipmentsOfOrder.all(o.id) as ShipmentRow[]).map(shipmentView),
    reships: (q.reshipsOfOrder.all(o.id) as Parameters<typeof reshipView>[0][]).map(reshipView),
    claims: (q.claimsOfOrder.all(o.id) as ClaimRow[]).map(claimView),
  });
  const stockView = (sku: string) => {
    const rows = q.stock.all(sku) as StockRow[];
    return rows.map((r) => ({ location: r.location, on_hand: r.on_hand, reserved: r.reserved, available: r.on_hand - r.reserved }));
  };
  /** Holds `qty` of `sku` at `location` (already checked); returns the reservation id. */
  const hold = (skuValue: string, location: string, qty: number, order: string | null, reason: string): string => {
    const id = nextId(db, "reservations", "id", "RSV-");
    q.reserve.run(qty, skuValue, location);
    q.addReservation.run(id, skuValue, location, qty, order, reason, now());
    return id;
  };
  const availabilityText = (skuValue: string) =>
    stockView(skuValue)
      .map((s) => `${s.location} ${s.available}`)
      .join(", ");

  tools.read(
    "get_order",
    {
      title: "Get an order",
      description:
        "An order with its lines (unit prices as charged), shipping fee and total, ship-to address, its shipments (original and reships) with current status and estimated delivery, reships and carrier claims.",
      input: { order_id: orderId },
    },
    ({ order_id }) => orderView(getOrder(order_id)),
  );

  tools.read(
    "list_orders",
    {
      title: "List orders",
      description:
        "Orders, newest first, filtered by customer and/or status (processing, shipped, delivered). Returns summaries and the total matching.",
      input: {
        customer_id: z.string().optional().describe('Only this customer\'s orders, e.g. "C-10042".'),
        status: z.enum(["processing", "shipped", "delivered"]).optional().describe("Only orders with this status."),
        ...page,
      },
    },
    ({ customer_id, status, limit, offset }) => {
      const where: string[] = [];
      const params: string[] = [];
      if (customer_id) {
        where.push("customer_id = ?");
        params.push(normalizePrefixed(customer_id, "C-"));
      }
      if (status) {
        where.push("status = ?");
        params.push(status);
      }
      const clause = where.length ? `WHERE ${where.join(" AND ")}` : "";
      const total = (db.prepare(`SELECT COUNT(*) AS n FROM orders ${clause}`).get(...params) as { n: number }).n;
      const rows = db
        .prepare(
          `SELECT o.*, (SELECT SUM(quantity) FROM order_lines WHERE order_id = o.id) AS items FROM orders o ${clause}
           ORDER BY placed_at DESC, id DESC LIMIT ? OFFSET ?`,
        )
        .all(...params, limit, offset) as Array<OrderRow & { items: number }>;
      return {
        total,
        offset,
        orders: rows.map((o) => ({
          id: o.id,
          customer_id: o.customer_id,
          status: o.status,
          placed_at: o.placed_at,
          items: o.items,
          total: money(o.total_cents),
        })),
      };
    },
  );

  tools.read(
    "track_shipment",
    {
      title: "Track a shipment",
      description:
        "Tracking for a shipment (by shipment id or carrier tracking number) or for all of an order's shipments (by order number): status (label_created, in_transit, delayed, delivered), estimated delivery and every carrier event.",
      input: {
        shipment_id: z.string().optional().describe('A shipment id ("SHP-105708") or a carrier tracking number.'),
        order_id: z.string().optional().describe("Or: an order number, to track all its shipments."),
      },
    },
    ({ shipment_id, order_id }) => {
      if (!shipment_id && !order_id) throw new BusinessError("missing_reference", "Give shipment_id (or a tracking number) or order_id.");
      const shipments = shipment_id ? [getShipment(shipment_id)] : (q.shipmentsOfOrder.all(getOrder(order_id!).id) as ShipmentRow[]);
      if (shipments.length === 0) return { order_id, shipments: [], note: "This order has not shipped yet." };
      return { shipments: shipments.map((s) => ({ ...shipmentView(s), events: q.events.all(s.id) })) };
    },
  );

  tools.read(
    "search_products",
    {
      title: "Search products",
      description: "Find products by SKU or by words in their name or category. Returns price, weight and total units available.",
      input: {
        query: z.string().trim().min(2).describe('A SKU or words from the name, e.g. "monitor" or "usb-c cable".'),
        limit: z.number().int().min(1).max(50).default(20).describe("At most this many (default 20)."),
      },
    },
    ({ query, limit }) => {
      const words = query.toLowerCase().split(/\s+/).filter(Boolean);
      const clause = words.map(() => "(lower(p.name) LIKE ? OR lower(p.category) LIKE ? OR lower(p.sku) LIKE ?)").join(" AND ");
      const params = words.flatMap((w) => Array(3).fill(`%${w.replace(/[%_]/g, "")}%`));
      const rows = db
        .prepare(
          `SELECT p.*, (SELECT SUM(on_hand - reserved) FROM stock WHERE sku = p.sku) AS available FROM products p WHERE ${clause} ORDER BY p.sku LIMIT ?`,
        )
        .all(...params, limit) as Array<ProductRow & { available: number }>;
      return {
        query,
        count: rows.length,
        products: rows.map((p) => ({
          sku: p.sku,
          name: p.name,
          category: p.category,
          price: money(p.price_cents),
          weight_grams: p.weight_grams,
          available: p.available,
        })),
      };
    },
  );

  tools.read(
    "get_stock",
    {
      title: "Get stock for a product",
      description:
        "Stock of one product at each fulfilment centre (RNO Reno, CMH Columbus, DFW Dallas): on hand, reserved, available (= on hand − reserved), and purchase orders still to arrive.",
      input: { sku },
    },
    ({ sku: value }) => {
      const p = getProduct(value);
      const locations = stockView(p.sku);
      return {
        sku: p.sku,
        name: p.name,
        price: money(p.price_cents),
        unit_cost: money(p.cost_cents),
        weight_grams: p.weight_grams,
        supplier: p.supplier,
        locations,
        total_available: locations.reduce((sum, l) => sum + l.available, 0),
        incoming: q.incoming.all(p.sku),
      };
    },
  );

  tools.write(
    "reserve_stock",
    {
      title: "Reserve stock",
      description:
        "Hold units of a product so they cannot be sold twice. Takes them from the given fulfilment centre, or from the one with the most available. Fails if not enough is available.",
      input: {
        sku,
        quantity,
        location: z
          .enum(["RNO", "CMH", "DFW"])
          .optional()
          .describe("The fulfilment centre to take from; default: the one with the most available."),
        order_id: z.string().optional().describe("The order the units are for, if any."),
        reason: reasonText("Why the units are held."),
      },
    },
    ({ sku: value, quantity: qty, location, order_id, reason }) => {
      const p = getProduct(value);
      const order = order_id ? getOrder(order_id).id : null;
      const levels = stockView(p.sku);
      const from = location ? levels.find((l) => l.location === location)! : [...levels].sort((a, b) => b.available - a.available)[0];
      if (from.available < qty) {
        throw new BusinessError(
          "out_of_stock",
          `Not enough stock of ${p.sku} (${p.name}) ${location ? `at ${location}` : "at any fulfilment centre"}: ${qty} requested, available ${availabilityText(p.sku)}.`,
        );
      }
      const id = hold(p.sku, from.location, qty, order, reason);
      return { reservation_id: id, sku: p.sku, location: from.location, quantity: qty, order_id: order, stock: stockView(p.sku) };
    },
  );

  tools.write(
    "create_reship",
    {
      title: "Reship items of an order",
      description:
        "Send replacement items of a shipped or delivered order (e.g. damaged or lost in transit), free of charge, by express. Reserves the stock and creates a new shipment. At most the ordered quantity of each item can be reshipped, across all reships of the order.",
      input: {
        order_id: orderId,
        items: items("The items to send again: SKUs from the order and how many of each."),
        reason: reasonText('Why, e.g. "screen cracked in transit".'),
      },
    },
    ({ order_id, items: wanted, reason }) => {
      const order = getOrder(order_id);
      if (order.status === "processing") {
        throw new BusinessError(
          "not_shipped",
          `Order ${order.id} has not shipped yet, so there is nothing to replace; it is still being prepared.`,
        );
      }
      const lines = q.lines.all(order.id) as LineRow[];
      const already = new Map(
        (
          db
            .prepare(
              "SELECT l.sku, SUM(l.quantity) AS n FROM reship_lines l JOIN reships r ON r.id = l.reship_id WHERE r.order_id = ? GROUP BY l.sku",
            )
            .all(order.id) as Array<{ sku: string; n: number }>
        ).map((r) => [r.sku, r.n]),
      );
      const merged = new Map<string, number>();
      for (const item of wanted)
        merged.set(item.sku.trim().toUpperCase(), (merged.get(item.sku.trim().toUpperCase()) ?? 0) + item.quantity);
      let valueCents = 0;
      for (const [itemSku, qty] of merged) {
        const ordered = lines.filter((l) => l.sku === itemSku).reduce((sum, l) => sum + l.quantity, 0);
        if (ordered === 0) {
          throw new BusinessError(
            "not_in_order",
            `${itemSku} is not in order ${order.id}; the order has ${lines.map((l) => `${l.sku} × ${l.quantity}`).join(", ")}.`,
          );
        }
        const done = already.get(itemSku) ?? 0;
        if (qty + done > ordered) {
          throw new BusinessError(
            "reship_exceeds_order",
            `Cannot reship ${qty} × ${itemSku}: order ${order.id} has ${ordered} and ${done} ${done === 1 ? "was" : "were"} already reshipped, so at most ${ordered - done} more.`,
          );
        }
        valueCents += qty * lines.find((l) => l.sku === itemSku)!.unit_price_cents;
      }
      // One fulfilment centre ships the whole reship: the first that has everything.
      const locations = (db.prepare("SELECT id FROM locations ORDER BY id").all() as Array<{ id: string }>).map((l) => l.id);
      const from = locations.find((loc) =>
        [...merged].every(([itemSku, qty]) => {
          const s = db.prepare("SELECT on_hand - reserved AS available FROM stock WHERE sku = ? AND location = ?").get(itemSku, loc) as
            | { available: number }
            | undefined;
          return (s?.available ?? 0) >= qty;
        }),
      );
      if (!from) {
        const detail = [...merged].map(([itemSku, qty]) => `${itemSku} × ${qty} (available ${availabilityText(itemSku)})`).join("; ");
        throw new BusinessError(
          "out_of_stock",
          `Cannot reship from stock: no fulfilment centre has everything: ${detail}. A purchase order may be needed.`,
        );
      }
      const original = (q.shipmentsOfOrder.all(order.id) as ShipmentRow[]).find((s) => s.kind === "original") ?? null;
      const reshipId = nextId(db, "reships", "id", "RS-");
      const count = (
        db.prepare("SELECT COUNT(*) AS n FROM shipments WHERE order_id = ? AND kind = 'reship'").get(order.id) as { n: number }
      ).n;
      const shipment = `SHP-${order.id}-R${count + 1}`;
      const carrier = original?.carrier ?? "UPS";
      const service = { UPS: "UPS 2nd Day Air", FedEx: "FedEx 2Day", USPS: "USPS Priority Mail" }[carrier] ?? `${carrier} express`;
      const at = now();
      const estimate = isoDay(Date.now() + 2 * DAY);
      db.prepare("INSERT INTO shipments VALUES (?, ?, 'reship', ?, ?, ?, ?, 'label_created', ?, ?, NULL, ?)").run(
        shipment,
        order.id,
        carrier,
        service,
        trackingFor(carrier, shipment),
        from,
        at,
        estimate,
        valueCents,
      );
      const city = (db.prepare("SELECT city FROM locations WHERE id = ?").get(from) as { city: string }).city;
      q.addEvent.run(
        shipment,
        at,
        "label_created",
        city,
        `Shipping label created (replacement for ${original?.id ?? `order ${order.id}`})`,
      );
      db.prepare("INSERT INTO reships VALUES (?, ?, ?, ?, ?, ?)").run(reshipId, order.id, original?.id ?? null, shipment, reason, at);
      for (const [itemSku, qty] of merged) {
        db.prepare("INSERT INTO reship_lines VALUES (?, ?, ?)").run(reshipId, itemSku, qty);
        hold(itemSku, from, qty, order.id, `reship ${reshipId}`);
      }
      const row = db.prepare("SELECT * FROM reships WHERE id = ?").get(reshipId) as Parameters<typeof reshipView>[0];
      return { reship: reshipView(row), shipment: shipmentView(q.shipment.get(shipment) as ShipmentRow) };
    },
  );

  tools.write(
    "file_carrier_claim",
    {
      title: "File a carrier claim",
      description:
        "Claim compensation from the carrier for a shipment: damaged (the shipment must have been delivered), lost (not delivered) or late. One open claim per shipment; the amount cannot exceed the shipment's declared value (for an original shipment, the order total).",
      input: {
        shipment_id: shipmentId,
        reason: z.enum(["damaged", "lost", "late"]).describe("damaged, lost or late."),
        amount: z.number().positive().describe("The amount claimed in USD, e.g. 329.00 for the damaged item."),
        description: reasonText("What happened, for the carrier."),
      },
    },
    ({ shipment_id, reason, amount, description }) => {
      const s = getShipment(shipment_id);
      const cents = toCents(amount);
      const open = db.prepare("SELECT id FROM claims WHERE shipment_id = ? AND status != 'rejected'").get(s.id) as
        | { id: string }
        | undefined;
      if (open)
        throw new BusinessError("claim_exists", `Shipment ${s.id} already has claim ${open.id}; a shipment can have only one open claim.`);
      if (reason === "damaged" && s.status !== "delivered") {
        throw new BusinessError(
          "not_delivered",
          `A damage claim needs a delivered shipment, but ${s.id} is ${s.status}. For a shipment that never arrived, claim "lost".`,
        );
      }
      if (reason === "lost" && s.status === "delivered") {
        throw new BusinessError(
          "already_delivered",
          `Shipment ${s.id} was delivered on ${s.delivered_at}, so it cannot be claimed as lost.`,
        );
      }
      if (cents > s.declared_value_cents) {
        throw new BusinessError(
          "claim_too_large",
          `A claim of ${money(cents).toFixed(2)} is more than shipment ${s.id}'s declared value of ${money(s.declared_value_cents).toFixed(2)}.`,
        );
      }
      const id = nextId(db, "claims", "id", "CLM-");
      db.prepare("INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?, ?, 'filed', ?)").run(
        id,
        s.id,
        s.order_id,
        s.carrier,
        reason,
        description,
        cents,
        now(),
      );
      return { claim: claimView(db.prepare("SELECT * FROM claims WHERE id = ?").get(id) as ClaimRow) };
    },
  );

  tools.write(
    "update_delivery_estimate",
    {
      title: "Update a delivery estimate",
      description:
        "Record a new estimated delivery date for a shipment that has not been delivered yet (e.g. after a carrier delay). Adds a tracking event; the shipment keeps its status.",
      input: {
        shipment_id: shipmentId,
        estimated_delivery: z
          .string()
          .regex(/^\d{4}-\d{2}-\d{2}$/, "a date like 2026-11-05")
          .describe("The new estimated delivery date, YYYY-MM-DD."),
        reason: reasonText('Why, e.g. "weather delay at the Memphis hub; FedEx expects delivery on Nov 5".'),
      },
    },
    ({ shipment_id, estimated_delivery, reason }) => {
      const s = getShipment(shipment_id);
      const day = Date.parse(`${estimated_delivery}T00:00:00Z`);
      if (Number.isNaN(day) || isoDay(day) !== estimated_delivery)
        throw new BusinessError("invalid_date", `${estimated_delivery} is not a date.`);
      if (s.status === "delivered") {
        throw new BusinessError(
          "already_delivered",
          `Shipment ${s.id} was already delivered on ${s.delivered_at}; its estimate cannot change.`,
        );
      }
      const shipped = isoDay(Date.parse(s.shipped_at));
      if (estimated_delivery < shipped || day > Date.parse(s.shipped_at) + 60 * DAY) {
        throw new BusinessError(
          "implausible_date",
          `${estimated_delivery} is not a plausible delivery date for shipment ${s.id}, shipped on ${shipped} (it must be within 60 days after).`,
        );
      }
      if (estimated_delivery === s.estimated_delivery) {
        return { shipment: shipmentView(s), previous_estimate: s.estimated_delivery, changed: false };
      }
      const at = now();
      db.prepare("UPDATE shipments SET estimated_delivery = ? WHERE id = ?").run(estimated_delivery, s.id);
      db.prepare("INSERT INTO delivery_estimates (shipment_id, previous, estimate, reason, created_at) VALUES (?, ?, ?, ?, ?)").run(
        s.id,
        s.estimated_delivery,
        estimated_delivery,
        reason,
        at,
      );
      const lastPlace = (q.events.all(s.id) as Array<{ location: string }>).at(-1)?.location ?? "";
      q.addEvent.run(s.id, at, "estimate_updated", lastPlace, `New estimated delivery: ${estimated_delivery} (${reason})`);
      return { shipment: shipmentView(q.shipment.get(s.id) as ShipmentRow), previous_estimate: s.estimated_delivery, changed: true };
    },
  );

  tools.read(
    "list_low_stock",
    {
      title: "List stock below its reorder point",
      description:
        "Every product and fulfilment centre where units available plus units incoming (purchase orders still to arrive there) " +
        "are below Acme's reorder point, grouped into the purchase orders that would restock them: one per supplier and centre, " +
        "each line at its usual order quantity, with the order's total cost at today's unit costs (pass it as create_purchase_order's total).",
      input: {
        location: z.enum(["RNO", "CMH", "DFW"]).optional().describe("Only this fulfilment centre; default: all three."),
      },
    },
    ({ location }) => {
      const rows = db
        .prepare(
          `SELECT r.sku, r.location, r.minimum, r.order_quantity, p.name, p.supplier, p.cost_cents,
                  s.on_hand - s.reserved AS available,
                  COALESCE((SELECT SUM(l.quantity) FROM purchase_order_lines l JOIN purchase_orders po ON po.id = l.po_id
                            WHERE l.sku = r.sku AND po.location = r.location AND po.status = 'ordered'), 0) AS incoming
           FROM reorder_points r JOIN products p ON p.sku = r.sku JOIN stock s ON s.sku = r.sku AND s.location = r.location
           WHERE ? IS NULL OR r.location = ? ORDER BY p.supplier, r.location, r.sku`,
        )
        .all(location ?? null, location ?? null) as Array<{
        sku: string;
        location: string;
        minimum: number;
        order_quantity: number;
        name: string;
        supplier: string;
        cost_cents: number;
        available: number;
        incoming: number;
      }>;
      const low = rows.filter((r) => r.available + r.incoming < r.minimum);
      const orders = new Map<string, typeof low>();
      for (const r of low) orders.set(`${r.supplier}@${r.location}`, [...(orders.get(`${r.supplier}@${r.location}`) ?? []), r]);
      return {
        reorder_points_checked: rows.length,
        below_reorder_point: low.length,
        purchase_orders: [...orders.values()].map((lines) => ({
          supplier: lines[0].supplier,
          location: lines[0].location,
          items: lines.map((r) => ({ sku: r.sku, quantity: r.order_quantity })),
          lines: lines.map((r) => ({
            sku: r.sku,
            name: r.name,
            available: r.available,
            incoming: r.incoming,
            reorder_point: r.minimum,
            quantity: r.order_quantity,
            unit_cost: money(r.cost_cents),
          })),
          total: money(lines.reduce((sum, r) => sum + r.cost_cents * r.order_quantity, 0)),
        })),
      };
    },
  );

  tools.write(
    "create_purchase_order",
    {
      title: "Create a purchase order",
      description:
        "Order stock from a supplier for one fulfilment centre. All items must come from the same supplier (see get_stock). Units arrive in about 14 days; until then they show as incoming in get_stock.",
      input: {
        location: z.enum(["RNO", "CMH", "DFW"]).describe("The fulfilment centre to deliver to."),
        items: items("What to order: SKUs and quantities."),
        total: z
          .number()
          .positive()
          .describe(
            "The order's total cost in USD at the unit costs get_stock or list_low_stock report. Approval is decided on this amount, so an order whose lines cost more is refused.",
          ),
        note: z.string().max(2000).default("").describe("An optional note for the buyer."),
      },
    },
    ({ location, items: wanted, total, note }) => {
      const merged = new Map<string, number>();
      for (const item of wanted)
        merged.set(item.sku.trim().toUpperCase(), (merged.get(item.sku.trim().toUpperCase()) ?? 0) + item.quantity);
      const products = [...merged.keys()].map(getProduct);
      const suppliers = [...new Set(products.map((p) => p.supplier))];
      if (suppliers.length > 1) {
        throw new BusinessError(
          "mixed_suppliers",
          `One purchase order goes to one supplier, but these items come from ${suppliers.join(" and ")}: ${products.map((p) => `${p.sku} (${p.supplier})`).join(", ")}. Create one purchase order per supplier.`,
        );
      }
      const cost = products.reduce((sum, p) => sum + p.cost_cents * merged.get(p.sku)!, 0);
      if (cost > toCents(total, "total")) {
        throw new BusinessError(
          "total_understated",
          `These lines cost ${money(cost).toFixed(2)} USD, more than the total of ${total.toFixed(2)} USD given: ${products.map((p) => `${merged.get(p.sku)} × ${p.sku} at ${money(p.cost_cents).toFixed(2)}`).join(", ")}. Give the order's full cost as total.`,
        );
      }
      const id = `PO-${(db.prepare("SELECT MAX(CAST(SUBSTR(id, 4) AS INTEGER)) AS n FROM purchase_orders").get() as { n: number }).n + 1}`;
      const expected = isoDay(Date.now() + 14 * DAY);
      db.prepare("INSERT INTO purchase_orders VALUES (?, ?, ?, 'ordered', ?, ?, ?)").run(id, suppliers[0], location, now(), expected, note);
      for (const p of products)
        db.prepare("INSERT INTO purchase_order_lines VALUES (?, ?, ?, ?)").run(id, p.sku, merged.get(p.sku)!, p.cost_cents);
      const lines = products.map((p) => ({ sku: p.sku, name: p.name, quantity: merged.get(p.sku)!, unit_cost: money(p.cost_cents) }));
      return {
        purchase_order: {
          id,
          supplier: suppliers[0],
          location,
          status: "ordered",
          expected_at: expected,
          lines,
          total_cost: money(cost),
          note,
        },
      };
    },
  );
}

export const WAREHOUSE_INSTRUCTIONS =
  "Acme's warehouse: orders, shipments and tracking, stock at three fulfilment centres (RNO, CMH, DFW), reships, carrier claims and purchase orders. " +
  "Amounts are in USD.";

if (isMain(import.meta.url)) {
  await runSystem({
    system: "warehouse",
    version: "1.0.0",
    instructions: WAREHOUSE_INSTRUCTIONS,
    open: openWarehouse,
    register: registerWarehouseTools,
  });
}
