import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OutpostError } from "../../src/core/errors.js";
import { createEmbedder, hashedEmbedder, sdkEmbedder, stemWord } from "../../src/memory/embedding.js";
import { fakeEmbedding, httpError, type OpenAIServer, startOpenAIServer } from "../helpers/openai-server.js";

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i], 0);
const norm = (a: Float32Array) => Math.sqrt(dot(a, a));

describe("hashedEmbedder", () => {
  const embedder = hashedEmbedder();
  const one = async (text: string) => (await embedder.embed([text]))[0];
  const similarity = async (a: string, b: string) => dot(await one(a), await one(b));

  it("names itself with its size and gives unit vectors of that size", async () => {
    expect(embedder.id).toBe("hashed-v1:256");
    expect(embedder.dimensions).toBe(256);
    const [v] = await embedder.embed(["Refund the shipping fee for order 105708"]);
    expect(v).toHaveLength(256);
    expect(norm(v)).toBeCloseTo(1, 5);
    expect(hashedEmbedder({ dimensions: 64 }).id).toBe("hashed-v1:64");
  });

  it("is deterministic across calls and instances", async () => {
    const text = "Maria Lopez prefers to be contacted by email";
    expect(Array.from(await one(text))).toEqual(Array.from((await hashedEmbedder().embed([text]))[0]));
  });

  it("gives all zeros for text without a content word", async () => {
    for (const text of ["", "   ", "the and of it", "¡¿!?"]) expect(norm(await one(text))).toBe(0);
  });

  it("finds inflections, typos and compounds close, and unrelated text far", async () => {
    const unrelated = await similarity("refunds for damaged monitors", "office chair stock in Leeds");
    expect(await similarity("refunds for damaged monitors", "refund a damaged monitor")).toBeGreaterThan(0.6);
    expect(await similarity("the replacement was received", "replacment recieved")).toBeGreaterThan(0.4);
    expect(await similarity("keeps a wishlist", "wish list")).toBeGreaterThan(0.3);
    expect(unrelated).toBeLessThan(0.15);
  });

  it("keeps identifiers apart: order 105708 is not order 105709", async () => {
    const same = await similarity("status of order 105708", "order 105708 shipped");
    const neighbour = await similarity("status of order 105708", "order 105709 shipped");
    expect(same).toBeGreaterThan(neighbour + 0.3);
  });

  it("ignores case and accents", async () => {
    expect(await similarity("Café Crème ORDER", "cafe creme order")).toBeCloseTo(1, 5);
  });

  it("stems plurals, -ed, -ing and a final e the same way", () => {
    expect(["refund", "refunds", "refunded", "refunding"].map(stemWord)).toEqual(["refund", "refund", "refund", "refund"]);
    expect(["ship", "ships", "shipped", "shipping"].map(stemWord)).toEqual(["ship", "ship", "ship", "ship"]);
    expect(["invoice", "invoices", "invoiced", "invoicing"].map(stemWord)).toEqual(["invoic", "invoic", "invoic", "invoic"]);
    expect(["deliveries", "addresses", "billed", "passed", "status", "string"].map(stemWord)).toEqual([
      "delivery",
      "address",
      "bill",
      "pass",
      "status",
      "string",
    ]);
  });

  it("rejects a size it cannot use", () => {
    expect(() => hashedEmbedder({ dimensions: 8 })).toThrow(/16 to 4096/);
    expect(() => hashedEmbedder({ dimensions: 100.5 })).toThrow(OutpostError);
  });
});

