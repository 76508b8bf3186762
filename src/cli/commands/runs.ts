/** `outpost runs ls | show ID | tree ID | tail ID | cancel ID`. */
import type { Command } from "commander";
import { isTerminal, type RunStatus, type RunTreeView, type RunView } from "../../core/api.js";
import { addConnectionOptions, type ConnectionOptions, withConnection } from "../connect.js";
import { Exit, UsageError } from "../errors.js";
import { followRun } from "../follow.js";
import { age, clock, formatUsd, out, table, truncate } from "../output.js";
import { approveCommand, denyCommand, describeEvent, LivePrinter, usageLine } from "../render.js";
import { exitCodeOf } from "./run.js";

const STATUSES: RunStatus[] = ["queued", "running", "waiting", "completed", "failed", "cancelled"];

interface LsOptions extends ConnectionOptions {
  agent?: string;
  status?: string;
  limit?: string;
  json?: boolean;
}

export function statusText(status: RunStatus): string {
  switch (status) {
    case "completed":
      return out.green(status);
    case "failed":
    case "cancelled":
      return out.red(status);
    case "waiting":
      return out.yellow(status);
    default:
      return out.cyan(status);
  }
}

export function parseLimit(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new UsageError(`--limit must be a whole number from 1 to 1000, not "${value}"`);
  return n;
}

export function registerRuns(program: Command): void {
  const runs = program.command("runs").description("list, inspect and follow runs");

  const ls = runs
    .command("ls")
    .alias("list")
    .description("list recent runs, newest first")
    .option("--agent <name>", "only runs of this agent")
    .option("--status <status>", `only runs with this status (${STATUSES.join(", ")})`)
    .option("--limit <n>", "how many runs to show", "20")
    .option("--json", "print JSON");
  addConnectionOptions(ls).action(async (opts: LsOptions) => {
    if (opts.status && !STATUSES.includes(opts.status as RunStatus)) {
      throw new UsageError(`unknown status "${opts.status}"`, `use one of: ${STATUSES.join(", ")}`);
    }
    const limit = parseLimit(opts.limit, 20);
    await withConnection(opts, { workers: false }, async ({ api }) => {
      // The API pages by at most 200: follow the cursor up to --limit.
      const page: { items: RunView[]; next_cursor: string | null } = { items: [], next_cursor: null };
      do {
        const next = await api.listRuns({
          limit: Math.min(200, limit - page.items.length),
          ...(page.next_cursor ? { cursor: page.next_cursor } : {}),
          ...(opts.agent ? { agent: opts.agent } : {}),
          ...(opts.status ? { status: opts.status as RunStatus } : {}),
        });
        page.items.push(...next.items);
        page.next_cursor = next.next_cursor;
      } while (page.next_cursor && page.items.length < limit);
      if (opts.json) {
        out.line(JSON.stringify(page.items, null, 2));
        return;
      }
      if (page.items.length === 0) {
        out.line(out.dim('no runs yet — start one with: outpost run AGENT "message"'));
        return;
      }
      out.line(
        table(
          ["ID", "AGENT", "STATUS", "STEPS", "COST", "CREATED", "INPUT"],
          page.items.map((r) => [
            r.id,
            r.agent,
            statusText(r.status),
            String(r.steps),
            formatUsd(r.usage?.cost_usd ?? 0),
            age(r.created_at),
            truncate(r.input, 40),
          ]),
        ),
      );
      if (page.next_cursor) out.line(out.dim(`… more runs exist; raise --limit to see them`));
    });
  });

  const show = runs
    .command("show")
    .description("show a run: summary and event timeline")
    .argument("<id>", "run id")
    .option("--json", "print the run and its events as JSON");
  addConnectionOptions(show).action(async (id: string, opts: ConnectionOptions & { json?: boolean }) => {
    await withConnection(opts, { workers: false }, async ({ api, flags }) => {
      const run = await api.getRun(id);
      const events = await api.getEvents(id);
      if (opts.json) {
        out.line(JSON.stringify({ run, events }, null, 2));
        return;
      }
      printSummary(run, flags);
      out.line();
      out.line(out.bold("Timeline"));
      out.line(
        table(
          ["SEQ", "TIME", "EVENT", "DETAIL"],
          events.filter((e) => e.type !== "model.delta").map((e) => [String(e.seq), clock(e.at), e.type, describeEvent(e)]),
        ),
      );
    });
  });

  const tree = runs
    .command("tree")
    .description("show a run and the runs it delegated to, as a tree")
    .argument("<id>", "run id (any run of the tree: its own subtree is shown)")
    .option("--json", "print JSON");
  addConnectionOptions(tree).action(async (id: string, opts: ConnectionOptions & { json?: boolean }) => {
    await withConnection(opts, { workers: false }, async ({ api }) => {
      const t = await api.getRunTree(id);
      if (opts.json) {
        out.line(JSON.stringify(t, null, 2));
        return;
      }
      for (const line of treeLines(t)) out.line(line);
    });
  });

  const tail = runs.command("tail").description("follow a run live until it ends").argument("<id>", "run id");
  addConnectionOptions(tail).action(async (id: string, opts: ConnectionOptions) => {
    const code = await withConnection(opts, { workers: true }, async ({ api, flags, kind }) => {
      const printer = new LivePrinter({ flags, showStart: true, showInput: true });
      // Locally nobody else can decide while this process holds the store: stop at a wait.
      const { run } = await followRun(api, id, {
        stopWhenWaiting: kind === "local",
        onEvent: (ev) => printer.handle(ev),
        onChildApproval: (c) => printer.childApproval(c),
      });
      printer.summary(run);
      return exitCodeOf(run);
    });
    throw new Exit(code);
  });

  const cancel = runs
    .command("cancel")
    .description("cancel a run, at any point: a model or tool call in flight is stopped")
    .argument("<id>", "run id")
    .option("--reason <text>", "why (recorded in the run's log)", "cancelled from the command line");
  addConnectionOptions(cancel).action(async (id: string, opts: ConnectionOptions & { reason: string }) => {
    await withConnection(opts, { workers: true }, async ({ api }) => {
      let run = await api.cancelRun(id, opts.reason);
      // Held by a worker, the run stops at its next step: wait for that, a few seconds at most.
      for (let i = 0; i < 50 && !isTerminal(run.status); i++) {
        await new Promise((r) => setTimeout(r, 100));
        run = await api.getRun(id);
      }
      out.line(`${statusText(run.status)} ${run.id}${run.error ? `: ${run.error.message}` : ""}`);
    });
  });
}

