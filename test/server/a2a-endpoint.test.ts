/**
 * The A2A endpoint against a running Outpost over real HTTP on 127.0.0.1 (scripted model, SQLite in
 * a temp folder; PostgreSQL where reachable), driven by the @a2a-js/sdk client (A2A 1.0) and by plain
 * JSON-RPC requests in A2A 0.3's names. Tasks are runs in the store: they outlive a restart, and
 * another Outpost on the same database answers for them.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Message, parseSseStream, Role, type StreamResponse, type Task, TaskState } from "@a2a-js/sdk";
import { type Client, ClientFactory } from "@a2a-js/sdk/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApprovalView, RunView, SessionView } from "../../src/core/api.js";
import { loadProject } from "../../src/definitions/index.js";
import type { Project } from "../../src/definitions/types.js";
import { createServer } from "../../src/server/index.js";
import { ADMIN_HEADERS, TEST_ADMIN_KEY } from "../helpers/auth.js";
import { createTestDatabase } from "../pg/database.js";
import { delegationProject, http, type Stack, startStack, terminal, waitForRun } from "./helpers.js";

/**
 * - `concierge` (exposed): "nap…" waits an hour (wait.until); "fail…" matches no dialogue, so the run fails;
 *   anything else is answered "You asked: <input>".
 * - `gatekeeper` (exposed): every call of wait.until needs a person's approval.
 * - `back-office`: in a team that does not expose it.
 */
async function writeProject(): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), "outpost-a2a-project-"));
  const files: Record<string, string> = {
    "outpost.yaml": [
      "version: 1",
      "workspace: a2a",
      "models:",
      "  offline:",
      "    - provider: scripted",
      "defaults:",
      "  model: offline",
      "  limits: { max_steps: 10, max_tokens: 100000, max_usd: 1, max_wall_time: 10m, max_model_errors: 1 }",
      "",
    ].join("\n"),
    "agents/concierge.yaml": "name: concierge\ndescription: Answers questions about parcels.\ninstructions: Answer.\ntools: [wait.until]\n",
    "scripts/concierge.yaml": [
      "dialogues:",
      "  - when: '^nap'",
      "    turns:",
      "      - tool_calls: [{ name: wait.until, args: { seconds: 3600 } }]",
      '      - text: "Rested."',
      "  - when: '^(?!fail)'",
      "    turns:",
      '      - text: "You asked: ${input}"',
      "",
    ].join("\n"),
    "agents/gatekeeper.yaml": [
      "name: gatekeeper",
      "description: Goes on once a person agrees.",
      "instructions: Wait, then answer.",
      "tools:",
      "  - name: wait.until",
      "    approval: required",
      "",
    ].join("\n"),
    "scripts/gatekeeper.yaml": [
      "dialogues:",
      "  - turns:",
      "      - tool_calls: [{ name: wait.until, args: { seconds: 1 } }]",
      '      - text: "Approved and done."',
      "",
    ].join("\n"),
    "agents/back-office.yaml": "name: back-office\ndescription: Internal only.\ninstructions: Answer colleagues.\n",
    "scripts/back-office.yaml": 'dialogues:\n  - turns:\n      - text: "internal"\n',
  };
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), text);
  }
  return root;
}

async function load(root: string, workspace?: string): Promise<Project> {
  const project = await loadProject(root);
  if (workspace) project.workspace = workspace;
  project.teams.set("operations", {
    name: "operations",
    description: "Back office.",
    lead: "back-office",
    members: ["back-office"],
    exposes: [],
    file: "teams/operations.yaml",
  });
  return project;
}

let root: string;
let dataDir: string;
let stack: Stack;

beforeAll(async () => {
  root = await writeProject();
  dataDir = await mkdtemp(path.join(tmpdir(), "outpost-a2a-data-"));
  stack = await startStack({ project: await load(root), dataDir });
});
afterAll(async () => {
  await stack?.close();
  await rm(dataDir, { recursive: true, force: true });
  await rm(root, { recursive: true, force: true });
});

/** An SDK client, from the agent's card at /a2a/<agent>/.well-known/agent-card.json. */
const clientFor = (base: string, agent: string): Promise<Client> => new ClientFactory().createFromUrl(`${base}/a2a/${agent}/`);

