/**
 * Retrieval quality on the planted-facts corpus: ~100 facts among 5,000 distractors and ~250 look-alike siblings,
 * each found (or not) by full text alone (FTS5 bm25), by vectors alone (hashed embedder + HNSW) and by both fused
 * (RRF). The tables are the store's layout; the SQL is the one recall runs.
 *
 * What it measures is recall@5: is the planted item among the first five? The thresholds sit below what was
 * measured (see MEASURED) by a margin of a few facts, so an honest regression in the embedder, the query processing
 * or the fusion fails here, while a re-tuning that moves a fact or two does not.
 */
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { hashedEmbedder } from "../../src/memory/embedding.js";
import { fts5Match, ftsBody, metaToken, queryTerms } from "../../src/memory/query.js";
import { reciprocalRankFusion } from "../../src/memory/rank.js";
import { createHnswIndex, fromBlob, toBlob } from "../../src/memory/vector-index.js";
import { type FactCategory, plantedCorpus } from "../fixtures/memory/planted-facts.js";

/**
 * Measured on this corpus (seed 7), recall@5:
 *
 *   category     n   fts   vector  hybrid
 *   reworded    25   1.00   1.00    1.00
 *   inflection  12   1.00   1.00    1.00
 *   typo        12   0.92   0.92    0.92
 *   compound    10   0.90   0.90    1.00
 *   identifier  14   1.00   0.86    0.93
 *   rare-term   12   0.92   0.75    0.92
 *   synonym     15   0.93   0.60    0.80
 *   all        100   0.96   0.87    0.94
 *
 * bm25 is hard to beat on text written in the same words, and it is the stronger path here: its idf singles out an
 * identifier or a rare word that a hashed vector weighs like any other. The vector path earns its place on
 * misspellings and compounds, where full text finds nothing; fusion keeps most of both, at the cost of a few facts
 * where the vector path's near-misses push the answer from 5th to 6th. (Over seeds 1–4, with exact vector search,
 * the averages are 0.96 / 0.92 / 0.96.) Within the fact's subject (67 facts have one) full text finds 0.99.
 * Synonyms without a shared word are out of reach of both lexical paths: that is what `memory.embedder` with a real
 * embedding model is for.
 */
const MEASURED = { fts: 0.96, vector: 0.87, hybrid: 0.94 };
/** Four facts of a hundred. */
const MARGIN = 0.04;

const WORKSPACE = "acme";
const SCOPE = "team:support";

interface Found {
  category: FactCategory;
  fts: boolean;
  vector: boolean;
  hybrid: boolean;
  /** Full text within the fact's subject only (how an agent recalls what it knows of the customer at hand). */
  scoped: boolean | undefined;
}

async function measure(): Promise<Found[]> {
  const { items, facts } = plantedCorpus({ distractors: 5_000, seed: 7 });
  const db = new Database(":memory:");
  db.exec(`
    CREATE TABLE memory_items (num INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, workspace TEXT, scope TEXT, kind TEXT,
      subject TEXT NULL, key TEXT NULL, text TEXT, tags TEXT, classification TEXT, updated_at INTEGER);
    CREATE VIRTUAL TABLE memory_fts USING fts5(body, meta, content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2');
    CREATE TABLE memory_vectors (num INTEGER PRIMARY KEY, workspace TEXT, embedder TEXT, vector BLOB);
  `);
  const embedder = hashedEmbedder();
  const insertItem = db.prepare(
    "INSERT INTO memory_items (num, id, workspace, scope, kind, subject, text, tags, classification, updated_at) VALUES (?, ?, ?, ?, 'fact', ?, ?, ?, 'internal', 0)",
  );
  const insertFts = db.prepare("INSERT INTO memory_fts (rowid, body, meta) VALUES (?, ?, ?)");
  const insertVector = db.prepare("INSERT INTO memory_vectors (num, workspace, embedder, vector) VALUES (?, ?, ?, ?)");
  const embedded = await embedder.embed(items.map((i) => i.text));
  db.transaction(() => {
    items.forEach((item, i) => {
      insertItem.run(item.num, `mem_${item.num}`, WORKSPACE, SCOPE, item.subject, item.text, JSON.stringify(item.tags));
      const meta = [
        metaToken("w", WORKSPACE),
        metaToken("c", WORKSPACE, SCOPE),
        metaToken("k", WORKSPACE, "fact"),
        ...(item.subject ? [metaToken("s", WORKSPACE, item.subject)] : []),
      ].join(" ");
      insertFts.run(item.num, ftsBody(item.text, item.tags, item.subject), meta);
      insertVector.run(item.num, WORKSPACE, embedder.id, toBlob(embedded[i]));
    });
  })();
  // The index is built from the table, as a process starting up would; one thread, so the graph is reproducible.
  const index = createHnswIndex(embedder.dimensions, { threads: 1 });
  const rows = db.prepare("SELECT num, vector FROM memory_vectors WHERE workspace = ? AND embedder = ?").all(WORKSPACE, embedder.id) as {
    num: number;
    vector: Buffer;
  }[];
  index.upsertMany(rows.map((r) => ({ label: r.num, vector: fromBlob(r.vector) })));

  const ftsSearch = db.prepare("SELECT rowid AS num FROM memory_fts WHERE memory_fts MATCH ? ORDER BY bm25(memory_fts, 1.0, 0.0) LIMIT 50");
  const fullText = (query: string, subject?: string | null) => {
    const all = [[metaToken("c", WORKSPACE, SCOPE)]];
    if (subject) all.push([metaToken("s", WORKSPACE, subject)]);
    const match = fts5Match(queryTerms(query), { all });
    return match ? (ftsSearch.all(match) as { num: number }[]).map((r) => r.num) : [];
  };
  const subjectOf = new Map(items.map((i) => [i.num, i.subject]));
  const top5 = (list: number[], num: number) => list.slice(0, 5).includes(num);

  const queries = await embedder.embed(facts.map((f) => f.query));
  return facts.map((fact, i) => {
    const fts = fullText(fact.query);
    const q = queries[i];
    const vector = index.search(q, 50).map((h) => h.label);
    const hybrid = reciprocalRankFusion([fts.map((label) => ({ label })), vector.map((label) => ({ label }))]).map((h) => h.label);
    const subject = subjectOf.get(fact.num);
    return {
      category: fact.category,
      fts: top5(fts, fact.num),
      vector: top5(vector, fact.num),
      hybrid: top5(hybrid, fact.num),
      scoped: subject ? top5(fullText(fact.query, subject), fact.num) : undefined,
    };
  });
}

