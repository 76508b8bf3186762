/**
 * The OpenAI-compatible endpoint, driven by the official `openai` client (unchanged) against a
 * running Outpost over real HTTP: agents of a scripted-model project appear as models.
 */
import { rm } from "node:fs/promises";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventView, RunView } from "../../src/core/api.js";
import { TEST_ADMIN_KEY } from "../helpers/auth.js";
import { delegationProject, http, protocolProject, type Stack, startStack, terminal, waitForRun } from "./helpers.js";

let stack: Stack;
let root: string;
let openai: OpenAI;

beforeAll(async () => {
  const p = await protocolProject();
  root = p.root;
  stack = await startStack({ project: p.project });
  openai = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: TEST_ADMIN_KEY, maxRetries: 0 });
});
afterAll(async () => {
  // Failed runs are answers, not server faults: nothing is logged as an error.
  expect(stack?.logs.lines.filter((l) => l.level >= 50)).toEqual([]);
  await stack?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

const getRun = async (id: string) => (await http<RunView>(stack.url, "GET", `/v1/runs/${id}`)).body;
const getEvents = async (id: string) => (await http<EventView[]>(stack.url, "GET", `/v1/runs/${id}/events`)).body;

describe("models", () => {
  it("lists every agent as a model", async () => {
    const ids: string[] = [];
    for await (const model of openai.models.list()) {
      expect(model).toMatchObject({ object: "model", owned_by: "outpost", created: expect.any(Number) });
      ids.push(model.id);
    }
    expect(ids.sort()).toEqual(["back-office", "broken", "echo-bot", "gatekeeper", "sleeper"]);
  });

  it("retrieves one agent as a model, and an unknown one is NotFoundError", async () => {
    expect(await openai.models.retrieve("echo-bot")).toMatchObject({ id: "echo-bot", object: "model" });
    await expect(openai.models.retrieve("nobody")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe("chat completions", () => {
  it("answers with the run's output, usage and the run and session in headers", async () => {
    const { data, response } = await openai.chat.completions
      .create({ model: "echo-bot", messages: [{ role: "user", content: "hello there" }] })
      .withResponse();
    expect(data.object).toBe("chat.completion");
    expect(data.model).toBe("echo-bot");
    expect(data.choices).toHaveLength(1);
    expect(data.choices[0].message).toMatchObject({ role: "assistant", content: "You said: hello there" });
    expect(data.choices[0].finish_reason).toBe("stop");

    const runId = response.headers.get("x-outpost-run") as string;
    const run = await getRun(runId);
    expect(run).toMatchObject({ status: "completed", agent: "echo-bot", input: "hello there", output: "You said: hello there" });
    expect(response.headers.get("x-outpost-session")).toBe(run.session_id);
    expect(data.id).toBe(`chatcmpl-${runId}`);
    expect(data.usage).toEqual({
      prompt_tokens: run.usage.input_tokens,
      completion_tokens: run.usage.output_tokens,
      total_tokens: run.usage.input_tokens + run.usage.output_tokens,
    });
    expect(data.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it("streams chunks that assemble into the run's output, then a usage chunk", async () => {
    const { data: stream, response } = await openai.chat.completions
      .create({
        model: "echo-bot",
        messages: [{ role: "user", content: "stream a few words back to me please" }],
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.model === "echo-bot")).toBe(true);
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    const finishes = chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter((f) => f !== null);
    expect(finishes).toEqual(["stop"]);
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);

    const runId = response.headers.get("x-outpost-run") as string;
    const run = await getRun(runId);
    expect(text).toBe(run.output);
    expect(text).toBe("You said: stream a few words back to me please");
    expect(last.usage).toMatchObject({ prompt_tokens: run.usage.input_tokens, completion_tokens: run.usage.output_tokens });
    const listed = (await http<{ items: RunView[] }>(stack.url, "GET", "/v1/runs?agent=echo-bot")).body.items;
    expect(listed.map((r) => r.id)).toContain(runId);
  });

  it("passes earlier messages and the caller's instructions as the run's context", async () => {
    const { response } = await openai.chat.completions
      .create({
        model: "echo-bot",
        messages: [
          { role: "system", content: "Be terse." },
          { role: "user", content: "My name is Ada." },
          { role: "assistant", content: "Noted, Ada." },
          { role: "user", content: [{ type: "text", text: "What is my name?" }] },
        ],
      })
      .withResponse();
    const runId = response.headers.get("x-outpost-run") as string;
    const run = await getRun(runId);
    expect(run.input).toBe("What is my name?");
    const started = (await getEvents(runId)).find((e) => e.type === "run.started");
    expect(started?.data.context).toEqual([
      { role: "user", content: "Instructions from the caller: Be terse." },
      { role: "user", content: "My name is Ada." },
      { role: "assistant", content: "Noted, Ada." },
    ]);
  });

  it("continues an Outpost session named in X-Outpost-Session", async () => {
    const first = await openai.chat.completions.create({ model: "echo-bot", messages: [{ role: "user", content: "one" }] }).withResponse();
    const session = first.response.headers.get("x-outpost-session") as string;
    const second = await openai.chat.completions
      .create({ model: "echo-bot", messages: [{ role: "user", content: "two" }] }, { headers: { "X-Outpost-Session": session } })
      .withResponse();
    expect(second.response.headers.get("x-outpost-session")).toBe(session);
    const messages = (await http(stack.url, "GET", `/v1/sessions/${session}`)).body.messages;
    expect(messages.map((m: { content: string }) => m.content)).toEqual(["one", "You said: one", "two", "You said: two"]);
  });

  it("answers a run waiting for an approval with what it waits for, and leaves it waiting", async () => {
    const completion = await openai.chat.completions.create({ model: "gatekeeper", messages: [{ role: "user", content: "go" }] });
    const outpost = (completion as unknown as { outpost: { run_id: string; status: string; waiting_for: Record<string, string> } }).outpost;
    expect(outpost).toMatchObject({ status: "waiting", waiting_for: { kind: "approval", tool: "wait.until" } });
    const approvalId = outpost.waiting_for.approval_id;
    const content = completion.choices[0].message.content ?? "";
    expect(content).toContain(approvalId);
    expect(content).toContain(outpost.run_id);
    expect(content).toContain("wait.until");
    expect((await getRun(outpost.run_id)).status).toBe("waiting");

    // Approved, the run goes on and completes.
    await http(stack.url, "POST", `/v1/approvals/${approvalId}`, { body: { decision: "approve" } });
    const done = await waitForRun(getRun, outpost.run_id, terminal);
    expect(done.output).toBe("Waited.");
  });

  it("streams the waiting message too", async () => {
    const stream = await openai.chat.completions.create({ model: "gatekeeper", messages: [{ role: "user", content: "go" }], stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toMatch(/waiting for a person to approve .*wait\.until.*approval apr_/);
  });

  it("follows a run through a short timer to its answer", async () => {
    const completion = await openai.chat.completions.create({ model: "sleeper", messages: [{ role: "user", content: "rest" }] });
    expect(completion.choices[0].message.content).toBe("Rested.");
  });

  it("a client that goes away stops the stream, not the run", async () => {
    const { data: stream, response } = await openai.chat.completions
      .create({ model: "sleeper", messages: [{ role: "user", content: "rest" }], stream: true })
      .withResponse();
    const runId = response.headers.get("x-outpost-run") as string;
    const seen: string[] = [];
    for await (const chunk of stream) {
      seen.push(chunk.choices[0].delta.role ?? "");
      break; // leaving the loop aborts the request
    }
    expect(seen).toEqual(["assistant"]);
    const run = await waitForRun(getRun, runId, terminal);
    expect(run).toMatchObject({ status: "completed", output: "Rested." });
  });

  it("a failed run is an InternalServerError naming the run, not retried", async () => {
    const err = await openai.chat.completions.create({ model: "broken", messages: [{ role: "user", content: "anything" }] }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    const e = err as InstanceType<typeof OpenAI.InternalServerError>;
    expect(e.status).toBe(500);
    expect(e.type).toBe("server_error");
    const runId = e.headers?.get("x-outpost-run") as string;
    expect(runId).toMatch(/^run_/);
    expect(e.message).toContain(runId);
    expect((await getRun(runId)).status).toBe("failed");
    expect(e.headers?.get("x-should-retry")).toBe("false");
  });

  it("a failed run while streaming raises an APIError from the stream", async () => {
    const stream = await openai.chat.completions.create({ model: "broken", messages: [{ role: "user", content: "x" }], stream: true });
    const consume = async () => {
      for await (const _ of stream) void _;
    };
    await expect(consume()).rejects.toBeInstanceOf(OpenAI.APIError);
  });
});

describe("what the endpoint refuses", () => {
  it("an unknown model is NotFoundError with code model_not_found", async () => {
    const err = await openai.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    const e = err as InstanceType<typeof OpenAI.NotFoundError>;
    expect(e.code).toBe("model_not_found");
    expect(e.type).toBe("invalid_request_error");
    expect(e.message).toContain("The model 'gpt-4o' does not exist");
  });

  it("tools are refused with a clear message, and no run starts", async () => {
    const before = (await http<{ items: RunView[] }>(stack.url, "GET", "/v1/runs?agent=echo-bot&limit=200")).body.items.length;
    const err = await openai.chat.completions
      .create({
        model: "echo-bot",
        messages: [{ role: "user", content: "hi" }],
        tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: {} } } }],
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const e = err as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.param).toBe("tools");
    expect(e.message).toMatch(/'tools' is not supported: Outpost agents use the tools defined for them/);
    const after = (await http<{ items: RunView[] }>(stack.url, "GET", "/v1/runs?agent=echo-bot&limit=200")).body.items.length;
    expect(after).toBe(before);
  });

  it("tool messages, images and n > 1 are refused", async () => {
    const refused = async (body: Record<string, unknown>) => {
      const res = await http(stack.url, "POST", "/v1/chat/completions", { body: { model: "echo-bot", ...body } });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ type: "invalid_request_error", message: expect.any(String) });
      return res.body.error as { message: string; param: string | null };
    };
    expect(
      (
        await refused({
          messages: [
            { role: "user", content: "hi" },
            { role: "tool", tool_call_id: "c1", content: "{}" },
          ],
        })
      ).message,
    ).toMatch(/'tool' messages are not supported/);
    expect(
      (
        await refused({
          messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/a.png" } }] }],
        })
      ).param,
    ).toBe("messages[0].content[0]");
    expect((await refused({ messages: [{ role: "user", content: "hi" }], n: 2 })).param).toBe("n");
    expect((await refused({ messages: [{ role: "assistant", content: "hello" }] })).message).toMatch(/'user' message/);
  });

  it("validation errors answer OpenAI's error shape", async () => {
    const res = await http(stack.url, "POST", "/v1/chat/completions", { body: { messages: [] } });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: { message: expect.stringContaining("model"), type: "invalid_request_error", param: null, code: null },
    });
    const bad = await http(stack.url, "POST", "/v1/chat/completions", {
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.type).toBe("invalid_request_error");
  });

  it("an unknown session is a 404 in OpenAI's shape", async () => {
    const res = await http(stack.url, "POST", "/v1/chat/completions", {
      body: { model: "echo-bot", messages: [{ role: "user", content: "hi" }] },
      headers: { "x-outpost-session": "ses_doesnotexist" },
    });
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ type: "invalid_request_error", code: "not_found" });
  });

  it("the routes are in the OpenAPI document", async () => {
    const doc = (await http(stack.url, "GET", "/openapi.json")).body;
    expect(doc.paths["/v1/chat/completions"].post.tags).toEqual(["OpenAI-compatible"]);
    expect(doc.paths["/v1/models"].get.tags).toEqual(["OpenAI-compatible"]);
    expect(doc.paths["/v1/models/{id}"].get.tags).toEqual(["OpenAI-compatible"]);
  });
});

describe("runs held up by other runs (delegation, a session's earlier run)", () => {
  let held: Stack;
  let heldRoot: string;
  /** The official client as applications use it: it retries (twice) a request that times out — each retry would start a run. */
  let client: OpenAI;

  beforeAll(async () => {
    const p = await delegationProject();
    heldRoot = p.root;
    held = await startStack({ project: p.project });
    client = new OpenAI({ baseURL: `${held.url}/v1`, apiKey: TEST_ADMIN_KEY, maxRetries: 2, timeout: 10_000 });
  });
  afterAll(async () => {
    expect(held?.logs.lines.filter((l) => l.level >= 50)).toEqual([]);
    await held?.close();
    if (heldRoot) await rm(heldRoot, { recursive: true, force: true });
  });

  type Outpost = { run_id: string; session_id: string; status: string; waiting_for: Record<string, string> };
  const outpostOf = (c: unknown) => (c as { outpost: Outpost }).outpost;
  const run = async (id: string) => (await http<RunView>(held.url, "GET", `/v1/runs/${id}`)).body;
  const runsOf = async (agent: string) =>
    (await http<{ items: RunView[] }>(held.url, "GET", `/v1/runs?agent=${agent}&limit=200`)).body.items;
  const approve = (id: string) => http(held.url, "POST", `/v1/approvals/${id}`, { body: { decision: "approve" } });

  it("a delegated run waiting for an approval answers at once, naming it; approved, the run answers and the session goes on", async () => {
    const before = { desk: (await runsOf("desk")).length, clerk: (await runsOf("clerk")).length };
    const { data, response } = await client.chat.completions
      .create({ model: "desk", messages: [{ role: "user", content: "refund order 1042" }] })
      .withResponse();
    const runId = response.headers.get("x-outpost-run") as string;
    const outpost = outpostOf(data);
    expect(outpost).toMatchObject({
      run_id: runId,
      status: "waiting",
      waiting_for: { kind: "approval", tool: "wait.until", agent: "clerk" },
    });
    const [clerk] = await runsOf("clerk");
    expect(clerk).toMatchObject({ parent_run_id: runId, status: "waiting", waiting_for: { kind: "approval" } });
    expect(outpost.waiting_for).toMatchObject({
      run_id: clerk.id,
      approval_id: (clerk.waiting_for as { approval_id: string }).approval_id,
    });
    const content = data.choices[0].message.content ?? "";
    for (const id of [outpost.waiting_for.approval_id, clerk.id, runId]) expect(content).toContain(id);
    expect(content).toContain("wait.until");
    expect(data.choices[0].finish_reason).toBe("stop");
    // One request, one run (and one delegated run): nothing was retried.
    expect((await runsOf("desk")).length).toBe(before.desk + 1);
    expect((await runsOf("clerk")).length).toBe(before.clerk + 1);

    await approve(outpost.waiting_for.approval_id);
    expect(await waitForRun(run, runId, terminal)).toMatchObject({ status: "completed", output: "Desk: Refund issued." });
    // Asked again in the session: a delegated run that simply works is followed to the answer.
    const again = await client.chat.completions.create(
      { model: "desk", messages: [{ role: "user", content: "check the shelves" }] },
      { headers: { "X-Outpost-Session": outpost.session_id } },
    );
    expect(again.choices[0].message.content).toBe("Desk: Checked.");
    expect(outpostOf(again)).toMatchObject({ status: "completed", session_id: outpost.session_id, waiting_for: null });
  });

  it("streaming: a grandchild waiting for an approval streams the waiting message, then finishes", async () => {
    const before = (await runsOf("front")).length;
    const { data: stream, response } = await client.chat.completions
      .create({ model: "front", messages: [{ role: "user", content: "refund order 7" }], stream: true })
      .withResponse();
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const runId = response.headers.get("x-outpost-run") as string;
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    const finish = chunks.find((c) => c.choices[0]?.finish_reason === "stop");
    const outpost = outpostOf(finish);
    expect(outpost).toMatchObject({
      run_id: runId,
      status: "waiting",
      waiting_for: { kind: "approval", agent: "clerk", tool: "wait.until" },
    });
    const clerk = await run(outpost.waiting_for.run_id);
    expect(clerk).toMatchObject({ agent: "clerk", root_run_id: runId, depth: 2, status: "waiting" });
    expect(text).toContain(outpost.waiting_for.approval_id);
    expect(text).toContain(clerk.id);
    expect((await runsOf("front")).length).toBe(before + 1);

    await approve(outpost.waiting_for.approval_id);
    expect(await waitForRun(run, runId, terminal)).toMatchObject({ status: "completed", output: "Front: Desk: Refund issued." });
  });

  it("delegated runs that simply work are followed to the final answer, streaming or not", async () => {
    const answer = await client.chat.completions.create({ model: "desk", messages: [{ role: "user", content: "check the stock" }] });
    expect(answer.choices[0].message.content).toBe("Desk: Checked.");
    const stream = await client.chat.completions.create({
      model: "desk",
      messages: [{ role: "user", content: "check again" }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toBe("Desk: Checked.");
  });

  it("a follow-up behind a run waiting for an approval answers at once, naming the run it is queued behind", async () => {
    const first = await client.chat.completions.create({ model: "gatekeeper", messages: [{ role: "user", content: "go ahead" }] });
    const waiting = outpostOf(first);
    expect(waiting).toMatchObject({ status: "waiting", waiting_for: { kind: "approval" } });
    const before = (await runsOf("gatekeeper")).length;

    const { data, response } = await client.chat.completions
      .create(
        { model: "gatekeeper", messages: [{ role: "user", content: "and then?" }] },
        { headers: { "X-Outpost-Session": waiting.session_id } },
      )
      .withResponse();
    const followUp = response.headers.get("x-outpost-run") as string;
    expect(followUp).not.toBe(waiting.run_id);
    const outpost = outpostOf(data);
    expect(outpost).toMatchObject({
      run_id: followUp,
      session_id: waiting.session_id,
      status: "queued",
      waiting_for: {
        kind: "approval",
        approval_id: waiting.waiting_for.approval_id,
        tool: "wait.until",
        run_id: waiting.run_id,
        queued_behind: waiting.run_id,
      },
    });
    const content = data.choices[0].message.content ?? "";
    expect(content).toContain(waiting.run_id);
    expect(content).toContain(waiting.waiting_for.approval_id);
    expect((await runsOf("gatekeeper")).length).toBe(before + 1);

    // Streaming says the same.
    const stream = await client.chat.completions.create(
      { model: "gatekeeper", messages: [{ role: "user", content: "and after that?" }], stream: true },
      { headers: { "X-Outpost-Session": waiting.session_id } },
    );
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toContain(`queued behind run ${waiting.run_id}`);
    expect(text).toContain(waiting.waiting_for.approval_id);

    await approve(waiting.waiting_for.approval_id);
    expect(await waitForRun(run, followUp, terminal)).toMatchObject({ status: "completed", output: "Noted: and then?" });
    const session = (await http(held.url, "GET", `/v1/sessions/${waiting.session_id}`)).body;
    const last = session.messages.at(-1).run_id as string;
    expect(await waitForRun(run, last, terminal)).toMatchObject({ output: "Noted: and after that?" });
  });
});
