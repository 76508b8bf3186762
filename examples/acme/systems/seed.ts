/**
 * Acme's history, generated deterministically: the same customers, products, orders, shipments,
 * tickets, invoices and payments every time, on every machine. Each business system (helpdesk,
 * warehouse, ledger) seeds its own database from `acmeData()` and keeps only its part, so the
 * three agree without ever talking to each other.
 *
 * Determinism: one seeded PRNG (mulberry32), a fixed BASE_DATE instead of the clock, and no
 * iteration over anything unordered. The scenario fixtures (./scenarios.ts) are laid over the
 * random history at fixed ids. Money is in integer cents throughout.
 */
import {
  BASE_DATE,
  DAMAGED_ORDER,
  FIXTURE_CUSTOMER_IDS,
  FIXTURE_ORDER_IDS,
  FIXTURE_PRODUCTS,
  INVOICE_DISPUTE,
  LATE_SHIPMENT,
} from "./scenarios.js";

export { BASE_DATE };

/** Bump when the generated data changes: databases seeded by another version refuse to open. */
/** Raised when the seeded data changes shape (2: reorder points), so an older data folder says so instead of misbehaving. */
export const SEED_VERSION = 2;

export const CUSTOMER_COUNT = 1200;
export const PRODUCT_COUNT = 240;
export const ORDER_COUNT = 6000;
export const FIRST_ORDER_NUMBER = 100001;
/** Tickets from the random history; the scenario tickets follow them (T-51501…). */
export const RANDOM_TICKET_COUNT = 1500;
export const FIRST_TICKET_NUMBER = 50001;

const DAY = 86_400_000;
const HOUR = 3_600_000;
const BASE_MS = Date.parse(BASE_DATE);
const HISTORY_DAYS = 180;
const START_MS = BASE_MS - HISTORY_DAYS * DAY;

// ---------------------------------------------------------------------------------------------
// Shapes

export type Tier = "standard" | "plus" | "vip";
export type OrderStatus = "processing" | "shipped" | "delivered";
export type ShipmentStatus = "label_created" | "in_transit" | "delayed" | "delivered";
export type TicketStatus = "open" | "pending" | "solved";
export type Priority = "low" | "normal" | "high" | "urgent";
export type Author = "customer" | "agent" | "internal";

export interface Customer {
  id: string;
  name: string;
  email: string;
  tier: Tier;
  createdAt: string;
  city: string;
  state: string;
  postalCode: string;
}

export interface Product {
  sku: string;
  name: string;
  category: string;
  priceCents: number;
  costCents: number;
  weightGrams: number;
  supplier: string;
}

export interface Location {
  id: string;
  name: string;
  city: string;
}

export interface OrderLine {
  sku: string;
  name: string;
  quantity: number;
  unitPriceCents: number;
}

export interface ShipmentEvent {
  at: string;
  status: string;
  location: string;
  description: string;
}

export interface Shipment {
  id: string;
  orderId: string;
  carrier: string;
  service: string;
  trackingNumber: string;
  fromLocation: string;
  status: ShipmentStatus;
  shippedAt: string;
  /** YYYY-MM-DD */
  estimatedDelivery: string;
  deliveredAt: string | null;
  events: ShipmentEvent[];
}

export interface Order {
  id: string;
  customerId: string;
  placedAt: string;
  shippingMethod: "standard" | "express";
  lines: OrderLine[];
  subtotalCents: number;
  shippingFeeCents: number;
  totalCents: number;
  status: OrderStatus;
  shipment: Shipment | null;
}

export interface Reservation {
  sku: string;
  location: string;
  quantity: number;
  orderId: string;
  createdAt: string;
}

export interface StockLevel {
  sku: string;
  location: string;
  onHand: number;
}

export interface PurchaseOrder {
  id: string;
  supplier: string;
  location: string;
  status: "ordered" | "received";
  createdAt: string;
  expectedAt: string;
  lines: Array<{ sku: string; quantity: number; unitCostCents: number }>;
}

export interface TicketMessage {
  author: Author;
  authorName: string;
  body: string;
  at: string;
}

export interface Ticket {
  id: string;
  customerId: string;
  orderId: string | null;
  subject: string;
  status: TicketStatus;
  priority: Priority;
  channel: "email" | "chat" | "web";
  createdAt: string;
  updatedAt: string;
  messages: TicketMessage[];
}

export interface InvoiceLine {
  sku: string;
  description: string;
  quantity: number;
  unitPriceCents: number;
}

export interface Invoice {
  id: string;
  orderId: string;
  customerId: string;
  issuedAt: string;
  lines: InvoiceLine[];
  totalCents: number;
}

export interface Payment {
  id: string;
  orderId: string;
  invoiceId: string;
  customerId: string;
  method: "card" | "paypal";
  amountCents: number;
  receivedAt: string;
}

/** The fewest units Acme wants available (plus incoming) of a product at a fulfilment centre, and how many it orders then. */
export interface ReorderPoint {
  sku: string;
  location: string;
  minimum: number;
  orderQuantity: number;
}