describe("retrieval quality on planted facts", async () => {
  const found = await measure();
  const rate = (path: "fts" | "vector" | "hybrid", only?: FactCategory[]) => {
    const subset = found.filter((f) => !only || only.includes(f.category));
    return subset.filter((f) => f[path]).length / subset.length;
  };

  it("prints what it measured", () => {
    const categories = [...new Set(found.map((f) => f.category))];
    const line = (name: string, only?: FactCategory[]) =>
      `${name.padEnd(11)} ${String(found.filter((f) => !only || only.includes(f.category)).length).padStart(3)}  ${(
        ["fts", "vector", "hybrid"] as const
      )
        .map((p) => rate(p, only).toFixed(2).padStart(6))
        .join(" ")}`;
    const scoped = found.filter((f) => f.scoped !== undefined);
    const scopedRate = (scoped.filter((f) => f.scoped).length / scoped.length).toFixed(2);
    console.log(
      [
        "recall@5    n      fts vector hybrid",
        ...categories.map((c) => line(c, [c])),
        line("all"),
        `subject-scoped fts: ${scopedRate} of ${scoped.length}`,
      ].join("\n"),
    );
    expect(found.length).toBeGreaterThanOrEqual(100);
  });

  it("finds nearly all facts by full text and by fusion, most by vectors", () => {
    expect(rate("fts")).toBeGreaterThanOrEqual(MEASURED.fts - MARGIN);
    expect(rate("vector")).toBeGreaterThanOrEqual(MEASURED.vector - MARGIN);
    expect(rate("hybrid")).toBeGreaterThanOrEqual(MEASURED.hybrid - MARGIN);
  });

  it("fuses without losing much of the stronger path, and beats the weaker one", () => {
    expect(rate("hybrid")).toBeGreaterThanOrEqual(rate("fts") - 0.05);
    expect(rate("hybrid")).toBeGreaterThan(rate("vector"));
  });

  it("owes misspellings and compounds to the vector path", () => {
    const lexicalMisses: FactCategory[] = ["typo", "compound"];
    expect(rate("hybrid", lexicalMisses)).toBeGreaterThanOrEqual(rate("fts", lexicalMisses));
    // Facts full text missed, that fusion found: the reason to run both.
    const rescued = found.filter((f) => !f.fts && f.hybrid).length;
    expect(rescued).toBeGreaterThanOrEqual(1);
  });

  it("owes identifiers and rare words to full text", () => {
    const idf: FactCategory[] = ["identifier", "rare-term"];
    expect(rate("fts", idf)).toBeGreaterThan(rate("vector", idf) + 0.1);
    expect(rate("hybrid", idf)).toBeGreaterThan(rate("vector", idf));
  });

  it("finds the fact among its subject's items by full text with the subject token", () => {
    const scoped = found.filter((f) => f.scoped !== undefined);
    expect(scoped.length).toBeGreaterThan(50);
    expect(scoped.filter((f) => f.scoped).length / scoped.length).toBeGreaterThanOrEqual(0.97);
  });
});
