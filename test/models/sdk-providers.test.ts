/**
 * The AI SDK providers against a real OpenAI-compatible HTTP server (no SDK
 * mocks): the same suite runs for `openai-compatible` and for `openai` with
 * its baseUrl pointed at the local server.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ModelCandidate } from "../../src/definitions/types.js";
import {
  type ChatMessage,
  costUsd,
  createModelClient,
  describeModel,
  type ModelClient,
  ModelError,
  type ModelRequest,
  type ToolSpec,
} from "../../src/models/index.js";
import { disconnect, hang, httpError, type OpenAIServer, startOpenAIServer, text, toolCalls } from "../helpers/openai-server.js";

const KEY = "sk-test-secret-key-0123456789";
const env = { TEST_KEY: KEY };

const lookup: ToolSpec = {
  name: "orders.lookup",
  description: "Look up an order",
  inputSchema: { type: "object", properties: { order_id: { type: "string" } }, required: ["order_id"] },
};
const refund: ToolSpec = {
  name: "payments.refund",
  description: "Refund an order",
  inputSchema: { type: "object", properties: { order_id: { type: "string" } } },
};

function request(over: Partial<ModelRequest> = {}): ModelRequest {
  return {
    agent: "support",
    messages: [
      { role: "system", content: "You are a support agent." },
      { role: "user", content: "Where is order 42?" },
    ],
    tools: [lookup, refund],
    ...over,
  };
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to fail");
}

let server: OpenAIServer;
beforeAll(async () => {
  server = await startOpenAIServer({ apiKey: KEY });
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

describe.each(["openai-compatible", "openai"] as const)("%s provider", (provider) => {
  function client(over: Partial<ModelCandidate> = {}, clientEnv: NodeJS.ProcessEnv = env): ModelClient {
    const candidate: ModelCandidate = {
      provider,
      model: "test-model",
      baseUrl: server.url,
      apiKeyEnv: "TEST_KEY",
      requiresEnv: [],
      location: "local",
      price: { inputPerMTok: 1, outputPerMTok: 2 },
      timeoutMs: 10_000,
      maxRetries: 2,
      ...over,
    };
    return createModelClient("fast", candidate, { scriptsDir: "/nonexistent", env: clientEnv });
  }

  it("answers with text (non-streaming) and reports usage, finish reason and model", async () => {
    server.enqueue(text("Order 42 has shipped.", { usage: { promptTokens: 120, completionTokens: 8 }, model: "test-model-2025" }));
    const res = await client().generate(request());
    expect(res.text).toBe("Order 42 has shipped.");
    expect(res.toolCalls).toEqual([]);
    expect(res.finishReason).toBe("stop");
    expect(res.usage).toEqual({ inputTokens: 120, outputTokens: 8 });
    expect(res.model).toBe("test-model-2025");

    expect(server.requests).toHaveLength(1);
    const wire = server.requests[0];
    expect(wire.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(wire.body.model).toBe("test-model");
    expect(wire.body.stream).not.toBe(true);
    expect(wire.body.messages).toEqual([
      { role: "system", content: "You are a support agent." },
      { role: "user", content: "Where is order 42?" },
    ]);
  });

  it("streams text deltas when onTextDelta is given", async () => {
    server.enqueue(text("Your order is on its way to you.", { usage: { promptTokens: 50, completionTokens: 9 } }));
    const deltas: string[] = [];
    const res = await client().generate(request({ onTextDelta: (d) => deltas.push(d) }));
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join("")).toBe("Your order is on its way to you.");
    expect(res.text).toBe("Your order is on its way to you.");
    expect(res.usage).toEqual({ inputTokens: 50, outputTokens: 9 });
    expect(res.finishReason).toBe("stop");
    expect(server.requests[0].body.stream).toBe(true);
    expect(server.requests[0].body.stream_options).toEqual({ include_usage: true });
  });

  it("encodes dotted tool names on the wire and decodes them in tool calls, keeping raw arguments", async () => {
    const raw = '{ "order_id" :  "42" }';
    server.enqueue(toolCalls([{ id: "call_a", name: "orders__lookup", arguments: raw }]));
    const res = await client().generate(request());
    expect(res.toolCalls).toEqual([{ id: "call_a", name: "orders.lookup", arguments: raw }]);
    expect(res.finishReason).toBe("tool-calls");

    const tools = server.requests[0].body.tools as Array<{
      type: string;
      function: { name: string; description: string; parameters: unknown };
    }>;
    expect(tools.map((t) => t.function.name)).toEqual(["orders__lookup", "payments__refund"]);
    expect(tools[0]).toMatchObject({ type: "function", function: { description: "Look up an order", parameters: lookup.inputSchema } });
    for (const t of tools) expect(t.function.name).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
  });

  it("assembles streamed tool-call argument deltas into the raw text", async () => {
    const raw = '{"order_id": "42", "note": "split across many chunks"}';
    server.enqueue(
      toolCalls([
        { id: "call_1", name: "orders__lookup", arguments: raw },
        { id: "call_2", name: "payments__refund", arguments: '{"order_id":"42"}' },
      ]),
    );
    const res = await client().generate(request({ onTextDelta: () => {} }));
    expect(res.toolCalls).toEqual([
      { id: "call_1", name: "orders.lookup", arguments: raw },
      { id: "call_2", name: "payments.refund", arguments: '{"order_id":"42"}' },
    ]);
    expect(res.finishReason).toBe("tool-calls");
  });

  it.each([false, true])("returns malformed argument JSON and invented tool names raw (streaming: %s)", async (streaming) => {
    server.enqueue(
      toolCalls([
        { id: "call_bad", name: "orders__lookup", arguments: '{"order_id": 42,' },
        { id: "call_new", name: "crm__delete_everything", arguments: "{}" },
      ]),
    );
    const res = await client().generate(request(streaming ? { onTextDelta: () => {} } : {}));
    expect(res.toolCalls).toEqual([
      { id: "call_bad", name: "orders.lookup", arguments: '{"order_id": 42,' },
      { id: "call_new", name: "crm.delete_everything", arguments: "{}" },
    ]);
  });

  it("sends assistant tool calls and tool results (including errors) back in the wire format", async () => {
    const history: ChatMessage[] = [
      { role: "system", content: "sys" },
      { role: "user", content: "Refund order 42" },
      {
        role: "assistant",
        content: "",
        toolCalls: [
          { id: "c1", name: "orders.lookup", arguments: '{"order_id":"42"}' },
          { id: "c2", name: "payments.refund", arguments: '{"order_id":' },
        ],
      },
      { role: "tool", toolCallId: "c1", toolName: "orders.lookup", content: '{"status":"delivered"}' },
      { role: "tool", toolCallId: "c2", toolName: "payments.refund", content: "arguments are not valid JSON", isError: true },
    ];
    server.enqueue(text("Done."));
    await client().generate(request({ messages: history }));
    const messages = server.requests[0].body.messages as any[];
    expect(messages[0]).toEqual({ role: "system", content: "sys" });
    expect(messages[1]).toEqual({ role: "user", content: "Refund order 42" });
    expect(messages[2].role).toBe("assistant");
    expect(messages[2].tool_calls).toEqual([
      { id: "c1", type: "function", function: { name: "orders__lookup", arguments: '{"order_id":"42"}' } },
      // malformed arguments cannot be replayed verbatim through the SDK: they go back as {}
      { id: "c2", type: "function", function: { name: "payments__refund", arguments: "{}" } },
    ]);
    expect(messages[3]).toEqual({ role: "tool", tool_call_id: "c1", content: '{"status":"delivered"}' });
    expect(messages[4]).toEqual({ role: "tool", tool_call_id: "c2", content: "arguments are not valid JSON" });
    expect(messages).toHaveLength(5);
  });

  it("retries a 429 (honouring Retry-After) and then succeeds", async () => {
    server.enqueue(httpError(429, { retryAfter: 0 }), text("ok"));
    const res = await client().generate(request());
    expect(res.text).toBe("ok");
    expect(server.requests).toHaveLength(2);
  });

  it("retries a 5xx with backoff and then succeeds (streaming too)", async () => {
    server.enqueue(httpError(503), text("recovered"));
    const res = await client().generate(request({ onTextDelta: () => {} }));
    expect(res.text).toBe("recovered");
    expect(server.requests).toHaveLength(2);
  });

  it("gives up after maxRetries with a server_error", async () => {
    server.enqueue(httpError(500, { retryAfter: 0 }), httpError(500, { retryAfter: 0 }), text("too late"));
    const err = await failure(client({ maxRetries: 1 }).generate(request()));
    expect(err).toBeInstanceOf(ModelError);
    expect((err as ModelError).code).toBe("server_error");
    expect((err as ModelError).retryable).toBe(true);
    expect((err as ModelError).message).toContain("2 attempts");
    expect(server.requests).toHaveLength(2);
  });

  it("does not wait out a Retry-After longer than the call may take: rate_limited at once", async () => {
    server.enqueue(httpError(429, { retryAfter: 3600 }), text("never"));
    const err = await failure(client().generate(request()));
    expect((err as ModelError).code).toBe("rate_limited");
    expect((err as ModelError).retryable).toBe(true);
    expect(server.requests).toHaveLength(1);
  });

  it("does not retry a 400: bad_request with the provider's message", async () => {
    server.enqueue(httpError(400, { message: "messages: too many tokens" }), text("never"));
    const err = await failure(client().generate(request()));
    expect((err as ModelError).code).toBe("bad_request");
    expect((err as ModelError).retryable).toBe(false);
    expect((err as ModelError).message).toContain("too many tokens");
    expect(server.requests).toHaveLength(1);
  });

  it("maps a 401 to auth, names the env var, and never shows the key", async () => {
    const wrong = "sk-wrong-key-abcdefghijklmnop";
    const err = await failure(client({}, { TEST_KEY: wrong }).generate(request()));
    expect(err).toBeInstanceOf(ModelError);
    expect((err as ModelError).code).toBe("auth");
    expect((err as ModelError).message).toContain("TEST_KEY");
    expect((err as ModelError).message).not.toContain(wrong);
    expect((err as ModelError).message).not.toContain(KEY);
    expect(server.requests).toHaveLength(1);
  });

  it("fails with auth, without calling the server, when the API key variable is unset", async () => {
    const err = await failure(client({}, {}).generate(request()));
    expect((err as ModelError).code).toBe("auth");
    expect((err as ModelError).message).toContain("TEST_KEY");
    expect(server.requests).toHaveLength(0);
  });

  it.each([false, true])("aborts a hung request at the timeout (streaming: %s)", async (streaming) => {
    server.enqueue(streaming ? hang("partial answer then silence") : hang());
    const err = await failure(client({ timeoutMs: 300 }).generate(request(streaming ? { onTextDelta: () => {} } : {})));
    expect(err).toBeInstanceOf(ModelError);
    expect((err as ModelError).code).toBe("timeout");
    expect((err as ModelError).message).toContain("timeoutMs");
    expect(server.requests).toHaveLength(1);
  });

  it("is cancelled by request.signal: the request is aborted, the error is the abort reason", async () => {
    server.enqueue(hang());
    const controller = new AbortController();
    const pending = client().generate(request({ signal: controller.signal }));
    while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    const err = await failure(pending);
    expect(err).not.toBeInstanceOf(ModelError);
    expect((err as Error).name).toBe("AbortError");
  });

  it("retries a dropped connection as a network error, then surfaces network", async () => {
    server.enqueue(disconnect(), text("after reconnect"));
    const res = await client().generate(request());
    expect(res.text).toBe("after reconnect");
    expect(server.requests).toHaveLength(2);

    server.reset();
    server.enqueue(disconnect());
    const err = await failure(client({ maxRetries: 0 }).generate(request()));
    expect((err as ModelError).code).toBe("network");
    expect((err as ModelError).retryable).toBe(true);
  });

  it("computes cost from provider usage and the candidate's price", async () => {
    server.enqueue(text("hi", { usage: { promptTokens: 1_000_000, completionTokens: 500_000 } }));
    const c = client();
    const res = await c.generate(request());
    expect(costUsd(res.usage, c.price)).toBeCloseTo(1 * 1 + 0.5 * 2);
  });

  it("describes itself for humans", () => {
    expect(describeModel(client())).toBe(`${provider} test-model at ${server.url} (local)`);
  });
});

describe("openai-compatible without credentials (Ollama, vLLM, llama.cpp)", () => {
  it("needs no API key and sends extra headers", async () => {
    const open = await startOpenAIServer();
    try {
      open.enqueue(text("local answer"));
      const c = createModelClient(
        "local",
        {
          provider: "openai-compatible",
          model: "llama3.1",
          baseUrl: open.url,
          headers: { "x-tenant": "acme" },
          requiresEnv: [],
          location: "local",
          price: { inputPerMTok: 0, outputPerMTok: 0 },
          timeoutMs: 5000,
          maxRetries: 0,
        },
        { scriptsDir: "/nonexistent", env: {} },
      );
      const res = await c.generate(request({ tools: [] }));
      expect(res.text).toBe("local answer");
      expect(open.requests[0].headers["x-tenant"]).toBe("acme");
      expect(open.requests[0].headers.authorization).toBeUndefined();
      expect(open.requests[0].body.tools).toBeUndefined();
    } finally {
      await open.close();
    }
  });

  it("reports an unreachable server as a network error naming the URL", async () => {
    const closed = await startOpenAIServer();
    const url = closed.url;
    await closed.close();
    const c = createModelClient(
      "local",
      {
        provider: "openai-compatible",
        model: "llama3.1",
        baseUrl: url,
        requiresEnv: [],
        location: "local",
        price: { inputPerMTok: 0, outputPerMTok: 0 },
        timeoutMs: 5000,
        maxRetries: 0,
      },
      { scriptsDir: "/nonexistent", env: {} },
    );
    const err = await failure(c.generate(request()));
    expect((err as ModelError).code).toBe("network");
    expect((err as ModelError).message).toContain(url);
  });

  it("rejects a candidate without baseUrl with a fix in the message", () => {
    expect(() =>
      createModelClient(
        "local",
        {
          provider: "openai-compatible",
          model: "llama3.1",
          requiresEnv: [],
          location: "local",
          price: { inputPerMTok: 0, outputPerMTok: 0 },
          timeoutMs: 5000,
          maxRetries: 0,
        },
        { scriptsDir: "/nonexistent", env: {} },
      ),
    ).toThrow(/needs a baseUrl/);
  });
});