export interface AcmeData {
  customers: Customer[];
  products: Product[];
  locations: Location[];
  stock: StockLevel[];
  reservations: Reservation[];
  orders: Order[];
  purchaseOrders: PurchaseOrder[];
  reorderPoints: ReorderPoint[];
  tickets: Ticket[];
  invoices: Invoice[];
  payments: Payment[];
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** mulberry32: small, fast, good enough for test data, and the same in every JS engine. */
class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  digits(n: number): string {
    let s = "";
    for (let i = 0; i < n; i++) s += String(this.int(0, 9));
    return s;
  }
}

export function isoTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

export function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function dayEndMs(day: string): number {
  return Date.parse(`${day}T23:59:59Z`);
}

export function orderNumber(index: number): string {
  return String(FIRST_ORDER_NUMBER + index);
}

export const SHIPPING = {
  standardFeeCents: 695,
  /** Standard shipping is free from this subtotal on. */
  freeStandardFromCents: 15000,
  expressFeeCents: 1495,
};

export function shippingFeeCents(method: "standard" | "express", subtotalCents: number): number {
  if (method === "express") return SHIPPING.expressFeeCents;
  return subtotalCents >= SHIPPING.freeStandardFromCents ? 0 : SHIPPING.standardFeeCents;
}

const toCents = (amount: number) => Math.round(amount * 100);

// ---------------------------------------------------------------------------------------------
// Vocabulary

// biome-ignore format: a word list
const FIRST_NAMES = [
  "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Lucas", "Isabella", "Mateo", "Mia", "Levi",
  "Amelia", "Ethan", "Harper", "Aiden", "Evelyn", "Daniel", "Abigail", "Henry", "Emily", "Jackson", "Ella", "Samuel",
  "Chloe", "Owen", "Grace", "Wei", "Priya", "Arjun", "Fatima", "Omar", "Yuki", "Kenji", "Sofia", "Diego", "Amara",
  "Kwame", "Ingrid", "Lars", "Zoe", "Nina", "Tomás", "Leila",
];
// biome-ignore format: a word list
const LAST_NAMES = [
  "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez",
  "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris",
  "Clark", "Lewis", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Nguyen", "Patel", "Kim", "Chen", "Singh",
  "Mensah", "Novak", "Larsen", "Rossi", "Silva", "Schmidt", "Tanaka", "Cohen", "Murphy",
];
const EMAIL_DOMAINS = ["example.com", "example.net", "example.org", "mail.example", "inbox.example"];
// biome-ignore format: a word list
const CITIES: Array<[string, string, string]> = [
  ["Portland", "OR", "972"], ["Seattle", "WA", "981"], ["Denver", "CO", "802"], ["Austin", "TX", "787"],
  ["Chicago", "IL", "606"], ["Atlanta", "GA", "303"], ["Boston", "MA", "021"], ["Phoenix", "AZ", "850"],
  ["Nashville", "TN", "372"], ["Minneapolis", "MN", "554"], ["Columbus", "OH", "432"], ["San Diego", "CA", "921"],
  ["Raleigh", "NC", "276"], ["Pittsburgh", "PA", "152"], ["Salt Lake City", "UT", "841"], ["Madison", "WI", "537"],
];

const BRANDS = ["Aurora", "Keystone", "Drift", "Harbor", "Lumen", "Summit", "Nimbus", "Cobalt", "Vertex", "Ember", "Quartz", "Pioneer"];
// biome-ignore format: a table
const PRODUCT_TYPES: Array<{ category: string; types: string[]; price: [number, number]; weight: [number, number] }> = [
  { category: "Keyboards", types: ["Mechanical Keyboard", "Low-Profile Keyboard", "Compact Keyboard", "Ergonomic Keyboard"], price: [49, 179], weight: [600, 1300] },
  { category: "Mice", types: ["Wireless Mouse", "Gaming Mouse", "Vertical Mouse", "Travel Mouse"], price: [19, 89], weight: [70, 140] },
  { category: "Monitors", types: ['24" FHD Monitor', '27" QHD Monitor', '27" 4K Monitor', '34" Ultrawide Monitor'], price: [149, 699], weight: [3500, 9000] },
  { category: "Audio", types: ["Wireless Headset", "USB Headset", "Noise-Cancelling Headphones", "Desktop Speakers"], price: [29, 249], weight: [200, 1800] },
  { category: "Webcams", types: ["1080p Webcam", "4K Webcam", "Conference Camera"], price: [39, 199], weight: [120, 600] },
  { category: "Docks & hubs", types: ["USB-C Hub 7-in-1", "USB-C Dock 11-in-1", "Thunderbolt Dock"], price: [29, 299], weight: [90, 700] },
  { category: "Cables", types: ["USB-C Cable 1 m", "Braided USB-C Cable 2 m", "HDMI 2.1 Cable 2 m", "DisplayPort Cable 2 m", "Ethernet Cable 5 m"], price: [7, 29], weight: [40, 200] },
  { category: "Power", types: ["65 W USB-C Charger", "100 W GaN Charger", "Power Bank 20000 mAh"], price: [25, 89], weight: [150, 450] },
  { category: "Storage", types: ["1 TB Portable SSD", "2 TB Portable SSD", "128 GB USB Stick"], price: [15, 219], weight: [20, 120] },
  { category: "Desk", types: ["Laptop Stand", "Monitor Arm", "Desk Mat", "Cable Tray"], price: [19, 149], weight: [300, 4000] },
];

