import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { initProject, loadProject, selectCandidate, type ToolContext } from "../../src/definitions/index.js";
import { tempDir } from "./fixtures.js";

const SHOP = path.resolve("test/fixtures/shop");

async function context(): Promise<ToolContext> {
  return {
    runId: "run-1",
    sessionId: "session-1",
    agent: "support",
    workspace: "acme",
    rootRunId: "run-1",
    dataDir: await tempDir(),
    signal: new AbortController().signal,
  };
}

interface Script {
  dialogues: Array<{ when?: string; turns: Array<{ text?: string; tool_calls?: Array<{ name: string }> }> }>;
}

describe("test/fixtures/shop", () => {
  it("loads: one support agent, three tools, the refund needing approval", async () => {
    const project = await loadProject(SHOP, { env: {} });
    expect(project.workspace).toBe("acme");
    expect([...project.tools.keys()].sort()).toEqual(["orders.lookup", "orders.refund", "tickets.add_note"]);
    const support = project.agents.get("support");
    expect(support?.model).toBe("assistant");
    expect(support?.tools).toEqual([
      { name: "orders.lookup" },
      { name: "tickets.add_note" },
      { name: "orders.refund", approval: "required" },
    ]);
    expect(project.tools.get("orders.refund")?.approval).toBe("required");
    expect(project.scriptsDir).toBe(path.join(SHOP, "scripts"));
  });

  it("runs on the scripted model offline, on a local server or OpenAI when configured", async () => {
    const offline = await loadProject(SHOP, { env: {} });
    expect(selectCandidate(offline.models.get("assistant") as never, {}).provider).toBe("scripted");

    const localEnv = { OUTPOST_LLM_BASE_URL: "http://localhost:11434/v1" };
    const local = selectCandidate((await loadProject(SHOP, { env: localEnv })).models.get("assistant") as never, localEnv);
    expect(local).toMatchObject({ provider: "openai-compatible", model: "llama3.1", location: "local" });
    expect(local.baseUrl).toBe("http://localhost:11434/v1");

    const cloudEnv = { OPENAI_API_KEY: "sk-test", ...localEnv };
    const cloud = selectCandidate((await loadProject(SHOP, { env: cloudEnv })).models.get("assistant") as never, cloudEnv);
    expect(cloud).toMatchObject({ provider: "openai", model: "gpt-4.1-mini", location: "external" });
  });

  it("looks orders up from data/orders.json", async () => {
    const project = await loadProject(SHOP, { env: {} });
    const lookup = project.tools.get("orders.lookup");
    const ctx = await context();
    const found = await lookup?.handler({ input: { order_id: "1042" }, context: ctx, idempotencyKey: "k" });
    expect(found).toMatchObject({ found: true, id: "1042", status: "shipped", carrier: "UPS", total: 168 });
    const missing = await lookup?.handler({ input: { order_id: "9999" }, context: ctx, idempotencyKey: "k" });
    expect(missing).toMatchObject({ found: false, status: "not found" });
  });

  it("refunds once per idempotency key and refuses a second refund of the same order", async () => {
    const project = await loadProject(SHOP, { env: {} });
    const refund = project.tools.get("orders.refund");
    const ctx = await context();
    const call = (key: string) => refund?.handler({ input: { order_id: "1042", reason: "late" }, context: ctx, idempotencyKey: key });

    const first = await call("call-1");
    const retry = await call("call-1");
    expect(first).toMatchObject({ refunded: true, duplicate: false, amount: 168, order_id: "1042" });
    expect(retry).toMatchObject({ duplicate: true, refund_id: (first as { refund_id: string }).refund_id });
    await expect(call("call-2")).rejects.toThrow("order 1042 was already refunded");

    const ledger = await readFile(path.join(ctx.dataDir, "acme", "refunds.jsonl"), "utf8");
    expect(ledger.trim().split("\n")).toHaveLength(1);
    await expect(refund?.handler({ input: { order_id: "1041", reason: "x" }, context: ctx, idempotencyKey: "k" })).rejects.toThrow(
      "only shipped, delivered or lost orders can be refunded",
    );
  });

  it("adds ticket notes once per idempotency key", async () => {
    const project = await loadProject(SHOP, { env: {} });
    const addNote = project.tools.get("tickets.add_note");
    const ctx = await context();
    const input = { ticket_id: "77", note: "customer called back" };
    await addNote?.handler({ input, context: ctx, idempotencyKey: "n-1" });
    const again = await addNote?.handler({ input, context: ctx, idempotencyKey: "n-1" });
    await addNote?.handler({ input, context: ctx, idempotencyKey: "n-2" });
    expect(again).toMatchObject({ saved: true, duplicate: true });
    const lines = (await readFile(path.join(ctx.dataDir, "acme", "ticket-notes.jsonl"), "utf8")).trim().split("\n");
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({ ticket_id: "77", note: "customer called back", idempotency_key: "n-1" }),
      expect.objectContaining({ idempotency_key: "n-2" }),
    ]);
  });

  it("ships a script whose dialogues route the README's requests and call only known tools", async () => {
    const project = await loadProject(SHOP, { env: {} });
    const script = parse(await readFile(path.join(project.scriptsDir, "support.yaml"), "utf8")) as Script;
    const route = (message: string) =>
      script.dialogues.find((dialogue) => dialogue.when === undefined || new RegExp(dialogue.when, "i").test(message));
    const toolsOf = (message: string) => route(message)?.turns.flatMap((turn) => (turn.tool_calls ?? []).map((call) => call.name));

    expect(toolsOf("Where is order 1042?")).toEqual(["orders.lookup"]);
    expect(toolsOf("Please refund order 1042")).toEqual(["orders.lookup", "orders.refund"]);
    expect(toolsOf("Add a note to ticket 77: customer called back")).toEqual(["tickets.add_note"]);
    expect(route("hello")?.when).toBeUndefined();
    const groups = new RegExp(route("add a note to ticket 77: call back")?.when ?? "", "i").exec(
      "add a note to ticket 77: call back",
    )?.groups;
    expect(groups).toEqual({ ticket_id: "77", note: "call back" });
    for (const dialogue of script.dialogues) {
      for (const turn of dialogue.turns) {
        for (const call of turn.tool_calls ?? []) expect(project.tools.has(call.name)).toBe(true);
      }
    }
  });
});

