/**
 * WAL checkpoints off the hot path. SQLite normally checkpoints inside the
 * commit that crosses the threshold, stalling that commit (and every run
 * waiting on it) for an fsync. Here a worker thread with its own connection
 * checkpoints passively every few hundred milliseconds; the writer's own
 * automatic checkpoint stays on as a backstop should the worker fall behind.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

const require = createRequire(import.meta.url);

// Plain CommonJS, evaluated in the worker: it must not depend on the TypeScript loader.
const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma("busy_timeout = 1000");
const checkpoint = () => {
  try { db.pragma("wal_checkpoint(PASSIVE)"); } catch { /* busy: the next tick retries */ }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on("message", (message) => {
  if (message !== "stop") return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.postMessage("stopped");
});
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

export function startCheckpointer(path: string, intervalMs = 200): Checkpointer {
  const worker = new Worker(WORKER, { eval: true, workerData: { driver: require.resolve("better-sqlite3"), path, intervalMs } });
  worker.unref();
  // Losing the checkpointer costs speed, never data: the writer's own checkpoints take over.
  let exited = false;
  worker.on("error", () => undefined);
  worker.once("exit", () => {
    exited = true;
  });
  let stopped: Promise<void> | null = null;
  return {
    stop() {
      stopped ??= exited
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            worker.once("message", () => void worker.terminate().then(() => resolve()));
            worker.once("exit", () => resolve());
            worker.postMessage("stop");
          });
      return stopped;
    },
  };
}
