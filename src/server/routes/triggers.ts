/**
 * `GET /v1/triggers` and `GET /v1/triggers/{id}/firings`: what starts runs without a person asking (schedules), when
 * each fires next, and each firing with the run it started or why it was skipped. Any role may read them.
 */
import type { FastifyInstance } from "fastify";
import { type Triggers, triggersApi } from "../../triggers/index.js";
import { callerOf } from "../caller.js";

const dateTime = { type: "string", format: "date-time" } as const;
const firing = {
  type: "object",
  required: ["trigger", "key", "fire_at", "status", "run_id", "detail", "recorded_at"],
  properties: {
    trigger: { type: "string" },
    key: { type: "string", description: "unique within the trigger: a schedule's occurrence" },
    fire_at: dateTime,
    status: { type: "string", enum: ["pending", "started", "skipped"] },
    run_id: { type: ["string", "null"] },
    detail: { type: ["string", "null"], description: "why it was skipped" },
    recorded_at: dateTime,
  },
} as const;
const nullableString = { type: ["string", "null"] } as const;
const trigger = {
  type: "object",
  required: ["id", "kind", "agent", "name", "cron", "timezone", "missed", "input", "path", "signed", "next_at", "last_firing"],
  properties: {
    id: { type: "string", description: "schedule:<agent>.<name> or webhook:<name>" },
    kind: { type: "string", enum: ["schedule", "webhook", "event"] },
    agent: { type: "string" },
    name: { type: "string" },
    cron: nullableString,
    timezone: nullableString,
    missed: { type: ["string", "null"], enum: ["skip", "catch_up", null] },
    input: nullableString,
    path: { ...nullableString, description: "a webhook's URL path" },
    signed: { type: ["boolean", "null"], description: "a webhook takes signed deliveries (it has a secret)" },
    next_at: { type: ["string", "null"], format: "date-time" },
    last_firing: { anyOf: [firing, { type: "null" }] },
  },
} as const;

export async function registerTriggerRoutes(server: FastifyInstance, triggers: Triggers): Promise<void> {
  server.get(
    "/v1/triggers",
    {
      schema: {
        tags: ["triggers"],
        summary: "The project's triggers (schedules): when each fires next, and its latest firing",
        response: {
          200: { type: "object", required: ["triggers"], properties: { triggers: { type: "array", items: trigger } } },
          "4xx": { $ref: "Error#" },
        },
      },
    },
    async (request) => triggersApi(triggers, callerOf(request).workspace).listTriggers(),
  );

  server.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
    "/v1/triggers/:id/firings",
    {
      schema: {
        tags: ["triggers"],
        summary: "A trigger's firings, newest first: the run each started, or why it was skipped",
        params: { type: "object", required: ["id"], properties: { id: { type: "string", minLength: 1, maxLength: 200 } } },
        querystring: { type: "object", additionalProperties: false, properties: { limit: { type: "integer" } } },
        response: {
          200: { type: "object", required: ["firings"], properties: { firings: { type: "array", items: firing } } },
          "4xx": { $ref: "Error#" },
        },
      },
    },
    async (request) => triggersApi(triggers, callerOf(request).workspace).listFirings(request.params.id, request.query),
  );
}
