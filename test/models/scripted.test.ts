import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelCandidate } from "../../src/definitions/types.js";
import {
  type ChatMessage,
  createModelClient,
  createScriptedClient,
  describeModel,
  type ModelClient,
  ModelError,
  type ModelRequest,
} from "../../src/models/index.js";

const SUPPORT = `# support agent
dialogues:
  - when: "order (?<order_id>\\\\d+)"
    turns:
      - tool_calls:
          - name: orders.lookup
            args: { order_id: "\${order_id}", verbose: true }
      - text: "Order \${order_id} is \${last_tool_result.status}, carrier \${last_tool_result.shipment.carrier}."
  - when: "refund"
    turns:
      - tool_calls:
          - name: payments.refund
            args: '{"order_id": 42,'
  - when: "echo"
    turns:
      - text: "You said: \${input}"
  - turns:
      - text: "I can help with orders."
`;

const candidate: ModelCandidate = {
  provider: "scripted",
  model: "scripted",
  requiresEnv: [],
  location: "local",
  price: { inputPerMTok: 0, outputPerMTok: 0 },
  timeoutMs: 60_000,
  maxRetries: 0,
};

let dir: string;
let model: ModelClient;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "outpost-scripts-"));
  writeFileSync(join(dir, "support.yaml"), SUPPORT);
  model = createModelClient("fast", candidate, { scriptsDir: dir });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function req(messages: ChatMessage[], over: Partial<ModelRequest> = {}): ModelRequest {
  return { agent: "support", messages, tools: [], ...over };
}

async function failure(p: Promise<unknown>): Promise<ModelError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ModelError);
    return e as ModelError;
  }
  throw new Error("expected the call to fail");
}

function writeScript(agent: string, text: string): void {
  writeFileSync(join(dir, `${agent}.yaml`), text);
}

