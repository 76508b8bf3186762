/**
 * Telemetry from run events: spans exported over real OTLP/HTTP (JSON) to an in-process receiver, and the
 * Prometheus text of the same run's metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Telemetry } from "../../src/telemetry/otel.js";
import { type RunMeta, runSpanIdOf, traceIdOf } from "../../src/telemetry/spans.js";
import { attr, type OtlpSpan, type Receiver, startReceiver } from "./receiver.js";

let receiver: Receiver;
let url: string;
beforeAll(async () => {
  receiver = await startReceiver();
  url = receiver.url;
});
afterAll(() => receiver.close());

const SECRET = "sk-live-4242424242";
const meta = (over: Partial<RunMeta>): RunMeta => ({
  id: "run_parent",
  workspace: "acme",
  agent: "support",
  sessionId: "ses_1",
  rootRunId: "run_parent",
  parentRunId: null,
  parentCallId: null,
  createdAt: 1_000,
  inputTokens: 0,
  outputTokens: 0,
  costUsd: 0,
  ...over,
});

const spansOf = () => receiver.spans();

describe("telemetry", () => {
  it("exports GenAI spans for a delegation tree over OTLP/HTTP, child nested under the delegating call, no secret", async () => {
    const t = new Telemetry({ endpoint: url, env: {} }, { redact: (s) => s.replaceAll(SECRET, "[secret]"), providerOf: () => "openai" });
    expect(t.tracing).toBe(true);
    t.claim(meta({}));
    t.observe("run_parent", "model.called", { step: 1, model: "gpt-4.1-mini" }, 1_100);
    t.observe(
      "run_parent",
      "model.responded",
      {
        step: 1,
        text: `use ${SECRET}`,
        tool_calls: [{ id: "c1" }],
        usage: { input_tokens: 120, output_tokens: 30 },
        cost_usd: 0.002,
        model: "gpt-4.1-mini",
        finish_reason: "tool-calls",
      },
      1_400,
    );
    t.observe(
      "run_parent",
      "tool.called",
      { call_id: "c1", tool: "delegate_to_refunds", arguments: { k: SECRET }, idempotency_key: "k1" },
      1_400,
    );
    t.claim(meta({ id: "run_child", agent: "refunds", parentRunId: "run_parent", parentCallId: "c1", createdAt: 1_450 }));
    t.observe("run_child", "model.called", { step: 1, model: "gpt-4.1-mini" }, 1_500);
    t.observe("run_child", "model.failed", { step: 1, error: { code: "rate_limited", message: `provider said no to ${SECRET}` } }, 1_600);
    t.observe("run_child", "run.failed", { error: { code: "model_failed", message: `gave up after ${SECRET}` } }, 1_700);
    t.observe("run_parent", "tool.completed", { call_id: "c1", tool: "delegate_to_refunds", output: SECRET, is_error: true }, 1_800);
    t.observe("run_parent", "run.completed", { output: "done" }, 1_900);
    t.observe("run_other", "model.called", { step: 1, model: "x" }, 1_900); // never claimed: ignored
    await t.flush();
    await t.shutdown();

    const spans = spansOf();
    expect(spans.map((s) => s.name).sort()).toEqual([
      "chat gpt-4.1-mini",
      "chat gpt-4.1-mini",
      "execute_tool delegate_to_refunds",
      "invoke_agent refunds",
      "invoke_agent support",
    ]);
    expect(JSON.stringify(receiver.bodies)).not.toContain(SECRET);
    const trace = traceIdOf("run_parent");
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([trace]));
    const byName = (n: string) => spans.filter((s) => s.name === n);
    const root = byName("invoke_agent support")[0];
    expect(root.spanId).toBe(runSpanIdOf("run_parent"));
    expect(root.parentSpanId ?? "").toBe("");
    expect(attr(root, "gen_ai.operation.name")).toBe("invoke_agent");
    expect(attr(root, "gen_ai.conversation.id")).toBe("ses_1");
    expect(Number(attr(root, "gen_ai.usage.input_tokens"))).toBe(120);
    expect(root.startTimeUnixNano).toBe(String(1_000 * 1e6));
    expect(root.endTimeUnixNano).toBe(String(1_900 * 1e6));
    const tool = byName("execute_tool delegate_to_refunds")[0];
    expect(tool.parentSpanId).toBe(root.spanId);
    expect(attr(tool, "gen_ai.tool.call.id")).toBe("c1");
    expect(attr(tool, "outpost.child_run.id")).toBeUndefined(); // no delegation.started in this log
    const child = byName("invoke_agent refunds")[0];
    expect(child.parentSpanId).toBe(tool.spanId);
    expect(child.status?.code).toBe(2); // ERROR
    expect(attr(child, "error.type")).toBe("model_failed");
    const chats = byName("chat gpt-4.1-mini");
    const parentChat = chats.find((s) => s.parentSpanId === root.spanId) as OtlpSpan;
    expect(parentChat.kind).toBe(3); // CLIENT
    expect(attr(parentChat, "gen_ai.provider.name")).toBe("openai");
    expect(Number(attr(parentChat, "gen_ai.usage.output_tokens"))).toBe(30);
    expect(attr(parentChat, "gen_ai.request.model")).toBe("gpt-4.1-mini");
    expect(chats.find((s) => s.parentSpanId === child.spanId)?.status?.code).toBe(2);
  });

  it("sends nothing when no endpoint is configured, and /metrics text holds only the caller's workspace", async () => {
    const before = receiver.bodies.length;
    const t = new Telemetry(
      { env: {} },
      {
        redact: (s) => s,
        activeRuns: async () => [
          { workspace: "acme", status: "waiting", count: 3 },
          { workspace: "globex", status: "queued", count: 9 },
        ],
      },
    );
    expect(t.tracing).toBe(false);
    expect(t.endpoint).toBeNull();
    for (const [ws, agent] of [
      ["acme", "support"],
      ["globex", "spy"],
    ] as const) {
      const id = `run_${ws}`;
      t.claim(meta({ id, rootRunId: id, workspace: ws, agent }));
      t.observe(id, "model.called", { step: 1, model: "scripted" }, 1_000);
      t.observe(
        id,
        "model.responded",
        {
          step: 1,
          text: "",
          tool_calls: [],
          usage: { input_tokens: 10, output_tokens: 5 },
          cost_usd: 0.25,
          model: "scripted",
          finish_reason: "stop",
        },
        1_500,
      );
      t.observe(id, "run.completed", { output: "" }, 2_000);
    }
    const text = await t.prometheusText("acme");
    await t.shutdown();
    expect(receiver.bodies.length).toBe(before);
    expect(text).not.toContain("globex");
    expect(text).not.toContain("spy");
    // Every sample line is `name{labels} value`.
    const samples = text.split("\n").filter((l) => l && !l.startsWith("#"));
    for (const l of samples) expect(l).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? -?[0-9.e+-]+|NaN|\+Inf$/);
    const value = (prefix: string) => samples.filter((l) => l.startsWith(prefix)).map((l) => Number(l.split(" ").at(-1)));
    expect(value("outpost_runs_finished_total")).toEqual([1]);
    expect(value("outpost_steps_total")).toEqual([1]);
    expect(value("outpost_tokens_total").sort((a, b) => a - b)).toEqual([5, 10]);
    expect(value("outpost_cost_usd_total")).toEqual([0.25]);
    expect(value("outpost_runs_active")).toEqual([3]);
    expect(samples.some((l) => l.startsWith("gen_ai_client_operation_duration_bucket"))).toBe(true);
  });
});
