/**
 * Acme's agents on a "real" model, without scripts: OUTPOST_LLM_BASE_URL points the `assistant` alias
 * at a local OpenAI-compatible server speaking the real wire format, whose answers depend only on what
 * each request carries (the agent's instructions, the conversation, the tools offered). The AI SDK
 * provider path goes end to end through a handoff, a delegation and the MCP systems: namespaced tool
 * names and the systems' own JSON schemas on the wire, tool results sent back, the dispute resolved.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemsState } from "../../examples/acme/systems/inspect.js";
import { INVOICE_DISPUTE } from "../../examples/acme/systems/scenarios.js";
import { loadProject } from "../../src/definitions/index.js";
import { readsData } from "../../src/models/scripted/client.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { type OpenAIServer, type RecordedRequest, startOpenAIServer, text, toolCalls } from "../helpers/openai-server.js";

type Message = { role: string; content?: string; tool_calls?: unknown[] };

/** What a competent model would do next, from the request alone. */
function acmeModel(req: RecordedRequest) {
  const messages: Message[] = req.body.messages;
  const system = String(messages[0]?.content ?? "");
  // Tool results arrive wrapped as untrusted data; the model reads what is inside.
  const results = messages.filter((m) => m.role === "tool").map((m) => readsData(String(m.content)));
  const last = results.at(-1) ?? "";
  const call = (name: string, args: unknown) => toolCalls([{ name, arguments: JSON.stringify(args) }]);
  const sinceLastUser = messages.slice(messages.findLastIndex((m) => m.role === "user") + 1);
  const turns = sinceLastUser.filter((m) => m.role === "assistant").length;

  if (system.startsWith("You are the front desk")) {
    if (results.length === 0) return call("helpdesk__get_ticket", { ticket_id: INVOICE_DISPUTE.ticketId });
    return call("handoff__support", { reason: "invoice dispute" });
  }
  if (system.startsWith("You are Acme's customer-support agent")) {
    // After the handoff: invoicing (support cannot read the ledger: it gives the invoice id), one reply, the answer.
    const mine = messages.slice(
      messages.findIndex((m) => m.role === "tool" && readsData(String(m.content)).startsWith("The conversation is now with support")) + 1,
    );
    const done = mine.filter((m) => m.role === "tool").length;
    if (done === 0) {
      return call("delegate__invoicing", {
        task: `The customer disputes invoice ${INVOICE_DISPUTE.invoiceId}. Check it against its order and correct it if it is wrong.`,
      });
    }
    if (done === 1) {
      return call("helpdesk__reply_to_customer", {
        ticket_id: INVOICE_DISPUTE.ticketId,
        status: "solved",
        message: `You were right — we issued a corrected invoice. (${last.slice(0, 80)})`,
      });
    }
    return text("Corrected invoice issued; nothing is due.");
  }
  if (system.startsWith("You are Acme's invoicing agent")) {
    if (turns === 0) return call("ledger__get_invoice", { invoice_id: INVOICE_DISPUTE.invoiceId });
    if (turns === 1) return call("warehouse__get_order", { order_id: (JSON.parse(last) as { order_id: string }).order_id });
    if (turns === 2) {
      const order = JSON.parse(last) as { lines: { sku: string; quantity: number; unit_price: number }[] };
      const lines = order.lines.map((l) => ({ sku: l.sku, quantity: l.quantity, unit_price: l.unit_price }));
      return call("ledger__issue_corrected_invoice", { invoice_id: INVOICE_DISPUTE.invoiceId, lines, reason: "cable billed twice" });
    }
    const corrected = JSON.parse(last) as Record<string, unknown>;
    return text(`Corrected: ${JSON.stringify(corrected).slice(0, 120)}`);
  }
  return text(`no plan for: ${system.slice(0, 60)}`);
}

describe("Acme on an OpenAI-compatible model, without scripts", () => {
  let server: OpenAIServer;
  let outpost: Outpost;
  let dataDir: string;

  beforeAll(async () => {
    server = await startOpenAIServer();
    for (let i = 0; i < 40; i++) server.enqueue(acmeModel);
    const env = { ...process.env, OUTPOST_LLM_BASE_URL: server.url, OUTPOST_LLM_MODEL: "acme-local-7b" };
    const project = await loadProject("examples/acme", { env });
    dataDir = mkdtempSync(join(tmpdir(), "outpost-acme-llm-"));
    outpost = await startOutpost({ project, dataDir, env, pollMs: 50 });
  });
  afterAll(async () => {
    await outpost?.close();
    await server?.close();
  });

  it("resolves the invoice dispute through a handoff, a delegation and the three systems", async () => {
    expect(outpost.describeModels().every((m) => m.model.includes("acme-local-7b"))).toBe(true);
    const run = await outpost.startRun({
      agent: "triage",
      input: `Ticket ${INVOICE_DISPUTE.ticketId}: invoice ${INVOICE_DISPUTE.invoiceId} charges me twice.`,
    });
    for await (const e of outpost.streamEvents(run.id)) void e;
    const done = await outpost.getRun(run.id);
    expect(done.status, JSON.stringify(done.error)).toBe("completed");
    expect(done.output).toBe("Corrected invoice issued; nothing is due.");

    const state = systemsState(join(dataDir, "acme")).scenarios.invoice_dispute;
    expect(state).toMatchObject({
      replaced_by: `${INVOICE_DISPUTE.invoiceId}-R1`,
      replacement_total: 267.99,
      balance: 0,
      answered: true,
      done: true,
    });

    // On the wire: namespaced tool names, and each system's own JSON schema for its tools.
    const first = server.requests[0].body;
    const names = first.tools.map((t: { function: { name: string } }) => t.function.name);
    expect(names).toEqual(expect.arrayContaining(["helpdesk__get_ticket", "handoff__support"]));
    const getTicket = first.tools.find((t: { function: { name: string } }) => t.function.name === "helpdesk__get_ticket").function;
    expect(getTicket.parameters).toMatchObject({ type: "object", properties: { ticket_id: { type: "string" } }, required: ["ticket_id"] });
    const supportRequest = server.requests.find((r) =>
      String(r.body.messages[0].content).startsWith("You are Acme's customer-support agent"),
    );
    const supportTools = supportRequest?.body.tools.map((t: { function: { name: string } }) => t.function.name);
    expect(supportTools).toEqual(
      expect.arrayContaining(["delegate__invoicing", "delegate__shipments", "delegate__refunds", "helpdesk__reply_to_customer"]),
    );
    expect(supportTools.filter((t: string) => t.startsWith("ledger__"))).toEqual([]); // customer service never touches the ledger

    const tree = await outpost.getRunTree(run.id);
    expect(tree.children.map((c) => [c.run.agent, c.run.status])).toEqual([["invoicing", "completed"]]);
  });
});
