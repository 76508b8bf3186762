/**
 * `GET /v1/budgets`: each spend cap of the project against the caller's workspace's counter for the
 * current period (spent, reserved by calls in flight, limit, when it resets). Any role may read it.
 */
import type { FastifyInstance } from "fastify";
import type { Budgets } from "../../security/budgets/index.js";
import { callerOf } from "../caller.js";

const nullableNumber = { type: ["number", "null"] } as const;
const usageRow = {
  type: "object",
  required: [
    "scope",
    "period",
    "period_key",
    "usd_limit",
    "tokens_limit",
    "usd_spent",
    "usd_reserved",
    "tokens_spent",
    "tokens_reserved",
    "on_exceed",
    "resets_at",
  ],
  properties: {
    scope: { type: "string", description: "workspace, team:<name> or agent:<name>" },
    period: { type: "string", enum: ["day", "month", "total"] },
    period_key: { type: "string", description: "the counter, e.g. day:2026-11-26 (UTC)" },
    usd_limit: nullableNumber,
    tokens_limit: nullableNumber,
    usd_spent: { type: "number" },
    usd_reserved: { type: "number", description: "held by model calls in flight" },
    tokens_spent: { type: "number" },
    tokens_reserved: { type: "number" },
    on_exceed: { type: "string", enum: ["fail", "wait"] },
    resets_at: { type: ["string", "null"], format: "date-time" },
  },
} as const;

export async function registerBudgetRoutes(server: FastifyInstance, budgets: Budgets): Promise<void> {
  server.get(
    "/v1/budgets",
    {
      schema: {
        tags: ["budgets"],
        summary: "Spend against each budget cap of the caller's workspace, for the current period",
        response: {
          200: { type: "object", required: ["budgets"], properties: { budgets: { type: "array", items: usageRow } } },
          "4xx": { $ref: "Error#" },
        },
      },
    },
    async (request) => ({ budgets: await budgets.usage(callerOf(request).workspace) }),
  );
}
