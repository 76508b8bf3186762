/**
 * What a memory tool call asks of policy: the scopes it touches, resolved from its arguments and who the run is,
 * and one memory.read or memory.write request per scope. Pure: decide() calls it.
 */
import type { Classification, ToolDefinition } from "../definitions/types.js";
import { memoryRequest, type RunFacts } from "../security/policy/index.js";
import type { PolicyRequest } from "../security/types.js";
import { classificationLevel } from "../security/types.js";
import { type RunScopeFacts, runScopes, scopeForTool } from "./scopes.js";

export type MemoryScopeResolution =
  | {
      access: "read" | "write";
      scopes: string[];
      /** true: the call names one scope and is refused if policy denies it; false: it works in whichever of
       * `scopes` policy allows (recall across every readable scope; forget, wherever the item is). */
      exact: boolean;
      /** For a write: the class of what is written. */
      classification?: Classification;
    }
  | { error: string };

export function resolveMemoryScopes(
  tool: Pick<ToolDefinition, "name" | "memory">,
  args: unknown,
  facts: RunScopeFacts & { runClassification: Classification },
): MemoryScopeResolution {
  const access = tool.memory?.access ?? "read";
  const a = (args ?? {}) as { scope?: string; classification?: Classification };
  try {
    if (tool.name === "memory.remember") {
      const asked = a.classification ?? "internal";
      const classification = classificationLevel(facts.runClassification) > classificationLevel(asked) ? facts.runClassification : asked;
      return { access, scopes: [scopeForTool(a.scope ?? "agent", facts)], exact: true, classification };
    }
    if (a.scope !== undefined) return { access, scopes: [scopeForTool(a.scope, facts)], exact: true };
    return { access, scopes: runScopes(facts), exact: false };
  } catch (err) {
    return { error: `${tool.name}: ${(err as Error).message}` };
  }
}

/** One request per scope. A read asks with the reader's clearance: recall never returns anything above it. */
export function memoryRequests(
  facts: RunFacts & { clearance: Classification },
  resolution: Exclude<MemoryScopeResolution, { error: string }>,
): PolicyRequest[] {
  const action = resolution.access === "read" ? "memory.read" : "memory.write";
  const classification = resolution.access === "read" ? facts.clearance : (resolution.classification ?? "internal");
  return resolution.scopes.map((scope) => memoryRequest({ ...facts, action, scope, classification }));
}
