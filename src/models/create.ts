import { relative } from "node:path";
import type { ModelCandidate } from "../definitions/types.js";
import { codeScripts, fileScripts, ScriptedModelClient, type ScriptSource } from "./scripted/client.js";
import { SdkModelClient } from "./sdk/client.js";
import { setUpProvider } from "./sdk/providers.js";
import type { ModelClient, ModelLocation, ModelPrice } from "./types.js";

export interface ModelClientOptions {
  /** Folder of scripted-model scripts (`<scriptsDir>/<agent>.yaml`). */
  scriptsDir: string;
  /** Where credentials are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** A fetch implementation for the AI SDK providers (default the global fetch). */
  fetch?: typeof fetch;
}

/** A client for one candidate of a model alias from outpost.yaml. */
export function createModelClient(alias: string, candidate: ModelCandidate, options: ModelClientOptions): ModelClient {
  if (candidate.provider === "scripted") {
    const shown = relative(process.cwd(), options.scriptsDir) || ".";
    return new ScriptedModelClient(alias, fileScripts(options.scriptsDir), {
      modelId: candidate.model || "scripted",
      location: candidate.location,
      price: candidate.price,
      ...(candidate.contextWindow !== undefined ? { contextWindow: candidate.contextWindow } : {}),
      description: `scripted (offline, deterministic replay of ${shown.startsWith("..") ? options.scriptsDir : shown}/<agent>.yaml)`,
    });
  }
  const setup = setUpProvider(alias, candidate, { env: options.env ?? process.env, fetch: options.fetch });
  const client = new SdkModelClient({ alias, candidate, ...setup });
  descriptions.set(client, setup.description);
  return client;
}

export interface ScriptedClientOptions {
  /** Default "local". */
  location?: ModelLocation;
  /** Default free. */
  price?: ModelPrice;
  /** Tokens one call may take (default: as for any scripted candidate, 128 000). */
  contextWindow?: number;
}

/**
 * A scripted model built in code (tests, benchmarks): a script object, one per
 * agent, or a function from the request to a reply. Script objects are
 * validated like files (ModelError "bad_request" when invalid).
 */
export function createScriptedClient(alias: string, script: ScriptSource, options: ScriptedClientOptions = {}): ModelClient {
  return new ScriptedModelClient(alias, codeScripts(script), {
    modelId: "scripted",
    location: options.location ?? "local",
    price: options.price ?? { inputPerMTok: 0, outputPerMTok: 0 },
    description: "scripted (offline, deterministic, in-code script)",
    ...(options.contextWindow !== undefined ? { contextWindow: options.contextWindow } : {}),
  });
}

const descriptions = new WeakMap<ModelClient, string>();

/**
 * One line for humans, e.g. `openai gpt-4.1-mini (external)` or, given the
 * agent, `scripted (offline, deterministic replay of scripts/support.yaml)`.
 */
export function describeModel(client: ModelClient, agent?: string): string {
  if (client instanceof ScriptedModelClient) {
    return agent ? client.description.replace("<agent>", agent) : client.description;
  }
  return descriptions.get(client) ?? `${client.provider} ${client.modelId} (${client.location})`;
}
