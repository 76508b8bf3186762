/**
 * The OpenAI-compatible API: any Chat Completions client (the official SDKs,
 * LangChain, LibreChat, …) talks to Outpost agents as if they were models.
 *
 * - `GET /v1/models` lists every agent as a model; `GET /v1/models/{id}` names one.
 * - `POST /v1/chat/completions` with `model: "<agent>"` starts a run of that agent:
 *   the last `user` message is its input; earlier user/assistant messages are the
 *   run's `context` (clients resend the conversation every time), and system or
 *   developer messages join the context as a user message "Instructions from the
 *   caller: …" — the agent keeps its own instructions. Outpost agents use their
 *   own tools: `tools`, `functions`, `tool` messages and non-text content are refused.
 * - `X-Outpost-Session: <id>` (or a `user` field holding an Outpost session id,
 *   `ses_…`) continues that session; since the session already holds the earlier
 *   turns, only the caller's instructions are passed as context then. Every answer
 *   names the session and the run in `X-Outpost-Session` and `X-Outpost-Run`.
 * - The answer is the run's output. A run that waits for a person (an approval, an
 *   external event) is answered with a message saying what it waits for, plus
 *   `outpost: {run_id, status, waiting_for}`; the run stays where it is. So is a
 *   run held up by a person's decision elsewhere: a run it delegated to (at any
 *   depth), or an earlier run of its session it is queued behind, waits for one
 *   (`waiting_for.run_id` names the run that waits). Such an answer comes at once,
 *   so that no client times out and retries (starting another run). A failed
 *   run is a 500 naming the run (with `x-should-retry: false`: a retry would start
 *   a new run).
 * - `stream: true` answers `chat.completion.chunk` server-sent events: the role,
 *   the text as the model streams it (`model.delta`), the output if it was not
 *   streamed, a final chunk with `finish_reason`, usage when
 *   `stream_options.include_usage`, then `data: [DONE]`. A client that goes away
 *   stops only the stream, never the run.
 *
 * Failures answer OpenAI's shape, `{error: {message, type, param, code}}`, not
 * Outpost's envelope, so clients raise their usual exceptions.
 */
import type { ServerResponse } from "node:http";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { EventView, OutpostApi, RunView, StartRunRequest } from "../../core/api.js";
import { OutpostError } from "../../core/errors.js";
import { describeValidation } from "../errors.js";
import { describeWaiting, type FollowOutcome, followRun, type Waiting } from "./follow.js";

export interface OpenAiRouteOptions {
  /** Interval of SSE comments keeping an idle stream open (default 15 000 ms). */
  heartbeatMs?: number;
}

const TAG = "OpenAI-compatible";
const SESSION_HEADER = "x-outpost-session";
const RUN_HEADER = "x-outpost-run";

// ---- errors -----------------------------------------------------------------------

type ErrorType = "invalid_request_error" | "not_found_error" | "server_error";

class OpenAiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType = "invalid_request_error",
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

const invalid = (param: string, message: string) => new OpenAiError(400, message, "invalid_request_error", param);

const modelNotFound = (model: string, known: string[]) =>
  new OpenAiError(
    404,
    `The model '${model}' does not exist. Outpost serves its agents as models: ${known.join(", ") || "(none)"} (GET /v1/models).`,
    "invalid_request_error",
    "model",
    "model_not_found",
  );

function fromOutpostError(err: OutpostError): OpenAiError {
  const message = err.hint ? `${err.message} — ${err.hint}` : err.message;
  return new OpenAiError(err.status, message, err.status >= 500 ? "server_error" : "invalid_request_error", null, err.code);
}

/** Fastify's body-parsing errors that are the client's mistake. */
function clientMistake(error: FastifyError): OpenAiError | null {
  switch (error.code) {
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new OpenAiError(400, "The request body is not valid JSON.");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new OpenAiError(400, "The request body is empty; send a JSON object.");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new OpenAiError(415, "Send the request body as JSON with the header content-type: application/json.");
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new OpenAiError(413, "The request body is too large.");
    default:
      break;
  }
  const status = error.statusCode ?? 0;
  return status >= 400 && status < 500 && error.code?.startsWith("FST_") ? new OpenAiError(status, error.message) : null;
}

