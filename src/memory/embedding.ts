/**
 * Embedders turn text into unit-length vectors for recall. Each has an id recorded with every vector it made, so a
 * vector is only ever compared with vectors of the same embedder.
 *
 * The default is a local hashed embedder: no model to download, deterministic, and fast enough to run on every
 * write and every recall. It knows no synonyms, but it tolerates what full-text search does not: typos, inflections a
 * stemmer misses, compounds ("wishlist" / "wish list"). A real embedding model is one setting away, through the AI SDK
 * (OpenAI, or any server speaking the OpenAI embeddings API: Ollama, vLLM, LM Studio…).
 */
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { APICallError, type EmbeddingModel, embedMany, LoadAPIKeyError, RetryError } from "ai";
import { OutpostError } from "../core/errors.js";
import type { EmbedderSettings } from "../definitions/types.js";
import { baseUrlProblem, displayUrl } from "../definitions/urls.js";
import { foldWord, STOPWORDS, words } from "./query.js";

export type { EmbedderSettings };

export interface Embedder {
  /** Recorded with each vector, e.g. "hashed-v1:256", "openai:text-embedding-3-small:1536". */
  readonly id: string;
  readonly dimensions: number;
  /** One vector per text, in order: unit length, or all zeros for a text without a single content word. */
  embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]>;
}

/** The configured embedder; the hashed one when memory has no `embedder:` setting. */
export function createEmbedder(settings: EmbedderSettings | undefined, env: NodeJS.ProcessEnv): Embedder {
  if (!settings || settings.provider === "hashed") return hashedEmbedder({ dimensions: settings?.dimensions });
  return sdkEmbedder(settings, env);
}

// ---- hashed ---------------------------------------------------------------------------------------------------

/**
 * 256 by default. On the planted-facts fixture (4 seeds × 100 queries), recall@5 of exact vector search is 0.80 at
 * 64 dimensions, 0.86 at 128, 0.92 at 256, 0.94 at 512 and 0.95 at 1024: hashed features collide less as buckets
 * grow, with diminishing returns past 256. Memory grows linearly: a million items × 256 × 4 bytes is 1 GB of stored
 * vectors (half that in the index at half precision); 512 would double it for two points.
 */
const DEFAULT_DIMENSIONS = 256;
/**
 * Feature weights, tuned on that fixture. The stem counts 1; its character trigrams together 1.2 (they carry typos,
 * inflections the stemmer misses and compounds: at 0.6 the vector path found 0.83 of the typo queries, at 1.2 all);
 * a bigram 0.25 (word order helps a little, more drowns single words). A word with a digit counts double and gets no
 * trigrams: identifiers are the most specific words a business text has (this took identifier queries from 0.86 to
 * 0.93–1.00), and order 105708 and order 105709 are different orders, not similar ones.
 */
const WORD_WEIGHT = 1;
const IDENTIFIER_WEIGHT = 2;
const BIGRAM_WEIGHT = 0.25;
const TRIGRAMS_WEIGHT = 1.2;
/** Words whose features were already hashed; cleared when full (a business vocabulary fits many times over). */
const CACHE_LIMIT = 50_000;

/** Hashed word unigrams (lightly stemmed), bigrams and character trigrams, signed into `dimensions` buckets. */
export function hashedEmbedder(options: { dimensions?: number } = {}): Embedder {
  const dimensions = options.dimensions ?? DEFAULT_DIMENSIONS;
  if (!Number.isInteger(dimensions) || dimensions < 16 || dimensions > 4096) {
    throw new OutpostError(
      "invalid_project",
      `memory.embedder.dimensions must be a whole number from 16 to 4096, not ${dimensions}`,
      `leave it out for the default (${DEFAULT_DIMENSIONS})`,
    );
  }
  const cache = new Map<string, WordFeatures>();
  const featuresOf = (word: string): WordFeatures => {
    let f = cache.get(word);
    if (!f) {
      if (cache.size >= CACHE_LIMIT) cache.clear();
      f = wordFeatures(word, dimensions);
      cache.set(word, f);
    }
    return f;
  };
  return {
    id: `hashed-v1:${dimensions}`,
    dimensions,
    embed: async (texts) => texts.map((t) => hashedVector(t, dimensions, featuresOf)),
  };
}

