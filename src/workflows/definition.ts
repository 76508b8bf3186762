/**
 * What a workflow is: a durable business process of steps, written as workflows/<name>.yaml or with
 * `defineWorkflow()` in TypeScript (one shape, one schema). Steps call a tool, ask an agent for a typed answer,
 * wait (for an approval, an event or a time), emit an event, branch on a condition, loop over a list or run
 * branches side by side; a step may name the tool call that undoes it (`compensate`).
 *
 * Values in `arguments`, `task`, `payload`, `message`, `if` and `for_each` may hold `{{ expression }}`
 * (JSONata, over `input`, `steps.<id>.output` and a loop's item): see expressions.ts.
 */
import { z } from "zod";
import { DURATION_HINT, parseDuration } from "../definitions/duration.js";
import { eventName } from "../definitions/schemas.js";
import { parseApproval } from "../security/policy/policy-set.js";
import { expressionProblem } from "./expressions.js";

const id = z
  .string()
  .regex(/^[a-z][a-z0-9_]*$/, "step ids are lower_snake_case (letters, digits, _), starting with a letter: expressions name them");
const duration = z.union([z.string(), z.number()]).superRefine((v, ctx) => {
  try {
    parseDuration(v);
  } catch {
    ctx.addIssue({ code: "custom", message: `${JSON.stringify(v)} is not a duration — ${DURATION_HINT}` });
  }
});
const jsonSchema = z.record(z.string(), z.unknown()).superRefine((schema, ctx) => {
  try {
    z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: `not a JSON Schema Outpost can check answers with: ${(err as Error).message}` });
  }
});
const toolCall = z.strictObject({ tool: z.string().min(1), arguments: z.unknown().optional() });
const common = { id, description: z.string().optional(), compensate: toolCall.optional() };

export type StepInput =
  | { id: string; description?: string; compensate?: ToolCallInput; tool: string; arguments?: unknown; retry?: RetryInput }
  | {
      id: string;
      description?: string;
      compensate?: ToolCallInput;
      agent: string;
      task: string;
      output_schema?: Record<string, unknown>;
      retries?: number;
    }
  | { id: string; description?: string; compensate?: ToolCallInput; approval: { approver?: string; message: string } }
  | { id: string; description?: string; compensate?: ToolCallInput; wait: { event: string } | { for: string | number } | { until: string } }
  | { id: string; description?: string; compensate?: ToolCallInput; emit: { event: string; payload?: unknown } }
  | { id: string; description?: string; compensate?: ToolCallInput; if: string; then: StepInput[]; else?: StepInput[] }
  | { id: string; description?: string; compensate?: ToolCallInput; for_each: string; as?: string; do: StepInput[] }
  | { id: string; description?: string; compensate?: ToolCallInput; parallel: StepInput[][] };
export interface ToolCallInput {
  tool: string;
  arguments?: unknown;
}
export interface RetryInput {
  attempts: number;
  backoff?: string | number;
}

const expr = (what: string) =>
  z.string().superRefine((text, ctx) => {
    const problem = expressionProblem(text);
    if (problem) ctx.addIssue({ code: "custom", message: `${what}: ${problem}` });
  });

export const stepSchema: z.ZodType<StepInput> = z.lazy(() =>
  z.union([
    z.strictObject({
      ...common,
      tool: z.string().min(1),
      arguments: z.unknown().optional(),
      retry: z.strictObject({ attempts: z.number().int().min(1).max(20), backoff: duration.optional() }).optional(),
    }),
    z.strictObject({
      ...common,
      agent: z.string().min(1),
      task: z.string().min(1),
      output_schema: jsonSchema.optional(),
      retries: z.number().int().min(0).max(5).optional(),
    }),
    z.strictObject({
      ...common,
      approval: z.strictObject({
        approver: z
          .string()
          .superRefine((v, ctx) => {
            const parsed = parseApproval(v);
            if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: parsed });
          })
          .optional(),
        message: z.string().min(1),
      }),
    }),
    z.strictObject({
      ...common,
      wait: z.union([
        z.strictObject({ event: z.string().min(1) }),
        z.strictObject({ for: duration }),
        z.strictObject({ until: expr("until") }),
      ]),
    }),
    z.strictObject({ ...common, emit: z.strictObject({ event: eventName, payload: z.unknown().optional() }) }),
    z.strictObject({
      ...common,
      if: expr("if"),
      // biome-ignore lint/suspicious/noThenProperty: the YAML key (if/then/else); the engine's field is `whenTrue`
      then: z.array(stepSchema).min(1),
      else: z.array(stepSchema).optional(),
    }),
    z.strictObject({
      ...common,
      for_each: expr("for_each"),
      as: id.optional(),
      do: z.array(stepSchema).min(1),
    }),
    z.strictObject({ ...common, parallel: z.array(z.array(stepSchema).min(1)).min(2) }),
  ]),
);

export const workflowFileSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/, "workflow names are lower-case words joined by -, e.g. month-end-close"),
  description: z.string().optional(),
  /** The team the workflow acts for: its policy principal's team (and the team of budget caps). */
  team: z.string().optional(),
  clearance: z.enum(["public", "internal", "confidential", "restricted"]).optional(),
  /** JSON Schema of the input a run is started with. */
  input: jsonSchema.optional(),
  /** Named events that each start a run of the workflow, with the event's payload as its input. */
  on_events: z.array(eventName).optional(),
  steps: z.array(stepSchema).min(1),
  /** The run's output; default: the last top-level step's. */
  output: z.unknown().optional(),
});

