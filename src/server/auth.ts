/**
 * Authentication, roles and rate limits for every route but `GET /v1/health`.
 *
 * - `Authorization: Bearer <API key | OIDC token>` (or `x-api-key: <API key>`) becomes `request.caller`;
 *   without it, 401 with `WWW-Authenticate: Bearer`.
 * - ROUTE_ROLES is the one table of who may call what; it is enforced here, in the same hook (403 naming the
 *   role needed). A route missing from it is for admins only (and fails test/security/tenants.test.ts).
 * - Per caller rate limit (@fastify/rate-limit): by API key or token subject, by address before authentication.
 */
import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { OutpostError } from "../core/errors.js";
import type { Authenticator, AuthFailure } from "../security/identity/index.js";
import type { Role } from "../security/types.js";
import { SIGNATURE_HEADER } from "../triggers/webhooks.js";
import { requireRole } from "./caller.js";

const READ: Role[] = ["admin", "builder", "operator", "auditor", "viewer"];
/** Starting a run (directly or through a protocol endpoint that starts runs). */
const RUN: Role[] = ["builder", "operator"];
const OPERATE: Role[] = ["operator"];
const AUDIT: Role[] = ["auditor"];
/** Secrets and definitions. */
const MANAGE: Role[] = ["builder"];
const ADMIN: Role[] = ["admin"];
/** Memory can hold customers' data: read by those who work with it or check it (not viewers), written by those who work with it. */
const MEMORY_READ: Role[] = ["builder", "operator", "auditor"];
const MEMORY_WRITE: Role[] = ["builder", "operator"];

/** Who may call each route (`METHOD /path` as registered). Admins may call everything in their workspace. */
/** "signed": a webhook; a delivery signed with its secret needs no credentials (the route checks the signature), one
 * without a signature needs an API key that may start runs. */
export const ROUTE_ROLES: Readonly<Record<string, readonly Role[] | "public" | "signed">> = {
  "GET /v1/health": "public",
  "GET /openapi.json": READ,
  "GET /docs": READ, // and everything below /docs (the UI's files)
  "GET /v1/agents": READ,
  "GET /v1/agents/:name": READ,
  "GET /v1/connections": READ,
  "POST /v1/runs": RUN,
  "GET /v1/runs": READ,
  "GET /v1/runs/:id": READ,
  "GET /v1/runs/:id/events": READ,
  "GET /v1/runs/:id/stream": READ,
  "GET /v1/runs/:id/tree": READ,
  "POST /v1/runs/:id/cancel": OPERATE,
  "POST /v1/runs/:id/events": OPERATE,
  "GET /v1/approvals": READ,
  "POST /v1/approvals/:id": OPERATE,
  "GET /v1/sessions/:id": READ,
  "GET /v1/artifacts/:id": READ,
  // Secrets (values are never returned; listing names is for those who manage them)
  "GET /v1/secrets": MANAGE,
  "PUT /v1/secrets/:name": MANAGE,
  "DELETE /v1/secrets/:name": MANAGE,
  "GET /v1/budgets": READ,
  // Spend by agent, team, model and period: the figures GET /v1/budgets already shows every role, in more detail.
  // Sums only — no run's input, output or customer data — so any role, viewers included, may read them.
  "GET /v1/costs": READ,
  // Counts, durations and spend of the caller's workspace, labelled by agent, model and tool: no content. A scraper's
  // key needs only the viewer role.
  "GET /metrics": READ,
  "GET /v1/triggers": READ,
  "POST /v1/hooks/:name": "signed",
  "GET /v1/triggers/:id/firings": READ,
  "GET /v1/workflows": READ,
  "POST /v1/workflows/:name/runs": RUN,
  // Memory
  "GET /v1/memory": MEMORY_READ,
  "GET /v1/memory/search": MEMORY_READ,
  "GET /v1/memory/:id": MEMORY_READ,
  "GET /v1/context": MEMORY_READ,
  "GET /v1/context/:type/:id": MEMORY_READ,
  "POST /v1/memory": MEMORY_WRITE,
  "PATCH /v1/memory/:id": MEMORY_WRITE,
  "DELETE /v1/memory/:id": MEMORY_WRITE,
  "GET /v1/knowledge": MEMORY_READ,
  "POST /v1/knowledge": MEMORY_WRITE,
  "DELETE /v1/knowledge": MEMORY_WRITE,
  // Erasure is irreversible and removes more than one person wrote: admins only. Not auditors: they are the check
  // on it (the memory.erased entry in the audit log), and whoever attests an erasure should not be who performed it.
  "POST /v1/memory/erase": ADMIN,
  // The audit log and transparency reports
  "GET /v1/audit": AUDIT,
  "GET /v1/audit/verify": AUDIT,
  "GET /v1/reports": AUDIT,
  "POST /v1/workspaces": ADMIN,
  "GET /v1/keys": ADMIN,
  "POST /v1/keys": ADMIN,
  "DELETE /v1/keys/:id": ADMIN,
  // OpenAI-compatible
  "GET /v1/models": READ,
  "GET /v1/models/:id": READ,
  "POST /v1/chat/completions": RUN,
  // MCP (GET and DELETE only answer 405)
  "POST /mcp": RUN,
  "GET /mcp": READ,
  "DELETE /mcp": READ,
  // A2A
  "GET /a2a/:agent/.well-known/agent-card.json": READ,
  "GET /a2a/:agent/.well-known/agent.json": READ,
  "POST /a2a/:agent": RUN,
};

