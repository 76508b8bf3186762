/**
 * Runs a suite: every case on its own Outpost, on its own copy of the freshly seeded business systems, a bounded
 * number at once. A case runs to the end with its approvals answered as it says, and is then scored from its
 * runs' event logs, the systems' end state, the judge and its custom scorers.
 */
import { rmSync } from "node:fs";
import pino from "pino";
import { type EventView, isTerminal, type RunTreeView, type RunView } from "../core/api.js";
import { OutpostError } from "../core/errors.js";
import type { Project } from "../definitions/types.js";
import type { ModelClient } from "../models/index.js";
import { canonicalJson, sha256Hex } from "../security/canonical.js";
import { type CustomScorer, loadCustomScorers, runCustomScorer } from "./custom.js";
import { judgeCase, judgeClient } from "./judge.js";
import { type CaseRecord, recordCase } from "./record.js";
import { type CaseResult, RESULT_VERSION, type SuiteResult, totalsOf } from "./results.js";
import { recordScores, type Score, scoreState } from "./scorers.js";
import type { EvalCase, Suite } from "./suite.js";
import { copySeed, type OutpostSettings, readState, type SystemsSeed, seedSystems, startCaseOutpost } from "./systems.js";

export interface RunSuiteOptions {
  project: Project;
  suite: Suite;
  /** Every agent on this model alias (`--model`, `outpost eval compare`); absent: each on its own. */
  model?: string;
  /** Only these cases. */
  cases?: string[];
  /** Cases at once (default 2). */
  concurrency?: number;
  env?: NodeJS.ProcessEnv;
  logger?: pino.Logger;
  /** Called as each case ends. */
  onCase?: (progress: { done: number; total: number; result: CaseResult }) => void;
}

/** Who decides the approvals a case asks for. */
const EVALUATOR = "outpost eval";
const POLL_MS = 25;
const CANCEL_GRACE_MS = 10_000;

export async function runSuite(options: RunSuiteOptions): Promise<SuiteResult> {
  const { suite } = options;
  const project = options.model ? onModel(options.project, options.model) : options.project;
  const cases = selectCases(suite, options.cases);
  const settings: OutpostSettings = {
    env: embeddedEnv(options.env ?? process.env),
    logger: options.logger ?? pino({ level: process.env.OUTPOST_LOG_LEVEL ?? "error" }, pino.destination(2)),
  };
  const scorers = await loadCustomScorers(cases.flatMap((c) => c.custom));
  const judges = new Map<string, ModelClient>();
  const started = new Date();
  const seed = await seedSystems(project, settings);
  try {
    let done = 0;
    const results = await inPool(cases, options.concurrency ?? 2, async (c) => {
      const result = await runCase(c, { project, seed, settings, scorers, judges });
      options.onCase?.({ done: ++done, total: cases.length, result });
      return result;
    });
    const { file: _file, ...definition } = project.agents.get(suite.agent) ?? {};
    return {
      version: RESULT_VERSION,
      suite: suite.name,
      file: suite.file,
      workspace: project.workspace,
      agent: suite.agent,
      model: options.model ?? null,
      definition_sha256: sha256Hex(canonicalJson(definition)),
      policies_sha256: seed.policiesSha256,
      partial: cases.length < suite.cases.length,
      started_at: started.toISOString(),
      finished_at: new Date().toISOString(),
      totals: totalsOf(results),
      cases: results,
      warnings: seed.warnings,
    };
  } finally {
    rmSync(seed.dir, { recursive: true, force: true });
  }
}

/** The project with every agent on one model alias. */
function onModel(project: Project, alias: string): Project {
  if (!project.models.has(alias)) {
    throw new OutpostError(
      "invalid_request",
      `unknown model alias "${alias}"`,
      `the project's aliases are ${[...project.models.keys()].join(", ")}`,
    );
  }
  const agents = new Map([...project.agents].map(([name, a]) => [name, { ...a, model: alias }]));
  return { ...project, agents, defaults: { ...project.defaults, model: alias } };
}

function selectCases(suite: Suite, names: string[] | undefined): EvalCase[] {
  if (!names || names.length === 0) return suite.cases;
  const unknown = names.filter((n) => !suite.cases.some((c) => c.name === n));
  if (unknown.length > 0) {
    throw new OutpostError(
      "invalid_request",
      `suite ${suite.name} has no case ${unknown.join(", ")}`,
      `its cases: ${suite.cases.map((c) => c.name).join(", ")}`,
    );
  }
  return suite.cases.filter((c) => names.includes(c.name));
}

