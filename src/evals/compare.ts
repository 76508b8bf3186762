/**
 * Comparisons: a suite run against its baseline (the CI gate), and one suite run under several models.
 * Pure: results in, verdicts out.
 */
import type { SuiteResult } from "./results.js";

export interface BaselineComparison {
  baseline: { from: string; accepted_at: string; passed: number; cases: number; model: string | null } | null;
  /** Cases that passed in the baseline and fail now. */
  regressions: { case: string; detail: string }[];
  /** Cases that failed in the baseline and pass now. */
  fixed: string[];
  /** Cases the baseline does not have / the baseline has and this run did not run. */
  added: string[];
  removed: string[];
  /** Over this run's cases; the baseline's over those of its cases this run ran too. */
  pass_rate: { now: number; baseline: number | null };
  /** False on a regression; without a baseline, when a case failed. */
  gate_passed: boolean;
  notes: string[];
  summary: string;
}

/**
 * A regression is a case that passed in the baseline and fails now, or a pass rate below the baseline's. Without a
 * baseline every case must pass; with one, the failures it accepted do not fail the gate again.
 */
export function compareWithBaseline(current: SuiteResult, baseline: SuiteResult | null): BaselineComparison {
  const now = current.totals.pass_rate;
  const failing = current.cases.filter((c) => !c.pass).map((c) => c.name);
  if (!baseline) {
    const summary =
      failing.length === 0
        ? `no baseline yet: ${current.totals.passed}/${current.totals.cases} passed`
        : `no baseline yet, and ${failing.length} of ${current.totals.cases} cases failed: ${failing.join(", ")}`;
    return {
      baseline: null,
      regressions: [],
      fixed: [],
      added: [],
      removed: [],
      pass_rate: { now, baseline: null },
      gate_passed: failing.length === 0,
      notes: [],
      summary,
    };
  }
  const before = new Map(baseline.cases.map((c) => [c.name, c]));
  const ran = new Set(current.cases.map((c) => c.name));
  const regressions = current.cases
    .filter((c) => !c.pass && before.get(c.name)?.pass)
    .map((c) => ({
      case: c.name,
      detail: c.scores
        .filter((s) => !s.pass)
        .map((s) => `${s.scorer}: ${s.detail}`)
        .join("; "),
    }));
  const fixed = current.cases.filter((c) => c.pass && before.get(c.name)?.pass === false).map((c) => c.name);
  const added = current.cases.filter((c) => !before.has(c.name)).map((c) => c.name);
  const removed = baseline.cases.filter((c) => !ran.has(c.name)).map((c) => c.name);
  const compared = baseline.cases.filter((c) => ran.has(c.name));
  const then = compared.length === 0 ? null : compared.filter((c) => c.pass).length / compared.length;
  // A pass rate is a ratio of small counts: compare with a margin for floating point, not for luck.
  const lower = then !== null && now < then - 1e-9;
  const gate_passed = regressions.length === 0 && !lower;
  return {
    baseline: {
      from: baseline.accepted?.from ?? "baseline.json",
      accepted_at: baseline.accepted?.at ?? baseline.finished_at,
      passed: baseline.totals.passed,
      cases: baseline.totals.cases,
      model: baseline.model,
    },
    regressions,
    fixed,
    added,
    removed,
    pass_rate: { now, baseline: then },
    gate_passed,
    notes: notesOf(current, baseline),
    summary: summaryOf(current, regressions.length, lower, now, then),
  };
}

function notesOf(current: SuiteResult, baseline: SuiteResult): string[] {
  const notes: string[] = [];
  if (current.model !== baseline.model)
    notes.push(
      `the baseline ran on ${baseline.model ?? "each agent's own model"}, this run on ${current.model ?? "each agent's own model"}`,
    );
  if (current.definition_sha256 !== baseline.definition_sha256)
    notes.push(`agent ${current.agent}'s definition changed since the baseline`);
  if (current.policies_sha256 !== baseline.policies_sha256) notes.push("the policies changed since the baseline");
  return notes;
}

function summaryOf(current: SuiteResult, regressions: number, lower: boolean, now: number, then: number | null): string {
  const rate = (r: number) => `${Math.round(r * 100)}%`;
  const counts = `${current.totals.passed}/${current.totals.cases} passed`;
  if (regressions === 0 && !lower) return `no regression against the baseline: ${counts} (baseline ${rate(then ?? now)})`;
  const parts: string[] = [];
  if (regressions > 0)
    parts.push(`${regressions} case${regressions === 1 ? "" : "s"} passed in the baseline and fail${regressions === 1 ? "s" : ""} now`);
  if (lower) parts.push(`pass rate ${rate(now)} is below the baseline's ${rate(then ?? 0)}`);
  return `regression: ${parts.join("; ")} (${counts})`;
}

export interface ModelRow {
  model: string;
  cases: number;
  passed: number;
  pass_rate: number;
  cost_usd: number;
  tokens: number;
  /** Mean per case. */
  latency_ms: number;
}

/** One row per model run of the same suite, in the order they ran. */
export function compareModels(results: SuiteResult[]): ModelRow[] {
  return results.map((r) => ({
    model: r.model ?? "(as defined)",
    cases: r.totals.cases,
    passed: r.totals.passed,
    pass_rate: r.totals.pass_rate,
    cost_usd: r.totals.cost_usd,
    tokens: r.totals.input_tokens + r.totals.output_tokens,
    latency_ms: r.totals.latency_ms,
  }));
}
