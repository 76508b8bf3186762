/** Workflow test parts: tools that record what a system would have applied, and workflows put into a project. */
import { z } from "zod";
import type { Project, ToolDefinition } from "../../src/definitions/types.js";
import { normalizeSteps, type WorkflowDefinition, type WorkflowInput, workflowFileSchema } from "../../src/workflows/definition.js";

/** Calls per tool and idempotency key: what a system would have applied. */
export const applied: { tool: string; key: string; input: unknown }[] = [];

export function tool(name: string, run: (input: Record<string, unknown>) => unknown = (i) => i): ToolDefinition {
  return {
    name,
    description: name,
    input: z.record(z.string(), z.unknown()),
    handler: async ({ input, idempotencyKey }) => {
      applied.push({ tool: name, key: idempotencyKey, input });
      return run(input as Record<string, unknown>);
    },
  };
}

export function definition(input: WorkflowInput): WorkflowDefinition {
  const w = workflowFileSchema.parse(input);
  return {
    name: w.name,
    description: "",
    team: null,
    clearance: "internal",
    inputSchema: w.input ?? null,
    onEvents: w.on_events ?? [],
    steps: normalizeSteps(w.steps),
    output: w.output,
    file: `workflows/${w.name}.yaml`,
  };
}

export function withWorkflows(p: Project, ...workflows: WorkflowInput[]): Project {
  p.workflows = new Map(workflows.map((w) => [w.name, definition(w)]));
  return p;
}