function handleError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  let answer: OpenAiError;
  if (error instanceof OpenAiError) answer = error;
  else if (error instanceof OutpostError) answer = fromOutpostError(error);
  else if (error.validation) {
    const first = error.validation[0];
    const param = first?.instancePath ? first.instancePath.split("/").filter(Boolean).join(".") : null;
    answer = new OpenAiError(400, describeValidation(error.validation, error.validationContext), "invalid_request_error", param);
  } else {
    answer = clientMistake(error) ?? new OpenAiError(500, `Internal error (request id ${request.id}).`, "server_error");
  }
  // A failed run or a shutdown is an answer, not a fault of the server.
  if (answer.status >= 500 && !(error instanceof OpenAiError)) request.log.error({ err: error }, "OpenAI-compatible request failed");
  return reply.code(answer.status).send(answer.body());
}

// ---- the request ------------------------------------------------------------------

interface ChatRequest {
  model: string;
  messages: unknown[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  n?: number | null;
  user?: string;
  tools?: unknown;
  tool_choice?: unknown;
  functions?: unknown;
  function_call?: unknown;
}

interface ParsedChat {
  input: string;
  context: NonNullable<StartRunRequest["context"]>;
  /** Instructions only: what is passed when a session is continued. */
  instructions: NonNullable<StartRunRequest["context"]>;
}

const present = (v: unknown) => v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);

/** Checks what Outpost cannot honour and splits the conversation into input and context. */
export function parseChat(body: ChatRequest): ParsedChat {
  const toolsHint = "Outpost agents use the tools defined for them in the project; send only the conversation";
  if (present(body.tools)) throw invalid("tools", `'tools' is not supported: ${toolsHint}.`);
  if (present(body.functions)) throw invalid("functions", `'functions' is not supported: ${toolsHint}.`);
  if (present(body.tool_choice) && body.tool_choice !== "none") {
    throw invalid("tool_choice", `'tool_choice' is not supported: ${toolsHint}.`);
  }
  if (present(body.function_call) && body.function_call !== "none") {
    throw invalid("function_call", `'function_call' is not supported: ${toolsHint}.`);
  }
  if (body.n !== undefined && body.n !== null && body.n !== 1) {
    throw invalid("n", `'n' must be 1: an Outpost agent gives one answer per run (got ${JSON.stringify(body.n)}).`);
  }

  const turns: { role: "user" | "assistant" | "instructions"; content: string }[] = [];
  body.messages.forEach((raw, i) => {
    const at = `messages[${i}]`;
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw invalid(at, `${at} must be an object with a role and content.`);
    const m = raw as Record<string, unknown>;
    switch (m.role) {
      case "tool":
      case "function":
        throw invalid(`${at}.role`, `${at}: '${m.role}' messages are not supported: ${toolsHint}.`);
      case "assistant":
        if (present(m.tool_calls) || present(m.function_call)) {
          throw invalid(`${at}.tool_calls`, `${at}: assistant tool calls are not supported: ${toolsHint}.`);
        }
        turns.push({ role: "assistant", content: textOf(m.content, at, true) });
        return;
      case "user":
        turns.push({ role: "user", content: textOf(m.content, at, false) });
        return;
      case "system":
      case "developer":
        turns.push({ role: "instructions", content: textOf(m.content, at, false) });
        return;
      default:
        throw invalid(
          `${at}.role`,
          `${at}.role must be one of 'system', 'developer', 'user', 'assistant' (got ${JSON.stringify(m.role)}).`,
        );
    }
  });

  let last = -1;
  for (let i = turns.length - 1; i >= 0 && last < 0; i--) if (turns[i].role === "user") last = i;
  if (last < 0) throw invalid("messages", "messages must contain a 'user' message: the latest one is what the agent answers.");
  const after = turns.findIndex((t, i) => i > last && t.role === "assistant");
  if (after >= 0) {
    throw invalid("messages", "The conversation must end with a 'user' message: the agent answers the latest user message.");
  }
  const input = turns[last].content;
  if (input.trim() === "") throw invalid(`messages[${last}].content`, "The last user message is empty.");

  const asContext = (t: (typeof turns)[number]) =>
    t.role === "instructions"
      ? { role: "user" as const, content: `Instructions from the caller: ${t.content}` }
      : { role: t.role, content: t.content };
  const rest = turns.filter((_, i) => i !== last);
  return {
    input,
    context: rest.filter((t) => t.content !== "").map(asContext),
    instructions: rest.filter((t) => t.role === "instructions" && t.content !== "").map(asContext),
  };
}

