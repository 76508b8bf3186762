/**
 * Recall's vector path through the in-process HNSW indexes (src/memory/ann.ts), on real SQLite: the index is used
 * above the threshold and agrees with exact search; it follows this process's writes at once and another process's
 * after catch-up (a second MemoryStore on the same database, its clock moved instead of waited for); isolation
 * between scopes and workspaces holds through it. No timings.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AnnEvent } from "../../src/memory/ann.js";
import { hashedEmbedder, type MemoryKind, MemoryStore, type RecallQuery, type RememberInput } from "../../src/memory/index.js";
import type { RecallOptions } from "../../src/memory/recall.js";
import { openStore, type Store } from "../../src/store/index.js";
import { plantedCorpus } from "../fixtures/memory/planted-facts.js";

const person = { kind: "person" as const };
const THRESHOLD = 50;
const SCOPE = "team/support";

let dataDir: string;
let store: Store;
afterAll(async () => {
  await store?.close();
  await rm(dataDir, { recursive: true, force: true });
});
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "outpost-ann-"));
  store = await openStore({ dataDir });
});

/** A memory store with its own indexes (as another process would have), its clock, and what it searched. */
function memoryStore(options: RecallOptions = {}) {
  const events: AnnEvent[] = [];
  let now = 1_000_000;
  const memory = new MemoryStore(store.domain, {
    embedder: hashedEmbedder(),
    recall: { threshold: THRESHOLD, buildWaitMs: 60_000, clock: () => now, observe: (e) => events.push(e), ...options },
  });
  const searched = () => events.filter((e): e is Extract<AnnEvent, { kind: "searched" }> => e.kind === "searched");
  return {
    memory,
    events,
    /** The way the last search of the scope's items of a kind went, and how many vectors it searched. */
    last: (scope = SCOPE, of: MemoryKind = "fact") => searched().findLast((e) => e.scope === scope && e.of === of),
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const remember = (memory: MemoryStore, workspace: string, text: string, extra: Partial<RememberInput> = {}) =>
  memory.remember({ workspace, scope: SCOPE, text, source: person, author: "key:k1", ...extra });

const vector = (memory: MemoryStore, workspace: string, text: string, extra: Partial<RecallQuery> = {}) =>
  memory.recall({ workspace, text, scopes: [SCOPE], limit: 10, mode: "vector", ...extra });

/** Writes the planted-facts corpus (a small one) into the workspace; item num → memory id. */
async function plant(memory: MemoryStore, workspace: string) {
  const corpus = plantedCorpus({ distractors: 150, seed: 3 });
  const ids = new Map<number, string>();
  for (const item of corpus.items) {
    const { item: written } = await remember(memory, workspace, item.text, { subject: item.subject, tags: item.tags });
    ids.set(item.num, written.id);
  }
  return { ...corpus, ids };
}

describe("vector recall through the HNSW index", () => {
  it("takes the index above the threshold, and finds what exact search finds", async () => {
    const a = memoryStore();
    const exact = memoryStore({ threshold: 1_000_000 });
    const { facts, items } = await plant(a.memory, "planted");
    expect(items.length).toBeGreaterThan(THRESHOLD * 4);
    let sameFirst = 0;
    let overlap = 0;
    for (const fact of facts) {
      const viaIndex = (await vector(a.memory, "planted", fact.query)).map((h) => h.item.id);
      expect(a.last()).toMatchObject({ via: "index", size: items.length });
      const viaRows = (await vector(exact.memory, "planted", fact.query)).map((h) => h.item.id);
      expect(exact.last()).toMatchObject({ via: "exact", size: items.length });
      if (viaIndex[0] === viaRows[0]) sameFirst++;
      overlap += viaIndex.filter((id) => viaRows.includes(id)).length / Math.max(1, viaRows.length);
    }
    expect(a.events.filter((e) => e.kind === "built")).toHaveLength(1);
    // A few hundred vectors: the graph search is as good as exact (f16 may swap near-ties).
    expect(sameFirst / facts.length).toBeGreaterThanOrEqual(0.95);
    expect(overlap / facts.length).toBeGreaterThanOrEqual(0.95);
  });

  it("finds a write at once (read-your-writes), drops what is forgotten and follows a supersede", async () => {
    const a = memoryStore();
    const w = "ryw";
    for (let i = 0; i < THRESHOLD + 10; i++)
      await remember(a.memory, w, `Routine note ${i} about the weekly stock count in aisle ${i % 7}.`);
    await vector(a.memory, w, "stock count");
    expect(a.last()).toMatchObject({ via: "index", size: THRESHOLD + 10 });

    const { item } = await remember(a.memory, w, "Zebra-striped pallets go to dock Quorra.", { subject: "site:quorra", key: "pallets" });
    let hits = await vector(a.memory, w, "zebra striped pallets quorra");
    expect(a.last()).toMatchObject({ via: "index", size: THRESHOLD + 11 });
    expect(hits[0]?.item.id).toBe(item.id);

    // Superseded: the same item, a new vector in place of the old one.
    await remember(a.memory, w, "Invoices for Quorra are paid by bank transfer in euros.", { subject: "site:quorra", key: "pallets" });
    hits = await vector(a.memory, w, "quorra invoices bank transfer euros");
    expect(hits[0]?.item).toMatchObject({ id: item.id, version: 2 });
    expect(a.last()?.size).toBe(THRESHOLD + 11);
    hits = await vector(a.memory, w, "zebra striped pallets");
    expect(hits.map((h) => h.item.id)).not.toContain(item.id);

    // Edited by a person: the same.
    await a.memory.update(w, item.id, { text: "Quorra's gate code changes every Monday at noon." }, "key:editor");
    hits = await vector(a.memory, w, "quorra gate code monday");
    expect(hits[0]?.item).toMatchObject({ id: item.id, version: 3 });

    expect(await a.memory.forget(w, item.id, "key:k1")).toBe(true);
    hits = await vector(a.memory, w, "quorra gate code monday");
    expect(hits.map((h) => h.item.id)).not.toContain(item.id);
    expect(a.last()?.size).toBe(THRESHOLD + 10);

    // Erasure of a subject reaches the index too.
    for (let i = 0; i < 3; i++)
      await remember(a.memory, w, `Customer 77 asked about the loyalty card, call ${i}.`, { subject: "customer:77" });
    await vector(a.memory, w, "loyalty card");
    expect(a.last()?.size).toBe(THRESHOLD + 13);
    await a.memory.eraseSubject(w, "customer:77", "key:dpo");
    hits = await vector(a.memory, w, "customer 77 loyalty card");
    expect(hits.map((h) => h.item.subject)).not.toContain("customer:77");
    expect(a.last()?.size).toBe(THRESHOLD + 10);
  });

  it("sees another process's writes, edits and deletes after catching up", async () => {
    const a = memoryStore();
    const b = memoryStore();
    const w = "two-processes";
    for (let i = 0; i < THRESHOLD + 5; i++)
      await remember(b.memory, w, `Shelf ${i} in the Harlow depot holds spare parts for model ${i % 9}.`);
    await vector(a.memory, w, "spare parts");
    expect(a.last()).toMatchObject({ via: "index", size: THRESHOLD + 5 });

    const { item } = await remember(b.memory, w, "The Harlow depot's forklift Vortigern needs a new battery.");
    // Within the catch-up interval, A's index has not looked: full text finds the write, the index not yet.
    const hybrid = await a.memory.recall({ workspace: w, text: "forklift vortigern battery", scopes: [SCOPE], limit: 5 });
    expect(hybrid[0]?.item.id).toBe(item.id);
    expect(hybrid[0]?.ranks.vector).toBeUndefined();
    a.advance(1_000);
    let hits = await vector(a.memory, w, "forklift vortigern battery");
    expect(hits[0]?.item.id).toBe(item.id);
    expect(a.last()?.size).toBe(THRESHOLD + 6);

    // Edited over there: found by its new text once A catches up.
    await b.memory.update(w, item.id, { text: "Vortigern was sold to a scrapyard in Margate." }, "key:editor");
    a.advance(1_000);
    hits = await vector(a.memory, w, "vortigern sold scrapyard margate");
    expect(hits[0]?.item).toMatchObject({ id: item.id, version: 2 });

    // Forgotten over there: never returned, and gone from A's index once a search met it.
    await b.memory.forget(w, item.id, "key:k1");
    hits = await vector(a.memory, w, "vortigern sold scrapyard margate");
    expect(hits.map((h) => h.item.id)).not.toContain(item.id);
    await vector(a.memory, w, "vortigern");
    expect(a.last()?.size).toBe(THRESHOLD + 5);

    // And the other way round: B builds its own index, and sees A's writes after its catch-up.
    await vector(b.memory, w, "spare parts");
    expect(b.last()).toMatchObject({ via: "index" });
    const { item: fromA } = await remember(a.memory, w, "Morwenna from Harlow orders gaskets by the crate.");
    b.advance(1_000);
    hits = await vector(b.memory, w, "morwenna gaskets crate");
    expect(hits[0]?.item.id).toBe(fromA.id);
  });

  it("keeps scopes and workspaces apart through the index", async () => {
    const a = memoryStore();
    const places = [
      ["iso-1", "team/support"],
      ["iso-1", "team/finance"],
      ["iso-2", "team/support"],
    ] as const;
    for (const [workspace, scope] of places) {
      for (let i = 0; i < THRESHOLD + 5; i++) {
        await remember(a.memory, workspace, `Routine ${scope} note ${i} for ${workspace}: the printer on floor ${i % 4} jams.`, { scope });
      }
      await remember(a.memory, workspace, `The secret handshake of ${workspace} ${scope} is three taps.`, { scope });
    }
    for (const [workspace, scope] of places) {
      const hits = await a.memory.recall({ workspace, text: "secret handshake three taps", scopes: [scope], limit: 50, mode: "vector" });
      expect(a.last(scope)).toMatchObject({ via: "index", size: THRESHOLD + 6 });
      expect(hits[0]?.item.text).toBe(`The secret handshake of ${workspace} ${scope} is three taps.`);
      expect(hits.every((h) => h.item.workspace === workspace && h.item.scope === scope)).toBe(true);
    }
    // Two scopes at once: both searched, merged by similarity.
    const both = await a.memory.recall({
      workspace: "iso-1",
      text: "secret handshake three taps",
      scopes: ["team/support", "team/finance"],
      limit: 2,
      mode: "vector",
    });
    expect(both.map((h) => h.item.scope).sort()).toEqual(["team/finance", "team/support"]);
    expect(a.events.filter((e) => e.kind === "built")).toHaveLength(3);
  });

  it("searches a subject exactly when it has few items, through the index (its items only) when many", async () => {
    const a = memoryStore();
    const w = "subjects";
    for (let i = 0; i < THRESHOLD * 3; i++) {
      const subject = i % 2 === 0 ? "customer:big" : `customer:${i}`;
      await remember(a.memory, w, `Call log ${i}: the customer asked about delivery slot ${i % 5}.`, { subject });
    }
    await remember(a.memory, w, "Customer 3 wants the delivery slot moved to the evening.", { subject: "customer:3" });
    let hits = await vector(a.memory, w, "delivery slot evening", { subject: "customer:3" });
    expect(a.last()).toMatchObject({ via: "exact", size: 2 });
    expect(hits.map((h) => h.item.subject)).toEqual(["customer:3", "customer:3"]);
    expect(hits[0]?.item.text).toContain("evening");

    hits = await vector(a.memory, w, "delivery slot", { subject: "customer:big", limit: 100 });
    expect(a.last()).toMatchObject({ via: "index" });
    expect(hits.length).toBeGreaterThan(10);
    expect(hits.every((h) => h.item.subject === "customer:big")).toBe(true);
  });

  it("keeps facts and knowledge apart: asking for facts searches the facts, however many paragraphs are near", async () => {
    const a = memoryStore();
    const w = "filters";
    // Far more paragraphs than the vector path's candidates, each closer to the query than anything but the facts.
    const paragraphs = 3 * THRESHOLD;
    for (let i = 0; i < paragraphs; i++) await remember(a.memory, w, `Refund for order policy paragraph ${i}.`, { kind: "knowledge" });
    await remember(a.memory, w, "Refund for order 12 was approved.", { classification: "restricted" });
    await remember(a.memory, w, "Refund for order 13 was declined.");
    const facts = await vector(a.memory, w, "refund for order", { kinds: ["fact"] });
    expect(a.last(SCOPE, "fact")).toMatchObject({ via: "exact", size: 2 });
    expect(a.events.filter((e) => e.kind === "searched" && e.of === "knowledge")).toEqual([]);
    expect(facts.map((h) => h.item.text).sort()).toEqual(["Refund for order 12 was approved.", "Refund for order 13 was declined."]);
    // Classification is checked on the rows.
    const cleared = await vector(a.memory, w, "refund for order", { kinds: ["fact"], maxClassification: "confidential" });
    expect(cleared.map((h) => h.item.text)).toEqual(["Refund for order 13 was declined."]);
    // Both kinds: the paragraphs through their index, the facts exactly, merged by similarity.
    const all = await vector(a.memory, w, "refund for order", { limit: 200 });
    expect(a.last(SCOPE, "knowledge")).toMatchObject({ via: "index", size: paragraphs });
    expect(all.filter((h) => h.item.kind === "fact")).toHaveLength(2);
    expect(all.filter((h) => h.item.kind === "knowledge").length).toBeGreaterThan(40);
    // Knowledge alone: through its index, the nearest paragraph first.
    const knowledge = await vector(a.memory, w, "refund for order policy paragraph 7", { kinds: ["knowledge"] });
    expect(knowledge[0]?.item.text).toBe("Refund for order policy paragraph 7.");
  });

  it("goes on without a scope's vectors while its index is built, and uses it once ready", async () => {
    const a = memoryStore({ buildWaitMs: 0 });
    const w = "building";
    for (let i = 0; i < THRESHOLD + 5; i++) await remember(a.memory, w, `Bin ${i} holds screws of size M${i % 8}.`);
    const first = await a.memory.recall({ workspace: w, text: "screws of size M3", scopes: [SCOPE], limit: 5 });
    expect(a.last()).toMatchObject({ via: "building" });
    expect(first.length).toBeGreaterThan(0); // full text answered
    expect(first.every((h) => h.ranks.vector === undefined)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 0));
    for (let i = 0; i < 100 && !a.events.some((e) => e.kind === "built"); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    await vector(a.memory, w, "screws of size M3");
    expect(a.last()).toMatchObject({ via: "index", size: THRESHOLD + 5 });
  });

  it("evicts the least recently searched index beyond the vector budget", async () => {
    const a = memoryStore({ maxVectors: THRESHOLD + 20 });
    for (const scope of ["team/one", "team/two"]) {
      for (let i = 0; i < THRESHOLD + 5; i++) await remember(a.memory, "budget", `Note ${i} of ${scope} about pallets.`, { scope });
      await a.memory.recall({ workspace: "budget", text: "pallets", scopes: [scope], limit: 5, mode: "vector" });
    }
    expect(a.events.filter((e) => e.kind === "evicted")).toMatchObject([{ scope: "team/one" }]);
    const hits = await a.memory.recall({ workspace: "budget", text: "pallets", scopes: ["team/one"], limit: 5, mode: "vector" });
    expect(hits.length).toBe(5);
    expect(a.events.filter((e) => e.kind === "built").map((e) => e.kind === "built" && e.scope)).toEqual([
      "team/one",
      "team/two",
      "team/one",
    ]);
  });

  it("does not fuse vector hits below the similarity floor", async () => {
    const a = memoryStore();
    const w = "floor";
    await remember(a.memory, w, "The Leeds warehouse closes at 18:00 on Fridays.");
    await remember(a.memory, w, "Customer 1042 prefers refunds to store credit.");
    expect(await vector(a.memory, w, "how do I bake sourdough bread")).toEqual([]);
    const all = new MemoryStore(store.domain, { embedder: hashedEmbedder(), recall: { minSimilarity: -1 } });
    expect(await vector(all, w, "how do I bake sourdough bread")).toHaveLength(2);
  });
});