/** A word's own features: its stem and, for words of letters, its trigrams sharing TRIGRAMS_WEIGHT. */
interface WordFeatures {
  stem: string;
  /** Signed bucket per feature: +(i+1) or −(i+1). */
  buckets: Int32Array;
  weights: Float32Array;
}

function wordFeatures(word: string, dimensions: number): WordFeatures {
  const stem = stemWord(word);
  const identifier = /\p{N}/u.test(word);
  const grams = identifier || word.length < 3 ? [] : trigrams(word);
  const buckets = new Int32Array(1 + grams.length);
  const weights = new Float32Array(1 + grams.length);
  buckets[0] = bucket(`w ${stem}`, dimensions);
  weights[0] = identifier ? IDENTIFIER_WEIGHT : WORD_WEIGHT;
  const gramWeight = TRIGRAMS_WEIGHT / Math.sqrt(grams.length || 1);
  grams.forEach((g, i) => {
    buckets[i + 1] = bucket(`g ${g}`, dimensions);
    weights[i + 1] = gramWeight;
  });
  return { stem, buckets, weights };
}

function hashedVector(text: string, dimensions: number, featuresOf: (word: string) => WordFeatures): Float32Array {
  // Summed per signed bucket first (term frequency), then dampened: a word said five times is not five times the topic.
  const counts = new Map<number, number>();
  const add = (signed: number, weight: number) => counts.set(signed, (counts.get(signed) ?? 0) + weight);
  let previous: string | undefined;
  for (const raw of words(text)) {
    const word = foldWord(raw);
    if (STOPWORDS.has(word)) continue;
    const f = featuresOf(word);
    for (let i = 0; i < f.buckets.length; i++) add(f.buckets[i], f.weights[i]);
    if (previous !== undefined) add(bucket(`b ${previous} ${f.stem}`, dimensions), BIGRAM_WEIGHT);
    previous = f.stem;
  }
  const v = new Float32Array(dimensions);
  for (const [signed, count] of counts) {
    const value = count <= 1 ? count : 1 + Math.log(count);
    if (signed > 0) v[signed - 1] += value;
    else v[-signed - 1] -= value;
  }
  return normalize(v);
}

/** Light English stemming: plurals, -ed, -ing, a final -e ("refunds", "refunded", "refunding" → "refund"). */
export function stemWord(word: string): string {
  let w = word;
  if (w.length <= 3 || /\p{N}/u.test(w)) return w;
  if (w.endsWith("ies") && w.length > 4) w = `${w.slice(0, -3)}y`;
  else if (/(?:ss|sh|ch|x|z)es$/.test(w)) w = w.slice(0, -2);
  else if (w.endsWith("s") && !/(?:ss|us|is)$/.test(w)) w = w.slice(0, -1);
  const withoutSuffix = (suffix: string) => {
    const rest = w.slice(0, -suffix.length);
    return rest.length >= 3 && /[aeiouy]/.test(rest) ? rest : undefined;
  };
  const rest = w.endsWith("ing") ? withoutSuffix("ing") : w.endsWith("ed") && w.length > 4 ? withoutSuffix("ed") : undefined;
  if (rest !== undefined) {
    w = rest;
    // shipped → shipp → ship; but billed → bill, passed → pass.
    const last = w.at(-1) ?? "";
    if (w.length >= 5 && last === w.at(-2) && /[bcdfgkmnprtvz]/.test(last)) w = w.slice(0, -1);
    else if (w.length >= 7 && w.endsWith("ll")) w = w.slice(0, -1);
  }
  if (w.endsWith("e") && w.length > 4) w = w.slice(0, -1);
  return w;
}

function trigrams(word: string): string[] {
  const marked = `<${word}>`;
  const out: string[] = [];
  for (let i = 0; i + 3 <= marked.length; i++) out.push(marked.slice(i, i + 3));
  return out;
}

