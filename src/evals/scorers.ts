/**
 * Scorers: pure functions from an expectation and a case's record (and, for the end state and the judge, what
 * was read from a system or answered by a model) to a Score. A scorer makes several checks; its score is the share
 * that held, and it passes when all did.
 */
import { z } from "zod";
import type { CaseRecord } from "./record.js";
import type {
  Budget,
  EndStatus,
  Expectations,
  ExpectedCall,
  JudgeSpec,
  OutputExpectation,
  PolicyExpectation,
  StateCheck,
  ToolExpectation,
} from "./suite.js";

export interface Score {
  scorer: string;
  pass: boolean;
  /** 0..1. */
  score: number;
  /** What failed, or what held. */
  detail: string;
}

interface Check {
  ok: boolean;
  detail: string;
}

function fromChecks(scorer: string, checks: Check[]): Score {
  const held = checks.filter((c) => c.ok).length;
  const failed = checks.filter((c) => !c.ok);
  return {
    scorer,
    pass: failed.length === 0,
    score: checks.length === 0 ? 1 : held / checks.length,
    detail: (failed.length > 0 ? failed : checks).map((c) => c.detail).join("; "),
  };
}

/** The scorers that need nothing but the record, for the expectations a case sets (its status always). */
export function recordScores(expect: Expectations, record: CaseRecord): Score[] {
  const scores = [scoreStatus(expect.status, record)];
  if (expect.output) scores.push(scoreOutput(expect.output, record));
  if (expect.tools) scores.push(scoreTools(expect.tools, record));
  if (expect.policy) scores.push(scorePolicy(expect.policy, record));
  if (expect.budget) scores.push(scoreBudget(expect.budget, record));
  return scores;
}

export function scoreStatus(expected: EndStatus, r: CaseRecord): Score {
  const why = r.error ? `: ${r.error.code}: ${r.error.message}` : "";
  return fromChecks("status", [
    { ok: r.status === expected, detail: r.status === expected ? r.status : `expected ${expected}, the run ${r.status}${why}` },
  ]);
}

/** `contains` and `not_contains` ignore case; `exact` ignores surrounding whitespace. */
export function scoreOutput(e: OutputExpectation, r: CaseRecord): Score {
  const output = r.output;
  if (output === null) return fromChecks("output", [{ ok: false, detail: `the run ${r.status} without an answer` }]);
  const lower = output.toLowerCase();
  const checks: Check[] = [];
  if (e.exact !== undefined) {
    const ok = output.trim() === e.exact.trim();
    checks.push({ ok, detail: ok ? "exact" : `expected exactly ${quote(e.exact)}, got ${quote(output)}` });
  }
  for (const s of e.contains ?? []) {
    const ok = lower.includes(s.toLowerCase());
    checks.push({ ok, detail: ok ? `contains ${quote(s)}` : `does not contain ${quote(s)}: ${quote(output)}` });
  }
  for (const s of e.notContains ?? []) {
    const ok = !lower.includes(s.toLowerCase());
    checks.push({ ok, detail: ok ? `without ${quote(s)}` : `contains ${quote(s)}: ${quote(output)}` });
  }
  if (e.regex !== undefined) {
    const ok = new RegExp(e.regex).test(output);
    checks.push({ ok, detail: ok ? `matches /${e.regex}/` : `does not match /${e.regex}/: ${quote(output)}` });
  }
  if (e.jsonSchema !== undefined) checks.push(jsonSchemaCheck(e.jsonSchema, output));
  return fromChecks("output", checks);
}

function jsonSchemaCheck(schema: Record<string, unknown>, output: string): Check {
  // Models like to fence JSON in Markdown.
  const body = /^\s*```(?:json)?\s*([\s\S]*?)\s*```\s*$/.exec(output)?.[1] ?? output;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { ok: false, detail: `the answer is not JSON: ${quote(output)}` };
  }
  const checked = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]).safeParse(value);
  if (checked.success) return { ok: true, detail: "matches the JSON Schema" };
  const issues = checked.error.issues.map((i) => `${i.path.join(".") || "(answer)"}: ${i.message}`).join(", ");
  return { ok: false, detail: `does not match the JSON Schema: ${issues}` };
}

