/**
 * Model aliases: from the `models:` section of outpost.yaml to ModelCandidates,
 * and the choice of a candidate by environment.
 */
import { OutpostError } from "../core/errors.js";
import type { CandidateInput } from "./schemas.js";
import type { ModelAlias, ModelCandidate } from "./types.js";

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_RETRIES = 3;
const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Expands `${VAR}` and `${VAR:-default}` from `env`. Returns the text and the
 * variables referenced without a default (an unset one expands to "").
 */
export function expandEnv(text: string, env: NodeJS.ProcessEnv): { text: string; required: string[] } {
  const required: string[] = [];
  const expanded = text.replace(REFERENCE, (_match, name: string, fallback: string | undefined) => {
    const value = env[name];
    if (fallback !== undefined) return value ? value : fallback;
    required.push(name);
    return value ?? "";
  });
  return { text: expanded, required };
}

export function toCandidate(input: CandidateInput, env: NodeJS.ProcessEnv): ModelCandidate {
  const requiresEnv = new Set(input.requires_env ?? []);
  const expand = (text: string | undefined): string | undefined => {
    if (text === undefined) return undefined;
    const { text: out, required } = expandEnv(text, env);
    for (const name of required) requiresEnv.add(name);
    return out;
  };
  if (input.api_key_env) requiresEnv.add(input.api_key_env);

  const candidate: ModelCandidate = {
    provider: input.provider,
    model: input.provider === "scripted" ? "scripted" : (expand(input.model) ?? ""),
    requiresEnv: [],
    location: input.location ?? (input.provider === "scripted" || input.provider === "openai-compatible" ? "local" : "external"),
    price: { inputPerMTok: input.price?.input_per_mtok ?? 0, outputPerMTok: input.price?.output_per_mtok ?? 0 },
    timeoutMs: input.timeout ?? DEFAULT_TIMEOUT_MS,
    maxRetries: input.max_retries ?? DEFAULT_MAX_RETRIES,
  };
  const baseUrl = expand(input.base_url);
  if (baseUrl !== undefined) candidate.baseUrl = baseUrl;
  if (input.api_key_env) candidate.apiKeyEnv = input.api_key_env;
  if (input.headers) {
    candidate.headers = Object.fromEntries(Object.entries(input.headers).map(([key, value]) => [key, expand(value) ?? ""]));
  }
  const region = expand(input.region);
  if (region !== undefined) candidate.region = region;
  candidate.requiresEnv = [...requiresEnv];
  if (input.context_window !== undefined) candidate.contextWindow = input.context_window;
  return candidate;
}

/** The first candidate whose `requiresEnv` variables are all set and non-empty. */
export function selectCandidate(alias: ModelAlias, env: NodeJS.ProcessEnv = process.env): ModelCandidate {
  const usable = alias.candidates.find((candidate) => candidate.requiresEnv.every((name) => Boolean(env[name])));
  if (usable) return usable;
  const options = alias.candidates.map((candidate) => `${candidate.provider} ${candidate.model} needs ${candidate.requiresEnv.join(", ")}`);
  throw new OutpostError(
    "invalid_project",
    `no model for alias "${alias.name}" can be used here: ${options.join("; ")}`,
    `set the environment variables of one candidate, or add "- provider: scripted" as the last candidate of models.${alias.name} in outpost.yaml`,
  );
}
