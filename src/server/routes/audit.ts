/**
 * The audit log over HTTP, for auditors (and admins): the chained entries, a verification of the whole chain, and
 * transparency reports built from the verified log only. Always the caller's own workspace.
 */
import type { FastifyInstance } from "fastify";
import { OutpostError } from "../../core/errors.js";
import { parseDuration } from "../../definitions/duration.js";
import { type AuditLog, buildReport, verifyAudit } from "../../security/audit/index.js";
import { requireRole } from "../caller.js";

const entry = {
  type: "object",
  required: ["seq", "at", "kind", "actor", "run_id", "data", "hash"],
  properties: {
    seq: { type: "integer" },
    at: { type: "string", format: "date-time" },
    kind: { type: "string" },
    actor: { type: "string", description: "agent:<name>, key:<id>, user:<sub>, local or system" },
    run_id: { type: ["string", "null"] },
    data: { type: "object", additionalProperties: true },
    hash: { type: "string", description: "SHA-256 over the previous hash and this entry's RFC 8785 JSON" },
  },
} as const;

/** `30d`, `12h`, or an ISO time: the start of a report. */
function sinceOf(value: string | undefined, now: number): number {
  if (!value) return now - 30 * 86_400_000;
  const at = Date.parse(value);
  if (!Number.isNaN(at)) return at;
  try {
    return now - parseDuration(value);
  } catch {
    throw new OutpostError(
      "invalid_request",
      `since: "${value}" is neither a duration nor a time`,
      "use e.g. since=30d, since=12h or an ISO time",
    );
  }
}

export async function registerAuditRoutes(server: FastifyInstance, audit: AuditLog): Promise<void> {
  const store = audit.store;

  server.get<{ Querystring: { kind?: string; run_id?: string; limit?: number; before?: number } }>(
    "/v1/audit",
    {
      schema: {
        tags: ["audit"],
        summary: "Audit entries of the caller's workspace, newest first",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            kind: { type: "string" },
            run_id: { type: "string" },
            limit: { type: "integer", minimum: 1, maximum: 1000, default: 100 },
            before: { type: "integer", minimum: 1, description: "entries with a smaller seq (the next page)" },
          },
        },
        response: {
          200: { type: "object", required: ["items"], properties: { items: { type: "array", items: entry } } },
          "4xx": { $ref: "Error#" },
        },
      },
    },
    async (request) => {
      const caller = requireRole(request, "auditor");
      const q = request.query;
      // The first page includes what happened a moment ago: entries still in the outbox are chained first.
      if (!q.before) await audit.flush();
      const items = await audit.list(caller.workspace, {
        ...(q.kind ? { kind: q.kind } : {}),
        ...(q.run_id ? { runId: q.run_id } : {}),
        ...(q.limit ? { limit: q.limit } : {}),
        ...(q.before ? { before: q.before } : {}),
      });
      return {
        items: items.map((e) => ({
          seq: e.seq,
          at: new Date(e.at).toISOString(),
          kind: e.kind,
          actor: e.actor,
          run_id: e.runId,
          data: e.data,
          hash: e.hash,
        })),
      };
    },
  );

  server.get(
    "/v1/audit/verify",
    {
      schema: {
        tags: ["audit"],
        summary: "Verify the caller's workspace's audit chain: every hash, link and signed checkpoint",
        response: { 200: { type: "object", additionalProperties: true }, "4xx": { $ref: "Error#" } },
      },
    },
    async (request) => {
      const caller = requireRole(request, "auditor");
      await audit.flush();
      const v = await verifyAudit(store, caller.workspace, { publicKey: audit.publicKey });
      return {
        ok: v.ok,
        entries: v.entries,
        checkpoints: v.checkpoints,
        last_seq: v.lastSeq,
        pending: await audit.pending(caller.workspace),
        key_id: audit.keyId,
        problem: v.problem ?? null,
      };
    },
  );

  server.get<{ Querystring: { agent?: string; since?: string; until?: string; format?: "json" | "markdown" } }>(
    "/v1/reports",
    {
      schema: {
        tags: ["audit"],
        summary: "A transparency report from the verified audit log (JSON, or Markdown with format=markdown)",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            agent: { type: "string" },
            since: { type: "string", description: "30d, 12h or an ISO time (default 30d)" },
            until: { type: "string", format: "date-time" },
            format: { type: "string", enum: ["json", "markdown"], default: "json" },
          },
        },
      },
    },
    async (request, reply) => {
      const caller = requireRole(request, "auditor");
      const now = Date.now();
      const q = request.query;
      await audit.flush();
      const report = await buildReport(store, caller.workspace, {
        ...(q.agent ? { agent: q.agent } : {}),
        since: sinceOf(q.since, now),
        ...(q.until ? { until: Date.parse(q.until) } : {}),
        publicKey: audit.publicKey,
      });
      if (q.format === "markdown") return reply.type("text/markdown; charset=utf-8").send(report.markdown);
      return report.json;
    },
  );
}
