/**
 * A real OpenAI-compatible HTTP server for tests: node:http on 127.0.0.1, a
 * random port, speaking the Chat Completions wire format — plain JSON, or SSE
 * when the request says `stream: true` (`data: {...}\n\n` chunks with
 * `choices[0].delta`, tool-call arguments split across chunks, a usage chunk
 * when `stream_options.include_usage`, then `data: [DONE]`).
 *
 * Program it per test with a queue of behaviours; each request takes the next
 * one. Every request is recorded, so tests can assert what went over the wire.
 *
 * It also answers `POST /v1/embeddings` (the OpenAI embeddings wire format)
 * with deterministic vectors (`fakeEmbedding`), unless a failure was queued
 * with `enqueueEmbeddings`; embedding requests never consume chat behaviours.
 *
 * ```ts
 * const server = await startOpenAIServer();
 * server.enqueue(httpError(429, { retryAfter: 0 }), toolCalls([{ name: "orders__lookup", arguments: '{"id":1}' }]));
 * // ... point a client at server.url (it ends in /v1) ...
 * expect(server.requests).toHaveLength(2);
 * await server.close();
 * ```
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A tool call the fake model makes. `arguments` is sent verbatim (it may be malformed JSON). */
export interface FakeToolCall {
  /** Defaults to `call_<n>`. */
  id?: string;
  /** The wire name, e.g. `orders__lookup`. */
  name: string;
  arguments: string;
}

export interface ReplyBehaviour {
  kind: "reply";
  text?: string;
  toolCalls?: FakeToolCall[];
  /** Defaults to "tool_calls" when there are tool calls, else "stop". */
  finishReason?: string;
  /** Defaults to prompt 10 / completion 5 tokens. */
  usage?: { promptTokens: number; completionTokens: number };
  /** The `model` field of the response; defaults to the requested model. */
  model?: string;
}

export interface ErrorBehaviour {
  kind: "error";
  status: number;
  /** JSON error body; defaults to an OpenAI-style `{ error: { message, type, code } }`. */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface HangBehaviour {
  kind: "hang";
  /** Streaming only: send these text deltas first, then stall forever. */
  partialText?: string;
}

export interface DisconnectBehaviour {
  kind: "disconnect";
}

export type Behaviour = ReplyBehaviour | ErrorBehaviour | HangBehaviour | DisconnectBehaviour;

/** A behaviour, or a function choosing one from the request (for echo-style fakes). */
export type BehaviourSource = Behaviour | ((request: RecordedRequest) => Behaviour);

export interface RecordedRequest {
  method: string;
  /** e.g. "/v1/chat/completions". */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body (Chat Completions request: model, messages, tools, stream, ...). */
  body: any;
}

export interface OpenAIServer {
  /** Base URL to give a client, e.g. `http://127.0.0.1:41234/v1`. */
  readonly url: string;
  /** Every request received, in order (including ones that hung or failed). */
  readonly requests: RecordedRequest[];
  /** Append behaviours; each request consumes one. An empty queue answers 400 "no behaviour queued". */
  enqueue(...behaviours: BehaviourSource[]): void;
  /** Failures for the next embedding requests, one each; with none queued, embeddings are answered. */
  enqueueEmbeddings(...behaviours: Array<ErrorBehaviour | DisconnectBehaviour>): void;
  /** Forget queued behaviours (chat and embeddings) and recorded requests. */
  reset(): void;
  /** Stop the server, cutting any hanging connections. */
  close(): Promise<void>;
}

// ---- behaviour builders -------------------------------------------------------

/** Answer with text. */
export function text(content: string, options: Omit<ReplyBehaviour, "kind" | "text"> = {}): ReplyBehaviour {
  return { kind: "reply", text: content, ...options };
}

/** Answer with tool calls (and optionally some text). */
export function toolCalls(calls: FakeToolCall[], options: Omit<ReplyBehaviour, "kind" | "toolCalls"> = {}): ReplyBehaviour {
  return { kind: "reply", toolCalls: calls, ...options };
}

/** Answer with an HTTP error. `retryAfter` (seconds) sets the Retry-After header. */
export function httpError(
  status: number,
  options: { retryAfter?: number; message?: string; body?: unknown; headers?: Record<string, string> } = {},
): ErrorBehaviour {
  const headers = { ...options.headers };
  if (options.retryAfter !== undefined) headers["retry-after"] = String(options.retryAfter);
  const message = options.message ?? `fake error ${status}`;
  return {
    kind: "error",
    status,
    headers,
    body: options.body ?? { error: { message, type: status === 429 ? "rate_limit_error" : "api_error", code: null } },
  };
}

/** Never answer (or, when streaming, send `partialText` and then stall). */
export function hang(partialText?: string): HangBehaviour {
  return { kind: "hang", partialText };
}

/** Destroy the socket without answering (a network error for the client). */
export function disconnect(): DisconnectBehaviour {
  return { kind: "disconnect" };
}

// ---- the server ---------------------------------------------------------------

export interface OpenAIServerOptions {
  /** When set, requests must carry `Authorization: Bearer <apiKey>` or get a 401. */
  apiKey?: string;
  /** Length of the vectors `/embeddings` returns when the request has no `dimensions` (default 8). */
  embeddingDimensions?: number;
}

/**
 * The vector the fake embeddings endpoint returns for a text: deterministic, values in [-1, 1), and deliberately
 * not unit length (clients that need unit vectors must normalise).
 */
export function fakeEmbedding(text: string, dimensions: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < dimensions; i++) {
    let h = 2166136261 ^ i;
    for (let j = 0; j < text.length; j++) h = Math.imul(h ^ text.charCodeAt(j), 16777619);
    out.push(((h >>> 0) % 2000) / 1000 - 1);
  }
  return out;
}

