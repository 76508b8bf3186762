/**
 * Anthropic and Bedrock speak their own wire formats, which the local OpenAI
 * server does not. These tests run the real SDK providers with a `fetch` that
 * records the HTTP request and answers in the provider's format, to check our
 * conversion (tool names, tool results, system messages) end to end.
 */
import { describe, expect, it } from "vitest";
import type { ModelCandidate } from "../../src/definitions/types.js";
import { type ChatMessage, createModelClient, describeModel, ModelError, type ModelRequest } from "../../src/models/index.js";

function recordingFetch(answer: unknown, status = 200) {
  const bodies: any[] = [];
  const urls: string[] = [];
  const fetchFn = (async (url: string | URL | Request, init?: RequestInit) => {
    urls.push(String(url));
    bodies.push(JSON.parse(String(init?.body)));
    return new Response(JSON.stringify(answer), { status, headers: { "content-type": "application/json" } });
  }) as typeof fetch;
  return { fetchFn, bodies, urls };
}

const history: ChatMessage[] = [
  { role: "system", content: "You are support." },
  { role: "user", content: "Refund order 42" },
  { role: "assistant", content: "Checking.", toolCalls: [{ id: "t1", name: "orders.lookup", arguments: '{"order_id":"42"}' }] },
  { role: "tool", toolCallId: "t1", toolName: "orders.lookup", content: "order service unavailable", isError: true },
  { role: "system", content: "Context was compacted." },
  { role: "user", content: "Try again" },
];

const request: ModelRequest = {
  agent: "support",
  messages: history,
  tools: [
    {
      name: "orders.lookup",
      description: "Look up an order",
      inputSchema: { type: "object", properties: { order_id: { type: "string" } } },
    },
  ],
};

function candidate(over: Partial<ModelCandidate>): ModelCandidate {
  return {
    provider: "anthropic",
    model: "claude-test",
    requiresEnv: [],
    location: "external",
    price: { inputPerMTok: 3, outputPerMTok: 15 },
    timeoutMs: 5000,
    maxRetries: 0,
    ...over,
  };
}

describe("anthropic provider", () => {
  it("converts messages and tools, and decodes tool calls", async () => {
    const { fetchFn, bodies } = recordingFetch({
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "claude-test",
      content: [{ type: "tool_use", id: "toolu_1", name: "orders__lookup", input: { order_id: "42" } }],
      stop_reason: "tool_use",
      stop_sequence: null,
      usage: { input_tokens: 30, output_tokens: 7 },
    });
    const client = createModelClient("smart", candidate({}), {
      scriptsDir: "/x",
      env: { ANTHROPIC_API_KEY: "sk-ant-secret" },
      fetch: fetchFn,
    });
    const res = await client.generate(request);
    expect(res.toolCalls).toEqual([{ id: "toolu_1", name: "orders.lookup", arguments: '{"order_id":"42"}' }]);
    expect(res.finishReason).toBe("tool-calls");
    expect(res.usage).toEqual({ inputTokens: 30, outputTokens: 7 });

    const body = bodies[0];
    expect(body.tools.map((t: { name: string }) => t.name)).toEqual(["orders__lookup"]);
    const toolUse = body.messages[1].content.find((c: { type: string }) => c.type === "tool_use");
    expect(toolUse).toMatchObject({ id: "t1", name: "orders__lookup", input: { order_id: "42" } });
    const toolResult = body.messages[2].content.find((c: { type: string }) => c.type === "tool_result");
    expect(toolResult).toMatchObject({ tool_use_id: "t1", is_error: true });
    expect(describeModel(client)).toBe("anthropic claude-test (external)");
  });

  it("fails with auth naming ANTHROPIC_API_KEY when it is unset", async () => {
    const { fetchFn, bodies } = recordingFetch({});
    const client = createModelClient("smart", candidate({}), { scriptsDir: "/x", env: {}, fetch: fetchFn });
    await expect(client.generate(request)).rejects.toMatchObject({ code: "auth", message: expect.stringContaining("ANTHROPIC_API_KEY") });
    expect(bodies).toHaveLength(0);
  });
});

describe("amazon-bedrock provider", () => {
  const env = { AWS_ACCESS_KEY_ID: "AKIAEXAMPLEEXAMPLE00", AWS_SECRET_ACCESS_KEY: "secret-example-key" };

  it("converts messages (later system messages become user text) and decodes tool calls", async () => {
    const { fetchFn, bodies, urls } = recordingFetch({
      output: {
        message: { role: "assistant", content: [{ toolUse: { toolUseId: "tu_1", name: "orders__lookup", input: { order_id: "42" } } }] },
      },
      stopReason: "tool_use",
      usage: { inputTokens: 40, outputTokens: 9, totalTokens: 49 },
    });
    const client = createModelClient(
      "bedrock",
      candidate({ provider: "amazon-bedrock", model: "anthropic.claude-test", region: "eu-west-1" }),
      {
        scriptsDir: "/x",
        env,
        fetch: fetchFn,
      },
    );
    const res = await client.generate(request);
    expect(res.toolCalls).toEqual([{ id: "tu_1", name: "orders.lookup", arguments: '{"order_id":"42"}' }]);
    expect(res.usage).toEqual({ inputTokens: 40, outputTokens: 9 });
    expect(urls[0]).toContain("bedrock-runtime.eu-west-1.amazonaws.com");

    const body = bodies[0];
    expect(body.system).toEqual([{ text: "You are support." }]);
    expect(body.toolConfig.tools[0].toolSpec.name).toBe("orders__lookup");
    expect(JSON.stringify(body.messages)).toContain("Context was compacted.");
    expect(describeModel(client)).toBe("amazon-bedrock anthropic.claude-test in eu-west-1 (external)");
  });

  it("fails clearly without region or credentials", async () => {
    const { fetchFn } = recordingFetch({});
    const noRegion = createModelClient("b", candidate({ provider: "amazon-bedrock", model: "m" }), {
      scriptsDir: "/x",
      env,
      fetch: fetchFn,
    });
    const e1 = await noRegion.generate(request).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ModelError);
    expect((e1 as ModelError).message).toContain("AWS_REGION");
    const noCreds = createModelClient("b", candidate({ provider: "amazon-bedrock", model: "m", region: "us-east-1" }), {
      scriptsDir: "/x",
      env: {},
      fetch: fetchFn,
    });
    await expect(noCreds.generate(request)).rejects.toMatchObject({ code: "auth", message: expect.stringContaining("AWS_ACCESS_KEY_ID") });
  });
});