/** A feature's signed bucket, +(i+1) or −(i+1): signs make collisions cancel out on average instead of piling up. */
function bucket(feature: string, dimensions: number): number {
  // FNV-1a over UTF-16 code units, then murmur3's finaliser to spread the bits.
  let h = 0x811c9dc5;
  for (let i = 0; i < feature.length; i++) {
    h ^= feature.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  const index = (h >>> 1) % dimensions;
  return h & 1 ? index + 1 : -(index + 1);
}

function normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i] * v[i];
  if (sum === 0) return v;
  const scale = 1 / Math.sqrt(sum);
  for (let i = 0; i < v.length; i++) v[i] *= scale;
  return v;
}

// ---- AI SDK -----------------------------------------------------------------------------------------------------

/** Vectors of OpenAI's models, when `dimensions` does not shorten them. */
const OPENAI_DIMENSIONS: Record<string, number> = {
  "text-embedding-3-small": 1536,
  "text-embedding-3-large": 3072,
  "text-embedding-ada-002": 1536,
};
/** Texts per request, and characters per request (≈ 4 characters a token, well under OpenAI's 300k tokens). */
const BATCH_TEXTS = 256;
/** One retry (after the SDK's 2 s backoff) rides out a blip; more would hold a recall for 6 s on a server that is down. */
const RETRIES = 1;
const BATCH_CHARS = 400_000;

/** An embedding model through the AI SDK. A missing key or a bad URL fails the first call, not the setup, as for
 * language models: describing a project never needs its secrets. */
export function sdkEmbedder(settings: EmbedderSettings, env: NodeJS.ProcessEnv): Embedder {
  const provider = settings.provider;
  if (provider === "hashed") return hashedEmbedder({ dimensions: settings.dimensions });
  const model = settings.model ?? (provider === "openai" ? "text-embedding-3-small" : undefined);
  if (!model) {
    throw new OutpostError(
      "invalid_project",
      "memory.embedder: openai-compatible needs a model",
      "name the embedding model the server serves, e.g. model: nomic-embed-text (Ollama)",
    );
  }
  if (provider === "openai-compatible" && !settings.baseUrl) {
    throw new OutpostError(
      "invalid_project",
      `memory.embedder: openai-compatible model ${model} needs a base_url`,
      "e.g. base_url: http://localhost:11434/v1 (Ollama) or http://localhost:8000/v1 (vLLM)",
    );
  }
  const dimensions = settings.dimensions ?? (provider === "openai" ? OPENAI_DIMENSIONS[model] : undefined);
  if (dimensions === undefined || !Number.isInteger(dimensions) || dimensions < 1) {
    throw new OutpostError(
      "invalid_project",
      `memory.embedder: say how long the vectors of ${provider} model ${model} are`,
      "set dimensions: to the model's vector length, e.g. 768 for nomic-embed-text, 1024 for bge-m3",
    );
  }

  const keyEnv = settings.apiKeyEnv ?? (provider === "openai" ? "OPENAI_API_KEY" : undefined);
  const apiKey = keyEnv ? env[keyEnv] || undefined : undefined;
  const endpoint = settings.baseUrl ? displayUrl(settings.baseUrl) : "https://api.openai.com/v1";
  const label = `memory embedder ${provider} ${model} at ${endpoint}`;
  const urlProblem = settings.baseUrl ? baseUrlProblem(settings.baseUrl) : undefined;
  const setupProblem = urlProblem
    ? new OutpostError("invalid_project", `${label}: base_url ${urlProblem}`)
    : keyEnv && !apiKey
      ? new OutpostError("unavailable", `${label}: no API key`, `set the ${keyEnv} environment variable`)
      : undefined;

  let sdkModel: EmbeddingModel | undefined;
  const modelOf = (): EmbeddingModel => {
    sdkModel ??=
      provider === "openai"
        ? createOpenAI({ apiKey, baseURL: settings.baseUrl }).embedding(model)
        : createOpenAICompatible({ name: "memory-embedder", baseURL: settings.baseUrl ?? "", apiKey }).embeddingModel(model);
    return sdkModel;
  };
  // Only OpenAI's own API shortens vectors on request; elsewhere `dimensions` describes the model.
  const providerOptions = provider === "openai" && settings.dimensions ? { openai: { dimensions: settings.dimensions } } : undefined;

  const embedBatch = async (values: string[], signal?: AbortSignal): Promise<Float32Array[]> => {
    let embeddings: number[][];
    try {
      ({ embeddings } = await embedMany({
        model: modelOf(),
        values,
        abortSignal: signal,
        providerOptions,
        maxParallelCalls: 1,
        maxRetries: RETRIES,
      }));
    } catch (error) {
      if (signal?.aborted) throw error;
      throw embedderError(error, label, keyEnv, apiKey);
    }
    if (embeddings.length !== values.length) {
      throw new OutpostError("unavailable", `${label} answered ${embeddings.length} vectors for ${values.length} texts`);
    }
    return embeddings.map((e) => {
      if (e.length !== dimensions) {
        throw new OutpostError(
          "invalid_project",
          `${label} returned vectors of ${e.length} dimensions, but memory.embedder.dimensions is ${dimensions}`,
          `set dimensions: ${e.length} (vectors already stored under another size are not compared with these)`,
        );
      }
      // Not every server normalises; recall compares by inner product.
      return normalize(Float32Array.from(e));
    });
  };

  return {
    id: `${provider}:${model}:${dimensions}`,
    dimensions,
    async embed(texts, signal) {
      if (texts.length === 0) return [];
      if (setupProblem) throw setupProblem;
      const out: Float32Array[] = [];
      for (const batch of batches(texts)) out.push(...(await embedBatch(batch, signal)));
      return out;
    },
  };
}

