import type { ModelPrice } from "../../models/types.js";

/**
 * Characters per token assumed for a prompt before it is sent. English runs near 4 per token; code,
 * JSON and other scripts fewer. 2 over-reserves for most text — the excess returns at settle — so a
 * call is rarely let through that a cap cannot afford.
 */
export const CHARS_PER_TOKEN = 2;

/** The most a model call can cost: input estimated generously from its characters, output at its maximum. */
export function estimate(price: ModelPrice, promptChars: number, maxOutputTokens: number): { usd: number; tokens: number } {
  const input = Math.ceil(Math.max(0, promptChars) / CHARS_PER_TOKEN);
  const output = Math.max(0, Math.ceil(maxOutputTokens));
  return {
    usd: (input * price.inputPerMTok + output * price.outputPerMTok) / 1_000_000,
    tokens: input + output,
  };
}
