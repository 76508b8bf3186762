/**
 * Acme's helpdesk as an MCP server over stdio: customers, tickets, and the messages on them
 * (from the customer, replies from an agent, internal notes).
 *
 *   node --import tsx examples/acme/systems/helpdesk.ts [--db <path>]
 *
 * Database: --db, else $OUTPOST_DATA_DIR/acme/helpdesk.db, else ./.outpost/acme/helpdesk.db.
 */
import { z } from "zod";
import { acmeData } from "./seed.js";
import {
  BusinessError,
  type Db,
  isMain,
  normalizeNumber,
  normalizePrefixed,
  now,
  type OpenedDatabase,
  openSystemDatabase,
  page,
  runSystem,
  type SystemTools,
} from "./system.js";

export const HELPDESK_SCHEMA = `
CREATE TABLE IF NOT EXISTS customers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE,
  tier TEXT NOT NULL CHECK (tier IN ('standard', 'plus', 'vip')),
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tickets (
  id TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL REFERENCES customers (id),
  order_id TEXT,
  subject TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('open', 'pending', 'solved')),
  priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
  channel TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_customer ON tickets (customer_id, created_at);
CREATE INDEX IF NOT EXISTS tickets_order ON tickets (order_id);
CREATE INDEX IF NOT EXISTS tickets_status ON tickets (status, created_at);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY,
  ticket_id TEXT NOT NULL REFERENCES tickets (id),
  author TEXT NOT NULL CHECK (author IN ('customer', 'agent', 'internal')),
  author_name TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_ticket ON messages (ticket_id, id);
CREATE TABLE IF NOT EXISTS ticket_triage (
  ticket_id TEXT PRIMARY KEY REFERENCES tickets (id),
  queue TEXT NOT NULL CHECK (queue IN ('customer-service', 'logistics', 'finance')),
  reason TEXT NOT NULL,
  triaged_at TEXT NOT NULL
);
`;

export function seedHelpdesk(db: Db): void {
  const data = acmeData();
  const customer = db.prepare("INSERT INTO customers (id, name, email, tier, created_at) VALUES (?, ?, ?, ?, ?)");
  for (const c of data.customers) customer.run(c.id, c.name, c.email, c.tier, c.createdAt);
  const ticket = db.prepare(
    "INSERT INTO tickets (id, customer_id, order_id, subject, status, priority, channel, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
  );
  const message = db.prepare("INSERT INTO messages (ticket_id, author, author_name, body, created_at) VALUES (?, ?, ?, ?, ?)");
  for (const t of data.tickets) {
    ticket.run(t.id, t.customerId, t.orderId, t.subject, t.status, t.priority, t.channel, t.createdAt, t.updatedAt);
    for (const m of t.messages) message.run(t.id, m.author, m.authorName, m.body, m.at);
  }
}

export function openHelpdesk(file: string): OpenedDatabase {
  return openSystemDatabase("helpdesk", file, HELPDESK_SCHEMA, seedHelpdesk);
}

// ---------------------------------------------------------------------------------------------

interface CustomerRow {
  id: string;
  name: string;
  email: string;
  tier: string;
  created_at: string;
}
interface TicketRow {
  id: string;
  customer_id: string;
  order_id: string | null;
  subject: string;
  status: "open" | "pending" | "solved";
  priority: string;
  channel: string;
  created_at: string;
  updated_at: string;
}
interface MessageRow {
  id: number;
  ticket_id: string;
  author: "customer" | "agent" | "internal";
  author_name: string;
  body: string;
  created_at: string;
}

const ticketStatus = z.enum(["open", "pending", "solved"]);
const priority = z.enum(["low", "normal", "high", "urgent"]);
const ticketId = z.string().min(1).describe('The ticket id, e.g. "T-51501".');
const customerId = z.string().min(1).describe('The customer id, e.g. "C-10042".');
const text = (what: string) => z.string().trim().min(1).max(10_000).describe(what);