export async function startOpenAIServer(options: OpenAIServerOptions = {}): Promise<OpenAIServer> {
  const queue: BehaviourSource[] = [];
  const embeddingQueue: Array<ErrorBehaviour | DisconnectBehaviour> = [];
  const requests: RecordedRequest[] = [];
  let callCounter = 0;

  const server = createServer(async (req, res) => {
    const raw = await readBody(req);
    let body: any;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = raw;
    }
    const recorded: RecordedRequest = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body };
    requests.push(recorded);

    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      sendError(res, httpError(401, { message: "Incorrect API key provided." }));
      return;
    }
    if (req.method === "POST" && req.url?.endsWith("/embeddings")) {
      const failure = embeddingQueue.shift();
      if (failure?.kind === "disconnect") req.socket.destroy();
      else if (failure) sendError(res, failure);
      else sendJson(res, 200, embeddings(body, options.embeddingDimensions ?? 8));
      return;
    }
    if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
      sendError(res, httpError(404, { message: `test server: no route ${req.method} ${req.url}` }));
      return;
    }
    const next = queue.shift();
    if (next === undefined) {
      sendError(res, httpError(400, { message: `test server: no behaviour queued for request #${requests.length}` }));
      return;
    }
    const behaviour = typeof next === "function" ? next(recorded) : next;
    const streaming = body?.stream === true;
    switch (behaviour.kind) {
      case "error":
        sendError(res, behaviour);
        return;
      case "disconnect":
        req.socket.destroy();
        return;
      case "hang":
        if (streaming) {
          startStream(res);
          for (const piece of splitText(behaviour.partialText ?? "")) {
            writeChunk(res, chunk(body, { delta: { content: piece } }));
          }
        }
        return; // never ends; close() cuts the socket
      case "reply": {
        const calls = (behaviour.toolCalls ?? []).map((c) => ({ ...c, id: c.id ?? `call_${++callCounter}` }));
        if (streaming) streamReply(res, body, behaviour, calls);
        else sendJson(res, 200, completion(body, behaviour, calls));
        return;
      }
    }
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    enqueue: (...behaviours) => {
      queue.push(...behaviours);
    },
    enqueueEmbeddings: (...behaviours) => {
      embeddingQueue.push(...behaviours);
    },
    reset: () => {
      queue.length = 0;
      embeddingQueue.length = 0;
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

// ---- wire format --------------------------------------------------------------

const CREATED = 1_700_000_000;

function usageOf(b: ReplyBehaviour) {
  const u = b.usage ?? { promptTokens: 10, completionTokens: 5 };
  return { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.promptTokens + u.completionTokens };
}

function finishOf(b: ReplyBehaviour, calls: FakeToolCall[]): string {
  return b.finishReason ?? (calls.length > 0 ? "tool_calls" : "stop");
}

function completion(request: any, b: ReplyBehaviour, calls: Required<FakeToolCall>[]) {
  return {
    id: "chatcmpl-test",
    object: "chat.completion",
    created: CREATED,
    model: b.model ?? request?.model ?? "test-model",
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: b.text ?? null,
          ...(calls.length > 0
            ? { tool_calls: calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })) }
            : {}),
        },
        finish_reason: finishOf(b, calls),
      },
    ],
    usage: usageOf(b),
  };
}

