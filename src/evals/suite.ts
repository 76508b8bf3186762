/**
 * `evals/<suite>.yaml`: a suite of cases bound to an agent (or a team, whose lead takes the cases), each an input
 * with optional session history and what is expected of the run. Parsed by a strict zod schema and then checked
 * against the project, every problem reported at once with file, line, case and field — as the project's own
 * loaders do (src/definitions).
 */
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import type { ContextMessage } from "../core/api.js";
import { OutpostError } from "../core/errors.js";
import { checkYaml, formatIssue, type Issue, parseYaml } from "../definitions/index.js";
import { BUILTIN_TOOL_NAMES, duration, NAME_PATTERN, toolName } from "../definitions/schemas.js";
import { didYouMean } from "../definitions/suggest.js";
import type { Project } from "../definitions/types.js";

export type Approvals = "approve" | "deny";
export type EndStatus = "completed" | "failed" | "cancelled";

export interface Suite {
  name: string;
  /** As people see it: relative to the project root when inside it. */
  file: string;
  description: string;
  /** The agent the cases talk to (a team's lead when the suite names a team). */
  agent: string;
  team?: string;
  cases: EvalCase[];
}

export interface EvalCase {
  name: string;
  agent: string;
  input: string;
  /** Earlier turns of the conversation, seen by the agent before `input`. */
  history: ContextMessage[];
  /** What the evaluator answers every approval the case's runs ask for. */
  approvals: Approvals;
  timeoutMs: number;
  expect: Expectations;
  custom: CustomScorerRef[];
}

export interface Expectations {
  status: EndStatus;
  output?: OutputExpectation;
  tools?: ToolExpectation;
  state?: StateCheck[];
  policy?: PolicyExpectation;
  budget?: Budget;
  judge?: JudgeSpec;
}

export interface OutputExpectation {
  exact?: string;
  contains?: string[];
  notContains?: string[];
  regex?: string;
  jsonSchema?: Record<string, unknown>;
}

export interface ExpectedCall {
  tool: string;
  /** Made by this agent (default: any of the case's). */
  agent?: string;
  /** A subset the call's arguments must hold. */
  args?: Record<string, unknown>;
  /** Exactly this many matching calls (default: at least one). */
  times?: number;
}

export interface ToolExpectation {
  calls: ExpectedCall[];
  ordered: boolean;
  notCalled: string[];
}

/** A business system's state after the run, read through one of its tools. */
export interface StateCheck {
  tool: string;
  args: Record<string, unknown>;
  /** Dot path into the tool's JSON result (`invoice.lines.0.sku`); absent: the whole result. */
  path?: string;
  /** Exactly one of `equals` (deep equality) and `matches` (a JSON subset) is set. */
  equals?: unknown;
  matches?: unknown;
}

/** `compliant`: the runs attempted no action policy denied; `denied`: they did, and only by these policies. */
export type PolicyExpectation = { compliant: true } | { denied: string[] };

export interface Budget {
  maxUsd?: number;
  maxTokens?: number;
  maxLatencyMs?: number;
}

export interface JudgeSpec {
  /** A model alias of outpost.yaml. */
  model: string;
  rubric: string;
  minScore: number;
}

export interface CustomScorerRef {
  name: string;
  /** Absolute path of the module. */
  path: string;
  options?: unknown;
}

/** A suite with problems: every one, located. The CLI prints them like a project's. */
export class SuiteError extends OutpostError {
  constructor(
    readonly file: string,
    readonly issues: Issue[],
  ) {
    const count = issues.length === 1 ? "1 problem" : `${issues.length} problems`;
    super("invalid_project", [`${file} has ${count}:`, ...issues.map(formatIssue)].join("\n"), "fix them, then run the suite again");
    this.name = "SuiteError";
  }
}

const DEFAULT_TIMEOUT_MS = 120_000;
const DEFAULT_MIN_SCORE = 0.7;

const text = z.string().min(1);
const oneOrMany = z.union([text, z.array(text).min(1)]);
const args = z.record(z.string(), z.unknown());

const outputSchema = z.strictObject({
  exact: z.string().optional(),
  contains: oneOrMany.optional(),
  not_contains: oneOrMany.optional(),
  regex: text.optional(),
  json_schema: args.optional(),
});

