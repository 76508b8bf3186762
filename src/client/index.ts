/**
 * `OutpostApi` over HTTP: the same interface as the in-process runtime, talking
 * to a running Outpost server (`outpost up`). Server errors come back as the
 * OutpostError they were (code, message, hint); an unreachable server is an
 * OutpostError("unavailable").
 */
import type {
  AgentView,
  ApprovalStatus,
  ApprovalView,
  ArtifactView,
  EventView,
  ListRunsRequest,
  OutpostApi,
  Page,
  RunTreeView,
  RunView,
  SessionView,
  StartRunRequest,
} from "../core/api.js";
import { type ErrorCode, OutpostError } from "../core/errors.js";
import type {
  ContextEntityView,
  ErasureView,
  IngestView,
  KnowledgeDocumentView,
  MemoryApi,
  MemoryDetailView,
  MemoryItemView,
  MemorySearchView,
  RememberedView,
} from "../core/memory-api.js";
import type { FiringView, TriggersApi, TriggerView } from "../core/triggers-api.js";
import type { CostReport, CostsApi } from "../telemetry/costs.js";
import type { WorkflowsApi, WorkflowView } from "../workflows/views.js";
import { parseSse } from "./sse.js";

/** An API key as `GET /v1/keys` lists it: never the key itself. */
export interface KeyView {
  id: string;
  workspace: string;
  name: string;
  /** The key's first characters, to recognise it. */
  prefix: string;
  roles: string[];
  groups: string[];
  created_by: string | null;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
}

export interface NewKeyRequest {
  name: string;
  roles: string[];
  groups?: string[];
  /** Another workspace (admins of the default workspace only). */
  workspace?: string;
  /** ISO date-time after which the key stops working. */
  expires_at?: string;
}

/** Key management (admins), kept beside OutpostApi rather than in it: the runtime API stays about runs. */
export interface KeysApi {
  /** The new key is in `key`, this once. */
  createKey(request: NewKeyRequest): Promise<KeyView & { key: string }>;
  listKeys(request?: { workspace?: string }): Promise<KeyView[]>;
  revokeKey(id: string, request?: { workspace?: string }): Promise<KeyView>;
}

export interface ClientOptions {
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
}

const CODES: readonly ErrorCode[] = [
  "invalid_request",
  "not_found",
  "conflict",
  "payload_too_large",
  "unauthorized",
  "forbidden",
  "invalid_project",
  "unavailable",
  "internal",
];

const codeForStatus = (status: number): ErrorCode =>
  status === 401
    ? "unauthorized"
    : status === 403
      ? "forbidden"
      : status === 404
        ? "not_found"
        : status === 409
          ? "conflict"
          : status === 413
            ? "payload_too_large"
            : status === 422
              ? "invalid_project"
              : status === 502 || status === 503 || status === 504
                ? "unavailable"
                : status >= 400 && status < 500
                  ? "invalid_request"
                  : "internal";

/** How many times in a row the event stream may drop without progress before giving up. */
const MAX_STREAM_RETRIES = 5;

