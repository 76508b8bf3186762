/**
 * The A2A (Agent2Agent) endpoint: every exposed agent as an A2A agent.
 *
 *   GET  /a2a/<agent>/.well-known/agent-card.json   the agent card
 *   POST /a2a/<agent>                               JSON-RPC 2.0
 *
 * JSON-RPC speaks both generations of the protocol through the SDK's own
 * transport handlers: A2A 1.0 (`SendMessage`, `SendStreamingMessage`,
 * `GetTask`, `CancelTask`, `SubscribeToTask`) and A2A 0.3 (`message/send`,
 * `message/stream`, `tasks/get`, `tasks/cancel`, `tasks/resubscribe`). The
 * `A2A-Version` header picks one; without it the method name does. Streaming
 * methods answer with server-sent events. Tasks are Outpost runs (./a2a-tasks.ts).
 *
 * Unknown and unexposed agents are 404. Malformed requests get the JSON-RPC
 * codes: -32700 (not JSON), -32600 (not a JSON-RPC request), -32601 (no such
 * method), -32602 (bad params, e.g. a message without text), and A2A's own
 * (-32001 task not found, -32002 not cancelable, …).
 */
import { AgentCard, formatSSEErrorEvent, formatSSEEvent } from "@a2a-js/sdk";
import { isLegacyJsonRpcMethod } from "@a2a-js/sdk/compat/v0_3";
import { LegacyJsonRpcTransportHandler } from "@a2a-js/sdk/compat/v0_3/server";
import { A2A_ERROR_CODE } from "@a2a-js/sdk/errors";
import { JsonRpcTransportHandler, ServerCallContext } from "@a2a-js/sdk/server";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { AgentView, OutpostApi } from "../../core/api.js";
import { notFound, OutpostError } from "../../core/errors.js";
import { agentCard, legacyCardJson, wantsLegacy, wantsV1 } from "./a2a-card.js";
import { RunTasks } from "./a2a-tasks.js";

export interface A2AOptions {
  /** The API as the request's caller sees it (its workspace). */
  apiOf: (request: FastifyRequest) => OutpostApi;
  /** Outpost's version, the cards' `version`. */
  version: string;
  /** Where clients reach this server (origin and optional path prefix); default: each request's Host. */
  publicUrl?: string;
  heartbeatMs: number;
  /** Aborted when the server shuts down: ends open streams and blocking sends. */
  shutdown: AbortSignal;
}

type JsonRpcId = string | number | null;
interface JsonRpcRequest {
  jsonrpc: "2.0";
  id?: JsonRpcId;
  method: string;
  params?: unknown;
}

const rpcError = (id: JsonRpcId, code: number, message: string) => ({ jsonrpc: "2.0" as const, id, error: { code, message } });

