/**
 * RunState: a run's event log folded into what `decide` needs. `apply` is the
 * only way state changes, so replaying a log and living through it give the
 * same state. (It mutates for speed; a state belongs to one executor.)
 */
import type { WaitingFor } from "../core/api.js";
import type { EventDataOf, RunEvent } from "../core/events.js";
import type { Classification } from "../definitions/types.js";
import type { ChatMessage } from "../models/types.js";

export interface ToolCallState {
  id: string;
  name: string;
  /** Raw argument text from the model. */
  argumentsText: string;
  /** Idempotency key: stable for this call across every retry. */
  key: string;
  /** `tool.called` committed: the call may have started; retry with the same key. */
  intentCommitted: boolean;
  /** Arguments as committed with the intent. */
  arguments?: unknown;
  approval?: {
    id: string;
    /** Bound at request time; recomputed from the call before it runs. */
    actionHash?: string;
    expiresAt?: number;
    decision?: "approve" | "deny" | "expire";
    reason?: string | null;
    by?: string | null;
    /** The hash the approver was shown (from the approval record at decision time). */
    decidedHash?: string;
  };
  /** Policy decisions recorded for this call (connector.use, then tool.call / agent.delegate / agent.handoff). */
  decisions: PolicyDecided[];
  result?: { output: string; isError: boolean };
  /** A delegation call's child run, once started. */
  child?: { runId: string; agent: string };
  /** How the child run ended, once its parent has heard. */
  childResult?: {
    status: "completed" | "failed" | "cancelled";
    output: string | null;
    error: { code: string; message: string } | null;
    /** The child run was tainted. */
    tainted?: string[];
  };
}

export type PolicyDecided = EventDataOf<"policy.decided">;

/** Older history folded into a summary: earlier session runs up to `sessionSeq`, this run's first `messages`. */
export interface RunSummary {
  text: string;
  sessionSeq: number | null;
  messages: number;
}

/** Where a delegated run sits in its tree. */
export interface ParentLink {
  run_id: string;
  call_id: string;
  root_run_id: string;
  depth: number;
  /** Agents above this run, top first. */
  chain: string[];
}

export interface RunState {
  runId: string;
  /** The agent working on the run now (changes on a handoff). */
  agent: string;
  parent: ParentLink | null;
  /** Delegation calls started (child runs), and handoffs made, over the whole run. */
  delegations: number;
  handoffs: number;
  /** Child runs started and not yet heard back from. */
  openChildren: Set<string>;
  /** Waits in a row to retry a call whose outcome is unknown (reset by any tool result). */
  retryWaits: number;
  input: string;
  sessionId: string;
  /** Who the run acts on behalf of (run.started `by`). */
  by: string | null;
  /** The highest data class the run has touched (tool outputs): decides which models may see it. */
  classification: Classification;
  /** What looked like injected instructions in content the run took in (input, tool outputs); empty = not tainted. */
  tainted: string[];
  /** The latest model.use decision (call_id absent): reused while the model and run classification stay the same. */
  modelDecision: PolicyDecided | null;
  /** The latest memory.read decision per scope for recall before model calls (call_id absent), reused likewise. */
  recallDecisions: Map<string, PolicyDecided>;
  messages: ChatMessage[];
  /** Index in `messages` of the run's input (kept word for word when older messages are compacted). */
  inputIndex: number;
  /** The running summary, once history was compacted (context.compacted). */
  summary: RunSummary | null;
  /** Model responses plus tool results so far. */
  steps: number;
  modelCalls: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  /** Tool calls of the latest model response, in order. */
  calls: ToolCallState[];
  /** The agent whose model wrote `calls` (a handoff among them passes the run on, not those calls). */
  callsAgent: string;
  /** Malformed model outputs in a row (reset by a well-formed one). */
  modelErrorStreak: number;
  lastModelProblem: string | null;
  /** The last model response was a final answer (no tool calls). */
  finalAnswer: string | null;
  modelFailure: { code: string; message: string } | null;
  waiting: WaitingFor | null;
  /** External events received and not yet consumed by a wait. */
  inbox: { name: string; payload: unknown }[];
  /** Active (non-waiting) time accumulated, and when the current active stretch began. */
  activeMs: number;
  activeSince: number | null;
  /** Time of the latest event: the last moment the run is known to have been worked on. */
  lastActiveAt: number;
  terminal: { status: "completed"; output: string } | { status: "failed" | "cancelled"; error: { code: string; message: string } } | null;
  lastSeq: number;
}

