/**
 * A ModelClient over an AI SDK provider: one call = doGenerate (or doStream
 * when the caller wants text deltas), wrapped in Outpost's own retry loop,
 * per-call deadline and error mapping.
 *
 * Retries: on 429, 5xx/408/409 and network errors, up to candidate.maxRetries
 * times, with exponential backoff (0.5 s, 1 s, 2 s … capped at 8 s, with
 * jitter). A Retry-After / retry-after-ms header replaces the backoff; if it
 * asks for more than 60 s, or more than the call's remaining time, we stop and
 * surface `rate_limited` (retryable) so the runtime can wait without holding
 * a process. A streamed call that already emitted text is never retried (the
 * caller would see the text twice).
 *
 * Timeout: candidate.timeoutMs bounds the whole generate() call, retries and
 * backoff included. When it fires the request is aborted and the call fails
 * with ModelError "timeout" (retryable: the runtime decides whether to try
 * again). Cancellation through request.signal aborts the request too and
 * rejects with the signal's reason (an AbortError by default), not a ModelError.
 */
import { APICallError } from "ai";
import type { ModelCandidate } from "../../definitions/types.js";
import type { ModelClient, ModelLocation, ModelPrice, ModelRequest, ModelResponse, ToolCallRequest } from "../types.js";
import { ModelError } from "../types.js";
import { type ErrorContext, toModelError } from "./errors.js";
import { type PromptOptions, toPrompt, toTools } from "./prompt.js";
import { ToolNameTable } from "./tool-names.js";
import type { V3CallOptions, V3Model, V3Usage } from "./v3.js";

const INITIAL_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 8_000;
const MAX_RETRY_AFTER_MS = 60_000;

export interface SdkClientConfig {
  alias: string;
  candidate: ModelCandidate;
  model: V3Model;
  setupError?: ModelError;
  errorContext: ErrorContext;
  promptOptions: PromptOptions;
}

export class SdkModelClient implements ModelClient {
  readonly alias: string;
  readonly provider: string;
  readonly modelId: string;
  readonly location: ModelLocation;
  readonly price: ModelPrice;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;

  constructor(private readonly config: SdkClientConfig) {
    const c = config.candidate;
    this.alias = config.alias;
    this.provider = c.provider;
    this.modelId = c.model;
    this.location = c.location;
    this.price = c.price;
    this.timeoutMs = c.timeoutMs > 0 ? c.timeoutMs : 60_000;
    this.maxRetries = Math.max(0, Math.floor(c.maxRetries));
  }

  async generate(request: ModelRequest): Promise<ModelResponse> {
    if (this.config.setupError) throw this.config.setupError;
    request.signal?.throwIfAborted();

    const names = new ToolNameTable(request.tools.map((t) => t.name));
    const options: V3CallOptions = {
      prompt: toPrompt(request.messages, names, this.config.promptOptions),
      tools: request.tools.length > 0 ? toTools(request.tools, names) : undefined,
      toolChoice: request.tools.length > 0 ? { type: "auto" } : undefined,
      maxOutputTokens: request.maxOutputTokens,
    };

    // One controller aborts the HTTP request on timeout or on the caller's signal.
    // (Not AbortSignal.any: with a long-lived caller signal it leaks on Node 20.)
    const deadline = Date.now() + this.timeoutMs;
    const controller = new AbortController();
    const signal = controller.signal;
    options.abortSignal = signal;
    const state = { timedOut: false };
    const onCallerAbort = () => controller.abort(request.signal?.reason);
    request.signal?.addEventListener("abort", onCallerAbort, { once: true });
    const timer = setTimeout(() => {
      state.timedOut = true;
      controller.abort(new DOMException(`model call timed out after ${this.timeoutMs} ms`, "TimeoutError"));
    }, this.timeoutMs);

    try {
      for (let attempt = 0; ; attempt++) {
        const progress = { emitted: false };
        try {
          return request.onTextDelta ? await this.stream(options, names, request.onTextDelta, progress) : await this.once(options, names);
        } catch (error) {
          this.throwIfAborted(request.signal, state.timedOut);
          const failure = toModelError(error, this.config.errorContext);
          if (!failure.retryable || progress.emitted || attempt >= this.maxRetries) {
            throw attempt > 0 ? withAttempts(failure, attempt + 1) : failure;
          }
          const wait = retryDelay(error, attempt);
          if (wait.ms > MAX_RETRY_AFTER_MS || Date.now() + wait.ms >= deadline) {
            const asked = wait.fromHeader ? `; the provider asks to retry after ${Math.ceil(wait.ms / 1000)} s` : "";
            const e = new ModelError(`${failure.message}${asked}`, failure.code, failure.retryable);
            throw attempt > 0 ? withAttempts(e, attempt + 1) : e;
          }
          try {
            await sleep(wait.ms, signal);
          } catch {
            this.throwIfAborted(request.signal, state.timedOut);
          }
        }
      }
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener("abort", onCallerAbort);
    }
  }