/** Registers the A2A routes (a Fastify plugin: its body parser stays inside it). */
export async function a2aRoutes(scope: FastifyInstance, options: A2AOptions): Promise<void> {
  const { apiOf } = options;

  // JSON-RPC parses its own body, so that a malformed one gets -32700 rather than an HTTP 400.
  scope.removeContentTypeParser("application/json");
  scope.addContentTypeParser(["application/json", "application/a2a+json"], { parseAs: "string" }, (_request, body, done) => {
    done(null, body);
  });

  const cardRoute = async (request: FastifyRequest<{ Params: { agent: string } }>) => {
    const agent = await exposedAgent(apiOf(request), request.params.agent);
    const card = agentCard(agent, endpointOf(request, options.publicUrl, agent.name), options.version);
    return wantsV1(header(request, "a2a-version")) ? AgentCard.toJSON(card) : legacyCardJson(card);
  };
  const cardOptions = { schema: { hide: true } };
  scope.get<{ Params: { agent: string } }>("/a2a/:agent/.well-known/agent-card.json", cardOptions, async (request, reply) => {
    reply.header("vary", "A2A-Version");
    return cardRoute(request);
  });
  // The card's name before A2A 0.3.
  scope.get<{ Params: { agent: string } }>("/a2a/:agent/.well-known/agent.json", cardOptions, async (request, reply) => {
    reply.header("vary", "A2A-Version");
    return cardRoute(request);
  });

  scope.post<{ Params: { agent: string } }>("/a2a/:agent", { schema: { hide: true } }, async (request, reply) => {
    const api = apiOf(request);
    const agent = await exposedAgent(api, request.params.agent);
    const parsed = parseRequest(request.body);
    if (!parsed.ok) return parsed.response;
    const rpc = parsed.request;
    const id = rpc.id ?? null;

    const version = header(request, "a2a-version");
    let legacy: boolean;
    if (version === undefined || version.trim() === "") legacy = isLegacyJsonRpcMethod(rpc.method);
    else if (wantsV1(version)) legacy = false;
    else if (wantsLegacy(version)) legacy = true;
    else return rpcError(id, A2A_ERROR_CODE.VERSION_NOT_SUPPORTED, `A2A version "${version}" is not supported here; use 1.0 or 0.3`);

    // Ends blocking sends and streams when the client leaves or the server shuts down.
    const controller = new AbortController();
    const abort = () => controller.abort();
    reply.raw.once("close", abort);
    options.shutdown.addEventListener("abort", abort, { once: true });
    try {
      const card = agentCard(agent, endpointOf(request, options.publicUrl, agent.name), options.version);
      const tasks = new RunTasks({ api, agent, card, signal: controller.signal, log: request.log, requestId: String(request.id) });
      const transport = legacy ? new LegacyJsonRpcTransportHandler(tasks) : new JsonRpcTransportHandler(tasks);
      const mapError = legacy ? LegacyJsonRpcTransportHandler.mapToLegacyJSONRPCError : JsonRpcTransportHandler.mapToJSONRPCError;
      const context = new ServerCallContext({ requestedVersion: legacy ? "0.3" : "1.0" });
      const result = await transport.handle(rpc as unknown as Record<string, unknown>, context);
      if (!isAsyncIterable(result)) return result;

      const iterator = result[Symbol.asyncIterator]();
      let first: IteratorResult<unknown>;
      try {
        first = await iterator.next();
      } catch (err) {
        // Refused before anything happened (bad params, unknown task): a plain JSON-RPC error.
        return { jsonrpc: "2.0", id, error: mapError(err) };
      }
      reply.hijack();
      await streamSse(reply.raw, {
        first,
        iterator,
        signal: controller.signal,
        heartbeatMs: options.heartbeatMs,
        requestId: String(request.id),
        onError: (err) => formatSSEErrorEvent({ jsonrpc: "2.0", id, error: mapError(err) }),
      });
    } finally {
      options.shutdown.removeEventListener("abort", abort);
    }
  });
}

/** The agent behind `/a2a/<name>`: it must exist and be exposed (a team member the team does not expose is not offered). */
async function exposedAgent(api: OutpostApi, name: string): Promise<AgentView> {
  let agent: AgentView | undefined;
  try {
    agent = await api.getAgent(name);
  } catch (err) {
    if (!(err instanceof OutpostError && err.code === "not_found")) throw err;
  }
  if (!agent?.exposed) {
    const offered = (await api.listAgents()).filter((a) => a.exposed).map((a) => a.name);
    throw notFound(
      "A2A agent",
      name,
      offered.length > 0 ? `agents offered over A2A: ${offered.join(", ")}` : "no agent is offered over A2A (none is exposed by its team)",
    );
  }
  return agent;
}

