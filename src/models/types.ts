/**
 * The model contract: what the runtime needs from any language model.
 * Provider-neutral on purpose — the runtime never sees AI SDK types, so a
 * scripted model, a local vLLM and a hosted model are interchangeable.
 */

/** A tool call as the model produced it. `arguments` is the raw JSON text, unparsed:
 * malformed output must reach the runtime intact so it can be fed back to the model. */
export interface ToolCallRequest {
  id: string;
  /** Outpost tool name, e.g. `orders.lookup` (providers may encode it on the wire). */
  name: string;
  arguments: string;
}

export type ChatMessage =
  | { role: "system"; content: string }
  | { role: "user"; content: string }
  | { role: "assistant"; content: string; toolCalls?: ToolCallRequest[] }
  | { role: "tool"; toolCallId: string; toolName: string; content: string; isError?: boolean };

/** A tool as offered to the model. `inputSchema` is a JSON Schema object. */
export interface ToolSpec {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

export interface ModelRequest {
  /** The agent on whose behalf the call is made (the scripted model picks its script by it). */
  agent: string;
  messages: ChatMessage[];
  tools: ToolSpec[];
  maxOutputTokens?: number;
  /** `turn` (default): the agent's next step. `compaction`: write the running summary of older turns
   * (runtime/context-window.ts); the answer is the summary, and no tools are offered. */
  purpose?: "turn" | "compaction";
  /** Assistant turns since the latest user message that the prompt no longer shows (folded into the summary):
   * the scripted model counts them to stay on its script; providers ignore it. */
  omittedTurns?: number;
  signal?: AbortSignal;
  /** Streaming: called with each text delta as it arrives. */
  onTextDelta?: (delta: string) => void;
}

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
}

export interface ModelResponse {
  text: string;
  toolCalls: ToolCallRequest[];
  usage: TokenUsage;
  /** e.g. "stop", "tool-calls", "length". */
  finishReason: string;
  /** The provider's model id that answered, e.g. "gpt-4.1-mini" or "scripted". */
  model: string;
}

export type ModelLocation = "local" | "external";

export interface ModelPrice {
  /** USD per million input tokens. */
  inputPerMTok: number;
  /** USD per million output tokens. */
  outputPerMTok: number;
}

export interface ModelClient {
  /** The alias from outpost.yaml, e.g. "fast". */
  readonly alias: string;
  /** "openai" | "anthropic" | "amazon-bedrock" | "openai-compatible" | "scripted". */
  readonly provider: string;
  readonly modelId: string;
  readonly location: ModelLocation;
  readonly price: ModelPrice;
  /** Tokens one call may take, prompt and answer (set by clients built outside outpost.yaml; else the candidate's). */
  readonly contextWindow?: number;
  generate(request: ModelRequest): Promise<ModelResponse>;
}

/** A model failure the runtime can classify without knowing the provider. */
export class ModelError extends Error {
  constructor(
    message: string,
    readonly code: "timeout" | "rate_limited" | "server_error" | "bad_request" | "auth" | "network" | "no_script" | "unknown",
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = "ModelError";
  }
}

export function costUsd(usage: TokenUsage, price: ModelPrice): number {
  return (usage.inputTokens * price.inputPerMTok + usage.outputTokens * price.outputPerMTok) / 1_000_000;
}
