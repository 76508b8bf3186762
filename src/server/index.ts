/**
 * The HTTP API of Outpost: `OutpostApi` over REST + server-sent events, with an
 * OpenAPI 3.1 document at /openapi.json and interactive docs at /docs.
 *
 * Conventions
 * - Every body is JSON; every failure is `{error: {code, message, hint}}`.
 * - `POST /v1/runs` answers 201 with the run. With an `Idempotency-Key` header
 *   a retried request returns the same run, and a replay answers exactly like
 *   the original (201, the run in its current state).
 * - `GET /v1/runs/{id}/stream` is text/event-stream (see ./sse.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from "fastify";
import type pino from "pino";
import type { BusinessContext } from "../context/index.js";
import type { ApprovalStatus, ListRunsRequest, OutpostApi, RunStatus, StartRunRequest } from "../core/api.js";
import type { MemoryStore } from "../memory/index.js";
import type { AuditLog } from "../security/audit/index.js";
import type { Authenticator } from "../security/identity/index.js";
import type { SecurityServices } from "../security/services.js";
import type { Caller } from "../security/types.js";
import type { CostLedger } from "../telemetry/costs.js";
import type { Telemetry } from "../telemetry/otel.js";
import type { Triggers } from "../triggers/index.js";
import type { WorkflowsHost } from "../workflows/views.js";
import { type AuthFailedEvent, registerAuth } from "./auth.js";
import { makeErrorHandler, notFoundHandler } from "./errors.js";
import { a2aRoutes } from "./protocols/a2a.js";
import { registerMcpRoutes } from "./protocols/mcp.js";
import { registerOpenAiRoutes } from "./protocols/openai.js";
import { registerAuditRoutes } from "./routes/audit.js";
import { registerBudgetRoutes } from "./routes/budgets.js";
import { registerCostRoutes } from "./routes/costs.js";
import { registerHookRoutes } from "./routes/hooks.js";
import { registerKeyRoutes } from "./routes/keys.js";
import { registerMemoryRoutes } from "./routes/memory.js";
import { registerMetricsRoute } from "./routes/metrics.js";
import { registerSecretRoutes } from "./routes/secrets.js";
import { registerTriggerRoutes } from "./routes/triggers.js";
import { registerWorkflowRoutes } from "./routes/workflows.js";
import { routeSchemas as s, sharedSchemas } from "./schemas.js";
import { streamRun } from "./sse.js";

export interface ServerOptions {
  /** `true` logs with pino at info level; or pass a pino logger. Default: no logging. */
  logger?: boolean | pino.Logger;
  /** Max request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Reported by /v1/health's caller and in the OpenAPI document. */
  version: string;
  /** Interval of SSE heartbeat comments (default 15 000 ms). */
  sseHeartbeatMs?: number;
  /** Where clients reach this server, e.g. https://agents.example.com (A2A agent cards name their endpoint with it).
   * Default: the Host of each request. */
  publicUrl?: string;
  /** Checks credentials (default: `api.security.identities`). The server refuses to start without one. */
  authenticator?: Authenticator;
  /** Requests per minute per API key / token subject / address (default 1200; outpost.yaml auth.rate_limit). */
  rateLimitPerMinute?: number;
  /** Told of every refused credential, for the audit log (`auth.failed`). Must not throw. */
  onAuthFailed?: (event: AuthFailedEvent) => void;
}

export type ServableApi = OutpostApi & {
  close?(): Promise<void>;
  /** The state of each connected business system (when the API runs in-process). */
  connections?(): { name: string; kind: "mcp" | "openapi"; state: string; error?: string; tools: number }[];
  /** The API as one caller sees it (its workspace only); the server uses it for every request. */
  as?(caller: Caller): OutpostApi;
  /** Security services (vault, keys, audit…): each present part gets its routes. */
  security?: SecurityServices;
  /** Scoped memory: when present, the /v1/memory routes. */
  memory?: MemoryStore;
  /** Business context agents looked up: with memory, the /v1/context routes. */
  context?: BusinessContext;
  /** Schedules: the /v1/triggers routes. */
  triggers?: Triggers;
  /** Workflows: the /v1/workflows routes. */
  workflows?: WorkflowsHost;
  /** The cost ledger: the /v1/costs route. */
  costs?: CostLedger;
  /** Metrics of this process: the /metrics route. */
  telemetry?: Telemetry;
};