  private throwIfAborted(callerSignal: AbortSignal | undefined, timedOut: boolean): void {
    if (callerSignal?.aborted) throw callerSignal.reason ?? new DOMException("The operation was aborted.", "AbortError");
    if (timedOut) {
      throw new ModelError(
        `${this.config.errorContext.label}: no complete answer within ${this.timeoutMs} ms; the request was aborted. ` +
          `Check that ${this.config.errorContext.endpoint} is responsive, or raise timeoutMs for the alias in outpost.yaml`,
        "timeout",
        true,
      );
    }
  }

  private async once(options: V3CallOptions, names: ToolNameTable): Promise<ModelResponse> {
    const result = await this.config.model.doGenerate(options);
    let text = "";
    const toolCalls: ToolCallRequest[] = [];
    for (const part of result.content) {
      if (part.type === "text") text += part.text;
      else if (part.type === "tool-call" && !part.providerExecuted) toolCalls.push(toToolCall(part, names));
    }
    return {
      text,
      toolCalls,
      usage: usageOf(result.usage),
      finishReason: result.finishReason.unified,
      model: result.response?.modelId ?? this.modelId,
    };
  }

  private async stream(
    options: V3CallOptions,
    names: ToolNameTable,
    onTextDelta: (delta: string) => void,
    progress: { emitted: boolean },
  ): Promise<ModelResponse> {
    const { stream } = await this.config.model.doStream(options);
    const reader = stream.getReader();
    let text = "";
    const toolCalls: ToolCallRequest[] = [];
    let usage = { inputTokens: 0, outputTokens: 0 };
    let finishReason = "other";
    let model = this.modelId;
    try {
      for (;;) {
        const { done, value: part } = await reader.read();
        if (done) break;
        switch (part.type) {
          case "text-delta":
            if (part.delta === "") break;
            text += part.delta;
            progress.emitted = true;
            onTextDelta(part.delta);
            break;
          case "tool-call":
            if (!part.providerExecuted) toolCalls.push(toToolCall(part, names));
            break;
          case "response-metadata":
            if (part.modelId) model = part.modelId;
            break;
          case "finish":
            usage = usageOf(part.usage);
            finishReason = part.finishReason.unified;
            break;
          case "error":
            throw part.error;
        }
      }
    } catch (error) {
      reader.cancel().catch(() => {});
      throw error;
    }
    return { text, toolCalls, usage, finishReason, model };
  }
}

function toToolCall(part: { toolCallId: string; toolName: string; input: string }, names: ToolNameTable): ToolCallRequest {
  // The raw text, exactly as the model produced it (possibly malformed). An empty
  // string is how some providers say "no arguments": that is `{}`.
  const args = part.input.trim() === "" ? "{}" : part.input;
  return { id: part.toolCallId, name: names.decode(part.toolName), arguments: args };
}

function usageOf(u: V3Usage): { inputTokens: number; outputTokens: number } {
  return { inputTokens: u.inputTokens.total ?? 0, outputTokens: u.outputTokens.total ?? 0 };
}

/** Backoff for the given attempt (0-based), or what the server's Retry-After asks for. */
function retryDelay(error: unknown, attempt: number): { ms: number; fromHeader: boolean } {
  const headers = APICallError.isInstance(error) ? error.responseHeaders : undefined;
  const asked = headers ? retryAfterMs(headers) : undefined;
  if (asked !== undefined) return { ms: asked, fromHeader: true };
  const backoff = Math.min(MAX_BACKOFF_MS, INITIAL_BACKOFF_MS * 2 ** attempt);
  return { ms: backoff * (0.75 + Math.random() * 0.25), fromHeader: false };
}

function retryAfterMs(headers: Record<string, string>): number | undefined {
  const ms = headers["retry-after-ms"];
  if (ms !== undefined && ms.trim() !== "") {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return n;
  }
  const after = headers["retry-after"];
  if (after === undefined || after.trim() === "") return undefined;
  const seconds = Number(after);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function withAttempts(error: ModelError, attempts: number): ModelError {
  return new ModelError(`${error.message} (gave up after ${attempts} attempts)`, error.code, error.retryable);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
