/**
 * `memory.embedder` in outpost.yaml, in the real runtime on SQLite against a local server speaking the OpenAI
 * embeddings wire format: items are embedded by the configured model and recalled through it; a model that is down
 * loses no memory (written for full text, embedded once it answers again, said once in the log, never with its key);
 * and switching embedders embeds what was written before.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { httpError, type OpenAIServer, startOpenAIServer } from "../helpers/openai-server.js";
import { until } from "../helpers/until.js";
import { collectLogs } from "../server/logs.js";

const SHOP = path.resolve(import.meta.dirname, "../fixtures/shop");
const KEY = "sk-embeddings-test-key-4711";
const EMBEDDER = "openai-compatible:nomic-embed-text:12";

let server: OpenAIServer;
let root: string;
const open: Outpost[] = [];
beforeAll(async () => {
  server = await startOpenAIServer({ apiKey: KEY, embeddingDimensions: 12 });
  root = mkdtempSync(path.join(tmpdir(), "outpost-embedder-"));
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
  server.reset();
});
afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

/** The shop project, with or without the embedding model in its outpost.yaml. */
function shop(name: string, embedder: boolean): string {
  const dir = path.join(root, name);
  cpSync(SHOP, dir, { recursive: true });
  if (embedder) {
    const file = path.join(dir, "outpost.yaml");
    writeFileSync(
      file,
      `${readFileSync(file, "utf8")}
memory:
  embedder:
    provider: openai-compatible
    model: nomic-embed-text
    base_url: ${server.url}
    api_key_env: EMBED_KEY
    dimensions: 12
`,
    );
  }
  return dir;
}

async function start(projectDir: string, dataDir: string, logs = collectLogs()) {
  const project = await loadProject(projectDir);
  const o = await startOutpost({ project, dataDir, env: { EMBED_KEY: KEY }, logger: logs.logger, pollMs: 50 });
  open.push(o);
  return o;
}

const remember = (o: Outpost, text: string) =>
  o.memory.remember({ workspace: "acme", scope: "team/support", text, source: { kind: "person" }, author: "local" });

const vectors = async (o: Outpost) =>
  (await o.store.domain.db.selectFrom("memory_vectors").select(["num", "embedder"]).execute()).map((v) => v.embedder);

const embedded = () => server.requests.filter((r) => r.path === "/v1/embeddings").flatMap((r) => r.body.input as string[]);

describe("memory.embedder: an embedding model through the AI SDK", () => {
  it("embeds what is remembered and the recall's query with the configured model", async () => {
    const o = await start(shop("configured", true), mkdtempSync(path.join(root, "data-")));
    expect(o.memory.embedder.id).toBe(EMBEDDER);
    const text = "Customer 1042 wants deliveries left with the neighbour";
    const { item } = await remember(o, text);
    expect(embedded()).toContain(text);
    expect(server.requests.find((r) => r.path === "/v1/embeddings")?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(await vectors(o)).toEqual([EMBEDDER]);
    const hits = await o.memory.recall({ workspace: "acme", text, scopes: ["team/support"], limit: 5, mode: "vector" });
    expect(hits[0]?.item.id).toBe(item.id);
    expect(embedded().filter((t) => t === text)).toHaveLength(2); // the item, then the query
  });

  it("loses nothing while the model is down: written for full text, embedded once it answers, said once in the log", async () => {
    const logs = collectLogs();
    const dataDir = mkdtempSync(path.join(root, "data-"));
    const projectDir = shop("down", true);
    let o = await start(projectDir, dataDir, logs);
    // Every request fails for now (each embedding call tries twice).
    server.enqueueEmbeddings(...Array.from({ length: 40 }, () => httpError(503, { message: "model is loading" })));
    const first = await remember(o, "Order 105708 arrived with a cracked screen");
    const second = await remember(o, "Order 105709 was delivered to the wrong address");
    expect(await vectors(o)).toEqual([]);
    // Full text finds them at once (read-your-writes holds); asking for vectors only says why it cannot.
    const found = await o.memory.recall({ workspace: "acme", text: "cracked screen", scopes: ["team/support"], limit: 5 });
    expect(found.map((h) => h.item.id)).toEqual([first.item.id]);
    const error = await o.memory
      .recall({ workspace: "acme", text: "cracked screen", scopes: ["team/support"], limit: 5, mode: "vector" })
      .catch((e) => e);
    expect(error.message).toMatch(/memory embedder openai-compatible nomic-embed-text at .*HTTP 503: model is loading/);
    const warnings = logs.lines.filter((l) => String(l.msg).startsWith("memory embedder failed"));
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(logs.lines)).not.toContain(KEY);

    // The model answers again; the next process (or the next sweep) embeds what has no vector.
    server.reset();
    await o.close();
    open.splice(open.indexOf(o), 1);
    o = await start(projectDir, dataDir, logs);
    await until("both items to be embedded", async () => ((await vectors(o)).length === 2 ? true : null), 30_000);
    expect(await vectors(o)).toEqual([EMBEDDER, EMBEDDER]);
    expect(embedded().sort()).toEqual([first.item.text, second.item.text].sort());
    const hits = await o.memory.recall({ workspace: "acme", text: second.item.text, scopes: ["team/support"], limit: 1, mode: "vector" });
    expect(hits[0]?.item.id).toBe(second.item.id);
    expect(logs.lines.some((l) => l.msg === "memory items embedded" && l.items === 2)).toBe(true);
  });

  it("embeds again what was written under another embedder", async () => {
    const dataDir = mkdtempSync(path.join(root, "data-"));
    let o = await start(shop("before", false), dataDir);
    expect(o.memory.embedder.id).toBe("hashed-v1:256");
    const texts = ["Maria prefers DHL", "Jan wants invoices by post", "Sofia asked for a refund of order 100042"];
    for (const t of texts) await remember(o, t);
    expect(await vectors(o)).toEqual(["hashed-v1:256", "hashed-v1:256", "hashed-v1:256"]);
    await o.close();
    open.splice(open.indexOf(o), 1);

    o = await start(shop("after", true), dataDir);
    await until("the items to be embedded by the new model", async () => ((await vectors(o)).every((e) => e === EMBEDDER) ? true : null));
    expect((await vectors(o)).length).toBe(3);
    expect(embedded().sort()).toEqual([...texts].sort());
    // An edit is embedded at once, and only once.
    const [item] = await o.memory.list({ workspace: "acme", limit: 1 });
    server.reset();
    await o.memory.update("acme", item.id, { text: `${item.text}, never on Saturdays` }, "local");
    expect(embedded()).toEqual([`${item.text}, never on Saturdays`]);
  });
});
