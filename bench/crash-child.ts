/** Benchmark helper: starts runs with a 100 ms model and reports progress until the parent kills it. */
import { startOutpost } from "../src/runtime/index.js";
import { benchModel, benchProject } from "./workload.js";

const [dataDir, count] = process.argv.slice(2);
const outpost = await startOutpost({ project: benchProject(), dataDir, modelFor: () => benchModel(100) });
for (let i = 0; i < Number(count); i++) await outpost.startRun({ agent: "bench", input: "count" });
setTimeout(() => process.stdout.write("progress\n"), 700);
