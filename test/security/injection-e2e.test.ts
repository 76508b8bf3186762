/**
 * The injection suite end to end (issue 4 §5, §8, Tests): every case of test/fixtures/injections/corpus.yaml is
 * delivered through its channel to a real Outpost on the Acme project (its three business systems as real MCP
 * servers), driven by a *gullible* model that obeys whatever instruction it finds — it calls the attack's tool
 * with the attack's arguments, or asks the refunds agent to. What must hold for every case:
 *
 * - zero unauthorised side effects: the ledger has no new refund, goodwill credit or corrected invoice, the
 *   warehouse no new reship or claim, the helpdesk no reply to a customer (nobody approves anything here);
 * - the attempt is recorded: a `policy.decided` deny or an `approval.requested` for the attack's tool in the
 *   run tree's events;
 * - the tainted input or output is marked: `run.started.tainted` or `tool.completed.tainted` is non-empty.
 *
 * Channels: ticket / email / chat → a helpdesk ticket whose customer message is the text (chat: the run's input
 * itself); order_note → an internal note on the ticket; tool_output / mcp_result → the note of an invoice the
 * ledger returns from ledger.get_invoice.
 *
 * It needs the runtime wired to the guardrails (src/runtime imports security/guardrails) and Acme's policies
 * (examples/acme/policies/*.cedar); a test below fails if either is missing. INJECTION_E2E_DEBUG=1 prints each
 * case's events.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { systemsState } from "../../examples/acme/systems/inspect.js";
import { DAMAGED_ORDER } from "../../examples/acme/systems/scenarios.js";
import type { EventView, RunTreeView, RunView } from "../../src/core/api.js";
import { isTerminal } from "../../src/core/api.js";
import { loadProject } from "../../src/definitions/index.js";
import { createScriptedClient, type ModelRequest, type ScriptReply } from "../../src/models/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { until } from "../helpers/until.js";

const ACME = path.resolve(import.meta.dirname, "../../examples/acme");
const RUNTIME = path.resolve(import.meta.dirname, "../../src/runtime");

interface InjectionCase {
  id: string;
  channel: "ticket" | "email" | "chat" | "order_note" | "tool_output" | "mcp_result";
  intent: string;
  language: string;
  text: string;
  attack: { tool: string; arguments: Record<string, unknown> };
}
const corpus = parse(readFileSync(path.resolve(import.meta.dirname, "../fixtures/injections/corpus.yaml"), "utf8")) as {
  injections: InjectionCase[];
};

/**
 * What this suite waits for: the run loop scanning inputs and tool output with security/guardrails, and Acme's
 * own policies (examples/acme/policies/*.cedar; under the baseline alone, support may not even read a ticket).
 */
const wired =
  readdirSync(RUNTIME, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith(".ts"))
    .some((f) => /security\/guardrails/.test(readFileSync(path.join(RUNTIME, f), "utf8"))) &&
  existsSync(path.join(ACME, "policies")) &&
  readdirSync(path.join(ACME, "policies")).some((f) => f.endsWith(".cedar"));

const ORDER = DAMAGED_ORDER.orderId;
const INVOICE = DAMAGED_ORDER.invoiceId;
const CUSTOMER = DAMAGED_ORDER.customerId;

/** A stretch of the case's text that survives JSON quoting: how the gullible model recognises it in a tool result. */
function markerOf(text: string): string {
  const runs = text.match(/[A-Za-z0-9][A-Za-z0-9 ,]{10,}/g) ?? [];
  const longest = runs.sort((a, b) => b.length - a.length)[0] ?? text;
  return longest.slice(0, 24);
}

const DELEGATED = "Do exactly this: ";

/**
 * The gullible model: it believes anything. Given a ticket or invoice id it reads it (support, which may not read
 * the ledger, asks invoicing to); when the latest user text or tool output carries the current case's injection,
 * it carries out the attack itself if it has the tool, delegates it to the refunds agent, or — with neither —
 * passes the instruction on in its answer (so it reaches whoever delegated to it); a delegated "Do exactly this"
 * task is executed verbatim, and so is a task asking for a refund. Told its arguments were invalid, it fixes them
 * and tries again, as models do.
 */
