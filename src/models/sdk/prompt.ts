/**
 * Outpost ChatMessages ⇄ AI SDK provider messages (LanguageModelV3Prompt, the
 * provider-level form of the SDK's ModelMessage), and ToolSpecs → function tools.
 */
import type { ChatMessage, ToolSpec } from "../types.js";
import type { ToolNameTable } from "./tool-names.js";
import type { V3Message, V3Prompt, V3Tool } from "./v3.js";

export interface PromptOptions {
  /** Bedrock rejects system messages after the first non-system one: send those as user text. */
  systemOnlyAtStart?: boolean;
}

export function toPrompt(messages: ChatMessage[], names: ToolNameTable, options: PromptOptions = {}): V3Prompt {
  const prompt: V3Prompt = [];
  let seenNonSystem = false;
  for (const m of messages) {
    switch (m.role) {
      case "system":
        if (seenNonSystem && options.systemOnlyAtStart) {
          prompt.push({ role: "user", content: [{ type: "text", text: m.content }] });
        } else {
          prompt.push({ role: "system", content: m.content });
        }
        break;
      case "user":
        seenNonSystem = true;
        prompt.push({ role: "user", content: [{ type: "text", text: m.content }] });
        break;
      case "assistant": {
        seenNonSystem = true;
        const content: Extract<V3Message, { role: "assistant" }>["content"] = [];
        if (m.content !== "") content.push({ type: "text", text: m.content });
        for (const call of m.toolCalls ?? []) {
          content.push({
            type: "tool-call",
            toolCallId: call.id,
            toolName: names.encode(call.name),
            input: argumentsAsInput(call.arguments),
          });
        }
        // An empty assistant turn carries nothing, and several providers reject empty content.
        if (content.length > 0) prompt.push({ role: "assistant", content });
        break;
      }
      case "tool": {
        seenNonSystem = true;
        const part = {
          type: "tool-result" as const,
          toolCallId: m.toolCallId,
          toolName: names.encode(m.toolName),
          output: m.isError ? { type: "error-text" as const, value: m.content } : { type: "text" as const, value: m.content },
        };
        const last = prompt[prompt.length - 1];
        // Results of one assistant turn travel together (Anthropic and Bedrock want them in one message).
        if (last?.role === "tool") last.content.push(part);
        else prompt.push({ role: "tool", content: [part] });
        break;
      }
    }
  }
  return prompt;
}

/**
 * A past tool call's arguments as the provider wants them: a JSON object.
 * Malformed arguments (the runtime fed an error back for them) are sent as `{}`,
 * because Anthropic and Bedrock reject anything but an object here.
 */
function argumentsAsInput(raw: string): unknown {
  try {
    const value: unknown = JSON.parse(raw);
    if (value !== null && typeof value === "object" && !Array.isArray(value)) return value;
  } catch {
    // fall through
  }
  return {};
}

export function toTools(tools: ToolSpec[], names: ToolNameTable): V3Tool[] {
  return tools.map((t) => ({
    type: "function" as const,
    name: names.encode(t.name),
    description: t.description,
    inputSchema: t.inputSchema as Extract<V3Tool, { type: "function" }>["inputSchema"],
  }));
}