const toolsSchema = z.strictObject({
  calls: z
    .array(z.strictObject({ tool: toolName, agent: text.optional(), args: args.optional(), times: z.int().nonnegative().optional() }))
    .optional(),
  ordered: z.boolean().optional(),
  not_called: z.array(toolName).optional(),
});

const stateSchema = z.strictObject({
  tool: toolName,
  args: args.optional(),
  path: text.optional(),
  equals: z.unknown().optional(),
  matches: z.unknown().optional(),
});

const expectSchema = z.strictObject({
  status: z.enum(["completed", "failed", "cancelled"]).optional(),
  output: outputSchema.optional(),
  tools: toolsSchema.optional(),
  state: z.array(stateSchema).optional(),
  policy: z.union([z.literal("compliant"), z.strictObject({ denied: z.array(text).min(1) })]).optional(),
  budget: z
    .strictObject({
      max_usd: z.number().nonnegative().optional(),
      max_tokens: z.int().nonnegative().optional(),
      max_latency: duration.optional(),
    })
    .optional(),
  judge: z
    .strictObject({
      model: text,
      rubric: text,
      min_score: z.number().min(0).max(1).optional(),
    })
    .optional(),
});

const scorerSchema = z.strictObject({
  custom: text,
  name: text.optional(),
  options: z.unknown().optional(),
});

const approvals = z.enum(["approve", "deny"]);
const name = (what: string) => z.string().regex(NAME_PATTERN, `${what} are lowercase letters, digits, "-" or "_", starting with a letter`);

const caseSchema = z.strictObject({
  name: name("case names"),
  input: text,
  history: z.array(z.strictObject({ role: z.enum(["user", "assistant"]), content: text })).optional(),
  agent: text.optional(),
  approvals: approvals.optional(),
  timeout: duration.optional(),
  expect: expectSchema.optional(),
  scorers: z.array(scorerSchema).optional(),
});

const suiteSchema = z.strictObject({
  name: name("suite names").optional(),
  description: z.string().optional(),
  agent: text.optional(),
  team: text.optional(),
  approvals: approvals.optional(),
  timeout: duration.optional(),
  expect: expectSchema.optional(),
  scorers: z.array(scorerSchema).optional(),
  cases: z.array(caseSchema).min(1),
});

type SuiteFile = z.infer<typeof suiteSchema>;
type ExpectFile = z.infer<typeof expectSchema>;
type Path = (string | number)[];

/** Reads and checks a suite file against the project; throws SuiteError naming every problem. */
export async function loadSuite(project: Project, file: string): Promise<Suite> {
  const absolute = path.resolve(file);
  const shown = displayPath(project.root, absolute);
  let source: string;
  try {
    source = await readFile(absolute, "utf8");
  } catch (err) {
    throw new SuiteError(shown, [{ file: shown, path: "", message: `cannot be read (${(err as NodeJS.ErrnoException).code})` }]);
  }
  const yaml = parseYaml(shown, source);
  if (yaml.syntaxIssues.length > 0) throw new SuiteError(shown, yaml.syntaxIssues);
  const checked = checkYaml(yaml, suiteSchema);
  const raw = yaml.data as { cases?: unknown };
  if (!checked.ok)
    throw new SuiteError(
      shown,
      checked.issues.map((i) => withCaseName(i, raw)),
    );

  const issues = new Map<string, Issue>();
  // A mistake in the suite's `expect` is found again in every case that inherits it: reported once.
  const at = (p: Path, message: string) => {
    const issue = withCaseName({ file: shown, line: yaml.lineOf(p), path: fieldPath(p), message }, raw);
    issues.set(formatIssue(issue), issue);
  };
  const suite = toSuite(checked.value, project, path.dirname(absolute), shown, at);
  if (issues.size > 0) throw new SuiteError(shown, [...issues.values()]);
  return suite;
}

