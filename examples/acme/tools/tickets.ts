import path from "node:path";
import { defineTool } from "outpost";
import { z } from "zod";
import { appendOnce } from "./_ledger.js";

interface TicketNote {
  ticket_id: string;
  note: string;
  idempotency_key: string;
  at: string;
}

export default defineTool({
  name: "tickets.add_note",
  description: "Add an internal note to a customer-service ticket (visible to Acme staff, not to the customer).",
  input: z.object({
    ticket_id: z.string().min(1).describe('Ticket number, e.g. "77"'),
    note: z.string().min(1).max(2000).describe("The note, in plain text"),
  }),
  classification: "internal",
  handler: async ({ input, context, idempotencyKey }) => {
    const ledger = path.join(context.dataDir, "acme", "ticket-notes.jsonl");
    const { entry, duplicate } = await appendOnce<TicketNote>(ledger, {
      ticket_id: input.ticket_id.trim().replace(/^#/, ""),
      note: input.note,
      idempotency_key: idempotencyKey,
      at: new Date().toISOString(),
    });
    return { saved: true, duplicate, ticket_id: entry.ticket_id, at: entry.at };
  },
});
