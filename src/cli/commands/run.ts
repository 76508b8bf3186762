/** `outpost run AGENT "message"`: start a run and watch it live. */
import readline from "node:readline";
import type { Command } from "commander";
import type { RunView } from "../../core/api.js";
import { addConnectionOptions, type Connection, type ConnectionOptions, withConnection } from "../connect.js";
import { EXIT_FAILED, EXIT_OK, Exit, UsageError } from "../errors.js";
import { followRun } from "../follow.js";
import { command } from "../hints.js";
import { followAskingApprovals, lineReader } from "../inline-approvals.js";
import { err, out } from "../output.js";
import { LivePrinter } from "../render.js";
import { whoAmI } from "../whoami.js";

interface RunOptions extends ConnectionOptions {
  session?: string;
  json?: boolean;
  wait?: boolean;
}

export function exitCodeOf(run: RunView): number {
  return run.status === "failed" || run.status === "cancelled" ? EXIT_FAILED : EXIT_OK;
}

export function registerRun(program: Command): void {
  const cmd = program
    .command("run")
    .description("run an agent on one message and watch it work")
    .argument("<agent>", "agent name (see `outpost validate`)")
    .argument("<message>", "the input for the agent")
    .option("--session <id>", "continue an existing session")
    .option("--json", "print the final run as JSON instead of the live view")
    .option("--wait", "keep following the run while it waits for approvals (asked for here when working locally)")
    .addHelpText(
      "after",
      `
Exit codes: 0 completed (or left waiting for an approval), 1 failed or cancelled, 2 usage error.

Examples:
  $ outpost run triage "Ticket T-51503: invoice INV-105171 charges me twice" --project examples/acme
  $ outpost run triage "Ticket T-51501: my order 105708 arrived with a cracked screen" --server http://127.0.0.1:7700`,
    );
  addConnectionOptions(cmd).action(async (agent: string, message: string, opts: RunOptions) => {
    if (!message.trim()) throw new UsageError("the message is empty", `e.g. outpost run ${agent} "hello"`);
    const code = await withConnection(opts, { workers: true }, async (connection) => {
      const { api, flags, kind } = connection;
      const started = await api.startRun({ agent, input: message, ...(opts.session ? { session_id: opts.session } : {}) });
      if (kind === "server") detachOnInterrupt(started.id, flags);
      const { run, live } = await watchRun(connection, started.id, opts);
      if (live && run.status === "waiting" && kind === "server")
        out.line(out.dim(`follow it: ${command(["runs", "tail", run.id], flags)}`));
      return exitCodeOf(run);
    });
    throw new Exit(code);
  });
}

/**
 * Follows a run just started until it ends or waits: printed as JSON at the end (`json`), or live with a summary.
 * With `wait`, it follows through waits; locally, where nobody else can decide, it asks for approvals here.
 */
export async function watchRun(
  connection: Connection,
  runId: string,
  opts: { json?: boolean; wait?: boolean },
): Promise<{ run: RunView; live: boolean }> {
  const { api, flags, kind } = connection;
  if (opts.json) {
    const { run } = await followRun(api, runId, { stopWhenWaiting: !opts.wait });
    out.line(JSON.stringify(run, null, 2));
    return { run, live: false };
  }
  const printer = new LivePrinter({ flags, showStart: true });
  let run: RunView;
  if (opts.wait && kind === "local") {
    const rl = readline.createInterface({ input: process.stdin, terminal: false });
    try {
      run = await followAskingApprovals(api, runId, printer, lineReader(rl), whoAmI() ?? "cli");
    } finally {
      rl.close();
    }
  } else {
    ({ run } = await followRun(api, runId, {
      stopWhenWaiting: !opts.wait,
      onEvent: (ev) => printer.handle(ev),
      onChildApproval: (c) => printer.childApproval(c),
    }));
  }
  printer.summary(run);
  return { run, live: true };
}

/** Ctrl+C stops watching, not the run: it goes on on the server. */
function detachOnInterrupt(runId: string, flags: string): void {
  process.once("SIGINT", () => {
    err.line(`\ndetached; the run goes on. Follow it: ${command(["runs", "tail", runId], flags)}`);
    process.exit(130);
  });
}