/** Cases always run on embedded SQLite in their throwaway folders, never on the database the environment names. */
function embeddedEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy.OUTPOST_DATABASE_URL;
  return copy;
}

async function inPool<T, R>(items: T[], concurrency: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return results;
}

interface CaseDeps {
  project: Project;
  seed: SystemsSeed;
  settings: OutpostSettings;
  scorers: Map<string, CustomScorer>;
  judges: Map<string, ModelClient>;
}

async function runCase(c: EvalCase, deps: CaseDeps): Promise<CaseResult> {
  const dataDir = copySeed(deps.seed);
  try {
    const outpost = await startCaseOutpost(deps.project, dataDir, deps.settings);
    let record: CaseRecord;
    try {
      record = await play(outpost, c);
    } finally {
      await outpost.close();
    }
    return caseResult(c, record, await scoresOf(c, record, dataDir, deps));
  } catch (err) {
    return failedCase(c, err);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function scoresOf(c: EvalCase, record: CaseRecord, dataDir: string, deps: CaseDeps): Promise<Score[]> {
  const scores = recordScores(c.expect, record);
  if (c.expect.state) scores.push(scoreState(c.expect.state, await readState(deps.project, dataDir, c.expect.state, deps.settings)));
  const judge = c.expect.judge;
  if (judge) {
    let client = deps.judges.get(judge.model);
    try {
      client ??= judgeClient(deps.project, judge.model, deps.settings.env);
      deps.judges.set(judge.model, client);
      scores.push(await judgeCase(judge, record, client));
    } catch (err) {
      scores.push({ scorer: "judge", pass: false, score: 0, detail: (err as Error).message });
    }
  }
  for (const ref of c.custom) scores.push(await runCustomScorer(ref, deps.scorers.get(ref.path) as CustomScorer, record, c));
  return scores;
}

type CaseOutpost = Awaited<ReturnType<typeof startCaseOutpost>>;

/** Starts the case's run and answers its approvals until it ends (or its time is up: then it is cancelled). */
async function play(outpost: CaseOutpost, c: EvalCase): Promise<CaseRecord> {
  const root = await outpost.startRun({ agent: c.agent, input: c.input, ...(c.history.length > 0 ? { context: c.history } : {}) });
  const deadline = Date.now() + c.timeoutMs;
  let cancelled = false;
  for (;;) {
    const run = await outpost.getRun(root.id);
    if (isTerminal(run.status)) break;
    // A cancel that does not land within its grace ends the wait: the case is scored as it stands.
    if (cancelled && Date.now() > deadline + CANCEL_GRACE_MS) break;
    if (!cancelled && Date.now() > deadline) {
      await outpost.cancelRun(root.id, `the case took longer than its timeout of ${c.timeoutMs / 1000} s`);
      cancelled = true;
    }
    // The case's Outpost runs nothing else: every pending approval is this case's.
    for (const a of await outpost.listApprovals({ status: "pending" })) {
      await outpost.decideApproval(a.id, { decision: c.approvals, by: EVALUATOR, reason: `the eval case says approvals: ${c.approvals}` });
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const runs = flatten(await outpost.getRunTree(root.id));
  const events = new Map<string, EventView[]>();
  for (const r of runs) events.set(r.id, await outpost.getEvents(r.id));
  return recordCase({ case: c.name, input: c.input, runs, events });
}

const flatten = (t: RunTreeView): RunView[] => [t.run, ...t.children.flatMap(flatten)];

function caseResult(c: EvalCase, record: CaseRecord, scores: Score[]): CaseResult {
  return {
    name: c.name,
    agent: c.agent,
    pass: scores.every((s) => s.pass),
    score: scores.reduce((n, s) => n + s.score, 0) / scores.length,
    status: record.status,
    output: record.output,
    error: record.error,
    cost_usd: record.usage.cost_usd,
    input_tokens: record.usage.input_tokens,
    output_tokens: record.usage.output_tokens,
    latency_ms: record.latency_ms,
    models: record.models,
    scores,
  };
}

/** A case that could not be played (its Outpost did not start, a system went away): it fails, saying why. */
function failedCase(c: EvalCase, err: unknown): CaseResult {
  const message = (err as Error)?.message ?? String(err);
  return {
    name: c.name,
    agent: c.agent,
    pass: false,
    score: 0,
    status: "error",
    output: null,
    error: { code: "eval_error", message },
    cost_usd: 0,
    input_tokens: 0,
    output_tokens: 0,
    latency_ms: 0,
    models: [],
    scores: [{ scorer: "run", pass: false, score: 0, detail: message }],
  };
}
