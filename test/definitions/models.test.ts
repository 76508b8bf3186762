import { describe, expect, it } from "vitest";
import { OutpostError } from "../../src/core/errors.js";
import { expandEnv, loadProject, type ModelAlias, parseDuration, selectCandidate } from "../../src/definitions/index.js";
import { closest } from "../../src/definitions/suggest.js";
import { writeProject } from "./fixtures.js";

const SETTINGS = `version: 1
workspace: test
models:
  assistant:
    - provider: openai
      model: gpt-4.1-mini
      requires_env: [OPENAI_API_KEY]
      api_key_env: OPENAI_API_KEY
      price: { input_per_mtok: 0.4, output_per_mtok: 1.6 }
      timeout: 30s
      max_retries: 5
    - provider: openai-compatible
      model: \${LLM_MODEL:-llama3.1}
      base_url: \${LLM_BASE_URL}/v1
      headers: { X-Team: "\${TEAM:-support}" }
    - provider: scripted
  strict:
    provider: anthropic
    model: claude-sonnet-4-5
    requires_env: [ANTHROPIC_API_KEY]
defaults:
  model: assistant
`;

async function aliases(env: NodeJS.ProcessEnv): Promise<Map<string, ModelAlias>> {
  return (await loadProject(await writeProject({ "outpost.yaml": SETTINGS }), { env })).models;
}

describe("model aliases", () => {
  it("turns candidates into ModelCandidates with defaults and expanded env references", async () => {
    const models = await aliases({ LLM_BASE_URL: "http://gpu-1:8000" });
    const [openai, compatible, scripted] = models.get("assistant")?.candidates ?? [];
    expect(openai).toEqual({
      provider: "openai",
      model: "gpt-4.1-mini",
      apiKeyEnv: "OPENAI_API_KEY",
      requiresEnv: ["OPENAI_API_KEY"],
      location: "external",
      price: { inputPerMTok: 0.4, outputPerMTok: 1.6 },
      timeoutMs: 30_000,
      maxRetries: 5,
    });
    expect(compatible).toMatchObject({
      provider: "openai-compatible",
      model: "llama3.1",
      baseUrl: "http://gpu-1:8000/v1",
      headers: { "X-Team": "support" },
      // referenced without a default, so the candidate needs it
      requiresEnv: ["LLM_BASE_URL"],
      location: "local",
      price: { inputPerMTok: 0, outputPerMTok: 0 },
      timeoutMs: 60_000,
      maxRetries: 3,
    });
    expect(scripted).toMatchObject({ provider: "scripted", model: "scripted", requiresEnv: [], location: "local" });
    expect(models.get("strict")?.candidates).toHaveLength(1);
  });

  it("selects the first candidate whose required variables are all set and non-empty", async () => {
    const env = { LLM_BASE_URL: "http://gpu-1:8000", OPENAI_API_KEY: "" };
    const models = await aliases(env);
    const assistant = models.get("assistant") as ModelAlias;
    expect(selectCandidate(assistant, env).provider).toBe("openai-compatible");
    expect(selectCandidate(assistant, { ...env, OPENAI_API_KEY: "sk-test" }).provider).toBe("openai");
    expect(selectCandidate(assistant, {}).provider).toBe("scripted");
  });

  it("explains which variables to set when no candidate is usable", async () => {
    const models = await aliases({});
    const error = (() => {
      try {
        selectCandidate(models.get("strict") as ModelAlias, {});
      } catch (caught) {
        return caught as OutpostError;
      }
    })();
    expect(error).toBeInstanceOf(OutpostError);
    expect(error?.message).toBe('no model for alias "strict" can be used here: anthropic claude-sonnet-4-5 needs ANTHROPIC_API_KEY');
    expect(error?.hint).toContain("provider: scripted");
  });
});

describe("expandEnv", () => {
  it("expands ${VAR} and ${VAR:-default}, reporting variables used without a default", () => {
    expect(expandEnv("${A}/${B:-x}/${C:-}/$D", { A: "1", B: "" })).toEqual({ text: "1/x//$D", required: ["A"] });
    expect(expandEnv("${MISSING}", {})).toEqual({ text: "", required: ["MISSING"] });
  });
});

describe("parseDuration", () => {
  it("reads units, combinations and plain milliseconds", () => {
    expect(parseDuration("90s")).toBe(90_000);
    expect(parseDuration("10m")).toBe(600_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("1.5s")).toBe(1_500);
    expect(parseDuration("2d")).toBe(172_800_000);
    expect(parseDuration(1500)).toBe(1500);
    expect(parseDuration("1500")).toBe(1500);
  });

  it("rejects text that is not a duration, saying what to write", () => {
    expect(() => parseDuration("10 minutes")).toThrow('"10 minutes" is not a duration — use e.g. 90s, 10m, 1h');
    expect(() => parseDuration("m10")).toThrow("is not a duration");
    expect(() => parseDuration("")).toThrow("is not a duration");
    expect(() => parseDuration(-5)).toThrow("is not a duration");
  });
});

describe("did you mean", () => {
  it("finds typos, transpositions included, and stays quiet for unrelated words", () => {
    const tools = ["orders.lookup", "orders.refund", "tickets.add_note"];
    expect(closest("orders.lookp", tools)).toBe("orders.lookup");
    expect(closest("ordres.refund", tools)).toBe("orders.refund");
    expect(closest("weather.forecast", tools)).toBeUndefined();
    expect(closest("opena1", ["openai", "anthropic"])).toBe("openai");
    expect(closest("fast", ["assistant"])).toBeUndefined();
  });
});