describe("scripted model from files", () => {
  const user: ChatMessage = { role: "user", content: "Where is Order 42 please?" };

  it("selects a dialogue by the latest user message and interpolates named groups", async () => {
    const res = await model.generate(req([{ role: "system", content: "sys" }, user]));
    expect(res.toolCalls).toEqual([{ id: "call_0_0", name: "orders.lookup", arguments: '{"order_id":"42","verbose":true}' }]);
    expect(res.text).toBe("");
    expect(res.finishReason).toBe("tool-calls");
    expect(res.model).toBe("scripted");
  });

  it("plays the next turn after a tool result, reading last_tool_result fields", async () => {
    const res = await model.generate(
      req([
        user,
        { role: "assistant", content: "", toolCalls: [{ id: "call_0_0", name: "orders.lookup", arguments: '{"order_id":"42"}' }] },
        {
          role: "tool",
          toolCallId: "call_0_0",
          toolName: "orders.lookup",
          content: JSON.stringify({ status: "shipped", shipment: { carrier: "DHL" } }),
        },
      ]),
    );
    expect(res.text).toBe("Order 42 is shipped, carrier DHL.");
    expect(res.toolCalls).toEqual([]);
    expect(res.finishReason).toBe("stop");
  });

  it("falls back to the dialogue without `when`, and ${input} is the whole user message", async () => {
    expect((await model.generate(req([{ role: "user", content: "hello there" }]))).text).toBe("I can help with orders.");
    expect((await model.generate(req([{ role: "user", content: "ECHO this" }]))).text).toBe("You said: ECHO this");
  });

  it("selects by the latest user message in a longer session, and ids stay unique across turns", async () => {
    const res = await model.generate(
      req([
        { role: "user", content: "hello" },
        { role: "assistant", content: "I can help with orders." },
        { role: "user", content: "order 7 status?" },
      ]),
    );
    expect(res.toolCalls).toEqual([{ id: "call_1_0", name: "orders.lookup", arguments: '{"order_id":"7","verbose":true}' }]);
  });

  it("sends string args as-is, even when they are not valid JSON", async () => {
    const res = await model.generate(req([{ role: "user", content: "I want a refund" }]));
    expect(res.toolCalls).toEqual([{ id: "call_0_0", name: "payments.refund", arguments: '{"order_id": 42,' }]);
  });

  it("for_each makes one call per element of a list, and passes to the answer when the list is empty", async () => {
    writeScript(
      "restock",
      `dialogues:
  - when: restock
    turns:
      - tool_calls: [{ name: stock.low }]
      - tool_calls:
          - name: stock.order
            for_each: "\${last_tool_result.orders}"
            args: { sku: "\${item.sku}", quantity: "\${item.quantity}", note: "restock of \${item.sku}" }
      - text: "Restocked what was low."
`,
    );
    const low = (orders: unknown[]): ChatMessage[] => [
      { role: "user", content: "restock please" },
      { role: "assistant", content: "", toolCalls: [{ id: "call_0_0", name: "stock.low", arguments: "{}" }] },
      { role: "tool", toolCallId: "call_0_0", toolName: "stock.low", content: JSON.stringify({ orders }) },
    ];
    const two = await model.generate(
      req(
        low([
          { sku: "A-1", quantity: 20 },
          { sku: "B-2", quantity: 5 },
        ]),
        { agent: "restock" },
      ),
    );
    expect(two.toolCalls).toEqual([
      { id: "call_1_0", name: "stock.order", arguments: '{"sku":"A-1","quantity":20,"note":"restock of A-1"}' },
      { id: "call_1_1", name: "stock.order", arguments: '{"sku":"B-2","quantity":5,"note":"restock of B-2"}' },
    ]);
    const none = await model.generate(req(low([]), { agent: "restock" }));
    expect(none).toMatchObject({ text: "Restocked what was low.", toolCalls: [], finishReason: "stop" });
  });

  it("rejects a for_each that is not one reference, and item outside for_each", async () => {
    writeScript(
      "badloop",
      `dialogues:
  - turns:
      - tool_calls:
          - { name: a.b, for_each: "orders: \${last_tool_result.orders}", args: { x: "\${item.x}" } }
          - { name: a.c, args: { x: "\${item.x}" } }
      - text: done
`,
    );
    const e = await failure(model.generate(req([{ role: "user", content: "go" }], { agent: "badloop" })));
    expect(e.message).toMatch(
      /badloop\.yaml:4: dialogues\[0\]\.turns\[0\]\.tool_calls\[0\]\.for_each: for_each is one reference to a list/,
    );
    expect(e.message).toMatch(/tool_calls\[1\]\.args\.x: unknown variable \$\{item\}/);
  });

  it("repeats a text-only last turn past the end of the dialogue", async () => {
    const res = await model.generate(
      req([
        { role: "user", content: "echo hi" },
        { role: "assistant", content: "You said: echo hi" },
      ]),
    );
    expect(res.text).toBe("You said: echo hi");
  });

  it("fails with no_script past the end when the last turn calls tools, naming file and dialogue", async () => {
    const err = await failure(
      model.generate(
        req([
          { role: "user", content: "refund please" },
          { role: "assistant", content: "", toolCalls: [{ id: "call_0_0", name: "payments.refund", arguments: "{" }] },
          { role: "tool", toolCallId: "call_0_0", toolName: "payments.refund", content: "invalid JSON", isError: true },
        ]),
      ),
    );
    expect(err.code).toBe("no_script");
    expect(err.message).toContain("support.yaml");
    expect(err.message).toContain("dialogues[1]");
    expect(err.message).toContain("turn 2");
  });

  it("fails with no_script naming the expected path when the agent has no script", async () => {
    const err = await failure(model.generate(req([user], { agent: "billing" })));
    expect(err.code).toBe("no_script");
    expect(err.message).toContain(join(dir, "billing.yaml"));
    expect(err.message).toContain("dialogues:");
  });

  it("refuses agent names that would escape the scripts folder", async () => {
    const err = await failure(model.generate(req([user], { agent: "../etc/passwd" })));
    expect(err.code).toBe("bad_request");
  });

  it("is deterministic: the same messages give the same answer, even from a fresh client", async () => {
    const messages: ChatMessage[] = [{ role: "system", content: "sys" }, user];
    const a = await model.generate(req(messages));
    const b = await model.generate(req(messages));
    const c = await createModelClient("fast", candidate, { scriptsDir: dir }).generate(req(messages));
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  });

  it("estimates usage as ceil(chars / 4) of prompt and output", async () => {
    const messages: ChatMessage[] = [
      { role: "system", content: "12345" },
      { role: "user", content: "echo abc" },
    ];
    const res = await model.generate(req(messages, { tools: [{ name: "orders.lookup", description: "Look up", inputSchema: {} }] }));
    expect(res.text).toBe("You said: echo abc");
    expect(res.usage).toEqual({
      inputTokens: Math.ceil((5 + 8 + "orders.lookup".length + "Look up".length) / 4),
      outputTokens: Math.ceil("You said: echo abc".length / 4),
    });
  });

  it("streams the text in word chunks that add up to the answer", async () => {
    const deltas: string[] = [];
    const res = await model.generate(
      req([{ role: "user", content: "echo one two three four five six seven" }], { onTextDelta: (d) => deltas.push(d) }),
    );
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join("")).toBe(res.text);
  });

  it("reloads a script when the file changes", async () => {
    writeScript("changing", "dialogues:\n  - turns:\n      - text: first\n");
    const path = join(dir, "changing.yaml");
    utimesSync(path, new Date(1_000_000), new Date(1_000_000));
    expect((await model.generate(req([user], { agent: "changing" }))).text).toBe("first");
    writeScript("changing", "dialogues:\n  - turns:\n      - text: second version\n");
    utimesSync(path, new Date(2_000_000), new Date(2_000_000));
    expect((await model.generate(req([user], { agent: "changing" }))).text).toBe("second version");
  });

  it("describes itself for humans", () => {
    expect(describeModel(model)).toMatch(/^scripted \(offline, deterministic replay of .+\/<agent>\.yaml\)$/);
    expect(describeModel(model, "support")).toMatch(/^scripted \(offline, deterministic replay of .+\/support\.yaml\)$/);
  });
});

