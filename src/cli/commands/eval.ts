/**
 * `outpost eval run | compare | accept | ls`: a project's eval suites (evals/*.yaml), each case on throwaway copies
 * of the business systems; results stored under the data folder (evals/<suite>/), compared with the accepted
 * baseline. `run` exits 3 on a regression, so it can gate CI.
 */
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { availableParallelism } from "node:os";
import path from "node:path";
import type { Command } from "commander";
import type { Project } from "../../definitions/types.js";
import type { BaselineComparison, CaseResult, Suite, SuiteResult } from "../../evals/index.js";
import { DEFAULT_DATA_DIR, localFlags, quietLogger } from "../connect.js";
import { Exit, UsageError } from "../errors.js";
import { command } from "../hints.js";
import { age, err, formatInt, formatUsd, out, table, truncate } from "../output.js";

/** The gate failed: a case regressed against the baseline (or, before one is accepted, a case failed). */
export const EXIT_REGRESSION = 3;

interface ProjectOptions {
  project: string;
  data: string;
  json?: boolean;
}

interface RunOptions extends ProjectOptions {
  concurrency: string;
  case: string[];
  model?: string;
  accept?: boolean;
}

interface CompareOptions extends ProjectOptions {
  concurrency: string;
  case: string[];
  models: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];
const DEFAULT_CONCURRENCY = Math.max(1, Math.min(4, availableParallelism()));

