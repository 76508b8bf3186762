/**
 * `outpost workflows ls | start NAME`: the project's workflows, and starting one (watched live, like `outpost run`).
 * On the local store or a server (--server).
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { StepView } from "../../workflows/views.js";
import { addConnectionOptions, type ConnectionOptions, withConnection } from "../connect.js";
import { Exit, UsageError } from "../errors.js";
import { command } from "../hints.js";
import { out, table } from "../output.js";
import { exitCodeOf, watchRun } from "./run.js";

interface StartOptions extends ConnectionOptions {
  input?: string;
  inputFile?: string;
  idempotencyKey?: string;
  json?: boolean;
  wait?: boolean;
}

export function registerWorkflows(program: Command): void {
  const workflows = program.command("workflows").description("fixed business processes (workflows/*.yaml): list and start them");

  const ls = workflows
    .command("ls")
    .alias("list")
    .description("the project's workflows: their steps, team and version")
    .option("--json", "print JSON");
  addConnectionOptions(ls).action(async (opts: ConnectionOptions & { json?: boolean }) => {
    await withConnection(opts, { workers: false, requireData: false }, async ({ workflows: api, flags }) => {
      const { workflows: list } = await api.listWorkflows();
      if (opts.json) return out.line(JSON.stringify(list, null, 2));
      if (list.length === 0) return out.line(out.dim("no workflows: add one as workflows/<name>.yaml"));
      out.line(
        table(
          ["WORKFLOW", "TEAM", "STEPS", "VERSION", "FILE"],
          list.map((w) => [w.name, w.team ?? "-", stepsText(w.steps), w.version.slice(0, 12), w.file]),
        ),
      );
      out.line(out.dim(`start one: ${command(["workflows", "start", list[0].name, "--input", "{…}"], flags)}`));
    });
  });

  const start = workflows
    .command("start")
    .description("start a run of a workflow and watch it work")
    .argument("<name>", "the workflow (see workflows ls)")
    .option("--input <json>", "the workflow's input, as JSON")
    .option("--input-file <file>", "read the input (JSON) from a file")
    .option("--idempotency-key <key>", "a retried start with the same key answers the same run")
    .option("--json", "print the final run as JSON instead of the live view")
    .option("--wait", "keep following the run while it waits for approvals (asked for here when working locally)")
    .addHelpText(
      "after",
      `
Exit codes: 0 completed (or left waiting), 1 failed or cancelled, 2 usage error.

Example:
  $ outpost workflows start month-end-close --input '{"month": "2026-11"}' --project examples/acme`,
    );
  addConnectionOptions(start).action(async (name: string, opts: StartOptions) => {
    const input = inputOf(opts);
    const code = await withConnection(opts, { workers: true }, async (connection) => {
      const { workflows: flows, flags } = connection;
      const started = await flows.startWorkflow(name, {
        ...(input !== undefined ? { input } : {}),
        ...(opts.idempotencyKey ? { idempotency_key: opts.idempotencyKey } : {}),
      });
      const { run, live } = await watchRun(connection, started.id, opts);
      if (live && run.status === "waiting") out.line(out.dim(`follow it: ${command(["runs", "tail", run.id], flags)}`));
      return exitCodeOf(run);
    });
    throw new Exit(code);
  });
}

/** The input from --input or --input-file, parsed; a clear usage error when it is not JSON. */
function inputOf(opts: StartOptions): unknown {
  if (opts.input !== undefined && opts.inputFile !== undefined) {
    throw new UsageError("give the input once: --input or --input-file, not both");
  }
  let text: string;
  let from: string;
  if (opts.inputFile !== undefined) {
    try {
      text = readFileSync(opts.inputFile, "utf8");
    } catch (err) {
      throw new UsageError(`cannot read ${opts.inputFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    from = opts.inputFile;
  } else if (opts.input !== undefined) {
    text = opts.input;
    from = "--input";
  } else {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${from} is not JSON: ${(err as Error).message}`, `e.g. --input '{"month": "2026-11"}'`);
  }
}

/** "tool, agent, approval, tool" for the top-level steps (a branch/loop/parallel counts its own). */
function stepsText(steps: StepView[]): string {
  const text = steps.map((s) => s.kind).join(", ");
  return text.length > 60 ? `${steps.length} steps` : text;
}
