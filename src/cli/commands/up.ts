/**
 * `outpost up`: the runtime and the HTTP server in one process; with `--no-workers`, an API node only
 * (runs are executed by `outpost worker` processes on the same PostgreSQL).
 */
import { existsSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import type { OutpostApi } from "../../core/api.js";
import { OutpostError } from "../../core/errors.js";
import { parseDuration } from "../../definitions/duration.js";
import type { Outpost } from "../../runtime/index.js";
import type { ServableApi } from "../../server/index.js";
import { DEFAULT_DATA_DIR, quietLogger } from "../connect.js";
import { UsageError } from "../errors.js";
import { command, quote } from "../hints.js";
import { stopOnSignals } from "../lifecycle.js";
import { agentModels, scriptedHint } from "../models.js";
import { out } from "../output.js";
import { cliVersion } from "../version.js";

interface UpOptions {
  project: string;
  data: string;
  port: string;
  host: string;
  publicUrl?: string;
  /** commander's negation of --no-workers. */
  workers: boolean;
  concurrency: string;
}

export const DEFAULT_PORT = 7700;
/** Runs one process executes at once: model calls wait on the network, so many runs share a core. */
export const DEFAULT_CONCURRENCY = 1_000;

export function parseConcurrency(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) {
    throw new UsageError(
      `--concurrency must be a whole number from 1 to 100000, not "${value}"`,
      "how many runs this process executes at once",
    );
  }
  return n;
}

/** `--lease`: how long a worker holds a run without renewing it (renewed every third of it): a dead worker's runs
 * are taken over after at most this long. Short leases take over sooner and renew more often. */
export function parseLease(value: string): number {
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (e) {
    throw new UsageError(`--lease: ${(e as Error).message}`, "e.g. --lease 30s");
  }
  if (ms < 1_000 || ms > 10 * 60_000)
    throw new UsageError(`--lease must be from 1s to 10m, not ${value}`, "e.g. --lease 30s (the default)");
  return ms;
}