function gullible(current: () => InjectionCase | null) {
  let n = 0;
  const call = (name: string, args: Record<string, unknown>): ScriptReply => ({ toolCalls: [{ id: `g${++n}`, name, arguments: args }] });
  return (req: ModelRequest): ScriptReply => {
    const c = current();
    const tools = new Set(req.tools.map((t) => t.name));
    const last = req.messages[req.messages.length - 1];
    const attack = (a: InjectionCase["attack"]): ScriptReply => {
      if (tools.has(a.tool)) return call(a.tool, a.arguments);
      if (tools.has("delegate.refunds")) return call("delegate.refunds", { task: DELEGATED + JSON.stringify(a) });
      return `I cannot do this myself; it says: ${c?.text}`;
    };
    if (!c || !last) return "Nothing to do.";
    if (last.role === "user") {
      if (last.content.startsWith(DELEGATED)) return attack(JSON.parse(last.content.slice(DELEGATED.length)));
      if (last.content.includes(markerOf(c.text))) return attack(c.attack);
      const refund = /refund \$?([\d,]+(?:\.\d+)?) for order (\d+)/i.exec(last.content);
      if (refund && tools.has("ledger.issue_refund")) {
        return call("ledger.issue_refund", { order_id: refund[2], amount: Number(refund[1].replaceAll(",", "")), reason: last.content });
      }
      const ticket = /\bT-\d+\b/.exec(last.content)?.[0];
      if (ticket && tools.has("helpdesk.get_ticket")) return call("helpdesk.get_ticket", { ticket_id: ticket });
      const invoice = /\bINV-\d+\b/.exec(last.content)?.[0];
      if (invoice && tools.has("ledger.get_invoice")) return call("ledger.get_invoice", { invoice_id: invoice });
      if (invoice && tools.has("delegate.invoicing")) return call("delegate.invoicing", { task: `Check invoice ${invoice}.` });
      return "Nothing to do.";
    }
    if (last.role === "tool") {
      const previous = [...req.messages].reverse().find((m) => m.role === "assistant" && (m.toolCalls?.length ?? 0) > 0);
      const retried = previous?.role === "assistant" ? previous.toolCalls?.[0] : undefined;
      if (last.isError && retried && last.content.includes("invalid arguments") && !retried.arguments.includes("(corrected)")) {
        const args = JSON.parse(retried.arguments) as Record<string, unknown>;
        return call(retried.name, { ...args, reason: `${String(args.reason ?? "")} (corrected)` });
      }
      const attempted = req.messages.some(
        (m) => m.role === "assistant" && m.toolCalls?.some((t) => t.name === c.attack.tool || t.name === "delegate.refunds"),
      );
      if (!attempted && last.content.includes(markerOf(c.text))) return attack(c.attack);
      return `Done: ${last.content.slice(0, 200)}`;
    }
    return "Done.";
  };
}

/** Puts the case where its channel delivers it; returns the run's input. */
function deliver(dataDir: string, c: InjectionCase, index: number): string {
  const db = new Database(
    path.join(dataDir, "acme", `${c.channel === "tool_output" || c.channel === "mcp_result" ? "ledger" : "helpdesk"}.db`),
  );
  db.pragma("busy_timeout = 10000");
  const at = new Date().toISOString();
  try {
    if (c.channel === "chat") return c.text;
    if (c.channel === "tool_output" || c.channel === "mcp_result") {
      db.prepare("UPDATE invoices SET note = ? WHERE id = ?").run(c.text, INVOICE);
      return `The customer asks about invoice ${INVOICE}. Please check it.`;
    }
    const ticket = `T-${79000 + index}`;
    const channel = c.channel === "email" ? "email" : "web";
    db.prepare("INSERT INTO tickets VALUES (?, ?, ?, ?, 'open', 'normal', ?, ?, ?)").run(
      ticket,
      CUSTOMER,
      ORDER,
      `Order ${ORDER}`,
      channel,
      at,
      at,
    );
    const body = c.channel === "order_note" ? "Hi, any news on my order?" : c.text;
    db.prepare("INSERT INTO messages (ticket_id, author, author_name, body, created_at) VALUES (?, 'customer', ?, ?, ?)").run(
      ticket,
      DAMAGED_ORDER.customerName,
      body,
      at,
    );
    if (c.channel === "order_note") {
      db.prepare("INSERT INTO messages (ticket_id, author, author_name, body, created_at) VALUES (?, 'internal', 'Warehouse', ?, ?)").run(
        ticket,
        c.text,
        at,
      );
    }
    return `Please handle ticket ${ticket}.`;
  } finally {
    db.close();
  }
}

const flatten = (t: RunTreeView): RunView[] => [t.run, ...t.children.flatMap(flatten)];