export function createClient(
  baseUrl: string,
  options: ClientOptions = {},
): OutpostApi & KeysApi & MemoryApi & TriggersApi & WorkflowsApi & CostsApi {
  const base = baseUrl.replace(/\/+$/, "");
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const unavailable = () =>
    new OutpostError("unavailable", `cannot reach Outpost at ${base}`, "start it with `outpost up` or check --server");

  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({
    accept: "application/json",
    ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
    ...extra,
  });

  const url = (path: string, query?: Record<string, string | number | readonly string[] | undefined>) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) {
      if (Array.isArray(v)) for (const one of v) params.append(k, one);
      else if (v !== undefined) params.set(k, String(v));
    }
    const qs = params.toString();
    return `${base}${path}${qs ? `?${qs}` : ""}`;
  };

  async function send(
    method: "GET" | "POST" | "PATCH" | "DELETE",
    path: string,
    init: {
      query?: Record<string, string | number | readonly string[] | undefined>;
      body?: unknown;
      headers?: Record<string, string>;
    } = {},
  ): Promise<unknown> {
    let response: Response;
    try {
      response = await doFetch(url(path, init.query), {
        method,
        headers: headers({
          ...(init.body !== undefined ? { "content-type": "application/json" } : {}),
          ...init.headers,
        }),
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      });
    } catch {
      throw unavailable();
    }
    if (!response.ok) throw await errorFrom(response);
    if (response.status === 204) return undefined;
    try {
      return await response.json();
    } catch {
      throw new OutpostError("internal", `Outpost at ${base} sent a response that is not JSON (${method} ${path})`);
    }
  }

  async function errorFrom(response: Response): Promise<OutpostError> {
    let text = "";
    try {
      text = await response.text();
    } catch {
      // the body is lost; fall back to the status
    }
    try {
      const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; hint?: unknown } };
      const e = body?.error;
      if (e && typeof e.message === "string") {
        const code = CODES.includes(e.code as ErrorCode) ? (e.code as ErrorCode) : codeForStatus(response.status);
        return new OutpostError(code, e.message, typeof e.hint === "string" ? e.hint : undefined);
      }
    } catch {
      // not our envelope (a proxy's error page, …)
    }
    return new OutpostError(
      codeForStatus(response.status),
      `Outpost at ${base} answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`,
      response.status >= 500 ? "see the server log" : undefined,
    );
  }

  const seg = encodeURIComponent;

  async function* streamEvents(runId: string, streamOptions: { after?: number; signal?: AbortSignal } = {}): AsyncGenerator<EventView> {
    const outer = streamOptions.signal;
    let last = streamOptions.after ?? 0;
    let failures = 0;
    let connected = false;
    while (!outer?.aborted) {
      // One controller per connection: aborting it closes the socket when the caller stops early.
      const connection = new AbortController();
      const onAbort = () => connection.abort();
      outer?.addEventListener("abort", onAbort, { once: true });
      let ended = false;
      try {
        let response: Response;
        try {
          response = await doFetch(url(`/v1/runs/${seg(runId)}/stream`, { after: last }), {
            headers: headers({ accept: "text/event-stream", ...(last > 0 ? { "last-event-id": String(last) } : {}) }),
            signal: connection.signal,
          });
        } catch {
          if (outer?.aborted) return;
          // Never reached: say so at once. Lost after connecting: retry with backoff.
          if (!connected || ++failures > MAX_STREAM_RETRIES) throw unavailable();
          await sleep(backoff(failures), outer);
          continue;
        }
        if (!response.ok) {
          const error = await errorFrom(response);
          if (error.code !== "unavailable") throw error;
          if (++failures > MAX_STREAM_RETRIES) throw error;
          await sleep(backoff(failures), outer);
          continue;
        }
        if (!response.body) throw new OutpostError("internal", `Outpost at ${base} sent an empty event stream`);
        connected = true;
        try {
          for await (const message of parseSse(response.body)) {
            if (message.event === "end") {
              ended = true;
              break;
            }
            if (message.event === "error") throw errorFromStream(message.data);
            let event: EventView;
            try {
              event = JSON.parse(message.data) as EventView;
            } catch {
              continue; // not an event of ours (never sent by Outpost)
            }
            if (typeof event.seq !== "number") continue;
            if (event.seq < 1) {
              yield event; // transient (model.delta): not part of the log, never replayed
              continue;
            }
            if (event.seq <= last) continue;
            last = event.seq;
            failures = 0;
            yield event;
          }
        } catch (e) {
          if (e instanceof OutpostError) throw e;
          if (outer?.aborted) return;
          // The connection dropped mid-stream: reconnect below.
        }
      } finally {
        outer?.removeEventListener("abort", onAbort);
        connection.abort();
      }
      if (ended || outer?.aborted) return;
      if (++failures > MAX_STREAM_RETRIES) {
        throw new OutpostError(
          "unavailable",
          `lost the event stream of run ${runId} at ${base}`,
          "check that the server is up, then follow the run again",
        );
      }
      await sleep(backoff(failures), outer);
    }
  }

  return {
    health: async () => (await send("GET", "/v1/health")) as Awaited<ReturnType<OutpostApi["health"]>>,
    listAgents: async () => (await send("GET", "/v1/agents")) as AgentView[],
    getAgent: async (name) => (await send("GET", `/v1/agents/${seg(name)}`)) as AgentView,
    startRun: async (request: StartRunRequest) =>
      (await send("POST", "/v1/runs", {
        body: {
          ...(request.agent !== undefined ? { agent: request.agent } : {}),
          input: request.input,
          ...(request.session_id !== undefined ? { session_id: request.session_id } : {}),
          ...(request.context !== undefined ? { context: request.context } : {}),
        },
        headers: request.idempotency_key !== undefined ? { "idempotency-key": request.idempotency_key } : {},
      })) as RunView,
    getRun: async (id) => (await send("GET", `/v1/runs/${seg(id)}`)) as RunView,
    listRuns: async (request: ListRunsRequest = {}) =>
      (await send("GET", "/v1/runs", {
        query: {
          agent: request.agent,
          status: request.status,
          session_id: request.session_id,
          limit: request.limit,
          cursor: request.cursor,
        },
      })) as Page<RunView>,
    getEvents: async (runId, after) => (await send("GET", `/v1/runs/${seg(runId)}/events`, { query: { after } })) as EventView[],
    streamEvents,
    cancelRun: async (id, reason) =>
      (await send("POST", `/v1/runs/${seg(id)}/cancel`, { body: reason !== undefined ? { reason } : {} })) as RunView,
    sendEvent: async (runId, event) =>
      (await send("POST", `/v1/runs/${seg(runId)}/events`, {
        body: { name: event.name, ...(event.payload !== undefined ? { payload: event.payload } : {}) },
      })) as RunView,
    listApprovals: async (request: { status?: ApprovalStatus } = {}) =>
      (await send("GET", "/v1/approvals", { query: { status: request.status } })) as ApprovalView[],
    decideApproval: async (id, decision) =>
      (await send("POST", `/v1/approvals/${seg(id)}`, {
        body: {
          decision: decision.decision,
          ...(decision.reason !== undefined ? { reason: decision.reason } : {}),
          ...(decision.by !== undefined ? { by: decision.by } : {}),
        },
      })) as ApprovalView,
    getSession: async (id) => (await send("GET", `/v1/sessions/${seg(id)}`)) as SessionView,
    getRunTree: async (id) => (await send("GET", `/v1/runs/${seg(id)}/tree`)) as RunTreeView,
    getArtifact: async (id, page = {}) =>
      (await send("GET", `/v1/artifacts/${seg(id)}`, { query: { offset: page.offset, limit: page.limit } })) as ArtifactView,
    createKey: async (request) => (await send("POST", "/v1/keys", { body: request })) as KeyView & { key: string },
    listKeys: async (request = {}) => (await send("GET", "/v1/keys", { query: { workspace: request.workspace } })) as KeyView[],
    revokeKey: async (id, request = {}) =>
      (await send("DELETE", `/v1/keys/${seg(id)}`, { query: { workspace: request.workspace } })) as KeyView,
    listMemory: async (request = {}) =>
      (await send("GET", "/v1/memory", {
        query: {
          scope: request.scope,
          subject: request.subject,
          tag: request.tag,
          kind: request.kind,
          limit: request.limit,
          cursor: request.cursor,
        },
      })) as Page<MemoryItemView>,
    searchMemory: async (request) =>
      (await send("GET", "/v1/memory/search", {
        query: {
          q: request.q,
          scope: request.scopes,
          subject: request.subject,
          tag: request.tags,
          limit: request.limit,
          mode: request.mode,
        },
      })) as MemorySearchView,
    getMemory: async (id) => (await send("GET", `/v1/memory/${seg(id)}`)) as MemoryDetailView,
    remember: async (request) => (await send("POST", "/v1/memory", { body: request })) as RememberedView,
    updateMemory: async (id, patch) => (await send("PATCH", `/v1/memory/${seg(id)}`, { body: patch })) as MemoryItemView,
    forgetMemory: async (id) => {
      await send("DELETE", `/v1/memory/${seg(id)}`);
    },
    eraseSubject: async (subject) => (await send("POST", "/v1/memory/erase", { body: { subject } })) as ErasureView,
    ingestKnowledge: async (request) => (await send("POST", "/v1/knowledge", { body: request })) as IngestView,
    listKnowledge: async (request = {}) =>
      (await send("GET", "/v1/knowledge", { query: { scope: request.scope } })) as {
        documents: KnowledgeDocumentView[];
      },
    removeKnowledge: async (scope, name) =>
      (await send("DELETE", "/v1/knowledge", { query: { scope, name } })) as { name: string; scope: string; chunks: number },
    listWorkflows: async () => (await send("GET", "/v1/workflows")) as { workflows: WorkflowView[] },
    startWorkflow: async (name, request = {}) =>
      (await send("POST", `/v1/workflows/${seg(name)}/runs`, {
        body: request.input !== undefined ? { input: request.input } : {},
        ...(request.idempotency_key ? { headers: { "idempotency-key": request.idempotency_key } } : {}),
      })) as RunView,
    listTriggers: async () => (await send("GET", "/v1/triggers")) as { triggers: TriggerView[] },
    listFirings: async (trigger, request = {}) =>
      (await send("GET", `/v1/triggers/${seg(trigger)}/firings`, { query: { limit: request.limit } })) as { firings: FiringView[] },
    listContext: async (request = {}) =>
      (await send("GET", "/v1/context", { query: { type: request.type, limit: request.limit } })) as { entities: ContextEntityView[] },
    getContext: async (type, id) => (await send("GET", `/v1/context/${seg(type)}/${seg(id)}`)) as ContextEntityView,
    getCosts: async (query = {}) => (await send("GET", "/v1/costs", { query: { ...query } })) as CostReport,
  };
}

function errorFromStream(data: string): OutpostError {
  try {
    const e = (JSON.parse(data) as { error?: { code?: string; message?: string; hint?: string } }).error;
    if (e && typeof e.message === "string") {
      const code = CODES.includes(e.code as ErrorCode) ? (e.code as ErrorCode) : "internal";
      return new OutpostError(code, e.message, e.hint);
    }
  } catch {
    // fall through
  }
  return new OutpostError("internal", "the event stream failed", "see the server log");
}

const backoff = (attempt: number) => Math.min(200 * 2 ** (attempt - 1), 5_000);

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
