/**
 * The run event log vocabulary. A run's whole history is an append-only list
 * of these; `decide()` folds them into state. Every event is versioned (`v`)
 * and validated with zod when read back, so a changed shape is a migration,
 * never a silent misread.
 */
import { z } from "zod";

export const EVENT_SCHEMA_VERSION = 1;

const usage = z.object({ input_tokens: z.number(), output_tokens: z.number() });
const toolCall = z.object({ id: z.string(), name: z.string(), arguments: z.string() });
const runError = z.object({ code: z.string(), message: z.string() });
export const waitingFor = z.discriminatedUnion("kind", [
  /** `expires_at`: the approval's expiry, when the run wakes to deny it if nobody decided. */
  z.object({ kind: z.literal("approval"), approval_id: z.string(), expires_at: z.string().optional() }),
  /** `retry`: a call whose outcome is unknown (its system went away) is retried, with its key, at `until`. */
  z.object({ kind: z.literal("timer"), until: z.string(), retry: z.string().optional() }),
  z.object({ kind: z.literal("event"), event: z.string() }),
  /** Delegated child runs: woken when all have finished, or at the first failure under `fail_fast`. */
  z.object({ kind: z.literal("children"), run_ids: z.array(z.string()), mode: z.enum(["all", "fail_fast"]) }),
  /** A workflow waiting on several steps at once (parallel branches): woken by the first of them; `until`: the
   * earliest timer among them. */
  z.object({
    kind: z.literal("any"),
    approvals: z.array(z.string()),
    events: z.array(z.string()),
    run_ids: z.array(z.string()),
    until: z.string().optional(),
  }),
]);

const contextMessage = z.object({ role: z.enum(["user", "assistant"]), content: z.string() });
/** Where a delegated run sits in its tree: who asked, and the chain of agents above it (for cycle checks). */
const parentLink = z.object({
  run_id: z.string(),
  call_id: z.string(),
  root_run_id: z.string(),
  depth: z.number(),
  chain: z.array(z.string()),
});