function chunk(request: any, choice: { delta: Record<string, unknown>; finish_reason?: string | null }, model?: string) {
  return {
    id: "chatcmpl-test",
    object: "chat.completion.chunk",
    created: CREATED,
    model: model ?? request?.model ?? "test-model",
    choices: [{ index: 0, delta: choice.delta, finish_reason: choice.finish_reason ?? null }],
  };
}

function streamReply(res: ServerResponse, request: any, b: ReplyBehaviour, calls: Required<FakeToolCall>[]) {
  startStream(res);
  writeChunk(res, chunk(request, { delta: { role: "assistant", content: "" } }, b.model));
  for (const piece of splitText(b.text ?? "")) {
    writeChunk(res, chunk(request, { delta: { content: piece } }, b.model));
  }
  calls.forEach((call, index) => {
    // The first delta names the call; its arguments follow in small pieces, as OpenAI sends them.
    writeChunk(
      res,
      chunk(
        request,
        { delta: { tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] } },
        b.model,
      ),
    );
    for (let i = 0; i < call.arguments.length; i += 7) {
      writeChunk(
        res,
        chunk(request, { delta: { tool_calls: [{ index, function: { arguments: call.arguments.slice(i, i + 7) } }] } }, b.model),
      );
    }
  });
  writeChunk(res, chunk(request, { delta: {}, finish_reason: finishOf(b, calls) }, b.model));
  if (request?.stream_options?.include_usage) {
    writeChunk(res, {
      id: "chatcmpl-test",
      object: "chat.completion.chunk",
      created: CREATED,
      model: b.model ?? request?.model ?? "test-model",
      choices: [],
      usage: usageOf(b),
    });
  }
  res.end("data: [DONE]\n\n");
}

function embeddings(request: any, defaultDimensions: number) {
  const input: string[] = typeof request?.input === "string" ? [request.input] : Array.isArray(request?.input) ? request.input : [];
  const dimensions = typeof request?.dimensions === "number" ? request.dimensions : defaultDimensions;
  const tokens = input.reduce((n, t) => n + String(t).split(/\s+/).filter(Boolean).length, 0);
  return {
    object: "list",
    data: input.map((t, index) => ({ object: "embedding", index, embedding: fakeEmbedding(String(t), dimensions) })),
    model: request?.model ?? "test-embedding-model",
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}

/** Splits text into word-sized deltas (keeping whitespace) so clients see several chunks. */
function splitText(s: string): string[] {
  return s.match(/\S+\s*|\s+/g) ?? [];
}

function startStream(res: ServerResponse) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  res.flushHeaders();
}

function writeChunk(res: ServerResponse, data: unknown) {
  res.write(`data: ${JSON.stringify(data)}\n\n`);
}

function sendError(res: ServerResponse, b: ErrorBehaviour) {
  sendJson(res, b.status, b.body ?? { error: { message: `error ${b.status}` } }, b.headers);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}
