/**
 * Where a command's runs live: a running server (`--server URL` or
 * OUTPOST_SERVER, with OUTPOST_API_KEY as bearer token), or the local store,
 * opened in-process for the duration of the command.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import type { OutpostApi } from "../core/api.js";
import { OutpostError } from "../core/errors.js";
import type { Project } from "../definitions/types.js";
import type { WorkflowsApi } from "../workflows/views.js";
import { UsageError } from "./errors.js";
import { quote } from "./hints.js";

export interface ConnectionOptions {
  server?: string;
  project?: string;
  data?: string;
}

export interface Connection {
  api: OutpostApi;
  workflows: WorkflowsApi;
  kind: "server" | "local";
  /** Flags to repeat in suggested follow-up commands so they reach the same runs. */
  flags: string;
  /** Server URL or local data folder, for messages. */
  where: string;
}

export const DEFAULT_DATA_DIR = ".outpost";

export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .option("--server <url>", "talk to a running Outpost server (default: $OUTPOST_SERVER)")
    .option("--project <dir>", "project folder, when working on the local store", ".")
    .option("--data <dir>", "local data folder", DEFAULT_DATA_DIR);
}

/** The server a command talks to (--server, else OUTPOST_SERVER), checked; undefined: work on the local store. */
export function serverUrl(opts: ConnectionOptions): string | undefined {
  const url = opts.server ?? process.env.OUTPOST_SERVER;
  if (!url) return undefined;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error("protocol");
  } catch {
    throw new UsageError(`"${url}" is not a server URL`, "use e.g. --server http://127.0.0.1:7700");
  }
  return url.replace(/\/+$/, "");
}

/**
 * For commands that read the local store themselves: the project (an outpost.yaml must be there), the data folder
 * and the database (OUTPOST_DATABASE_URL, else SQLite in the data folder).
 */
export async function localProject(opts: ConnectionOptions): Promise<{ project: Project; dataDir: string; databaseUrl?: string }> {
  const projectDir = path.resolve(opts.project ?? ".");
  if (!existsSync(path.join(projectDir, "outpost.yaml"))) {
    throw new OutpostError(
      "not_found",
      `no Outpost project in ${projectDir} (no outpost.yaml), and no server named`,
      "name the project with --project DIR, or ask a running Outpost with --server URL (or set OUTPOST_SERVER)",
    );
  }
  const { loadProject } = await import("../definitions/index.js");
  const databaseUrl = process.env.OUTPOST_DATABASE_URL || undefined;
  return {
    project: await loadProject(projectDir),
    dataDir: path.resolve(opts.data ?? DEFAULT_DATA_DIR),
    ...(databaseUrl ? { databaseUrl } : {}),
  };
}

/** The flags that reach the same local store again (for suggested follow-up commands). */
export function localFlags(opts: ConnectionOptions): string {
  const parts: string[] = [];
  if (opts.project && path.resolve(opts.project) !== path.resolve(".")) parts.push(`--project ${quote(opts.project)}`);
  if (opts.data && path.resolve(opts.data) !== path.resolve(DEFAULT_DATA_DIR)) parts.push(`--data ${quote(opts.data)}`);
  return parts.join(" ");
}

/**
 * Opens a connection, runs `fn`, and always closes what was opened. Local mode
 * starts the runtime in this process (`workers: false` opens the store without
 * executing runs, for read-only commands).
 */
export async function withConnection<T>(
  opts: ConnectionOptions,
  /** `workers: false` opens the store without executing runs, and needs existing data unless `requireData` is false. */
  options: { workers: boolean; requireData?: boolean },
  fn: (connection: Connection) => Promise<T>,
): Promise<T> {
  const url = serverUrl(opts);
  if (url) {
    const { createClient } = await import("../client/index.js");
    const apiKey = process.env.OUTPOST_API_KEY || undefined;
    const api = createClient(url, { apiKey });
    const explicit = opts.server !== undefined;
    return fn({ api, workflows: api, kind: "server", flags: explicit ? `--server ${url}` : "", where: url });
  }

  const projectDir = path.resolve(opts.project ?? ".");
  const dataDir = path.resolve(opts.data ?? DEFAULT_DATA_DIR);
  if (!options.workers && options.requireData !== false && !existsSync(dataDir)) {
    throw new OutpostError(
      "not_found",
      `there is no Outpost data in ${dataDir}`,
      'start a run first (outpost run AGENT "message"), pass --data DIR, or talk to a server with --server URL',
    );
  }
  if (!existsSync(path.join(projectDir, "outpost.yaml"))) {
    throw new OutpostError(
      "not_found",
      `no Outpost project in ${projectDir} (no outpost.yaml), and no server named`,
      "talk to a running Outpost with --server URL (or set OUTPOST_SERVER), or name a project with --project DIR (e.g. --project examples/acme)",
    );
  }
  const { loadProject } = await import("../definitions/index.js");
  const { startOutpost } = await import("../runtime/index.js");
  const project = await loadProject(projectDir);
  const logger = await quietLogger();
  const outpost = await startOutpost({
    project,
    dataDir,
    logger,
    redactor: logger.redactor,
    ...(options.workers ? {} : { concurrency: 0 }),
  });

  // Ctrl+C while working locally: close the store cleanly (in-flight runs are
  // durable and resume on the next start), then leave.
  const state: { closing?: Promise<void> } = {};
  const close = (): Promise<void> => {
    state.closing ??= outpost.close();
    return state.closing;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal === "SIGINT" ? "interrupted" : signal}: closing the local store…\n`);
    void close().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const [{ workflowsApi }, { localCaller }] = await Promise.all([
      import("../workflows/views.js"),
      import("../security/identity/index.js"),
    ]);
    const workflows = workflowsApi(outpost.workflows, localCaller(project.workspace));
    return await fn({ api: outpost, workflows, kind: "local", flags: localFlags(opts), where: dataDir });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await close();
  }
}

/**
 * A pino logger on stderr that only speaks up for warnings (OUTPOST_LOG_LEVEL to change), and the redactor it
 * writes through: pass both to startOutpost so no secret the process learns reaches a log line.
 */
export async function quietLogger(level = process.env.OUTPOST_LOG_LEVEL ?? "warn") {
  const [{ default: pino }, { Redactor }] = await Promise.all([import("pino"), import("../security/vault/index.js")]);
  const redactor = new Redactor();
  return Object.assign(pino({ level, base: undefined, ...redactor.pinoOptions() }, pino.destination(2)), { redactor });
}
