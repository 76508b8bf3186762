/**
 * One ModelCandidate → one AI SDK language model, with credentials read from
 * the given env (never from the candidate: it only names the env var).
 * A missing credential does not fail here — it fails the first call with an
 * `auth` ModelError — so listing and describing models never needs secrets.
 * Likewise a base URL that is not an absolute http(s) URL, or that carries a
 * user name and password (rejected, see definitions/urls.ts), fails every call
 * with a `bad_request` ModelError naming the URL without its credentials.
 * Header values may be secrets (`Authorization: Bearer ${TOKEN}`), so every
 * provider redacts them from messages.
 */
import { createAmazonBedrock } from "@ai-sdk/amazon-bedrock";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import type { ModelCandidate } from "../../definitions/types.js";
import { baseUrlProblem, displayUrl, urlPassword } from "../../definitions/urls.js";
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
  // The URL as shown to people: never with a user name or password.
  const shownUrl = c.baseUrl === undefined ? undefined : displayUrl(c.baseUrl);
  const urlProblem = c.baseUrl === undefined ? undefined : baseUrlProblem(c.baseUrl);
  const urlError = urlProblem ? new ModelError(`${label}: base_url ${urlProblem}`, "bad_request", false) : undefined;
  const secretsWith = (...values: Array<string | undefined>) =>
    [...values, ...Object.values(c.headers ?? {}), c.baseUrl === undefined ? undefined : urlPassword(c.baseUrl)].filter(
      (s): s is string => !!s,
    );
  const where = shownUrl ? ` at ${shownUrl}` : "";
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
      const endpoint = shownUrl ?? (c.provider === "openai" ? "https://api.openai.com/v1" : "https://api.anthropic.com/v1");
      return {
        model,
        setupError:
          urlError ?? (apiKey ? undefined : new ModelError(`${label}: no API key; set the ${keyEnv} environment variable`, "auth", false)),
        errorContext: {
          label,
          credentialHint: `the ${keyEnv} environment variable`,
          endpoint,
          expectedResponse: c.provider === "openai" ? "an OpenAI-style JSON response" : "an Anthropic API JSON response",
          secrets: secretsWith(apiKey),
        },
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
      return {
        model,
        setupError:
          urlError ??
          (c.apiKeyEnv && !apiKey
            ? new ModelError(`${label}: no API key; set the ${c.apiKeyEnv} environment variable`, "auth", false)
            : undefined),
        errorContext: {
          label,
          credentialHint: c.apiKeyEnv
            ? `the ${c.apiKeyEnv} environment variable`
            : "the server's credentials (apiKeyEnv / headers in outpost.yaml)",
          endpoint: shownUrl ?? c.baseUrl,
          expectedResponse: "an OpenAI-style JSON response",
          secrets: secretsWith(apiKey),
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
      let setupError = urlError;
      if (!setupError && !region) {
        setupError = new ModelError(
          `${label}: no AWS region; set "region" on the model in outpost.yaml or AWS_REGION`,
          "bad_request",
          false,
        );
      } else if (!setupError && !apiKey && !(accessKeyId && secretAccessKey)) {
        setupError = new ModelError(`${label}: no AWS credentials; set ${credentialHint}`, "auth", false);
      }
      return {
        model,
        setupError,
        errorContext: {
          label,
          credentialHint,
          endpoint: shownUrl ?? `https://bedrock-runtime.${region ?? "<region>"}.amazonaws.com`,
          expectedResponse: "a Bedrock JSON response",
          secrets: secretsWith(apiKey, secretAccessKey, sessionToken),
        },
        promptOptions: { systemOnlyAtStart: true },
        description: `${c.provider} ${c.model}${region ? ` in ${region}` : ""} (${c.location})`,
      };
    }
    case "scripted":
      throw new Error("scripted models are not AI SDK providers");
  }
}