export type WorkflowInput = z.input<typeof workflowFileSchema>;

/** The TypeScript form: the same shape as a workflows/*.yaml file, typed. */
export function defineWorkflow(definition: WorkflowInput): WorkflowInput {
  return definition;
}

// ---- the normalized definition the engine runs (and records in workflow.started) ------------------------------

export type Step =
  | {
      kind: "tool";
      id: string;
      tool: string;
      arguments: unknown;
      retry: { attempts: number; backoffMs: number };
      compensate?: ToolCallInput;
    }
  | {
      kind: "agent";
      id: string;
      agent: string;
      task: string;
      outputSchema: Record<string, unknown> | null;
      retries: number;
      compensate?: ToolCallInput;
    }
  | { kind: "approval"; id: string; approver: { role: string; group: string | null }; message: string; compensate?: ToolCallInput }
  | { kind: "wait_event"; id: string; event: string; compensate?: ToolCallInput }
  | { kind: "sleep"; id: string; forMs: number | null; until: string | null; compensate?: ToolCallInput }
  | { kind: "emit"; id: string; event: string; payload: unknown; compensate?: ToolCallInput }
  | { kind: "branch"; id: string; if: string; whenTrue: Step[]; whenFalse: Step[]; compensate?: ToolCallInput }
  | { kind: "loop"; id: string; forEach: string; as: string; do: Step[]; compensate?: ToolCallInput }
  | { kind: "parallel"; id: string; branches: Step[][]; compensate?: ToolCallInput };

export interface WorkflowDefinition {
  name: string;
  description: string;
  team: string | null;
  clearance: "public" | "internal" | "confidential" | "restricted";
  inputSchema: Record<string, unknown> | null;
  /** Events that start a run each (none: []). */
  onEvents: string[];
  steps: Step[];
  output: unknown;
  /** Relative to the project root. */
  file: string;
}

/** How tool steps are tried when they say nothing: once more after 1 s, then again after 2 s. */
export const DEFAULT_TOOL_RETRY = { attempts: 3, backoffMs: 1_000 };
/** Invalid answers an agent step asks again about before it fails. */
export const DEFAULT_AGENT_RETRIES = 2;

export function normalizeSteps(steps: StepInput[]): Step[] {
  return steps.map((s): Step => {
    const base = { id: s.id, ...(s.compensate ? { compensate: s.compensate } : {}) };
    if ("tool" in s) {
      const retry = s.retry
        ? {
            attempts: s.retry.attempts,
            backoffMs: s.retry.backoff === undefined ? DEFAULT_TOOL_RETRY.backoffMs : parseDuration(s.retry.backoff),
          }
        : DEFAULT_TOOL_RETRY;
      return { kind: "tool", ...base, tool: s.tool, arguments: s.arguments ?? {}, retry };
    }
    if ("agent" in s) {
      return {
        kind: "agent",
        ...base,
        agent: s.agent,
        task: s.task,
        outputSchema: s.output_schema ?? null,
        retries: s.retries ?? DEFAULT_AGENT_RETRIES,
      };
    }
    if ("approval" in s) {
      const parsed = s.approval.approver ? parseApproval(s.approval.approver) : { role: "operator", group: null };
      return {
        kind: "approval",
        ...base,
        approver: typeof parsed === "string" ? { role: "operator", group: null } : parsed,
        message: s.approval.message,
      };
    }
    if ("wait" in s) {
      const w = s.wait;
      if ("event" in w) return { kind: "wait_event", ...base, event: w.event };
      if ("for" in w) return { kind: "sleep", ...base, forMs: parseDuration(w.for), until: null };
      return { kind: "sleep", ...base, forMs: null, until: w.until };
    }
    if ("emit" in s) return { kind: "emit", ...base, event: s.emit.event, payload: s.emit.payload ?? {} };
    if ("if" in s) return { kind: "branch", ...base, if: s.if, whenTrue: normalizeSteps(s.then), whenFalse: normalizeSteps(s.else ?? []) };
    if ("for_each" in s) return { kind: "loop", ...base, forEach: s.for_each, as: s.as ?? "item", do: normalizeSteps(s.do) };
    return { kind: "parallel", ...base, branches: s.parallel.map(normalizeSteps) };
  });
}

/** Every step of the tree, depth first, with the JSON path of its definition (for file:line). */
export function* walkSteps(steps: Step[], at: (string | number)[] = ["steps"]): Generator<{ step: Step; at: (string | number)[] }> {
  for (const [i, step] of steps.entries()) {
    const here = [...at, i];
    yield { step, at: here };
    if (step.kind === "branch") {
      yield* walkSteps(step.whenTrue, [...here, "then"]);
      yield* walkSteps(step.whenFalse, [...here, "else"]);
    } else if (step.kind === "loop") {
      yield* walkSteps(step.do, [...here, "do"]);
    } else if (step.kind === "parallel") {
      for (const [b, branch] of step.branches.entries()) yield* walkSteps(branch, [...here, "parallel", b]);
    }
  }
}
