/**
 * What a run did, step by step, in a form two runs can be compared in: model turns (text and tool calls with the
 * model's arguments), policy decisions, approvals, tool results and how the run ended. Pure functions over event
 * logs; `outpost replay` (runtime/replay.ts) compares the recorded run's trace with its re-driven one's.
 */
import type { RunEvent } from "../core/events.js";
import { canonicalJson } from "../security/canonical.js";
import { decisionText } from "../security/policy/index.js";

export type TraceStep =
  | {
      kind: "model";
      agent: string;
      text: string;
      calls: { name: string; args: unknown }[];
      error?: { code: string; message: string };
    }
  | {
      kind: "policy";
      action: string;
      /** `Tool::"orders.lookup"`. */
      resource: string;
      /** `allow`, `deny` or `approval:role[:group]`. */
      decision: string;
      policies: string[];
      /** The tool call it decided, when it decided one. */
      tool?: string;
      /** Left out of the comparison: the arguments (the model step compares them) and the policies' names. */
      attributes: Record<string, unknown>;
      context: Record<string, unknown>;
    }
  | {
      kind: "approval";
      tool: string;
      args: unknown;
      /** `operator` or `operator:finance`. */
      approver: string;
      /** `pending`: nobody decided; `assumed`: the replay approved it to go on (the recording has no approval). */
      decision: "approve" | "deny" | "expire" | "pending" | "assumed";
      by: string | null;
    }
  | { kind: "tool"; tool: string; args: unknown; output: string; isError: boolean }
  | {
      kind: "end";
      status: "completed" | "failed" | "cancelled" | "waiting" | "running";
      output?: string;
      error?: { code: string; message: string };
      /** What a run that did not end waits for. */
      waiting?: string;
    };

export type RowStatus = "same" | "changed" | "recorded_only" | "replay_only";

/** One line of the comparison: a step both runs took alike, or a difference. */
export interface TraceRow {
  /** 1-based. */
  step: number;
  status: RowStatus;
  recorded?: TraceStep;
  replay?: TraceStep;
}

