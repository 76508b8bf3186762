/**
 * Token counting per model, for context windows: OpenAI's BPE encodings (gpt-tokenizer, pure JS, offline) for
 * the models that use them, and the same encoding with a safety margin for every other model, whose tokenizers
 * are not available offline (Claude, Llama, Mistral, …).
 *
 * Counting is exact where it matters and free where it does not: a byte-level BPE token covers at least one byte,
 * so a text's UTF-8 length bounds its token count from above. `fitsIn` answers from that bound when it can and
 * only tokenizes when the bound is over the limit — so prompts far below their window never load an encoding
 * (~0.4 s and ~20 MB, once per process).
 */
import { createRequire } from "node:module";

export type Encoding = "o200k_base" | "cl100k_base";

export interface TokenCounter {
  /** e.g. "o200k_base" or "o200k_base×1.2 (estimate)". */
  readonly name: string;
  /** Tokens of the text (an upper estimate for models without a known tokenizer). */
  count(text: string): number;
}

/** Tokens a chat message costs beyond its text (role and separators, as OpenAI's chat format counts them). */
export const MESSAGE_OVERHEAD = 4;

const require = createRequire(import.meta.url);
const encoders = new Map<Encoding, (text: string) => number>();

function encoder(encoding: Encoding): (text: string) => number {
  let count = encoders.get(encoding);
  if (!count) {
    // Loaded on first use (synchronously: counting sits inside a pure computation of the prompt).
    const mod = require(`gpt-tokenizer/cjs/encoding/${encoding}`) as { countTokens(text: string): number };
    count = (text: string) => {
      let total = 0;
      for (const piece of pieces(text)) total += mod.countTokens(piece);
      return total;
    };
    encoders.set(encoding, count);
  }
  return count;
}

/** Longest piece handed to the tokenizer at once, in characters. */
const PIECE = 1_000;

/**
 * The text in pieces of at most PIECE characters, cut just before a single space between two non-spaces where there
 * is one. BPE merges are quadratic in the length of a word, and a run without spaces can be a whole input (a
 * megabyte of "yyy…" takes ten minutes to count whole, under a second in pieces). Both encodings' pre-tokenizers
 * always start a new token at such a space (" word", " 42", " —"), so those cuts change no count; a run longer than
 * a piece is cut inside, which can only add tokens.
 */
function* pieces(text: string): Generator<string> {
  let start = 0;
  while (text.length - start > PIECE) {
    let end = start + PIECE;
    let at = end;
    while (at > start + PIECE / 2 && !wordStart(text, at)) at--;
    if (at > start + PIECE / 2) end = at;
    // Never between the halves of a surrogate pair.
    else if (/[\uDC00-\uDFFF]/.test(text[end] as string)) end--;
    yield text.slice(start, end);
    start = end;
  }
  yield text.slice(start);
}

const isSpace = (c: string | undefined) => c === undefined || /\s/.test(c);
const wordStart = (text: string, at: number) => text[at] === " " && !isSpace(text[at - 1]) && !isSpace(text[at + 1]);

/** The encoding a model uses, and the margin its count needs when the encoding is only a stand-in. */
export function encodingFor(provider: string, model: string): { encoding: Encoding; margin: number } {
  const id = model.toLowerCase();
  if (/(^|\/)(gpt-4(?!o|\.1)|gpt-3\.5)/.test(id)) return { encoding: "cl100k_base", margin: 1 };
  if (provider === "openai" || provider === "scripted" || /(^|\/)(gpt-4o|gpt-4\.1|gpt-5|o[134](-|$)|gpt-oss)/.test(id)) {
    return { encoding: "o200k_base", margin: 1 };
  }
  // Another family's tokenizer: o200k with a margin. Claude and Llama tokenizers produce up to ~15 % more tokens
  // than o200k on English and code; 1.2 keeps the estimate above them.
  return { encoding: "o200k_base", margin: 1.2 };
}

export function tokenCounter(provider: string, model: string): TokenCounter {
  const { encoding, margin } = encodingFor(provider, model);
  const name = margin === 1 ? encoding : `${encoding}×${margin} (estimate)`;
  return {
    name,
    count(text) {
      if (text.length === 0) return 0;
      const exact = encoder(encoding)(text);
      return margin === 1 ? exact : Math.min(Buffer.byteLength(text), Math.ceil(exact * margin));
    },
  };
}

/** A bound on a text's tokens that needs no tokenizer: its UTF-8 length (every BPE token holds at least a byte). */
export const tokenBound = (text: string): number => Buffer.byteLength(text);

/**
 * The default context window of well-known models, in tokens, when the candidate does not say (`context_window`).
 * Unknown models get 32 768: small enough to be safe for most local models, and easy to raise in outpost.yaml.
 */
export function defaultContextWindow(provider: string, model: string): number {
  const id = model.toLowerCase();
  if (provider === "scripted") return 128_000;
  if (/gpt-4\.1/.test(id)) return 1_047_576;
  if (/gpt-5/.test(id)) return 400_000;
  if (/(^|\/)o[134]/.test(id)) return 200_000;
  if (/gpt-4o|gpt-4-turbo|chatgpt/.test(id)) return 128_000;
  if (/claude/.test(id)) return 200_000;
  if (/gpt-oss|llama-3\.[1-3]|llama3\.[1-3]|qwen2\.5|qwen3|mistral-(large|small)|mixtral/.test(id)) return 128_000;
  return 32_768;
}
