/**
 * A suite run's result, as stored: `<data>/evals/<suite>/<started at>.json`, one file per run, and `baseline.json`,
 * the result accepted as the one to compare later runs with. Versioned and read back through a zod schema.
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { OutpostError } from "../core/errors.js";

export const RESULT_VERSION = 1;
const BASELINE = "baseline.json";

const scoreSchema = z.object({ scorer: z.string(), pass: z.boolean(), score: z.number(), detail: z.string() });

const caseResultSchema = z.object({
  name: z.string(),
  agent: z.string(),
  pass: z.boolean(),
  /** The mean of its scores. */
  score: z.number(),
  status: z.string(),
  output: z.string().nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  cost_usd: z.number(),
  input_tokens: z.number(),
  output_tokens: z.number(),
  latency_ms: z.number(),
  models: z.array(z.string()),
  scores: z.array(scoreSchema),
});

const totalsSchema = z.object({
  cases: z.number(),
  passed: z.number(),
  pass_rate: z.number(),
  cost_usd: z.number(),
  input_tokens: z.number(),
  output_tokens: z.number(),
  /** The mean of the cases' latencies. */
  latency_ms: z.number(),
});

export const suiteResultSchema = z.object({
  version: z.literal(RESULT_VERSION),
  suite: z.string(),
  file: z.string(),
  workspace: z.string(),
  agent: z.string(),
  /** The alias every agent ran on (`--model`); null: each on its own. */
  model: z.string().nullable(),
  /** SHA-256 of the suite's agent definition and of the policies in force. */
  definition_sha256: z.string(),
  policies_sha256: z.string(),
  /** Only some of the suite's cases ran (`--case`). */
  partial: z.boolean(),
  started_at: z.string(),
  finished_at: z.string(),
  totals: totalsSchema,
  cases: z.array(caseResultSchema),
  warnings: z.array(z.string()),
  /** Set on the baseline: when it was accepted, and from which result file. */
  accepted: z.object({ at: z.string(), from: z.string() }).optional(),
});

export type SuiteResult = z.infer<typeof suiteResultSchema>;
export type CaseResult = z.infer<typeof caseResultSchema>;
export type Totals = z.infer<typeof totalsSchema>;

export function totalsOf(cases: CaseResult[]): Totals {
  const sum = (f: (c: CaseResult) => number) => cases.reduce((n, c) => n + f(c), 0);
  const passed = cases.filter((c) => c.pass).length;
  return {
    cases: cases.length,
    passed,
    pass_rate: cases.length === 0 ? 0 : passed / cases.length,
    cost_usd: sum((c) => c.cost_usd),
    input_tokens: sum((c) => c.input_tokens),
    output_tokens: sum((c) => c.output_tokens),
    latency_ms: cases.length === 0 ? 0 : Math.round(sum((c) => c.latency_ms) / cases.length),
  };
}

const resultsDir = (dataDir: string, suite: string) => path.join(path.resolve(dataDir), "evals", suite);

/** Writes the result beside the suite's earlier ones; returns its file. */
export async function saveResult(dataDir: string, result: SuiteResult): Promise<string> {
  const dir = resultsDir(dataDir, result.suite);
  await mkdir(dir, { recursive: true });
  const stamp = result.started_at.replace(/:/g, "-");
  let file = path.join(dir, `${stamp}.json`);
  for (let n = 2; existsSync(file); n++) file = path.join(dir, `${stamp}-${n}.json`);
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

/** The suite's result files (not the baseline), oldest first. */
export async function listResults(dataDir: string, suite: string): Promise<string[]> {
  const names = await readdir(resultsDir(dataDir, suite)).catch(() => [] as string[]);
  return names
    .filter((n) => n.endsWith(".json") && n !== BASELINE)
    .sort()
    .map((n) => path.join(resultsDir(dataDir, suite), n));
}

export async function readResult(file: string): Promise<SuiteResult> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(file, "utf8"));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : "is not JSON";
    throw new OutpostError("not_found", `${file} ${why}`, "list the stored results with: outpost eval ls");
  }
  const checked = suiteResultSchema.safeParse(data);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new OutpostError(
      "invalid_request",
      `${file} is not an eval result this Outpost reads (${issue.path.join(".") || "the file"}: ${issue.message})`,
      "it was written by another version of Outpost or edited by hand; run the suite again",
    );
  }
  return checked.data;
}

export async function latestResult(dataDir: string, suite: string): Promise<{ file: string; result: SuiteResult } | null> {
  const file = (await listResults(dataDir, suite)).at(-1);
  return file ? { file, result: await readResult(file) } : null;
}

export async function readBaseline(dataDir: string, suite: string): Promise<SuiteResult | null> {
  const file = path.join(resultsDir(dataDir, suite), BASELINE);
  return existsSync(file) ? readResult(file) : null;
}

/** Makes a stored result the suite's baseline; returns it as accepted. */
export async function acceptResult(dataDir: string, file: string, at = new Date()): Promise<SuiteResult> {
  const result = await readResult(file);
  if (result.partial) {
    throw new OutpostError(
      "invalid_request",
      `${path.basename(file)} ran only some of ${result.suite}'s cases (--case): it cannot be the baseline`,
      `run the whole suite, then accept it: outpost eval run ${result.suite} --accept`,
    );
  }
  const baseline: SuiteResult = { ...result, accepted: { at: at.toISOString(), from: path.basename(file) } };
  await writeFile(path.join(resultsDir(dataDir, result.suite), BASELINE), `${JSON.stringify(baseline, null, 2)}\n`);
  return baseline;
}