/** The model's arguments as JSON when they parse (raw text otherwise): what both runs' calls are matched on. */
export function parseArgs(text: string): unknown {
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function sameArgs(a: unknown, b: unknown): boolean {
  return canonicalJson(a ?? null) === canonicalJson(b ?? null);
}

/**
 * A run's log as steps. Recall before model calls (memory.recalled and its memory.read decisions) is left out: the
 * replay does not recall memory. `approvalDecisions` overrides how an approval was decided (the replay's assumed
 * ones), by approval id.
 */
export function traceOf(events: RunEvent[], approvalDecisions: ReadonlyMap<string, "assumed"> = new Map()): TraceStep[] {
  const steps: TraceStep[] = [];
  let agent = "";
  let calls = new Map<string, { name: string; args: unknown }>();
  const approvals = new Map<string, Extract<TraceStep, { kind: "approval" }>>();
  let ended = false;
  let waiting: string | null = null;
  for (const e of events) {
    switch (e.type) {
      case "run.started":
        agent = e.data.agent;
        break;
      case "run.handed_off":
        agent = e.data.to;
        break;
      case "model.responded": {
        // Folded as state.ts folds them: a repeated call id within one response gets its index.
        const seen = new Set<string>();
        calls = new Map();
        const made = e.data.tool_calls.map((c, i) => {
          const id = seen.has(c.id) ? `${c.id}#${i}` : c.id;
          seen.add(id);
          const call = { name: c.name, args: parseArgs(c.arguments) };
          calls.set(id, call);
          return call;
        });
        steps.push({ kind: "model", agent, text: e.data.text, calls: made });
        break;
      }
      case "model.failed":
        steps.push({ kind: "model", agent, text: "", calls: [], error: e.data.error });
        break;
      case "policy.decided": {
        const r = e.data.request;
        if (e.data.call_id === undefined && r.action === "memory.read") break; // recall: not replayed
        const { arguments: _args, ...context } = r.context;
        steps.push({
          kind: "policy",
          action: r.action,
          resource: `${r.resource.type}::"${r.resource.id}"`,
          decision: decisionText({ effect: e.data.effect, approval: e.data.approval, policies: [], errors: [] }),
          policies: e.data.approval?.policies.length ? e.data.approval.policies : e.data.policies,
          ...(e.data.call_id !== undefined && calls.has(e.data.call_id) ? { tool: calls.get(e.data.call_id)?.name } : {}),
          attributes: r.resource.attributes ?? {},
          context,
        });
        break;
      }
      case "approval.requested": {
        const step: Extract<TraceStep, { kind: "approval" }> = {
          kind: "approval",
          tool: e.data.tool,
          args: calls.get(e.data.call_id)?.args ?? e.data.arguments,
          approver: e.data.approver ? `${e.data.approver.role}${e.data.approver.group ? `:${e.data.approver.group}` : ""}` : "operator",
          decision: "pending",
          by: null,
        };
        approvals.set(e.data.approval_id, step);
        steps.push(step);
        break;
      }
      case "approval.decided": {
        const step = approvals.get(e.data.approval_id);
        if (step) {
          step.decision = approvalDecisions.get(e.data.approval_id) ?? e.data.decision;
          step.by = e.data.by;
        }
        break;
      }
      case "tool.completed":
        steps.push({
          kind: "tool",
          tool: e.data.tool,
          args: calls.get(e.data.call_id)?.args ?? {},
          output: e.data.output,
          isError: e.data.is_error,
        });
        break;
      case "run.waiting": {
        const w = e.data.for;
        waiting =
          w.kind === "approval"
            ? "approval"
            : w.kind === "event"
              ? `event ${w.event}`
              : w.kind === "timer"
                ? `timer${w.retry ? ` (retrying ${w.retry})` : ""}`
                : w.kind === "children"
                  ? "delegated runs"
                  : "several things";
        break;
      }
      case "run.resumed":
        waiting = null;
        break;
      case "run.completed":
        steps.push({ kind: "end", status: "completed", output: e.data.output });
        ended = true;
        break;
      case "run.failed":
        steps.push({ kind: "end", status: "failed", error: e.data.error });
        ended = true;
        break;
      case "run.cancelled":
        steps.push({ kind: "end", status: "cancelled", error: { code: "cancelled", message: e.data.reason } });
        ended = true;
        break;
      default:
        break;
    }
  }
  if (!ended) steps.push(waiting ? { kind: "end", status: "waiting", waiting } : { kind: "end", status: "running" });
  return steps;
}

/** What makes two steps the same: everything shown but the policies' names and who decided an approval. */
export function stepKey(s: TraceStep): string {
  switch (s.kind) {
    case "model":
      return canonicalJson(["model", s.agent, s.text, s.calls.map((c) => [c.name, c.args ?? null]), s.error ?? null]);
    case "policy":
      return canonicalJson(["policy", s.action, s.resource, s.decision, s.attributes, s.context]);
    case "approval":
      return canonicalJson(["approval", s.tool, s.args ?? null, s.approver, s.decision]);
    case "tool":
      return canonicalJson(["tool", s.tool, s.args ?? null, s.output, s.isError]);
    case "end":
      return canonicalJson(["end", s.status, s.output ?? null, s.error ?? null, s.waiting ?? null]);
  }
}

/**
 * Lines up two traces (longest common subsequence of their steps): steps both took alike are `same`; between them,
 * the recorded and replayed steps that differ are paired as `changed`, and what is left over is in one run only.
 */
export function alignTraces(recorded: TraceStep[], replayed: TraceStep[]): TraceRow[] {
  const rows: Omit<TraceRow, "step">[] = [];
  let gapA: TraceStep[] = [];
  let gapB: TraceStep[] = [];
  const flush = () => {
    // Within a stretch that differs, steps of the same kind pair up (a model turn with a model turn), in order.
    for (const [x, y] of lcsPairs(
      gapA.map((s) => s.kind),
      gapB.map((s) => s.kind),
    )) {
      if (x !== null && y !== null) rows.push({ status: "changed", recorded: gapA[x], replay: gapB[y] });
      else if (x !== null) rows.push({ status: "recorded_only", recorded: gapA[x] });
      else if (y !== null) rows.push({ status: "replay_only", replay: gapB[y] });
    }
    gapA = [];
    gapB = [];
  };
  for (const [x, y] of lcsPairs(recorded.map(stepKey), replayed.map(stepKey))) {
    if (x !== null && y !== null) {
      flush();
      rows.push({ status: "same", recorded: recorded[x], replay: replayed[y] });
    } else if (x !== null) {
      gapA.push(recorded[x]);
    } else if (y !== null) {
      gapB.push(replayed[y]);
    }
  }
  flush();
  return rows.map((r, k) => ({ step: k + 1, ...r }));
}

/** Two sequences walked together along their longest common subsequence: `[i, j]` for an element both share,
 * `[i, null]` / `[null, j]` for one only the first / second has (those of the first before the second's). */
function lcsPairs(a: string[], b: string[]): [number | null, number | null][] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: the length of the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const out: [number | null, number | null][] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) out.push([i++, j++]);
    else if (j >= m || (i < n && lcs[i + 1][j] >= lcs[i][j + 1])) out.push([i++, null]);
    else out.push([null, j++]);
  }
  return out;
}