/** The PostgreSQL that API nodes and workers share; a split topology cannot run on the embedded SQLite. */
export function sharedDatabaseUrl(what: string): string {
  const url = process.env.OUTPOST_DATABASE_URL;
  if (!url) {
    throw new UsageError(
      `${what} needs PostgreSQL, shared by every API node and worker: OUTPOST_DATABASE_URL is not set`,
      "export OUTPOST_DATABASE_URL=postgres://user@host:5432/outpost (the embedded SQLite serves one process: use `outpost up`)",
    );
  }
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new UsageError(`OUTPOST_DATABASE_URL must be a postgres:// URL, not "${url.replace(/:[^:@/]*@/, ":***@")}"`);
  }
  return url;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port must be a number from 0 to 65535, not "${value}"`, "0 picks a free port");
  }
  return port;
}

/** The API without `close`, so the server cannot close the runtime behind our back. */
function apiOnly(
  api: OutpostApi &
    Pick<Outpost, "as" | "security" | "memory" | "context" | "triggers" | "workflows" | "costs" | "telemetry"> & {
      connections(): ReturnType<NonNullable<ServableApi["connections"]>>;
    },
): ServableApi {
  return {
    as: (caller) => api.as(caller),
    security: api.security,
    memory: api.memory,
    context: api.context,
    triggers: api.triggers,
    workflows: api.workflows,
    costs: api.costs,
    telemetry: api.telemetry,
    connections: () => api.connections(),
    health: () => api.health(),
    listAgents: () => api.listAgents(),
    getAgent: (name) => api.getAgent(name),
    startRun: (request) => api.startRun(request),
    getRun: (id) => api.getRun(id),
    listRuns: (request) => api.listRuns(request),
    getEvents: (runId, after) => api.getEvents(runId, after),
    streamEvents: (runId, options) => api.streamEvents(runId, options),
    cancelRun: (id, reason) => api.cancelRun(id, reason),
    sendEvent: (runId, event) => api.sendEvent(runId, event),
    listApprovals: (request) => api.listApprovals(request),
    decideApproval: (id, decision) => api.decideApproval(id, decision),
    getSession: (id) => api.getSession(id),
    getRunTree: (id) => api.getRunTree(id),
    getArtifact: (id, page) => api.getArtifact(id, page),
  };
}

export function registerUp(program: Command): void {
  program
    .command("up")
    .description("start Outpost: the runtime and the HTTP API (with docs at /docs)")
    .option("--project <dir>", "project folder", ".")
    .option("--data <dir>", "data folder (SQLite database and local state)", DEFAULT_DATA_DIR)
    .option("--port <n>", "port to listen on (0 picks a free one)", String(DEFAULT_PORT))
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .option(
      "--public-url <url>",
      "the URL clients reach this server at, for A2A agent cards (default: from each request's Host; env OUTPOST_PUBLIC_URL)",
    )
    .option("--no-workers", "serve the API only; `outpost worker` processes on the same PostgreSQL execute the runs")
    .option("--concurrency <n>", "runs this process executes at once", String(DEFAULT_CONCURRENCY))
    .action(async (opts: UpOptions) => {
      const port = parsePort(opts.port);
      const concurrency = opts.workers ? parseConcurrency(opts.concurrency) : 0;
      if (!opts.workers) sharedDatabaseUrl("outpost up --no-workers");
      const [{ loadProject }, { startOutpost }, { createServer, listen }] = await Promise.all([
        import("../../definitions/index.js"),
        import("../../runtime/index.js"),
        import("../../server/index.js"),
      ]);
      const project = await loadProject(path.resolve(opts.project));
      const logger = await quietLogger(process.env.OUTPOST_LOG_LEVEL ?? "warn");
      const outpost = await startOutpost({ project, dataDir: path.resolve(opts.data), logger, redactor: logger.redactor, concurrency });
      // First start: the workspace gets an admin key (OUTPOST_ADMIN_KEY was adopted by the runtime if set), shown once below.
      let adminKey: string | null = null;
      try {
        adminKey = (await outpost.security.identities.ensureAdminKey(project.workspace))?.key ?? null;
      } catch (e) {
        await outpost.close();
        throw e;
      }
      let server: Awaited<ReturnType<typeof createServer>> | undefined;
      let url: string;
      try {
        const publicUrl = opts.publicUrl ?? process.env.OUTPOST_PUBLIC_URL;
        const perMinute = project.auth?.rateLimit?.perMinute;
        server = await createServer(apiOnly(outpost), {
          logger,
          version: cliVersion(),
          ...(publicUrl ? { publicUrl } : {}),
          ...(perMinute ? { rateLimitPerMinute: perMinute } : {}),
        });
        url = await listen(server, { host: opts.host, port });
        outpost.advertise(url);
      } catch (e) {
        await server?.close().catch(() => {});
        await outpost.close();
        const code = (e as { code?: string }).code;
        if (code === "EADDRINUSE") {
          throw new OutpostError("conflict", `port ${port} is already in use`, "pick another with --port, or --port 0 for a free one");
        }
        if (code === "ENOTFOUND" || code === "EADDRNOTAVAIL" || code === "EAI_AGAIN") {
          throw new OutpostError(
            "invalid_request",
            `cannot listen on --host ${opts.host}: no such address on this machine`,
            "use 127.0.0.1 (this machine only), 0.0.0.0 (every interface) or one of this machine's addresses",
          );
        }
        if (code === "EACCES") {
          throw new OutpostError(
            "forbidden",
            `not allowed to listen on port ${port}`,
            "ports below 1024 need privileges: pick a higher --port",
          );
        }
        throw e;
      }

      // Shut down once: server first (ends open streams), then the runtime.
      stopOnSignals(
        (signal) => `\n${signal}: shutting down…`,
        "shutting down",
        async () => {
          await server?.close();
          await outpost.close();
        },
      );

      printBanner({
        url,
        project,
        storeKind: outpost.storeKind,
        workers: concurrency,
        dataDir: path.resolve(opts.data),
        models: outpost.describeModels(),
        connections: outpost.connections(),
        adminKey,
      });
    });
}

function printBanner(info: {
  url: string;
  project: import("../../definitions/types.js").Project;
  storeKind: string;
  /** Runs this process executes at once; 0 = API only. */
  workers: number;
  dataDir: string;
  models: { agent: string; model: string }[];
  connections: { name: string; kind: string; state: string; error?: string; tools: number }[];
  /** The admin key created at this first start: printed this once. */
  adminKey: string | null;
}): void {
  const { url, project } = info;
  // A wildcard listen address is not one to send requests to.
  const reach = url.replace("//0.0.0.0:", "//127.0.0.1:").replace("//[::]:", "//[::1]:");
  const row = (label: string, value: string) => out.line(`  ${out.dim(label.padEnd(9))}${value}`);
  out.line(`${out.green("●")} ${out.bold(`Outpost ${cliVersion()}`)} is running`);
  row("API", url);
  row("Docs", `${reach}/docs`);
  row("Project", `${project.root} (workspace ${project.workspace})`);
  row("Store", info.storeKind === "sqlite" ? `sqlite in ${info.dataDir}` : info.storeKind);
  if (info.storeKind !== "sqlite")
    row(
      "Workers",
      info.workers > 0 ? `${info.workers} runs at once in this process` : "none here: `outpost worker` processes execute the runs",
    );
  out.line();
  // The runtime says what it resolved; the project tells what could be used instead.
  const resolved = new Map(info.models.map((m) => [m.agent, m.model]));
  const models = agentModels(project);
  out.line(out.bold("Agents"));
  const width = Math.max(0, ...models.map((m) => m.agent.length));
  for (const m of models) {
    const text = resolved.has(m.agent) ? `${m.alias} → ${resolved.get(m.agent)}` : m.text;
    const scripted = /scripted/i.test(text);
    out.line(`  ${m.agent.padEnd(width)}  ${scripted ? out.yellow(text) : text}`);
  }
  const hint = scriptedHint(models, project);
  if (hint) out.line(`  ${out.yellow("note:")} ${hint}`);
  out.line();
  if (project.teams.size > 0) {
    out.line(out.bold("Teams"));
    const w = Math.max(...[...project.teams.keys()].map((t) => t.length));
    for (const t of project.teams.values()) {
      const members = t.members.map((m) => (m === t.lead ? `${m} (lead)` : m)).join(", ");
      out.line(`  ${t.name.padEnd(w)}  ${members}${t.exposes.length ? out.dim(`  exposes ${t.exposes.join(", ")}`) : ""}`);
    }
    out.line();
  }
  if (info.connections.length > 0) {
    out.line(out.bold("Systems"));
    const w = Math.max(...info.connections.map((c) => c.name.length));
    for (const c of info.connections) {
      const state = c.state === "ready" ? out.green(`ready, ${c.tools} tools`) : out.yellow(`${c.state}${c.error ? `: ${c.error}` : ""}`);
      out.line(`  ${c.name.padEnd(w)}  ${c.kind}  ${state}`);
    }
    out.line();
  }
  out.line(out.bold("Open endpoints"));
  row("OpenAI", `${reach}/v1 (model = agent name)`);
  row("MCP", `${reach}/mcp`);
  row("A2A", `${reach}/a2a/<agent>/.well-known/agent-card.json`);
  out.line();
  // Point at a team's front door when there is one.
  const leads = [...project.teams.values()]
    .map((t) => t.lead)
    .filter((a) => [...project.teams.values()].some((t) => t.exposes.includes(a)));
  const agent = leads[0] ?? models[0]?.agent ?? "AGENT";
  const input = "what can you do?";
  const body = JSON.stringify({ agent, input });
  if (info.adminKey) {
    out.line(out.bold("Admin key") + out.yellow("  (shown this once: store it now; it is kept only as a hash)"));
    out.line(`  export OUTPOST_API_KEY=${info.adminKey}`);
    out.line(out.dim(`  more keys: ${command(["keys", "create", "NAME", "--role", "operator", "--server", reach])}`));
    out.line();
  }
  out.line(out.bold("Try"));
  out.line(`  curl -s ${reach}/v1/runs -H "authorization: Bearer $OUTPOST_API_KEY" -H 'content-type: application/json' -d ${quote(body)}`);
  out.line(`  ${command(["run", agent, input, "--server", reach])}`);
  out.line(`  ${command(["runs", "ls", "--server", reach])}`);
  if (existsSync(path.join(project.root, "demo.ts"))) {
    out.line(
      `  ${command(["demo", "--project", path.relative(process.cwd(), project.root) || "."])}   ${out.dim("# every scenario, headless, with a summary")}`,
    );
  }
  out.line();
  out.line(out.dim("Press Ctrl+C to stop."));
}