describe("script validation with file:line errors", () => {
  async function errorFor(agent: string, text: string): Promise<ModelError> {
    writeScript(agent, text);
    const err = await failure(model.generate(req([{ role: "user", content: "hi" }], { agent })));
    expect(err.code).toBe("bad_request");
    return err;
  }

  it("reports an unknown field at its line", async () => {
    const err = await errorFor(
      "typo",
      ["dialogues:", "  - when: hi", "    turns:", "      - text: hello", "      - tool_call:", "          - name: x"].join("\n"),
    );
    expect(err.message).toContain("typo.yaml:5: dialogues[0].turns[1].tool_call: unknown field");
  });

  it("reports a turn with neither text nor tool_calls", async () => {
    const err = await errorFor("empty-turn", ["dialogues:", "  - turns:", "      - {}"].join("\n"));
    expect(err.message).toMatch(/empty-turn\.yaml:3: dialogues\[0\]\.turns\[0\]: a turn needs `text` or `tool_calls`/);
  });

  it("reports an unknown template variable at its line, listing what is available", async () => {
    const err = await errorFor(
      "badvar",
      ["dialogues:", '  - when: "order (?<order_id>\\\\d+)"', "    turns:", '      - text: "Order ${orderid}"'].join("\n"),
    );
    expect(err.message).toContain("badvar.yaml:4: dialogues[0].turns[0].text: unknown variable ${orderid}");
    expect(err.message).toContain("${order_id}");
  });

  it("reports an invalid regex at its line", async () => {
    const err = await errorFor(
      "badregex",
      ["dialogues:", "  - turns:", "      - text: a", '  - when: "order ("', "    turns:", "      - text: b"].join("\n"),
    );
    expect(err.message).toContain("badregex.yaml:4: dialogues[1].when: invalid regular expression");
  });

  it("reports YAML syntax errors with a line", async () => {
    const err = await errorFor("syntax", ["dialogues:", "  - turns:", '      - text: "unterminated'].join("\n"));
    expect(err.message).toMatch(/syntax\.yaml:3: YAML syntax error/);
  });

  it("reports a missing dialogues list", async () => {
    const err = await errorFor("nodialogues", "turns: []\n");
    expect(err.message).toContain("nodialogues.yaml");
    expect(err.message).toContain("dialogues");
  });
});