/** Expected calls are matched among every call the case's agents asked for (delegated runs included), oldest first. */
export function scoreTools(e: ToolExpectation, r: CaseRecord): Score {
  const calls = r.tool_calls;
  const checks: Check[] = e.calls.map((expected) => expectedCallCheck(expected, r));
  if (e.ordered && e.calls.length > 1) checks.push(orderCheck(e.calls, r));
  for (const tool of e.notCalled) {
    const n = calls.filter((c) => c.tool === tool).length;
    checks.push({ ok: n === 0, detail: n === 0 ? `${tool} not called` : `${tool} was called ${times(n)}` });
  }
  return fromChecks("tools", checks);
}

const callMatches = (expected: ExpectedCall, call: CaseRecord["tool_calls"][number]) =>
  call.tool === expected.tool &&
  (expected.agent === undefined || call.agent === expected.agent) &&
  (expected.args === undefined || subset(expected.args, call.arguments));

function expectedCallCheck(expected: ExpectedCall, r: CaseRecord): Check {
  const what = `${expected.agent ? `${expected.agent}: ` : ""}${expected.tool}${expected.args ? ` ${short(expected.args)}` : ""}`;
  const matching = r.tool_calls.filter((c) => callMatches(expected, c)).length;
  if (expected.times !== undefined) {
    const ok = matching === expected.times;
    return {
      ok,
      detail: ok
        ? `${what} ${times(matching)}`
        : `expected ${what} ${times(expected.times)}, called ${times(matching)}${nearest(expected, r)}`,
    };
  }
  return { ok: matching > 0, detail: matching > 0 ? what : `expected ${what}, never called${nearest(expected, r)}` };
}

/** How the tool was called instead, when it was. */
function nearest(expected: ExpectedCall, r: CaseRecord): string {
  const others = r.tool_calls.filter((c) => c.tool === expected.tool && !callMatches(expected, c));
  return others.length > 0 ? ` like that (called: ${others.map((c) => `${c.agent}: ${short(c.arguments)}`).join(", ")})` : "";
}

/** The expected calls as a subsequence of the actual ones: each after the one before it. */
function orderCheck(expected: ExpectedCall[], r: CaseRecord): Check {
  let from = 0;
  for (const e of expected) {
    const at = r.tool_calls.findIndex((c, i) => i >= from && callMatches(e, c));
    if (at < 0) {
      const actual = r.tool_calls.map((c) => c.tool).join(" → ") || "none";
      return { ok: false, detail: `not in the expected order (${expected.map((x) => x.tool).join(" → ")}): the calls were ${actual}` };
    }
    from = at + 1;
  }
  return { ok: true, detail: "in order" };
}

export function scorePolicy(e: PolicyExpectation, r: CaseRecord): Score {
  const describe = (d: CaseRecord["denials"][number]) =>
    `${d.agent}: ${d.action} ${d.resource} (${d.policies.join(", ") || "no policy permits it"})`;
  if ("compliant" in e) {
    const ok = r.denials.length === 0;
    return fromChecks("policy", [{ ok, detail: ok ? "no action denied" : `policy denied ${r.denials.map(describe).join(", ")}` }]);
  }
  const checks: Check[] = e.denied.map((policy) => {
    const ok = r.denials.some((d) => d.policies.includes(policy));
    return { ok, detail: ok ? `denied by ${policy}` : `expected a denial by ${policy}, there was none` };
  });
  const others = r.denials.filter((d) => !d.policies.some((p) => e.denied.includes(p)));
  if (others.length > 0) checks.push({ ok: false, detail: `also denied ${others.map(describe).join(", ")}` });
  return fromChecks("policy", checks);
}

export function scoreBudget(b: Budget, r: CaseRecord): Score {
  const checks: Check[] = [];
  const tokens = r.usage.input_tokens + r.usage.output_tokens;
  if (b.maxUsd !== undefined) checks.push(limit(r.usage.cost_usd, b.maxUsd, (v) => `$${v.toFixed(4)}`, "cost"));
  if (b.maxTokens !== undefined) checks.push(limit(tokens, b.maxTokens, (v) => `${v} tokens`, "usage"));
  if (b.maxLatencyMs !== undefined) checks.push(limit(r.latency_ms, b.maxLatencyMs, (v) => `${(v / 1000).toFixed(2)} s`, "latency"));
  return fromChecks("budget", checks);
}

function limit(value: number, max: number, show: (v: number) => string, what: string): Check {
  const ok = value <= max;
  return { ok, detail: ok ? `${what} ${show(value)} ≤ ${show(max)}` : `${what} ${show(value)} over the budget of ${show(max)}` };
}

/** What a state check's tool answered: its JSON result, or why it could not be read. */
export type StateReading = { ok: true; value: unknown } | { ok: false; error: string };