const LOCATIONS: Location[] = [
  { id: "RNO", name: "Reno fulfilment centre", city: "Reno, NV" },
  { id: "CMH", name: "Columbus fulfilment centre", city: "Columbus, OH" },
  { id: "DFW", name: "Dallas fulfilment centre", city: "Dallas, TX" },
];

const CARRIERS = [
  { name: "UPS", standard: "UPS Ground", express: "UPS 2nd Day Air", hubs: ["Louisville, KY", "Chicago, IL", "Ontario, CA"] },
  { name: "FedEx", standard: "FedEx Ground", express: "FedEx 2Day", hubs: ["Memphis, TN", "Indianapolis, IN", "Fort Worth, TX"] },
  {
    name: "USPS",
    standard: "USPS Ground Advantage",
    express: "USPS Priority Mail",
    hubs: ["Kansas City, MO", "Denver, CO", "Atlanta, GA"],
  },
];
const DELAY_REASONS = [
  "Severe weather at the carrier's hub",
  "Package missed its scheduled connection",
  "Higher than usual volume at the sorting facility",
  "Address needed clarification",
];
const AGENT_NAMES = ["Sam", "Priya", "Jordan", "Alex", "Maya"];

// ---------------------------------------------------------------------------------------------
// Generation

let cached: AcmeData | undefined;

/** The whole seeded history (memoised: generating it once per process is enough). */
export function acmeData(): AcmeData {
  cached ??= generate();
  return cached;
}

function generate(): AcmeData {
  const rnd = new Random(0xac3e2026);
  const customers = generateCustomers(rnd);
  const products = generateProducts(rnd);
  const productBySku = new Map(products.map((p) => [p.sku, p]));
  const customerById = new Map(customers.map((c) => [c.id, c]));
  const outOfStock = new Set(products.filter((p, i) => i % 25 === 7 && !isFixtureSku(p.sku)).map((p) => p.sku));

  const orders: Order[] = [];
  for (let i = 0; i < ORDER_COUNT; i++) {
    orders.push(generateOrder(rnd, i, customers, products, customerById, outOfStock));
  }
  for (const fixture of [DAMAGED_ORDER, LATE_SHIPMENT, INVOICE_DISPUTE]) {
    const index = Number(fixture.orderId) - FIRST_ORDER_NUMBER;
    orders[index] = fixtureOrder(fixture, productBySku, customerById);
  }

  const reservations = generateReservations(orders);
  const stock = generateStock(rnd, products, reservations, outOfStock);
  const purchaseOrders = generatePurchaseOrders(rnd, products, outOfStock);
  const tickets = generateTickets(rnd, orders, customers, products, customerById);
  const { invoices, payments } = generateBilling(rnd, orders, productBySku);
  return {
    customers,
    products,
    locations: LOCATIONS,
    stock,
    reservations,
    orders,
    purchaseOrders,
    reorderPoints: REORDER_POINTS,
    tickets,
    invoices,
    payments,
  };
}

/**
 * The lines Acme keeps a minimum of (its monitors and best sellers). As seeded, two fall below theirs — Ember's 27"
 * monitor at Columbus (an order of about $1,900) and Nimbus' 34" ultrawide at Dallas (about $5,600, over the $5,000
 * a purchase order may commit without finance): the nightly stock check's first night.
 */
const REORDER_POINTS: ReorderPoint[] = [
  ...["RNO", "CMH", "DFW"].map((location) => ({ sku: "ACM-1002", location, minimum: 10, orderQuantity: 20 })),
  ...["RNO", "CMH", "DFW"].map((location) => ({ sku: "ACM-1004", location, minimum: 10, orderQuantity: 20 })),
  ...["RNO", "CMH", "DFW"].map((location) => ({ sku: "ACM-1014", location, minimum: 8, orderQuantity: 20 })),
  { sku: "ACM-1031", location: "DFW", minimum: 10, orderQuantity: 30 },
  ...["RNO", "CMH", "DFW"].map((location) => ({ sku: "ACM-1001", location, minimum: 25, orderQuantity: 100 })),
  ...["RNO", "CMH", "DFW"].map((location) => ({ sku: "ACM-1005", location, minimum: 25, orderQuantity: 60 })),
];

function isFixtureSku(sku: string): boolean {
  return FIXTURE_PRODUCTS.some((p) => p.sku === sku);
}