describe("createScriptedClient (in code)", () => {
  it("plays a script object for every agent", async () => {
    const m = createScriptedClient("fast", {
      dialogues: [{ when: "hi (?<name>\\w+)", turns: [{ text: "Hello ${name}!" }] }, { turns: [{ text: "?" }] }],
    });
    expect((await m.generate(req([{ role: "user", content: "hi Ada" }], { agent: "anyone" }))).text).toBe("Hello Ada!");
    expect(m.provider).toBe("scripted");
    expect(m.location).toBe("local");
    expect(describeModel(m)).toBe("scripted (offline, deterministic, in-code script)");
  });

  it("plays one script per agent", async () => {
    const m = createScriptedClient("fast", {
      support: { dialogues: [{ turns: [{ text: "support here" }] }] },
      billing: { dialogues: [{ turns: [{ text: "billing here" }] }] },
    });
    expect((await m.generate(req([{ role: "user", content: "x" }], { agent: "billing" }))).text).toBe("billing here");
    const err = await failure(m.generate(req([{ role: "user", content: "x" }], { agent: "sales" })));
    expect(err.code).toBe("no_script");
    expect(err.message).toContain("support, billing");
  });

  it("plays a function of the request, filling ids, usage and finish reason", async () => {
    const m = createScriptedClient("fast", (request) =>
      request.messages.some((x) => x.role === "tool")
        ? "done"
        : {
            toolCalls: [
              { name: "orders.lookup", arguments: { order_id: "1" } },
              { name: "x.y", arguments: "{bad" },
            ],
          },
    );
    const first = await m.generate(req([{ role: "user", content: "go" }]));
    expect(first.toolCalls).toEqual([
      { id: "call_0_0", name: "orders.lookup", arguments: '{"order_id":"1"}' },
      { id: "call_0_1", name: "x.y", arguments: "{bad" },
    ]);
    expect(first.finishReason).toBe("tool-calls");
    expect(first.usage.inputTokens).toBe(1);
    const second = await m.generate(
      req([
        { role: "user", content: "go" },
        { role: "assistant", content: "", toolCalls: first.toolCalls },
        { role: "tool", toolCallId: "call_0_0", toolName: "orders.lookup", content: "{}" },
      ]),
    );
    expect(second.text).toBe("done");
    expect(second.finishReason).toBe("stop");
  });

  it("validates script objects (no line numbers, but the field path)", () => {
    expect(() => createScriptedClient("fast", { dialogues: [{ turns: [{ text: "hi ${nope}" }] }] })).toThrow(
      /in-code script: dialogues\[0\]\.turns\[0\]\.text: unknown variable \$\{nope\}/,
    );
  });

  it("honours an already-aborted signal", async () => {
    const m = createScriptedClient("fast", { dialogues: [{ turns: [{ text: "hi" }] }] });
    const controller = new AbortController();
    controller.abort();
    await expect(m.generate(req([{ role: "user", content: "x" }], { signal: controller.signal }))).rejects.toHaveProperty(
      "name",
      "AbortError",
    );
  });
});
