/**
 * `GET /v1/costs`: what model calls cost in the caller's workspace, summed by agent, team, model and purpose, per
 * day, week or month (UTC), over a period and for some agents, teams or models (telemetry/costs.ts). Always the
 * caller's own workspace; who may read it is in ROUTE_ROLES.
 */
import type { FastifyInstance } from "fastify";
import { COST_DIMENSIONS, COST_PERIODS, type CostLedger, type CostQueryText, NO_TEAM, parseCostQuery } from "../../telemetry/costs.js";
import { callerOf } from "../caller.js";

const oneOrMany = (description: string) =>
  ({ anyOf: [{ type: "string" }, { type: "array", items: { type: "string" }, maxItems: 20 }], description }) as const;

const figures = {
  runs: { type: "integer", description: "distinct runs that made these calls" },
  calls: { type: "integer", description: "model calls" },
  input_tokens: { type: "integer" },
  output_tokens: { type: "integer" },
  cost_usd: { type: "number" },
} as const;
const figureNames = ["runs", "calls", "input_tokens", "output_tokens", "cost_usd"];

const item = {
  type: "object",
  required: figureNames,
  properties: {
    period: { type: "string", description: "2026-12-01 (day), 2026-11-30 (the week's Monday), 2026-12 (month); UTC" },
    agent: { type: "string" },
    team: { type: "string", description: `a team of the project, or ${NO_TEAM} for agents in none` },
    model: { type: "string" },
    purpose: { type: "string", enum: ["step", "compaction"] },
    ...figures,
  },
} as const;

export async function registerCostRoutes(server: FastifyInstance, costs: CostLedger): Promise<void> {
  server.get<{ Querystring: CostQueryText }>(
    "/v1/costs",
    {
      schema: {
        tags: ["costs"],
        summary: "What model calls cost in the caller's workspace, grouped by agent, team, model, purpose and period",
        description:
          "Sums the cost ledger (one entry per model call, written with the run's events). An agent in two teams counts " +
          `in both when grouped by team (and agents in no team under ${NO_TEAM}), so items may add up to more than ` +
          "`totals`, which count every call once.",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            group_by: oneOrMany(`what to group by: ${COST_DIMENSIONS.join(", ")} (a comma list or repeated); default none`),
            period: { type: "string", enum: [...COST_PERIODS], description: "also group by UTC day, week (from Monday) or month" },
            from: { type: "string", description: "inclusive: 2026-12-01, 2026-12, an ISO time, or a duration back from now (7d)" },
            to: { type: "string", description: "exclusive; a date or month alone includes it whole (to=2026-12-31: all of that day)" },
            agent: oneOrMany("only these agents"),
            team: oneOrMany(`only these teams' agents (${NO_TEAM}: agents in no team)`),
            model: oneOrMany("only these models"),
          },
        },
        response: {
          200: {
            type: "object",
            required: ["from", "to", "group_by", "period", "items", "totals"],
            properties: {
              from: { type: ["string", "null"], format: "date-time" },
              to: { type: ["string", "null"], format: "date-time" },
              group_by: { type: "array", items: { type: "string" } },
              period: { type: ["string", "null"] },
              items: { type: "array", items: item },
              totals: { type: "object", required: figureNames, properties: figures },
            },
          },
          "4xx": { $ref: "Error#" },
        },
      },
    },
    async (request) => costs.report({ workspace: callerOf(request).workspace, ...parseCostQuery(request.query) }),
  );
}