function generateCustomers(rnd: Random): Customer[] {
  const customers: Customer[] = [];
  const emails = new Set<string>();
  const fixtures = new Map<string, { name: string; email: string; tier: Tier }>(
    [DAMAGED_ORDER, LATE_SHIPMENT, INVOICE_DISPUTE].map((f) => [
      f.customerId,
      { name: f.customerName, email: f.customerEmail, tier: f.customerTier },
    ]),
  );
  for (let i = 0; i < CUSTOMER_COUNT; i++) {
    const id = `C-${10001 + i}`;
    const first = rnd.pick(FIRST_NAMES);
    const last = rnd.pick(LAST_NAMES);
    const domain = rnd.pick(EMAIL_DOMAINS);
    const [city, state, zip] = rnd.pick(CITIES);
    const tierRoll = rnd.next();
    const created = START_MS - rnd.int(0, 900) * DAY - rnd.int(0, 86_399) * 1000;
    const fixture = fixtures.get(id);
    let name = `${first} ${last}`;
    let email = `${first}.${last}@${domain}`
      .toLowerCase()
      .normalize("NFD")
      .replace(/[\u0300-\u036f]/g, "");
    for (let n = 2; emails.has(email); n++) email = email.replace(/(\d*)@/, `${n}@`);
    if (fixture) {
      name = fixture.name;
      email = fixture.email;
    }
    emails.add(email);
    customers.push({
      id,
      name,
      email,
      tier: fixture?.tier ?? (tierRoll < 0.75 ? "standard" : tierRoll < 0.95 ? "plus" : "vip"),
      createdAt: isoTime(created),
      city,
      state,
      postalCode: `${zip}${rnd.digits(2)}`,
    });
  }
  return customers;
}

function generateProducts(rnd: Random): Product[] {
  const fixtures = new Map(FIXTURE_PRODUCTS.map((p) => [p.sku, p]));
  const taken = new Set(FIXTURE_PRODUCTS.map((p) => p.name));
  const products: Product[] = [];
  for (let i = 0; i < PRODUCT_COUNT; i++) {
    const sku = `ACM-${1001 + i}`;
    const fixture = fixtures.get(sku);
    if (fixture) {
      const brand = fixture.name.split(" ")[0];
      const priceCents = toCents(fixture.price);
      products.push({
        sku,
        name: fixture.name,
        category: fixture.category,
        priceCents,
        costCents: Math.round(priceCents * 0.55),
        weightGrams: fixture.weightGrams,
        supplier: `${brand} Supply Co.`,
      });
      continue;
    }
    let name = "";
    let kind = PRODUCT_TYPES[0];
    let brand = "";
    do {
      kind = rnd.pick(PRODUCT_TYPES);
      brand = rnd.pick(BRANDS);
      name = `${brand} ${rnd.pick(kind.types)}`;
      if (taken.has(name)) name = `${name} ${rnd.pick(["Pro", "Plus", "Lite", "Max", "Mini", "II", "Air", "S"])}`;
    } while (taken.has(name));
    taken.add(name);
    const priceCents = rnd.int(kind.price[0], kind.price[1]) * 100 + rnd.pick([0, 99, 99, 49]);
    products.push({
      sku,
      name,
      category: kind.category,
      priceCents,
      costCents: Math.round(priceCents * 0.55),
      weightGrams: rnd.int(kind.weight[0], kind.weight[1]),
      supplier: `${brand} Supply Co.`,
    });
  }
  return products;
}

function sumLines(lines: readonly OrderLine[]): number {
  return lines.reduce((sum, l) => sum + l.quantity * l.unitPriceCents, 0);
}