/** Consecutive batches of at most BATCH_TEXTS texts and (beyond a single long text) BATCH_CHARS characters. */
function batches(texts: string[]): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  let chars = 0;
  for (const t of texts) {
    if (current.length > 0 && (current.length >= BATCH_TEXTS || chars + t.length > BATCH_CHARS)) {
      out.push(current);
      current = [];
      chars = 0;
    }
    current.push(t);
    chars += t.length;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** A failed embedding call as a message that names the model, the endpoint and what to check. */
function embedderError(error: unknown, label: string, keyEnv: string | undefined, apiKey: string | undefined): OutpostError {
  const cause = RetryError.isInstance(error) ? error.lastError : error;
  const credentials = keyEnv ? `the ${keyEnv} environment variable` : "the server's credentials (api_key_env)";
  const redact = (s: string) => (apiKey && apiKey.length >= 4 ? s.split(apiKey).join("[redacted]") : s);
  const fail = (message: string, hint: string) => new OutpostError("unavailable", redact(`${label}: ${message}`), hint);
  if (APICallError.isInstance(cause)) {
    const status = cause.statusCode;
    const detail = providerMessage(cause);
    if (status === undefined) return fail(`cannot reach the server (${detail})`, "check base_url and that the server is running");
    if (status === 401 || status === 403)
      return fail(`the server refused the credentials (HTTP ${status}: ${detail})`, `check ${credentials}`);
    if (status === 404) {
      return fail(`not found (HTTP 404: ${detail})`, "check that the model name is right and served there, and that base_url ends in /v1");
    }
    if (status === 429) return fail(`rate limited (HTTP 429: ${detail})`, "try again later, or raise the quota");
    if (status >= 200 && status < 300) {
      return fail(
        `answered HTTP ${status} with something that is not an embeddings response`,
        "check that base_url points at the API itself",
      );
    }
    return fail(`the request failed (HTTP ${status}: ${detail})`, "check the model name and the memory.embedder settings");
  }
  if (LoadAPIKeyError.isInstance(cause)) return fail("no API key", `set ${credentials}`);
  const message = cause instanceof Error ? cause.message : String(cause);
  return fail(`the call failed: ${message}`, "check base_url, the model name and that the server is running");
}

function providerMessage(error: APICallError): string {
  try {
    const body = JSON.parse(error.responseBody ?? "") as { error?: { message?: unknown } | string };
    const m = typeof body.error === "string" ? body.error : body.error?.message;
    if (typeof m === "string" && m) return m.slice(0, 300);
  } catch {
    // not JSON
  }
  return error.message.slice(0, 300);
}
