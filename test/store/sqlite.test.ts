import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { openStore } from "../../src/store/index.js";
import { describeStoreConformance } from "./conformance.js";

const dirs: string[] = [];

describeStoreConformance(
  "sqlite",
  async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "outpost-store-"));
    dirs.push(dataDir);
    return openStore({ dataDir });
  },
  async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  },
);
