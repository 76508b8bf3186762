/**
 * `outpost worker`: executes runs, serves nothing. Any number of workers, on any machines, share one
 * PostgreSQL with the API nodes (`outpost up --no-workers`): each claims runnable runs under a lease,
 * and a dead worker's runs are taken over when its leases lapse.
 */
import path from "node:path";
import type { Command } from "commander";
import { DEFAULT_DATA_DIR, quietLogger } from "../connect.js";
import { stopOnSignals } from "../lifecycle.js";
import { out } from "../output.js";
import { cliVersion } from "../version.js";
import { DEFAULT_CONCURRENCY, parseConcurrency, parseLease, sharedDatabaseUrl } from "./up.js";

interface WorkerOptions {
  project: string;
  data: string;
  concurrency: string;
  lease: string;
}

export function registerWorker(program: Command): void {
  program
    .command("worker")
    .description("execute runs from the shared PostgreSQL (OUTPOST_DATABASE_URL), beside API nodes started with `up --no-workers`")
    .option("--project <dir>", "project folder (the same on every node)", ".")
    .option("--data <dir>", "local state: the folder the project's stdio systems are given (OUTPOST_DATA_DIR)", DEFAULT_DATA_DIR)
    .option("--concurrency <n>", "runs this worker executes at once", String(DEFAULT_CONCURRENCY))
    .option("--lease <duration>", "how long a run stays with this worker unrenewed: a dead worker's runs move after it", "30s")
    .action(async (opts: WorkerOptions) => {
      const concurrency = parseConcurrency(opts.concurrency);
      const leaseMs = parseLease(opts.lease);
      const databaseUrl = sharedDatabaseUrl("outpost worker");
      const [{ loadProject }, { startOutpost }] = await Promise.all([
        import("../../definitions/index.js"),
        import("../../runtime/index.js"),
      ]);
      const project = await loadProject(path.resolve(opts.project));
      const logger = await quietLogger(process.env.OUTPOST_LOG_LEVEL ?? "warn");
      const outpost = await startOutpost({
        project,
        dataDir: path.resolve(opts.data),
        databaseUrl,
        logger,
        redactor: logger.redactor,
        concurrency,
        leaseMs,
      });

      // Asked to stop: claim nothing more, hand back what is held (another worker resumes it from its log at once).
      stopOnSignals(
        (signal) => {
          const held = outpost.executing();
          return `\n${signal}: stopping; handing back ${held} run${held === 1 ? "" : "s"}…`;
        },
        "stopping",
        () => outpost.close(),
      );

      out.line(`${out.green("●")} ${out.bold(`Outpost ${cliVersion()} worker`)} is running`);
      out.line(`  ${out.dim("Project".padEnd(9))}${project.root} (workspace ${project.workspace})`);
      out.line(`  ${out.dim("Store".padEnd(9))}postgres`);
      out.line(`  ${out.dim("Runs".padEnd(9))}up to ${concurrency} at once, lease ${opts.lease}`);
      for (const c of outpost.connections()) {
        const state = c.state === "ready" ? out.green(`ready, ${c.tools} tools`) : out.yellow(`${c.state}${c.error ? `: ${c.error}` : ""}`);
        out.line(`  ${out.dim("System".padEnd(9))}${c.name} ${state}`);
      }
      out.line(out.dim("Press Ctrl+C to stop (runs held are handed back to other workers)."));
    });
}