const DEFAULT_BODY_LIMIT = 1024 * 1024;

/**
 * Builds the server (not listening yet; see `listen`). Closing the server
 * ends open event streams and then closes `api` when it has `close()`.
 */
export async function createServer(api: ServableApi, options: ServerOptions): Promise<FastifyInstance> {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const heartbeatMs = options.sseHeartbeatMs ?? 15_000;
  const handleError = makeErrorHandler(bodyLimit);

  const base: FastifyServerOptions = {
    bodyLimit,
    ajv: {
      // Reject (never silently drop or coerce) what a client got wrong.
      customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, useDefaults: true },
    },
    routerOptions: { ignoreTrailingSlash: true },
    return503OnClosing: true,
    // Errors Fastify raises before routing (a malformed URL): same envelope.
    frameworkErrors: (error, request, reply) => {
      void handleError(error, request as FastifyRequest, reply as FastifyReply);
    },
  };
  const server: FastifyInstance =
    options.logger && typeof options.logger === "object"
      ? (Fastify({ ...base, loggerInstance: options.logger as FastifyBaseLogger }) as FastifyInstance)
      : Fastify({ ...base, logger: options.logger === true ? { level: "info" } : false });

  // JSON only: text/plain (accepted by Fastify out of the box) answers 415 like any other type.
  server.removeContentTypeParser("text/plain");
  for (const schema of sharedSchemas) server.addSchema(schema);

  server.addHook("onRequest", async (request, reply) => {
    reply.header("request-id", request.id);
  });

  // Before any route: every route but /v1/health needs credentials, and the rate limit attaches to routes as they are added.
  const authenticator = options.authenticator ?? api.security?.identities;
  if (!authenticator) {
    throw new Error("createServer needs an authenticator (api.security.identities or options.authenticator): the API is never served open");
  }
  await registerAuth(server, {
    authenticator,
    ...(options.rateLimitPerMinute !== undefined ? { perMinute: options.rateLimitPerMinute } : {}),
    ...(options.onAuthFailed
      ? { onAuthFailed: options.onAuthFailed }
      : api.security?.audit
        ? { onAuthFailed: auditAuthFailure(api.security.audit, api.security.defaultWorkspace, options) }
        : {}),
  });
  /** The API as the request's caller sees it. */
  const apiOf = (request: FastifyRequest): OutpostApi => (api.as && request.caller ? api.as(request.caller) : api);

  await server.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Outpost API",
        version: options.version,
        description: "Run, watch and govern Outpost agents. Every failure answers `{error: {code, message, hint}}`.",
      },
      tags: [{ name: "system" }, { name: "agents" }, { name: "runs" }, { name: "approvals" }, { name: "sessions" }],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`),
    },
  });
  await server.register(swaggerUi, { routePrefix: "/docs" });

  server.setErrorHandler(handleError);
  server.setNotFoundHandler(notFoundHandler);

  // Query strings arrive as text: turn the integer ones into numbers before
  // validation (AJV's own coercion is off so JSON bodies are never coerced).
  // A POST without a body validates as `{}`, so its required fields are named.
  server.addHook("preValidation", async (request) => {
    const schema = request.routeOptions.schema;
    const props = (schema?.querystring as { properties?: Record<string, { type?: string }> } | undefined)?.properties;
    const query = request.query as Record<string, unknown> | undefined;
    if (props && query && typeof query === "object") {
      for (const [key, prop] of Object.entries(props)) {
        const value = query[key];
        if (prop.type === "integer" && typeof value === "string" && /^-?\d{1,15}$/.test(value)) query[key] = Number(value);
      }
    }
    if (schema?.body && request.body === undefined) request.body = {};
  });

  const shutdown = new AbortController();
  const connections = trackConnections(server);
  server.addHook("preClose", async () => {
    shutdown.abort(); // ends open event streams
    connections.drain(); // then lets every connection go once its request is answered
  });
  server.addHook("onClose", async () => {
    await api.close?.();
  });

  server.get("/openapi.json", { schema: { hide: true } }, async () => server.swagger());

  server.get("/v1/health", { schema: s.health }, async () => api.health());

  server.get("/v1/agents", { schema: s.listAgents }, async (request) => apiOf(request).listAgents());

  server.get<{ Params: { name: string } }>("/v1/agents/:name", { schema: s.getAgent }, async (request) =>
    apiOf(request).getAgent(request.params.name),
  );

  server.post<{ Body: StartRunRequest }>("/v1/runs", { schema: s.startRun }, async (request, reply) => {
    const key = request.headers["idempotency-key"];
    const run = await apiOf(request).startRun({
      ...(request.body.agent !== undefined ? { agent: request.body.agent } : {}),
      input: request.body.input,
      ...(request.body.session_id !== undefined ? { session_id: request.body.session_id } : {}),
      ...(request.body.context !== undefined ? { context: request.body.context } : {}),
      ...(typeof key === "string" ? { idempotency_key: key } : {}),
    });
    return reply.code(201).send(run);
  });

  server.get<{ Querystring: ListRunsRequest }>("/v1/runs", { schema: s.listRuns }, async (request) => {
    const q = request.query;
    const filter: ListRunsRequest = {};
    if (q.agent !== undefined) filter.agent = q.agent;
    if (q.status !== undefined) filter.status = q.status as RunStatus;
    if (q.session_id !== undefined) filter.session_id = q.session_id;
    if (q.limit !== undefined) filter.limit = q.limit;
    if (q.cursor !== undefined) filter.cursor = q.cursor;
    return apiOf(request).listRuns(filter);
  });

  server.get<{ Params: { id: string } }>("/v1/runs/:id", { schema: s.getRun }, async (request) => apiOf(request).getRun(request.params.id));

  server.get<{ Params: { id: string }; Querystring: { after?: number } }>("/v1/runs/:id/events", { schema: s.getEvents }, async (request) =>
    apiOf(request).getEvents(request.params.id, request.query.after),
  );

  server.get<{ Params: { id: string }; Querystring: { after?: number } }>(
    "/v1/runs/:id/stream",
    { schema: s.streamEvents },
    async (request, reply) => {
      const { id } = request.params;
      const header = request.headers["last-event-id"];
      const fromHeader = typeof header === "string" && header !== "" ? Number(header) : 0;
      const after = Math.max(request.query.after ?? 0, Number.isSafeInteger(fromHeader) ? fromHeader : 0);
      await apiOf(request).getRun(id); // a missing run is a plain JSON 404, before the stream starts
      reply.hijack();
      await streamRun(apiOf(request), reply.raw, {
        runId: id,
        after,
        heartbeatMs,
        requestId: String(request.id),
        log: request.log,
        shutdown: shutdown.signal,
      });
    },
  );

  server.post<{ Params: { id: string }; Body: { reason?: string } }>("/v1/runs/:id/cancel", { schema: s.cancelRun }, async (request) =>
    apiOf(request).cancelRun(request.params.id, request.body.reason),
  );

  server.post<{ Params: { id: string }; Body: { name: string; payload?: unknown } }>(
    "/v1/runs/:id/events",
    { schema: s.sendEvent },
    async (request) =>
      apiOf(request).sendEvent(request.params.id, {
        name: request.body.name,
        ...(request.body.payload !== undefined ? { payload: request.body.payload } : {}),
      }),
  );

  server.get<{ Querystring: { status?: ApprovalStatus } }>("/v1/approvals", { schema: s.listApprovals }, async (request) =>
    apiOf(request).listApprovals(request.query.status ? { status: request.query.status } : {}),
  );

  server.post<{
    Params: { id: string };
    Body: { decision: "approve" | "deny"; reason?: string; by?: string };
  }>("/v1/approvals/:id", { schema: s.decideApproval }, async (request) => {
    const { decision, reason, by } = request.body;
    return apiOf(request).decideApproval(request.params.id, {
      decision,
      ...(reason !== undefined ? { reason } : {}),
      ...(by !== undefined ? { by } : {}),
    });
  });

  server.get<{ Params: { id: string } }>("/v1/sessions/:id", { schema: s.getSession }, async (request) =>
    apiOf(request).getSession(request.params.id),
  );

  server.get<{ Params: { id: string } }>("/v1/runs/:id/tree", { schema: s.getRunTree }, async (request) =>
    apiOf(request).getRunTree(request.params.id),
  );

  server.get<{ Params: { id: string }; Querystring: { offset?: number; limit?: number } }>(
    "/v1/artifacts/:id",
    { schema: s.getArtifact },
    async (request) => apiOf(request).getArtifact(request.params.id, request.query),
  );

  server.get("/v1/connections", { schema: s.listConnections }, async () => api.connections?.() ?? []);

  if (api.security?.identities) await registerKeyRoutes(server, api.security.identities, api.security.defaultWorkspace);
  if (api.security?.vault) await registerSecretRoutes(server, api.security.vault);
  if (api.security?.budgets) await registerBudgetRoutes(server, api.security.budgets);
  if (api.costs) await registerCostRoutes(server, api.costs);
  if (api.telemetry) await registerMetricsRoute(server, api.telemetry);
  if (api.security?.audit) await registerAuditRoutes(server, api.security.audit);
  if (api.memory) await registerMemoryRoutes(server, api.memory, api.context);
  if (api.workflows) await registerWorkflowRoutes(server, api.workflows);
  if (api.triggers) {
    await registerTriggerRoutes(server, api.triggers);
    await registerHookRoutes(server, api.triggers);
  }

  await registerOpenAiRoutes(server, apiOf, { heartbeatMs });
  await registerMcpRoutes(server, apiOf, { version: options.version });
  await server.register(a2aRoutes, {
    apiOf,
    version: options.version,
    heartbeatMs,
    shutdown: shutdown.signal,
    ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
  });

  return server;
}

/**
 * Graceful shutdown needs every socket closed: Node's `server.close()` only
 * closes idle keep-alive sockets, not ones that connected but never sent a
 * request (HTTP clients open those), which would hold `close()` open until
 * Node's request timeout. Once draining, sockets without a request in flight
 * are ended at once, the others right after their response.
 */
function trackConnections(server: FastifyInstance): { drain(): void } {
  const inFlight = new Map<Socket, number>();
  let draining = false;
  server.server.on("connection", (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once("close", () => inFlight.delete(socket));
  });
  server.server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    response.once("close", () => {
      const left = Math.max(0, (inFlight.get(socket) ?? 1) - 1);
      inFlight.set(socket, left);
      if (draining && left === 0) socket.end();
    });
  });
  return {
    drain() {
      draining = true;
      for (const [socket, n] of inFlight) if (n === 0) socket.end();
    },
  };
}

/**
 * Refused credentials go to the audit log of the served project's workspace (a failed caller has no workspace of
 * its own), at most one entry per address per minute so a scan cannot flood the chain.
 */
function auditAuthFailure(audit: AuditLog, workspace: string, options: ServerOptions): (event: AuthFailedEvent) => void {
  const recent = new Map<string, number>();
  return (event) => {
    const now = Date.now();
    const key = `${event.ip} ${event.reason}`;
    if ((recent.get(key) ?? 0) > now - 60_000) return;
    if (recent.size > 10_000) recent.clear();
    recent.set(key, now);
    const { ip, method, url, ...rest } = event;
    audit
      .record(workspace, [{ kind: "auth.failed", actor: "system", data: { ...rest, ip, method, url } }])
      .catch((err) =>
        typeof options.logger === "object" ? options.logger.warn({ err: (err as Error)?.message }, "audit entry lost") : undefined,
      );
  };
}

/** Starts listening; resolves to the address clients should use (e.g. http://127.0.0.1:4000). */
export async function listen(server: FastifyInstance, options: { host: string; port: number }): Promise<string> {
  await server.listen({ host: options.host, port: options.port });
  const address = server.server.address();
  if (address && typeof address === "object") {
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }
  return `http://${options.host}:${options.port}`;
}
