/**
 * The scripted model: deterministic, offline and stateless. Its answer depends
 * only on the request's messages, so a run resumed after a crash gets the same
 * answer it would have got before.
 *
 * A dialogue is selected by the latest user message (the first whose `when`
 * matches, case-insensitively); within it, the Nth assistant turn since that
 * user message plays `turns[N]`. Past the end, a text-only last turn repeats;
 * a last turn with tool calls is an error (the script ran out).
 */
import { readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import type { ModelClient, ModelLocation, ModelPrice, ModelRequest, ModelResponse, TokenUsage, ToolCallRequest } from "../types.js";
import { ModelError } from "../types.js";
import {
  type CompiledDialogue,
  type CompiledScript,
  type CompiledTurn,
  compileScript,
  parseScriptText,
  type ScriptObject,
} from "./script.js";
import type { TemplateScope } from "./template.js";

/** What an in-code script function returns: text, or a partial response. */
export type ScriptReply =
  | string
  | {
      text?: string;
      toolCalls?: Array<{ id?: string; name: string; arguments: string | Record<string, unknown> }>;
      finishReason?: string;
      usage?: Partial<TokenUsage>;
    };

export type ScriptFunction = (request: ModelRequest) => ScriptReply | Promise<ScriptReply>;

/**
 * An in-code script: one script for every agent, one per agent name
 * (`{ support: { dialogues: [...] } }`), or a function of the request.
 */
export type ScriptSource = ScriptObject | Record<string, ScriptObject> | ScriptFunction;

type Resolve = (request: ModelRequest) => CompiledScript | ScriptFunction;

export interface ScriptedClientInfo {
  modelId: string;
  location: ModelLocation;
  price: ModelPrice;
  description: string;
  contextWindow?: number;
}

export class ScriptedModelClient implements ModelClient {
  readonly provider = "scripted";
  readonly modelId: string;
  readonly location: ModelLocation;
  readonly price: ModelPrice;
  readonly description: string;
  readonly contextWindow?: number;

  constructor(
    readonly alias: string,
    private readonly resolve: Resolve,
    info: ScriptedClientInfo,
  ) {
    this.modelId = info.modelId;
    this.location = info.location;
    this.price = info.price;
    this.description = info.description;
    if (info.contextWindow !== undefined) this.contextWindow = info.contextWindow;
  }

  async generate(request: ModelRequest): Promise<ModelResponse> {
    if (request.signal?.aborted) throw request.signal.reason;
    if (request.purpose === "compaction" && !this.answersCompaction(request)) return summarise(request, this.modelId);
    const script = this.resolve(request);
    const response =
      typeof script === "function" ? fromReply(await script(request), request, this.modelId) : play(script, request, this.modelId);
    if (request.onTextDelta && response.text) emitInChunks(response.text, request.onTextDelta);
    return response;
  }

  /** A function script answers every request, summaries included; a YAML script has no way to, so the built-in
   * summariser does. */
  private answersCompaction(request: ModelRequest): boolean {
    try {
      return typeof this.resolve(request) === "function";
    } catch {
      return false;
    }
  }
}

/**
 * The scripted model's summary: extractive and deterministic — the earlier summary's lines, then the first words of
 * each folded turn; past the tokens asked for, the earliest line stays (what the conversation began with) and the
 * ones after it go first. (A real model abstracts; this one shows that compaction happened, what it folded, and that
 * the budget holds.)
 */
function summarise(request: ModelRequest, model: string): ModelResponse {
  const asked = request.messages[request.messages.length - 1]?.content ?? "";
  const [, previous = "", turns = ""] = /^Summary so far:\n([\s\S]*?)\n\nTurns to fold in, oldest first:\n([\s\S]*)$/.exec(asked) ?? [];
  const lines = [
    ...previous.split("\n").filter((l) => l && l !== "(none)"),
    ...turns
      .split("\n")
      .filter((l) => l.startsWith("["))
      .map((l) => (l.length > 120 ? `${l.slice(0, 120)}…` : l)),
  ];
  // A token is at least a byte: within maxOutputTokens bytes, within maxOutputTokens tokens.
  const max = request.maxOutputTokens ?? 1_000;
  while (lines.length > 2 && Buffer.byteLength(lines.join("\n")) > max) lines.splice(1, 1);
  let text = lines.join("\n");
  while (Buffer.byteLength(text) > max) text = text.slice(0, Math.floor(text.length * 0.9));
  return {
    text,
    toolCalls: [],
    usage: { inputTokens: Math.ceil(asked.length / 4), outputTokens: Math.ceil(text.length / 4) },
    finishReason: "stop",
    model,
  };
}

// ---- sources ------------------------------------------------------------------

interface CachedScript {
  mtimeMs: number;
  size: number;
  result: CompiledScript | ModelError;
}

const SAFE_AGENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Scripts read from `<scriptsDir>/<agent>.yaml`, parsed once per file version (mtime + size). */
export function fileScripts(scriptsDir: string): Resolve {
  const cache = new Map<string, CachedScript>();
  return (request) => {
    const agent = request.agent;
    if (!SAFE_AGENT.test(agent)) {
      throw new ModelError(
        `scripted model: agent name "${agent}" cannot name a script file (letters, digits, _ . - only)`,
        "bad_request",
        false,
      );
    }
    const path = join(scriptsDir, `${agent}.yaml`);
    const stat = statSync(path, { throwIfNoEntry: false });
    if (!stat?.isFile()) {
      throw new ModelError(
        `no script for agent "${agent}": the scripted model replays ${displayPath(path)}, which does not exist. ` +
          `Create it, e.g.\n  dialogues:\n    - when: "hello"\n      turns:\n        - text: "Hi! How can I help?"\n    - turns:\n        - text: "Sorry, I only know a script."`,
        "no_script",
        false,
      );
    }
    const cached = cache.get(path);
    let result: CompiledScript | ModelError;
    if (cached && cached.mtimeMs === stat.mtimeMs && cached.size === stat.size) {
      result = cached.result;
    } else {
      try {
        result = parseScriptText(readFileSync(path, "utf8"), displayPath(path));
      } catch (e) {
        if (!(e instanceof ModelError)) throw e;
        result = e;
      }
      cache.set(path, { mtimeMs: stat.mtimeMs, size: stat.size, result });
    }
    if (result instanceof ModelError) throw result;
    return result;
  };
}

/** In-code scripts, validated and compiled once. */
export function codeScripts(source: ScriptSource): Resolve {
  if (typeof source === "function") return () => source;
  if (Array.isArray((source as ScriptObject).dialogues)) {
    const compiled = compileScript(source, "in-code script");
    return () => compiled;
  }
  const byAgent = new Map<string, CompiledScript>();
  for (const [agent, script] of Object.entries(source as Record<string, ScriptObject>)) {
    byAgent.set(agent, compileScript(script, `in-code script for agent "${agent}"`));
  }
  return (request) => {
    const script = byAgent.get(request.agent);
    if (!script) {
      throw new ModelError(
        `no in-code script for agent "${request.agent}" (scripts exist for: ${[...byAgent.keys()].join(", ") || "none"})`,
        "no_script",
        false,
      );
    }
    return script;
  };
}

function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith("..") ? rel : path;
}

