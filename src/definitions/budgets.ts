/**
 * outpost.yaml `budgets:` after the schema: every team and agent a scope names exists, no cap is given
 * twice, and `on_exceed: wait` has a next period to wait for.
 */
import type { Issue } from "./errors.js";
import type { BudgetInput } from "./schemas.js";
import { didYouMean } from "./suggest.js";
import type { AgentDefinition, BudgetCap, TeamDefinition } from "./types.js";
import type { YamlSource } from "./yaml-source.js";

export function toBudgets(
  inputs: BudgetInput[],
  source: YamlSource,
  agents: Map<string, AgentDefinition>,
  teams: Map<string, TeamDefinition>,
  issues: Issue[],
): BudgetCap[] {
  const caps: BudgetCap[] = [];
  const seen = new Map<string, number>();
  inputs.forEach((b, i) => {
    const at = (field?: string) => {
      const fieldPath = field ? ["budgets", i, field] : ["budgets", i];
      return { file: source.file, line: source.lineOf(fieldPath), path: field ? `budgets[${i}].${field}` : `budgets[${i}]` };
    };
    const [kind, name] = b.scope.split(":") as ["workspace" | "team" | "agent", string | undefined];
    if (kind === "team" && name !== undefined && !teams.has(name)) {
      const hint =
        didYouMean(name, teams.keys()) || ` — define it in teams/${name}.yaml (known: ${[...teams.keys()].join(", ") || "none"})`;
      issues.push({ ...at("scope"), message: `unknown team "${name}"${hint}` });
      return;
    }
    if (kind === "agent" && name !== undefined && !agents.has(name)) {
      const hint =
        didYouMean(name, agents.keys()) || ` — define it in agents/${name}.yaml (known: ${[...agents.keys()].join(", ") || "none"})`;
      issues.push({ ...at("scope"), message: `unknown agent "${name}"${hint}` });
      return;
    }
    const onExceed = b.on_exceed ?? "fail";
    if (onExceed === "wait" && b.period === "total") {
      issues.push({
        ...at("on_exceed"),
        message: "a total budget never renews, so there is nothing to wait for — use on_exceed: fail, or period: day or month",
      });
      return;
    }
    const key = `${b.scope} ${b.period}`;
    const first = seen.get(key);
    if (first !== undefined) {
      issues.push({
        ...at(),
        message: `${b.scope} already has a ${b.period} budget (budgets[${first}]) — put usd and tokens in one entry`,
      });
      return;
    }
    seen.set(key, i);
    caps.push({
      scope: b.scope,
      period: b.period,
      ...(b.usd !== undefined ? { usd: b.usd } : {}),
      ...(b.tokens !== undefined ? { tokens: b.tokens } : {}),
      onExceed,
    });
  });
  return caps;
}
