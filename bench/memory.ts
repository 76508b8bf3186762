/**
 * Memory recall at 10k, 100k and 1M items of one scope, through the store an agent's recall goes through
 * (`MemoryStore` on the embedded SQLite store, hashed embedder): ingestion by `remember`, the HNSW index built on the
 * first vector recall, recall latency by path (full text, vector, hybrid; workspace-wide and within a subject),
 * recall@5 of the planted facts at each size, and the vector path's top 10 against exact search. Runs on its own too:
 *   npx tsx bench/memory.ts [--quick] [--sizes=20000,50000]
 *
 * The corpus is the planted-facts fixture (test/fixtures/memory) scaled up with its distractors (skewed customers:
 * the busiest has ~9% of all items); the queries are its ~100 planted-fact queries, each asked 3 times after a
 * warm-up round.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { hashedEmbedder, MemoryStore } from "../src/memory/index.js";
import type { RecallQuery } from "../src/memory/types.js";
import { exactSearch, fromBlob } from "../src/memory/vector-index.js";
import { openStore, type Store } from "../src/store/index.js";
import { plantedCorpus } from "../test/fixtures/memory/planted-facts.js";
import { quantile } from "./driver.js";

const WORKSPACE = "acme";
const SCOPE = "team/support";
const WRITERS = 32;
const ROUNDS = 3;
/** Queries whose exact top 10 is computed, for the vector path's recall@10. */
const EXACT_QUERIES = 50;
const MODES = ["fts", "vector", "hybrid"] as const;
type Mode = (typeof MODES)[number];

export interface Latency {
  p50: number;
  p95: number;
}

export interface MemorySize {
  items: number;
  /** `remember` calls per second, WRITERS at once. */
  ingestPerSec: number;
  dbMb: number;
  /** The HNSW index of the scope, built on the first vector recall. */
  indexBuildS: number;
  indexRssMb: number;
  /** ms per recall, by path: the whole scope, and within the fact's subject. */
  workspace: Record<Mode, Latency>;
  subject: Record<Mode, Latency>;
  /** Share of the planted facts among the first 5 hits, by path. */
  recallAt5: Record<Mode, number>;
  recallAt5Subject: Record<Mode, number>;
  /** The vector path's first 10 against exact cosine search over every vector of the scope. */
  vectorRecallAt10: number;
  facts: number;
  subjectFacts: number;
}

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const rssMb = () => process.memoryUsage().rss / 2 ** 20;

export const memorySizes = (quick: boolean): number[] => (quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000]);