let seq = 0;
function userMessage(text: string | string[], extra: Partial<Message> = {}): Message {
  const texts = Array.isArray(text) ? text : [text];
  return {
    messageId: `msg-${process.pid}-${Date.now()}-${++seq}`,
    contextId: "",
    taskId: "",
    role: Role.ROLE_USER,
    parts: texts.map((value) => ({
      content: { $case: "text" as const, value },
      metadata: undefined,
      filename: "",
      mediaType: "text/plain",
    })),
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
    ...extra,
  };
}
const request = (message: Message, returnImmediately = false) => ({
  tenant: "",
  message,
  configuration: { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately },
  metadata: undefined,
});
const sendTask = async (client: Client, text: string | string[], extra: Partial<Message> = {}): Promise<Task> => {
  const result = await client.sendMessage(request(userMessage(text, extra)));
  expect("status" in result).toBe(true);
  return result as Task;
};
const payloadOf = (e: StreamResponse) => {
  if (!e.payload) throw new Error("a stream event without payload");
  return e.payload.value;
};
const textOf = (m: Message | undefined) => (m?.parts ?? []).map((p) => (p.content?.$case === "text" ? p.content.value : "")).join("");
const getRun = async (id: string) => (await http<RunView>(stack.url, "GET", `/v1/runs/${id}`)).body;
const rpc = (agent: string, body: unknown, headers: Record<string, string> = {}) =>
  http(stack.url, "POST", `/a2a/${agent}`, { body, headers: { "content-type": "application/json", ...headers } });

describe("agent card", () => {
  it("the SDK resolves the card from the well-known URL: name, description, endpoint, protocol version, streaming, one skill, text", async () => {
    const client = await clientFor(stack.url, "concierge");
    expect(client.protocolVersion).toBe("1.0");
    const card = await client.getAgentCard();
    expect(card.name).toBe("concierge");
    expect(card.description).toBe("Answers questions about parcels.");
    expect(card.supportedInterfaces[0]).toMatchObject({
      url: `${stack.url}/a2a/concierge`,
      protocolBinding: "JSONRPC",
      protocolVersion: "1.0",
    });
    expect(card.supportedInterfaces.map((i) => i.protocolVersion)).toEqual(["1.0", "0.3"]);
    expect(card.capabilities?.streaming).toBe(true);
    expect(card.capabilities?.pushNotifications).toBeFalsy();
    expect(card.skills).toHaveLength(1);
    expect(card.skills[0]).toMatchObject({ id: "concierge", name: "concierge", description: "Answers questions about parcels." });
    expect(card.defaultInputModes).toEqual(["text/plain"]);
    expect(card.defaultOutputModes).toEqual(["text/plain"]);
  });

  it("without A2A-Version the card has A2A 0.3's shape, with the same endpoint", async () => {
    const res = await http(stack.url, "GET", "/a2a/gatekeeper/.well-known/agent-card.json");
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      name: "gatekeeper",
      url: `${stack.url}/a2a/gatekeeper`,
      preferredTransport: "JSONRPC",
      protocolVersion: "0.3",
      capabilities: { streaming: true },
      defaultInputModes: ["text/plain"],
      defaultOutputModes: ["text/plain"],
    });
    expect(res.body.skills).toHaveLength(1);
    expect(res.body.skills[0].description).toContain("approval");
    expect(res.body.supportedInterfaces).toContainEqual({
      url: `${stack.url}/a2a/gatekeeper`,
      protocolBinding: "JSONRPC",
      protocolVersion: "1.0",
    });
  });

  it("the endpoint follows the request's Host, or the configured public URL", async () => {
    const { port } = new URL(stack.url);
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port,
          path: "/a2a/concierge/.well-known/agent-card.json",
          headers: { host: "agents.example.com:8443", ...ADMIN_HEADERS },
        },
        (res) => {
          let text = "";
          res.on("data", (c) => {
            text += c;
          });
          res.on("end", () => resolve(text));
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(JSON.parse(body).url).toBe("http://agents.example.com:8443/a2a/concierge");

    // A second server on the same runtime (not closing it), configured with its public URL.
    const view = Object.assign(Object.create(stack.outpost), { close: undefined });
    const server = await createServer(view, { version: "test", publicUrl: "https://agents.example.com/outpost/" });
    try {
      const res = await server.inject({
        method: "GET",
        url: "/a2a/concierge/.well-known/agent-card.json",
        headers: { "a2a-version": "1.0", ...ADMIN_HEADERS },
      });
      expect(res.json().supportedInterfaces[0].url).toBe("https://agents.example.com/outpost/a2a/concierge");
    } finally {
      await server.close();
    }
  });

  it("an unexposed or unknown agent is 404, card and endpoint alike", async () => {
    for (const agent of ["back-office", "nobody"]) {
      const card = await http(stack.url, "GET", `/a2a/${agent}/.well-known/agent-card.json`);
      expect(card.status).toBe(404);
      expect(card.body.error.code).toBe("not_found");
      expect(card.body.error.hint).toContain("concierge");
      expect(card.body.error.hint).not.toContain("back-office");
      const post = await rpc(agent, { jsonrpc: "2.0", id: 1, method: "GetTask", params: { id: "run_x" } });
      expect(post.status).toBe(404);
    }
    await expect(clientFor(stack.url, "back-office")).rejects.toThrow(/404/);
  });
});

