/**
 * What a case's run left behind, as the scorers read it: the event logs of the run and of every run it delegated
 * to, folded into the tool calls the agents asked for (with how each ended), the actions policy denied, the
 * approvals given, usage and latency. Pure: built from the logs alone.
 */
import type { EventView, RunStatus, RunView } from "../core/api.js";
import type { EventDataOf, EventType } from "../core/events.js";
import type { Classification } from "../definitions/types.js";

export interface ToolCallRecord {
  run_id: string;
  /** The agent holding the run when it asked (a handoff changes it). */
  agent: string;
  tool: string;
  /** The parsed JSON arguments, or the raw text when the model wrote something else. */
  arguments: unknown;
  /** `denied`: policy refused it before it ran; `pending`: the run ended before it did. */
  outcome: "ok" | "error" | "denied" | "pending";
  output: string | null;
  at: string;
}

export interface PolicyDenial {
  run_id: string;
  agent: string;
  action: string;
  /** `Tool::"ledger.issue_refund"`. */
  resource: string;
  /** The policies that forbade it; none: nothing permitted it (default deny). */
  policies: string[];
}

export interface CaseRecord {
  case: string;
  agent: string;
  input: string;
  /** The top run's end. */
  status: RunStatus;
  output: string | null;
  error: { code: string; message: string } | null;
  runs: { id: string; agent: string; status: RunStatus; depth: number }[];
  /** Every run's log, oldest first. */
  events: EventView[];
  tool_calls: ToolCallRecord[];
  denials: PolicyDenial[];
  approvals: { tool: string; decision: string }[];
  /** Summed over the run and the runs it delegated to. */
  usage: { input_tokens: number; output_tokens: number; cost_usd: number };
  /** From the run's start to its end. */
  latency_ms: number;
  /** The model ids that answered. */
  models: string[];
  /** The most sensitive data the runs touched. */
  classification: Classification;
}

export interface RecordInput {
  case: string;
  input: string;
  /** The top run first, then the runs it delegated to. */
  runs: RunView[];
  events: Map<string, EventView[]>;
}

const LEVELS: Classification[] = ["public", "internal", "confidential", "restricted"];

export function recordCase({ case: name, input, runs, events }: RecordInput): CaseRecord {
  const root = runs[0];
  const fold: Fold = { calls: [], denials: [], approvals: [], models: new Set(), level: 0 };
  for (const run of runs) foldRun(run, events.get(run.id) ?? [], fold);
  // Stable: calls of one step keep the order the model gave them.
  fold.calls.sort((a, b) => a.at.localeCompare(b.at));
  const sum = (f: (r: RunView) => number) => runs.reduce((n, r) => n + f(r), 0);
  return {
    case: name,
    agent: root.agent,
    input,
    status: root.status,
    output: root.output,
    error: root.error,
    runs: runs.map((r) => ({ id: r.id, agent: r.agent, status: r.status, depth: r.depth })),
    events: runs.flatMap((r) => events.get(r.id) ?? []).sort((a, b) => a.at.localeCompare(b.at) || a.seq - b.seq),
    tool_calls: fold.calls,
    denials: fold.denials,
    approvals: fold.approvals,
    usage: {
      input_tokens: sum((r) => r.usage.input_tokens),
      output_tokens: sum((r) => r.usage.output_tokens),
      cost_usd: sum((r) => r.usage.cost_usd),
    },
    latency_ms: Math.max(0, Date.parse(root.completed_at ?? root.updated_at) - Date.parse(root.created_at)),
    models: [...fold.models],
    classification: LEVELS[fold.level],
  };
}

interface Fold {
  calls: ToolCallRecord[];
  denials: PolicyDenial[];
  approvals: CaseRecord["approvals"];
  models: Set<string>;
  /** Index in LEVELS. */
  level: number;
}

/** One run's log into the case's record. Call ids are unique within a run, not across runs. */
function foldRun(run: RunView, log: EventView[], fold: Fold): void {
  let agent = run.agent;
  const byCall = new Map<string, ToolCallRecord>();
  const requested = new Map<string, string>();
  const classify = (c: Classification | undefined) => {
    fold.level = Math.max(fold.level, LEVELS.indexOf(c ?? "public"));
  };
  for (const e of log) {
    switch (e.type) {
      case "run.handed_off":
        agent = data<"run.handed_off">(e).to;
        break;
      case "model.responded": {
        const d = data<"model.responded">(e);
        fold.models.add(d.model);
        for (const c of d.tool_calls) {
          const call: ToolCallRecord = {
            run_id: run.id,
            agent,
            tool: c.name,
            arguments: parsed(c.arguments),
            outcome: "pending",
            output: null,
            at: e.at,
          };
          byCall.set(c.id, call);
          fold.calls.push(call);
        }
        break;
      }
      case "policy.decided": {
        const d = data<"policy.decided">(e);
        // Only what the agent asked for: the runtime's own reads (memory recall) are not its attempts.
        if (d.effect !== "deny" || d.call_id === undefined) break;
        const call = byCall.get(d.call_id);
        if (call) call.outcome = "denied";
        const resource = `${d.request.resource.type}::"${d.request.resource.id}"`;
        fold.denials.push({ run_id: run.id, agent, action: d.request.action, resource, policies: d.policies });
        break;
      }
      case "tool.completed": {
        const d = data<"tool.completed">(e);
        const call = byCall.get(d.call_id);
        if (call) {
          call.output = d.output;
          if (call.outcome !== "denied") call.outcome = d.is_error ? "error" : "ok";
        }
        classify(d.classification);
        break;
      }
      case "memory.recalled":
        classify(data<"memory.recalled">(e).classification);
        break;
      case "approval.requested": {
        const d = data<"approval.requested">(e);
        requested.set(d.approval_id, d.tool);
        break;
      }
      case "approval.decided": {
        const d = data<"approval.decided">(e);
        fold.approvals.push({ tool: requested.get(d.approval_id) ?? "?", decision: d.decision });
        break;
      }
    }
  }
}

/** Events read back from the store were validated against their schema (core/events.ts). */
const data = <T extends EventType>(e: EventView) => e.data as unknown as EventDataOf<T>;

function parsed(text: string): unknown {
  try {
    return text.trim() === "" ? {} : JSON.parse(text);
  } catch {
    return text;
  }
}
