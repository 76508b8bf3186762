import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import type { RunView } from "../../src/core/api.js";
import { isTerminal } from "../../src/core/api.js";
import { loadProject } from "../../src/definitions/index.js";
import type { Project } from "../../src/definitions/types.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { createServer, listen } from "../../src/server/index.js";
import { approverKeyOf, authorizeFetchTo, TEST_ADMIN_KEY } from "../helpers/auth.js";
import { collectLogs } from "./logs.js";

export { collectLogs };

export const SHOP = path.resolve(import.meta.dirname, "../fixtures/shop");

export interface Stack {
  url: string;
  outpost: Outpost;
  server: FastifyInstance;
  logs: ReturnType<typeof collectLogs>;
  close(): Promise<void>;
}

/**
 * The real runtime on the Acme example (SQLite in a temp folder) behind the HTTP server on 127.0.0.1:<free port>.
 * `project`: another project folder, or a project already loaded (e.g. with teams set in code).
 */
export async function startStack(
  options: {
    bodyLimit?: number;
    project?: string | Project;
    /** A data folder to reuse (a restart): kept on close. Default: a fresh temp folder, removed on close. */
    dataDir?: string;
    /** postgres://… to run on PostgreSQL instead of SQLite. */
    databaseUrl?: string;
    publicUrl?: string;
    /** The admin key adopted at start and sent by fetch (default TEST_ADMIN_KEY; another workspace on the same data needs its own). */
    adminKey?: string;
  } = {},
): Promise<Stack> {
  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), "outpost-server-test-")));
  const logs = collectLogs();
  const project = typeof options.project === "object" ? options.project : await loadProject(options.project ?? SHOP);
  // Scripted model only: make sure no real provider is picked up from the environment.
  const env = { ...process.env };
  delete env.OPENAI_API_KEY;
  delete env.OUTPOST_LLM_BASE_URL;
  delete env.OUTPOST_DATABASE_URL;
  env.OUTPOST_ADMIN_KEY = options.adminKey ?? TEST_ADMIN_KEY; // requests from this test process carry it (authorizeFetchTo)
  const outpost = await startOutpost({
    project,
    dataDir,
    env,
    logger: logs.logger,
    ...(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {}),
  });
  const adminKey = options.adminKey ?? TEST_ADMIN_KEY;
  await outpost.security.identities.store.adoptKey(project.workspace, approverKeyOf(adminKey), {
    name: "test approver",
    roles: ["operator"],
    createdBy: "test",
  });
  const server = await createServer(outpost, {
    version: "test",
    logger: logs.logger,
    ...(options.bodyLimit ? { bodyLimit: options.bodyLimit } : {}),
    ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
  });
  const url = await listen(server, { host: "127.0.0.1", port: 0 });
  authorizeFetchTo(url, options.adminKey ?? TEST_ADMIN_KEY);
  return {
    url,
    outpost,
    server,
    logs,
    async close() {
      await server.close(); // also closes the runtime
      if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface HttpResult<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** One HTTP request; `body` objects are sent as JSON, strings as they are. */
export async function http<T = any>(
  url: string,
  method: string,
  pathname: string,
  init: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<HttpResult<T>> {
  const isString = typeof init.body === "string";
  const res = await fetch(`${url}${pathname}`, {
    method,
    headers: {
      ...(init.body !== undefined && !isString ? { "content-type": "application/json" } : {}),
      ...init.headers,
    },
    ...(init.body !== undefined ? { body: isString ? (init.body as string) : JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, body: body as T, text };
}

/** Polls until `until(run)` holds (bounded, so a stuck run fails the test rather than hanging it). */
export async function waitForRun(
  get: (id: string) => Promise<RunView>,
  id: string,
  until: (run: RunView) => boolean,
  timeoutMs = 15_000,
): Promise<RunView> {
  const deadline = Date.now() + timeoutMs;
  let run = await get(id);
  while (!until(run)) {
    if (Date.now() > deadline) {
      throw new Error(`run ${id} did not reach the expected state; last: ${JSON.stringify(run)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
    run = await get(id);
  }
  return run;
}

export const terminal = (run: RunView) => isTerminal(run.status);
export const waiting = (run: RunView) => run.status === "waiting";

/**
 * A small project on the scripted model for the protocol endpoints (OpenAI-compatible, MCP), in a temp folder:
 * - `echo-bot` answers "You said: <input>";
 * - `broken` has no dialogue for any message, so its runs fail;
 * - `gatekeeper` calls `wait.until`, which needs a person's approval for it;
 * - `sleeper` waits one second (`wait.until`), then answers "Rested.";
 * - `back-office` is in a team that does not expose it.
 */
export async function protocolProject(): Promise<{ project: Project; root: string }> {
  const root = await mkdtemp(path.join(tmpdir(), "outpost-protocols-"));
  const files: Record<string, string> = {
    "outpost.yaml": [
      "version: 1",
      "workspace: protocols",
      "models:",
      "  offline:",
      "    - provider: scripted",
      "defaults:",
      "  model: offline",
      "  limits: { max_steps: 10, max_tokens: 100000, max_usd: 1, max_wall_time: 1m, max_model_errors: 1 }",
      "",
    ].join("\n"),
    "agents/echo-bot.yaml": "name: echo-bot\ndescription: Repeats what you say.\ninstructions: Repeat the message.\n",
    "scripts/echo-bot.yaml": 'dialogues:\n  - turns:\n      - text: "You said: ${input}"\n',
    "agents/broken.yaml": "name: broken\ndescription: Always fails.\ninstructions: Fail.\n",
    "scripts/broken.yaml": 'dialogues:\n  - when: "^this never matches$"\n    turns:\n      - text: "unreachable"\n',
    "agents/gatekeeper.yaml": [
      "name: gatekeeper",
      "description: Waits for a person before it goes on.",
      "instructions: Wait, then answer.",
      "tools:",
      "  - name: wait.until",
      "    approval: required",
      "",
    ].join("\n"),
    "scripts/gatekeeper.yaml": [
      "dialogues:",
      "  - turns:",
      "      - tool_calls:",
      "          - name: wait.until",
      "            args: { seconds: 1 }",
      '      - text: "Waited."',
      "",
    ].join("\n"),
    "agents/sleeper.yaml": "name: sleeper\ndescription: Rests a second, then answers.\ninstructions: Rest.\ntools: [wait.until]\n",
    "scripts/sleeper.yaml": [
      "dialogues:",
      "  - turns:",
      "      - tool_calls:",
      "          - name: wait.until",
      "            args: { seconds: 1 }",
      '      - text: "Rested."',
      "",
    ].join("\n"),
    "agents/back-office.yaml": "name: back-office\ndescription: Internal only.\ninstructions: Answer colleagues.\n",
    "scripts/back-office.yaml": 'dialogues:\n  - turns:\n      - text: "internal"\n',
  };
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), text);
  }
  const project = await loadProject(root);
  project.teams.set("operations", {
    name: "operations",
    description: "Back office.",
    lead: "back-office",
    members: ["back-office"],
    exposes: [],
    file: "teams/operations.yaml",
  });
  return { project, root };
}

/**
 * A scripted-model project where work is delegated (for the protocol endpoints), in a temp folder:
 * - `desk` delegates: "refund …" to `clerk`, "check …" to `runner`; anything else it answers "Desk noted: <input>";
 * - `front` delegates "refund …" to `desk` (so `clerk` is its grandchild), and answers anything else itself;
 * - `clerk` calls `wait.until`, which needs a person's approval, then answers "Refund issued.";
 * - `runner` answers "Checked." (no approval: a child that simply works);
 * - `gatekeeper` waits for an approval for "go…" ("Waited." after it), for two in turn for "twice…" (the first
 *   approved, it waits two seconds before it asks for the second), and answers anything else "Noted: <input>".
 * A delegating agent answers "<agent>: <what its delegate answered>".
 */
export async function delegationProject(): Promise<{ project: Project; root: string }> {
  const root = await mkdtemp(path.join(tmpdir(), "outpost-delegation-"));
  const approvalTool = ["tools:", "  - name: wait.until", "    approval: required", ""].join("\n");
  const delegating = (name: string, routes: [string, string][]) =>
    [
      "dialogues:",
      ...routes.flatMap(([when, to]) => [
        `  - when: '${when}'`,
        "    turns:",
        `      - tool_calls: [{ name: delegate.${to}, args: { task: "\${input}" } }]`,
        `      - text: "${name}: \${last_tool_result}"`,
      ]),
      "  - turns:",
      `      - text: "${name} noted: \${input}"`,
      "",
    ].join("\n");
  const files: Record<string, string> = {
    "outpost.yaml": [
      "version: 1",
      "workspace: delegation",
      "models:",
      "  offline:",
      "    - provider: scripted",
      "defaults:",
      "  model: offline",
      "  limits: { max_steps: 10, max_tokens: 100000, max_usd: 1, max_wall_time: 10m, max_model_errors: 1 }",
      "",
    ].join("\n"),
    "agents/desk.yaml":
      "name: desk\ndescription: Takes requests and gets them done.\ninstructions: Delegate.\ndelegates: [clerk, runner]\n",
    "scripts/desk.yaml": delegating("Desk", [
      ["^refund", "clerk"],
      ["^check", "runner"],
    ]),
    "agents/front.yaml": "name: front\ndescription: The front office.\ninstructions: Delegate.\ndelegates: [desk]\n",
    "scripts/front.yaml": delegating("Front", [["^refund", "desk"]]),
    "agents/clerk.yaml": `name: clerk\ndescription: Issues refunds, each approved by a person.\ninstructions: Refund.\n${approvalTool}`,
    "scripts/clerk.yaml": [
      "dialogues:",
      "  - turns:",
      "      - tool_calls: [{ name: wait.until, args: { seconds: 1 } }]",
      '      - text: "Refund issued."',
      "",
    ].join("\n"),
    "agents/runner.yaml": "name: runner\ndescription: Checks things.\ninstructions: Check.\n",
    "scripts/runner.yaml": 'dialogues:\n  - turns:\n      - text: "Checked."\n',
    "agents/gatekeeper.yaml": `name: gatekeeper\ndescription: Waits for a person before it goes on.\ninstructions: Wait.\n${approvalTool}`,
    "scripts/gatekeeper.yaml": [
      "dialogues:",
      "  - when: '^go'",
      "    turns:",
      "      - tool_calls: [{ name: wait.until, args: { seconds: 1 } }]",
      '      - text: "Waited."',
      "  - when: '^twice'",
      "    turns:",
      "      - tool_calls: [{ name: wait.until, args: { seconds: 2 } }]",
      "      - tool_calls: [{ name: wait.until, args: { seconds: 1 } }]",
      '      - text: "Waited twice."',
      "  - turns:",
      '      - text: "Noted: ${input}"',
      "",
    ].join("\n"),
  };
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), text);
  }
  return { project: await loadProject(root), root };
}