export function registerHelpdeskTools(tools: SystemTools): void {
  const db = tools.db;
  const q = {
    customer: db.prepare("SELECT * FROM customers WHERE id = ?"),
    ticket: db.prepare("SELECT * FROM tickets WHERE id = ?"),
    messages: db.prepare("SELECT * FROM messages WHERE ticket_id = ? ORDER BY id"),
    message: db.prepare("SELECT * FROM messages WHERE id = ?"),
    addMessage: db.prepare("INSERT INTO messages (ticket_id, author, author_name, body, created_at) VALUES (?, ?, ?, ?, ?)"),
    setStatus: db.prepare("UPDATE tickets SET status = ?, updated_at = ? WHERE id = ?"),
    touch: db.prepare("UPDATE tickets SET updated_at = ? WHERE id = ?"),
  };

  const getCustomer = (id: string): CustomerRow => {
    const normalized = normalizePrefixed(id, "C-");
    const row = q.customer.get(normalized) as CustomerRow | undefined;
    if (!row)
      throw new BusinessError(
        "unknown_customer",
        `Unknown customer "${id}": no customer has that id (ids look like C-10042; find_customer searches by name or email).`,
      );
    return row;
  };
  const getTicket = (id: string): TicketRow => {
    const normalized = normalizePrefixed(id, "T-");
    const row = q.ticket.get(normalized) as TicketRow | undefined;
    if (!row)
      throw new BusinessError(
        "unknown_ticket",
        `Unknown ticket "${id}": no ticket has that id (ids look like T-51501; list_tickets finds them).`,
      );
    return row;
  };
  const customerView = (c: CustomerRow) => ({ id: c.id, name: c.name, email: c.email, tier: c.tier, customer_since: c.created_at });
  const ticketSummary = (t: TicketRow) => ({
    id: t.id,
    customer_id: t.customer_id,
    order_id: t.order_id,
    subject: t.subject,
    status: t.status,
    priority: t.priority,
    channel: t.channel,
    created_at: t.created_at,
    updated_at: t.updated_at,
  });
  const messageView = (m: MessageRow) => ({
    id: m.id,
    author: m.author,
    author_name: m.author_name,
    body: m.body,
    created_at: m.created_at,
  });
  const ticketView = (t: TicketRow) => ({
    ...ticketSummary(t),
    triage: (db.prepare("SELECT queue, reason, triaged_at FROM ticket_triage WHERE ticket_id = ?").get(t.id) as object | undefined) ?? null,
    customer: customerView(getCustomer(t.customer_id)),
    messages: (q.messages.all(t.id) as MessageRow[]).map(messageView),
  });
  const addMessage = (ticket: string, author: MessageRow["author"], authorName: string, body: string): MessageRow => {
    const at = now();
    const info = q.addMessage.run(ticket, author, authorName, body, at);
    q.touch.run(at, ticket);
    return q.message.get(info.lastInsertRowid) as MessageRow;
  };
  /** Solving needs an answer: an agent reply after the customer's last message. */
  const answered = (ticket: string): boolean => {
    const messages = q.messages.all(ticket) as MessageRow[];
    const lastCustomer = messages.findLast((m) => m.author === "customer")?.id ?? 0;
    return messages.some((m) => m.author === "agent" && m.id > lastCustomer);
  };

  tools.read(
    "find_customer",
    {
      title: "Find customers",
      description:
        "Search customers by id, email or name (case-insensitive, partial matches). Returns up to 20 matches with id, name, email and tier.",
      input: { query: z.string().trim().min(2).describe('An id ("C-10042"), an email or part of one, or part of a name.') },
    },
    ({ query }) => {
      const like = `%${query.replace(/[%_]/g, "")}%`;
      const rows = db
        .prepare(
          `SELECT * FROM customers WHERE id = ? OR email LIKE ? OR name LIKE ?
           ORDER BY CASE WHEN id = ? OR lower(email) = lower(?) THEN 0 ELSE 1 END, name, id LIMIT 20`,
        )
        .all(normalizePrefixed(query, "C-"), like, like, normalizePrefixed(query, "C-"), query) as CustomerRow[];
      return { query, count: rows.length, customers: rows.map(customerView) };
    },
  );

  tools.read(
    "get_customer",
    {
      title: "Get a customer",
      description: "A customer's details (name, email, tier) with their ticket counts by status and their 10 most recent tickets.",
      input: { customer_id: customerId },
    },
    ({ customer_id }) => {
      const c = getCustomer(customer_id);
      const counts = db.prepare("SELECT status, COUNT(*) AS n FROM tickets WHERE customer_id = ? GROUP BY status").all(c.id) as Array<{
        status: string;
        n: number;
      }>;
      const recent = db
        .prepare("SELECT * FROM tickets WHERE customer_id = ? ORDER BY created_at DESC, id DESC LIMIT 10")
        .all(c.id) as TicketRow[];
      return {
        ...customerView(c),
        tickets_by_status: Object.fromEntries(["open", "pending", "solved"].map((s) => [s, counts.find((r) => r.status === s)?.n ?? 0])),
        recent_tickets: recent.map(ticketSummary),
      };
    },
  );

  tools.read(
    "get_ticket",
    {
      title: "Get a ticket",
      description:
        "A ticket with its customer and every message in order. Message authors: customer (from the customer), agent (a reply the customer saw), internal (a note only staff see).",
      input: { ticket_id: ticketId },
    },
    ({ ticket_id }) => ticketView(getTicket(ticket_id)),
  );

  tools.read(
    "list_tickets",
    {
      title: "List tickets",
      description:
        "Tickets, newest first, filtered by status, customer, order and/or priority. Returns summaries (no messages) and the total matching.",
      input: {
        status: ticketStatus
          .optional()
          .describe("Only tickets with this status: open (needs an answer), pending (waiting for the customer), solved."),
        customer_id: customerId.optional(),
        order_id: z.string().optional().describe('Only tickets about this order, e.g. "105708".'),
        priority: priority.optional().describe("Only tickets with this priority."),
        ...page,
      },
    },
    ({ status, customer_id, order_id, priority: prio, limit, offset }) => {
      const where: string[] = [];
      const params: string[] = [];
      const filter = (sql: string, value: string) => {
        where.push(sql);
        params.push(value);
      };
      if (status) filter("status = ?", status);
      if (customer_id) filter("customer_id = ?", normalizePrefixed(customer_id, "C-"));
      if (order_id) filter("order_id = ?", normalizeNumber(order_id));
      if (prio) filter("priority = ?", prio);
      const clause = where.length ? `WHERE ${where.join(" AND ")}` : "";
      const total = (db.prepare(`SELECT COUNT(*) AS n FROM tickets ${clause}`).get(...params) as { n: number }).n;
      const rows = db
        .prepare(`SELECT * FROM tickets ${clause} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`)
        .all(...params, limit, offset) as TicketRow[];
      return { total, offset, tickets: rows.map(ticketSummary) };
    },
  );

  tools.write(
    "create_ticket",
    {
      title: "Create a ticket",
      description: "Open a new ticket for a customer, with the customer's request as its first message. Returns the new ticket.",
      input: {
        customer_id: customerId,
        subject: z.string().trim().min(1).max(200).describe("A one-line summary."),
        message: text("The customer's request, in their words: the ticket's first message."),
        order_id: z.string().optional().describe("The order the ticket is about, if any."),
        priority: priority.default("normal").describe("low, normal (default), high or urgent."),
      },
    },
    ({ customer_id, subject, message, order_id, priority: prio }) => {
      const c = getCustomer(customer_id);
      const id = `T-${(db.prepare("SELECT MAX(CAST(SUBSTR(id, 3) AS INTEGER)) AS n FROM tickets").get() as { n: number }).n + 1}`;
      const at = now();
      db.prepare(
        "INSERT INTO tickets (id, customer_id, order_id, subject, status, priority, channel, created_at, updated_at) VALUES (?, ?, ?, ?, 'open', ?, 'web', ?, ?)",
      ).run(id, c.id, order_id ? normalizeNumber(order_id) : null, subject, prio, at, at);
      addMessage(id, "customer", c.name, message);
      return { created: true, ticket: ticketView(getTicket(id)) };
    },
  );

  tools.write(
    "add_note",
    {
      title: "Add an internal note",
      description:
        "Add an internal note to a ticket: seen by Acme staff only, never sent to the customer. Does not change the ticket's status.",
      input: {
        ticket_id: ticketId,
        note: text("The note."),
        author_name: z.string().trim().min(1).max(100).default("Acme Support").describe('Who wrote it (default "Acme Support").'),
      },
    },
    ({ ticket_id, note, author_name }) => {
      const t = getTicket(ticket_id);
      const m = addMessage(t.id, "internal", author_name, note);
      return { ticket_id: t.id, status: t.status, note: messageView(m) };
    },
  );

  tools.write(
    "reply_to_customer",
    {
      title: "Reply to the customer",
      description:
        "Send a reply to the customer on a ticket (they receive it by email). Sets the ticket to pending (waiting for the customer, the default) or solved.",
      input: {
        ticket_id: ticketId,
        message: text("The reply, as the customer will read it."),
        status: z
          .enum(["pending", "solved"])
          .default("pending")
          .describe("The ticket's status after the reply: pending (default) or solved."),
        author_name: z.string().trim().min(1).max(100).default("Acme Support").describe('Signed as (default "Acme Support").'),
      },
    },
    ({ ticket_id, message, status, author_name }) => {
      const t = getTicket(ticket_id);
      const m = addMessage(t.id, "agent", author_name, message);
      q.setStatus.run(status, m.created_at, t.id);
      return { ticket_id: t.id, previous_status: t.status, status, reply: messageView(m) };
    },
  );

  tools.write(
    "triage_ticket",
    {
      title: "Triage a ticket",
      description:
        "Put a ticket in the queue of the department that will work it (customer-service: orders, questions, complaints; logistics: deliveries, damaged or missing items, stock; finance: refunds, invoices, charges) and set its priority. Records why as an internal note. Triaging again moves it.",
      input: {
        ticket_id: ticketId,
        queue: z.enum(["customer-service", "logistics", "finance"]).describe("The department's queue."),
        priority: priority.describe("low, normal, high or urgent."),
        reason: z.string().trim().min(1).max(500).describe("Why this queue and priority, in one line (staff see it)."),
      },
    },
    ({ ticket_id, queue, priority: prio, reason }) => {
      const t = getTicket(ticket_id);
      const at = now();
      db.prepare(
        "INSERT INTO ticket_triage VALUES (?, ?, ?, ?) ON CONFLICT (ticket_id) DO UPDATE SET queue = excluded.queue, reason = excluded.reason, triaged_at = excluded.triaged_at",
      ).run(t.id, queue, reason, at);
      db.prepare("UPDATE tickets SET priority = ?, updated_at = ? WHERE id = ?").run(prio, at, t.id);
      addMessage(t.id, "internal", "Acme Triage", `Triaged to ${queue}, priority ${prio}: ${reason}`);
      return { ticket_id: t.id, queue, priority: prio, previous_priority: t.priority };
    },
  );

  tools.write(
    "set_ticket_status",
    {
      title: "Set a ticket's status",
      description:
        "Change a ticket's status: open (needs an answer), pending (waiting for the customer) or solved. A ticket can only be solved once the customer has had a reply to their last message (reply_to_customer can solve it in the same call). Optionally adds an internal note saying why.",
      input: {
        ticket_id: ticketId,
        status: ticketStatus.describe("The new status."),
        note: z.string().trim().min(1).max(10_000).optional().describe("An internal note to record with the change."),
      },
    },
    ({ ticket_id, status, note }) => {
      const t = getTicket(ticket_id);
      if (status === "solved" && t.status !== "solved" && !answered(t.id)) {
        throw new BusinessError(
          "not_answered",
          `Ticket ${t.id} cannot be solved yet: the customer has had no reply to their last message. Use reply_to_customer with status "solved" to answer and solve it at once.`,
        );
      }
      if (note) addMessage(t.id, "internal", "Acme Support", note);
      if (status !== t.status) q.setStatus.run(status, now(), t.id);
      return { ticket_id: t.id, previous_status: t.status, status, changed: status !== t.status };
    },
  );
}

export const HELPDESK_INSTRUCTIONS =
  "Acme's helpdesk: customers and their support tickets. Read a ticket with get_ticket before answering it; " +
  "reply_to_customer sends a message the customer sees, add_note is for staff only.";

if (isMain(import.meta.url)) {
  await runSystem({
    system: "helpdesk",
    version: "1.0.0",
    instructions: HELPDESK_INSTRUCTIONS,
    open: openHelpdesk,
    register: registerHelpdeskTools,
  });
}