export function initialState(runId: string): RunState {
  return {
    runId,
    agent: "",
    parent: null,
    delegations: 0,
    handoffs: 0,
    openChildren: new Set(),
    retryWaits: 0,
    input: "",
    sessionId: "",
    by: null,
    classification: "public",
    tainted: [],
    modelDecision: null,
    recallDecisions: new Map(),
    messages: [],
    inputIndex: 0,
    summary: null,
    steps: 0,
    modelCalls: 0,
    inputTokens: 0,
    outputTokens: 0,
    costUsd: 0,
    calls: [],
    callsAgent: "",
    modelErrorStreak: 0,
    lastModelProblem: null,
    finalAnswer: null,
    modelFailure: null,
    waiting: null,
    inbox: [],
    activeMs: 0,
    activeSince: null,
    lastActiveAt: 0,
    terminal: null,
    lastSeq: 0,
  };
}

const CLASS_ORDER: Classification[] = ["public", "internal", "confidential", "restricted"];

/** Built-in tools that make a run wait; decided purely from the log (see decide.ts). */
export const WAIT_FOR_EVENT = "wait.for_event";
export const WAIT_UNTIL = "wait.until";

export const EMPTY_ANSWER_NOTE = "[outpost] Your previous answer was empty. Answer the user, or call one of the tools you were given.";

