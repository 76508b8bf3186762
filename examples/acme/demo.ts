/**
 * Acme's demo, played by `outpost demo`: three customers write in, three departments solve their
 * problems together through Acme's systems, and the systems' final state is checked.
 */
import path from "node:path";
import type { Demo } from "outpost";
import { type SystemsState, systemsState } from "./systems/inspect.js";
import { DAMAGED_ORDER, INVOICE_DISPUTE, LATE_SHIPMENT } from "./systems/scenarios.js";

const demo: Demo<SystemsState> = {
  scenarios: [
    {
      name: DAMAGED_ORDER.name,
      title: "Damaged order",
      agent: "triage",
      input: `Ticket ${DAMAGED_ORDER.ticketId} from ${DAMAGED_ORDER.customerName} (${DAMAGED_ORDER.customerId}): my order ${DAMAGED_ORDER.orderId} arrived with the monitor's screen cracked. Please send a replacement.`,
    },
    {
      name: LATE_SHIPMENT.name,
      title: "Late shipment",
      agent: "triage",
      input: `Ticket ${LATE_SHIPMENT.ticketId} from ${LATE_SHIPMENT.customerName} (${LATE_SHIPMENT.customerId}): my order ${LATE_SHIPMENT.orderId} is late — it was due on October 31 and has still not arrived.`,
    },
    {
      name: INVOICE_DISPUTE.name,
      title: "Invoice dispute",
      agent: "triage",
      input: `Ticket ${INVOICE_DISPUTE.ticketId} from ${INVOICE_DISPUTE.customerName} (${INVOICE_DISPUTE.customerId}): invoice ${INVOICE_DISPUTE.invoiceId} charges me twice for the USB-C cable.`,
    },
  ],

  /** The business systems' databases live in the data folder (OUTPOST_DATA_DIR of the stdio servers). */
  state: (dataDir) => systemsState(path.join(dataDir, "acme")),

  check(state, scenario) {
    const s = state.scenarios[scenario as keyof SystemsState["scenarios"]];
    if (!s) return [`no such scenario "${scenario}"`];
    if (s.done) return [];
    return [`the systems do not show the expected end state: ${JSON.stringify(s)}`];
  },

  describe(state, scenario) {
    const sc = state.scenarios;
    switch (scenario) {
      case DAMAGED_ORDER.name:
        return [
          `helpdesk  ticket ${DAMAGED_ORDER.ticketId} ${sc.damaged_order.ticket_status}${sc.damaged_order.answered ? ", answered" : ""}`,
          `warehouse ${sc.damaged_order.reships.map((r) => `reship ${r.id} (${r.items.map((i) => `${i.sku}×${i.quantity}`).join(", ")})`).join(", ") || "no reship"}; ${sc.damaged_order.claims.map((c) => `claim ${c.id} ${c.reason} ${c.amount.toFixed(2)}`).join(", ") || "no claim"}`,
          `ledger    ${sc.damaged_order.refunds.map((r) => `refund ${r.id} ${r.amount.toFixed(2)}`).join(", ") || "no refund"}`,
        ];
      case LATE_SHIPMENT.name:
        return [
          `helpdesk  ticket ${LATE_SHIPMENT.ticketId} ${sc.late_shipment.ticket_status}${sc.late_shipment.answered ? ", answered" : ""}`,
          `warehouse ${LATE_SHIPMENT.shipmentId} ${sc.late_shipment.shipment_status}, estimate ${sc.late_shipment.original_estimate} → ${sc.late_shipment.estimated_delivery}`,
          `ledger    ${sc.late_shipment.goodwill_credits.map((g) => `goodwill ${g.id} ${g.amount.toFixed(2)}`).join(", ") || "no credit"} (cap ${sc.late_shipment.goodwill_cap.toFixed(2)})`,
        ];
      case INVOICE_DISPUTE.name:
        return [
          `helpdesk  ticket ${INVOICE_DISPUTE.ticketId} ${sc.invoice_dispute.ticket_status}${sc.invoice_dispute.answered ? ", answered" : ""}`,
          `ledger    ${INVOICE_DISPUTE.invoiceId} ${sc.invoice_dispute.original_invoice_status}${sc.invoice_dispute.replaced_by ? ` → ${sc.invoice_dispute.replaced_by} ${sc.invoice_dispute.replacement_total?.toFixed(2)}` : ""}, balance ${sc.invoice_dispute.balance?.toFixed(2)}`,
        ];
      default:
        return [];
    }
  },
};

export default demo;