/** The roles that may call a route; null for a route missing from the table (admins only). */
export function rolesFor(method: string, url: string): readonly Role[] | "public" | "signed" | null {
  const m = method === "HEAD" ? "GET" : method;
  const exact = ROUTE_ROLES[`${m} ${url}`];
  if (exact) return exact;
  if (m === "GET" && (url === "/docs" || url.startsWith("/docs/"))) return READ;
  return null;
}

export interface AuthFailedEvent extends AuthFailure {
  ip: string;
  method: string;
  url: string;
}

export interface AuthOptions {
  authenticator: Authenticator;
  /** Requests per minute per key / token subject / address (default 1200). */
  perMinute?: number;
  /** Told of every refused credential (the audit log records them: `auth.failed`). Must not throw. */
  onAuthFailed?: (event: AuthFailedEvent) => void;
}

export const DEFAULT_RATE_LIMIT_PER_MINUTE = 1200;

const HOW_TO_GET_A_KEY =
  "send Authorization: Bearer <API key> (outpost up prints the admin key at first start; an admin creates more with outpost keys create NAME --role ROLE)";

/** Registers the hook and the rate limit; call before any route is registered (the rate limit attaches to routes as they are added). */
export async function registerAuth(server: FastifyInstance, options: AuthOptions): Promise<void> {
  // Refusals are sent from here, in Outpost's envelope, whatever error shape the route's scope uses (MCP, OpenAI).
  server.addHook("onRequest", async (request, reply) => {
    try {
      await authorize(request, reply, options);
    } catch (err) {
      if (!(err instanceof OutpostError)) throw err;
      return reply.code(err.status).send(err.toJSON());
    }
  });

  await server.register(rateLimit, {
    global: true,
    max: options.perMinute ?? DEFAULT_RATE_LIMIT_PER_MINUTE,
    timeWindow: 60_000,
    // /v1/health stays free: it is what load balancers poll.
    allowList: (request) => request.routeOptions.url === "/v1/health",
    keyGenerator: (request) => {
      const c = request.caller;
      if (!c) return `ip:${request.ip}`;
      return c.keyId ? `key:${c.keyId}` : `${c.workspace}/${c.id}`;
    },
    // statusCode too: the MCP and OpenAI scopes answer errors in their own shapes from it.
    errorResponseBuilder: (_request, context) =>
      Object.assign(
        new OutpostError(
          "rate_limited",
          `too many requests: the limit is ${context.max} a minute`,
          `wait ${Math.max(1, Math.ceil(context.ttl / 1000))} s (see Retry-After) and send it again`,
        ),
        { statusCode: 429 },
      ),
  });
}

/** Who is calling, and may they call this route; throws the 401/403 to send. */
async function authorize(request: FastifyRequest, reply: FastifyReply, options: AuthOptions): Promise<void> {
  const url = request.routeOptions.url;
  const allowed = url === undefined ? null : rolesFor(request.method, url);
  if (allowed === "public") return;
  if (allowed === "signed" && request.headers[SIGNATURE_HEADER] !== undefined) return;
  const credential = credentialOf(request);
  if (credential === null) {
    report(options, request, { reason: "no_credentials" });
    refuse(reply, "unauthorized", "this endpoint needs credentials");
  }
  const result = await options.authenticator.authenticate(credential ?? "");
  if ("failure" in result) {
    report(options, request, result.failure);
    refuse(reply, "invalid_token", messageOf(result.failure));
  }
  if ("caller" in result) request.caller = result.caller;
  if (url === undefined) return; // no such route: the 404 handler answers
  requireRole(request, ...(allowed === "signed" ? RUN : (allowed ?? ["admin"])));
}

/** `Authorization: Bearer X` or `x-api-key: X`; null when neither is there. */
function credentialOf(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header === "string") {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m ? m[1] : "";
  }
  const key = request.headers["x-api-key"];
  if (typeof key === "string") return key.trim();
  return null;
}

function refuse(reply: FastifyReply, error: "unauthorized" | "invalid_token", message: string): never {
  reply.header("www-authenticate", error === "unauthorized" ? 'Bearer realm="outpost"' : 'Bearer realm="outpost", error="invalid_token"');
  throw new OutpostError("unauthorized", message, HOW_TO_GET_A_KEY);
}

function messageOf(failure: AuthFailure): string {
  switch (failure.reason) {
    case "revoked":
      return `the API key ${failure.keyPrefix}… was revoked`;
    case "expired":
      return failure.keyPrefix ? `the API key ${failure.keyPrefix}… has expired` : "the token has expired";
    case "unknown_key":
    case "malformed":
      return "the API key is not one of this Outpost's keys";
    case "no_credentials":
      return "this endpoint needs credentials";
    case "oidc_not_configured":
      return "the bearer token is not an API key, and this Outpost accepts no OIDC tokens (auth.oidc in outpost.yaml)";
    default:
      return "the bearer token was not accepted (wrong issuer, audience or signature, or missing claims)";
  }
}

function report(options: AuthOptions, request: FastifyRequest, failure: AuthFailure): void {
  try {
    options.onAuthFailed?.({ ...failure, ip: request.ip, method: request.method, url: request.url.split("?")[0] });
  } catch (err) {
    request.log.warn({ err: (err as Error)?.message }, "onAuthFailed threw");
  }
}