export function apply(s: RunState, e: RunEvent): RunState {
  s.lastSeq = e.seq;
  const previousAt = s.lastActiveAt;
  s.lastActiveAt = e.at;
  switch (e.type) {
    case "run.started":
      s.agent = e.data.agent;
      s.input = e.data.input;
      s.sessionId = e.data.session_id;
      s.parent = e.data.parent ?? null;
      s.by = e.data.by ?? null;
      if (e.data.tainted) s.tainted.push(...e.data.tainted);
      for (const m of e.data.context ?? []) s.messages.push({ role: m.role, content: m.content });
      s.inputIndex = s.messages.length;
      s.messages.push({ role: "user", content: e.data.input });
      break;
    case "model.called":
      // Wall time starts with the first step, not at creation: time queued behind other runs is not the run's.
      if (s.activeSince === null && s.waiting === null) s.activeSince = e.at;
      break;
    case "model.responded": {
      const d = e.data;
      s.steps++;
      s.modelCalls++;
      s.inputTokens += d.usage.input_tokens;
      s.outputTokens += d.usage.output_tokens;
      s.costUsd += d.cost_usd;
      // Models may repeat a call id within one response: the fold makes them unique, deterministically.
      const seen = new Set<string>();
      const toolCalls = d.tool_calls.map((c, i) => {
        const id = seen.has(c.id) ? `${c.id}#${i}` : c.id;
        seen.add(id);
        return id === c.id ? c : { ...c, id };
      });
      s.callsAgent = s.agent;
      s.calls = toolCalls.map((c) => ({
        id: c.id,
        name: c.name,
        argumentsText: c.arguments,
        key: `${s.runId}.${d.step}.${c.id}`,
        intentCommitted: false,
        decisions: [],
      }));
      s.messages.push({
        role: "assistant",
        content: d.text,
        ...(toolCalls.length > 0 ? { toolCalls } : {}),
      });
      if (d.tool_calls.length === 0) {
        if (d.text.trim() === "") {
          s.modelErrorStreak++;
          s.lastModelProblem = "empty answer";
          s.messages.push({ role: "user", content: EMPTY_ANSWER_NOTE });
          s.finalAnswer = null;
        } else {
          s.finalAnswer = d.text;
        }
      } else {
        s.finalAnswer = null;
      }
      break;
    }
    case "model.failed":
      s.modelFailure = e.data.error;
      break;
    case "tool.called": {
      const call = s.calls.find((c) => c.id === e.data.call_id);
      if (call) {
        call.intentCommitted = true;
        call.arguments = e.data.arguments;
        call.key = e.data.idempotency_key;
      }
      break;
    }
    case "tool.completed": {
      s.steps++;
      s.retryWaits = 0;
      const call = s.calls.find((c) => c.id === e.data.call_id);
      if (call) call.result = { output: e.data.output, isError: e.data.is_error };
      const touched = e.data.classification;
      if (touched && CLASS_ORDER.indexOf(touched) > CLASS_ORDER.indexOf(s.classification)) s.classification = touched;
      if (e.data.tainted) s.tainted.push(...e.data.tainted);
      if (e.data.model_error) {
        s.modelErrorStreak++;
        s.lastModelProblem = e.data.output;
      } else {
        s.modelErrorStreak = 0;
      }
      if (call && !e.data.is_error && call.name === WAIT_FOR_EVENT) {
        // The wait consumed the first buffered event of its name.
        const name = (call.arguments as { name?: string } | undefined)?.name;
        const i = s.inbox.findIndex((m) => m.name === name);
        if (i >= 0) s.inbox.splice(i, 1);
      }
      s.messages.push({
        role: "tool",
        toolCallId: e.data.call_id,
        toolName: e.data.tool,
        content: e.data.output,
        ...(e.data.is_error ? { isError: true } : {}),
      });
      break;
    }
    case "approval.requested": {
      const call = s.calls.find((c) => c.id === e.data.call_id);
      if (call) {
        call.approval = {
          id: e.data.approval_id,
          ...(e.data.action_hash !== undefined ? { actionHash: e.data.action_hash } : {}),
          ...(e.data.expires_at !== undefined ? { expiresAt: Date.parse(e.data.expires_at) } : {}),
        };
      }
      break;
    }
    case "approval.decided": {
      const call = s.calls.find((c) => c.approval?.id === e.data.approval_id);
      if (call?.approval) {
        call.approval.decision = e.data.decision;
        call.approval.reason = e.data.reason;
        call.approval.by = e.data.by;
        if (e.data.action_hash !== undefined) call.approval.decidedHash = e.data.action_hash;
      }
      break;
    }
    case "policy.decided": {
      if (e.data.call_id === undefined) {
        if (e.data.request.action === "memory.read") s.recallDecisions.set(e.data.request.resource.id, e.data);
        else s.modelDecision = e.data;
        break;
      }
      const call = s.calls.find((c) => c.id === e.data.call_id);
      if (call) call.decisions.push(e.data);
      break;
    }
    case "memory.recalled": {
      const touched = e.data.classification;
      if (touched && CLASS_ORDER.indexOf(touched) > CLASS_ORDER.indexOf(s.classification)) s.classification = touched;
      if (e.data.tainted) s.tainted.push(...e.data.tainted);
      break;
    }
    case "context.compacted":
      s.summary = { text: e.data.summary, sessionSeq: e.data.through.session_seq, messages: e.data.through.messages };
      s.inputTokens += e.data.usage.input_tokens;
      s.outputTokens += e.data.usage.output_tokens;
      s.costUsd += e.data.cost_usd;
      break;
    case "run.waiting":
      s.waiting = e.data.for;
      if (e.data.for.kind === "timer" && e.data.for.retry !== undefined) s.retryWaits++;
      if (s.activeSince !== null) s.activeMs += e.at - s.activeSince;
      s.activeSince = null;
      break;
    case "run.resumed":
      // After a wait, or taken over after its worker stopped: the time in between is not the run's.
      if (s.activeSince !== null) s.activeMs += Math.max(0, previousAt - s.activeSince);
      s.waiting = null;
      s.activeSince = e.at;
      break;
    case "event.received":
      s.inbox.push({ name: e.data.name, payload: e.data.payload });
      break;
    case "delegation.started": {
      s.delegations++;
      const call = s.calls.find((c) => c.id === e.data.call_id);
      if (call) call.child = { runId: e.data.child_run_id, agent: e.data.agent };
      if (!call?.childResult) s.openChildren.add(e.data.child_run_id);
      break;
    }
    case "child.finished": {
      s.openChildren.delete(e.data.child_run_id);
      // Only the child this call is waiting for (a late notice from a cancelled sibling changes nothing).
      // (It may precede delegation.started: a child can finish before its parent, recovering, records it.
      // The call's key, not its id, says which call: providers may reuse ids across responses.)
      const call = s.calls.find((c) =>
        c.child
          ? c.child.runId === e.data.child_run_id
          : e.data.call_key !== undefined
            ? c.key === e.data.call_key
            : c.id === e.data.call_id,
      );
      if (call && !call.result) {
        call.childResult = {
          status: e.data.status,
          output: e.data.output,
          error: e.data.error,
          ...(e.data.tainted ? { tainted: e.data.tainted } : {}),
        };
      }
      break;
    }
    case "run.handed_off":
      s.handoffs++;
      s.agent = e.data.to;
      break;
    case "run.completed":
      s.terminal = { status: "completed", output: e.data.output };
      break;
    case "run.failed":
      s.terminal = { status: "failed", error: e.data.error };
      break;
    case "run.cancelled":
      s.terminal = { status: "cancelled", error: { code: "cancelled", message: e.data.reason } };
      break;
  }
  return s;
}

export function replay(runId: string, events: RunEvent[]): RunState {
  const s = initialState(runId);
  for (const e of events) apply(s, e);
  return s;
}