/** A message's text: a string, or an array of text parts. */
function textOf(content: unknown, at: string, nullable: boolean): string {
  if (typeof content === "string") return content;
  if ((content === null || content === undefined) && nullable) return "";
  if (Array.isArray(content)) {
    return content
      .map((part, j) => {
        const p = part as { type?: unknown; text?: unknown } | null;
        if (p && p.type === "text" && typeof p.text === "string") return p.text;
        const type = p && typeof p.type === "string" ? `'${p.type}'` : "this kind of";
        throw invalid(
          `${at}.content[${j}]`,
          `${at}.content[${j}]: ${type} content parts are not supported; Outpost agents take text (parts of type 'text').`,
        );
      })
      .join("\n");
  }
  throw invalid(`${at}.content`, `${at}.content must be a string or an array of text parts.`);
}

// ---- the answer -------------------------------------------------------------------

const seconds = (iso: string) => Math.floor(Date.parse(iso) / 1000);

function usageOf(run: RunView) {
  const prompt = run.usage.input_tokens;
  const completion = run.usage.output_tokens;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function outpostField(run: RunView, waiting?: Waiting) {
  return { run_id: run.id, session_id: run.session_id, status: run.status, waiting_for: waiting ?? null };
}

function runFailed(run: RunView): OpenAiError {
  const why = run.error ? `${run.error.code}: ${run.error.message}` : run.status;
  return new OpenAiError(
    500,
    `Run ${run.id} of agent '${run.agent}' ${run.status === "cancelled" ? "was cancelled" : "failed"} — ${why}. ` +
      `See GET /v1/runs/${run.id}/events.`,
    "server_error",
    null,
    run.error?.code ?? `run_${run.status}`,
  );
}

const stoppedError = (run: RunView) =>
  new OpenAiError(
    503,
    `Outpost is shutting down; run ${run.id} goes on when it is back. Follow it with GET /v1/runs/${run.id}.`,
    "server_error",
    null,
    "unavailable",
  );

function completion(run: RunView, content: string, waiting?: Waiting) {
  return {
    id: `chatcmpl-${run.id}`,
    object: "chat.completion",
    created: seconds(run.created_at),
    model: run.agent,
    system_fingerprint: null,
    choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" }],
    usage: usageOf(run),
    outpost: outpostField(run, waiting),
  };
}

// ---- routes -----------------------------------------------------------------------

const errorSchema = {
  type: "object",
  description: "OpenAI's error shape.",
  properties: {
    error: {
      type: "object",
      properties: {
        message: { type: "string" },
        type: { type: "string" },
        param: { type: ["string", "null"] },
        code: { type: ["string", "null"] },
      },
      additionalProperties: true,
    },
  },
  additionalProperties: true,
} as const;

const modelSchema = {
  type: "object",
  properties: {
    id: { type: "string", description: "The agent's name." },
    object: { type: "string", enum: ["model"] },
    created: { type: "integer" },
    owned_by: { type: "string" },
  },
  additionalProperties: true,
} as const;

const messageSchema = {
  type: "object",
  required: ["role"],
  properties: {
    role: { type: "string", enum: ["system", "developer", "user", "assistant", "tool", "function"] },
    content: {
      description: "Text, or an array of parts of type 'text'.",
      anyOf: [{ type: "string" }, { type: "array", items: { type: "object" } }, { type: "null" }],
    },
  },
  additionalProperties: true,
} as const;

const chatBodySchema = {
  type: "object",
  required: ["model", "messages"],
  properties: {
    model: { type: "string", minLength: 1, description: "The name of the agent to run." },
    messages: { type: "array", minItems: 1, items: messageSchema },
    stream: { type: ["boolean", "null"] },
    stream_options: {
      type: ["object", "null"],
      properties: { include_usage: { type: "boolean" } },
      additionalProperties: true,
    },
    n: { type: ["integer", "null"], description: "Must be 1." },
    user: { type: "string", description: "An Outpost session id (`ses_…`) continues that session; other values are ignored." },
  },
  additionalProperties: true,
} as const;

const chatDescription =
  "Runs the agent named by `model`. The last user message is the run's input; earlier user, assistant and " +
  "system messages are passed as its context. `tools`, `functions`, `tool` messages and non-text content are " +
  "refused (agents use their own tools). `X-Outpost-Session` continues a session; the response names the session " +
  "and run in `X-Outpost-Session` and `X-Outpost-Run`. A run waiting for a person is answered with a message saying " +
  "so and an `outpost` field; `stream: true` answers `chat.completion.chunk` server-sent events ending in `data: [DONE]`.";

/** Registers the routes in a scope of their own, whose errors answer OpenAI's shape. */
/** `apiOf(request)`: the API as the request's caller sees it (its workspace). */
export async function registerOpenAiRoutes(
  server: FastifyInstance,
  apiOf: (request: FastifyRequest) => OutpostApi,
  options: OpenAiRouteOptions = {},
): Promise<void> {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const startedAt = Math.floor(Date.now() / 1000);
  const shutdown = new AbortController();
  server.addHook("preClose", async () => shutdown.abort());

  const modelOf = (name: string) => ({ id: name, object: "model", created: startedAt, owned_by: "outpost" });
  const requireAgent = async (api: OutpostApi, name: string) => {
    try {
      return await api.getAgent(name);
    } catch (err) {
      if (err instanceof OutpostError && err.code === "not_found") {
        throw modelNotFound(
          name,
          (await api.listAgents()).map((a) => a.name),
        );
      }
      throw err;
    }
  };

  await server.register(async (scope) => {
    scope.setErrorHandler(handleError);

    scope.get(
      "/v1/models",
      {
        schema: {
          tags: [TAG],
          summary: "List the agents as models",
          response: {
            200: {
              type: "object",
              properties: { object: { type: "string", enum: ["list"] }, data: { type: "array", items: modelSchema } },
              additionalProperties: true,
            },
          },
        },
      },
      async (request) => ({ object: "list", data: (await apiOf(request).listAgents()).map((a) => modelOf(a.name)) }),
    );

    scope.get<{ Params: { id: string } }>(
      "/v1/models/:id",
      {
        schema: {
          tags: [TAG],
          summary: "An agent as a model",
          params: { type: "object", properties: { id: { type: "string" } }, required: ["id"] },
          response: { 200: modelSchema, "4xx": errorSchema },
        },
      },
      async (request) => modelOf((await requireAgent(apiOf(request), request.params.id)).name),
    );

    scope.post<{ Body: ChatRequest }>(
      "/v1/chat/completions",
      {
        schema: {
          tags: [TAG],
          summary: "Run an agent as a chat completion",
          description: chatDescription,
          body: chatBodySchema,
          headers: {
            type: "object",
            properties: { [SESSION_HEADER]: { type: "string", description: "Continue this Outpost session." } },
          },
          response: {
            200: {
              description: "A `chat.completion` (or, with `stream: true`, `chat.completion.chunk` server-sent events).",
              type: "object",
              additionalProperties: true,
            },
            "4xx": errorSchema,
            "5xx": errorSchema,
          },
        },
      },
      async (request, reply) => {
        const api = apiOf(request);
        const body = request.body;
        const parsed = parseChat(body);
        const agent = await requireAgent(api, body.model);
        const sessionId = sessionOf(request, body);
        const key = request.headers["idempotency-key"];
        const context = sessionId !== undefined ? parsed.instructions : parsed.context;
        const run = await api.startRun({
          agent: agent.name,
          input: parsed.input,
          ...(sessionId !== undefined ? { session_id: sessionId } : {}),
          ...(context.length > 0 ? { context } : {}),
          ...(typeof key === "string" && key !== "" ? { idempotency_key: key } : {}),
        });
        reply.header(SESSION_HEADER, run.session_id).header(RUN_HEADER, run.id);

        if (body.stream === true) {
          reply.hijack();
          await streamCompletion(api, reply.raw, run, {
            includeUsage: body.stream_options?.include_usage === true,
            heartbeatMs,
            shutdown: shutdown.signal,
            headers: { "request-id": String(request.id), [SESSION_HEADER]: run.session_id, [RUN_HEADER]: run.id },
          });
          return;
        }

        const gone = new AbortController();
        const onClose = () => {
          if (!reply.raw.writableFinished) gone.abort();
        };
        reply.raw.on("close", onClose);
        try {
          const outcome = await followRun(api, run.id, { signal: AbortSignal.any([gone.signal, shutdown.signal]) });
          switch (outcome.kind) {
            case "completed":
              return completion(outcome.run, outcome.run.output ?? "");
            case "waiting":
              return completion(outcome.run, describeWaiting(run.agent, run.id, outcome.waiting), outcome.waiting);
            case "failed":
              reply.header("x-should-retry", "false");
              throw runFailed(outcome.run);
            case "stopped":
              throw stoppedError(run);
          }
        } finally {
          reply.raw.off("close", onClose);
        }
      },
    );
  });
}

/** The session to continue: the `X-Outpost-Session` header, else a `user` field that is an Outpost session id. */
function sessionOf(request: FastifyRequest, body: ChatRequest): string | undefined {
  const header = request.headers[SESSION_HEADER];
  if (typeof header === "string" && header.trim() !== "") return header.trim();
  if (typeof body.user === "string" && /^ses_[0-9a-z]+$/.test(body.user)) return body.user;
  return undefined;
}

// ---- streaming --------------------------------------------------------------------

interface StreamOptions {
  includeUsage: boolean;
  heartbeatMs: number;
  shutdown: AbortSignal;
  headers: Record<string, string>;
}

async function streamCompletion(api: OutpostApi, raw: ServerResponse, run: RunView, options: StreamOptions): Promise<void> {
  const gone = new AbortController();
  const abort = () => gone.abort();
  raw.on("close", abort);
  raw.on("error", abort);
  const open = () => !gone.signal.aborted && !raw.destroyed && !raw.writableEnded;
  const goneOnce = new Promise<void>((resolve) => gone.signal.addEventListener("abort", () => resolve(), { once: true }));
  const write = async (text: string) => {
    if (!open()) return;
    if (!raw.write(text)) await Promise.race([new Promise<void>((resolve) => raw.once("drain", () => resolve())), goneOnce]);
  };

  const base = { id: `chatcmpl-${run.id}`, object: "chat.completion.chunk", created: seconds(run.created_at), model: run.agent };
  const usageNull = options.includeUsage ? { usage: null } : {};
  const chunk = (delta: Record<string, unknown>, finish: string | null = null, extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({
      ...base,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...usageNull,
      ...extra,
    })}\n\n`;

  raw.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "close",
    "x-accel-buffering": "no",
    ...options.headers,
  });
  await write(chunk({ role: "assistant", content: "" }));
  const heartbeat = setInterval(() => {
    if (open()) raw.write(": keep-alive\n\n");
  }, options.heartbeatMs);
  heartbeat.unref();

  // Text reaches the client as the model streams it (deltas of a step that ends in tool calls
  // too, separated by a blank line). Once a step's response is committed, what it did not stream
  // (a provider without deltas, deltas missed) is sent from the response, and its late deltas,
  // which the live stream may deliver after the committed event, are dropped.
  const streamed = new Map<number, string>();
  const settled = new Set<number>();
  let lastStep: number | null = null;
  let sentAny = false;
  const send = async (step: number, text: string) => {
    if (text === "") return;
    const separator = sentAny && lastStep !== step ? "\n\n" : "";
    lastStep = step;
    sentAny = true;
    streamed.set(step, (streamed.get(step) ?? "") + text);
    await write(chunk({ content: separator + text }));
  };
  const onEvent = async (e: EventView) => {
    const step = Number(e.data.step);
    if (e.type === "model.delta" && typeof e.data.text === "string") {
      if (!settled.has(step)) await send(step, e.data.text);
    } else if (e.type === "model.responded" && typeof e.data.text === "string") {
      settled.add(step);
      const calls = e.data.tool_calls;
      if (Array.isArray(calls) && calls.length > 0) return; // an intermediate step, not the answer
      const already = streamed.get(step) ?? "";
      if (e.data.text.startsWith(already)) await send(step, e.data.text.slice(already.length));
    }
  };

  let outcome: FollowOutcome;
  try {
    outcome = await followRun(api, run.id, { signal: AbortSignal.any([gone.signal, options.shutdown]), onEvent });
  } catch (err) {
    outcome = { kind: "stopped" };
    if (open()) {
      const answer = err instanceof OutpostError ? fromOutpostError(err) : new OpenAiError(500, "Internal error.", "server_error");
      await write(`data: ${JSON.stringify(answer.body())}\n\n`);
    }
  }
  try {
    switch (outcome.kind) {
      case "completed": {
        const output = outcome.run.output ?? "";
        if (!sentAny) await send(-1, output);
        await finish(outcome.run);
        break;
      }
      case "waiting":
        await send(-1, describeWaiting(run.agent, run.id, outcome.waiting));
        await finish(outcome.run, outcome.waiting);
        break;
      case "failed":
        await write(`data: ${JSON.stringify(runFailed(outcome.run).body())}\n\n`);
        await write("data: [DONE]\n\n");
        break;
      case "stopped":
        if (open() && options.shutdown.aborted) await write(`data: ${JSON.stringify(stoppedError(run).body())}\n\n`);
        break;
    }
  } finally {
    clearInterval(heartbeat);
    raw.off("close", abort);
    if (!raw.destroyed && !raw.writableEnded) raw.end();
  }

  async function finish(final: RunView, waiting?: Waiting) {
    await write(chunk({}, "stop", { outpost: outpostField(final, waiting) }));
    if (options.includeUsage) {
      await write(`data: ${JSON.stringify({ ...base, system_fingerprint: null, choices: [], usage: usageOf(final) })}\n\n`);
    }
    await write("data: [DONE]\n\n");
  }
}