export async function memoryRecall(sizes: number[], log: (line: string) => void = () => undefined): Promise<MemorySize[]> {
  const out: MemorySize[] = [];
  for (const size of sizes) {
    const t = performance.now();
    out.push(await measure(size));
    log(`  ${size.toLocaleString("en-US")} items measured in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  return out;
}

async function measure(size: number): Promise<MemorySize> {
  const dataDir = mkdtempSync(join(tmpdir(), "outpost-bench-memory-"));
  const store = await openStore({ dataDir });
  let built = { ms: 0, size: 0 };
  const embedder = hashedEmbedder();
  const memory = new MemoryStore(store.domain, {
    embedder,
    recall: {
      // Wait for the build rather than answer the first queries by full text alone.
      buildWaitMs: 3_600_000,
      observe: (e) => {
        if (e.kind === "built") built = { ms: e.ms, size: e.size };
      },
    },
  });
  try {
    const { items, facts } = plantedCorpus({ distractors: Math.max(0, size - 350), seed: 7 });
    // ---- ingestion: WRITERS callers remembering at once, as agents of a busy workspace would
    const idOf = new Map<number, string>();
    let next = 0;
    const ingestStart = performance.now();
    await Promise.all(
      Array.from({ length: WRITERS }, async () => {
        while (next < items.length) {
          const item = items[next++];
          const { item: saved } = await memory.remember({
            workspace: WORKSPACE,
            scope: SCOPE,
            subject: item.subject,
            text: item.text,
            tags: item.tags,
            source: { kind: "person" },
            author: "bench",
          });
          idOf.set(item.num, saved.id);
        }
      }),
    );
    const ingestPerSec = items.length / ((performance.now() - ingestStart) / 1000);
    const subjectOf = new Map(items.map((i) => [i.num, i.subject]));
    const planted = facts.map((f) => ({ ...f, id: idOf.get(f.num) as string, subject: subjectOf.get(f.num) ?? null }));
    const inSubject = planted.filter((f) => f.subject !== null);

    const ask = (text: string, mode: Mode, subject: string | null, limit = 10) => {
      const q: RecallQuery = { workspace: WORKSPACE, text, scopes: [SCOPE], limit, mode };
      if (subject) q.subject = subject;
      return memory.recall(q);
    };

    // ---- the index, built by the first vector recall
    gc();
    const rssBefore = rssMb();
    await ask(planted[0].query, "vector", null);
    gc();
    const indexRssMb = rssMb() - rssBefore;
    if (built.size !== items.length) throw new Error(`memory bench: the index holds ${built.size} of ${items.length} vectors`);

    // ---- latency and recall@5, by path
    const workspace = {} as Record<Mode, Latency>;
    const subject = {} as Record<Mode, Latency>;
    const recallAt5 = {} as Record<Mode, number>;
    const recallAt5Subject = {} as Record<Mode, number>;
    for (const mode of MODES) {
      workspace[mode] = await timed(planted, (f) => ask(f.query, mode, null));
      subject[mode] = await timed(inSubject, (f) => ask(f.query, mode, f.subject));
      recallAt5[mode] = await foundAt5(planted, (f) => ask(f.query, mode, null, 5));
      recallAt5Subject[mode] = await foundAt5(inSubject, (f) => ask(f.query, mode, f.subject, 5));
    }

    // ---- the vector path against exact search over every stored vector (one pass for all sample queries)
    const sample = planted.slice(0, EXACT_QUERIES);
    const queryVectors = await embedder.embed(sample.map((f) => f.query));
    const tenth = await exactTenth(store, queryVectors);
    let agree = 0;
    for (const [i, f] of sample.entries()) {
      const hits = await ask(f.query, "vector", null, 10);
      // By similarity, not by id: the corpus repeats texts, and among equal vectors any is a right answer.
      const similarities = await similarityOf(
        store,
        queryVectors[i],
        hits.map((h) => h.item.id),
      );
      agree += similarities.filter((s) => s >= tenth[i] - 1e-5).length;
    }
    const vectorRecallAt10 = agree / (sample.length * 10);

    await store.close();
    return {
      items: items.length,
      ingestPerSec,
      dbMb: statSync(join(dataDir, "outpost.db")).size / 2 ** 20,
      indexBuildS: built.ms / 1000,
      indexRssMb,
      workspace,
      subject,
      recallAt5,
      recallAt5Subject,
      vectorRecallAt10,
      facts: planted.length,
      subjectFacts: inSubject.length,
    };
  } finally {
    await store.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** ms per call over the queries: one warm-up round, then ROUNDS timed rounds. */
async function timed<T>(queries: T[], fn: (q: T) => Promise<unknown>): Promise<Latency> {
  for (const q of queries) await fn(q);
  const ms: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const q of queries) {
      const t = performance.now();
      await fn(q);
      ms.push(performance.now() - t);
    }
  }
  return { p50: quantile(ms, 0.5), p95: quantile(ms, 0.95) };
}

async function foundAt5<T extends { id: string }>(facts: T[], fn: (f: T) => Promise<{ item: { id: string } }[]>): Promise<number> {
  let found = 0;
  for (const f of facts) if ((await fn(f)).some((h) => h.item.id === f.id)) found++;
  return found / facts.length;
}

/** Each query's 10th best similarity over every vector of the scope, reading them from the store a page at a time. */
async function exactTenth(store: Store, queries: Float32Array[]): Promise<number[]> {
  const tops = queries.map(() => [] as number[]);
  let after = 0;
  for (;;) {
    const rows = await store.domain.db
      .selectFrom("memory_vectors as v")
      .innerJoin("memory_items as i", "i.num", "v.num")
      .select(["v.num", "v.vector"])
      .where("i.workspace", "=", WORKSPACE)
      .where("i.scope", "=", SCOPE)
      .where("v.num", ">", after)
      .orderBy("v.num")
      .limit(50_000)
      .execute();
    if (rows.length === 0) break;
    const page = rows.map((r) => ({ label: Number(r.num), vector: fromBlob(r.vector) }));
    queries.forEach((q, i) => {
      const best = exactSearch(q, page, 10).map((h) => h.score);
      tops[i] = [...tops[i], ...best].sort((a, b) => b - a).slice(0, 10);
    });
    after = Number(rows[rows.length - 1].num);
  }
  return tops.map((t) => t[9] ?? Number.NEGATIVE_INFINITY);
}

/** The cosine similarity of each item's stored vector to the query (vectors are unit length). */
async function similarityOf(store: Store, query: Float32Array, ids: string[]): Promise<number[]> {
  if (ids.length === 0) return [];
  const rows = await store.domain.db
    .selectFrom("memory_vectors as v")
    .innerJoin("memory_items as i", "i.num", "v.num")
    .select(["v.vector"])
    .where("i.id", "in", ids)
    .execute();
  return rows.map((r) => {
    const v = fromBlob(r.vector);
    let dot = 0;
    for (let j = 0; j < v.length; j++) dot += v[j] * query[j];
    return dot;
  });
}

const size = (n: number) => (n >= 1_000_000 ? `${(n / 1_000_000).toFixed(0)}M` : `${(n / 1_000).toFixed(0)}k`);
const ms = (l: Latency) => `${l.p50.toFixed(2)} / ${l.p95.toFixed(2)}`;
const share = (n: number) => n.toFixed(2);

export function memorySection(sizes: MemorySize[]): string {
  const lines: [string, (r: MemorySize) => string][] = [
    [`ingest: \`remember\`, ${WRITERS} writers (items/s)`, (r) => r.ingestPerSec.toFixed(0)],
    ["database file (MB)", (r) => r.dbMb.toFixed(0)],
    ["HNSW index: built on first vector recall (s)", (r) => r.indexBuildS.toFixed(1)],
    ["HNSW index: memory (RSS growth, MB)", (r) => r.indexRssMb.toFixed(0)],
    ...MODES.map((m): [string, (r: MemorySize) => string] => [`${m}, whole scope: ms p50 / p95`, (r) => ms(r.workspace[m])]),
    ...MODES.map((m): [string, (r: MemorySize) => string] => [`${m}, within the subject: ms p50 / p95`, (r) => ms(r.subject[m])]),
    ...MODES.map((m): [string, (r: MemorySize) => string] => [`recall@5, ${m}, whole scope`, (r) => share(r.recallAt5[m])]),
    ...MODES.map((m): [string, (r: MemorySize) => string] => [`recall@5, ${m}, within the subject`, (r) => share(r.recallAt5Subject[m])]),
    ["vector path: recall@10 against exact search", (r) => r.vectorRecallAt10.toFixed(3)],
  ];
  for (const [name, value] of lines) console.log(`${name.padEnd(48)} ${sizes.map((r) => value(r).padStart(18)).join("")}`);
  const first = sizes[0];
  return `## Memory recall

Workload: one scope (\`team/support\`) of ${sizes.map((r) => size(r.items)).join(", ")} items — the planted-facts corpus of the
retrieval tests (${first?.facts ?? "~100"} facts among business distractors about the same customers, orders and products; the
busiest customer has ~9% of all items) — written through \`MemoryStore.remember\` on the embedded SQLite store by
${WRITERS} callers at once, each item its own transaction (row, version, FTS5 entry, hashed-embedder vector). Recall goes
through \`MemoryStore.recall\`, as an agent's does: the query embedded, FTS5 bm25 and the scope's in-process HNSW
index, fused by reciprocal rank, every hit's row read and checked. The index is built on the first vector recall
(a process that starts does the same). Each of the planted-fact queries is asked ${ROUNDS} times after a warm-up round,
one at a time: over the whole scope, and within the fact's subject (${first?.subjectFacts ?? "~67"} facts have one — how an agent
asks about the customer at hand).

| measure | ${sizes.map((r) => size(r.items)).join(" | ")} |
|---|${sizes.map(() => "---:").join("|")}|
${lines.map(([name, value]) => `| ${name} | ${sizes.map(value).join(" | ")} |`).join("\n")}

recall@5 is the share of planted facts among the first five hits (the retrieval-quality test measures it on 5k
distractors). It falls as the scope grows: more distractors share a fact's words, drawn as they are from the same
customers, products and phrases; within the fact's subject it falls less. The vector path's top 10 is compared with an exact cosine search over
every vector of the scope for ${EXACT_QUERIES} queries, by similarity (a hit counts when it is as close as the exact 10th: the
corpus repeats texts, and among equal vectors any is right); it is what HNSW loses, plus the similarity floor (0.2 for the
hashed embedder) dropping the odd far neighbour. Hybrid runs both paths, so it costs about their sum.
`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const arg = process.argv.find((a) => a.startsWith("--sizes="));
  const sizes = arg ? arg.slice("--sizes=".length).split(",").map(Number) : memorySizes(process.argv.includes("--quick"));
  console.log(memorySection(await memoryRecall(sizes, console.log)));
}