/** A value in one short line. */
export function brief(value: unknown, max = 80): string {
  const text = (typeof value === "string" ? value : (JSON.stringify(value) ?? String(value))).replace(/\s+/g, " ").trim();
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** One step in words: "called orders.refund {…}", "answered "…"", "policy: tool.call on Tool::"x" → deny (…)". */
export function describeStep(s: TraceStep, max = 80): string {
  switch (s.kind) {
    case "model":
      if (s.error) return `model failed (${s.error.code}): ${brief(s.error.message, max)}`;
      if (s.calls.length > 0) return `called ${s.calls.map((c) => `${c.name} ${brief(c.args, max)}`).join(" and ")}`;
      return `answered ${JSON.stringify(brief(s.text, max))}`;
    case "policy":
      return `policy ${s.decision} on ${s.action} ${s.resource}${s.policies.length > 0 ? ` (${s.policies.join(", ")})` : s.decision === "deny" ? " (no policy permits it)" : ""}`;
    case "approval": {
      const outcome =
        s.decision === "assumed"
          ? "needed — none recorded, assumed approved"
          : s.decision === "pending"
            ? "pending"
            : `${s.decision === "approve" ? "approved" : s.decision === "deny" ? "denied" : "expired"}${s.by ? ` by ${s.by}` : ""}`;
      return `approval (${s.approver}) for ${s.tool} ${brief(s.args, max)}: ${outcome}`;
    }
    case "tool":
      return `${s.tool} ${brief(s.args, max)} → ${s.isError ? "error: " : ""}${brief(s.output.replace(/^error: /, ""), max)}`;
    case "end":
      if (s.status === "completed") return `completed: ${JSON.stringify(brief(s.output ?? "", max))}`;
      if (s.status === "waiting") return `waiting for ${s.waiting}`;
      if (s.status === "running") return "did not finish";
      return `${s.status} (${s.error?.code}): ${brief(s.error?.message ?? "", max)}`;
  }
}

/** How two policy steps' requests differ (`approval_required false → true`), when they do; null otherwise. */
export function requestDifference(a: TraceStep, b: TraceStep): string | null {
  if (a.kind !== "policy" || b.kind !== "policy") return null;
  const diffs: string[] = [];
  const show = (v: unknown) => (v === undefined ? "(none)" : brief(v, 30));
  for (const [where, x, y] of [
    ["", a.attributes, b.attributes],
    ["context.", a.context, b.context],
  ] as const) {
    for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) {
      if (canonicalJson(x[k] ?? null) !== canonicalJson(y[k] ?? null)) diffs.push(`${where}${k} ${show(x[k])} → ${show(y[k])}`);
    }
  }
  return diffs.length > 0 ? diffs.join(", ") : null;
}

/** The report's summary line: `identical (N steps)`, or where and how the runs first differ. */
export function summaryOf(rows: TraceRow[]): string {
  const first = rows.find((r) => r.status !== "same");
  if (!first) return `identical (${rows.length} step${rows.length === 1 ? "" : "s"})`;
  const later = rows.filter((r) => r.status !== "same").length - 1;
  const more = later > 0 ? ` (${later} later difference${later === 1 ? "" : "s"})` : "";
  const head = `diverged at step ${first.step}: `;
  if (first.recorded && first.replay) {
    const request = requestDifference(first.recorded, first.replay);
    return `${head}recorded ${describeStep(first.recorded, 60)}, replay ${describeStep(first.replay, 60)}${request ? ` — its request differs: ${request}` : ""}${more}`;
  }
  if (first.recorded) return `${head}recorded ${describeStep(first.recorded, 60)}; the replay has no such step${more}`;
  return `${head}replay ${describeStep(first.replay as TraceStep, 60)}; the recorded run has no such step${more}`;
}
