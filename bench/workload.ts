/**
 * The benchmark workload: one agent whose scripted model makes `toolCalls`
 * tool calls, one per turn, then answers — 2 × toolCalls + 1 steps per run,
 * every step durably committed. The tool is trivial, so what is measured is
 * the platform.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import type { AgentDefinition, Connection, Project, ToolDefinition } from "../src/definitions/types.js";
import { createScriptedClient, type ModelClient, type ModelRequest } from "../src/models/index.js";

export const TOOL_CALLS = 20;
export const STEPS_PER_RUN = 2 * TOOL_CALLS + 1;

const limits = {
  maxSteps: 1000,
  maxTokens: 10_000_000,
  maxUsd: 100,
  maxWallTimeMs: 3_600_000,
  maxModelErrors: 3,
  maxDelegations: 10,
  maxDepth: 3,
  maxHandoffs: 5,
  maxToolOutput: 16_000,
};

/** An agent of the benchmark project on the scripted model, with these tools and delegates. */
export function benchAgent(name: string, tools: string[], delegates: string[] = []): AgentDefinition {
  return {
    name,
    description: `benchmark agent ${name}`,
    instructions: "Do as scripted.",
    model: "scripted",
    tools: [...tools, ...delegates.map((d) => `delegate.${d}`)].map((t) => ({ name: t })),
    limits,
    delegates,
    handoffs: [],
    fanOut: "all",
    file: `agents/${name}.yaml`,
  };
}

/** The trivial in-process tool every benchmark agent may call. */
export const counterTool: ToolDefinition<{ n: number }> = {
  name: "counter.add",
  description: "Adds n to a counter.",
  input: z.object({ n: z.number() }),
  handler: ({ input }) => ({ ok: true, n: input.n }),
};

/** A project of these agents (default: the one `bench` agent), with the counter tool and these connections. */
export function benchProject(agents: AgentDefinition[] = [benchAgent("bench", ["counter.add"])], connections: Connection[] = []): Project {
  const root = mkdtempSync(join(tmpdir(), "outpost-bench-project-"));
  return {
    root,
    workspace: "bench",
    models: new Map([["scripted", { name: "scripted", candidates: [] }]]),
    agents: new Map(agents.map((a) => [a.name, a])),
    tools: new Map([["counter.add", counterTool as ToolDefinition]]),
    connections: new Map(connections.map((c) => [c.name, c])),
    teams: new Map(),
    defaults: { model: "scripted", limits },
    scriptsDir: join(root, "scripts"),
  };
}

/** The scripted model: 20 tool-call turns, then a final answer. */
export function benchModel(latencyMs = 0): ModelClient {
  const turns = [
    ...Array.from({ length: TOOL_CALLS }, (_, i) => ({ tool_calls: [{ name: "counter.add", args: { n: i + 1 } }] })),
    { text: "done" },
  ];
  const client = createScriptedClient("scripted", { dialogues: [{ turns }] });
  if (latencyMs === 0) return client;
  return {
    alias: client.alias,
    provider: client.provider,
    modelId: client.modelId,
    location: client.location,
    price: client.price,
    async generate(request: ModelRequest) {
      await new Promise((r) => setTimeout(r, latencyMs));
      return client.generate(request);
    },
  };
}
