import { countTokens as cl100k } from "gpt-tokenizer/encoding/cl100k_base";
import { countTokens as o200k } from "gpt-tokenizer/encoding/o200k_base";
import { describe, expect, it } from "vitest";
import { defaultContextWindow, encodingFor, tokenBound, tokenCounter } from "../../src/models/tokens.js";

const prose = Array.from(
  { length: 400 },
  (_, i) => `Order ${105_700 + i} shipped with DHL on 2026-11-${String((i % 28) + 1).padStart(2, "0")}; refund of €${i}.95 — “ok” 🙂\n`,
).join("");

describe("token counting", () => {
  it("counts exactly as OpenAI's encodings do, for the models that use them, long texts included", () => {
    expect(prose.length).toBeGreaterThan(20_000);
    expect(tokenCounter("openai", "gpt-4o-mini").count(prose)).toBe(o200k(prose));
    expect(tokenCounter("openai", "gpt-4.1").count(prose)).toBe(o200k(prose));
    expect(tokenCounter("openai", "gpt-4").count(prose)).toBe(cl100k(prose));
    expect(tokenCounter("openai", "gpt-4o").name).toBe("o200k_base");
  });

  it("estimates other families above the stand-in encoding, never above the byte bound", () => {
    const counter = tokenCounter("anthropic", "claude-sonnet-4");
    expect(encodingFor("anthropic", "claude-sonnet-4")).toEqual({ encoding: "o200k_base", margin: 1.2 });
    expect(counter.count(prose)).toBe(Math.ceil(o200k(prose) * 1.2));
    expect(counter.count("a")).toBeLessThanOrEqual(tokenBound("a"));
    expect(counter.name).toContain("estimate");
  });

  it("counts a long run without spaces in pieces, never fewer tokens than the whole", () => {
    const run = "y".repeat(20_000);
    const counter = tokenCounter("openai", "gpt-4o");
    expect(counter.count(run)).toBeGreaterThanOrEqual(o200k(run));
    expect(counter.count(run)).toBeLessThanOrEqual(o200k(run) + 20);
    // A megabyte of it: counted at all (whole, it would take minutes), and bounded by its bytes.
    const huge = "y".repeat(1_000_000);
    expect(counter.count(huge)).toBeGreaterThan(200_000);
    expect(counter.count(huge)).toBeLessThanOrEqual(tokenBound(huge));
    const emoji = "🙂".repeat(5_000);
    expect(counter.count(emoji)).toBeGreaterThanOrEqual(o200k(emoji));
  });

  it("knows the windows of well-known models, and is cautious about the rest", () => {
    expect(defaultContextWindow("openai", "gpt-4.1-mini")).toBe(1_047_576);
    expect(defaultContextWindow("openai", "gpt-4o")).toBe(128_000);
    expect(defaultContextWindow("openai-compatible", "llama3.1")).toBe(128_000);
    expect(defaultContextWindow("openai-compatible", "some-local-model")).toBe(32_768);
  });
});