/** `run_… agent status` lines, children indented under their parent with box-drawing guides. */
export function treeLines(t: RunTreeView, prefix = "", last = true, top = true): string[] {
  const r = t.run;
  const head = top ? "" : `${prefix}${last ? "└─ " : "├─ "}`;
  const detail =
    r.status === "completed" && r.output
      ? `  ${out.dim(truncate(r.output, 60))}`
      : r.error
        ? `  ${out.dim(truncate(r.error.message, 60))}`
        : "";
  const lines = [`${head}${out.bold(r.agent)} ${statusText(r.status)} ${out.dim(r.id)}${detail}`];
  const childPrefix = top ? "" : `${prefix}${last ? "   " : "│  "}`;
  t.children.forEach((c, i) => {
    lines.push(...treeLines(c, childPrefix, i === t.children.length - 1, false));
  });
  return lines;
}

function printSummary(run: RunView, flags: string): void {
  const row = (label: string, value: string) => out.line(`${out.dim(label.padEnd(9))}${value}`);
  out.line(`${out.bold(`Run ${run.id}`)}  ${statusText(run.status)}`);
  row("agent", run.agent);
  row("session", run.session_id);
  if (run.parent_run_id) row("parent", `${run.parent_run_id} (depth ${run.depth}; whole tree: outpost runs tree ${run.root_run_id})`);
  row("created", `${run.created_at} (${age(run.created_at)})`);
  if (run.completed_at) row("ended", run.completed_at);
  row("usage", usageLine(run));
  row("input", run.input);
  if (run.output !== null && run.output !== undefined) row("output", run.output);
  if (run.error) row("error", `${run.error.code}: ${run.error.message}`);
  if (run.waiting_for) {
    const w = run.waiting_for;
    if (w.kind === "approval") {
      row("waiting", `for approval ${w.approval_id}`);
      row("approve", approveCommand(w.approval_id, flags));
      row("deny", denyCommand(w.approval_id, flags));
    } else if (w.kind === "timer") {
      row("waiting", w.retry ? `to retry ${w.retry} with the same key at ${w.until} (its system was away)` : `until ${w.until}`);
    } else if (w.kind === "event") {
      row("waiting", `for event "${w.event}"`);
    } else {
      row("waiting", `for ${w.run_ids.length === 1 ? "child run" : `${w.run_ids.length} child runs`} ${w.run_ids.join(", ")}`);
    }
  }
}