const header = (request: FastifyRequest, name: string): string | undefined => {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** A host name or address with an optional port (nothing that could bend the URL: no "/", "@", spaces). */
const HOST = /^(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/** The agent's JSON-RPC endpoint as clients reach it: the configured public URL, else this request's Host. */
function endpointOf(request: FastifyRequest, publicUrl: string | undefined, agent: string): string {
  const path = `/a2a/${encodeURIComponent(agent)}`;
  if (publicUrl) return `${publicUrl.replace(/\/+$/, "")}${path}`;
  let host = request.host;
  if (!host || !HOST.test(host)) {
    // No usable Host header: the address this connection came in on.
    const { localAddress, localPort } = request.socket;
    const address = localAddress?.replace(/^::ffff:/, "") ?? "127.0.0.1";
    host = `${address.includes(":") ? `[${address}]` : address}:${localPort}`;
  }
  return `${request.protocol}://${host}${path}`;
}

/** The body as a JSON-RPC request, or the JSON-RPC error that says what is wrong with it. */
function parseRequest(body: unknown): { ok: true; request: JsonRpcRequest } | { ok: false; response: ReturnType<typeof rpcError> } {
  const fail = (id: JsonRpcId, code: number, message: string) => ({ ok: false as const, response: rpcError(id, code, message) });
  let value: unknown;
  try {
    value = JSON.parse(typeof body === "string" ? body : "");
  } catch (err) {
    return fail(null, A2A_ERROR_CODE.PARSE_ERROR, `Parse error: the body is not JSON (${(err as Error).message})`);
  }
  if (Array.isArray(value)) return fail(null, A2A_ERROR_CODE.INVALID_REQUEST, "Invalid Request: batch requests are not supported");
  if (typeof value !== "object" || value === null) {
    return fail(null, A2A_ERROR_CODE.INVALID_REQUEST, "Invalid Request: expected a JSON-RPC 2.0 request object");
  }
  const r = value as Record<string, unknown>;
  const id = r.id;
  const validId = id === undefined || id === null || typeof id === "string" || (typeof id === "number" && Number.isInteger(id));
  const replyId = validId ? ((id ?? null) as JsonRpcId) : null;
  if (r.jsonrpc !== "2.0") return fail(replyId, A2A_ERROR_CODE.INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"');
  if (!validId) return fail(null, A2A_ERROR_CODE.INVALID_REQUEST, 'Invalid Request: "id" must be a string, an integer or null');
  if (typeof r.method !== "string" || r.method === "") {
    return fail(replyId, A2A_ERROR_CODE.INVALID_REQUEST, 'Invalid Request: "method" must be a non-empty string');
  }
  return { ok: true, request: r as unknown as JsonRpcRequest };
}

const isAsyncIterable = (v: unknown): v is AsyncIterable<unknown> =>
  typeof v === "object" && v !== null && typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";

/** Writes a JSON-RPC event stream as server-sent events (heartbeat comments while idle) until it ends or the client leaves. */
async function streamSse(
  raw: import("node:http").ServerResponse,
  s: {
    first: IteratorResult<unknown>;
    iterator: AsyncIterator<unknown>;
    signal: AbortSignal;
    heartbeatMs: number;
    requestId: string;
    onError: (err: unknown) => string;
  },
): Promise<void> {
  const gone = new Promise<null>((resolve) => {
    if (s.signal.aborted) resolve(null);
    else s.signal.addEventListener("abort", () => resolve(null), { once: true });
  });
  const open = () => !s.signal.aborted && !raw.destroyed && !raw.writableEnded;
  const write = async (chunk: string) => {
    if (open() && !raw.write(chunk)) await Promise.race([new Promise<void>((resolve) => raw.once("drain", () => resolve())), gone]);
  };
  raw.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "close",
    "x-accel-buffering": "no",
    "request-id": s.requestId,
  });
  const heartbeat = setInterval(() => {
    if (open()) raw.write(": heartbeat\n\n");
  }, s.heartbeatMs);
  heartbeat.unref();
  try {
    let next: IteratorResult<unknown> | null = s.first;
    while (next && !next.done && open()) {
      await write(formatSSEEvent(next.value));
      // Raced against the client leaving, so a quiet run cannot pin the connection.
      next = await Promise.race([s.iterator.next(), gone]);
    }
  } catch (err) {
    await write(s.onError(err));
  } finally {
    clearInterval(heartbeat);
    void s.iterator.return?.(undefined).catch(() => undefined);
    if (!raw.writableEnded) raw.end();
  }
}
