/**
 * The AI SDK's provider-level model interface (LanguageModelV3), derived from
 * the `ai` package's own types so we need no extra dependency. We call models
 * at this level (doGenerate/doStream) rather than through generateText: it is
 * the only level at which a tool call's arguments are still the raw text the
 * model produced (generateText re-parses them and drops the original text).
 */
import type { LanguageModel } from "ai";

export type V3Model = Extract<LanguageModel, { specificationVersion: "v3" }>;
export type V3CallOptions = Parameters<V3Model["doGenerate"]>[0];
export type V3Prompt = V3CallOptions["prompt"];
export type V3Message = V3Prompt[number];
export type V3Tool = NonNullable<V3CallOptions["tools"]>[number];
export type V3GenerateResult = Awaited<ReturnType<V3Model["doGenerate"]>>;
export type V3StreamPart = Awaited<ReturnType<V3Model["doStream"]>>["stream"] extends ReadableStream<infer P> ? P : never;
export type V3Usage = V3GenerateResult["usage"];
