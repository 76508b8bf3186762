/** Benchmark helper: one worker process on PostgreSQL (no API), the standard workload's model at a given latency. */
import { startOutpost } from "../src/runtime/index.js";
import { tempDir } from "./driver.js";
import { benchModel, benchProject } from "./workload.js";

const [databaseUrl, concurrency, latencyMs, leaseMs] = process.argv.slice(2);
const model = benchModel(Number(latencyMs));
const outpost = await startOutpost({
  project: benchProject(),
  dataDir: tempDir("scale-worker"),
  databaseUrl,
  concurrency: Number(concurrency),
  leaseMs: Number(leaseMs),
  modelFor: () => model,
});
process.stdout.write("ready\n");
process.on("SIGTERM", () => void outpost.close().then(() => process.exit(0)));
