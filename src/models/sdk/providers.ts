/**
 * One ModelCandidate → one AI SDK language model, with credentials read from
 * the given env (never from the candidate: it only names the env var).
 * A missing credential does not fail here — it fails the first call with an
 * `auth` ModelError — so listing and describing models never needs secrets.
 */
import { createAmazonBedrock } from "@ai-sdk/amazon-bedrock";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import type { ModelCandidate } from "../../definitions/types.js";
import { ModelError } from "../types.js";
import type { ErrorContext } from "./errors.js";
import type { PromptOptions } from "./prompt.js";
import type { V3Model } from "./v3.js";

export interface ProviderSetup {
  model: V3Model;
  /** Thrown by every call when the candidate cannot work (e.g. no credential). */
  setupError?: ModelError;
  errorContext: ErrorContext;
  promptOptions: PromptOptions;
  /** One line for humans, e.g. "openai gpt-4.1-mini (external)". */
  description: string;
}

export interface ProviderOptions {
  env: NodeJS.ProcessEnv;
  fetch?: typeof fetch;
}

const DEFAULT_KEY_ENV = { openai: "OPENAI_API_KEY", anthropic: "ANTHROPIC_API_KEY" } as const;

export function setUpProvider(alias: string, c: ModelCandidate, options: ProviderOptions): ProviderSetup {
  const label = `model "${alias}" (${c.provider} ${c.model})`;
  const env = options.env;
  const fetchFn = options.fetch;
  const where = c.baseUrl ? ` at ${c.baseUrl}` : "";
  const description = `${c.provider} ${c.model}${where} (${c.location})`;

  switch (c.provider) {
    case "openai":
    case "anthropic": {
      const keyEnv = c.apiKeyEnv ?? DEFAULT_KEY_ENV[c.provider];
      const apiKey = env[keyEnv] || undefined;
      const settings = { apiKey: apiKey ?? "missing", baseURL: c.baseUrl, headers: c.headers, fetch: fetchFn };
      // Chat Completions for OpenAI (not the Responses API): the one wire format
      // every OpenAI-compatible server also speaks.
      const model = c.provider === "openai" ? createOpenAI(settings).chat(c.model) : createAnthropic(settings)(c.model);
      const endpoint = c.baseUrl ?? (c.provider === "openai" ? "https://api.openai.com/v1" : "https://api.anthropic.com/v1");
      return {
        model,
        setupError: apiKey ? undefined : new ModelError(`${label}: no API key; set the ${keyEnv} environment variable`, "auth", false),
        errorContext: { label, credentialHint: `the ${keyEnv} environment variable`, endpoint, secrets: apiKey ? [apiKey] : [] },
        promptOptions: {},
        description,
      };
    }
    case "openai-compatible": {
      if (!c.baseUrl) {
        throw new ModelError(
          `${label}: openai-compatible needs a baseUrl, e.g. http://localhost:11434/v1 (Ollama) or http://localhost:8000/v1 (vLLM)`,
          "bad_request",
          false,
        );
      }
      const apiKey = c.apiKeyEnv ? env[c.apiKeyEnv] || undefined : undefined;
      const model = createOpenAICompatible({
        name: "openai-compatible",
        baseURL: c.baseUrl,
        apiKey,
        headers: c.headers,
        fetch: fetchFn,
        includeUsage: true,
      }).chatModel(c.model);
      const secrets = [apiKey, ...Object.values(c.headers ?? {})].filter((s): s is string => !!s);
      return {
        model,
        setupError:
          c.apiKeyEnv && !apiKey
            ? new ModelError(`${label}: no API key; set the ${c.apiKeyEnv} environment variable`, "auth", false)
            : undefined,
        errorContext: {
          label,
          credentialHint: c.apiKeyEnv
            ? `the ${c.apiKeyEnv} environment variable`
            : "the server's credentials (apiKeyEnv / headers in outpost.yaml)",
          endpoint: c.baseUrl,
          secrets,
        },
        promptOptions: {},
        description,
      };
    }
    case "amazon-bedrock": {
      const region = c.region ?? env.AWS_REGION;
      const keyEnv = c.apiKeyEnv ?? "AWS_BEARER_TOKEN_BEDROCK";
      const apiKey = env[keyEnv] || undefined;
      const accessKeyId = env.AWS_ACCESS_KEY_ID || undefined;
      const secretAccessKey = env.AWS_SECRET_ACCESS_KEY || undefined;
      const sessionToken = env.AWS_SESSION_TOKEN || undefined;
      const model = createAmazonBedrock({
        region: region ?? "us-east-1",
        apiKey,
        accessKeyId: accessKeyId ?? "missing",
        secretAccessKey: secretAccessKey ?? "missing",
        sessionToken,
        baseURL: c.baseUrl,
        headers: c.headers,
        fetch: fetchFn,
      })(c.model);
      const credentialHint = `${keyEnv}, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)`;
      let setupError: ModelError | undefined;
      if (!region) {
        setupError = new ModelError(
          `${label}: no AWS region; set "region" on the model in outpost.yaml or AWS_REGION`,
          "bad_request",
          false,
        );
      } else if (!apiKey && !(accessKeyId && secretAccessKey)) {
        setupError = new ModelError(`${label}: no AWS credentials; set ${credentialHint}`, "auth", false);
      }
      return {
        model,
        setupError,
        errorContext: {
          label,
          credentialHint,
          endpoint: c.baseUrl ?? `https://bedrock-runtime.${region ?? "<region>"}.amazonaws.com`,
          secrets: [apiKey, secretAccessKey, sessionToken].filter((s): s is string => !!s),
        },
        promptOptions: { systemOnlyAtStart: true },
        description: `${c.provider} ${c.model}${region ? ` in ${region}` : ""} (${c.location})`,
      };
    }
    case "scripted":
      throw new Error("scripted models are not AI SDK providers");
  }
}
