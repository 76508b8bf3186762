/**
 * `outpost replay RUN --with DIR`: re-drives a recorded run against a changed project (agents, instructions,
 * scripts, policies), answering every tool call from the recording — nothing is executed, nothing written to the
 * real store — and shows where the new version diverges. Exit 0 when identical, 3 when it diverged.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import type { RunEvent } from "../../core/events.js";
import type { ReplayReport, TraceRow, TraceStep } from "../../runtime/index.js";
import { DEFAULT_DATA_DIR } from "../connect.js";
import { Exit, UsageError } from "../errors.js";
import { out, table, truncate } from "../output.js";

/** The replayed run took another path than the recorded one (a distinct code, so CI can gate on it). */
export const EXIT_DIVERGED = 3;

interface ReplayCliOptions {
  with?: string;
  server?: string;
  data: string;
  json?: boolean;
}

interface RecordedRun {
  runId: string;
  events: RunEvent[];
  history: { role: "user" | "assistant"; content: string }[];
}

export function registerReplay(program: Command): void {
  program
    .command("replay")
    .description("re-drive a recorded run against a changed project, tools answered from the recording; show where it diverges")
    .argument("<run>", "id of the recorded run (outpost runs ls)")
    .requiredOption("--with <dir>", "the changed project folder (agents, instructions, scripts, policies)")
    .option("--server <url>", "read the recorded run from a running Outpost server (default: the local store)")
    .option("--data <dir>", "local data folder holding the recorded run", DEFAULT_DATA_DIR)
    .option("--json", "print the report as JSON")
    .addHelpText(
      "after",
      `
No tool is called: each call of the new version gets the recorded result of the same tool with the same
arguments (else of the next recorded call of that tool, by order); a call the recording has no counterpart
for gets an error result saying so. Policies of the changed project are evaluated for real; approvals get
their recorded decisions. Exit codes: 0 identical, 3 diverged, 1 error, 2 usage.

Example:
  $ outpost replay run_01j… --with ../agents-next --data .outpost`,
    )
    .action(async (runId: string, opts: ReplayCliOptions) => {
      const dir = opts.with as string;
      if (!existsSync(path.join(path.resolve(dir), "outpost.yaml"))) {
        throw new UsageError(`--with ${dir}: no Outpost project there (no outpost.yaml)`, "name the folder of the changed project");
      }
      const recorded = (opts.server ?? process.env.OUTPOST_SERVER) ? await fromServer(runId, opts) : await fromStore(runId, opts);
      const [{ loadProject }, runtime] = await Promise.all([import("../../definitions/index.js"), import("../../runtime/index.js")]);
      const project = await loadProject(path.resolve(dir));
      const report = await runtime.replayRun({ recorded: recorded.events, runId: recorded.runId, project, history: recorded.history });
      if (opts.json) out.line(JSON.stringify(report, null, 2));
      else printReport(report, dir, runtime);
      throw new Exit(report.identical ? 0 : EXIT_DIVERGED);
    });
}

/** The recorded run from the local store, read only (nothing of the replay is written there). */
async function fromStore(runId: string, opts: ReplayCliOptions): Promise<RecordedRun> {
  const dataDir = path.resolve(opts.data);
  if (!existsSync(dataDir)) {
    const { OutpostError } = await import("../../core/errors.js");
    throw new OutpostError(
      "not_found",
      `there is no Outpost data in ${dataDir}`,
      "pass the data folder of the project the run was recorded in with --data DIR, or read it from a server with --server URL",
    );
  }
  const [{ openStore }, { notFound }] = await Promise.all([import("../../store/index.js"), import("../../core/errors.js")]);
  const store = await openStore({ dataDir, databaseUrl: process.env.OUTPOST_DATABASE_URL || undefined });
  try {
    const row = await store.domain.db.selectFrom("runs").select("workspace").where("id", "=", runId).executeTakeFirst();
    const run = row ? await store.getRun(row.workspace, runId) : null;
    if (!run) throw notFound("run", runId, `list the runs in ${dataDir} with: outpost runs ls --data ${opts.data}`);
    const history: RecordedRun["history"] = [];
    if (run.sessionSeq > 1) {
      // Earlier turns of the session, as the executor gives them to the model.
      for (const r of await store.listSessionRuns(run.sessionId)) {
        if (r.sessionSeq >= run.sessionSeq) break;
        history.push({ role: "user", content: r.input });
        if (r.status === "completed" && r.output !== null) history.push({ role: "assistant", content: r.output });
      }
    }
    return { runId, events: await store.getEvents(runId), history };
  } finally {
    await store.close();
  }
}

