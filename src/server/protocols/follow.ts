/**
 * Following a run for a caller that wants one answer (the OpenAI-compatible
 * and MCP endpoints): read its events until it ends, or until it waits for
 * something only a person (or another system) can give. Such a caller must
 * not be left hanging for days, so a run waiting for an approval, an external
 * event or a distant timer is reported as waiting; a run waiting for a short
 * timer or for its delegated children is followed on, as it goes on by itself.
 */
import { type EventView, isTerminal, type OutpostApi, type RunView } from "../../core/api.js";

/** A timer closer than this is waited out; a later one is reported as waiting. */
const SHORT_TIMER_MS = 60_000;

export interface Waiting {
  kind: string;
  approval_id?: string;
  /** The tool awaiting approval. */
  tool?: string;
  event?: string;
  until?: string;
}

export type FollowOutcome =
  | { kind: "completed"; run: RunView }
  /** Failed or cancelled. */
  | { kind: "failed"; run: RunView }
  | { kind: "waiting"; run: RunView; waiting: Waiting }
  /** Stopped following (the signal aborted, or the runtime is shutting down); the run goes on. */
  | { kind: "stopped" };

export interface FollowOptions {
  /** Stops following (the run is not cancelled). */
  signal: AbortSignal;
  /** Called with every event in order (including transient `model.delta`); awaited. */
  onEvent?: (event: EventView) => Promise<void> | void;
}

export async function followRun(api: OutpostApi, runId: string, options: FollowOptions): Promise<FollowOutcome> {
  const { signal } = options;
  if (signal.aborted) return { kind: "stopped" };
  const gone = new Promise<null>((resolve) => signal.addEventListener("abort", () => resolve(null), { once: true }));
  const tools = new Map<string, string>(); // approval id → tool
  const iterator = api.streamEvents(runId, { signal })[Symbol.asyncIterator]();
  try {
    for (;;) {
      // Raced against the signal, so an iterator that ignores it cannot hold the caller.
      const next = await Promise.race([iterator.next(), gone]);
      if (next === null || next.done) break;
      const event = next.value;
      await options.onEvent?.(event);
      if (event.type === "approval.requested") {
        tools.set(String(event.data.approval_id), String(event.data.tool));
      } else if (event.type === "run.waiting") {
        const waiting = describeWaitFor(event.data.for, tools);
        if (!waiting || !needsSomeone(waiting)) continue;
        // The log is replayed from its start: only a wait the run is still in counts.
        const run = await api.getRun(runId);
        if (run.status === "waiting" && sameWait(run, waiting)) return { kind: "waiting", run, waiting };
      }
    }
  } finally {
    void Promise.resolve()
      .then(() => iterator.return?.())
      .catch(() => {});
  }
  if (signal.aborted) return { kind: "stopped" };
  const run = await api.getRun(runId);
  if (run.status === "completed") return { kind: "completed", run };
  if (isTerminal(run.status)) return { kind: "failed", run };
  return { kind: "stopped" }; // the runtime is closing; the run resumes when it is back
}

function describeWaitFor(value: unknown, tools: Map<string, string>): Waiting | null {
  if (!value || typeof value !== "object") return null;
  const w = value as Record<string, unknown>;
  const kind = String(w.kind);
  const out: Waiting = { kind };
  if (typeof w.approval_id === "string") {
    out.approval_id = w.approval_id;
    const tool = tools.get(w.approval_id);
    if (tool !== undefined) out.tool = tool;
  }
  if (typeof w.event === "string") out.event = w.event;
  if (typeof w.until === "string") out.until = w.until;
  return out;
}

function sameWait(run: RunView, w: Waiting): boolean {
  const current = run.waiting_for as Record<string, unknown> | null;
  if (!current || current.kind !== w.kind) return false;
  return w.approval_id === undefined || current.approval_id === w.approval_id;
}

function needsSomeone(w: Waiting): boolean {
  if (w.kind === "approval" || w.kind === "event") return true;
  if (w.kind === "timer") {
    const until = Date.parse(w.until ?? "");
    return !Number.isFinite(until) || until - Date.now() > SHORT_TIMER_MS;
  }
  return false; // e.g. delegated children: the run goes on by itself
}

/** One sentence for a person: what the run waits for and how to move it on. */
export function describeWaiting(agent: string, runId: string, w: Waiting): string {
  const follow = `Follow the run with GET /v1/runs/${runId}.`;
  switch (w.kind) {
    case "approval":
      return (
        `Agent "${agent}" is waiting for a person to approve its call to ${w.tool ? `tool "${w.tool}"` : "a tool"} ` +
        `(approval ${w.approval_id ?? "?"}, run ${runId}). Approve or deny it with POST /v1/approvals/${w.approval_id ?? "{id}"} ` +
        `or \`outpost approvals approve ${w.approval_id ?? "<id>"}\`; the run then goes on. ${follow}`
      );
    case "event":
      return (
        `Agent "${agent}" is waiting for the external event "${w.event ?? "?"}" (run ${runId}). ` +
        `Deliver it with POST /v1/runs/${runId}/events; the run then goes on. ${follow}`
      );
    case "timer":
      return `Agent "${agent}" is waiting until ${w.until ?? "a later time"} (run ${runId}) and goes on by itself then. ${follow}`;
    default:
      return `Agent "${agent}" is waiting (${w.kind}, run ${runId}). ${follow}`;
  }
}
