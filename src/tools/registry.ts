/**
 * Every tool an Outpost offers: built-ins, the project's own, the
 * collaboration tools, and the tools of its connections (which come and go as
 * those systems connect). The run loop looks tools up here by name.
 */
import { z } from "zod";
import type { AgentDefinition, ToolDefinition } from "../definitions/types.js";
import type { ToolSpec } from "../models/index.js";
import { ARTIFACTS_READ } from "./artifacts.js";
import { type ToolSource, ToolUnavailable } from "./source.js";

export class ToolRegistry {
  private readonly sources = new Map<string, ToolSource>();
  private readonly specs = new WeakMap<ToolDefinition, ToolSpec>();

  constructor(
    private readonly fixed: ReadonlyMap<string, ToolDefinition>,
    sources: ToolSource[],
  ) {
    for (const s of sources) this.sources.set(s.name, s);
  }

  get(name: string): ToolDefinition | undefined {
    const tool = this.fixed.get(name);
    if (tool) return tool;
    const dot = name.indexOf(".");
    const source = dot > 0 ? this.sources.get(name.slice(0, dot)) : undefined;
    if (!source) return undefined;
    const found = source.tools().find((t) => t.name === name);
    if (found) return found;
    // A system that has not come up yet does not know its tools: a call gets why, not "unknown tool".
    const status = source.status();
    if (status.state === "ready") return undefined;
    return unavailable(name, source.name, status.error);
  }

  /** The tools an agent may call now, in the order it lists them (`<connection>.*` expanded). */
  forAgent(agent: AgentDefinition): ToolDefinition[] {
    const out: ToolDefinition[] = [];
    const seen = new Set<string>();
    const add = (t: ToolDefinition | undefined) => {
      if (t && !seen.has(t.name)) {
        seen.add(t.name);
        out.push(t);
      }
    };
    for (const ref of agent.tools) {
      if (ref.name.endsWith(".*")) {
        for (const t of this.sources.get(ref.name.slice(0, -2))?.tools() ?? []) add(t);
      } else {
        const t = this.get(ref.name);
        if (t && !unavailableTools.has(t)) add(t); // a model is not offered what cannot be called
      }
    }
    if (out.length > 0) add(this.fixed.get(ARTIFACTS_READ));
    return out;
  }

  specsFor(agent: AgentDefinition): ToolSpec[] {
    return this.forAgent(agent).map((t) => {
      let spec = this.specs.get(t);
      if (!spec) {
        let schema = t.inputSchema;
        if (!schema) {
          schema = z.toJSONSchema(t.input, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
          delete schema.$schema;
        }
        spec = { name: t.name, description: t.description, inputSchema: schema };
        this.specs.set(t, spec);
      }
      return spec;
    });
  }

  listSources(): ToolSource[] {
    return [...this.sources.values()];
  }
}

const unavailableTools = new WeakSet<ToolDefinition>();

function unavailable(name: string, source: string, error: string | undefined): ToolDefinition {
  const tool: ToolDefinition = {
    name,
    description: `${source} is unavailable`,
    input: z.record(z.string(), z.unknown()),
    handler: () => {
      throw new ToolUnavailable(`${source} is unavailable${error ? `: ${error}` : ""}; Outpost keeps reconnecting — try again later`);
    },
  };
  unavailableTools.add(tool);
  return tool;
}