function generateOrder(
  rnd: Random,
  index: number,
  customers: Customer[],
  products: Product[],
  customerById: Map<string, Customer>,
  outOfStock: Set<string>,
): Order {
  const slot = (BASE_MS - START_MS) / ORDER_COUNT;
  const placedMs = START_MS + index * slot + rnd.next() * slot;
  const id = orderNumber(index);
  const customer = rnd.pick(customers);
  const lineCountRoll = rnd.next();
  const lineCount = lineCountRoll < 0.5 ? 1 : lineCountRoll < 0.8 ? 2 : lineCountRoll < 0.95 ? 3 : 4;
  const lines: OrderLine[] = [];
  const recent = BASE_MS - placedMs < 3 * DAY;
  while (lines.length < lineCount) {
    const product = rnd.pick(products);
    if (lines.some((l) => l.sku === product.sku)) continue;
    // Products out of stock right now cannot have been ordered in the last few days.
    if (recent && outOfStock.has(product.sku)) continue;
    const qRoll = rnd.next();
    const quantity = product.category === "Cables" && qRoll > 0.7 ? rnd.int(2, 3) : qRoll < 0.85 ? 1 : qRoll < 0.97 ? 2 : 3;
    lines.push({ sku: product.sku, name: product.name, quantity, unitPriceCents: product.priceCents });
  }
  const shippingMethod = rnd.chance(0.2) ? "express" : "standard";
  const subtotalCents = sumLines(lines);
  const shippingFee = shippingFeeCents(shippingMethod, subtotalCents);
  const order: Order = {
    id,
    customerId: customer.id,
    placedAt: isoTime(placedMs),
    shippingMethod,
    lines,
    subtotalCents,
    shippingFeeCents: shippingFee,
    totalCents: subtotalCents + shippingFee,
    status: "processing",
    shipment: null,
  };
  const shippedMs = placedMs + rnd.int(6, 30) * HOUR + rnd.int(0, 59) * 60_000;
  if (shippedMs > BASE_MS) return order;
  const carrier = rnd.pick(CARRIERS);
  const transitDays = shippingMethod === "express" ? rnd.int(1, 2) : rnd.int(3, 5);
  const estimateDay = isoDay(shippedMs + transitDays * DAY);
  const delayDays = rnd.chance(0.08) ? rnd.int(1, 4) : 0;
  const deliveredMs = Date.parse(`${estimateDay}T00:00:00Z`) + (delayDays * 24 + rnd.int(10, 19)) * HOUR + rnd.int(0, 59) * 60_000;
  const from = rnd.pick(LOCATIONS);
  const dest = customerById.get(customer.id)!;
  const delivered = deliveredMs <= BASE_MS;
  const delayed = !delivered && dayEndMs(estimateDay) < BASE_MS;
  const shipment: Shipment = {
    id: `SHP-${id}`,
    orderId: id,
    carrier: carrier.name,
    service: shippingMethod === "express" ? carrier.express : carrier.standard,
    trackingNumber: trackingNumber(rnd, carrier.name),
    fromLocation: from.id,
    status: delivered ? "delivered" : delayed ? "delayed" : "in_transit",
    shippedAt: isoTime(shippedMs),
    estimatedDelivery: estimateDay,
    deliveredAt: delivered ? isoTime(deliveredMs) : null,
    events: [],
  };
  const hub = rnd.pick(carrier.hubs);
  const destination = `${dest.city}, ${dest.state}`;
  const events: ShipmentEvent[] = [
    { at: isoTime(shippedMs - 2 * HOUR), status: "label_created", location: from.city, description: "Shipping label created" },
    { at: isoTime(shippedMs), status: "picked_up", location: from.city, description: `Picked up by ${carrier.name}` },
    { at: isoTime(shippedMs + rnd.int(8, 20) * HOUR), status: "in_transit", location: hub, description: "Arrived at carrier facility" },
    { at: isoTime(shippedMs + rnd.int(22, 30) * HOUR), status: "in_transit", location: hub, description: "Departed carrier facility" },
  ];
  if (delayDays > 0) {
    events.push({
      at: isoTime(Date.parse(`${estimateDay}T06:00:00Z`)),
      status: "delayed",
      location: hub,
      description: `Delay: ${rnd.pick(DELAY_REASONS)}. A new delivery date will be provided.`,
    });
  }
  events.push({ at: isoTime(deliveredMs - 4 * HOUR), status: "out_for_delivery", location: destination, description: "Out for delivery" });
  events.push({ at: isoTime(deliveredMs), status: "delivered", location: destination, description: "Delivered, left at front door" });
  shipment.events = events.filter((e) => Date.parse(e.at) <= BASE_MS).sort((a, b) => a.at.localeCompare(b.at));
  order.shipment = shipment;
  order.status = delivered ? "delivered" : "shipped";
  return order;
}

function trackingNumber(rnd: Random, carrier: string): string {
  if (carrier === "UPS") return `1Z${rnd.pick(["A4F92E", "X71R03", "E0W485"])}03${rnd.digits(8)}`;
  if (carrier === "FedEx") return rnd.digits(12);
  return `9400${rnd.digits(18)}`;
}

type Fixture = typeof DAMAGED_ORDER | typeof LATE_SHIPMENT | typeof INVOICE_DISPUTE;

function fixtureOrder(f: Fixture, productBySku: Map<string, Product>, customerById: Map<string, Customer>): Order {
  const lines = f.lines.map((l) => {
    const p = productBySku.get(l.sku)!;
    return { sku: p.sku, name: p.name, quantity: l.quantity, unitPriceCents: p.priceCents };
  });
  const subtotalCents = sumLines(lines);
  const shippingFee = shippingFeeCents(f.shippingMethod, subtotalCents);
  const customer = customerById.get(f.customerId)!;
  const destination = `${customer.city}, ${customer.state}`;
  const shippedMs = Date.parse(f.shippedAt);
  const order: Order = {
    id: f.orderId,
    customerId: f.customerId,
    placedAt: f.placedAt,
    shippingMethod: f.shippingMethod,
    lines,
    subtotalCents,
    shippingFeeCents: shippingFee,
    totalCents: subtotalCents + shippingFee,
    status: "delivered",
    shipment: null,
  };
  if (order.totalCents !== toCents(f.orderTotal)) throw new Error(`fixture ${f.name}: total ${order.totalCents} ≠ ${f.orderTotal}`);
  const base = (carrier: string, service: string, tracking: string, from: string): Shipment => ({
    id: f.shipmentId,
    orderId: f.orderId,
    carrier,
    service,
    trackingNumber: tracking,
    fromLocation: from,
    status: "delivered",
    shippedAt: f.shippedAt,
    estimatedDelivery: "",
    deliveredAt: null,
    events: [
      { at: isoTime(shippedMs - 2 * HOUR), status: "label_created", location: "Reno, NV", description: "Shipping label created" },
      { at: f.shippedAt, status: "picked_up", location: "Reno, NV", description: `Picked up by ${carrier}` },
    ],
  });
  if (f.name === "late_shipment") {
    const s = base("FedEx", "FedEx Ground", f.trackingNumber, "RNO");
    s.status = "delayed";
    s.estimatedDelivery = f.originalEstimate;
    s.events.push(
      { at: "2026-10-28T03:40:00Z", status: "in_transit", location: "Memphis, TN", description: "Arrived at carrier facility" },
      {
        at: "2026-10-30T06:15:00Z",
        status: "delayed",
        location: "Memphis, TN",
        description: "Delay: Severe weather at the carrier's hub. A new delivery date will be provided.",
      },
    );
    order.status = "shipped";
    order.shipment = s;
    return order;
  }
  const s =
    f.name === "damaged_order"
      ? base("UPS", "UPS 2nd Day Air", "1ZA4F92E0348155072", "RNO")
      : base("USPS", "USPS Ground Advantage", "9400111899223418547120", "RNO");
  const deliveredMs = Date.parse(f.deliveredAt);
  s.estimatedDelivery = isoDay(deliveredMs);
  s.deliveredAt = f.deliveredAt;
  s.events.push(
    {
      at: isoTime(shippedMs + 14 * HOUR),
      status: "in_transit",
      location: s.carrier === "UPS" ? "Louisville, KY" : "Kansas City, MO",
      description: "Arrived at carrier facility",
    },
    { at: isoTime(deliveredMs - 5 * HOUR), status: "out_for_delivery", location: destination, description: "Out for delivery" },
    { at: f.deliveredAt, status: "delivered", location: destination, description: "Delivered, left at front door" },
  );
  order.shipment = s;
  return order;
}

