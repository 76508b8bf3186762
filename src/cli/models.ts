/**
 * Which model each agent will use, worked out from the project alone (no
 * runtime needed): the first candidate of the agent's alias whose required
 * environment variables are all set.
 */
import type { ModelCandidate, Project } from "../definitions/types.js";

export interface AgentModel {
  agent: string;
  alias: string;
  candidate: ModelCandidate | undefined;
  /** e.g. "fast → openai gpt-4.1-mini (external)" or "fast → scripted (offline, replays scripts/)". */
  text: string;
  scripted: boolean;
}

export function agentModels(project: Project, env: NodeJS.ProcessEnv = process.env): AgentModel[] {
  return [...project.agents.values()].map((agent) => {
    const alias = agent.model || project.defaults.model || "";
    const candidates = project.models.get(alias)?.candidates ?? [];
    const candidate = candidates.find((c) => c.requiresEnv.every((v) => Boolean(env[v])));
    const scripted = candidate?.provider === "scripted";
    let text: string;
    if (!candidate) {
      const needs = [...new Set(candidates.flatMap((c) => c.requiresEnv))];
      text = `${alias} → none available${needs.length ? ` (set ${needs.join(" or ")})` : ""}`;
    } else if (scripted) {
      text = `${alias} → scripted model (offline: replays canned replies, no LLM is called)`;
    } else {
      text = `${alias} → ${candidate.provider} ${candidate.model} (${candidate.location})`;
    }
    return { agent: agent.name, alias, candidate, text, scripted };
  });
}

/** Hint shown when any agent runs on the scripted model. */
export function scriptedHint(models: AgentModel[], project: Project): string | undefined {
  const scripted = models.filter((m) => m.scripted);
  if (scripted.length === 0) return undefined;
  const alternatives = new Set<string>();
  for (const m of scripted) {
    for (const c of project.models.get(m.alias)?.candidates ?? []) {
      if (c.provider !== "scripted") for (const v of c.requiresEnv) alternatives.add(v);
    }
  }
  return alternatives.size > 0
    ? `the scripted model is in use; set ${[...alternatives].join(" or ")} to use a real model`
    : "the scripted model is in use; add a real provider to the model alias in outpost.yaml to use an LLM";
}