describe("sdkEmbedder over the OpenAI embeddings wire format", () => {
  let server: OpenAIServer;
  beforeAll(async () => {
    server = await startOpenAIServer({ apiKey: "sk-test-embeddings-key", embeddingDimensions: 12 });
  });
  afterAll(() => server.close());
  beforeEach(() => server.reset());
  const env = { EMBED_KEY: "sk-test-embeddings-key" };

  const compatible = (extra: Partial<Parameters<typeof sdkEmbedder>[0]> = {}) =>
    sdkEmbedder(
      { provider: "openai-compatible", model: "nomic-embed-text", baseUrl: server.url, apiKeyEnv: "EMBED_KEY", dimensions: 12, ...extra },
      env,
    );

  it("embeds through an OpenAI-compatible server, normalising what it answers", async () => {
    const embedder = compatible();
    expect(embedder.id).toBe("openai-compatible:nomic-embed-text:12");
    expect(embedder.dimensions).toBe(12);
    const vectors = await embedder.embed(["late parcel", "refund request"]);
    expect(server.requests).toHaveLength(1);
    const request = server.requests[0];
    expect(request.path).toBe("/v1/embeddings");
    expect(request.headers.authorization).toBe("Bearer sk-test-embeddings-key");
    expect(request.body).toMatchObject({ model: "nomic-embed-text", input: ["late parcel", "refund request"] });
    // The model's own size: not asked to shorten.
    expect(request.body.dimensions).toBeUndefined();
    vectors.forEach((v, i) => {
      const raw = Float32Array.from(fakeEmbedding(["late parcel", "refund request"][i], 12));
      expect(norm(v)).toBeCloseTo(1, 5);
      expect(dot(v, raw) / norm(raw)).toBeCloseTo(1, 5);
    });
  });

  it("sends large inputs in batches, in order", async () => {
    const texts = Array.from({ length: 600 }, (_, i) => `note ${i}`);
    const vectors = await compatible().embed(texts);
    expect(server.requests.map((r) => r.body.input.length)).toEqual([256, 256, 88]);
    expect(vectors).toHaveLength(600);
    const raw = Float32Array.from(fakeEmbedding("note 599", 12));
    expect(dot(vectors[599], raw) / norm(raw)).toBeCloseTo(1, 5);
  });

  it("asks OpenAI for shortened vectors when dimensions are set", async () => {
    const embedder = sdkEmbedder(
      { provider: "openai", model: "text-embedding-3-small", baseUrl: server.url, apiKeyEnv: "EMBED_KEY", dimensions: 12 },
      env,
    );
    expect(embedder.id).toBe("openai:text-embedding-3-small:12");
    const [v] = await embedder.embed(["invoice dispute"]);
    expect(v).toHaveLength(12);
    expect(server.requests[0].body).toMatchObject({ model: "text-embedding-3-small", dimensions: 12, encoding_format: "float" });
  });

  it("knows the size of OpenAI's models, and reads OPENAI_API_KEY by default", async () => {
    const embedder = sdkEmbedder({ provider: "openai", model: "text-embedding-3-large", baseUrl: server.url }, {});
    expect(embedder.dimensions).toBe(3072);
    await expect(embedder.embed(["x"])).rejects.toThrow(/no API key/);
    await expect(embedder.embed(["x"])).rejects.toMatchObject({ hint: "set the OPENAI_API_KEY environment variable" });
    expect(server.requests).toHaveLength(0);
  });

  it("says which setting to fix when the vectors have another size", async () => {
    const error = await compatible({ dimensions: 768 })
      .embed(["x"])
      .catch((e) => e);
    expect(error).toBeInstanceOf(OutpostError);
    expect(error.message).toContain("nomic-embed-text");
    expect(error.message).toMatch(/12 dimensions.*768/);
    expect(error.hint).toMatch(/dimensions: 12/);
  });

  it("names the model, the endpoint and what to check when the endpoint fails", async () => {
    server.enqueueEmbeddings(httpError(404, { message: "model 'nomic-embed-text' not found, try pulling it first" }));
    const notFound = await compatible()
      .embed(["x"])
      .catch((e) => e);
    expect(notFound).toBeInstanceOf(OutpostError);
    expect(notFound.message).toContain(`memory embedder openai-compatible nomic-embed-text at ${server.url}`);
    expect(notFound.message).toContain("not found, try pulling it first");
    expect(notFound.hint).toMatch(/model name/);

    const wrongKey = await sdkEmbedder(
      { provider: "openai-compatible", model: "nomic-embed-text", baseUrl: server.url, apiKeyEnv: "EMBED_KEY", dimensions: 12 },
      { EMBED_KEY: "sk-wrong-key-123456" },
    )
      .embed(["x"])
      .catch((e) => e);
    expect(wrongKey.message).toMatch(/refused the credentials \(HTTP 401/);
    expect(wrongKey.message).not.toContain("sk-wrong-key-123456");
    expect(wrongKey.hint).toBe("check the EMBED_KEY environment variable");
  });

  it("says so when the server cannot be reached", async () => {
    const down = await startOpenAIServer();
    const url = down.url;
    await down.close();
    const error = await sdkEmbedder({ provider: "openai-compatible", model: "m", baseUrl: url, dimensions: 4 }, {})
      .embed(["x"])
      .catch((e) => e);
    expect(error).toBeInstanceOf(OutpostError);
    expect(error.message).toContain(`at ${url}`);
    expect(error.hint).toMatch(/base_url/);
  });

  it("refuses settings it cannot work with, saying what to add", () => {
    expect(() => sdkEmbedder({ provider: "openai-compatible", model: "m", dimensions: 4 }, {})).toThrow(/needs a base_url/);
    expect(() => sdkEmbedder({ provider: "openai-compatible", baseUrl: server.url, dimensions: 4 }, {})).toThrow(/needs a model/);
    expect(() => sdkEmbedder({ provider: "openai-compatible", model: "bge-m3", baseUrl: server.url }, {})).toThrow(
      /how long the vectors of openai-compatible model bge-m3 are/,
    );
  });

  it("is the hashed embedder when nothing is configured", () => {
    expect(createEmbedder(undefined, {}).id).toBe("hashed-v1:256");
    expect(createEmbedder({ provider: "hashed", dimensions: 128 }, {}).id).toBe("hashed-v1:128");
    expect(createEmbedder({ provider: "openai-compatible", model: "m", baseUrl: server.url, dimensions: 4 }, {}).id).toBe(
      "openai-compatible:m:4",
    );
  });
});