/** Orders not yet shipped hold stock at the location that will ship them. */
function generateReservations(orders: Order[]): Reservation[] {
  const reservations: Reservation[] = [];
  for (const order of orders) {
    if (order.status !== "processing") continue;
    const location = LOCATIONS[Number(order.id) % LOCATIONS.length].id;
    for (const line of order.lines) {
      reservations.push({ sku: line.sku, location, quantity: line.quantity, orderId: order.id, createdAt: order.placedAt });
    }
  }
  return reservations;
}

function generateStock(rnd: Random, products: Product[], reservations: Reservation[], outOfStock: Set<string>): StockLevel[] {
  const reserved = new Map<string, number>();
  for (const r of reservations) reserved.set(`${r.sku}@${r.location}`, (reserved.get(`${r.sku}@${r.location}`) ?? 0) + r.quantity);
  const stock: StockLevel[] = [];
  for (const product of products) {
    for (const location of LOCATIONS) {
      const held = reserved.get(`${product.sku}@${location.id}`) ?? 0;
      let free = rnd.chance(0.15) ? 0 : rnd.int(1, product.category === "Monitors" ? 40 : 160);
      if (outOfStock.has(product.sku)) free = 0;
      if (isFixtureSku(product.sku)) free = Math.max(free, 30);
      stock.push({ sku: product.sku, location: location.id, onHand: held + free });
    }
  }
  return stock;
}

function generatePurchaseOrders(rnd: Random, products: Product[], outOfStock: Set<string>): PurchaseOrder[] {
  const purchaseOrders: PurchaseOrder[] = [];
  const candidates = products.filter((p) => outOfStock.has(p.sku) || rnd.chance(0.1));
  for (let i = 0; i < 30; i++) {
    const first = candidates[i % candidates.length];
    const created = BASE_MS - rnd.int(1, 60) * DAY;
    const expected = created + rnd.int(10, 30) * DAY;
    const lines = [first, ...products.filter((p) => p.supplier === first.supplier && p.sku !== first.sku).slice(0, rnd.int(0, 2))].map(
      (p) => ({ sku: p.sku, quantity: rnd.int(2, 20) * 10, unitCostCents: p.costCents }),
    );
    purchaseOrders.push({
      id: `PO-${2001 + i}`,
      supplier: first.supplier,
      location: rnd.pick(LOCATIONS).id,
      status: expected <= BASE_MS ? "received" : "ordered",
      createdAt: isoTime(created),
      expectedAt: isoDay(expected),
      lines,
    });
  }
  return purchaseOrders.sort((a, b) => a.id.localeCompare(b.id));
}

const fmt = (cents: number) => (cents / 100).toFixed(2);

