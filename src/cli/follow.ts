/** Following a run's events until it ends (or, optionally, until it waits). */
import type { EventView, OutpostApi, RunTreeView, RunView } from "../core/api.js";
import { isTerminal } from "../core/api.js";

const TERMINAL_EVENTS = new Set(["run.completed", "run.failed", "run.cancelled"]);

export interface FollowResult {
  run: RunView;
  /** Seq of the last event seen. */
  lastSeq: number;
}

/** A run below the one followed that waits for a person. */
export interface ChildApproval {
  run: RunView;
  approvalId: string;
}

/**
 * Streams the events of `runId` after `after` into `onEvent`. Returns once the
 * run is terminal, or — with `stopWhenWaiting` — once it is waiting (for an
 * approval, a timer or an event) and still waiting. A wait for child runs is
 * followed through (children end by themselves), unless one of them waits for an
 * approval: that is reported to `onChildApproval` and, with `stopWhenWaiting`,
 * ends the follow too.
 */
export async function followRun(
  api: OutpostApi,
  runId: string,
  options: {
    after?: number;
    stopWhenWaiting: boolean;
    onEvent?: (ev: EventView) => void;
    onChildApproval?: (c: ChildApproval) => void;
  },
): Promise<FollowResult> {
  const controller = new AbortController();
  let lastSeq = options.after ?? 0;
  let watcher: NodeJS.Timeout | undefined;
  let stoppedForChild = false;
  const announced = new Set<string>();
  const watchChildren = () => {
    watcher ??= setInterval(() => {
      void childApprovals(api, runId).then(
        (found) => {
          for (const c of found) {
            if (announced.has(c.approvalId)) continue;
            announced.add(c.approvalId);
            options.onChildApproval?.(c);
            if (options.stopWhenWaiting) {
              stoppedForChild = true;
              controller.abort();
            }
          }
        },
        () => undefined,
      );
    }, 300);
  };
  try {
    for await (const ev of api.streamEvents(runId, { after: options.after, signal: controller.signal })) {
      if (typeof ev.seq === "number" && ev.seq > lastSeq) lastSeq = ev.seq;
      options.onEvent?.(ev);
      if (TERMINAL_EVENTS.has(ev.type)) break;
      if (ev.type === "run.waiting" && (ev.data.for as { kind?: string } | undefined)?.kind === "children") {
        watchChildren();
      } else if (ev.type === "run.waiting" && options.stopWhenWaiting) {
        // A replayed history may hold waits that are long over: stop only if it still waits.
        const run = await api.getRun(runId);
        if (run.status === "waiting") return { run, lastSeq };
      }
    }
  } finally {
    if (watcher) clearInterval(watcher);
    controller.abort();
  }
  if (stoppedForChild) return { run: await api.getRun(runId), lastSeq };
  const run = await settledRun(api, runId);
  return { run, lastSeq };
}

/** The run view once its status reflects the terminal event just seen. */
async function settledRun(api: OutpostApi, runId: string): Promise<RunView> {
  let run = await api.getRun(runId);
  for (let i = 0; i < 20 && !isTerminal(run.status) && run.status !== "waiting"; i++) {
    await new Promise((r) => setTimeout(r, 50));
    run = await api.getRun(runId);
  }
  return run;
}

/** The last seq in a run's log (0 when empty). */
export async function lastSeqOf(api: OutpostApi, runId: string): Promise<number> {
  const events = await api.getEvents(runId);
  return events.reduce((max, e) => Math.max(max, e.seq), 0);
}

/** Runs of the tree below `rootId` that wait for an approval. */
async function childApprovals(api: OutpostApi, rootId: string): Promise<ChildApproval[]> {
  const found: ChildApproval[] = [];
  const visit = (t: RunTreeView) => {
    const w = t.run.waiting_for;
    if (t.run.id !== rootId && t.run.status === "waiting" && w?.kind === "approval") found.push({ run: t.run, approvalId: w.approval_id });
    for (const c of t.children) visit(c);
  };
  visit(await api.getRunTree(rootId));
  return found;
}
