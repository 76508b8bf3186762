import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AgentDefinition, Project, ToolDefinition } from "../../src/definitions/types.js";
import type { ModelClient } from "../../src/models/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";

export const defaultLimits = {
  maxSteps: 20,
  maxTokens: 100_000,
  maxUsd: 1,
  maxWallTimeMs: 60_000,
  maxModelErrors: 2,
  maxDelegations: 10,
  maxDepth: 3,
  maxHandoffs: 5,
  maxToolOutput: 16_000,
};

export function project(tools: ToolDefinition[], limits: Partial<typeof defaultLimits> = {}, extraTools: string[] = []): Project {
  const l = { ...defaultLimits, ...limits };
  const agent: AgentDefinition = {
    name: "clerk",
    description: "test agent",
    instructions: "Do as scripted.",
    model: "m",
    tools: [...tools.map((t) => ({ name: t.name })), ...["wait.for_event", "wait.until", ...extraTools].map((name) => ({ name }))],
    limits: l,
    delegates: [],
    handoffs: [],
    fanOut: "all",
    file: "agents/clerk.yaml",
  };
  const root = mkdtempSync(join(tmpdir(), "outpost-rt-"));
  return {
    root,
    workspace: "test",
    models: new Map(),
    agents: new Map([["clerk", agent]]),
    tools: new Map(tools.map((t) => [t.name, t])),
    connections: new Map(),
    teams: new Map(),
    defaults: { model: "m", limits: l },
    scriptsDir: join(root, "scripts"),
  };
}

export const newDataDir = () => mkdtempSync(join(tmpdir(), "outpost-rt-data-"));

export const outposts: Outpost[] = [];

export async function start(p: Project, model: ModelClient, extra: Partial<Parameters<typeof startOutpost>[0]> = {}): Promise<Outpost> {
  const o = await startOutpost({ project: p, dataDir: newDataDir(), modelFor: () => model, ...extra });
  outposts.push(o);
  return o;
}

export async function finish(o: Outpost, id: string, timeoutMs = 10_000) {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), timeoutMs);
  try {
    for await (const e of o.streamEvents(id, { signal: ac.signal })) void e;
  } finally {
    clearTimeout(t);
  }
  return o.getRun(id);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