// ---- playing a script ---------------------------------------------------------

interface Conversation {
  input: string;
  /** Assistant turns since the latest user message. */
  turn: number;
  /** Assistant turns in the whole request: makes tool-call ids unique per conversation. */
  assistantTurns: number;
  lastToolIndex: number;
  promptChars: number;
}

function read(request: ModelRequest): Conversation {
  const msgs = request.messages;
  let userIndex = -1;
  let turn = 0;
  let assistantTurns = 0;
  let lastToolIndex = -1;
  let promptChars = 0;
  // A handoff starts the next agent's script at its first turn: turns are counted since it too.
  let handedOff = false;
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i];
    promptChars += m.content.length;
    if (m.role === "assistant") {
      assistantTurns++;
      if (userIndex < 0 && !handedOff) turn++;
      if (m.toolCalls) for (const c of m.toolCalls) promptChars += c.name.length + c.arguments.length;
    } else if (m.role === "user") {
      if (userIndex < 0) userIndex = i;
    } else if (m.role === "tool") {
      if (lastToolIndex < 0) lastToolIndex = i;
      if (userIndex < 0 && !m.isError && m.toolName?.startsWith("handoff.")) handedOff = true;
    }
  }
  for (const t of request.tools) promptChars += t.name.length + t.description.length;
  // Turns folded into a summary still count: the script goes on where it was.
  const omitted = request.omittedTurns ?? 0;
  return {
    input: userIndex >= 0 ? msgs[userIndex].content : "",
    turn: turn + omitted,
    assistantTurns: assistantTurns + omitted,
    lastToolIndex,
    promptChars,
  };
}