describe("initProject", () => {
  it("scaffolds a project that loads, with a tool importing outpost and zod from outside the repo", async () => {
    const dir = path.join(await tempDir(), "My Agents");
    const created = await initProject(dir);
    expect(created.sort()).toEqual([
      ".gitignore",
      "README.md",
      "agents/helper.yaml",
      "outpost.yaml",
      "package.json",
      "scripts/helper.yaml",
      "tools/clock.ts",
    ]);
    const tool = await readFile(path.join(dir, "tools/clock.ts"), "utf8");
    expect(tool).toContain('from "outpost"');
    expect(tool).toContain('from "zod"');

    const project = await loadProject(dir, { env: {} });
    expect(project.workspace).toBe("my-agents");
    expect(project.agents.get("helper")?.tools).toEqual([{ name: "clock.now" }]);
    expect(selectCandidate(project.models.get("assistant") as never, {}).provider).toBe("scripted");
    expect(selectCandidate(project.models.get("assistant") as never, { OPENAI_API_KEY: "sk" }).provider).toBe("openai");

    const clock = project.tools.get("clock.now");
    const result = await clock?.handler({
      input: clock.input.parse({ timezone: "Europe/Paris" }),
      context: await context(),
      idempotencyKey: "k",
    });
    expect(result).toMatchObject({ timezone: "Europe/Paris", iso: expect.any(String) });

    const script = parse(await readFile(path.join(project.scriptsDir, "helper.yaml"), "utf8")) as Script;
    expect(new RegExp(script.dialogues[0].when ?? "", "i").test("What time is it?")).toBe(true);
    expect(script.dialogues[0].turns[0].tool_calls?.[0].name).toBe("clock.now");
  });

  it("uses the given workspace name", async () => {
    const dir = await tempDir();
    await initProject(dir, { name: "acme-ops" });
    expect((await loadProject(dir, { env: {} })).workspace).toBe("acme-ops");
  });

  it("refuses a folder that is not empty, and a bad name, writing nothing", async () => {
    const dir = await tempDir();
    await initProject(dir);
    await expect(initProject(dir)).rejects.toMatchObject({
      code: "conflict",
      message: expect.stringContaining(`${dir} is not empty`),
    });
    const other = path.join(await tempDir(), "x");
    await expect(initProject(other, { name: "Acme Corp" })).rejects.toThrow('"Acme Corp" is not a valid workspace name');
    await expect(readFile(path.join(other, "outpost.yaml"))).rejects.toThrow();
  });
});
