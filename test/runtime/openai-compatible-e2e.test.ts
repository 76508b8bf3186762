/**
 * The example project on a "real" model: OUTPOST_LLM_BASE_URL points the Acme
 * `assistant` alias at a local OpenAI-compatible server speaking the real
 * wire format, and the run goes through the AI SDK provider end to end —
 * tool names encoded on the wire, tool results sent back, usage and cost
 * recorded, a 429 retried, malformed arguments fed back to the model.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import { readsData } from "../../src/models/scripted/client.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { httpError, type OpenAIServer, startOpenAIServer, text, toolCalls } from "../helpers/openai-server.js";

describe("Acme on an OpenAI-compatible model", () => {
  let server: OpenAIServer;
  let outpost: Outpost;

  beforeAll(async () => {
    server = await startOpenAIServer();
    const env = { OUTPOST_LLM_BASE_URL: server.url, OUTPOST_LLM_MODEL: "acme-local-7b" };
    const project = await loadProject("test/fixtures/shop", { env });
    outpost = await startOutpost({ project, dataDir: mkdtempSync(join(tmpdir(), "outpost-oai-")), env });
  });
  afterAll(async () => {
    await outpost?.close();
    await server?.close();
  });

  const finish = async (id: string) => {
    for await (const e of outpost.streamEvents(id)) void e;
    return outpost.getRun(id);
  };

  it("uses the local model, not the scripted one, and says so", () => {
    const [support] = outpost.describeModels();
    expect(support.model).toContain("openai-compatible");
    expect(support.model).toContain("acme-local-7b");
  });

  it("runs a tool call over the wire and answers with its result", async () => {
    server.reset();
    server.enqueue(
      httpError(429, { retryAfter: 0 }),
      toolCalls([{ id: "call_a", name: "orders__lookup", arguments: '{"order_id":"1042"}' }]),
      (req) => {
        const toolMessage = req.body.messages.find((m: { role: string }) => m.role === "tool");
        const order = JSON.parse(readsData(toolMessage.content));
        return text(`Order ${order.id} is ${order.status}.`);
      },
    );
    const run = await outpost.startRun({ agent: "support", input: "Where is order 1042?" });
    const done = await finish(run.id);

    expect(done.status).toBe("completed");
    expect(done.output).toBe("Order 1042 is shipped.");
    expect(server.requests).toHaveLength(3); // the 429 was retried
    const first = server.requests[0].body;
    expect(first.model).toBe("acme-local-7b");
    expect(first.messages[0].role).toBe("system");
    expect(first.tools.map((t: { function: { name: string } }) => t.function.name)).toContain("orders__lookup");
    const last = server.requests[2].body;
    const assistant = last.messages.find((m: { role: string }) => m.role === "assistant");
    expect(assistant.tool_calls[0]).toMatchObject({ id: "call_a", function: { name: "orders__lookup" } });
    expect(last.messages.at(-1)).toMatchObject({ role: "tool", tool_call_id: "call_a" });

    const events = await outpost.getEvents(run.id);
    const called = events.find((e) => e.type === "tool.called");
    expect(called?.data).toMatchObject({ tool: "orders.lookup", arguments: { order_id: "1042" } });
    expect(done.usage.input_tokens).toBeGreaterThan(0);
  });

  it("feeds malformed tool arguments back to the model, which then corrects itself", async () => {
    server.reset();
    server.enqueue(
      toolCalls([{ id: "call_bad", name: "orders__lookup", arguments: '{"order_id": 10' }]),
      (req) => {
        const feedback = req.body.messages.at(-1);
        expect(feedback).toMatchObject({ role: "tool", tool_call_id: "call_bad" });
        expect(feedback.content).toContain("not valid JSON");
        return toolCalls([{ id: "call_ok", name: "orders__lookup", arguments: '{"order_id":"1041"}' }]);
      },
      text("Found it."),
    );
    const run = await outpost.startRun({ agent: "support", input: "Where is order 1041?" });
    const done = await finish(run.id);
    expect(done.status).toBe("completed");
    const results = (await outpost.getEvents(run.id)).filter((e) => e.type === "tool.completed").map((e) => e.data);
    expect(results[0]).toMatchObject({ is_error: true, model_error: true });
    expect(results[1]).toMatchObject({ is_error: false });
  });
});