export function registerEval(program: Command): void {
  const evals = program
    .command("eval")
    .description("evaluate agents: run a project's eval suites (evals/*.yaml), compare with a baseline or across models");

  const run = withProject(evals.command("run"))
    .description("run a suite, each case on fresh copies of the business systems; compare with the baseline")
    .argument("<suite>", "a suite of the project (evals/<suite>.yaml) or a suite file")
    .option("--concurrency <n>", "cases at once", String(DEFAULT_CONCURRENCY))
    .option("--case <name>", "run only this case (repeat for more)", collect, [])
    .option("--model <alias>", "run every agent on this model alias of outpost.yaml")
    .option("--accept", "make this result the suite's baseline")
    .option("--json", "print the result and the comparison as JSON")
    .addHelpText(
      "after",
      `
Exit codes: 0 no regression, 3 regression — a case that passed in the baseline fails, or the pass rate is
below the baseline's (before a baseline is accepted: a case failed), 1 error, 2 usage.

Examples:
  $ outpost eval run refunds --project examples/acme
  $ outpost eval run refunds --project examples/acme --accept     # the result becomes the baseline`,
    );
  run.action(async (suiteArg: string, opts: RunOptions) => {
    const concurrency = parseConcurrency(opts.concurrency);
    const { project, suite } = await openSuite(opts.project, suiteArg);
    if (opts.model !== undefined) checkAliases(project, [opts.model], "--model");
    checkCases(suite, opts.case);
    if (opts.accept && opts.case.length > 0) throw new UsageError("--accept takes a run of the whole suite", "leave out --case");
    const evals = await import("../../evals/index.js");
    if (!opts.json) printHeader(suite, opts.model, opts.data);
    const result = await runWithProgress(project, suite, { concurrency, cases: opts.case, model: opts.model });
    const file = await evals.saveResult(opts.data, result);
    const baseline = await evals.readBaseline(opts.data, suite.name);
    const comparison = evals.compareWithBaseline(result, baseline);
    const accepted = opts.accept ? await evals.acceptResult(opts.data, file) : null;
    if (opts.json) out.line(JSON.stringify({ file, result, comparison, accepted: accepted !== null }, null, 2));
    else printRun(result, comparison, file, accepted !== null, opts);
    throw new Exit(comparison.gate_passed ? 0 : EXIT_REGRESSION);
  });

  const compare = withProject(evals.command("compare"))
    .description("run a suite under each of several model aliases: pass rate, cost and latency per model")
    .argument("<suite>", "a suite of the project (evals/<suite>.yaml) or a suite file")
    .requiredOption("--models <aliases>", "model aliases of outpost.yaml, comma-separated (e.g. assistant,local)")
    .option("--concurrency <n>", "cases at once", String(DEFAULT_CONCURRENCY))
    .option("--case <name>", "run only this case (repeat for more)", collect, [])
    .option("--json", "print the rows and the results as JSON");
  compare.action(async (suiteArg: string, opts: CompareOptions) => {
    const concurrency = parseConcurrency(opts.concurrency);
    const models = opts.models
      .split(",")
      .map((m) => m.trim())
      .filter(Boolean);
    if (models.length === 0) throw new UsageError("--models names no alias", "e.g. --models assistant,local");
    const { project, suite } = await openSuite(opts.project, suiteArg);
    checkAliases(project, models, "--models");
    checkCases(suite, opts.case);
    const evals = await import("../../evals/index.js");
    const results: SuiteResult[] = [];
    for (const model of models) {
      if (!opts.json) out.line(out.dim(`${suite.name} on ${model}…`));
      const result = await runWithProgress(project, suite, { concurrency, cases: opts.case, model });
      await evals.saveResult(opts.data, result);
      results.push(result);
    }
    const rows = evals.compareModels(results);
    if (opts.json) return out.line(JSON.stringify({ rows, results }, null, 2));
    const cases = results[0].totals.cases;
    out.line(
      `${out.bold(`Eval ${suite.name}`)} under ${models.length} model${models.length === 1 ? "" : "s"} — agent ${suite.agent}, ${cases} case${cases === 1 ? "" : "s"}`,
    );
    out.line(
      table(
        ["MODEL", "PASSED", "PASS RATE", "COST", "TOKENS", "LATENCY"],
        rows.map((r) => [
          r.model,
          `${r.passed}/${r.cases}`,
          percent(r.pass_rate),
          formatUsd(r.cost_usd),
          formatInt(r.tokens),
          seconds(r.latency_ms),
        ]),
      ),
    );
    out.line(out.dim("latency: mean per case; results stored under the data folder (outpost eval ls)"));
  });

  withProject(evals.command("accept"))
    .description("make a stored result the suite's baseline (default: its latest)")
    .argument("<suite>", "the suite")
    .argument("[result]", "a result file of the suite (see outpost eval ls)")
    .action(async (suiteName: string, resultFile: string | undefined, opts: ProjectOptions) => {
      const evals = await import("../../evals/index.js");
      const file = resultFile ? path.resolve(resultFile) : (await evals.listResults(opts.data, suiteName)).at(-1);
      if (!file) {
        throw new UsageError(
          `there is no result of suite ${suiteName} in ${path.resolve(opts.data)}`,
          `run it first: ${command(["eval", "run", suiteName], localFlags(opts))}`,
        );
      }
      const { suite } = await evals.readResult(file);
      if (suite !== suiteName) throw new UsageError(`${file} is a result of suite ${suite}, not ${suiteName}`);
      const baseline = await evals.acceptResult(opts.data, file);
      out.line(
        `${out.green("✓")} baseline of ${suiteName}: ${path.basename(file)} (${baseline.totals.passed}/${baseline.totals.cases} passed)`,
      );
    });

  withProject(evals.command("ls").alias("list"))
    .description("the project's suites, with their latest result and baseline")
    .option("--json", "print JSON")
    .action(async (opts: ProjectOptions) => listSuites(opts));
}

function withProject(cmd: Command): Command {
  return cmd
    .option("--project <dir>", "project folder", ".")
    .option("--data <dir>", "data folder where results are kept (evals/<suite>/)", DEFAULT_DATA_DIR);
}