function play(script: CompiledScript, request: ModelRequest, model: string): ModelResponse {
  const conv = read(request);
  let dialogue: CompiledDialogue | undefined;
  let groups: Record<string, string | undefined> | undefined;
  for (const d of script.dialogues) {
    if (d.when === undefined) {
      dialogue = d;
      break;
    }
    const m = d.when.exec(conv.input);
    if (m) {
      dialogue = d;
      groups = m.groups;
      break;
    }
  }
  if (!dialogue) {
    throw new ModelError(
      `${script.source}: no dialogue matches the user message "${truncate(conv.input)}"; ` +
        "add a dialogue without `when` at the end as a fallback",
      "no_script",
      false,
    );
  }

  let turn = dialogue.turns[conv.turn];
  if (turn === undefined) {
    const last = dialogue.turns[dialogue.turns.length - 1];
    if (last.toolCalls.length > 0) {
      const when = dialogue.whenSource !== undefined ? ` (when: "${dialogue.whenSource}")` : "";
      throw new ModelError(
        `${script.source}: dialogues[${dialogue.index}]${when} has ${dialogue.turns.length} turn(s), but this is assistant turn ` +
          `${conv.turn + 1} since the latest user message, and the last turn calls tools rather than answering. ` +
          "Add a turn with `text:` to finish the dialogue.",
        "no_script",
        false,
      );
    }
    turn = last;
  }

  let parsedToolResult: { value: unknown } | undefined;
  const scope: TemplateScope = {
    vars: groups ? { ...groups, input: conv.input } : { input: conv.input },
    lastToolResult() {
      if (!parsedToolResult) parsedToolResult = { value: parseToolResult(request, conv.lastToolIndex) };
      return parsedToolResult.value;
    },
  };

  let calls = callsOf(turn, scope);
  if (calls.length === 0 && turn.toolCalls.length > 0 && !turn.text) {
    // Every call was for_each over an empty list: nothing to do, so the dialogue answers.
    const last = dialogue.turns[dialogue.turns.length - 1];
    if (last.toolCalls.length > 0) {
      throw new ModelError(
        `${script.source}: dialogues[${dialogue.index}] turn ${conv.turn + 1} calls nothing (its for_each lists are empty), ` +
          "and the dialogue's last turn calls tools rather than answering. End the dialogue with a turn with `text:`.",
        "no_script",
        false,
      );
    }
    turn = last;
    calls = [];
  }
  const text = turn.text ? turn.text.render(scope) : "";
  let outputChars = text.length;
  const toolCalls: ToolCallRequest[] = calls.map((c, i) => {
    outputChars += c.name.length + c.args.length;
    return { id: `call_${conv.assistantTurns}_${i}`, name: c.name, arguments: c.args };
  });
  return {
    text,
    toolCalls,
    usage: { inputTokens: Math.ceil(conv.promptChars / 4), outputTokens: Math.ceil(outputChars / 4) },
    finishReason: toolCalls.length > 0 ? "tool-calls" : "stop",
    model,
  };
}

/** A turn's tool calls with their arguments rendered: a `for_each` call once per element of its list. */
function callsOf(turn: CompiledTurn, scope: TemplateScope): Array<{ name: string; args: string }> {
  const out: Array<{ name: string; args: string }> = [];
  for (const c of turn.toolCalls) {
    if (!c.forEach) {
      out.push({ name: c.name, args: c.args.render(scope) });
      continue;
    }
    const list = c.forEach.value?.(scope);
    for (const item of Array.isArray(list) ? list : []) out.push({ name: c.name, args: c.args.render({ ...scope, item }) });
  }
  return out;
}

/** The latest tool result's JSON, or its raw text when it is not JSON. */
function parseToolResult(request: ModelRequest, index: number): unknown {
  // `read` found the latest tool message after the latest user message; look further back if there was none.
  let i = index;
  if (i < 0) for (i = request.messages.length - 1; i >= 0 && request.messages[i].role !== "tool"; i--);
  if (i < 0) return undefined;
  const content = readsData(request.messages[i].content);
  try {
    return JSON.parse(content);
  } catch {
    return content;
  }
}

/**
 * The data inside the runtime's untrusted-output markers (security/guardrails wrapUntrusted): a first line
 * opening the block, a note, the data, a closing line. The scripted model reads the data as a model would.
 */
export function readsData(content: string): string {
  if (!content.startsWith("<<untrusted-data ")) return content;
  const lines = content.split("\n");
  if (lines.length < 3 || !lines[lines.length - 1].startsWith("<<end-untrusted-data ")) return content;
  return lines.slice(2, -1).join("\n");
}

function fromReply(reply: ScriptReply, request: ModelRequest, model: string): ModelResponse {
  const r = typeof reply === "string" ? { text: reply } : reply;
  const conv = read(request);
  const text = r.text ?? "";
  let outputChars = text.length;
  const toolCalls = (r.toolCalls ?? []).map((c, i): ToolCallRequest => {
    const args = typeof c.arguments === "string" ? c.arguments : JSON.stringify(c.arguments);
    outputChars += c.name.length + args.length;
    return { id: c.id ?? `call_${conv.assistantTurns}_${i}`, name: c.name, arguments: args };
  });
  return {
    text,
    toolCalls,
    usage: {
      inputTokens: r.usage?.inputTokens ?? Math.ceil(conv.promptChars / 4),
      outputTokens: r.usage?.outputTokens ?? Math.ceil(outputChars / 4),
    },
    finishReason: r.finishReason ?? (toolCalls.length > 0 ? "tool-calls" : "stop"),
    model,
  };
}

const WORDS = /\s*\S+/g;

/** Emits text a few words at a time, like a model streaming. The chunks concatenate to the text. */
function emitInChunks(text: string, onTextDelta: (delta: string) => void): void {
  const words = text.match(WORDS);
  if (!words) {
    onTextDelta(text);
    return;
  }
  let consumed = 0;
  for (let i = 0; i < words.length; i += 3) {
    let chunk = words[i] + (words[i + 1] ?? "") + (words[i + 2] ?? "");
    if (i + 3 >= words.length) chunk = text.slice(consumed); // trailing whitespace
    consumed += chunk.length;
    onTextDelta(chunk);
  }
}

function truncate(s: string, max = 80): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