async function fromServer(runId: string, opts: ReplayCliOptions): Promise<RecordedRun> {
  const url = (opts.server ?? process.env.OUTPOST_SERVER ?? "").replace(/\/+$/, "");
  try {
    const u = new URL(url);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("protocol");
  } catch {
    throw new UsageError(`"${url}" is not a server URL`, "use e.g. --server http://127.0.0.1:7700");
  }
  const [{ createClient }, { parseEvent, EVENT_SCHEMA_VERSION }] = await Promise.all([
    import("../../client/index.js"),
    import("../../core/events.js"),
  ]);
  const api = createClient(url, { apiKey: process.env.OUTPOST_API_KEY || undefined });
  const run = await api.getRun(runId);
  const views = await api.getEvents(runId);
  const events = views.map((e) => parseEvent({ seq: e.seq, type: e.type, data: e.data, at: Date.parse(e.at), v: EVENT_SCHEMA_VERSION }));
  const session = await api.getSession(run.session_id);
  const history: RecordedRun["history"] = [];
  for (const m of session.messages) {
    if (m.run_id === runId) break;
    history.push({ role: m.role, content: m.content });
  }
  return { runId, events, history };
}

const MARK: Record<TraceRow["status"], string> = { same: " ", changed: "≠", recorded_only: "-", replay_only: "+" };

function printReport(
  report: ReplayReport,
  dir: string,
  trace: Pick<typeof import("../../runtime/index.js"), "describeStep" | "requestDifference">,
): void {
  const { describeStep } = trace;
  out.line(`${out.bold("Replay")} of run ${report.recorded.runId} (${report.recorded.agent}) against ${dir}`);
  const rows = report.rows.map((r) => {
    const first = r.step === report.divergedAt;
    const mark = first ? out.red("✗") : r.status === "same" ? out.dim("=") : out.yellow(MARK[r.status]);
    const kind = (r.recorded ?? r.replay)?.kind ?? "";
    // The STEP column says what kind of step it is: the cells need not say it again.
    const cell = (s: TraceStep) => truncate(describeStep(s, 60).replace(/^policy /, ""), 70);
    const recorded = r.recorded ? cell(r.recorded) : out.dim("—");
    const request = r.recorded && r.replay ? trace.requestDifference(r.recorded, r.replay) : null;
    const replay =
      r.status === "same" ? out.dim("same") : r.replay ? `${cell(r.replay)}${request ? ` — ${truncate(request, 60)}` : ""}` : out.dim("—");
    return [
      String(r.step),
      mark,
      kind,
      r.status === "same" ? out.dim(recorded) : recorded,
      r.status === "same" ? replay : out.bold(replay),
    ];
  });
  out.line(table(["#", "", "STEP", "RECORDED", "REPLAY"], rows));
  const counts = { exact: 0, by_order: 0, not_recorded: 0 };
  for (const m of report.matches) counts[m.match]++;
  if (report.matches.length > 0) {
    out.line(
      out.dim(
        `answered from the recording: ${counts.exact} exact, ${counts.by_order} by order, ${counts.not_recorded} not recorded (not executed)`,
      ),
    );
  }
  for (const n of report.notes) out.line(out.dim(`note: ${n}`));
  out.line(report.identical ? `${out.green("✓")} ${report.summary}` : `${out.red("✗")} ${report.summary}`);
}
