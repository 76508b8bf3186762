import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  createHnswIndex,
  exactSearch,
  fromBlob,
  loadHnswIndex,
  searchDepth,
  toBlob,
  type VectorIndex,
} from "../../src/memory/vector-index.js";
import { prng } from "../fixtures/memory/planted-facts.js";

const DIMS = 96;

/** Unit vectors around `clusters` centres: the shape of text embeddings (topics), not uniform noise. */
function clustered(count: number, seed: number, clusters = 200): Float32Array[] {
  const random = prng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const centres = Array.from({ length: clusters }, () => Float32Array.from({ length: DIMS }, gauss));
  return Array.from({ length: count }, () => {
    const c = centres[Math.floor(random() * clusters)];
    return unit(Float32Array.from(c, (x) => x + 0.9 * gauss()));
  });
}

function unit(v: Float32Array): Float32Array {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

const axis = (i: number, dims = 4) => Float32Array.from({ length: dims }, (_, j) => (j === i ? 1 : 0));
const labels = (hits: { label: number }[]) => hits.map((h) => h.label);

describe("HNSW index", () => {
  const vectors = clustered(20_000, 1);
  const queries = clustered(100, 2);
  const index = createHnswIndex(DIMS);
  index.upsertMany(vectors.map((vector, label) => ({ label, vector })));
  const all = vectors.map((vector, label) => ({ label, vector }));

  it("finds at least 90% of the exact top 10 on 20k clustered vectors", () => {
    expect(index.size).toBe(20_000);
    let found = 0;
    for (const q of queries) {
      const exact = new Set(labels(exactSearch(q, all, 10)));
      found += labels(index.search(q, 10)).filter((l) => exact.has(l)).length;
    }
    const recall = found / (queries.length * 10);
    expect(recall).toBeGreaterThanOrEqual(0.9);
  });

  it("scores by cosine similarity, best first", () => {
    const q = queries[0];
    const hits = index.search(q, 10);
    expect(hits).toHaveLength(10);
    for (let i = 1; i < hits.length; i++) expect(hits[i - 1].score).toBeGreaterThanOrEqual(hits[i].score);
    const exact = exactSearch(q, [{ label: hits[0].label, vector: vectors[hits[0].label] }], 1)[0];
    // Half precision in the index: close to the exact score, not equal.
    expect(hits[0].score).toBeCloseTo(exact.score, 2);
  });

  it("returns k of the labels a filter accepts, fetching more candidates when the filter is selective", () => {
    const q = queries[3];
    for (const share of [2, 50, 400]) {
      const accept = (label: number) => label % share === 0;
      const hits = index.search(q, 10, accept);
      expect(hits, `1 in ${share}`).toHaveLength(10);
      expect(hits.every((h) => accept(h.label))).toBe(true);
      const exact = new Set(
        labels(
          exactSearch(
            q,
            all.filter((c) => accept(c.label)),
            10,
          ),
        ),
      );
      expect(labels(hits).filter((l) => exact.has(l)).length, `1 in ${share}`).toBeGreaterThanOrEqual(7);
    }
    expect(index.search(q, 10, () => false)).toEqual([]);
  });

  it("gives fewer than k when a filter accepts fewer labels than maxCandidates lets it reach", () => {
    const small = createHnswIndex(DIMS, { maxCandidates: 64 });
    small.upsertMany(vectors.slice(0, 5_000).map((vector, label) => ({ label, vector })));
    // 5 labels of 5,000 pass; a 64-candidate search sees about none of them: use exactSearch for such filters.
    const hits = small.search(queries[0], 10, (label) => label % 1_000 === 0);
    expect(hits.length).toBeLessThan(10);
  });
});

describe("HNSW search depth", () => {
  it("examines more candidates as the index grows: expansionSearch up to 25k vectors, then ~1 in 100, at most 4,096", () => {
    expect([0, 10_000, 25_600, 30_000, 100_000, 1_000_000, 5_000_000].map((n) => searchDepth(n, 256))).toEqual([
      256, 256, 256, 512, 1_024, 4_096, 4_096,
    ]);
    expect(searchDepth(1_000, 800)).toBe(800);
  });

  it("keeps recall on a large index whose fixed candidate list would lose it", () => {
    // Uniform noise on a sparse graph searched with a candidate list of 8: alone, that finds ~3% of the exact top 10.
    const random = prng(3);
    const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
    const noise = (n: number) => Array.from({ length: n }, () => unit(Float32Array.from({ length: 48 }, gauss)));
    const all = noise(30_000).map((vector, label) => ({ label, vector }));
    const sparse = createHnswIndex(48, { connectivity: 4, expansionAdd: 16, expansionSearch: 8 });
    sparse.upsertMany(all);
    let found = 0;
    const queries = noise(50);
    for (const q of queries) {
      const exact = new Set(labels(exactSearch(q, all, 10)));
      found += labels(sparse.search(q, 10)).filter((l) => exact.has(l)).length;
    }
    expect(found / (queries.length * 10)).toBeGreaterThan(0.4);
    expect(sparse.search(queries[0], 10)).toHaveLength(10);
  });
});

describe("HNSW index updates", () => {
  const fresh = (): VectorIndex => {
    const index = createHnswIndex(4);
    for (let i = 0; i < 4; i++) index.upsert(i + 1, axis(i));
    return index;
  };

  it("grows past any initial capacity", () => {
    const index = createHnswIndex(DIMS);
    const vectors = clustered(3_000, 5);
    vectors.forEach((v, i) => {
      index.upsert(i, v);
    });
    expect(index.size).toBe(3_000);
    expect(index.search(vectors[2_999], 1)[0].label).toBe(2_999);
  });

  it("replaces a label's vector on upsert", () => {
    const index = fresh();
    index.upsert(1, axis(3));
    expect(index.size).toBe(4);
    expect(labels(index.search(axis(0), 1))).not.toEqual([1]);
    expect(labels(index.search(axis(3), 2)).sort()).toEqual([1, 4]);
  });

  it("forgets removed labels, and takes them back on a new upsert", () => {
    const index = fresh();
    index.remove(2);
    index.remove(2);
    index.remove(99);
    expect(index.size).toBe(3);
    expect(index.has(2)).toBe(false);
    expect(labels(index.search(axis(1), 4))).not.toContain(2);
    index.upsert(2, axis(2));
    expect(index.has(2)).toBe(true);
    expect(labels(index.search(axis(2), 2)).sort()).toEqual([2, 3]);
  });

  it("upserts many at once: replacing existing labels, the last of a repeated label winning", () => {
    const index = fresh();
    index.upsertMany([
      { label: 1, vector: axis(2) },
      { label: 9, vector: axis(0) },
      { label: 9, vector: axis(1) },
    ]);
    expect(index.size).toBe(5);
    expect(labels(index.search(axis(2), 2)).sort()).toEqual([1, 3]);
    expect(labels(index.search(axis(1), 2)).sort()).toEqual([2, 9]);
  });

  it("loses no vector when a small index of near-duplicates is built on every core", () => {
    // Parallel inserts into an empty graph once left one build in twenty without a path to some vectors.
    const random = prng(7);
    const centre = unit(Float32Array.from({ length: DIMS }, () => random() - 0.5));
    const near = (spread: number) => unit(centre.map((x) => x + spread * (random() - 0.5)));
    const vectors = [...Array.from({ length: 55 }, () => near(0.05)), near(0.01), near(0.01)];
    for (let build = 0; build < 100; build++) {
      const index = createHnswIndex(DIMS, { threads: 0 });
      index.upsertMany(vectors.map((vector, label) => ({ label, vector })));
      const found = new Set(labels(index.search(centre, 5)));
      expect([found.has(55), found.has(56)]).toEqual([true, true]);
    }
  });

  it("answers nothing for an empty index, k of 0 or a zero query", () => {
    expect(createHnswIndex(4).search(axis(0), 5)).toEqual([]);
    expect(fresh().search(axis(0), 0)).toEqual([]);
    expect(fresh().search(new Float32Array(4), 3)).toEqual([]);
    expect(fresh().search(axis(0), 50)).toHaveLength(4);
  });

  it("rejects vectors of another size and labels that are not non-negative integers", () => {
    const index = fresh();
    expect(() => index.upsert(5, new Float32Array(3))).toThrow(/4-dimensional/);
    expect(() => index.search(new Float32Array(5), 1)).toThrow(/4-dimensional/);
    expect(() => index.upsert(-1, axis(0))).toThrow(RangeError);
    expect(() => index.upsert(1.5, axis(0))).toThrow(RangeError);
  });
});

describe("HNSW index files", () => {
  const dir = mkdtempSync(join(tmpdir(), "outpost-vectors-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("saves and loads, with the same answers, removals and replacements included", () => {
    const vectors = clustered(2_000, 9);
    const index = createHnswIndex(DIMS);
    index.upsertMany(vectors.map((vector, label) => ({ label, vector })));
    index.remove(7);
    index.upsert(8, vectors[0]);
    const path = join(dir, "workspace.usearch");
    index.save(path);
    // Saving again replaces the file, leaving nothing half-written behind.
    index.save(path);
    expect(readdirSync(dir)).toEqual(["workspace.usearch"]);

    const loaded = loadHnswIndex(path, DIMS);
    expect(loaded.size).toBe(1_999);
    expect(loaded.has(7)).toBe(false);
    for (const q of clustered(20, 10)) expect(labels(loaded.search(q, 10))).toEqual(labels(index.search(q, 10)));
    expect(labels(loaded.search(vectors[0], 2)).sort((a, b) => a - b)).toEqual([0, 8]);
    // A loaded index keeps working.
    loaded.upsert(5_000, vectors[1]);
    expect(loaded.size).toBe(2_000);
  });

  it("refuses a file of another dimension, and a missing file", () => {
    const path = join(dir, "small.usearch");
    const index = createHnswIndex(4);
    index.upsert(1, axis(0));
    index.save(path);
    expect(() => loadHnswIndex(path, 8)).toThrow(/4-dimensional vectors, not 8/);
    expect(() => loadHnswIndex(join(dir, "missing.usearch"), 4)).toThrow();
    expect(existsSync(join(dir, "missing.usearch"))).toBe(false);
  });
});

describe("exactSearch", () => {
  const candidates = [
    { label: 3, vector: unit(Float32Array.from([1, 1, 0, 0])) },
    { label: 1, vector: axis(0) },
    { label: 2, vector: axis(0) },
    { label: 4, vector: axis(2) },
  ];

  it("ranks by inner product, ties by label", () => {
    expect(exactSearch(axis(0), candidates, 3)).toEqual([
      { label: 1, score: 1 },
      { label: 2, score: 1 },
      { label: 3, score: expect.closeTo(Math.SQRT1_2, 6) },
    ]);
    expect(labels(exactSearch(axis(0), candidates, 10))).toEqual([1, 2, 3, 4]);
    expect(exactSearch(axis(0), candidates, 0)).toEqual([]);
    expect(exactSearch(axis(0), [], 5)).toEqual([]);
  });

  it("takes any iterable, e.g. rows streamed from the table", () => {
    function* rows() {
      yield* candidates;
    }
    expect(labels(exactSearch(axis(2), rows(), 1))).toEqual([4]);
  });
});

describe("vector blobs", () => {
  it("round-trip float32 little-endian, as copies", () => {
    const v = Float32Array.from([0.5, -1.25, 3e-8, 1]);
    const blob = toBlob(v);
    expect(blob.byteLength).toBe(16);
    expect(blob.readFloatLE(4)).toBe(-1.25);
    v[0] = 9;
    expect(Array.from(fromBlob(blob))).toEqual([0.5, -1.25, Math.fround(3e-8), 1]);
  });

  it("read from unaligned buffers, and refuse a torn one", () => {
    const backing = Buffer.alloc(17);
    toBlob(Float32Array.from([1, 2, 3, 4])).copy(backing, 1);
    expect(Array.from(fromBlob(backing.subarray(1)))).toEqual([1, 2, 3, 4]);
    expect(() => fromBlob(Buffer.alloc(7))).toThrow(/multiple of 4/);
  });
});