function toSuite(value: SuiteFile, project: Project, folder: string, file: string, at: (p: Path, m: string) => void): Suite {
  const agent = targetAgent(value, project, at);
  const tools = knownTools(project);
  const seen = new Set<string>();
  const cases = value.cases.map((c, i): EvalCase => {
    const where: Path = ["cases", i];
    if (seen.has(c.name)) at([...where, "name"], `case "${c.name}" is defined twice — case names must be unique in a suite`);
    seen.add(c.name);
    if (c.agent !== undefined) checkAgent(c.agent, project, [...where, "agent"], at);
    const expect = { ...value.expect, ...c.expect };
    checkExpectations(expect, c.expect ?? {}, where, project, tools, at);
    const scorers = [
      ...(value.scorers ?? []).map((s, j) => ({ s, p: ["scorers", j] })),
      ...(c.scorers ?? []).map((s, j) => ({ s, p: [...where, "scorers", j] })),
    ];
    return {
      name: c.name,
      agent: c.agent ?? agent,
      input: c.input,
      history: c.history ?? [],
      approvals: c.approvals ?? value.approvals ?? "approve",
      timeoutMs: c.timeout ?? value.timeout ?? DEFAULT_TIMEOUT_MS,
      expect: toExpectations(expect),
      custom: scorers.map(({ s, p }) => customScorer(s, folder, [...p, "custom"], at)),
    };
  });
  return {
    name: value.name ?? path.basename(file).replace(/\.ya?ml$/, ""),
    file,
    description: value.description ?? "",
    agent,
    ...(value.team !== undefined ? { team: value.team } : {}),
    cases,
  };
}

function targetAgent(value: SuiteFile, project: Project, at: (p: Path, m: string) => void): string {
  if (value.agent !== undefined && value.team !== undefined) at(["team"], "name either agent or team, not both");
  if (value.team !== undefined) {
    const team = project.teams.get(value.team);
    if (!team) {
      const known = [...project.teams.keys()];
      at(["team"], `unknown team "${value.team}"${didYouMean(value.team, known) || ` — teams are ${known.join(", ") || "none"}`}`);
      return value.team;
    }
    return team.lead;
  }
  if (value.agent === undefined) {
    at([], "missing the agent the cases talk to — add agent: NAME (or team: NAME, whose lead takes them)");
    return "";
  }
  checkAgent(value.agent, project, ["agent"], at);
  return value.agent;
}

function checkAgent(agent: string, project: Project, where: Path, at: (p: Path, m: string) => void): void {
  if (project.agents.has(agent)) return;
  const known = [...project.agents.keys()];
  at(where, `unknown agent "${agent}"${didYouMean(agent, known) || ` — agents are ${known.join(", ")}`}`);
}

/** Checks what the schema cannot: names against the project, regular expressions, JSON Schemas. Issues point at the
 * case's own field when it set one, else at the suite's `expect` it inherited. */
function checkExpectations(
  expect: ExpectFile,
  own: ExpectFile,
  where: Path,
  project: Project,
  tools: ReturnType<typeof knownTools>,
  at: (p: Path, m: string) => void,
): void {
  const base = (key: keyof ExpectFile): Path => (own[key] !== undefined ? [...where, "expect", key] : ["expect", key]);
  const output = expect.output;
  if (output?.regex !== undefined) {
    try {
      new RegExp(output.regex);
    } catch (err) {
      at([...base("output"), "regex"], `not a regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, "")}`);
    }
  }
  if (output?.json_schema !== undefined) {
    try {
      z.fromJSONSchema(output.json_schema as Parameters<typeof z.fromJSONSchema>[0]);
    } catch (err) {
      at([...base("output"), "json_schema"], `not a JSON Schema: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  const checkTool = (tool: string, p: Path) => {
    if (toolKnown(tool, tools)) return;
    at(p, `unknown tool "${tool}"${didYouMean(tool, [...tools.names]) || " — no agent of the project lists it"}`);
  };
  for (const [i, c] of (expect.tools?.calls ?? []).entries()) {
    checkTool(c.tool, [...base("tools"), "calls", i, "tool"]);
    if (c.agent !== undefined) checkAgent(c.agent, project, [...base("tools"), "calls", i, "agent"], at);
  }
  for (const [i, t] of (expect.tools?.not_called ?? []).entries()) checkTool(t, [...base("tools"), "not_called", i]);
  expect.state?.forEach((s, i) => {
    const p = [...base("state"), i];
    const connection = s.tool.slice(0, s.tool.indexOf("."));
    if (!s.tool.includes(".") || !project.connections.has(connection)) {
      const known = [...project.connections.keys()];
      at(
        [...p, "tool"],
        `"${s.tool}" is not a business system's tool — name it <connection>.<tool>; connections are ${known.join(", ") || "none"}`,
      );
    }
    if ("equals" in s === "matches" in s) at(p, "say what the result must be: equals (exactly) or matches (a subset), one of them");
  });
  const judge = expect.judge;
  if (judge && !project.models.has(judge.model)) {
    const known = [...project.models.keys()];
    at(
      [...base("judge"), "model"],
      `unknown model alias "${judge.model}"${didYouMean(judge.model, known) || ` — aliases are ${known.join(", ")}`}`,
    );
  }
}