export const eventData = {
  "run.started": z.object({
    agent: z.string(),
    input: z.string(),
    session_id: z.string(),
    /** Earlier turns the caller sent along (OpenAI-style clients). */
    context: z.array(contextMessage).optional(),
    /** Set on delegated runs. */
    parent: parentLink.optional(),
    /** Who the run acts on behalf of (`user:<id>` or `key:<id>`): in every policy decision, never its approver. */
    by: z.string().optional(),
    /** The input carried what looks like injected instructions: the run starts tainted. */
    tainted: z.array(z.string()).optional(),
  }),
  "model.called": z.object({
    step: z.number(),
    model: z.string(),
    /** The prompt's tokens as checked against the window (runtime/context-window.ts), and the window. An upper bound:
     * exact once the prompt nears the window, its UTF-8 size below that (what the model billed is model.responded's
     * usage). */
    prompt_tokens: z.number().optional(),
    context_window: z.number().optional(),
  }),
  "model.responded": z.object({
    step: z.number(),
    text: z.string(),
    tool_calls: z.array(toolCall),
    usage,
    cost_usd: z.number(),
    model: z.string(),
    finish_reason: z.string(),
  }),
  "model.failed": z.object({ step: z.number(), error: runError }),
  "tool.called": z.object({
    call_id: z.string(),
    tool: z.string(),
    arguments: z.unknown(),
    idempotency_key: z.string(),
  }),
  "tool.completed": z.object({
    call_id: z.string(),
    tool: z.string(),
    output: z.string(),
    is_error: z.boolean(),
    /** The call was rejected before running (malformed output from the model). */
    model_error: z.boolean().optional(),
    /** The data class of what the call returned (the tool's or its connection's): raises the run's classification. */
    classification: z.enum(["public", "internal", "confidential", "restricted"]).optional(),
    /** The output carried what looks like injected instructions (security/guardrails): the run is tainted from here on. */
    tainted: z.array(z.string()).optional(),
  }),
  "approval.requested": z.object({
    approval_id: z.string(),
    call_id: z.string(),
    tool: z.string(),
    arguments: z.unknown(),
    /** What is approved, bound by hash (security/approvals): agent, tool, arguments, run, call key. */
    action_hash: z.string().optional(),
    /** Who may approve (role, optional group) and until when (ISO time); the policies that asked for it. */
    approver: z.object({ role: z.string(), group: z.string().nullable() }).optional(),
    expires_at: z.string().optional(),
    policies: z.array(z.string()).optional(),
  }),
  "approval.decided": z.object({
    approval_id: z.string(),
    /** `expire`: nobody decided in time — a denial. */
    decision: z.enum(["approve", "deny", "expire"]),
    reason: z.string().nullable(),
    by: z.string().nullable(),
    /** The action hash the approver was shown (from the approval record when it was decided). */
    action_hash: z.string().optional(),
  }),
  "run.waiting": z.object({ for: waitingFor }),
  "run.resumed": z.object({ reason: z.string() }),
  "event.received": z.object({ name: z.string(), payload: z.unknown() }),
  /** A delegation call started its child run (the child's id is recorded before the parent waits). */
  "delegation.started": z.object({ call_id: z.string(), child_run_id: z.string(), agent: z.string() }),
  /** A child run ended; appended to the parent's log by the store. */
  "child.finished": z.object({
    call_id: z.string(),
    /** The delegation call's idempotency key (call ids alone may repeat across responses). */
    call_key: z.string().optional(),
    child_run_id: z.string(),
    agent: z.string(),
    status: z.enum(["completed", "failed", "cancelled"]),
    output: z.string().nullable(),
    error: runError.nullable(),
    /** The child run was tainted (security/guardrails): so is the parent, once it reads the answer. */
    tainted: z.array(z.string()).optional(),
  }),
  /** The conversation passed to another agent, which continues this run (and the session). */
  "run.handed_off": z.object({ call_id: z.string(), from: z.string(), to: z.string(), reason: z.string() }),
  /** A policy decision on an action of this run (security/policy): recorded before the action, replayable later. */
  "policy.decided": z.object({
    /** The tool call it decided, when it was one (tool.call, agent.delegate, agent.handoff). */
    call_id: z.string().optional(),
    request: z.object({
      action: z.string(),
      agent: z.string(),
      on_behalf_of: z.string().nullable(),
      resource: z.object({ type: z.string(), id: z.string(), attributes: z.record(z.string(), z.unknown()).optional() }),
      context: z.record(z.string(), z.unknown()),
    }),
    effect: z.enum(["allow", "deny"]),
    policies: z.array(z.string()),
    approval: z.object({ role: z.string(), group: z.string().nullable(), policies: z.array(z.string()) }).nullable(),
    /** SHA-256 of the policy texts in force. */
    policies_sha256: z.string(),
  }),
  /** What the runtime recalled from memory for the next model call (memory/): ids and versions, not the text, so an
   * erased item leaves no copy in the log. Scopes policy refused are listed; the items' class raises the run's. */
  "memory.recalled": z.object({
    step: z.number(),
    scopes: z.array(z.string()),
    refused: z.array(z.string()).optional(),
    items: z.array(z.object({ id: z.string(), version: z.number(), scope: z.string(), score: z.number() })),
    tokens: z.number(),
    classification: z.enum(["public", "internal", "confidential", "restricted"]).optional(),
    /** A recalled item carried what looks like injected instructions: the run is tainted from here on. */
    tainted: z.array(z.string()).optional(),
  }),
  /** Older history folded into the running summary (runtime/context-window.ts): the summary replaces, in every later
   * prompt of the run and of its session, the turns it stands for; those turns stay in the log. */
  "context.compacted": z.object({
    step: z.number(),
    summary: z.string(),
    /** What the summary stands for: earlier runs of the session up to this session seq (null: none), and this
     * run's first `messages` messages (its input excepted: it is kept word for word). */
    through: z.object({ session_seq: z.number().nullable(), messages: z.number() }),
    replaced: z.object({ messages: z.number(), tokens: z.number() }),
    /** Tokens of the summary, and the count's tokenizer. */
    tokens: z.number(),
    tokenizer: z.string(),
    usage,
    cost_usd: z.number(),
    model: z.string(),
  }),
  /** A workflow run's first event after run.started: the definition it runs to the end (a later edit of the file
   * reaches only runs started after it), by content hash, and its parsed input. */
  "workflow.started": z.object({
    workflow: z.string(),
    version: z.string(),
    definition: z.unknown(),
    input: z.unknown(),
  }),
  /** A workflow step began: what it was given, evaluated once and recorded (a resumed step uses these, never a
   * re-evaluation). `attempt` counts from 1; an agent step's retry after an invalid answer is a new attempt. */
  "step.started": z.object({
    path: z.string(),
    kind: z.string(),
    attempt: z.number(),
    idempotency_key: z.string(),
    /** A tool step's arguments; an agent step's task; an approval's message; a sleep's wake time; a loop's items;
     * a branch's choice. */
    detail: z.record(z.string(), z.unknown()),
  }),
  "step.completed": z.object({ path: z.string(), output: z.unknown() }),
  /** `retry_at`: the step is tried again then (attempt + 1); without it the step failed for good. */
  "step.failed": z.object({ path: z.string(), attempt: z.number(), error: runError, retry_at: z.string().optional() }),
  /** A later step failed: completed steps are undone, last first. */
  "workflow.compensating": z.object({ failed: z.string(), error: runError }),
  "step.compensated": z.object({ path: z.string(), tool: z.string(), output: z.unknown(), is_error: z.boolean() }),
  "run.completed": z.object({ output: z.string() }),
  "run.failed": z.object({ error: runError }),
  "run.cancelled": z.object({ reason: z.string() }),
} as const;

export type EventType = keyof typeof eventData;
export const EVENT_TYPES = Object.keys(eventData) as EventType[];

export type EventDataOf<T extends EventType> = z.infer<(typeof eventData)[T]>;

/** An event as the runtime produces it, before the store gives it a sequence number. */
export type NewEvent = { [T in EventType]: { type: T; data: EventDataOf<T> } }[EventType];

/** An event as committed: numbered within its run, timestamped (epoch ms). */
export type RunEvent = NewEvent & { seq: number; at: number };

export type WaitingForData = z.infer<typeof waitingFor>;

export function ev<T extends EventType>(type: T, data: EventDataOf<T>): NewEvent {
  return { type, data } as NewEvent;
}

/** Validates an event read back from the store; a mismatch is data corruption, never ignored. */
export function parseEvent(row: { seq: number; type: string; data: unknown; at: number; v: number }): RunEvent {
  const schema = eventData[row.type as EventType];
  if (!schema) throw new Error(`unknown event type "${row.type}" at seq ${row.seq}`);
  if (row.v > EVENT_SCHEMA_VERSION) {
    throw new Error(`event at seq ${row.seq} has schema v${row.v}; this Outpost reads up to v${EVENT_SCHEMA_VERSION} — upgrade Outpost`);
  }
  const data = schema.parse(row.data);
  return { type: row.type, data, seq: row.seq, at: row.at } as RunEvent;
}
