/** Which models an agent may use, as a running Outpost and a replay both route its steps. */
import { OutpostError } from "../core/errors.js";
import { selectCandidate } from "../definitions/index.js";
import type { AgentDefinition, Project } from "../definitions/types.js";
import { createModelClient, type ModelClient } from "../models/index.js";
import { defaultContextWindow } from "../models/tokens.js";
import type { ModelRoute } from "./executor.js";

export interface ModelRouting {
  project: Project;
  env: Record<string, string | undefined>;
  /** A client for every agent (tests, a forced model): the alias's candidates are not looked at. */
  modelFor?: (agent: AgentDefinition) => ModelClient | undefined;
  /** Clients made so far, kept across calls (one per alias candidate). */
  clients: Map<string, ModelClient>;
}

/** The agent's usable models, in the order of its alias's candidates (those whose credentials are set). */
export function modelRoutes(agent: AgentDefinition, routing: ModelRouting): ModelRoute[] {
  const { project, env, clients } = routing;
  const custom = routing.modelFor?.(agent);
  if (custom) {
    const provider = custom.provider as ModelRoute["provider"];
    const contextWindow = custom.contextWindow ?? defaultContextWindow(custom.provider, custom.modelId);
    return [{ alias: agent.model, provider, model: custom.modelId, location: custom.location, contextWindow, client: () => custom }];
  }
  const alias = project.models.get(agent.model);
  if (!alias) throw new OutpostError("invalid_project", `agent ${agent.name} uses unknown model alias "${agent.model}"`);
  const usable = alias.candidates.filter((c) => c.requiresEnv.every((name) => Boolean(env[name])));
  if (usable.length === 0) selectCandidate(alias, env); // throws, naming what each candidate needs
  return usable.map((c, i) => ({
    alias: agent.model,
    provider: c.provider,
    model: c.model,
    location: c.location,
    contextWindow: c.contextWindow ?? defaultContextWindow(c.provider, c.model),
    client: () => {
      const key = `${agent.model}#${i}`;
      let client = clients.get(key);
      if (!client) {
        client = createModelClient(agent.model, c, { scriptsDir: project.scriptsDir, env });
        clients.set(key, client);
      }
      return client;
    },
  }));
}