function generateTickets(
  rnd: Random,
  orders: Order[],
  customers: Customer[],
  products: Product[],
  customerById: Map<string, Customer>,
): Ticket[] {
  const fixtureOrders = new Set(FIXTURE_ORDER_IDS);
  const fixtureCustomers = new Set(FIXTURE_CUSTOMER_IDS);
  const drafts: Array<Omit<Ticket, "id">> = [];
  const latest = BASE_MS - 2 * HOUR;
  while (drafts.length < RANDOM_TICKET_COUNT) {
    const withOrder = rnd.chance(0.9);
    const order = withOrder ? rnd.pick(orders) : null;
    if (order && fixtureOrders.has(order.id)) continue;
    const customer = order ? customerById.get(order.customerId)! : rnd.pick(customers);
    const fromMs = order ? Date.parse(order.placedAt) : START_MS;
    const createdMs = Math.min(latest, fromMs + rnd.int(2, order?.status === "delivered" ? 20 * 24 : 72) * HOUR);
    const subject = ticketStory(rnd, order, products);
    const ageDays = (BASE_MS - createdMs) / DAY;
    const roll = rnd.next();
    let status: TicketStatus =
      ageDays < 2 ? (roll < 0.55 ? "open" : roll < 0.85 ? "pending" : "solved") : roll < 0.9 ? "solved" : roll < 0.95 ? "pending" : "open";
    // Fixture customers have no other open business with Acme.
    if (fixtureCustomers.has(customer.id)) status = "solved";
    const pRoll = rnd.next();
    let priority: Priority = pRoll < 0.15 ? "low" : pRoll < 0.85 ? "normal" : pRoll < 0.97 ? "high" : "urgent";
    if (customer.tier === "vip" && priority === "normal") priority = "high";
    const agent = `${rnd.pick(AGENT_NAMES)} (Acme Support)`;
    const first = customer.name.split(" ")[0];
    const messages: TicketMessage[] = [{ author: "customer", authorName: customer.name, body: subject.body, at: isoTime(createdMs) }];
    let t = createdMs;
    if (status !== "open") {
      t = Math.min(latest, t + rnd.int(1, 20) * HOUR);
      messages.push({
        author: "agent",
        authorName: agent,
        body: `Hi ${first}, ${subject.reply}\n\nBest regards,\n${agent}`,
        at: isoTime(t),
      });
      if (status === "solved" && rnd.chance(0.4)) {
        t = Math.min(latest, t + rnd.int(1, 30) * HOUR);
        messages.push({ author: "customer", authorName: customer.name, body: "Thanks, that helps!", at: isoTime(t) });
      }
    } else if (rnd.chance(0.3)) {
      messages.push({ author: "internal", authorName: agent, body: "Looking into this, will reply today.", at: isoTime(t + HOUR) });
      t += HOUR;
    }
    drafts.push({
      customerId: customer.id,
      orderId: order?.id ?? null,
      subject: subject.subject,
      status,
      priority,
      channel: rnd.pick(["email", "email", "chat", "web"] as const),
      createdAt: isoTime(createdMs),
      updatedAt: isoTime(Math.min(t, latest)),
      messages,
    });
  }
  drafts.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || (a.orderId ?? "").localeCompare(b.orderId ?? ""));
  const tickets: Ticket[] = drafts.map((d, i) => ({ id: `T-${FIRST_TICKET_NUMBER + i}`, ...d }));
  tickets.push(...fixtureTickets(customerById));
  return tickets;
}

function ticketStory(rnd: Random, order: Order | null, products: Product[]): { subject: string; body: string; reply: string } {
  if (!order) {
    const product = rnd.pick(products);
    return rnd.chance(0.5)
      ? {
          subject: `Question about the ${product.name}`,
          body: `Hello, does the ${product.name} (${product.sku}) work with a MacBook Air? Thanks.`,
          reply: `yes, the ${product.name} works with current MacBook models. Let us know if you have more questions.`,
        }
      : {
          subject: "Please update my email address",
          body: "Hi, I changed my email address. Can you update it on my account?",
          reply: "we have updated the email address on your account.",
        };
  }
  const s = order.shipment;
  if (order.status === "processing") {
    return {
      subject: `Change delivery address for order ${order.id}`,
      body: `Hi, I just placed order ${order.id}. Could you ship it to my office address instead?`,
      reply: `we have updated the delivery address for order ${order.id} before it left the warehouse.`,
    };
  }
  if (order.status === "shipped" && s) {
    return {
      subject: `Where is my order ${order.id}?`,
      body: `Hello, my order ${order.id} has not arrived yet. When can I expect it?`,
      reply: `your order ${order.id} is on its way with ${s.carrier} (tracking ${s.trackingNumber}), expected by ${s.estimatedDelivery}.`,
    };
  }
  const line = rnd.pick(order.lines);
  const kind = rnd.int(0, 3);
  if (kind === 0) {
    return {
      subject: `Return for order ${order.id}`,
      body: `Hi, I would like to return the ${line.name} from order ${order.id}. It is unused.`,
      reply: `we have emailed you a prepaid return label for the ${line.name}. The refund follows once it is back with us.`,
    };
  }
  if (kind === 1) {
    return {
      subject: `Copy of the invoice for order ${order.id}`,
      body: `Hello, could you send me a copy of the invoice for order ${order.id}? I need it for my expenses.`,
      reply: `the invoice for order ${order.id} (INV-${order.id}, ${fmt(order.totalCents)} USD) is attached.`,
    };
  }
  if (kind === 2) {
    return {
      subject: `How do I set up my ${line.name}?`,
      body: `Hi, I received the ${line.name} from order ${order.id} but I can't get it to work. Any tips?`,
      reply: `please try a different USB port and update its firmware from our support page; that solves most setup problems.`,
    };
  }
  return {
    subject: `Order ${order.id} arrived, thanks`,
    body: `Just wanted to say order ${order.id} arrived quickly. Will the ${line.name} come back in other colours?`,
    reply: `thank you! We expect more colours later this season.`,
  };
}