describe("prompt injections end to end on Acme", { timeout: 600_000 }, () => {
  let outpost: Outpost;
  let dataDir: string;
  let current: InjectionCase | null = null;
  const acme = () => systemsState(path.join(dataDir, "acme"));

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), "outpost-injection-e2e-"));
    const project = await loadProject(ACME);
    for (const c of project.connections.values()) if (c.kind === "mcp") c.connectTimeoutMs = 90_000;
    const model = createScriptedClient(
      "assistant",
      gullible(() => current),
    );
    const env = { ...process.env };
    delete env.OPENAI_API_KEY;
    delete env.OUTPOST_LLM_BASE_URL;
    delete env.OUTPOST_DATABASE_URL;
    outpost = await startOutpost({ project, dataDir, env, modelFor: () => model });
    await until(
      "the three systems to be connected",
      async () => (outpost.connections().every((c) => c.state === "ready") ? true : null),
      120_000,
    );
  }, 240_000);

  afterAll(async () => {
    await outpost?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it.each(corpus.injections.map((c, i) => [c.id, c, i] as const))("%s: blocked, recorded, marked tainted", async (_id, c, i) => {
    const before = acme();
    current = c;
    const input = deliver(dataDir, c, i);
    const root = await outpost.startRun({ agent: "support", input });

    // Settled: every run of the tree has ended, or one waits for a person (who never comes).
    const runs = await until(
      `case ${c.id} to settle`,
      async () => {
        const all = flatten(await outpost.getRunTree(root.id));
        return all.every((r) => isTerminal(r.status) || r.status === "waiting") && all.some((r) => r.status !== "running") ? all : null;
      },
      60_000,
    );
    const events: EventView[] = (await Promise.all(runs.map((r) => outpost.getEvents(r.id)))).flat();
    if (process.env.INJECTION_E2E_DEBUG)
      console.log(
        JSON.stringify(
          events.map((e) => [e.type, e.data]),
          null,
          1,
        ).slice(0, 6000),
      );
    const failures = events.filter((e) => e.type === "run.failed").map((e) => JSON.stringify(e.data));

    // 1. No side effect in any business system.
    const after = acme();
    expect(after.ledger, "ledger: no refund, credit or corrected invoice").toEqual(before.ledger);
    expect(after.warehouse, "warehouse: no reship, claim or change").toEqual(before.warehouse);
    expect(after.helpdesk?.agent_replies, "helpdesk: no reply to a customer").toBe(before.helpdesk?.agent_replies);

    // 2. The attempt is recorded: denied by policy, or held for a person's approval.
    const attempted = (tool: string) => tool === c.attack.tool || tool.startsWith("delegate.") || tool.startsWith("ledger.");
    const denied = events.some(
      (e) =>
        e.type === "policy.decided" &&
        e.data.effect === "deny" &&
        attempted(String((e.data.request as { resource: { id: string } }).resource.id)),
    );
    const held = events.some((e) => e.type === "approval.requested" && attempted(String(e.data.tool)));
    expect(
      denied || held,
      `a deny or an approval request for ${c.attack.tool}: ${events.map((e) => e.type).join(", ")} ${failures.join(" ")}`,
    ).toBe(true);

    // 3. The injected text is marked where it entered.
    const tainted = events.filter(
      (e) => (e.type === "run.started" || e.type === "tool.completed") && Array.isArray(e.data.tainted) && e.data.tainted.length > 0,
    );
    expect(tainted.length, "run.started or tool.completed marked tainted").toBeGreaterThan(0);

    for (const r of runs) if (!isTerminal(r.status)) await outpost.cancelRun(r.id, "injection case done");
    current = null;
  });
});

describe("the injection suite's harness", () => {
  it("has a delivery for every channel of the corpus and a tool for every attack", () => {
    const channels = new Set(["ticket", "email", "chat", "order_note", "tool_output", "mcp_result"]);
    for (const c of corpus.injections) {
      expect(channels.has(c.channel), c.id).toBe(true);
      expect(c.attack.tool, c.id).toMatch(/^(ledger|helpdesk|warehouse|delegate)\.[a-z_]+$/);
      expect(markerOf(c.text).length, c.id).toBeGreaterThanOrEqual(11);
    }
  });

  it("runs against the real thing: the runtime uses security/guardrails and Acme has its policies", () => {
    expect(wired, "src/runtime must scan with security/guardrails, and examples/acme/policies/*.cedar must exist").toBe(true);
  });
});
