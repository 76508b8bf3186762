/**
 * Following a run for a caller that wants one answer (the OpenAI-compatible
 * and MCP endpoints): read its events until it ends, or until it waits for
 * something only a person (or another system) can give. Such a caller must
 * not be left hanging for days, so a run waiting for an approval, an external
 * event or a distant timer is reported as waiting; a run waiting for a short
 * timer goes on by itself and is followed on.
 *
 * A run can also be held up by other runs: while it waits for the runs it
 * delegated to, or is queued behind an earlier run of its session (runs of a
 * session execute in order), its own log says nothing more. Then the runs it
 * depends on are looked through (its delegation tree; the session's earlier
 * runs and theirs) every few hundred milliseconds, and one of them waiting for
 * a person is reported as the followed run's wait, naming that run. Runs that
 * are simply working are followed through to the answer.
 */
import { type EventView, isTerminal, type OutpostApi, type RunTreeView, type RunView } from "../../core/api.js";

/** A timer closer than this is waited out; a later one is reported as waiting. */
const SHORT_TIMER_MS = 60_000;

/** How often the runs a held-up run depends on are looked through. */
export const HELD_UP_POLL_MS = 300;

export interface Waiting {
  kind: string;
  approval_id?: string;
  /** The tool awaiting approval. */
  tool?: string;
  event?: string;
  until?: string;
  /** The run that waits, when it is not the followed run: one the followed run delegated to (at any depth),
   * or an earlier run of its session (or one that run delegated to). */
  run_id?: string;
  /** That run's agent. */
  agent?: string;
  /** The earlier run of the session that the followed run is queued behind. */
  queued_behind?: string;
}