function fixtureTickets(customerById: Map<string, Customer>): Ticket[] {
  const name = (id: string) => customerById.get(id)!.name;
  return [
    {
      id: DAMAGED_ORDER.ticketId,
      customerId: DAMAGED_ORDER.customerId,
      orderId: DAMAGED_ORDER.orderId,
      subject: `Monitor arrived broken (order ${DAMAGED_ORDER.orderId})`,
      status: "open",
      priority: "high",
      channel: "email",
      createdAt: "2026-11-02T07:31:00Z",
      updatedAt: "2026-11-02T07:31:00Z",
      messages: [
        {
          author: "customer",
          authorName: name(DAMAGED_ORDER.customerId),
          at: "2026-11-02T07:31:00Z",
          body:
            `Hello, my order ${DAMAGED_ORDER.orderId} was delivered on October 27, but when I unpacked the ` +
            `${DAMAGED_ORDER.damagedItem} the screen was cracked — the box has a big dent on one corner. ` +
            "I paid extra for express shipping. Can you please send me a replacement? Photos attached.\n\nMaria",
        },
      ],
    },
    {
      id: LATE_SHIPMENT.ticketId,
      customerId: LATE_SHIPMENT.customerId,
      orderId: LATE_SHIPMENT.orderId,
      subject: `Where is my order ${LATE_SHIPMENT.orderId}?`,
      status: "open",
      priority: "normal",
      channel: "chat",
      createdAt: "2026-11-02T08:05:00Z",
      updatedAt: "2026-11-02T08:05:00Z",
      messages: [
        {
          author: "customer",
          authorName: name(LATE_SHIPMENT.customerId),
          at: "2026-11-02T08:05:00Z",
          body:
            `Hi, my order ${LATE_SHIPMENT.orderId} (keyboard and mouse) was supposed to arrive on October 31 and ` +
            `it still isn't here. FedEx tracking ${LATE_SHIPMENT.trackingNumber} just says "delayed". When will it come?`,
        },
      ],
    },
    {
      id: INVOICE_DISPUTE.ticketId,
      customerId: INVOICE_DISPUTE.customerId,
      orderId: INVOICE_DISPUTE.orderId,
      subject: `Invoice ${INVOICE_DISPUTE.invoiceId} is wrong`,
      status: "open",
      priority: "high",
      channel: "email",
      createdAt: "2026-11-02T08:20:00Z",
      updatedAt: "2026-11-02T08:20:00Z",
      messages: [
        {
          author: "customer",
          authorName: name(INVOICE_DISPUTE.customerId),
          at: "2026-11-02T08:20:00Z",
          body:
            `Hello, I received a payment reminder for invoice ${INVOICE_DISPUTE.invoiceId} saying I still owe 19.99. ` +
            `I paid 267.99 in full at checkout for order ${INVOICE_DISPUTE.orderId}. The invoice lists the braided ` +
            "USB-C cable twice, but I only ordered one. Please correct the invoice.\n\nHannah Becker",
        },
      ],
    },
  ];
}

function generateBilling(rnd: Random, orders: Order[], productBySku: Map<string, Product>): { invoices: Invoice[]; payments: Payment[] } {
  const fixtureCustomers = new Set(FIXTURE_CUSTOMER_IDS);
  const invoices: Invoice[] = [];
  const payments: Payment[] = [];
  orders.forEach((order, index) => {
    const lines: InvoiceLine[] = order.lines.map((l) => ({
      sku: l.sku,
      description: l.name,
      quantity: l.quantity,
      unitPriceCents: l.unitPriceCents,
    }));
    if (order.id === INVOICE_DISPUTE.orderId) {
      const dup = lines.find((l) => l.sku === INVOICE_DISPUTE.duplicatedSku)!;
      lines.splice(lines.indexOf(dup) + 1, 0, { ...dup });
    } else if (index % 997 === 500 && !fixtureCustomers.has(order.customerId)) {
      // A handful of other invoices are wrong too: the first line billed at an outdated, higher price.
      const product = productBySku.get(lines[0].sku)!;
      lines[0] = { ...lines[0], unitPriceCents: product.priceCents + Math.max(100, Math.round(product.priceCents * 0.1)) };
    }
    if (order.shippingFeeCents > 0) {
      lines.push({
        sku: "SHIPPING",
        description: `Shipping (${order.shippingMethod})`,
        quantity: 1,
        unitPriceCents: order.shippingFeeCents,
      });
    }
    const invoiceId = `INV-${order.id}`;
    invoices.push({
      id: invoiceId,
      orderId: order.id,
      customerId: order.customerId,
      issuedAt: order.placedAt,
      lines,
      totalCents: lines.reduce((sum, l) => sum + l.quantity * l.unitPriceCents, 0),
    });
    payments.push({
      id: `PAY-${order.id}`,
      orderId: order.id,
      invoiceId,
      customerId: order.customerId,
      method: rnd.chance(0.8) ? "card" : "paypal",
      amountCents: order.totalCents,
      receivedAt: order.placedAt,
    });
  });
  const dispute = invoices.find((i) => i.id === INVOICE_DISPUTE.invoiceId)!;
  if (dispute.totalCents !== toCents(INVOICE_DISPUTE.invoicedTotal)) throw new Error("invoice dispute fixture: wrong invoiced total");
  return { invoices, payments };
}