/** Tool names an agent of the project may call: the ones agents list, and any tool of a connection an agent lists
 * whole (`helpdesk.*`, whose tools are known only once it is reached). */
function knownTools(project: Project): { names: Set<string>; wholeConnections: Set<string> } {
  const names = new Set<string>([...BUILTIN_TOOL_NAMES, ...project.tools.keys()]);
  const wholeConnections = new Set<string>();
  for (const agent of project.agents.values()) {
    for (const ref of agent.tools) {
      if (ref.name.endsWith(".*")) wholeConnections.add(ref.name.slice(0, -2));
      else names.add(ref.name);
    }
  }
  return { names, wholeConnections };
}

const toolKnown = (tool: string, tools: ReturnType<typeof knownTools>) =>
  tools.names.has(tool) || tools.wholeConnections.has(tool.slice(0, tool.indexOf(".")));

function customScorer(s: z.infer<typeof scorerSchema>, folder: string, where: Path, at: (p: Path, m: string) => void): CustomScorerRef {
  const absolute = path.resolve(folder, s.custom);
  if (!existsSync(absolute) || !statSync(absolute).isFile()) at(where, `no file ${s.custom} (relative to the suite's folder)`);
  return {
    name: s.name ?? path.basename(s.custom).replace(/\.[mc]?[jt]s$/, ""),
    path: absolute,
    ...(s.options !== undefined ? { options: s.options } : {}),
  };
}

function toExpectations(e: ExpectFile): Expectations {
  const list = (v: string | string[] | undefined) => (v === undefined ? undefined : typeof v === "string" ? [v] : v);
  const out: Expectations = { status: e.status ?? "completed" };
  if (e.output)
    out.output = defined({
      exact: e.output.exact,
      contains: list(e.output.contains),
      notContains: list(e.output.not_contains),
      regex: e.output.regex,
      jsonSchema: e.output.json_schema,
    });
  if (e.tools) out.tools = { calls: e.tools.calls ?? [], ordered: e.tools.ordered ?? false, notCalled: e.tools.not_called ?? [] };
  if (e.state) out.state = e.state.map((s) => ({ ...s, args: s.args ?? {} }));
  if (e.policy) out.policy = e.policy === "compliant" ? { compliant: true } : { denied: e.policy.denied };
  if (e.budget) out.budget = defined({ maxUsd: e.budget.max_usd, maxTokens: e.budget.max_tokens, maxLatencyMs: e.budget.max_latency });
  if (e.judge) out.judge = { model: e.judge.model, rubric: e.judge.rubric, minScore: e.judge.min_score ?? DEFAULT_MIN_SCORE };
  return out;
}

/** Drops the keys left undefined, so a stored suite reads as written. */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** `cases[2].expect.output.regex` → `cases.refund_twice.expect.output.regex`: people know their cases by name. */
function withCaseName(issue: Issue, raw: { cases?: unknown }): Issue {
  const m = /^cases\[(\d+)\]/.exec(issue.path);
  if (!m || !Array.isArray(raw.cases)) return issue;
  const name = (raw.cases[Number(m[1])] as { name?: unknown } | undefined)?.name;
  if (typeof name !== "string" || !NAME_PATTERN.test(name)) return issue;
  return { ...issue, path: `cases.${name}${issue.path.slice(m[0].length)}` };
}

const fieldPath = (p: Path) => p.map((x, i) => (typeof x === "number" ? `[${x}]` : i === 0 ? x : `.${x}`)).join("");

function displayPath(root: string, absolute: string): string {
  const inside = path.relative(root, absolute);
  const shown =
    inside && !inside.startsWith("..") && !path.isAbsolute(inside) ? inside : path.relative(process.cwd(), absolute) || absolute;
  return shown.split(path.sep).join("/");
}