export type FollowOutcome =
  | { kind: "completed"; run: RunView }
  /** Failed or cancelled. */
  | { kind: "failed"; run: RunView }
  /** `run` is the followed run: waiting itself, or (held up by a run named in `waiting`) waiting for its children or queued. */
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
  let onAbort = () => {};
  const gone = new Promise<null>((resolve) => {
    onAbort = () => resolve(null);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  // Ends the event stream (and its store polling) however following ends, not only when the caller's signal aborts.
  const done = new AbortController();
  const watch = watchHeldUp(api, runId, { signal: done.signal });
  const tools = new Map<string, string>(); // approval id → tool
  const iterator = api.streamEvents(runId, { signal: AbortSignal.any([signal, done.signal]) })[Symbol.asyncIterator]();
  watch.arm(); // it may be queued behind an earlier run of its session
  try {
    for (;;) {
      // Raced against the signal, so an iterator that ignores it cannot hold the caller.
      const next = await Promise.race([iterator.next(), gone, watch.found]);
      if (next === null) break;
      if ("waiting" in next) return { kind: "waiting", run: next.run, waiting: next.waiting };
      if (next.done) break;
      const event = next.value;
      await options.onEvent?.(event);
      if (event.type === "approval.requested") {
        tools.set(String(event.data.approval_id), String(event.data.tool));
      } else if (event.type === "run.waiting") {
        const waiting = describeWaitFor(event.data.for, tools);
        if (waiting?.kind === "children") watch.arm();
        if (!waiting || !needsSomeone(waiting)) continue;
        // The log is replayed from its start: only a wait the run is still in counts.
        const run = await api.getRun(runId);
        if (run.status === "waiting" && sameWait(run, waiting)) return { kind: "waiting", run, waiting };
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    done.abort();
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

/** Whether `run` is still in the wait `w` (a log replayed from its start holds waits that are long over). */
export function sameWait(run: RunView, w: { kind: string; approval_id?: string }): boolean {
  if (run.status !== "waiting") return false;
  const current = run.waiting_for as Record<string, unknown> | null;
  if (!current || current.kind !== w.kind) return false;
  return w.approval_id === undefined || current.approval_id === w.approval_id;
}

/** A wait that only a person (or another system), or a distant time, ends. */
export function needsSomeone(w: Waiting): boolean {
  if (w.kind === "approval" || w.kind === "event") return true;
  if (w.kind === "timer") {
    const until = Date.parse(w.until ?? "");
    return !Number.isFinite(until) || until - Date.now() > SHORT_TIMER_MS;
  }
  return false; // e.g. delegated children: looked through by the held-up watch
}

// ---- runs held up by other runs ---------------------------------------------------

/** Waiting for the runs it delegated to, or queued (behind an earlier run of its session, or not yet picked up). */
export const mayBeHeldUp = (run: RunView) => run.status === "queued" || (run.status === "waiting" && run.waiting_for?.kind === "children");

/**
 * The wait that holds `run` up, if one of the runs it depends on waits for something `counts`
 * (by default: a person, or a distant time): for a run waiting for its children, a run of its delegation
 * tree; for a queued run, an earlier run of its session that waits, or a run of that one's tree.
 */
export async function findHeldUp(api: OutpostApi, run: RunView, counts: (w: Waiting) => boolean = needsSomeone): Promise<Waiting | null> {
  if (run.status === "waiting" && run.waiting_for?.kind === "children") {
    return searchTree(api, await api.getRunTree(run.id), counts);
  }
  if (run.status !== "queued") return null;
  // Runs of a session execute in order: one still waiting before this one holds it (and every later one) back.
  const earlier = (await api.listRuns({ session_id: run.session_id, status: "waiting", limit: 200 })).items
    .filter((r) => r.id < run.id)
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  for (const before of earlier) {
    const own = waitOf(before);
    let found = own && counts(own) ? await withTool(api, before, own) : null;
    if (!found && before.waiting_for?.kind === "children") found = await searchTree(api, await api.getRunTree(before.id), counts);
    if (found) return { ...found, queued_behind: before.id };
  }
  return null;
}

/** The first run below the tree's root (depth first, in the order they were delegated) that waits for something `counts`. */
async function searchTree(api: OutpostApi, tree: RunTreeView, counts: (w: Waiting) => boolean): Promise<Waiting | null> {
  for (const child of tree.children) {
    const own = waitOf(child.run);
    if (own && counts(own)) return withTool(api, child.run, own);
    const below = await searchTree(api, child, counts);
    if (below) return below;
  }
  return null;
}

function waitOf(run: RunView): Waiting | null {
  if (run.status !== "waiting" || !run.waiting_for) return null;
  const w = describeWaitFor(run.waiting_for, new Map());
  return w ? { ...w, run_id: run.id, agent: run.agent } : null;
}

/** Names the tool an approval is for, from the waiting run's log. */
async function withTool(api: OutpostApi, run: RunView, w: Waiting): Promise<Waiting> {
  if (w.approval_id === undefined) return w;
  const requested = (await api.getEvents(run.id)).find((e) => e.type === "approval.requested" && e.data.approval_id === w.approval_id);
  return requested ? { ...w, tool: String(requested.data.tool) } : w;
}

export interface HeldUpWatch {
  /** Resolves once a run the followed run depends on is found waiting for something that counts; never otherwise. */
  found: Promise<{ run: RunView; waiting: Waiting }>;
  /**
   * Looks at once, then every HELD_UP_POLL_MS while the followed run waits for its children or is queued; stops
   * looking when it moves on. Call it again when it may be held up again (it waits for children once more).
   */
  arm(): void;
  /** Stops for good: no timer, no request left behind. */
  close(): void;
}

/** Watches, while it is armed, whether the run `runId` is held up by a run that waits for something `counts`. */
export function watchHeldUp(
  api: OutpostApi,
  runId: string,
  options: { signal: AbortSignal; counts?: (w: Waiting) => boolean; intervalMs?: number },
): HeldUpWatch {
  const counts = options.counts ?? needsSomeone;
  const intervalMs = options.intervalMs ?? HELD_UP_POLL_MS;
  let resolveFound: (value: { run: RunView; waiting: Waiting }) => void = () => {};
  const found = new Promise<{ run: RunView; waiting: Waiting }>((resolve) => {
    resolveFound = resolve;
  });
  let closed = false;
  let polling = false;
  let armed = 0; // counts arm() calls, so that one made while a look was under way is not lost
  let timer: NodeJS.Timeout | undefined;

  const close = () => {
    closed = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    options.signal.removeEventListener("abort", close);
  };
  const later = () => {
    if (closed) return;
    timer = setTimeout(() => void look(), intervalMs);
    timer.unref();
  };
  const look = async () => {
    timer = undefined;
    if (closed) return;
    const seen = armed;
    try {
      const run = await api.getRun(runId);
      if (closed) return;
      if (!mayBeHeldUp(run)) {
        if (seen === armed) {
          polling = false; // it moved on
          return;
        }
      } else {
        const waiting = await findHeldUp(api, run, counts);
        if (closed) return;
        if (waiting) {
          close();
          resolveFound({ run, waiting });
          return;
        }
      }
    } catch {
      // The store is busy or closing: look again shortly (a closing runtime ends the follow anyway).
    }
    later();
  };

  if (options.signal.aborted) closed = true;
  else options.signal.addEventListener("abort", close, { once: true });
  return {
    found,
    arm() {
      if (closed) return;
      armed++;
      if (polling) return;
      polling = true;
      void look();
    },
    close,
  };
}

/** One sentence for a person: what the run waits for and how to move it on. */
export function describeWaiting(agent: string, runId: string, w: Waiting): string {
  const follow = `Follow the run with GET /v1/runs/${runId}.`;
  if (w.run_id !== undefined && w.run_id !== runId) return describeHeldUp(agent, runId, w, follow);
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

/** A run held up by another run that waits: who waits, for what, and how to move it on. */
function describeHeldUp(agent: string, runId: string, w: Waiting, follow: string): string {
  const waiter = `run ${w.run_id} (agent "${w.agent ?? "?"}")`;
  let waits: string;
  let act: string;
  switch (w.kind) {
    case "approval":
      waits = `is waiting for a person to approve its call to ${w.tool ? `tool "${w.tool}"` : "a tool"} (approval ${w.approval_id ?? "?"})`;
      act =
        `Approve or deny it with POST /v1/approvals/${w.approval_id ?? "{id}"} ` +
        `or \`outpost approvals approve ${w.approval_id ?? "<id>"}\``;
      break;
    case "event":
      waits = `is waiting for the external event "${w.event ?? "?"}"`;
      act = `Deliver it with POST /v1/runs/${w.run_id}/events`;
      break;
    case "timer":
      waits = `is waiting until ${w.until ?? "a later time"}`;
      act = "It goes on by itself then";
      break;
    default:
      waits = `is waiting (${w.kind})`;
      act = `See GET /v1/runs/${w.run_id}`;
  }
  if (w.queued_behind !== undefined) {
    const behind =
      w.queued_behind === w.run_id
        ? `run ${w.run_id} (agent "${w.agent ?? "?"}"), which ${waits}`
        : `run ${w.queued_behind}, whose delegated ${waiter} ${waits}`;
    return (
      `Agent "${agent}" has not started on this message yet (run ${runId}): the runs of a session go in order, and it is queued behind ${behind}. ` +
      `${act}; the session's runs then go on in order. ${follow}`
    );
  }
  return `Agent "${agent}" is waiting for the work it delegated (run ${runId}): ${waiter} ${waits}. ${act}; the runs then go on. ${follow}`;
}
