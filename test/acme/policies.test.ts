/**
 * Acme's policies (examples/acme/policies/*.cedar) decided by the real engine over the real project: the business
 * rules of issue 4 §8, each with the request the runtime would make.
 */
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import type { Project } from "../../src/definitions/types.js";
import {
  checkPolicies,
  connectorUseRequest,
  createPolicyEngine,
  modelUseRequest,
  type ProjectPolicyEngine,
  toolCallRequest,
} from "../../src/security/policy/index.js";

const ACME = path.resolve(import.meta.dirname, "../../examples/acme");
let project: Project;
let engine: ProjectPolicyEngine;

const ledgerTool = (name: string, sideEffects = true) => ({ name: `ledger.${name}`, classification: "confidential" as const, sideEffects });
const refund = (agent: string, amount: number, tainted = false) =>
  engine.authorize(
    toolCallRequest({
      agent,
      tool: ledgerTool("issue_refund"),
      args: { order_id: "105708", amount, reason: "test" },
      connection: "ledger",
      approvalRequired: true,
      tainted,
    }),
  );

beforeAll(async () => {
  project = await loadProject(ACME);
  engine = createPolicyEngine(project);
});

describe("Acme's policies", () => {
  it("pass `outpost validate`'s strict check against the generated schema", () => {
    expect(checkPolicies(project).errors).toEqual([]);
  });

  it("customer service cannot touch the ledger, even a read; finance can", () => {
    const ledger = project.connections.get("ledger");
    if (!ledger) throw new Error("no ledger connection");
    for (const agent of ["support", "triage"]) {
      expect(engine.authorize(connectorUseRequest({ agent, connection: ledger })).effect).toBe("deny");
      const read = engine.authorize(toolCallRequest({ agent, tool: ledgerTool("get_invoice", false), args: {}, connection: "ledger" }));
      expect(read).toMatchObject({ effect: "deny", policies: ["acme.customer_service_no_ledger_tools"] });
    }
    expect(engine.authorize(connectorUseRequest({ agent: "invoicing", connection: ledger })).effect).toBe("allow");
    expect(
      engine.authorize(toolCallRequest({ agent: "invoicing", tool: ledgerTool("get_invoice", false), args: {}, connection: "ledger" }))
        .effect,
    ).toBe("allow");
  });

  it("a refund over $500 needs an operator of finance; up to $500 no group is asked by policy", () => {
    expect(refund("refunds", 14.95)).toMatchObject({ effect: "allow", approval: null });
    expect(refund("refunds", 500)).toMatchObject({ effect: "allow", approval: null });
    expect(refund("refunds", 500.01)).toMatchObject({
      effect: "allow",
      approval: { role: "operator", group: "finance", policies: ["acme.refund_over_500_needs_finance"] },
    });
  });

  it("a purchase order over $5,000 needs an operator of finance", () => {
    const order = (total: number) =>
      engine.authorize(
        toolCallRequest({
          agent: "inventory",
          tool: { name: "warehouse.create_purchase_order", classification: "internal", sideEffects: true },
          args: { location: "DFW", items: [{ sku: "ACM-1031", quantity: 30 }], total },
          connection: "warehouse",
        }),
      );
    expect(order(1946.8)).toMatchObject({ effect: "allow", approval: null });
    expect(order(5000)).toMatchObject({ effect: "allow", approval: null });
    expect(order(5609.7)).toMatchObject({
      effect: "allow",
      approval: { role: "operator", group: "finance", policies: ["acme.purchase_order_over_5000_needs_finance"] },
    });
  });

  it("on a tainted run every side effect waits for an operator, and payouts over $500 are refused", () => {
    expect(refund("refunds", 14.95, true)).toMatchObject({ effect: "allow", approval: { role: "operator", group: null } });
    expect(refund("refunds", 9000, true)).toMatchObject({ effect: "deny", policies: ["acme.no_large_payouts_on_tainted_runs"] });
    const reply = engine.authorize(
      toolCallRequest({
        agent: "support",
        tool: { name: "helpdesk.reply_to_customer", classification: "confidential", sideEffects: true },
        args: {},
        connection: "helpdesk",
        tainted: true,
      }),
    );
    expect(reply).toMatchObject({ effect: "allow", approval: { role: "operator", group: null } });
    const read = engine.authorize(
      toolCallRequest({
        agent: "support",
        tool: { name: "helpdesk.get_ticket", classification: "confidential", sideEffects: false },
        args: {},
        tainted: true,
      }),
    );
    expect(read).toMatchObject({ effect: "allow", approval: null });
  });

  it("restricted customer data stays on local models; the agents that read it are cleared for it", () => {
    const customer = engine.authorize(
      toolCallRequest({
        agent: "support",
        tool: { name: "helpdesk.get_customer", classification: "restricted", sideEffects: false },
        args: {},
      }),
    );
    expect(customer.effect).toBe("allow");
    const shipments = engine.authorize(
      toolCallRequest({
        agent: "shipments",
        tool: { name: "helpdesk.get_customer", classification: "restricted", sideEffects: false },
        args: {},
      }),
    );
    expect(shipments.effect).toBe("deny");
    const model = (location: "local" | "external") =>
      engine.authorize(
        modelUseRequest({
          agent: "support",
          runClassification: "restricted",
          alias: "assistant",
          candidate: { provider: location === "local" ? "openai-compatible" : "openai", model: "m", location },
        }),
      ).effect;
    expect(model("local")).toBe("allow");
    expect(model("external")).toBe("deny");
    expect(project.connections.get("helpdesk")?.tools.find_customer?.classification).toBe("restricted");
  });
});