function parseConcurrency(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--concurrency must be a whole number from 1 to 64, not "${value}"`);
  return n;
}

async function loadProjectAt(dir: string): Promise<Project> {
  const root = path.resolve(dir);
  if (!existsSync(path.join(root, "outpost.yaml"))) {
    throw new UsageError(`no Outpost project in ${root} (no outpost.yaml)`, "name one with --project DIR (e.g. --project examples/acme)");
  }
  const { loadProject } = await import("../../definitions/index.js");
  return loadProject(root);
}

/** The suite named on the command line: a name of the project's evals/ folder, or a file. */
async function openSuite(projectDir: string, arg: string): Promise<{ project: Project; suite: Suite }> {
  const project = await loadProjectAt(projectDir);
  const { loadSuite } = await import("../../evals/index.js");
  return { project, suite: await loadSuite(project, await suiteFile(project, arg)) };
}

async function suiteFile(project: Project, arg: string): Promise<string> {
  if (/\.ya?ml$/.test(arg) || arg.includes("/")) {
    if (!existsSync(arg)) throw new UsageError(`no suite file ${arg}`);
    return path.resolve(arg);
  }
  const known = await suiteNames(project);
  const file = known.get(arg);
  if (file) return file;
  const { didYouMean } = await import("../../definitions/suggest.js");
  throw new UsageError(
    `no suite "${arg}" in ${path.join(project.root, "evals")}`,
    known.size > 0
      ? `${didYouMean(arg, [...known.keys()]).replace(/^ — /, "") || `suites: ${[...known.keys()].join(", ")}`}`
      : "write one as evals/<suite>.yaml",
  );
}

/** evals/*.yaml of the project, by file name. */
async function suiteNames(project: Project): Promise<Map<string, string>> {
  const dir = path.join(project.root, "evals");
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /\.ya?ml$/.test(n)).sort();
  return new Map(names.map((n) => [n.replace(/\.ya?ml$/, ""), path.join(dir, n)]));
}

function checkAliases(project: Project, aliases: string[], flag: string): void {
  for (const alias of aliases) {
    if (!project.models.has(alias)) {
      throw new UsageError(
        `${flag}: unknown model alias "${alias}"`,
        `the aliases of outpost.yaml: ${[...project.models.keys()].join(", ")}`,
      );
    }
  }
}

function checkCases(suite: Suite, names: string[]): void {
  const unknown = names.filter((n) => !suite.cases.some((c) => c.name === n));
  if (unknown.length > 0) {
    throw new UsageError(
      `suite ${suite.name} has no case ${unknown.join(", ")}`,
      `its cases: ${suite.cases.map((c) => c.name).join(", ")}`,
    );
  }
}

async function runWithProgress(
  project: Project,
  suite: Suite,
  o: { concurrency: number; cases: string[]; model?: string },
): Promise<SuiteResult> {
  const { runSuite } = await import("../../evals/index.js");
  const logger = await quietLogger(process.env.OUTPOST_LOG_LEVEL ?? "error");
  const total = o.cases.length > 0 ? o.cases.length : suite.cases.length;
  const progress = new Progress(total);
  progress.start();
  try {
    return await runSuite({
      project,
      suite,
      concurrency: o.concurrency,
      cases: o.cases,
      logger,
      ...(o.model ? { model: o.model } : {}),
      onCase: ({ result }) => progress.done(result),
    });
  } finally {
    progress.stop();
  }
}

/** On a terminal, a bar redrawn on stderr; otherwise one line per finished case (CI logs). */
class Progress {
  private finished = 0;
  private passed = 0;
  private readonly tty = Boolean(process.stderr.isTTY);

  constructor(private readonly total: number) {}

  start(): void {
    if (this.tty) this.draw();
  }

  done(c: CaseResult): void {
    this.finished++;
    if (c.pass) this.passed++;
    if (this.tty) this.draw();
    else err.line(`[${this.finished}/${this.total}] ${c.pass ? "✓" : "✗"} ${c.name} ${seconds(c.latency_ms)}`);
  }

  stop(): void {
    if (this.tty) process.stderr.write("\r\x1b[K");
  }

  private draw(): void {
    const width = 24;
    const filled = Math.round((this.finished / Math.max(1, this.total)) * width);
    const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
    process.stderr.write(`\r${err.cyan(bar)} ${this.finished}/${this.total} cases · ${this.passed} passed\x1b[K`);
  }
}

function printHeader(suite: Suite, model: string | undefined, data: string): void {
  const on = model ? `on model ${model}` : "each agent on its own model";
  const target = suite.team ? `team ${suite.team} (lead ${suite.agent})` : `agent ${suite.agent}`;
  out.line(`${out.bold(`Eval ${suite.name}`)} — ${target}, ${suite.cases.length} case${suite.cases.length === 1 ? "" : "s"}, ${on}`);
  out.line(out.dim(`every case on fresh copies of the business systems; results in ${shown(path.resolve(data, "evals", suite.name))}`));
}

function printRun(result: SuiteResult, comparison: BaselineComparison, file: string, accepted: boolean, opts: RunOptions): void {
  for (const w of result.warnings) out.line(out.yellow(`⚠ ${w}`));
  const before = new Map(comparison.regressions.map((r) => [r.case, true]));
  out.line(
    table(
      ["CASE", "RESULT", "SCORE", "COST", "TOKENS", "LATENCY", "WHY"],
      result.cases.map((c) => [
        c.name,
        c.pass ? out.green("✓ pass") : before.has(c.name) ? out.red("✗ REGRESSED") : out.red("✗ fail"),
        c.score.toFixed(2),
        formatUsd(c.cost_usd),
        formatInt(c.input_tokens + c.output_tokens),
        seconds(c.latency_ms),
        c.pass ? "" : truncate(failures(c), 100),
      ]),
    ),
  );
  const t = result.totals;
  out.line(
    `${t.cases} cases: ${t.passed} passed (${percent(t.pass_rate)}) · ${formatUsd(t.cost_usd)} · ${formatInt(t.input_tokens + t.output_tokens)} tokens · ${seconds(t.latency_ms)} a case`,
  );
  for (const n of comparison.notes) out.line(out.dim(`note: ${n}`));
  if (comparison.fixed.length > 0) out.line(out.green(`fixed since the baseline: ${comparison.fixed.join(", ")}`));
  out.line(comparison.gate_passed ? `${out.green("✓")} ${comparison.summary}` : `${out.red("✗")} ${comparison.summary}`);
  for (const r of comparison.regressions) out.line(`  ${out.red(r.case)}: ${truncate(r.detail, 160)}`);
  out.line(out.dim(`result: ${shown(file)}`));
  if (accepted) out.line(`${out.green("✓")} accepted as the baseline of ${result.suite}`);
  else if (!comparison.baseline || !comparison.gate_passed)
    out.line(out.dim(`make it the baseline: ${command(["eval", "accept", result.suite], localFlags(opts))}`));
}

const failures = (c: CaseResult) =>
  c.scores
    .filter((s) => !s.pass)
    .map((s) => `${s.scorer}: ${s.detail}`)
    .join("; ");

async function listSuites(opts: ProjectOptions): Promise<void> {
  const project = await loadProjectAt(opts.project);
  const evals = await import("../../evals/index.js");
  const rows: {
    suite: string;
    target: string;
    cases: number | null;
    problem: string | null;
    latest: SuiteResult | null;
    baseline: SuiteResult | null;
  }[] = [];
  for (const [name, file] of await suiteNames(project)) {
    let suite: Suite | null = null;
    let problem: string | null = null;
    try {
      suite = await evals.loadSuite(project, file);
    } catch (e) {
      problem = ((e as Error).message.split("\n")[1] ?? (e as Error).message).trim();
    }
    const id = suite?.name ?? name;
    rows.push({
      suite: id,
      target: suite ? (suite.team ? `team ${suite.team} (${suite.agent})` : `agent ${suite.agent}`) : "-",
      cases: suite?.cases.length ?? null,
      problem,
      latest: (await evals.latestResult(opts.data, id))?.result ?? null,
      baseline: await evals.readBaseline(opts.data, id),
    });
  }
  if (opts.json) return out.line(JSON.stringify(rows, null, 2));
  if (rows.length === 0) return out.line(out.dim(`no suites: write one as ${path.join(project.root, "evals", "<suite>.yaml")}`));
  const summary = (r: SuiteResult | null, when: string | undefined) =>
    r ? `${r.totals.passed}/${r.totals.cases} passed · ${age(when ?? r.finished_at)}` : out.dim("-");
  out.line(
    table(
      ["SUITE", "TARGET", "CASES", "LATEST", "BASELINE"],
      rows.map((r) => [
        r.suite,
        r.target,
        r.cases === null ? out.red(`invalid: ${truncate(r.problem ?? "", 80)}`) : String(r.cases),
        summary(r.latest, r.latest?.finished_at),
        summary(r.baseline, r.baseline?.accepted?.at),
      ]),
    ),
  );
  out.line(out.dim(`run one: ${command(["eval", "run", rows[0].suite], localFlags(opts))}`));
}

/** Relative to the current folder when below it. */
function shown(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith("..") ? rel : file;
}

const percent = (rate: number) => `${Math.round(rate * 100)}%`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
