import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll } from "vitest";
import { openStore } from "../../src/store/index.js";
import { describeMemoryStore } from "./store-contract.js";

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const open = async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), "outpost-memory-"));
  dirs.push(dataDir);
  return openStore({ dataDir });
};

describeMemoryStore("sqlite", open);
// The same contract with every scope's vectors in an HNSW index, however few.
describeMemoryStore("sqlite, vectors through the index", open, { threshold: 0, buildWaitMs: 60_000 });