describe("messages and tasks (SDK client, A2A 1.0)", () => {
  it("sendMessage runs the agent: completed, the output as artifact and agent message, the session as contextId", async () => {
    const client = await clientFor(stack.url, "concierge");
    const task = await sendTask(client, "Where is my parcel?");
    expect(task.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(textOf(task.status?.message)).toBe("You asked: Where is my parcel?");
    expect(task.artifacts).toHaveLength(1);
    expect(textOf({ parts: task.artifacts[0].parts } as Message)).toBe("You asked: Where is my parcel?");
    expect(task.history.map((m) => [m.role, textOf(m)])).toEqual([
      [Role.ROLE_USER, "Where is my parcel?"],
      [Role.ROLE_AGENT, "You asked: Where is my parcel?"],
    ]);
    const run = await getRun(task.id);
    expect(run).toMatchObject({ agent: "concierge", status: "completed", session_id: task.contextId });
    expect(await client.getTask({ tenant: "", id: task.id })).toEqual(task);
  });

  it("joins text parts; a contextId continues that session, an unknown one starts a new session", async () => {
    const client = await clientFor(stack.url, "concierge");
    const first = await sendTask(client, ["Two lines:", "first and second"]);
    expect(textOf(first.status?.message)).toBe("You asked: Two lines:\nfirst and second");

    const second = await sendTask(client, "And a follow-up?", { contextId: first.contextId });
    expect(second.id).not.toBe(first.id);
    expect(second.contextId).toBe(first.contextId);
    const session = (await http<SessionView>(stack.url, "GET", `/v1/sessions/${first.contextId}`)).body;
    expect(session.messages.map((m) => m.content)).toEqual([
      "Two lines:\nfirst and second",
      "You asked: Two lines:\nfirst and second",
      "And a follow-up?",
      "You asked: And a follow-up?",
    ]);

    const fresh = await sendTask(client, "Hello", { contextId: "a-context-the-client-made-up" });
    expect(fresh.contextId).not.toBe("a-context-the-client-made-up");
    expect((await getRun(fresh.id)).session_id).toBe(fresh.contextId);
  });

  it("a retried message (same messageId) is the same task; a different message under it is refused", async () => {
    const client = await clientFor(stack.url, "concierge");
    const message = userMessage("Once only, please");
    const a = (await client.sendMessage(request(message))) as Task;
    const b = (await client.sendMessage(request(message))) as Task;
    expect(b.id).toBe(a.id);
    await expect(client.sendMessage(request({ ...message, parts: userMessage("Something else").parts }))).rejects.toThrow(
      /already used for a different message/,
    );
  });

  it("sendMessageStream: the task, then status and artifact updates as the run goes, ending completed", async () => {
    const client = await clientFor(stack.url, "concierge");
    const events: StreamResponse[] = [];
    for await (const e of client.sendMessageStream(request(userMessage("Stream it")))) events.push(e);
    const [first, ...rest] = events;
    expect(first.payload?.$case).toBe("task");
    const task = first.payload?.value as Task;
    expect(task.status?.state).toBe(TaskState.TASK_STATE_SUBMITTED);
    const cases = rest.map((e) => e.payload?.$case);
    expect(cases).toContain("artifactUpdate");
    const states = rest.flatMap((e) => (e.payload?.$case === "statusUpdate" ? [e.payload.value.status?.state] : []));
    expect(states).toContain(TaskState.TASK_STATE_WORKING);
    expect(states.at(-1)).toBe(TaskState.TASK_STATE_COMPLETED);
    const artifact = rest.find((e) => e.payload?.$case === "artifactUpdate")?.payload?.value as { artifact: { parts: Message["parts"] } };
    expect(textOf({ parts: artifact.artifact.parts } as Message)).toBe("You asked: Stream it");
    const last = rest.at(-1)?.payload;
    expect(last?.$case === "statusUpdate" && textOf(last.value.status?.message)).toBe("You asked: Stream it");
    for (const e of rest) expect((payloadOf(e) as { taskId: string }).taskId).toBe(task.id);

    const got = await client.getTask({ tenant: "", id: task.id });
    expect(got.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(got.contextId).toBe(task.contextId);
  });

  it("a failed run is a failed task that says why", async () => {
    const client = await clientFor(stack.url, "concierge");
    const task = await sendTask(client, "fail, please");
    expect(task.status?.state).toBe(TaskState.TASK_STATE_FAILED);
    const run = await getRun(task.id);
    expect(run.status).toBe("failed");
    expect(textOf(task.status?.message)).toContain(run.error?.code as string);
    expect(task.artifacts).toEqual([]);
  });

  it("waiting for an approval is input-required, saying a human approval is pending; cancelTask cancels the run", async () => {
    const client = await clientFor(stack.url, "gatekeeper");
    const task = await sendTask(client, "Go ahead");
    expect(task.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    const approvals = (await http<ApprovalView[]>(stack.url, "GET", "/v1/approvals?status=pending")).body;
    const approval = approvals.find((a) => a.run_id === task.id) as ApprovalView;
    expect(approval.tool).toBe("wait.until");
    const said = textOf(task.status?.message);
    expect(said).toContain("human approval");
    expect(said).toContain(approval.id);
    expect(said).toContain("wait.until");
    expect(await client.getTask({ tenant: "", id: task.id })).toEqual(task);

    // A follow-up on the task is refused with what to do instead.
    await expect(client.sendMessage(request(userMessage("Please?", { taskId: task.id })))).rejects.toThrow(/takes no further messages/);

    const cancelled = await client.cancelTask({ tenant: "", id: task.id, metadata: undefined });
    expect(cancelled.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    expect(textOf(cancelled.status?.message)).toContain("canceled");
    expect((await getRun(task.id)).status).toBe("cancelled");
    expect((await http<ApprovalView>(stack.url, "GET", "/v1/approvals?status=pending")).body).not.toContainEqual(
      expect.objectContaining({ id: approval.id }),
    );
    // Canceling again answers the canceled task.
    expect((await client.cancelTask({ tenant: "", id: task.id, metadata: undefined })).status?.state).toBe(TaskState.TASK_STATE_CANCELED);
  });

  it("a slow task (waiting an hour) is working; cancelTask cancels it; a finished task is not cancelable", async () => {
    const client = await clientFor(stack.url, "concierge");
    const task = await sendTask(client, "nap for an hour");
    expect(task.status?.state).toBe(TaskState.TASK_STATE_WORKING);
    expect(textOf(task.status?.message)).toMatch(/^Waiting until /);
    const cancelled = await client.cancelTask({ tenant: "", id: task.id, metadata: undefined });
    expect(cancelled.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    expect((await getRun(task.id)).status).toBe("cancelled");

    const done = await sendTask(client, "Quick one");
    await expect(client.cancelTask({ tenant: "", id: done.id, metadata: undefined })).rejects.toMatchObject({
      name: "TaskNotCancelableError",
    });
  });

  it("streaming a task that waits for an approval ends at input-required; resubscribing follows it to its end", async () => {
    const client = await clientFor(stack.url, "gatekeeper");
    const events: StreamResponse[] = [];
    for await (const e of client.sendMessageStream(request(userMessage("Stream until approval")))) events.push(e);
    const last = events.at(-1)?.payload;
    expect(last?.$case).toBe("statusUpdate");
    const status = last?.$case === "statusUpdate" ? last.value.status : undefined;
    expect(status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    expect(textOf(status?.message)).toContain("human approval");
    const taskId = (payloadOf(events[0]) as Task).id;

    // Cancel it through Outpost's own API while an A2A subscriber follows it.
    const followed: StreamResponse[] = [];
    for await (const e of client.resubscribeTask({ tenant: "", id: taskId })) {
      followed.push(e);
      if (followed.length === 1) await http(stack.url, "POST", `/v1/runs/${taskId}/cancel`, { body: { reason: "changed my mind" } });
    }
    expect(followed[0].payload?.$case).toBe("task");
    const end = followed.at(-1)?.payload;
    expect(end?.$case === "statusUpdate" && end.value.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    expect(end?.$case === "statusUpdate" && textOf(end.value.status?.message)).toContain("changed my mind");
  });

  it("an unknown task, or a task of another agent, is TaskNotFound", async () => {
    const concierge = await clientFor(stack.url, "concierge");
    const gatekeeper = await clientFor(stack.url, "gatekeeper");
    await expect(concierge.getTask({ tenant: "", id: "run_doesnotexist00000000000" })).rejects.toMatchObject({ name: "TaskNotFoundError" });
    const task = await sendTask(concierge, "Mine");
    await expect(gatekeeper.getTask({ tenant: "", id: task.id })).rejects.toMatchObject({ name: "TaskNotFoundError" });
    await expect(gatekeeper.cancelTask({ tenant: "", id: task.id, metadata: undefined })).rejects.toMatchObject({
      name: "TaskNotFoundError",
    });
  });
});

describe("A2A 0.3 method names (message/send, message/stream, tasks/get, tasks/cancel)", () => {
  const v03 = (text: string) => ({
    kind: "message",
    messageId: `v03-${Date.now()}-${++seq}`,
    role: "user",
    parts: [{ kind: "text", text }],
  });

  it("message/send, tasks/get and tasks/cancel answer in 0.3's shapes", async () => {
    const sent = await rpc("concierge", {
      jsonrpc: "2.0",
      id: "a",
      method: "message/send",
      params: { message: v03("Old client here"), configuration: { blocking: true } },
    });
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({
      jsonrpc: "2.0",
      id: "a",
      result: {
        kind: "task",
        status: {
          state: "completed",
          message: { kind: "message", role: "agent", parts: [{ kind: "text", text: "You asked: Old client here" }] },
        },
        artifacts: [{ parts: [{ kind: "text", text: "You asked: Old client here" }] }],
      },
    });
    const id = sent.body.result.id;
    const got = await rpc("concierge", { jsonrpc: "2.0", id: 2, method: "tasks/get", params: { id } });
    expect(got.body.result).toEqual(sent.body.result);
    const cancel = await rpc("concierge", { jsonrpc: "2.0", id: 3, method: "tasks/cancel", params: { id } });
    expect(cancel.body.error.code).toBe(-32002);

    const slow = await rpc("concierge", {
      jsonrpc: "2.0",
      id: 4,
      method: "message/send",
      params: { message: v03("nap a while"), configuration: { blocking: false } },
    });
    expect(slow.body.result.status.state).toBe("submitted");
    const cancelled = await rpc("concierge", { jsonrpc: "2.0", id: 5, method: "tasks/cancel", params: { id: slow.body.result.id } });
    expect(cancelled.body.result.status.state).toBe("canceled");
  });

  it("message/stream answers server-sent events ending with a final status-update", async () => {
    const res = await fetch(`${stack.url}/a2a/concierge`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "message/stream", params: { message: v03("Stream the old way") } }),
    });
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const results: any[] = [];
    for await (const e of parseSseStream(res)) results.push(JSON.parse(e.data));
    expect(results.every((r) => r.jsonrpc === "2.0" && r.id === 7)).toBe(true);
    const kinds = results.map((r) => r.result.kind);
    expect(kinds[0]).toBe("task");
    expect(kinds).toContain("artifact-update");
    expect(results.at(-1).result).toMatchObject({ kind: "status-update", final: true, status: { state: "completed" } });
  });
});

describe("JSON-RPC errors", () => {
  it("answer with the JSON-RPC codes and say what is wrong", async () => {
    const notJson = await http(stack.url, "POST", "/a2a/concierge", { body: "{not json", headers: { "content-type": "application/json" } });
    expect(notJson.status).toBe(200);
    expect(notJson.body).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32700 } });

    expect((await rpc("concierge", [{ jsonrpc: "2.0", id: 1, method: "GetTask" }])).body.error.code).toBe(-32600);
    expect((await rpc("concierge", { jsonrpc: "1.0", id: 1, method: "GetTask" })).body).toMatchObject({ id: 1, error: { code: -32600 } });
    expect((await rpc("concierge", { jsonrpc: "2.0", id: 1 })).body.error.code).toBe(-32600);
    expect((await rpc("concierge", { jsonrpc: "2.0", id: 1, method: "tasks/explode", params: {} })).body.error.code).toBe(-32601);
    expect((await rpc("concierge", { jsonrpc: "2.0", id: 1, method: "Explode", params: {} })).body.error.code).toBe(-32601);
    expect((await rpc("concierge", { jsonrpc: "2.0", id: 1, method: "GetTask", params: "x" })).body.error.code).toBe(-32602);

    for (const method of ["GetTask", "tasks/get"]) {
      const missing = await rpc("concierge", { jsonrpc: "2.0", id: 9, method, params: { id: "run_nope" } });
      expect(missing.body).toMatchObject({ id: 9, error: { code: -32001 } });
      expect(missing.body.error.message).toContain("run_nope");
    }

    const noText = await rpc("concierge", {
      jsonrpc: "2.0",
      id: 10,
      method: "message/send",
      params: { message: { kind: "message", messageId: "m-no-text", role: "user", parts: [{ kind: "data", data: { order: 1 } }] } },
    });
    expect(noText.body.error.code).toBe(-32602);
    expect(noText.body.error.message).toContain("no text part");
    const noTextV1 = await rpc(
      "concierge",
      {
        jsonrpc: "2.0",
        id: 11,
        method: "SendMessage",
        params: { message: { messageId: "m2", role: "ROLE_USER", parts: [{ text: "  " }] } },
      },
      { "A2A-Version": "1.0" },
    );
    expect(noTextV1.body.error.code).toBe(-32602);
    expect(noTextV1.body.error.message).toContain("no text part");
    const noMessage = await rpc("concierge", { jsonrpc: "2.0", id: 12, method: "SendMessage", params: {} }, { "A2A-Version": "1.0" });
    expect(noMessage.body.error.code).toBe(-32602);

    const badVersion = await rpc("concierge", { jsonrpc: "2.0", id: 13, method: "GetTask", params: { id: "x" } }, { "A2A-Version": "7.0" });
    expect(badVersion.body.error.code).toBe(-32009);
  });
});

describe("tasks live in the store", () => {
  it("after a restart on the same data folder tasks/get answers for every task; another workspace sees none of them", async () => {
    const concierge = await clientFor(stack.url, "concierge");
    const gatekeeper = await clientFor(stack.url, "gatekeeper");
    const done = await sendTask(concierge, "Remember me");
    const napping = await sendTask(concierge, "nap across the restart");
    const waiting = await sendTask(gatekeeper, "Approve me later");
    expect(waiting.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);

    await stack.close();
    stack = await startStack({ project: await load(root), dataDir });
    const concierge2 = await clientFor(stack.url, "concierge");
    const gatekeeper2 = await clientFor(stack.url, "gatekeeper");
    expect(await concierge2.getTask({ tenant: "", id: done.id })).toEqual(done);
    expect((await concierge2.getTask({ tenant: "", id: napping.id })).status?.state).toBe(TaskState.TASK_STATE_WORKING);
    expect(await gatekeeper2.getTask({ tenant: "", id: waiting.id })).toEqual(waiting);
    expect((await gatekeeper2.cancelTask({ tenant: "", id: waiting.id, metadata: undefined })).status?.state).toBe(
      TaskState.TASK_STATE_CANCELED,
    );

    // The same data under another workspace: none of these tasks is there.
    await stack.close();
    stack = await startStack({ project: await load(root, "elsewhere"), dataDir, adminKey: `${TEST_ADMIN_KEY}Elsewhere` });
    const other = await clientFor(stack.url, "concierge");
    await expect(other.getTask({ tenant: "", id: done.id })).rejects.toMatchObject({ name: "TaskNotFoundError" });
  });
});

describe("tasks held up by other runs (delegation, a conversation's earlier task)", () => {
  let held: Stack;
  let heldRoot: string;

  beforeAll(async () => {
    const p = await delegationProject();
    heldRoot = p.root;
    held = await startStack({ project: p.project });
  });
  afterAll(async () => {
    expect(held?.logs.lines.filter((l) => l.level >= 50)).toEqual([]);
    await held?.close();
    if (heldRoot) await rm(heldRoot, { recursive: true, force: true });
  });

  const run = async (id: string) => (await http<RunView>(held.url, "GET", `/v1/runs/${id}`)).body;
  const runsOf = async (agent: string) =>
    (await http<{ items: RunView[] }>(held.url, "GET", `/v1/runs?agent=${agent}&limit=200`)).body.items;
  const approve = (id: string) => http(held.url, "POST", `/v1/approvals/${id}`, { body: { decision: "approve" } });
  const pendingFor = async (runId: string) =>
    (await http<ApprovalView[]>(held.url, "GET", "/v1/approvals?status=pending")).body.find((a) => a.run_id === runId) as ApprovalView;
  const lastStatus = (events: StreamResponse[]) => {
    const last = events.at(-1)?.payload;
    return last?.$case === "statusUpdate" ? last.value.status : last?.$case === "task" ? last.value.status : undefined;
  };
  const collect = async (stream: AsyncIterable<StreamResponse>) => {
    const events: StreamResponse[] = [];
    for await (const e of stream) events.push(e);
    return events;
  };

  it("a delegated run waiting for an approval makes the task input-required, naming it; approved, resubscribing reaches the answer", async () => {
    const client = await clientFor(held.url, "desk");
    const task = await sendTask(client, "refund order 1042");
    expect(task.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    const [clerk] = await runsOf("clerk");
    expect(clerk).toMatchObject({ parent_run_id: task.id, status: "waiting" });
    const approval = await pendingFor(clerk.id);
    expect(approval.tool).toBe("wait.until");
    const said = textOf(task.status?.message);
    for (const text of ["human approval", approval.id, clerk.id, "wait.until"]) expect(said).toContain(text);
    expect(task.metadata?.outpost).toMatchObject({ run_status: "waiting", held_up_by: { run_id: clerk.id, approval_id: approval.id } });
    expect(await client.getTask({ tenant: "", id: task.id })).toEqual(task);
    // One message, one task (and one delegated run).
    expect(await runsOf("desk")).toHaveLength(1);
    expect(await runsOf("clerk")).toHaveLength(1);

    await approve(approval.id);
    const followed = await collect(client.resubscribeTask({ tenant: "", id: task.id }));
    expect(followed[0].payload?.$case).toBe("task");
    const end = lastStatus(followed);
    expect(end?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(textOf(end?.message)).toBe("Desk: Refund issued.");
  });

  it("streaming ends at input-required when a grandchild waits for an approval; subscribing then follows it through the approval", async () => {
    const client = await clientFor(held.url, "front");
    const events = await collect(client.sendMessageStream(request(userMessage("refund order 7"))));
    const taskId = (payloadOf(events[0]) as Task).id;
    const status = lastStatus(events);
    expect(status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    const clerk = (await runsOf("clerk")).find((r) => r.root_run_id === taskId) as RunView;
    expect(clerk).toMatchObject({ depth: 2, status: "waiting" });
    const approval = await pendingFor(clerk.id);
    expect(textOf(status?.message)).toContain(approval.id);
    expect(textOf(status?.message)).toContain(clerk.id);
    expect((await runsOf("front")).filter((r) => r.id === taskId)).toHaveLength(1);

    // Subscribing while it is held up: the snapshot says so, then the stream follows it through the approval to the end.
    const followed: StreamResponse[] = [];
    for await (const e of client.resubscribeTask({ tenant: "", id: taskId })) {
      followed.push(e);
      if (followed.length === 1) {
        expect((payloadOf(e) as Task).status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
        await approve(approval.id);
      }
    }
    expect(lastStatus(followed)?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(textOf(lastStatus(followed)?.message)).toBe("Front: Desk: Refund issued.");
  });

  it("a follow-up behind a task waiting for an approval is input-required, naming the task it is queued behind", async () => {
    const client = await clientFor(held.url, "gatekeeper");
    const first = await sendTask(client, "go ahead");
    expect(first.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    const approval = await pendingFor(first.id);
    const before = (await runsOf("gatekeeper")).length;

    const next = await sendTask(client, "and then?", { contextId: first.contextId });
    expect(next.id).not.toBe(first.id);
    expect(next.contextId).toBe(first.contextId);
    expect(next.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    expect(textOf(next.status?.message)).toContain(first.id);
    expect(textOf(next.status?.message)).toContain(approval.id);
    expect(next.metadata?.outpost).toMatchObject({
      run_status: "queued",
      held_up_by: { queued_behind: first.id, approval_id: approval.id },
    });
    // Streamed, another follow-up says the same.
    const streamed = await collect(client.sendMessageStream(request(userMessage("and after that?", { contextId: first.contextId }))));
    expect(lastStatus(streamed)?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    expect(textOf(lastStatus(streamed)?.message)).toContain(first.id);
    expect((await runsOf("gatekeeper")).length).toBe(before + 2);

    await approve(approval.id);
    const followed = await collect(client.resubscribeTask({ tenant: "", id: next.id }));
    expect(lastStatus(followed)?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(textOf(lastStatus(followed)?.message)).toBe("Noted: and then?");
    const after = (payloadOf(streamed[0]) as Task).id;
    expect(await waitForRun(run, after, terminal)).toMatchObject({ output: "Noted: and after that?" });
  });

  it("a retried message whose task waited before and runs again is not answered with the old wait", async () => {
    const client = await clientFor(held.url, "gatekeeper");
    const message = userMessage("twice, please");
    const task = (await client.sendMessage(request(message))) as Task;
    expect(task.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    const firstApproval = await pendingFor(task.id);
    await approve(firstApproval.id);

    // The retry replays the task's log from its start: the first wait is over; it ends at the second one.
    const events = await collect(client.sendMessageStream(request(message)));
    expect((payloadOf(events[0]) as Task).id).toBe(task.id);
    const status = lastStatus(events);
    expect(status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    const secondApproval = await pendingFor(task.id);
    expect(secondApproval.id).not.toBe(firstApproval.id);
    expect(textOf(status?.message)).toContain(secondApproval.id);
    expect(textOf(status?.message)).not.toContain(firstApproval.id);

    await approve(secondApproval.id);
    expect(await waitForRun(run, task.id, terminal)).toMatchObject({ status: "completed", output: "Waited twice." });
  });
});

const db = await createTestDatabase("outpost_a2a");

describe.skipIf(!db.reachable)("on PostgreSQL", () => {
  let a: Stack | undefined;
  let b: Stack | undefined;
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db.drop();
  });

  it("another Outpost on the same database answers for a task, and can cancel it", async () => {
    a = await startStack({ project: await load(root), databaseUrl: db.url });
    b = await startStack({ project: await load(root), databaseUrl: db.url });
    const onA = await clientFor(a.url, "concierge");
    const onB = await clientFor(b.url, "concierge");
    const done = await sendTask(onA, "Asked on A");
    expect(done.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(await onB.getTask({ tenant: "", id: done.id })).toEqual(done);

    const napping = await sendTask(onA, "nap on A");
    expect((await onB.cancelTask({ tenant: "", id: napping.id, metadata: undefined })).status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    expect((await onA.getTask({ tenant: "", id: napping.id })).status?.state).toBe(TaskState.TASK_STATE_CANCELED);
  });
});