export function scoreState(checks: StateCheck[], readings: StateReading[]): Score {
  return fromChecks(
    "state",
    checks.map((check, i) => stateCheck(check, readings[i])),
  );
}

function stateCheck(check: StateCheck, reading: StateReading): Check {
  const what = `${check.tool} ${short(check.args)}${check.path ? ` → ${check.path}` : ""}`;
  if (!reading.ok) return { ok: false, detail: `${what}: ${reading.error}` };
  const found = check.path === undefined ? { found: true, value: reading.value } : valueAt(reading.value, check.path);
  if (!found.found) return { ok: false, detail: `${what}: the result has no ${check.path} (${short(reading.value)})` };
  if ("equals" in check) {
    const ok = deepEqual(check.equals, found.value);
    return { ok, detail: ok ? `${what} = ${short(found.value)}` : `${what}: expected ${short(check.equals)}, found ${short(found.value)}` };
  }
  const ok = subset(check.matches, found.value);
  return { ok, detail: ok ? `${what} matches` : `${what}: expected to match ${short(check.matches)}, found ${short(found.value)}` };
}

/** The judge's answer, `{"score": 0..1, "reason": "…"}` (a JSON object anywhere in its text), against the spec's bar. */
export function judgeScore(spec: JudgeSpec, answer: string): Score {
  const verdict = parseVerdict(answer);
  if (!verdict) return { scorer: "judge", pass: false, score: 0, detail: `the judge did not answer {"score", "reason"}: ${quote(answer)}` };
  const pass = verdict.score >= spec.minScore;
  return {
    scorer: "judge",
    pass,
    score: verdict.score,
    detail: `${verdict.score.toFixed(2)} ${pass ? "≥" : "<"} ${spec.minScore}: ${verdict.reason}`,
  };
}

function parseVerdict(answer: string): { score: number; reason: string } | null {
  const json = /\{[\s\S]*\}/.exec(answer)?.[0];
  if (!json) return null;
  try {
    const v = JSON.parse(json) as { score?: unknown; reason?: unknown };
    if (typeof v.score !== "number" || !Number.isFinite(v.score)) return null;
    return { score: Math.min(1, Math.max(0, v.score)), reason: typeof v.reason === "string" ? v.reason : "" };
  } catch {
    return null;
  }
}

/** A custom scorer's return: `{pass, score?, detail?}` or a boolean. */
export function customScore(name: string, value: unknown): Score {
  const scorer = `custom:${name}`;
  if (typeof value === "boolean") return { scorer, pass: value, score: value ? 1 : 0, detail: "" };
  const v = value as { pass?: unknown; score?: unknown; detail?: unknown } | null;
  if (typeof v !== "object" || v === null || typeof v.pass !== "boolean") {
    return { scorer, pass: false, score: 0, detail: `returned ${short(value)}; a scorer returns { pass, score?, detail? }` };
  }
  const score = typeof v.score === "number" && Number.isFinite(v.score) ? Math.min(1, Math.max(0, v.score)) : v.pass ? 1 : 0;
  return { scorer, pass: v.pass, score, detail: typeof v.detail === "string" ? v.detail : "" };
}

// ---- JSON helpers ---------------------------------------------------------------

/** `expected` is found in `actual`: objects by their keys, lists item by item (in any order), values equal. */
export function subset(expected: unknown, actual: unknown): boolean {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return false;
    const free = [...actual];
    return expected.every((e) => {
      const i = free.findIndex((a) => subset(e, a));
      if (i < 0) return false;
      free.splice(i, 1);
      return true;
    });
  }
  if (isObject(expected)) return isObject(actual) && Object.entries(expected).every(([k, v]) => k in actual && subset(v, actual[k]));
  return Object.is(expected, actual);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return Object.is(a, b);
}

/** `invoice.lines.0.sku`, as scripts read tool results. */
export function valueAt(value: unknown, path: string): { found: boolean; value?: unknown } {
  let at = value;
  for (const key of path.split(".")) {
    if (Array.isArray(at) && /^\d+$/.test(key) && Number(key) < at.length) at = at[Number(key)];
    else if (isObject(at) && key in at) at = at[key];
    else return { found: false };
  }
  return { found: true, value: at };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const times = (n: number) => (n === 1 ? "once" : `${n} times`);
const quote = (s: string) => JSON.stringify(s.length > 160 ? `${s.slice(0, 159)}…` : s);

function short(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 160 ? `${text.slice(0, 159)}…` : text;
}
