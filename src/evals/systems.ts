/**
 * Fresh copies of the business systems for every case. A project's stdio systems keep their data under Outpost's
 * data folder (they get it as OUTPOST_DATA_DIR, and seed it on their first start): so one throwaway data folder is
 * seeded once per suite run, by starting an Outpost on it until every system is up, and each case runs on a copy
 * of it. Nothing a case does reaches the project's own data folder. The end state is read back through the
 * systems' own tools, from the case's copy.
 */
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type pino from "pino";
import { OutpostError } from "../core/errors.js";
import type { Connection, Project, ToolContext } from "../definitions/types.js";
import { startOutpost } from "../runtime/index.js";
import { mcpSource, openApiSource, type ToolSource } from "../tools/index.js";
import type { StateReading } from "./scorers.js";
import type { StateCheck } from "./suite.js";

export interface SystemsSeed {
  dir: string;
  policiesSha256: string;
  /** Systems a case reaches for real (not copied). */
  warnings: string[];
}

export interface OutpostSettings {
  env: NodeJS.ProcessEnv;
  logger: pino.Logger;
}

/** An Outpost for evals: on its own folder, its schedules quiet (a nightly job must not fire into a case). */
export function startCaseOutpost(project: Project, dataDir: string, settings: OutpostSettings, concurrency?: number) {
  return startOutpost({
    project,
    dataDir,
    env: settings.env,
    logger: settings.logger,
    triggerTicks: false,
    ...(concurrency !== undefined ? { concurrency } : {}),
  });
}

/** Seeds a throwaway data folder: an Outpost starts on it (no runs), every system comes up once, and it closes. */
export async function seedSystems(project: Project, settings: OutpostSettings): Promise<SystemsSeed> {
  const dir = mkdtempSync(path.join(tmpdir(), "outpost-eval-seed-"));
  try {
    const outpost = await startCaseOutpost(project, dir, settings, 0);
    try {
      const down = outpost.connections().filter((c) => c.state !== "ready");
      if (down.length > 0) {
        throw new OutpostError(
          "unavailable",
          `cannot run the suite: ${down.map((c) => `${c.name} is ${c.state}${c.error ? ` (${c.error})` : ""}`).join("; ")}`,
          "the cases need every business system of the project; check the connections in outpost.yaml",
        );
      }
      return { dir, policiesSha256: outpost.policy.hash, warnings: realSystems(project) };
    } finally {
      await outpost.close();
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function realSystems(project: Project): string[] {
  return [...project.connections.values()]
    .filter((c) => c.kind === "openapi" || c.transport.type === "http")
    .map(
      (c) => `${c.name} is reached where outpost.yaml says: what the cases do there is not undone (only stdio systems get fresh copies)`,
    );
}

/** A case's own copy of the seeded folder. */
export function copySeed(seed: SystemsSeed): string {
  const dir = mkdtempSync(path.join(tmpdir(), "outpost-eval-case-"));
  cpSync(seed.dir, dir, { recursive: true });
  return dir;
}

/** Calls each check's tool on the case's copy of its system (outside policy: the evaluator reads, no agent acts). */
export async function readState(
  project: Project,
  dataDir: string,
  checks: StateCheck[],
  settings: OutpostSettings,
): Promise<StateReading[]> {
  const readings: StateReading[] = new Array(checks.length);
  const byConnection = new Map<string, number[]>();
  checks.forEach((c, i) => {
    const name = c.tool.slice(0, c.tool.indexOf("."));
    byConnection.set(name, [...(byConnection.get(name) ?? []), i]);
  });
  for (const [name, indexes] of byConnection) {
    const connection = project.connections.get(name) as Connection;
    const source = sourceFor(connection, { env: settings.env, dataDir, log: settings.logger });
    try {
      await source.start();
      for (const i of indexes) readings[i] = await read(source, checks[i], dataDir);
    } finally {
      await source.close();
    }
  }
  return readings;
}

const sourceFor = (c: Connection, deps: Parameters<typeof mcpSource>[1]): ToolSource =>
  c.kind === "mcp" ? mcpSource(c, deps) : openApiSource(c, deps);

async function read(source: ToolSource, check: StateCheck, dataDir: string): Promise<StateReading> {
  const status = source.status();
  if (status.state !== "ready") return { ok: false, error: `${source.name} is ${status.state}${status.error ? `: ${status.error}` : ""}` };
  const tool = source.tools().find((t) => t.name === check.tool);
  if (!tool)
    return {
      ok: false,
      error: `${source.name} has no tool ${check.tool} (it has ${source
        .tools()
        .map((t) => t.name)
        .join(", ")})`,
    };
  const context: ToolContext = {
    runId: "eval",
    sessionId: "eval",
    agent: "eval",
    workspace: "eval",
    rootRunId: "eval",
    dataDir,
    signal: AbortSignal.timeout(30_000),
  };
  try {
    const output = await tool.handler({ input: check.args, context, idempotencyKey: `eval:${check.tool}` });
    return { ok: true, value: typeof output === "string" ? jsonOrText(output) : output };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

function jsonOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
